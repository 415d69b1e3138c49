"""Headers, docs, retention and the serve command's refusal to expose an open API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from inkproof.store import SignatureStore
from tests.helpers import draw_scribble
from tests.service.corpus import png


def test_security_headers_on_every_response(client: TestClient) -> None:
    for path in ("/", "/api/v1/health", "/api/v1/writers", "/api/v1/nowhere"):
        headers = client.get(path).headers
        assert headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
    anonymous = TestClient(client.app).get("/api/v1/writers")
    assert anonymous.status_code == 401 and anonymous.headers["x-frame-options"] == "DENY"


def test_unauthenticated_body_is_not_read(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    reads = []
    original = anonymous.app

    async def spy(scope, receive, send):  # type: ignore[no-untyped-def]
        async def counted():  # type: ignore[no-untyped-def]
            message = await receive()
            reads.append(len(message.get("body", b"")))
            return message

        await original(scope, counted, send)

    anonymous.app = spy
    response = anonymous.post("/api/v1/identify", files={"query": ("q.png", b"\0" * 500_000, "image/png")})
    assert response.status_code == 401
    assert sum(reads) == 0  # answered from the headers alone


def test_review_images_are_forgotten_after_the_retention_period(service_store: SignatureStore) -> None:
    scribbles = [draw_scribble(seed=s) for s in range(3)]
    service_store.enroll("R1", scribbles)
    reviewing = SignatureStore(service_store.db, service_store.verifier, accept_threshold=2.0, reject_threshold=-2.0)
    claim = reviewing.verify_claim("R1", draw_scribble(seed=9))
    assert claim.decision == "review" and reviewing.query_image(claim.log_id) is not None
    assert reviewing.purge_query_images(dt.timedelta(days=1)) == 0  # still young
    assert reviewing.purge_query_images(dt.timedelta(0)) == 1
    assert reviewing.query_image(claim.log_id) is None
    assert reviewing.get_log(claim.log_id).decision == "review"  # the log itself stays


def test_blank_queries_are_refused_by_the_store(service_store: SignatureStore) -> None:
    from inkproof.errors import NoInkError

    service_store.enroll("B1", [draw_scribble(seed=s) for s in range(3)])
    for blank in (np.full((100, 300), 255, np.uint8), png(np.zeros((1, 5000), np.uint8))):
        for call in (lambda q: service_store.verify_claim("B1", q), lambda q: service_store.identify(q)):
            try:
                call(blank)
            except NoInkError:
                continue
            raise AssertionError("a blank query was scored")


def test_serve_refuses_an_open_api_on_a_public_interface(tmp_path: Path) -> None:
    from inkproof.cli.app import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--no-auth", "--db", str(tmp_path / "x.db")])
    assert result.exit_code != 0
    assert "--insecure" in result.output
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened


def test_api_docs_only_when_asked_for(service_store: SignatureStore, settings: object) -> None:
    from dataclasses import replace

    from inkproof.service.app import ServiceSettings, create_app

    assert isinstance(settings, ServiceSettings)
    with TestClient(create_app(replace(settings, api_docs=True), store=service_store)) as docs_client:
        page = docs_client.get("/docs")
        assert page.status_code == 200
        assert "https://cdn.jsdelivr.net" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        ui = docs_client.get("/")
        assert "cdn.jsdelivr.net" not in ui.headers["content-security-policy"]  # the UI keeps the strict policy


def test_accepted_keys_are_trusted_briefly_and_refused_keys_never(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from inkproof.service import limits
    from inkproof.service.limits import BodyLimits, RequestGuard

    valid = {"ink_good-key-0123456789"}
    asked: list[str] = []

    def check(key: str) -> bool:
        asked.append(key)
        return key in valid

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called here")

    guard = RequestGuard(app, limits=BodyLimits(uploads=1024, document=1024), check_key=check, key_cache_s=5.0)
    clock = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: clock[0])

    def authorised(key: str) -> bool:
        return asyncio.run(guard._authorised({"x-api-key": key}))

    assert authorised("ink_good-key-0123456789") and authorised("ink_good-key-0123456789")
    assert asked == ["ink_good-key-0123456789"]  # the second request did not ask the database
    assert not authorised("ink_wrong-key-0123456789") and not authorised("ink_wrong-key-0123456789")
    assert asked.count("ink_wrong-key-0123456789") == 2  # a refusal is never remembered
    valid.clear()  # revoked: trusted until the cache runs out, then refused
    clock[0] += 4.9
    assert authorised("ink_good-key-0123456789")
    clock[0] += 0.2
    assert not authorised("ink_good-key-0123456789")

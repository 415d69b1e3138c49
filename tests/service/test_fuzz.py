"""Every upload endpoint against a generated corpus, on SQLite and PostgreSQL: no 5xx but 503, a
typed JSON error for every refusal, blank images refused as such, hostile fields refused before
they reach the database.

The default suite runs the recipes that once broke the service plus valid and foreign formats;
``-m slow`` runs the whole corpus (150+ inputs x 5 endpoints x 2 databases).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pytest
from fastapi.testclient import TestClient

from inkproof.service.app import ServiceSettings, create_app
from inkproof.store import SignatureStore, open_database
from inkproof.verifier import Verifier
from tests.helpers import draw_scribble
from tests.service.corpus import (
    BAD_ROW_IDS,
    BAD_THRESHOLDS,
    BAD_WRITER_IDS,
    Sample,
    fuzz_corpus,
    issue_recipes,
    other_formats,
    png,
    valid_samples,
)

_numbers = itertools.count(1)
SCRIBBLES = [png(draw_scribble(320, 120, seed=s)) for s in range(3)]


@pytest.fixture(params=["sqlite", "postgres"])
def fuzz_client(
    request: pytest.FixtureRequest, service_model: Path, settings: ServiceSettings, tmp_path: Path
) -> Iterator[TestClient]:
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = server.create_database(f"inkproof_fuzz_{next(_numbers)}")
    else:
        url = str(tmp_path / "fuzz.db")
    verifier = Verifier(service_model, device="cpu", max_pixels=settings.max_pixels)
    database = open_database(url)
    store = SignatureStore(database, verifier)
    key = store.create_api_key("fuzz")
    store.enroll("FZ", SCRIBBLES)
    # The real document pipeline (bundled detector and cleaner in worker processes), tight limits.
    fuzz_settings = replace(settings, document_timeout_s=20.0, max_document_pages=5, max_document_jobs=2)
    with TestClient(create_app(fuzz_settings, store=store), raise_server_exceptions=False) as client:
        client.headers["X-API-Key"] = key
        yield client
    verifier.close()
    database.dispose()


def _calls(sample: Sample) -> list[tuple[str, str, dict[str, Any]]]:
    upload = (sample.name + ".png", sample.data, sample.mime)
    good = ("good.png", SCRIBBLES[0], "image/png")
    return [
        ("verify", "/api/v1/verify", {"files": {"reference": good, "query": upload}}),
        ("claim", "/api/v1/writers/FZ/verify", {"files": {"query": upload}}),
        ("identify", "/api/v1/identify", {"files": {"query": upload}}),
        ("enroll", f"/api/v1/writers/NEW{abs(hash(sample.name)) % 10_000}/references", {"files": [("files", upload)]}),
        ("document", "/api/v1/documents/report", {"files": {"document": upload}}),
    ]


def _problem(endpoint: str, sample: Sample, response: Any) -> str | None:
    """What is wrong with ``response`` to ``sample`` (None: a right answer)."""
    status = response.status_code
    where = f"{endpoint} {sample.name}: {status}"
    if status >= 500 and status != 503:
        return f"{where} {response.text[:200]}"
    if status == 200:
        if endpoint != "document" and sample.may_succeed is False:
            return f"{where} accepted an input that is not a usable signature"
        return None
    try:
        error = response.json()["error"]
    except Exception:
        return f"{where} not a JSON error: {response.text[:200]}"
    if not error.get("type") or not error.get("message") or " at 0x" in error["message"]:
        return f"{where} untyped or leaky error {error}"
    if sample.blank and endpoint != "document" and "ink" not in error["message"]:
        return f"{where} blank image not refused for lack of ink: {error}"
    if sample.may_succeed is True and endpoint != "enroll":
        return f"{where} refused a valid signature: {error}"
    return None


def _run_corpus(client: TestClient, samples: list[Sample]) -> list[str]:
    problems = []
    for sample in samples:
        for endpoint, url, kwargs in _calls(sample):
            problem = _problem(endpoint, sample, client.post(url, **kwargs))
            if problem:
                problems.append(problem)
    return problems


def test_issue_recipes_and_formats_get_typed_4xx(fuzz_client: TestClient) -> None:
    samples = [*issue_recipes(), *valid_samples(), *other_formats()]
    assert _run_corpus(fuzz_client, samples) == []


@pytest.mark.slow
def test_fuzz_corpus_gets_typed_4xx(fuzz_client: TestClient) -> None:
    assert _run_corpus(fuzz_client, fuzz_corpus()) == []


def test_blank_images_are_never_the_same_writer(fuzz_client: TestClient) -> None:
    white = png(np.full((120, 300), 255, np.uint8))
    black = png(np.zeros((200, 300), np.uint8))
    for first, second in ((white, white), (png(np.full((1, 1), 255, np.uint8)), black)):
        response = fuzz_client.post(
            "/api/v1/verify",
            files={"reference": ("a.png", first, "image/png"), "query": ("b.png", second, "image/png")},
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == {
            "type": "NoInkError",
            "message": "a.png: no signature ink found (blank or uniform image)",
        }
    # A claim or identification refuses a blank query in the store, still under the upload's name.
    for path in ("/api/v1/writers/FZ/verify", "/api/v1/identify"):
        response = fuzz_client.post(path, files={"query": ("blank.png", white, "image/png")})
        assert response.status_code == 422, response.text
        assert response.json()["error"] == {
            "type": "NoInkError",
            "message": "blank.png: no signature ink found (blank or uniform image)",
        }


def _assert_typed_4xx(response: Any, what: str) -> None:
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text[:200]}"
    assert response.json()["error"]["type"], what


def test_hostile_fields_are_refused_before_the_database(fuzz_client: TestClient) -> None:
    image = ("q.png", SCRIBBLES[1], "image/png")
    for bad in BAD_WRITER_IDS:
        _assert_typed_4xx(fuzz_client.post("/api/v1/writers", json={"external_id": bad}), f"create {bad!r}")
        bad = quote(bad, safe="")  # as a URL path segment from here on
        _assert_typed_4xx(
            fuzz_client.post(f"/api/v1/writers/{bad}/references", files=[("files", image)]), f"enroll {bad!r}"
        )
        _assert_typed_4xx(fuzz_client.post(f"/api/v1/writers/{bad}/verify", files={"query": image}), f"claim {bad!r}")
        _assert_typed_4xx(fuzz_client.get(f"/api/v1/writers/{bad}"), f"show {bad!r}")
        _assert_typed_4xx(
            fuzz_client.post("/api/v1/documents/report", files={"document": image}, data={"claimed": unquote(bad)}),
            f"document claim {bad!r}",
        )
    for name in ("N\x00", "x" * 256, "a\u200b"):
        created = fuzz_client.post("/api/v1/writers", json={"external_id": "OK1", "display_name": name})
        _assert_typed_4xx(created, f"display name {name!r}")
        enrolled = fuzz_client.post(
            "/api/v1/writers/OK2/references", files=[("files", image)], data={"display_name": name}
        )
        _assert_typed_4xx(enrolled, f"enroll display name {name!r}")
        _assert_typed_4xx(
            fuzz_client.post("/api/v1/reviews/1", json={"decision": "genuine", "reviewer": name}), f"reviewer {name!r}"
        )
    for row in BAD_ROW_IDS:
        _assert_typed_4xx(fuzz_client.get(f"/api/v1/reviews/{row}/query"), f"review query {row}")
        _assert_typed_4xx(
            fuzz_client.post(f"/api/v1/reviews/{row}", json={"decision": "genuine", "reviewer": "qa"}), f"review {row}"
        )
        _assert_typed_4xx(fuzz_client.get(f"/api/v1/writers/FZ/references/{row}/image"), f"reference {row}")
    for value in BAD_THRESHOLDS:
        response = fuzz_client.post(
            "/api/v1/verify",
            files={"reference": ("a.png", SCRIBBLES[0], "image/png"), "query": image},
            data={"threshold": value},
        )
        assert response.status_code == 422, f"threshold {value}: {response.text}"
    # Look-alikes are the same id after NFKC: full-width "W001" is "W001".
    created = fuzz_client.post("/api/v1/writers", json={"external_id": "\uff37\uff10\uff10\uff11"})
    assert created.status_code == 201 and created.json()["external_id"] == "W001"
    assert fuzz_client.get("/api/v1/writers/W001").status_code == 200
    assert fuzz_client.get("/api/v1/writers").status_code == 200  # nothing stored broke the listing

"""GET /claims/{id}/evidence (JSON and HTML) rebuilt from the log, review notes, the log export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from inkproof.data.synthetic import sample_signatures
from inkproof.service.app import ServiceSettings, create_app
from inkproof.store import SignatureStore, open_database
from inkproof.verifier import Verifier


def _png(image: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")  # type: ignore[arg-type]
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    return [_png(image) for image in sample_signatures(12, seed=9, writers=1)[0::2]]


def _client(tmp_path: Path, **settings: object) -> Iterator[TestClient]:
    verifier = Verifier(device="cpu")  # the bundled model: per-writer classifier scoring
    # Thresholds no score reaches from either side: every claim goes to review.
    store = SignatureStore(open_database(tmp_path / "e.db"), verifier, accept_threshold=1e6, reject_threshold=-1e6)
    key = store.create_api_key("tests")
    app = create_app(ServiceSettings(**settings), store=store)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["X-API-Key"] = key
        yield client
    verifier.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def _claim(client: TestClient, pngs: list[bytes]) -> dict[str, object]:
    files = [("files", (f"r{i}.png", data, "image/png")) for i, data in enumerate(pngs[:4])]
    assert client.post("/api/v1/writers/W/references", files=files).status_code in (200, 201)
    answer = client.post("/api/v1/writers/W/verify", files={"query": ("q.png", pngs[4], "image/png")})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_evidence_of_a_reviewed_claim_from_the_log(client: TestClient, pngs: list[bytes]) -> None:
    claim = _claim(client, pngs)
    log_id = claim["log_id"]
    decided = client.post(
        f"/api/v1/reviews/{log_id}", json={"decision": "forgery", "reviewer": "ana", "note": "tremor in the S"}
    )
    assert decided.status_code == 200 and decided.json()["review_note"] == "tremor in the S"

    evidence = client.get(f"/api/v1/claims/{log_id}/evidence")
    assert evidence.status_code == 200, evidence.text
    body = evidence.json()
    assert body["reproduction"]["matches"] is True
    assert body["review"] == {
        "reviewer": "ana",
        "decision": "forgery",
        "note": "tremor in the S",
        "reviewed_at": body["review"]["reviewed_at"],
    }
    assert [c["reference_sha256"] for c in body["comparisons"]] == [
        r["image_sha256"]
        for r in claim["reference_scores"]  # type: ignore[attr-defined]
    ]
    assert body["comparisons"][0]["images"]["overlay"].startswith("data:image/png;base64,")
    assert body["model"]["embedder_sha256"] and body["decision"] == "review"

    page = client.get(f"/api/v1/claims/{log_id}/evidence", params={"format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # the page runs no script
    assert "tremor in the S" in page.text and claim["query_sha256"] in page.text

    exported = client.get("/api/v1/log/export", params={"format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows[0]["review_note"] == "tremor in the S" and rows[0]["reviewer_decision"] == "forgery"

    for url, status in (
        ("/api/v1/claims/0/evidence", 422),
        ("/api/v1/claims/99999/evidence", 409),
        (f"/api/v1/claims/{log_id}/evidence?format=xml", 422),
        ("/api/v1/log/export?since=yesterday", 400),
        ("/api/v1/log/export?format=xls", 422),
    ):
        assert client.get(url).status_code == status, url
    assert TestClient(client.app).get(f"/api/v1/claims/{log_id}/evidence").status_code == 401


def test_review_items_keep_their_query_when_claim_images_are_off(tmp_path: Path, pngs: list[bytes]) -> None:
    for client in _client(tmp_path, keep_claim_images=False):
        claim = _claim(client, pngs)
        client.post(f"/api/v1/reviews/{claim['log_id']}", json={"decision": "genuine", "reviewer": "b"})
        # Review items keep their query whatever the setting: the reviewer must see it.
        assert client.get(f"/api/v1/claims/{claim['log_id']}/evidence").json()["comparisons"]

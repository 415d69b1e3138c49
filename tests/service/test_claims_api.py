"""verify-claim over HTTP with a claims-calibrated model: the operating point is a form field and
the response carries the method, the operating point, its threshold and every reference's score."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inkproof.service.app import ServiceSettings, create_app
from inkproof.store import SignatureStore, open_database
from inkproof.verifier import Verifier
from tests.store.test_claims_store import claims_model


@pytest.fixture
def claims_client(service_model: Path, synthetic_root: Path, tmp_path: Path) -> Iterator[TestClient]:
    with Verifier(service_model, device="cpu") as plain:
        cohort = plain.embed_many(
            sorted((synthetic_root / "W009").glob("genuine/*.png"))
            + sorted((synthetic_root / "W010").glob("genuine/*.png"))
        )
    card = claims_model(service_model, tmp_path / "model", cohort, chosen={1: "mean", 3: "svm-rbf"}, outlier=-1.0)
    verifier = Verifier(card, device="cpu")
    store = SignatureStore(open_database(tmp_path / "claims.db"), verifier)
    key = store.create_api_key("tests")
    app = create_app(ServiceSettings(model=card), store=store)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["X-API-Key"] = key
        yield client
    verifier.close()


def test_verify_claim_takes_an_operating_point(claims_client: TestClient, synthetic_root: Path) -> None:
    images = sorted((synthetic_root / "W001").glob("genuine/*.png"))
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in images[:4]]
    enrolled = claims_client.post("/api/v1/writers/W001/references", files=files)
    assert enrolled.status_code in (200, 201), enrolled.text
    assert enrolled.json()["flagged"] == []
    query = {"query": (images[5].name, images[5].read_bytes(), "image/png")}

    strict = claims_client.post("/api/v1/writers/W001/verify", files=query, data={"operating_point": "far-skilled-1"})
    assert strict.status_code == 200, strict.text
    body = strict.json()
    assert body["method"] == "svm-rbf" and body["operating_point"] == "far-skilled-1" and body["calibrated_k"] == 3
    assert body["accept_threshold"] == 1.0 and body["reject_threshold"] == 0.0  # the card's thresholds
    assert len(body["reference_scores"]) == 4 and all(r["used"] for r in body["reference_scores"])
    assert isinstance(body["raw_fused_score"], float) and isinstance(body["fused_score"], float)

    default = claims_client.post("/api/v1/writers/W001/verify", files=query).json()
    assert default["operating_point"] == "far-skilled-5" and default["accept_threshold"] == 0.5
    assert default["fused_score"] == pytest.approx(body["fused_score"])

    wrong = claims_client.post("/api/v1/writers/W001/verify", files=query, data={"operating_point": "far1"})
    assert wrong.status_code == 422

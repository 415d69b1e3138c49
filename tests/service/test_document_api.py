"""POST /api/v1/documents/report on synthetic contracts whose fields are known exactly.

The detector is injected (the synthetic pages' true boxes), so these tests check the endpoint's
contract, limits and errors rather than a trained model; one test runs the bundled detector.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from inkproof.document.synthetic import SyntheticPage
from inkproof.service.app import ServiceSettings, create_app
from inkproof.store import SignatureStore
from tests.document.contracts import (
    CONTRACT_SUMMARY,
    DarkInkCleaner,
    GroundTruthDetector,
    contract_pages,
    enroll_signers,
    signer,
    tiff_of,
)

URL = "/api/v1/documents/report"
MAX_DOCUMENT_BYTES = 4_000_000


@pytest.fixture(scope="module")
def pages() -> list[SyntheticPage]:
    return contract_pages()


@pytest.fixture(scope="module")
def contract(pages: list[SyntheticPage]) -> bytes:
    """The three pages as one uncompressed TIFF (larger than the 2 MB image upload limit)."""
    return tiff_of(pages)


@contextmanager
def _client(
    store: SignatureStore, key: str, settings: ServiceSettings, **models: Any
) -> Iterator[tuple[TestClient, Any]]:
    """A client of an app built from ``settings`` with the given detector/cleaner objects."""
    app = create_app(settings, store=store, **models)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.headers["X-API-Key"] = key
        yield test_client, app


@pytest.fixture
def doc_settings(settings: ServiceSettings) -> ServiceSettings:
    from dataclasses import replace

    return replace(settings, max_document_bytes=MAX_DOCUMENT_BYTES, max_document_pages=5)


@pytest.fixture
def detector(pages: list[SyntheticPage]) -> GroundTruthDetector:
    return GroundTruthDetector(pages)


@pytest.fixture
def doc_client(
    service_store: SignatureStore, api_key: str, doc_settings: ServiceSettings, detector: GroundTruthDetector
) -> Iterator[TestClient]:
    with _client(service_store, api_key, doc_settings, detector=detector, cleaner=DarkInkCleaner()) as (client, _):
        yield client


def _post(client: TestClient, data: bytes, name: str = "contract.tiff", mime: str = "image/tiff", **form: Any) -> Any:
    return client.post(URL, files={"document": (name, data, mime)}, data=form)


def _error(response: Any) -> tuple[str, str]:
    payload = response.json()
    assert set(payload) == {"error"}, payload
    assert "Traceback" not in response.text
    return str(payload["error"]["type"]), str(payload["error"]["message"])


def _png_of(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :]))))


# --- a report ------------------------------------------------------------------------------------


def test_report_of_a_contract_with_rules_and_images(
    doc_client: TestClient, contract: bytes, pages: list[SyntheticPage], detector: GroundTruthDetector
) -> None:
    assert len(contract) > 2_000_000  # over the image upload limit, under the document limit
    response = _post(doc_client, contract, expect="2", initials_every_page="true", dated="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "contract.tiff"
    assert body["models"] == {"detector": "ground-truth", "cleaner": "dark-ink", "verifier": body["models"]["verifier"]}
    assert body["models"]["verifier"]  # the store's model
    assert body["ocr"] is False  # off by default in the service
    assert body["summary"] | {"verdict": None} == CONTRACT_SUMMARY | {"verdict": None}
    assert body["summary"]["verdict"] == "fail"
    rules = {r["rule"]: (r["verdict"], r["pages"]) for r in body["rules"]}
    assert rules == {
        "signatures_present": ("pass", []),
        "initials_every_page": ("fail", [2]),
        "signatures_dated": ("fail", [3]),
    }
    assert [(p["width"], p["height"]) for p in body["pages"]] == [(900, 1200)] * 3
    first, third = body["pages"][0]["signatures"][0], body["pages"][2]["signatures"][0]
    truth = next(f.box for f in pages[0].fields if f.label == "signature")
    assert first["box"] == list(truth)
    assert first["date"]["kind"] == "handwritten" and third["date"] is None
    # Every page thumbnail, crop and cleaned crop is inlined as a PNG data URL.
    assert set(body["images"]) == {
        "page1.png",
        "page2.png",
        "page3.png",
        "page1_signature_1.png",
        "page1_signature_1_cleaned.png",
        "page3_signature_1.png",
        "page3_signature_1_cleaned.png",
    }
    crop = _png_of(body["images"]["page1_signature_1.png"])
    cleaned = _png_of(body["images"]["page1_signature_1_cleaned.png"])
    assert crop.shape == cleaned.shape and crop.shape[0] < 200
    assert first["ink_fraction"] == pytest.approx(float((crop < 128).mean()), abs=1e-4)
    assert set(np.unique(cleaned[crop >= 128]).tolist()) == {255}  # paper removed by the cleaner
    picture = body["images"]["page1.png"].split(",", 1)[1]  # a palette PNG: compare its colours
    thumbnail = np.asarray(Image.open(io.BytesIO(base64.b64decode(picture))).convert("RGB"))
    assert (thumbnail == (220, 30, 30)).all(axis=2).any()  # the signature's box drawn in red
    # Nothing enrolled: every signature is identified, among no writers.
    assert first["identified"] == [] and first["claim"] is None
    # The detector ran once per page, in a worker thread, not on the event loop.
    assert detector.calls == 3 and detector.in_event_loop == [False, False, False]


def test_without_rules_only_signatures_present_is_checked(doc_client: TestClient, contract: bytes) -> None:
    body = _post(doc_client, contract, expect="3").json()
    assert [(r["rule"], r["verdict"]) for r in body["rules"]] == [("signatures_present", "fail")]
    assert body["summary"]["verdict"] == "fail" and body["summary"]["all_expected_present"] is False


def test_a_pdf_document_and_no_cleaning(
    service_store: SignatureStore, api_key: str, doc_settings: ServiceSettings, pages: list[SyntheticPage]
) -> None:
    from dataclasses import replace

    buffer = io.BytesIO()
    images = [Image.fromarray(p.image) for p in pages]
    images[0].save(buffer, format="PDF", resolution=150, save_all=True, append_images=images[1:])
    settings = replace(doc_settings, clean_documents=False)
    with _client(service_store, api_key, settings, detector=GroundTruthDetector(pages)) as (client, _):
        response = _post(client, buffer.getvalue(), "contract.pdf", "application/pdf", dated="1")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["summary"]["pages"] == 3 and body["summary"]["signatures"] == 2
        assert body["models"]["cleaner"] is None
        assert not [name for name in body["images"] if name.endswith("_cleaned.png")]
        assert [(r["rule"], r["verdict"], r["pages"]) for r in body["rules"]][1] == ("signatures_dated", "fail", [3])


def test_claimed_writers_are_verified(
    doc_client: TestClient, contract: bytes, pages: list[SyntheticPage], service_store: SignatureStore
) -> None:
    first, third = signer(pages[0]), signer(pages[2])
    enroll_signers(service_store, pages)
    # Claims are repeated form fields; a repeated claim counts once.
    response = doc_client.post(
        URL,
        files={"document": ("contract.tiff", contract, "image/tiff")},
        data={"claimed": [first, third, first]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["claimed"] == [first, third]
    claims = [s["claim"] for p in body["pages"] for s in p["signatures"]]
    assert all(c is not None for c in claims)
    assert sorted(c["writer"] for c in claims) == sorted([first, third])  # one signature per claim
    assert all(c["decision"] in ("genuine", "forgery", "review") for c in claims)
    assert all(s["identified"] == [] for p in body["pages"] for s in p["signatures"])  # claims, not search
    rule = next(r for r in body["rules"] if r["rule"] == "claimed_writers_verified")
    assert (rule["verdict"] == "pass") == all(c["decision"] == "genuine" for c in claims), claims
    # Without claims the same signatures are identified among the two enrolled writers.
    identified = _post(doc_client, contract).json()
    candidates = [s["identified"] for p in identified["pages"] for s in p["signatures"]]
    assert all({c["external_id"] for c in found} == {first, third} for found in candidates)


# --- errors --------------------------------------------------------------------------------------


def test_unknown_claimed_writer_is_404_before_any_work(
    doc_client: TestClient, contract: bytes, detector: GroundTruthDetector
) -> None:
    response = _post(doc_client, contract, claimed="nobody")
    assert response.status_code == 404
    kind, message = _error(response)
    assert kind == "UnknownWriterError" and "nobody" in message
    assert detector.calls == 0


def test_the_api_key_is_required(doc_client: TestClient, contract: bytes) -> None:
    anonymous = TestClient(doc_client.app)
    response = anonymous.post(URL, files={"document": ("contract.tiff", contract, "image/tiff")})
    assert response.status_code == 401
    assert _error(response)[0] == "unauthorized"
    assert URL in anonymous.get("/openapi.json").json()["paths"]


def test_invalid_options_are_422(doc_client: TestClient, contract: bytes, detector: GroundTruthDetector) -> None:
    negative = _post(doc_client, contract, expect="-1")
    assert negative.status_code == 422
    kind, message = _error(negative)
    assert kind == "invalid_request" and "expect" in message
    many = doc_client.post(
        URL,
        files={"document": ("contract.tiff", contract, "image/tiff")},
        data={"claimed": [f"W{i:03d}" for i in range(9)]},  # the fixture's settings allow 8 files
    )
    assert many.status_code == 422
    assert _error(many)[0] == "too_many_claims"
    assert detector.calls == 0


def test_wrong_type_and_oversize_documents(doc_client: TestClient) -> None:
    wrong = _post(doc_client, b"hello", "notes.txt", "text/plain")
    assert wrong.status_code == 415
    kind, message = _error(wrong)
    assert kind == "unsupported_media_type" and "notes.txt" in message
    huge = _post(doc_client, b"%PDF-1.7\n" + b"\0" * MAX_DOCUMENT_BYTES, "scan.pdf", "application/pdf")
    assert huge.status_code == 413
    kind, message = _error(huge)
    assert kind == "payload_too_large" and str(MAX_DOCUMENT_BYTES) in message


@pytest.mark.parametrize(
    ("content", "name", "mime", "reason"),
    [
        (b"this is not a document", "scan.png", "image/png", "not a PDF or a readable image"),
        (b"%PDF-1.4\nno objects here", "scan.pdf", "application/pdf", "not a readable PDF"),
        (b"", "empty.pdf", "application/pdf", "empty input"),
    ],
)
def test_corrupt_documents_are_422(
    doc_client: TestClient, detector: GroundTruthDetector, content: bytes, name: str, mime: str, reason: str
) -> None:
    response = _post(doc_client, content, name, mime)
    assert response.status_code == 422, response.text
    kind, message = _error(response)
    assert kind == "InvalidDocumentError"
    assert message.startswith(f"{name}: ") and reason in message  # names the upload, not "<bytes>"
    assert detector.calls == 0


def test_too_many_pages_is_422(
    service_store: SignatureStore, api_key: str, doc_settings: ServiceSettings, pages: list[SyntheticPage]
) -> None:
    from dataclasses import replace

    detector = GroundTruthDetector(pages)
    settings = replace(doc_settings, max_document_pages=2)
    with _client(service_store, api_key, settings, detector=detector, cleaner=DarkInkCleaner()) as (client, _):
        response = _post(client, tiff_of(pages))
        assert response.status_code == 422
        kind, message = _error(response)
        assert kind == "InvalidDocumentError" and "3 pages exceed the limit of 2" in message
        assert detector.calls == 0


def test_missing_detector_model_is_a_500_without_details(
    service_store: SignatureStore, api_key: str, doc_settings: ServiceSettings, contract: bytes, tmp_path: Path
) -> None:
    from dataclasses import replace

    settings = replace(doc_settings, detector=tmp_path / "no-such-detector" / "model.json")
    with _client(service_store, api_key, settings) as (client, _):
        response = _post(client, contract)
        assert response.status_code == 500
        kind, message = _error(response)
        assert (kind, message) == ("server_error", "the service is misconfigured; see its log")
        assert "no-such-detector" not in response.text  # no server paths leak to the client


# --- the bundled detector ------------------------------------------------------------------------


def test_bundled_detector_serves_the_contract(
    service_store: SignatureStore, api_key: str, doc_settings: ServiceSettings, contract: bytes
) -> None:
    from dataclasses import replace

    from inkproof.document.detector import DEFAULT_MODEL_DIR, PageDetector

    if not (DEFAULT_MODEL_DIR / "model.json").is_file():
        pytest.fail(f"the bundled detector is missing: no {DEFAULT_MODEL_DIR / 'model.json'}")
    settings = replace(doc_settings, detector=None, clean_documents=False)
    with _client(service_store, api_key, settings) as (client, app):
        response = _post(client, contract, expect="2", initials_every_page="true", dated="true")
        assert response.status_code == 200, response.text
        rules = {r["rule"]: (r["verdict"], r["pages"]) for r in response.json()["rules"]}
        assert rules == {
            "signatures_present": ("pass", []),
            "initials_every_page": ("fail", [2]),
            "signatures_dated": ("fail", [3]),
        }
        # Loaded once and reused by later requests.
        loaded = app.state.document_models.detector()
        assert isinstance(loaded, PageDetector)
        assert _post(client, contract).status_code == 200
        assert app.state.document_models.detector() is loaded

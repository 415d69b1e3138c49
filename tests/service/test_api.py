from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A small PNG whose header claims 50,000 x 50,000 pixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def _files(paths: list[Path], field: str = "files") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (p.name, p.read_bytes(), "image/png")) for p in paths]


def _writer_images(root: Path, writer: str, kind: str = "genuine") -> list[Path]:
    return sorted((root / writer / kind).iterdir())


def _enroll(client: TestClient, root: Path, writer: str, count: int = 5) -> dict:
    response = client.post(f"/api/v1/writers/{writer}/references", files=_files(_writer_images(root, writer)[:count]))
    assert response.status_code == 200, response.text
    return response.json()


def _error_type(response: object) -> str:
    payload = response.json()  # type: ignore[attr-defined]
    assert set(payload) == {"error"}
    assert payload["error"]["message"]
    assert "Traceback" not in response.text  # type: ignore[attr-defined]
    return str(payload["error"]["type"])


def test_health_needs_no_key_and_everything_else_does(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    assert anonymous.get("/api/v1/health").json()["status"] == "ok"
    for method, path in (("get", "/api/v1/model"), ("get", "/api/v1/writers"), ("get", "/api/v1/reviews")):
        response = getattr(anonymous, method)(path)
        assert response.status_code == 401
        assert _error_type(response) == "unauthorized"
    bad = anonymous.get("/api/v1/writers", headers={"X-API-Key": "ink_not-a-key"})
    assert bad.status_code == 401
    bearer = anonymous.get("/api/v1/writers", headers={"Authorization": f"Bearer {client.headers['X-API-Key']}"})
    assert bearer.status_code == 200


def test_model_info_and_openapi(client: TestClient) -> None:
    info = client.get("/api/v1/model").json()
    assert info["name"] and info["thresholds"]["eer"] is not None
    schema = client.get("/openapi.json").json()
    assert "/api/v1/writers/{external_id}/verify" in schema["paths"]
    # Swagger UI and ReDoc load their scripts from a CDN: off unless settings.api_docs asks for them.
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_enroll_claim_identify_and_writers(client: TestClient, synthetic_root: Path) -> None:
    enrolled = _enroll(client, synthetic_root, "W001")
    assert enrolled["added"] == 5
    _enroll(client, synthetic_root, "W002")
    writers = client.get("/api/v1/writers").json()
    assert {w["external_id"] for w in writers} == {"W001", "W002"}
    detail = client.get("/api/v1/writers/W001").json()
    assert len(detail["references"]) == 5
    reference_id = detail["references"][0]["id"]
    image = client.get(f"/api/v1/writers/W001/references/{reference_id}/image")
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size[0] > 0

    query = _writer_images(synthetic_root, "W001")[5]
    claim = client.post("/api/v1/writers/W001/verify", files={"query": (query.name, query.read_bytes(), "image/png")})
    assert claim.status_code == 200, claim.text
    body = claim.json()
    assert body["decision"] in ("genuine", "forgery", "review")
    assert len(body["reference_scores"]) == 5
    assert body["reject_threshold"] <= body["accept_threshold"]

    found = client.post(
        "/api/v1/identify", files={"query": (query.name, query.read_bytes(), "image/png")}, data={"top": "2"}
    )
    assert found.status_code == 200, found.text
    candidates = found.json()["candidates"]
    assert len(candidates) == 2
    assert candidates[0]["external_id"] in ("W001", "W002")

    pair = client.post(
        "/api/v1/verify",
        files={
            "reference": ("a.png", _writer_images(synthetic_root, "W001")[0].read_bytes(), "image/png"),
            "query": ("b.png", query.read_bytes(), "image/png"),
        },
    )
    assert pair.status_code == 200
    assert pair.json()["decision"] in ("genuine", "forgery")

    assert client.delete("/api/v1/writers/W002").status_code == 204
    assert client.get("/api/v1/writers/W002").status_code == 404
    assert _error_type(client.get("/api/v1/writers/W002")) == "UnknownWriterError"


def test_review_queue_over_http(client: TestClient, service_store: object, synthetic_root: Path) -> None:
    from inkproof.store import SignatureStore

    assert isinstance(service_store, SignatureStore)
    _enroll(client, synthetic_root, "W003")
    forged = _writer_images(synthetic_root, "W003", "forged")[0]
    score = service_store.verify_claim("W003", forged).fused_score
    # A store whose band [reject, accept) contains that score sends the claim to review.
    reviewing = SignatureStore(
        service_store.db, service_store.verifier, accept_threshold=score + 0.5, reject_threshold=score - 0.5
    )
    from inkproof.service.app import create_app

    review_client = TestClient(create_app(client.app.state.settings, store=reviewing))  # type: ignore[attr-defined]
    review_client.headers["X-API-Key"] = client.headers["X-API-Key"]
    claim = review_client.post(
        "/api/v1/writers/W003/verify", files={"query": (forged.name, forged.read_bytes(), "image/png")}
    )
    assert claim.json()["decision"] == "review"
    pending = review_client.get("/api/v1/reviews").json()
    log_id = claim.json()["log_id"]
    assert log_id in [item["log_id"] for item in pending]
    query_png = review_client.get(f"/api/v1/reviews/{log_id}/query")
    assert query_png.headers["content-type"] == "image/png"
    decided = review_client.post(f"/api/v1/reviews/{log_id}", json={"decision": "forgery", "reviewer": "qa"})
    assert decided.status_code == 200
    assert decided.json()["reviewer_decision"] == "forgery"
    assert decided.json()["decision"] == "review"  # the automatic decision is kept beside the reviewer's
    again = review_client.post(f"/api/v1/reviews/{log_id}", json={"decision": "genuine", "reviewer": "qa"})
    assert again.status_code == 409
    invalid = review_client.post(f"/api/v1/reviews/{log_id}", json={"decision": "maybe", "reviewer": "qa"})
    assert invalid.status_code == 422


@pytest.mark.parametrize(
    ("content", "content_type", "status", "kind"),
    [
        (b"this is not an image", "image/png", 422, "InvalidImageError"),
        (b"", "image/png", 422, "InvalidImageError"),
        ("truncated", "image/png", 422, "InvalidImageError"),
        ("bomb", "image/png", 422, "InvalidImageError"),
        ("valid", "text/plain", 415, "unsupported_media_type"),
        ("huge", "image/png", 413, "payload_too_large"),
    ],
)
def test_malformed_uploads_get_json_4xx(
    client: TestClient, synthetic_root: Path, content: bytes | str, content_type: str, status: int, kind: str
) -> None:
    valid = _writer_images(synthetic_root, "W004")[0].read_bytes()
    payload = (
        {
            "truncated": valid[: len(valid) // 2],
            "bomb": _bomb(),
            "valid": valid,
            "huge": b"\x89PNG" + b"\0" * 2_100_000,
        }.get(content, content)
        if isinstance(content, str)
        else content
    )
    response = client.post(
        "/api/v1/verify",
        files={
            "reference": ("r.png", valid, "image/png"),
            "query": ("q.png", payload, content_type),
        },
    )
    assert response.status_code == status, response.text
    assert _error_type(response) == kind


def test_too_many_files_and_paths_are_not_opened(client: TestClient, synthetic_root: Path) -> None:
    images = _writer_images(synthetic_root, "W005")
    response = client.post("/api/v1/writers/W005/references", files=_files((images * 2)[:9]))
    assert response.status_code == 413
    assert _error_type(response) == "too_many_files"
    # A path or URL sent as a form field is not a file: refused, never opened.
    sneaky = client.post("/api/v1/verify", data={"reference": str(images[0]), "query": "http://example.com/x.png"})
    assert sneaky.status_code == 422
    assert _error_type(sneaky) == "invalid_request"


def test_quality_rejections_and_unknown_writers(client: TestClient) -> None:
    blank = _png(np.full((200, 500), 245, dtype=np.uint8))
    response = client.post("/api/v1/writers/W009/references", files=[("files", ("blank.png", blank, "image/png"))])
    assert response.status_code == 422
    assert "blank" in response.json()["error"]["message"]
    query = _png(np.full((200, 500), 245, dtype=np.uint8))
    missing = client.post("/api/v1/writers/nobody/verify", files={"query": ("q.png", query, "image/png")})
    assert missing.status_code in (404, 422)

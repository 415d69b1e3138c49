"""The REST service and web UI: a thin FastAPI layer over :class:`SignatureStore` and
:class:`Verifier`.

Uploads only: no endpoint opens a path or URL sent by a client. Each request is bounded (bytes
per file, files per request, pixels per image). Every endpoint except ``/api/v1/health`` and the
static UI needs an API key (``X-API-Key`` or ``Authorization: Bearer``); keys are stored hashed.
Errors are JSON ``{"error": {"type", "message"}}`` with a 4xx status, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from inkproof.errors import InkproofError, InvalidImageError, UnknownWriterError
from inkproof.store.database import open_database
from inkproof.store.repository import SignatureStore
from inkproof.verifier import Verifier

log = logging.getLogger("inkproof.service")

API = "/api/v1"


@dataclass(frozen=True)
class ServiceSettings:
    model: Path | None = None  # None: the bundled model
    database: str | None = None  # path or SQLAlchemy URL; None: $INKPROOF_DB or ./inkproof.db
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_files: int = 20
    require_api_key: bool = True
    device: str = "auto"
    accept_rule: str = "far_1"
    reject_rule: str = "eer"


class ServiceError(InkproofError):
    """A request the service refuses, with the HTTP status to answer."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def _status_of(error: InkproofError) -> int:
    """The HTTP status of a typed library error (first match wins; subclasses come first)."""
    from inkproof.artifact import ArtifactError
    from inkproof.errors import EmptyDatasetError
    from inkproof.store import (
        ApiKeyError,
        DatabaseError,
        IndexUnavailableError,
        InvalidWriterIdError,
        ModelRequiredError,
        NoReferencesError,
        QualityError,
        ReviewError,
        StoreModelMismatchError,
        UnknownReferenceError,
    )

    table: list[tuple[type[Exception], int]] = [
        (InvalidImageError, 422),
        (QualityError, 422),
        (InvalidWriterIdError, 422),
        (EmptyDatasetError, 422),
        (UnknownWriterError, 404),
        (UnknownReferenceError, 404),
        (NoReferencesError, 409),
        (StoreModelMismatchError, 409),
        (ReviewError, 409),
        (ApiKeyError, 400),
        (DatabaseError, 503),
        (ModelRequiredError, 500),
        (IndexUnavailableError, 500),
        (ArtifactError, 500),
    ]
    return next((status for kind, status in table if isinstance(error, kind)), 400)


class WriterCreate(BaseModel):
    external_id: str = Field(min_length=1, max_length=200)
    display_name: str | None = Field(default=None, max_length=200)


class ReviewDecision(BaseModel):
    decision: str = Field(pattern="^(genuine|forgery)$")
    reviewer: str = Field(min_length=1, max_length=200)


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"type": kind, "message": message}})


async def _read_upload(upload: UploadFile, settings: ServiceSettings) -> bytes:
    """The bytes of one uploaded image, refusing wrong content types and oversize files."""
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type and not (content_type.startswith("image/") or content_type == "application/octet-stream"):
        raise ServiceError(
            415, "unsupported_media_type", f"{upload.filename or 'upload'}: {content_type} is not an image"
        )
    data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ServiceError(
            413, "payload_too_large", f"{upload.filename or 'upload'} exceeds {settings.max_upload_bytes} bytes"
        )
    if not data:
        raise InvalidImageError(upload.filename or "upload", "empty input (0 bytes)")
    return data


def _check_image(data: bytes, name: str, settings: ServiceSettings) -> bytes:
    """Decode once with the service's pixel limit so bombs and corrupt files fail as 4xx."""
    from inkproof.imaging import load_image

    try:
        load_image(data, max_pixels=settings.max_pixels)
    except InvalidImageError as exc:
        raise InvalidImageError(name, exc.reason) from None
    return data


def _require_key(request: Request) -> None:
    """Every protected endpoint depends on this: an active API key in ``X-API-Key`` or a bearer token."""
    settings: ServiceSettings = request.app.state.settings
    if not settings.require_api_key:
        return
    key = request.headers.get("x-api-key")
    authorization = request.headers.get("authorization", "")
    if not key and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key or not request.app.state.store.check_api_key(key):
        raise ServiceError(401, "unauthorized", "a valid API key is required (X-API-Key header)")


# Module level, so FastAPI can resolve the annotation (this module uses postponed annotations).
Authorised = Annotated[None, Depends(_require_key)]


def create_app(settings: ServiceSettings | None = None, *, store: SignatureStore | None = None) -> FastAPI:
    """The FastAPI application (store and model are opened here, once)."""
    settings = settings or ServiceSettings()
    if store is None:
        verifier = Verifier(settings.model, device=settings.device, max_pixels=settings.max_pixels)
        store = SignatureStore(
            open_database(settings.database),
            verifier,
            accept_rule=settings.accept_rule,
            reject_rule=settings.reject_rule,
        )
    app = FastAPI(
        title="inkproof",
        summary="Offline handwritten signature verification",
        version=_version(),
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.store = store
    app.state.settings = settings

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.kind, str(exc))

    @app.exception_handler(InkproofError)
    async def library_error(_: Request, exc: InkproofError) -> JSONResponse:
        status = _status_of(exc)
        if status >= 500:
            log.error("server-side error: %s", exc)
            return _error(status, "server_error", "the service is misconfigured; see its log")
        return _error(status, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _error(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "internal_error", "internal error")

    async def images_of(files: Sequence[UploadFile]) -> list[bytes]:
        if len(files) > settings.max_files:
            raise ServiceError(413, "too_many_files", f"{len(files)} files sent; at most {settings.max_files}")
        return [
            _check_image(await _read_upload(f, settings), f.filename or f"file {i + 1}", settings)
            for i, f in enumerate(files)
        ]

    @app.get(f"{API}/health", tags=["service"])
    def health() -> dict[str, Any]:
        info = store.info()
        return {
            "status": "ok" if info.consistent else "degraded",
            "model": store.card.name,
            "store_consistent": info.consistent,
        }

    @app.get(f"{API}/model", tags=["service"])
    def model_info(_: Authorised) -> dict[str, Any]:
        card = store.verifier.card
        return {
            "name": card.name,
            "format": card.format,
            "input_size": list(card.input_size),
            "preprocess": card.preprocess,
            "head": card.head,
            "embedding_dim": card.embedding_dim,
            "thresholds": card.thresholds.to_dict() if card.thresholds else None,
            "accept_rule": settings.accept_rule,
            "reject_rule": settings.reject_rule,
            "notes": card.notes,
        }

    @app.post(f"{API}/verify", tags=["verification"])
    async def verify_pair(
        _: Authorised,
        reference: Annotated[UploadFile, File(description="Reference signature image")],
        query: Annotated[UploadFile, File(description="Questioned signature image")],
        threshold: Annotated[float | None, Form()] = None,
    ) -> dict[str, Any]:
        first, second = await images_of([reference, query])
        return store.verifier.verify(first, second, threshold=threshold).to_dict()

    @app.get(f"{API}/writers", tags=["writers"])
    def list_writers(_: Authorised) -> list[dict[str, Any]]:
        return [w.to_dict() for w in store.list_writers()]

    @app.post(f"{API}/writers", status_code=201, tags=["writers"])
    def create_writer(_: Authorised, body: WriterCreate) -> dict[str, Any]:
        return store.create_writer(body.external_id, body.display_name).to_dict()

    @app.get(f"{API}/writers/{{external_id}}", tags=["writers"])
    def show_writer(_: Authorised, external_id: str) -> dict[str, Any]:
        return store.get_writer(external_id).to_dict()

    @app.delete(f"{API}/writers/{{external_id}}", status_code=204, tags=["writers"])
    def delete_writer(_: Authorised, external_id: str) -> Response:
        store.delete_writer(external_id)
        return Response(status_code=204)

    @app.post(f"{API}/writers/{{external_id}}/references", tags=["writers"])
    async def enroll(
        _: Authorised,
        external_id: str,
        files: Annotated[list[UploadFile], File(description="Reference signature images")],
        display_name: Annotated[str | None, Form()] = None,
    ) -> dict[str, Any]:
        images = await images_of(files)
        return store.enroll(external_id, images, display_name=display_name).to_dict()

    @app.get(f"{API}/writers/{{external_id}}/references/{{reference_id}}/image", tags=["writers"])
    def reference_image(_: Authorised, external_id: str, reference_id: int) -> Response:
        detail = store.get_writer(external_id)
        if all(r.id != reference_id for r in detail.references):
            from inkproof.store import UnknownReferenceError

            raise UnknownReferenceError(reference_id)
        return Response(store.reference_image(reference_id), media_type="image/png")

    @app.post(f"{API}/writers/{{external_id}}/verify", tags=["verification"])
    async def verify_claim(
        _: Authorised,
        external_id: str,
        query: Annotated[UploadFile, File(description="Questioned signature image")],
        fusion: Annotated[Literal["mean", "max"], Form()] = "mean",
    ) -> dict[str, Any]:
        (image,) = await images_of([query])
        return store.verify_claim(external_id, image, fusion=fusion).to_dict()

    @app.post(f"{API}/identify", tags=["verification"])
    async def identify(
        _: Authorised,
        query: Annotated[UploadFile, File(description="Signature image to identify")],
        top: Annotated[int, Form(ge=1, le=100)] = 5,
    ) -> dict[str, Any]:
        (image,) = await images_of([query])
        return store.identify(image, top=top).to_dict()

    @app.get(f"{API}/reviews", tags=["review"])
    def pending_reviews(_: Authorised, limit: int = 50) -> list[dict[str, Any]]:
        return [item.to_dict() for item in store.pending_reviews(limit=min(max(limit, 1), 500))]

    @app.get(f"{API}/reviews/{{log_id}}/query", tags=["review"])
    def review_query(_: Authorised, log_id: int) -> Response:
        image = store.query_image(log_id)
        if image is None:
            raise ServiceError(404, "not_found", f"no query image kept for verification {log_id}")
        return Response(image, media_type="image/png")

    @app.post(f"{API}/reviews/{{log_id}}", tags=["review"])
    def decide_review(_: Authorised, log_id: int, body: ReviewDecision) -> dict[str, Any]:
        return store.review(log_id, body.decision, body.reviewer).to_dict()

    static = Path(str(resources.files("inkproof") / "service" / "static"))
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(static / "index.html")

    return app


def _version() -> str:
    from inkproof import __version__

    return __version__

"""The REST service and web UI: a thin FastAPI layer over :class:`SignatureStore` and
:class:`Verifier`.

Uploads only: no endpoint opens a path or URL sent by a client. Each request is bounded (bytes
per file, files per request, pixels per image). Every endpoint except ``/api/v1/health`` and the
static UI needs an API key (``X-API-Key`` or ``Authorization: Bearer``); keys are stored hashed.
Errors are JSON ``{"error": {"type", "message"}}`` with a 4xx status, never a traceback.

``POST /api/v1/documents/report`` runs :func:`~inkproof.document.report.build_report` on an
uploaded PNG/JPEG/TIFF/PDF (its own byte and page limits). The detector, cleaner and OCR reader are
loaded on first use, once per app, and shared by concurrent requests; the report runs in a worker
thread so the event loop keeps serving other requests.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from inkproof.errors import InkproofError, InvalidImageError, UnknownWriterError
from inkproof.store.database import open_database
from inkproof.store.repository import SignatureStore
from inkproof.verifier import Verifier

if TYPE_CHECKING:
    from inkproof.document.report import CropCleaner, FieldDetector, TextReader

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
    # Documents (POST /documents/report): scanned pages are far larger than signature images.
    detector: Path | None = None  # detector card; None: the bundled detector
    cleaner: Path | None = None  # cleaner card; None: the bundled cleaner
    clean_documents: bool = True  # clean signature crops before verifying them
    ocr: bool = False  # printed dates by OCR: seconds per page, so off unless asked for
    max_document_bytes: int = 30 * 1024 * 1024
    max_document_pages: int = 20


class ServiceError(InkproofError):
    """A request the service refuses, with the HTTP status to answer."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def _status_of(error: InkproofError) -> int:
    """The HTTP status of a typed library error (first match wins; subclasses come first)."""
    from inkproof.artifact import ArtifactError
    from inkproof.document.detector import DetectorModelMissingError
    from inkproof.document.pages import InvalidDocumentError
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
        (InvalidDocumentError, 422),
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
        (DetectorModelMissingError, 500),
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


DOCUMENT_TYPES = ("application/pdf", "application/octet-stream")


async def _read_document(upload: UploadFile, settings: ServiceSettings) -> bytes:
    """The bytes of an uploaded document (image or PDF) under the document byte limit."""
    from inkproof.document.pages import InvalidDocumentError

    name = upload.filename or "document"
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type and not (content_type.startswith("image/") or content_type in DOCUMENT_TYPES):
        raise ServiceError(415, "unsupported_media_type", f"{name}: {content_type} is not an image or a PDF")
    data = await upload.read(settings.max_document_bytes + 1)
    if len(data) > settings.max_document_bytes:
        raise ServiceError(413, "payload_too_large", f"{name} exceeds {settings.max_document_bytes} bytes")
    if not data:
        raise InvalidDocumentError(name, "empty input (0 bytes)")
    return data


class _LockedReader:
    """One OCR call at a time: RapidOCR does not promise that its pipeline is thread-safe."""

    def __init__(self, reader: TextReader) -> None:
        self._reader = reader
        self._lock = threading.Lock()

    def read(self, page: Any) -> Any:
        with self._lock:
            return self._reader.read(page)


class DocumentModels:
    """The document endpoint's detector, cleaner and OCR reader, each loaded on first use and
    then shared: onnxruntime sessions may run concurrently, so requests need no lock around them.
    Objects given here (tests, embedding applications) are used as they are and never closed."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        detector: FieldDetector | None = None,
        cleaner: CropCleaner | None = None,
    ) -> None:
        self._settings = settings
        self._detector = detector
        self._cleaner = cleaner
        self._reader: TextReader | None = None
        self._loaded: list[Any] = []  # what this object loaded, closed by close()
        self._lock = threading.Lock()

    def detector(self) -> FieldDetector:
        with self._lock:
            if self._detector is None:
                from inkproof.document.detector import PageDetector

                loaded = PageDetector.from_card(self._settings.detector)
                self._loaded.append(loaded)
                self._detector = loaded
            return self._detector

    def cleaner(self) -> CropCleaner | None:
        if not self._settings.clean_documents:
            return None
        with self._lock:
            if self._cleaner is None:
                from inkproof.document.cleaner import SignatureCleaner

                loaded = SignatureCleaner(self._settings.cleaner)
                self._loaded.append(loaded)
                self._cleaner = loaded
            return self._cleaner

    def text_reader(self) -> TextReader | None:
        if not self._settings.ocr:
            return None
        with self._lock:
            if self._reader is None:
                from inkproof.document.report import OcrUnavailableError, RapidOcrReader

                try:
                    self._reader = _LockedReader(RapidOcrReader())
                except OcrUnavailableError as exc:
                    log.error("OCR is switched on but unavailable: %s", exc)
                    raise ServiceError(500, "server_error", "the service is misconfigured; see its log") from None
            return self._reader

    def close(self) -> None:
        """Close what was loaded here; a later request loads it again (an app can be restarted)."""
        with self._lock:
            for model in self._loaded:
                model.close()
            if any(self._detector is model for model in self._loaded):
                self._detector = None
            if any(self._cleaner is model for model in self._loaded):
                self._cleaner = None
            self._loaded.clear()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


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


def create_app(
    settings: ServiceSettings | None = None,
    *,
    store: SignatureStore | None = None,
    detector: FieldDetector | None = None,
    cleaner: CropCleaner | None = None,
) -> FastAPI:
    """The FastAPI application (store and model are opened here, once; the document models on
    first use). ``detector`` and ``cleaner`` replace the ones ``settings`` name."""
    settings = settings or ServiceSettings()
    models = DocumentModels(settings, detector=detector, cleaner=cleaner)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            models.close()

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
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.document_models = models

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
        fusion: Annotated[Literal["mean", "max"] | None, Form()] = None,
        # Validation-calibrated accept threshold (see inkproof.claims.OPERATING_POINTS); default: the store's.
        operating_point: Annotated[Literal["eer", "far-skilled-1", "far-skilled-5"] | None, Form()] = None,
    ) -> dict[str, Any]:
        (image,) = await images_of([query])
        return store.verify_claim(external_id, image, fusion=fusion, operating_point=operating_point).to_dict()

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

    def run_report(
        data: bytes, name: str, claimed: list[str], expect: int | None, initials_every_page: bool, dated: bool
    ) -> dict[str, Any]:
        from inkproof.document.pages import InvalidDocumentError
        from inkproof.document.report import build_report, report_images

        for writer in claimed:  # an unknown writer fails before the document is processed
            store.get_writer(writer)
        try:
            report = build_report(
                data,
                detector=models.detector(),
                cleaner=models.cleaner(),
                store=store,
                claimed=claimed,
                expect=expect,
                initials_every_page=initials_every_page,
                dated=dated,
                text_reader=models.text_reader(),
                max_pages=settings.max_document_pages,
            )
        except InvalidDocumentError as exc:  # name the upload, not "<bytes: ...>"
            raise InvalidDocumentError(name, exc.reason) from None
        images = {file: _data_url(png) for file, png in report_images(report).items()}
        return {**report.to_dict(), "source": name, "images": images}

    @app.post(f"{API}/documents/report", tags=["documents"])
    async def document_report(
        _: Authorised,
        document: Annotated[UploadFile, File(description="PNG, JPEG, TIFF (every page) or PDF")],
        expect: Annotated[int | None, Form(ge=0, le=1000, description="Signatures the document must carry")] = None,
        claimed: Annotated[list[str] | None, Form(description="Writer who should have signed (repeat)")] = None,
        initials_every_page: Annotated[bool, Form(description="Check that every page is initialled")] = False,
        dated: Annotated[bool, Form(description="Check that a date lies next to every signature")] = False,
    ) -> dict[str, Any]:
        """Signatures and other fields on every page, each signature cleaned and identified (or
        matched to a claimed writer), and the rules' verdicts; ``images`` holds the annotated page
        thumbnails and the crops as PNG data URLs."""
        data = await _read_document(document, settings)
        writers = list(dict.fromkeys(claimed or ()))
        if len(writers) > settings.max_files:
            raise ServiceError(422, "too_many_claims", f"{len(writers)} claimed writers; at most {settings.max_files}")
        return await run_in_threadpool(
            run_report, data, document.filename or "document", writers, expect, initials_every_page, dated
        )

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

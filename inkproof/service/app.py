"""The REST service and web UI: a thin FastAPI layer over :class:`SignatureStore` and
:class:`Verifier`.

Uploads only: no endpoint opens a path or URL sent by a client. What bounds a request, in order:

- :class:`~inkproof.service.limits.RequestGuard` (pure ASGI, before FastAPI): the API key is
  checked from the headers before a body byte is read (``X-API-Key`` or ``Authorization:
  Bearer``; keys are stored hashed; ``/api/v1/health`` and the static UI need none), and the body
  is limited per endpoint while it streams; every response gets CSP / no-framing headers;
- bytes per file, files per request, pixels per image, formats (PNG, JPEG, TIFF, BMP, WebP);
  field rules (:mod:`inkproof.validation`) before anything reaches the database;
- decoding, inference and database writes run in a bounded thread pool (:class:`WorkPool`), never
  on the event loop; more waiting requests than the queue holds get 503 + Retry-After;
- ``POST /api/v1/documents/report`` runs in worker processes with a wall-clock and memory limit,
  at most ``max_document_jobs`` at once (:mod:`inkproof.service.jobs`).

Errors are JSON ``{"error": {"type", "message"}}`` with a 4xx status (503 when busy), never a
traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from inkproof.errors import InkproofError, InvalidImageError
from inkproof.service.errors import SERVER_ERROR_MESSAGE, ServiceError, clean_message, kind_of, status_of
from inkproof.service.jobs import DocumentJob, DocumentJobs, WorkerSpec, document_report
from inkproof.service.limits import BodyLimits, RequestGuard
from inkproof.store.database import open_database
from inkproof.store.repository import SignatureStore
from inkproof.store.review import MAX_REVIEW_NOTE
from inkproof.validation import MAX_ROW_ID, MAX_TEXT_LENGTH, clean_identifier, clean_text, clean_threshold
from inkproof.verifier import Verifier

if TYPE_CHECKING:
    from inkproof.document.report import CropCleaner, FieldDetector, TextReader

log = logging.getLogger("inkproof.service")

API = "/api/v1"
T = TypeVar("T")
# Multipart framing and small form fields on top of the files' own bytes.
FORM_OVERHEAD_BYTES = 64 * 1024


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
    # Decoding, inference and database work: threads, and requests allowed to wait for one.
    work_threads: int = 2
    work_queue: int = 64
    # Documents (POST /documents/report): scanned pages are far larger than signature images.
    detector: Path | None = None  # detector card; None: the bundled detector
    cleaner: Path | None = None  # cleaner card; None: the bundled cleaner
    clean_documents: bool = True  # clean signature crops before verifying them
    ocr: bool = False  # printed dates by OCR: seconds per page, so off unless asked for
    max_document_bytes: int = 30 * 1024 * 1024
    max_document_pages: int = 20
    max_document_jobs: int = 2  # documents processed at once; one more gets 503 + Retry-After
    document_timeout_s: float = 120.0  # wall clock per document; the worker is killed after it
    document_memory_bytes: int = 1024**3  # address space a job may add to its loaded worker
    document_processes: bool = True  # False: documents run in a thread (no kill, no memory cap)
    # Query images kept (review items; every claim with keep_claim_images) are forgotten after this
    # many days (None: kept).
    review_image_retention_days: float | None = 90.0
    # Keep every claim's query image (same retention), so that /claims/{id}/evidence can show
    # overlays for decided claims too; False keeps only review items' images.
    keep_claim_images: bool = True
    # Occlusion patches re-embedded per evidence view: bounds its cost (about 1 ms each on 2 cores).
    evidence_max_patches: int = 96
    api_docs: bool = False  # /docs and /redoc load Swagger/ReDoc from a CDN: off unless asked for
    # Identification index file: beside a SQLite store by default; a folder for PostgreSQL.
    index_dir: str | None = None
    load_index: bool = True  # load (or build) it at start, so the first identify does not wait

    @property
    def body_limits(self) -> BodyLimits:
        return BodyLimits(
            uploads=self.max_files * self.max_upload_bytes + FORM_OVERHEAD_BYTES,
            document=self.max_document_bytes + FORM_OVERHEAD_BYTES,
        )


class WorkPool:
    """A fixed number of threads for decoding, inference and database writes, and a bounded
    queue in front of them: the event loop only awaits, and an overload is a quick 503."""

    def __init__(self, threads: int, queue: int) -> None:
        self.threads = max(1, threads)
        self.capacity = self.threads + max(0, queue)
        self._executor: ThreadPoolExecutor | None = None  # started on first use, again after close()
        self._pending = 0
        self._lock = threading.Lock()

    async def run(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            if self._pending >= self.capacity:
                raise ServiceError(503, "busy", "the service is busy; try again shortly", retry_after=2)
            self._pending += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="inkproof-work")
            executor = self._executor
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, partial(work, *args, **kwargs))
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class WriterCreate(BaseModel):
    external_id: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    display_name: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)


class ReviewDecision(BaseModel):
    decision: str = Field(pattern="^(genuine|forgery)$")
    reviewer: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    note: str | None = Field(default=None, max_length=MAX_REVIEW_NOTE)


def _error(status: int, kind: str, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(
        status_code=status, content={"error": {"type": kind, "message": clean_message(message)}}, headers=headers
    )


IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff", "image/bmp", "image/x-ms-bmp", "image/webp")
DOCUMENT_TYPES = (*IMAGE_TYPES, "application/pdf")


def _content_type(upload: UploadFile) -> str:
    return (upload.content_type or "").split(";")[0].strip().lower()


async def _read_upload(upload: UploadFile, settings: ServiceSettings) -> bytes:
    """The bytes of one uploaded image, refusing wrong content types and oversize files."""
    content_type = _content_type(upload)
    name = clean_message(upload.filename or "upload")[:200]
    if content_type and content_type not in (*IMAGE_TYPES, "application/octet-stream"):
        raise ServiceError(
            415, "unsupported_media_type", f"{name}: {content_type} is not a PNG, JPEG, TIFF, BMP or WebP image"
        )
    data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ServiceError(413, "payload_too_large", f"{name} exceeds {settings.max_upload_bytes} bytes")
    if not data:
        raise InvalidImageError(name, "empty input (0 bytes)")
    return data


def _check_image(data: bytes, name: str, settings: ServiceSettings) -> np.ndarray:
    """Decode once, with the service's pixel limit and formats, so bombs, corrupt files and other
    formats (EPS, ...) fail as 4xx before the store sees them; the store gets the decoded array
    (not the bytes again). Whether a query holds ink is the library's check (see
    ``ink_errors_named`` in :func:`create_app`)."""
    from inkproof.imaging import SERVICE_IMAGE_FORMATS, load_image

    try:
        return load_image(data, max_pixels=settings.max_pixels, formats=SERVICE_IMAGE_FORMATS)
    except InvalidImageError as exc:
        raise InvalidImageError(name, exc.reason) from None


async def _read_document(upload: UploadFile, settings: ServiceSettings) -> bytes:
    """The bytes of an uploaded document (image or PDF) under the document byte limit."""
    from inkproof.document.pages import InvalidDocumentError

    name = clean_message(upload.filename or "document")[:200]
    content_type = _content_type(upload)
    if content_type and content_type not in (*DOCUMENT_TYPES, "application/octet-stream"):
        raise ServiceError(415, "unsupported_media_type", f"{name}: {content_type} is not an image or a PDF")
    data = await upload.read(settings.max_document_bytes + 1)
    if len(data) > settings.max_document_bytes:
        raise ServiceError(413, "payload_too_large", f"{name} exceeds {settings.max_document_bytes} bytes")
    if not data:
        raise InvalidDocumentError(name, "empty input (0 bytes)")
    if data[:5] != b"%PDF-":
        _check_document_image(data, name)
    return data


def _check_document_image(data: bytes, name: str) -> None:
    """Only the accepted raster formats reach the document pipeline (its own decoder would open
    GIF and PPM too); the header alone is read here."""
    import io

    from PIL import Image, UnidentifiedImageError

    from inkproof.document.pages import InvalidDocumentError
    from inkproof.imaging import SERVICE_IMAGE_FORMATS, open_image

    try:
        with open_image(io.BytesIO(data), SERVICE_IMAGE_FORMATS):
            pass
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InvalidDocumentError(name, "not a PDF or a readable image (PNG, JPEG, TIFF, BMP, WebP)") from None


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
                    raise ServiceError(500, "server_error", SERVER_ERROR_MESSAGE) from None
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


def _worker_spec(settings: ServiceSettings, store: SignatureStore) -> WorkerSpec:
    """What a document worker process needs to open the same store and models as this app."""
    engine = store.verifier.engine
    card_path = getattr(engine, "card_path", None)
    model = str(card_path) if card_path is not None else (str(settings.model) if settings.model else None)
    return WorkerSpec(
        database_url=store.db.engine.url.render_as_string(hide_password=False),
        model=model,
        max_pixels=settings.max_pixels,
        accept_rule=store.accept_rule,
        reject_rule=store.reject_rule,
        accept_threshold=store.custom_accept,
        reject_threshold=store.custom_reject,
        per_writer_min_references=store.per_writer_min_references,
        index_threshold=store.index_threshold,
        index_dir=str(store.index_dir) if store.index_dir is not None else None,
        detector=str(settings.detector) if settings.detector is not None else None,
        cleaner=str(settings.cleaner) if settings.cleaner is not None else None,
        clean_documents=settings.clean_documents,
        ocr=settings.ocr,
        max_pages=settings.max_document_pages,
        memory_bytes=settings.document_memory_bytes,
    )


class _Health:
    """``/health`` answers from a cached store check refreshed in its own thread: a database
    that is locked or slow makes the answer stale (and says so), never slow."""

    def __init__(self, store: SignatureStore) -> None:
        self._store = store
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._future: Any = None
        self._consistent: bool | None = None
        self._checked = 0.0

    def _refresh(self) -> None:
        consistent = self._store.info().consistent
        with self._lock:
            self._consistent, self._checked = consistent, time.monotonic()

    async def state(self, max_age_s: float = 2.0, wait_s: float = 0.1) -> tuple[bool | None, bool]:
        """(store consistent or None when unknown, whether that answer is fresh)."""
        with self._lock:
            fresh = time.monotonic() - self._checked < max_age_s
            if not fresh and (self._future is None or self._future.done()):
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="inkproof-health")
                self._future = self._executor.submit(self._refresh)  # wrapped per call: loops differ
            future = self._future
        if not fresh and future is not None:
            with suppress(Exception):
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), wait_s)
        with self._lock:
            return self._consistent, time.monotonic() - self._checked < max_age_s + wait_s

    def close(self) -> None:
        with self._lock:
            executor, self._executor, self._future = self._executor, None, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def _load_index(store: SignatureStore) -> None:
    try:
        status = store.load_index()
    except InkproofError as exc:  # e.g. a store of another model: identify reports it per request
        log.warning("identification index not loaded: %s", exc)
        return
    if status is not None:
        log.info(
            "identification index: %s, %d references, from %s in %.2f s",
            status.kind,
            status.references,
            status.source,
            status.seconds,
        )


SETTINGS_ENV = "INKPROOF_SERVICE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app for ``uvicorn --factory`` worker processes (``inkproof serve --workers N``): each
    worker opens the store and model itself, from settings passed as JSON in the environment."""
    values = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    for name in ("model", "detector", "cleaner"):
        if values.get(name) is not None:
            values[name] = Path(values[name])
    return create_app(ServiceSettings(**values))


def settings_to_environment(settings: ServiceSettings) -> str:
    """``settings`` as the JSON :func:`app_from_environment` reads."""
    values = {
        field.name: (str(value) if isinstance(value, Path) else value)
        for field in dataclasses.fields(settings)
        for value in [getattr(settings, field.name)]
    }
    return json.dumps(values)


def create_app(
    settings: ServiceSettings | None = None,
    *,
    store: SignatureStore | None = None,
    detector: FieldDetector | None = None,
    cleaner: CropCleaner | None = None,
) -> FastAPI:
    """The FastAPI application (store and model are opened here, once; the document models on
    first use). ``detector`` and ``cleaner`` replace the ones ``settings`` name; given objects
    cannot cross a process boundary, so documents then run in a worker thread."""
    settings = settings or ServiceSettings()
    models = DocumentModels(settings, detector=detector, cleaner=cleaner)

    if store is None:
        verifier = Verifier(settings.model, device=settings.device, max_pixels=settings.max_pixels)
        store = SignatureStore(
            open_database(settings.database),
            verifier,
            accept_rule=settings.accept_rule,
            reject_rule=settings.reject_rule,
            index_dir=settings.index_dir,
        )
    work = WorkPool(settings.work_threads, settings.work_queue)
    health_state = _Health(store)
    the_store = store

    def local_report(job: DocumentJob) -> dict[str, Any]:
        return document_report(
            job,
            store=the_store,
            detector=models.detector(),
            cleaner=models.cleaner(),
            text_reader=models.text_reader(),
            max_pages=settings.max_document_pages,
        )

    in_processes = settings.document_processes and detector is None and cleaner is None
    jobs = DocumentJobs(
        max_jobs=settings.max_document_jobs,
        timeout_s=settings.document_timeout_s,
        spec=partial(_worker_spec, settings, store) if in_processes else None,
        local=local_report,
    )

    async def purge_review_images() -> None:
        """Apply the retention limit now and then every hour while the app runs."""
        days = settings.review_image_retention_days
        if days is None:
            return
        while True:
            try:
                removed = await work.run(the_store.purge_query_images, dt.timedelta(days=days))
                if removed:
                    log.info("forgot %d review query images older than %g days", removed, days)
            except Exception:  # a busy or unreachable database: try again next time
                log.warning("review image retention could not run", exc_info=True)
            await asyncio.sleep(3600)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        retention = asyncio.ensure_future(purge_review_images())
        if settings.load_index:
            await asyncio.to_thread(_load_index, the_store)
        try:
            yield
        finally:
            with suppress(Exception):  # a late save only shortens the next start's catch-up
                await asyncio.to_thread(the_store.save_index)
            retention.cancel()
            with suppress(asyncio.CancelledError):
                await retention
            await asyncio.to_thread(jobs.close)
            models.close()
            work.close()
            health_state.close()

    app = FastAPI(
        title="inkproof",
        summary="Offline handwritten signature verification",
        version=_version(),
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.document_models = models
    app.state.document_jobs = jobs
    app.state.work = work
    app.add_middleware(
        RequestGuard,
        limits=settings.body_limits,
        check_key=store.check_api_key if settings.require_api_key else None,
        public=frozenset({f"{API}/health"}),
    )

    @app.exception_handler(InkproofError)
    async def library_error(_: Request, exc: InkproofError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500 and not (isinstance(exc, ServiceError) and status == 503):  # "busy" is for the client
            if not (isinstance(exc, ServiceError) and exc.kind == "server_error"):
                log.error("server-side error: %s", exc)
            return _error(status, "server_error", SERVER_ERROR_MESSAGE)
        return _error(status, kind_of(exc), str(exc), getattr(exc, "retry_after", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _error(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    from sqlalchemy.exc import DataError, OperationalError

    @app.exception_handler(OperationalError)
    async def database_busy(_: Request, exc: OperationalError) -> JSONResponse:
        # A lock held too long by another process, a lost connection: try again later.
        log.warning("database unavailable: %s", exc.orig or exc)
        return _error(503, "database_busy", "the database is busy or unavailable; try again shortly", 5)

    @app.exception_handler(DataError)
    async def database_refused(_: Request, exc: DataError) -> JSONResponse:
        # The field rules should have caught it; refused by the database all the same.
        log.warning("value refused by the database: %s", exc.orig or exc)
        return _error(422, "invalid_value", "a value was refused by the database")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "internal_error", "internal error")

    async def images_of(files: Sequence[UploadFile]) -> list[tuple[bytes, str]]:
        if len(files) > settings.max_files:
            raise ServiceError(413, "too_many_files", f"{len(files)} files sent; at most {settings.max_files}")
        return [
            (await _read_upload(f, settings), clean_message(f.filename or f"file {i + 1}")[:200])
            for i, f in enumerate(files)
        ]

    def checked(images: Sequence[tuple[bytes, str]]) -> list[np.ndarray]:
        return [_check_image(data, name, settings) for data, name in images]

    @contextlib.contextmanager
    def ink_errors_named(uploads: Sequence[tuple[str, np.ndarray]]) -> Iterator[None]:
        """The library refuses a blank query itself, in the same preprocessing pass that embeds
        it (a separate check here would blur every image twice per request); its error then
        names the upload instead of the decoded array. With several uploads the blank one is
        looked for only once a refusal has happened."""
        from inkproof.errors import NoInkError
        from inkproof.preprocess import ink_mask

        try:
            yield
        except NoInkError:
            blank = [name for name, gray in uploads if len(uploads) == 1 or not ink_mask(gray).any()]
            if not blank:
                raise
            raise NoInkError(blank[0]) from None

    def writer_id(value: str) -> str:
        return clean_identifier(value, "external_id")

    @app.get(f"{API}/health", tags=["service"])
    async def health() -> dict[str, Any]:
        consistent, fresh = await health_state.state()
        return {
            "status": "ok" if consistent and fresh else "degraded",
            "model": the_store.card.name,
            "store_consistent": consistent,
            "documents_running": jobs.running,
        }

    @app.get(f"{API}/model", tags=["service"])
    def model_info() -> dict[str, Any]:
        card = the_store.verifier.card
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
        reference: Annotated[UploadFile, File(description="Reference signature image")],
        query: Annotated[UploadFile, File(description="Questioned signature image")],
        threshold: Annotated[float | None, Form()] = None,
    ) -> dict[str, Any]:
        used = clean_threshold(threshold) if threshold is not None else None
        images = await images_of([reference, query])

        def run() -> dict[str, Any]:
            first, second = checked(images)
            with ink_errors_named([(images[0][1], first), (images[1][1], second)]):
                return the_store.verifier.verify(first, second, threshold=used).to_dict()

        return await work.run(run)

    @app.get(f"{API}/writers", tags=["writers"])
    def list_writers() -> list[dict[str, Any]]:
        return [w.to_dict() for w in the_store.list_writers()]

    @app.post(f"{API}/writers", status_code=201, tags=["writers"])
    async def create_writer(body: WriterCreate) -> dict[str, Any]:
        external = writer_id(body.external_id)
        name = clean_text(body.display_name, "display_name", allow_empty=True) if body.display_name else None
        return (await work.run(the_store.create_writer, external, name)).to_dict()

    @app.get(f"{API}/writers/{{external_id}}", tags=["writers"])
    def show_writer(external_id: str) -> dict[str, Any]:
        return the_store.get_writer(writer_id(external_id)).to_dict()

    @app.delete(f"{API}/writers/{{external_id}}", status_code=204, tags=["writers"])
    async def delete_writer(external_id: str) -> Response:
        await work.run(the_store.delete_writer, writer_id(external_id))
        return Response(status_code=204)

    @app.post(f"{API}/writers/{{external_id}}/references", tags=["writers"])
    async def enroll(
        external_id: str,
        files: Annotated[list[UploadFile], File(description="Reference signature images")],
        display_name: Annotated[str | None, Form(max_length=MAX_TEXT_LENGTH)] = None,
    ) -> dict[str, Any]:
        external = writer_id(external_id)
        name = clean_text(display_name, "display_name", allow_empty=True) if display_name else None
        images = await images_of(files)

        def run() -> dict[str, Any]:
            # Blank references are the quality checks' business: reported per image, not fatal.
            return the_store.enroll(external, checked(images), display_name=name).to_dict()

        return await work.run(run)

    @app.get(f"{API}/writers/{{external_id}}/references/{{reference_id}}/image", tags=["writers"])
    def reference_image(external_id: str, reference_id: Annotated[int, PathParam(ge=1, le=MAX_ROW_ID)]) -> Response:
        detail = the_store.get_writer(writer_id(external_id))
        if all(r.id != reference_id for r in detail.references):
            from inkproof.store import UnknownReferenceError

            raise UnknownReferenceError(reference_id)
        return Response(the_store.reference_image(reference_id), media_type="image/png")

    @app.post(f"{API}/writers/{{external_id}}/verify", tags=["verification"])
    async def verify_claim(
        external_id: str,
        query: Annotated[UploadFile, File(description="Questioned signature image")],
        fusion: Annotated[Literal["mean", "max"] | None, Form()] = None,
        # Validation-calibrated accept threshold (see inkproof.claims.OPERATING_POINTS); default: the store's.
        operating_point: Annotated[Literal["eer", "far-skilled-1", "far-skilled-5"] | None, Form()] = None,
    ) -> dict[str, Any]:
        external = writer_id(external_id)
        images = await images_of([query])

        def run() -> dict[str, Any]:
            (image,) = checked(images)
            with ink_errors_named([(images[0][1], image)]):
                result = the_store.verify_claim(
                    external,
                    image,
                    fusion=fusion,
                    operating_point=operating_point,
                    keep_query=settings.keep_claim_images,
                )
            return result.to_dict()

        return await work.run(run)

    @app.post(f"{API}/identify", tags=["verification"])
    async def identify(
        query: Annotated[UploadFile, File(description="Signature image to identify")],
        top: Annotated[int, Form(ge=1, le=100)] = 5,
    ) -> dict[str, Any]:
        images = await images_of([query])

        def run() -> dict[str, Any]:
            (image,) = checked(images)
            with ink_errors_named([(images[0][1], image)]):
                return the_store.identify(image, top=top).to_dict()

        return await work.run(run)

    @app.get(f"{API}/reviews", tags=["review"])
    def pending_reviews(limit: int = 50) -> list[dict[str, Any]]:
        return [item.to_dict() for item in the_store.pending_reviews(limit=min(max(limit, 1), 500))]

    @app.get(f"{API}/reviews/{{log_id}}/query", tags=["review"])
    def review_query(log_id: Annotated[int, PathParam(ge=1, le=MAX_ROW_ID)]) -> Response:
        image = the_store.query_image(log_id)
        if image is None:
            raise ServiceError(404, "not_found", f"no query image kept for verification {log_id}")
        return Response(image, media_type="image/png")

    @app.post(f"{API}/reviews/{{log_id}}", tags=["review"])
    async def decide_review(
        log_id: Annotated[int, PathParam(ge=1, le=MAX_ROW_ID)], body: ReviewDecision
    ) -> dict[str, Any]:
        reviewer = clean_text(body.reviewer, "reviewer")
        return (await work.run(the_store.review, log_id, body.decision, reviewer, body.note)).to_dict()

    @app.get(f"{API}/claims/{{log_id}}/evidence", tags=["review"], response_model=None)
    async def claim_evidence(
        log_id: Annotated[int, PathParam(ge=1, le=MAX_ROW_ID)],
        format: Literal["json", "html"] = "json",
    ) -> dict[str, Any] | HTMLResponse:
        """The evidence of a logged claim, rebuilt from the log (overlays, sensitivity, features,
        provenance, and whether the logged decision reproduces)."""

        def run() -> dict[str, Any] | str:
            from inkproof.evidence.report import render_html

            record = the_store.claim_evidence(log_id, max_patches=settings.evidence_max_patches)
            return render_html(record) if format == "html" else record.to_dict()

        result = await work.run(run)
        if isinstance(result, str):
            # A standalone page with inline images: its own CSP allows data: images and inline style only.
            return HTMLResponse(
                result,
                headers={"Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'"},
            )
        return result

    @app.get(f"{API}/log/export", tags=["review"], response_model=None)
    async def export_log(
        format: Literal["json", "csv"] = "json",
        since: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> Response:
        """The verification log for audits (no images): one entry per claim, oldest first."""
        from inkproof.store.audit import parse_since, write_log

        moment = parse_since(since)

        def run() -> str:
            return write_log(the_store.export_log(since=moment, limit=limit), format)

        text = await work.run(run)
        media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
        return Response(
            text, media_type=media, headers={"Content-Disposition": f"attachment; filename=inkproof-log.{format}"}
        )

    @app.post(f"{API}/documents/report", tags=["documents"])
    async def document_report_endpoint(
        request: Request,
        document: Annotated[UploadFile, File(description="PNG, JPEG, TIFF (every page), BMP, WebP or PDF")],
        expect: Annotated[int | None, Form(ge=0, le=1000, description="Signatures the document must carry")] = None,
        claimed: Annotated[list[str] | None, Form(description="Writer who should have signed (repeat)")] = None,
        initials_every_page: Annotated[bool, Form(description="Check that every page is initialled")] = False,
        dated: Annotated[bool, Form(description="Check that a date lies next to every signature")] = False,
    ) -> dict[str, Any]:
        """Signatures and other fields on every page, each signature cleaned and identified (or
        matched to a claimed writer), and the rules' verdicts; ``images`` holds the annotated page
        thumbnails and the crops as PNG data URLs."""
        writers = list(dict.fromkeys(writer_id(w) for w in claimed or ()))
        if len(writers) > settings.max_files:
            raise ServiceError(422, "too_many_claims", f"{len(writers)} claimed writers; at most {settings.max_files}")
        data = await _read_document(document, settings)
        name = clean_message(document.filename or "document")[:200]
        for writer in writers:  # an unknown writer fails before the document is processed
            await work.run(the_store.get_writer, writer)
        job = DocumentJob(data, name, tuple(writers), expect, initials_every_page, dated)
        return await jobs.run(job, request.is_disconnected)

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

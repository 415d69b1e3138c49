"""Document reports in worker processes, each job bounded in time, memory and number.

A PDF can be small and still take minutes and gigabytes to render (a content stream that inflates
to millions of strokes, pages of 3000 x 3000 points). Threads cannot be stopped, so a document job
runs in a worker process (``spawn``: no copy of the server's threads and locks) that

- loads the detector, cleaner, OCR reader and its own store connection once, then serves jobs;
- caps its address space (``RLIMIT_AS``) at what it needed after loading plus a per-job budget,
  so a bomb ends in a MemoryError (or the worker's death) instead of the host swapping;
- is killed (and replaced on the next job) when a job exceeds its wall-clock limit or when the
  client disconnects.

At most ``max_jobs`` documents run at once; one more is refused at once with 503 + Retry-After
rather than queued behind minutes of work.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from inkproof.errors import InkproofError
from inkproof.service.errors import SERVER_ERROR_MESSAGE, ServiceError, kind_of, status_of

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from inkproof.document.report import CropCleaner, FieldDetector, TextReader
    from inkproof.store.repository import SignatureStore

log = logging.getLogger("inkproof.service")

#: How long a fresh worker may take to import and load its models.
WORKER_START_TIMEOUT_S = 120.0
_POLL_S = 0.2


@dataclass(frozen=True)
class DocumentJob:
    data: bytes
    name: str
    claimed: tuple[str, ...]
    expect: int | None
    initials_every_page: bool
    dated: bool


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to rebuild the app's store and document models (plain values:
    they are pickled to the child)."""

    database_url: str
    model: str | None
    max_pixels: int
    accept_rule: str
    reject_rule: str
    accept_threshold: float | None
    reject_threshold: float | None
    per_writer_min_references: int
    index_threshold: int
    index_dir: str | None  # the app's saved identification index, so a worker loads it, not rebuilds it
    detector: str | None
    cleaner: str | None
    clean_documents: bool
    ocr: bool
    max_pages: int
    memory_bytes: int | None  # per-job address-space budget on top of the loaded worker
    threads: int = 1


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def document_report(
    job: DocumentJob,
    *,
    store: SignatureStore,
    detector: FieldDetector,
    cleaner: CropCleaner | None,
    text_reader: TextReader | None,
    max_pages: int,
) -> dict[str, Any]:
    """The JSON body of ``POST /documents/report`` (run in a worker process or thread)."""
    from inkproof.document.pages import InvalidDocumentError
    from inkproof.document.report import build_report, report_images

    for writer in job.claimed:  # an unknown writer fails before the document is processed
        store.get_writer(writer)
    try:
        report = build_report(
            job.data,
            detector=detector,
            cleaner=cleaner,
            store=store,
            claimed=list(job.claimed),
            expect=job.expect,
            initials_every_page=job.initials_every_page,
            dated=job.dated,
            text_reader=text_reader,
            max_pages=max_pages,
        )
        images = {file: _data_url(png) for file, png in report_images(report).items()}
    except InvalidDocumentError as exc:  # name the upload, not "<bytes: ...>"
        raise InvalidDocumentError(job.name, exc.reason) from None
    return {**report.to_dict(), "source": job.name, "images": images}


# --- the worker process --------------------------------------------------------------------------


def _virtual_size() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _limit_memory(budget: int | None) -> None:
    if budget is None:
        return
    import resource

    base = _virtual_size()
    if base is None:
        return
    limit = base + budget
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _error(error: BaseException) -> tuple[str, int, str, str]:
    status = status_of(error)
    if status >= 500:
        return ("error", status, "server_error", f"{type(error).__name__}: {error}")
    return ("error", status, kind_of(error), str(error))


def worker_main(conn: Connection, spec: WorkerSpec) -> None:  # pragma: no cover - runs in a child
    """Load once, say "ready", then answer jobs until told to stop (``None``) or killed."""
    os.environ.setdefault("OMP_NUM_THREADS", str(spec.threads))
    try:
        from inkproof.document.cleaner import SignatureCleaner
        from inkproof.document.detector import PageDetector
        from inkproof.store.database import open_database
        from inkproof.store.repository import SignatureStore
        from inkproof.verifier import Verifier

        verifier = Verifier(spec.model, device="cpu", threads=spec.threads, max_pixels=spec.max_pixels)
        store = SignatureStore(
            open_database(spec.database_url, migrate=False),
            verifier,
            accept_rule=spec.accept_rule,
            reject_rule=spec.reject_rule,
            accept_threshold=spec.accept_threshold,
            reject_threshold=spec.reject_threshold,
            per_writer_min_references=spec.per_writer_min_references,
            index_threshold=spec.index_threshold,
            index_dir=spec.index_dir,
        )
        detector = PageDetector.from_card(spec.detector, threads=spec.threads)
        cleaner = SignatureCleaner(spec.cleaner, threads=spec.threads) if spec.clean_documents else None
        reader = None
        if spec.ocr:
            from inkproof.document.report import RapidOcrReader

            reader = RapidOcrReader()
    except BaseException as exc:
        conn.send(_error(exc) if isinstance(exc, InkproofError) else ("error", 500, "server_error", repr(exc)))
        return
    _limit_memory(spec.memory_bytes)
    conn.send(("ready",))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            conn.send(
                (
                    "ok",
                    document_report(
                        job,
                        store=store,
                        detector=detector,
                        cleaner=cleaner,
                        text_reader=reader,
                        max_pages=spec.max_pages,
                    ),
                )
            )
        except MemoryError:
            conn.send(("memory",))
            return  # a worker that ran out of memory may be in any state: the parent starts another
        except InkproofError as exc:
            conn.send(_error(exc))
        except Exception as exc:
            conn.send(("error", 500, "server_error", "".join(traceback.format_exception(exc))))


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(5)
        finally:
            self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.process.join(2)
        except (OSError, EOFError, ValueError):
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


def _start_worker(spec: WorkerSpec) -> _Worker:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=worker_main, args=(child, spec), name="inkproof-document-worker", daemon=True)
    process.start()
    child.close()
    worker = _Worker(process, parent)
    if not parent.poll(WORKER_START_TIMEOUT_S):
        worker.kill()
        raise ServiceError(503, "worker_unavailable", "the document worker did not start in time", retry_after=10)
    try:
        message = parent.recv()
    except EOFError:
        worker.kill()
        log.error("the document worker exited while starting (exit code %s)", process.exitcode)
        raise ServiceError(500, "server_error", SERVER_ERROR_MESSAGE) from None
    if message[0] != "ready":
        worker.kill()
        log.error("the document worker could not start: %s", message[3])
        raise ServiceError(500, "server_error", SERVER_ERROR_MESSAGE)
    return worker


async def _readable(conn: Connection, timeout: float) -> bool:
    """Wait until ``conn`` has data (or EOF) without a thread: the event loop watches the pipe."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(ready, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


class DocumentJobs:
    """Runs document jobs in worker processes (``spec``) or, when the app was given model objects
    that cannot cross a process boundary, in a worker thread (``local``: no kill, same cap)."""

    def __init__(
        self,
        *,
        max_jobs: int,
        timeout_s: float,
        spec: Callable[[], WorkerSpec] | None,
        local: Callable[[DocumentJob], dict[str, Any]],
        retry_after_s: int = 5,
    ) -> None:
        self.max_jobs = max_jobs
        self.timeout_s = timeout_s
        self._spec = spec
        self._local = local
        self._retry_after = retry_after_s
        self._running = 0  # touched only on the event loop
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self.killed = 0  # workers killed for a timeout, memory or a disconnect (for tests and logs)

    @property
    def running(self) -> int:
        return self._running

    async def run(self, job: DocumentJob, disconnected: Callable[[], Awaitable[bool]]) -> dict[str, Any]:
        if self._running >= self.max_jobs:
            raise ServiceError(
                503,
                "busy",
                f"{self.max_jobs} documents are being processed; try again shortly",
                retry_after=self._retry_after,
            )
        self._running += 1
        try:
            if self._spec is None:
                return await anyio.to_thread.run_sync(self._local, job)
            return await self._in_worker(job, disconnected)
        finally:
            self._running -= 1

    async def _in_worker(self, job: DocumentJob, disconnected: Callable[[], Awaitable[bool]]) -> dict[str, Any]:
        assert self._spec is not None
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None or not worker.process.is_alive():
            if worker is not None:
                worker.kill()
            worker = await anyio.to_thread.run_sync(_start_worker, self._spec())
        keep = False
        try:
            await anyio.to_thread.run_sync(worker.conn.send, job)
            deadline = time.monotonic() + self.timeout_s
            while not await _readable(worker.conn, _POLL_S):
                if time.monotonic() > deadline:
                    self.killed += 1
                    raise ServiceError(
                        422,
                        "document_too_complex",
                        f"{job.name}: processing took longer than {self.timeout_s:g} s; the document was refused",
                    )
                if await disconnected():
                    self.killed += 1
                    log.info("client disconnected: document job for %s stopped", job.name)
                    raise ServiceError(499, "client_disconnected", "the client disconnected")
            try:
                message = await anyio.to_thread.run_sync(worker.conn.recv)
            except (EOFError, OSError):
                self.killed += 1
                log.warning("the document worker died on %s (exit code %s)", job.name, worker.process.exitcode)
                raise ServiceError(
                    422, "document_too_large", f"{job.name}: processing the document exceeded the worker's limits"
                ) from None
            if message[0] == "ok":
                keep = True
                return dict(message[1])
            if message[0] == "memory":
                self.killed += 1
                raise ServiceError(
                    422, "document_too_large", f"{job.name}: processing the document needs more memory than allowed"
                )
            _, status, kind, text = message
            keep = True
            if status >= 500:
                log.error("document job failed: %s", text)
                raise ServiceError(500, "server_error", SERVER_ERROR_MESSAGE)
            raise ServiceError(status, kind, text)
        finally:
            if keep:
                with self._lock:
                    self._idle.append(worker)
            else:
                await anyio.to_thread.run_sync(worker.kill)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

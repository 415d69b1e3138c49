"""``batch index-documents``: scanned documents indexed into an enrollment store in one stage,
**documents**, as ``inkproof document index`` indexes a folder.

Each actor loads the page detector, the crop cleaner and the store once and calls
:meth:`~inkproof.store.documents.DocumentStore.index_entry` for each document of its partitions,
the call ``document index`` makes, so a file gets the signatures a single index would. Documents
are unique in the store by the sha256 of their bytes and each is written in one transaction, so
the job is safe to kill anywhere: a partition killed half-way is run again on resume, and the
documents it had stored come back as ``existing`` (found by their bytes, the detector not run
again) instead of being stored twice. The same file twice in a manifest is stored once.

A file that cannot be read, or whose name is taken by other bytes, gets that error in its
``error`` column (status ``failed``) and the job goes on; anything else (the store unreachable,
another model in the store, a missing detector) stops the stage, and a rerun resumes it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.batch.common import (
    BatchJobError,
    BatchSummary,
    check_store,
    file_digest,
    model_identity,
    open_verifier,
    pyarrow_modules,
)
from inkproof.batch.manifest import DocumentsManifest, read_documents_manifest
from inkproof.batch.partitions import (
    begin_job,
    read_partitions,
    run_partitions,
    run_stage,
    write_partition,
)

#: Documents per partition: a page takes a single-threaded actor about 0.85 s here (detector,
#: cleaner, embedding, store; docs/benchmarks.md), so a partition is seconds of work to redo.
PARTITION_DOCUMENTS = 8
DOCUMENT_COLUMNS = ("document", "name", "status", "document_id", "pages", "signatures", "error", "seconds")


def _schema(pa: Any) -> Any:
    types = {name: pa.string() for name in DOCUMENT_COLUMNS}
    types.update(document_id=pa.int64(), pages=pa.int64(), signatures=pa.int64(), seconds=pa.float64())
    return pa.schema([(name, types[name]) for name in DOCUMENT_COLUMNS])


class DocumentsWorker:
    """Indexes partitions of documents; one store, detector and cleaner per actor."""

    def __init__(
        self,
        manifest: DocumentsManifest,
        folder: str,
        size: int,
        database: str,
        model: str | None,
        detector: str | None,
        clean: bool,
        options: dict[str, Any],
    ) -> None:
        self.manifest = manifest
        self.folder = Path(folder)
        self.size = size
        self.database = database
        self.model = model
        self.detector_card = detector
        self.clean = clean
        self.options = options
        self._loaded: tuple[Any, Any, Any] | None = None

    def _load(self) -> tuple[Any, Any, Any]:
        """Loaded with the first partition: a store or detector this worker cannot reach is then
        that partition's typed error, not a failed actor."""
        if self._loaded is None:
            from inkproof.document.cleaner import SignatureCleaner
            from inkproof.document.detector import PageDetector
            from inkproof.store import SignatureStore, open_database

            detector = PageDetector.from_card(self.detector_card, threads=1)
            cleaner = SignatureCleaner(threads=1) if self.clean else None
            store = SignatureStore(open_database(self.database), open_verifier(self.model))
            self._loaded = (store, detector, cleaner)
        return self._loaded

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_partitions(batch, self.run)

    def run(self, index: int) -> int:
        from sqlalchemy.exc import OperationalError

        from inkproof.store import DatabaseError

        pa, _ = pyarrow_modules()
        store, detector, cleaner = self._load()
        m = self.manifest
        start, stop = index * self.size, min(len(m.paths), (index + 1) * self.size)
        columns: dict[str, list[Any]] = {name: [] for name in DOCUMENT_COLUMNS}
        for row in range(start, stop):
            began = time.perf_counter()
            try:
                entry = store.documents.index_entry(
                    m.paths[row], detector, name=m.names[row], cleaner=cleaner, **self.options
                )
            except OperationalError as exc:  # the connection lost, a lock not granted: typed, for one line
                raise DatabaseError(f"the store failed: {exc.orig or exc}") from exc
            values = {
                "document": m.paths[row],
                "name": entry.name or m.names[row],
                "status": entry.status,
                "document_id": entry.document_id,
                "pages": entry.pages,
                "signatures": entry.signatures,
                "error": entry.error or "",
                "seconds": time.perf_counter() - began,
            }
            for name in DOCUMENT_COLUMNS:
                columns[name].append(values[name])
        return write_partition(self.folder, index, columns, _schema(pa))


def _detector_identity(detector: str | Path | None) -> tuple[str | None, str]:
    """(absolute card path or None for the bundled detector, its name and file digest for the job
    record). Loading it here fails early on a bad detector, before any worker starts."""
    from inkproof.artifact import card_path_for
    from inkproof.document.detector import PageDetector, default_model_path

    name = None if detector is None else str(Path(detector).resolve())
    loaded = PageDetector.from_card(name, threads=1)
    card = default_model_path() if name is None else card_path_for(Path(name))
    return name, f"{loaded.name}:{file_digest(Path(card))}"


def run_index_documents(
    documents: str | Path,
    out: str | Path,
    *,
    database: str | os.PathLike[str],
    root: str | Path | None = None,
    model: str | Path | None = None,
    detector: str | Path | None = None,
    clean: bool = True,
    dpi: float | None = None,
    max_pages: int | None = None,
    max_pixels: int | None = None,
    workers: int = 2,
    address: str | None = None,
    partition_documents: int = PARTITION_DOCUMENTS,
    progress: bool | Callable[[str, int, int], None] = False,
) -> BatchSummary:
    """Run (or resume) ``index-documents``: every document of ``documents`` (a folder or a
    manifest) indexed into the store at ``database``, one row per document in
    ``out/documents`` (:data:`DOCUMENT_COLUMNS`), on local Ray (``workers`` CPUs) or the cluster
    at ``address``; see the module docstring."""
    if partition_documents < 1:
        raise BatchJobError("partition size must be at least 1")
    pyarrow_modules()
    began = time.perf_counter()
    manifest = read_documents_manifest(documents, root=root)
    model_name, tag = model_identity(model)
    detector_name, detector_tag = _detector_identity(detector)
    url, shown = check_store(database, model_name, need_writers=False)
    options = {"dpi": dpi, "max_pages": max_pages, "max_pixels": max_pixels}
    folder, show = begin_job(
        out,
        {
            "job": "index-documents",
            "manifest_sha256": manifest.digest,
            "root": manifest.root,
            "database": shown,
            "model": tag,
            "detector": detector_tag,
            "clean": clean,
            **options,
            "partition_documents": partition_documents,
        },
        progress,
        address,
        workers,
    )
    stage = run_stage(
        "documents",
        folder / "documents",
        len(manifest.paths),
        partition_documents,
        DocumentsWorker,
        {
            "manifest": manifest,
            "folder": str(folder / "documents"),
            "size": partition_documents,
            "database": url,
            "model": model_name,
            "detector": detector_name,
            "clean": clean,
            "options": options,
        },
        workers,
        show,
    )
    return BatchSummary(
        "index-documents",
        str(folder),
        len(manifest.paths),
        len(set(manifest.paths)),
        (stage,),
        time.perf_counter() - began,
        workers,
        outcomes=_outcomes(folder / "documents"),
    )


def _outcomes(folder: Path) -> dict[str, int]:
    """Documents per status over every partition (earlier runs' too), and signatures found."""
    _, pq = pyarrow_modules()
    counts: Counter[str] = Counter()
    for part in sorted(folder.glob("part-*.parquet")):
        table = pq.read_table(part, columns=["status", "signatures"])
        counts.update(table.column("status").to_pylist())
        counts["signatures"] += sum(table.column("signatures").to_pylist())
    return {key: counts.get(key, 0) for key in ("indexed", "existing", "failed", "signatures")}


def read_indexed(out: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of an ``index-documents`` job (:data:`DOCUMENT_COLUMNS`), in manifest order."""
    yield from read_partitions(Path(out) / "documents")


__all__ = [
    "DOCUMENT_COLUMNS",
    "PARTITION_DOCUMENTS",
    "DocumentsWorker",
    "read_indexed",
    "run_index_documents",
]

"""``batch verify-claims``: claims (claimed writer, query image) verified against an enrollment
store in one stage, **claims**, each claim logged exactly once however often the job is killed and
resumed.

Each actor opens the store once (``SignatureStore(open_database(url), Verifier(model, threads=1))``)
and calls :meth:`~inkproof.store.SignatureStore.verify_claim` for the rows of its partitions, the
call the CLI and the service make, so a row gets the decision a single claim would. Every claim
carries the idempotency key ``<job digest>:<row>``, where the job digest is the sha256 of what
identifies the job: the manifest's sha256, the folder its paths start at, the store (URL without
password), the model and the operating point. A partition killed half-way is run again on resume;
the claims it had logged then come back from the log instead of being scored and logged a second
time (the store writes the key with the log row, in one transaction, under a unique index).

A row whose query cannot be used (unreadable, blank) or whose writer is unknown or has no
references gets that typed error in its ``error`` column and the job goes on; anything else (the
store unreachable, another model in the store) stops the stage, and a rerun resumes it.
"""

from __future__ import annotations

import hashlib
import json
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
    model_identity,
    open_verifier,
    pyarrow_modules,
)
from inkproof.batch.manifest import ClaimsManifest, read_claims_manifest
from inkproof.batch.partitions import (
    begin_job,
    read_partitions,
    run_partitions,
    run_stage,
    write_partition,
)

PARTITION_CLAIMS = 1024
CLAIM_COLUMNS = (
    "writer",
    "query",
    "decision",
    "status",
    "score",
    "accept_threshold",
    "reject_threshold",
    "method",
    "log_id",
    "label",
    "kind",
    "error",
)
_FLOATS = ("score", "accept_threshold", "reject_threshold")


def claim_key(job_digest: str, row: int) -> str:
    """The idempotency key of manifest row ``row`` (0-based) of a job: at most 76 characters."""
    return f"{job_digest}:{row}"


def _schema(pa: Any) -> Any:
    types = {name: pa.string() for name in CLAIM_COLUMNS}
    types.update({name: pa.float64() for name in _FLOATS}, log_id=pa.int64(), label=pa.int64())
    return pa.schema([(name, types[name]) for name in CLAIM_COLUMNS])


class ClaimsWorker:
    """Verifies partitions of claims against the store; one store and one verifier per actor."""

    def __init__(
        self,
        manifest: ClaimsManifest,
        folder: str,
        size: int,
        database: str,
        model: str | None,
        operating_point: str,
        job_digest: str,
    ) -> None:
        self.manifest = manifest
        self.folder = Path(folder)
        self.size = size
        self.database = database
        self.model = model
        self.operating_point = operating_point
        self.job_digest = job_digest
        self._store: Any = None

    @property
    def store(self) -> Any:
        """Opened with the first partition: a store this worker cannot reach is then that
        partition's typed error, not a failed actor."""
        if self._store is None:
            from inkproof.store import SignatureStore, open_database

            self._store = SignatureStore(open_database(self.database), open_verifier(self.model))
        return self._store

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_partitions(batch, self.run)

    def run(self, index: int) -> int:
        from sqlalchemy.exc import OperationalError

        from inkproof.errors import InvalidImageError, UnknownWriterError
        from inkproof.imaging import one_line
        from inkproof.store import DatabaseError, InvalidWriterIdError, NoReferencesError

        # What is wrong with one claim; any other error (the store, the model) stops the stage.
        row_errors = (InvalidImageError, UnknownWriterError, NoReferencesError, InvalidWriterIdError)
        pa, _ = pyarrow_modules()
        m = self.manifest
        start, stop = index * self.size, min(len(m.writers), (index + 1) * self.size)
        columns: dict[str, list[Any]] = {name: [] for name in CLAIM_COLUMNS}
        for row in range(start, stop):
            values: dict[str, Any] = {name: "" for name in CLAIM_COLUMNS}
            values.update({name: float("nan") for name in _FLOATS}, log_id=None)
            try:
                result = self.store.verify_claim(
                    m.writers[row],
                    m.queries[row],
                    operating_point=self.operating_point,
                    idempotency_key=claim_key(self.job_digest, row),
                )
            except row_errors as exc:
                values["error"] = f"{type(exc).__name__}: {one_line(exc)}"
            except OperationalError as exc:  # the connection lost, a lock not granted: typed, for one line
                raise DatabaseError(f"the store failed: {exc.orig or exc}") from exc
            else:
                values.update(
                    decision=result.decision,
                    status=result.status,
                    score=result.fused_score,
                    accept_threshold=result.accept_threshold,
                    reject_threshold=result.reject_threshold,
                    method=result.method,
                    log_id=result.log_id,
                )
            values.update(writer=m.writers[row], query=m.queries[row], label=m.labels[row], kind=m.kinds[row])
            for name in CLAIM_COLUMNS:
                columns[name].append(values[name])
        return write_partition(self.folder, index, columns, _schema(pa))


def run_claims(
    manifest_path: str | Path,
    out: str | Path,
    *,
    database: str | os.PathLike[str],
    root: str | Path | None = None,
    model: str | Path | None = None,
    operating_point: str = "far-skilled-5",
    workers: int = 2,
    address: str | None = None,
    partition_claims: int = PARTITION_CLAIMS,
    progress: bool | Callable[[str, int, int], None] = False,
) -> BatchSummary:
    """Run (or resume) ``verify-claims``: every claim of the manifest verified against the store
    at ``database`` and logged there once, results in ``out/claims`` (:data:`CLAIM_COLUMNS`), on
    local Ray (``workers`` CPUs) or the cluster at ``address``; see the module docstring."""
    from inkproof.claims import OPERATING_POINTS

    if operating_point not in OPERATING_POINTS:
        raise BatchJobError(f"operating point must be one of {', '.join(OPERATING_POINTS)}, got {operating_point!r}")
    if partition_claims < 1:
        raise BatchJobError("partition size must be at least 1")
    pyarrow_modules()
    began = time.perf_counter()
    manifest = read_claims_manifest(manifest_path, root=root)
    model_name, tag = model_identity(model)
    url, shown = check_store(database, model_name)
    identity = {
        "job": "verify-claims",
        "manifest_sha256": manifest.digest,
        "root": manifest.root,
        "database": shown,
        "model": tag,
        "operating_point": operating_point,
    }
    # The same claims against the same store, model and operating point are one job wherever its
    # folder is: running it again returns the logged results instead of logging them twice.
    job_digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()
    record = {**identity, "partition_claims": partition_claims, "idempotency_keys": f"{job_digest}:<row>"}
    folder, show = begin_job(out, record, progress, address, workers)
    stage = run_stage(
        "claims",
        folder / "claims",
        len(manifest.writers),
        partition_claims,
        ClaimsWorker,
        {
            "manifest": manifest,
            "folder": str(folder / "claims"),
            "size": partition_claims,
            "database": url,
            "model": model_name,
            "operating_point": operating_point,
            "job_digest": job_digest,
        },
        workers,
        show,
    )
    return BatchSummary(
        "verify-claims",
        str(folder),
        len(manifest.writers),
        len(set(manifest.queries)),
        (stage,),
        time.perf_counter() - began,
        workers,
        outcomes=_outcomes(folder / "claims"),
    )


def _outcomes(folder: Path) -> dict[str, int]:
    """Claims per decision, and rows with an error, over every partition (earlier runs' too)."""
    _, pq = pyarrow_modules()
    counts: Counter[str] = Counter()
    for part in sorted(folder.glob("part-*.parquet")):
        table = pq.read_table(part, columns=["decision", "error"])
        errors = table.column("error").to_pylist()
        counts.update(
            "error" if error else decision
            for decision, error in zip(table.column("decision").to_pylist(), errors, strict=True)
        )
    return {key: counts.get(key, 0) for key in ("genuine", "forgery", "review", "error")}


def read_claims(out: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of a ``verify-claims`` job (:data:`CLAIM_COLUMNS`), in manifest order."""
    yield from read_partitions(Path(out) / "claims")


__all__ = ["CLAIM_COLUMNS", "PARTITION_CLAIMS", "ClaimsWorker", "claim_key", "read_claims", "run_claims"]

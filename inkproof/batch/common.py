"""What every batch job shares: its error, its summaries, and pyarrow on demand."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inkproof.errors import InkproofError


class BatchJobError(InkproofError):
    """A batch job cannot start or go on: a bad manifest, Ray or pyarrow missing, an output folder
    that holds another job, or a stage that failed (its finished partitions are kept)."""


@dataclass(frozen=True)
class StageSummary:
    stage: str  # "embed", "score" or "claims"
    partitions: int
    computed: int  # partitions run now
    skipped: int  # partitions finished by an earlier run
    rows: int
    seconds: float


@dataclass(frozen=True)
class BatchSummary:
    job: str  # "embed", "verify" or "verify-claims"
    out: str
    items: int  # images (embed), pairs (verify) or claims (verify-claims)
    distinct_images: int
    stages: tuple[StageSummary, ...]
    seconds: float
    workers: int
    #: verify-claims: claims per decision (genuine, forgery, review) and rows with an error.
    outcomes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pyarrow_modules() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or a BatchJobError naming the extra to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise BatchJobError("batch jobs need pyarrow and ray: pip install 'inkproof[scale]'") from exc
    return pa, pq


def file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def model_identity(model: str | Path | None) -> tuple[str | None, str]:
    """(absolute model path or None for the bundled model, the model's name and file digests for
    the job record). Loading it here fails early on a bad model, before any worker starts."""
    from inkproof.verifier import Verifier

    name = None if model is None else str(Path(model).resolve())
    with Verifier(name) as probe:
        card = probe.card
        return name, f"{card.name}:{json.dumps(sorted(card.sha256.items()))}"


def open_verifier(model: str | None, threshold: float | None = None, rule: str = "eer") -> Any:
    """A worker's verifier: one thread, as each actor has one CPU."""
    from inkproof.verifier import Verifier

    return Verifier(model, threshold=threshold, rule=rule, threads=1)


def check_store(database: str | os.PathLike[str], model: str | None, *, need_writers: bool = True) -> tuple[str, str]:
    """(URL for the workers, URL without password for the job record) of a store that exists, is
    at this version's schema, holds this model's embeddings and (``need_writers``) has writers;
    without ``need_writers`` a new SQLite store is created (a job that fills it)."""
    from inkproof.store import SignatureStore, open_database, resolve_url

    url = resolve_url(database)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise BatchJobError("an in-memory store cannot be shared with the workers; give a file or a server URL")
        path = Path(str(url.database))
        if not path.is_file() and need_writers:
            raise BatchJobError(f"no store at {path}; enroll writers first (inkproof enroll)")
        if not path.parent.is_dir():  # a new store is created here, in a folder that must exist
            raise BatchJobError(f"no folder {path.parent} for the store {path.name}")
    # Opening migrates the schema once here, before the workers open it at the same moment.
    with open_database(url) as db, open_verifier(model) as verifier:
        info = SignatureStore(db, verifier).info()
    shown = url.render_as_string(hide_password=True)
    if info.reindex_in_progress:
        raise BatchJobError(f"the store at {shown} is being reindexed; finish `inkproof store reindex` first")
    if not info.consistent:
        raise BatchJobError(
            f"the store at {shown} holds embeddings of model {info.stored_model_tag!r}, not {info.model_tag!r}; "
            "give that model (--model) or run `inkproof store reindex`"
        )
    if need_writers and info.writers == 0:
        raise BatchJobError(f"the store at {shown} has no enrolled writers")
    return url.render_as_string(hide_password=False), shown


__all__ = [
    "BatchJobError",
    "BatchSummary",
    "StageSummary",
    "check_store",
    "file_digest",
    "model_identity",
    "open_verifier",
    "pyarrow_modules",
]

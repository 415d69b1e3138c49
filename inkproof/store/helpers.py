"""Small helpers the store's modules share (documents included): store metadata keys, image and
embedding bytes, writer id cleaning, and the numbered log of reference changes that keeps
identification indexes of other processes in step."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from inkproof.store.errors import (
    InvalidWriterIdError,
)
from inkproof.store.schema import (
    ReferenceChange,
)
from inkproof.validation import InvalidFieldError, clean_identifier, clean_text

META_MODEL_TAG = "model_tag"
META_EMBEDDING_DIM = "embedding_dim"
META_PREPROCESS_VERSION = "preprocess_version"
META_REINDEX = "reindex_in_progress"
# Changes whenever a reindex finishes: identification caches key on it.
META_EMBEDDINGS_VERSION = "embeddings_version"

MAX_EXTERNAL_ID_LENGTH = 255
# Key of the PostgreSQL advisory lock that numbers reference changes (held until commit).
_PG_CHANGES_LOCK = 0x696E6B63  # "inkc"


def encode_png(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # Level 1: scans with paper texture barely compress further, and level 6 is several times slower.
    Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def embedding_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def embedding_matrix(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32)
    return matrix.reshape(len(blobs), dim)


def snapshot_arrays(rows: Iterable[Any], dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, owner ids, embedding matrix) of ``(id, owner id, embedding bytes)`` rows, for a snapshot."""
    ids: list[int] = []
    owners: list[int] = []
    blobs: list[bytes] = []
    for row_id, owner_id, blob in rows:
        ids.append(row_id)
        owners.append(owner_id)
        blobs.append(blob)
    return np.asarray(ids, dtype=np.int64), np.asarray(owners, dtype=np.int64), embedding_matrix(blobs, dim)


def fuse_scores(scores: np.ndarray, fusion: str, axis: int | None = None) -> Any:
    return scores.max(axis=axis) if fusion == "max" else scores.mean(axis=axis)


def clean_external_id(external_id: str) -> str:
    """The same rules for creating and for looking up a writer (see :mod:`inkproof.validation`)."""
    try:
        return clean_identifier(external_id, "a writer's external id")
    except InvalidFieldError as exc:
        raise InvalidWriterIdError(str(exc)) from None


def clean_display_name(display_name: str | None) -> str | None:
    if display_name is None:
        return None
    return clean_text(display_name, "display_name", allow_empty=True) or None


def record_changes(session: Session, added: Sequence[int], deleted: Sequence[int]) -> None:
    """Number reference changes in the writing transaction, for identification indexes in other
    processes. On PostgreSQL an advisory lock held until commit makes the numbers commit in order
    (a reader never sees 11 before 10); SQLite serialises write transactions anyway."""
    if not added and not deleted:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CHANGES_LOCK})
    last = int(session.scalar(select(func.max(ReferenceChange.seq))) or 0)
    rows = [(int(i), True) for i in added] + [(int(i), False) for i in deleted]
    session.execute(
        insert(ReferenceChange),
        [{"seq": last + n, "reference_id": i, "added": flag} for n, (i, flag) in enumerate(rows, start=1)],
    )


def changes_counter(session: Session) -> int:
    """The number of the latest reference change (0 for none)."""
    return int(session.scalar(select(func.max(ReferenceChange.seq))) or 0)

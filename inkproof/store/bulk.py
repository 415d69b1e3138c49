"""Writers and references written straight through the schema, in bulk: for load tests and
benchmarks that need 100,000 references without enrolling 100,000 images.

Rows written here have no image and skip the quality checks; the store treats them like any
other reference. With ``changes`` they are numbered in the change log, as enrollment does, so
a saved identification index catches up with them; without, the index finds rows written
around the store and rebuilds itself from the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from inkproof.store.helpers import record_changes
from inkproof.store.schema import Reference, Writer, utcnow


def insert_references(
    session: Session,
    external_ids: Sequence[str],
    owners: Sequence[int] | np.ndarray,
    embeddings: np.ndarray,
    *,
    model_tag: str,
    preprocess_version: str,
    first_digest: int = 0,
    changes: bool = True,
) -> list[int]:
    """Create the writers ``external_ids`` and one reference per row of ``embeddings``, owned by
    ``external_ids[owners[row]]``; returns the new reference ids. Image digests are the numbers
    from ``first_digest`` on (unique, so that callers can add several blocks)."""
    now = utcnow()
    session.execute(insert(Writer), [{"external_id": e, "display_name": "", "created_at": now} for e in external_ids])
    ids = dict(session.execute(select(Writer.external_id, Writer.id).where(Writer.external_id.in_(external_ids))).all())
    dim = int(embeddings.shape[1])
    rows = [
        {
            "writer_id": ids[external_ids[int(owner)]],
            "image_sha256": f"{first_digest + row:064x}",
            "image_png": b"",
            "embedding": np.asarray(vector, dtype="<f4").tobytes(),
            "embedding_dim": dim,
            "model_tag": model_tag,
            "preprocess_version": preprocess_version,
            "quality_score": 1.0,
            "created_at": now,
        }
        for row, (owner, vector) in enumerate(zip(owners, embeddings, strict=True))
    ]
    digests = [row["image_sha256"] for row in rows]
    session.execute(insert(Reference), rows)
    reference_ids = list(session.scalars(select(Reference.id).where(Reference.image_sha256.in_(digests))))
    if changes:
        record_changes(session, reference_ids, [])
    return reference_ids

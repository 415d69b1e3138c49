"""Reindexing: every stored image re-embedded with the current model, batch by batch, before the
store's model tag switches."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from inkproof.imaging import load_image
from inkproof.store.helpers import (
    META_EMBEDDING_DIM,
    META_EMBEDDINGS_VERSION,
    META_MODEL_TAG,
    META_PREPROCESS_VERSION,
    META_REINDEX,
    embedding_bytes,
)
from inkproof.store.schema import (
    DocumentSignature,
    Reference,
    StoreMeta,
    utcnow,
)
from inkproof.store.scoring import ScoringMixin


class ReindexMixin(ScoringMixin):
    """Re-embeds references and document signatures with a new model."""

    # --- reindexing ------------------------------------------------------------------------

    def reindex(self, progress: bool | Callable[[int, int], None] = False, *, batch_size: int = 32) -> int:
        """Re-embed every stored image -- references and signatures found on documents -- with
        the current model; returns how many.

        Images are updated one batch per transaction; a ``reindex_in_progress`` mark refuses
        claims, identification, enrollment and document indexing and search meanwhile, and the
        store's model tag switches only once every image is done -- so a half-reindexed store is
        never taken as consistent. An interrupted reindex leaves the mark: run it again to finish.
        Document signatures lose the writer identified with the old model as they are re-embedded
        and are identified again with the new one at the end.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        report = self._progress_reporter(progress)
        marker = json.dumps({"model_tag": self.model_tag, "started_at": utcnow().isoformat()})
        self._write(lambda session: self._set_meta(session, META_REINDEX, marker))
        self._invalidate()
        tables: tuple[tuple[type[Reference] | type[DocumentSignature], Any], ...] = (
            (Reference, Reference.image_png),
            (DocumentSignature, DocumentSignature.crop_png),
        )

        def count(session: Session) -> int:
            return sum(int(session.scalar(select(func.count(table.id))) or 0) for table, _ in tables)

        total = self._read(count)
        done: set[tuple[str, int]] = set()
        dim = self.card.embedding_dim
        stale_only = False
        while True:
            for table, image in tables:

                def batch_after(cursor: int, table: Any = table, image: Any = image, stale: bool = stale_only) -> Any:
                    query = select(table.id, image).where(table.id > cursor).order_by(table.id).limit(batch_size)
                    if stale:
                        query = query.where((table.model_tag != self.model_tag) | (table.embedding_dim != dim))
                    return query

                cursor = 0
                while True:

                    def fetch(session: Session, after: int = cursor) -> list[tuple[int, bytes]]:
                        return [(int(row_id), bytes(png)) for row_id, png in session.execute(batch_after(after))]

                    rows = self._read(fetch)
                    if not rows:
                        break
                    self._reembed_batch(rows, table)
                    done.update((table.__tablename__, row_id) for row_id, _ in rows)
                    cursor = rows[-1][0]
                    report(len(done), max(total, len(done)))
            if self._write(self._finish_reindex):
                break
            # Images stored with the old model while this ran (possible on PostgreSQL): embed
            # those too, then try the switch again.
            stale_only = True
        self._invalidate()
        self.refit_writers()  # per-writer classifiers were fitted on the old model's embeddings
        if any(name == DocumentSignature.__tablename__ for name, _ in done):
            self.documents.identify_signatures()
        return len(done)

    def _reembed_batch(
        self, rows: Sequence[tuple[int, bytes]], table: type[Reference] | type[DocumentSignature] = Reference
    ) -> None:
        grays = [load_image(bytes(png), max_pixels=self._max_pixels) for _, png in rows]
        embeddings = self._embed(grays)
        version = self.card.preprocess_version
        # A writer score of the old model says nothing in the new one's scale.
        cleared = {"writer_id": None, "writer_score": None} if table is DocumentSignature else {}

        def work(session: Session) -> None:
            for (row_id, _), embedding in zip(rows, embeddings, strict=True):
                session.execute(
                    update(table)
                    .where(table.id == row_id)
                    .values(
                        embedding=embedding_bytes(embedding),
                        embedding_dim=int(embedding.shape[0]),
                        model_tag=self.model_tag,
                        preprocess_version=version,
                        **cleared,
                    )
                    .execution_options(synchronize_session=False)
                )

        self._write(work)

    def _finish_reindex(self, session: Session) -> bool:
        # Lock the model tag row first (PostgreSQL waits for enrollments holding it FOR SHARE),
        # then make sure no stored image is left with another model.
        session.execute(select(StoreMeta).where(StoreMeta.key == META_MODEL_TAG).with_for_update())
        for table in (Reference, DocumentSignature):
            left = session.scalar(
                select(func.count(table.id)).where(
                    (table.model_tag != self.model_tag) | (table.embedding_dim != self.card.embedding_dim)
                )
            )
            if left:
                return False
        self._set_meta(session, META_MODEL_TAG, self.model_tag)
        self._set_meta(session, META_EMBEDDING_DIM, str(self.card.embedding_dim))
        self._set_meta(session, META_PREPROCESS_VERSION, self.card.preprocess_version)
        self._set_meta(session, META_EMBEDDINGS_VERSION, uuid.uuid4().hex)
        session.execute(delete(StoreMeta).where(StoreMeta.key == META_REINDEX))
        return True

    @staticmethod
    def _progress_reporter(progress: bool | Callable[[int, int], None]) -> Callable[[int, int], None]:
        if callable(progress):
            return progress
        if progress:
            return lambda done, total: print(f"reindexed {done}/{total} stored signatures", file=sys.stderr)
        return lambda done, total: None

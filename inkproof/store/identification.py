"""Identification: the writers closest to a query, searched in the persistent reference index
(:mod:`inkproof.store.persistent_index`) kept in step with the database's reference changes."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inkproof.imaging import ImageSource, image_digest
from inkproof.store.base import StoreBase
from inkproof.store.errors import (
    StoreModelMismatchError,
)
from inkproof.store.helpers import (
    META_EMBEDDINGS_VERSION,
    changes_counter,
    snapshot_arrays,
)
from inkproof.store.index import (
    EmbeddingSnapshot,
    IndexKind,
    best_row_per_owner,
)
from inkproof.store.persistent_index import (
    SAVE_INTERVAL_S,
    IndexKey,
    IndexStatus,
    ReferenceIndex,
    changed_ids,
    index_path_for,
)
from inkproof.store.results import (
    Candidate,
    IdentificationResult,
)
from inkproof.store.schema import (
    Reference,
    ReferenceChange,
    Writer,
)

logger = logging.getLogger(__name__)

#: Threads that bring the identification index up to date while the request's thread embeds the
#: query (created on first use; the work is short and mostly waits on the database).
_INDEX_CHECKS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="inkproof-index-check")


class IdentificationMixin(StoreBase):
    """Identification and the persistent identification index (load, save, catch up, rank)."""

    # --- identification --------------------------------------------------------------------

    def _load_snapshot(self, session: Session) -> EmbeddingSnapshot:
        """Every reference embedding (ids, writer of each); read again only after a change."""
        meta = self._check_compatible(session)
        count, max_id = session.execute(select(func.count(Reference.id), func.max(Reference.id))).one()
        foreign = session.scalar(select(func.count(Reference.id)).where(Reference.model_tag != self.model_tag))
        if foreign:
            raise StoreModelMismatchError("(mixed)", self.model_tag)
        # Ids are never reused, so (count, max id) changes with every insert or delete; a finished
        # reindex changes the embeddings version.
        key = (self.model_tag, meta.get(META_EMBEDDINGS_VERSION), int(count or 0), max_id)
        query = select(Reference.id, Reference.writer_id, Reference.embedding).order_by(Reference.id)
        return self._snapshots.get(key, lambda: snapshot_arrays(session.execute(query), self.card.embedding_dim))

    def identify(self, query: ImageSource, *, top: int = 5, force: IndexKind | None = None) -> IdentificationResult:
        """The ``top`` writers whose references are closest to ``query``, each ranked by their
        best reference's score.

        Cosine and euclidean heads search an index: exact below ``index_threshold`` references,
        approximate (HNSW) above it; ``force`` picks one. Product heads cannot be indexed: every
        reference is scored with the model's head (exact). Reported scores are the head's.
        """
        if top < 1:
            raise ValueError("top must be at least 1")
        if force not in (None, "exact", "approximate"):
            raise ValueError(f"force must be None, 'exact' or 'approximate', got {force!r}")
        product = self.card.head not in ("cosine", "euclidean")
        if product and force == "approximate":
            raise ValueError("a product head cannot be indexed; identification scores every reference")
        if product:
            gray, vector = self._embed_query(query)

            def score_all(session: Session) -> tuple[tuple[Candidate, ...], str, int]:
                self._check_compatible(session)
                return self._rank_writers(vector, top, force, session=session)

            candidates, kind, n = self._read(score_all)
            return IdentificationResult(candidates, kind, n, self.model_tag, image_digest(gray))
        # One read session for the model check, the index's catch-up, the search and the writers'
        # names: each session costs a connection checkout and a transaction on the request's path.
        # The index is brought up to date on another thread while this one embeds the query: the
        # database's answer (a round trip on PostgreSQL) does not depend on the image.
        with self.db.session(write=False) as session:
            current = _INDEX_CHECKS.submit(self._current_index, session)
            try:
                gray, vector = self._embed_query(query)
            except BaseException:
                wait([current])  # the session is not closed under the other thread
                raise
            index = current.result()[0]
            candidates, kind, n = self._rank_writers(vector, top, force, index=index, session=session)
        return IdentificationResult(candidates, kind, n, self.model_tag, image_digest(gray))

    @property
    def index_path(self) -> Path | None:
        """Where the identification index is saved (see :func:`index_path_for`)."""
        return index_path_for(self.db.engine.url, self.model_tag, self.index_dir)

    def load_index(self) -> IndexStatus | None:
        """Bring the identification index up to date now (a service calls it at start, so that the
        first request does not wait): read from its file plus the changes since, else built from
        the database and saved. ``None`` for product heads, which cannot be indexed."""
        if self.card.head not in ("cosine", "euclidean"):
            return None
        started = time.perf_counter()
        index, source = self._read(self._current_index)
        return IndexStatus(
            index.kind, len(index), index.counter, source, time.perf_counter() - started, _str(self.index_path)
        )

    def save_index(self) -> bool:
        """Save the in-memory index if it changed since it was last saved (at shutdown)."""
        path = self.index_path
        with self._saver_lock:
            saver = self._saver
        if saver is not None:
            saver.join()
        with self._index_lock:
            index = self._index
        if index is None or path is None or not index.dirty:
            return False
        index.save(path)
        return True

    def _current_index(self, session: Session) -> tuple[ReferenceIndex, str]:
        """The identification index as of the database's latest change, and where it came from
        (all reads in ``session``)."""
        meta, counter = self._check_compatible_and_counter(session)
        key = IndexKey(self.model_tag, meta.get(META_EMBEDDINGS_VERSION, ""), self.card.head, self.card.embedding_dim)
        with self._index_lock:
            index, source = self._index, "memory"
            if index is None or index.key != key or index.counter > counter:
                index, source = None, "database"
                path = self.index_path
                if path is not None:
                    loaded = ReferenceIndex.load(path, key, exact_limit=self.index_threshold)
                    if loaded is not None and loaded.counter <= counter:
                        index, source = loaded, "file"
                if index is not None:
                    self._catch_up(session, index, counter)
                    source = "file+changes" if index.dirty else "file"
                    if not self._matches_table(session, index):
                        index = None  # rows written around the store: rebuild
                        source = "database"
                if index is None:
                    index = self._build_index(session, key)
                self._index = index
            elif index.counter < counter:
                self._catch_up(session, index, counter)
                source = "changes"
            index.exact_limit = self.index_threshold
            index.ensure_kind()
            path = self.index_path
            if path is not None and index.dirty:
                if source == "database":
                    index.save(path)  # after a full build: the next process should not build again
                elif time.monotonic() - index.saved_at >= SAVE_INTERVAL_S:
                    self._save_in_background(index, path)
            return index, source

    def _save_in_background(self, index: ReferenceIndex, path: Path) -> None:
        """Save the index on a thread of its own, one save at a time: at 100,000 references the
        file is about 50 MB, whose write and fsync do not belong on a request's path. A save lost
        to a crash loses nothing (a restart replays the changes since the file's counter)."""
        with self._saver_lock:
            if self._saver is not None and self._saver.is_alive():
                return

            def save() -> None:
                try:
                    index.save(path)
                except OSError as error:  # a full disk must not take identification down with it
                    logger.warning("could not save the identification index to %s: %s", path, error)

            self._saver = threading.Thread(target=save, name="inkproof-index-save", daemon=True)
            self._saver.start()

    def _build_index(self, session: Session, key: IndexKey) -> ReferenceIndex:
        # The counter first: rows read after it may include later changes, which are applied
        # again harmlessly (adds and deletes are idempotent).
        counter = changes_counter(session)
        foreign = session.scalar(select(func.count(Reference.id)).where(Reference.model_tag != self.model_tag))
        if foreign:
            raise StoreModelMismatchError("(mixed)", self.model_tag)
        query = select(Reference.id, Reference.writer_id, Reference.embedding).order_by(Reference.id)
        ids, owners, matrix = snapshot_arrays(session.execute(query), self.card.embedding_dim)
        index = ReferenceIndex(key, exact_limit=self.index_threshold)
        index.reset(ids, owners, matrix, counter)
        self._catch_up(session, index, changes_counter(session))
        return index

    def _catch_up(self, session: Session, index: ReferenceIndex, counter: int) -> None:
        """Apply the changes numbered after the index's counter (up to at least ``counter``)."""
        if index.counter >= counter:
            return
        rows = session.execute(
            select(ReferenceChange.seq, ReferenceChange.reference_id, ReferenceChange.added).where(
                ReferenceChange.seq > index.counter
            )
        ).all()
        added, deleted = changed_ids([(int(a), int(b), bool(c)) for a, b, c in rows])
        # An id added then deleted by a later change not yet read is simply absent here.
        query = (
            select(Reference.id, Reference.writer_id, Reference.embedding)
            .where(Reference.id.in_(added))
            .order_by(Reference.id)
        )
        arrays = snapshot_arrays(session.execute(query), self.card.embedding_dim)
        missing = sorted(set(added) - {int(i) for i in arrays[0]})
        index.apply(arrays, deleted + missing, max([counter, *(int(r[0]) for r in rows)]))

    @staticmethod
    def _matches_table(session: Session, index: ReferenceIndex) -> bool:
        count, max_id = session.execute(select(func.count(Reference.id), func.max(Reference.id))).one()
        ids = index.live()[0]
        return int(count or 0) == len(ids) and (max_id is None if not len(ids) else int(max_id) == int(ids.max()))

    def _rank_writers(
        self,
        vector: np.ndarray,
        top: int,
        force: IndexKind | None = None,
        *,
        session: Session,
        index: ReferenceIndex | None = None,
    ) -> tuple[tuple[Candidate, ...], str, int]:
        """The ``top`` writers closest to an embedding, the search kind and the references searched
        (``index``: the identification index, when the caller has just brought it up to date)."""
        product = self.card.head not in ("cosine", "euclidean")
        if index is None and not product:
            index = self._current_index(session)[0]
        if index is not None and force in (None, index.kind):
            n = len(index)
            found = index.best_per_owner(vector, top)
            kind: str = index.kind
            reference_ids = [r for r, _, _ in found]
            owners = [o for _, o, _ in found]
            matrix = np.stack([e for _, _, e in found]) if found else np.zeros((0, vector.shape[0]), np.float32)
        else:
            # Product heads score every reference; a forced other kind is built for the call.
            snapshot = self._load_snapshot(session)
            n = len(snapshot.ids)
            searched = None
            if not product and n:
                searched = self._snapshots.index(snapshot, self.card.head, threshold=self.index_threshold, force=force)
            kind = "head" if product else (searched.kind if searched is not None else "exact")
            rows = (
                best_row_per_owner(snapshot, vector, top, index=searched, score=self.verifier.score_embeddings)
                if n
                else []
            )
            reference_ids = [int(snapshot.ids[r]) for r in rows]
            owners = [int(snapshot.owners[r]) for r in rows]
            matrix = snapshot.matrix[rows]
        if n == 0 or not owners:
            return (), kind, n
        head_scores = self.verifier.score_embeddings(np.repeat(vector[None, :], len(owners), axis=0), matrix)
        ranked = sorted(
            zip(reference_ids, owners, head_scores, strict=True), key=lambda item: (-float(item[2]), item[0])
        )

        query_ = select(Writer.id, Writer.external_id, Writer.display_name).where(Writer.id.in_(owners))
        names = {wid: (ext, name) for wid, ext, name in session.execute(query_)}
        candidates: list[Candidate] = []
        for reference_id, writer_id, value in ranked:
            if writer_id not in names:  # deleted since the snapshot
                continue
            external, display = names[writer_id]
            candidates.append(
                Candidate(
                    rank=len(candidates) + 1,
                    writer_id=writer_id,
                    external_id=external,
                    display_name=display,
                    score=float(value),
                    reference_id=int(reference_id),
                )
            )
        return tuple(candidates), kind, n


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)

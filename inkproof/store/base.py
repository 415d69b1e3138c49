"""The base of :class:`~inkproof.store.repository.SignatureStore`: settings, transactions, model
consistency and images (see that class)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from inkproof.artifact import model_tag_of
from inkproof.claims import (
    OPERATING_POINTS,
    ClaimsCalibration,
    Cohort,
)
from inkproof.errors import UnknownWriterError
from inkproof.imaging import ImageSource, describe_source, load_image
from inkproof.store.database import Database, StoreError
from inkproof.store.errors import (
    ModelRequiredError,
    ReindexInProgressError,
    StoreModelMismatchError,
)
from inkproof.store.helpers import (
    META_EMBEDDING_DIM,
    META_MODEL_TAG,
    META_PREPROCESS_VERSION,
    META_REINDEX,
    changes_counter,
)
from inkproof.store.index import (
    SnapshotCache,
)
from inkproof.store.persistent_index import (
    EXACT_LIMIT,
    ReferenceIndex,
)
from inkproof.store.schema import (
    ReferenceChange,
    StoreMeta,
    Writer,
)

if TYPE_CHECKING:
    from inkproof.artifact import ModelCard
    from inkproof.store.documents import DocumentStore
    from inkproof.store.repository import SignatureStore
    from inkproof.verifier import Verifier


T = TypeVar("T")

_RULES = ("eer", "far_1", "far_0_1")
_WRITE_ATTEMPTS = 5


def _is_transient(exc: Exception) -> bool:
    """A lost race (unique key taken meanwhile) or a lock conflict: retrying may succeed."""
    if isinstance(exc, IntegrityError):
        return True
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in ("40001", "40P01", "55P03"):  # serialization, deadlock, lock
        return True
    return "database is locked" in str(orig or exc)


class StoreBase:
    """What every part of :class:`~inkproof.store.repository.SignatureStore` stands on: its settings,
    the model, transactions, the model consistency of the stored embeddings, image loading and
    embedding, and lookups the parts share."""

    def __init__(
        self,
        database: Database,
        verifier: Verifier | None,
        *,
        accept_rule: str = "far_1",
        reject_rule: str = "eer",
        per_writer_min_references: int = 5,
        accept_threshold: float | None = None,
        reject_threshold: float | None = None,
        index_threshold: int = EXACT_LIMIT,
        operating_point: str = "far-skilled-5",
        keep_claim_images: bool = False,
        index_dir: str | Path | None = None,
    ) -> None:
        for name, rule in (("accept_rule", accept_rule), ("reject_rule", reject_rule)):
            if rule not in _RULES:
                raise ValueError(f"{name} must be one of {_RULES}, got {rule!r}")
        if operating_point not in OPERATING_POINTS:
            raise ValueError(f"operating_point must be one of {tuple(OPERATING_POINTS)}, got {operating_point!r}")
        if per_writer_min_references < 2:
            raise ValueError("per_writer_min_references must be at least 2 (leave-one-out needs two)")
        self.db = database
        self._verifier = verifier
        self.accept_rule = accept_rule
        self.reject_rule = reject_rule
        self.per_writer_min_references = per_writer_min_references
        self.custom_accept = None if accept_threshold is None else float(accept_threshold)
        self.custom_reject = None if reject_threshold is None else float(reject_threshold)
        self.index_threshold = index_threshold
        self.operating_point = operating_point
        # Keep every claim's query image (not only review items) so that its evidence can be
        # rebuilt from the log; forgotten with the review images (purge_query_images).
        self.keep_claim_images = keep_claim_images
        self._model_tag = model_tag_of(verifier.card) if verifier is not None else None
        self._claims_lock = threading.Lock()
        self._claims_loaded = False
        self._claims: tuple[ClaimsCalibration, Cohort | None] | None = None
        self._documents_lock = threading.Lock()
        self._snapshots = SnapshotCache()  # reference embeddings (ids, writer of each)
        self.index_dir = index_dir
        self._index: ReferenceIndex | None = None  # the persistent identification index
        self._index_lock = threading.Lock()
        self._saver: threading.Thread | None = None  # the background save of the index, if one runs
        self._saver_lock = threading.Lock()
        self._documents: DocumentStore | None = None

    @property
    def documents(self) -> DocumentStore:
        """Documents and the signatures found on them (see :mod:`inkproof.store.documents`)."""
        with self._documents_lock:
            if self._documents is None:
                from inkproof.store.documents import DocumentStore

                self._documents = DocumentStore(cast("SignatureStore", self))
            return self._documents

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            raise ModelRequiredError("this needs a model: open the store with a verifier (--model)")
        return self._verifier

    @property
    def model_tag(self) -> str:
        """``<model name>:<embedder sha256[:12]>`` of the verifier (see :func:`model_tag_of`)."""
        if self._model_tag is None:
            raise ModelRequiredError("this needs a model: open the store with a verifier (--model)")
        return self._model_tag

    @property
    def card(self) -> ModelCard:
        return self.verifier.card

    @property
    def _max_pixels(self) -> int:
        return int(getattr(self.verifier.engine, "max_pixels", 64_000_000))

    # --- transactions ----------------------------------------------------------------------

    def _retry(self, work: Callable[[], T]) -> T:
        """Run ``work`` (which opens its own sessions) again when it lost a race."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return work()
            except (IntegrityError, OperationalError) as exc:
                if attempt + 1 == _WRITE_ATTEMPTS or not _is_transient(exc):
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def _write(self, work: Callable[[Session], T]) -> T:
        def attempt() -> T:
            with self.db.session() as session:
                return work(session)

        return self._retry(attempt)

    def _read(self, work: Callable[[Session], T]) -> T:
        with self.db.session(write=False) as session:
            return work(session)

    # --- model consistency -----------------------------------------------------------------

    def _meta(self, session: Session, *, lock: bool = False) -> dict[str, str]:
        query = select(StoreMeta.key, StoreMeta.value)
        if lock:
            # PostgreSQL: FOR SHARE holds off the final switch of a reindex until this transaction
            # ends (SQLite ignores it: its write transactions are serialised anyway).
            query = query.with_for_update(read=True)
        return {key: value for key, value in session.execute(query)}

    def _check_compatible(self, session: Session, *, lock: bool = False) -> dict[str, str]:
        return self._compatible(self._meta(session, lock=lock))

    def _check_compatible_and_counter(self, session: Session) -> tuple[dict[str, str], int]:
        """:meth:`_check_compatible` and the latest reference change's number, read in one
        statement: identification asks for both on every request, and on PostgreSQL each
        statement costs a round trip."""
        latest = select(func.max(ReferenceChange.seq)).scalar_subquery()
        rows = session.execute(select(StoreMeta.key, StoreMeta.value, latest)).all()
        if not rows:  # a store nothing was added to yet has no metadata rows to carry the counter
            return self._compatible({}), changes_counter(session)
        return self._compatible({key: value for key, value, _ in rows}), int(rows[0][2] or 0)

    def _compatible(self, meta: dict[str, str]) -> dict[str, str]:
        if META_REINDEX in meta:
            raise ReindexInProgressError(
                meta.get(META_MODEL_TAG, ""),
                self.model_tag,
                "the store is being reindexed (or a reindex was interrupted), so its embeddings may "
                "mix two models; run `inkproof store reindex` to finish it",
            )
        stored = meta.get(META_MODEL_TAG)
        if stored is not None and stored != self.model_tag:
            raise StoreModelMismatchError(stored, self.model_tag)
        return meta

    def _claim_model(self, session: Session, meta: dict[str, str]) -> None:
        """Record this model as the store's the first time references are added."""
        if META_MODEL_TAG in meta:
            return
        values = {
            META_MODEL_TAG: self.model_tag,
            META_EMBEDDING_DIM: str(self.card.embedding_dim),
            META_PREPROCESS_VERSION: self.card.preprocess_version,
        }
        try:
            with session.begin_nested():
                session.add_all([StoreMeta(key=key, value=value) for key, value in values.items()])
        except IntegrityError:  # another process claimed it first: it must be the same model
            self._check_compatible(session)

    def _set_meta(self, session: Session, key: str, value: str) -> None:
        row = session.get(StoreMeta, key)
        if row is None:
            session.add(StoreMeta(key=key, value=value))
        else:
            row.value = value
        session.flush()

    # --- images ----------------------------------------------------------------------------

    def _load(self, source: ImageSource) -> np.ndarray:
        return load_image(source, max_pixels=self._max_pixels)

    def _embed(self, grays: Sequence[np.ndarray]) -> np.ndarray:
        return self._checked(np.asarray(self.verifier.embed_many(list(grays)), dtype=np.float32), len(grays))

    def _embed_query(self, source: ImageSource) -> tuple[np.ndarray, np.ndarray]:
        """(gray, embedding) of a query with ink, refused with :class:`NoInkError` otherwise
        (:meth:`inkproof.Verifier.embed_query`: one preprocessing pass does both)."""
        gray = self._load(source)
        vector = np.asarray(self.verifier.embed_query(gray, describe_source(source)), dtype=np.float32)
        return gray, self._checked(vector[None], 1)[0]

    def _checked(self, embeddings: np.ndarray, count: int) -> np.ndarray:
        if embeddings.shape != (count, self.card.embedding_dim):
            raise StoreError(
                f"the model returned embeddings of shape {embeddings.shape}, "
                f"expected ({count}, {self.card.embedding_dim})"
            )
        return embeddings

    # --- writers ---------------------------------------------------------------------------

    def _find_writer(self, session: Session, external_id: str) -> Writer:
        writer = session.scalar(select(Writer).where(Writer.external_id == external_id))
        if writer is None:
            raise UnknownWriterError(external_id)
        return writer

    def _invalidate(self) -> None:
        self._snapshots.invalidate()

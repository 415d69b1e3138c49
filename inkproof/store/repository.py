"""The enrollment store: writers, their reference signatures, claims against them, human review.

:class:`SignatureStore` joins a :class:`~inkproof.store.database.Database` and a
:class:`~inkproof.verifier.Verifier`. Every public method opens its own short sessions, so one
store object can serve many threads. Images are decoded, checked and embedded *before* any
transaction starts; each change is then written in a single transaction, so a process killed at
any moment leaves a writer either absent or with its complete reference set.

Embeddings are only comparable when they come from the same model: the store records the model
tag of its embeddings and refuses to mix in another model's (:class:`StoreModelMismatchError`)
until :meth:`SignatureStore.reindex` has re-embedded every stored reference image.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import io
import json
import random
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from PIL import Image
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, defer

from inkproof.artifact import model_tag_of
from inkproof.claims import (
    OPERATING_POINTS,
    ClaimsCalibration,
    ClaimsConfigError,
    Cohort,
    WriterModel,
    cosine_matrix,
    fit_writer_model,
    flag_outliers,
    load_cohort,
    score_claim,
    settings_for,
)
from inkproof.errors import InvalidImageError, NoInkError, UnknownWriterError
from inkproof.imaging import ImageSource, describe_source, image_digest, load_image
from inkproof.preprocess import ink_mask
from inkproof.store.database import Database, StoreError
from inkproof.store.index import (
    EmbeddingSnapshot,
    IndexKind,
    SnapshotCache,
    best_row_per_owner,
)
from inkproof.store.persistent_index import (
    EXACT_LIMIT,
    SAVE_INTERVAL_S,
    IndexKey,
    IndexStatus,
    ReferenceIndex,
    changed_ids,
    index_path_for,
)
from inkproof.store.quality import assess
from inkproof.store.schema import (
    ApiKey,
    DocumentSignature,
    Reference,
    ReferenceChange,
    StoreMeta,
    VerificationLog,
    Writer,
    WriterScoring,
    utcnow,
)
from inkproof.validation import InvalidFieldError, clean_identifier, clean_row_id, clean_text

if TYPE_CHECKING:
    from inkproof.artifact import ModelCard
    from inkproof.evidence.record import EvidenceRecord
    from inkproof.store.documents import DocumentStore
    from inkproof.verifier import Verifier

T = TypeVar("T")

Fusion = Literal["mean", "max"]
FUSIONS: tuple[str, ...] = ("mean", "max")
ClaimDecision = Literal["genuine", "forgery", "review"]
ReviewDecision = Literal["genuine", "forgery"]
QualityPolicy = Literal["reject", "warn"]
_RULES = ("eer", "far_1", "far_0_1")

META_MODEL_TAG = "model_tag"
META_EMBEDDING_DIM = "embedding_dim"
META_PREPROCESS_VERSION = "preprocess_version"
META_REINDEX = "reindex_in_progress"
# Changes whenever a reindex finishes: identification caches key on it.
META_EMBEDDINGS_VERSION = "embeddings_version"

#: Percentile of a writer's leave-one-out reference scores used as that writer's accept threshold.
WRITER_PERCENTILE = 5.0
MAX_REVIEW_NOTE = 2000
API_KEY_PREFIX = "ink_"
MAX_EXTERNAL_ID_LENGTH = 255
_WRITE_ATTEMPTS = 5
# Key of the PostgreSQL advisory lock that numbers reference changes (held until commit).
_PG_CHANGES_LOCK = 0x696E6B63  # "inkc"


# --- errors ------------------------------------------------------------------------------------


class StoreModelMismatchError(StoreError):
    """The store's embeddings were made by another model than the verifier's."""

    def __init__(self, stored: str, current: str, detail: str = "") -> None:
        self.stored = stored
        self.current = current
        super().__init__(
            detail
            or (
                f"the store holds embeddings of model {stored!r} but the verifier runs {current!r}; "
                "run `inkproof store reindex` with the new model to re-embed the stored references"
            )
        )


class ReindexInProgressError(StoreModelMismatchError):
    """A reindex is running (or was interrupted): the embeddings are a mix of two models."""


class QualityError(StoreError, ValueError):
    """No submitted reference image could be used; ``outcomes`` says why for each one."""

    def __init__(self, message: str, outcomes: Sequence[ImageOutcome] = ()) -> None:
        self.outcomes = tuple(outcomes)
        super().__init__(message)


class ReviewError(StoreError, ValueError):
    """A review action that is not allowed (unknown log, not pending, bad decision)."""


class NoReferencesError(StoreError, ValueError):
    """The writer exists but has no reference signatures to compare with."""


class UnknownReferenceError(StoreError, KeyError):
    def __init__(self, reference_id: int) -> None:
        self.reference_id = reference_id
        super().__init__(reference_id)

    def __str__(self) -> str:
        return f"unknown reference: {self.reference_id}"


class InvalidWriterIdError(StoreError, ValueError):
    """An external writer id that is empty or too long."""


class ModelRequiredError(StoreError):
    """The store was opened without a model, and this operation embeds or scores images."""


class ApiKeyError(StoreError, ValueError):
    """An API key name that is empty, taken or unknown."""


# --- results -----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class _Result:
    """Frozen results turn into JSON-ready dicts (datetimes as ISO 8601 strings)."""

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = _jsonable(self)
        return values


@dataclass(frozen=True)
class WriterInfo(_Result):
    id: int
    external_id: str
    display_name: str
    created_at: dt.datetime
    references: int


@dataclass(frozen=True)
class ReferenceInfo(_Result):
    id: int
    image_sha256: str
    quality_score: float
    model_tag: str
    preprocess_version: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ReferenceCheck(_Result):
    """A reference's mean score against the writer's other references; ``flagged`` references
    are far from the others (a mix-up, or a forgery among the references) and are kept out of
    claim scoring until deleted."""

    reference_id: int
    consistency: float | None
    flagged: bool


@dataclass(frozen=True)
class WriterDetail(_Result):
    id: int
    external_id: str
    display_name: str
    created_at: dt.datetime
    references: tuple[ReferenceInfo, ...]
    checks: tuple[ReferenceCheck, ...] = ()
    scoring_method: str | None = None


@dataclass(frozen=True)
class ImageOutcome(_Result):
    """What happened to one submitted image. ``accepted`` images passed (or, with
    ``quality="warn"``, were kept despite) the checks; a ``duplicate`` was already enrolled for the
    writer and ``reference_id`` names the existing reference."""

    index: int
    source: str
    sha256: str | None
    accepted: bool
    reference_id: int | None
    quality_score: float | None
    problems: tuple[str, ...]
    duplicate: bool


@dataclass(frozen=True)
class EnrollResult(_Result):
    writer: WriterInfo
    writer_created: bool
    images: tuple[ImageOutcome, ...]
    #: Every reference of the writer after enrollment; flagged ones are not used to score claims.
    checks: tuple[ReferenceCheck, ...] = ()
    scoring_method: str | None = None

    @property
    def flagged(self) -> tuple[int, ...]:
        return tuple(check.reference_id for check in self.checks if check.flagged)

    @property
    def added(self) -> int:
        return sum(1 for image in self.images if image.accepted and not image.duplicate)

    @property
    def duplicates(self) -> int:
        return sum(1 for image in self.images if image.duplicate)

    @property
    def rejected(self) -> int:
        return sum(1 for image in self.images if not image.accepted)

    @property
    def references(self) -> int:
        """The writer's reference count after enrollment."""
        return self.writer.references

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values.update(added=self.added, duplicates=self.duplicates, rejected=self.rejected, flagged=list(self.flagged))
        return values


@dataclass(frozen=True)
class ReferenceScore(_Result):
    reference_id: int
    score: float
    used: bool = True  # False: a flagged reference, shown but not scored
    image_sha256: str | None = None  # logged since revision 0004: which image was compared


@dataclass(frozen=True)
class ClaimResult(_Result):
    log_id: int
    external_id: str
    writer_id: int
    decision: ClaimDecision
    status: str
    fused_score: float
    fusion: str
    accept_threshold: float
    reject_threshold: float
    threshold_source: str  # "global:<rule>", "custom" or "writer"
    reference_scores: tuple[ReferenceScore, ...]
    model_tag: str
    query_sha256: str
    #: How ``fused_score`` (the number the thresholds apply to) was computed: a fusion rule,
    #: a normalised fusion or a per-writer classifier (see inkproof.claims).
    method: str = "mean"
    #: Plain fusion of the used references' raw scores (equal to ``fused_score`` for plain fusion).
    raw_fused_score: float | None = None
    operating_point: str | None = None
    #: The K whose validation thresholds apply (the largest calibrated K <= references used).
    calibrated_k: int | None = None
    references_used: int = 0

    @property
    def accepted(self) -> bool:
        return self.decision == "genuine"

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values["accepted"] = self.accepted
        return values


@dataclass(frozen=True)
class Candidate(_Result):
    rank: int
    writer_id: int
    external_id: str
    display_name: str
    score: float
    reference_id: int


@dataclass(frozen=True)
class IdentificationResult(_Result):
    candidates: tuple[Candidate, ...]
    index: str  # "exact", "approximate", or "head" (product heads: every reference scored)
    references: int
    model_tag: str
    query_sha256: str


@dataclass(frozen=True)
class ReviewItem(_Result):
    log_id: int
    claimed_external_id: str
    writer_id: int | None
    decision: str
    status: str
    fused_score: float
    threshold: float
    reject_threshold: float
    reference_scores: tuple[ReferenceScore, ...]
    reviewer_decision: str | None
    reviewer: str | None
    reviewed_at: dt.datetime | None
    created_at: dt.datetime
    model_tag: str
    query_sha256: str
    has_query_image: bool
    # Revision 0004 (None on older rows): how the score was computed, and the reviewer's note.
    method: str | None = None
    operating_point: str | None = None
    threshold_source: str | None = None
    preprocess_version: str | None = None
    review_note: str | None = None


@dataclass(frozen=True)
class ApiKeyInfo(_Result):
    name: str
    key_prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values["active"] = self.active
        return values


@dataclass(frozen=True)
class StoreInfo(_Result):
    writers: int
    references: int
    verifications: int
    pending_reviews: int
    model_tag: str | None  # the verifier's (None: opened without a model)
    stored_model_tag: str | None  # the embeddings'
    reindex_in_progress: bool

    @property
    def consistent(self) -> bool:
        """Not half-reindexed, and (with a model) holding that model's embeddings."""
        if self.reindex_in_progress:
            return False
        return self.model_tag is None or self.stored_model_tag in (None, self.model_tag)

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values["consistent"] = self.consistent
        return values


# --- helpers -----------------------------------------------------------------------------------


def encode_png(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # Level 1: scans with paper texture barely compress further, and level 6 is several times slower.
    Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _embedding_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def _embedding_matrix(blobs: Sequence[bytes], dim: int) -> np.ndarray:
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
    return np.asarray(ids, dtype=np.int64), np.asarray(owners, dtype=np.int64), _embedding_matrix(blobs, dim)


def _fuse(scores: np.ndarray, fusion: str, axis: int | None = None) -> Any:
    return scores.max(axis=axis) if fusion == "max" else scores.mean(axis=axis)


def _clean_external_id(external_id: str) -> str:
    """The same rules for creating and for looking up a writer (see :mod:`inkproof.validation`)."""
    try:
        return clean_identifier(external_id, "a writer's external id")
    except InvalidFieldError as exc:
        raise InvalidWriterIdError(str(exc)) from None


def _clean_display_name(display_name: str | None) -> str | None:
    if display_name is None:
        return None
    return clean_text(display_name, "display_name", allow_empty=True) or None


def _log_id(log_id: int) -> int:
    """A log id both databases can look up; anything else names no log."""
    try:
        return clean_row_id(int(log_id), "log id")
    except (InvalidFieldError, TypeError, ValueError):
        raise ReviewError(f"no verification log {log_id}") from None


def _is_transient(exc: Exception) -> bool:
    """A lost race (unique key taken meanwhile) or a lock conflict: retrying may succeed."""
    if isinstance(exc, IntegrityError):
        return True
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in ("40001", "40P01", "55P03"):  # serialization, deadlock, lock
        return True
    return "database is locked" in str(orig or exc)


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


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Prepared:
    index: int
    source: str
    gray: np.ndarray
    digest: str
    quality_score: float
    problems: tuple[str, ...]


@dataclass(frozen=True)
class _Scoring:
    """What a claim needs of a writer's stored scoring, read out of its session."""

    method: str
    reference_ids: tuple[int, ...]
    parameters: dict[str, Any] | None

    @classmethod
    def of(cls, row: WriterScoring) -> _Scoring:
        return cls(row.method, tuple(int(i) for i in row.reference_ids), row.parameters)


# --- the store ---------------------------------------------------------------------------------


class SignatureStore:
    """Enrollment, claims, identification and review over one database and one model.

    ``accept_rule`` and ``reject_rule`` name the card's calibrated thresholds used to accept and to
    reject a claim (scores in between go to human review); ``accept_threshold`` and
    ``reject_threshold`` replace them with fixed values ("custom"). Writers with at least
    ``per_writer_min_references`` references get a tighter accept threshold of their own
    (see :meth:`writer_threshold`).

    With a model card calibrated for claims (``card.claims``, :mod:`inkproof.claims`), claims are
    scored with the method and thresholds chosen on validation writers for the writer's number of
    references instead: ``operating_point`` (eer, far-skilled-1, far-skilled-5) picks the accept
    threshold, the EER threshold the reject one; custom thresholds still override them.

    ``verifier=None`` opens the store for maintenance only (writers, review queue, API keys):
    whatever embeds or scores images then raises :class:`ModelRequiredError`.
    """

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
        self._documents: DocumentStore | None = None

    @property
    def documents(self) -> DocumentStore:
        """Documents and the signatures found on them (see :mod:`inkproof.store.documents`)."""
        with self._documents_lock:
            if self._documents is None:
                from inkproof.store.documents import DocumentStore

                self._documents = DocumentStore(self)
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
        meta = self._meta(session, lock=lock)
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

    # --- writer-dependent scoring ----------------------------------------------------------

    @property
    def claims(self) -> tuple[ClaimsCalibration, Cohort | None] | None:
        """The card's claims calibration and cohort, or None: plain fusion with the card's
        global thresholds (models calibrated before writer-dependent scoring existed)."""
        with self._claims_lock:
            if not self._claims_loaded:
                section = self.card.claims
                if section:
                    calibration = ClaimsCalibration.from_dict(section)
                    cohort = None
                    if calibration.needs_cohort():
                        path = getattr(self.verifier, "card_path", None)
                        if path is None:
                            raise ClaimsConfigError("the verifier does not say where its model card is")
                        cohort = load_cohort(Path(path).parent / calibration.cohort_file, calibration.cohort_sha256)
                    self._claims = (calibration, cohort)
                self._claims_loaded = True
            return self._claims

    def _pair_matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.card.head == "cosine":
            return cosine_matrix(a, b)
        rows = np.repeat(np.arange(len(a)), len(b))
        cols = np.tile(np.arange(len(b)), len(a))
        return np.asarray(self.verifier.score_embeddings(a[rows], b[cols]), dtype=np.float64).reshape(len(a), len(b))

    def _fit_scoring(self, writer_id: int, ids: Sequence[int], matrix: np.ndarray) -> WriterScoring | None:
        """Flag odd references and fit the writer's classifier (None without a claims calibration)."""
        claims = self.claims
        if claims is None or not ids:
            return None
        calibration, cohort = claims
        check = flag_outliers(matrix, calibration.outlier_threshold, pair_matrix=self._pair_matrix)
        flagged = set(check.flagged)
        used = [i for i in range(len(ids)) if i not in flagged]
        method = calibration.method_for(len(used))
        parameters = None
        if method in ("logreg", "svm-linear", "svm-rbf"):
            assert cohort is not None
            model = fit_writer_model(method, matrix[used], cohort, settings_for(calibration, method))
            parameters = model.to_dict()
        return WriterScoring(
            writer_id=writer_id,
            model_tag=self.model_tag,
            scoring=calibration.fingerprint(),
            method=method,
            reference_ids=[int(ids[i]) for i in used],
            flagged_ids=[int(ids[i]) for i in sorted(flagged)],
            consistency={str(ids[i]): value for i, value in enumerate(check.consistency) if value == value},
            parameters=parameters,
            fitted_at=utcnow(),
        )

    def _stale(self, row: WriterScoring | None, ids: Sequence[int]) -> bool:
        if self._verifier is None:  # maintenance only: nothing to compare with
            return False
        claims = self.claims
        if claims is None:
            return False
        if row is None or row.model_tag != self.model_tag or row.scoring != claims[0].fingerprint():
            return True
        return sorted([*row.reference_ids, *row.flagged_ids]) != sorted(int(i) for i in ids)

    def _refit_writer(self, session: Session, writer_id: int) -> WriterScoring | None:
        """Refit the writer's scoring inside ``session`` (after its references changed)."""
        if self.claims is None:
            return None
        ids, matrix = self._writer_embeddings(session, writer_id)
        row = self._fit_scoring(writer_id, ids, matrix)
        existing = session.get(WriterScoring, writer_id)
        if row is None:
            if existing is not None:
                session.delete(existing)
            return None
        if existing is None:
            session.add(row)
            return row
        for column in ("model_tag", "scoring", "method", "reference_ids", "flagged_ids", "consistency", "parameters"):
            setattr(existing, column, getattr(row, column))
        existing.fitted_at = row.fitted_at
        return existing

    def _writer_embeddings(self, session: Session, writer_id: int) -> tuple[list[int], np.ndarray]:
        rows = session.execute(
            select(Reference.id, Reference.embedding, Reference.embedding_dim, Reference.model_tag)
            .where(Reference.writer_id == writer_id)
            .order_by(Reference.id)
        )
        ids: list[int] = []
        blobs: list[bytes] = []
        for ref_id, blob, dim, tag in rows:
            if tag != self.model_tag or dim != self.card.embedding_dim:
                raise StoreModelMismatchError(tag, self.model_tag)
            ids.append(int(ref_id))
            blobs.append(blob)
        return ids, _embedding_matrix(blobs, self.card.embedding_dim)

    @staticmethod
    def _checks(row: WriterScoring | None, ids: Sequence[int]) -> tuple[ReferenceCheck, ...]:
        if row is None:
            return ()
        flagged = set(row.flagged_ids)
        return tuple(ReferenceCheck(int(i), row.consistency.get(str(i)), int(i) in flagged) for i in ids)

    def refit_writers(self) -> int:
        """Refit every writer's scoring (after a reindex or a new claims calibration); returns how many."""
        if self.claims is None:
            return 0
        writer_ids = self._read(lambda session: [int(i) for i in session.scalars(select(Writer.id))])
        for writer_id in writer_ids:

            def refit(session: Session, wid: int = writer_id) -> None:
                self._refit_writer(session, wid)

            self._write(refit)
        return len(writer_ids)

    # --- images ----------------------------------------------------------------------------

    def _load(self, source: ImageSource) -> np.ndarray:
        return load_image(source, max_pixels=self._max_pixels)

    def _load_query(self, source: ImageSource) -> np.ndarray:
        """A query image with ink: a blank one would match every blank reference (and look alike
        to the model), so it is refused with :class:`NoInkError` instead of scored."""
        gray = self._load(source)
        if not ink_mask(gray).any():
            raise NoInkError(describe_source(source))
        return gray

    def _embed(self, grays: Sequence[np.ndarray]) -> np.ndarray:
        embeddings = np.asarray(self.verifier.embed_many(list(grays)), dtype=np.float32)
        if embeddings.shape != (len(grays), self.card.embedding_dim):
            raise StoreError(
                f"the model returned embeddings of shape {embeddings.shape}, "
                f"expected ({len(grays)}, {self.card.embedding_dim})"
            )
        return embeddings

    # --- writers ---------------------------------------------------------------------------

    def _find_writer(self, session: Session, external_id: str) -> Writer:
        writer = session.scalar(select(Writer).where(Writer.external_id == external_id))
        if writer is None:
            raise UnknownWriterError(external_id)
        return writer

    def _get_or_create_writer(
        self, session: Session, external_id: str, display_name: str | None, *, lock: bool = False
    ) -> tuple[Writer, bool]:
        query = select(Writer).where(Writer.external_id == external_id)
        if lock:
            # FOR NO KEY UPDATE: enrollments of the writer queue, claims logging against it do not.
            query = query.with_for_update(key_share=True)
        writer = session.scalar(query)
        if writer is None:
            candidate = Writer(
                external_id=external_id,
                display_name=display_name if display_name is not None else external_id,
                created_at=utcnow(),
            )
            try:
                with session.begin_nested():
                    session.add(candidate)
                return candidate, True
            except IntegrityError:  # created concurrently: use that one
                writer = session.scalar(query)
                if writer is None:
                    raise
        if display_name is not None and writer.display_name != display_name:
            writer.display_name = display_name
        return writer, False

    def _reference_count(self, session: Session, writer_id: int) -> int:
        count = session.scalar(select(func.count(Reference.id)).where(Reference.writer_id == writer_id))
        return int(count or 0)

    def _writer_info(self, session: Session, writer: Writer) -> WriterInfo:
        return WriterInfo(
            id=writer.id,
            external_id=writer.external_id,
            display_name=writer.display_name,
            created_at=writer.created_at,
            references=self._reference_count(session, writer.id),
        )

    def create_writer(self, external_id: str, display_name: str | None = None) -> WriterInfo:
        """Get or create the writer ``external_id`` (safe when several callers race)."""
        external_id = _clean_external_id(external_id)
        display_name = _clean_display_name(display_name)

        def work(session: Session) -> WriterInfo:
            writer, _ = self._get_or_create_writer(session, external_id, display_name)
            session.flush()
            return self._writer_info(session, writer)

        return self._write(work)

    def list_writers(self) -> list[WriterInfo]:
        def work(session: Session) -> list[WriterInfo]:
            query = (
                select(Writer, func.count(Reference.id))
                .outerjoin(Reference, Reference.writer_id == Writer.id)
                .group_by(Writer.id)
                .order_by(Writer.external_id)
            )
            return [
                WriterInfo(w.id, w.external_id, w.display_name, w.created_at, int(count))
                for w, count in session.execute(query)
            ]

        return self._read(work)

    def get_writer(self, external_id: str) -> WriterDetail:
        external_id = _clean_external_id(external_id)

        def work(session: Session) -> WriterDetail:
            writer = self._find_writer(session, external_id)
            rows = session.execute(
                select(
                    Reference.id,
                    Reference.image_sha256,
                    Reference.quality_score,
                    Reference.model_tag,
                    Reference.preprocess_version,
                    Reference.created_at,
                )
                .where(Reference.writer_id == writer.id)
                .order_by(Reference.id)
            )
            references = tuple(ReferenceInfo(*row) for row in rows)
            scoring = session.get(WriterScoring, writer.id)
            current = scoring is not None and not self._stale(scoring, [r.id for r in references])
            return WriterDetail(
                id=writer.id,
                external_id=writer.external_id,
                display_name=writer.display_name,
                created_at=writer.created_at,
                references=references,
                checks=self._checks(scoring, [r.id for r in references]) if current else (),
                scoring_method=scoring.method if current and scoring is not None else None,
            )

        return self._read(work)

    def reference_image(self, reference_id: int) -> bytes:
        """The stored reference image as a grayscale PNG."""
        try:
            reference_id = clean_row_id(int(reference_id), "reference id")
        except (InvalidFieldError, TypeError, ValueError):
            raise UnknownReferenceError(reference_id) from None

        def work(session: Session) -> bytes:
            data = session.scalar(select(Reference.image_png).where(Reference.id == int(reference_id)))
            if data is None:
                raise UnknownReferenceError(int(reference_id))
            return bytes(data)

        return self._read(work)

    def delete_writer(self, external_id: str) -> None:
        """Remove the writer with its reference images and embeddings. Verification logs stay
        (they keep ``claimed_external_id``; their ``writer_id`` becomes NULL)."""
        external_id = _clean_external_id(external_id)

        def work(session: Session) -> None:
            writer = self._find_writer(session, external_id)
            gone = list(session.scalars(select(Reference.id).where(Reference.writer_id == writer.id)))
            session.execute(delete(Reference).where(Reference.writer_id == writer.id))
            session.execute(delete(Writer).where(Writer.id == writer.id))
            record_changes(session, [], gone)

        self._write(work)

    def delete_reference(self, external_id: str, reference_id: int) -> WriterDetail:
        """Remove one reference of ``external_id``; the writer's scoring is refitted on the rest."""
        external_id = _clean_external_id(external_id)
        reference_id = clean_row_id(int(reference_id), "reference id")

        def work(session: Session) -> None:
            if self._verifier is not None:
                self._check_compatible(session)
            writer = self._find_writer(session, external_id)
            owner = session.scalar(select(Reference.writer_id).where(Reference.id == int(reference_id)))
            if owner != writer.id:
                raise UnknownReferenceError(int(reference_id))
            session.execute(delete(Reference).where(Reference.id == int(reference_id)))
            record_changes(session, [], [int(reference_id)])
            session.flush()
            if self._verifier is not None:
                self._refit_writer(session, writer.id)
            else:  # no model to refit with: the next claim refits it
                session.execute(delete(WriterScoring).where(WriterScoring.writer_id == writer.id))

        self._write(work)
        self._invalidate()
        return self.get_writer(external_id)

    # --- enrollment ------------------------------------------------------------------------

    def enroll(
        self,
        external_id: str,
        images: Sequence[ImageSource],
        *,
        display_name: str | None = None,
        quality: QualityPolicy = "reject",
    ) -> EnrollResult:
        """Add reference signatures for ``external_id`` (the writer is created if needed).

        Each image is loaded and quality-checked; unreadable images and (with
        ``quality="reject"``) images that fail a check are skipped and reported. With
        ``quality="warn"`` they are kept, their problems reported. An image already enrolled for
        the writer is a no-op reported as a duplicate. Raises :class:`QualityError` when no image
        is usable. All accepted images are embedded first; the writer and all its new references
        are then written in one transaction.
        """
        external_id = _clean_external_id(external_id)
        display_name = _clean_display_name(display_name)
        if quality not in ("reject", "warn"):
            raise ValueError(f"quality must be 'reject' or 'warn', got {quality!r}")
        if isinstance(images, str | bytes) or not isinstance(images, Sequence):
            raise TypeError("images must be a sequence of image sources (paths, bytes, arrays, PIL images)")
        if not images:
            raise QualityError("no images given to enroll")
        self._read(self._check_compatible)  # fail before the expensive part

        outcomes: dict[int, ImageOutcome] = {}
        prepared: list[_Prepared] = []
        for index, source in enumerate(images):
            name = describe_source(source)
            try:
                gray = self._load(source)
            except InvalidImageError as exc:
                outcomes[index] = ImageOutcome(index, name, None, False, None, None, (exc.reason,), False)
                continue
            report = assess(gray)
            digest = image_digest(gray)
            if not report.ok and quality == "reject":
                outcomes[index] = ImageOutcome(index, name, digest, False, None, report.score, report.problems, False)
                continue
            prepared.append(_Prepared(index, name, gray, digest, report.score, report.problems))
        if not prepared:
            details = "; ".join(
                f"#{o.index} {o.source}: {', '.join(o.problems)}" for o in sorted(outcomes.values(), key=_index)
            )
            raise QualityError(f"no usable reference image for {external_id!r}: {details}", tuple(outcomes.values()))

        embeddings = self._embed([item.gray for item in prepared])
        pngs = [encode_png(item.gray) for item in prepared]
        preprocess_version = self.card.preprocess_version

        def work(
            session: Session,
        ) -> tuple[WriterInfo, bool, dict[int, ImageOutcome], tuple[ReferenceCheck, ...], str | None]:
            meta = self._check_compatible(session, lock=True)
            self._claim_model(session, meta)
            # The writer's row stays locked until commit: enrollments of one writer take turns
            # (on PostgreSQL; SQLite serialises all writes), so the second sees the first's rows.
            writer, created = self._get_or_create_writer(session, external_id, display_name, lock=True)
            session.flush()
            existing: dict[str, int] = {
                digest: ref_id
                for digest, ref_id in session.execute(
                    select(Reference.image_sha256, Reference.id).where(Reference.writer_id == writer.id)
                )
            }
            now = utcnow()
            new: dict[str, Reference] = {}
            for item, embedding, png in zip(prepared, embeddings, pngs, strict=True):
                if item.digest in existing or item.digest in new:
                    continue
                new[item.digest] = Reference(
                    writer_id=writer.id,
                    image_sha256=item.digest,
                    image_png=png,
                    embedding=_embedding_bytes(embedding),
                    embedding_dim=int(embedding.shape[0]),
                    model_tag=self.model_tag,
                    preprocess_version=preprocess_version,
                    quality_score=item.quality_score,
                    created_at=now,
                )
            session.add_all(new.values())
            session.flush()
            record_changes(session, [reference.id for reference in new.values()], [])
            results: dict[int, ImageOutcome] = {}
            reported: set[str] = set()
            for item in prepared:
                # The first copy of a new image added it; anything else is a duplicate.
                duplicate = item.digest not in new or item.digest in reported
                reported.add(item.digest)
                reference_id = new[item.digest].id if item.digest in new else existing[item.digest]
                results[item.index] = ImageOutcome(
                    item.index,
                    item.source,
                    item.digest,
                    True,
                    reference_id,
                    item.quality_score,
                    item.problems,
                    duplicate,
                )
            # Refit in the same transaction: a claim never sees new references with an old model.
            ids = [
                int(i)
                for i in session.scalars(
                    select(Reference.id).where(Reference.writer_id == writer.id).order_by(Reference.id)
                )
            ]
            scoring = session.get(WriterScoring, writer.id)
            if new or self._stale(scoring, ids):
                scoring = self._refit_writer(session, writer.id)
            checks = self._checks(scoring, ids)
            return self._writer_info(session, writer), created, results, checks, scoring.method if scoring else None

        writer_info, created, accepted, checks, method = self._write(work)
        outcomes.update(accepted)
        if accepted:
            self._invalidate()
        return EnrollResult(writer_info, created, tuple(outcomes[i] for i in sorted(outcomes)), checks, method)

    # --- claims ----------------------------------------------------------------------------

    def thresholds(self) -> tuple[float, float, str]:
        """The global (accept, reject, source) thresholds; source is "global:<rule>" or "custom".

        ``None`` is "not set", never 0.0: a threshold of 0 is a threshold like any other.
        """
        if self.custom_accept is not None:
            accept, source = self.custom_accept, "custom"
        else:
            accept, source = float(self.card.threshold(self.accept_rule)), f"global:{self.accept_rule}"
        reject = self.custom_reject if self.custom_reject is not None else float(self.card.threshold(self.reject_rule))
        # Rejecting above the accept threshold would make no sense: then there is no review band.
        return accept, min(reject, accept), source

    def writer_threshold(self, embeddings: np.ndarray, fusion: str = "mean") -> float | None:
        """A writer's own accept threshold from their references, or None with too few of them.

        Each reference is scored against the others as if it were a query (leave-one-out, fused
        like a claim); the 5th percentile of these genuine-like scores is where this writer's own
        genuine signatures start to look unusual. The claim threshold is the larger of this and
        the global threshold: a consistent writer gets a stricter threshold (a forgery that would
        pass the global threshold but scores far below the writer's own signatures goes to
        review), while a variable writer never gets a looser one -- the global threshold was
        calibrated against forgeries on validation writers, and a handful of references cannot
        justify accepting more of them.
        """
        n = len(embeddings)
        if n < self.per_writer_min_references:
            return None
        rows, cols = np.nonzero(~np.eye(n, dtype=bool))
        scores = self.verifier.score_embeddings(embeddings[rows], embeddings[cols]).reshape(n, n - 1)
        return float(np.percentile(_fuse(scores, fusion, axis=1), WRITER_PERCENTILE))

    def verify_claim(
        self,
        external_id: str,
        query: ImageSource,
        *,
        fusion: Fusion | None = None,
        operating_point: str | None = None,
        keep_query: bool | None = None,
    ) -> ClaimResult:
        """Is ``query`` a genuine signature of ``external_id``? Scores it against the writer's
        references and decides: accept, reject, or send to review. Every claim is logged.

        With a model card calibrated for claims (``card.claims``), the writer's scoring method
        and the thresholds of ``operating_point`` (default: the store's) for the writer's number
        of usable references are applied: accept at or above the operating point's threshold,
        reject below the EER threshold (or the operating point's, if lower), review in between.
        Without one, ``fusion`` (mean or max) of the raw scores meets the card's global thresholds.
        ``keep_query`` (default: the store's ``keep_claim_images``) keeps the query image of a
        decided claim too, for its evidence (:meth:`claim_evidence`).
        """
        keep = self.keep_claim_images if keep_query is None else bool(keep_query)
        if fusion is not None and fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        point = operating_point if operating_point is not None else self.operating_point
        if point not in OPERATING_POINTS:
            raise ClaimsConfigError(f"operating point must be one of {', '.join(OPERATING_POINTS)}, got {point!r}")
        external_id = _clean_external_id(external_id)
        claims = self.claims
        global_accept, global_reject, global_source = self.thresholds() if claims is None else (0.0, 0.0, "")

        def check(session: Session) -> None:
            self._check_compatible(session)
            self._find_writer(session, external_id)

        self._read(check)  # unknown writers and model mismatches fail before embedding
        gray = self._load_query(query)
        digest = image_digest(gray)
        vector = self._embed([gray])[0]

        hashes: dict[int, str] = {}

        def score(session: Session) -> tuple[int, list[int], np.ndarray, _Scoring | None]:
            self._check_compatible(session)
            writer = self._find_writer(session, external_id)
            ids, matrix = self._writer_embeddings(session, writer.id)
            if not ids:
                raise NoReferencesError(f"writer {external_id!r} has no reference signatures; enroll some")
            hashes.update(
                (int(i), str(h))
                for i, h in session.execute(
                    select(Reference.id, Reference.image_sha256).where(Reference.writer_id == writer.id)
                )
            )
            row = session.get(WriterScoring, writer.id) if claims is not None else None
            fresh = row is not None and not self._stale(row, ids)
            return writer.id, ids, matrix, _Scoring.of(row) if fresh and row is not None else None

        def attempt() -> ClaimResult:
            writer_id, ids, matrix, scoring = self._read(score)
            if claims is not None and scoring is None:
                # Missing or stale (references, model or calibration changed): refit and keep it.
                self._write(lambda session: self._refit_writer(session, writer_id))
                writer_id, ids, matrix, scoring = self._read(score)
                if scoring is None:  # changed again meanwhile: score with a model fitted here
                    fitted = self._fit_scoring(writer_id, ids, matrix)
                    assert fitted is not None
                    scoring = _Scoring.of(fitted)
            raw = np.asarray(
                self.verifier.score_embeddings(np.repeat(vector[None, :], len(ids), axis=0), matrix), dtype=np.float64
            )
            calibrated_k: int | None = None
            if claims is None or scoring is None:
                method: str = fusion or "mean"
                used = list(range(len(ids)))
                fused = raw_fused = float(_fuse(raw, method))
                own = self.writer_threshold(matrix, method)
                accept = global_accept if own is None else max(global_accept, own)
                source = "writer" if own is not None and own > global_accept else global_source
                reject = min(global_reject, accept)
                used_point: str | None = None
            else:
                calibration, cohort = claims
                position = {ref_id: i for i, ref_id in enumerate(ids)}
                used = [position[ref_id] for ref_id in scoring.reference_ids]
                method = scoring.method
                model = WriterModel.from_dict(scoring.parameters) if scoring.parameters else None
                result = score_claim(
                    method, vector[None, :], matrix[used], cohort=cohort, model=model, pair_matrix=self._pair_matrix
                )
                fused, raw_fused = float(result.score[0]), float(result.fused[0])
                calibrated_k = calibration.k_for(len(used))
                accept = calibration.threshold(len(used), point, method)
                reject = min(calibration.threshold(len(used), "eer", method), accept)
                source = f"calibrated:K={calibrated_k}:{point}"
                used_point = point
                if self.custom_accept is not None:
                    accept, source = self.custom_accept, "custom"
                if self.custom_reject is not None:
                    reject = self.custom_reject
                reject = min(reject, accept)
            decision: ClaimDecision
            if fused >= accept:
                decision = "genuine"
            elif fused < reject:
                decision = "forgery"
            else:
                decision = "review"
            status = "pending_review" if decision == "review" else "decided"
            used_set = set(used)
            reference_scores = tuple(
                ReferenceScore(ref_id, float(value), i in used_set, hashes.get(ref_id))
                for i, (ref_id, value) in enumerate(zip(ids, raw, strict=True))
            )

            def log(session: Session) -> int:
                entry = VerificationLog(
                    query_sha256=digest,
                    claimed_external_id=external_id,
                    writer_id=writer_id,
                    reference_scores=[r.to_dict() for r in reference_scores],
                    fused_score=fused,
                    threshold=accept,
                    reject_threshold=reject,
                    decision=decision,
                    status=status,
                    model_tag=self.model_tag,
                    created_at=utcnow(),
                    query_png=encode_png(gray) if decision == "review" or keep else None,
                    method=method,
                    operating_point=used_point,
                    threshold_source=source,
                    preprocess_version=self.card.preprocess_version,
                )
                session.add(entry)
                session.flush()  # a writer deleted meantime fails the foreign key: retried above
                return entry.id

            with self.db.session() as session:
                log_id = log(session)
            return ClaimResult(
                log_id=log_id,
                external_id=external_id,
                writer_id=writer_id,
                decision=decision,
                status=status,
                fused_score=fused,
                fusion=method,
                accept_threshold=accept,
                reject_threshold=reject,
                threshold_source=source,
                reference_scores=reference_scores,
                model_tag=self.model_tag,
                query_sha256=digest,
                method=method,
                raw_fused_score=raw_fused,
                operating_point=used_point,
                calibrated_k=calibrated_k,
                references_used=len(used),
            )

        return self._retry(attempt)

    # --- identification --------------------------------------------------------------------

    def _invalidate(self) -> None:
        self._snapshots.invalidate()

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
        # Checks the store's model before the expensive part, and brings the index up to date.
        index = self._read(self._check_compatible) if product else self._current_index()[0]
        gray = self._load_query(query)
        digest = image_digest(gray)
        vector = self._embed([gray])[0]
        current = index if isinstance(index, ReferenceIndex) else None
        candidates, kind, n = self._rank_writers(vector, top, force, index=current)
        return IdentificationResult(candidates, kind, n, self.model_tag, digest)

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
        index, source = self._current_index()
        return IndexStatus(
            index.kind, len(index), index.counter, source, time.perf_counter() - started, _str(self.index_path)
        )

    def save_index(self) -> bool:
        """Save the in-memory index if it changed since it was last saved (at shutdown)."""
        path = self.index_path
        with self._index_lock:
            index = self._index
        if index is None or path is None or not index.dirty:
            return False
        index.save(path)
        return True

    def _current_index(self) -> tuple[ReferenceIndex, str]:
        """The identification index as of the database's latest change, and where it came from."""

        def state(session: Session) -> tuple[dict[str, str], int]:
            return self._check_compatible(session), changes_counter(session)

        meta, counter = self._read(state)
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
                    self._catch_up(index, counter)
                    source = "file+changes" if index.dirty else "file"
                    checked = index
                    if not self._read(lambda session: self._matches_table(session, checked)):
                        index = None  # rows written around the store: rebuild
                        source = "database"
                if index is None:
                    index = self._build_index(key)
                self._index = index
            elif index.counter < counter:
                self._catch_up(index, counter)
                source = "changes"
            index.exact_limit = self.index_threshold
            index.ensure_kind()
            path = self.index_path
            if (
                path is not None
                and index.dirty
                and (source == "database" or time.monotonic() - index.saved_at >= SAVE_INTERVAL_S)
            ):
                index.save(path)
            return index, source

    def _build_index(self, key: IndexKey) -> ReferenceIndex:
        def read(session: Session) -> tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
            # The counter first: rows read after it may include later changes, which are
            # applied again harmlessly (adds and deletes are idempotent).
            counter = changes_counter(session)
            foreign = session.scalar(select(func.count(Reference.id)).where(Reference.model_tag != self.model_tag))
            if foreign:
                raise StoreModelMismatchError("(mixed)", self.model_tag)
            query = select(Reference.id, Reference.writer_id, Reference.embedding).order_by(Reference.id)
            return counter, snapshot_arrays(session.execute(query), self.card.embedding_dim)

        counter, (ids, owners, matrix) = self._read(read)
        index = ReferenceIndex(key, exact_limit=self.index_threshold)
        index.reset(ids, owners, matrix, counter)
        self._catch_up(index, self._read(changes_counter))
        return index

    def _catch_up(self, index: ReferenceIndex, counter: int) -> None:
        """Apply the changes numbered after the index's counter (up to at least ``counter``)."""
        if index.counter >= counter:
            return

        def read(session: Session) -> tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray], list[int]]:
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
            return max([counter, *(int(r[0]) for r in rows)]), arrays, deleted + missing

        new_counter, arrays, deleted = self._read(read)
        index.apply(arrays, deleted, new_counter)

    @staticmethod
    def _matches_table(session: Session, index: ReferenceIndex) -> bool:
        count, max_id = session.execute(select(func.count(Reference.id), func.max(Reference.id))).one()
        ids = index.live()[0]
        return int(count or 0) == len(ids) and (max_id is None if not len(ids) else int(max_id) == int(ids.max()))

    def _rank_writers(
        self, vector: np.ndarray, top: int, force: IndexKind | None = None, *, index: ReferenceIndex | None = None
    ) -> tuple[tuple[Candidate, ...], str, int]:
        """The ``top`` writers closest to an embedding, the search kind and the references searched
        (``index``: the identification index, when the caller has just brought it up to date)."""
        product = self.card.head not in ("cosine", "euclidean")
        if index is None and not product:
            index = self._current_index()[0]
        if index is not None and force in (None, index.kind):
            n = len(index)
            found = index.best_per_owner(vector, top)
            kind: str = index.kind
            reference_ids = [r for r, _, _ in found]
            owners = [o for _, o, _ in found]
            matrix = np.stack([e for _, _, e in found]) if found else np.zeros((0, vector.shape[0]), np.float32)
        else:
            # Product heads score every reference; a forced other kind is built for the call.
            snapshot = self._read(self._load_snapshot)
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

        def describe(session: Session) -> dict[int, tuple[str, str]]:
            writer_ids = owners
            query_ = select(Writer.id, Writer.external_id, Writer.display_name).where(Writer.id.in_(writer_ids))
            return {wid: (ext, name) for wid, ext, name in session.execute(query_)}

        names = self._read(describe)
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

    # --- review ----------------------------------------------------------------------------

    @staticmethod
    def _review_item(entry: VerificationLog, has_image: bool) -> ReviewItem:
        return ReviewItem(
            log_id=entry.id,
            claimed_external_id=entry.claimed_external_id,
            writer_id=entry.writer_id,
            decision=entry.decision,
            status=entry.status,
            fused_score=entry.fused_score,
            threshold=entry.threshold,
            reject_threshold=entry.reject_threshold,
            reference_scores=tuple(
                ReferenceScore(
                    int(item["reference_id"]),
                    float(item["score"]),
                    bool(item.get("used", True)),
                    item.get("image_sha256"),
                )
                for item in entry.reference_scores
            ),
            reviewer_decision=entry.reviewer_decision,
            reviewer=entry.reviewer,
            reviewed_at=entry.reviewed_at,
            created_at=entry.created_at,
            model_tag=entry.model_tag,
            query_sha256=entry.query_sha256,
            has_query_image=has_image,
            method=entry.method,
            operating_point=entry.operating_point,
            threshold_source=entry.threshold_source,
            preprocess_version=entry.preprocess_version,
            review_note=entry.review_note,
        )

    def _log_query(self) -> Any:
        return select(VerificationLog, VerificationLog.query_png.is_not(None)).options(defer(VerificationLog.query_png))

    def pending_reviews(self, limit: int = 50) -> list[ReviewItem]:
        """Claims waiting for a human decision, oldest first."""

        def work(session: Session) -> list[ReviewItem]:
            query = (
                self._log_query()
                .where(VerificationLog.status == "pending_review")
                .order_by(VerificationLog.created_at, VerificationLog.id)
                .limit(max(0, int(limit)))
            )
            return [self._review_item(entry, bool(has)) for entry, has in session.execute(query)]

        return self._read(work)

    def get_log(self, log_id: int) -> ReviewItem:
        """One verification log entry (any status)."""

        log_id = _log_id(log_id)

        def work(session: Session) -> ReviewItem:
            row = session.execute(self._log_query().where(VerificationLog.id == log_id)).first()
            if row is None:
                raise ReviewError(f"no verification log {log_id}")
            return self._review_item(row[0], bool(row[1]))

        return self._read(work)

    def review(self, log_id: int, decision: str, reviewer: str, note: str | None = None) -> ReviewItem:
        """Record a reviewer's decision (and an optional note: what they saw) on a pending claim.
        The automatic decision ("review") is kept beside the reviewer's; a claim can be reviewed once."""
        if decision not in ("genuine", "forgery"):
            raise ReviewError(f"a review decision is 'genuine' or 'forgery', not {decision!r}")
        log_id = _log_id(log_id)
        try:
            reviewer = clean_text(reviewer, "reviewer")
        except InvalidFieldError as exc:
            raise ReviewError(f"name the reviewer: {exc}") from None
        if note is not None:
            note = note.strip() or None
        if note is not None and (len(note) > MAX_REVIEW_NOTE or any(ord(c) < 32 and c not in "\n\t" for c in note)):
            raise ReviewError(f"a review note is at most {MAX_REVIEW_NOTE} characters without control characters")

        def work(session: Session) -> None:
            # One conditional UPDATE: of two reviewers racing, exactly one wins.
            result = session.execute(
                update(VerificationLog)
                .where(VerificationLog.id == int(log_id), VerificationLog.status == "pending_review")
                .values(
                    status="reviewed",
                    reviewer_decision=decision,
                    reviewer=reviewer,
                    reviewed_at=utcnow(),
                    review_note=note,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                return
            entry = session.get(VerificationLog, int(log_id))
            if entry is None:
                raise ReviewError(f"no verification log {log_id}")
            if entry.status == "reviewed":
                raise ReviewError(
                    f"verification {log_id} was already reviewed by {entry.reviewer} ({entry.reviewer_decision})"
                )
            raise ReviewError(
                f"verification {log_id} was decided automatically ({entry.decision}); "
                "only pending reviews can be reviewed"
            )

        self._write(work)
        return self.get_log(log_id)

    def query_image(self, log_id: int) -> bytes | None:
        """The query image of a review item (PNG), or None when it was not kept."""
        log_id = _log_id(log_id)

        def work(session: Session) -> bytes | None:
            row = session.execute(select(VerificationLog.query_png).where(VerificationLog.id == int(log_id))).first()
            if row is None:
                raise ReviewError(f"no verification log {log_id}")
            return bytes(row[0]) if row[0] is not None else None

        return self._read(work)

    def claim_evidence(
        self, log_id: int, query: ImageSource | None = None, *, max_patches: int | None = None
    ) -> EvidenceRecord:
        """The evidence of a logged claim, rebuilt from the log, the stored references and the model
        (an :class:`inkproof.evidence.EvidenceRecord`); see :func:`inkproof.store.evidence.claim_evidence`."""
        from inkproof.store.evidence import claim_evidence

        return claim_evidence(self, _log_id(log_id), query, max_patches=max_patches)

    def export_log(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int | None = None
    ) -> list[ReviewItem]:
        """Verification log entries in id order (every status) for audits; images are not exported."""

        def work(session: Session) -> list[ReviewItem]:
            query = self._log_query().order_by(VerificationLog.id)
            if since is not None:
                query = query.where(VerificationLog.created_at >= since)
            if until is not None:
                query = query.where(VerificationLog.created_at < until)
            if limit is not None:
                query = query.limit(max(0, int(limit)))
            return [self._review_item(entry, bool(has)) for entry, has in session.execute(query)]

        return self._read(work)

    # --- reindexing ------------------------------------------------------------------------

    def purge_query_images(self, older_than: dt.timedelta) -> int:
        """Forget the query images kept for review that are older than ``older_than`` (the log
        rows, scores and decisions stay); returns how many were removed. A retention limit for
        the only user-sent images the store keeps beyond references."""
        if older_than.total_seconds() < 0:
            raise ValueError("older_than must not be negative")
        cutoff = utcnow() - older_than

        def work(session: Session) -> int:
            result = session.execute(
                update(VerificationLog)
                .where(VerificationLog.query_png.is_not(None), VerificationLog.created_at < cutoff)
                .values(query_png=None)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return self._write(work)

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
                        embedding=_embedding_bytes(embedding),
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

    # --- API keys --------------------------------------------------------------------------

    def create_api_key(self, name: str) -> str:
        """A new API key named ``name``. The plaintext is returned once and never stored."""
        try:
            name = clean_text(name, "an API key's name")
        except InvalidFieldError as exc:
            raise ApiKeyError(str(exc)) from None
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)

        def work(session: Session) -> None:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise ApiKeyError(f"an API key named {name!r} exists; revoke it or pick another name")
            session.add(ApiKey(name=name, key_prefix=key[:8], key_hash=_hash_key(key), created_at=utcnow()))

        try:
            self._write(work)
        except IntegrityError:
            raise ApiKeyError(f"an API key named {name!r} exists; revoke it or pick another name") from None
        return key

    def check_api_key(self, key: str) -> bool:
        """True when ``key`` is a known, unrevoked API key (hashes compared in constant time)."""
        if not isinstance(key, str) or not key.startswith(API_KEY_PREFIX) or not 16 <= len(key) <= 256:
            return False
        if not (key.isascii() and key.isprintable()):  # a NUL would reach PostgreSQL as an error
            return False
        digest = _hash_key(key)

        def work(session: Session) -> list[str]:
            return list(
                session.scalars(
                    select(ApiKey.key_hash).where(ApiKey.key_prefix == key[:8], ApiKey.revoked_at.is_(None))
                )
            )

        matched = False
        for stored in self._read(work):
            matched |= hmac.compare_digest(stored, digest)
        return matched

    def revoke_api_key(self, name: str) -> ApiKeyInfo:
        """Revoke the key ``name`` (revoking a revoked key changes nothing)."""

        def work(session: Session) -> ApiKeyInfo:
            row = session.scalar(select(ApiKey).where(ApiKey.name == name))
            if row is None:
                raise ApiKeyError(f"no API key named {name!r}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return ApiKeyInfo(row.name, row.key_prefix, row.created_at, row.revoked_at)

        return self._write(work)

    def list_api_keys(self) -> list[ApiKeyInfo]:
        def work(session: Session) -> list[ApiKeyInfo]:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.name))
            return [ApiKeyInfo(r.name, r.key_prefix, r.created_at, r.revoked_at) for r in rows]

        return self._read(work)

    # --- overview --------------------------------------------------------------------------

    def info(self) -> StoreInfo:
        def work(session: Session) -> StoreInfo:
            meta = self._meta(session)

            def count(query: Any) -> int:
                return int(session.scalar(query) or 0)

            return StoreInfo(
                writers=count(select(func.count(Writer.id))),
                references=count(select(func.count(Reference.id))),
                verifications=count(select(func.count(VerificationLog.id))),
                pending_reviews=count(
                    select(func.count(VerificationLog.id)).where(VerificationLog.status == "pending_review")
                ),
                model_tag=self._model_tag,
                stored_model_tag=meta.get(META_MODEL_TAG),
                reindex_in_progress=META_REINDEX in meta,
            )

        return self._read(work)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _index(outcome: ImageOutcome) -> int:
    return outcome.index


__all__ = [
    "FUSIONS",
    "ApiKeyError",
    "ApiKeyInfo",
    "Candidate",
    "ClaimResult",
    "EnrollResult",
    "IdentificationResult",
    "ImageOutcome",
    "InvalidWriterIdError",
    "ModelRequiredError",
    "NoReferencesError",
    "QualityError",
    "ReferenceInfo",
    "ReferenceScore",
    "ReindexInProgressError",
    "ReviewError",
    "ReviewItem",
    "SignatureStore",
    "StoreInfo",
    "StoreModelMismatchError",
    "UnknownReferenceError",
    "WriterDetail",
    "WriterInfo",
    "encode_png",
    "image_digest",
    "model_tag_of",
]

"""Tables of the enrollment store (SQLAlchemy 2.0 declarative, typed columns).

The Alembic migrations in :mod:`inkproof.store.migrations` create exactly these tables; a test
compares the migrated database with this metadata, so a change here needs a new migration.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DECISIONS = ("genuine", "forgery", "review")
STATUSES = ("decided", "pending_review", "reviewed")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as naive UTC
    and get their ``tzinfo`` back on load. Naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(datetime.UTC)")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            value = dt.datetime.fromisoformat(str(value))
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy's own class attribute)


class Writer(Base):
    __tablename__ = "writers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)

    references: Mapped[list[Reference]] = relationship(
        back_populates="writer", cascade="all, delete-orphan", passive_deletes=True
    )


class Reference(Base):
    """One enrolled signature: the image (grayscale PNG) and its embedding by ``model_tag``.

    Keeping the image lets ``reindex`` re-embed the store when the model changes.
    """

    __tablename__ = "signature_references"
    __table_args__ = (
        UniqueConstraint("writer_id", "image_sha256"),
        # Ids are never reused on SQLite either: identification caches key on (count, max id).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    writer_id: Mapped[int] = mapped_column(ForeignKey("writers.id", ondelete="CASCADE"), nullable=False, index=True)
    image_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    embedding_dim: Mapped[int] = mapped_column(Integer, nullable=False)
    model_tag: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    preprocess_version: Mapped[str] = mapped_column(String(32), nullable=False)
    quality_score: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    # The blobs come last: SQLite stores columns in this order, and a scan that reads the small
    # columns then stops before the image's overflow pages.
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # little-endian float32
    image_png: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    writer: Mapped[Writer] = relationship(back_populates="references")


class VerificationLog(Base):
    """Every claim checked against the store, with what was decided and, later, by whom."""

    __tablename__ = "verification_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    # Kept when the writer is deleted (writer_id becomes NULL): the audit trail survives.
    claimed_external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    writer_id: Mapped[int | None] = mapped_column(
        ForeignKey("writers.id", ondelete="SET NULL"), nullable=True, index=True
    )
    reference_scores: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    fused_score: Mapped[float] = mapped_column(Float, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    reject_threshold: Mapped[float] = mapped_column(Float, nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)  # one of DECISIONS
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)  # one of STATUSES
    reviewer_decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reviewer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    model_tag: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    # Review items keep the query image so that a reviewer can look at it; decided claims keep it
    # too when the store is asked to (evidence). Both are forgotten after the retention period.
    query_png: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # How the score was computed (revision 0004; NULL on older rows): enough to rebuild the evidence.
    method: Mapped[str | None] = mapped_column(String(32), nullable=True)
    operating_point: Mapped[str | None] = mapped_column(String(32), nullable=True)
    threshold_source: Mapped[str | None] = mapped_column(String(64), nullable=True)
    preprocess_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Given by a caller that may submit the same claim again (a resumed batch job): one row per
    # key, enforced by a unique index, so a retry returns this row instead of logging twice
    # (revision 0006; NULL for claims logged without one, and NULLs never collide).
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True, index=True)


class ApiKey(Base):
    """A service API key. Only the sha256 of the key is stored.

    Keys are random 256-bit tokens, not passwords: nobody can guess one from its hash, so a fast
    hash is enough (a slow KDF would only add latency to every request). ``key_prefix`` (the
    first 8 characters) finds the candidate rows without revealing the key.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    key_prefix: Mapped[str] = mapped_column(String(8), nullable=False, index=True)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Document(Base):
    """An indexed document file: unique by the sha256 of its bytes (whatever the model: its
    signatures' embeddings follow the store's model through ``reindex``) and by its name."""

    __tablename__ = "documents"
    # Ids are never reused on SQLite either: search caches key on (count, max id).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy's own class attribute)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(1024), unique=True, nullable=False)
    file_sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    pages: Mapped[int] = mapped_column(Integer, nullable=False)
    detector: Mapped[str | None] = mapped_column(String(255), nullable=True)  # what found the signatures
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)

    signatures: Mapped[list[DocumentSignature]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )


class DocumentSignature(Base):
    """A signature found on a document page: its box (page pixels, x1/y1 exclusive), the crop
    (grayscale PNG, kept so that ``reindex`` can re-embed it) and its embedding by ``model_tag``.

    ``writer_id``/``writer_score`` are the closest enrolled writer when it was indexed (or last
    re-identified); NULL when no writer was enrolled, after the writer was deleted, or after a
    reindex cleared scores of the old model.
    """

    __tablename__ = "document_signatures"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy's own class attribute)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), nullable=False, index=True)
    page: Mapped[int] = mapped_column(Integer, nullable=False)  # 0-based
    x0: Mapped[int] = mapped_column(Integer, nullable=False)
    y0: Mapped[int] = mapped_column(Integer, nullable=False)
    x1: Mapped[int] = mapped_column(Integer, nullable=False)
    y1: Mapped[int] = mapped_column(Integer, nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    crop_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    embedding_dim: Mapped[int] = mapped_column(Integer, nullable=False)
    model_tag: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    preprocess_version: Mapped[str] = mapped_column(String(32), nullable=False)
    quality_score: Mapped[float] = mapped_column(Float, nullable=False)
    writer_id: Mapped[int | None] = mapped_column(
        ForeignKey("writers.id", ondelete="SET NULL"), nullable=True, index=True
    )
    writer_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)
    # Blobs last, as in Reference.
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # little-endian float32
    crop_png: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    document: Mapped[Document] = relationship(back_populates="signatures")


class WriterScoring(Base):
    """How claims against a writer are scored, refitted whenever the writer's references, the
    model (``model_tag``) or the card's claims calibration (``scoring``, its fingerprint) change.

    ``reference_ids`` are the references in use, in the row order the classifier was fitted on;
    ``flagged_ids`` the references kept out because they look unlike the writer's others;
    ``consistency`` maps every reference id to its mean score against the others; ``parameters``
    is the fitted per-writer classifier as plain numbers (:class:`inkproof.claims.WriterModel`),
    NULL for fusion methods.
    """

    __tablename__ = "writer_models"

    writer_id: Mapped[int] = mapped_column(ForeignKey("writers.id", ondelete="CASCADE"), primary_key=True)
    model_tag: Mapped[str] = mapped_column(String(128), nullable=False)
    scoring: Mapped[str] = mapped_column(String(64), nullable=False)
    method: Mapped[str] = mapped_column(String(32), nullable=False)
    reference_ids: Mapped[list[int]] = mapped_column(JSON, nullable=False)
    flagged_ids: Mapped[list[int]] = mapped_column(JSON, nullable=False)
    consistency: Mapped[dict[str, float]] = mapped_column(JSON, nullable=False)
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fitted_at: Mapped[dt.datetime] = mapped_column(nullable=False, default=utcnow)


class ReferenceChange(Base):
    """One reference enrolled (``added``) or deleted, numbered by a store-wide counter: processes
    holding an identification index apply the changes after the number they have seen
    (:mod:`inkproof.store.persistent_index`). Numbers are given under a lock held until commit, so
    they become visible in order."""

    __tablename__ = "reference_changes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reference_id: Mapped[int] = mapped_column(Integer, nullable=False)
    added: Mapped[bool] = mapped_column(Boolean, nullable=False)


class StoreMeta(Base):
    """Store-wide facts: ``model_tag`` and ``embedding_dim`` of the stored embeddings, and
    ``reindex_in_progress`` while a reindex runs."""

    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


__all__ = [
    "DECISIONS",
    "STATUSES",
    "ApiKey",
    "Base",
    "Document",
    "DocumentSignature",
    "Reference",
    "ReferenceChange",
    "StoreMeta",
    "UTCDateTime",
    "VerificationLog",
    "Writer",
    "WriterScoring",
    "utcnow",
]

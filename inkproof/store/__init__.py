"""The enrollment store: reference signatures per writer, claims, identification, human review.

>>> from inkproof import Verifier
>>> from inkproof.store import SignatureStore, open_database
>>> store = SignatureStore(open_database("inkproof.db"), Verifier("model.json"))
>>> store.enroll("alice", ["ref1.png", "ref2.png", "ref3.png"])
>>> store.verify_claim("alice", "query.png").decision      # "genuine" | "forgery" | "review"

SQLAlchemy 2.0 on SQLite (default) or PostgreSQL, with Alembic migrations applied on open.
Torch-free: only numpy, Pillow, onnxruntime (through the verifier) and SQLAlchemy.
"""

from inkproof.artifact import model_tag_of
from inkproof.store.database import Database, DatabaseError, StoreError, open_database, resolve_url
from inkproof.store.documents import (
    DocumentDetail,
    DocumentInfo,
    DocumentMatch,
    DocumentNameTakenError,
    DocumentSearchResult,
    DocumentSignatureInfo,
    DocumentStore,
    FolderIndexResult,
    IndexedDocument,
    InvalidDocumentInputError,
    PageDetectorLike,
    SignatureInput,
    UnknownDocumentError,
)
from inkproof.store.errors import (
    ApiKeyError,
    IdempotencyKeyConflictError,
    InvalidIdempotencyKeyError,
    InvalidWriterIdError,
    ModelRequiredError,
    NoReferencesError,
    QualityError,
    ReindexInProgressError,
    ReviewError,
    StoreModelMismatchError,
    UnknownReferenceError,
)
from inkproof.store.index import (
    INDEX_THRESHOLD,
    ApproximateIndex,
    EmbeddingIndex,
    ExactIndex,
    IndexUnavailableError,
    build_index,
)
from inkproof.store.quality import QualityReport, assess
from inkproof.store.repository import SignatureStore
from inkproof.store.results import (
    ApiKeyInfo,
    Candidate,
    ClaimResult,
    EnrollResult,
    IdentificationResult,
    ImageOutcome,
    ReferenceInfo,
    ReferenceScore,
    ReviewItem,
    StoreInfo,
    WriterDetail,
    WriterInfo,
)

__all__ = [
    "INDEX_THRESHOLD",
    "ApiKeyError",
    "ApiKeyInfo",
    "ApproximateIndex",
    "Candidate",
    "ClaimResult",
    "Database",
    "DatabaseError",
    "DocumentDetail",
    "DocumentInfo",
    "DocumentMatch",
    "DocumentNameTakenError",
    "DocumentSearchResult",
    "DocumentSignatureInfo",
    "DocumentStore",
    "EmbeddingIndex",
    "EnrollResult",
    "ExactIndex",
    "FolderIndexResult",
    "IdempotencyKeyConflictError",
    "IdentificationResult",
    "ImageOutcome",
    "IndexUnavailableError",
    "IndexedDocument",
    "InvalidDocumentInputError",
    "InvalidIdempotencyKeyError",
    "InvalidWriterIdError",
    "ModelRequiredError",
    "NoReferencesError",
    "PageDetectorLike",
    "QualityError",
    "QualityReport",
    "ReferenceInfo",
    "ReferenceScore",
    "ReindexInProgressError",
    "ReviewError",
    "ReviewItem",
    "SignatureInput",
    "SignatureStore",
    "StoreError",
    "StoreInfo",
    "StoreModelMismatchError",
    "UnknownDocumentError",
    "UnknownReferenceError",
    "WriterDetail",
    "WriterInfo",
    "assess",
    "build_index",
    "model_tag_of",
    "open_database",
    "resolve_url",
]

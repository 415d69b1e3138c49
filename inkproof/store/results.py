"""Frozen results of the enrollment store, each turning into a JSON-ready dict, and the literal
values its arguments and results take."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Fusion = Literal["mean", "max"]
FUSIONS: tuple[str, ...] = ("mean", "max")
ClaimDecision = Literal["genuine", "forgery", "review"]
ReviewDecision = Literal["genuine", "forgery"]
QualityPolicy = Literal["reject", "warn"]


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


class JsonResult:
    """Frozen results turn into JSON-ready dicts (datetimes as ISO 8601 strings)."""

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = _jsonable(self)
        return values


@dataclass(frozen=True)
class WriterInfo(JsonResult):
    id: int
    external_id: str
    display_name: str
    created_at: dt.datetime
    references: int


@dataclass(frozen=True)
class ReferenceInfo(JsonResult):
    id: int
    image_sha256: str
    quality_score: float
    model_tag: str
    preprocess_version: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ReferenceCheck(JsonResult):
    """A reference's mean score against the writer's other references; ``flagged`` references
    are far from the others (a mix-up, or a forgery among the references) and are kept out of
    claim scoring until deleted."""

    reference_id: int
    consistency: float | None
    flagged: bool


@dataclass(frozen=True)
class WriterDetail(JsonResult):
    id: int
    external_id: str
    display_name: str
    created_at: dt.datetime
    references: tuple[ReferenceInfo, ...]
    checks: tuple[ReferenceCheck, ...] = ()
    scoring_method: str | None = None


@dataclass(frozen=True)
class ImageOutcome(JsonResult):
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
class EnrollResult(JsonResult):
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
class ReferenceScore(JsonResult):
    reference_id: int
    score: float
    used: bool = True  # False: a flagged reference, shown but not scored
    image_sha256: str | None = None  # logged since revision 0004: which image was compared


@dataclass(frozen=True)
class ClaimResult(JsonResult):
    log_id: int
    external_id: str
    #: None only for a claim returned from the log (a repeated idempotency key) whose writer was
    #: deleted since.
    writer_id: int | None
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
class Candidate(JsonResult):
    rank: int
    writer_id: int
    external_id: str
    display_name: str
    score: float
    reference_id: int


@dataclass(frozen=True)
class IdentificationResult(JsonResult):
    candidates: tuple[Candidate, ...]
    index: str  # "exact", "approximate", or "head" (product heads: every reference scored)
    references: int
    model_tag: str
    query_sha256: str


@dataclass(frozen=True)
class ReviewItem(JsonResult):
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
class ApiKeyInfo(JsonResult):
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
class StoreInfo(JsonResult):
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

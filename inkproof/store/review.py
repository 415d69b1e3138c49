"""The verification log: the review queue, reviewers' decisions, logged claims and their evidence,
audit export and the retention of kept query images."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer

from inkproof.imaging import ImageSource
from inkproof.store.base import StoreBase
from inkproof.store.errors import (
    ReviewError,
)
from inkproof.store.results import (
    ReferenceScore,
    ReviewItem,
)
from inkproof.store.schema import (
    VerificationLog,
    utcnow,
)
from inkproof.validation import InvalidFieldError, clean_row_id, clean_text

if TYPE_CHECKING:
    from inkproof.evidence.record import EvidenceRecord
    from inkproof.store.repository import SignatureStore


MAX_REVIEW_NOTE = 2000


def _log_id(log_id: int) -> int:
    """A log id both databases can look up; anything else names no log."""
    try:
        return clean_row_id(int(log_id), "log id")
    except (InvalidFieldError, TypeError, ValueError):
        raise ReviewError(f"no verification log {log_id}") from None


class ReviewMixin(StoreBase):
    """The review queue and the verification log."""

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

        return claim_evidence(cast("SignatureStore", self), _log_id(log_id), query, max_patches=max_patches)

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

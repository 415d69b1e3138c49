"""Claims against enrolled writers: thresholds, per-writer thresholds and :meth:`verify_claim`,
which scores, decides and logs each claim."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from inkproof.claims import (
    CLASSIFIERS,
    OPERATING_POINTS,
    ClaimsConfigError,
    WriterModel,
    fuse,
    score_claim,
)
from inkproof.imaging import ImageSource, image_digest
from inkproof.store.errors import (
    IdempotencyKeyConflictError,
    InvalidIdempotencyKeyError,
    NoReferencesError,
)
from inkproof.store.helpers import (
    clean_external_id,
    encode_png,
    fuse_scores,
)
from inkproof.store.results import (
    FUSIONS,
    ClaimDecision,
    ClaimResult,
    Fusion,
    ReferenceScore,
)
from inkproof.store.schema import (
    VerificationLog,
    WriterScoring,
    utcnow,
)
from inkproof.store.scoring import ScoringMixin

#: Percentile of a writer's leave-one-out reference scores used as that writer's accept threshold.
WRITER_PERCENTILE = 5.0
#: Longest idempotency key (the column is VARCHAR(128)).
MAX_IDEMPOTENCY_KEY = 128
_CALIBRATED_K = re.compile(r"^calibrated:K=(\d+):")


def clean_idempotency_key(key: object) -> str:
    """A key as given (no normalisation: it is compared byte for byte): 1-128 visible ASCII
    characters, the same on SQLite and PostgreSQL."""
    if not isinstance(key, str):
        raise InvalidIdempotencyKeyError("an idempotency key must be text")
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidIdempotencyKeyError(
            f"an idempotency key must be 1-{MAX_IDEMPOTENCY_KEY} characters, got {len(key)}"
        )
    bad = next((i for i, char in enumerate(key) if not "!" <= char <= "~"), None)
    if bad is not None:
        raise InvalidIdempotencyKeyError(
            f"an idempotency key must be visible ASCII characters (U+{ord(key[bad]):04X} at position {bad + 1})"
        )
    return key


def _logged_result(entry: VerificationLog) -> ClaimResult:
    """The result a logged claim was answered with, rebuilt from its log row alone.

    ``raw_fused_score`` is the plain fusion of the logged per-reference scores that were used (the
    model head's float32 scores: the original fused the same comparisons in float64, so the two
    agree to ~1e-7); ``calibrated_k`` comes from the logged threshold source (None when custom
    thresholds replaced the calibrated ones); ``writer_id`` is None when the writer was deleted
    since.
    """
    scores = tuple(
        ReferenceScore(
            int(item["reference_id"]), float(item["score"]), bool(item.get("used", True)), item.get("image_sha256")
        )
        for item in entry.reference_scores
    )
    method = entry.method or "mean"
    used = np.asarray([item.score for item in scores if item.used], dtype=np.float64)
    raw_fused: float | None = None
    if len(used):
        try:
            raw_fused = float(fuse(used, "mean" if method in CLASSIFIERS else method.partition("+")[0]))
        except ClaimsConfigError:  # a method this version does not know
            raw_fused = None
    source = entry.threshold_source or ""
    k = _CALIBRATED_K.match(source)
    return ClaimResult(
        log_id=entry.id,
        external_id=entry.claimed_external_id,
        writer_id=entry.writer_id,
        decision=cast(ClaimDecision, entry.decision),
        status=entry.status,
        fused_score=entry.fused_score,
        fusion=method,
        accept_threshold=entry.threshold,
        reject_threshold=entry.reject_threshold,
        threshold_source=source,
        reference_scores=scores,
        model_tag=entry.model_tag,
        query_sha256=entry.query_sha256,
        method=method,
        raw_fused_score=raw_fused,
        operating_point=entry.operating_point,
        calibrated_k=int(k.group(1)) if k else None,
        references_used=len(used),
    )


@dataclass(frozen=True)
class _Scoring:
    """What a claim needs of a writer's stored scoring, read out of its session."""

    method: str
    reference_ids: tuple[int, ...]
    parameters: dict[str, Any] | None

    @classmethod
    def of(cls, row: WriterScoring) -> _Scoring:
        return cls(row.method, tuple(int(i) for i in row.reference_ids), row.parameters)


class ClaimsMixin(ScoringMixin):
    """Scores a claim against the writer's references, decides it and logs it."""

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
        return float(np.percentile(fuse_scores(scores, fusion, axis=1), WRITER_PERCENTILE))

    def verify_claim(
        self,
        external_id: str,
        query: ImageSource,
        *,
        fusion: Fusion | None = None,
        operating_point: str | None = None,
        keep_query: bool | None = None,
        idempotency_key: str | None = None,
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

        ``idempotency_key`` (1-128 visible ASCII characters) makes a retried claim cost nothing and
        log nothing: when a claim with that key was logged already, its logged result is returned
        (:func:`_logged_result`; the query is not read again) and otherwise the key is written with
        the new log row, in the same transaction. A key logged for another writer or operating
        point is :class:`IdempotencyKeyConflictError`.
        """
        keep = self.keep_claim_images if keep_query is None else bool(keep_query)
        if fusion is not None and fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        point = operating_point if operating_point is not None else self.operating_point
        if point not in OPERATING_POINTS:
            raise ClaimsConfigError(f"operating point must be one of {', '.join(OPERATING_POINTS)}, got {point!r}")
        external_id = clean_external_id(external_id)
        key = None if idempotency_key is None else clean_idempotency_key(idempotency_key)
        if key is not None:
            # Before anything else: a logged claim is answered even if its writer is gone since.
            logged = self._logged_claim(key, external_id, point)
            if logged is not None:
                return logged
        claims = self.claims
        global_accept, global_reject, global_source = self.thresholds() if claims is None else (0.0, 0.0, "")

        def check(session: Session) -> None:
            self._check_compatible(session)
            self._find_writer(session, external_id)

        self._read(check)  # unknown writers and model mismatches fail before embedding
        gray, vector = self._embed_query(query)
        digest = image_digest(gray)

        hashes: dict[int, str] = {}

        def score(session: Session) -> tuple[int, list[int], np.ndarray, _Scoring | None]:
            self._check_compatible(session)
            writer = self._find_writer(session, external_id)
            ids, matrix = self._writer_embeddings(session, writer.id, digests=hashes)
            if not ids:
                raise NoReferencesError(f"writer {external_id!r} has no reference signatures; enroll some")
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
                fused = raw_fused = float(fuse_scores(raw, method))
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
                    idempotency_key=key,
                )
                session.add(entry)
                session.flush()  # a writer deleted meantime fails the foreign key: retried above
                return entry.id

            try:
                with self.db.session() as session:
                    log_id = log(session)
            except IntegrityError:
                # The same key logged meanwhile (another process retrying this claim): its row is
                # the answer. Any other integrity error goes to _retry, which scores again.
                logged = self._logged_claim(key, external_id, point) if key is not None else None
                if logged is None:
                    raise
                return logged
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

    def _logged_claim(self, key: str, external_id: str, point: str) -> ClaimResult | None:
        """The logged result of the claim with ``key``, or None when there is none."""

        def work(session: Session) -> VerificationLog | None:
            query = (
                select(VerificationLog)
                .where(VerificationLog.idempotency_key == key)
                .options(defer(VerificationLog.query_png))
            )
            return session.scalars(query).one_or_none()

        entry = self._read(work)
        if entry is None:
            return None
        # The logged operating point is None for uncalibrated models: then there is none to compare.
        if entry.claimed_external_id != external_id or entry.operating_point not in (None, point):
            raise IdempotencyKeyConflictError(
                f"idempotency key {key!r} was used for claim {entry.id} on writer {entry.claimed_external_id!r}"
                f" at operating point {entry.operating_point}, not on {external_id!r} at {point}"
            )
        return _logged_result(entry)

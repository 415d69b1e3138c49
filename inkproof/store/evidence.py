"""The evidence of a logged claim, rebuilt from the log alone: the logged query image (kept for
review items, and for every claim when the store keeps claim images), the logged reference ids
and hashes, the stored reference images and the model. The decision is recomputed with the
logged thresholds and compared with the logged one (:class:`inkproof.evidence.Reproduction`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from inkproof.claims import FUSIONS, WriterModel, score_claim
from inkproof.evidence.features import measure
from inkproof.evidence.record import (
    MAX_PATCHES,
    EvidenceRecord,
    Reproduction,
    compare,
    model_provenance,
    now_iso,
    query_png,
    with_used,
)
from inkproof.imaging import ImageSource, image_digest, load_image
from inkproof.store.database import StoreError
from inkproof.store.helpers import embedding_matrix, fuse_scores
from inkproof.store.schema import Reference, WriterScoring

if TYPE_CHECKING:
    from inkproof.store.repository import SignatureStore

__all__ = ["EvidenceUnavailableError", "claim_evidence"]

#: Scores recomputed from the stored images may differ from the logged ones by float rounding only.
TOLERANCE = 1e-4


class EvidenceUnavailableError(StoreError, ValueError):
    """Evidence that cannot be built as asked (e.g. an image that is not the logged query)."""


def _decide(score: float, accept: float, reject: float) -> str:
    if score >= accept:
        return "genuine"
    return "forgery" if score < reject else "review"


def claim_evidence(
    store: SignatureStore, log_id: int, query: ImageSource | None = None, *, max_patches: int | None = None
) -> EvidenceRecord:
    start = time.perf_counter()
    item = store.get_log(log_id)
    stored = store.query_image(log_id)
    gray: np.ndarray | None = None
    if stored is not None:
        gray = load_image(stored)
    elif query is not None:
        gray = store._load(query)  # no ink check: only the logged query, which had ink, gets past the digest
        if image_digest(gray) != item.query_sha256:
            raise EvidenceUnavailableError(f"the image given is not the query of verification {log_id}")
    logged = list(item.reference_scores)
    ids = [r.reference_id for r in logged]

    def read(session: Session) -> tuple[dict[int, tuple[str, str, bytes, bytes]], WriterScoring | None]:
        rows = session.execute(
            select(
                Reference.id, Reference.image_sha256, Reference.model_tag, Reference.embedding, Reference.image_png
            ).where(Reference.id.in_(ids))
        ).all()
        scoring = session.get(WriterScoring, item.writer_id) if item.writer_id is not None else None
        if scoring is not None:
            session.expunge(scoring)
        return {int(r[0]): (str(r[1]), str(r[2]), bytes(r[3]), bytes(r[4])) for r in rows}, scoring

    references, scoring = store._read(read) if ids else ({}, None)
    present = [r for r in logged if r.reference_id in references]
    hashes_match = all(r.image_sha256 is None or references[r.reference_id][0] == r.image_sha256 for r in present)
    review: dict[str, Any] | None = None
    if item.status == "reviewed":
        review = {
            "reviewer": item.reviewer,
            "decision": item.reviewer_decision,
            "note": item.review_note,
            "reviewed_at": item.reviewed_at.isoformat() if item.reviewed_at else None,
        }
    common: dict[str, Any] = {
        "kind": "claim",
        "created_at": now_iso(),
        "model": model_provenance(store.verifier),
        "query_sha256": item.query_sha256,
        "decision": item.decision,
        "score": item.fused_score,
        "accept_threshold": item.threshold,
        "reject_threshold": item.reject_threshold,
        "threshold_source": item.threshold_source or "not logged",
        "method": item.method or "not logged",
        "operating_point": item.operating_point,
        "log_id": item.log_id,
        "claimed_external_id": item.claimed_external_id,
        "decided_at": item.created_at.isoformat(),
        "review": review,
    }
    if gray is None:
        # Without the query only the log itself can be shown: scores, thresholds, provenance.
        return EvidenceRecord(query_features=None, comparisons=(), build_seconds=time.perf_counter() - start, **common)

    q_input, comparisons, _ = compare(
        store.verifier,
        gray,
        [(r.reference_id, references[r.reference_id][0], load_image(references[r.reference_id][3])) for r in present],
        max_patches=MAX_PATCHES if max_patches is None else max_patches,
    )
    recomputed = {c.reference_id: c.score for c in comparisons}
    same_model = item.model_tag == store.model_tag and all(
        references[r.reference_id][1] == store.model_tag for r in present
    )
    complete = len(present) == len(logged) and hashes_match
    notes: list[str] = []
    fused: float | None = None
    used = [r.reference_id for r in logged if r.used]
    if not same_model:
        notes.append(f"logged with model {item.model_tag}, rebuilt with {store.model_tag}")
    if not complete:
        notes.append("a logged reference was deleted or replaced since")
    method = item.method or "mean"
    if item.method is None:
        notes.append("the scoring method was not logged (before revision 0004): assumed mean")
    if complete:
        raw_used = np.array([recomputed[i] for i in used], dtype=np.float64)
        if method in FUSIONS:
            fused = float(fuse_scores(raw_used, method))
        elif scoring is not None and scoring.method == method and [int(i) for i in scoring.reference_ids] == used:
            claims = store.claims
            blobs = [references[i][2] for i in used]
            result = score_claim(
                method,
                store._embed([gray]),
                embedding_matrix(blobs, store.card.embedding_dim),
                cohort=claims[1] if claims is not None else None,
                model=WriterModel.from_dict(scoring.parameters) if scoring.parameters else None,
                pair_matrix=store._pair_matrix,
            )
            fused = float(result.score[0])
        else:
            notes.append("the writer's scoring was refitted since (references changed)")
    decision = _decide(fused, item.threshold, item.reject_threshold) if fused is not None else None
    scores_match = all(abs(recomputed[r.reference_id] - r.score) <= TOLERANCE for r in present)
    if not scores_match:
        notes.append("recomputed reference scores differ from the logged ones")
    matches = (
        same_model
        and complete
        and scores_match
        and fused is not None
        and abs(fused - item.fused_score) <= TOLERANCE
        and decision == item.decision
    )
    reproduction = Reproduction(
        logged_model_tag=item.model_tag,
        logged_scores=tuple(r.score for r in logged),
        recomputed_scores=tuple(recomputed.get(r.reference_id) for r in logged),
        logged_fused_score=item.fused_score,
        recomputed_fused_score=fused,
        logged_decision=item.decision,
        recomputed_decision=decision,
        same_model=same_model,
        references_present=complete,
        matches=bool(matches),
        note="; ".join(notes),
    )
    return EvidenceRecord(
        query_features=measure(q_input),
        comparisons=with_used(comparisons, {r.reference_id: r.used for r in present}),
        build_seconds=time.perf_counter() - start,
        query_image=query_png(q_input),
        reproduction=reproduction,
        **common,
    )

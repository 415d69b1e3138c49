"""A claim's evidence rebuilt from the log alone (bundled model, per-writer classifier scoring)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inkproof.data.synthetic import sample_signatures
from inkproof.store import SignatureStore, open_database
from inkproof.store.evidence import EvidenceUnavailableError
from inkproof.verifier import Verifier


@pytest.fixture(scope="module")
def bundled() -> Iterator[Verifier]:
    with Verifier() as verifier:
        yield verifier


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """One writer's genuine signatures 0-5, then forgeries of them."""
    rendered = sample_signatures(12, seed=5, writers=1)  # even: genuine, odd: forged
    return rendered[0::2] + rendered[1::2]


def _store(path: Path, verifier: Verifier, **options: object) -> SignatureStore:
    # Thresholds no score reaches from either side: every claim goes to review.
    return SignatureStore(open_database(path), verifier, accept_threshold=1e6, reject_threshold=-1e6, **options)  # type: ignore[arg-type]


def test_a_reviewed_claims_evidence_is_reproduced_from_the_log_alone(
    tmp_path: Path, bundled: Verifier, images: list[np.ndarray]
) -> None:
    store = _store(tmp_path / "s.db", bundled)
    store.enroll("W", images[:5])
    claim = store.verify_claim("W", images[5])
    assert claim.decision == "review"
    store.review(claim.log_id, "genuine", "examiner", note="overlay and slant agree")
    store.db.dispose()

    reopened = _store(tmp_path / "s.db", bundled)  # a new process: only the database is shared
    record = reopened.claim_evidence(claim.log_id)
    reproduction = record.reproduction
    assert reproduction is not None and reproduction.matches, reproduction
    logged = {r.reference_id: r for r in claim.reference_scores}
    assert [c.reference_id for c in record.comparisons] == [r.reference_id for r in claim.reference_scores]
    for comparison in record.comparisons:
        assert comparison.score == pytest.approx(logged[comparison.reference_id].score, abs=1e-4)
        assert comparison.reference_sha256 == logged[comparison.reference_id].image_sha256
    stored_hashes = {r.id: r.image_sha256 for r in reopened.get_writer("W").references}
    assert {c.reference_id: c.reference_sha256 for c in record.comparisons} == stored_hashes
    assert reproduction.recomputed_fused_score == pytest.approx(claim.fused_score, abs=1e-4)
    assert record.decision == reproduction.recomputed_decision == "review"
    assert record.method == claim.method and record.threshold_source == claim.threshold_source
    assert record.review is not None and record.review["note"] == "overlay and slant agree"
    assert record.review["decision"] == "genuine"
    assert record.model.tag == claim.model_tag and record.query_sha256 == claim.query_sha256
    as_json = record.to_dict()
    assert as_json["comparisons"][0]["images"]["overlay"].startswith("data:image/png;base64,")

    # A reference deleted since: the evidence says the decision can no longer be reproduced.
    reopened.delete_reference("W", claim.reference_scores[0].reference_id)
    changed = reopened.claim_evidence(claim.log_id).reproduction
    assert changed is not None and not changed.matches and not changed.references_present
    # The writer deleted: the log entry stays, and so does what it can show.
    reopened.delete_writer("W")
    orphan = reopened.claim_evidence(claim.log_id)
    assert orphan.comparisons == () and orphan.reproduction is not None and not orphan.reproduction.matches
    assert orphan.score == claim.fused_score and orphan.query_features is not None


def test_decided_claims_keep_their_query_only_when_asked(
    tmp_path: Path, bundled: Verifier, images: list[np.ndarray]
) -> None:
    store = SignatureStore(open_database(tmp_path / "d.db"), bundled, accept_threshold=-1e6)
    store.enroll("W", images[:3])
    plain = store.verify_claim("W", images[5])
    kept = store.verify_claim("W", images[5], keep_query=True)
    assert plain.decision == kept.decision == "genuine"
    bare = store.claim_evidence(plain.log_id)
    assert bare.comparisons == () and bare.reproduction is None and bare.query_features is None
    assert bare.score == plain.fused_score  # what the log alone can show
    # The caller's copy of the query fills the gap, but only the logged query is accepted.
    assert store.claim_evidence(plain.log_id, images[5]).reproduction.matches  # type: ignore[union-attr]
    with pytest.raises(EvidenceUnavailableError):
        store.claim_evidence(plain.log_id, images[6])
    full = store.claim_evidence(kept.log_id, max_patches=20)
    assert full.reproduction is not None and full.reproduction.matches
    assert all(c.sensitivity.patches <= 20 for c in full.comparisons)
    assert store.purge_query_images(__import__("datetime").timedelta(0)) >= 1  # the retention covers them
    assert store.claim_evidence(kept.log_id).comparisons == ()
    exported = store.export_log()
    assert [e.log_id for e in exported] == [plain.log_id, kept.log_id]
    assert exported[0].method == plain.method and exported[0].reference_scores[0].image_sha256


def test_log_export_csv_quotes_typed_text_not_scores() -> None:
    import csv
    import datetime as dt
    import io

    from inkproof.store.audit import write_log
    from inkproof.store.results import ReferenceScore, ReviewItem

    now = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    item = ReviewItem(
        log_id=1,
        claimed_external_id="=HYPERLINK()",
        writer_id=1,
        decision="review",
        status="reviewed",
        fused_score=-0.25,
        threshold=0.5,
        reject_threshold=-0.5,
        reference_scores=(ReferenceScore(3, -0.125, True, "ab"),),
        reviewer="-ana",
        reviewer_decision="forgery",
        reviewed_at=now,
        created_at=now,
        model_tag="m:1",
        query_sha256="cd",
        has_query_image=False,
        review_note="@note",
    )
    (row,) = csv.DictReader(io.StringIO(write_log([item], "csv")))
    assert (row["claimed_external_id"], row["reviewer"], row["review_note"]) == ("'=HYPERLINK()", "'-ana", "'@note")
    assert row["reference_scores"] == "-0.125000" and float(row["fused_score"]) == -0.25

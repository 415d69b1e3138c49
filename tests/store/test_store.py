"""The store's behaviour on both backends (SQLite file, real PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from inkproof.errors import InkproofError, UnknownWriterError
from inkproof.imaging import ImageSource, load_image
from inkproof.store import (
    ApiKeyError,
    Database,
    InvalidWriterIdError,
    ModelRequiredError,
    NoReferencesError,
    QualityError,
    ReviewError,
    SignatureStore,
    UnknownReferenceError,
)
from inkproof.store.schema import ApiKey, VerificationLog
from inkproof.verifier import Verifier
from tests.helpers import draw_scribble
from tests.store.test_quality import speckles

Signatures = Callable[[str, str], list[Path]]


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_enroll_claim_list_show_delete(store: SignatureStore, signatures: Signatures, verifier: Verifier) -> None:
    alice = signatures("W001", "genuine")
    result = store.enroll("W001", alice[:5], display_name="Alice")
    assert result.writer_created and result.added == 5 and result.references == 5
    assert result.duplicates == 0 and result.rejected == 0
    assert [o.index for o in result.images] == [0, 1, 2, 3, 4]
    assert all(o.accepted and o.reference_id and len(o.sha256 or "") == 64 for o in result.images)
    assert all(o.quality_score is not None and o.quality_score >= 0.5 for o in result.images)
    assert result.writer.display_name == "Alice" and result.writer.created_at.tzinfo == dt.UTC
    json.dumps(result.to_dict())
    assert store.enroll("W002", signatures("W002", "genuine")[:3]).references == 3

    writers = store.list_writers()
    assert [(w.external_id, w.display_name, w.references) for w in writers] == [
        ("W001", "Alice", 5),
        ("W002", "W002", 3),
    ]
    detail = store.get_writer("W001")
    assert [r.id for r in detail.references] == [o.reference_id for o in result.images]
    assert [r.image_sha256 for r in detail.references] == [o.sha256 for o in result.images]
    assert {r.model_tag for r in detail.references} == {store.model_tag}
    first = detail.references[0].id
    stored = Image.open(io.BytesIO(store.reference_image(first)))
    assert stored.format == "PNG" and stored.mode == "L"
    assert np.array_equal(np.asarray(stored), load_image(alice[0]))

    # A claim: every reference scored, fused (mean or max), decided, logged.
    claim = store.verify_claim("W001", alice[5])
    expected = verifier.score_embeddings(
        np.repeat(verifier.embed_many([alice[5]]), 5, axis=0), verifier.embed_many(alice[:5])
    )
    assert [s.reference_id for s in claim.reference_scores] == [r.id for r in detail.references]
    assert [s.score for s in claim.reference_scores] == pytest.approx(expected, abs=1e-5)
    assert claim.fused_score == pytest.approx(float(np.mean(expected)), abs=1e-5)
    assert claim.decision in ("genuine", "forgery", "review") and claim.model_tag == store.model_tag
    assert store.verify_claim("W001", alice[5], fusion="max").fused_score == pytest.approx(
        float(np.max(expected)), abs=1e-5
    )
    log = store.get_log(claim.log_id)
    assert log.claimed_external_id == "W001" and log.fused_score == claim.fused_score
    assert [s.score for s in log.reference_scores] == [s.score for s in claim.reference_scores]
    assert json.loads(json.dumps(claim.to_dict()))["accepted"] == claim.accepted

    with pytest.raises(UnknownWriterError):
        store.verify_claim("nobody", alice[5])
    with pytest.raises(ValueError, match="fusion"):
        store.verify_claim("W001", alice[5], fusion="median")  # type: ignore[arg-type]
    store.create_writer("empty")
    with pytest.raises(NoReferencesError):
        store.verify_claim("empty", alice[5])
    assert store.info().verifications == 2  # failed claims are not logged

    store.delete_writer("W001")
    assert [w.external_id for w in store.list_writers()] == ["W002", "empty"]
    with pytest.raises(UnknownWriterError):
        store.get_writer("W001")
    with pytest.raises(UnknownReferenceError):
        store.reference_image(first)
    with pytest.raises(UnknownWriterError):
        store.delete_writer("W001")
    # The audit trail survives the writer.
    kept = store.get_log(claim.log_id)
    assert kept.claimed_external_id == "W001" and kept.writer_id is None
    info = store.info()
    assert (info.writers, info.references, info.verifications) == (2, 3, 2) and info.consistent


def test_quality_rejections_are_reported(store: SignatureStore, signatures: Signatures) -> None:
    good = signatures("W003", "genuine")[0]
    blank = np.full((200, 400), 240, dtype=np.uint8)
    tiny = draw_scribble(width=40, height=20)
    images: list[ImageSource] = [blank, tiny, speckles(), b"not an image", good]
    result = store.enroll("W003", images)
    assert (result.added, result.rejected) == (1, 4)
    problems = {o.index: o.problems for o in result.images}
    assert problems[0] == ("blank (no ink found)",)
    assert problems[1][0].startswith("too small (40x20 px; at least")
    assert any("too many ink components" in p for p in problems[2])
    assert "not an image" in problems[3][0] and result.images[3].sha256 is None
    assert result.images[4].accepted and result.images[4].problems == ()
    assert [o.reference_id is None for o in result.images] == [True, True, True, True, False]

    with pytest.raises(QualityError) as error:
        store.enroll("W004", [blank, speckles(seed=2)])
    assert "blank (no ink found)" in str(error.value) and "too many ink components" in str(error.value)
    assert len(error.value.outcomes) == 2 and isinstance(error.value, InkproofError)
    assert "W004" not in [w.external_id for w in store.list_writers()]  # nothing written
    with pytest.raises(QualityError, match="no images"):
        store.enroll("W004", [])

    warned = store.enroll("W004", [speckles(seed=3)], quality="warn")
    assert warned.added == 1 and warned.images[0].accepted
    assert any("too many ink components" in p for p in warned.images[0].problems)
    assert store.get_writer("W004").references[0].quality_score < 0.5
    with pytest.raises(InvalidWriterIdError):
        store.enroll("  ", [good])


def test_enrolling_an_image_twice_is_a_reported_no_op(store: SignatureStore, signatures: Signatures) -> None:
    g = signatures("W005", "genuine")
    first = store.enroll("W005", [g[0], g[1], g[0]])
    assert (first.added, first.duplicates, first.references) == (2, 1, 2)
    assert first.images[2].duplicate and first.images[2].reference_id == first.images[0].reference_id
    # The same pixels given as bytes or as an array are the same image.
    again = store.enroll("W005", [g[0].read_bytes(), g[2]])
    assert (again.added, again.duplicates, again.references) == (1, 1, 3)
    assert not again.writer_created
    assert again.images[0].reference_id == first.images[0].reference_id
    array = store.enroll("W005", [load_image(g[1])])
    assert (array.added, array.duplicates, array.references) == (0, 1, 3)
    # Another writer may enroll the same image.
    assert store.enroll("W006", [g[0]]).added == 1


def test_create_writer_is_get_or_create(store: SignatureStore) -> None:
    created = store.create_writer("bob", "Bob")
    again = store.create_writer("bob")
    assert created.id == again.id and again.display_name == "Bob" and again.references == 0
    assert store.create_writer("bob", "Robert").display_name == "Robert"
    with pytest.raises(InvalidWriterIdError):
        store.create_writer("")
    with pytest.raises(InvalidWriterIdError):
        store.create_writer("x" * 300)


def test_decisions_follow_the_thresholds(database: Database, pixel_verifier: Verifier, signatures: Signatures) -> None:
    g = signatures("W007", "genuine")
    SignatureStore(database, pixel_verifier).enroll("W007", g[:4])  # below the per-writer minimum
    query = signatures("W007", "forged")[0]

    def claim(accept: float | None, reject: float | None) -> tuple[str, str, float, float, float]:
        store = SignatureStore(database, pixel_verifier, accept_threshold=accept, reject_threshold=reject)
        result = store.verify_claim("W007", query)
        return (
            result.decision,
            result.status,
            result.fused_score,
            result.accept_threshold,
            result.reject_threshold,
        )

    score = claim(None, None)[2]
    up = float(np.nextafter(score, np.inf))
    assert claim(score, score)[:2] == ("genuine", "decided")  # accept iff score >= threshold
    assert claim(up, score)[:2] == ("review", "pending_review")
    assert claim(up + 1.0, up)[:2] == ("forgery", "decided")
    # A reject threshold above the accept threshold is capped at it: no review band.
    assert claim(score, up + 1.0)[3:] == (score, score)
    # 0.0 is a threshold like any other, from a card or given directly.
    decision, _, fused, accept, reject = claim(0.0, 0.0)
    assert (accept, reject) == (0.0, 0.0) and decision == ("genuine" if fused >= 0.0 else "forgery")
    result = SignatureStore(database, pixel_verifier, accept_threshold=0.0).verify_claim("W007", query)
    assert result.threshold_source == "custom" and result.accept_threshold == 0.0


def test_zero_thresholds_on_the_card(
    database: Database, pixel_card: Path, signatures: Signatures, tmp_path: Path
) -> None:
    from tests.store.conftest import model_copy

    zero = model_copy(pixel_card, tmp_path / "zero", thresholds={"eer": 0.0, "far_1": 0.0, "far_0_1": 0.0})
    with Verifier(zero, device="cpu") as verifier:
        store = SignatureStore(database, verifier)
        store.enroll("W008", signatures("W008", "genuine")[:3])
        result = store.verify_claim("W008", signatures("W001", "genuine")[0])
    assert (result.accept_threshold, result.reject_threshold, result.threshold_source) == (
        0.0,
        0.0,
        "global:far_1",
    )
    assert result.decision == ("genuine" if result.fused_score >= 0.0 else "forgery")


def test_the_per_writer_threshold_only_tightens(
    database: Database, pixel_verifier: Verifier, signatures: Signatures
) -> None:
    g = signatures("W009", "genuine")
    loose = SignatureStore(database, pixel_verifier, accept_threshold=-1.0, reject_threshold=-1.0)
    loose.enroll("W009", g[:5])
    loose.enroll("W010", signatures("W010", "genuine")[:4])
    # The expected value: 5th percentile of leave-one-out mean scores of the references.
    embeddings = pixel_verifier.embed_many(g[:5])
    pairs = [(i, j) for i in range(5) for j in range(5) if i != j]
    scores = pixel_verifier.score_embeddings(
        embeddings[[i for i, _ in pairs]], embeddings[[j for _, j in pairs]]
    ).reshape(5, 4)
    own = float(np.percentile(scores.mean(axis=1), 5.0))
    assert -1.0 < own < 1.0

    result = loose.verify_claim("W009", g[5])
    assert result.threshold_source == "writer" and result.accept_threshold == pytest.approx(own, abs=1e-5)
    assert result.reject_threshold == -1.0
    assert result.decision == ("genuine" if result.fused_score >= result.accept_threshold else "review")
    # A global threshold above the writer's own is kept: per-writer values never loosen it.
    strict = SignatureStore(database, pixel_verifier, accept_threshold=own + 0.01, reject_threshold=-1.0)
    kept = strict.verify_claim("W009", g[5])
    assert kept.accept_threshold == own + 0.01 and kept.threshold_source == "custom"
    # Below the minimum number of references the global threshold applies.
    few = loose.verify_claim("W010", g[5])
    assert few.accept_threshold == -1.0 and few.threshold_source == "custom"
    # Card thresholds name their rule.
    card_based = SignatureStore(database, pixel_verifier, per_writer_min_references=50)
    assert card_based.verify_claim("W009", g[5]).threshold_source == "global:far_1"
    with pytest.raises(ValueError, match="at least 2"):
        SignatureStore(database, pixel_verifier, per_writer_min_references=1)


def test_review_queue(database: Database, pixel_verifier: Verifier, signatures: Signatures) -> None:
    g = signatures("W002", "genuine")
    undecided = SignatureStore(database, pixel_verifier, accept_threshold=2.0, reject_threshold=-2.0)
    undecided.enroll("W002", g[:3])
    first = undecided.verify_claim("W002", g[3])
    second = undecided.verify_claim("W002", g[4])
    decided = SignatureStore(database, pixel_verifier, accept_threshold=-2.0).verify_claim("W002", g[5])
    assert (first.decision, first.status) == ("review", "pending_review")
    assert (decided.decision, decided.status) == ("genuine", "decided")

    pending = undecided.pending_reviews()
    assert [item.log_id for item in pending] == [first.log_id, second.log_id]
    assert all(item.has_query_image and item.status == "pending_review" for item in pending)
    assert [item.log_id for item in undecided.pending_reviews(limit=1)] == [first.log_id]
    image = undecided.query_image(first.log_id)
    assert image is not None and np.array_equal(np.asarray(Image.open(io.BytesIO(image))), load_image(g[3]))
    assert undecided.query_image(decided.log_id) is None  # only review items keep the query

    reviewed = undecided.review(first.log_id, "forgery", "alice")
    assert (reviewed.status, reviewed.decision, reviewed.reviewer_decision) == (
        "reviewed",
        "review",
        "forgery",
    )
    assert reviewed.reviewer == "alice" and reviewed.reviewed_at is not None
    assert reviewed.reviewed_at.tzinfo == dt.UTC
    assert [item.log_id for item in undecided.pending_reviews()] == [second.log_id]

    with pytest.raises(ReviewError, match="already reviewed by alice"):
        undecided.review(first.log_id, "genuine", "bob")
    with pytest.raises(ReviewError, match="decided automatically"):
        undecided.review(decided.log_id, "forgery", "bob")
    with pytest.raises(ReviewError, match="'genuine' or 'forgery'"):
        undecided.review(second.log_id, "maybe", "bob")
    with pytest.raises(ReviewError, match="reviewer"):
        undecided.review(second.log_id, "genuine", "  ")
    with pytest.raises(ReviewError, match="no verification log"):
        undecided.review(10_000, "genuine", "bob")
    with pytest.raises(ReviewError, match="no verification log"):
        undecided.query_image(10_000)
    assert undecided.get_log(second.log_id).status == "pending_review"  # untouched by the failures
    assert undecided.review(second.log_id, "genuine", "bob").reviewer_decision == "genuine"
    assert undecided.pending_reviews() == []


def test_identify_ranks_writers_by_their_best_reference(
    database: Database, pixel_verifier: Verifier, signatures: Signatures
) -> None:
    store = SignatureStore(database, pixel_verifier)
    assert store.identify(signatures("W001", "genuine")[0]).candidates == ()
    writers = [f"W{i:03d}" for i in range(1, 9)]
    for writer in writers:
        store.enroll(writer, signatures(writer, "genuine")[:4])
    for writer in writers:
        enrolled = signatures(writer, "genuine")[1]
        result = store.identify(enrolled, top=3)
        assert result.index == "exact" and result.references == 32 and len(result.candidates) == 3
        best = result.candidates[0]
        assert best.external_id == writer and best.score == pytest.approx(1.0, abs=1e-5)
        assert best.reference_id == store.get_writer(writer).references[1].id
        assert [c.rank for c in result.candidates] == [1, 2, 3]
        assert len({c.writer_id for c in result.candidates}) == 3
        scores = [c.score for c in result.candidates]
        assert scores == sorted(scores, reverse=True)
        # Each candidate's score is its best reference's score under the model's head.
        query = pixel_verifier.embed_many([enrolled])
        for candidate in result.candidates:
            references = pixel_verifier.embed_many(signatures(candidate.external_id, "genuine")[:4])
            expected = pixel_verifier.score_embeddings(np.repeat(query, 4, axis=0), references).max()
            assert candidate.score == pytest.approx(float(expected), abs=1e-5)
        approximate = store.identify(enrolled, top=3, force="approximate")
        assert approximate.index == "approximate"
        assert [c.writer_id for c in approximate.candidates] == [c.writer_id for c in result.candidates]
    unseen = store.identify(signatures("W004", "genuine")[5], top=8)
    assert len(unseen.candidates) == 8 and unseen.candidates[0].external_id == "W004"
    assert len(store.identify(signatures("W004", "genuine")[5], top=50).candidates) == 8
    with pytest.raises(ValueError, match="top"):
        store.identify(signatures("W004", "genuine")[5], top=0)


def test_identify_checks_the_store_while_it_embeds_and_reports_either_failure(
    database: Database, pixel_verifier: Verifier, verifier: Verifier, signatures: Signatures
) -> None:
    from inkproof.errors import NoInkError
    from inkproof.store import StoreModelMismatchError
    from inkproof.store.helpers import META_MODEL_TAG, changes_counter

    store = SignatureStore(database, pixel_verifier)
    assert store._read(store._check_compatible_and_counter) == ({}, 0)  # no metadata rows yet
    store.enroll("W001", signatures("W001", "genuine")[:3])
    store.enroll("W002", signatures("W002", "genuine")[:3])
    meta, counter = store._read(store._check_compatible_and_counter)  # one statement for both
    assert meta[META_MODEL_TAG] == store.model_tag and counter == store._read(changes_counter) >= 6
    blank = np.full((120, 300), 245, dtype=np.uint8)
    for _ in range(3):  # each time the background check ends before the session closes
        with pytest.raises(NoInkError):
            store.identify(blank)
    assert store.identify(signatures("W002", "genuine")[4]).candidates[0].external_id == "W002"
    other = SignatureStore(database, verifier)  # another model: the store's check fails in the background
    with pytest.raises(StoreModelMismatchError):
        other.identify(signatures("W002", "genuine")[4])
    with pytest.raises(NoInkError):  # the query's own problem is reported first, as it always was
        other.identify(blank)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_product_heads_score_every_reference(
    database: Database, onnx_model: Path, signatures: Signatures, tmp_path: Path
) -> None:
    from tests.store.conftest import pixel_model

    with Verifier(pixel_model(onnx_model, tmp_path / "product", head="product"), device="cpu") as product:
        store = SignatureStore(database, product)
        for writer in ("W001", "W002", "W003", "W004"):
            store.enroll(writer, signatures(writer, "genuine")[:3])
        query = signatures("W002", "genuine")[4]
        found = store.identify(query, top=3)
        with pytest.raises(ValueError, match="cannot be indexed"):
            store.identify(query, force="approximate")
    # The same embeddings and head declared "cosine" give the same answer through the index.
    indexed = pixel_model(onnx_model, tmp_path / "cosine", name="pixelgrid", head="cosine")
    with Verifier(indexed, device="cpu") as cosine:
        same = SignatureStore(database, cosine)
        assert same.model_tag == store.model_tag
        expected = same.identify(query, top=3)
    assert found.index == "head" and expected.index == "exact"
    assert [(c.external_id, c.reference_id) for c in found.candidates] == [
        (c.external_id, c.reference_id) for c in expected.candidates
    ]
    assert [c.score for c in found.candidates] == pytest.approx([c.score for c in expected.candidates])


def test_api_keys(store: SignatureStore, database: Database) -> None:
    key = store.create_api_key("frontend")
    assert key.startswith("ink_") and len(key) > 40
    assert store.check_api_key(key)
    assert not store.check_api_key(key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert not store.check_api_key("")
    assert not store.check_api_key("ink_short")
    other = store.create_api_key("batch")
    assert other != key and store.check_api_key(other)
    with database.session(write=False) as session:
        rows = session.scalars(select(ApiKey)).all()
    stored = {row.name: row for row in rows}
    assert stored["frontend"].key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert stored["frontend"].key_prefix == key[:8]
    assert all(key not in (row.key_hash, row.name, row.key_prefix) for row in rows)  # only its hash
    with pytest.raises(ApiKeyError, match="exists"):
        store.create_api_key("frontend")
    with pytest.raises(ApiKeyError):
        store.create_api_key(" ")

    revoked = store.revoke_api_key("frontend")
    assert not revoked.active and revoked.revoked_at is not None
    assert not store.check_api_key(key) and store.check_api_key(other)
    assert store.revoke_api_key("frontend").revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(ApiKeyError, match="no API key"):
        store.revoke_api_key("nope")
    listed = store.list_api_keys()
    assert [(k.name, k.active) for k in listed] == [("batch", True), ("frontend", False)]
    assert "key_hash" not in listed[0].to_dict()


def test_log_rows_keep_the_whole_claim(store: SignatureStore, signatures: Signatures, database: Database) -> None:
    g = signatures("W006", "genuine")
    store.enroll("W006", g[:2])
    claim = store.verify_claim("W006", g[2])
    with database.session(write=False) as session:
        row = session.get(VerificationLog, claim.log_id)
        assert row is not None
        assert row.reference_scores == [s.to_dict() for s in claim.reference_scores]
        assert (row.threshold, row.reject_threshold) == (claim.accept_threshold, claim.reject_threshold)
        assert row.query_sha256 == claim.query_sha256 and row.model_tag == store.model_tag
        assert (row.query_png is not None) == (claim.decision == "review")


def test_a_store_without_a_model_serves_maintenance_only(
    database: Database, verifier: Verifier, signatures: Signatures
) -> None:
    SignatureStore(database, verifier).enroll("W001", signatures("W001", "genuine")[:2])
    plain = SignatureStore(database, None)
    assert [w.references for w in plain.list_writers()] == [2]
    assert plain.check_api_key(plain.create_api_key("ops"))
    assert plain.pending_reviews() == []
    info = plain.info()
    assert info.model_tag is None and info.stored_model_tag is not None and info.consistent
    image = signatures("W001", "genuine")[3]
    for call in (
        lambda: plain.enroll("W002", [image]),
        lambda: plain.verify_claim("W001", image),
        lambda: plain.identify(image),
        lambda: plain.reindex(),
    ):
        with pytest.raises(ModelRequiredError, match="needs a model"):
            call()
    plain.delete_writer("W001")
    assert plain.list_writers() == []

"""Writer-dependent claim scoring in the store, on both backends: the per-writer classifier is
stored with the writer, survives a restart, is refitted when references change, the model or the
calibration changes; an odd reference is flagged at enrollment and kept out of scoring."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from inkproof.claims import METHODS, ClaimsConfigError, WriterModel, cosine_matrix, score_claim
from inkproof.store import Database, SignatureStore
from inkproof.store.schema import WriterScoring
from inkproof.verifier import Verifier

Signatures = Callable[[str, str], list[Path]]
POINTS = {"eer": 0.0, "far-skilled-5": 0.5, "far-skilled-1": 1.0}


def claims_model(pixel_card: Path, folder: Path, cohort: np.ndarray, *, chosen: dict[int, str], outlier: float) -> Path:
    """A copy of the pixel model with a cohort and a hand-written claims section."""
    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads(pixel_card.read_text())
    for name in card["files"].values():
        shutil.copyfile(pixel_card.parent / name, folder / name)
    np.save(folder / "cohort.npy", cohort.astype(np.float32), allow_pickle=False)
    digest = hashlib.sha256((folder / "cohort.npy").read_bytes()).hexdigest()
    card["files"]["cohort"] = "cohort.npy"
    card["sha256"]["cohort.npy"] = digest
    card["claims"] = {
        "version": 1,
        "chosen": {str(k): m for k, m in chosen.items()},
        "thresholds": {str(k): {m: dict(POINTS) for m in METHODS} for k in chosen},
        "cohort": {"file": "cohort.npy", "sha256": digest},
        "outlier_threshold": outlier,
        "settings": {"svm-rbf": {"C": 1.0, "gamma": 4.0}},
    }
    (folder / "model.json").write_text(json.dumps(card, indent=2))
    return folder / "model.json"


def outlier_between(verifier: Verifier, own: list[Path], odd: Path) -> float:
    """A consistency threshold between the lowest of ``own`` references and ``odd`` among them."""
    embeddings = verifier.embed_many(own)
    stranger = verifier.embed_many([odd])
    genuine_floor = float((cosine_matrix(embeddings, embeddings).sum(1) - 1).min() / (len(own) - 1))
    foreign = float(cosine_matrix(stranger, embeddings).mean())
    assert foreign < genuine_floor  # the synthetic writers are distinct enough for these tests
    return (foreign + genuine_floor) / 2


@pytest.fixture(scope="module")
def claims_card(
    pixel_card: Path, signatures: Signatures, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, float]:
    """Cohort: genuine signatures of W006-W010 (never enrolled below). The outlier threshold lies
    between W001's own references' consistency and that of a W005 signature among them."""
    with Verifier(pixel_card, device="cpu") as verifier:
        cohort = verifier.embed_many(
            [p for w in ("W006", "W007", "W008", "W009", "W010") for p in signatures(w, "genuine")]
        )
        outlier = outlier_between(verifier, signatures("W001", "genuine")[:5], signatures("W005", "genuine")[0])
    folder = tmp_path_factory.mktemp("claims-model")
    return claims_model(pixel_card, folder, cohort, chosen={1: "mean", 3: "svm-rbf"}, outlier=outlier), outlier


@pytest.fixture(scope="module")
def claims_verifier(claims_card: tuple[Path, float]) -> Verifier:
    return Verifier(claims_card[0], device="cpu")


def scoring_row(database: Database, writer_id: int) -> WriterScoring:
    with database.session(write=False) as session:
        row = session.scalar(select(WriterScoring).where(WriterScoring.writer_id == writer_id))
        assert row is not None
        return row


def test_claims_use_the_writer_classifier_and_survive_a_restart(
    database: Database, claims_verifier: Verifier, signatures: Signatures
) -> None:
    store = SignatureStore(database, claims_verifier, operating_point="far-skilled-1")
    genuine = signatures("W001", "genuine")
    enrolled = store.enroll("W001", genuine[:4])
    assert enrolled.scoring_method == "svm-rbf" and enrolled.flagged == ()
    assert [c.reference_id for c in enrolled.checks] == [o.reference_id for o in enrolled.images]
    row = scoring_row(database, enrolled.writer.id)
    assert row.method == "svm-rbf" and row.parameters and len(row.reference_ids) == 4

    claim = store.verify_claim("W001", genuine[5], operating_point="far-skilled-5")
    assert claim.method == "svm-rbf" and claim.operating_point == "far-skilled-5" and claim.calibrated_k == 3
    assert claim.accept_threshold == 0.5 and claim.reject_threshold == 0.0
    assert claim.threshold_source == "calibrated:K=3:far-skilled-5" and claim.references_used == 4
    assert len(claim.reference_scores) == 4 and all(r.used for r in claim.reference_scores)
    # The score is the stored classifier's decision, computed independently here.
    embeddings = claims_verifier.embed_many([*genuine[:4], genuine[5]])
    model = WriterModel.from_dict(row.parameters)
    cohort = store.claims[1] if store.claims else None
    expected = score_claim("svm-rbf", embeddings[4:], embeddings[:4], cohort=cohort, model=model).score[0]
    assert claim.fused_score == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(
        [r.score for r in claim.reference_scores], cosine_matrix(embeddings[4:], embeddings[:4])[0], atol=1e-5
    )
    assert store.verify_claim("W001", genuine[5]).operating_point == "far-skilled-1"  # the store's default
    with pytest.raises(ClaimsConfigError):
        store.verify_claim("W001", genuine[5], operating_point="far1")

    # A new process: the same stored model, not refitted, the same score.
    restarted = SignatureStore(database, Verifier(claims_verifier.card_path, device="cpu"))
    again = restarted.verify_claim("W001", genuine[5], operating_point="far-skilled-5")
    assert again.fused_score == pytest.approx(claim.fused_score, abs=1e-9)
    assert scoring_row(database, enrolled.writer.id).fitted_at == row.fitted_at


def test_adding_or_deleting_a_reference_refits(
    database: Database, claims_verifier: Verifier, signatures: Signatures
) -> None:
    store = SignatureStore(database, claims_verifier)
    genuine = signatures("W002", "genuine")
    writer_id = store.enroll("W002", genuine[:3]).writer.id
    first = scoring_row(database, writer_id)
    added = store.enroll("W002", genuine[3:4])
    second = scoring_row(database, writer_id)
    assert len(second.reference_ids) == 4 and second.parameters != first.parameters
    assert second.fitted_at > first.fitted_at

    removed = added.images[0].reference_id
    assert removed is not None
    detail = store.delete_reference("W002", removed)
    third = scoring_row(database, writer_id)
    assert removed not in third.reference_ids and len(third.reference_ids) == 3
    assert [r.id for r in detail.references] == sorted(third.reference_ids)
    assert detail.scoring_method == "svm-rbf"
    # Down to two references: the K=1 method (mean) takes over and needs no classifier.
    store.delete_reference("W002", third.reference_ids[0])
    fourth = scoring_row(database, writer_id)
    assert fourth.method == "mean" and fourth.parameters is None
    claim = store.verify_claim("W002", genuine[5])
    assert claim.method == "mean" and claim.calibrated_k == 1
    assert claim.fused_score == pytest.approx(np.mean([r.score for r in claim.reference_scores]), abs=1e-6)


def test_an_odd_reference_is_flagged_and_kept_out_of_scoring(
    database: Database, claims_verifier: Verifier, signatures: Signatures
) -> None:
    store = SignatureStore(database, claims_verifier)
    references = signatures("W001", "genuine")[:5]
    mixed = [*references[:2], signatures("W005", "genuine")[0], *references[2:]]
    result = store.enroll("W001", mixed)
    odd_id = result.images[2].reference_id
    assert result.flagged == (odd_id,)
    assert [c.flagged for c in result.checks] == [False, False, True, False, False, False]
    assert result.to_dict()["flagged"] == [odd_id]
    detail = store.get_writer("W001")
    assert [c.reference_id for c in detail.checks if c.flagged] == [odd_id]

    claim = store.verify_claim("W001", signatures("W001", "genuine")[5])
    assert claim.references_used == 5 and len(claim.reference_scores) == 6
    assert [r.reference_id for r in claim.reference_scores if not r.used] == [odd_id]
    # Deleting the odd one leaves a clean set of five.
    store.delete_reference("W001", odd_id)
    assert store.get_writer("W001").checks and not any(c.flagged for c in store.get_writer("W001").checks)


def test_a_changed_calibration_or_model_refits_on_the_next_claim(
    database: Database,
    claims_verifier: Verifier,
    claims_card: tuple[Path, float],
    pixel_verifier: Verifier,
    signatures: Signatures,
    tmp_path: Path,
) -> None:
    store = SignatureStore(database, claims_verifier)
    genuine = signatures("W003", "genuine")
    writer_id = store.enroll("W003", genuine[:4]).writer.id
    assert scoring_row(database, writer_id).method == "svm-rbf"

    # The same embedder recalibrated (another method chosen for K=3): same model tag, other scoring.
    card, outlier = claims_card
    cohort = np.load(card.parent / "cohort.npy")
    recalibrated = claims_model(
        card, tmp_path / "recalibrated", cohort, chosen={1: "mean", 3: "logreg"}, outlier=outlier
    )
    other = SignatureStore(database, Verifier(recalibrated, device="cpu"))
    assert other.model_tag == store.model_tag
    claim = other.verify_claim("W003", genuine[5])
    assert claim.method == "logreg" and scoring_row(database, writer_id).method == "logreg"

    # The same embedder without a claims calibration scores with plain fusion; the calibrated
    # model refits its own classifier on its next claim.
    plain = SignatureStore(database, pixel_verifier)
    assert plain.model_tag == store.model_tag and plain.verify_claim("W003", genuine[5]).method == "mean"
    assert store.verify_claim("W003", genuine[5]).method == "svm-rbf"
    # `store reindex` refits every writer.
    before = scoring_row(database, writer_id).fitted_at
    assert store.reindex() == 4
    assert scoring_row(database, writer_id).fitted_at > before


def test_the_writer_models_migration_goes_down_and_up(database: Database) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from inkproof.store.database import alembic_config
    from inkproof.store.schema import Base

    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0002")
    assert database.current_revision() == "0002"
    with database.engine.connect() as connection:
        missing = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert sorted((diff[0], diff[1].name) for diff in missing if diff[0] == "add_table") == [
        ("add_table", "reference_changes"),
        ("add_table", "writer_models"),
    ]
    assert len(missing) == 2 + 5 + 2  # and 0004's log columns, 0006's idempotency key and its index
    database.upgrade()
    assert database.current_revision() == "0006"
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []

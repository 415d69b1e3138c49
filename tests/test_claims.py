"""Writer-dependent claim scoring (inkproof.claims) and its validation protocol."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from inkproof.claims import (
    CLASSIFIERS,
    METHODS,
    ClaimsCalibration,
    ClaimsConfigError,
    Cohort,
    WriterModel,
    cosine_matrix,
    fit_writer_model,
    flag_outliers,
    load_cohort,
    score_claim,
)
from inkproof.evaluation.claims import claim_metrics, claim_scores
from inkproof.evaluation.references import ReferenceSample, reference_set_evaluation


def unit(rng: np.random.Generator, n: int, centre: np.ndarray, spread: float) -> np.ndarray:
    x = centre[None, :] + spread * rng.normal(size=(n, centre.size))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def world() -> tuple[np.ndarray, Cohort, np.ndarray]:
    """A writer's references, a cohort of other writers and queries: genuine first, then others."""
    rng = np.random.default_rng(0)
    dim = 16
    centre = rng.normal(size=dim)
    references = unit(rng, 5, centre, 0.3)
    cohort = Cohort(
        np.concatenate([unit(rng, 12, rng.normal(size=dim), 0.3) for _ in range(10)]).astype(np.float32), ""
    )
    queries = np.concatenate([unit(rng, 6, centre, 0.3), unit(rng, 6, rng.normal(size=dim), 0.3)])
    return references, cohort, queries


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_numpy_decision_matches_scikit_learn(kind: str, world: tuple[np.ndarray, Cohort, np.ndarray]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    references, cohort, queries = world
    model = fit_writer_model(kind, references, cohort, {"C": 1.0, "gamma": 2.0})
    restored = WriterModel.from_dict(model.to_dict())  # through JSON-ready numbers
    ours = restored.decision(queries, references, cohort)

    x = np.concatenate([cohort.embeddings, references]).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.r_[np.zeros(len(cohort)), np.ones(len(references))]
    weight = np.where(y == 1, len(y) / (2 * len(references)), len(y) / (2 * len(cohort)))
    reference = (
        LogisticRegression(C=1.0, max_iter=2000)
        if kind == "logreg"
        else SVC(kernel="linear" if kind == "svm-linear" else "rbf", C=1.0, gamma=2.0)
    )
    reference.fit(x, y, sample_weight=weight)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    np.testing.assert_allclose(ours, reference.decision_function(q), rtol=1e-6, atol=1e-6)
    # and it separates the writer from the others
    assert ours[:6].min() > ours[6:].max()


def test_rbf_model_names_its_support_vectors_instead_of_copying_them(
    world: tuple[np.ndarray, Cohort, np.ndarray],
) -> None:
    references, cohort, queries = world
    model = fit_writer_model("svm-rbf", references, cohort)
    assert (
        not model.weights
        and model.cohort_rows
        and len(model.dual) == len(model.cohort_rows) + len(model.reference_rows)
    )
    assert model.reference_rows and all(0 <= row < len(references) for row in model.reference_rows)
    with pytest.raises(ClaimsConfigError, match="refit"):  # fitted on references the writer no longer has
        model.decision(queries, references[:0], cohort)


def test_normalisations_follow_their_definitions(world: tuple[np.ndarray, Cohort, np.ndarray]) -> None:
    references, cohort, queries = world
    raw = cosine_matrix(queries, references)
    ref_cohort = cosine_matrix(references, cohort.embeddings)
    query_cohort = cosine_matrix(queries, cohort.embeddings)
    z = (raw - ref_cohort.mean(1)[None, :]) / ref_cohort.std(1)[None, :]
    t = (raw - query_cohort.mean(1)[:, None]) / query_cohort.std(1)[:, None]
    np.testing.assert_allclose(score_claim("mean+znorm", queries, references, cohort=cohort).score, z.mean(1))
    np.testing.assert_allclose(score_claim("mean+tnorm", queries, references, cohort=cohort).score, t.mean(1))
    np.testing.assert_allclose(score_claim("max+snorm", queries, references, cohort=cohort).score, ((z + t) / 2).max(1))
    intra = cosine_matrix(references, references)[~np.eye(5, dtype=bool)]
    expected = (raw.mean(1) - intra.mean()) / intra.std()
    np.testing.assert_allclose(score_claim("mean+self", queries, references).score, expected)
    np.testing.assert_allclose(score_claim("top3", queries, references).score, np.sort(raw, 1)[:, -3:].mean(1))
    np.testing.assert_allclose(score_claim("max", queries, references).fused, raw.max(1))
    with pytest.raises(ClaimsConfigError, match="cohort"):
        score_claim("mean+znorm", queries, references)
    with pytest.raises(ClaimsConfigError, match="two references"):
        score_claim("mean+self", queries, references[:1])
    with pytest.raises(ClaimsConfigError, match="unknown scoring method"):
        score_claim("median", queries, references)


def test_an_outlier_reference_is_flagged_and_a_consistent_set_is_not() -> None:
    rng = np.random.default_rng(1)
    centre = rng.normal(size=32)
    genuine = unit(rng, 5, centre, 0.15)
    odd = unit(rng, 1, rng.normal(size=32), 0.15)
    references = np.concatenate([genuine[:2], odd, genuine[2:]])
    threshold = 0.5
    check = flag_outliers(references, threshold)
    assert check.flagged == (2,)
    assert check.consistency[2] < threshold < min(c for i, c in enumerate(check.consistency) if i != 2)
    assert flag_outliers(genuine, threshold).flagged == ()
    assert flag_outliers(references[:2], threshold).flagged == ()  # two references: no odd one out
    # never more than a third of the references
    assert len(flag_outliers(unit(rng, 6, rng.normal(size=32), 5.0), 0.99).flagged) == 2


def test_cohort_files_are_plain_arrays_checked_by_sha256(tmp_path: Path) -> None:
    path = tmp_path / "cohort.npy"
    np.save(path, np.ones((4, 3), np.float32))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_cohort(path, digest).embeddings.shape == (4, 3)
    with pytest.raises(ClaimsConfigError, match="sha256"):
        load_cohort(path, "0" * 64)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ClaimsConfigError, match="plain"):
        load_cohort(pickled)
    evil = tmp_path / "evil.npy"
    evil.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ClaimsConfigError):
        load_cohort(evil)


def test_calibration_section_round_trips_and_picks_the_largest_k_below() -> None:
    points = {"eer": 0.1, "far-skilled-1": 0.3, "far-skilled-5": 0.2}
    calibration = ClaimsCalibration(
        chosen={1: "mean", 3: "svm-rbf", 5: "svm-rbf", 10: "max+self"},
        thresholds={k: {m: dict(points) for m in METHODS} for k in (1, 3, 5, 10)},
        cohort_file="cohort.npy",
        cohort_sha256="ab" * 32,
        outlier_threshold=0.4,
    )
    again = ClaimsCalibration.from_dict(calibration.to_dict())
    assert again == calibration and again.fingerprint() == calibration.fingerprint()
    assert [again.k_for(n) for n in (1, 2, 3, 4, 5, 9, 10, 30)] == [1, 1, 3, 3, 5, 5, 10, 10]
    assert again.method_for(4) == "svm-rbf" and again.threshold(12, "far-skilled-1") == 0.3
    with pytest.raises(ClaimsConfigError, match="operating point"):
        again.threshold(5, "far1")
    broken = calibration.to_dict()
    del broken["thresholds"]["3"]["svm-rbf"]["eer"]
    with pytest.raises(ClaimsConfigError, match="eer"):
        ClaimsCalibration.from_dict(broken)
    changed = ClaimsCalibration.from_dict({**calibration.to_dict(), "chosen": {"1": "mean", "3": "logreg"}})
    assert changed.fingerprint() != calibration.fingerprint()


def test_claims_protocol_reproduces_the_reference_set_protocol_for_mean_fusion() -> None:
    rng = np.random.default_rng(3)
    samples, rows = [], []
    for w in range(8):
        centre = rng.normal(size=16)
        for _ in range(12):
            samples.append(ReferenceSample(f"w{w}", True, len(rows)))
            rows.append(unit(rng, 1, centre, 0.5)[0])
        for _ in range(6):
            samples.append(ReferenceSample(f"w{w}", False, len(rows)))
            rows.append(unit(rng, 1, centre, 0.9)[0])
    table = np.asarray(rows)
    same = {frozenset((0, 1))}

    def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sum(a * b, axis=1)

    expected = {
        (r.k, r.fusion): r
        for r in reference_set_evaluation(samples, table, cosine_rows, ks=(1, 3, 5), repeats=2, same_instance=same)
    }
    scores = claim_scores(samples, table, None, methods=("mean", "max"), ks=(1, 3, 5), repeats=2, same_instance=same)
    for (k, method), pooled in scores.items():
        metrics = claim_metrics(k, method, pooled)
        assert metrics.eer == pytest.approx(expected[(k, method)].eer)
        assert metrics.n_genuine == expected[(k, method)].n_genuine
        assert metrics.n_random == expected[(k, method)].n_random
        # thresholds calibrated on these scores give the targeted FAR on skilled forgeries
        assert metrics.points["far-skilled-5"]["far_skilled"] <= 0.05
        assert metrics.points["far-skilled-1"]["threshold"] >= metrics.points["far-skilled-5"]["threshold"]

"""Tests of inkproof.evaluation.metrics, cross-checked against scikit-learn where it has an equivalent."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from inkproof.evaluation import (
    THRESHOLD_RULES,
    CalibratedThresholds,
    EqualErrorRate,
    VerificationReport,
    accuracy_at,
    apply_validation_threshold,
    auc_score,
    calibrate_thresholds,
    det_curve,
    equal_error_rate,
    evaluate_scores,
    far,
    frr,
    per_writer_eer,
    roc_curve,
    threshold_at_far,
    threshold_at_frr,
)

SEEDS = [0, 1, 2, 3, 4]


def _random_pairs(seed: int, ties: bool, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    labels[:2] = [0, 1]  # both classes always present
    scores = rng.normal(size=n) + 1.2 * labels
    if ties:
        scores = np.round(scores * 2.0)  # few distinct values, many ties across classes
    return labels, scores


def _reference_eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Independent EER: bisection on sklearn's (default, intermediate-dropped) ROC polyline."""
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    fnr = 1.0 - tpr
    idx = np.arange(fpr.size, dtype=np.float64)

    def gap(t: float) -> float:
        return float(np.interp(t, idx, fnr) - np.interp(t, idx, fpr))

    lo, hi = 0.0, float(fpr.size - 1)
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if gap(mid) > 0:
            lo = mid
        else:
            hi = mid
    return float(np.interp(hi, idx, fpr))


# ------------------------------------------------------------------------------------------------
# Curves and AUC against scikit-learn
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_roc_curve_matches_sklearn(seed: int, ties: bool) -> None:
    labels, scores = _random_pairs(seed, ties)
    ours = roc_curve(labels, scores)
    fpr, tpr, thresholds = skm.roc_curve(labels, scores, drop_intermediate=False)
    assert ours.thresholds[0] == np.inf
    assert ours.fpr.shape == fpr.shape
    np.testing.assert_allclose(ours.fpr, fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.tpr, tpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.thresholds, thresholds, rtol=0, atol=1e-12)
    if ties:
        assert ours.thresholds.size < scores.size  # ties really were merged


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_det_curve_matches_sklearn(seed: int, ties: bool) -> None:
    labels, scores = _random_pairs(seed, ties)
    for ours, theirs in zip(det_curve(labels, scores), skm.det_curve(labels, scores), strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_auc_matches_sklearn(seed: int, ties: bool) -> None:
    labels, scores = _random_pairs(seed, ties)
    assert auc_score(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


def test_curves_on_small_and_degenerate_inputs_match_sklearn() -> None:
    cases: list[tuple[list[Any], list[float]]] = [
        ([0, 1], [0.5, 0.5]),  # a single distinct score
        ([1, 0], [0.9, 0.1]),
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]),
        ([True, False, True], [3.0, 3.0, -1.0]),  # bool labels
    ]
    for labels, scores in cases:
        r = roc_curve(labels, scores)
        for ours, theirs in zip(r, skm.roc_curve(labels, scores, drop_intermediate=False), strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        for ours, theirs in zip(det_curve(labels, scores), skm.det_curve(labels, scores), strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        assert auc_score(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


def test_roc_curve_is_read_only_and_unpacks() -> None:
    fpr, _tpr, thresholds = roc_curve([0, 1, 1], [0.2, 0.3, 0.9])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.3, 0.2])
    with pytest.raises(ValueError, match="read-only"):
        fpr[0] = 1.0


def test_missing_class_gives_nan_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        only_genuine = roc_curve([1, 1], [0.2, 0.4])
        assert np.isnan(only_genuine.fpr).all()
        np.testing.assert_allclose(only_genuine.tpr, [0.0, 0.5, 1.0])
        assert math.isnan(auc_score([0, 0], [0.1, 0.2]))
        eer = equal_error_rate([1, 1], [0.1, 0.2])
        assert math.isnan(eer.eer)
        assert math.isnan(eer.threshold)
        assert math.isnan(equal_error_rate([], []).eer)
        assert math.isnan(auc_score([], []))
        _fpr, fnr, _thr = det_curve([0, 0], [0.1, 0.2])
        assert np.isnan(fnr).all()
        assert math.isnan(far([], 0.5))
        assert math.isnan(frr([], 0.5))
        assert math.isnan(accuracy_at([], [], 0.5))
        assert math.isnan(threshold_at_far([], 0.01))
        assert math.isnan(threshold_at_frr([], 0.01))


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 1], [0.1, np.nan], "finite"),
        ([0, 1], [0.1, np.inf], "finite"),
        ([0, 1, 1], [0.1, 0.2], "length mismatch"),
        ([0, 2], [0.1, 0.2], "0 \\(forgery\\) or 1"),
        ([0, np.nan], [0.1, 0.2], "0 \\(forgery\\) or 1"),
        (["a", "b"], [0.1, 0.2], "0 \\(forgery\\) or 1"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
        ([0, 1], ["x", "y"], "numbers"),
        ([0, 1], "0.1", "string"),
    ],
)
def test_invalid_inputs_raise(labels: Any, scores: Any, message: str) -> None:
    for fn in (roc_curve, det_curve, auc_score, equal_error_rate, calibrate_thresholds):
        with pytest.raises(ValueError, match=message):
            fn(labels, scores)


# ------------------------------------------------------------------------------------------------
# Error rates at a threshold
# ------------------------------------------------------------------------------------------------


def test_far_frr_accuracy_hand_checked_including_zero_and_negative_thresholds() -> None:
    neg = [-1.0, 0.0, 0.5, 2.0]
    pos = [-0.5, 0.0, 1.0]
    labels = [0, 0, 0, 0, 1, 1, 1]
    scores = neg + pos
    # threshold 0.0 is a real threshold: a score of exactly 0.0 is accepted
    assert far(neg, 0.0) == pytest.approx(3 / 4)
    assert frr(pos, 0.0) == pytest.approx(1 / 3)
    assert accuracy_at(labels, scores, 0.0) == pytest.approx((1 + 2) / 7)
    assert far(neg, -0.5) == pytest.approx(3 / 4)
    assert frr(pos, -0.5) == 0.0
    assert far(neg, -2.0) == 1.0
    assert accuracy_at(labels, scores, -2.0) == pytest.approx(3 / 7)
    assert far(neg, 2.0) == pytest.approx(1 / 4)
    assert far(neg, np.nextafter(2.0, np.inf)) == 0.0
    assert frr(pos, 1.5) == 1.0
    assert far(neg, np.inf) == 0.0
    assert accuracy_at(labels, scores, 1.0) == pytest.approx((3 + 1) / 7)
    with pytest.raises(ValueError, match="NaN"):
        far(neg, math.nan)
    with pytest.raises(ValueError, match="real number"):
        frr(pos, "0.5")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# Equal error rate
# ------------------------------------------------------------------------------------------------


def test_eer_perfect_separation_is_zero() -> None:
    genuine = [0.7, 0.8, 0.95]
    forgery = [-0.2, 0.1, 0.3]
    labels = [1] * 3 + [0] * 3
    result = equal_error_rate(labels, genuine + forgery)
    assert result.eer == 0.0
    assert result.threshold == 0.7  # lowest genuine score
    assert far(forgery, result.threshold) == 0.0
    assert frr(genuine, result.threshold) == 0.0


def test_eer_fully_inverted_is_one() -> None:
    assert equal_error_rate([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]).eer == 1.0


def test_eer_identical_distributions_is_one_half() -> None:
    rng = np.random.default_rng(7)
    scores = rng.normal(size=40_000)
    labels = np.repeat([1, 0], 20_000)
    assert equal_error_rate(labels, scores).eer == pytest.approx(0.5, abs=0.015)


@pytest.mark.parametrize(
    ("genuine", "forgery", "eer", "threshold"),
    [
        # points (fpr, fnr): inf (0,1), .9 (0,2/3), .8 (0,1/3), .7 (1/3,1/3) -> exact crossing
        ([0.9, 0.8, 0.4], [0.7, 0.3, 0.2], 1 / 3, 0.7),
        # .8 (0,1/3) -> .7 (1/2,1/3): fnr flat, crossing at fpr = 1/3; threshold .7 (FAR 1/2, FRR 1/3)
        ([0.9, 0.8, 0.3], [0.7, 0.2], 1 / 3, 0.7),
        # tie at .5: .9 (0,1/2) -> .5 (1/2,0): both move, crossing at 1/4
        ([0.9, 0.5], [0.5, 0.1], 1 / 4, 0.5),
    ],
)
def test_eer_hand_worked(genuine: list[float], forgery: list[float], eer: float, threshold: float) -> None:
    labels = [1] * len(genuine) + [0] * len(forgery)
    result = equal_error_rate(labels, genuine + forgery)
    assert result == EqualErrorRate(eer=pytest.approx(eer, abs=1e-15), threshold=threshold)  # type: ignore[arg-type]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_eer_matches_independent_computation_from_sklearn(seed: int, ties: bool) -> None:
    labels, scores = _random_pairs(seed, ties)
    assert equal_error_rate(labels, scores).eer == pytest.approx(_reference_eer(labels, scores), abs=1e-9)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_eer_threshold_rule(seed: int, ties: bool) -> None:
    labels, scores = _random_pairs(seed, ties)
    result = equal_error_rate(labels, scores)
    neg, pos = scores[labels == 0], scores[labels == 1]
    assert math.isfinite(result.threshold)
    assert result.threshold in scores
    # at the threshold FAR >= EER >= FRR ...
    assert far(neg, result.threshold) >= result.eer - 1e-12
    assert frr(pos, result.threshold) <= result.eer + 1e-12
    # ... and it is the highest score with FAR >= FRR: the next higher score has FAR < FRR
    higher = np.unique(scores[scores > result.threshold])
    if higher.size:
        assert far(neg, higher[0]) < frr(pos, higher[0])


def test_eer_is_shift_and_scale_invariant() -> None:
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, size=500)
    scores = rng.integers(0, 40, size=500) / 4.0 + labels  # exact dyadic values, many ties
    base = equal_error_rate(labels, scores)
    shifted = equal_error_rate(labels, scores - 3.5)
    assert shifted.eer == base.eer
    assert shifted.threshold == base.threshold - 3.5
    scaled = equal_error_rate(labels, scores * 8.0)
    assert scaled.eer == base.eer
    assert scaled.threshold == base.threshold * 8.0
    continuous = rng.normal(size=500) + labels
    assert equal_error_rate(labels, continuous + 123.25).eer == pytest.approx(
        equal_error_rate(labels, continuous).eer, abs=1e-12
    )


# ------------------------------------------------------------------------------------------------
# Per-writer EER
# ------------------------------------------------------------------------------------------------


def test_per_writer_eer_constructed_case_skips_single_class_writers() -> None:
    rows = [
        # writer A: perfectly separated -> EER 0
        ("A", 1, 0.9),
        ("A", 1, 0.8),
        ("A", 0, 0.1),
        ("A", 0, 0.2),
        # writer B: .9F (fpr 1/2, fnr 1), .6G (1/2, 1/2) -> EER 1/2
        ("B", 1, 0.3),
        ("B", 1, 0.6),
        ("B", 0, 0.5),
        ("B", 0, 0.9),
        # writers C (genuine only) and D (forgery only) are skipped
        ("C", 1, 0.0),
        ("D", 0, 5.0),
    ]
    writers = [r[0] for r in rows]
    labels = [r[1] for r in rows]
    scores = [r[2] for r in rows]
    assert per_writer_eer(labels, scores, writers) == pytest.approx(0.25)
    assert per_writer_eer(labels, scores, np.asarray(writers)) == pytest.approx(0.25)
    assert per_writer_eer(labels[:8], scores[:8], [1, 1, 1, 1, 2, 2, 2, 2]) == pytest.approx(0.25)
    # dropping the single-class writers changes nothing
    assert per_writer_eer(labels[:8], scores[:8], writers[:8]) == pytest.approx(0.25)


def test_per_writer_eer_without_usable_writer_is_nan_and_validates_length() -> None:
    assert math.isnan(per_writer_eer([1, 0], [0.5, 0.4], ["a", "b"]))
    assert math.isnan(per_writer_eer([], [], []))
    with pytest.raises(ValueError, match="length mismatch"):
        per_writer_eer([1, 0], [0.5, 0.4], ["a"])
    with pytest.raises(ValueError, match="single string"):
        per_writer_eer([1, 0], [0.5, 0.4], "ab")


# ------------------------------------------------------------------------------------------------
# Thresholds at target rates
# ------------------------------------------------------------------------------------------------


def test_threshold_at_far_hand_checked() -> None:
    neg = [0.1, 0.2, 0.2, 0.9]  # FAR at 0.1: 1, at 0.2: 3/4, at 0.9: 1/4, just above 0.9: 0
    assert threshold_at_far(neg, 1.0) == 0.1
    assert threshold_at_far(neg, 0.75) == 0.2
    assert threshold_at_far(neg, 0.5) == 0.9
    assert threshold_at_far(neg, 0.25) == 0.9
    assert threshold_at_far(neg, 0.0) == np.nextafter(0.9, np.inf)
    assert threshold_at_far([-3.0, -1.0], 0.5) == -1.0  # negative thresholds are fine


@pytest.mark.parametrize("target", [0.0, 0.001, 0.01, 0.05, 0.3, 0.999, 1.0])
@pytest.mark.parametrize("ties", [False, True])
def test_threshold_at_far_is_valid_and_minimal(target: float, ties: bool) -> None:
    rng = np.random.default_rng(3)
    neg = rng.normal(size=2000)
    if ties:
        neg = np.round(neg * 3.0)
    t = threshold_at_far(neg, target)
    assert far(neg, t) <= target
    lower = np.unique(neg[neg < t])
    if lower.size:
        assert far(neg, lower[-1]) > target  # the next lower candidate exceeds the target
    if target == 0.0:
        assert t > neg.max()
        assert t == np.nextafter(neg.max(), np.inf)
    else:
        assert t in neg or t == np.nextafter(neg.max(), np.inf)


def test_threshold_at_frr_hand_checked_and_maximal() -> None:
    pos = [0.1, 0.2, 0.2, 0.9]  # FRR at 0.1: 0, at 0.2: 1/4, at 0.9: 3/4
    assert threshold_at_frr(pos, 0.0) == 0.1
    assert threshold_at_frr(pos, 0.25) == 0.2
    assert threshold_at_frr(pos, 0.5) == 0.2
    assert threshold_at_frr(pos, 0.8) == 0.9
    rng = np.random.default_rng(5)
    pos_arr = np.round(rng.normal(size=1000) * 4.0)
    for target in (0.0, 0.01, 0.1, 0.5):
        t = threshold_at_frr(pos_arr, target)
        assert frr(pos_arr, t) <= target
        higher = np.unique(pos_arr[pos_arr > t])
        if higher.size:
            assert frr(pos_arr, higher[0]) > target


@pytest.mark.parametrize("target", [-0.01, 1.5, math.nan])
def test_threshold_targets_are_validated(target: float) -> None:
    with pytest.raises(ValueError, match="target_far"):
        threshold_at_far([0.1, 0.2], target)
    with pytest.raises(ValueError, match="target_frr"):
        threshold_at_frr([0.1, 0.2], target)


# ------------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------------


def _constructed_test_set() -> tuple[list[float], list[int], list[str], list[str]]:
    genuine = [0.9, 0.8, 0.7, 0.4]
    skilled = [0.75, 0.5, 0.3]
    random_ = [0.2, 0.1, 0.6, 0.05]
    unknown = [0.95]
    scores = genuine + skilled + random_ + unknown
    labels = [1] * 4 + [0] * 8
    kinds = ["genuine"] * 4 + ["skilled"] * 3 + ["random"] * 4 + ["unknown"]
    writers = ["w1", "w1", "w2", "w2", "w1", "w2", "w2", "w1", "w1", "w2", "w2", "w1"]
    return scores, labels, kinds, writers


def test_evaluate_scores_constructed_case() -> None:
    scores, labels, kinds, writers = _constructed_test_set()
    report = evaluate_scores(scores, labels, kinds, threshold=0.55, writers=writers)
    assert (report.n_genuine, report.n_skilled, report.n_random, report.n_unknown) == (4, 3, 4, 1)
    assert report.threshold == 0.55
    assert report.frr == pytest.approx(1 / 4)  # 0.4 rejected
    assert report.far_skilled == pytest.approx(1 / 3)  # 0.75 accepted
    assert report.far_random == pytest.approx(1 / 4)  # 0.6 accepted
    assert report.far == pytest.approx(3 / 8)  # 0.75, 0.6 and the unknown 0.95
    assert report.accuracy == pytest.approx((3 + 5) / 12)
    s, lab = np.asarray(scores), np.asarray(labels)
    k = np.asarray(kinds)
    overall = equal_error_rate(lab, s)
    assert report.eer == overall.eer
    assert report.eer_threshold == overall.threshold
    sk = (k == "genuine") | (k == "skilled")
    rd = (k == "genuine") | (k == "random")
    assert report.eer_skilled == pytest.approx(_reference_eer(lab[sk], s[sk]), abs=1e-9)
    assert report.eer_random == pytest.approx(_reference_eer(lab[rd], s[rd]), abs=1e-9)
    assert report.eer_skilled != report.eer_random
    assert report.per_writer_eer == pytest.approx(per_writer_eer(lab, s, writers))
    assert report.auc == pytest.approx(skm.roc_auc_score(lab, s), abs=1e-12)
    assert evaluate_scores(scores, labels, kinds, threshold=0.55).per_writer_eer is None


def test_evaluate_scores_threshold_zero_is_used() -> None:
    report = evaluate_scores([0.0, -0.1, 0.0], [1, 1, 0], ["genuine", "genuine", "skilled"], threshold=0.0)
    assert report.threshold == 0.0
    assert report.frr == pytest.approx(1 / 2)
    assert report.far == 1.0


def test_report_nan_to_none_and_json_round_trip() -> None:
    # no skilled and no unknown forgeries: skilled metrics are undefined (NaN), never a crash
    scores = [0.9, 0.6, 0.3, 0.2]
    labels = [1, 1, 0, 0]
    kinds = ["genuine", "genuine", "random", "random"]
    report = evaluate_scores(scores, labels, kinds, threshold=0.5)
    assert report.n_skilled == 0
    assert math.isnan(report.far_skilled)
    assert math.isnan(report.eer_skilled)
    assert report.eer_random == 0.0
    d = report.to_dict()
    assert d["far_skilled"] is None
    assert d["eer_skilled"] is None
    assert d["per_writer_eer"] is None
    assert d["far_random"] == 0.0
    text = report.to_json()
    assert "NaN" not in text
    back = VerificationReport.from_dict(json.loads(text))
    assert back.to_dict() == d
    assert math.isnan(back.far_skilled)
    assert back.per_writer_eer is None
    assert back.n_random == 2
    assert isinstance(back.n_random, int)
    full = evaluate_scores(*_constructed_test_set()[:3], threshold=0.55, writers=_constructed_test_set()[3])
    assert VerificationReport.from_dict(json.loads(full.to_json(indent=0))) == full
    with pytest.raises(ValueError, match="missing keys"):
        VerificationReport.from_dict({k: v for k, v in d.items() if k != "auc"})


def test_evaluate_scores_rejects_inconsistent_inputs() -> None:
    scores, labels, kinds, writers = _constructed_test_set()
    bad_kind = kinds.copy()
    bad_kind[0] = "skilled"  # label 1 but a forgery kind
    with pytest.raises(ValueError, match="kind 'skilled' but label 1"):
        evaluate_scores(scores, labels, bad_kind, 0.5)
    bad_label = labels.copy()
    bad_label[0] = 0  # kind genuine but label 0
    with pytest.raises(ValueError, match="kind 'genuine' but label 0"):
        evaluate_scores(scores, bad_label, kinds, 0.5)
    with pytest.raises(ValueError, match="is not one of"):
        evaluate_scores(scores, labels, [*kinds[:-1], "forged"], 0.5)
    with pytest.raises(ValueError, match="length mismatch"):
        evaluate_scores(scores[:-1], labels, kinds, 0.5)
    with pytest.raises(ValueError, match="length mismatch"):
        evaluate_scores(scores, labels, kinds[:-1], 0.5)
    with pytest.raises(ValueError, match="length mismatch"):
        evaluate_scores(scores, labels, kinds, 0.5, writers=writers[:-1])
    with pytest.raises(ValueError, match="single string"):
        evaluate_scores([0.1], [1], "genuine", 0.5)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scores(scores, labels, kinds, math.nan)


# ------------------------------------------------------------------------------------------------
# Calibration on validation, application to test
# ------------------------------------------------------------------------------------------------


def _validation_set(seed: int = 21) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 0], [400, 1600])
    scores = rng.normal(size=labels.size) + 2.0 * labels
    return labels, scores


def test_calibrate_thresholds() -> None:
    labels, scores = _validation_set()
    cal = calibrate_thresholds(labels, scores)
    neg = scores[labels == 0]
    eer = equal_error_rate(labels, scores)
    assert cal.eer == eer.threshold
    assert cal.validation_eer == eer.eer
    assert (cal.n_genuine, cal.n_forgery) == (400, 1600)
    assert cal.far_1 == threshold_at_far(neg, 0.01)
    assert cal.far_0_1 == threshold_at_far(neg, 0.001)
    assert far(neg, cal.far_1) <= 0.01
    assert far(neg, cal.far_0_1) <= 0.001
    assert cal.eer < cal.far_1 <= cal.far_0_1
    assert [cal.get(rule) for rule in THRESHOLD_RULES] == [cal.eer, cal.far_1, cal.far_0_1]
    with pytest.raises(ValueError, match="unknown threshold rule"):
        cal.get("far_5")
    assert CalibratedThresholds.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    with pytest.raises(ValueError, match="unknown keys"):
        CalibratedThresholds.from_dict({**cal.to_dict(), "extra": 1})
    with pytest.raises(ValueError, match="genuine and forgery"):
        calibrate_thresholds([0, 0, 0], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("rule", THRESHOLD_RULES)
def test_apply_validation_threshold_uses_validation_only(rule: str) -> None:
    val_labels, val_scores = _validation_set()
    expected_threshold = calibrate_thresholds(val_labels, val_scores).get(rule)
    test_scores, test_labels, test_kinds, test_writers = _constructed_test_set()

    report = apply_validation_threshold(
        val_labels, val_scores, test_scores, test_labels, test_kinds, rule=rule, test_writers=test_writers
    )
    assert report.threshold == expected_threshold
    assert report == evaluate_scores(test_scores, test_labels, test_kinds, expected_threshold, writers=test_writers)

    # very different test scores: the threshold stays the validation one, the test metrics change
    moved = [s * 10.0 - 4.0 for s in test_scores]
    report_moved = apply_validation_threshold(val_labels, val_scores, moved, test_labels, test_kinds, rule=rule)
    assert report_moved.threshold == expected_threshold
    assert report_moved.threshold != report_moved.eer_threshold  # not the test set's own EER threshold
    assert report_moved.frr != report.frr or report_moved.far != report.far


def test_apply_validation_threshold_validates_rule() -> None:
    val_labels, val_scores = _validation_set()
    test_scores, test_labels, test_kinds, _ = _constructed_test_set()
    with pytest.raises(ValueError, match="unknown threshold rule"):
        apply_validation_threshold(val_labels, val_scores, test_scores, test_labels, test_kinds, rule="best")


def test_labelled_scores_puts_genuine_first_with_label_one() -> None:
    from inkproof.evaluation.metrics import labelled_scores

    labels, scores = labelled_scores([0.9, 0.8], np.array([[0.1], [0.2], [0.85]]))
    assert labels.tolist() == [1, 1, 0, 0, 0]
    assert scores.tolist() == [0.9, 0.8, 0.1, 0.2, 0.85]
    # One impostor (0.85) above one genuine (0.8): EER is between the two error rates it can reach.
    assert 0.0 < equal_error_rate(labels, scores).eer <= 0.5

"""Evaluation of signature verification scores: curves, error rates, calibrated thresholds, reports.

See :mod:`inkproof.evaluation.metrics` for the conventions (higher score = more likely genuine,
accept iff ``score >= threshold``, label 1 = genuine) and the honesty rule (thresholds come from
validation writers, never from test writers).
"""

from inkproof.evaluation.metrics import (
    FORGERY_KINDS,
    PAIR_KINDS,
    THRESHOLD_RULES,
    CalibratedThresholds,
    EqualErrorRate,
    RocCurve,
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

__all__ = [
    "FORGERY_KINDS",
    "PAIR_KINDS",
    "THRESHOLD_RULES",
    "CalibratedThresholds",
    "EqualErrorRate",
    "RocCurve",
    "VerificationReport",
    "accuracy_at",
    "apply_validation_threshold",
    "auc_score",
    "calibrate_thresholds",
    "det_curve",
    "equal_error_rate",
    "evaluate_scores",
    "far",
    "frr",
    "per_writer_eer",
    "roc_curve",
    "threshold_at_far",
    "threshold_at_frr",
]

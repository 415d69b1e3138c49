"""Verification metrics for signature pairs (numpy only).

Conventions used by every function here:

* **Scores** are higher when a pair is more likely *genuine* (both signatures by the same writer).
* A pair is **accepted** iff ``score >= threshold``. Any real number is a valid threshold, ``0.0``
  and negative values included; "no threshold" is always spelled ``None``, never ``0.0``.
* **Labels**: ``1`` = genuine pair, ``0`` = forgery pair.
* **Kinds** (per pair): ``"genuine"`` (label 1), and for forgeries (label 0) ``"skilled"`` (a skilled
  forgery of the claimed writer), ``"random"`` (another writer's genuine signature) or ``"unknown"``
  (a forgery of unrecorded type, e.g. from a user's pair file).
* **FAR** = share of forgery pairs accepted; **FRR** = share of genuine pairs rejected.
* Rates over an empty class are ``nan`` (a missing class never raises); malformed inputs (wrong
  shape, mismatched lengths, non-finite scores, labels other than 0/1) raise :class:`ValueError`.

Honesty rule: an operating threshold is chosen on scores of *validation* writers only
(:func:`calibrate_thresholds`) and then applied unchanged to test scores
(:func:`apply_validation_threshold`). Choosing a threshold on the test scores themselves (e.g.
reporting accuracy at the test EER threshold) is optimistic and must not be reported as a result.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Hashable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

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
    "labelled_scores",
    "per_writer_eer",
    "roc_curve",
    "threshold_at_far",
    "threshold_at_frr",
]

FloatArray = npt.NDArray[np.float64]

#: Kinds of forgery pairs (label 0).
FORGERY_KINDS: Final = ("skilled", "random", "unknown")
#: Every valid pair kind; ``"genuine"`` is the only kind with label 1.
PAIR_KINDS: Final = ("genuine", *FORGERY_KINDS)
#: Names accepted by :meth:`CalibratedThresholds.get` and :func:`apply_validation_threshold`.
THRESHOLD_RULES: Final = ("eer", "far_1", "far_0_1")


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _as_scores(values: npt.ArrayLike, name: str) -> FloatArray:
    """``values`` as a 1-D float64 array of finite numbers."""
    if isinstance(values, str | bytes):
        raise ValueError(f"{name} must be a 1-D array of numbers, got a string")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite, got {arr[first]!r} at index {first} ({int(bad.sum())} non-finite)")
    return arr


def _as_labels(values: npt.ArrayLike, name: str = "labels") -> npt.NDArray[np.int64]:
    """``values`` as a 1-D int64 array of 0 (forgery) / 1 (genuine)."""
    if isinstance(values, str | bytes):
        raise ValueError(f"{name} must be a 1-D array of 0/1, got a string")
    raw = np.asarray(values)
    if raw.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {raw.shape}")
    if raw.dtype == np.bool_:
        return raw.astype(np.int64)
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise ValueError(f"{name} must hold 0 (forgery) or 1 (genuine), got dtype {raw.dtype}")
    ok = (raw == 0) | (raw == 1)
    if not ok.all():
        first = int(np.flatnonzero(~ok)[0])
        raise ValueError(f"{name} must hold 0 (forgery) or 1 (genuine), got {raw[first]!r} at index {first}")
    return raw.astype(np.int64)


def _check_same_length(**arrays: Sized) -> None:
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"length mismatch: {described}")


def _labelled(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], FloatArray]:
    lab = _as_labels(labels)
    sc = _as_scores(scores, "scores")
    _check_same_length(labels=lab, scores=sc)
    return lab, sc


def _check_threshold(threshold: float, name: str = "threshold") -> float:
    """A real, non-NaN threshold (``+-inf`` allowed: accept nothing / everything)."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {threshold!r}")
    value = float(threshold)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def _check_rate(target: float, name: str) -> float:
    if isinstance(target, bool) or not isinstance(target, numbers.Real):
        raise ValueError(f"{name} must be a real number in [0, 1], got {target!r}")
    value = float(target)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {target!r}")
    return value


def _as_sequence(values: Sequence[Any] | np.ndarray, name: str) -> list[Any]:
    if isinstance(values, str | bytes):
        raise ValueError(f"{name} must be a sequence (one entry per pair), got a single string")
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
        return values.tolist()
    try:
        return list(values)
    except TypeError:
        kind = type(values).__name__
        raise ValueError(f"{name} must be a sequence (one entry per pair), got {kind}") from None


# --------------------------------------------------------------------------------------------
# Curves
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RocCurve:
    """ROC points, one per distinct score plus a leading ``+inf`` threshold (read-only arrays).

    ``fpr[i]`` / ``tpr[i]`` are the shares of forgery / genuine pairs with ``score >= thresholds[i]``;
    thresholds decrease. ``fpr`` (``tpr``) is all-NaN when there are no forgery (genuine) pairs.
    Unpacks like scikit-learn's result: ``fpr, tpr, thresholds = roc_curve(...)``.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray

    @property
    def fnr(self) -> np.ndarray:
        """False non-match rate ``1 - tpr`` (the FRR at each threshold)."""
        return 1.0 - self.tpr

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.fpr, self.tpr, self.thresholds))


def _confusion_counts(labels: npt.NDArray[np.int64], scores: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(fps, tps, thresholds)`` with a leading ``(0, 0, +inf)`` point, as scikit-learn computes them."""
    if scores.size == 0:
        zero = np.zeros(1, dtype=np.float64)
        return zero, zero.copy(), np.array([np.inf])
    order = np.argsort(scores, kind="stable")[::-1]
    sorted_scores = scores[order]
    sorted_labels = labels[order].astype(np.float64)
    distinct = np.flatnonzero(np.diff(sorted_scores))
    idx = np.concatenate([distinct, [sorted_scores.size - 1]])
    tps = np.cumsum(sorted_labels)[idx]
    fps = 1.0 + idx.astype(np.float64) - tps
    return (
        np.concatenate([[0.0], fps]),
        np.concatenate([[0.0], tps]),
        np.concatenate([[np.inf], sorted_scores[idx]]),
    )


def _rate(counts: FloatArray, total: float) -> FloatArray:
    if total <= 0:
        return np.full(counts.shape, np.nan)
    return counts / total


def _readonly(*arrays: FloatArray) -> None:
    for arr in arrays:
        arr.setflags(write=False)


def roc_curve(labels: npt.ArrayLike, scores: npt.ArrayLike) -> RocCurve:
    """ROC curve equal to ``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)``.

    ``thresholds[0]`` is ``+inf`` (nothing accepted). A missing class gives NaN rates instead of a
    warning; empty input gives the single point ``(nan, nan, inf)``.
    """
    lab, sc = _labelled(labels, scores)
    fps, tps, thresholds = _confusion_counts(lab, sc)
    fpr = _rate(fps, fps[-1])
    tpr = _rate(tps, tps[-1])
    _readonly(fpr, tpr, thresholds)
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=thresholds)


def det_curve(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DET curve ``(fpr, fnr, thresholds)`` equal to ``sklearn.metrics.det_curve`` (scikit-learn >= 1.8).

    Thresholds increase; like scikit-learn the curve runs from the last threshold with no false
    accept (possibly ``+inf``) down to the first with no false reject. Where scikit-learn raises
    for a missing class, the corresponding rates are NaN here.
    """
    lab, sc = _labelled(labels, scores)
    fps, tps, thresholds = _confusion_counts(lab, sc)
    fns = tps[-1] - tps
    first = int(np.searchsorted(fps, fps[0], side="right")) - 1
    last = int(np.searchsorted(tps, tps[-1])) + 1
    sl = slice(first, last)
    fpr = _rate(fps[sl][::-1], fps[-1])
    fnr = _rate(fns[sl][::-1], tps[-1])
    thr = thresholds[sl][::-1].copy()
    return fpr, fnr, thr


def auc_score(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve (== ``sklearn.metrics.roc_auc_score``; ties count one half).

    NaN when a class is missing.
    """
    lab, sc = _labelled(labels, scores)
    fps, tps, _ = _confusion_counts(lab, sc)
    n_neg, n_pos = fps[-1], tps[-1]
    if n_neg <= 0 or n_pos <= 0:
        return math.nan
    # Trapezoids on the count grid: exact for any realistic number of pairs.
    area = float(np.sum(np.diff(fps) * (tps[1:] + tps[:-1]))) / 2.0
    return area / float(n_neg * n_pos)


# --------------------------------------------------------------------------------------------
# Error rates at a threshold
# --------------------------------------------------------------------------------------------


def far(negative_scores: npt.ArrayLike, threshold: float) -> float:
    """False accept rate: share of forgery scores ``>= threshold`` (NaN if there are none)."""
    neg = _as_scores(negative_scores, "negative_scores")
    thr = _check_threshold(threshold)
    if neg.size == 0:
        return math.nan
    return int(np.count_nonzero(neg >= thr)) / neg.size


def frr(positive_scores: npt.ArrayLike, threshold: float) -> float:
    """False reject rate: share of genuine scores ``< threshold`` (NaN if there are none)."""
    pos = _as_scores(positive_scores, "positive_scores")
    thr = _check_threshold(threshold)
    if pos.size == 0:
        return math.nan
    return int(np.count_nonzero(pos < thr)) / pos.size


def accuracy_at(labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float) -> float:
    """Share of pairs decided correctly when accepting iff ``score >= threshold`` (NaN if empty)."""
    lab, sc = _labelled(labels, scores)
    thr = _check_threshold(threshold)
    if sc.size == 0:
        return math.nan
    correct = (sc >= thr) == (lab == 1)
    return int(np.count_nonzero(correct)) / sc.size


# --------------------------------------------------------------------------------------------
# Equal error rate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EqualErrorRate:
    """Equal error rate and an operating threshold at it (both NaN when a class is missing)."""

    eer: float
    threshold: float


def labelled_scores(positive_scores: npt.ArrayLike, negative_scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, scores)`` for the metrics above from genuine (label 1) and impostor (label 0) scores."""
    positive = np.asarray(positive_scores, dtype=np.float64).ravel()
    negative = np.asarray(negative_scores, dtype=np.float64).ravel()
    labels = np.concatenate([np.ones(positive.size, np.int64), np.zeros(negative.size, np.int64)])
    return labels, np.concatenate([positive, negative])


def equal_error_rate(labels: npt.ArrayLike, scores: npt.ArrayLike) -> EqualErrorRate:
    """Global-threshold EER from the ROC points ``(fpr_i, fnr_i = 1 - tpr_i)``.

    ``d_i = fnr_i - fpr_i`` strictly decreases along the curve, from ``1`` at the ``+inf`` point to
    ``-1`` at the last. Let ``k`` be the first index with ``d_k <= 0``. If ``d_k == 0`` the EER is
    ``fpr_k``; otherwise the segment between points ``k-1`` and ``k`` is linearly interpolated where
    ``fnr == fpr``: ``eer = fpr_{k-1} + d_{k-1} / (d_{k-1} - d_k) * (fpr_k - fpr_{k-1})``.

    Threshold rule: ``threshold = thresholds[k]``, the ROC point at/just after the crossing, i.e. the
    highest score value at which FAR >= FRR. It is always one of the scores (finite), and accepting
    iff ``score >= threshold`` gives exactly ``FAR = fpr_k >= eer >= fnr_k = FRR``; every later point
    has a higher FAR, so no point at/after the crossing is closer to the EER.
    """
    lab, sc = _labelled(labels, scores)
    fps, tps, thresholds = _confusion_counts(lab, sc)
    n_neg, n_pos = fps[-1], tps[-1]
    if n_neg <= 0 or n_pos <= 0:
        return EqualErrorRate(eer=math.nan, threshold=math.nan)
    fpr = fps / n_neg
    fnr = (n_pos - tps) / n_pos
    diff = fnr - fpr
    k = int(np.argmax(diff <= 0))  # diff[-1] == -1, so a crossing always exists; diff[0] == 1 so k >= 1
    if diff[k] == 0:
        eer = float(fpr[k])
    else:
        t = diff[k - 1] / (diff[k - 1] - diff[k])
        eer = float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))
    return EqualErrorRate(eer=eer, threshold=float(thresholds[k]))


def per_writer_eer(labels: npt.ArrayLike, scores: npt.ArrayLike, writers: Sequence[Hashable] | np.ndarray) -> float:
    """Mean of per-writer EERs (each writer with its own threshold).

    Only writers having both genuine and forgery pairs count; NaN if there are none.
    """
    lab, sc = _labelled(labels, scores)
    who = _as_sequence(writers, "writers")
    _check_same_length(labels=lab, writers=who)
    groups: dict[Hashable, list[int]] = {}
    for i, writer in enumerate(who):
        groups.setdefault(writer, []).append(i)
    eers: list[float] = []
    for idx in groups.values():
        sel = np.asarray(idx, dtype=np.intp)
        group_labels = lab[sel]
        if group_labels.min() == group_labels.max():
            continue
        eers.append(equal_error_rate(group_labels, sc[sel]).eer)
    return float(np.mean(eers)) if eers else math.nan


# --------------------------------------------------------------------------------------------
# Thresholds for target rates
# --------------------------------------------------------------------------------------------


def threshold_at_far(negative_scores: npt.ArrayLike, target_far: float) -> float:
    """Smallest candidate threshold with ``far(negative_scores, t) <= target_far``.

    Candidates are the distinct forgery scores and ``nextafter(max, +inf)`` (which accepts no
    forgery, so ``target_far=0`` is always reachable). For the returned ``t`` the next lower
    candidate has FAR above the target. NaN if there are no forgery scores.
    """
    neg = _as_scores(negative_scores, "negative_scores")
    target = _check_rate(target_far, "target_far")
    if neg.size == 0:
        return math.nan
    ordered = np.sort(neg)
    candidates = np.unique(ordered)  # ascending
    n_accepted = neg.size - np.searchsorted(ordered, candidates, side="left")
    ok = n_accepted / neg.size <= target  # FAR, computed exactly as far() does; non-increasing
    if ok.any():
        return float(candidates[int(np.argmax(ok))])
    return float(np.nextafter(ordered[-1], np.inf))


def threshold_at_frr(positive_scores: npt.ArrayLike, target_frr: float) -> float:
    """Largest distinct genuine score ``t`` with ``frr(positive_scores, t) <= target_frr``.

    The smallest genuine score always qualifies (FRR 0). NaN if there are no genuine scores.
    """
    pos = _as_scores(positive_scores, "positive_scores")
    target = _check_rate(target_frr, "target_frr")
    if pos.size == 0:
        return math.nan
    ordered = np.sort(pos)
    candidates = np.unique(ordered)
    n_rejected = np.searchsorted(ordered, candidates, side="left")
    ok = n_rejected / pos.size <= target  # FRR as frr() computes it; non-decreasing
    return float(candidates[int(np.flatnonzero(ok)[-1])])


# --------------------------------------------------------------------------------------------
# Calibration (validation writers only)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibratedThresholds:
    """Operating thresholds chosen on VALIDATION scores, to be applied unchanged to test scores."""

    eer: float
    far_1: float
    far_0_1: float
    validation_eer: float
    n_genuine: int
    n_forgery: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict (all values finite, JSON-ready)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibratedThresholds:
        """Inverse of :meth:`to_dict`; missing or unknown keys raise ValueError."""
        _check_keys(cls, data)
        return cls(
            eer=_float_field(data, "eer"),
            far_1=_float_field(data, "far_1"),
            far_0_1=_float_field(data, "far_0_1"),
            validation_eer=_float_field(data, "validation_eer"),
            n_genuine=_int_field(data, "n_genuine"),
            n_forgery=_int_field(data, "n_forgery"),
        )

    def get(self, name: str) -> float:
        """The threshold of rule ``name`` (one of :data:`THRESHOLD_RULES`)."""
        if name not in THRESHOLD_RULES:
            raise ValueError(f"unknown threshold rule {name!r}; expected one of {', '.join(THRESHOLD_RULES)}")
        value: float = getattr(self, name)
        return value


def calibrate_thresholds(labels: npt.ArrayLike, scores: npt.ArrayLike) -> CalibratedThresholds:
    """Thresholds at the EER, FAR 1 % and FAR 0.1 % of VALIDATION pairs.

    Raises ValueError when the validation pairs lack genuine or forgery pairs (no threshold can be
    calibrated then).
    """
    lab, sc = _labelled(labels, scores)
    n_genuine = int(np.count_nonzero(lab == 1))
    n_forgery = lab.size - n_genuine
    if n_genuine == 0 or n_forgery == 0:
        raise ValueError(
            "calibration needs both genuine and forgery validation pairs, "
            f"got {n_genuine} genuine and {n_forgery} forgery"
        )
    result = equal_error_rate(lab, sc)
    negatives = sc[lab == 0]
    return CalibratedThresholds(
        eer=result.threshold,
        far_1=threshold_at_far(negatives, 0.01),
        far_0_1=threshold_at_far(negatives, 0.001),
        validation_eer=result.eer,
        n_genuine=n_genuine,
        n_forgery=n_forgery,
    )


# --------------------------------------------------------------------------------------------
# Full report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationReport:
    """Every metric of one scored set of pairs at one (externally chosen) threshold.

    ``far`` covers all forgery pairs (skilled, random and unknown); ``eer_skilled`` / ``eer_random``
    use the genuine pairs against skilled / random forgeries only. ``eer_threshold`` is the EER
    threshold of *these* scores: descriptive only, never an honest operating point for them.
    """

    threshold: float
    n_genuine: int
    n_skilled: int
    n_random: int
    n_unknown: int
    frr: float
    far: float
    far_skilled: float
    far_random: float
    accuracy: float
    eer: float
    eer_threshold: float
    eer_skilled: float
    eer_random: float
    per_writer_eer: float | None
    auc: float

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready dict: NaN (and infinities) become None.

        A NaN ``per_writer_eer`` (writers given, none usable) also becomes None, so it reads back as
        None, the same as "writers not given".
        """
        out: dict[str, float | int | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[f.name] = value
        return out

    def to_json(self, indent: int = 2) -> str:
        """:meth:`to_dict` as strict JSON (no NaN literals)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerificationReport:
        """Inverse of :meth:`to_dict` (None -> NaN, except ``per_writer_eer`` which stays None)."""
        _check_keys(cls, data)
        pwe = data["per_writer_eer"]
        return cls(
            threshold=_float_field(data, "threshold"),
            n_genuine=_int_field(data, "n_genuine"),
            n_skilled=_int_field(data, "n_skilled"),
            n_random=_int_field(data, "n_random"),
            n_unknown=_int_field(data, "n_unknown"),
            frr=_float_field(data, "frr"),
            far=_float_field(data, "far"),
            far_skilled=_float_field(data, "far_skilled"),
            far_random=_float_field(data, "far_random"),
            accuracy=_float_field(data, "accuracy"),
            eer=_float_field(data, "eer"),
            eer_threshold=_float_field(data, "eer_threshold"),
            eer_skilled=_float_field(data, "eer_skilled"),
            eer_random=_float_field(data, "eer_random"),
            per_writer_eer=None if pwe is None else _float_field(data, "per_writer_eer"),
            auc=_float_field(data, "auc"),
        )


def _check_keys(cls: type, data: Mapping[str, Any]) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__}.from_dict expects a mapping, got {type(data).__name__}")
    expected = {f.name for f in fields(cls)}
    missing = sorted(expected - set(data))
    unknown = sorted(set(data) - expected)
    if missing or unknown:
        raise ValueError(f"{cls.__name__}.from_dict: missing keys {missing}, unknown keys {unknown}")


def _float_field(data: Mapping[str, Any], key: str) -> float:
    value = data[key]
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{key} must be a number or None, got {value!r}")
    return float(value)


def _int_field(data: Mapping[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
    return int(value)


def _as_kinds(kinds: Sequence[str] | np.ndarray) -> list[str]:
    values = _as_sequence(kinds, "kinds")
    for i, kind in enumerate(values):
        if kind not in PAIR_KINDS:
            raise ValueError(f"kinds[{i}] = {kind!r} is not one of {', '.join(PAIR_KINDS)}")
    return [str(k) for k in values]


def evaluate_scores(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    kinds: Sequence[str] | np.ndarray,
    threshold: float,
    writers: Sequence[Hashable] | np.ndarray | None = None,
) -> VerificationReport:
    """All metrics of scored pairs at ``threshold`` (accept iff ``score >= threshold``).

    ``kinds`` gives each pair's kind; kind ``"genuine"`` must go with label 1 and every forgery
    kind with label 0. ``writers`` (the claimed writer of each pair) enables ``per_writer_eer``.
    """
    lab, sc = _labelled(labels, scores)
    kind_list = _as_kinds(kinds)
    thr = _check_threshold(threshold)
    _check_same_length(scores=sc, labels=lab, kinds=kind_list)
    kind_arr = np.asarray(kind_list, dtype=object)
    is_genuine_kind = kind_arr == "genuine"
    mismatch = is_genuine_kind != (lab == 1)
    if mismatch.any():
        i = int(np.flatnonzero(mismatch)[0])
        raise ValueError(
            f"pair {i} has kind {kind_list[i]!r} but label {int(lab[i])}: kind 'genuine' must have label 1 "
            f"and forgery kinds ({', '.join(FORGERY_KINDS)}) label 0 ({int(mismatch.sum())} mismatches)"
        )
    writer_eer: float | None = None
    if writers is not None:
        who = _as_sequence(writers, "writers")
        _check_same_length(scores=sc, writers=who)
        writer_eer = per_writer_eer(lab, sc, who)

    genuine = sc[is_genuine_kind]
    skilled_mask = kind_arr == "skilled"
    random_mask = kind_arr == "random"
    overall = equal_error_rate(lab, sc)
    with_skilled = is_genuine_kind | skilled_mask
    with_random = is_genuine_kind | random_mask
    return VerificationReport(
        threshold=thr,
        n_genuine=int(is_genuine_kind.sum()),
        n_skilled=int(skilled_mask.sum()),
        n_random=int(random_mask.sum()),
        n_unknown=int((kind_arr == "unknown").sum()),
        frr=frr(genuine, thr),
        far=far(sc[lab == 0], thr),
        far_skilled=far(sc[skilled_mask], thr),
        far_random=far(sc[random_mask], thr),
        accuracy=accuracy_at(lab, sc, thr),
        eer=overall.eer,
        eer_threshold=overall.threshold,
        eer_skilled=equal_error_rate(lab[with_skilled], sc[with_skilled]).eer,
        eer_random=equal_error_rate(lab[with_random], sc[with_random]).eer,
        per_writer_eer=writer_eer,
        auc=auc_score(lab, sc),
    )


def apply_validation_threshold(
    val_labels: npt.ArrayLike,
    val_scores: npt.ArrayLike,
    test_scores: npt.ArrayLike,
    test_labels: npt.ArrayLike,
    test_kinds: Sequence[str] | np.ndarray,
    rule: str = "eer",
    test_writers: Sequence[Hashable] | np.ndarray | None = None,
) -> VerificationReport:
    """The honest protocol: calibrate on validation pairs only, evaluate test pairs at that threshold.

    ``rule`` is one of :data:`THRESHOLD_RULES`. Test scores never influence the threshold.
    """
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"unknown threshold rule {rule!r}; expected one of {', '.join(THRESHOLD_RULES)}")
    calibrated = calibrate_thresholds(val_labels, val_scores)
    return evaluate_scores(test_scores, test_labels, test_kinds, calibrated.get(rule), writers=test_writers)

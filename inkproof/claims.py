"""Writer-dependent scoring of a claim: a query against ALL of a writer's K references.

A claim is scored by one *method*, chosen on validation writers for each K and recorded in the
model card (``card.claims``, written by :mod:`inkproof.evaluation.claims`):

* fusion of the K per-reference scores: ``mean``, ``max``, ``top3`` (mean of the 3 best);
* a fusion after normalising each score (``<fusion>+<norm>``): ``self`` subtracts the mean and
  divides by the spread of the references' scores against each other (the writer's own
  variability); ``znorm`` / ``tnorm`` / ``snorm`` use a *cohort* -- genuine embeddings of training
  writers shipped beside the card -- as in speaker verification: z-norm standardises each
  reference's score by that reference's scores against the cohort, t-norm by the query's, s-norm
  averages the two;
* a per-writer classifier on L2-normalised embeddings, the writer's references positive and the
  cohort negative (``logreg``, ``svm-linear``, ``svm-rbf``). Fitting needs scikit-learn (the
  ``serve`` extra); the fitted parameters are plain floats (:class:`WriterModel`, JSON) and scoring
  is numpy. An RBF model stores its support vectors as cohort row indices and reference ids, so it
  stays small.

Operating points (:data:`OPERATING_POINTS`) are thresholds on the method's score calibrated on
validation writers for each K: the EER, and the thresholds that accept 1 % / 5 % of skilled
forgeries. A writer with n usable references gets the method and thresholds of the largest
calibrated K <= n.

Torch-free and light at import: numpy only (scikit-learn is imported inside :func:`fit_writer_model`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inkproof.errors import InkproofError

__all__ = [
    "CLASSIFIERS",
    "FUSIONS",
    "METHODS",
    "NORMS",
    "OPERATING_POINTS",
    "ClaimsCalibration",
    "ClaimsConfigError",
    "Cohort",
    "OperatingPoint",
    "OutlierCheck",
    "WriterModel",
    "WriterScore",
    "cosine_matrix",
    "fit_writer_model",
    "flag_outliers",
    "load_cohort",
    "score_claim",
]

FUSIONS = ("mean", "max", "top3")
NORMS = ("self", "znorm", "tnorm", "snorm")
CLASSIFIERS = ("logreg", "svm-linear", "svm-rbf")
METHODS: tuple[str, ...] = (
    *FUSIONS,
    *(f"{fusion}+{norm}" for fusion in FUSIONS for norm in NORMS),
    *CLASSIFIERS,
)
OperatingPoint = Literal["eer", "far-skilled-1", "far-skilled-5"]
#: Operating point -> FAR on skilled forgeries it targets (None: the equal error rate).
OPERATING_POINTS: dict[str, float | None] = {"eer": None, "far-skilled-1": 0.01, "far-skilled-5": 0.05}
#: Classifier settings used unless the card records others (C: inverse regularisation).
DEFAULT_SETTINGS: dict[str, dict[str, float]] = {
    "logreg": {"C": 1.0},
    "svm-linear": {"C": 1.0},
    # gamma chosen on validation writers among 0.5-16 (docs/benchmarks.md): 4 on unit-length embeddings.
    "svm-rbf": {"C": 1.0, "gamma": 4.0},
}
_EPS = 1e-6

PairMatrix = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ClaimsConfigError(InkproofError, ValueError):
    """A claims method, operating point or card section that cannot be used."""


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) cosine scores: the bundled model's head, as one matrix product."""
    return l2_normalise(a) @ l2_normalise(b).T


def parse_method(method: str) -> tuple[str, str | None]:
    """(fusion or classifier, norm or None)."""
    if method not in METHODS:
        raise ClaimsConfigError(f"unknown scoring method {method!r}; expected one of {', '.join(METHODS)}")
    if method in CLASSIFIERS:
        return method, None
    fusion, _, norm = method.partition("+")
    return fusion, norm or None


def fuse(scores: np.ndarray, fusion: str) -> np.ndarray:
    """Fuse the last axis of ``scores`` (queries x references)."""
    if fusion == "mean":
        return scores.mean(axis=-1)
    if fusion == "max":
        return scores.max(axis=-1)
    if fusion == "top3":
        k = min(3, scores.shape[-1])
        return np.sort(scores, axis=-1)[..., -k:].mean(axis=-1)
    raise ClaimsConfigError(f"unknown fusion {fusion!r}")


# --- cohort ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """Genuine embeddings of training writers (``(N, D)`` float32), never of the store's writers."""

    embeddings: np.ndarray
    sha256: str

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


def load_cohort(path: str | Path, expected_sha256: str | None = None) -> Cohort:
    """Read a cohort ``.npy`` (never with pickle) and check its sha256 against the card's."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ClaimsConfigError(f"cannot read the claims cohort {source}: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise ClaimsConfigError(f"{source} does not match the sha256 recorded in its model card")
    try:
        array = np.load(source, allow_pickle=False)
    except ValueError as exc:
        raise ClaimsConfigError(f"{source} is not a plain .npy array: {exc}") from None
    if array.ndim != 2 or array.shape[0] < 2 or not np.isfinite(array).all():
        raise ClaimsConfigError(f"{source} must hold a finite (N >= 2, D) embedding matrix, got {array.shape}")
    array = np.asarray(array, dtype=np.float32)
    array.setflags(write=False)
    return Cohort(array, digest)


# --- per-writer classifiers --------------------------------------------------------------------


@dataclass(frozen=True)
class WriterModel:
    """A fitted per-writer classifier, as plain numbers (stored as JSON with the writer).

    Linear models: ``weights`` (D) and ``bias``. RBF SVM: the support vectors are named, not
    copied: ``cohort_rows`` (rows of the cohort) and ``reference_rows`` (rows of the reference
    matrix it was fitted on), with their ``dual`` coefficients, ``bias`` and ``gamma``.
    """

    kind: str
    bias: float
    weights: tuple[float, ...] = ()
    gamma: float = 0.0
    cohort_rows: tuple[int, ...] = ()
    reference_rows: tuple[int, ...] = ()
    dual: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bias": self.bias,
            "weights": list(self.weights),
            "gamma": self.gamma,
            "cohort_rows": list(self.cohort_rows),
            "reference_rows": list(self.reference_rows),
            "dual": list(self.dual),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> WriterModel:
        try:
            return cls(
                kind=str(values["kind"]),
                bias=float(values["bias"]),
                weights=tuple(float(v) for v in values.get("weights", ())),
                gamma=float(values.get("gamma", 0.0)),
                cohort_rows=tuple(int(v) for v in values.get("cohort_rows", ())),
                reference_rows=tuple(int(v) for v in values.get("reference_rows", ())),
                dual=tuple(float(v) for v in values.get("dual", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClaimsConfigError(f"not a stored writer model: {exc}") from None

    def decision(self, queries: np.ndarray, references: np.ndarray, cohort: Cohort) -> np.ndarray:
        """Decision values of ``queries`` (higher = the writer), numpy only."""
        x = l2_normalise(np.atleast_2d(queries))
        if self.kind in ("logreg", "svm-linear"):
            return np.asarray(x @ np.asarray(self.weights) + self.bias, dtype=np.float64)
        if self.kind != "svm-rbf":
            raise ClaimsConfigError(f"unknown writer model kind {self.kind!r}")
        if self.reference_rows and max(self.reference_rows) >= len(references):
            raise ClaimsConfigError("the writer model names references the writer no longer has; refit it")
        vectors = np.concatenate(
            [
                l2_normalise(cohort.embeddings[list(self.cohort_rows)]).reshape(-1, x.shape[1]),
                l2_normalise(references[list(self.reference_rows)]).reshape(-1, x.shape[1]),
            ]
        )
        distances = np.maximum((x * x).sum(1)[:, None] + (vectors * vectors).sum(1)[None, :] - 2.0 * x @ vectors.T, 0.0)
        return np.asarray(np.exp(-self.gamma * distances) @ np.asarray(self.dual) + self.bias, dtype=np.float64)


def _design(references: np.ndarray, cohort: Cohort) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([l2_normalise(cohort.embeddings), l2_normalise(references)])
    y = np.concatenate([np.zeros(len(cohort), np.int64), np.ones(len(references), np.int64)])
    # Each class weighs as much as the other: K references against hundreds of cohort signatures.
    weight = np.where(y == 1, len(y) / (2.0 * len(references)), len(y) / (2.0 * len(cohort)))
    return x, y, weight


def fit_writer_model(
    kind: str, references: np.ndarray, cohort: Cohort, settings: Mapping[str, float] | None = None
) -> WriterModel:
    """Fit a per-writer classifier (scikit-learn) and return its parameters as plain numbers."""
    if kind not in CLASSIFIERS:
        raise ClaimsConfigError(f"unknown classifier {kind!r}; expected one of {', '.join(CLASSIFIERS)}")
    if len(references) < 1:
        raise ClaimsConfigError("a writer model needs at least one reference")
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import SVC
    except ImportError:  # pragma: no cover - depends on the installation
        raise ClaimsConfigError(
            f"the model card scores claims with {kind!r}, which needs scikit-learn: pip install 'inkproof[serve]'"
        ) from None
    options = {**DEFAULT_SETTINGS[kind], **(settings or {})}
    x, y, weight = _design(np.asarray(references, dtype=np.float64), cohort)
    if kind == "logreg":
        model = LogisticRegression(C=float(options["C"]), max_iter=2000)
        model.fit(x, y, sample_weight=weight)
        return WriterModel(kind, float(model.intercept_[0]), tuple(float(v) for v in model.coef_[0]))
    if kind == "svm-linear":
        svc = SVC(kernel="linear", C=float(options["C"]))
        svc.fit(x, y, sample_weight=weight)
        return WriterModel(kind, float(svc.intercept_[0]), tuple(float(v) for v in svc.coef_[0]))
    gamma = float(options["gamma"])
    svc = SVC(kernel="rbf", C=float(options["C"]), gamma=gamma)
    svc.fit(x, y, sample_weight=weight)
    n_cohort = len(cohort)
    support = [int(i) for i in svc.support_]
    dual = [float(v) for v in svc.dual_coef_[0]]
    cohort_part = [(i, d) for i, d in zip(support, dual, strict=True) if i < n_cohort]
    reference_part = [(i - n_cohort, d) for i, d in zip(support, dual, strict=True) if i >= n_cohort]
    return WriterModel(
        kind,
        float(svc.intercept_[0]),
        gamma=gamma,
        cohort_rows=tuple(i for i, _ in cohort_part),
        reference_rows=tuple(i for i, _ in reference_part),
        dual=tuple(d for _, d in cohort_part) + tuple(d for _, d in reference_part),
    )


# --- scoring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterScore:
    """Scores of queries against one writer: the raw per-reference scores, their plain fusion
    (the method's fusion rule; mean for classifiers) and the method's score that thresholds apply to."""

    reference_scores: np.ndarray  # (Q, K)
    fused: np.ndarray  # (Q,)
    score: np.ndarray  # (Q,)


def _stats(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    return values.mean(axis=axis), np.maximum(values.std(axis=axis), _EPS)


def score_claim(
    method: str,
    queries: np.ndarray,
    references: np.ndarray,
    *,
    cohort: Cohort | None = None,
    model: WriterModel | None = None,
    pair_matrix: PairMatrix = cosine_matrix,
    reference_cohort: tuple[np.ndarray, np.ndarray] | None = None,
) -> WriterScore:
    """Score ``queries`` (Q, D) against one writer's ``references`` (K, D) with ``method``.

    ``pair_matrix(a, b)`` gives the (len(a), len(b)) head scores (cosine by default). Cohort norms
    and classifiers need ``cohort``; classifiers need the writer's fitted ``model``.
    ``reference_cohort`` may pass precomputed (mean, std) of each reference against the cohort.
    """
    fusion, norm = parse_method(method)
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    references = np.atleast_2d(np.asarray(references, dtype=np.float64))
    if len(references) == 0:
        raise ClaimsConfigError("no references to score against")
    raw = np.asarray(pair_matrix(queries, references), dtype=np.float64)
    if method in CLASSIFIERS:
        if model is None or cohort is None:
            raise ClaimsConfigError(f"method {method!r} needs the writer's fitted model and the cohort")
        return WriterScore(raw, raw.mean(axis=1), model.decision(queries, references, cohort))
    if norm is None:
        fused = fuse(raw, fusion)
        return WriterScore(raw, fused, fused)
    if norm == "self":
        if len(references) < 2:
            raise ClaimsConfigError("self-normalisation needs at least two references")
        intra = np.asarray(pair_matrix(references, references), dtype=np.float64)
        off = intra[~np.eye(len(references), dtype=bool)]
        mu, sd = float(off.mean()), max(float(off.std()), _EPS)
        fused = fuse(raw, fusion)
        return WriterScore(raw, fused, (fused - mu) / sd)
    if cohort is None:
        raise ClaimsConfigError(f"method {method!r} needs the cohort")
    normalised = np.zeros_like(raw)
    if norm in ("znorm", "snorm"):
        if reference_cohort is None:
            reference_cohort = _stats(np.asarray(pair_matrix(references, cohort.embeddings)), axis=1)
        mu_r, sd_r = reference_cohort
        normalised += (raw - mu_r[None, :]) / sd_r[None, :]
    if norm in ("tnorm", "snorm"):
        mu_q, sd_q = _stats(np.asarray(pair_matrix(queries, cohort.embeddings)), axis=1)
        normalised += (raw - mu_q[:, None]) / sd_q[:, None]
    if norm == "snorm":
        normalised /= 2.0
    return WriterScore(raw, fuse(raw, fusion), fuse(normalised, fusion))


# --- outlier references ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutlierCheck:
    """Which references look unlike the writer's others.

    ``consistency`` is each reference's mean score against the writer's other references (in the
    order given); ``flagged`` the positions of references below ``threshold`` -- the percentile of
    that score among genuine references of validation writers recorded in the card.
    """

    consistency: tuple[float, ...]
    flagged: tuple[int, ...]
    threshold: float


def flag_outliers(references: np.ndarray, threshold: float, *, pair_matrix: PairMatrix = cosine_matrix) -> OutlierCheck:
    """Flag references far from the writer's others, worst first, while at least two thirds remain.

    Needs three references (with two, neither can be called the odd one). After each flag the
    others' consistency is recomputed without it, so one forgery among the references does not
    drag a genuine reference below the threshold too.
    """
    n = len(references)
    if n < 3:
        return OutlierCheck(tuple(float("nan") for _ in range(n)), (), float(threshold))
    scores = np.asarray(pair_matrix(references, references), dtype=np.float64)
    np.fill_diagonal(scores, np.nan)
    consistency = np.nanmean(scores, axis=1)
    kept = list(range(n))
    flagged: list[int] = []
    while len(kept) >= 3 and len(flagged) + 1 <= n // 3:
        sub = scores[np.ix_(kept, kept)]
        current = np.nanmean(sub, axis=1)
        worst = int(np.argmin(current))
        if current[worst] >= threshold:
            break
        flagged.append(kept.pop(worst))
    return OutlierCheck(tuple(float(v) for v in consistency), tuple(sorted(flagged)), float(threshold))


# --- the card section --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimsCalibration:
    """``card.claims``: the method and thresholds per K, the cohort file and the outlier threshold."""

    chosen: dict[int, str]  # K -> method
    thresholds: dict[int, dict[str, dict[str, float]]]  # K -> method -> operating point -> threshold
    cohort_file: str
    cohort_sha256: str
    outlier_threshold: float
    settings: dict[str, dict[str, float]] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # validation metrics and provenance

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(sorted(self.chosen))

    def k_for(self, references: int) -> int:
        """The largest calibrated K not above ``references`` (the smallest K below all of them)."""
        usable = [k for k in self.ks if k <= references]
        return usable[-1] if usable else self.ks[0]

    def method_for(self, references: int) -> str:
        return self.chosen[self.k_for(references)]

    def threshold(self, references: int, operating_point: str, method: str | None = None) -> float:
        if operating_point not in OPERATING_POINTS:
            raise ClaimsConfigError(
                f"unknown operating point {operating_point!r}; expected one of {', '.join(OPERATING_POINTS)}"
            )
        k = self.k_for(references)
        chosen = method or self.chosen[k]
        try:
            return float(self.thresholds[k][chosen][operating_point])
        except KeyError:
            raise ClaimsConfigError(
                f"no {operating_point} threshold for {chosen!r} at K={k} in the model card"
            ) from None

    def fingerprint(self) -> str:
        """Changes whenever what a stored writer model depends on changes (method choice, settings, cohort)."""
        payload = json.dumps(
            {"chosen": self.chosen, "settings": self.settings, "cohort": self.cohort_sha256}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "chosen": {str(k): v for k, v in sorted(self.chosen.items())},
            "thresholds": {
                str(k): {m: dict(points) for m, points in methods.items()}
                for k, methods in sorted(self.thresholds.items())
            },
            "cohort": {"file": self.cohort_file, "sha256": self.cohort_sha256},
            "outlier_threshold": self.outlier_threshold,
            "settings": self.settings,
            "record": self.record,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ClaimsCalibration:
        try:
            chosen = {int(k): str(v) for k, v in values["chosen"].items()}
            thresholds = {
                int(k): {str(m): {str(p): float(t) for p, t in points.items()} for m, points in methods.items()}
                for k, methods in values["thresholds"].items()
            }
            cohort = values["cohort"]
            result = cls(
                chosen=chosen,
                thresholds=thresholds,
                cohort_file=str(cohort["file"]),
                cohort_sha256=str(cohort["sha256"]),
                outlier_threshold=float(values["outlier_threshold"]),
                settings={
                    str(k): {str(a): float(b) for a, b in v.items()} for k, v in values.get("settings", {}).items()
                },
                record=dict(values.get("record", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ClaimsConfigError(f"the model card's claims section is malformed: {exc}") from None
        if not chosen:
            raise ClaimsConfigError("the model card's claims section chooses no method")
        for k, method in chosen.items():
            parse_method(method)
            for point in OPERATING_POINTS:
                value = thresholds.get(k, {}).get(method, {}).get(point)
                if value is None or not math.isfinite(value):
                    raise ClaimsConfigError(f"the claims section lacks the {point} threshold of {method!r} at K={k}")
        return result

    def needs_cohort(self) -> bool:
        return any(parse_method(m)[1] in ("znorm", "tnorm", "snorm") or m in CLASSIFIERS for m in self.chosen.values())


def settings_for(overrides: Mapping[str, Mapping[str, float]] | None, method: str) -> dict[str, float]:
    """A method's classifier settings: the defaults, updated by ``overrides[method]`` (e.g. a
    calibration's ``settings``)."""
    base = dict(DEFAULT_SETTINGS.get(method, {}))
    base.update((overrides or {}).get(method, {}))
    return base


def reference_cohort_stats(
    references: np.ndarray, cohort: Cohort, pair_matrix: PairMatrix = cosine_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """Each reference's (mean, std) score against the cohort (z-norm statistics)."""
    return _stats(np.asarray(pair_matrix(references, cohort.embeddings), dtype=np.float64), axis=1)


def supported(method: str, k: int) -> bool:
    """Whether ``method`` can score with ``k`` references (self-normalisation needs two)."""
    return not (parse_method(method)[1] == "self" and k < 2)


def methods_for(k: int, methods: Sequence[str] = METHODS) -> list[str]:
    return [m for m in methods if supported(m, k)]

"""Evaluation figures: ROC, DET, score histograms, EER vs references, and grids of signature pairs.

Conventions are those of :mod:`inkproof.evaluation.metrics`: higher score = more likely genuine,
accept iff ``score >= threshold`` (``0.0`` is a threshold like any other; ``None`` means "none"),
label 1 = genuine pair, kinds ``"genuine"``, ``"skilled"``, ``"random"``, ``"unknown"``.

Every plotting function writes a PNG (creating missing parent folders) and returns its path.
matplotlib is imported lazily; figures are built with the object-oriented API
(:class:`matplotlib.figure.Figure` on the Agg canvas), so pyplot's global state, the active
backend and other open figures are never touched.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from inkproof.evaluation.metrics import (
    _as_kinds,
    _labelled,
    auc_score,
    det_curve,
    equal_error_rate,
    far,
    frr,
    roc_curve,
)

__all__ = [
    "hardest_pairs",
    "pair_grid",
    "plot_det",
    "plot_eer_by_references",
    "plot_roc",
    "plot_roc_comparison",
    "plot_score_histogram",
]

PathLike = str | os.PathLike[str]
KindsLike = Sequence[str] | np.ndarray

KIND_COLORS: Final = {
    "genuine": "#2a9d5c",
    "skilled": "#d1495b",
    "random": "#3a7dc9",
    "unknown": "#8d8d8d",
    "all": "#303030",
}
FUSION_COLORS: Final = ("#3a7dc9", "#d1495b", "#2a9d5c", "#e09f3e", "#7b5ea7", "#8d8d8d")

_FIGSIZE: Final = (6.4, 5.0)
_DPI: Final = 150
_RC: Final[Any] = {  # Any: matplotlib types rc keys as a Literal union
    "font.size": 9.5,
    "axes.titlesize": 11.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.7,
    "legend.fontsize": 8.5,
    "legend.framealpha": 0.92,
    "legend.edgecolor": "#cccccc",
}

#: Smallest rate shown on the ROC x axis and clip floor of the DET axes.
RATE_FLOOR: Final = 1e-4
_DET_TICKS: Final = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
_DET_TICKS_WIDE: Final = (0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.999)
_OP_MARKER: Final[dict[str, Any]] = {
    "marker": "o",
    "markersize": 7,
    "markeredgecolor": "black",
    "markeredgewidth": 1.2,
}
_EER_MARKER: Final[dict[str, Any]] = {
    "marker": "D",
    "markersize": 6,
    "markeredgecolor": "white",
    "markeredgewidth": 0.8,
}


# --------------------------------------------------------------------------------------------
# Validation and shared helpers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pairs:
    labels: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    kinds: npt.NDArray[np.object_]

    def mask(self, kind: str) -> npt.NDArray[np.bool_]:
        return np.asarray(self.kinds == kind, dtype=bool)


@dataclass(frozen=True)
class _Curve:
    """One forgery set against all genuine pairs."""

    name: str
    color: str
    labels: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    n_forgery: int


def _pairs(labels: npt.ArrayLike, scores: npt.ArrayLike, kinds: KindsLike) -> _Pairs:
    lab, sc = _labelled(labels, scores)
    kind_arr = np.asarray(_as_kinds(kinds), dtype=object)
    if kind_arr.size != sc.size:
        raise ValueError(f"length mismatch: labels={lab.size}, scores={sc.size}, kinds={kind_arr.size}")
    mismatch = (kind_arr == "genuine") != (lab == 1)
    if mismatch.any():
        i = int(np.flatnonzero(mismatch)[0])
        raise ValueError(
            f"pair {i} has kind {kind_arr[i]!r} but label {int(lab[i])}: kind 'genuine' goes with label 1, "
            "forgery kinds with label 0"
        )
    return _Pairs(lab, sc, kind_arr)


def _check_threshold(threshold: float | None) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number or None, got {threshold!r}")
    return float(threshold)


def _check_title(title: str | None) -> None:
    if title is not None and not isinstance(title, str):
        raise ValueError(f"title must be a string or None, got {type(title).__name__}")


def _curves(pairs: _Pairs) -> list[_Curve]:
    """All-forgery, skilled-only and random-only curves, each only when its forgeries exist.

    The all-forgery curve is left out when it would duplicate the skilled or random curve.
    """
    genuine = pairs.mask("genuine")
    present = [k for k in ("skilled", "random", "unknown") if pairs.mask(k).any()]
    out: list[_Curve] = []
    if present and not (len(present) == 1 and present[0] != "unknown"):
        n = int(np.count_nonzero(pairs.labels == 0))
        out.append(_Curve("all forgeries", KIND_COLORS["all"], pairs.labels, pairs.scores, n))
    for kind in ("skilled", "random"):
        if kind in present:
            sel = genuine | pairs.mask(kind)
            n = int(np.count_nonzero(pairs.mask(kind)))
            out.append(_Curve(kind, KIND_COLORS[kind], pairs.labels[sel], pairs.scores[sel], n))
    return out


def _operating_point(curve: _Curve, threshold: float) -> tuple[float, float]:
    """``(FAR, FRR)`` of ``curve`` at ``threshold``."""
    return (
        far(curve.scores[curve.labels == 0], threshold),
        frr(curve.scores[curve.labels == 1], threshold),
    )


def _log_x_segments(
    fpr: npt.NDArray[np.float64], tpr: npt.NDArray[np.float64], floor: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """ROC points ready for a log FAR axis: FAR clipped to ``floor``, slanted segments resampled.

    A segment where FAR and 1 - FRR both change comes from tied scores; it is straight on linear
    axes, so on a log axis it must be drawn through intermediate points to keep its true shape.
    """
    xs: list[npt.NDArray[np.float64]] = [fpr[:1]]
    ys: list[npt.NDArray[np.float64]] = [tpr[:1]]
    for i in range(1, fpr.size):
        f0, f1, t0, t1 = fpr[i - 1], fpr[i], tpr[i - 1], tpr[i]
        if f1 > f0 and t1 != t0 and f1 > floor:
            f = np.geomspace(max(f0, floor), f1, 24)[1:]
            xs.append(f)
            ys.append(t0 + (f - f0) / (f1 - f0) * (t1 - t0))
        else:
            xs.append(fpr[i : i + 1])
            ys.append(tpr[i : i + 1])
    return np.clip(np.concatenate(xs), floor, 1.0), np.concatenate(ys)


def _threshold_handle(threshold: float, frr_at: float) -> Any:
    """Legend entry for the operating-point markers (FRR is the same for every curve)."""
    from matplotlib.lines import Line2D

    label = f"threshold {threshold:g} (FRR {_pct(frr_at)})"
    return Line2D([], [], color="white", linestyle="none", label=label, **_OP_MARKER)


def _pct(rate: float) -> str:
    if not math.isfinite(rate):
        return "n/a"
    value = 100.0 * rate
    if value == 0.0 or value >= 10.0:
        return f"{value:.0f}%" if value in (0.0, 100.0) else f"{value:.1f}%"
    return f"{value:.2g}%" if value < 0.1 else f"{value:.2f}%"


def _tick_pct(rate: float) -> str:
    return f"{100.0 * rate:g}%"


@contextmanager
def _figure(size: tuple[float, float] = _FIGSIZE) -> Iterator[tuple[Any, Any]]:
    """A fresh ``(figure, axes)`` drawn with the module style (rcParams restored afterwards)."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=size, dpi=_DPI, layout="constrained")
        yield fig, fig.add_subplot()


def _save(fig: Any, path: PathLike) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", facecolor="white")
    return out


def _legend_below(fig: Any, handles: list[Any], ncols: int = 1) -> None:
    """Legend under the axes, so it never hides part of the data."""
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols)


def _note(ax: Any, text: str) -> None:
    """A centred grey message on ``ax`` (used when there is nothing to draw)."""
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="#666666",
        fontsize=11,
        zorder=5,
    )


def _missing_class_note(pairs: _Pairs) -> str:
    n_gen = int(np.count_nonzero(pairs.labels == 1))
    n_forg = pairs.labels.size - n_gen
    return f"no curve: needs genuine and forgery pairs\n({n_gen} genuine, {n_forg} forgery)"


# --------------------------------------------------------------------------------------------
# ROC
# --------------------------------------------------------------------------------------------


def plot_roc(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    kinds: KindsLike,
    path: PathLike,
    *,
    threshold: float | None = None,
    title: str | None = None,
) -> Path:
    """ROC curves (log FAR vs 1 - FRR) for all forgeries, skilled only and random only.

    Only curves whose forgery kind is present are drawn; the legend gives each curve's AUC, and
    the operating point at ``threshold`` (if given) is marked on every curve.
    """
    pairs = _pairs(labels, scores, kinds)
    thr = _check_threshold(threshold)
    _check_title(title)
    curves = _curves(pairs) if (pairs.labels == 1).any() else []

    floor = RATE_FLOOR
    for curve in curves:
        floor = min(floor, 10.0 ** math.floor(math.log10(1.0 / curve.n_forgery)))

    with _figure((6.4, 6.2)) as (fig, ax):
        from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        grid = np.logspace(math.log10(floor), 0.0, 200)
        ax.plot(grid, grid, color="#bbbbbb", linestyle=":", linewidth=1.0, label="chance", zorder=1)
        handles: list[Any] = []
        for curve in curves:
            roc = roc_curve(curve.labels, curve.scores)
            auc = auc_score(curve.labels, curve.scores)
            op = None if thr is None else _operating_point(curve, thr)
            label = f"{curve.name} (n={curve.n_forgery}): AUC {auc:.3f}"
            if op is not None:
                label += f", FAR {_pct(op[0])}"
            (line,) = ax.plot(
                *_log_x_segments(roc.fpr, roc.tpr, floor),
                color=curve.color,
                linewidth=1.8,
                label=label,
                zorder=3,
            )
            handles.append(line)
            if op is not None:
                ax.plot(
                    [max(op[0], floor)],
                    [1.0 - op[1]],
                    color=curve.color,
                    linestyle="none",
                    zorder=4,
                    **_OP_MARKER,
                )
        if thr is not None and curves:
            handles.append(_threshold_handle(thr, _operating_point(curves[0], thr)[1]))
        if not curves:
            _note(ax, _missing_class_note(pairs))

        # A little room left of the floor, so points clipped onto it (FAR 0) stay visible.
        ax.set_xlim(floor / 1.6, 1.0)
        ax.set_ylim(-0.02, 1.02)
        decades = [10.0**e for e in range(round(math.log10(floor)), 1)]
        ax.xaxis.set_major_locator(FixedLocator(decades))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: ("\u2264" if x <= floor else "") + _tick_pct(x)))
        ax.xaxis.set_minor_locator(LogLocator(subs=tuple(range(2, 10))))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{100.0 * y:.0f}%"))
        ax.set_xlabel("FAR: forgeries accepted (log scale)")
        ax.set_ylabel("1 - FRR: genuine pairs accepted")
        ax.set_title("ROC" if title is None else title)
        if handles:
            _legend_below(fig, handles)
        return _save(fig, path)


# --------------------------------------------------------------------------------------------
# DET
# --------------------------------------------------------------------------------------------


def plot_roc_comparison(
    curves: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]], path: PathLike, *, title: str | None = None
) -> Path:
    """One ROC curve (log FAR vs 1 - FRR, all forgeries) per named ``(labels, scores)`` set, e.g.
    one per test set of a benchmark; the legend gives each curve's EER and AUC."""
    from inkproof.evaluation.metrics import auc_score, equal_error_rate, roc_curve

    _check_title(title)
    if not curves:
        raise ValueError("plot_roc_comparison needs at least one curve")
    with _figure() as (fig, ax):
        handles = []
        for index, (name, (labels, scores)) in enumerate(curves.items()):
            fpr, tpr, _ = roc_curve(labels, scores)
            eer = equal_error_rate(labels, scores).eer
            floor = 10.0 ** math.floor(math.log10(1.0 / max(1, int((np.asarray(labels) == 0).sum()))))
            (line,) = ax.plot(
                np.maximum(fpr, floor),
                tpr,
                color=FUSION_COLORS[index % len(FUSION_COLORS)],
                label=f"{name}: EER {_pct(eer)}, AUC {auc_score(labels, scores):.3f}",
            )
            handles.append(line)
        ax.set_xscale("log")
        ax.set_xlabel("false acceptance rate (log)")
        ax.set_ylabel("1 - false rejection rate")
        ax.set_ylim(0.0, 1.01)
        ax.set_title(title or "ROC on held-out writers")
        _legend_below(fig, handles)
        return _save(fig, path)


def _probit(rates: npt.ArrayLike) -> npt.NDArray[np.float64]:
    inv = NormalDist().inv_cdf
    clipped = np.clip(np.asarray(rates, dtype=np.float64), RATE_FLOOR, 1.0 - RATE_FLOOR)
    return np.array([inv(float(r)) for r in clipped.ravel()], dtype=np.float64).reshape(clipped.shape)


def plot_det(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    kinds: KindsLike,
    path: PathLike,
    *,
    threshold: float | None = None,
    title: str | None = None,
) -> Path:
    """DET curves (FRR vs FAR on normal-deviate axes) for all forgeries, skilled only and random only.

    Each curve's EER is marked on the FAR = FRR diagonal and given in the legend; the operating
    point at ``threshold`` (if given) is marked too. Rates are clipped to ``[1e-4, 1 - 1e-4]``.
    """
    pairs = _pairs(labels, scores, kinds)
    thr = _check_threshold(threshold)
    _check_title(title)
    curves = _curves(pairs) if (pairs.labels == 1).any() else []

    eers = [equal_error_rate(c.labels, c.scores) for c in curves]
    ops = [None if thr is None else _operating_point(c, thr) for c in curves]
    # An EER or operating point beyond the usual 40 % range would be off the axes: widen them then.
    wide = any(e.eer > 0.4 for e in eers) or any(op is not None and max(op) > 0.5 for op in ops)
    ticks = _DET_TICKS_WIDE if wide else _DET_TICKS
    # A little room beyond the clip limits, so points clipped onto them stay visible.
    low = float(_probit(RATE_FLOOR)) - 0.08
    high = float(_probit(1.0 - RATE_FLOOR)) + 0.08 if wide else float(_probit(0.5))

    with _figure((6.0, 7.0)) as (fig, ax):
        from matplotlib.lines import Line2D

        ax.plot([low, high], [low, high], color="#bbbbbb", linestyle="--", linewidth=1.0, zorder=1)
        handles: list[Any] = []
        for curve, eer, op in zip(curves, eers, ops, strict=True):
            fpr, fnr, _ = det_curve(curve.labels, curve.scores)
            label = f"{curve.name} (n={curve.n_forgery}): EER {_pct(eer.eer)}"
            if op is not None:
                label += f", FAR {_pct(op[0])}"
            (line,) = ax.plot(_probit(fpr), _probit(fnr), color=curve.color, linewidth=1.8, label=label, zorder=3)
            handles.append(line)
            e = float(_probit(eer.eer))
            ax.plot([e], [e], color=curve.color, linestyle="none", zorder=4, **_EER_MARKER)
            if op is not None:
                ax.plot(
                    _probit(op[0]),
                    _probit(op[1]),
                    color=curve.color,
                    linestyle="none",
                    zorder=5,
                    **_OP_MARKER,
                )
        if curves:
            handles.append(Line2D([], [], color="#555555", linestyle="none", **_EER_MARKER, label="EER"))
            if thr is not None:
                handles.append(_threshold_handle(thr, _operating_point(curves[0], thr)[1]))
        else:
            _note(ax, _missing_class_note(pairs))

        positions = _probit(ticks)
        names = [_tick_pct(t) for t in ticks]
        ax.set_xticks(positions, names)
        ax.set_yticks(positions, names)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel("FAR: forgeries accepted")
        ax.set_ylabel("FRR: genuine pairs rejected")
        ax.set_title("DET" if title is None else title)
        if handles:
            _legend_below(fig, handles)
        return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Score histogram
# --------------------------------------------------------------------------------------------


def plot_score_histogram(
    scores: npt.ArrayLike,
    kinds: KindsLike,
    path: PathLike,
    *,
    threshold: float | None = None,
    title: str | None = None,
) -> Path:
    """Overlaid density histograms (shared bins) of the scores of each pair kind present.

    ``threshold`` (if given) is drawn as a vertical line labelled with its value.
    """
    # Labels are implied by the kinds here; _pairs still validates scores and kinds.
    kind_list = _as_kinds(kinds)
    implied = np.asarray([k == "genuine" for k in kind_list], dtype=np.int64)
    pairs = _pairs(implied, scores, kind_list)
    thr = _check_threshold(threshold)
    _check_title(title)

    with _figure((6.4, 5.4)) as (fig, ax):
        groups = [(k, pairs.scores[pairs.mask(k)]) for k in ("genuine", "skilled", "random", "unknown")]
        groups = [(k, v) for k, v in groups if v.size]
        if groups:
            # sqrt(n) bins, bounded: smooth for large sets, not noise for small ones. (numpy's "auto"
            # can ask for millions of bins when a few outliers sit far from a tight bulk.)
            n_bins = int(np.clip(round(math.sqrt(pairs.scores.size)), 10, 50))
            edges = np.histogram_bin_edges(pairs.scores, bins=n_bins)
            for kind, values in groups:
                color = KIND_COLORS[kind]
                label = f"{kind} (n={values.size})"
                ax.hist(values, bins=edges, density=True, histtype="stepfilled", color=color, alpha=0.3)
                ax.hist(values, bins=edges, density=True, histtype="step", color=color, linewidth=1.5, label=label)
        else:
            _note(ax, "no pairs")
        if thr is not None:
            from matplotlib.transforms import blended_transform_factory

            ax.axvline(thr, color="black", linestyle="--", linewidth=1.3, zorder=4, label=f"threshold {thr:g}")
            lo, hi = ax.get_xlim()
            if not lo < thr < hi:
                pad = 0.05 * max(hi - lo, 1e-9)
                lo, hi = min(lo, thr - pad), max(hi, thr + pad)
                ax.set_xlim(lo, hi)
            # The value label goes on the side of the line with more room.
            right_side = (thr - lo) / (hi - lo) > 0.85
            ax.text(
                thr,
                0.985,
                f"{thr:g} " if right_side else f" {thr:g}",
                transform=blended_transform_factory(ax.transData, ax.transAxes),
                ha="right" if right_side else "left",
                va="top",
                fontsize=9,
                fontweight="bold",
                zorder=5,
            )
        ax.set_xlabel("score (higher = more likely genuine)")
        ax.set_ylabel("density")
        ax.set_ylim(bottom=0.0)
        ax.set_title("Score distributions" if title is None else title)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            _legend_below(fig, handles, ncols=min(len(handles), 4))
        return _save(fig, path)


# --------------------------------------------------------------------------------------------
# EER vs number of references
# --------------------------------------------------------------------------------------------


def _check_reference_rows(results: Sequence[tuple[int, str, float]]) -> dict[str, dict[int, float]]:
    if isinstance(results, str | bytes):
        raise ValueError("results must be a sequence of (k, fusion, eer) rows")
    lines: dict[str, dict[int, float]] = {}
    for i, row in enumerate(results):
        if not isinstance(row, Sequence) or isinstance(row, str | bytes) or len(row) != 3:
            raise ValueError(f"results[{i}] must be a (k, fusion, eer) row, got {row!r}")
        k, fusion, eer = row
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"results[{i}]: k must be a positive integer, got {k!r}")
        if not isinstance(fusion, str) or not fusion:
            raise ValueError(f"results[{i}]: fusion must be a non-empty string, got {fusion!r}")
        if isinstance(eer, bool) or not isinstance(eer, numbers.Real):
            raise ValueError(f"results[{i}]: eer must be a number, got {eer!r}")
        # NaN (EER undefined, e.g. a class missing) is kept as a gap; anything else must be a rate.
        if not (math.isnan(eer) or 0.0 <= eer <= 1.0):
            raise ValueError(f"results[{i}]: eer must be a rate in [0, 1] (not a percentage), got {eer!r}")
        points = lines.setdefault(fusion, {})
        if int(k) in points:
            raise ValueError(f"results[{i}]: duplicate row for k={int(k)}, fusion={fusion!r}")
        points[int(k)] = float(eer)
    return lines


def plot_eer_by_references(
    results: Sequence[tuple[int, str, float]],
    path: PathLike,
    *,
    title: str | None = None,
) -> Path:
    """EER (%) against the number of reference signatures K, one line per fusion rule.

    ``results`` holds ``(k, fusion, eer)`` rows with ``eer`` a rate in ``[0, 1]`` (NaN: a gap).
    """
    lines = _check_reference_rows(results)
    _check_title(title)

    # At each K the highest line gets its value label above the point, the others below it.
    top_at: dict[int, str] = {}
    for fusion, points in lines.items():
        for k, eer in points.items():
            if math.isfinite(eer) and (k not in top_at or eer > lines[top_at[k]][k]):
                top_at[k] = fusion

    with _figure() as (fig, ax):
        all_k: set[int] = set()
        for i, (fusion, points) in enumerate(lines.items()):
            ks = sorted(points)
            all_k.update(ks)
            eer_pct = [100.0 * points[k] for k in ks]
            color = FUSION_COLORS[i % len(FUSION_COLORS)]
            ax.plot(ks, eer_pct, color=color, marker="o", markersize=5, linewidth=1.8, label=fusion)
            for k, value in zip(ks, eer_pct, strict=True):
                if math.isfinite(value):
                    above = top_at.get(k) == fusion
                    ax.annotate(
                        f"{value:.1f}",
                        (k, value),
                        textcoords="offset points",
                        xytext=(0, 6 if above else -7),
                        ha="center",
                        va="bottom" if above else "top",
                        fontsize=7.5,
                        color=color,
                        bbox={
                            "boxstyle": "round,pad=0.12",
                            "facecolor": "white",
                            "edgecolor": "none",
                            "alpha": 0.85,
                        },
                        zorder=4,
                    )
        if all_k:
            ticks = sorted(all_k)
            if len(ticks) > 15:
                step = math.ceil(len(ticks) / 15)
                ticks = ticks[::step]
            ax.set_xticks(ticks)
            ax.set_xlim(min(all_k) - 0.5, max(all_k) + 0.5)
            ax.set_ylim(bottom=0.0)
            ax.margins(y=0.15)
            ax.legend(title="fusion", loc="best")
        else:
            _note(ax, "no results")
        ax.set_xlabel("number of reference signatures K")
        ax.set_ylabel("EER (%)")
        ax.set_title("EER vs number of references" if title is None else title)
        return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Hardest pairs
# --------------------------------------------------------------------------------------------


def hardest_pairs(labels: npt.ArrayLike, scores: npt.ArrayLike, count: int) -> tuple[list[int], list[int]]:
    """Indices of the ``count`` lowest-scored genuine pairs and ``count`` highest-scored forgery pairs.

    Each list runs from the hardest pair (most likely an error) on; equal scores go by index.
    Fewer indices come back when a class has fewer pairs.
    """
    lab, sc = _labelled(labels, scores)
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    index = np.arange(sc.size)
    genuine = np.flatnonzero(lab == 1)
    forgery = np.flatnonzero(lab == 0)
    # lexsort sorts by the last key first, then by index: deterministic ties.
    genuine = genuine[np.lexsort((index[genuine], sc[genuine]))]
    forgery = forgery[np.lexsort((index[forgery], -sc[forgery]))]
    n = int(count)
    return [int(i) for i in genuine[:n]], [int(i) for i in forgery[:n]]


# --------------------------------------------------------------------------------------------
# Pair grid (Pillow)
# --------------------------------------------------------------------------------------------

_PAD: Final = 6
_GAP: Final = 8
_WHITE: Final = (255, 255, 255)
_INK: Final = (25, 25, 25)
_MUTED: Final = (110, 110, 110)
_FRAME: Final = (218, 218, 218)
_SEPARATOR: Final = (170, 170, 170)
_MAX_CAPTION_LINES: Final = 4

FontLike = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> FontLike:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: FontLike) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return math.ceil(right - left), math.ceil(bottom - top)


def _line_height(draw: ImageDraw.ImageDraw, font: FontLike) -> int:
    return _text_size(draw, "Ag|", font)[1] + 4


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: FontLike, width: int) -> list[str]:
    """``text`` broken into lines at most ``width`` pixels wide (long words are cut)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split(" "):
            candidate = word if not current else f"{current} {word}"
            if draw.textlength(candidate, font=font) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while current and draw.textlength(current, font=font) > width:
                cut = len(current) - 1
                while cut > 1 and draw.textlength(current[:cut], font=font) > width:
                    cut -= 1
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current)
    if len(lines) > _MAX_CAPTION_LINES:
        lines = [*lines[: _MAX_CAPTION_LINES - 1], lines[_MAX_CAPTION_LINES - 1].rstrip() + " ..."]
    return lines


def _check_image(image: Any, where: str) -> Image.Image:
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{where} must be a non-empty 2-D grayscale array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
            raise ValueError(f"{where} must be an 8-bit grayscale array (uint8), got dtype {arr.dtype}")
        if arr.dtype != np.bool_ and (int(arr.min()) < 0 or int(arr.max()) > 255):
            raise ValueError(f"{where} values must lie in [0, 255], got [{arr.min()}, {arr.max()}]")
        arr = arr.astype(np.uint8) * (255 if arr.dtype == np.bool_ else 1)
    return Image.fromarray(np.ascontiguousarray(arr), mode="L")


def _fit(image: Image.Image, height: int, max_width: int) -> Image.Image:
    width, h = image.size
    scale = height / h
    if width * scale > max_width:
        scale = max_width / width
    size = (max(1, round(width * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def pair_grid(
    tiles: Sequence[tuple[np.ndarray, np.ndarray, str]],
    path: PathLike,
    *,
    tile_height: int = 90,
    columns: int = 2,
    title: str | None = None,
) -> Path:
    """A PNG grid of signature pairs: each tile shows reference | query with its caption below.

    Images (8-bit grayscale, any size) are scaled to ``tile_height`` keeping their aspect ratio
    (at most ``2.2 * tile_height`` wide) and centred on white. An empty ``tiles`` list writes a
    small image saying "no pairs".
    """
    height = _check_positive_int(tile_height, "tile_height", minimum=8)
    n_cols = _check_positive_int(columns, "columns")
    _check_title(title)
    if isinstance(tiles, str | bytes):
        raise ValueError("tiles must be a sequence of (reference, query, caption) tuples")
    prepared: list[tuple[Image.Image, Image.Image, str]] = []
    for i, tile in enumerate(tiles):
        if not isinstance(tile, Sequence) or isinstance(tile, str | bytes) or len(tile) != 3:
            raise ValueError(f"tiles[{i}] must be a (reference, query, caption) tuple")
        reference, query, caption = tile
        if not isinstance(caption, str):
            raise ValueError(f"tiles[{i}] caption must be a string, got {type(caption).__name__}")
        prepared.append(
            (
                _check_image(reference, f"tiles[{i}] reference"),
                _check_image(query, f"tiles[{i}] query"),
                caption,
            )
        )

    font = _font(14)
    title_font = _font(18)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    slot_w = round(2.2 * height)
    tile_w = 2 * _PAD + 2 * slot_w + _GAP
    n_cols = max(1, min(n_cols, len(prepared)))
    n_rows = math.ceil(len(prepared) / n_cols)
    width = n_cols * tile_w + (n_cols - 1) if prepared else 300
    title_lines = _wrap(measure, title, title_font, width - 2 * _PAD) if title else []
    title_h = len(title_lines) * _line_height(measure, title_font) + 2 * _PAD if title_lines else 0

    if not prepared:
        canvas = Image.new("RGB", (width, title_h + 60), _WHITE)
        draw = ImageDraw.Draw(canvas)
        _draw_title(draw, title_lines, title_font, width)
        text_w, text_h = _text_size(draw, "no pairs", font)
        draw.text(((width - text_w) // 2, title_h + (60 - text_h) // 2), "no pairs", fill=_MUTED, font=font)
        return _save_image(canvas, path)

    line_h = _line_height(measure, font)
    captions = [_wrap(measure, caption, font, tile_w - 2 * _PAD) for _, _, caption in prepared]
    caption_h = max(len(lines) for lines in captions) * line_h
    tile_h = _PAD + height + _PAD + caption_h + _PAD
    canvas = Image.new("RGB", (width, title_h + n_rows * tile_h + (n_rows - 1)), _WHITE)
    draw = ImageDraw.Draw(canvas)
    _draw_title(draw, title_lines, title_font, width)
    if title_lines:
        draw.line([(0, title_h - 1), (width, title_h - 1)], fill=_SEPARATOR)

    for i, ((ref_image, query_image, _), lines) in enumerate(zip(prepared, captions, strict=True)):
        row, col = divmod(i, n_cols)
        x0 = col * (tile_w + 1)
        y0 = title_h + row * (tile_h + 1)
        for j, image in enumerate((ref_image, query_image)):
            sx = x0 + _PAD + j * (slot_w + _GAP)
            fitted = _fit(image, height, slot_w)
            offset = (sx + (slot_w - fitted.width) // 2, y0 + _PAD + (height - fitted.height) // 2)
            canvas.paste(fitted.convert("RGB"), offset)
            draw.rectangle([sx - 1, y0 + _PAD - 1, sx + slot_w, y0 + _PAD + height], outline=_FRAME)
        for k, line in enumerate(lines):
            draw.text((x0 + _PAD, y0 + 2 * _PAD + height + k * line_h), line, fill=_INK, font=font)
    for col in range(1, n_cols):
        x = col * (tile_w + 1) - 1
        draw.line([(x, title_h), (x, canvas.height)], fill=_SEPARATOR)
    for row in range(1, n_rows):
        y = title_h + row * (tile_h + 1) - 1
        draw.line([(0, y), (width, y)], fill=_SEPARATOR)
    return _save_image(canvas, path)


def _draw_title(draw: ImageDraw.ImageDraw, lines: list[str], font: FontLike, width: int) -> None:
    line_h = _line_height(draw, font)
    for k, line in enumerate(lines):
        text_w = _text_size(draw, line, font)[0]
        draw.text(((width - text_w) // 2, _PAD + k * line_h), line, fill=_INK, font=font)


def _save_image(image: Image.Image, path: PathLike) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return out

"""Tests of inkproof.evaluation.plots: every figure is a readable PNG, degenerate data never crashes."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from inkproof.evaluation.plots import (
    hardest_pairs,
    pair_grid,
    plot_det,
    plot_eer_by_references,
    plot_roc,
    plot_roc_comparison,
    plot_score_histogram,
)
from tests.conftest import REPO_ROOT
from tests.helpers import draw_scribble

KindsPlot = Callable[..., Path]


def _fake_scores(
    n_genuine: int = 120, n_skilled: int = 120, n_random: int = 200, shift: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    scores = np.concatenate(
        [
            rng.normal(0.7, 0.1, n_genuine),
            rng.normal(0.45, 0.12, n_skilled),
            rng.normal(0.1, 0.1, n_random),
        ]
    )
    labels = np.r_[np.ones(n_genuine, dtype=int), np.zeros(n_skilled + n_random, dtype=int)]
    kinds = ["genuine"] * n_genuine + ["skilled"] * n_skilled + ["random"] * n_random
    return labels, scores + shift, kinds


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def _roc(labels: Any, scores: Any, kinds: Any, path: Path, **kw: Any) -> Path:
    return plot_roc(labels, scores, kinds, path, **kw)


def _det(labels: Any, scores: Any, kinds: Any, path: Path, **kw: Any) -> Path:
    return plot_det(labels, scores, kinds, path, **kw)


def _hist(labels: Any, scores: Any, kinds: Any, path: Path, **kw: Any) -> Path:
    return plot_score_histogram(scores, kinds, path, **kw)


CURVE_PLOTS = [pytest.param(_roc, id="roc"), pytest.param(_det, id="det"), pytest.param(_hist, id="hist")]


# --------------------------------------------------------------------------------------------
# ROC, DET, histogram
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plot", CURVE_PLOTS)
def test_writes_readable_png(plot: KindsPlot, tmp_path: Path) -> None:
    labels, scores, kinds = _fake_scores()
    target = tmp_path / "sub" / "dir" / "figure.png"  # missing parents are created
    out = plot(labels, scores, kinds, str(target), threshold=0.55, title="fake data")
    assert out == target
    assert isinstance(out, Path)
    pixels = _pixels(out)
    height, width, _ = pixels.shape
    assert 500 <= width <= 2000 and 400 <= height <= 2000
    assert pixels.min() < 50  # something dark was drawn on the white figure
    packed = pixels.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int32)
    assert np.unique(packed).size > 20  # curves/bars in several colours


@pytest.mark.parametrize("plot", CURVE_PLOTS)
def test_threshold_zero_is_drawn(plot: KindsPlot, tmp_path: Path) -> None:
    # Scores centred on 0, so 0.0 is a meaningful threshold inside the data.
    labels, scores, kinds = _fake_scores(shift=-0.5)
    without = _pixels(plot(labels, scores, kinds, tmp_path / "none.png"))
    at_zero = _pixels(plot(labels, scores, kinds, tmp_path / "zero.png", threshold=0.0))
    assert at_zero.shape == without.shape
    assert np.any(at_zero != without), "threshold 0.0 was treated like 'no threshold'"


@pytest.mark.parametrize("plot", CURVE_PLOTS)
@pytest.mark.parametrize(
    "present",
    [
        ("genuine", "random"),
        ("genuine", "skilled", "unknown"),
        ("genuine",),
        ("skilled", "random"),
    ],
)
def test_only_some_kinds_present(plot: KindsPlot, present: tuple[str, ...], tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    kinds = [kind for kind in present for _ in range(30)]
    labels = np.array([int(k == "genuine") for k in kinds])
    scores = rng.normal(0.0, 1.0, len(kinds)) + labels
    out = plot(labels, scores, kinds, tmp_path / "some.png", threshold=0.5)
    assert _pixels(out).shape[0] > 300


@pytest.mark.parametrize("plot", CURVE_PLOTS)
@pytest.mark.parametrize(
    ("labels", "scores", "kinds"),
    [
        pytest.param([1, 1, 0, 0, 0], [0.3] * 5, ["genuine", "genuine", "skilled", "random", "unknown"], id="equal"),
        pytest.param([0], [0.9], ["skilled"], id="single-pair"),
        pytest.param([1, 0], [0.2, 0.8], ["genuine", "random"], id="inverted"),
        pytest.param([], [], [], id="empty"),
    ],
)
def test_degenerate_data_never_crashes(
    plot: KindsPlot, labels: list[int], scores: list[float], kinds: list[str], tmp_path: Path
) -> None:
    out = plot(np.array(labels, dtype=int), scores, kinds, tmp_path / "deg.png", threshold=0.0)
    assert _pixels(out).size > 0


@pytest.mark.parametrize("plot", CURVE_PLOTS)
def test_threshold_outside_scores_still_fits(plot: KindsPlot, tmp_path: Path) -> None:
    labels, scores, kinds = _fake_scores(n_genuine=40, n_skilled=40, n_random=40)
    assert _pixels(plot(labels, scores, kinds, tmp_path / "far.png", threshold=-5.0)).size > 0


@pytest.mark.parametrize("plot", CURVE_PLOTS)
@pytest.mark.parametrize(
    ("labels", "scores", "kinds", "match"),
    [
        pytest.param([1, 0], [0.5, 0.1, 0.3], ["genuine", "skilled"], "length", id="scores-length"),
        pytest.param([1, 0], [0.5, 0.1], ["genuine"], "length", id="kinds-length"),
        pytest.param([1, 0], [0.5, 0.1], ["genuine", "forged"], "kinds", id="unknown-kind"),
        pytest.param([1, 0], [0.5, 0.1], "gs", "string", id="kinds-string"),
        pytest.param([1, 0], [0.5, math.nan], ["genuine", "skilled"], "finite", id="nan-score"),
    ],
)
def test_bad_inputs_raise(
    plot: KindsPlot, labels: list[int], scores: list[float], kinds: Any, match: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=match):
        plot(labels, scores, kinds, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("plot", [plot_roc, plot_det])
@pytest.mark.parametrize("labels", [[1, 1, 0], [0, 0, 0], [1, 0, 1]])
def test_kind_label_mismatch_raises(plot: KindsPlot, labels: list[int], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label"):
        plot(labels, [0.5, 0.1, 0.3], ["genuine", "skilled", "random"], tmp_path / "bad.png")


@pytest.mark.parametrize("plot", CURVE_PLOTS)
@pytest.mark.parametrize("threshold", [math.nan, math.inf, -math.inf, True, "0.5"])
def test_bad_threshold_raises(plot: KindsPlot, threshold: Any, tmp_path: Path) -> None:
    labels, scores, kinds = _fake_scores(n_genuine=5, n_skilled=5, n_random=5)
    with pytest.raises(ValueError, match="threshold"):
        plot(labels, scores, kinds, tmp_path / "bad.png", threshold=threshold)


def test_plots_leave_global_matplotlib_state_alone(tmp_path: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    labels, scores, kinds = _fake_scores(n_genuine=20, n_skilled=20, n_random=20)
    plot_roc(labels, scores, kinds, tmp_path / "roc.png", threshold=0.5)
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend


def test_matplotlib_is_imported_lazily() -> None:
    code = "import sys, inkproof.evaluation.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


# --------------------------------------------------------------------------------------------
# EER vs references
# --------------------------------------------------------------------------------------------


def test_eer_by_references_writes_png(tmp_path: Path) -> None:
    rows = [(k, fusion, eer) for k, eer in [(1, 0.12), (2, 0.09), (5, 0.06), (10, 0.05)] for fusion in ("mean",)]
    rows += [(1, "max", 0.12), (2, "max", 0.1), (5, "max", 0.085), (10, "max", math.nan)]  # NaN: a gap
    out = plot_eer_by_references(rows, tmp_path / "eer_k.png", title="EER by K")
    pixels = _pixels(out)
    assert pixels.shape[1] > 500 and pixels.min() < 50


def test_eer_by_references_degenerate(tmp_path: Path) -> None:
    assert _pixels(plot_eer_by_references([], tmp_path / "empty.png")).size > 0
    assert _pixels(plot_eer_by_references([(3, "mean", 0.0)], tmp_path / "one.png")).size > 0
    numpy_row: list[Any] = [(np.int64(2), "max", np.float64(0.25))]
    assert _pixels(plot_eer_by_references(numpy_row, tmp_path / "np.png")).size > 0


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([(1, "mean", 12.5)], "rate"),
        ([(1, "mean", -0.1)], "rate"),
        ([(0, "mean", 0.1)], "k must"),
        ([(1.5, "mean", 0.1)], "k must"),
        ([(1, "", 0.1)], "fusion"),
        ([(1, "mean", "0.1")], "eer must"),
        ([(1, "mean")], "row"),
        ([(1, "mean", 0.1), (1, "mean", 0.2)], "duplicate"),
    ],
)
def test_eer_by_references_bad_rows(rows: Any, match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        plot_eer_by_references(rows, tmp_path / "bad.png")


# --------------------------------------------------------------------------------------------
# Hardest pairs
# --------------------------------------------------------------------------------------------


def test_hardest_pairs_with_ties() -> None:
    #          0    1    2    3    4    5    6    7    8    9
    labels = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0]
    scores = [0.3, 0.9, 0.1, 0.3, 0.9, 0.2, 0.1, 0.95, 0.8, 0.2]
    genuine, forgery = hardest_pairs(labels, scores, 3)
    assert genuine == [2, 6, 0]  # 0.1 (idx 2, 6 tied: by index), then 0.3 (idx 0 before 3)
    assert forgery == [7, 1, 4]  # 0.95, then 0.9 tied (idx 1 before 4)
    assert hardest_pairs(labels, scores, 4) == ([2, 6, 0, 3], [7, 1, 4, 5])
    assert all(isinstance(i, int) for i in genuine + forgery)


def test_hardest_pairs_counts() -> None:
    labels = np.array([1, 0, 1])
    scores = np.array([0.5, 0.4, -0.2])
    assert hardest_pairs(labels, scores, 0) == ([], [])
    assert hardest_pairs(labels, scores, 10) == ([2, 0], [1])  # fewer pairs than asked
    assert hardest_pairs([], [], 3) == ([], [])
    assert hardest_pairs([1, 1], [0.0, 0.0], 2) == ([0, 1], [])


@pytest.mark.parametrize(
    ("labels", "scores", "count", "match"),
    [
        ([1, 0], [0.1], 1, "length"),
        ([1, 2], [0.1, 0.2], 1, "labels"),
        ([1, 0], [0.1, math.inf], 1, "finite"),
        ([1, 0], [0.1, 0.2], -1, "count"),
        ([1, 0], [0.1, 0.2], 1.5, "count"),
        ([1, 0], [0.1, 0.2], True, "count"),
    ],
)
def test_hardest_pairs_bad_inputs(labels: Any, scores: Any, count: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        hardest_pairs(labels, scores, count)


# --------------------------------------------------------------------------------------------
# Pair grid
# --------------------------------------------------------------------------------------------


def _tiles(n: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    return [
        (
            draw_scribble(300, 120, seed=i),
            draw_scribble(200 + 50 * i, 100, seed=100 + i),
            f"pair {i}: score 0.{i}",
        )
        for i in range(n)
    ]


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_pair_grid_layout_grows_with_tiles_and_columns(tmp_path: Path) -> None:
    one = _size(pair_grid(_tiles(1), tmp_path / "one.png"))
    two = _size(pair_grid(_tiles(2), tmp_path / "two.png"))
    four_2 = _size(pair_grid(_tiles(4), tmp_path / "four_2.png", columns=2))
    four_1 = _size(pair_grid(_tiles(4), tmp_path / "four_1.png", columns=1))
    four_4 = _size(pair_grid(_tiles(4), tmp_path / "four_4.png", columns=4))
    tile_w, tile_h = one
    assert tile_w >= 2 * round(2.2 * 90)  # two image slots side by side
    assert tile_h > 90  # image row plus caption
    assert two == (2 * tile_w + 1, tile_h)  # two columns, one-pixel separator
    assert four_2 == (2 * tile_w + 1, 2 * tile_h + 1)
    assert four_1 == (tile_w, 4 * tile_h + 3)
    assert four_4 == (4 * tile_w + 3, tile_h)
    # More columns than tiles: no empty columns.
    assert _size(pair_grid(_tiles(1), tmp_path / "wide.png", columns=5)) == one
    # Taller tiles, larger image; a title adds a row on top.
    big = _size(pair_grid(_tiles(1), tmp_path / "big.png", tile_height=150))
    assert big[0] > tile_w and big[1] > tile_h
    titled = _size(pair_grid(_tiles(1), tmp_path / "titled.png", title="Hardest genuine pairs"))
    assert titled[0] == tile_w and titled[1] > tile_h


def test_pair_grid_draws_both_images_scaled(tmp_path: Path) -> None:
    black = np.zeros((50, 100), dtype=np.uint8)  # aspect 2: 180 x 90 at tile_height 90
    white = np.full((400, 50), 255, dtype=np.uint8)
    tall_dark = np.zeros((400, 50), dtype=np.uint8)  # aspect 1/8: 11 x 90
    out = pair_grid([(black, tall_dark, "caption")], tmp_path / "grid.png", tile_height=90)
    gray = np.asarray(Image.open(out).convert("L"))
    width = gray.shape[1]
    left, right = gray[:, : width // 2], gray[:, width // 2 :]
    dark_left = np.argwhere(left < 10)
    dark_right = np.argwhere(right < 10)
    # The 100 x 50 reference fills ~180 x 90 pixels; the tall query ~11 x 90.
    assert abs((dark_left[:, 0].max() - dark_left[:, 0].min() + 1) - 90) <= 1
    assert abs((dark_left[:, 1].max() - dark_left[:, 1].min() + 1) - 180) <= 2
    rows = np.unique(dark_right[:, 0])
    assert abs(rows.size - 90) <= 3  # caption text may add a few dark rows below
    assert np.count_nonzero(right[: rows.min() + 90] < 10) < 90 * 20  # query not stretched
    # Very wide images are capped at 2.2 * tile_height and stay inside their slot.
    wide = np.zeros((10, 2000), dtype=np.uint8)
    out = pair_grid([(wide, white, "wide")], tmp_path / "wide.png", tile_height=90)
    gray = np.asarray(Image.open(out).convert("L"))
    dark = np.argwhere(gray[:, : gray.shape[1] // 2] < 10)
    image_rows = dark[dark[:, 0] < 6 + 90]  # the image row, not the caption
    assert image_rows[:, 1].max() - image_rows[:, 1].min() + 1 <= round(2.2 * 90)


def test_pair_grid_accepts_other_integer_arrays_and_long_captions(tmp_path: Path) -> None:
    ref = draw_scribble(120, 60).astype(np.int32)
    query = draw_scribble(120, 60, seed=3) > 128
    caption = "a very long caption " * 10
    out = pair_grid([(ref, query, caption), (ref, ref, "short")], tmp_path / "grid.png", columns=2)
    assert _size(out)[1] < 400  # caption wrapped to a few lines, not unbounded


def test_pair_grid_empty(tmp_path: Path) -> None:
    out = pair_grid([], tmp_path / "empty.png")
    width, height = _size(out)
    assert 100 <= width <= 600 and 20 <= height <= 200
    gray = np.asarray(Image.open(out).convert("L"))
    assert gray.min() < 200  # the "no pairs" text
    titled = _size(pair_grid([], tmp_path / "empty_title.png", title="Hardest forgeries"))
    assert titled[1] > height


@pytest.mark.parametrize(
    ("tiles", "kwargs", "match"),
    [
        ([(np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5), np.uint8), "c")], {}, "2-D"),
        ([(np.zeros((0, 5), np.uint8), np.zeros((5, 5), np.uint8), "c")], {}, "non-empty"),
        ([(np.zeros((5, 5)), np.zeros((5, 5), np.uint8), "c")], {}, "8-bit"),
        ([(np.full((5, 5), 300), np.zeros((5, 5), np.uint8), "c")], {}, r"\[0, 255\]"),
        ([(np.zeros((5, 5), np.uint8), np.zeros((5, 5), np.uint8), 3)], {}, "caption"),
        ([(np.zeros((5, 5), np.uint8), np.zeros((5, 5), np.uint8))], {}, "tuple"),
        ([], {"columns": 0}, "columns"),
        ([], {"tile_height": 2}, "tile_height"),
        ([], {"tile_height": 90.5}, "tile_height"),
    ],
)
def test_pair_grid_bad_inputs(tiles: Any, kwargs: dict[str, Any], match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        pair_grid(tiles, tmp_path / "bad.png", **kwargs)


def test_roc_comparison_draws_one_coloured_curve_per_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.array([1] * 200 + [0] * 400)
    good = np.where(labels == 1, rng.normal(1.0, 0.3, 600), rng.normal(0.0, 0.3, 600))
    poor = np.where(labels == 1, rng.normal(0.3, 0.3, 600), rng.normal(0.0, 0.3, 600))
    both = _pixels(plot_roc_comparison({"good": (labels, good), "poor": (labels, poor)}, tmp_path / "two.png"))
    one = _pixels(plot_roc_comparison({"good": (labels, good)}, tmp_path / "one.png"))
    second_colour = np.array([0xD1, 0x49, 0x5B])  # FUSION_COLORS[1]
    assert (np.abs(both.astype(int) - second_colour).sum(axis=2) < 30).sum() > 200
    assert (np.abs(one.astype(int) - second_colour).sum(axis=2) < 30).sum() == 0
    with pytest.raises(ValueError, match="at least one"):
        plot_roc_comparison({}, tmp_path / "none.png")

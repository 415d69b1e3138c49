"""Quality checks for reference signatures, before they are enrolled.

A bad reference silently weakens every later verification of its writer, so images that are
blank, tiny, nearly empty or clearly not one signature (noise, printed text, a whole page) are
refused with a message that says why. Ink is found exactly as preprocessing finds it
(:func:`inkproof.preprocess.ink_mask`); connected components are counted on a downsampled mask
with a run-length union-find in numpy (no scipy), in a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from inkproof.preprocess import ink_mask

MIN_WIDTH = 64
MIN_HEIGHT = 24
#: Fewer ink pixels than this is a dot or a dash, not a signature.
MIN_INK_PIXELS = 150
#: More ink than this share of the image: a photo, a dark background or a filled area.
MAX_INK_FRACTION = 0.5
#: A signature has a handful of strokes, dots and breaks; hundreds of blobs are something else.
MAX_COMPONENTS = 60
#: Components smaller than this (in pixels of the original image) are specks of dust, not strokes.
MIN_COMPONENT_AREA = 8
#: Components are counted on a mask downsampled so that its longer side is at most this.
ANALYSIS_MAX_SIDE = 512


@dataclass(frozen=True)
class QualityReport:
    """``ok`` when no problem was found; ``score`` is in [0, 1] and below 0.5 exactly when a check
    fails (1 = comfortably inside every limit)."""

    ok: bool
    score: float
    problems: tuple[str, ...]
    ink_fraction: float
    components: int
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "score": self.score,
            "problems": list(self.problems),
            "ink_fraction": self.ink_fraction,
            "components": self.components,
            "width": self.width,
            "height": self.height,
        }


def assess(gray: np.ndarray) -> QualityReport:
    """Check one uint8 grayscale image (as returned by :func:`inkproof.imaging.load_image`)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("assess expects a 2-D uint8 array; use inkproof.imaging.load_image first")
    height, width = gray.shape
    problems: list[str] = []
    mask = ink_mask(gray)
    ink_pixels = int(np.count_nonzero(mask))
    ink_fraction = ink_pixels / float(mask.size) if mask.size else 0.0
    components = count_components(mask, min_area=MIN_COMPONENT_AREA) if ink_pixels else 0

    if width < MIN_WIDTH or height < MIN_HEIGHT:
        problems.append(f"too small ({width}x{height} px; at least {MIN_WIDTH}x{MIN_HEIGHT})")
    if ink_pixels == 0:
        problems.append("blank (no ink found)")
    elif ink_pixels < MIN_INK_PIXELS:
        problems.append(f"too few ink strokes ({ink_pixels} ink pixels; at least {MIN_INK_PIXELS})")
    if ink_fraction > MAX_INK_FRACTION:
        problems.append(
            f"too much ink ({ink_fraction:.0%} of the image; at most {MAX_INK_FRACTION:.0%}): "
            "a photo, a dark background or a filled area?"
        )
    if components > MAX_COMPONENTS:
        problems.append(
            f"too many ink components ({components}; at most {MAX_COMPONENTS}): noise, text or a scan of a whole page?"
        )

    # Each factor is 0.5 right at its limit, 1 comfortably inside it and 0 far outside.
    factors = [
        _at_least(min(width / MIN_WIDTH, height / MIN_HEIGHT)),
        _at_least(ink_pixels / MIN_INK_PIXELS),
        _at_most(ink_fraction / MAX_INK_FRACTION),
        _at_most(components / MAX_COMPONENTS),
    ]
    score = 0.0 if ink_pixels == 0 else min(factors)
    if problems:
        score = min(score, 0.49)
    return QualityReport(
        ok=not problems,
        score=round(score, 4),
        problems=tuple(problems),
        ink_fraction=ink_fraction,
        components=components,
        width=width,
        height=height,
    )


def _at_least(ratio: float) -> float:
    return float(np.clip(ratio - 0.5, 0.0, 1.0))


def _at_most(ratio: float) -> float:
    return float(np.clip(1.5 - ratio, 0.0, 1.0))


def count_components(mask: np.ndarray, *, min_area: int = 1, max_side: int = ANALYSIS_MAX_SIDE) -> int:
    """Number of 8-connected components of a boolean mask whose area is at least ``min_area``
    pixels (of the original mask). Large masks are max-pooled first so that the longer side is at
    most ``max_side``; that may join strokes that almost touch, which does not matter here."""
    factor = max(1, math.ceil(max(mask.shape) / max_side))
    small = _max_pool(mask, factor) if factor > 1 else mask.astype(bool, copy=False)
    sizes = component_sizes(small)
    return int(np.count_nonzero(sizes * factor * factor >= min_area))


def component_sizes(mask: np.ndarray) -> np.ndarray:
    """Pixel counts of the 8-connected components of a 2-D boolean mask (in no particular order)."""
    height, width = mask.shape
    if not mask.any():
        return np.zeros(0, dtype=np.int64)
    # Runs of ink along each row: [start, end) per run, in row-major order.
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(steps == 1)
    _, run_ends = np.nonzero(steps == -1)
    n_runs = len(run_rows)
    stride = width + 2
    start_keys = run_rows * stride + run_starts
    end_keys = run_rows * stride + run_ends
    # Runs of the next row that touch a run (8-connected): start <= end and end >= start, a
    # contiguous block of indices found by binary search on the globally sorted keys.
    next_row = (run_rows + 1) * stride
    first = np.searchsorted(end_keys, next_row + run_starts, side="left")
    last = np.searchsorted(start_keys, next_row + run_ends, side="right")
    counts = np.maximum(last - first, 0)
    left = np.repeat(np.arange(n_runs), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    right = np.repeat(first, counts) + offsets
    roots = _union_find(n_runs, left, right)
    return np.bincount(roots, weights=run_ends - run_starts)[np.unique(roots)].astype(np.int64)


def _union_find(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Root (smallest member) of every node's component, by vectorised hooking and pointer jumping."""
    parent = np.arange(n)
    while True:
        root_left = parent[left]
        root_right = parent[right]
        low = np.minimum(root_left, root_right)
        high = np.maximum(root_left, root_right)
        differ = low != high
        if not differ.any():
            return parent
        np.minimum.at(parent, high[differ], low[differ])
        while True:  # full path compression: every node points at its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def _max_pool(mask: np.ndarray, factor: int) -> np.ndarray:
    height, width = mask.shape
    padded_height = -(-height // factor) * factor
    padded_width = -(-width // factor) * factor
    padded = np.zeros((padded_height, padded_width), dtype=bool)
    padded[:height, :width] = mask
    blocks = padded.reshape(padded_height // factor, factor, padded_width // factor, factor)
    return np.asarray(blocks.any(axis=(1, 3)), dtype=bool)


__all__ = [
    "MAX_COMPONENTS",
    "MAX_INK_FRACTION",
    "MIN_COMPONENT_AREA",
    "MIN_HEIGHT",
    "MIN_INK_PIXELS",
    "MIN_WIDTH",
    "QualityReport",
    "assess",
    "component_sizes",
    "count_components",
]

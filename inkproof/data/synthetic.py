"""Synthetic offline signatures: a realistic, license-free stand-in for signature datasets.

Real signature corpora (GPDS, CEDAR, MCYT, ...) are licensed for research only and contain
biometric data, so nothing in this repository may be derived from them. Tests, benchmarks and the
README demo use this generator instead. It produces the structure a verifier has to cope with:

* **Writers.** Each writer has a deterministic style (:func:`writer_style`): a pen-trajectory
  template of 1-3 pen-down strokes -- a cursive "name" built from letter-like glyphs (arches, cups,
  ovals, ascender and descender loops) with per-writer letter width, height, slant, baseline
  drift, loop preference and a tendency to trail off into a flat garland, plus an optional capital
  flourish and an optional underline / paraph -- and pen width, pressure, ink, speed and paper.
* **Genuine samples** (:func:`render_genuine`) re-write the template with natural within-writer
  variation: a small global affine change (rotation, scale, shear), a smooth low-frequency
  displacement of the control points and slightly different pressure and timing. Fast writing
  gives thin, tapered stroke ends and width that follows curvature.
* **Skilled forgeries** (:func:`render_forgery`) are drawn from the same template (the forger has
  seen the signature) by one of a few forgers per writer: per-letter proportion errors, different
  local curvature, a slightly wrong slant, and the marks of slow copying -- high-frequency tremor,
  uniform pressure, blunt stroke ends, occasional pen lifts and ink blobs at hesitations. Layout,
  size and darkness stay close to the genuine ones, so global statistics do not give them away.
* **Random forgeries** are simply other writers' genuine signatures; nothing extra is generated.

Trajectories are Catmull-Rom splines sampled densely and drawn as variable-width polylines with
Pillow at 3x resolution (``SyntheticConfig.supersample``), then downsampled (antialiasing) and
composited as ink on textured paper with scanner noise. Every image draws its random numbers from
``np.random.SeedSequence([seed, writer_index, kind, sample_index])``, so any image can be
rendered alone, in any order, with identical pixels.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = [
    "SyntheticConfig",
    "SyntheticSummary",
    "WriterStyle",
    "contact_sheet",
    "generate_dataset",
    "render_forgery",
    "render_genuine",
    "sample_signatures",
    "writer_id",
    "writer_style",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Second entry of the per-image SeedSequence; fixed forever so that datasets stay reproducible.
_KIND_STYLE = 0
_KIND_GENUINE = 1
_KIND_FORGERY = 2
_KIND_FORGER = 3

#: Output canvas limits (pixels); sizes vary by writer inside them.
MIN_HEIGHT, MAX_HEIGHT = 120, 300
MIN_WIDTH, MAX_WIDTH = 350, 800

#: Distinct forgers who imitate each writer; forgery ``i`` is by forger ``i % FORGERS_PER_WRITER``.
FORGERS_PER_WRITER = 3

_SAMPLE_SPACING = 1.0  # output pixels between dense trajectory samples


@dataclass(frozen=True)
class SyntheticConfig:
    """What :func:`generate_dataset` writes and how images look.

    ``seed`` selects the writers (see :func:`writer_style`); the pixels of a sample depend only on
    its writer style, kind and index plus the rendering knobs below.
    """

    writers: int = 10
    genuine_per_writer: int = 12
    forged_per_writer: int = 12
    seed: int = 0
    paper_texture: bool = True
    noise: float = 1.0  # scales scanner noise; 0 disables it
    supersample: int = 3  # drawing resolution factor before the antialiased downsample
    blur: float = 1.0  # scales the writer's slight optical blur; 0 disables it
    forgery_skill: float = 0.5  # 0 = crude imitation, 1 = careful forger (smaller shape errors)

    def __post_init__(self) -> None:
        for name in ("writers", "genuine_per_writer", "forged_per_writer", "seed", "supersample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if self.writers < 1:
            raise ValueError(f"writers must be >= 1, got {self.writers}")
        if self.genuine_per_writer < 1:
            raise ValueError(f"genuine_per_writer must be >= 1, got {self.genuine_per_writer}")
        if self.forged_per_writer < 0:
            raise ValueError(f"forged_per_writer must be >= 0, got {self.forged_per_writer}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not isinstance(self.paper_texture, bool):
            raise ValueError(f"paper_texture must be a bool, got {self.paper_texture!r}")
        if not 1 <= self.supersample <= 4:
            raise ValueError(f"supersample must be in 1..4, got {self.supersample}")
        for name in ("noise", "blur"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        skill = self.forgery_skill
        if not isinstance(skill, int | float) or not 0.0 <= skill <= 1.0:
            raise ValueError(f"forgery_skill must be in [0, 1], got {skill!r}")


@dataclass(frozen=True, eq=False)
class WriterStyle:
    """One writer's signature: template trajectory plus pen, ink and paper parameters.

    Template coordinates are in x-height units, x to the right, y up, baseline at y = 0.
    ``letters[k][i]`` is the letter (glyph, capital or paraph) that control point ``i`` of stroke
    ``k`` belongs to; forgers distort proportions letter by letter.
    """

    seed: int
    writer_index: int
    strokes: tuple[FloatArray, ...]
    letters: tuple[IntArray, ...]
    scale: float  # output pixels per x-height unit
    pen_width: float  # output pixels at nominal pressure
    pressure: float  # mean pen pressure, 0..1
    pressure_variation: float  # amplitude of slow pressure changes along a stroke
    ink_gray: float  # gray level of fully covered ink
    paper_gray: float
    speed: float  # 0 (slow, even) .. 1 (fast: width follows curvature, long tapers)
    variability: float  # scale of within-writer shape variation (1 = typical, smaller = steadier)
    slant: float  # shear already baked into the template; kept for reference
    blur_radius: float  # optical blur of this writer's scans (pixels)
    margin: float  # typical crop margin around the ink, as a fraction of the ink height

    @property
    def id(self) -> str:
        return writer_id(self.writer_index)


@dataclass(frozen=True)
class SyntheticSummary:
    """What :func:`generate_dataset` wrote: its root folder, writer ids and image counts."""

    root: Path
    writers: tuple[str, ...]
    genuine: int
    forged: int


def writer_id(index: int) -> str:
    """``"W001"`` for writer 1 (1-based; more digits past 999)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 1:
        raise ValueError(f"writer index must be an int >= 1, got {index!r}")
    return f"W{index:03d}"


# --------------------------------------------------------------------------------------------
# Glyphs. Points follow the pen after the entry stroke, which arrives at (0, 0); the last point is
# the exit connector. y = 1 is the x-height; ascender points (y > 1) and descender points (y < 0)
# are rescaled per writer.
# --------------------------------------------------------------------------------------------

_Glyph = tuple[float, bool, tuple[tuple[float, float], ...]]  # width, has a loop, points

# fmt: off
_GLYPHS: dict[str, _Glyph] = {
    "e": (0.75, True, ((0.3, 0.35), (0.58, 0.75), (0.45, 0.98), (0.24, 0.7), (0.3, 0.18), (0.55, 0.0),
                       (1.0, 0.3))),
    "l": (0.7, True, ((0.35, 0.6), (0.62, 1.5), (0.6, 2.15), (0.42, 2.3), (0.3, 1.95), (0.35, 1.0),
                      (0.45, 0.15), (0.62, 0.0), (1.0, 0.3))),
    "h": (1.1, True, ((0.28, 0.6), (0.48, 1.55), (0.4, 2.3), (0.24, 1.95), (0.24, 1.0), (0.22, 0.05),
                      (0.35, 0.7), (0.55, 0.97), (0.72, 0.6), (0.72, 0.12), (0.82, 0.0), (1.0, 0.25))),
    "d": (1.0, True, ((0.3, 0.6), (0.62, 0.92), (0.42, 0.99), (0.18, 0.7), (0.2, 0.25), (0.38, 0.03),
                      (0.6, 0.4), (0.72, 1.4), (0.76, 2.25), (0.7, 1.2), (0.68, 0.3), (0.78, 0.0),
                      (1.0, 0.3))),
    "g": (1.0, True, ((0.3, 0.6), (0.6, 0.95), (0.4, 0.98), (0.2, 0.7), (0.25, 0.25), (0.5, 0.1),
                      (0.65, 0.6), (0.68, 0.95), (0.66, 0.0), (0.6, -0.9), (0.45, -1.3), (0.3, -1.1),
                      (0.45, -0.5), (0.75, -0.05), (1.0, 0.25))),
    "y": (1.0, True, ((0.15, 0.6), (0.22, 0.95), (0.25, 0.3), (0.38, 0.02), (0.6, 0.4), (0.68, 0.95),
                      (0.65, 0.0), (0.58, -0.9), (0.42, -1.3), (0.3, -1.05), (0.5, -0.45), (0.8, -0.05),
                      (1.0, 0.25))),
    "n": (1.0, False, ((0.15, 0.7), (0.25, 0.97), (0.28, 0.5), (0.25, 0.0), (0.38, 0.65), (0.55, 0.97),
                       (0.72, 0.65), (0.72, 0.12), (0.82, 0.0), (1.0, 0.25))),
    "m": (1.4, False, ((0.1, 0.7), (0.18, 0.97), (0.2, 0.5), (0.18, 0.0), (0.28, 0.65), (0.4, 0.97),
                       (0.5, 0.6), (0.5, 0.0), (0.6, 0.65), (0.72, 0.97), (0.82, 0.6), (0.82, 0.12),
                       (0.9, 0.0), (1.0, 0.25))),
    "u": (1.0, False, ((0.12, 0.6), (0.2, 0.95), (0.18, 0.4), (0.32, 0.02), (0.55, 0.3), (0.68, 0.95),
                       (0.65, 0.35), (0.72, 0.02), (1.0, 0.28))),
    "a": (1.0, False, ((0.3, 0.6), (0.65, 0.92), (0.45, 0.98), (0.2, 0.75), (0.18, 0.3), (0.35, 0.03),
                       (0.6, 0.35), (0.7, 0.95), (0.65, 0.4), (0.72, 0.03), (1.0, 0.3))),
    "o": (0.9, False, ((0.25, 0.55), (0.5, 0.97), (0.3, 0.95), (0.15, 0.6), (0.3, 0.1), (0.55, 0.05),
                       (0.62, 0.6), (0.55, 0.95), (0.7, 0.8), (1.0, 0.6))),
    "i": (0.5, False, ((0.3, 0.6), (0.45, 0.95), (0.42, 0.4), (0.55, 0.02), (1.0, 0.28))),
    "t": (0.6, False, ((0.3, 0.8), (0.45, 1.7), (0.42, 0.9), (0.45, 0.15), (0.6, 0.0), (1.0, 0.3))),
    "r": (0.8, False, ((0.3, 0.8), (0.45, 1.0), (0.55, 0.85), (0.72, 0.95), (0.68, 0.3), (0.75, 0.0),
                       (1.0, 0.28))),
    "s": (0.75, False, ((0.35, 0.65), (0.55, 1.0), (0.62, 0.5), (0.55, 0.12), (0.35, 0.05),
                        (0.45, 0.15), (0.7, 0.05), (1.0, 0.3))),
    "c": (0.75, False, ((0.4, 0.7), (0.6, 0.9), (0.45, 0.98), (0.2, 0.7), (0.22, 0.2), (0.45, 0.0),
                        (1.0, 0.3))),
}
# fmt: on
_GLYPH_NAMES = tuple(_GLYPHS)
_LOOPED = np.array([_GLYPHS[name][1] for name in _GLYPH_NAMES])

# Capitals, about 3 units tall before per-writer scaling; first point is where the pen lands,
# the last one is the exit toward the name.
# fmt: off
_CAPITALS: tuple[tuple[float, tuple[tuple[float, float], ...]], ...] = (
    (1.7, ((0.9, 2.4), (1.3, 3.0), (1.1, 3.2), (0.8, 2.8), (0.75, 1.6), (0.55, 0.5), (0.2, 0.05),
           (0.05, 0.25), (0.4, 0.35), (1.2, 0.1), (1.7, 0.3))),
    (1.9, ((1.2, 2.5), (0.8, 3.0), (0.25, 2.5), (0.05, 1.3), (0.45, 0.1), (1.35, 0.35), (1.7, 1.6),
           (1.35, 2.8), (0.75, 2.75), (1.2, 1.7), (1.9, 0.3))),
    (1.8, ((0.0, 0.0), (0.3, 1.8), (0.55, 2.9), (0.7, 2.0), (0.75, 0.2), (0.95, 1.8), (1.2, 2.9),
           (1.35, 1.8), (1.45, 0.15), (1.8, 0.3))),
    (1.6, ((0.0, 0.4), (0.3, 0.1), (0.8, 0.4), (1.3, 1.6), (1.4, 2.6), (1.1, 3.1), (0.7, 2.7),
           (0.9, 1.6), (1.2, 0.6), (1.1, 0.05), (0.7, 0.1), (0.9, 0.4), (1.6, 0.3))),
    (1.5, ((0.3, 2.6), (0.5, 3.0), (0.45, 1.5), (0.35, 0.0), (0.5, 1.1), (1.0, 2.0), (1.1, 2.8),
           (0.9, 2.2), (1.0, 1.0), (1.1, 0.05), (1.5, 0.3))),
    (1.6, ((0.2, 2.2), (0.7, 2.9), (1.3, 3.0), (1.0, 2.4), (0.8, 1.0), (0.7, -0.6), (0.4, -1.0),
           (0.2, -0.6), (0.6, -0.1), (1.6, 0.3))),
)
# fmt: on


# --------------------------------------------------------------------------------------------
# Writer styles
# --------------------------------------------------------------------------------------------


def _rng(seed: int, writer_index: int, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, writer_index, kind, index]))


@dataclass
class _Builder:
    """Accumulates the control points of one pen-down stroke and their letter ids."""

    points: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    letters: list[int] = dataclasses.field(default_factory=list)

    def add(self, pts: FloatArray, letter: int) -> None:
        self.points.extend((float(x), float(y)) for x, y in pts)
        self.letters.extend([letter] * len(pts))


def _glyph_points(name: str, x0: float, width: float, amp: float, ascender: float, descender: float) -> FloatArray:
    pts = np.array(_GLYPHS[name][2], dtype=np.float64)
    y = pts[:, 1].copy()
    up = y > 1.0
    y[up] = 1.0 + (y[up] - 1.0) * (ascender - 1.0) / 1.3
    down = y < 0.0
    y[down] = y[down] * descender / 1.3
    return np.column_stack([x0 + pts[:, 0] * width, y * amp])


def _capital_points(rng: np.random.Generator, x0: float, height: float) -> tuple[FloatArray, float]:
    width, raw = _CAPITALS[int(rng.integers(len(_CAPITALS)))]
    pts = np.array(raw, dtype=np.float64)
    sx = height / 3.0 * rng.uniform(0.8, 1.2)
    pts[:, 0] = x0 + pts[:, 0] * sx
    pts[:, 1] *= height / 3.0
    return pts, x0 + width * sx


def _word(
    rng: np.random.Generator,
    builder: _Builder,
    x0: float,
    n_letters: int,
    params: dict[str, float],
    next_letter: int,
) -> tuple[float, int]:
    """Append ``n_letters`` connected glyphs starting at ``x0``; returns the end x and next letter id."""
    weights = np.where(_LOOPED, params["loop_prob"], 1.0 - params["loop_prob"]) + 0.05
    weights /= weights.sum()
    x = x0
    previous = ""
    for i in range(n_letters):
        name = previous
        while name == previous:  # doubled letters read as a stutter in a synthetic name
            name = _GLYPH_NAMES[int(rng.choice(len(_GLYPH_NAMES), p=weights))]
        previous = name
        progress = i / max(1, n_letters - 1)
        # Signatures trail off: later letters flatten toward a garland.
        amp = params["amp"] * rng.normal(1.0, 0.07) * (1.0 - params["decay"] * progress**1.5)
        width = _GLYPHS[name][0] * params["letter_width"] * rng.uniform(0.88, 1.12)
        builder.add(_glyph_points(name, x, width, amp, params["ascender"], params["descender"]), next_letter)
        next_letter += 1
        x += width
    return x, next_letter


def writer_style(seed: int, writer_index: int) -> WriterStyle:
    """The deterministic style of writer ``writer_index`` (1-based) in the population ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    writer_id(writer_index)  # validates the index
    rng = _rng(seed, writer_index, _KIND_STYLE, 0)

    params = {
        "letter_width": rng.uniform(0.65, 1.1),
        "amp": rng.uniform(0.75, 1.15),
        "loop_prob": rng.uniform(0.2, 0.8),
        "ascender": rng.uniform(1.8, 2.5),
        "descender": rng.uniform(0.8, 1.4),
        "decay": rng.uniform(0.0, 0.6) if rng.random() < 0.6 else 0.0,
    }
    cap_height = rng.uniform(2.0, 3.0)
    layout = rng.choice(["one", "separate_capital", "two_words"], p=[0.45, 0.2, 0.35])
    paraph = rng.choice(["none", "connected", "separate"], p=[0.4, 0.3, 0.3])

    builders: list[_Builder] = []
    letter = 0
    x = 0.0
    if layout == "two_words":
        first = _Builder()
        pts, x = _capital_points(rng, 0.0, cap_height)
        first.add(pts, letter)
        letter += 1
        x, letter = _word(rng, first, x, int(rng.integers(2, 5)), params, letter)
        builders.append(first)
        second = _Builder()
        pts, x = _capital_points(rng, x + rng.uniform(0.4, 0.9), cap_height * rng.uniform(0.8, 1.0))
        second.add(pts, letter)
        letter += 1
        x, letter = _word(rng, second, x, int(rng.integers(4, 9)), params, letter)
        builders.append(second)
    else:
        main = _Builder()
        if layout == "separate_capital" or rng.random() < 0.85:
            pts, x = _capital_points(rng, 0.0, cap_height)
            if layout == "separate_capital":
                cap = _Builder()
                cap.add(pts, letter)
                builders.append(cap)
                x += rng.uniform(0.1, 0.4)
                # The name then starts with a short lead-in stroke of its own.
                main.add(np.array([[x - 0.15, 0.1]]), letter + 1)
            else:
                main.add(pts, letter)
            letter += 1
        x, letter = _word(rng, main, x, int(rng.integers(6, 12)), params, letter)
        builders.append(main)

    slant = rng.uniform(-0.1, 0.45)
    drift = rng.normal(0.0, 0.03)
    bow = rng.normal(0.0, 0.004)

    def finish(b: _Builder) -> FloatArray:
        pts = np.array(b.points, dtype=np.float64)
        pts[:, 0] += slant * pts[:, 1]
        pts[:, 1] += drift * pts[:, 0] + bow * (pts[:, 0] - x / 2.0) ** 2
        return pts

    strokes = [finish(b) for b in builders]
    letters = [np.array(b.letters, dtype=np.int64) for b in builders]

    if paraph != "none":
        allpts = np.vstack(strokes)
        x_min, x_max = float(allpts[:, 0].min()), float(allpts[:, 0].max())
        y_low = float(allpts[:, 1].min())
        below = min(y_low, -0.3) - rng.uniform(0.1, 0.4)
        n_wave = int(rng.integers(0, 3))
        xs = np.linspace(x_max + rng.uniform(0.0, 0.6), x_min + rng.uniform(-0.3, 1.5), 5 + n_wave)
        ys = below + rng.normal(0.0, 0.12, xs.size) + np.linspace(0.0, rng.uniform(-0.5, 0.3), xs.size)
        sweep = np.column_stack([xs, ys])
        if paraph == "connected":
            last = strokes[-1][-1]
            lead = np.array([[last[0] + 0.5, last[1] + 0.4], [last[0] + 0.7, below + 0.4]])
            strokes[-1] = np.vstack([strokes[-1], lead, sweep])
            letters[-1] = np.concatenate([letters[-1], np.full(len(lead) + len(sweep), letter)])
        else:
            hook = np.array([[xs[-1] - 0.25, ys[-1] + 0.35]])
            strokes.append(np.vstack([sweep, hook]))
            letters.append(np.full(len(sweep) + 1, letter, dtype=np.int64))

    allpts = np.vstack(strokes)
    span = allpts.max(axis=0) - allpts.min(axis=0)
    # Fit a per-writer target ink width, but never taller than the canvas allows.
    scale = min(rng.uniform(320.0, 760.0) / span[0], rng.uniform(110.0, 230.0) / span[1])
    pen_width = rng.uniform(1.7, 3.4)
    for arr in [*strokes, *letters]:
        arr.setflags(write=False)
    return WriterStyle(
        seed=seed,
        writer_index=writer_index,
        strokes=tuple(strokes),
        letters=tuple(letters),
        scale=float(scale),
        pen_width=float(pen_width),
        pressure=float(rng.uniform(0.7, 1.0)),
        pressure_variation=float(rng.uniform(0.05, 0.2)),
        ink_gray=float(rng.uniform(25.0, 85.0)),
        paper_gray=float(rng.uniform(228.0, 247.0)),
        speed=float(rng.uniform(0.35, 1.0)),
        variability=float(rng.uniform(0.7, 1.3)),
        slant=float(slant),
        blur_radius=float(rng.uniform(0.0, 0.7)),
        margin=float(rng.uniform(0.04, 0.14)),
    )


# --------------------------------------------------------------------------------------------
# Trajectory geometry
# --------------------------------------------------------------------------------------------


def _catmull_rom(ctrl: FloatArray, spacing: float) -> FloatArray:
    """Centripetal Catmull-Rom spline through ``ctrl``, resampled every ``spacing`` units of arc."""
    if len(ctrl) < 2:
        return ctrl.copy()
    q = np.vstack([2 * ctrl[0] - ctrl[1], ctrl, 2 * ctrl[-1] - ctrl[-2]])
    p0, p1, p2, p3 = q[:-3], q[1:-2], q[2:-1], q[3:]

    def knot(a: FloatArray, b: FloatArray) -> FloatArray:
        return np.maximum(np.linalg.norm(b - a, axis=1), 1e-6) ** 0.5

    d0, d1, d2 = knot(p0, p1)[:, None], knot(p1, p2)[:, None], knot(p2, p3)[:, None]
    m1 = ((p1 - p0) / d0 - (p2 - p0) / (d0 + d1) + (p2 - p1) / d1) * d1
    m2 = ((p2 - p1) / d1 - (p3 - p1) / (d1 + d2) + (p3 - p2) / d2) * d1
    chord = np.linalg.norm(p2 - p1, axis=1)
    rough = np.maximum(chord, 0.5 * (np.linalg.norm(m1, axis=1) + np.linalg.norm(m2, axis=1)))
    counts = np.maximum(2, np.ceil(2.0 * rough / spacing)).astype(np.int64)
    seg = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    t = ((np.arange(int(counts.sum())) - starts) / np.repeat(counts, counts))[:, None]
    t2, t3 = t * t, t * t * t
    curve = (
        (2 * t3 - 3 * t2 + 1) * p1[seg]
        + (t3 - 2 * t2 + t) * m1[seg]
        + (-2 * t3 + 3 * t2) * p2[seg]
        + (t3 - t2) * m2[seg]
    )
    curve = np.vstack([curve, ctrl[-1:]])
    # Uniform arc-length resampling: tremor, tapers and pen lifts are then defined in pixels.
    step = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(step)])
    n = max(2, int(s[-1] / spacing) + 1)
    grid = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(grid, s, curve[:, 0]), np.interp(grid, s, curve[:, 1])])


def _smooth(values: FloatArray, window: int) -> FloatArray:
    if window <= 1 or values.size < 3:
        return values
    window = min(window, values.size)
    kernel = np.hanning(window + 2)[1:-1]
    kernel /= kernel.sum()
    padded = np.pad(values, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def _smooth_noise(rng: np.random.Generator, n: int, corr: float) -> FloatArray:
    """Unit-variance noise along a stroke with correlation length ``corr`` samples."""
    window = max(1, round(2.5 * corr))
    raw = rng.standard_normal(n + 2 * window)
    out = _smooth(raw, window)[window : window + n]
    std = float(out.std()) if n > 1 else 1.0
    return out / std if std > 1e-9 else out


def _low_frequency_field(rng: np.random.Generator, u: FloatArray, amplitude: float) -> FloatArray:
    """A smooth 2-D displacement as a function of normalized position ``u`` along the signature."""
    out = np.zeros((u.size, 2))
    for k in (1.0, 2.0, 3.5):
        phase = rng.uniform(0, 2 * np.pi, 2)
        amp = rng.normal(0.0, amplitude / k, 2)
        out += amp * np.sin(2 * np.pi * k * u[:, None] + phase)
    return out


def _affine(pts: FloatArray, center: FloatArray, angle_deg: float, sx: float, sy: float, shear: float) -> FloatArray:
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lin = rot @ np.array([[sx, shear * sy], [0.0, sy]])
    return (pts - center) @ lin.T + center


def _curvature_slowness(xy: FloatArray, radius: float) -> FloatArray:
    """0 on straight runs, toward 1 in tight turns, where a real pen slows down and thickens."""
    if len(xy) < 3:
        return np.zeros(len(xy))
    d = np.diff(xy, axis=0)
    theta = np.arctan2(d[:, 1], d[:, 0])
    turn = np.abs(np.angle(np.exp(1j * np.diff(theta))))
    curv = np.concatenate([[turn[0]], turn, [turn[-1]]]) / _SAMPLE_SPACING
    curv = _smooth(curv, 11)
    return np.asarray(curv * radius / (1.0 + curv * radius), dtype=np.float64)


@dataclass
class _Piece:
    """A continuous pen-down polyline in output pixels with per-sample width and ink amount."""

    xy: FloatArray
    width: FloatArray
    ink: FloatArray


def _taper(n: int, length: float) -> FloatArray:
    if n == 0:
        return np.zeros(0)
    ramp = np.clip(np.arange(n) / max(length / _SAMPLE_SPACING, 1e-6), 0.0, 1.0)
    return np.asarray(ramp * ramp * (3 - 2 * ramp), dtype=np.float64)  # smoothstep


# --------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------


def _template_px(style: WriterStyle, strokes: list[FloatArray]) -> list[FloatArray]:
    """Template units -> output pixels (y down)."""
    return [np.column_stack([s[:, 0] * style.scale, -s[:, 1] * style.scale]) for s in strokes]


def _genuine_pieces(style: WriterStyle, rng: np.random.Generator) -> list[_Piece]:
    strokes = [s.copy() for s in style.strokes]
    allpts = np.vstack(strokes)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    center = (lo + hi) / 2
    wobble = 0.045 * style.variability
    out: list[FloatArray] = []
    for s in strokes:
        u = (s[:, 0] - lo[0]) / max(hi[0] - lo[0], 1e-6)
        s = s + _low_frequency_field(rng, u, wobble) + rng.normal(0.0, 0.018 * style.variability, s.shape)
        out.append(s)
    angle, scale = rng.normal(0.0, 1.5), rng.uniform(0.94, 1.06)
    out = [_affine(s, center, angle, scale * rng.normal(1.0, 0.015), scale, rng.normal(0.0, 0.03)) for s in out]
    pressure = float(np.clip(style.pressure * rng.normal(1.0, 0.04), 0.4, 1.0))
    pieces: list[_Piece] = []
    for xy in _template_px(style, out):
        dense = _catmull_rom(xy, _SAMPLE_SPACING)
        n = len(dense)
        slow = _curvature_slowness(dense, 6.0)
        p = pressure * (1.0 + style.pressure_variation * _smooth_noise(rng, n, 60.0))
        # Fast pens land and lift in motion: short entry taper, longer exit taper.
        entry = 0.35 + 0.65 * _taper(n, (4.0 + 10.0 * style.speed) * rng.uniform(0.8, 1.2))
        exit_ = 0.2 + 0.8 * _taper(n, (8.0 + 30.0 * style.speed) * rng.uniform(0.8, 1.2))[::-1]
        dyn = 1.0 + style.speed * 0.35 * (slow - 0.3)
        width = style.pen_width * (0.55 + 0.45 * p) * dyn * entry * exit_
        ink = np.clip(0.55 + 0.45 * p * entry * exit_ * (0.9 + 0.15 * slow), 0.3, 1.0)
        pieces.append(_Piece(dense, width, ink))
    return pieces


def _forger_traits(style: WriterStyle, forger: int, skill: float) -> dict[str, float]:
    rng = _rng(style.seed, style.writer_index, _KIND_FORGER, forger)
    err = 1.5 - skill  # 1.0 at the default skill of 0.5
    return {
        "letter_err": rng.uniform(0.07, 0.13) * err,
        "jitter": rng.uniform(0.025, 0.045) * err,
        "wobble": rng.uniform(0.05, 0.08) * err,
        "slant": rng.normal(0.0, 0.06) * err,
        "size": rng.normal(1.0, 0.04),
        "tremor": rng.uniform(0.2, 0.45),
        "tremor_corr": rng.uniform(2.0, 4.0),
        "lift_rate": rng.uniform(0.002, 0.006),  # pen lifts per output pixel of trajectory
        "pressure": rng.uniform(0.75, 0.9),
        "width": rng.uniform(0.8, 0.98),
    }


def _forgery_pieces(style: WriterStyle, rng: np.random.Generator, traits: dict[str, float]) -> list[_Piece]:
    allpts = np.vstack(style.strokes)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    center = (lo + hi) / 2
    out: list[FloatArray] = []
    shift = 0.0  # a forger's letter-width errors accumulate along the line
    for s, letters in zip(style.strokes, style.letters, strict=True):
        s = s.copy()
        for letter in np.unique(letters):
            sel = letters == letter
            pts = s[sel]
            x0, y0 = pts[0, 0], float(np.clip(pts[:, 1].min(), -0.2, 0.2))
            sx = max(0.6, rng.normal(1.0, traits["letter_err"]))
            sy = max(0.6, rng.normal(1.0, traits["letter_err"]))
            width = pts[:, 0].max() - x0
            pts = np.column_stack([x0 + shift + (pts[:, 0] - x0) * sx, y0 + (pts[:, 1] - y0) * sy])
            shift += width * (sx - 1.0) * 0.5
            s[sel] = pts
        u = (s[:, 0] - lo[0]) / max(hi[0] - lo[0], 1e-6)
        s = s + _low_frequency_field(rng, u, traits["wobble"]) + rng.normal(0.0, traits["jitter"], s.shape)
        out.append(s)
    size = traits["size"] * rng.uniform(0.95, 1.05)
    shear = traits["slant"] + rng.normal(0.0, 0.03)
    out = [_affine(s, center, rng.normal(0.0, 2.0), size, size, shear) for s in out]

    pieces: list[_Piece] = []
    pressure = traits["pressure"] * rng.normal(1.0, 0.03)
    for xy in _template_px(style, out):
        dense = _catmull_rom(xy, _SAMPLE_SPACING)
        n = len(dense)
        # Slow copying: tremor perpendicular to the path, a few px in wavelength.
        d = np.gradient(dense, axis=0)
        normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.maximum(np.linalg.norm(d, axis=1), 1e-9)[:, None]
        tremor = traits["tremor"] * rng.uniform(0.8, 1.2) * _smooth_noise(rng, n, traits["tremor_corr"])
        tremor += 0.5 * traits["tremor"] * _smooth_noise(rng, n, 12.0)
        dense = dense + normal * tremor[:, None]
        slow = _curvature_slowness(dense, 6.0)
        width = style.pen_width * traits["width"] * (0.55 + 0.45 * pressure) * (1.0 + 0.1 * slow)
        width = width * (1.0 + 0.05 * _smooth_noise(rng, n, 20.0))
        ink = np.full(n, np.clip(0.68 + 0.25 * pressure, 0.3, 1.0))
        # Hesitations: the pen rests and ink pools.
        for _ in range(rng.poisson(n * traits["lift_rate"] * 0.7)):
            at = int(rng.integers(0, n))
            span = np.abs(np.arange(n) - at)
            width = width * (1.0 + 0.35 * np.clip(1.0 - span / 3.0, 0.0, 1.0))
        # Blunt stroke ends: the pen is put down and lifted while nearly still.
        width[:3] *= 1.12
        width[-3:] *= 1.08
        cuts = sorted(int(c) for c in rng.integers(20, max(21, n - 20), rng.poisson(n * traits["lift_rate"])) if n > 60)
        start = 0
        for cut in [*cuts, n]:
            if cut - start < 8:
                continue
            seg = slice(start, cut)
            offset = rng.normal(0.0, 0.6, 2) if start > 0 else np.zeros(2)
            w = width[seg].copy()
            w[:2] *= 1.1
            pieces.append(_Piece(dense[seg] + offset, w, ink[seg]))
            start = max(0, cut + int(rng.integers(-2, 3)))  # resuming leaves a tiny gap or overlap
    return pieces


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _rasterize(pieces: list[_Piece], shape: tuple[int, int], factor: int) -> Image.Image:
    """Draw the pieces into an 8-bit ink-coverage image at ``factor`` x the output size."""
    height, width = shape
    mask = Image.new("L", (width * factor, height * factor), 0)
    draw = ImageDraw.Draw(mask)

    def dot(x: float, y: float, w: float, fill: int) -> None:
        r = max(w / 2.0, 0.5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    for piece in pieces:
        xy = piece.xy * factor
        wq = np.maximum(1, np.rint(piece.width * factor)).astype(np.int64)
        iq = np.rint(np.clip(piece.ink, 0.0, 1.0) * 15).astype(np.int64) * 17
        key = wq * 256 + iq
        # Consecutive samples with the same (width, ink) become one polyline call.
        bounds = [0, *(np.flatnonzero(np.diff(key)) + 1).tolist(), len(key)]
        flat = xy.ravel().tolist()  # Pillow takes flat [x0, y0, x1, y1, ...] lists
        for a, b in itertools.pairwise(bounds):
            seg = flat[2 * a : 2 * min(b + 1, len(xy))]
            draw.line(seg if len(seg) > 2 else seg * 2, fill=int(iq[a]), width=int(wq[a]))
            if wq[a] > 2:  # butt ends of adjacent runs would leave a notch
                dot(seg[0], seg[1], float(wq[a]), int(iq[a]))
        # Round the outside of sharp turns (cusps, retraces) and the pen tip at both ends; Pillow's
        # own curved joints cost a Python call per vertex.
        if len(xy) > 2:
            d = np.diff(xy, axis=0)
            theta = np.arctan2(d[:, 1], d[:, 0])
            turn = np.abs(np.angle(np.exp(1j * np.diff(theta))))
            sharp = np.flatnonzero(turn > 0.35) + 1
        else:
            sharp = np.zeros(0, dtype=np.int64)
        for i in [0, *sharp.tolist(), len(xy) - 1]:
            if wq[i] > 2 or i in (0, len(xy) - 1):
                dot(flat[2 * i], flat[2 * i + 1], float(wq[i]), int(iq[i]))
    return mask.reduce(factor) if factor > 1 else mask


def _paper(rng: np.random.Generator, shape: tuple[int, int], gray: float, texture: bool) -> npt.NDArray[np.float32]:
    height, width = shape
    paper = np.full(shape, gray, dtype=np.float32)
    if texture:
        # Low-frequency shading (uneven lighting, paper tone) plus fine fibre grain.
        coarse = rng.normal(0.0, 2.5, (3, 5)).astype(np.float32)
        shade = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        paper += np.asarray(shade, dtype=np.float32)
        gh, gw = (height + 1) // 2, (width + 1) // 2
        grain = rng.standard_normal((gh, gw), dtype=np.float32) * np.float32(rng.uniform(1.0, 2.2))
        grain_img = Image.fromarray(grain).resize((width, height), Image.Resampling.BILINEAR)
        paper += np.asarray(grain_img, dtype=np.float32)
    return paper


def _render(
    style: WriterStyle, pieces: list[_Piece], rng: np.random.Generator, config: SyntheticConfig
) -> npt.NDArray[np.uint8]:
    # Crop like a scanner operator: margin around the ink, kept inside the canvas limits.
    pts = np.vstack([p.xy for p in pieces])
    pad = float(max(p.width.max() for p in pieces)) / 2 + 1
    lo, hi = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    ink_w, ink_h = hi - lo
    margin = style.margin * ink_h
    left, right, top, bottom = margin * rng.uniform(0.6, 1.4, 4) + 4.0
    limit = min((MAX_WIDTH - left - right) / ink_w, (MAX_HEIGHT - top - bottom) / ink_h, 1.0)
    if limit < 1.0:  # an unusually large sample: shrink it rather than clip ink
        for p in pieces:
            p.xy = (p.xy - lo) * limit + lo
            p.width = p.width * limit
        ink_w, ink_h = ink_w * limit, ink_h * limit
    width = int(np.clip(round(ink_w + left + right), MIN_WIDTH, MAX_WIDTH))
    height = int(np.clip(round(ink_h + top + bottom), MIN_HEIGHT, MAX_HEIGHT))
    # If the minimum canvas is larger than needed, the spare room goes to random sides.
    ox = left + (width - (ink_w + left + right)) * rng.uniform(0.2, 0.8)
    oy = top + (height - (ink_h + top + bottom)) * rng.uniform(0.2, 0.8)
    for p in pieces:
        p.xy = p.xy - lo + np.array([ox, oy])

    mask = _rasterize(pieces, (height, width), config.supersample)
    radius = style.blur_radius * config.blur * rng.uniform(0.8, 1.2)
    if radius > 0.05:
        mask = mask.filter(ImageFilter.GaussianBlur(radius))
    alpha = np.asarray(mask, dtype=np.float32) / np.float32(255.0)

    paper = _paper(rng, (height, width), style.paper_gray + rng.normal(0.0, 1.5), config.paper_texture)
    ink_gray = np.float32(style.ink_gray + rng.normal(0.0, 3.0))
    img = paper
    img += alpha * (ink_gray - img)
    if config.noise > 0:
        sigma = np.float32(1.6 * config.noise)
        img += rng.standard_normal((height, width), dtype=np.float32) * sigma
        img += rng.standard_normal((height, 1), dtype=np.float32) * np.float32(0.4 * config.noise)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _check_index(sample_index: int) -> None:
    if isinstance(sample_index, bool) or not isinstance(sample_index, int) or sample_index < 0:
        raise ValueError(f"sample_index must be an int >= 0, got {sample_index!r}")


def render_genuine(
    style: WriterStyle, sample_index: int, config: SyntheticConfig = SyntheticConfig()
) -> npt.NDArray[np.uint8]:
    """Genuine sample ``sample_index`` of ``style`` as a uint8 (H, W) image, ink dark on paper.

    The pixels depend on ``style`` (its seed and writer index), ``sample_index`` and the rendering
    knobs of ``config`` -- not on ``config.seed``, which only picks styles in :func:`generate_dataset`.
    """
    _check_index(sample_index)
    rng = _rng(style.seed, style.writer_index, _KIND_GENUINE, sample_index)
    return _render(style, _genuine_pieces(style, rng), rng, config)


def render_forgery(
    style: WriterStyle, sample_index: int, config: SyntheticConfig = SyntheticConfig()
) -> npt.NDArray[np.uint8]:
    """Skilled forgery ``sample_index`` of ``style`` as a uint8 (H, W) image, ink dark on paper.

    Forgery ``i`` is by forger ``i % FORGERS_PER_WRITER``; each forger has consistent habits
    (tremor, slant and proportion errors). Seeding is as in :func:`render_genuine`.
    """
    _check_index(sample_index)
    rng = _rng(style.seed, style.writer_index, _KIND_FORGERY, sample_index)
    traits = _forger_traits(style, sample_index % FORGERS_PER_WRITER, config.forgery_skill)
    return _render(style, _forgery_pieces(style, rng, traits), rng, config)


# --------------------------------------------------------------------------------------------
# Dataset on disk
# --------------------------------------------------------------------------------------------

_OWN_FILE = re.compile(r"^W\d{3,}_[gf]_\d{2,}\.png(\.tmp)?$")


def _sample_name(wid: str, kind: str, index: int, count: int) -> str:
    return f"{wid}_{kind}_{index:0{max(2, len(str(count)))}d}.png"


def _save_png(image: npt.NDArray[np.uint8], path: Path) -> None:
    # Write then rename, so an interrupted run never leaves a truncated PNG under the final name.
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(image).save(tmp, format="PNG", optimize=False, compress_level=1)
    os.replace(tmp, path)


def _clear_stale(folder: Path, keep: set[str]) -> None:
    """Remove generator-named files a previous, larger run left behind (never anything else)."""
    for entry in folder.iterdir():
        if entry.is_file() and _OWN_FILE.match(entry.name) and entry.name not in keep:
            entry.unlink()


def generate_dataset(
    out_dir: str | Path, config: SyntheticConfig = SyntheticConfig(), *, progress: bool = False
) -> SyntheticSummary:
    """Write ``out_dir/W001/genuine/W001_g_01.png`` ... and ``out_dir/W001/forged/W001_f_01.png`` ...

    Sample indices are 1-based and match :func:`render_genuine` / :func:`render_forgery`, so any
    file can be regenerated alone. Re-running into the same folder overwrites it cleanly.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    ids = tuple(writer_id(i) for i in range(1, config.writers + 1))
    total = config.writers * (config.genuine_per_writer + config.forged_per_writer)

    def write_all(advance: Callable[[], None] | None) -> None:
        for index, wid in enumerate(ids, start=1):
            style = writer_style(config.seed, index)
            for kind, sub, count, render in (
                ("g", "genuine", config.genuine_per_writer, render_genuine),
                ("f", "forged", config.forged_per_writer, render_forgery),
            ):
                folder = root / wid / sub
                folder.mkdir(parents=True, exist_ok=True)
                names = {_sample_name(wid, kind, i, count) for i in range(1, count + 1)}
                _clear_stale(folder, names)
                for i in range(1, count + 1):
                    _save_png(render(style, i, config), folder / _sample_name(wid, kind, i, count))
                    if advance is not None:
                        advance()

    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("synthetic signatures", total=total)
            write_all(lambda: bar.advance(task))
    else:
        write_all(None)

    readme = (
        "Synthetic offline signatures -- not real people's signatures.\n\n"
        "Generated by inkproof (inkproof.data.synthetic.generate_dataset); no real dataset was used.\n"
        "Layout: <writer>/genuine/<writer>_g_NN.png and <writer>/forged/<writer>_f_NN.png (skilled\n"
        "forgeries of that writer). Random forgeries are other writers' genuine samples.\n\n"
        "Config:\n" + json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True) + "\n"
    )
    (root / "README.txt").write_text(readme, encoding="utf-8")
    return SyntheticSummary(
        root=root,
        writers=ids,
        genuine=config.writers * config.genuine_per_writer,
        forged=config.writers * config.forged_per_writer,
    )


def contact_sheet(
    root: str | Path, out_path: str | Path, *, writers: int = 4, genuine: int = 3, forged: int = 3
) -> Path:
    """A labelled PNG grid of a generated dataset: one row per writer, genuine then forged samples."""
    if writers < 1 or genuine < 0 or forged < 0 or genuine + forged < 1:
        raise ValueError("contact_sheet needs writers >= 1 and at least one sample per row")
    root = Path(root)
    folders = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"W\d{3,}", p.name)]
    folders = sorted(folders, key=lambda p: (len(p.name), p.name))[:writers]
    if not folders:
        raise FileNotFoundError(f"no writer folders (W001, ...) under {root}")
    cell_w, cell_h, caption_h, gap, header_h = 250, 100, 16, 8, 22
    sheet_w = (genuine + forged) * (cell_w + gap) + gap + (gap if genuine and forged else 0)
    sheet_h = header_h + len(folders) * (cell_h + caption_h + gap) + gap
    sheet = Image.new("L", (sheet_w, sheet_h), 255)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    heading = ImageFont.load_default(size=13)
    if genuine:
        draw.text((gap, 5), "genuine samples", fill=0, font=heading)
    if forged:
        draw.text(
            (gap + genuine * (cell_w + gap) + (gap if genuine else 0), 5),
            "skilled forgeries",
            fill=0,
            font=heading,
        )
    for row, folder in enumerate(folders):
        cells: list[tuple[Path, str, bool]] = []
        for sub, label, count in (("genuine", "genuine", genuine), ("forged", "forged", forged)):
            for i, path in enumerate(sorted((folder / sub).glob("*.png"))[:count], start=1):
                cells.append((path, f"{folder.name} {label} {i}", sub == "forged"))
        top = header_h + row * (cell_h + caption_h + gap)
        for col, (path, caption, is_forged) in enumerate(cells):
            left = gap + col * (cell_w + gap) + (gap if is_forged and genuine > 0 else 0)
            with Image.open(path) as im:
                thumb = im.convert("L")
                thumb.thumbnail((cell_w, cell_h), Image.Resampling.LANCZOS)
            sheet.paste(thumb, (left + (cell_w - thumb.width) // 2, top + (cell_h - thumb.height) // 2))
            draw.rectangle((left - 1, top - 1, left + cell_w, top + cell_h), outline=190)
            draw.text((left + 2, top + cell_h + 2), caption, fill=0, font=font)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG", optimize=True)
    return out


def sample_signatures(count: int, *, seed: int = 0, writers: int = 4) -> list[npt.NDArray[np.uint8]]:
    """``count`` rendered signatures (genuine and forged, cycling over ``writers`` writers):
    realistic inputs for parity checks and benchmarks, without any dataset on disk."""
    config = SyntheticConfig(seed=seed)
    images = []
    for index in range(count):
        style = writer_style(seed, index % writers + 1)
        render = render_genuine if index % 2 == 0 else render_forgery
        images.append(render(style, index, config))
    return images

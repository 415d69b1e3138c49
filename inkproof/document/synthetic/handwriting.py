"""Page handwriting: writer styles, signatures, initials and handwritten dates, drawn with the pen
model of :mod:`inkproof.data.synthetic`."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from inkproof.data.synthetic import _CAPITALS, WriterStyle, _genuine_pieces, _Piece, _rasterize, writer_style
from inkproof.document.synthetic.config import _KIND_DATES, _KIND_INITIALS, F32, U8, Box, FloatArray, Mask, _check_int

# Handwriting: writers, dates and initials on the pen model of inkproof.data.synthetic
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=2048)
def _style(seed: int, writer_index: int) -> WriterStyle:
    return writer_style(seed, writer_index)


def _writer_rng(style: WriterStyle, kind: int) -> np.random.Generator:
    # Per-writer habits (digit shapes, initials) are fixed for the writer, like the signature template.
    return np.random.default_rng(np.random.SeedSequence([style.seed, style.writer_index, kind]))


# Digit and separator glyphs: strokes of control points, x right, y up, baseline 0, height 1.
# fmt: off
_DIGITS: dict[str, tuple[float, tuple[tuple[tuple[float, float], ...], ...]]] = {
    "0": (0.75, (((0.45, 1.0), (0.2, 0.85), (0.07, 0.5), (0.15, 0.12), (0.38, 0.0), (0.6, 0.15), (0.68, 0.55),
                  (0.58, 0.9), (0.4, 1.0), (0.3, 0.93)),)),
    "1": (0.45, (((0.08, 0.78), (0.3, 1.0), (0.28, 0.5), (0.25, 0.0)),)),
    "2": (0.75, (((0.08, 0.78), (0.3, 0.99), (0.58, 0.95), (0.66, 0.72), (0.45, 0.42), (0.05, 0.0), (0.35, 0.03),
                  (0.72, 0.02)),)),
    "3": (0.72, (((0.08, 0.88), (0.35, 1.0), (0.62, 0.9), (0.58, 0.66), (0.3, 0.53), (0.6, 0.44), (0.68, 0.18),
                  (0.42, 0.0), (0.08, 0.1)),)),
    "4": (0.78, (((0.5, 1.0), (0.28, 0.62), (0.05, 0.3), (0.45, 0.3), (0.75, 0.33)),
                 ((0.58, 0.68), (0.56, 0.3), (0.54, 0.0)))),
    "5": (0.72, (((0.28, 1.0), (0.2, 0.56), (0.45, 0.62), (0.66, 0.42), (0.6, 0.1), (0.32, 0.0), (0.05, 0.12)),
                 ((0.28, 1.0), (0.68, 1.02)))),
    "6": (0.72, (((0.6, 1.0), (0.3, 0.72), (0.1, 0.32), (0.25, 0.02), (0.52, 0.05), (0.64, 0.3), (0.45, 0.5),
                  (0.15, 0.35)),)),
    "7": (0.72, (((0.05, 0.97), (0.35, 1.0), (0.7, 1.0), (0.45, 0.5), (0.28, 0.0)),)),
    "8": (0.72, (((0.6, 0.9), (0.38, 1.0), (0.15, 0.86), (0.22, 0.62), (0.52, 0.45), (0.66, 0.2), (0.4, 0.0),
                  (0.1, 0.15), (0.2, 0.42), (0.5, 0.6), (0.62, 0.82), (0.48, 1.0)),)),
    "9": (0.72, (((0.62, 0.78), (0.42, 0.55), (0.15, 0.65), (0.18, 0.93), (0.45, 1.0), (0.64, 0.8), (0.6, 0.4),
                  (0.52, 0.0)),)),
    "/": (0.6, (((0.6, 1.05), (0.05, -0.05)),)),
    ".": (0.3, (((0.08, 0.03), (0.15, 0.08), (0.16, 0.0), (0.08, 0.02)),)),
    "-": (0.55, (((0.08, 0.48), (0.45, 0.5)),)),
}
# fmt: on
_DATE_CHARACTERS = frozenset(_DIGITS) | {" "}

# Capitals for initials, about 3 units tall: the signature generator's (one stroke each) plus print-like
# ones (A, B, E, R, T, P, S, C) so that initials vary more between writers.
_Strokes = tuple[tuple[tuple[float, float], ...], ...]
# fmt: off
_INITIAL_CAPITALS: tuple[tuple[float, _Strokes], ...] = (
    *((width, (points,)) for width, points in _CAPITALS),
    (1.5, (((0.0, 0.0), (0.45, 1.6), (0.75, 3.0), (1.05, 1.6), (1.4, 0.0)), ((0.3, 1.1), (1.15, 1.2)))),
    (1.4, (((0.2, 3.0), (0.2, 1.5), (0.2, 0.0)),
           ((0.2, 3.0), (0.9, 2.9), (1.15, 2.35), (0.8, 1.6), (0.25, 1.55), (1.0, 1.3), (1.3, 0.7), (0.9, 0.1),
            (0.2, 0.0)))),
    (1.2, (((1.1, 2.9), (0.5, 3.0), (0.15, 2.5), (0.55, 1.65), (0.2, 1.2), (0.1, 0.4), (0.6, 0.0), (1.2, 0.2)),)),
    (1.4, (((0.2, 0.0), (0.22, 1.5), (0.2, 3.0), (0.9, 2.9), (1.15, 2.3), (0.8, 1.6), (0.25, 1.5), (0.8, 0.8),
            (1.4, 0.0)),)),
    (1.5, (((0.0, 2.8), (0.7, 3.0), (1.5, 2.95)), ((0.75, 2.95), (0.72, 1.5), (0.6, 0.1), (0.3, 0.2)))),
    (1.2, (((0.2, 0.0), (0.22, 1.5), (0.2, 3.0), (0.9, 2.9), (1.2, 2.3), (0.9, 1.7), (0.2, 1.6)),)),
    (1.2, (((1.1, 2.7), (0.7, 3.0), (0.2, 2.6), (0.35, 1.9), (0.9, 1.3), (1.0, 0.6), (0.6, 0.05), (0.05, 0.3)),)),
    (1.2, (((1.1, 2.6), (0.7, 3.0), (0.25, 2.6), (0.05, 1.5), (0.3, 0.3), (0.8, 0.0), (1.2, 0.4)),)),
)
# fmt: on


def _small_writing(
    style: WriterStyle, strokes: list[FloatArray], scale: float, pen_width: float, rng: np.random.Generator, zoom: float
) -> list[_Piece]:
    """The writer's pen, pressure and variability on a different template (dates, initials).

    The pen model's stroke-end tapers are fixed lengths in pixels, sized for signatures; short
    strokes are written ``zoom`` times larger and shrunk back, so tapers keep their proportion.
    """
    letters = tuple(np.zeros(len(s), dtype=np.int64) for s in strokes)
    big = dataclasses.replace(
        style, strokes=tuple(strokes), letters=letters, scale=scale * zoom, pen_width=pen_width * zoom
    )
    pieces = _genuine_pieces(big, rng)
    for p in pieces:
        if len(p.xy) * 0.6 < scale * zoom:  # a dot: pressed, not stroked, so no tapers
            p.width = np.maximum(p.width, 0.9 * big.pen_width)
            p.ink = np.maximum(p.ink, 0.85)
        p.xy = p.xy / zoom
        p.width = p.width / zoom
    return pieces


def date_pieces(
    style: WriterStyle, text: str, height: float, rng: np.random.Generator, *, pen_width: float | None = None
) -> list[_Piece]:
    """Pen pieces (output pixels, y down) of ``text`` (digits, '/', '.', '-', ' ') in ``style``'s hand.

    ``height`` is the digit height in pixels. The writer's digit width and slant are fixed per writer;
    ``rng`` adds the sample-to-sample variation of :func:`inkproof.data.synthetic.render_genuine`.
    """
    bad = set(text) - _DATE_CHARACTERS
    if bad or not text.strip():
        raise ValueError(f"a date may only use digits, '/', '.', '-' and spaces, got {text!r}")
    habits = _writer_rng(style, _KIND_DATES)
    width_factor = habits.uniform(0.75, 1.15)
    slant = 0.8 * style.slant + habits.normal(0.0, 0.06)
    spacing = habits.uniform(0.08, 0.3)
    strokes: list[FloatArray] = []
    x = 0.0
    for ch in text:
        if ch == " ":
            x += 0.45
            continue
        advance, glyph = _DIGITS[ch]
        sx, sy = width_factor * rng.uniform(0.92, 1.08), rng.uniform(0.93, 1.07)
        for raw in glyph:
            pts = np.array(raw, dtype=np.float64)
            strokes.append(np.column_stack([x + pts[:, 0] * sx, pts[:, 1] * sy]))
        x += advance * sx + spacing * rng.uniform(0.7, 1.3)
    drift = rng.normal(0.0, 0.02)
    for pts in strokes:
        pts[:, 0] += slant * pts[:, 1]
        pts[:, 1] += drift * pts[:, 0]
    width = style.pen_width * 0.75 if pen_width is None else pen_width
    return _small_writing(style, strokes, height, width, rng, zoom=2.5)


def initials_pieces(
    style: WriterStyle, height: float, rng: np.random.Generator, *, pen_width: float | None = None
) -> list[_Piece]:
    """Pen pieces (output pixels, y down) of the writer's initials: 2-3 capitals, ``height`` px tall.

    Which capitals, dots after them and an underline are fixed per writer, so a writer's initials
    recur across pages; ``rng`` varies each sample.
    """
    habits = _writer_rng(style, _KIND_INITIALS)
    count = 2 if habits.random() < 0.7 else 3
    capitals = habits.choice(len(_INITIAL_CAPITALS), size=count, replace=False)
    dots = habits.random() < 0.35
    underline = habits.random() < 0.25
    width_factor, gap = habits.uniform(0.8, 1.2), habits.uniform(0.15, 0.5)
    strokes: list[FloatArray] = []
    x = 0.0
    for cap in capitals:
        width, glyph = _INITIAL_CAPITALS[int(cap)]
        for raw in glyph:
            pts = np.array(raw, dtype=np.float64)
            pts[:, 0] = x + pts[:, 0] * width_factor
            strokes.append(pts)
        x += width * width_factor
        if dots:
            strokes.append(np.array([[x + 0.1, 0.08], [x + 0.22, 0.16], [x + 0.24, 0.02], [x + 0.12, 0.05]]))
            x += 0.45
        x += gap
    if underline:
        xs = np.linspace(-0.2, x, 5)
        strokes.append(np.column_stack([xs, -0.45 + rng.normal(0.0, 0.06, 5) - 0.05 * xs / max(x, 1.0)]))
    for pts in strokes:
        pts[:, 0] += style.slant * pts[:, 1]
    width = style.pen_width * 0.75 if pen_width is None else pen_width
    return _small_writing(style, strokes, height / 3.0, width, rng, zoom=1.5)


def _render_ink(pieces: list[_Piece], style: WriterStyle) -> U8:
    alpha = np.pad(_ink_alpha(pieces, 3), 6)
    paper = np.float32(style.paper_gray)
    return np.clip(paper - alpha * (paper - np.float32(style.ink_gray)) + 0.5, 0, 255).astype(np.uint8)


def _sample_rng(style: WriterStyle, kind: int, sample_index: int) -> np.random.Generator:
    _check_int("sample_index", sample_index, 0, 2**63 - 1)
    return np.random.default_rng(np.random.SeedSequence([style.seed, style.writer_index, kind, sample_index]))


def render_initials(style: WriterStyle, sample_index: int, *, height: float = 48.0) -> U8:
    """Sample ``sample_index`` of the writer's initials: a clean uint8 crop, the writer's ink on plain paper."""
    if not height > 0:
        raise ValueError(f"height must be > 0, got {height!r}")
    return _render_ink(initials_pieces(style, height, _sample_rng(style, _KIND_INITIALS, sample_index)), style)


def render_date(style: WriterStyle, text: str, sample_index: int, *, height: float = 24.0) -> U8:
    """Sample ``sample_index`` of the writer writing the date ``text``: a clean uint8 crop, ink on plain paper."""
    if not height > 0:
        raise ValueError(f"height must be > 0, got {height!r}")
    return _render_ink(date_pieces(style, text, height, _sample_rng(style, _KIND_DATES, sample_index)), style)


def _signature_pieces(
    style: WriterStyle, rng: np.random.Generator, max_width: float, max_height: float, pen_width: float
) -> list[_Piece]:
    """A genuine signature of ``style`` scaled to fit ``max_width`` x ``max_height`` pixels."""
    span = np.ptp(np.vstack(style.strokes), axis=0)
    k = min(max_width / (span[0] * style.scale), max_height / (span[1] * style.scale))
    return _genuine_pieces(dataclasses.replace(style, scale=style.scale * k, pen_width=pen_width), rng)


def _ink_alpha(pieces: list[_Piece], factor: int) -> F32:
    """Rasterize pen pieces into a patch just large enough for them; coverage in [0, 1]."""
    pts = np.vstack([p.xy for p in pieces])
    pad = max(float(p.width.max()) for p in pieces) / 2 + 2.0
    lo = np.floor(pts.min(axis=0) - pad)
    hi = np.ceil(pts.max(axis=0) + pad)
    for p in pieces:
        p.xy = p.xy - lo
    shape = (int(hi[1] - lo[1]), int(hi[0] - lo[0]))
    return np.asarray(_rasterize(pieces, shape, factor), dtype=np.float32) * np.float32(1 / 255)


def _extent(pieces: list[_Piece]) -> tuple[float, float]:
    """Width and height of the pen trajectory (pixels)."""
    span = np.ptp(np.vstack([p.xy for p in pieces]), axis=0)
    return float(span[0]), float(span[1])


def _bbox(mask: Mask) -> Box | None:
    """Tight (x0, y0, x1, y1) of a mask, exclusive ends; None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1

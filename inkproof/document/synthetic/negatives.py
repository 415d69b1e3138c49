"""Hard negatives: handwriting and script that is not a field, drawn without a box.

On real scans the detector's confident false signatures are handwritten notes and routing marks,
handwritten numbers beside signatures and cursive company wordmarks in letterheads. Pages that
never show those teach "any cursive ink is a signature". These objects are drawn in free space
(margins, gaps between blocks, the letterhead band), composited like any other ink, and carry no
box, so the detector learns them as background.

Everything is drawn from its own random stream (``SeedSequence([seed, index, _KIND_NEGATIVES])``),
so turning them on adds objects to a page without moving anything the page already had.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from inkproof.data.synthetic import WriterStyle, _Piece
from inkproof.document.synthetic.config import F32, MASK_THRESHOLD, WRITER_POOL, FloatArray
from inkproof.document.synthetic.handwriting import (
    _bbox,
    _ink_alpha,
    _signature_pieces,
    _small_writing,
    _style,
    date_pieces,
)

#: Extra SeedSequence entry of the hard negatives' random stream (fixed forever).
_KIND_NEGATIVES = 303
#: Note words and wordmarks come from writers outside the signers' pool, so no note repeats a signature.
_NOTE_WRITERS = 5000
_GRID = 8  # occupancy is tracked on cells of this many page pixels


@dataclass(frozen=True)
class UnboxedInk:
    """One hard negative: coverage ``alpha`` at (x, y) in page pixels, ``tone`` its gray."""

    alpha: F32
    x: int
    y: int
    tone: float
    handwritten: bool  # notes, numbers and marks are handwriting; a wordmark is print


class _Occupancy:
    """Which page cells already hold ink (print, fields, earlier negatives); finds free rectangles."""

    def __init__(self, print_coverage: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> None:
        H, W = print_coverage.shape
        self.H, self.W = H, W
        h, w = -(-H // _GRID), -(-W // _GRID)
        padded = np.zeros((h * _GRID, w * _GRID), dtype=bool)
        padded[:H, :W] = print_coverage > 0
        self.cells = np.asarray(padded.reshape(h, _GRID, w, _GRID).any(axis=(1, 3)), dtype=bool)
        for box in boxes:
            self.mark(box)

    def mark(self, box: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = box
        self.cells[max(y0, 0) // _GRID : -(-y1 // _GRID), max(x0, 0) // _GRID : -(-x1 // _GRID)] = True

    def free(self, box: tuple[int, int, int, int], margin: int) -> bool:
        x0, y0, x1, y1 = box
        if x0 < 4 or y0 < 4 or x1 > self.W - 4 or y1 > self.H - 4:
            return False
        top, left = max(y0 - margin, 0) // _GRID, max(x0 - margin, 0) // _GRID
        bottom, right = -(-(y1 + margin) // _GRID), -(-(x1 + margin) // _GRID)
        return not bool(self.cells[top:bottom, left:right].any())

    def place(
        self,
        rng: np.random.Generator,
        size: tuple[int, int],
        area: tuple[int, int, int, int],
        margin: int,
        tries: int = 40,
    ) -> tuple[int, int] | None:
        """Top-left of a free ``size`` (w, h) rectangle inside ``area``, marked as taken; None if none found."""
        w, h = size
        ax0, ay0, ax1, ay1 = area
        if ax1 - ax0 < w or ay1 - ay0 < h:
            return None
        for _ in range(tries):
            x = int(rng.integers(ax0, ax1 - w + 1))
            y = int(rng.integers(ay0, ay1 - h + 1))
            if self.free((x, y, x + w, y + h), margin):
                self.mark((x, y, x + w, y + h))
                return x, y
        return None


def _note_style(seed: int, rng: np.random.Generator) -> WriterStyle:
    return _style(seed, WRITER_POOL + 1 + int(rng.integers(_NOTE_WRITERS)))


def _raster(pieces: list[_Piece]) -> F32:
    alpha = _ink_alpha(pieces, 3)
    box = _bbox(alpha >= MASK_THRESHOLD)
    if box is None:
        return alpha
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(alpha[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2])


def note_words(seed: int, rng: np.random.Generator, height: float, pen_width: float) -> list[F32]:
    """A line of 1-4 cursive words: other writers' signature shapes, small, like running handwriting."""
    words: list[F32] = []
    for _ in range(int(rng.integers(1, 5))):
        style = _note_style(seed, rng)
        width = height * rng.uniform(1.5, 5.0)
        words.append(_raster(_signature_pieces(style, rng, width, height, pen_width)))
    return words


def _number_text(rng: np.random.Generator) -> str:
    """Handwritten figures that are not a date: amounts, file and page numbers."""
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, size=int(rng.integers(1, 7))))
    shape = rng.random()
    if shape < 0.3 and len(digits) > 2:
        return f"{digits[:-2]}.{digits[-2:]}"
    if shape < 0.5 and len(digits) > 3:
        return f"{digits[:2]}-{digits[2:]}"
    return digits


def _mark_strokes(rng: np.random.Generator) -> tuple[list[FloatArray], float]:
    """Pen marks in unit coordinates (y up): tick, cross, wavy underline, bracket, arrow or loop.
    Returns the strokes and their width-to-height ratio."""
    kind = int(rng.integers(6))
    jitter = rng.normal(0.0, 0.04, size=(16, 2))
    if kind == 0:  # tick
        strokes = [np.array([[0.0, 0.45], [0.3, 0.0], [0.55, 0.5], [0.9, 1.0]])]
        ratio = 0.9
    elif kind == 1:  # cross
        strokes = [np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]), np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])]
        ratio = 1.0
    elif kind == 2:  # wavy underline or strike-through
        xs = np.linspace(0.0, 1.0, 9)
        strokes = [np.column_stack([xs, 0.5 + 0.25 * np.sin(xs * rng.uniform(8, 20))])]
        ratio = rng.uniform(5.0, 12.0)
    elif kind == 3:  # bracket down a margin
        strokes = [np.array([[1.0, 1.0], [0.3, 0.95], [0.2, 0.5], [0.3, 0.05], [1.0, 0.0]])]
        ratio = rng.uniform(0.15, 0.3)
    elif kind == 4:  # arrow
        strokes = [
            np.array([[0.0, 0.4], [0.5, 0.55], [1.0, 0.5]]),
            np.array([[0.8, 0.8], [1.0, 0.5], [0.8, 0.2]]),
        ]
        ratio = rng.uniform(2.0, 4.0)
    else:  # loop drawn round a word or figure
        t = np.linspace(0.0, 2.0 * np.pi * rng.uniform(1.0, 1.15), 14)
        strokes = [np.column_stack([0.5 + 0.5 * np.cos(t), 0.5 + 0.5 * np.sin(t)])]
        ratio = rng.uniform(1.0, 3.0)
    shaken = [s + jitter[: len(s)] * (0.5 if kind == 5 else 1.0) for s in strokes]
    return [np.column_stack([s[:, 0] * ratio, s[:, 1]]) for s in shaken], ratio


def mark_alpha(style: WriterStyle, rng: np.random.Generator, height: float, pen_width: float) -> F32:
    strokes, _ = _mark_strokes(rng)
    return _raster(_small_writing(style, strokes, height, pen_width, rng, zoom=2.0))


def wordmark_alpha(seed: int, rng: np.random.Generator, height: float, width: float, pen_width: float) -> F32:
    """A cursive company wordmark: one writer's script drawn large with a broad, even pen."""
    style = dataclasses.replace(_note_style(seed, rng), pressure_variation=0.0, pressure=1.0)
    return _raster(_signature_pieces(style, rng, width, height, pen_width))


def draw_hard_negatives(
    *,
    seed: int,
    index: int,
    probability: float,
    print_coverage: np.ndarray,
    taken: list[tuple[int, int, int, int]],
    frame: tuple[int, int, int, int],
    header_bottom: int,
    near: list[tuple[int, int, int, int]],
    unit: float,
) -> list[UnboxedInk]:
    """Hard negatives for one page (none with chance ``1 - probability``).

    ``print_coverage`` is the page's print layer and ``taken`` the boxes of what is already drawn;
    ``frame`` the text area (left, top, right, bottom); ``header_bottom`` where the letterhead ends;
    ``near`` the signatures' ink boxes (figures and marks are often written beside them); ``unit``
    the page's scale against an A4 page at 150 dpi.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, _KIND_NEGATIVES]))
    if rng.random() >= probability:
        return []
    occupancy = _Occupancy(print_coverage, taken)
    left, top, right, bottom = frame
    H, W = print_coverage.shape
    page = (0, 0, W, H)
    gap = round(6 * unit)
    out: list[UnboxedInk] = []

    def ink_tone() -> float:
        return float(rng.uniform(15, 130))

    def pen() -> float:
        return max(1.1, rng.uniform(1.3, 3.2) * unit)

    # Notes: a few lines of small running handwriting in a margin or a gap.
    for _ in range(int(rng.integers(0, 3))):
        height = rng.uniform(14, 40) * unit
        pen_width, tone = pen(), ink_tone()
        lines = [note_words(seed, rng, height, pen_width) for _ in range(int(rng.integers(1, 4)))]
        spacing = round(height * rng.uniform(0.4, 0.9))
        widths = [sum(a.shape[1] for a in line) + spacing * (len(line) - 1) for line in lines]
        line_h = round(height * rng.uniform(1.4, 1.9))
        size = (max(widths), line_h * len(lines))
        spot = occupancy.place(rng, size, page, gap)
        if spot is None:
            continue
        for row, line in enumerate(lines):
            x = spot[0]
            for word in line:
                h = word.shape[0]
                y = spot[1] + row * line_h + line_h - h + round(rng.normal(0, height * 0.08))
                out.append(UnboxedInk(word, x, y, tone, True))
                x += word.shape[1] + spacing

    # Figures: amounts and file numbers, often beside a signature.
    for _ in range(int(rng.integers(0, 3))):
        style = _note_style(seed, rng)
        alpha = _raster(date_pieces(style, _number_text(rng), rng.uniform(16, 40) * unit, rng, pen_width=pen()))
        h, w = alpha.shape
        area = page
        if near and rng.random() < 0.5:
            sx0, sy0, sx1, sy1 = near[int(rng.integers(len(near)))]
            area = (sx0 - round(80 * unit), sy0 - round(60 * unit), sx1 + round(250 * unit), sy1 + round(90 * unit))
            area = (max(area[0], 0), max(area[1], 0), min(area[2], W), min(area[3], H))
        spot = occupancy.place(rng, (w, h), area, gap)
        if spot is not None:
            out.append(UnboxedInk(alpha, spot[0], spot[1], ink_tone(), True))

    # Marks: ticks, crosses, underlines, brackets, arrows and loops in the margins or beside text.
    for _ in range(int(rng.integers(0, 4))):
        style = _note_style(seed, rng)
        alpha = mark_alpha(style, rng, rng.uniform(15, 70) * unit, pen())
        h, w = alpha.shape
        margin_area = (0, top, left, bottom) if rng.random() < 0.5 else (right, top, W, bottom)
        spot = occupancy.place(rng, (w, h), margin_area if rng.random() < 0.6 else page, 0)
        if spot is not None:
            out.append(UnboxedInk(alpha, spot[0], spot[1], ink_tone(), True))

    # A script wordmark in the letterhead band.
    if rng.random() < 0.35:
        height = rng.uniform(45, 110) * unit
        alpha = wordmark_alpha(seed, rng, height, height * rng.uniform(2.5, 5.0), rng.uniform(3.0, 7.0) * unit)
        h, w = alpha.shape
        band = (left - round(20 * unit), 0, right + round(20 * unit), max(header_bottom, top) + h)
        spot = occupancy.place(rng, (w, h), band, gap)
        if spot is not None:
            out.append(UnboxedInk(alpha, spot[0], spot[1], float(rng.uniform(0, 60)), False))
    return out

"""Synthetic scanned document pages with exact ground truth: boxes, handwriting and print masks.

Signature detection, segmentation and cleaning need annotated pages, and the public ones
(Tobacco800) are few, unannotated at pixel level and licensed for research only. This module draws
business letters, contracts and forms from scratch -- nothing comes from a real dataset:

* **Print** is Pillow's built-in scalable font (:func:`PIL.ImageFont.load_default`, no font files):
  letterheads, headings, justified paragraphs of pseudo-text, tables, form lines ("Signature: ___",
  "Date: ___"), page numbers.
* **Handwriting** reuses the pen model of :mod:`inkproof.data.synthetic` (Catmull-Rom strokes with
  pressure, tapers and within-writer variation): signatures from a pool of :data:`WRITER_POOL`
  writers (so a writer recurs across pages), initials (:func:`initials_pieces`, 2-3 capitals in
  the writer's slant) and handwritten dates (:func:`date_pieces`, digit glyph templates).
* **Fields** (:data:`FIELD_CLASSES`) are boxed: signatures, initials, handwritten dates, redaction
  bars and logos (emblem + company name). Stamps and white-out are clutter without a box.
* **Scan effects** (``PageConfig.noise``): skew up to 1 degree, blur, sensor noise, dust, the odd
  bilevel (fax-like) page and a JPEG round trip.

Every object is drawn into its own coverage patch, composited by darkening (min) over textured
paper, and carried through the same geometric transform as the page. Boxes are recomputed from each
object's own transformed mask, so they stay tight and exact after the skew; the handwriting mask
is the union of those masks. Page ``i`` draws its random numbers from
``np.random.SeedSequence([config.seed, i])``: it is the same whatever was generated before.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from inkproof.data.synthetic import _CAPITALS, WriterStyle, _genuine_pieces, _Piece, _rasterize, writer_style

__all__ = [
    "FIELD_CLASSES",
    "FIELD_COLOURS",
    "HANDWRITING_CLASSES",
    "MASK_CLASSES",
    "WRITER_POOL",
    "FieldBox",
    "PageConfig",
    "SyntheticPage",
    "cleaner_example",
    "contact_sheet",
    "crop_signature_pair",
    "date_pieces",
    "initials_pieces",
    "page_writer_id",
    "render_date",
    "render_initials",
    "render_page",
    "write_detection_dataset",
]

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Box = tuple[int, int, int, int]

FIELD_CLASSES = ("signature", "initials", "handwritten_date", "redaction", "logo")
HANDWRITING_CLASSES = frozenset({"signature", "initials", "handwritten_date"})

#: Classes and RGB colours of the segmentation masks written by :func:`write_detection_dataset`.
MASK_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("background", (0, 0, 0)),
    ("handwriting", (255, 0, 0)),
    ("print", (0, 0, 255)),
)

#: Writers of page handwriting are drawn from 1..WRITER_POOL, so the same writer recurs across pages.
WRITER_POOL = 500

#: A pixel belongs to an object's mask when its coverage (ink amount x area) reaches this fraction.
MASK_THRESHOLD = 0.3

_REFERENCE_WIDTH = 1240  # layout sizes below are in pixels of an A4 page at 150 dpi

# Extra SeedSequence entries, fixed forever so that generated data stays reproducible.
_KIND_CLEANER = 1
_KIND_INITIALS = 301
_KIND_DATES = 302


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


def _check_probability(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PageConfig:
    """What :func:`render_page` draws. Counts are (min, max) per page; probabilities are per page
    (``date_probability`` per signature, ``overlap_text_probability`` per signature)."""

    width: int = 1240  # A4 at 150 dpi
    height: int = 1754
    signatures: tuple[int, int] = (0, 3)
    initials_probability: float = 0.5  # a page-corner initials mark
    date_probability: float = 0.5  # a handwritten date next to a signature
    redactions: tuple[int, int] = (0, 2)
    logo_probability: float = 0.4
    stamp_probability: float = 0.2  # stamps are clutter (not a class), partly overlapping signatures
    overlap_text_probability: float = 0.4  # signature strokes crossing printed text / form lines
    noise: float = 1.0  # scan noise, blur, JPEG artefacts, slight skew (0 disables)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("width", self.width, 600, 6000)
        _check_int("height", self.height, 800, 9000)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        for name in ("signatures", "redactions"):
            value = getattr(self, name)
            if not isinstance(value, tuple | list) or len(value) != 2:
                raise ValueError(f"{name} must be a (min, max) pair, got {value!r}")
            low = _check_int(f"{name}[0]", value[0], 0, 6)
            high = _check_int(f"{name}[1]", value[1], 0, 6)
            if low > high:
                raise ValueError(f"{name} must have min <= max, got {value!r}")
            object.__setattr__(self, name, (low, high))  # accept lists, store a hashable tuple
        for name in (
            "initials_probability",
            "date_probability",
            "logo_probability",
            "stamp_probability",
            "overlap_text_probability",
        ):
            _check_probability(name, getattr(self, name))
        noise = self.noise
        if isinstance(noise, bool) or not isinstance(noise, int | float) or not math.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")


@dataclass(frozen=True)
class FieldBox:
    """One annotated object: ``box`` is (x0, y0, x1, y1), x1/y1 exclusive, tight around its mask."""

    label: str  # one of FIELD_CLASSES
    box: Box
    writer: str | None  # writer id of handwriting ("S0007"), None otherwise


@dataclass(frozen=True, eq=False)
class SyntheticPage:
    """A rendered page and its ground truth (masks are after the scan's geometric transform)."""

    image: U8  # (H, W) grayscale
    fields: tuple[FieldBox, ...]
    ink_mask: Mask  # handwriting: signatures, initials, handwritten dates
    print_mask: Mask  # everything else that was printed or stamped: text, lines, logos, redactions, stamps


def page_writer_id(index: int) -> str:
    """``"S0007"`` for pool writer 7: the writer id used in page annotations."""
    return f"S{_check_int('writer index', index, 1, 10**8):04d}"


# --------------------------------------------------------------------------------------------
# Pseudo-text
# --------------------------------------------------------------------------------------------

_WORD_TEXT = """the of and to in for on with by at from as that this which shall be is are will may any all such
    other under agreement party parties company contract payment date notice services terms conditions
    period said herein thereof pursuant provided including without limitation written consent effective
    term obligations rights section clause law state property account invoice amount total due within
    days upon receipt request information confidential report review meeting project delivery order goods
    price tax office manager director board committee approval policy insurance claim reference letter
    regarding attached enclosed please following further respect matter customer client supplier employee
    agent representative each either not no has have been were was its their our your we you it described
    below above hereto purpose annual quarterly schedule budget costs fees expenses rate per percent dated
    signed executed behalf authorized records may shall also prior time first second general standard
    product sales market research results program plan final copy original required responsible return
    amended notwithstanding accordance respective successors assigns material breach remedy"""
_WORDS = tuple(_WORD_TEXT.split())
_HEADINGS = (
    "DEFINITIONS", "TERM", "PAYMENT", "SERVICES", "CONFIDENTIALITY", "TERMINATION", "WARRANTIES",
    "LIABILITY", "INDEMNIFICATION", "NOTICES", "GOVERNING LAW", "MISCELLANEOUS", "DELIVERY", "FEES",
    "INSURANCE", "ASSIGNMENT", "SCOPE OF WORK", "FORCE MAJEURE",
)  # fmt: skip
_TITLES = (
    "SERVICE AGREEMENT", "PURCHASE ORDER", "CONSULTING AGREEMENT", "MEMORANDUM OF UNDERSTANDING",
    "LEASE AGREEMENT", "NON-DISCLOSURE AGREEMENT", "SUPPLY CONTRACT", "LETTER OF AUTHORIZATION",
)  # fmt: skip
_FORM_TITLES = (
    "Expense Reimbursement Form", "Application for Payment", "Change Request", "Delivery Receipt",
    "Employee Information Form", "Purchase Requisition", "Authorization Form", "Claim Form",
)  # fmt: skip
_JOB_TITLES = (
    "President", "Vice President", "Director", "General Counsel", "Manager", "Treasurer", "Secretary",
    "Chief Financial Officer", "Sales Manager", "Account Executive", "Witness", "Operations Director",
)  # fmt: skip
_SYLLABLES = (
    "an", "bel", "cor", "dan", "el", "fen", "gar", "hal", "is", "jor", "ka", "lem", "mar", "nor", "ol",
    "pen", "quin", "ros", "sel", "tam", "ul", "ver", "wyn", "ya", "zel", "bro", "cas", "dri", "fal",
    "gren", "hol", "lin", "mor", "rick", "son", "ton", "ley", "ford", "wick", "man", "ber", "den",
)  # fmt: skip
_COMPANY_SUFFIXES = (
    "Inc.", "Ltd.", "Corporation", "Group", "Holdings", "& Co.", "Industries", "Partners", "Associates",
    "Company", "Systems", "Laboratories",
)  # fmt: skip
_CLOSINGS = ("Sincerely,", "Yours truly,", "Best regards,", "Yours faithfully,", "Respectfully,", "Regards,")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip
_STAMP_WORDS = ("RECEIVED", "APPROVED", "PAID", "COPY", "CONFIDENTIAL", "FILED", "ENTERED", "VERIFIED")


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _proper(rng: np.random.Generator, low: int = 2, high: int = 3) -> str:
    parts = int(rng.integers(low, high + 1))
    return "".join(_pick(rng, _SYLLABLES) for _ in range(parts)).capitalize()


def _person(rng: np.random.Generator) -> str:
    middle = f" {chr(65 + int(rng.integers(26)))}." if rng.random() < 0.3 else ""
    return f"{_proper(rng, 2, 2)}{middle} {_proper(rng)}"


def _company(rng: np.random.Generator) -> str:
    return f"{_proper(rng)} {_pick(rng, _COMPANY_SUFFIXES)}"


def _amount(rng: np.random.Generator) -> str:
    return f"${int(rng.integers(10, 99999)):,}.{int(rng.integers(100)):02d}"


def _printed_date(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _MONTHS)} {int(rng.integers(1, 29))}, {int(rng.integers(1988, 2026))}"


def _prose(rng: np.random.Generator, n: int, *, plain: bool = False) -> list[str]:
    """``n`` words of sentence-like pseudo-text: capitals after full stops, commas, numbers and names
    (not when ``plain``: vocabulary words only, which the bitmap cache always holds)."""
    words: list[str] = []
    left = 0
    for _ in range(n):
        if left == 0:
            left = int(rng.integers(6, 18))
            start = True
        else:
            start = False
        roll = 1.0 if plain else rng.random()
        if roll < 0.03:
            word = _amount(rng)
        elif roll < 0.06:
            word = str(int(rng.integers(2, 120)))
        elif roll < 0.08:
            word = _proper(rng)
        else:
            word = _pick(rng, _WORDS)
        if start:
            word = word[:1].upper() + word[1:]
        left -= 1
        if left == 0:
            word += "."
        elif rng.random() < 0.06:
            word += ","
        words.append(word)
    return words


@lru_cache(maxsize=64)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=65536)
def _word_length(size: int, word: str) -> float:
    return float(_font(size).getlength(word))


@lru_cache(maxsize=32768)
def _word_image(size: int, word: str, bold: bool) -> tuple[Image.Image, int, int]:
    """A word's coverage bitmap and its offset from the text origin.

    Rendering with FreeType dominated page time; the vocabulary is small, so cached bitmaps pasted
    as masks cost a fraction of it.
    """
    margin = size
    img = Image.new("L", (int(_word_length(size, word)) + 2 * margin, 3 * size), 0)
    stroke = 1 if bold else 0
    ImageDraw.Draw(img).text((margin, margin), word, fill=255, font=_font(size), stroke_width=stroke, stroke_fill=255)
    box = img.getbbox() or (margin, margin, margin + 1, margin + 1)
    return img.crop(box), box[0] - margin, box[1] - margin


def _paste_text(
    layer: Image.Image, x: float, y: float, s: str, px_size: int, bold: bool = False
) -> list[tuple[int, int]]:
    """Draw ``s`` (top-left at x, y) word by word from the bitmap cache; returns the words' (x0, x1) spans."""
    space = _word_length(px_size, " ")
    spans: list[tuple[int, int]] = []
    for word in s.split(" "):
        if word:
            start = x
            # Trailing punctuation is pasted on its own, so "terms," and "terms." share one cached bitmap.
            parts = (word[:-1], word[-1]) if len(word) > 1 and word[-1] in ".,:;" else (word,)
            for part in parts:
                img, dx, dy = _word_image(px_size, part, bold)
                layer.paste(255, (round(x) + dx, round(y) + dy), img)
                x += _word_length(px_size, part) + (1 if bold else 0)
            spans.append((round(start), round(x)))
        x += space
    return spans


# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Paper, compositing and scan effects
# --------------------------------------------------------------------------------------------


_NOISE_TABLE_SIZE = 6_000_000


@lru_cache(maxsize=1)
def _noise_table() -> F32:
    table = np.random.default_rng(20240611).standard_normal(_NOISE_TABLE_SIZE, dtype=np.float32)
    table.setflags(write=False)
    return table


def _gaussian(rng: np.random.Generator, shape: tuple[int, int]) -> F32:
    """Unit Gaussian noise of ``shape`` (read-only).

    Drawing millions of normals per page was a large part of the render time; a window of a fixed
    table at a random offset has the same per-pixel statistics.
    """
    n = shape[0] * shape[1]
    table = _noise_table()
    if n > table.size - (1 << 20):  # too large a page for the table to give varied windows
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, table.size - n))
    return table[start : start + n].reshape(shape)


def _smooth_weights(n: int, knots: int) -> F32:
    """(n, knots) weights interpolating ``knots`` values smoothly (smoothstep) over n samples."""
    t = np.linspace(0.0, knots - 1.0, n)
    i = np.minimum(t.astype(np.int64), knots - 2)
    f = t - i
    f = f * f * (3 - 2 * f)
    w = np.zeros((n, knots), dtype=np.float32)
    w[np.arange(n), i] = 1 - f
    w[np.arange(n), i + 1] = f
    return w


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], knots: tuple[int, int], sigma: float) -> F32:
    """Low-frequency variation (uneven lighting, paper tone): a coarse random grid, smoothly interpolated."""
    coarse = rng.normal(0.0, sigma, knots).astype(np.float32)
    return np.asarray(_smooth_weights(shape[0], knots[0]) @ coarse @ _smooth_weights(shape[1], knots[1]).T)


def _paper(rng: np.random.Generator, shape: tuple[int, int], gray: float) -> F32:
    """Paper tone with uneven lighting and fibre grain."""
    paper = _smooth_field(rng, shape, (4, 3), rng.uniform(1.0, 3.5))
    paper += np.float32(gray)
    paper += _gaussian(rng, shape) * np.float32(rng.uniform(0.8, 2.0))
    return paper


def _darken(canvas: F32, paper: F32, alpha: F32, tone: float, x: int, y: int) -> None:
    """Composite ink of coverage ``alpha`` and gray ``tone`` at (x, y) by darkening (min); clips at the edges."""
    h, w = alpha.shape
    H, W = canvas.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x]
    p = paper[y0:y1, x0:x1]
    region = canvas[y0:y1, x0:x1]
    np.minimum(region, p - a * (p - np.float32(tone)), out=region)


def _jpeg(image: U8, quality: int) -> U8:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("L")).copy()


def _blur(img: Image.Image, sigma: float) -> Image.Image:
    """Optical blur of ``sigma`` < ~1.5 px: a 3x3 Gaussian kernel, several times faster than GaussianBlur."""
    if sigma < 0.1:
        return img
    a = math.exp(-1.0 / (2.0 * sigma * sigma))
    k = (a, 1.0, a)
    weights = [kx * ky for ky in k for kx in k]
    return img.filter(ImageFilter.Kernel((3, 3), weights, scale=sum(weights)))


def _scan(image: U8, rng: np.random.Generator, noise: float, paper: float) -> U8:
    """Optics, sensor and compression of a scanner (geometry is handled by the caller)."""
    img = _blur(Image.fromarray(image), rng.uniform(0.25, 0.8) * min(noise, 2.0))
    arr = np.asarray(img, dtype=np.float32)
    # Exposure differs between scanners: a little gain and offset around the paper level.
    gain = np.float32(rng.uniform(0.92, 1.06))
    arr *= gain
    arr += np.float32((1 - gain) * paper + rng.normal(0, 2))
    arr += _gaussian(rng, arr.shape) * np.float32(rng.uniform(1.0, 4.0) * noise)
    h, w = arr.shape
    for _ in range(int(rng.poisson(4 * noise))):  # dust and toner specks
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        arr[cy : cy + int(rng.integers(1, 3)), cx : cx + int(rng.integers(1, 3))] = np.float32(rng.uniform(40, 160))
    if rng.random() < 0.1 * min(noise, 1.0):  # a bilevel, fax-like page
        # Threshold near the paper, as fax machines do: thin strokes survive, somewhat bolder.
        threshold = np.float32(paper - rng.uniform(35, 80))
        arr = np.where(arr < threshold, np.float32(rng.uniform(10, 40)), np.float32(rng.uniform(235, 252)))
    out = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    return _jpeg(out, int(rng.integers(60, 91)))


@dataclass(frozen=True)
class _Affine:
    """Page skew: output pixel -> input pixel is ``inverse``; ``forward`` maps input -> output points."""

    inverse: tuple[float, float, float, float, float, float]
    forward: npt.NDArray[np.float64]  # 2x3

    @classmethod
    def rotation(cls, degrees: float, width: int, height: int) -> _Affine:
        a = math.radians(degrees)
        c, s = math.cos(a), math.sin(a)
        cx, cy = width / 2.0, height / 2.0
        inverse = (c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy)
        forward = np.array([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy]])
        return cls(inverse, forward)

    def apply(self, image: Image.Image, fill: int, resample: Image.Resampling) -> Image.Image:
        return image.transform(image.size, Image.Transform.AFFINE, self.inverse, resample=resample, fillcolor=fill)

    def apply_patch(self, alpha: F32, x: int, y: int, width: int, height: int) -> tuple[F32, int, int]:
        """Transform a patch placed at (x, y) on the page; returns it and its new origin, clipped to the page.

        Using the page's mapping shifted by integer offsets makes the result identical to
        transforming a page that holds only this patch.
        """
        # Pillow samples nothing beyond an image's edge; a zero border lets edge pixels blend with
        # the empty paper around them, as they do on the page.
        alpha = np.pad(alpha, 2)
        x, y = x - 2, y - 2
        h, w = alpha.shape
        corners = np.array([[x, y, 1.0], [x + w, y, 1.0], [x, y + h, 1.0], [x + w, y + h, 1.0]]) @ self.forward.T
        X0 = max(math.floor(corners[:, 0].min()) - 2, 0)
        Y0 = max(math.floor(corners[:, 1].min()) - 2, 0)
        X1 = min(math.ceil(corners[:, 0].max()) + 2, width)
        Y1 = min(math.ceil(corners[:, 1].max()) + 2, height)
        if X1 <= X0 or Y1 <= Y0:
            return np.zeros((0, 0), dtype=np.float32), X0, Y0
        a, b, c, d, e, f = self.inverse
        data = (a, b, a * X0 + b * Y0 + c - x, d, e, d * X0 + e * Y0 + f - y)
        out = Image.fromarray(alpha).transform(
            (X1 - X0, Y1 - Y0), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR, fillcolor=0.0
        )
        return np.asarray(out, dtype=np.float32), X0, Y0


# --------------------------------------------------------------------------------------------
# Page layout
# --------------------------------------------------------------------------------------------


@dataclass
class _Patch:
    """An object drawn into its own coverage patch; its box comes from this patch alone."""

    label: str  # a FIELD_CLASSES label, or "" for clutter without a box (stamps)
    writer: str | None
    x: int
    y: int
    alpha: F32
    tone: float
    level: float = MASK_THRESHOLD  # coverage at which a pixel belongs to the object's mask

    @property
    def handwriting(self) -> bool:
        return self.label in HANDWRITING_CLASSES

    def ink_box(self) -> Box:
        box = _bbox(self.alpha >= self.level)
        if box is None:
            return self.x, self.y, self.x, self.y
        return box[0] + self.x, box[1] + self.y, box[2] + self.x, box[3] + self.y


@dataclass
class _TextLine:
    """A printed line; ``words`` are (x0, x1) spans, for redactions and white-out."""

    top: int
    bottom: int
    words: list[tuple[int, int]]


@dataclass
class _Block:
    """A signature block: where a signature goes (over ``line_y`` between x0 and x1) and its date."""

    x0: int
    x1: int
    line_y: int
    col_x0: int
    col_x1: int
    label_x: int  # where printed text left of the signature line starts (overlap target)
    has_line: bool
    date_slot: tuple[int, int, int] | None  # x0, x1, line y of a "Date: ____" line
    below_y: int  # first free y below the block's printed text


@dataclass(frozen=True)
class _ObjectMask:
    """One field's own mask after the scan transform, placed at (x, y) on the page (for tests)."""

    field: FieldBox
    x: int
    y: int
    mask: Mask


class _PageBuilder:
    """Lays out one page: print goes to a page-size coverage layer, objects to their own patches."""

    def __init__(self, index: int, config: PageConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(np.random.SeedSequence([config.seed, index]))
        self.W, self.H = config.width, config.height
        self.u = config.width / _REFERENCE_WIDTH
        self.layer = Image.new("L", (self.W, self.H), 0)
        self.draw = ImageDraw.Draw(self.layer)
        self.patches: list[_Patch] = []
        self.lines: list[_TextLine] = []
        self.whiteouts: list[Box] = []
        rng = self.rng
        self.left = self.px(rng.uniform(95, 160))
        self.right = self.W - self.px(rng.uniform(95, 160))
        self.top = self.px(rng.uniform(60, 110))
        self.bottom = self.H - self.px(rng.uniform(60, 100))
        self.body_size = rng.uniform(16, 21)
        self.line_factor = rng.uniform(1.3, 1.6)
        self.rule = max(1, self.px(rng.uniform(1.0, 2.4)))
        self.closing = _pick(rng, _CLOSINGS)
        self.print_tone = float(rng.uniform(5, 60))
        # One marker per document, darker than the print: under min compositing nothing shows through.
        self.redaction_tone = self.print_tone * float(rng.uniform(0.0, 0.6))

    # ---- units and text -------------------------------------------------------------------

    def px(self, value: float) -> int:
        return round(value * self.u)

    def font(self, size: float) -> Font:
        return _font(max(6, round(size * self.u)))

    def line_height(self, size: float) -> int:
        return self.px(size * self.line_factor)

    def text(self, x: float, y: float, s: str, size: float, *, bold: bool = False, record: bool = False) -> int:
        """Draw ``s`` with its top-left at (x, y); returns the right end. ``record``: redaction candidate."""
        spans = _paste_text(self.layer, x, y, s, max(6, round(size * self.u)), bold)
        if record and spans:
            top, bottom = self._vertical(self.font(size), y)
            self.lines.append(_TextLine(top, bottom, spans))
        return spans[-1][1] if spans else round(x)

    def measure(self, s: str, size: float, *, bold: bool = False) -> float:
        return _word_length(max(6, round(size * self.u)), s) + (2 if bold else 0)

    @staticmethod
    def _vertical(font: Font, y: float) -> tuple[int, int]:
        box = font.getbbox("Hgjy")
        return round(y + box[1]), round(y + box[3])

    def hline(self, x0: float, x1: float, y: float, width: int | None = None) -> None:
        w = self.rule if width is None else width
        self.draw.rectangle((round(x0), round(y), round(x1), round(y) + w - 1), fill=255)

    def paragraph(self, y: int, x0: int, x1: int, limit: int, lines: int, *, justify: bool, size: float) -> int:
        """Fill up to ``lines`` lines of prose between x0 and x1 from y; returns the y after it."""
        rng = self.rng
        font = self.font(size)
        px_size = max(6, round(size * self.u))
        space = _word_length(px_size, " ")
        lh = self.line_height(size)
        width = x1 - x0
        words = iter(_prose(rng, lines * 40))  # more than enough: lines hold <= ~25 words
        pending: str | None = None
        indent = self.px(rng.choice([0.0, 0.0, 30.0]))
        for i in range(lines):
            if y + lh > limit:
                break
            last = i == lines - 1
            target = width * rng.uniform(0.25, 0.9) if last else width
            start = x0 + (indent if i == 0 else 0)
            line: list[tuple[str, float]] = []
            used = float(start - x0)
            while True:
                word = pending if pending is not None else next(words)
                pending = None
                wl = _word_length(px_size, word)
                need = wl + (space if line else 0.0)
                if line and used + need > target:
                    pending = word
                    break
                line.append((word, wl))
                used += need
                if used >= target:
                    break
            spans: list[tuple[int, int]] = []
            gap = space
            if justify and not last and len(line) > 1:
                gap = (x1 - start - sum(w for _, w in line)) / (len(line) - 1)
            x = float(start)
            for word, wl in line:
                _paste_text(self.layer, x, y, word, px_size)
                spans.append((round(x), round(x + wl)))
                x += wl + gap
            top, bottom = self._vertical(font, y)
            self.lines.append(_TextLine(top, bottom, spans))
            y += lh
        return y

    # ---- letterhead and logo --------------------------------------------------------------

    def logo_patch(self, company: str) -> _Patch:
        """A geometric emblem plus the company name (and maybe a tagline): one 'logo' object."""
        rng = self.rng
        e = self.px(rng.uniform(50, 95))
        name_size = rng.uniform(24, 38)
        name_font = self.font(name_size)
        name_w = int(name_font.getlength(company)) + 4
        tagline = f"{_pick(rng, _WORDS).capitalize()} {_pick(rng, _WORDS)} {_pick(rng, _WORDS)}"
        tag_size = name_size * 0.45
        has_tag = rng.random() < 0.4
        stacked = rng.random() < 0.3
        name_box = name_font.getbbox(company)
        name_h = int(name_box[3]) + 2
        tag_h = self.px(tag_size * 1.4) if has_tag else 0
        gap = self.px(rng.uniform(8, 20))
        if stacked:
            w = max(e, name_w, int(self.measure(tagline, tag_size)) + 2) + 4
            h = e + gap + name_h + tag_h + 4
            ex, ey, tx, ty = (w - e) // 2, 2, (w - name_w) // 2, e + gap
        else:
            w = e + gap + max(name_w, int(self.measure(tagline, tag_size)) + 2) + 4
            h = max(e, name_h + tag_h) + 4
            ex, ey, tx, ty = 2, (h - e) // 2, e + gap, (h - name_h - tag_h) // 2
        img = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(img)
        fill = int(rng.choice([255, 255, int(rng.integers(120, 230))]))
        kind = int(rng.integers(6))
        box = (ex, ey, ex + e - 1, ey + e - 1)
        thick = max(2, e // 9)
        if kind == 0:  # disc with a knocked-out initial
            d.ellipse(box, fill=fill)
            f = _font(max(8, int(e * 0.6)))
            d.text((ex + e / 2, ey + e / 2), company[0], fill=0, font=f, anchor="mm")
        elif kind == 1:  # ring around a square
            d.ellipse(box, outline=fill, width=thick)
            q = e // 4
            d.rectangle((ex + q + thick, ey + q + thick, ex + e - q - thick, ey + e - q - thick), fill=fill)
        elif kind == 2:  # two overlapping triangles
            d.polygon([(ex, ey + e - 1), (ex + e * 0.55, ey), (ex + e * 0.75, ey + e - 1)], fill=fill)
            d.polygon([(ex + e * 0.35, ey + e - 1), (ex + e * 0.7, ey + e * 0.3), (ex + e - 1, ey + e - 1)], fill=fill)
        elif kind == 3:  # checkerboard of squares
            half = e // 2
            for i, j in ((0, 0), (1, 1), (0, 1)):
                if i == 0 and j == 1 and rng.random() < 0.5:
                    continue
                d.rectangle(
                    (ex + i * half, ey + j * half, ex + i * half + half - 3, ey + j * half + half - 3), fill=fill
                )
        elif kind == 4:  # diamond with an inner outline
            c = (ex + e / 2, ey + e / 2)
            r = e / 2
            d.polygon([(c[0], c[1] - r), (c[0] + r, c[1]), (c[0], c[1] + r), (c[0] - r, c[1])], fill=fill)
            r2 = r * 0.5
            d.polygon([(c[0], c[1] - r2), (c[0] + r2, c[1]), (c[0], c[1] + r2), (c[0] - r2, c[1])], fill=0)
        else:  # rising bars
            n = int(rng.integers(3, 5))
            bw = e / (n * 1.5)
            for i in range(n):
                bh = e * (0.35 + 0.65 * (i + 1) / n)
                x = ex + i * bw * 1.5
                d.rectangle((x, ey + e - bh, x + bw, ey + e - 1), fill=fill)
        d.text(
            (tx, ty), company, fill=255, font=name_font, stroke_width=1 if rng.random() < 0.6 else 0, stroke_fill=255
        )
        if has_tag:
            d.text((tx, ty + name_h), tagline, fill=255, font=self.font(tag_size))
        alpha = np.asarray(img, dtype=np.float32) * np.float32(1 / 255)
        return _Patch("logo", None, 0, 0, alpha, float(rng.uniform(0, 90)))

    def letterhead(self, company: str) -> int:
        rng = self.rng
        y = self.top
        small = rng.uniform(11, 14)
        address = [
            f"{int(rng.integers(1, 9999))} {_proper(rng)} {_pick(rng, ('Street', 'Avenue', 'Road', 'Boulevard'))}",
            f"{_proper(rng)}, {chr(65 + int(rng.integers(26)))}{chr(65 + int(rng.integers(26)))} "
            f"{int(rng.integers(10000, 99999))}",
            f"Tel. ({int(rng.integers(200, 999))}) {int(rng.integers(200, 999))}-{int(rng.integers(1000, 9999))}",
        ]
        bottom = y
        if rng.random() < self.config.logo_probability:
            patch = self.logo_patch(company)
            h, w = patch.alpha.shape
            where = rng.choice(["left", "center", "right"], p=[0.5, 0.25, 0.25])
            x = {"left": self.left, "center": (self.W - w) // 2, "right": self.right - w}[str(where)]
            patch.x, patch.y = x, y
            self.patches.append(patch)
            bottom = y + h
            lh = self.line_height(small)
            if where == "center":
                ay = bottom + self.px(8)
                for line in address[: int(rng.integers(1, 3))]:
                    self.text((self.W - self.measure(line, small)) / 2, ay, line, small)
                    ay += lh
                bottom = ay
            else:
                ay = y + self.px(4)
                for line in address:
                    ax = self.right - self.measure(line, small) if where == "left" else self.left
                    self.text(ax, ay, line, small)
                    ay += lh
                bottom = max(bottom, ay)
        elif rng.random() < 0.6:  # a plain address header, no emblem
            lh = self.line_height(small)
            for line in address:
                self.text(self.right - self.measure(line, small), y, line, small)
                y += lh
            bottom = y
        if rng.random() < 0.6 and bottom > self.top:
            bottom += self.px(10)
            self.hline(self.left, self.right, bottom)
        return bottom + self.px(rng.uniform(25, 50))

    # ---- bodies ---------------------------------------------------------------------------

    def letter_body(self, y: int, limit: int) -> int:
        rng = self.rng
        size = self.body_size
        lh = self.line_height(size)
        date = _printed_date(rng)
        x = self.right - self.measure(date, size) if rng.random() < 0.3 else self.left
        self.text(x, y, date, size, record=True)
        y += 2 * lh
        recipient = [
            _person(rng),
            _pick(rng, _JOB_TITLES),
            _company(rng),
            f"{int(rng.integers(1, 999))} {_proper(rng)} Street",
            f"{_proper(rng)}, {int(rng.integers(10000, 99999))}",
        ]
        for line in recipient[: int(rng.integers(3, 6))]:
            if y + lh > limit:
                return y
            self.text(self.left, y, line, size, record=True)
            y += lh
        y += lh
        if rng.random() < 0.6 and y + lh < limit:
            self.text(
                self.left, y, f"Re: {' '.join(_prose(rng, int(rng.integers(3, 7))))}".rstrip(".,"), size, bold=True
            )
            y += int(lh * 1.5)
        if y + lh < limit:
            self.text(self.left, y, f"Dear {_pick(rng, ('Mr.', 'Ms.', 'Dr.'))} {_proper(rng)}:", size, record=True)
            y += int(lh * 1.5)
        justify = rng.random() < 0.5
        while y + 2 * lh < limit:
            y = self.paragraph(y, self.left, self.right, limit, int(rng.integers(2, 8)), justify=justify, size=size)
            y += int(lh * rng.uniform(0.5, 1.0))
            if rng.random() < 0.12:
                break  # letters are often short
        return y

    def contract_body(self, y: int, limit: int) -> int:
        rng = self.rng
        size = self.body_size * rng.uniform(0.9, 1.0)
        lh = self.line_height(size)
        title = _pick(rng, _TITLES)
        tsize = rng.uniform(22, 30)
        self.text((self.W - self.measure(title, tsize, bold=True)) / 2, y, title, tsize, bold=True)
        y += self.line_height(tsize) + self.px(10)
        if rng.random() < 0.5:
            sub = f"Agreement No. {int(rng.integers(1990, 2026))}-{int(rng.integers(1, 999)):03d}"
            self.text((self.W - self.measure(sub, size)) / 2, y, sub, size, record=True)
            y += 2 * lh
        y = self.paragraph(y, self.left, self.right, limit, int(rng.integers(2, 5)), justify=True, size=size)
        y += lh // 2
        section = 1
        while y + 3 * lh < limit:
            heading = f"{section}. {_pick(rng, _HEADINGS)}"
            self.text(self.left, y, heading, size, bold=True)
            y += int(lh * 1.2)
            indent = self.px(30) if rng.random() < 0.3 else 0
            y = self.paragraph(
                y, self.left + indent, self.right, limit, int(rng.integers(2, 7)), justify=True, size=size
            )
            y += lh // 2
            section += 1
        return y

    def field_row(self, x: float, y: int, x1: float, label: str, value: str | None, size: float) -> None:
        """``Label: ______`` with an optional typed value sitting on the line."""
        right = self.text(x, y, label, size, record=True)
        font = self.font(size)
        line_y = self._vertical(font, y)[1] - self.px(2)
        self.hline(right + self.px(6), x1, line_y, width=1)
        if value:
            self.text(right + self.px(14), y, value, size, record=True)

    def table(self, y: int, limit: int, size: float) -> int:
        rng = self.rng
        rows = int(rng.integers(3, 9))
        cols = int(rng.integers(2, 6))
        row_h = int(self.line_height(size) * 1.35)
        rows = min(rows, (limit - y) // row_h - 1)
        if rows < 2:
            return y
        weights = rng.uniform(0.6, 1.6, cols)
        edges = self.left + np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * (self.right - self.left)
        heads = ("Item", "Description", "Qty", "Unit Price", "Amount", "Date", "Ref.", "Account", "Code")
        order = rng.permutation(len(heads))  # distinct column headings
        pad = self.px(6)
        for r in range(rows + 1):
            self.hline(self.left, self.right, y + r * row_h, width=max(1, self.rule - (r not in (0, 1, rows))))
        for x in edges:
            self.draw.rectangle((round(x), y, round(x) + self.rule - 1, y + rows * row_h), fill=255)
        for r in range(rows):
            for c in range(cols):
                if r == 0:
                    s = heads[int(order[c])]
                elif c == 0:
                    s = f"{int(rng.integers(1, 999)):03d}"
                elif rng.random() < 0.5:
                    s = _amount(rng)
                else:
                    s = " ".join(_prose(rng, int(rng.integers(1, 4)))).rstrip(".,")
                while len(s) > 1 and self.measure(s, size, bold=r == 0) > edges[c + 1] - edges[c] - 2 * pad:
                    s = s[:-1]
                self.text(edges[c] + pad, y + r * row_h + pad, s, size, bold=r == 0, record=r > 0)
        return y + rows * row_h + self.px(20)

    def form_body(self, y: int, limit: int) -> int:
        rng = self.rng
        size = self.body_size * rng.uniform(0.85, 1.0)
        lh = self.line_height(size)
        title = _pick(rng, _FORM_TITLES)
        tsize = rng.uniform(22, 28)
        centered = rng.random() < 0.5
        self.text(
            (self.W - self.measure(title, tsize, bold=True)) / 2 if centered else self.left, y, title, tsize, bold=True
        )
        if rng.random() < 0.6:
            ref = (
                f"Form {int(rng.integers(10, 99))}-{chr(65 + int(rng.integers(26)))} (rev. {int(rng.integers(1, 13))}/"
            )
            ref += f"{int(rng.integers(88, 99))})"
            self.text(self.right - self.measure(ref, size * 0.7), y, ref, size * 0.7)
        y += self.line_height(tsize) + lh
        labels = iter(
            rng.permutation(
                ["Name", "Department", "Address", "Account No.", "Phone", "Employee ID", "Project", "Amount"]
            )
        )
        for _ in range(int(rng.integers(2, 5))):
            if y + lh > limit:
                return y
            two = rng.random() < 0.5
            mid = (self.left + self.right) / 2
            value = _person(rng) if rng.random() < 0.5 else (_amount(rng) if rng.random() < 0.3 else None)
            self.field_row(self.left, y, mid - self.px(20) if two else self.right, f"{next(labels)}:", value, size)
            if two:
                self.field_row(mid, y, self.right, f"{next(labels)}:", None, size)
            y += int(lh * 1.5)
        y += lh // 2
        y = self.table(y, limit, size * 0.9)
        if rng.random() < 0.6 and y + 2 * lh < limit:
            box = self.px(size * 0.8)
            x = float(self.left)
            for _ in range(int(rng.integers(2, 5))):
                label = " ".join(_prose(rng, int(rng.integers(1, 3)))).rstrip(".,").capitalize()
                top = y + self.px(3)
                self.draw.rectangle(
                    (round(x), top, round(x) + box, top + box), outline=255, width=max(1, self.rule - 1)
                )
                if rng.random() < 0.4:  # a typed X
                    self.draw.line((round(x) + 2, top + 2, round(x) + box - 2, top + box - 2), fill=255, width=2)
                    self.draw.line((round(x) + 2, top + box - 2, round(x) + box - 2, top + 2), fill=255, width=2)
                x = self.text(x + box + self.px(8), y, label, size) + self.px(30)
                if x > self.right - self.px(150):
                    break
            y += 2 * lh
        while y + 2 * lh < limit:
            y = self.paragraph(
                y, self.left, self.right, limit, int(rng.integers(2, 5)), justify=False, size=size * 0.85
            )
            y += lh // 2
            if rng.random() < 0.3:
                break
        return y

    # ---- signature blocks -----------------------------------------------------------------

    def plan_blocks(self, n_signatures: int, available: int, letter: bool) -> tuple[int, int, int, str]:
        """(blocks, columns, block height, variant) so that the blocks fit in ``available`` pixels."""
        rng = self.rng
        blocks = n_signatures
        if n_signatures == 0:
            blocks = int(rng.choice([0, 1, 2], p=[0.3, 0.4, 0.3]))  # unsigned lines are useful negatives
        elif rng.random() < 0.25:
            blocks += 1
        blocks = min(blocks, 6)
        variant = "closing" if letter and rng.random() < 0.8 else str(rng.choice(["label", "caption"]))
        columns = 1 if blocks == 1 and rng.random() < 0.6 else 2
        lh = self.line_height(self.body_size)
        gap = self.px(rng.uniform(95, 125))
        block_h = gap + 4 * lh + (lh if variant == "closing" else 0)
        while blocks > 0 and math.ceil(blocks / columns) * block_h > available:
            blocks -= 1
        return blocks, columns, block_h, variant

    def block(self, x0: int, x1: int, y: int, height: int, variant: str, with_date: bool, first: bool) -> _Block:
        rng = self.rng
        size = self.body_size
        lh = self.line_height(size)
        font = self.font(size)
        gap = height - 4 * lh - (lh if variant == "closing" else 0)
        name, title = _person(rng), _pick(rng, _JOB_TITLES)
        if variant == "closing":
            if first:  # one closing for all signers
                self.text(x0, y, self.closing, size, record=True)
            line_y = y + lh + gap
            self.text(x0, line_y + self.px(4), name, size, record=True)
            self.text(x0, line_y + self.px(4) + lh, title, size, record=True)
            return _Block(x0, x0 + int((x1 - x0) * 0.85), line_y, x0, x1, x0, False, None, line_y + 2 * lh + self.px(8))
        line_y = y + gap
        date_slot = None
        if variant == "label":
            label = _pick(rng, ("Signature:", "Signed:", "By:", "Authorized Signature:"))
            text_y = self._text_y_for_baseline(font, line_y)
            right = self.text(x0, text_y, label, size, record=True)
            line_x0 = right + self.px(8)
            line_x1 = x1 if x1 - line_x0 > self.px(180) else line_x0 + self.px(200)
            self.hline(line_x0, line_x1, line_y)
            yy = line_y + self.px(8)
            self.text(x0, yy, f"Name: {name}", size, record=True)
            yy += lh
            if rng.random() < 0.7:
                self.text(x0, yy, f"Title: {title}", size, record=True)
            yy += lh
            if with_date:
                date_y = yy + int(lh * 1.5)  # room above the line for a handwritten date
                right = self.text(x0, self._text_y_for_baseline(font, date_y), "Date:", size, record=True)
                dx0, dx1 = right + self.px(8), min(x1, right + self.px(rng.uniform(190, 260)))
                self.hline(dx0, dx1, date_y)
                date_slot = (dx0, dx1, date_y)
            return _Block(line_x0, line_x1, line_y, x0, x1, x0, True, date_slot, yy + 2 * lh)
        # caption: the line first, a small caption under it
        line_x1 = x0 + int((x1 - x0) * rng.uniform(0.7, 0.95))
        self.hline(x0, line_x1, line_y)
        small = size * 0.8
        self.text(
            x0,
            line_y + self.px(4),
            _pick(rng, ("Signature", "Authorized Signature", "Signature of Applicant")),
            small,
            record=True,
        )
        yy = line_y + self.px(4) + self.line_height(small)
        self.text(x0, yy, name, size, record=True)
        yy += lh
        if with_date:
            date_line = yy + lh + self.px(12)
            dx1 = x0 + self.px(rng.uniform(200, 260))
            self.hline(x0, dx1, date_line)
            self.text(x0, date_line + self.px(4), "Date", small, record=True)
            date_slot = (x0, dx1, date_line)
            yy = date_line + self.line_height(small)
        return _Block(x0, line_x1, line_y, x0, x1, x0, True, date_slot, yy + lh)

    @staticmethod
    def _text_y_for_baseline(font: Font, baseline: int) -> int:
        # Text whose letters sit on ``baseline`` (descenders go below it).
        return baseline - int(font.getbbox("H")[3])

    # ---- handwriting ----------------------------------------------------------------------

    def add_handwriting(self, label: str, writer: int, pieces: list[_Piece], left: float, bottom: float) -> _Patch:
        """Rasterize ``pieces`` and place them with the ink's left edge at ``left`` and lowest ink at ``bottom``."""
        alpha = _ink_alpha(pieces, 3)
        box = _bbox(alpha >= MASK_THRESHOLD) or (0, 0, alpha.shape[1], alpha.shape[0])
        tone = float(np.clip(_style(self.config.seed, writer).ink_gray + self.rng.normal(15, 15), 10, 140))
        patch = _Patch(label, page_writer_id(writer), round(left) - box[0], round(bottom) - box[3], alpha, tone)
        self.patches.append(patch)
        return patch

    def pen_width(self, style: WriterStyle) -> float:
        # Signatures on a 150 dpi page are smaller than scanned signature crops; so is the pen.
        return max(1.1, style.pen_width * 0.72 * self.u)

    def sign(self, block: _Block, writer: int, overlap: bool) -> _Patch:
        rng = self.rng
        style = _style(self.config.seed, writer)
        slot_w = block.x1 - block.x0
        max_w = min(self.px(rng.uniform(200, 390)), max(slot_w * 1.05, self.px(160)))
        max_h = self.px(rng.uniform(70, 125))
        pieces = _signature_pieces(style, rng, max_w, max_h, self.pen_width(style))
        w, h = _extent(pieces)
        left = block.x0 + rng.uniform(-0.05, 0.25) * max(slot_w - w, 0.0)
        if overlap:
            mode = rng.random()
            if mode < 0.5 or not block.has_line:
                bottom = block.line_y + h * rng.uniform(0.15, 0.45)  # strokes cross the line and the text below
            else:
                bottom = block.line_y + h * rng.uniform(0.0, 0.25)
                left = block.label_x + rng.uniform(0.0, 0.6) * (block.x0 - block.label_x)  # over the printed label
        else:
            bottom = block.line_y - self.px(rng.uniform(2, 9)) if block.has_line else block.line_y - self.px(4)
        return self.add_handwriting("signature", writer, pieces, left, bottom)

    def write_date(self, block: _Block, signature: _Patch, writer: int) -> None:
        rng = self.rng
        style = _style(self.config.seed, writer)
        habits = _writer_rng(style, _KIND_DATES)
        text = _date_text(rng, int(habits.integers(6)))
        height = self.px(rng.uniform(17, 28))
        pieces = date_pieces(style, text, height, rng, pen_width=self.pen_width(style))
        w, _ = _extent(pieces)
        _, _, sx1, sy1 = signature.ink_box()
        if block.date_slot is not None:
            dx0, dx1, line_y = block.date_slot
            left = dx0 + rng.uniform(0.0, 0.3) * max(dx1 - dx0 - w, 0.0)
            bottom = line_y - self.px(rng.uniform(1, 7))
        elif sx1 + self.px(30) + w < block.col_x1:  # to the right of the signature
            left = sx1 + self.px(rng.uniform(15, 40))
            bottom = block.line_y - self.px(rng.uniform(0, 15))
        else:  # under the printed name
            left = block.col_x0 + self.px(rng.uniform(0, 20))
            bottom = max(block.below_y, sy1 + self.px(6)) + height
        self.add_handwriting("handwritten_date", writer, pieces, left, bottom)

    def initials(self, writer: int, footer_top: int) -> None:
        rng = self.rng
        style = _style(self.config.seed, writer)
        height = self.px(rng.uniform(32, 55))
        pieces = initials_pieces(style, height, rng, pen_width=self.pen_width(style))
        w, _ = _extent(pieces)
        right_side = rng.random() < 0.6
        size = self.body_size * 0.8
        bottom: float = self.bottom - self.px(rng.uniform(0, 10))
        if rng.random() < 0.6:  # a printed "Initials: ____" box
            label = _pick(rng, ("Initials:", "Initial here:", "Initials"))
            line_w = max(self.px(90), int(w) + self.px(20))
            total = self.measure(label, size) + self.px(8) + line_w
            x = self.right - total if right_side else self.left
            font = self.font(size)
            base = self.bottom - self.px(6)
            end = self.text(x, self._text_y_for_baseline(font, base), label, size)
            self.hline(end + self.px(8), end + self.px(8) + line_w, base, width=1)
            left: float = end + self.px(12)
            bottom = base + self.px(rng.uniform(-6, 6))
        elif right_side:
            left = self.right - w - self.px(rng.uniform(0, 30))
        else:
            left = self.left + self.px(rng.uniform(0, 30))
        bottom = max(bottom, footer_top + height)
        self.add_handwriting("initials", writer, pieces, left, bottom)

    # ---- clutter --------------------------------------------------------------------------

    def redaction(self, line: _TextLine) -> None:
        rng = self.rng
        n = len(line.words)
        a = int(rng.integers(n))
        b = int(rng.integers(a, n)) + 1 if rng.random() < 0.7 else n
        pad_x, pad_y = self.px(rng.uniform(1, 6)), self.px(rng.uniform(1, 5))
        x0, x1 = line.words[a][0] - pad_x, line.words[b - 1][1] + pad_x
        y0, y1 = line.top - pad_y, line.bottom + pad_y
        alpha = np.ones((y1 - y0, x1 - x0), dtype=np.float32)
        self.patches.append(_Patch("redaction", None, x0, y0, alpha, self.redaction_tone))

    def whiteout(self, line: _TextLine) -> None:
        rng = self.rng
        n = len(line.words)
        a = int(rng.integers(n))
        b = min(n, a + int(rng.integers(1, 4)))
        pad = self.px(rng.uniform(2, 6))
        self.whiteouts.append((line.words[a][0] - pad, line.top - pad, line.words[b - 1][1] + pad, line.bottom + pad))

    def stamp(self, cx: float, cy: float, company: str) -> None:
        """A rubber stamp: outlined text, rotated, light and speckled; clutter, part of the print mask."""
        rng = self.rng
        word = _pick(rng, _STAMP_WORDS)
        date = f"{int(rng.integers(1, 29))} {_pick(rng, _MONTHS)[:3].upper()} {int(rng.integers(1988, 2026))}"
        thick = max(2, self.px(rng.uniform(2, 4)))
        if rng.random() < 0.5:
            d = self.px(rng.uniform(130, 200))
            img = Image.new("L", (d + 8, d + 8), 0)
            draw = ImageDraw.Draw(img)
            draw.ellipse((4, 4, d + 3, d + 3), outline=255, width=thick)
            inner = int(d * 0.12)
            draw.ellipse((4 + inner, 4 + inner, d + 3 - inner, d + 3 - inner), outline=255, width=max(1, thick // 2))
            c = d / 2 + 4
            draw.text((c, c - d * 0.13), word, fill=255, font=_font(max(8, int(d * 0.13))), anchor="mm")
            draw.text((c, c + d * 0.1), date, fill=255, font=_font(max(7, int(d * 0.09))), anchor="mm")
            name = company.upper()
            draw.text(
                (c, 4 + inner * 0.5 + d * 0.06), name[:18], fill=255, font=_font(max(6, int(d * 0.06))), anchor="mm"
            )
        else:
            size = rng.uniform(30, 52)
            font = self.font(size)
            tw = int(font.getlength(word))
            w, h = tw + self.px(40), self.px(size * 2.4)
            img = Image.new("L", (w, h), 0)
            draw = ImageDraw.Draw(img)
            draw.rectangle((0, 0, w - 1, h - 1), outline=255, width=thick)
            if rng.random() < 0.5:
                draw.rectangle((thick + 3, thick + 3, w - thick - 4, h - thick - 4), outline=255, width=1)
            draw.text((w / 2, h * 0.4), word, fill=255, font=font, anchor="mm", stroke_width=1, stroke_fill=255)
            draw.text((w / 2, h * 0.78), date, fill=255, font=self.font(size * 0.4), anchor="mm")
        img = img.rotate(float(rng.uniform(-25, 25)), resample=Image.Resampling.BILINEAR, expand=True)
        opacity = rng.uniform(0.5, 0.9)
        alpha = np.asarray(img, dtype=np.float32) * np.float32(opacity / 255)
        h, w = alpha.shape
        # Rubber stamps ink unevenly; the mask level sits under the lightest speckle so it keeps the full shape.
        alpha *= np.float32(0.75) + np.float32(0.25) * self.rng.random((h, w), dtype=np.float32)
        x, y = round(cx - w / 2), round(cy - h / 2)
        tone = float(rng.uniform(60, 150))
        self.patches.append(_Patch("", None, x, y, alpha, tone, level=MASK_THRESHOLD * opacity * 0.75))

    # ---- whole page -----------------------------------------------------------------------

    def layout(self) -> None:
        rng = self.rng
        cfg = self.config
        company = _company(rng)
        kind = str(rng.choice(["letter", "contract", "form"], p=[0.4, 0.3, 0.3]))
        y = self.letterhead(company)
        # Footer: page number and room for corner initials.
        footer_top = self.bottom - self.px(70)
        size = self.body_size * 0.8
        number = int(rng.integers(1, 9))
        page_text = str(
            rng.choice([f"Page {number} of {number + int(rng.integers(0, 5))}", f"- {number} -", str(number)])
        )
        self.text((self.W - self.measure(page_text, size)) / 2, self.bottom - self.px(22), page_text, size)

        n_sig = int(rng.integers(cfg.signatures[0], cfg.signatures[1] + 1))
        available = footer_top - y - self.px(150)  # keep some body text above the signatures
        blocks, columns, block_h, variant = self.plan_blocks(n_sig, available, kind == "letter")
        n_sig = min(n_sig, blocks)
        rows = math.ceil(blocks / columns) if blocks else 0
        area_top = footer_top - rows * block_h - self.px(10)
        limit = area_top - self.px(20) if blocks else footer_top
        if kind == "letter":
            end = self.letter_body(y, limit)
        elif kind == "contract":
            end = self.contract_body(y, limit)
        else:
            end = self.form_body(y, limit)
        body_lines = len(self.lines)  # redaction candidates: body text, not the signature blocks
        if blocks:
            # Sit the signature area right under the text, as documents do, unless the text ran long.
            area_top = min(area_top, max(end + self.px(rng.uniform(15, 60)), y))
            if kind == "contract" and end + self.line_height(self.body_size) * 2 < area_top:
                self.paragraph(end, self.left, self.right, area_top, 2, justify=True, size=self.body_size)

        signers = [int(w) for w in rng.choice(WRITER_POOL, size=max(n_sig, 1), replace=False) + 1]
        chosen = set(rng.choice(blocks, size=n_sig, replace=False).tolist()) if blocks else set()
        col_gap = self.px(60)
        col_w = (self.right - self.left - (columns - 1) * col_gap) // columns
        if columns == 1 and rng.random() < 0.5:  # a single block often sits on the right half
            col_w = int((self.right - self.left) * rng.uniform(0.5, 0.6))
        signatures: list[_Patch] = []
        k = 0
        for b in range(blocks):
            r, c = divmod(b, columns)
            x0 = self.left + c * (col_w + col_gap)
            if columns == 1 and col_w < (self.right - self.left) // 2 + self.px(200) and rng.random() < 0.6:
                x0 = self.right - col_w
            signed = b in chosen
            with_date = signed and rng.random() < cfg.date_probability
            with_date_line = with_date or rng.random() < 0.3
            blk = self.block(x0, x0 + col_w, area_top + r * block_h, block_h, variant, with_date_line, b == 0)
            if signed:
                writer = signers[k]
                k += 1
                patch = self.sign(blk, writer, rng.random() < cfg.overlap_text_probability)
                signatures.append(patch)
                if with_date:
                    self.write_date(blk, patch, writer)

        if rng.random() < cfg.initials_probability:
            writer = (
                signers[int(rng.integers(len(signers)))]
                if rng.random() < 0.7
                else int(rng.integers(1, WRITER_POOL + 1))
            )
            self.initials(writer, footer_top)

        candidates = [i for i, line in enumerate(self.lines[:body_lines]) if line.words]
        n_red = min(int(rng.integers(cfg.redactions[0], cfg.redactions[1] + 1)), len(candidates))
        picked: list[int] = []  # distinct lines: n_red redactions, then maybe one white-out
        if candidates:
            picked = rng.choice(len(candidates), size=min(n_red + 1, len(candidates)), replace=False).tolist()
        for j, i in enumerate(picked):
            if j < n_red:
                self.redaction(self.lines[candidates[int(i)]])
            elif rng.random() < 0.15:
                self.whiteout(self.lines[candidates[int(i)]])

        if rng.random() < cfg.stamp_probability:
            if signatures:
                sx0, sy0, sx1, sy1 = signatures[int(rng.integers(len(signatures)))].ink_box()
                cx = rng.uniform(sx0, sx1) + self.px(rng.uniform(-40, 120))
                cy = rng.uniform(sy0, sy1) + self.px(rng.uniform(-60, 40))
            else:
                cx, cy = rng.uniform(self.left + 100, self.right - 100), rng.uniform(self.H * 0.3, self.H * 0.8)
            self.stamp(cx, cy, company)


def _date_text(rng: np.random.Generator, style: int) -> str:
    day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1988, 2026))
    formats = (
        f"{day}/{month}/{year % 100:02d}",
        f"{day:02d}/{month:02d}/{year}",
        f"{day}.{month}.{year}",
        f"{year}-{month:02d}-{day:02d}",
        f"{month}/{day}/{year}",
        f"{day}-{month}-{year % 100:02d}",
    )
    return formats[style % len(formats)]


def _render(index: int, config: PageConfig) -> tuple[SyntheticPage, tuple[_ObjectMask, ...]]:
    """The page plus each field's own mask (exposed for tests of box tightness)."""
    _check_int("index", index, 0, 2**63 - 1)
    builder = _PageBuilder(index, config)
    builder.layout()
    rng = builder.rng
    H, W = config.height, config.width

    paper_gray = float(rng.uniform(228, 250))
    paper = _paper(rng, (H, W), paper_gray)
    coverage = np.asarray(builder.layer).copy()
    for x0, y0, x1, y1 in builder.whiteouts:
        coverage[max(y0, 0) : y1, max(x0, 0) : x1] = 0  # the text under the correction fluid is gone
    tone = np.float32(builder.print_tone)
    cov = coverage.astype(np.float32) * np.float32(1 / 255)
    canvas = paper - cov * (paper - tone)
    for x0, y0, x1, y1 in builder.whiteouts:
        canvas[max(y0, 0) : y1, max(x0, 0) : x1] = np.float32(min(255.0, paper_gray + rng.uniform(4, 10)))
        edge = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        edge[[0, -1], :] = edge[:, [0, -1]] = 0.12  # the faint rim of the dried fluid
        _darken(canvas, paper, edge, 120.0, x0, y0)
    # Print and clutter first, handwriting last: ink written over a stamp keeps both, as on paper.
    for patch in sorted(builder.patches, key=lambda p: p.handwriting):
        _darken(canvas, paper, patch.alpha, patch.tone, patch.x, patch.y)
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)

    transform = None
    if config.noise > 0:
        angle = rng.uniform(-1.0, 1.0) * min(config.noise, 1.0)
        if angle != 0.0:
            transform = _Affine.rotation(angle, W, H)
            image = np.array(transform.apply(Image.fromarray(image), round(paper_gray), Image.Resampling.BILINEAR))
            # Nearest is 10x faster than bilinear here and exact enough for a mask.
            coverage = np.asarray(transform.apply(Image.fromarray(coverage), 0, Image.Resampling.NEAREST))
        image = _scan(image, rng, config.noise, paper_gray)

    ink_mask = np.zeros((H, W), dtype=np.bool_)
    print_mask = coverage >= round(MASK_THRESHOLD * 255)
    fields: list[tuple[FieldBox, _ObjectMask]] = []
    for patch in builder.patches:
        # Clip to the page first, as the composite did: ink off the page must not rotate back in.
        X0, Y0 = max(patch.x, 0), max(patch.y, 0)
        alpha = patch.alpha[Y0 - patch.y : H - patch.y, X0 - patch.x : W - patch.x]
        if transform is not None and alpha.size:
            alpha, X0, Y0 = transform.apply_patch(alpha, X0, Y0, W, H)
        mask = alpha >= patch.level
        box = _bbox(mask)
        if box is None:
            continue
        h, w = mask.shape
        target = ink_mask if patch.handwriting else print_mask
        target[Y0 : Y0 + h, X0 : X0 + w] |= mask
        if patch.label:
            field = FieldBox(patch.label, (box[0] + X0, box[1] + Y0, box[2] + X0, box[3] + Y0), patch.writer)
            fields.append((field, _ObjectMask(field, X0, Y0, mask)))
    fields.sort(key=lambda f: (FIELD_CLASSES.index(f[0].label), f[0].box[1], f[0].box[0]))
    page = SyntheticPage(image, tuple(f for f, _ in fields), ink_mask, print_mask)
    return page, tuple(m for _, m in fields)


def render_page(index: int, config: PageConfig = PageConfig()) -> SyntheticPage:
    """Page ``index`` of the synthetic document set ``config`` (deterministic, independent of other pages).

    Boxes are tight around each object's own mask after the scan's skew; ``ink_mask`` is the union
    of the handwriting objects' masks and ``print_mask`` everything printed or stamped.
    """
    return _render(index, config)[0]


# --------------------------------------------------------------------------------------------
# Training pairs for a signature cleaner
# --------------------------------------------------------------------------------------------


def crop_signature_pair(page: SyntheticPage, field: FieldBox, pad: int = 8) -> tuple[U8, U8]:
    """(noisy crop of the page, clean crop) around ``field`` with ``pad`` pixels of context.

    The clean crop is paper-white with only the handwriting of ``page.ink_mask``, drawn in the
    writer's ink gray (the median of the page over ink pixels that no print covers).
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    H, W = page.image.shape
    x0, y0, x1, y1 = field.box
    x0, y0, x1, y1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, W), min(y1 + pad, H)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"field box {field.box} is outside the page")
    noisy = page.image[y0:y1, x0:x1].copy()
    ink = page.ink_mask[y0:y1, x0:x1]
    clean_ink = ink & ~page.print_mask[y0:y1, x0:x1]
    gray = int(np.median(noisy[clean_ink])) if clean_ink.any() else 60
    clean = np.full(noisy.shape, 255, dtype=np.uint8)
    clean[ink] = min(gray, 160)
    return noisy, clean


def _signature_alpha(signature: npt.NDArray[np.generic]) -> F32:
    """Ink coverage of a clean scanned signature (dark on light): paper and its texture map to 0."""
    img = np.asarray(signature)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"signature must be a (H, W) or (H, W, 3) image, got shape {np.shape(signature)}")
    gray = img.astype(np.float32)
    sample = gray[:: max(1, gray.shape[0] // 64), :: max(1, gray.shape[1] // 64)]  # robust levels, cheaply
    paper = float(np.percentile(sample, 75))
    ink = float(min(gray.min() + 10.0, paper - 40.0))
    alpha = (np.float32(paper) - gray) / np.float32(max(paper - ink, 30.0))
    # Below ~15% is paper texture or scanner noise of the source, not ink.
    alpha = np.clip((alpha - np.float32(0.15)) / np.float32(0.85), 0.0, 1.0)
    box = _bbox(alpha >= MASK_THRESHOLD)
    if box is None:
        raise ValueError("signature has no ink (expected dark ink on light paper)")
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(alpha[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2])


def _masked_alpha(signature: npt.NDArray[np.generic], ink: Mask) -> F32:
    """Ink coverage of a clean signature inside its ink mask; exactly 0 outside it.

    Darkness is measured from the median paper outside the mask to the darkest ink, with a floor
    just above MASK_THRESHOLD so that every mask pixel stays in the composited example's mask.
    """
    img = np.asarray(signature)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    mask = np.asarray(ink)
    if img.ndim != 2 or min(img.shape) < 2 or mask.shape != img.shape or mask.dtype != np.bool_:
        raise ValueError(f"ink must be a bool mask of the signature's shape {img.shape}, got {mask.dtype} {mask.shape}")
    box = _bbox(mask)
    if box is None:
        raise ValueError("signature has no ink (its ink mask is empty)")
    gray = img.astype(np.float32)
    paper = float(np.median(gray[~mask])) if not mask.all() else 255.0
    darkest = float(np.percentile(gray[mask], 1.0))
    alpha = np.clip((np.float32(paper) - gray) / np.float32(max(paper - darkest, 30.0)), MASK_THRESHOLD + 0.1, 1.0)
    alpha = np.where(mask, alpha, np.float32(0.0)).astype(np.float32)
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(alpha[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2])


def cleaner_example(
    index: int,
    *,
    size: tuple[int, int] = (128, 384),
    seed: int = 0,
    signature: npt.NDArray[np.generic] | None = None,
    ink: Mask | None = None,
) -> tuple[U8, Mask]:
    """One signature over a patch of document clutter: (uint8 noisy image of ``size``, bool ink mask).

    Clutter: printed text lines, a form line with its label, part of a stamp, paper texture; then
    blur, noise and JPEG. The signature is a synthetic writer's, or ``signature`` (a clean uint8
    image, dark ink on light paper, any size) rescaled into the patch. ``ink`` (the signature's
    boolean ink mask, e.g. :func:`inkproof.preprocess.ink_mask`) restricts its coverage to that mask,
    so the source's paper, whatever its tone or texture, never becomes ink. Deterministic by (seed, index).
    """
    _check_int("index", index, 0, 2**63 - 1)
    _check_int("seed", seed, 0, 2**63 - 1)
    if not isinstance(size, tuple | list) or len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    H, W = _check_int("size[0]", size[0], 32, 4096), _check_int("size[1]", size[1], 32, 4096)
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, _KIND_CLEANER]))
    paper_gray = float(rng.uniform(205, 250))

    # Signature coverage, placed so that most of it is inside the patch.
    fill_w, fill_h = rng.uniform(0.55, 0.95) * W, rng.uniform(0.5, 0.9) * H
    if signature is None:
        style = _style(seed, int(rng.integers(1, WRITER_POOL + 1)))
        pen = max(1.0, style.pen_width * rng.uniform(0.55, 0.9) * H / 128)
        pieces = _signature_pieces(style, rng, fill_w, fill_h, pen)
        for p in pieces:  # fewer ink levels, fewer polyline runs to draw: a good share of the time
            p.ink = np.round(p.ink * 5.0) / 5.0
        alpha = _ink_alpha(pieces, 2)
    else:
        src = _signature_alpha(signature) if ink is None else _masked_alpha(signature, ink)
        k = min(fill_w / src.shape[1], fill_h / src.shape[0])
        new = (max(2, round(src.shape[1] * k)), max(2, round(src.shape[0] * k)))
        im = Image.fromarray(src).resize(new, Image.Resampling.BILINEAR)
        alpha = np.asarray(
            im.rotate(float(rng.uniform(-4, 4)), Image.Resampling.BILINEAR, expand=True), dtype=np.float32
        )
        alpha = np.clip(alpha, 0.0, 1.0)
    sh, sw = alpha.shape
    sx = int(rng.integers(min(0, W - sw), max(W - sw, 0) + 1))
    sy = int(rng.integers(min(0, H - sh), max(H - sh, 0) + 1))
    sig = np.zeros((H, W), dtype=np.float32)
    ys0, xs0 = max(sy, 0), max(sx, 0)
    ys1, xs1 = min(sy + sh, H), min(sx + sw, W)
    sig[ys0:ys1, xs0:xs1] = alpha[ys0 - sy : ys1 - sy, xs0 - sx : xs1 - sx]
    ink_box = _bbox(sig >= MASK_THRESHOLD) or (0, 0, W, H)

    # Clutter around and under it.
    layer = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(layer)
    text_size = int(rng.integers(max(8, H // 12), max(10, H // 5)))
    pitch = text_size * rng.uniform(1.2, 1.7)
    y = rng.uniform(-text_size, H * 0.6)
    x = float(rng.uniform(-W * 0.5, W * 0.3))
    for _ in range(int(rng.integers(0, 4))):  # a few lines of a paragraph
        _paste_text(layer, x, y, " ".join(_prose(rng, 2 + int(W / text_size / 3), plain=True)), text_size)
        y += pitch
    line_y = int(np.clip(ink_box[3] - rng.uniform(-0.1, 0.35) * (ink_box[3] - ink_box[1]), 2, H - 3))
    if rng.random() < 0.65:  # the signature line, often with its label
        x0 = int(rng.uniform(-10, W * 0.3))
        draw.rectangle((x0, line_y, int(rng.uniform(W * 0.7, W + 10)), line_y + int(rng.integers(1, 3)) - 1), fill=255)
        if rng.random() < 0.5:
            label = _pick(rng, ("Signature:", "Signed:", "By:"))
            _paste_text(layer, x0 - _word_length(text_size, label) - 6, line_y - text_size, label, text_size)
        if rng.random() < 0.4:
            _paste_text(layer, x0, line_y + 4, _person(rng), text_size)
    if rng.random() < 0.12:  # a table rule
        x = int(rng.integers(W))
        draw.rectangle((x, 0, x + int(rng.integers(1, 3)) - 1, H), fill=255)
    stamp = None
    if rng.random() < 0.25:  # part of a stamp
        simg = Image.new("L", (W, H), 0)
        sd = ImageDraw.Draw(simg)
        r = float(rng.uniform(0.4, 1.0) * H)
        cx, cy = float(rng.uniform(0, W)), float(rng.uniform(0, H))
        thick = int(rng.integers(2, 4))
        sd.ellipse((cx - r, cy - r, cx + r, cy + r), outline=255, width=thick)
        sd.ellipse((cx - 0.8 * r, cy - 0.8 * r, cx + 0.8 * r, cy + 0.8 * r), outline=255, width=max(1, thick - 1))
        sd.text((cx, cy), _pick(rng, _STAMP_WORDS), fill=255, font=_font(max(8, int(r * 0.3))), anchor="mm")
        stamp = np.asarray(simg, dtype=np.float32) * np.float32(rng.uniform(0.4, 0.85) / 255)

    paper = _smooth_field(rng, (H, W), (max(2, H // 48), max(2, W // 48)), rng.uniform(1.0, 4.0))
    paper += np.float32(paper_gray)
    paper += _gaussian(rng, (H, W)) * np.float32(rng.uniform(0.5, 2.0))
    canvas = paper - np.asarray(layer, dtype=np.float32) * np.float32(1 / 255) * (
        paper - np.float32(rng.uniform(5, 70))
    )
    if stamp is not None:
        np.minimum(canvas, paper - stamp * (paper - np.float32(rng.uniform(60, 150))), out=canvas)
    np.minimum(canvas, paper - sig * (paper - np.float32(rng.uniform(15, 120))), out=canvas)

    img = _blur(Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8)), rng.uniform(0.0, 1.0))
    arr = np.asarray(img, dtype=np.float32) + _gaussian(rng, (H, W)) * np.float32(rng.uniform(0.5, 6.0))
    out = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        out = _jpeg(out, int(rng.integers(40, 91)))
    return out, sig >= MASK_THRESHOLD


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

_OWN_PAGE = re.compile(r"^page_\d{5,}\.png(\.tmp)?$")


def _save_png(image: Image.Image, path: Path) -> None:
    # Write then rename: an interrupted run never leaves a truncated PNG under the final name.
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def _colour_mask(page: SyntheticPage) -> Image.Image:
    # Handwriting wins where it crosses print: it is what a cleaner has to keep.
    labels = np.zeros(page.image.shape, dtype=np.uint8)
    labels[page.print_mask] = 2
    labels[page.ink_mask] = 1
    palette = np.array([rgb for _, rgb in MASK_CLASSES], dtype=np.uint8)
    return Image.fromarray(palette[labels], mode="RGB")


def write_detection_dataset(
    out_dir: str | Path, pages: int, config: PageConfig = PageConfig(), *, progress: bool = False
) -> Path:
    """Write ``pages`` pages as ``out_dir/pages/page_00000.png`` ..., their boxes and masks.

    * ``boxes.csv``: ``image,x0,y0,x1,y1,label,writer`` (image relative to ``out_dir``, x1/y1
      exclusive, writer empty for non-handwriting) -- the Tobacco800 convention plus ``writer``.
    * ``masks/page_00000.png``: RGB class masks, colours in ``colors.csv`` (``class,R,G,B``):
      background, handwriting (wins where it crosses print), print.

    Page ``i`` is ``render_page(i, config)``. Re-running into the same folder overwrites it cleanly.
    """
    count = _check_int("pages", pages, 0, 10**7)
    root = Path(out_dir)
    page_dir, mask_dir = root / "pages", root / "masks"
    page_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    names = [f"page_{i:05d}.png" for i in range(count)]
    for folder in (page_dir, mask_dir):
        for entry in folder.iterdir():
            if entry.is_file() and _OWN_PAGE.match(entry.name) and entry.name not in names:
                entry.unlink()
    rows: list[list[str | int]] = []

    def write_all(advance: Callable[[], None] | None) -> None:
        for i, name in enumerate(names):
            page = render_page(i, config)
            _save_png(Image.fromarray(page.image), page_dir / name)
            _save_png(_colour_mask(page), mask_dir / name)
            for f in page.fields:
                rows.append([f"pages/{name}", *f.box, f.label, f.writer or ""])
            if advance is not None:
                advance()

    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        ) as bar:
            task = bar.add_task("synthetic pages", total=count)
            write_all(lambda: bar.advance(task))
    else:
        write_all(None)

    with open(root / "boxes.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["image", "x0", "y0", "x1", "y1", "label", "writer"])
        writer.writerows(rows)
    with open(root / "colors.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["class", "R", "G", "B"])
        writer.writerows([name, *rgb] for name, rgb in MASK_CLASSES)
    readme = (
        "Synthetic scanned document pages -- no real document, person or dataset was used.\n\n"
        "Generated by inkproof.document.synthetic.write_detection_dataset.\n"
        "pages/*.png: grayscale pages; boxes.csv: image,x0,y0,x1,y1,label,writer (x1/y1 exclusive);\n"
        f"labels: {', '.join(FIELD_CLASSES)}; masks/*.png: RGB class masks, colours in colors.csv.\n\n"
        "Config:\n" + json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True) + "\n"
    )
    (root / "README.txt").write_text(readme, encoding="utf-8")
    return root


#: The colour of each field class wherever fields are drawn: masks, annotated pages, reports, the web UI.
FIELD_COLOURS = {
    "signature": (220, 30, 30),
    "initials": (240, 140, 0),
    "handwritten_date": (20, 160, 40),
    "redaction": (170, 40, 200),
    "logo": (30, 90, 230),
}


def contact_sheet(out_path: str | Path, *, pages: int = 4, seed: int = 0) -> Path:
    """A PNG of ``pages`` synthetic pages side by side, downscaled, with coloured labelled boxes."""
    count = _check_int("pages", pages, 1, 16)
    config = PageConfig(seed=seed)
    scale = 0.36
    cell_w, cell_h = round(config.width * scale), round(config.height * scale)
    gap, header = 12, 30
    sheet = Image.new("RGB", (count * (cell_w + gap) + gap, header + cell_h + 2 * gap + 16), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font, small = _font(13), _font(10)
    x = gap
    for label, rgb in FIELD_COLOURS.items():
        draw.rectangle((x, 9, x + 12, 21), outline=rgb, width=2)
        draw.text((x + 17, 8), label, fill=rgb, font=font)
        x += 40 + int(font.getlength(label))
    draw.text(
        (x + 10, 8), f"synthetic pages (seed {seed}, {config.width}x{config.height})", fill=(90, 90, 90), font=font
    )
    for i in range(count):
        page = render_page(i, config)
        thumb = Image.fromarray(page.image).resize((cell_w, cell_h), Image.Resampling.LANCZOS).convert("RGB")
        d = ImageDraw.Draw(thumb)
        for f in page.fields:
            x0, y0, x1, y1 = (round(v * scale) for v in f.box)
            rgb = FIELD_COLOURS[f.label]
            d.rectangle((x0 - 1, y0 - 1, x1, y1), outline=rgb, width=2)
            text = f.writer or f.label
            d.text((x0, max(y0 - 12, 0)), text, fill=rgb, font=small)
        left = gap + i * (cell_w + gap)
        sheet.paste(thumb, (left, header))
        draw.rectangle((left - 1, header - 1, left + cell_w, header + cell_h), outline=(150, 150, 150))
        draw.text((left, header + cell_h + 4), f"page {i}: {len(page.fields)} boxes", fill=(60, 60, 60), font=font)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A fixed palette (grays plus the box colours) keeps the sheet small and the boxes in their colours.
    colours = [(v, v, v) for v in range(0, 256, 8)] + [(255, 255, 255), *FIELD_COLOURS.values()]
    palette = Image.new("P", (1, 1))
    palette.putpalette([c for rgb in colours for c in rgb] + [0, 0, 0] * (256 - len(colours)))
    sheet.quantize(palette=palette, dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
    return out

"""Printed matter: pseudo-text vocabulary, names, amounts and dates, and Pillow-font text pasted
into coverage patches."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inkproof.document.synthetic.config import Font

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

"""Identifiers, free-text fields and numbers checked before they reach the database or a model.

The same rules on SQLite and PostgreSQL: PostgreSQL refuses NUL characters and strings longer than
a ``VARCHAR(255)`` and integers beyond 32 bits, SQLite stores almost anything; both used to turn
such input into a driver error (a 500 in the service). Text is normalised with Unicode NFKC first,
so full-width or compatibility look-alikes (full-width "W001") become the plain id ("W001"); control,
format (zero-width), private-use and unassigned characters are refused rather than stored, so two
ids that print the same are the same id.
"""

from __future__ import annotations

import math
import unicodedata

from inkproof.errors import InkproofError

#: Longest external id, display name, reviewer or key name (the columns are VARCHAR(255)).
MAX_TEXT_LENGTH = 255
#: Row ids are 32-bit INTEGER columns on PostgreSQL (and SQLite rejects integers beyond 64 bits).
MAX_ROW_ID = 2**31 - 1
# Unicode categories never accepted: control, format (zero-width, bidi marks), surrogates,
# private use, unassigned, line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# "/" and "\\" cannot be addressed in a URL path segment (/api/v1/writers/{id}).
_REFUSED_IN_IDS = frozenset({"/", "\\"})


class InvalidFieldError(InkproofError, ValueError):
    """A text or numeric field that breaks the rules above (a 422 in the service)."""


def _text(value: object, what: str, *, allow_empty: bool, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(f"{what} must be text")
    text = unicodedata.normalize("NFKC", value).strip()
    if not text and not allow_empty:
        raise InvalidFieldError(f"{what} must not be empty")
    if len(text) > max_length:
        raise InvalidFieldError(f"{what} is longer than {max_length} characters ({len(text)})")
    for position, char in enumerate(text):
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES:
            raise InvalidFieldError(
                f"{what} contains a control or invisible character (U+{ord(char):04X} at position {position + 1})"
            )
        if category.startswith("Z") and char != " ":
            raise InvalidFieldError(f"{what} contains an unusual space (U+{ord(char):04X} at position {position + 1})")
    return text


def clean_identifier(value: object, what: str = "external id") -> str:
    """An external id: NFKC-normalised, 1-255 printable characters, no "/" or "\\", not "." or "..";
    runs of spaces become one (ids that look alike are alike)."""
    text = _text(value, what, allow_empty=False, max_length=MAX_TEXT_LENGTH)
    text = " ".join(part for part in text.split(" ") if part)
    bad = sorted(_REFUSED_IN_IDS.intersection(text))
    if bad:
        raise InvalidFieldError(f"{what} must not contain {' or '.join(repr(c) for c in bad)}")
    if text in (".", ".."):
        raise InvalidFieldError(f"{what} must not be {text!r}")
    return text


def clean_text(value: object, what: str, *, allow_empty: bool = False, max_length: int = MAX_TEXT_LENGTH) -> str:
    """A name or free-text field: NFKC-normalised, printable, at most ``max_length`` characters."""
    return _text(value, what, allow_empty=allow_empty, max_length=max_length)


def clean_row_id(value: object, what: str = "id") -> int:
    """A database row id in 1..2^31-1 (the range both databases can hold)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFieldError(f"{what} must be an integer")
    if not 1 <= value <= MAX_ROW_ID:
        raise InvalidFieldError(f"{what} must be between 1 and {MAX_ROW_ID}")
    return value


def clean_threshold(value: float, what: str = "threshold") -> float:
    """A decision threshold: finite (nan and inf would make every decision the same)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidFieldError(f"{what} must be a number") from None
    if not math.isfinite(number):
        raise InvalidFieldError(f"{what} must be a finite number")
    return number


__all__ = [
    "MAX_ROW_ID",
    "MAX_TEXT_LENGTH",
    "InvalidFieldError",
    "clean_identifier",
    "clean_row_id",
    "clean_text",
    "clean_threshold",
]

"""Public types and constants of the synthetic pages: what a page is configured with and what it carries."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import ImageFont

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
    # Unboxed handwriting and a script wordmark (hard negatives for the detector, synthetic/negatives.py).
    hard_negatives: float = 0.0
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
            "hard_negatives",
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


#: The colour of each field class wherever fields are drawn: masks, annotated pages, reports, the web UI.
FIELD_COLOURS = {
    "signature": (220, 30, 30),
    "initials": (240, 140, 0),
    "handwritten_date": (20, 160, 40),
    "redaction": (170, 40, 200),
    "logo": (30, 90, 230),
}

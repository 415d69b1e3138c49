"""Field rules (inkproof.validation) and the library checks that use them."""

from __future__ import annotations

import io
import math
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inkproof.errors import InvalidImageError, NoInkError
from inkproof.imaging import load_image
from inkproof.validation import (
    MAX_ROW_ID,
    InvalidFieldError,
    clean_identifier,
    clean_row_id,
    clean_text,
    clean_threshold,
)
from tests.helpers import draw_scribble


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("W001", "W001"),
        ("  alice  ", "alice"),
        ("\uff37\uff10\uff10\uff11", "W001"),
        ("Zoë Ø-1", "Zoë Ø-1"),
        ("a\u00a0\u3000b", "a b"),
    ],
)
def test_identifiers_are_normalised(value: str, expected: str) -> None:
    assert clean_identifier(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "   ", "W001\u200b", "W\x00", "\u202eW", "a/b", "a\\b", ".", "..", "x" * 256, "a\u2028b"],
)
def test_bad_identifiers_are_refused(value: str) -> None:
    with pytest.raises(InvalidFieldError):
        clean_identifier(value)


def test_text_rules() -> None:
    assert clean_text("", "name", allow_empty=True) == ""
    with pytest.raises(InvalidFieldError, match="control or invisible"):
        clean_text("qa\x00", "reviewer")
    with pytest.raises(InvalidFieldError, match="longer than 255"):
        clean_text("r" * 256, "reviewer")


def test_row_ids_and_thresholds() -> None:
    assert clean_row_id(MAX_ROW_ID) == MAX_ROW_ID
    for bad in (0, -1, MAX_ROW_ID + 1, 10**20, True):
        with pytest.raises(InvalidFieldError):
            clean_row_id(bad)
    assert clean_threshold(0.25) == 0.25
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(InvalidFieldError):
            clean_threshold(bad)


def test_eps_is_never_decoded() -> None:
    buffer = io.BytesIO()
    Image.fromarray(draw_scribble()).save(buffer, format="EPS")
    with pytest.raises(InvalidImageError, match="unrecognised format"):
        load_image(buffer.getvalue())


def test_blank_images_cannot_be_verified(onnx_model: Path) -> None:
    from inkproof.verifier import Verifier

    white = np.full((120, 300), 255, np.uint8)
    with Verifier(onnx_model, device="cpu") as verifier:
        with pytest.raises(NoInkError, match="no signature ink found"):
            verifier.verify(white, white)
        with pytest.raises(NoInkError):
            verifier.verify(draw_scribble(), np.zeros((1, 100_000), np.uint8))
        with pytest.raises(InvalidFieldError):
            verifier.verify(draw_scribble(), draw_scribble(seed=1), threshold=math.nan)
        assert verifier.verify(draw_scribble(), draw_scribble(seed=1)).decision in ("genuine", "forgery")


def test_new_sqlite_stores_are_private(tmp_path: Path) -> None:
    from inkproof.store import open_database

    open_database(tmp_path / "store.db").dispose()
    assert stat.S_IMODE((tmp_path / "store.db").stat().st_mode) == 0o600

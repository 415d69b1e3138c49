from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inkproof.errors import InvalidImageError
from inkproof.preprocess import (
    PREPROCESS_VERSION,
    PreprocessConfig,
    ink_mask,
    otsu_threshold,
    preprocess,
    preprocess_signature,
)
from tests.helpers import draw_scribble


def _on_paper(
    ink: np.ndarray, paper: int, page: tuple[int, int] = (200, 400), at: tuple[int, int] = (40, 50)
) -> np.ndarray:
    """Place a scribble (drawn on white) onto paper of the given level at a position."""
    page_array = np.full(page, paper, dtype=np.uint8)
    h, w = ink.shape
    region = page_array[at[0] : at[0] + h, at[1] : at[1] + w]
    page_array[at[0] : at[0] + h, at[1] : at[1] + w] = np.minimum(region, ink)
    return page_array


def test_output_shape_range_and_inversion() -> None:
    out = preprocess_signature(draw_scribble())
    assert out.shape == (150, 220)
    assert out.dtype == np.float32
    assert out.min() == 0.0
    assert 0.5 < out.max() <= 1.0
    # Background is exactly zero and most of the canvas is background.
    assert (out == 0).mean() > 0.8


def test_paper_tone_does_not_change_the_input() -> None:
    # The same strokes on gray paper (as CEDAR genuine scans) and on white paper (as its forgeries).
    ink = draw_scribble(paper=255)
    on_gray = preprocess_signature(_on_paper(ink, 238))
    on_white = preprocess_signature(_on_paper(ink, 254))
    assert np.abs(on_gray - on_white).max() < 0.05


def test_ink_is_centred_by_centre_of_mass() -> None:
    ink = draw_scribble(width=120, height=60, paper=255)
    corner = _on_paper(ink, 250, page=(600, 900), at=(10, 10))
    out = preprocess_signature(corner, PreprocessConfig(margin=0.3))
    rows, cols = np.indices(out.shape)
    total = out.sum()
    assert abs((rows * out).sum() / total - out.shape[0] / 2) < 2.0
    assert abs((cols * out).sum() / total - out.shape[1] / 2) < 2.0


def test_position_on_the_page_does_not_matter() -> None:
    ink = draw_scribble(paper=255)
    first = preprocess_signature(_on_paper(ink, 245, page=(300, 600), at=(10, 10)))
    second = preprocess_signature(_on_paper(ink, 245, page=(300, 600), at=(150, 250)))
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_blank_image_gives_zeros() -> None:
    out = preprocess_signature(np.full((100, 200), 240, dtype=np.uint8))
    assert out.shape == (150, 220)
    assert not out.any()


@pytest.mark.parametrize(("ink", "darkest"), [("normalized", 1.0), ("gray", 1.0 - 30 / 255), ("binary", 1.0)])
def test_ink_modes(ink: str, darkest: float) -> None:
    # The scribble's ink level is 30: "gray" keeps it, the others stretch it to full strength.
    out = preprocess_signature(draw_scribble(paper=255), PreprocessConfig(ink=ink))  # type: ignore[arg-type]
    assert out.max() == pytest.approx(darkest, abs=0.02)


def test_configurable_size_and_sigver_canvas() -> None:
    assert preprocess_signature(draw_scribble(), PreprocessConfig(height=64, width=96)).shape == (64, 96)
    canvas = PreprocessConfig(canvas=(400, 700))
    out = preprocess_signature(draw_scribble(), canvas)
    assert out.shape == (150, 220)
    assert out.any()
    # On a fixed canvas the signature keeps its physical size: a bigger one covers more output.
    small = preprocess_signature(draw_scribble(width=150, height=60), canvas)
    large = preprocess_signature(draw_scribble(width=600, height=240), canvas)
    assert (large > 0).sum() > (small > 0).sum()


def test_signature_larger_than_canvas_is_scaled_down() -> None:
    out = preprocess_signature(draw_scribble(width=900, height=300), PreprocessConfig(canvas=(100, 150)))
    assert out.shape == (150, 220)
    assert out.any()


def test_pure_and_deterministic() -> None:
    image = draw_scribble()
    before = image.copy()
    first = preprocess_signature(image)
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(first, preprocess_signature(image))


def test_rejects_unloaded_input() -> None:
    with pytest.raises(ValueError, match="2-D uint8"):
        preprocess_signature(np.zeros((10, 10), dtype=np.float32))


def test_preprocess_loads_safely(tmp_path: Path) -> None:
    path = tmp_path / "sig.png"
    Image.fromarray(draw_scribble()).save(path)
    np.testing.assert_array_equal(preprocess(path), preprocess_signature(draw_scribble()))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(InvalidImageError):
        preprocess(bad)


def test_otsu_separates_two_levels() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(40, 5, 500), rng.normal(220, 5, 5000)]).clip(0, 255).astype(np.uint8)
    threshold = otsu_threshold(values.reshape(50, 110))
    assert 60 < threshold < 200
    mask = ink_mask(draw_scribble())
    assert 0.01 < mask.mean() < 0.3


def test_config_round_trip_version_and_fingerprint() -> None:
    config = PreprocessConfig(height=100, width=200, canvas=(300, 500), ink="gray")
    data = config.to_dict()
    assert data["version"] == PREPROCESS_VERSION
    assert PreprocessConfig.from_dict(data) == config
    assert config.fingerprint() == PreprocessConfig.from_dict(data).fingerprint()
    assert config.fingerprint() != PreprocessConfig().fingerprint()
    with pytest.raises(ValueError, match="version"):
        PreprocessConfig.from_dict({**data, "version": "0"})
    with pytest.raises(ValueError, match="unknown preprocessing parameters"):
        PreprocessConfig.from_dict({**data, "sharpen": True})


@pytest.mark.parametrize(
    "kwargs",
    [{"height": 4}, {"margin": 0.6}, {"ink": "colour"}, {"blur_sigma": -1.0}, {"canvas": (4, 4)}],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        PreprocessConfig(**kwargs)  # type: ignore[arg-type]

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inkproof.errors import InvalidImageError
from inkproof.imaging import load_image
from tests.helpers import draw_scribble


def _encode(image: Image.Image, format: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **params)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a huge size, followed by a tiny IDAT: a bomb."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.fixture
def gray() -> np.ndarray:
    return draw_scribble()


# --- accepted inputs -----------------------------------------------------------------------


def test_path_bytes_pil_and_array_give_the_same_pixels(tmp_path: Path, gray: np.ndarray) -> None:
    path = tmp_path / "sig.png"
    Image.fromarray(gray).save(path)
    from_path = load_image(path)
    assert from_path.dtype == np.uint8
    assert from_path.shape == gray.shape
    np.testing.assert_array_equal(from_path, gray)
    np.testing.assert_array_equal(load_image(str(path)), gray)
    np.testing.assert_array_equal(load_image(path.read_bytes()), gray)
    np.testing.assert_array_equal(load_image(Image.fromarray(gray)), gray)
    np.testing.assert_array_equal(load_image(gray), gray)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "CMYK"])
def test_supported_modes_become_grayscale(mode: str, gray: np.ndarray) -> None:
    base = Image.fromarray(gray)
    if mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode == "I":
        image = Image.fromarray(gray.astype(np.int32) * 257)
        assert image.mode == "I"
    else:
        image = base.convert(mode)
    loaded = load_image(_encode(image, "TIFF" if mode in ("CMYK", "I") else "PNG"))
    assert loaded.shape == gray.shape
    assert loaded.dtype == np.uint8
    tolerance = 128 if mode == "1" else 2  # mode "1" dithers
    assert np.abs(loaded.astype(int) - gray.astype(int)).mean() < tolerance
    assert loaded.min() < 100 < loaded.max()


def test_transparent_background_becomes_white_paper() -> None:
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[5:15, 10:20] = (0, 0, 0, 255)  # opaque black ink on a fully transparent (black) layer
    loaded = load_image(_encode(Image.fromarray(rgba)))
    assert loaded[0, 0] == 255
    assert loaded[10, 15] == 0


def test_multi_page_tiff_pages(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((10, 12), value, dtype=np.uint8)) for value in (10, 200, 90)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert load_image(path)[0, 0] == 10
    assert load_image(path, page=1)[0, 0] == 200
    assert load_image(path, page=2)[0, 0] == 90
    with pytest.raises(InvalidImageError, match="page 3 requested but the image has 3"):
        load_image(path, page=3)


def test_exif_orientation_is_applied() -> None:
    image = Image.fromarray(np.zeros((10, 20), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    loaded = load_image(_encode(image, "JPEG", exif=exif))
    assert loaded.shape == (20, 10)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.ones((4, 5), dtype=bool), 255),
        (np.full((4, 5), 0.5, dtype=np.float32), 128),
        (np.full((4, 5), 65535, dtype=np.uint16), 255),
        (np.full((4, 5, 1), 7, dtype=np.uint8), 7),
        (np.full((4, 5, 3), 9, dtype=np.uint8), 9),
    ],
)
def test_numpy_arrays(array: np.ndarray, expected: int) -> None:
    loaded = load_image(array)
    assert loaded.shape == (4, 5)
    assert int(loaded[0, 0]) == expected


# --- refused inputs: each gets the typed error with the input named -------------------------


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image")
    with pytest.raises(InvalidImageError, match="not an image") as info:
        load_image(path)
    assert info.value.source == str(path)


def test_truncated_file(gray: np.ndarray) -> None:
    data = _encode(Image.fromarray(gray))
    with pytest.raises(InvalidImageError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def test_truncated_jpeg(gray: np.ndarray) -> None:
    data = _encode(Image.fromarray(gray), "JPEG")
    with pytest.raises(InvalidImageError, match="corrupt or truncated"):
        load_image(data[: len(data) // 3])


def test_empty_bytes_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="0 bytes"):
        load_image(b"")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="0 bytes"):
        load_image(empty)


def test_zero_size_array() -> None:
    with pytest.raises(InvalidImageError, match="zero-size"):
        load_image(np.zeros((0, 10), dtype=np.uint8))


def test_decompression_bomb_refused_before_decoding() -> None:
    bomb = _png_header_only(50_000, 50_000)
    with pytest.raises(InvalidImageError, match=r"exceeds the limit|decompression bomb"):
        load_image(bomb)


def test_pixel_limit_is_configurable(gray: np.ndarray) -> None:
    data = _encode(Image.fromarray(gray))
    with pytest.raises(InvalidImageError, match="exceeds the limit of 1000"):
        load_image(data, max_pixels=1000)
    assert load_image(data, max_pixels=gray.size).shape == gray.shape


def test_byte_limit(gray: np.ndarray) -> None:
    data = _encode(Image.fromarray(gray))
    with pytest.raises(InvalidImageError, match="bytes exceeds the limit"):
        load_image(data, max_bytes=10)


@pytest.mark.parametrize("mode", ["F", "HSV"])
def test_unsupported_modes(mode: str) -> None:
    image = Image.new(mode, (8, 8))
    with pytest.raises(InvalidImageError, match="unsupported mode"):
        load_image(image)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="file not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="not a regular file"):
        load_image(tmp_path)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((3, 4, 2), dtype=np.uint8),
        np.zeros((2, 3, 4, 5), dtype=np.uint8),
        np.full((4, 4), np.nan, dtype=np.float32),
        np.full((4, 4), 2.0, dtype=np.float64),
        np.zeros((4, 4), dtype=np.int64),
    ],
)
def test_bad_arrays(array: np.ndarray) -> None:
    with pytest.raises(InvalidImageError):
        load_image(array)


def test_wrong_type_and_negative_page() -> None:
    with pytest.raises(InvalidImageError, match="expected a path"):
        load_image(12345)  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError, match="page must be >= 0"):
        load_image(np.zeros((4, 4), dtype=np.uint8), page=-1)


def test_invalid_image_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - callers may catch the builtin
        load_image(b"x")

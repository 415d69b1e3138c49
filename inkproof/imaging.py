"""Safe image loading: every surface (library, CLI, service, document pipeline) reads images here.

``load_image`` accepts a path, raw bytes, a PIL image or a numpy array and returns an 8-bit
grayscale array. Anything that cannot be used becomes an :class:`InvalidImageError` that names
the input and the reason, before any large allocation happens: the pixel count is checked from
the header, so a decompression bomb is refused without being decoded.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeAlias

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inkproof.errors import InvalidImageError

ImageSource: TypeAlias = "str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | np.ndarray"

#: Pillow formats that are ever decoded: raster formats with pure-Python/C decoders. Everything
#: else (EPS and PostScript, which Pillow hands to Ghostscript; exotic plugins) is refused unread.
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF", "PPM")
#: What the REST service accepts (its documented upload types).
SERVICE_IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "BMP", "WEBP")

#: Default pixel limit: an A4 page at 600 dpi (35 MP) passes, a 50,000 x 50,000 bomb does not.
DEFAULT_MAX_PIXELS = 64_000_000

# Modes that can be turned into grayscale without guessing a value range.
_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_COLOUR_MODES = {"RGB", "RGBX", "CMYK", "YCbCr"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
SUPPORTED_MODES = frozenset({"1", "L", "P"} | _ALPHA_MODES | _COLOUR_MODES | _SIXTEEN_BIT_MODES | {"I"})


def open_image(handle: IO[bytes], formats: tuple[str, ...] = IMAGE_FORMATS) -> Image.Image:
    """Pillow's ``Image.open`` limited to ``formats`` (for readers outside this module)."""
    return _open(handle, formats)


def describe_source(source: object) -> str:
    """A short, human-readable name of an image source, used in error messages."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<bytes: {len(source)} B>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.width}x{source.height}>"
    if isinstance(source, np.ndarray):
        return f"<array {source.dtype} {'x'.join(map(str, source.shape))}>"
    return f"<{type(source).__name__}>"


def load_image(
    source: ImageSource,
    *,
    page: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
    formats: tuple[str, ...] = IMAGE_FORMATS,
) -> np.ndarray:
    """Load ``source`` as an 8-bit grayscale array of shape (height, width).

    ``page`` selects the frame of a multi-page file (TIFF, GIF); transparent pixels become white
    paper; 16-bit images are scaled to 8 bits; EXIF orientation is applied. Raises
    :class:`InvalidImageError` for anything unusable.
    """
    name = describe_source(source)
    if page < 0:
        raise InvalidImageError(name, f"page must be >= 0, got {page}")
    if isinstance(source, np.ndarray):
        return _array_to_gray(source, name, max_pixels)
    if isinstance(source, Image.Image):
        return _pil_to_gray(source, name, page, max_pixels)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_byte_count(len(data), name, max_bytes)
        return _decode(io.BytesIO(data), name, page, max_pixels, formats)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise InvalidImageError(name, "file not found")
        if not path.is_file():
            raise InvalidImageError(name, "not a regular file")
        _check_byte_count(path.stat().st_size, name, max_bytes)
        with path.open("rb") as handle:
            return _decode(handle, name, page, max_pixels, formats)
    raise InvalidImageError(name, "expected a path, bytes, a PIL image or a numpy array")


_PILLOW_LIMIT = threading.Lock()


@contextmanager
def _opening() -> Iterator[None]:
    """Open image headers with Pillow's own decompression-bomb check lifted.

    inkproof checks the pixel count itself, before decoding, with the caller's limit and its own
    message; Pillow's check would otherwise refuse anything above 179 MP whatever limit the
    caller chose, in its own words. Other threads opening images meanwhile skip Pillow's check
    too, which is safe only because every decode in inkproof goes through ``_check_pixel_count``.
    """
    with _PILLOW_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


_STDERR = threading.Lock()


@contextmanager
def _quiet_libtiff(image: Image.Image) -> Iterator[None]:
    """Silence libtiff while a TIFF decodes: it prints warnings and errors ("Fax4Decode: Bad code
    word ...") straight to file descriptor 2, which Python cannot catch; the failure itself still
    arrives as an exception. One lock keeps concurrent decodes from saving each other's null fd."""
    if image.format != "TIFF":
        yield
        return
    with _STDERR:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to silence
            yield
            return
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, 2)
            finally:
                os.close(null)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def image_size(source: str | os.PathLike[str] | bytes) -> tuple[int, int]:
    """(width, height) from the header alone, without decoding pixels."""
    width, height, _, _ = image_header(source)
    return width, height


def image_header(source: str | os.PathLike[str] | bytes) -> tuple[int, int, int, float | None]:
    """(width, height, frames, dpi) from the header alone, without decoding pixels; the size is of
    the first frame, dpi is None when the file does not say."""
    name = describe_source(source)
    try:
        handle: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes) else Path(source).open("rb")  # noqa: SIM115
        with handle, _open(handle, IMAGE_FORMATS) as im:
            resolution = im.info.get("dpi")
            dpi = float(resolution[0]) if isinstance(resolution, tuple) and resolution and resolution[0] else None
            return im.width, im.height, int(getattr(im, "n_frames", 1)), dpi
    except UnidentifiedImageError:
        raise InvalidImageError(name, "not an image (unrecognised format)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImageError(name, f"corrupt or truncated image ({one_line(exc)})") from None


def one_line(exc: BaseException) -> str:
    """An exception's text on one line, without object reprs such as ``<_io.BytesIO object at 0x..>``."""
    import re

    text = re.sub(r"<[^<>]* object at 0x[0-9a-fA-F]+>", "the input", str(exc))
    return " ".join(text.split()) or type(exc).__name__


def _check_byte_count(n_bytes: int, name: str, max_bytes: int | None) -> None:
    if n_bytes == 0:
        raise InvalidImageError(name, "empty input (0 bytes)")
    if max_bytes is not None and n_bytes > max_bytes:
        raise InvalidImageError(name, f"{n_bytes} bytes exceeds the limit of {max_bytes} bytes")


def _check_pixel_count(width: int, height: int, name: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImageError(name, f"zero-size image ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImageError(
            name,
            f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} "
            "(a guard against decompression bombs; a caller can raise the limit)",
        )


def _open(handle: IO[bytes], formats: tuple[str, ...]) -> Image.Image:
    """Image.open restricted to ``formats`` (their plugins registered first: Pillow loads some,
    such as MPO and WebP, only on demand, and ``formats`` does not trigger that), with Pillow's own
    decompression-bomb check lifted (:func:`_opening`): inkproof checks pixels itself."""
    Image.init()
    with _opening():
        return Image.open(handle, formats=formats)


def _decode(handle: IO[bytes], name: str, page: int, max_pixels: int, formats: tuple[str, ...]) -> np.ndarray:
    try:
        with _open(handle, formats) as im:
            return _pil_to_gray(im, name, page, max_pixels)
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(name, "decompression bomb refused (too many pixels)") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError(name, f"not an image (unrecognised format; accepted: {', '.join(formats)})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/EOFError.
        raise InvalidImageError(name, f"corrupt or truncated image ({one_line(exc)})") from exc


def _pil_to_gray(im: Image.Image, name: str, page: int, max_pixels: int) -> np.ndarray:
    n_frames = int(getattr(im, "n_frames", 1))
    if page >= n_frames:
        raise InvalidImageError(name, f"page {page} requested but the image has {n_frames} page(s)")
    if page:
        im.seek(page)
    _check_pixel_count(im.width, im.height, name, max_pixels)
    if im.mode not in SUPPORTED_MODES:
        raise InvalidImageError(name, f"unsupported mode {im.mode!r} (supported: {', '.join(sorted(SUPPORTED_MODES))})")
    try:
        with _quiet_libtiff(im):
            im.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImageError(name, f"corrupt or truncated image ({one_line(exc)})") from exc
    im = ImageOps.exif_transpose(im) or im
    return _to_gray_array(im, name)


def _to_gray_array(im: Image.Image, name: str) -> np.ndarray:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in _ALPHA_MODES:
        rgba = im.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(paper, rgba).convert("L"), dtype=np.uint8).copy()
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        return _sixteen_bit_to_uint8(np.asarray(im), name)
    if mode in _COLOUR_MODES or mode == "1":
        im = im.convert("L")
    return np.asarray(im, dtype=np.uint8).copy()


def _sixteen_bit_to_uint8(values: np.ndarray, name: str) -> np.ndarray:
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise InvalidImageError(name, "integer image with values outside 0..65535")
    # 65535 / 257 = 255: the full 16-bit range maps onto the full 8-bit range.
    return np.round(values / 257.0).astype(np.uint8)


def _array_to_gray(array: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        height, width = array.shape[:2]
    elif array.ndim == 2:
        height, width = array.shape
    else:
        raise InvalidImageError(name, "expected an array of shape (H, W) or (H, W, 1|3|4)")
    _check_pixel_count(width, height, name, max_pixels)
    if array.dtype == np.bool_:
        # As in PIL mode "1": True is white.
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise InvalidImageError(name, "float array contains NaN or infinity")
        if array.min() < 0.0 or array.max() > 1.0:
            raise InvalidImageError(name, "float arrays must hold values in [0, 1]")
        array = np.round(array * 255.0).astype(np.uint8)
    elif array.dtype == np.uint16:
        array = _sixteen_bit_to_uint8(array, name)
    elif array.dtype != np.uint8:
        raise InvalidImageError(name, f"unsupported dtype {array.dtype} (use uint8, uint16, bool or float)")
    if array.ndim == 2:
        return np.ascontiguousarray(array)
    channels = array.shape[2]
    if channels == 1:
        return np.ascontiguousarray(array[:, :, 0])
    # fromarray infers RGB / RGBA from a uint8 (H, W, 3|4) array.
    return _to_gray_array(Image.fromarray(np.ascontiguousarray(array)), name)


def image_digest(gray: np.ndarray) -> str:
    """sha256 of the decoded 8-bit pixels (and shape): the same signature given as a file, bytes
    or an array -- or re-encoded losslessly -- has one digest."""
    digest = hashlib.sha256(f"{gray.shape[0]}x{gray.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(gray, dtype=np.uint8).tobytes())
    return digest.hexdigest()

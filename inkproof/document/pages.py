"""Pages of a document: PNG, JPEG, TIFF (every frame) or PDF (rendered with pypdfium2).

Limits on page count and pixels apply before anything large is decoded or rendered: a PDF page's
size in points times the rendering scale gives its pixels up front, and image frames go through
the same safe loader as signatures. Bad files become :class:`InvalidDocumentError`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from inkproof.errors import InkproofError, InvalidImageError
from inkproof.imaging import describe_source, load_image, open_image

DEFAULT_DPI = 150
DEFAULT_MAX_PAGES = 50
DEFAULT_MAX_PAGE_PIXELS = 40_000_000  # an A3 page at 300 dpi is 17.4 MP


class InvalidDocumentError(InkproofError, ValueError):
    """A document that cannot be read, or that exceeds the page or pixel limits."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True)
class Page:
    index: int  # 0-based
    image: np.ndarray  # uint8 grayscale (H, W)
    dpi: float | None  # resolution when known (PDF rendering, or the image's own tag)
    source: str


def _read(source: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    path = Path(source)
    if not path.is_file():
        raise InvalidDocumentError(str(path), "file not found")
    return path.read_bytes()


def load_pages(
    source: str | os.PathLike[str] | bytes,
    *,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_pixels: int = DEFAULT_MAX_PAGE_PIXELS,
) -> list[Page]:
    """Every page of ``source`` as grayscale arrays (PDFs rendered at ``dpi``)."""
    name = describe_source(source)
    data = _read(source)
    if not data:
        raise InvalidDocumentError(name, "empty input (0 bytes)")
    if data[:5] == b"%PDF-":
        return _pdf_pages(data, name, dpi, max_pages, max_pixels)
    return _image_pages(data, name, max_pages, max_pixels)


def _pdf_pages(data: bytes, name: str, dpi: float, max_pages: int, max_pixels: int) -> list[Page]:
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:
        raise InvalidDocumentError(name, "PDF support needs pypdfium2 (pip install 'inkproof[document]')") from exc
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise InvalidDocumentError(name, f"not a readable PDF ({exc})") from None
    try:
        count = len(document)
        if count == 0:
            raise InvalidDocumentError(name, "the PDF has no pages")
        if count > max_pages:
            raise InvalidDocumentError(name, f"{count} pages exceed the limit of {max_pages}")
        scale = dpi / 72.0
        pages = []
        for index in range(count):
            try:  # a broken page tree (a /Pages node that lists itself) fails here, not on open
                page = document[index]
                width, height = page.get_size()
            except pdfium.PdfiumError as exc:
                raise InvalidDocumentError(name, f"page {index + 1} is not readable ({exc})") from None
            pixels = round(width * scale) * round(height * scale)
            if pixels > max_pixels:
                raise InvalidDocumentError(
                    name, f"page {index + 1} would render to {pixels} pixels at {dpi} dpi (limit {max_pixels})"
                )
            try:
                image = page.render(scale=scale, grayscale=True).to_pil().convert("L")
            except pdfium.PdfiumError as exc:
                raise InvalidDocumentError(name, f"page {index + 1} cannot be rendered ({exc})") from None
            pages.append(Page(index, np.asarray(image, dtype=np.uint8).copy(), float(dpi), name))
            page.close()
        return pages
    finally:
        document.close()


def _image_pages(data: bytes, name: str, max_pages: int, max_pixels: int) -> list[Page]:
    try:
        with open_image(io.BytesIO(data)) as image:
            frames = int(getattr(image, "n_frames", 1))
            resolution = image.info.get("dpi")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = str(exc).split(" <_io.", 1)[0] or type(exc).__name__  # no file-object repr
        raise InvalidDocumentError(name, f"not a PDF or a readable image ({reason})") from None
    if frames > max_pages:
        raise InvalidDocumentError(name, f"{frames} pages exceed the limit of {max_pages}")
    dpi = float(resolution[0]) if resolution and resolution[0] else None
    pages = []
    for index in range(frames):
        try:
            pages.append(Page(index, load_image(data, page=index, max_pixels=max_pixels), dpi, name))
        except InvalidImageError as exc:
            raise InvalidDocumentError(name, f"page {index + 1}: {exc.reason}") from None
    return pages

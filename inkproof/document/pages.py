"""Pages of a document: PNG, JPEG, TIFF (every frame) or PDF (rendered with pypdfium2).

:func:`iter_pages` renders or decodes one page at a time, so a long document costs the memory of
one page, not of all of them; :func:`load_pages` is the same as a list. Limits on page count and
pixels apply before anything large is decoded or rendered: a PDF page's size in points times the
rendering scale gives its pixels up front, and image frames go through the same safe loader as
signatures. Bad files become :class:`InvalidDocumentError` with a one-line reason.

The pixel limit per page is ``max_pixels``, else ``$INKPROOF_MAX_PIXELS``, else
:data:`DEFAULT_MAX_PAGE_PIXELS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inkproof.errors import InkproofError, InvalidImageError
from inkproof.imaging import describe_source, image_header, load_image, one_line

DEFAULT_DPI = 150
DEFAULT_MAX_PAGES = 50
DEFAULT_MAX_PAGE_PIXELS = 40_000_000  # an A3 page at 300 dpi is 17.4 MP
MAX_PIXELS_ENV = "INKPROOF_MAX_PIXELS"
#: What a user can do about a page that is too large (the same words on every surface).
RAISE_LIMIT_HINT = f"raise the limit with --max-pixels or {MAX_PIXELS_ENV}"


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


def page_pixel_limit(max_pixels: int | None = None) -> int:
    """``max_pixels``, else ``$INKPROOF_MAX_PIXELS``, else :data:`DEFAULT_MAX_PAGE_PIXELS`."""
    if max_pixels is not None:
        if isinstance(max_pixels, bool) or int(max_pixels) < 1:
            raise InvalidDocumentError("max_pixels", f"must be a positive number of pixels, got {max_pixels!r}")
        return int(max_pixels)
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_PAGE_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        raise InvalidDocumentError(MAX_PIXELS_ENV, f"expected a number of pixels, got {text!r}") from None
    if value < 1:
        raise InvalidDocumentError(MAX_PIXELS_ENV, f"must be a positive number of pixels, got {text!r}")
    return value


def _checked_path(source: str | os.PathLike[str]) -> Path:
    """``source`` as a readable, non-empty file; a folder or a missing file is refused with its own reason."""
    path = Path(source)
    if path.is_dir():
        raise InvalidDocumentError(
            str(path), "is a folder; give one document file (`inkproof document index` takes a folder)"
        )
    if not path.exists():
        raise InvalidDocumentError(str(path), "file not found")
    if not path.is_file():
        raise InvalidDocumentError(str(path), "not a regular file")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InvalidDocumentError(str(path), f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if size == 0:
        raise InvalidDocumentError(str(path), "empty input (0 bytes)")
    return path


def read_document_bytes(source: str | os.PathLike[str] | bytes) -> bytes:
    """The bytes of ``source``; a folder or a missing file is refused with its own reason."""
    data = bytes(source) if isinstance(source, bytes | bytearray) else _checked_path(source).read_bytes()
    if not data:
        raise InvalidDocumentError(describe_source(source), "empty input (0 bytes)")
    return data


def _too_large(index: int, width: int, height: int, limit: int, how: str = "") -> str:
    return (
        f"page {index + 1} is {width}x{height} = {width * height:,} pixels{how}, "
        f"over the limit of {limit:,}; {RAISE_LIMIT_HINT}"
    )


@dataclass(frozen=True)
class Document:
    """An opened document: its name, page count and resolution, before any page is decoded.

    A file is read from its ``path`` page by page (pdfium and Pillow read what a page needs), so
    not even the file is held in memory; bytes given as such are kept in ``data``.
    """

    source: str
    data: bytes = field(default=b"", repr=False)
    pages: int = 0
    kind: str = "image"  # "pdf" or "image"
    dpi: float | None = None
    max_pixels: int = DEFAULT_MAX_PAGE_PIXELS
    path: Path | None = None

    @property
    def input(self) -> str | bytes:
        """What pdfium and Pillow open: the file's path, else the bytes."""
        return str(self.path) if self.path is not None else self.data

    def sha256(self) -> str:
        """The sha256 of the document's bytes (a file is read in chunks)."""
        import hashlib

        if self.path is None:
            return hashlib.sha256(self.data).hexdigest()
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


def open_document(
    source: str | os.PathLike[str] | bytes,
    *,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_pixels: int | None = None,
) -> Document:
    """Check ``source`` (readable, page count within ``max_pages``) without decoding a page."""
    name = describe_source(source)
    limit = page_pixel_limit(max_pixels)
    path: Path | None = None
    data = b""
    if isinstance(source, bytes | bytearray):
        data = read_document_bytes(source)
        head = data[:5]
    else:
        path = _checked_path(source)
        with path.open("rb") as handle:
            head = handle.read(5)
    opened: str | bytes = str(path) if path is not None else data
    resolution: float | None
    if head == b"%PDF-":
        count = _pdf_page_count(opened, name)
        kind, resolution = "pdf", float(dpi)
    else:
        try:
            width, height, count, resolution_tag = image_header(path if path is not None else data)
        except InvalidImageError as exc:
            raise InvalidDocumentError(name, f"not a PDF or a readable image ({exc.reason})") from None
        if width * height > limit:
            raise InvalidDocumentError(name, _too_large(0, width, height, limit))
        kind, resolution = "image", resolution_tag
    if count == 0:
        raise InvalidDocumentError(name, "the document has no pages")
    if count > max_pages:
        raise InvalidDocumentError(name, f"{count} pages exceed the limit of {max_pages} (--max-pages)")
    return Document(name, data, count, kind, resolution, limit, path)


def iter_pages(
    source: str | os.PathLike[str] | bytes | Document,
    *,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_pixels: int | None = None,
) -> Iterator[Page]:
    """Every page of ``source`` as a grayscale array, one at a time (PDFs rendered at ``dpi``).

    The document is checked when the generator starts; a page over the pixel limit raises when
    that page is reached, before it is rendered or decoded.
    """
    document = (
        source
        if isinstance(source, Document)
        else open_document(source, dpi=dpi, max_pages=max_pages, max_pixels=max_pixels)
    )
    if document.kind == "pdf":
        yield from _pdf_pages(document, float(document.dpi or dpi))
    else:
        yield from _image_pages(document)


def load_pages(
    source: str | os.PathLike[str] | bytes,
    *,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_pixels: int | None = None,
) -> list[Page]:
    """Every page of ``source`` in memory at once (:func:`iter_pages` keeps one at a time)."""
    return list(iter_pages(source, dpi=dpi, max_pages=max_pages, max_pixels=max_pixels))


def _pdfium():  # type: ignore[no-untyped-def]
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:
        raise InvalidDocumentError("PDF", "PDF support needs pypdfium2 (pip install 'inkproof[document]')") from exc
    return pdfium


def _pdf_page_count(data: str | bytes, name: str) -> int:
    pdfium = _pdfium()
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise InvalidDocumentError(name, f"not a readable PDF ({one_line(exc)})") from None
    try:
        return len(document)
    finally:
        document.close()


#: pdfium caches what it parsed (images, fonts) per open document, and that grows with every page
#: rendered; reopening the document every so many pages keeps memory flat in the page count.
PDF_REOPEN_EVERY = 16


def _pdf_pages(document: Document, dpi: float) -> Iterator[Page]:
    pdfium = _pdfium()
    name, limit = document.source, document.max_pixels
    scale = dpi / 72.0
    pdf = None
    try:
        for index in range(document.pages):
            if index % PDF_REOPEN_EVERY == 0:
                if pdf is not None:
                    pdf.close()
                try:
                    pdf = pdfium.PdfDocument(document.input)
                except pdfium.PdfiumError as exc:
                    raise InvalidDocumentError(name, f"not a readable PDF ({one_line(exc)})") from None
            assert pdf is not None
            try:  # a broken page tree (a /Pages node that lists itself) fails here, not on open
                page = pdf[index]
            except pdfium.PdfiumError as exc:
                raise InvalidDocumentError(name, f"page {index + 1} is not readable ({one_line(exc)})") from None
            try:
                try:
                    width, height = page.get_size()
                except pdfium.PdfiumError as exc:
                    raise InvalidDocumentError(name, f"page {index + 1} is not readable ({one_line(exc)})") from None
                w, h = round(width * scale), round(height * scale)
                if w * h > limit:
                    raise InvalidDocumentError(name, _too_large(index, w, h, limit, f" at {dpi:g} dpi"))
                if w < 1 or h < 1:
                    raise InvalidDocumentError(name, f"page {index + 1} has no area ({width:g} x {height:g} points)")
                try:
                    bitmap = page.render(scale=scale, grayscale=True)
                except pdfium.PdfiumError as exc:
                    raise InvalidDocumentError(name, f"page {index + 1} cannot be rendered ({one_line(exc)})") from None
                image = np.asarray(bitmap.to_pil().convert("L"), dtype=np.uint8).copy()
                bitmap.close()
            finally:
                page.close()
            yield Page(index, image, float(dpi), name)
    finally:
        if pdf is not None:
            pdf.close()


def _image_pages(document: Document) -> Iterator[Page]:
    name = document.source
    for index in range(document.pages):
        try:
            image = load_image(document.path or document.data, page=index, max_pixels=document.max_pixels)
        except InvalidImageError as exc:
            reason = exc.reason
            if "exceeds the limit" in reason:
                reason = f"{reason.split(' exceeds')[0]}, over the limit of {document.max_pixels:,}; {RAISE_LIMIT_HINT}"
            raise InvalidDocumentError(name, f"page {index + 1}: {reason}") from None
        yield Page(index, image, document.dpi, name)


__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_PAGE_PIXELS",
    "MAX_PIXELS_ENV",
    "Document",
    "InvalidDocumentError",
    "Page",
    "iter_pages",
    "load_pages",
    "open_document",
    "page_pixel_limit",
    "read_document_bytes",
]

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inkproof.document.pages import InvalidDocumentError, load_pages
from inkproof.document.tobacco import load_tobacco800, split_pages


def _pdf(pages: int, size: tuple[float, float] = (595, 842)) -> bytes:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(*size)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_pdf_pages_render_at_the_requested_dpi() -> None:
    pages = load_pages(_pdf(2), dpi=72)
    assert [p.index for p in pages] == [0, 1]
    assert pages[0].image.shape == (842, 595)
    assert pages[0].image.dtype == np.uint8
    assert pages[0].dpi == 72
    assert load_pages(_pdf(1), dpi=144)[0].image.shape == (1684, 1190)


def test_multi_page_tiff_and_png(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((40, 30), v, dtype=np.uint8)) for v in (10, 200)]
    path = tmp_path / "scan.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:], dpi=(300, 300))
    pages = load_pages(path)
    assert [int(p.image[0, 0]) for p in pages] == [10, 200]
    assert pages[0].dpi == pytest.approx(300)
    png = tmp_path / "page.png"
    frames[0].save(png)
    assert len(load_pages(png)) == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"", "0 bytes"), (b"%PDF-1.7 broken", "not a readable PDF"), (b"hello", "not a PDF or a readable image")],
)
def test_bad_documents(payload: bytes, message: str) -> None:
    with pytest.raises(InvalidDocumentError, match=message):
        load_pages(payload)


def test_limits_on_pages_and_pixels(tmp_path: Path) -> None:
    with pytest.raises(InvalidDocumentError, match="3 pages exceed the limit of 2"):
        load_pages(_pdf(3), max_pages=2)
    with pytest.raises(InvalidDocumentError, match="would render to"):
        load_pages(_pdf(1, size=(14400, 14400)), dpi=300)
    with pytest.raises(InvalidDocumentError, match="file not found"):
        load_pages(tmp_path / "missing.pdf")


@pytest.mark.realdata
def test_tobacco800_split_keeps_signers_and_documents_apart(shared_data: Path) -> None:
    data = load_tobacco800(shared_data / "tobacco800")
    assert len(data.pages) == 1039
    assert sum(len(p.boxes) for p in data.pages) == 732 + 336
    train, test = split_pages(data, test_fraction=0.2, seed=0)
    assert len(train) + len(test) == 1039
    assert 0.18 <= len(test) / 1039 <= 0.3
    train_authors = {b.author for p in train for b in p.boxes if b.author}
    test_authors = {b.author for p in test for b in p.boxes if b.author}
    assert not train_authors & test_authors
    assert not {p.document for p in train} & {p.document for p in test}
    sides = {p.path: "train" for p in train} | {p.path: "test" for p in test}
    for a, b in data.duplicates:
        assert sides[a] == sides[b]

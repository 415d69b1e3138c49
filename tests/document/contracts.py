"""Synthetic contracts whose fields are known exactly, and stand-ins that report their truth.

Shared by the document report tests, the document API tests and the browser tests.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from inkproof.data.synthetic import render_genuine, writer_style
from inkproof.document.cleaner import CleanResult
from inkproof.document.detector import FieldDetection, PageDetections
from inkproof.document.synthetic import PageConfig, SyntheticPage, render_page
from inkproof.store import SignatureStore

SEED = 5
SIZE = {"width": 900, "height": 1200, "seed": SEED}
# Page 1: a dated signature, a redaction and a logo. Page 2: nothing handwritten.
# Page 3: an undated signature and initials.
PAGE_CONFIGS = (
    PageConfig(
        **SIZE,
        signatures=(1, 1),
        date_probability=1.0,
        initials_probability=0.0,
        redactions=(1, 1),
        logo_probability=1.0,
    ),
    PageConfig(**SIZE, signatures=(0, 0), initials_probability=0.0, redactions=(0, 0), logo_probability=0.0),
    PageConfig(
        **SIZE,
        signatures=(1, 1),
        date_probability=0.0,
        initials_probability=1.0,
        redactions=(0, 0),
        logo_probability=0.0,
    ),
)

# The report summary of the contract read with its true fields.
CONTRACT_SUMMARY = {
    "pages": 3,
    "signatures": 2,
    "uncertain_signatures": 0,
    "expected_signatures": 2,
    "expected_at_least": False,
    "all_expected_present": True,
    "initials": 1,
    "handwritten_dates": 1,
    "redactions": 1,
    "logos": 1,
}


class GroundTruthDetector:
    """The synthetic pages' exact boxes, scaled to the page it is given (a PDF rendering may differ
    from the rendered image by a pixel). Records whether it ran outside the event loop."""

    name = "ground-truth"

    def __init__(self, pages: Sequence[SyntheticPage]) -> None:
        self.pages = pages
        self.calls = 0
        self.in_event_loop: list[bool] = []

    def detect(self, page: np.ndarray, *, index: int = 0) -> PageDetections:
        self.calls += 1
        try:
            asyncio.get_running_loop()
            self.in_event_loop.append(True)
        except RuntimeError:
            self.in_event_loop.append(False)
        truth = self.pages[index]
        sy, sx = page.shape[0] / truth.image.shape[0], page.shape[1] / truth.image.shape[1]
        fields = tuple(
            FieldDetection(
                f.label, (round(f.box[0] * sx), round(f.box[1] * sy), round(f.box[2] * sx), round(f.box[3] * sy)), 1.0
            )
            for f in truth.fields
        )
        return PageDetections(index, page.shape[1], page.shape[0], fields, 1.0)


class DarkInkCleaner:
    """Keeps the pixels darker than mid-gray: a transparent cleaner, so the test can predict the
    ink fraction the endpoint reports for each crop."""

    name = "dark-ink"

    def clean(self, image: np.ndarray) -> CleanResult:
        gray = np.asarray(image, dtype=np.uint8)
        mask = gray < 128
        cleaned = np.where(mask, gray, np.uint8(255)).astype(np.uint8)
        return CleanResult(cleaned, mask, float(mask.mean()), self.name, "crop")


def contract_pages() -> list[SyntheticPage]:
    return [render_page(0, config) for config in PAGE_CONFIGS]


def tiff_of(pages: Sequence[SyntheticPage]) -> bytes:
    """The pages as one multi-page (uncompressed) TIFF."""
    images = [Image.fromarray(p.image) for p in pages]
    buffer = io.BytesIO()
    images[0].save(buffer, format="TIFF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


def signer(page: SyntheticPage) -> str:
    return next(str(f.writer) for f in page.fields if f.label == "signature")


def enroll_signers(store: SignatureStore, pages: Sequence[SyntheticPage]) -> list[str]:
    """Enroll every writer who signed one of ``pages`` (five genuine samples each); their ids."""
    writers = list(dict.fromkeys(signer(p) for p in pages if any(f.label == "signature" for f in p.fields)))
    for writer in writers:
        style = writer_style(SEED, int(writer[1:]))
        store.enroll(writer, [render_genuine(style, i) for i in range(100, 105)], quality="warn")
    return writers

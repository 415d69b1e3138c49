"""The document report: every signature (and field) on every page, cleaned, verified, and checked.

:func:`build_report` runs the pipeline on a PNG/JPEG/TIFF/PDF, one page at a time: a report keeps
each page's findings and signature crops, never the pages, and its annotated page pictures are
drawn again from the document when they are written (:func:`report_images`), one page at a time:

1. pages (:func:`~inkproof.document.pages.iter_pages`, with page and pixel limits);
2. fields per page (:class:`~inkproof.document.detector.PageDetector`): signatures, initials,
   handwritten dates, redactions, logos;
3. each signature cropped and, with a cleaner, cleaned of printed text and lines;
4. only when the ``dated`` rule asks for it and a :class:`TextReader` is given: printed text (OCR)
   read in a window around each signature that has no handwritten date, never the whole page;
5. with a store: each signature identified among the enrolled writers, or, for ``claimed``
   writers, every claimed writer verified against the signatures (each claim is logged by the
   store) and matched to the signature that fits it best;
6. rules, each with a verdict ("pass", "review" or "fail") and the pages concerned: signatures
   present (``expect``: exactly N, or at least N with ``at_least``), claimed writers verified,
   initials on every page, every signature dated.

A field whose detector confidence is below ``review_below`` (:data:`REVIEW_BELOW`) is uncertain:
a rule that would pass only because of it, or fail only because of it, says "review" instead.
The detector's false signatures on real pages (handwritten notes, dates, scribbles) mostly score
below 0.9, true ones mostly above (docs/benchmarks.md, "Page field detector"). Signature boxes
scored below ``ignore_below`` (:data:`IGNORE_BELOW`, chosen on validation pages with the bundled
detector's signature filter) are set aside: not counted, listed under ``set_aside`` in the JSON.

Where a date counts (:func:`date_position`): on the signature's line (the date's vertical centre
within the signature's height, widened by a quarter of it, and at most :data:`BESIDE_GAP` of the
page width to either side), or directly below it (starting below the signature's middle, at most
:data:`BELOW_GAP` of the page height under it, and horizontally within half the signature's width
of it). A date above the signature -- the letter's date in the body -- never counts.

:func:`write_report` saves ``report.json``, ``report.html`` (verdict first, the pages at full width
with numbered boxes, the crops) and the images it refers to. Torch-free.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inkproof.document.detector import FieldDetection, PageDetections, PageDetector
from inkproof.document.pages import DEFAULT_DPI, DEFAULT_MAX_PAGES, Document, Page, iter_pages, open_document
from inkproof.document.synthetic import FIELD_COLOURS
from inkproof.errors import InkproofError

if TYPE_CHECKING:
    from inkproof.document.cleaner import CleanResult
    from inkproof.store import SignatureStore

Box = tuple[int, int, int, int]
Verdict = Literal["pass", "review", "fail"]
DatePosition = Literal["line", "below"]

#: Fields the detector is less sure of than this are "uncertain" and make a rule say "review".
REVIEW_BELOW = 0.9
#: Signature boxes below this are set aside. On the 99 validation pages (expecting each page's true
#: count) 0.05 turned 8 of 21 "review" verdicts into 5 passes and 3 failures; lower dropped none.
IGNORE_BELOW = 0.05
#: A printed date read by OCR with less confidence than this is uncertain as well.
OCR_REVIEW_BELOW = 0.8
BESIDE_GAP = 0.35  # of the page width, to the side of a signature on its line
BELOW_GAP = 0.08  # of the page height, under a signature (name, title, then "Date:")
#: Pixels added around a signature box before cropping (strokes at the edge of a loose box).
CROP_PAD = 6
IDENTIFY_TOP = 3
#: Names a reader sees for the detector's classes.
FIELD_NAMES = {
    "signature": "Signature",
    "initials": "Initials",
    "handwritten_date": "Handwritten date",
    "redaction": "Redaction",
    "logo": "Logo",
}
RULE_NAMES = {
    "signatures_present": "Signatures present",
    "claimed_writers_verified": "Signed by the claimed writers",
    "initials_every_page": "Every page initialled or signed",
    "signatures_dated": "Every signature dated",
}

_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
#: Printed dates as OCR reads them (spaces are often lost): 12/03/2019, 2019-03-12, 12.3.19,
#: March 12, 2019, 12 March 2019.
DATE_PATTERN = re.compile(
    r"\b\d{1,2}\s*[./-]\s*\d{1,2}\s*[./-]\s*\d{2,4}\b"
    r"|\b\d{4}\s*-\s*\d{1,2}\s*-\s*\d{1,2}\b"
    rf"|\b(?:{_MONTHS})\.?\s*\d{{1,2}}(?:st|nd|rd|th)?\s*,?\s*\d{{4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s*(?:{_MONTHS})\.?\s*,?\s*\d{{4}}\b",
    re.IGNORECASE,
)


class FieldDetector(Protocol):
    """What the report needs of a detector (:class:`~inkproof.document.detector.PageDetector`)."""

    @property
    def name(self) -> str: ...

    def detect(self, page: np.ndarray, *, index: int = 0) -> PageDetections: ...


class CropCleaner(Protocol):
    """What the report needs of a cleaner (:class:`~inkproof.document.cleaner.SignatureCleaner`)."""

    @property
    def name(self) -> str: ...

    def clean(self, image: np.ndarray) -> CleanResult: ...


class TextReader(Protocol):
    """Printed text on a page: (box, text, confidence) per line or word."""

    def read(self, page: np.ndarray) -> Sequence[tuple[Box, str, float]]: ...


@dataclass(frozen=True)
class TextLine:
    box: Box
    text: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "text": self.text, "confidence": round(self.confidence, 4)}


class RapidOcrReader:
    """OCR with rapidocr-onnxruntime (the ``ocr`` extra; its models ship inside the wheel)."""

    def __init__(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as missing:  # pragma: no cover - depends on the installed extras
            raise OcrUnavailableError("OCR needs the ocr extra: pip install 'inkproof[ocr]'") from missing
        self._engine = RapidOCR()

    def read(self, page: np.ndarray) -> list[tuple[Box, str, float]]:
        result, _ = self._engine(np.stack([page] * 3, axis=-1))
        lines = []
        for corners, text, confidence in result or []:
            xs, ys = [float(p[0]) for p in corners], [float(p[1]) for p in corners]
            box = (int(min(xs)), int(min(ys)), int(np.ceil(max(xs))), int(np.ceil(max(ys))))
            lines.append((box, str(text), float(confidence)))
        return lines


def ocr_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


class OcrUnavailableError(InkproofError, RuntimeError):
    """OCR was asked for but the ocr extra is not installed."""


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateEvidence:
    kind: Literal["handwritten", "printed"]
    box: Box
    text: str = ""  # the OCR text of a printed date
    position: DatePosition = "line"
    confidence: float = 1.0

    @property
    def uncertain(self) -> bool:
        limit = REVIEW_BELOW if self.kind == "handwritten" else OCR_REVIEW_BELOW
        return self.confidence < limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "box": list(self.box),
            "text": self.text,
            "position": self.position,
            "confidence": round(self.confidence, 4),
        }


@dataclass(frozen=True, eq=False)
class SignatureFinding:
    """One signature found on a page; ``crop`` (and ``cleaned``) are uint8 page pixels."""

    page: int  # 0-based
    number: int  # 1-based on its page
    box: Box
    confidence: float
    crop: np.ndarray
    cleaned: np.ndarray | None = None
    ink_fraction: float | None = None
    identified: tuple[dict[str, Any], ...] = ()  # top candidates among enrolled writers
    claim: dict[str, Any] | None = None  # the claimed writer this signature was matched with
    date: DateEvidence | None = None
    uncertain: bool = False  # detector confidence below the report's review level

    @property
    def name(self) -> str:
        return f"page{self.page + 1}_signature_{self.number}"

    @property
    def title(self) -> str:
        """How the report names it to a reader: "Signature 2 on page 1"."""
        return f"Signature {self.number} on page {self.page + 1}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.name,
            "page": self.page + 1,
            "box": list(self.box),
            "confidence": round(self.confidence, 4),
            "uncertain": self.uncertain,
            "ink_fraction": self.ink_fraction,
            "identified": list(self.identified),
            "claim": self.claim,
            "date": self.date.to_dict() if self.date else None,
        }


@dataclass(frozen=True, eq=False)
class PageReport:
    page: int  # 0-based
    width: int
    height: int
    detections: PageDetections
    signatures: tuple[SignatureFinding, ...]
    text: tuple[TextLine, ...] = ()  # printed text read around the signatures (when OCR ran)
    set_aside: tuple[FieldDetection, ...] = ()  # signature boxes scored below ignore_below

    def boxes(self, label: str) -> tuple[FieldDetection, ...]:
        return self.detections.of(label)

    def to_dict(self) -> dict[str, Any]:
        def listed(label: str) -> list[dict[str, Any]]:
            return [{"box": list(d.box), "confidence": round(d.confidence, 4)} for d in self.boxes(label)]

        return {
            "page": self.page + 1,
            "width": self.width,
            "height": self.height,
            "signatures": [s.to_dict() for s in self.signatures],
            "initials": listed("initials"),
            "handwritten_dates": listed("handwritten_date"),
            "redactions": listed("redaction"),
            "logos": listed("logo"),
            "printed_dates": [t.to_dict() for t in self.text if DATE_PATTERN.search(t.text)],
            "set_aside": [d.to_dict() for d in self.set_aside],
            "detector_ms": round(self.detections.milliseconds, 1),
        }


@dataclass(frozen=True)
class RuleResult:
    rule: str
    verdict: Verdict
    pages: tuple[int, ...] = ()  # 1-based pages concerned by a failure or a review
    detail: str = ""

    @property
    def title(self) -> str:
        return RULE_NAMES.get(self.rule, self.rule.replace("_", " ").capitalize())

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "verdict": self.verdict, "pages": list(self.pages), "detail": self.detail}


def combined_verdict(rules: Sequence[RuleResult]) -> Verdict:
    """ "fail" when any rule fails, else "review" when any asks for one, else "pass"."""
    verdicts = {r.verdict for r in rules}
    return "fail" if "fail" in verdicts else ("review" if "review" in verdicts else "pass")


@dataclass(frozen=True, eq=False)
class DocumentReport:
    source: str
    sha256: str
    detector: str
    cleaner: str | None
    verifier: str | None
    ocr: bool
    pages: tuple[PageReport, ...]
    rules: tuple[RuleResult, ...]
    expected: int | None = None
    claimed: tuple[str, ...] = ()
    at_least: bool = False
    review_below: float = REVIEW_BELOW
    document: Document | None = dataclasses.field(default=None, repr=False)  # to draw the pages again

    @property
    def signatures(self) -> tuple[SignatureFinding, ...]:
        return tuple(s for p in self.pages for s in p.signatures)

    @property
    def verdict(self) -> Verdict:
        return combined_verdict(self.rules)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def summary(self) -> dict[str, Any]:
        def count(label: str) -> int:
            return sum(len(p.boxes(label)) for p in self.pages)

        found = len(self.signatures)
        present = None
        if self.expected is not None:
            present = found >= self.expected if self.at_least else found == self.expected
        return {
            "pages": len(self.pages),
            "signatures": found,
            "uncertain_signatures": sum(s.uncertain for s in self.signatures),
            "expected_signatures": self.expected,
            "expected_at_least": self.at_least,
            "all_expected_present": present,
            "initials": count("initials"),
            "handwritten_dates": count("handwritten_date"),
            "redactions": count("redaction"),
            "logos": count("logo"),
            "verdict": self.verdict,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "models": {"detector": self.detector, "cleaner": self.cleaner, "verifier": self.verifier},
            "ocr": self.ocr,
            "claimed": list(self.claimed),
            "review_below": self.review_below,
            "summary": self.summary(),
            "rules": [r.to_dict() for r in self.rules],
            "pages": [p.to_dict() for p in self.pages],
        }


# --- geometry ----------------------------------------------------------------------------------


def box_gaps(a: Box, b: Box) -> tuple[int, int]:
    """(horizontal, vertical) gap between two boxes; 0 on an axis where they overlap."""
    horizontal = max(0, max(a[0], b[0]) - min(a[2], b[2]))
    vertical = max(0, max(a[1], b[1]) - min(a[3], b[3]))
    return horizontal, vertical


def date_position(signature: Box, date: Box, page_size: tuple[int, int]) -> DatePosition | None:
    """Where ``date`` lies for ``signature``: "line" (on its line, beside it), "below" (directly
    under it) or None (anywhere else, above it in particular); see the module docstring."""
    width, height = page_size
    sx0, sy0, sx1, sy1 = signature
    sig_h, sig_w = max(1, sy1 - sy0), max(1, sx1 - sx0)
    horizontal, vertical = box_gaps(signature, date)
    middle = (date[1] + date[3]) / 2
    if sy0 - 0.25 * sig_h <= middle <= sy1 + 0.25 * sig_h and horizontal <= BESIDE_GAP * width:
        return "line"
    if date[1] >= (sy0 + sy1) / 2 and vertical <= BELOW_GAP * height and horizontal <= 0.5 * sig_w:
        return "below"
    return None


def is_near(a: Box, b: Box, page_size: tuple[int, int]) -> bool:
    """Whether a date at ``b`` counts for a signature at ``a`` (:func:`date_position`)."""
    return date_position(a, b, page_size) is not None


def date_window(signature: Box, page_size: tuple[int, int]) -> Box:
    """The part of the page where a date would count for ``signature`` (what OCR reads)."""
    width, height = page_size
    sx0, sy0, sx1, sy1 = signature
    sig_h, sig_w = sy1 - sy0, sx1 - sx0
    x0 = max(0, int(min(sx0 - BESIDE_GAP * width, sx0 - 0.5 * sig_w)))
    x1 = min(width, int(max(sx1 + BESIDE_GAP * width, sx1 + 0.5 * sig_w)) + 1)
    y0 = max(0, int(sy0 - 0.5 * sig_h))
    y1 = min(height, int(sy1 + BELOW_GAP * height + 0.5 * sig_h) + 1)
    return x0, y0, x1, y1


def _distance(a: Box, b: Box) -> float:
    return float(np.hypot(*box_gaps(a, b)))


def _crop(image: np.ndarray, box: Box) -> np.ndarray:
    height, width = image.shape
    x0, y0 = max(0, box[0] - CROP_PAD), max(0, box[1] - CROP_PAD)
    x1, y1 = min(width, box[2] + CROP_PAD), min(height, box[3] + CROP_PAD)
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def _nearest_date(
    box: Box, page: PageDetections, text: Sequence[TextLine], page_size: tuple[int, int]
) -> DateEvidence | None:
    """The closest date that counts for ``box``; a confident one wins over an uncertain one."""
    candidates: list[tuple[bool, float, DateEvidence]] = []
    for found in page.of("handwritten_date"):
        where = date_position(box, found.box, page_size)
        if where is not None:
            evidence = DateEvidence("handwritten", found.box, "", where, found.confidence)
            candidates.append((evidence.uncertain, _distance(box, found.box), evidence))
    for line in text:
        match = DATE_PATTERN.search(line.text)
        where = date_position(box, line.box, page_size) if match else None
        if match and where is not None:
            evidence = DateEvidence("printed", line.box, match.group(0), where, line.confidence)
            candidates.append((evidence.uncertain, _distance(box, line.box), evidence))
    return min(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None


def _read_around(reader: TextReader, image: np.ndarray, window: Box) -> list[TextLine]:
    x0, y0, x1, y1 = window
    if x1 - x0 < 8 or y1 - y0 < 8:
        return []
    lines = []
    for (bx0, by0, bx1, by1), text, confidence in reader.read(np.ascontiguousarray(image[y0:y1, x0:x1])):
        lines.append(TextLine((bx0 + x0, by0 + y0, bx1 + x0, by1 + y0), str(text), float(confidence)))
    return lines


# --- verification against the store --------------------------------------------------------------


def _identify(store: SignatureStore, image: np.ndarray) -> tuple[dict[str, Any], ...]:
    result = store.identify(image, top=IDENTIFY_TOP)
    return tuple(c.to_dict() for c in result.candidates)


def _match_claims(
    store: SignatureStore, claimed: Sequence[str], images: Sequence[np.ndarray]
) -> dict[int, dict[str, Any]]:
    """Each claimed writer verified against every signature; claims are then assigned one
    signature each, best fused score first (a signature serves one claim)."""
    scored = []
    for writer in claimed:
        for index, image in enumerate(images):
            result = store.verify_claim(writer, image).to_dict()
            scored.append((float(result["fused_score"]), writer, index, result))
    assigned: dict[int, dict[str, Any]] = {}
    used: set[str] = set()
    for _, writer, index, result in sorted(scored, key=lambda item: -item[0]):
        if writer in used or index in assigned:
            continue
        used.add(writer)
        assigned[index] = {"writer": writer, **result}
    return assigned


# --- the pipeline ------------------------------------------------------------------------------


def build_report(
    source: str | os.PathLike[str] | bytes,
    *,
    detector: FieldDetector | None = None,
    cleaner: CropCleaner | None = None,
    store: SignatureStore | None = None,
    claimed: Sequence[str] = (),
    expect: int | None = None,
    at_least: bool = False,
    initials_every_page: bool = False,
    dated: bool = False,
    text_reader: TextReader | None = None,
    review_below: float = REVIEW_BELOW,
    ignore_below: float = IGNORE_BELOW,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_pixels: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DocumentReport:
    """Report on one document (see the module docstring). ``detector`` defaults to the bundled
    detector; without ``cleaner`` crops are verified as found; without ``store`` nothing is
    identified or verified (``claimed`` then raises). ``expect`` is an exact signature count,
    or a minimum with ``at_least``. ``text_reader`` is used only for the ``dated`` rule."""
    if claimed and store is None:
        raise ValueError("claimed writers can only be verified against a store (give --db)")
    if expect is not None and expect < 0:
        raise ValueError(f"expect must be >= 0, got {expect}")
    if not 0.0 <= ignore_below <= review_below <= 1.0:
        raise ValueError(f"need 0 <= ignore_below <= review_below <= 1, got {ignore_below} and {review_below}")
    document = open_document(source, dpi=dpi, max_pages=max_pages, max_pixels=max_pixels)  # checks first
    active: FieldDetector = detector or PageDetector.from_card(max_pixels=document.max_pixels)
    reader = text_reader if dated else None  # OCR only serves the date rule
    reports = []
    try:
        for page in iter_pages(document):
            reports.append(_page_report(page, active, cleaner, reader, review_below, ignore_below))
            if progress is not None:
                progress(len(reports), document.pages)
    finally:
        if isinstance(active, PageDetector) and detector is None:
            active.close()

    if store is not None:
        findings = [s for page in reports for s in page.signatures]
        images = [s.cleaned if s.cleaned is not None else s.crop for s in findings]
        claims = _match_claims(store, claimed, images) if claimed else {}
        updated = {
            id(s): dataclasses.replace(
                s,
                claim=claims.get(i),
                identified=() if claimed else _identify(store, image),
            )
            for i, (s, image) in enumerate(zip(findings, images, strict=True))
        }
        reports = [
            dataclasses.replace(page, signatures=tuple(updated[id(s)] for s in page.signatures)) for page in reports
        ]

    rules = _rules(
        reports,
        expect=expect,
        at_least=at_least,
        claimed=claimed,
        initials_every_page=initials_every_page,
        dated=dated,
        review_below=review_below,
    )
    return DocumentReport(
        source=document.source,
        sha256=document.sha256(),
        detector=active.name,
        cleaner=cleaner.name if cleaner is not None else None,
        verifier=store.card.name if store is not None else None,
        ocr=reader is not None,
        pages=tuple(reports),
        rules=tuple(rules),
        expected=expect,
        claimed=tuple(claimed),
        at_least=at_least,
        review_below=review_below,
        document=document,
    )


def _page_report(
    page: Page,
    detector: FieldDetector,
    cleaner: CropCleaner | None,
    text_reader: TextReader | None,
    review_below: float,
    ignore_below: float = 0.0,
) -> PageReport:
    detections = detector.detect(page.image, index=page.index)
    set_aside = tuple(d for d in detections.detections if d.label == "signature" and d.confidence < ignore_below)
    if set_aside:
        kept = tuple(d for d in detections.detections if d not in set_aside)
        detections = dataclasses.replace(detections, detections=kept)
    height, width = page.image.shape
    size = (width, height)
    text: list[TextLine] = []
    signatures = []
    for number, found in enumerate(reading_order(detections.of("signature")), start=1):
        date = _nearest_date(found.box, detections, (), size)
        if text_reader is not None and (date is None or date.uncertain):
            # Printed text only where a date would count, and only when no sure handwritten one is there.
            nearby = _read_around(text_reader, page.image, date_window(found.box, size))
            text.extend(line for line in nearby if line not in text)
            date = _nearest_date(found.box, detections, nearby, size) or date
        crop = _crop(page.image, found.box)
        cleaned = cleaner.clean(crop) if cleaner is not None else None
        signatures.append(
            SignatureFinding(
                page=page.index,
                number=number,
                box=found.box,
                confidence=found.confidence,
                crop=crop,
                cleaned=cleaned.image if cleaned is not None else None,
                ink_fraction=round(cleaned.ink_fraction, 4) if cleaned is not None else None,
                date=date,
                uncertain=found.confidence < review_below,
            )
        )
    return PageReport(page.index, width, height, detections, tuple(signatures), tuple(text), set_aside)


def _names(findings: Sequence[SignatureFinding]) -> str:
    return ", ".join(f"{s.title} ({s.confidence:.2f})" for s in findings)


def _count_rule(pages: Sequence[PageReport], expect: int | None, at_least: bool) -> RuleResult:
    every = [s for p in pages for s in p.signatures]
    sure = [s for s in every if not s.uncertain]
    unsure = [s for s in every if s.uncertain]
    wanted = 1 if expect is None else expect
    minimum = at_least or expect is None
    found = f"{len(every)} signature(s) found"
    if unsure:
        found += f", {len(unsure)} of them uncertain: {_names(unsure)}"
    wording = f"at least {wanted}" if minimum else f"exactly {wanted}"
    if expect is None:
        wording += " (no count was asked for)"
    if minimum:
        verdict: Verdict = "pass" if len(sure) >= wanted else ("review" if len(every) >= wanted else "fail")
    elif len(sure) == wanted and not unsure:
        verdict = "pass"
    elif len(sure) <= wanted <= len(every):
        verdict = "review"  # the uncertain ones decide
    else:
        verdict = "fail"
    concerned = tuple(sorted({s.page + 1 for s in unsure})) if verdict == "review" else ()
    return RuleResult("signatures_present", verdict, concerned, f"{found}; {wording} expected")


def _rules(
    pages: Sequence[PageReport],
    *,
    expect: int | None,
    at_least: bool = False,
    claimed: Sequence[str],
    initials_every_page: bool,
    dated: bool,
    review_below: float = REVIEW_BELOW,
) -> list[RuleResult]:
    rules = [_count_rule(pages, expect, at_least)]
    if claimed:
        matched = {s.claim["writer"]: s for p in pages for s in p.signatures if s.claim}
        decisions = {w: str(matched[w].claim["decision"]) if w in matched else None for w in claimed}  # type: ignore[index]
        failing = [w for w, d in decisions.items() if d not in ("genuine", "review")]
        reviewing = [w for w, d in decisions.items() if d == "review"]
        concerned = sorted({matched[w].page + 1 for w in failing + reviewing if w in matched})
        verdict: Verdict = "fail" if failing else ("review" if reviewing else "pass")
        rules.append(
            RuleResult(
                "claimed_writers_verified",
                verdict,
                tuple(concerned),
                "every claimed writer matched a genuine signature"
                if verdict == "pass"
                else "not verified: "
                + ", ".join(
                    f"{w} ({decisions[w]} on page {matched[w].page + 1})"
                    if w in matched
                    else f"{w} (no signature left to match)"
                    for w in failing + reviewing
                ),
            )
        )
    if initials_every_page:
        # A page that carries a full signature counts as initialled: contracts are initialled on
        # the pages that are not signed.
        def marks(page: PageReport) -> list[float]:
            return [d.confidence for d in page.boxes("initials")] + [s.confidence for s in page.signatures]

        missing = tuple(p.page + 1 for p in pages if not marks(p))
        doubtful = tuple(p.page + 1 for p in pages if marks(p) and max(marks(p)) < review_below)
        verdict = "fail" if missing else ("review" if doubtful else "pass")
        parts = []
        if missing:
            parts.append("pages without initials or a signature: " + ", ".join(map(str, missing)))
        if doubtful:
            parts.append("pages whose initials or signature are uncertain: " + ", ".join(map(str, doubtful)))
        rules.append(
            RuleResult(
                "initials_every_page",
                verdict,
                missing or doubtful,
                "; ".join(parts) or "every page is initialled or signed",
            )
        )
    if dated:
        signatures = [s for p in pages for s in p.signatures]
        undated = [s for s in signatures if s.date is None and not s.uncertain]
        unclear = [s for s in signatures if s not in undated and (s.date is None or s.date.uncertain)]
        verdict = "fail" if undated else ("review" if unclear else "pass")
        parts = []
        if undated:
            parts.append("no date on the line or directly below: " + ", ".join(s.title for s in undated))
        if unclear:
            parts.append("uncertain: " + ", ".join(s.title for s in unclear))
        rules.append(
            RuleResult(
                "signatures_dated",
                verdict,
                tuple(sorted({s.page + 1 for s in (undated or unclear)})),
                "; ".join(parts) or "every signature has a date on its line or directly below it",
            )
        )
    return rules


# --- pictures and HTML -----------------------------------------------------------------------------

#: Width of the page pictures in the report (a letter page at 150 dpi is 1275 pixels wide).
PICTURE_WIDTH = 1275
GUTTER = 230  # the margin at the right of a page picture where the labels go


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def reading_order(fields: Sequence[FieldDetection]) -> list[FieldDetection]:
    """Top to bottom, then left to right: how fields are numbered for a reader."""
    return sorted(fields, key=lambda d: (d.box[1], d.box[0]))


def field_labels(page: PageReport) -> list[tuple[str, FieldDetection]]:
    """Each field of the page with the name a reader sees ("Signature 1", "Logo 2")."""
    labelled = []
    for label in FIELD_NAMES:
        for number, found in enumerate(reading_order(page.boxes(label)), start=1):
            labelled.append((f"{FIELD_NAMES[label]} {number}", found))
    return labelled


GRAY_LEVELS = 32  # page pictures keep 32 gray levels: a palette PNG a quarter the size, as legible


def annotated_page(image: np.ndarray, page: PageReport, width: int = PICTURE_WIDTH) -> Image.Image:
    """The page with each field's box in its class colour and its name in a margin to the right, at
    the box's height, so that nothing but the box outlines is drawn over the page. A palette image:
    the page in :data:`GRAY_LEVELS` grays, then the field colours."""
    scale = min(1.0, width / image.shape[1])
    picture = Image.fromarray(image)
    if scale < 1.0:
        # At least one pixel a side: a 1 x 100000 page scales to 0 rows otherwise.
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        picture = picture.resize(size, Image.Resampling.BOX)
    top = GRAY_LEVELS - 1
    levels = np.round(np.asarray(picture, dtype=np.float32) * (top / 255.0)).astype(np.uint8)
    canvas = Image.new("P", (picture.width + GUTTER, picture.height), top)  # white margin
    colours = list(FIELD_COLOURS.values())
    palette = [round(i * 255 / top) for i in range(GRAY_LEVELS) for _ in range(3)]
    canvas.putpalette(palette + [channel for colour in colours for channel in colour])
    canvas.paste(Image.fromarray(levels, mode="L"), (0, 0))
    index = {label: GRAY_LEVELS + i for i, label in enumerate(FIELD_COLOURS)}
    draw = ImageDraw.Draw(canvas)
    font = _font(20)
    line_height = 26
    next_free = 4
    for text, found in sorted(field_labels(page), key=lambda item: (item[1].box[1], item[1].box[0])):
        colour = index.get(found.label, 0)
        x0, y0, x1, y1 = (round(v * scale) for v in found.box)
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=colour, width=3)
        # Labels stack downwards when boxes share a height; a bar beside the page marks the box's rows.
        label_y = max(next_free, min(y0, canvas.height - line_height))
        next_free = label_y + line_height
        draw.rectangle((picture.width + 4, min(y0, label_y), picture.width + 8, max(y1, label_y + 20)), fill=colour)
        draw.text((picture.width + 14, label_y), text, fill=colour, font=font)
    return canvas


def _png(image: Image.Image | np.ndarray) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=3)  # optimize=True costs 10x the time for 5 %
    return buffer.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_VERDICT_WORDS = {
    "pass": ("PASSED", "Every check passed."),
    "review": ("NEEDS REVIEW", "Nothing failed, but some findings are uncertain: a person should look at them."),
    "fail": ("FAILED", "At least one check failed."),
}


def _who(s: SignatureFinding) -> str:
    esc = html.escape
    if s.claim:
        decision = {"genuine": "matches", "forgery": "does not match", "review": "uncertain match for"}.get(
            str(s.claim["decision"]), str(s.claim["decision"])
        )
        return f"{decision} {esc(str(s.claim['writer']))} (score {float(s.claim['fused_score']):.2f})"
    if s.identified:
        best = s.identified[0]
        return f"closest enrolled writer: {esc(str(best.get('external_id')))} (score {float(best.get('score', 0)):.2f})"
    return "not compared with enrolled writers"


def _html_head(report: DocumentReport) -> str:
    """The page head, the verdict and the checks."""
    esc = html.escape
    verdict = report.verdict
    headline, meaning = _VERDICT_WORDS[verdict]
    reasons = "".join(
        f'<li class="{r.verdict}"><strong>{esc(r.title)}:</strong> {esc(_VERDICT_WORDS[r.verdict][0].lower())}'
        f" &mdash; {esc(r.detail)}" + (f" (page {esc(', '.join(map(str, r.pages)))})" if r.pages else "") + "</li>"
        for r in report.rules
    )
    count = len(report.signatures)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signature report: {esc(report.source)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; padding: 1.5rem; max-width: 1600px; color: #1b2430; }}
.verdict {{ padding: 1rem 1.4rem; border-radius: 8px; margin-bottom: 1rem; }}
.verdict h1 {{ margin: 0 0 .3rem 0; font-size: 2rem; }}
.verdict.pass {{ background: #e3f4e6; color: #0d5c1f; }} .verdict.review {{ background: #fff3d6; color: #7a4b00; }}
.verdict.fail {{ background: #fbe4e2; color: #8c1d15; }}
li {{ margin: .3rem 0; }} li.pass::marker {{ color: #137a2a; }} li.fail::marker, li.fail strong {{ color: #b3261e; }}
li.review strong, span.review {{ color: #9a5b00; }}
table {{ border-collapse: collapse; margin: .8rem 0; }}
td, th {{ border: 1px solid #ccd; padding: .4rem .7rem; text-align: left; }}
td img {{ max-height: 110px; margin-right: .4rem; background: #fff; border: 1px solid #ddd; }}
img.page {{ display: block; width: 100%; height: auto; border: 1px solid #99a; }}
section {{ margin-top: 2rem; }} p.none {{ font-style: italic; }}
details {{ margin-top: 2rem; color: #556; font-size: .9rem; }}
</style></head><body>
<div class="verdict {esc(verdict)}"><h1>{esc(headline)}</h1><p>{esc(meaning)}</p>
<p>{esc(report.source)}: {len(report.pages)} page(s), {count} signature(s) found.</p></div>
<h2>Checks</h2><ul>{reasons}</ul>
"""


def _html_page(page: PageReport, images: dict[str, bytes]) -> str:
    """One page's section: its signatures (or "no signatures"), other fields, the page picture."""
    esc = html.escape
    number = page.page + 1
    others = [
        f"{len(page.boxes(label))} {FIELD_NAMES[label].lower()}{'s' if len(page.boxes(label)) != 1 else ''}"
        for label in ("initials", "handwritten_date", "redaction", "logo")
        if page.boxes(label)
    ]
    others_text = f"<p>Also found: {esc(', '.join(others))}.</p>" if others else ""
    if page.signatures:
        rows = []
        for s in page.signatures:
            crops = f'<img src="{_data_url(images[s.name + ".png"])}" alt="{esc(s.title)} as found">'
            if s.name + "_cleaned.png" in images:
                crops += f'<img src="{_data_url(images[s.name + "_cleaned.png"])}" alt="{esc(s.title)} cleaned">'
            if s.date is None:
                date = "none found"
            else:
                where = "on the same line" if s.date.position == "line" else "below it"
                what = f"printed &ldquo;{esc(s.date.text)}&rdquo;" if s.date.kind == "printed" else "handwritten"
                date = f"{what}, {where}" + (" (uncertain)" if s.date.uncertain else "")
            certainty = f"{s.confidence:.0%}" + (' <span class="review">uncertain</span>' if s.uncertain else "")
            rows.append(
                f"<tr><td>Signature {s.number}</td><td>{crops}</td><td>{certainty}</td>"
                f"<td>{_who(s)}</td><td>{date}</td></tr>"
            )
        table = (
            "<table><tr><th>found</th><th>as found / cleaned</th><th>detector certainty</th>"
            "<th>writer</th><th>date</th></tr>" + "".join(rows) + "</table>"
        )
    else:
        table = '<p class="none">No signatures found on this page.</p>'
    return (
        f"<section><h2>Page {number}</h2>{table}{others_text}"
        f'<img class="page" src="{_data_url(images[f"page{number}.png"])}" '
        f'alt="page {number} with the fields found outlined"></section>'
    )


def _html_tail(report: DocumentReport) -> str:
    esc = html.escape
    return f"""<details><summary>Technical details</summary>
<p>File sha256 {esc(report.sha256)}. Detector {esc(report.detector)}; cleaner {esc(report.cleaner or "none")};
verification model {esc(report.verifier or "none")}; printed dates read by OCR: {"yes" if report.ocr else "no"}.
Fields the detector is less than {report.review_below:.0%} sure of are marked uncertain.</p></details>
</body></html>
"""


def report_html(report: DocumentReport, images: dict[str, bytes]) -> str:
    """A self-contained HTML page (images inlined as data URLs) for ``report``: the verdict and
    its reasons first, then each page at full width with its signatures."""
    return _html_head(report) + "".join(_html_page(p, images) for p in report.pages) + _html_tail(report)


def page_pictures(report: DocumentReport) -> Iterator[tuple[str, bytes]]:
    """("page1.png", PNG bytes) of each annotated page, the pages read again one at a time."""
    if report.document is None:
        raise ValueError("this report does not carry its document; build it with build_report")
    for page, image in zip(report.pages, iter_pages(report.document), strict=True):
        yield f"page{page.page + 1}.png", _png(annotated_page(image.image, page))


def _crop_images(page: PageReport) -> dict[str, bytes]:
    images: dict[str, bytes] = {}
    for s in page.signatures:
        images[f"{s.name}.png"] = _png(s.crop)
        if s.cleaned is not None:
            images[f"{s.name}_cleaned.png"] = _png(s.cleaned)
    return images


def report_images(report: DocumentReport) -> dict[str, bytes]:
    """PNG bytes by file name: annotated pages, signature crops and cleaned crops (all in memory;
    :func:`write_report` writes them one page at a time instead)."""
    images = dict(page_pictures(report))
    for page in report.pages:
        images.update(_crop_images(page))
    return images


def write_report(report: DocumentReport, out: str | Path) -> tuple[Path, ...]:
    """``report.json``, ``report.html`` and the images in ``out``; returns the files written.

    Page by page: each page's picture and crops are drawn, written and inlined into the HTML, then
    dropped, so writing a long document holds one page's images at a time."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InvalidReportOutputError(f"{folder}: exists and is not a folder; give a folder for the report")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    report_json = folder / "report.json"
    report_json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    report_page = folder / "report.html"
    written = []
    with report_page.open("w", encoding="utf-8") as handle:
        handle.write(_html_head(report))
        for page, (name, picture) in zip(report.pages, page_pictures(report), strict=True):
            images = {name: picture, **_crop_images(page)}
            for file, png in images.items():
                target = folder / "images" / file
                target.write_bytes(png)
                written.append(target)
            handle.write(_html_page(page, images))
        handle.write(_html_tail(report))
    return (report_json, report_page, *written)


class InvalidReportOutputError(InkproofError, ValueError):
    """The report cannot be written where it was asked to go."""


__all__ = [
    "DATE_PATTERN",
    "FIELD_NAMES",
    "IGNORE_BELOW",
    "REVIEW_BELOW",
    "DateEvidence",
    "DocumentReport",
    "FieldDetector",
    "InvalidReportOutputError",
    "OcrUnavailableError",
    "PageReport",
    "RapidOcrReader",
    "RuleResult",
    "SignatureFinding",
    "TextLine",
    "TextReader",
    "annotated_page",
    "box_gaps",
    "build_report",
    "combined_verdict",
    "date_position",
    "date_window",
    "is_near",
    "ocr_available",
    "report_html",
    "report_images",
    "write_report",
]

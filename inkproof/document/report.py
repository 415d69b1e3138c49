"""The document report: every signature (and field) on every page, cleaned, verified, and checked.

:func:`build_report` runs the pipeline on a PNG/JPEG/TIFF/PDF:

1. pages (:func:`~inkproof.document.pages.load_pages`, with page and pixel limits);
2. fields per page (:class:`~inkproof.document.detector.PageDetector`): signatures, initials,
   handwritten dates, redactions, logos;
3. each signature cropped and, with a cleaner, cleaned of printed text and lines;
4. with a store: each signature identified among the enrolled writers, or, for ``claimed``
   writers, every claimed writer verified against the signatures (each claim is logged by the
   store) and matched to the signature that fits it best;
5. optional printed text (OCR, :class:`TextReader`) for printed dates;
6. rules, each with a verdict and the pages concerned: signatures present (``expect``),
   claimed writers verified, initials on every page, every signature dated.

:func:`write_report` saves ``report.json``, ``report.html`` (page thumbnails with the boxes, crops,
verdicts) and the images it refers to. Torch-free.

Nearness (a date "next to" a signature): the vertical gap between the two boxes is at most
:data:`NEAR_VERTICAL` of the page height and the horizontal gap at most :data:`NEAR_HORIZONTAL` of
the page width (a gap is 0 when the boxes overlap on that axis). On a letter page at 150 dpi that
is about one inch below or above, and a third of the line width to the side.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from PIL import Image, ImageDraw

from inkproof.document.detector import FieldDetection, PageDetections, PageDetector
from inkproof.document.pages import DEFAULT_DPI, DEFAULT_MAX_PAGES, Page, load_pages
from inkproof.document.synthetic import FIELD_COLOURS

if TYPE_CHECKING:
    from inkproof.document.cleaner import CleanResult
    from inkproof.store import SignatureStore

Box = tuple[int, int, int, int]
Verdict = Literal["pass", "fail"]

NEAR_VERTICAL = 0.08
NEAR_HORIZONTAL = 0.35
#: Pixels added around a signature box before cropping (strokes at the edge of a loose box).
CROP_PAD = 6
IDENTIFY_TOP = 3

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


class OcrUnavailableError(RuntimeError):
    pass


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateEvidence:
    kind: Literal["handwritten", "printed"]
    box: Box
    text: str = ""  # the OCR text of a printed date

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "box": list(self.box), "text": self.text}


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

    @property
    def name(self) -> str:
        return f"page{self.page + 1}_signature_{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.name,
            "page": self.page + 1,
            "box": list(self.box),
            "confidence": round(self.confidence, 4),
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
    text: tuple[TextLine, ...] = ()

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
            "detector_ms": round(self.detections.milliseconds, 1),
        }


@dataclass(frozen=True)
class RuleResult:
    rule: str
    verdict: Verdict
    pages: tuple[int, ...] = ()  # 1-based pages concerned by a failure
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "verdict": self.verdict, "pages": list(self.pages), "detail": self.detail}


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
    images: tuple[np.ndarray, ...] = field(default=(), repr=False)  # the page images

    @property
    def signatures(self) -> tuple[SignatureFinding, ...]:
        return tuple(s for p in self.pages for s in p.signatures)

    @property
    def passed(self) -> bool:
        return all(r.verdict == "pass" for r in self.rules)

    def summary(self) -> dict[str, Any]:
        def count(label: str) -> int:
            return sum(len(p.boxes(label)) for p in self.pages)

        return {
            "pages": len(self.pages),
            "signatures": len(self.signatures),
            "expected_signatures": self.expected,
            "all_expected_present": None if self.expected is None else len(self.signatures) >= self.expected,
            "initials": count("initials"),
            "handwritten_dates": count("handwritten_date"),
            "redactions": count("redaction"),
            "logos": count("logo"),
            "verdict": "pass" if self.passed else "fail",
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "models": {"detector": self.detector, "cleaner": self.cleaner, "verifier": self.verifier},
            "ocr": self.ocr,
            "claimed": list(self.claimed),
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


def is_near(a: Box, b: Box, page_size: tuple[int, int]) -> bool:
    width, height = page_size
    horizontal, vertical = box_gaps(a, b)
    return vertical <= NEAR_VERTICAL * height and horizontal <= NEAR_HORIZONTAL * width


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
    candidates: list[tuple[float, DateEvidence]] = [
        (_distance(box, d.box), DateEvidence("handwritten", d.box))
        for d in page.of("handwritten_date")
        if is_near(box, d.box, page_size)
    ]
    for line in text:
        match = DATE_PATTERN.search(line.text)
        if match and is_near(box, line.box, page_size):
            candidates.append((_distance(box, line.box), DateEvidence("printed", line.box, match.group(0))))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


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
    initials_every_page: bool = False,
    dated: bool = False,
    text_reader: TextReader | None = None,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    progress: Callable[[int, int], None] | None = None,
) -> DocumentReport:
    """Report on one document (see the module docstring). ``detector`` defaults to the bundled
    detector; without ``cleaner`` crops are verified as found; without ``store`` nothing is
    identified or verified (``claimed`` then raises)."""
    if claimed and store is None:
        raise ValueError("claimed writers can only be verified against a store (give --db)")
    if expect is not None and expect < 0:
        raise ValueError(f"expect must be >= 0, got {expect}")
    pages = load_pages(source, dpi=dpi, max_pages=max_pages)  # validates the file before anything else
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    active: FieldDetector = detector or PageDetector.from_card()
    reports = []
    try:
        for page in pages:
            reports.append(_page_report(page, active, cleaner, text_reader))
            if progress is not None:
                progress(len(reports), len(pages))
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

    rules = _rules(reports, expect=expect, claimed=claimed, initials_every_page=initials_every_page, dated=dated)
    return DocumentReport(
        source=pages[0].source,
        sha256=hashlib.sha256(data).hexdigest(),
        detector=active.name,
        cleaner=cleaner.name if cleaner is not None else None,
        verifier=store.card.name if store is not None else None,
        ocr=text_reader is not None,
        pages=tuple(reports),
        rules=tuple(rules),
        expected=expect,
        claimed=tuple(claimed),
        images=tuple(p.image for p in pages),
    )


def _page_report(
    page: Page, detector: FieldDetector, cleaner: CropCleaner | None, text_reader: TextReader | None
) -> PageReport:
    detections = detector.detect(page.image, index=page.index)
    height, width = page.image.shape
    text = tuple(TextLine(*line) for line in text_reader.read(page.image)) if text_reader is not None else ()
    signatures = []
    for number, found in enumerate(detections.of("signature"), start=1):
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
                date=_nearest_date(found.box, detections, text, (width, height)),
            )
        )
    return PageReport(page.index, width, height, detections, tuple(signatures), text)


def _rules(
    pages: Sequence[PageReport],
    *,
    expect: int | None,
    claimed: Sequence[str],
    initials_every_page: bool,
    dated: bool,
) -> list[RuleResult]:
    found = sum(len(p.signatures) for p in pages)
    wanted = 1 if expect is None else expect
    rules = [
        RuleResult(
            "signatures_present",
            "pass" if found >= wanted else "fail",
            detail=f"{found} signature(s) found, {wanted} expected"
            + ("" if expect is not None else " (at least one; set expect for a count)"),
        )
    ]
    if claimed:
        matched = {s.claim["writer"]: s for p in pages for s in p.signatures if s.claim}
        unverified = [w for w in claimed if w not in matched or matched[w].claim["decision"] != "genuine"]  # type: ignore[index]
        failing_pages = sorted({matched[w].page + 1 for w in unverified if w in matched})
        rules.append(
            RuleResult(
                "claimed_writers_verified",
                "fail" if unverified else "pass",
                tuple(failing_pages),
                "every claimed writer matched a genuine signature"
                if not unverified
                else "not verified: "
                + ", ".join(
                    f"{w} ({matched[w].claim['decision']} on page {matched[w].page + 1})"  # type: ignore[index]
                    if w in matched
                    else f"{w} (no signature left to match)"
                    for w in unverified
                ),
            )
        )
    if initials_every_page:
        # A page that carries a full signature counts as initialled: contracts are initialled on
        # the pages that are not signed.
        missing = tuple(p.page + 1 for p in pages if not p.boxes("initials") and not p.signatures)
        rules.append(
            RuleResult(
                "initials_every_page",
                "fail" if missing else "pass",
                missing,
                "pages without initials or a signature: " + ", ".join(map(str, missing))
                if missing
                else "every page is initialled or signed",
            )
        )
    if dated:
        undated = [s for p in pages for s in p.signatures if s.date is None]
        rules.append(
            RuleResult(
                "signatures_dated",
                "fail" if undated else "pass",
                tuple(sorted({s.page + 1 for s in undated})),
                "undated: " + ", ".join(s.name for s in undated)
                if undated
                else "every signature has a date next to it",
            )
        )
    return rules


# --- writing -------------------------------------------------------------------------------------


def annotated_thumbnail(image: np.ndarray, page: PageReport, long_side: int = 900) -> Image.Image:
    scale = min(1.0, long_side / max(image.shape))
    picture = Image.fromarray(image).convert("RGB")
    if scale < 1.0:
        # At least one pixel a side: a 1 x 100000 page scales to 0 rows otherwise.
        picture = picture.resize((max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))))
    draw = ImageDraw.Draw(picture)
    for found in page.detections.detections:
        colour = FIELD_COLOURS.get(found.label, (0, 0, 0))
        x0, y0, x1, y1 = (round(v * scale) for v in found.box)
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=3)
        draw.text((x0, max(0, y0 - 12)), f"{found.label} {found.confidence:.2f}", fill=colour)
    return picture


def _png(image: Image.Image | np.ndarray) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def report_html(report: DocumentReport, images: dict[str, bytes]) -> str:
    """A self-contained HTML page (images inlined as data URLs) for ``report``."""
    summary = report.summary()
    esc = html.escape

    def verdict(value: str) -> str:
        return f'<span class="{esc(value)}">{esc(value.upper())}</span>'

    rules = "".join(
        f"<tr><td>{esc(r.rule)}</td><td>{verdict(r.verdict)}</td>"
        f"<td>{esc(', '.join(map(str, r.pages)) or '-')}</td><td>{esc(r.detail)}</td></tr>"
        for r in report.rules
    )
    sections = []
    for page in report.pages:
        rows = []
        for s in page.signatures:
            crops = f'<img src="{_data_url(images[s.name + ".png"])}" alt="{esc(s.name)}">'
            if s.name + "_cleaned.png" in images:
                crops += f'<img src="{_data_url(images[s.name + "_cleaned.png"])}" alt="cleaned">'
            who = ""
            if s.claim:
                who = f"claim {esc(s.claim['writer'])}: {esc(str(s.claim['decision']))} ({s.claim['fused_score']:.3f})"
            elif s.identified:
                who = "; ".join(
                    f"{esc(str(c.get('external_id')))} {float(c.get('score', float('nan'))):.3f}" for c in s.identified
                )
            date = f"{s.date.kind} {esc(s.date.text)}" if s.date else "none"
            rows.append(
                f"<tr><td>{esc(s.name)}</td><td>{crops}</td><td>{s.confidence:.2f}</td>"
                f"<td>{who or '-'}</td><td>{date}</td></tr>"
            )
        fields = ", ".join(
            f"{label}: {len(page.boxes(label))}" for label in ("initials", "handwritten_date", "redaction", "logo")
        )
        sections.append(
            f'<section><h2>Page {page.page + 1}</h2><p>{esc(fields)}</p><div class="page">'
            f'<img src="{_data_url(images[f"page{page.page + 1}.png"])}" alt="page {page.page + 1}"></div>'
            "<table><tr><th>signature</th><th>crop / cleaned</th><th>confidence</th><th>writer</th><th>date</th></tr>"
            + "".join(rows)
            + "</table></section>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>inkproof report: {esc(report.source)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1b2430; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} td, th {{ border: 1px solid #ccd; padding: .3rem .6rem; }}
td img {{ max-height: 90px; margin-right: .4rem; background: #fff; border: 1px solid #ddd; }}
.page img {{ max-width: 100%; border: 1px solid #99a; }} .pass {{ color: #137a2a; font-weight: bold; }}
.fail {{ color: #b3261e; font-weight: bold; }}
</style></head><body>
<h1>inkproof document report</h1>
<p>{esc(report.source)} &middot; sha256 {esc(report.sha256[:16])}&hellip; &middot; {summary["pages"]} page(s),
{summary["signatures"]} signature(s) &middot; verdict {verdict(summary["verdict"])}</p>
<p>Models: detector {esc(report.detector)}, cleaner {esc(report.cleaner or "none")},
verifier {esc(report.verifier or "none")}; OCR {"on" if report.ocr else "off"}.</p>
<table><tr><th>rule</th><th>verdict</th><th>pages</th><th>detail</th></tr>{rules}</table>
{"".join(sections)}
</body></html>
"""


def report_images(report: DocumentReport) -> dict[str, bytes]:
    """PNG bytes by file name: annotated page thumbnails, signature crops and cleaned crops."""
    images: dict[str, bytes] = {}
    for page, image in zip(report.pages, report.images, strict=True):
        images[f"page{page.page + 1}.png"] = _png(annotated_thumbnail(image, page))
        for s in page.signatures:
            images[f"{s.name}.png"] = _png(s.crop)
            if s.cleaned is not None:
                images[f"{s.name}_cleaned.png"] = _png(s.cleaned)
    return images


def write_report(report: DocumentReport, out: str | Path) -> tuple[Path, ...]:
    """``report.json``, ``report.html`` and the images in ``out``; returns the files written."""
    folder = Path(out)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images = report_images(report)
    written = []
    for name, png in images.items():
        target = folder / "images" / name
        target.write_bytes(png)
        written.append(target)
    report_json = folder / "report.json"
    report_json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    report_page = folder / "report.html"
    report_page.write_text(report_html(report, images), encoding="utf-8")
    return (report_json, report_page, *written)


__all__ = [
    "DATE_PATTERN",
    "DateEvidence",
    "DocumentReport",
    "FieldDetector",
    "PageReport",
    "RapidOcrReader",
    "RuleResult",
    "SignatureFinding",
    "TextLine",
    "TextReader",
    "box_gaps",
    "build_report",
    "is_near",
    "ocr_available",
    "report_html",
    "report_images",
    "write_report",
]

"""The document report on synthetic contracts whose fields are known exactly."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inkproof.document.detector import FieldDetection, PageDetections
from inkproof.document.report import (
    CROP_PAD,
    DATE_PATTERN,
    DocumentReport,
    build_report,
    date_position,
    date_window,
    is_near,
    ocr_available,
    write_report,
)
from inkproof.document.synthetic import SyntheticPage, render_page
from inkproof.evaluation.detection import box_iou
from tests.document.contracts import (
    CONTRACT_SUMMARY,
    PAGE_CONFIGS,
    GroundTruthDetector,
    contract_pages,
    enroll_signers,
    signer,
    tiff_of,
)


@pytest.fixture(scope="module")
def contract() -> tuple[bytes, list[SyntheticPage]]:
    pages = contract_pages()
    return tiff_of(pages), pages


def test_the_contract_has_the_fields_the_test_relies_on(contract: tuple[bytes, list[SyntheticPage]]) -> None:
    _, pages = contract
    labels = [sorted(f.label for f in p.fields) for p in pages]
    assert labels == [["handwritten_date", "logo", "redaction", "signature"], [], ["initials", "signature"]]


def test_rules_report_missing_initials_an_undated_signature_and_redactions(
    contract: tuple[bytes, list[SyntheticPage]],
) -> None:
    data, pages = contract
    report = build_report(data, detector=GroundTruthDetector(pages), expect=2, initials_every_page=True, dated=True)
    rules = {r.rule: r for r in report.rules}
    assert rules["signatures_present"].verdict == "pass"
    assert rules["initials_every_page"].verdict == "fail" and rules["initials_every_page"].pages == (2,)
    assert rules["signatures_dated"].verdict == "fail" and rules["signatures_dated"].pages == (3,)
    assert "Signature 1 on page 3" in rules["signatures_dated"].detail
    first, third = report.signatures
    assert first.date is not None and first.date.kind == "handwritten" and third.date is None
    pages_json = report.to_dict()["pages"]
    assert [len(p["redactions"]) for p in pages_json] == [1, 0, 0]
    assert [len(p["logos"]) for p in pages_json] == [1, 0, 0]
    assert report.summary() | {"verdict": None} == CONTRACT_SUMMARY | {"verdict": None}
    assert not report.passed
    # Expecting more signatures than there are fails that rule; unasked rules are not reported.
    strict = build_report(data, detector=GroundTruthDetector(pages), expect=3)
    assert [(r.rule, r.verdict) for r in strict.rules] == [("signatures_present", "fail")]


def test_crops_hold_the_signature(contract: tuple[bytes, list[SyntheticPage]]) -> None:
    data, pages = contract
    report = build_report(data, detector=GroundTruthDetector(pages))
    for finding in report.signatures:
        x0, y0, x1, y1 = finding.box
        truth = pages[finding.page].image[y0:y1, x0:x1]
        # The box plus a margin of CROP_PAD pixels (these boxes are away from the page edges).
        assert finding.crop.shape == (y1 - y0 + 2 * CROP_PAD, x1 - x0 + 2 * CROP_PAD)
        assert np.array_equal(finding.crop[CROP_PAD:-CROP_PAD, CROP_PAD:-CROP_PAD], truth)


def test_nearness_and_printed_dates() -> None:
    page = (1000, 1400)
    signature = (100, 1000, 300, 1060)
    assert is_near(signature, (100, 1080, 200, 1100), page)  # just below
    assert is_near(signature, (320, 1010, 420, 1040), page)  # beside it on the line
    assert not is_near(signature, (100, 200, 200, 220), page)  # the letter's date at the top
    assert not is_near(signature, (800, 1000, 900, 1060), page)  # far to the right
    for text in ("Date: 12/03/2019", "2019-03-12", "12.3.19", "January26,2016", "March 12, 2019", "12 Mar 2019"):
        assert DATE_PATTERN.search(text), text
    for text in ("Tel (551) 444-3882", "Invoice 2019", "$1,234.56", "Page 1 of 3"):
        assert not DATE_PATTERN.search(text), text


def test_writes_json_html_and_images(contract: tuple[bytes, list[SyntheticPage]], tmp_path: Path) -> None:
    data, pages = contract
    report = build_report(data, detector=GroundTruthDetector(pages), dated=True)
    files = write_report(report, tmp_path / "out")
    names = {f.name for f in files}
    assert {"report.json", "report.html", "page1.png", "page2.png", "page3.png", "page1_signature_1.png"} <= names
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["summary"]["signatures"] == 2 and saved["rules"][1]["rule"] == "signatures_dated"
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 + 2
    # The verdict comes first, in words; rules and fields carry the names a reader knows.
    body = page[page.index("<body>") :]
    assert body.index("FAILED") < body.index("Checks") < body.index("Page 1")
    assert "Every signature dated" in body and "Signature 1 on page 3" in body
    visible = body[: body.index("<details>")]
    for internal in ("signatures_dated", "handwritten_date", "ground-truth", "page1_signature_1"):
        assert internal not in re.sub(r'(src|alt)="[^"]*"', "", visible), internal
    # Page 2 carries no signature: it says so instead of an empty table.
    page2 = body[body.index("<h2>Page 2</h2>") : body.index("<h2>Page 3</h2>")]
    assert "No signatures found on this page." in page2 and "<table>" not in page2
    assert 'class="page"' in body and "width: 100%" in page
    # Full-size page pictures: only box outlines are drawn on the page; labels go to a margin.
    picture = np.asarray(Image.open(tmp_path / "out" / "images" / "page1.png").convert("RGB"))
    gray = pages[0].image
    assert picture.shape[0] == gray.shape[0] and picture.shape[1] > gray.shape[1]
    # (32 gray levels: a pixel may move by half a level, 4 of 255, without being drawn on)
    changed = (np.abs(picture[:, : gray.shape[1]].astype(int) - gray[..., None]) > 5).any(axis=2)
    outline = np.zeros_like(changed)
    for f in pages[0].fields:
        x0, y0, x1, y1 = f.box
        outline[y0:y1, x0:x1] = True
        outline[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3] = False
    assert changed.any() and not (changed & ~outline).any()
    assert (picture == (220, 30, 30)).all(axis=2).any()  # the signature box is drawn in red
    margin = picture[:, gray.shape[1] :]
    assert (margin == (220, 30, 30)).all(axis=2).any()  # and its label in the margin


def test_claimed_writers_are_verified_against_the_store(
    contract: tuple[bytes, list[SyntheticPage]], tmp_path: Path
) -> None:
    from inkproof.store import SignatureStore, open_database
    from inkproof.verifier import Verifier, default_model_path

    if not default_model_path().is_file():
        pytest.fail("the bundled verification model is missing from the package")
    data, pages = contract
    first, third = signer(pages[0]), signer(pages[2])
    with Verifier() as verifier, open_database(tmp_path / "store.db") as db:
        store = SignatureStore(db, verifier)
        assert enroll_signers(store, pages) == [first, third]
        report = build_report(data, detector=GroundTruthDetector(pages), store=store, claimed=[first, third])
        by_writer = {s.claim["writer"]: s for s in report.signatures if s.claim}
        assert by_writer[first].page == 0 and by_writer[third].page == 2
        # Without claims, every signature is identified among the enrolled writers: the report
        # carries what the store answers for the image it verified (the crop, or its cleaned
        # copy). Whether the top candidate is right is the model's accuracy, measured on real
        # held-out pages in docs/benchmarks.md, not this page's (its crops carry stamps and rules
        # that a model may or may not see through).
        identified = build_report(data, detector=GroundTruthDetector(pages), store=store)
        for found in identified.signatures:
            image = found.cleaned if found.cleaned is not None else found.crop
            expected = [c.to_dict() for c in store.identify(image, top=len(found.identified)).candidates]
            assert list(found.identified) == expected
            assert {c["external_id"] for c in found.identified} == {first, third}
        assert all(s.claim is None for s in identified.signatures)
    rule = next(r for r in report.rules if r.rule == "claimed_writers_verified")
    decisions = {w: s.claim["decision"] for w, s in by_writer.items()}  # type: ignore[index]
    assert (rule.verdict == "pass") == all(d == "genuine" for d in decisions.values()), decisions


def test_claims_need_a_store(contract: tuple[bytes, list[SyntheticPage]]) -> None:
    data, pages = contract
    with pytest.raises(ValueError, match="store"):
        build_report(data, detector=GroundTruthDetector(pages), claimed=["alice"])


@pytest.mark.skipif(not ocr_available(), reason="OCR needs the ocr extra (rapidocr-onnxruntime)")
def test_printed_date_next_to_a_signature_is_found_by_ocr(tmp_path: Path) -> None:
    from PIL import ImageDraw, ImageFont

    from inkproof.document.report import RapidOcrReader

    page = render_page(0, PAGE_CONFIGS[2])
    box = next(f.box for f in page.fields if f.label == "signature")
    picture = Image.fromarray(page.image)
    font = ImageFont.load_default(28)
    ImageDraw.Draw(picture).text((box[0], box[3] + 20), "Date: 14/05/2024", fill=0, font=font)
    image = np.asarray(picture)
    fields = (FieldDetection("signature", box, 1.0),)

    class OneSignature:
        name = "one-signature"

        def detect(self, page: np.ndarray, *, index: int = 0) -> PageDetections:
            return PageDetections(index, page.shape[1], page.shape[0], fields, 1.0)

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    report = build_report(buffer.getvalue(), detector=OneSignature(), text_reader=RapidOcrReader(), dated=True)
    (finding,) = report.signatures
    assert finding.date is not None and finding.date.kind == "printed", report.pages[0].text
    assert "14" in finding.date.text and "2024" in finding.date.text
    assert report.rules[-1].verdict == "pass"


def test_bundled_detector_end_to_end(contract: tuple[bytes, list[SyntheticPage]], tmp_path: Path) -> None:
    """The shipped detector on the synthetic contract gives the same verdicts as the ground truth."""
    from inkproof.document.detector import default_model_path

    if not default_model_path().is_file():
        pytest.fail("the bundled detector is missing from the package")
    data, pages = contract
    report: DocumentReport = build_report(data, expect=2, initials_every_page=True, dated=True)
    verdicts = {r.rule: (r.verdict, r.pages) for r in report.rules}
    assert verdicts == {
        "signatures_present": ("pass", ()),
        "initials_every_page": ("fail", (2,)),
        "signatures_dated": ("fail", (3,)),
    }
    # The true redaction is found; stray specks elsewhere are the detector's precision, measured by
    # its AP in docs/benchmarks.md rather than pinned here.
    truth = next(f.box for f in pages[0].fields if f.label == "redaction")
    assert max(box_iou(truth, d.box) for d in report.pages[0].boxes("redaction")) >= 0.5


# --- rules that mean what they say ---------------------------------------------------------------

_PAGE = np.full((1650, 1275), 255, dtype=np.uint8)  # a letter page at 150 dpi
_SIGNATURE = (500, 1200, 800, 1280)


def _png_page() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_PAGE).save(buffer, format="PNG")
    return buffer.getvalue()


class _Fields:
    name = "fixed-fields"

    def __init__(self, *fields: FieldDetection) -> None:
        self.fields = fields

    def detect(self, page: np.ndarray, *, index: int = 0) -> PageDetections:
        return PageDetections(index, page.shape[1], page.shape[0], self.fields, 1.0)


def test_expect_is_exact_unless_at_least() -> None:
    three = _Fields(*(FieldDetection("signature", (100 + 300 * i, 1200, 350 + 300 * i, 1280), 0.97) for i in range(3)))
    exact = build_report(_png_page(), detector=three, expect=2)
    assert [(r.rule, r.verdict) for r in exact.rules] == [("signatures_present", "fail")]
    assert "3 signature(s) found; exactly 2 expected" in exact.rules[0].detail
    assert exact.summary()["all_expected_present"] is False
    at_least = build_report(_png_page(), detector=three, expect=2, at_least=True)
    assert at_least.rules[0].verdict == "pass" and at_least.summary()["all_expected_present"] is True
    assert build_report(_png_page(), detector=three, expect=3).verdict == "pass"


def test_uncertain_signatures_give_review_not_pass() -> None:
    sure = FieldDetection("signature", _SIGNATURE, 0.97)
    doubtful = FieldDetection("signature", (100, 400, 300, 450), 0.84)  # a handwritten note, perhaps
    one_sure = build_report(_png_page(), detector=_Fields(sure, doubtful), expect=1)
    assert one_sure.rules[0].verdict == "review" and one_sure.verdict == "review"
    assert one_sure.rules[0].pages == (1,) and "uncertain" in one_sure.rules[0].detail
    assert [s.uncertain for s in one_sure.signatures] == [True, False]  # numbered top to bottom
    only_doubtful = build_report(_png_page(), detector=_Fields(doubtful))
    assert only_doubtful.rules[0].verdict == "review" and not only_doubtful.passed
    # Trusting the detector down to 0.8 makes both count: two signatures where one is expected.
    assert build_report(_png_page(), detector=_Fields(sure, doubtful), expect=1, review_below=0.8).verdict == "fail"
    # Initials read with low confidence do not make a page count as initialled for sure.
    initials = FieldDetection("initials", (1100, 1550, 1160, 1590), 0.7)
    rules = build_report(_png_page(), detector=_Fields(initials), initials_every_page=True).rules
    assert [(r.rule, r.verdict) for r in rules] == [("signatures_present", "fail"), ("initials_every_page", "review")]


@pytest.mark.parametrize(
    ("date", "counts"),
    [
        ((820, 1220, 960, 1260), "line"),  # beside the signature, on its line
        ((510, 1330, 680, 1360), "below"),  # under the signature and the printed name
        ((500, 1050, 700, 1080), None),  # the letter's date in the body, an inch above
        ((100, 1500, 300, 1530), None),  # far below, in the footer
        ((1150, 1220, 1270, 1260), "line"),  # at the end of the line, 0.27 of the page width away
    ],
)
def test_a_date_counts_on_the_line_or_directly_below(date: tuple[int, int, int, int], counts: str | None) -> None:
    assert date_position(_SIGNATURE, date, (1275, 1650)) == counts
    handwritten = build_report(
        _png_page(),
        detector=_Fields(FieldDetection("signature", _SIGNATURE, 0.97), FieldDetection("handwritten_date", date, 0.95)),
        dated=True,
    )
    assert handwritten.rules[-1].verdict == ("pass" if counts else "fail")


def test_a_printed_date_above_the_signature_fails_the_rule() -> None:
    body_date = (500, 1050, 700, 1080)  # "March 12, 1990" in the body, an inch above

    calls: list[tuple[int, ...]] = []

    class Reader:
        def read(self, page: np.ndarray) -> list[tuple[tuple[int, int, int, int], str, float]]:
            calls.append(page.shape)
            return []

    reader = Reader()
    fields = _Fields(FieldDetection("signature", _SIGNATURE, 0.97))
    report = build_report(_png_page(), detector=fields, dated=True, text_reader=reader)
    assert report.rules[-1].verdict == "fail"
    # OCR read a window around the signature only: it cannot even see the body's date.
    (shape,) = calls
    assert shape[0] * shape[1] < 0.4 * _PAGE.size
    window = date_window(_SIGNATURE, (1275, 1650))
    assert window[1] > body_date[3] and window[3] > _SIGNATURE[3]


def test_ocr_runs_only_for_the_date_rule_and_around_signatures() -> None:
    seen: list[tuple[int, int]] = []

    class Reader:
        def read(self, page: np.ndarray) -> list[tuple[tuple[int, int, int, int], str, float]]:
            seen.append(page.shape)
            # A printed date at the window's top left: beside the signature, on its line.
            return [((5, 45, 120, 70), "12/03/2019", 0.99)]

    fields = _Fields(FieldDetection("signature", _SIGNATURE, 0.97))
    undated_rule = build_report(_png_page(), detector=fields, expect=1, text_reader=Reader())
    assert seen == [] and undated_rule.ocr is False
    dated = build_report(_png_page(), detector=fields, dated=True, text_reader=Reader())
    assert len(seen) == 1 and dated.ocr is True
    (finding,) = dated.signatures
    assert finding.date is not None and finding.date.kind == "printed" and finding.date.text == "12/03/2019"
    assert dated.rules[-1].verdict == "pass"
    # A signature with a sure handwritten date beside it needs no OCR at all.
    seen.clear()
    beside = FieldDetection("handwritten_date", (820, 1220, 960, 1260), 0.95)
    build_report(_png_page(), detector=_Fields(fields.fields[0], beside), dated=True, text_reader=Reader())
    assert seen == []


def test_signatures_the_filter_scores_near_zero_are_set_aside() -> None:
    sure = FieldDetection("signature", _SIGNATURE, 0.97)
    wordmark = FieldDetection("signature", (100, 100, 300, 160), 0.003)  # a cursive company name, re-scored
    report = build_report(_png_page(), detector=_Fields(sure, wordmark), expect=1)
    assert report.verdict == "pass" and len(report.signatures) == 1
    assert [d["box"] for d in report.to_dict()["pages"][0]["set_aside"]] == [[100, 100, 300, 160]]
    kept = build_report(_png_page(), detector=_Fields(sure, wordmark), expect=1, ignore_below=0.0)
    assert kept.verdict == "review" and len(kept.signatures) == 2
    with pytest.raises(ValueError, match="ignore_below"):
        build_report(_png_page(), detector=_Fields(sure), ignore_below=0.95)


# Pages of the issue that reported these failures (Tobacco800, the project's split: the first two
# are held-out test pages, the third a training page), read with the bundled detector and filter.
_ISSUE_PAGES = {
    "34b7572cf8e255ac75b96d7a8684cace_3.tif": 1,  # one signature; a handwritten note beside it
    "986327f834328def448b5a29d7facf2d.tif": 2,  # two stacked signatures; handwritten dates
    "dc6a1206b906217d81e2c643e1aee7e4.tif": 1,  # one signature; a script wordmark
}


@pytest.mark.realdata
@pytest.mark.slow
def test_issue_pages_never_pass_with_a_wrong_count(shared_data: Path) -> None:
    """What the report says on these pages, pinned: none passes on a wrong count -- each goes to review
    (the true signature scored low beside a note, two stacked signatures as one box, the wordmark one
    box the filter is unsure of: see docs/benchmarks.md, reading version 3)."""
    folder = shared_data / "tobacco800" / "pages" / "train"
    verdicts = {
        name: build_report(folder / name, expect=count).rules[0].verdict for name, count in _ISSUE_PAGES.items()
    }
    assert verdicts == {
        "34b7572cf8e255ac75b96d7a8684cace_3.tif": "review",
        "986327f834328def448b5a29d7facf2d.tif": "review",
        "dc6a1206b906217d81e2c643e1aee7e4.tif": "review",  # "pass" with reading version 2
    }

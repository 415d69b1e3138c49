"""The page detector: boxes from probability maps, cards, the bundled model (torch-free), typed errors,
and training examples. Everything here runs on synthetic pages; Tobacco800 tests are marked realdata.

The tiny train -> export -> evaluate -> detect chain runs through the CLI in
``tests/cli/test_document_cli.py``, so the (slow) ONNX export happens once per test session.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inkproof.artifact import ArtifactError
from inkproof.document.box_reading import (
    _dilate,
    boxes_from_probabilities,
    label_runs,
    read_boxes,
    read_page,
    split_stacked,
    tighten_to_ink,
    to_working_scale,
    trim_text_lines,
    working_size,
)
from inkproof.document.detector import (
    DEFAULT_MODEL_DIR,
    DetectorCard,
    DetectorModelMissingError,
    DetectorSettings,
    FieldDetection,
    PageDetector,
    annotate_page,
    detect_document,
)
from inkproof.document.detector_training import DETECTOR_PALETTE, boxes_to_mask, synthetic_truth
from inkproof.document.pages import InvalidDocumentError
from inkproof.document.synthetic import PageConfig, render_page
from inkproof.evaluation.detection import box_iou

REPO_ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("signature", "initials", "handwritten_date", "redaction", "logo")
BUNDLED = DEFAULT_MODEL_DIR / "model.json"


def probability_maps(height: int, width: int) -> np.ndarray:
    """Background everywhere; fields are painted in by the tests."""
    maps = np.zeros((len(CLASSES) + 1, height, width), dtype=np.float32)
    maps[0] = 1.0
    return maps


def paint(maps: np.ndarray, label: str, box: tuple[int, int, int, int], value: float) -> None:
    x0, y0, x1, y1 = box
    channel = CLASSES.index(label) + 1
    maps[channel, y0:y1, x0:x1] = value
    maps[0, y0:y1, x0:x1] = 1.0 - value


# --- connected components and dilation ------------------------------------------------------------


def test_label_runs_agree_with_scipy() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    for _ in range(60):
        mask = rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30)))) < rng.uniform(0.05, 0.7)
        rows, starts, ends, component, count = label_runs(mask)
        labels, expected = ndimage.label(mask, structure=np.ones((3, 3)))
        assert count == expected
        rebuilt = np.zeros_like(labels)
        for row, start, end, index in zip(rows, starts, ends, component, strict=True):
            rebuilt[row, start:end] = index + 1
        # The same partition of the pixels, whatever the numbering.
        pairs = {(int(a), int(b)) for a, b in zip(rebuilt[mask], labels[mask], strict=True)}
        assert len(pairs) == count == len({a for a, _ in pairs}) == len({b for _, b in pairs})
        radius = int(rng.integers(1, 4))
        square = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)
        np.testing.assert_array_equal(_dilate(mask, radius), ndimage.binary_dilation(mask, structure=square))


def test_label_runs_of_an_empty_mask() -> None:
    rows, starts, ends, component, count = label_runs(np.zeros((5, 7), dtype=bool))
    assert count == 0 and len(rows) == len(starts) == len(ends) == len(component) == 0


# --- boxes from probability maps ----------------------------------------------------------------


def test_pieces_of_one_signature_merge_into_one_tight_box() -> None:
    maps = probability_maps(60, 100)
    for x0 in (10, 24, 38):  # three strokes 2 px apart
        paint(maps, "signature", (x0, 20, x0 + 12, 35), 0.9)
    merged = boxes_from_probabilities(maps, DetectorSettings(CLASSES, merge=2, min_area=4))
    assert [(d.label, d.box) for d in merged] == [("signature", (10, 20, 50, 35))]  # not inflated by the dilation
    assert merged[0].confidence == pytest.approx(0.9)
    apart = boxes_from_probabilities(maps, DetectorSettings(CLASSES, merge=0, min_area=4))
    assert sorted(d.box for d in apart) == [(10, 20, 22, 35), (24, 20, 36, 35), (38, 20, 50, 35)]


def test_threshold_min_size_and_classes() -> None:
    maps = probability_maps(80, 120)
    paint(maps, "signature", (5, 5, 45, 25), 0.95)
    paint(maps, "logo", (60, 5, 110, 40), 0.4)  # below the default threshold
    paint(maps, "handwritten_date", (10, 60, 12, 62), 0.99)  # a 2x2 speck
    settings = DetectorSettings(CLASSES, threshold=0.5, min_side=3, min_area=6)
    found = boxes_from_probabilities(maps, settings)
    assert [(d.label, d.box) for d in found] == [("signature", (5, 5, 45, 25))]
    lower = boxes_from_probabilities(maps, settings, threshold=0.3)
    assert [d.label for d in lower] == ["signature", "logo"]  # highest confidence first
    assert lower[1].confidence == pytest.approx(0.4)


def test_class_thresholds_apply_per_class_unless_one_threshold_is_given() -> None:
    maps = probability_maps(64, 128)
    paint(maps, "signature", (5, 5, 40, 30), 0.6)
    paint(maps, "logo", (60, 5, 110, 40), 0.6)
    settings = DetectorSettings(CLASSES, threshold=0.5, min_side=3, min_area=6, class_thresholds=(("logo", 0.7),))
    assert [d.label for d in boxes_from_probabilities(maps, settings)] == ["signature"]
    assert {d.label for d in boxes_from_probabilities(maps, settings, threshold=0.5)} == {"signature", "logo"}


def test_tightening_shrinks_handwriting_boxes_to_their_ink() -> None:
    page = np.full((100, 200), 250, dtype=np.uint8)
    page[40:52, 60:130] = 20  # the ink of a signature
    page[80:90, 10:30] = 20  # ink of something outside every box
    loose = FieldDetection("signature", (50, 30, 150, 70), 0.9)
    logo = FieldDetection("logo", (50, 30, 150, 70), 0.8)
    blank = FieldDetection("signature", (150, 0, 200, 20), 0.7)  # no ink inside: kept as it is
    tight, untouched, kept = tighten_to_ink(page, [loose, logo, blank], ("signature",))
    assert tight.box == (60, 40, 130, 52) and tight.confidence == 0.9
    assert untouched == logo and kept == blank


def test_boxes_map_back_to_page_pixels_and_clip() -> None:
    maps = probability_maps(50, 40)
    paint(maps, "redaction", (10, 5, 40, 15), 0.8)  # touches the right edge
    found = boxes_from_probabilities(
        maps, DetectorSettings(CLASSES), scale=(0.25, 0.5), page_size=(159, 100), threshold=0.5
    )
    # x: 10/0.25 = 40 .. 40/0.25 = 160 -> clipped to the page width 159; y: 5/0.5 .. 15/0.5.
    assert [d.box for d in found] == [(40, 10, 159, 30)]


def test_an_empty_page_has_no_boxes() -> None:
    assert boxes_from_probabilities(probability_maps(64, 48), DetectorSettings(CLASSES)) == []
    with pytest.raises(ValueError, match="probabilities"):
        boxes_from_probabilities(np.zeros((3, 8, 8), np.float32), DetectorSettings(CLASSES))


# --- joining pieces and splitting stacked boxes (settings version 2) ------------------------------


def test_joining_follows_a_weaker_bridge_and_keeps_fields_without_one_apart() -> None:
    maps = probability_maps(200, 200)
    paint(maps, "signature", (10, 20, 40, 35), 0.9)  # two pieces of one signature, 10 px apart ...
    paint(maps, "signature", (50, 20, 80, 35), 0.9)
    paint(maps, "signature", (40, 24, 50, 30), 0.6)  # ... joined by weaker probability
    paint(maps, "signature", (110, 20, 140, 35), 0.9)  # two fields with nothing between them
    paint(maps, "signature", (150, 20, 180, 35), 0.9)
    plain = DetectorSettings(CLASSES, threshold=0.8, merge=1, min_area=4)
    assert len(boxes_from_probabilities(maps, plain)) == 4
    joining = dataclasses.replace(plain, join_thresholds={"signature": 0.5})
    found = boxes_from_probabilities(maps, joining)
    assert sorted(d.box for d in found) == [(10, 20, 80, 35), (110, 20, 140, 35), (150, 20, 180, 35)]
    assert all(d.confidence == pytest.approx(0.9) for d in found)  # the mean above the threshold, not the bridge's
    # A bridge below the join threshold joins nothing; a joined region wider than join_max_width neither.
    assert len(boxes_from_probabilities(maps, dataclasses.replace(joining, join_thresholds={"signature": 0.7}))) == 4
    assert len(boxes_from_probabilities(maps, dataclasses.replace(joining, join_max_width=0.3))) == 4


def scribble(ink: np.ndarray, box: tuple[int, int, int, int], loops: int, seed: int) -> None:
    """Handwriting-like ink: a stroke looping up and down across ``box``, every loop its full height."""
    from PIL import ImageDraw

    x0, y0, x1, y1 = box
    rng = np.random.default_rng(seed)
    xs = np.linspace(x0, x1 - 1, loops * 16)
    phase = np.linspace(0, loops * 2 * np.pi, xs.size) + rng.uniform(0, 1)
    ys = (y0 + y1 - 1) / 2 + (y1 - y0 - 1) / 2 * np.sin(phase)
    image = Image.fromarray(ink.astype(np.uint8) * 255)
    ImageDraw.Draw(image).line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=3)
    ink[:] = np.asarray(image) > 0


def test_two_stacked_signatures_split_at_their_empty_band_and_a_tall_one_does_not() -> None:
    settings = DetectorSettings(CLASSES, split=("signature",))
    stacked = np.zeros((1000, 800), dtype=bool)  # page pixels
    scribble(stacked, (100, 100, 500, 180), loops=8, seed=0)
    scribble(stacked, (110, 230, 480, 310), loops=7, seed=1)  # 50 empty rows between them
    parts = split_stacked(stacked, (100, 100, 500, 310), settings)
    assert len(parts) == 2
    assert box_iou(parts[0], (100, 100, 500, 180)) > 0.9 and box_iou(parts[1], (110, 230, 480, 310)) > 0.9
    tall = np.zeros((1000, 800), dtype=bool)
    scribble(tall, (100, 100, 500, 310), loops=6, seed=2)  # one signature as tall as the pair
    assert split_stacked(tall, (100, 100, 500, 310), settings) == [(100, 100, 500, 310)]
    tail = np.zeros((1000, 800), dtype=bool)
    scribble(tail, (100, 100, 500, 250), loops=8, seed=3)
    scribble(tail, (380, 280, 500, 320), loops=4, seed=4)  # a flourish's end under it: too narrow to be a signature
    assert split_stacked(tail, (100, 100, 500, 320), settings) == [(100, 100, 500, 320)]
    assert len(split_stacked(tail, (100, 100, 500, 320), dataclasses.replace(settings, split_part_width=0.0))) == 2
    short = dataclasses.replace(settings, split_min_height=0.25)  # the pair's box is 0.21 of the page
    assert split_stacked(stacked, (100, 100, 500, 310), short) == [(100, 100, 500, 310)]


def test_a_thin_text_line_under_or_over_a_signature_is_trimmed_off() -> None:
    settings = DetectorSettings(CLASSES, trim=("signature",), trim_line=0.016)  # 16 of 1000 rows
    page = np.zeros((1000, 800), dtype=bool)
    scribble(page, (100, 100, 500, 180), loops=8, seed=0)
    ys, xs = np.nonzero(page)
    signature = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    touching = page.copy()
    page[195:207, 110:400] = True  # a printed name under it, 12 rows tall, after 15 empty rows
    page[80:90, 100:200] = True  # "Sincerely," over it
    whole = (signature[0], 80, signature[2], 207)
    assert trim_text_lines(page, whole, settings) == signature
    taller = dataclasses.replace(settings, trim_line=0.008)  # the lines are taller than that
    assert trim_text_lines(page, whole, taller) == whole
    touching[175:190, 110:400] = True  # no empty row between: one piece of ink
    assert trim_text_lines(touching, (signature[0], signature[1], signature[2], 190), settings)[3] == 190
    lines = np.zeros((1000, 800), dtype=bool)
    lines[100:110, 100:300] = lines[130:140, 100:300] = True  # two thin lines: one is always kept
    assert trim_text_lines(lines, (100, 100, 300, 140), settings) == (100, 100, 300, 110)
    gray = np.where(page, 0, 255).astype(np.uint8)
    maps = probability_maps(250, 200)  # working scale 1/4
    paint(maps, "signature", (24, 19, 126, 53), 0.95)
    plain = DetectorSettings(CLASSES, threshold=0.8, merge=1, min_area=4, tighten=("signature",))
    assert [d.box for d in read_boxes(gray, maps, (0.25, 0.25), plain)] == [whole]
    trimmed = dataclasses.replace(plain, trim=("signature",))
    assert [d.box for d in read_boxes(gray, maps, (0.25, 0.25), trimmed)] == [signature]
    assert trimmed.version == 3 and DetectorSettings.from_dict(json.loads(json.dumps(trimmed.to_dict()))) == trimmed
    with pytest.raises(ValueError, match="trim_line"):
        DetectorSettings(CLASSES, trim_line=0.0)


def test_read_boxes_splits_only_the_classes_named() -> None:
    gray = np.full((1000, 800), 255, dtype=np.uint8)
    ink = np.zeros(gray.shape, dtype=bool)
    scribble(ink, (100, 100, 500, 180), loops=8, seed=0)
    scribble(ink, (110, 230, 480, 310), loops=7, seed=1)
    gray[ink] = 0
    maps = probability_maps(250, 200)  # working scale 1/4
    paint(maps, "signature", (24, 24, 126, 79), 0.95)
    settings = DetectorSettings(CLASSES, threshold=0.8, merge=1, min_area=4, tighten=("signature",))
    whole = read_boxes(gray, maps, (0.25, 0.25), settings)
    ys, xs = np.nonzero(ink)
    assert [d.box for d in whole] == [(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)]  # tightened to the ink
    parts = read_boxes(gray, maps, (0.25, 0.25), dataclasses.replace(settings, split=("signature",)))
    assert len(parts) == 2 and {d.confidence for d in parts} == {whole[0].confidence}
    assert read_boxes(gray, maps, (0.25, 0.25), dataclasses.replace(settings, split=("logo",))) == whole


SHIPPED_V1_SETTINGS = {  # the bundled card's settings before version 2, as it was written
    "classes": list(CLASSES),
    "long_side": 512,
    "threshold": 0.5,
    "merge": 1,
    "min_side": 3,
    "min_area": 16,
    "class_thresholds": {"handwritten_date": 0.8, "initials": 0.6, "logo": 0.3, "redaction": 0.8, "signature": 0.8},
    "tighten": ["signature", "logo", "initials", "handwritten_date", "redaction"],
}


def reference_v1_boxes(maps: np.ndarray, settings: DetectorSettings) -> list[tuple[str, tuple[int, ...], float]]:
    """Version 1's reading, written independently with scipy: threshold, group by the dilated mask's
    8-connected components, box = extent of the undilated pixels, confidence = their mean."""
    ndimage = pytest.importorskip("scipy.ndimage")
    found = []
    for channel, label in enumerate(settings.classes, start=1):
        mask = maps[channel] >= settings.threshold_of(label)
        square = np.ones((2 * settings.merge + 1,) * 2, dtype=bool)
        grouped = ndimage.binary_dilation(mask, structure=square) if settings.merge else mask
        labels, count = ndimage.label(grouped, structure=np.ones((3, 3), dtype=bool))
        for index in range(1, count + 1):
            ys, xs = np.nonzero((labels == index) & mask)
            if len(ys) < settings.min_area or min(np.ptp(xs) + 1, np.ptp(ys) + 1) < settings.min_side:
                continue
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            found.append((label, box, float(maps[channel][ys, xs].astype(np.float64).mean())))
    return sorted(found)


def test_each_class_is_read_from_the_map_of_its_own_working_size() -> None:
    gray = np.full((1000, 800), 255, dtype=np.uint8)
    coarse, fine = probability_maps(250, 200), probability_maps(500, 400)  # working scales 1/4 and 1/2
    paint(coarse, "signature", (20, 20, 60, 40), 0.9)  # read only where the signature's size says
    paint(coarse, "logo", (100, 100, 180, 160), 0.9)
    paint(fine, "signature", (200, 300, 300, 340), 0.95)
    paint(fine, "logo", (10, 10, 30, 30), 0.9)  # logos come from the coarse map
    settings = DetectorSettings(CLASSES, long_side=250, threshold=0.5, merge=1, min_area=4)
    scaled = dataclasses.replace(settings, class_long_sides={"signature": 500})
    maps = {250: (coarse, (0.25, 0.25)), 500: (fine, (0.5, 0.5))}
    got = [(d.label, d.box) for d in read_page(gray, maps, scaled)]
    assert got == [("signature", (400, 600, 600, 680)), ("logo", (400, 400, 720, 640))]
    one = {250: (coarse, (0.25, 0.25))}
    assert read_page(gray, one, settings) == read_boxes(gray, coarse, (0.25, 0.25), settings)


def test_an_old_card_reads_boxes_exactly_as_before() -> None:
    settings = DetectorSettings.from_dict(SHIPPED_V1_SETTINGS)
    assert settings.version == 1 and settings.join_thresholds == () and settings.split == ()
    assert json.dumps(settings.to_dict()) == json.dumps(SHIPPED_V1_SETTINGS)  # saved again, the same bytes
    rng = np.random.default_rng(7)
    for _ in range(5):  # smooth random maps: blobs that touch, pieces, specks
        noise = rng.random((len(CLASSES) + 1, 12, 10)).astype(np.float32)
        maps = np.stack([np.asarray(Image.fromarray(c).resize((80, 96), Image.Resampling.BICUBIC)) for c in noise])
        maps = np.clip(maps, 0.0, 1.0)
        got = sorted((d.label, d.box, d.confidence) for d in boxes_from_probabilities(maps, settings))
        expected = reference_v1_boxes(maps, settings)
        assert [(label, box) for label, box, _ in got] == [(label, box) for label, box, _ in expected]
        assert [c for *_, c in got] == pytest.approx([c for *_, c in expected])
        gray = np.where(rng.random((192, 160)) < 0.1, 0, 255).astype(np.uint8)
        boxes = boxes_from_probabilities(maps, settings, scale=(0.5, 0.5), page_size=(160, 192))
        assert read_boxes(gray, maps, (0.5, 0.5), settings) == tighten_to_ink(gray, boxes, settings.tighten)


def test_settings_versions() -> None:
    settings = DetectorSettings(CLASSES, join_thresholds={"signature": 0.4}, split=("signature",))
    values = json.loads(json.dumps(settings.to_dict()))
    assert values["version"] == 2 and settings.version == 2
    assert DetectorSettings.from_dict(values) == settings
    assert "class_long_sides" not in values  # a version 2 card keeps version 2's layout
    with pytest.raises(ValueError, match="version 4"):
        DetectorSettings.from_dict({**values, "version": 4})
    with pytest.raises(ValueError, match="unknown"):  # a version 1 card cannot carry version 2's keys
        DetectorSettings.from_dict({**SHIPPED_V1_SETTINGS, "split": ["signature"]})
    with pytest.raises(ValueError, match="unknown"):  # nor a version 2 card version 3's
        DetectorSettings.from_dict({**values, "class_long_sides": {"signature": 640}})
    scaled = dataclasses.replace(settings, long_side=512, class_long_sides={"signature": 640, "initials": 640})
    values = json.loads(json.dumps(scaled.to_dict()))
    assert values["version"] == 3 and values["class_long_sides"] == {"initials": 640, "signature": 640}
    assert DetectorSettings.from_dict(values) == scaled
    assert scaled.long_sides == (512, 640) and scaled.long_side_of("signature") == 640
    assert scaled.long_side_of("logo") == 512 and settings.long_sides == (1024,)
    with pytest.raises(ValueError, match="long sides"):
        DetectorSettings(CLASSES, class_long_sides={"signature": 16})
    with pytest.raises(ValueError, match="join thresholds"):
        DetectorSettings(CLASSES, join_thresholds={"signature": 1.0})
    with pytest.raises(ValueError, match="unknown classes"):
        DetectorSettings(CLASSES, split=("stamp",))


def test_working_scale_keeps_the_aspect_ratio() -> None:
    page = np.full((1754, 1240), 255, dtype=np.uint8)
    page[800:900, 300:700] = 0
    small = to_working_scale(page, 512)
    assert small.shape == (512, 362) and working_size(1240, 1754, 512) == (362, 512)
    assert small.min() == 0 and small.max() == 255
    assert to_working_scale(np.zeros((100, 50), np.uint8), 200).shape == (200, 100)  # small pages grow


def test_boxes_to_mask_keeps_small_boxes_inside_big_ones_visible() -> None:
    boxes = [("signature", (20.0, 20.0, 40.0, 30.0)), ("logo", (0.0, 0.0, 100.0, 100.0))]
    mask = boxes_to_mask((50, 50), boxes, (0.5, 0.5))
    names = DETECTOR_PALETTE.names
    assert names[mask[12, 15]] == "signature" and names[mask[2, 2]] == "logo"
    assert int((mask == names.index("signature")).sum()) == 10 * 5


def test_synthetic_training_pages_have_their_boxes_painted() -> None:
    image, boxes = synthetic_truth(3, seed=11, size=(600, 800))
    assert image.shape == (800, 600) and boxes
    small = to_working_scale(image, 200)
    mask = boxes_to_mask(small.shape, boxes, (small.shape[1] / 600, small.shape[0] / 800))
    for label, _ in boxes:
        assert (mask == DETECTOR_PALETTE.names.index(label)).any()


# --- cards and errors ---------------------------------------------------------------------------


def test_settings_round_trip_and_validation() -> None:
    settings = DetectorSettings(
        CLASSES, long_side=640, threshold=0.4, merge=2, class_thresholds=(("logo", 0.7),), tighten=("signature",)
    )
    assert DetectorSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    assert settings.threshold_of("logo") == 0.7 and settings.threshold_of("signature") == 0.4
    with pytest.raises(ValueError, match="threshold"):
        DetectorSettings(CLASSES, threshold=1.0)
    with pytest.raises(ValueError, match="unknown classes"):
        DetectorSettings(CLASSES, tighten=("stamp",))
    with pytest.raises(ValueError, match="class thresholds"):
        DetectorSettings(CLASSES, class_thresholds=(("logo", 0.0),))
    with pytest.raises(ValueError, match="unknown"):
        DetectorSettings.from_dict({**settings.to_dict(), "nms": 0.5})


def test_training_config_round_trips_class_weights() -> None:
    from inkproof.document.detector_training import DetectorTrainingConfig

    plain = DetectorTrainingConfig()
    assert "class_weights" not in plain.to_dict()  # runs saved before the field existed still match
    weighted = DetectorTrainingConfig(class_weights=(1, 1, 4, 2, 1, 2))
    assert DetectorTrainingConfig.from_dict(json.loads(json.dumps(weighted.to_dict()))) == weighted
    with pytest.raises(ValueError, match="class_weights"):
        DetectorTrainingConfig(class_weights=(1.0, 2.0))


def test_missing_and_wrong_models_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(DetectorModelMissingError, match="no detector model"):
        PageDetector.from_card(tmp_path / "nowhere" / "model.json")
    plain = tmp_path / "segmentation.json"
    plain.write_text(json.dumps({"task": "segmentation", "name": "x"}), encoding="utf-8")
    with pytest.raises(ArtifactError, match="not a detector card"):
        DetectorCard.load(plain)


# --- the bundled model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> PageDetector:
    if not BUNDLED.is_file():
        pytest.fail(f"the bundled detector {BUNDLED} is missing from the package")
    return PageDetector.from_card(threads=1)


def test_bundled_card_records_its_settings_and_evaluation(bundled: PageDetector) -> None:
    card = bundled.card
    assert card.settings.classes == CLASSES
    assert card.segmentation.format == "onnx"
    assert card.segmentation.class_names == ("background", *CLASSES)
    assert (DEFAULT_MODEL_DIR / card.segmentation.files["model"]).stat().st_size < 15_000_000
    assert "tobacco800-test" in card.evaluation and "synthetic-test" in card.evaluation


def test_bundled_model_finds_the_signatures_of_an_unseen_synthetic_page(bundled: PageDetector) -> None:
    page = render_page(0, PageConfig(width=1240, height=1754, seed=424242, signatures=(1, 2)))  # an unused seed
    image, boxes = page.image, [(f.label, f.box) for f in page.fields]
    result = bundled.detect(image)
    assert (result.width, result.height) == (image.shape[1], image.shape[0])
    signatures = [box for label, box in boxes if label == "signature"]
    found = [d.box for d in result.of("signature")]
    assert signatures, "the page config asks for signatures"
    for truth in signatures:
        assert max((box_iou(truth, box) for box in found), default=0.0) >= 0.5, (truth, found)
    for detection in result.detections:
        x0, y0, x1, y1 = detection.box
        assert 0 <= x0 < x1 <= result.width and 0 <= y0 < y1 <= result.height
        assert 0.0 < detection.confidence <= 1.0
    blank = bundled.detect(np.full((1100, 850), 250, dtype=np.uint8))
    assert blank.detections == ()


def test_a_second_working_size_reads_its_classes_from_a_second_pass(bundled: PageDetector) -> None:
    page = render_page(0, PageConfig(width=1240, height=1754, seed=424243, signatures=(1, 2), logo_probability=1.0))
    card, model = bundled.card, DEFAULT_MODEL_DIR / bundled.card.segmentation.files["model"]

    def detector(settings: DetectorSettings) -> PageDetector:
        return PageDetector(dataclasses.replace(card, settings=settings), model, threads=1)

    base = card.settings
    both = detector(dataclasses.replace(base, class_long_sides={"signature": 640})).detect(page.image)
    large = detector(dataclasses.replace(base, long_side=640)).detect(page.image)
    small = bundled.detect(page.image)
    assert both.of("signature") == large.of("signature") and both.of("signature")
    assert both.of("logo") == small.of("logo") and small.of("logo")


def test_detect_document_writes_boxes_crops_and_annotated_pages(bundled: PageDetector, tmp_path: Path) -> None:
    pages = [Image.fromarray(synthetic_truth(i, seed=424242)[0]) for i in (0, 1)]
    scan = tmp_path / "scan.tif"
    pages[0].save(scan, save_all=True, append_images=pages[1:])
    result = detect_document(scan, detector=bundled, out=tmp_path / "found")
    assert [p.page for p in result.pages] == [0, 1]
    saved = json.loads((tmp_path / "found" / "boxes.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(result.to_dict()))
    crops = sorted((tmp_path / "found" / "crops").iterdir())
    assert len(crops) == result.count > 0
    first = result.pages[0].detections[0]
    x0, y0, x1, y1 = first.box
    with Image.open(tmp_path / "found" / "crops" / f"page1_{first.label}_1.png") as crop:
        assert crop.size == (x1 - x0, y1 - y0)
    for page in (1, 2):
        with Image.open(tmp_path / "found" / f"page{page}_annotated.png") as annotated:
            assert annotated.mode == "RGB"


def test_runtime_does_not_import_torch(tmp_path: Path) -> None:
    page = tmp_path / "page.png"
    Image.fromarray(synthetic_truth(2, seed=424242)[0]).save(page)
    script = (
        "import sys\n"
        "from inkproof.document.detector import detect_document\n"
        f"result = detect_document({str(page)!r}, threads=1)\n"
        "assert result.pages[0].width == 1240, result.pages[0]\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'timm', 'albumentations'})\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_bad_pages_and_documents_raise_typed_errors(bundled: PageDetector, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(InvalidDocumentError, match="not a PDF or a readable image"):
        detect_document(broken, detector=bundled)
    pages = [Image.new("L", (200, 280), 255) for _ in range(3)]
    pdf = tmp_path / "three.pdf"
    pages[0].save(pdf, save_all=True, append_images=pages[1:])
    with pytest.raises(InvalidDocumentError, match="3 pages exceed the limit of 2"):
        detect_document(pdf, detector=bundled, max_pages=2)


def test_annotated_page_shows_truth_and_predictions() -> None:
    from inkproof.document.detector import FieldDetection

    gray = np.full((400, 300), 255, dtype=np.uint8)
    image = annotate_page(
        gray,
        [FieldDetection("signature", (20, 20, 120, 60), 0.9)],
        {"signature": (220, 30, 30)},
        truth=[("signature", (25, 25, 115, 55))],
        longest=None,
    )
    assert image.shape == (400, 300, 3)
    assert tuple(image[20, 60]) == (220, 30, 30)  # the prediction's top edge
    assert tuple(image[22, 60]) == (0, 170, 0)  # the truth frame, 3 px outside its box
    thin = annotate_page(  # a box one page pixel tall, a tenth of a pixel once downscaled
        np.full((4000, 3000), 255, dtype=np.uint8),
        [FieldDetection("signature", (200, 200, 1200, 201), 0.9)],
        {"signature": (220, 30, 30)},
        longest=400,
    )
    assert thin.shape == (400, 300, 3) and tuple(thin[20, 60]) == (220, 30, 30)


# --- Tobacco800 (real data, never copied into the repository) -----------------------------------


@pytest.fixture(scope="module")
def tobacco(shared_data: Path) -> Path:
    root = shared_data / "tobacco800"
    if not (root / "train.csv").is_file():
        pytest.skip(f"Tobacco800 not found at {root}")
    return root


@pytest.mark.realdata
def test_tobacco_train_validation_and_test_pages_are_disjoint(tobacco: Path) -> None:
    from inkproof.document.detector_training import DetectorTrainingConfig, tobacco_splits

    fit, validation, test = tobacco_splits(tobacco, DetectorTrainingConfig())
    sets = [{p.path for p in part} for part in (fit, validation, test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sum(len(s) for s in sets) == 1039
    authors = [{b.author for p in part for b in p.boxes if b.author} for part in (fit, validation, test)]
    assert not (authors[0] & authors[1]) and not (authors[0] & authors[2]) and not (authors[1] & authors[2])
    documents = [{p.document for p in part} for part in (fit, validation, test)]
    assert not (documents[0] & documents[2]) and not (documents[1] & documents[2])


@pytest.mark.realdata
@pytest.mark.slow
def test_bundled_model_on_held_out_tobacco_pages(tobacco: Path, tmp_path: Path) -> None:
    from inkproof.document.detector_training import evaluate_detector

    evaluation = evaluate_detector(BUNDLED, data=tobacco, out=tmp_path, synthetic_pages=0, annotated=2, progress=False)
    scores = evaluation.sets[0]
    assert scores.name == "tobacco800-test" and scores.pages > 150
    assert scores.ap50["signature"] >= 0.75, scores.ap50  # 0.824 as shipped (docs/benchmarks.md)


# The pages issue 16 names (held-out or training pages of the split; read from the shared data, never
# copied): truth, and what the bundled reading must at least find and at most add.
NAMED_PAGES = {
    # (signatures, found >=, false boxes <= before the filter): the note beside the signature gives 5
    # pieces read at 640 pixels (3 at 512); the filter scores every one of them below 0.12
    "34b7572cf8e255ac75b96d7a8684cace_3.tif": (1, 1, 5),
    "986327f834328def448b5a29d7facf2d.tif": (2, 0, 2),  # two stacked signatures, a printed line between
    "dc6a1206b906217d81e2c643e1aee7e4.tif": (1, 1, 1),  # the script wordmark: one false box, was two
}


@pytest.mark.realdata
def test_the_named_pages_read_with_joining_splitting_and_trimming(tobacco: Path, bundled: PageDetector) -> None:
    from inkproof.document.tobacco import load_tobacco800
    from inkproof.imaging import load_image

    pages = {p.path.name: p for p in load_tobacco800(tobacco).pages if p.path.name in NAMED_PAGES}
    assert bundled.settings.version == 3 and bundled.signature_filter is not None
    # The same maps read without joining, splitting and trimming (version 1's steps).
    version_1 = dataclasses.replace(bundled.settings, join_thresholds=(), split=(), trim=())
    for name, (count, least_found, most_false) in NAMED_PAGES.items():
        gray = load_image(pages[name].path)
        truth = [(b.x0, b.y0, b.x1, b.y1) for b in pages[name].boxes if b.label == "signature"]
        assert len(truth) == count
        maps = bundled.maps(gray)
        counts = {}
        boxes: list[tuple[int, int, int, int]] = []
        for tag, settings in (("v1", version_1), ("shipped", bundled.settings)):
            boxes = [d.box for d in read_page(gray, maps, settings) if d.label == "signature"]
            found = sum(any(box_iou(box, t) >= 0.5 for box in boxes) for t in truth)
            false = sum(max([box_iou(box, t) for t in truth] or [0.0]) < 0.5 for box in boxes)
            counts[tag] = (found, false)
        assert counts["shipped"][0] >= max(least_found, counts["v1"][0]), (name, counts)
        assert counts["shipped"][1] <= min(most_false, counts["v1"][1]), (name, counts)
        assert sorted(d.box for d in bundled.detect(gray).of("signature")) == sorted(boxes), name  # detect() too


def test_training_config_leaves_out_hard_negative_settings_at_their_defaults() -> None:
    from inkproof.document.detector_training import DetectorTrainingConfig

    plain = DetectorTrainingConfig().to_dict()
    assert not {"hard_negatives", "mined_negatives", "mined_repeats"} & set(plain)  # older runs still match
    mined = DetectorTrainingConfig(hard_negatives=0.5, mined_negatives="mined.json", mined_repeats=3)
    assert DetectorTrainingConfig.from_dict(json.loads(json.dumps(mined.to_dict()))) == mined
    with pytest.raises(ValueError, match="hard_negatives"):
        DetectorTrainingConfig(hard_negatives=2.0)


def test_mined_false_signatures_leave_out_fragments_and_weak_boxes() -> None:
    from inkproof.document.mining import false_signatures

    truth = [(100.0, 100.0, 300.0, 160.0)]
    found = [
        ((100.0, 100.0, 290.0, 160.0), 0.95),  # the signature
        ((120.0, 110.0, 170.0, 150.0), 0.9),  # a fragment of it
        ((400.0, 100.0, 500.0, 140.0), 0.92),  # a note beside it
        ((400.0, 300.0, 500.0, 340.0), 0.3),  # too weak to matter
        ((280.0, 100.0, 480.0, 160.0), 0.8),  # a note written on from the signature's end: mostly outside
    ]
    assert false_signatures(found, truth) == [found[2], found[4]]
    assert false_signatures(found, []) == [f for f in found if f[1] >= 0.5]


def test_mined_pages_are_shown_again_and_bad_files_are_refused(tmp_path: Path) -> None:
    from inkproof.document.detector_training import MINED_FORMAT, load_mined, mined_page_order
    from inkproof.document.tobacco import AnnotatedPage
    from inkproof.errors import DatasetFormatError

    pages = [AnnotatedPage(Path(f"pages/train/p{i}.tif"), 100, 100, 150.0, (), f"p{i}") for i in range(4)]
    mined = tmp_path / "mined.json"
    mined.write_text(json.dumps({"format": MINED_FORMAT, "pages": {"p1.tif": [[0, 0, 5, 5, 0.9]], "x.tif": []}}))
    assert mined_page_order(pages, mined, 2) == [0, 1, 2, 3, 1, 1]
    assert mined_page_order(pages, mined, 0) == [0, 1, 2, 3]
    for text in ("not json", json.dumps({"format": "other", "pages": {}}), json.dumps([1])):
        mined.write_text(text)
        with pytest.raises(DatasetFormatError, match="mined"):
            load_mined(mined)
    with pytest.raises(DatasetFormatError, match="cannot read"):
        load_mined(tmp_path / "missing.json")

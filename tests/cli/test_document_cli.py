"""``inkproof detect``, ``inkproof detector train / export / evaluate`` and ``inkproof segment ...``.

A tiny detector (timm's ``test_resnet`` encoder, synthetic pages only, one epoch) goes through
train -> export -> evaluate -> detect; the generic segmentation commands run on a small folder of
drawn images and colour masks. Real detections come from the bundled model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from inkproof.cli.app import app
from inkproof.document.detector import DEFAULT_MODEL_DIR
from inkproof.document.detector_training import TUNE_MERGES, TUNE_MIN_SIDES, TUNE_THRESHOLDS
from inkproof.document.synthetic import PageConfig, render_page
from tests.segmentation.test_segmentation import write_folder

runner = CliRunner()
# The smallest network and run that still exercise every step (decoder, crop, batches, one thread).
TINY_NETWORK = ("--decoder-width", "2", "--crop", "64,64", "--batch-size", "4", "--device", "cpu", "--threads", "1")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def invoke(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("page") / "page.png"
    # A seed no training or evaluation set uses; a page with at least one signature.
    synthetic = render_page(0, PageConfig(width=1240, height=1754, seed=424242, signatures=(1, 2)))
    Image.fromarray(synthetic.image).save(path)
    return path


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A detector trained for one epoch on four synthetic pages and exported (its card)."""
    root = tmp_path_factory.mktemp("detector")
    trained = invoke(
        "detector",
        "train",
        "--synthetic-only",
        "--out",
        str(root / "run"),
        "--epochs",
        "1",
        "--synthetic-pages",
        "4",
        "--synthetic-validation",
        "2",
        "--long-side",
        "128",
        "--architecture",
        "unet",
        "--encoder",
        "tu-test_resnet",
        "--no-pretrained",
        *TINY_NETWORK,
    )
    assert trained["train_examples"] == 4 and trained["validation_examples"] == 2
    assert Path(trained["card_path"]).is_file()
    # A threshold this low makes even a barely trained model report boxes, so outputs can be checked.
    exported = invoke("detector", "export", str(root / "run"), "--out", str(root / "model"), "--threshold", "0.02")
    return Path(exported["card"])


def test_detector_export_writes_a_detector_card(tiny_detector: Path) -> None:
    card = json.loads(tiny_detector.read_text(encoding="utf-8"))
    assert card["format"] == "onnx" and card["files"]["model"] == "model.onnx"
    assert card["detector"]["settings"]["long_side"] == 128
    assert card["detector"]["settings"]["threshold"] == 0.02
    assert card["training"]["detector"]["tobacco"] is False


def test_detector_evaluate_writes_metrics_and_annotated_pages(tiny_detector: Path, tmp_path: Path) -> None:
    payload = invoke(
        "detector",
        "evaluate",
        "--model",
        str(tiny_detector),
        "--synthetic-only",
        "--synthetic-pages",
        "2",
        "--annotated",
        "1",
        "--out",
        str(tmp_path),
        "--threads",
        "1",
    )
    scores = payload["sets"]["synthetic-test"]
    assert scores["pages"] == 2 and set(scores["ap50"]) == {
        "signature",
        "initials",
        "handwritten_date",
        "redaction",
        "logo",
    }
    assert all(0.0 <= v <= 1.0 or v != v for v in scores["ap50"].values())  # NaN: class absent
    assert scores["detect_ms"]["median"] > 0
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["sets"].keys() == {"synthetic-test"}
    assert [Path(p).is_file() for p in scores["annotated"]] == [True]


def test_detector_tune_stores_settings_chosen_on_validation_pages(tiny_detector: Path, tmp_path: Path) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_detector.parent, model)
    payload = invoke("detector", "tune", str(model), "--synthetic-only", "--synthetic-pages", "2", "--threads", "1")
    assert payload["candidates"] == 108  # 6 thresholds x tighten on/off x 3 merge radii x 3 smallest sides
    assert set(payload["validation_ap50_after"]) == set(payload["validation_ap50_before"])
    assert all(k.startswith("synthetic-validation.") for k in payload["validation_ap50_after"])
    card = json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert card["detector"]["settings"] == payload["settings"]
    assert card["training"]["tuning"]["settings"] == payload["settings"]
    chosen = payload["settings"]
    assert chosen["merge"] in TUNE_MERGES and chosen["min_side"] in TUNE_MIN_SIDES
    assert set(chosen["class_thresholds"].values()) <= set(TUNE_THRESHOLDS)
    assert set(chosen["tighten"]) <= set(chosen["classes"])


def test_detect_writes_json_crops_and_annotated_pages(tiny_detector: Path, page: Path, tmp_path: Path) -> None:
    out = tmp_path / "found"
    payload = invoke("detect", str(page), "--model", str(tiny_detector), "--out", str(out), "--threads", "1")
    detections = payload["pages"][0]["detections"]
    assert detections, "a 0.02 threshold finds something on any page"
    assert json.loads((out / "boxes.json").read_text(encoding="utf-8"))["pages"] == payload["pages"]
    first = detections[0]
    crop = out / "crops" / f"page1_{first['label']}_1.png"
    x0, y0, x1, y1 = first["box"]
    with Image.open(crop) as image:
        assert image.size == (x1 - x0, y1 - y0)
    with Image.open(out / "page1_annotated.png") as annotated:
        assert annotated.mode == "RGB" and max(annotated.size) <= 1600
    table = runner.invoke(app, ["detect", str(page), "--model", str(tiny_detector), "--threshold", "0.5"])
    assert table.exit_code == 0, table.output
    assert "ms per page" in table.output


def test_detect_with_the_bundled_model_finds_signatures(page: Path) -> None:
    if not (DEFAULT_MODEL_DIR / "model.json").is_file():
        pytest.fail("the bundled detector is missing from the package")
    payload = invoke("detect", str(page), "--threads", "1")
    assert "signature" in {d["label"] for d in payload["pages"][0]["detections"]}


def test_detect_errors_are_one_line_with_status_2(page: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    pages = [Image.new("L", (200, 280), 255) for _ in range(3)]
    pdf = tmp_path / "three.pdf"
    pages[0].save(pdf, save_all=True, append_images=pages[1:])
    cases = [
        (["detect", str(page), "--model", str(tmp_path / "missing")], "DetectorModelMissingError"),
        (["detect", str(corrupt)], "InvalidDocumentError"),
        (["detect", str(pdf), "--max-pages", "2"], "3 pages exceed the limit of 2"),
        (["detector", "export", str(tmp_path), "--out", str(tmp_path / "x")], "not a detector run"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())  # rich wraps long messages at the terminal width
        assert message in text and "Traceback" not in text
        assert text.startswith("error:") and text.count("error:") == 1, result.output


def test_segment_train_export_predict(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "data", count=8)
    trained = invoke(
        "segment",
        "train",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--epochs",
        "1",
        "--encoder",
        "tu-test_resnet",
        *TINY_NETWORK,
    )
    assert set(trained["iou"]) == {"background", "ink", "box"}
    exported = invoke("segment", "export", str(tmp_path / "run"), "--out", str(tmp_path / "fields.onnx"))
    assert exported["mask_agreement"] > 0.99
    image = sorted((data / "images").iterdir())[0]
    predicted = invoke(
        "segment",
        "predict",
        str(image),
        "--model",
        exported["card"],
        "--out",
        str(tmp_path / "mask.png"),
        "--overlay",
        str(tmp_path / "overlay.png"),
        "--threads",
        "1",
    )
    assert sum(predicted["fractions"].values()) == pytest.approx(1.0)
    palette = {(0, 0, 0), (255, 0, 0), (0, 0, 255)}
    with Image.open(tmp_path / "mask.png") as mask, Image.open(image) as source:
        assert mask.size == source.size
        assert {tuple(c) for c in np.asarray(mask.convert("RGB")).reshape(-1, 3)} <= palette
    with Image.open(tmp_path / "overlay.png") as overlay:
        assert overlay.mode == "RGB"
    missing = runner.invoke(
        app, ["segment", "train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]
    )
    assert missing.exit_code == 2 and "Traceback" not in missing.output

"""``inkproof clean`` and ``inkproof cleaner train / export / benchmark`` on a tiny synthetic cleaner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from inkproof.cli.app import app
from inkproof.document.synthetic import cleaner_example
from tests.helpers import write_png

runner = CliRunner()

TINY_TRAIN = [
    "--synthetic-only",
    "--epochs",
    "1",
    "--examples",
    "8",
    "--encoder",
    "tu-test_resnet",
    "--no-pretrained",
    "--encoder-depth",
    "5",
    "--decoder-width",
    "2",
    "--crop",
    "64,128",
    "--batch-size",
    "4",
    "--validation-synthetic",
    "4",
    "--device",
    "cpu",
    "--threads",
    "1",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cli_cleaner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cleaner train`` then ``cleaner export``: the exported folder."""
    root = tmp_path_factory.mktemp("clean-cli")
    trained = runner.invoke(app, ["cleaner", "train", "--out", str(root / "run"), *TINY_TRAIN, "--json"])
    assert trained.exit_code == 0, trained.output
    payload = json.loads(trained.stdout)
    assert payload["epochs_run"] == 1 and Path(payload["card"]).is_file()
    exported = runner.invoke(app, ["cleaner", "export", str(root / "run"), "--out", str(root / "model"), "--json"])
    assert exported.exit_code == 0, exported.output
    summary = json.loads(exported.stdout)
    assert summary["bytes"] > 0 and max(summary["parity_max_abs_diff"].values()) < 1e-4
    return root / "model"


def test_clean_writes_image_mask_and_json(cli_cleaner: Path, tmp_path: Path) -> None:
    image, _ = cleaner_example(0, size=(90, 250))
    source = write_png(tmp_path / "in.png", image)
    out, mask = tmp_path / "out" / "clean.png", tmp_path / "mask.png"
    result = runner.invoke(
        app, ["clean", str(source), str(out), "--mask", str(mask), "--model", str(cli_cleaner), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["width"] == 250 and payload["height"] == 90 and payload["out"] == str(out)
    cleaned, ink = np.asarray(Image.open(out)), np.asarray(Image.open(mask)) > 0
    assert cleaned.shape == ink.shape == (90, 250)
    assert np.array_equal(cleaned, np.where(ink, image, 255))
    assert payload["ink_pixels"] == int(ink.sum())
    table = runner.invoke(app, ["clean", str(source), str(tmp_path / "again.png"), "--model", str(cli_cleaner)])
    assert table.exit_code == 0 and "ink" in table.output and (tmp_path / "again.png").is_file()


def test_clean_reports_bad_inputs_in_one_line(cli_cleaner: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n but nothing else")
    result = runner.invoke(app, ["clean", str(corrupt), str(tmp_path / "o.png"), "--model", str(cli_cleaner)])
    assert result.exit_code == 2 and "InvalidImageError" in result.output
    assert result.output.startswith("error:") and "Traceback" not in result.output  # one message, no traceback
    missing = runner.invoke(app, ["clean", str(corrupt), str(tmp_path / "o.png"), "--model", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "CleanerModelError" in missing.output
    assert not (tmp_path / "o.png").exists()
    export = runner.invoke(app, ["cleaner", "export", str(tmp_path / "no-run"), "--out", str(tmp_path / "x")])
    assert export.exit_code == 2 and "error" in export.output


def test_train_refuses_to_overwrite_a_run(cli_cleaner: Path, tmp_path: Path) -> None:
    run = cli_cleaner.parent / "run"
    again = runner.invoke(app, ["cleaner", "train", "--out", str(run), *TINY_TRAIN])
    assert again.exit_code == 2 and "resume" in again.output


def test_benchmark_command(cli_cleaner: Path, onnx_model: Path, synthetic_root: Path, tmp_path: Path) -> None:
    common = ["cleaner", "benchmark", "--model", str(onnx_model), "--cleaner", str(cli_cleaner)]
    common += ["--data", str(synthetic_root), "--examples", "3", "--synthetic", "2", "--max-writers", "2"]
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "bench"), "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert "unseen synthetic writers" in record["segmentation"]
    (effect,) = record["verification"].values()
    assert {"clean", "noisy", "noisy_cleaned", "clean_cleaned", "eer_recovered_fraction"} <= set(effect)
    assert (tmp_path / "bench" / "cleaner.json").is_file() and (tmp_path / "bench" / "grid-synthetic.png").is_file()
    table = runner.invoke(app, [*common, "--out", str(tmp_path / "bench2"), "--threads", "1"])
    assert table.exit_code == 0, table.output
    assert "ink IoU" in table.output and "noisy query" in table.output

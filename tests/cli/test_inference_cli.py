from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inkproof.cli.app import app
from inkproof.data.adapters import load_dataset
from inkproof.data.pairs import make_pairs, write_pairs

runner = CliRunner()


def test_verify_one_pair(onnx_model: Path, synthetic_root: Path) -> None:
    genuine = sorted((synthetic_root / "W003" / "genuine").iterdir())
    result = runner.invoke(app, ["verify", str(genuine[0]), str(genuine[1]), "--model", str(onnx_model), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["decision"] in ("genuine", "forgery")
    assert payload["threshold_rule"] == "eer"
    table = runner.invoke(
        app, ["verify", str(genuine[0]), str(genuine[1]), "--model", str(onnx_model), "--threshold", "0"]
    )
    assert table.exit_code == 0
    assert "threshold 0.0000 (custom)" in table.output


def test_verify_pair_file(onnx_model: Path, synthetic_root: Path, tmp_path: Path) -> None:
    dataset = load_dataset(synthetic_root)
    pairs = write_pairs(make_pairs(dataset, seed=0, genuine=1, skilled=1, random=1), tmp_path / "pairs.csv")
    for suffix in ("csv", "json"):
        out = tmp_path / f"results.{suffix}"
        result = runner.invoke(
            app,
            [
                "verify",
                "--pairs",
                str(pairs),
                "--data",
                str(dataset.root),
                "--model",
                str(onnx_model),
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "pairs" in result.output and "accuracy" in result.output
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 30
    assert {"score", "threshold", "decision", "label", "kind"} <= set(rows[0])
    summary = json.loads((tmp_path / "results.json").read_text())["summary"]
    assert summary["pairs"] == 30


def test_verify_pair_file_decodes_each_image_once_and_reports_bad_images_per_pair(
    onnx_model: Path, synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from inkproof.runtime.engine import Engine
    from inkproof.verifier import Verifier

    genuine = sorted((synthetic_root / "W003" / "genuine").iterdir())[:3]
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 100), 255).save(blank)
    pairs_file = tmp_path / "pairs.csv"
    rows = [(genuine[0], genuine[1], 1, "genuine"), (genuine[0], genuine[2], 1, "genuine")]
    rows += [(genuine[1], genuine[2], 1, "genuine"), (genuine[0], blank, 0, "random")]
    with pairs_file.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["img1", "img2", "label", "kind"])
        writer.writerows([str(a), str(b), label, kind] for a, b, label, kind in rows)
    prepared: list[str] = []
    original = Engine.prepare

    def counting(self: Engine, source: object) -> np.ndarray:
        prepared.append(str(source))
        return original(self, source)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "prepare", counting)
    out = tmp_path / "results.csv"
    result = runner.invoke(
        app, ["verify", "--pairs", str(pairs_file), "--model", str(onnx_model), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(prepared) == sorted(str(p) for p in [*genuine, blank])  # four distinct images, four decodes
    summary = json.loads(result.output)["summary"]
    assert (summary["pairs"], summary["scored"], summary["failed"], summary["unreadable_images"]) == (4, 3, 1, 1)
    written = list(csv.DictReader(out.open()))
    assert [bool(r["error"]) for r in written] == [False, False, False, True]
    assert "no signature ink" in written[3]["error"]
    with Verifier(onnx_model) as verifier:  # the same scores as pair by pair
        for row, (a, b, _, _) in zip(written[:3], rows[:3], strict=True):
            assert float(row["score"]) == pytest.approx(verifier.verify(a, b).score, abs=1e-6)


def test_verify_needs_two_images_and_reports_bad_ones(onnx_model: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", "--model", str(onnx_model)])
    assert result.exit_code != 0
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    result = runner.invoke(
        app, ["verify", str(tmp_path / "bad.png"), str(tmp_path / "bad.png"), "--model", str(onnx_model)]
    )
    assert result.exit_code == 2
    assert "InvalidImageError" in result.output


def test_embed_folder_lists_unreadable_files(onnx_model: Path, synthetic_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted((synthetic_root / "W004" / "genuine").iterdir())[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes(b"nope")
    out = tmp_path / "embeddings.npz"
    result = runner.invoke(app, ["embed", str(folder), "--out", str(out), "--model", str(onnx_model), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # the skipped-file warning goes to stderr
    assert payload["embedded"] == 3
    data = np.load(out)
    assert data["embeddings"].shape == (3, 32)
    assert len(data["paths"]) == 3
    assert "broken.png" in str(data["failed"][0])
    assert str(data["model"]) == "compact"
    empty = runner.invoke(app, ["embed", str(tmp_path / "nothing"), "--out", str(out), "--model", str(onnx_model)])
    assert empty.exit_code == 2
    assert "no images" in empty.output

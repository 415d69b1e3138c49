from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inkproof.cli.app import app
from tests.helpers import draw_scribble, write_png

runner = CliRunner()


@pytest.fixture
def cedar_like(tmp_path: Path) -> Path:
    root = tmp_path / "cedar"
    image = draw_scribble(width=40, height=20)
    for writer in range(1, 9):
        for n in range(1, 4):
            write_png(root / f"genuine/original_{writer}_{n}.png", image)
            write_png(root / f"forged/forgeries_{writer}_{n}.png", image)
    return root


def test_describe_table_and_json(cedar_like: Path) -> None:
    result = runner.invoke(app, ["data", "describe", "--data", str(cedar_like)])
    assert result.exit_code == 0, result.output
    assert "cedar" in result.output and "24" in result.output
    result = runner.invoke(app, ["data", "describe", "--data", str(cedar_like), "--json"])
    (summary,) = json.loads(result.output)
    assert (summary["writers"], summary["genuine"], summary["forged"]) == (8, 24, 24)


def test_describe_reads_inkproof_data(cedar_like: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INKPROOF_DATA", str(cedar_like))
    result = runner.invoke(app, ["data", "describe", "--json"])
    assert json.loads(result.output)[0]["writers"] == 8


def test_bad_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "describe", "--data", str(tmp_path), "--format", "cedar"])
    assert result.exit_code == 2
    assert "DatasetFormatError" in result.output
    assert "Traceback" not in result.output


def test_split_and_pairs_are_disjoint_and_reproducible(cedar_like: Path, tmp_path: Path) -> None:
    split = tmp_path / "split.json"
    result = runner.invoke(
        app, ["data", "split", "--data", str(cedar_like), "--out", str(split), "--fractions", "0.5,0.25,0.25"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(split.read_text())
    assert not set(manifest["train"]) & set(manifest["test"])

    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = runner.invoke(app, ["data", "pairs", "--data", str(cedar_like), "--seed", "0", "--out", str(out)])
        assert result.exit_code == 0, result.output
        outputs.append(out)
    for filename in ("split.json", "train.csv", "validation.csv", "test.csv", "pairs.json"):
        assert (outputs[0] / filename).read_bytes() == (outputs[1] / filename).read_bytes()
    roles = json.loads((outputs[0] / "split.json").read_text())
    test_writers = set(roles["test"])
    for line in (outputs[0] / "train.csv").read_text().splitlines()[1:]:
        assert line.split(",")[4] not in test_writers


def test_pairs_with_given_split_and_counts(cedar_like: Path, tmp_path: Path) -> None:
    split = tmp_path / "split.json"
    runner.invoke(
        app,
        [
            "data",
            "split",
            "--data",
            str(cedar_like),
            "--out",
            str(split),
            "--train",
            "1,2,3,4",
            "--validation",
            "5,6",
            "--test",
            "7,8",
        ],
    )
    result = runner.invoke(
        app,
        [
            "data",
            "pairs",
            "--data",
            str(cedar_like),
            "--split",
            str(split),
            "--genuine",
            "2",
            "--skilled",
            "1",
            "--random",
            "1",
            "--out",
            str(tmp_path / "p"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["test"] == {
        "writers": 2,
        "genuine": 4,
        "skilled": 2,
        "random": 2,
        "unknown": 0,
        "total": 8,
    }


def test_subset_commands(cedar_like: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["data", "subset", "--data", str(cedar_like), "--count", "3", "--out", str(tmp_path / "subset.json")],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "subset.json").read_text())["writers"]) == 3
    runner.invoke(app, ["data", "pairs", "--data", str(cedar_like), "--out", str(tmp_path / "p")])
    result = runner.invoke(
        app,
        [
            "data",
            "subset",
            "--pairs",
            str(tmp_path / "p" / "train.csv"),
            "--data",
            str(cedar_like),
            "--fraction",
            "0.5",
            "--out",
            str(tmp_path / "half.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "half.csv").read_text().startswith("img1,img2,label")
    result = runner.invoke(app, ["data", "subset", "--data", str(cedar_like), "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert "exactly one of fraction or count" in result.output


@pytest.mark.realdata
def test_real_cedar_pairs_byte_identical(shared_data: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = runner.invoke(
            app,
            [
                "data",
                "pairs",
                "--data",
                str(shared_data / "cedar"),
                "--seed",
                "0",
                "--out",
                str(tmp_path / name),
            ],
        )
        assert result.exit_code == 0, result.output
    for filename in ("split.json", "train.csv", "validation.csv", "test.csv"):
        assert (tmp_path / "a" / filename).read_bytes() == (tmp_path / "b" / filename).read_bytes()
    roles = json.loads((tmp_path / "a" / "split.json").read_text())
    assert not set(roles["train"]) & set(roles["validation"])
    assert not set(roles["train"]) & set(roles["test"])
    assert not set(roles["validation"]) & set(roles["test"])

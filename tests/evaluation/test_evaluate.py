from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inkproof.cli.app import app
from inkproof.data.adapters import load_dataset
from inkproof.data.pairs import make_pairs, write_pairs
from inkproof.evaluation.evaluate import evaluate
from inkproof.evaluation.scoring import load_scorer
from inkproof.evaluation.selection import select_writers, writers_in
from inkproof.training.trainer import TrainResult, train
from tests.training.test_trainer import tiny_config

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    folder = tmp_path_factory.mktemp("eval")
    return train(tiny_config(synthetic_root, epochs=1), folder / "run", progress=False, cache_dir=folder / "cache")


def test_evaluation_writes_every_artifact(trained: TrainResult, synthetic_root: Path, tmp_path: Path) -> None:
    scorer = load_scorer(trained.card_path)
    dataset, writers, pairs, _label = select_writers(
        scorer.card, trained.run_dir, data=None, data_format=None, split="test", split_file=None, pairs=None
    )
    assert pairs is None and dataset is not None and writers
    split = json.loads((trained.run_dir / "split.json").read_text())
    assert set(writers) == set(split["test"])
    result = evaluate(scorer, dataset, writers, out_dir=tmp_path / "out", ks=(1, 3), cache_dir=tmp_path / "c")
    for name in (
        "metrics.json",
        "scores.csv",
        "roc.png",
        "det.png",
        "score_histogram.png",
        "hardest_pairs.png",
        "eer_by_references.png",
    ):
        assert (tmp_path / "out" / name).is_file(), name
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["threshold_source"] == "validation:eer"
    assert metrics["report"]["threshold"] == pytest.approx(scorer.card.threshold("eer"))
    report = result.report
    assert report.n_genuine > 0 and report.n_skilled > 0 and report.n_random > 0
    assert 0.0 <= report.far_skilled <= 1.0 and 0.0 <= report.far_random <= 1.0
    assert {(r.k, r.fusion) for r in result.references} == {(1, "mean"), (1, "max"), (3, "mean"), (3, "max")}
    rows = (tmp_path / "out" / "scores.csv").read_text().splitlines()
    assert rows[0] == "img1,img2,label,kind,writer,score"
    assert len(rows) - 1 == report.n_genuine + report.n_skilled + report.n_random


def test_threshold_zero_is_a_threshold(trained: TrainResult, synthetic_root: Path, tmp_path: Path) -> None:
    scorer = load_scorer(trained.card_path)
    dataset = load_dataset(synthetic_root)
    writers = list(dataset.writers())[:3]
    result = evaluate(scorer, dataset, writers, out_dir=tmp_path, threshold=0.0, ks=(), plots=False)
    assert result.threshold_source == "override"
    assert result.report.threshold == 0.0
    scores = np.array([float(line.split(",")[-1]) for line in (tmp_path / "scores.csv").read_text().splitlines()[1:]])
    labels = np.array([int(line.split(",")[2]) for line in (tmp_path / "scores.csv").read_text().splitlines()[1:]])
    # Scores are written at full precision: FRR at threshold 0 recomputes exactly from them.
    assert result.report.frr == np.mean(scores[labels == 1] < 0.0)


def test_pair_file_and_cross_dataset_selection(trained: TrainResult, synthetic_root: Path, tmp_path: Path) -> None:
    scorer = load_scorer(trained.card_path)
    dataset = load_dataset(synthetic_root)
    pairs_file = write_pairs(make_pairs(dataset, seed=1, genuine=2, skilled=2, random=2), tmp_path / "p.csv")
    chosen_dataset, writers, pairs, label = select_writers(
        scorer.card,
        trained.run_dir,
        data=synthetic_root,
        data_format=None,
        split="test",
        split_file=None,
        pairs=pairs_file,
    )
    assert chosen_dataset is None and writers is None and pairs is not None and label == "p"
    result = evaluate(scorer, None, None, pairs=pairs, out_dir=tmp_path / "o", plots=False)
    assert result.references == ()
    _, all_writers, _, label = select_writers(
        scorer.card,
        trained.run_dir,
        data=synthetic_root,
        data_format=None,
        split="all",
        split_file=None,
        pairs=None,
    )
    assert all_writers == list(dataset.writers()) and label.endswith("-all")


def test_writer_ids_of_a_combined_split_map_onto_one_dataset(synthetic_root: Path) -> None:
    dataset = load_dataset(synthetic_root)
    assert writers_in(dataset, (f"{dataset.name}/W001", "other/W002", "W003")) == ["W003", "W001"]


def test_evaluate_command(trained: TrainResult, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(trained.run_dir),
            "--out",
            str(tmp_path / "e"),
            "--threshold",
            "0",
            "--no-plots",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["threshold_source"] == "override"
    assert payload["report"]["threshold"] == 0.0
    bad = runner.invoke(app, ["evaluate", "--model", str(trained.run_dir), "--split", "holdout"])
    assert bad.exit_code == 2
    assert "--split must be one of" in bad.output

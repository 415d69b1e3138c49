"""The accuracy benchmark's plan: which writers train, validate and test each entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from inkproof.benchmark.accuracy import PARTS, plan_entries


@pytest.mark.realdata
def test_entries_keep_test_writers_out_of_training(shared_data: Path) -> None:
    entries = plan_entries(shared_data, PARTS, folds=5)
    assert [e.name for e in entries] == [
        "main",
        "cross-bhsig-hindi",
        "cross-cedar",
        *(f"cedar-fold{i}" for i in range(5)),
    ]
    for entry in entries:
        train, validation = set(entry.split.train), set(entry.split.validation)
        assert train and validation and not train & validation
        for _label, dataset_path, writers in entry.tests:
            name = Path(dataset_path).name
            prefixed = {f"{name}/{w}" for w in writers} if len(entry.datasets) > 1 else set(writers)
            if Path(dataset_path) in {Path(d) for d in entry.datasets}:
                assert not prefixed & (train | validation), entry.name
    folds = [set(e.tests[0][2]) for e in entries if e.name.startswith("cedar-fold")]
    assert sum(len(f) for f in folds) == 55 and len(set().union(*folds)) == 55


def test_the_config_file_is_the_bundled_recipe() -> None:
    from inkproof.benchmark.accuracy import DEFAULT_RECIPE
    from inkproof.training.config import TrainConfig, load_config_file

    path = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
    assert load_config_file(path) == DEFAULT_RECIPE
    TrainConfig.from_dict(load_config_file(path))  # valid as a training config

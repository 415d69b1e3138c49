from __future__ import annotations

import json
from pathlib import Path

import pytest

from inkproof.training.tune import trial_config, tune
from tests.training.test_trainer import tiny_config


def test_two_trial_study_and_resume(synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INKPROOF_CACHE", str(tmp_path / "cache"))
    base = tiny_config(synthetic_root, epochs=2)
    result = tune(
        base,
        tmp_path / "studies",
        trials=2,
        grid_trials=1,
        search=["lr", "margin"],
        study_name="t",
        progress=False,
    )
    assert result.trials == 2
    folder = result.folder
    assert folder.parent == tmp_path / "studies" and folder.name.startswith("t-")
    for name in ("study.db", "best_params.json", "summary.md", "history.png", "study.json"):
        assert (folder / name).is_file(), name
    best = json.loads((folder / "best_params.json").read_text())
    assert set(best["params"]) <= {"lr", "margin"}
    assert 0.0 <= best["validation_eer"] <= 1.0
    summary = (folder / "summary.md").read_text()
    assert "| grid |" in summary and "| tpe |" in summary
    # The same study name continues in the same folder.
    again = tune(
        base,
        tmp_path / "studies",
        trials=3,
        grid_trials=1,
        search=["lr", "margin"],
        study_name="t",
        progress=False,
    )
    assert again.folder == folder
    assert again.trials == 3


def test_trial_config_and_search_validation(synthetic_root: Path, tmp_path: Path) -> None:
    base = tiny_config(synthetic_root)
    changed = trial_config(base, {"lr": 0.01, "dropout": 0.2})
    assert changed.lr == 0.01
    assert changed.model_config().dropout == 0.2
    with pytest.raises(ValueError, match="cannot search"):
        tune(base, tmp_path, trials=1, search=["colour"])
    with pytest.raises(ValueError, match="candidate models"):
        tune(base, tmp_path, trials=1, search=["model"])

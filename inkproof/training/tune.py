"""Hyper-parameter search with Optuna: a small grid first, then TPE; validation EER only.

Each trial trains a model with :func:`inkproof.training.trainer.train` and reports the validation
EER after every epoch, so poor trials are pruned early (median rule). Test writers play no part.
The study lives in SQLite inside a timestamped folder; running again with the same study name
continues it there.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inkproof.training.config import TrainConfig

SEARCHABLE: tuple[str, ...] = (
    "lr",
    "batch_size",
    "weight_decay",
    "conv_dropout",
    "dropout",
    "margin",
    "model",
)
DEFAULT_SEARCH: tuple[str, ...] = ("lr", "weight_decay", "margin", "dropout")
GRID: dict[str, list[Any]] = {
    "lr": [3e-4, 1e-3, 3e-3],
    "batch_size": [32, 64],
    "weight_decay": [1e-5, 1e-3],
    "conv_dropout": [0.0, 0.2],
    "dropout": [0.1, 0.4],
    "margin": [0.2, 0.5],
}
STUDY_FILE = "study.json"


@dataclass(frozen=True)
class TuneResult:
    folder: Path
    study_name: str
    best_params: dict[str, Any]
    best_validation_eer: float
    trials: int
    pruned: int


def _suggest(trial: Any, name: str, models: Sequence[str]) -> Any:
    if name == "lr":
        return trial.suggest_float("lr", 1e-4, 5e-3, log=True)
    if name == "batch_size":
        return trial.suggest_categorical("batch_size", [16, 32, 64, 128])
    if name == "weight_decay":
        return trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    if name == "conv_dropout":
        return trial.suggest_float("conv_dropout", 0.0, 0.5)
    if name == "dropout":
        return trial.suggest_float("dropout", 0.0, 0.6)
    if name == "margin":
        return trial.suggest_float("margin", 0.1, 1.0)
    if name == "model":
        return trial.suggest_categorical("model", list(models))
    raise ValueError(f"cannot search {name!r}; searchable: {', '.join(SEARCHABLE)}")


def trial_config(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """``base`` with a trial's parameters applied (model settings go into ``model_settings``)."""
    changes: dict[str, Any] = {}
    model_settings = dict(base.model_settings)
    for name, value in params.items():
        if name in ("conv_dropout", "dropout"):
            model_settings[name] = value
        else:
            changes[name] = value
    if "model" in changes and changes["model"] != base.model:
        # Settings of one architecture may not exist on another; keep only the shared ones.
        model_settings = {k: v for k, v in model_settings.items() if k in ("conv_dropout", "dropout", "embedding_dim")}
    return TrainConfig.from_dict({**base.to_dict(), **changes, "model_settings": model_settings})


def _study_folder(root: Path, study_name: str) -> Path:
    """The folder of an existing study with this name, or a new timestamped one."""
    if root.is_dir():
        for candidate in sorted(root.iterdir(), reverse=True):
            marker = candidate / STUDY_FILE
            if marker.is_file() and json.loads(marker.read_text()).get("study_name") == study_name:
                return candidate
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / f"{study_name}-{stamp}"


def tune(
    base: TrainConfig,
    out: str | Path,
    *,
    trials: int = 20,
    grid_trials: int = 4,
    search: Sequence[str] = DEFAULT_SEARCH,
    models: Sequence[str] = (),
    study_name: str = "inkproof",
    seed: int = 0,
    timeout: float | None = None,
    progress: bool = True,
) -> TuneResult:
    """Run (or continue) a study of ``trials`` trials in total; returns the best parameters."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import optuna

    from inkproof.training.trainer import train

    unknown = set(search) - set(SEARCHABLE)
    if unknown:
        raise ValueError(f"cannot search {sorted(unknown)}; searchable: {', '.join(SEARCHABLE)}")
    if "model" in search and not models:
        raise ValueError("searching 'model' needs a list of candidate models")
    folder = _study_folder(Path(out), study_name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STUDY_FILE).write_text(
        json.dumps({"study_name": study_name, "base": base.to_dict(), "search": list(search)}, indent=2)
    )
    storage = f"sqlite:///{(folder / 'study.db').resolve()}"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    grid_names = [n for n in search if n in GRID][:2]
    grid = {name: GRID[name] for name in grid_names}
    grid_size = math.prod(len(v) for v in grid.values()) if grid else 0
    grid_budget = min(grid_trials, grid_size, trials)

    def objective(trial: optuna.Trial) -> float:
        grid_phase = isinstance(trial.study.sampler, optuna.samplers.GridSampler)
        names = grid_names if grid_phase else list(search)
        params = {name: _suggest(trial, name, models) for name in names}
        config = trial_config(base, params)

        class Report:
            def on_step_end(self, epoch: int, step: int, loss: float) -> None:
                del epoch, step, loss

            def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
                trial.report(metrics["val_eer"], epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"validation EER {metrics['val_eer']:.3f} at epoch {epoch}")

        result = train(
            config,
            folder / "trials" / f"trial-{trial.number:03d}",
            callbacks=[Report()],
            progress=False,
            log=lambda _: None,
        )
        return result.best_validation_eer

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, storage=storage, direction="minimize", load_if_exists=True, pruner=pruner
    )
    done = len([t for t in study.trials if t.state.is_finished()])
    remaining = max(0, trials - done)
    grid_done = len([t for t in study.trials if t.user_attrs.get("phase") == "grid"])
    if grid_budget - grid_done > 0 and remaining > 0:
        study.sampler = optuna.samplers.GridSampler(grid, seed=seed)
        n = min(grid_budget - grid_done, remaining)
        study.optimize(
            _tagged(objective, "grid"),
            n_trials=n,
            timeout=timeout,
            show_progress_bar=progress,
            catch=(RuntimeError,),
        )
        remaining -= n
    if remaining > 0:
        study.sampler = optuna.samplers.TPESampler(seed=seed)
        study.optimize(
            _tagged(objective, "tpe"),
            n_trials=remaining,
            timeout=timeout,
            show_progress_bar=progress,
            catch=(RuntimeError,),
        )
    return _write_outputs(study, folder)


def _tagged(objective: Any, phase: str) -> Any:
    def run(trial: Any) -> float:
        trial.set_user_attr("phase", phase)
        value: float = objective(trial)
        return value

    return run


def _write_outputs(study: Any, folder: Path) -> TuneResult:
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    if not complete:
        raise RuntimeError(f"no trial of study {study.study_name!r} completed; see {folder}")
    best = study.best_trial
    (folder / "best_params.json").write_text(
        json.dumps({"params": best.params, "validation_eer": best.value, "trial": best.number}, indent=2) + "\n"
    )
    lines = ["| trial | phase | state | validation EER | parameters |", "|---|---|---|---|---|"]
    for t in study.trials:
        value = f"{t.value:.2%}" if t.value is not None else "-"
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(t.params.items()))
        lines.append(f"| {t.number} | {t.user_attrs.get('phase', '')} | {t.state.name.lower()} | {value} | {params} |")
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    _plots(study, folder, len(complete))
    return TuneResult(folder, study.study_name, dict(best.params), float(best.value), len(study.trials), len(pruned))


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _plots(study: Any, folder: Path, complete: int) -> None:
    with warnings.catch_warnings():
        # Optuna marks its matplotlib plots experimental; the warning is noise for users.
        warnings.simplefilter("ignore")
        _draw_plots(study, folder, complete)


def _draw_plots(study: Any, folder: Path, complete: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    optuna_plots.plot_optimization_history(study)
    plt.gcf().savefig(folder / "history.png", dpi=110, bbox_inches="tight")
    plt.close("all")
    if complete >= 2 and len(study.best_trial.params) >= 2:
        try:
            optuna_plots.plot_param_importances(study)
        except (ValueError, RuntimeError):  # importances need variation across trials
            plt.close("all")
            return
        plt.gcf().savefig(folder / "importance.png", dpi=110, bbox_inches="tight")
        plt.close("all")

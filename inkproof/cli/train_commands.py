"""``inkproof train``, ``inkproof evaluate`` and ``inkproof models``: thin layers over
:mod:`inkproof.training` and :mod:`inkproof.evaluation` (which need the ``train`` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from inkproof.cli.common import JsonOption, console, print_json, reports_errors

models_app = typer.Typer(help="Registered model architectures.", no_args_is_help=True)


@models_app.command("list")
def list_models(json_out: bool = JsonOption) -> None:
    """Names, descriptions and default settings of the registered models."""
    from inkproof.models.registry import available_models, model_spec

    rows = [(name, model_spec(name)) for name in available_models()]
    if json_out:
        print_json([{"name": n, "description": s.description, "defaults": s.config().to_dict()} for n, s in rows])
        return
    table = Table(title="Registered models")
    table.add_column("name")
    table.add_column("description")
    for name, spec in rows:
        table.add_row(name, spec.description)
    console.print(table)


def _parse_settings(items: list[str] | None) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}")
        try:
            settings[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key.strip()] = raw
    return settings


def _complete_settings(settings: dict[str, Any], height: int | None, width: int | None) -> None:
    """Apply --height/--width to the preprocessing settings and default the data location."""
    if height is not None or width is not None:
        preprocess = dict(settings.get("preprocess", {}))
        preprocess.update({k: v for k, v in (("height", height), ("width", width)) if v is not None})
        settings["preprocess"] = preprocess
    if "data" not in settings:
        from inkproof.data.location import data_root

        settings["data"] = [str(data_root())]


@reports_errors
def train(
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoints, best model, plots, logs)."),
    config: Path | None = typer.Option(None, "--config", help="YAML, TOML or JSON file of training settings."),
    data: list[Path] | None = typer.Option(None, "--data", help="Dataset folder; repeat for several."),
    data_format: str | None = typer.Option(None, "--format", help="Force the dataset layout."),
    split: Path | None = typer.Option(None, "--split", help="Writer split manifest to use."),
    model: str | None = typer.Option(None, help="Registered model name (see `inkproof models list`)."),
    model_option: list[str] | None = typer.Option(None, "--model-option", help="Model setting KEY=VALUE."),
    loss: str | None = typer.Option(None, help="contrastive, double-margin, bce or triplet."),
    margin: float | None = typer.Option(None, help="Contrastive / triplet margin."),
    epochs: int | None = typer.Option(None, min=1),
    batch_size: int | None = typer.Option(None, min=2),
    lr: float | None = typer.Option(None, help="Learning rate."),
    weight_decay: float | None = typer.Option(None),
    optimizer: str | None = typer.Option(None, help="adamw, sgd or rmsprop."),
    schedule: str | None = typer.Option(None, help="cosine, step or constant (after warmup)."),
    warmup_epochs: float | None = typer.Option(None),
    grad_clip: float | None = typer.Option(None, help="Gradient-norm clip; 0 disables."),
    height: int | None = typer.Option(None, help="Input height (preprocessing)."),
    width: int | None = typer.Option(None, help="Input width (preprocessing)."),
    pairs_per_epoch: int | None = typer.Option(None, min=1),
    seed: int | None = typer.Option(None),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    workers: int | None = typer.Option(None, min=0, help="Data-loader workers (default: from CPU count)."),
    threads: int | None = typer.Option(None, min=1, help="torch CPU threads."),
    early_stopping: int | None = typer.Option(None, min=0, help="Stop after N epochs without a better EER."),
    save_after: int | None = typer.Option(None, min=0, help="Only pick a best model from this epoch on."),
    freeze_backbone: bool = typer.Option(False, help="Head-only fine-tuning."),
    init_from: Path | None = typer.Option(None, help="Start from the weights of this model or run."),
    no_augment: bool = typer.Option(False, help="Disable training augmentation."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its latest checkpoint."),
    json_out: bool = JsonOption,
) -> None:
    """Train a model on writer-disjoint splits; the best model (by validation EER) is kept with
    thresholds calibrated on the validation writers."""
    from inkproof.training.config import TrainConfig, load_config_file
    from inkproof.training.trainer import CONFIG_FILE
    from inkproof.training.trainer import train as run_training

    settings: dict[str, Any] = {}
    if resume and config is None and (out / CONFIG_FILE).is_file():
        settings = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
    if config is not None:
        settings.update(load_config_file(config))
    flags = {
        "data": [str(d) for d in data] if data else None,
        "data_format": data_format,
        "split": str(split) if split else None,
        "model": model,
        "loss": loss,
        "margin": margin,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "optimizer": optimizer,
        "schedule": schedule,
        "warmup_epochs": warmup_epochs,
        "pairs_per_epoch": pairs_per_epoch,
        "seed": seed,
        "device": device,
        "num_workers": workers,
        "threads": threads,
        "early_stopping": early_stopping,
        "save_after": save_after,
        "init_from": str(init_from) if init_from else None,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    if grad_clip is not None:
        settings["grad_clip"] = grad_clip or None
    if freeze_backbone:
        settings["freeze_backbone"] = True
    if no_augment:
        settings["augment"] = False
    if model_option:
        settings["model_settings"] = {**settings.get("model_settings", {}), **_parse_settings(model_option)}
    _complete_settings(settings, height, width)
    result = run_training(TrainConfig.from_dict(settings), out, resume=resume)
    if json_out:
        print_json(
            {
                "run": str(result.run_dir),
                "model_card": str(result.card_path),
                "best_epoch": result.best_epoch,
                "best_validation_eer": result.best_validation_eer,
                "epochs_run": result.epochs_run,
                "stopped_early": result.stopped_early,
                "thresholds": result.thresholds.to_dict(),
            }
        )
        return
    console.print(
        f"[green]done[/]: best epoch {result.best_epoch}, validation EER {result.best_validation_eer:.2%}; "
        f"model card {result.card_path}"
    )


@reports_errors
def evaluate(
    model: Path = typer.Option(..., "--model", help="Run folder, model card or model file."),
    data: Path | None = typer.Option(None, "--data", help="Dataset (default: the run's training data)."),
    data_format: str | None = typer.Option(None, "--format"),
    split: str = typer.Option("test", help="Writers to evaluate: test, validation, train or all."),
    split_file: Path | None = typer.Option(None, help="Split manifest (default: the run's split.json)."),
    pairs: Path | None = typer.Option(None, "--pairs", help="Evaluate this pair file instead of generating pairs."),
    threshold: float | None = typer.Option(None, help="Override the calibrated threshold (0 is a threshold)."),
    threshold_rule: str = typer.Option("eer", help="Calibrated threshold to apply: eer, far_1 or far_0_1."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: beside the model)."),
    seed: int = typer.Option(0, help="Pair sampling seed."),
    device: str = typer.Option("auto", help="auto, cpu, cuda (torch models) or cpu/cuda (ONNX)."),
    no_plots: bool = typer.Option(False, help="Skip the figures."),
    json_out: bool = JsonOption,
) -> None:
    """Evaluate on held-out writers with the validation-calibrated threshold."""
    from inkproof.artifact import card_path_for
    from inkproof.evaluation.evaluate import evaluate as run_evaluation
    from inkproof.evaluation.scoring import load_scorer
    from inkproof.evaluation.selection import select_writers

    scorer = load_scorer(model, device=device)
    dataset, writers, pair_set, label = select_writers(
        scorer.card,
        model,
        data=data,
        data_format=data_format,
        split=split,
        split_file=split_file,
        pairs=pairs,
    )
    target = out or _default_eval_dir(model, label)
    result = run_evaluation(
        scorer,
        dataset,
        writers,
        out_dir=target,
        pairs=pair_set,
        threshold=threshold,
        rule=threshold_rule,
        seed=seed,
        plots=not no_plots,
        card_path=card_path_for(model),
    )
    if json_out:
        print_json(result.to_dict())
        return
    report = result.report
    table = Table(
        title=f"{result.model} on {label} ({result.writers} writers), threshold {report.threshold:.4g} "
        f"({result.threshold_source})"
    )
    for column in ("metric", "value"):
        table.add_column(column)
    rows = [
        (
            "pairs (genuine / skilled / random / unknown)",
            f"{report.n_genuine} / {report.n_skilled} / {report.n_random} / {report.n_unknown}",
        ),
        ("FRR", _pct(report.frr)),
        ("FAR skilled", _pct(report.far_skilled)),
        ("FAR random", _pct(report.far_random)),
        ("accuracy", _pct(report.accuracy)),
        ("EER (global threshold)", _pct(report.eer)),
        ("EER skilled / random", f"{_pct(report.eer_skilled)} / {_pct(report.eer_random)}"),
        ("EER per writer (mean)", _pct(report.per_writer_eer)),
        ("AUC", f"{report.auc:.4f}"),
    ]
    rows += [(f"EER with {r.k} reference(s), {r.fusion}", _pct(r.eer)) for r in result.references]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if result.claims:
        claims = Table(title="Claims with K references, thresholds from validation writers (chosen method in bold)")
        for column in ("K", "method", "EER", "EER skilled", "FRR / FAR-skilled at far-skilled-1", "at far-skilled-5"):
            claims.add_column(column)
        for row in sorted(result.claims, key=lambda r: (r.k, not r.chosen, r.eer)):
            strict, standard = row.points["far-skilled-1"], row.points["far-skilled-5"]
            claims.add_row(
                str(row.k),
                f"[bold]{row.method}[/]" if row.chosen else row.method,
                _pct(row.eer),
                _pct(row.eer_skilled),
                f"{_pct(strict['frr'])} / {_pct(strict['far_skilled'])}",
                f"{_pct(standard['frr'])} / {_pct(standard['far_skilled'])}",
            )
        console.print(claims)
    console.print(f"artifacts in {target}")


def _pct(value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.2%}"


def _default_eval_dir(model: Path, label: str) -> Path:
    base = model if model.is_dir() else model.parent
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
    return base / f"eval-{safe}"


@reports_errors
def train_teacher(
    out: Path = typer.Option(..., "--out", help="Teacher run folder; the embeddings file is written into it."),
    config: Path | None = typer.Option(None, "--config", help="Settings overriding the GPU teacher recipe."),
    data: list[Path] | None = typer.Option(None, "--data", help="Dataset folder; repeat for several."),
    split: Path | None = typer.Option(None, "--split", help="Writer split manifest to use."),
    views: int = typer.Option(8, min=0, help="Augmented views embedded per training image (besides the clean one)."),
    epochs: int | None = typer.Option(None, min=1),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its latest checkpoint."),
    json_out: bool = JsonOption,
) -> None:
    """Train the large forgery-aware teacher (GPU recipe: multiscale EfficientNet-Lite0, 150x220,
    mixed precision) and write its embeddings of every training image, clean and augmented, to
    OUT/teacher-embeddings.safetensors for distillation on a CPU (student setting teacher: FILE)."""
    from inkproof.training.config import load_config_file
    from inkproof.training.teacher import train_teacher as run_teacher

    settings: dict[str, Any] = load_config_file(config) if config is not None else {}
    flags = {
        "data": [str(d) for d in data] if data else None,
        "split": str(split) if split else None,
        "epochs": epochs,
        "device": device,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    _complete_settings(settings, None, None)
    result = run_teacher(settings, out, views=views, resume=resume)
    if json_out:
        print_json(result.to_dict())
        return
    console.print(
        f"[green]done[/]: teacher validation EER {result.best_validation_eer:.2%}; embeddings of "
        f"{result.images} images x {result.views + 1} views in {result.embeddings_path}"
    )


@reports_errors
def tune(
    out: Path = typer.Option(Path("runs/tune"), "--out", help="Folder for timestamped study folders."),
    config: Path | None = typer.Option(None, "--config", help="Base training settings (YAML, TOML, JSON)."),
    data: list[Path] | None = typer.Option(None, "--data", help="Dataset folder; repeat for several."),
    model: str | None = typer.Option(None, help="Base model."),
    epochs: int | None = typer.Option(None, min=1, help="Epochs per trial."),
    height: int | None = typer.Option(None),
    width: int | None = typer.Option(None),
    device: str | None = typer.Option(None),
    trials: int = typer.Option(20, min=1, help="Trials in total (an existing study counts its own)."),
    grid_trials: int = typer.Option(4, min=0, help="Trials of the initial grid phase."),
    params_to_search: str = typer.Option(
        "lr,weight_decay,margin,dropout",
        help="Comma list from: lr, batch_size, weight_decay, conv_dropout, dropout, margin, model.",
    ),
    models: str = typer.Option("", help="Candidate models when searching 'model' (comma list)."),
    study_name: str = typer.Option("inkproof", help="Study name; the same name continues the study."),
    seed: int = typer.Option(0, help="Sampler seed."),
    timeout: float | None = typer.Option(None, help="Stop starting trials after this many seconds."),
    json_out: bool = JsonOption,
) -> None:
    """Optuna search over training settings; the objective is validation EER (never test)."""
    from inkproof.training.config import TrainConfig, load_config_file
    from inkproof.training.tune import tune as run_tune

    settings: dict[str, Any] = load_config_file(config) if config else {}
    flags = {
        "data": [str(d) for d in data] if data else None,
        "model": model,
        "epochs": epochs,
        "device": device,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    _complete_settings(settings, height, width)
    result = run_tune(
        TrainConfig.from_dict(settings),
        out,
        trials=trials,
        grid_trials=grid_trials,
        search=[p.strip() for p in params_to_search.split(",") if p.strip()],
        models=[m.strip() for m in models.split(",") if m.strip()],
        study_name=study_name,
        seed=seed,
        timeout=timeout,
    )
    payload = {
        "folder": str(result.folder),
        "study_name": result.study_name,
        "best_params": result.best_params,
        "best_validation_eer": result.best_validation_eer,
        "trials": result.trials,
        "pruned": result.pruned,
    }
    if json_out:
        print_json(payload)
        return
    console.print(
        f"[green]best[/] validation EER {result.best_validation_eer:.2%} with {result.best_params} "
        f"({result.trials} trials, {result.pruned} pruned); study in {result.folder}"
    )


@reports_errors
def calibrate(
    model: Path = typer.Option(..., "--model", help="Model card or folder whose thresholds to recompute."),
    out: Path = typer.Option(..., "--out", help="Folder (or .json) for the recalibrated copy of the card."),
    pairs: Path | None = typer.Option(None, "--pairs", help="Labelled validation pairs (CSV or text)."),
    data: Path | None = typer.Option(None, "--data", help="A validation dataset (all writers) or the pairs' root."),
    data_format: str | None = typer.Option(None, "--format"),
    seed: int = typer.Option(0, help="Pair sampling seed when --data is a dataset."),
    json_out: bool = JsonOption,
) -> None:
    """Recompute the thresholds (EER, FAR 1 %, FAR 0.1 %) on your own validation writers."""
    from inkproof.data.adapters import load_dataset
    from inkproof.data.pairs import make_pairs, read_pair_file
    from inkproof.evaluation.calibration import calibrate as run_calibration

    if pairs is not None:
        pair_set = read_pair_file(pairs, root=data)
        source = str(pairs)
    elif data is not None:
        dataset = load_dataset(data, data_format)
        pair_set = make_pairs(dataset, seed=seed)
        source = str(data)
    else:
        raise typer.BadParameter("give --pairs or --data")
    result = run_calibration(model, pair_set, out, source=source)
    payload = {
        "card": str(result.card_path),
        "thresholds": result.thresholds.to_dict(),
        "previous": result.previous.to_dict() if result.previous else None,
    }
    if json_out:
        print_json(payload)
        return
    t = result.thresholds
    console.print(
        f"[green]wrote[/] {result.card_path}: validation EER {t.validation_eer:.2%} on {t.n_genuine} genuine / "
        f"{t.n_forgery} forgery pairs; thresholds eer {t.eer:.4f}, far_1 {t.far_1:.4f}, far_0_1 {t.far_0_1:.4f}"
    )


@reports_errors
def calibrate_claims(
    model: Path = typer.Option(
        ..., "--model", help="Model card or folder (the bundled one: inkproof/assets/models/default)."
    ),
    data: list[Path] | None = typer.Option(
        None, "--data", help="Dataset folder; repeat for several (default: the card's)."
    ),
    split_file: Path | None = typer.Option(None, help="Split manifest (default: the split recorded in the card)."),
    out: Path | None = typer.Option(None, "--out", help="Write a copy here instead of updating the card in place."),
    ks: str = typer.Option("1,3,5,10", help="Numbers of references to calibrate for."),
    repeats: int = typer.Option(5, min=1, help="Reference draws per writer."),
    seed: int = typer.Option(0),
    cache_dir: Path | None = typer.Option(None, help="Cache of preprocessed images."),
    json_out: bool = JsonOption,
) -> None:
    """Choose the claim scoring method and its operating points per K on VALIDATION writers and
    write the cohort (genuine embeddings of training writers) beside the card; re-run it whenever
    the model changes."""
    from inkproof.evaluation.claims import calibrate_claims as run

    result = run(
        model,
        data=[str(d) for d in data] if data else None,
        split_file=split_file,
        out=out,
        ks=[int(k) for k in ks.split(",") if k.strip()],
        repeats=repeats,
        seed=seed,
        cache_dir=cache_dir,
        log=(lambda message: None) if json_out else (lambda message: console.print(message)),
    )
    if json_out:
        print_json({"card": str(result.card_path), "claims": result.calibration.to_dict()})
        return
    table = Table(title=f"Claims on validation writers ({result.card_path})")
    for column in ("K", "method", "EER", "EER skilled", "FRR @ FAR-skilled 1 %", "FRR @ 5 %", "chosen"):
        table.add_column(column)
    for row in sorted(result.validation, key=lambda r: (r.k, r.eer)):
        table.add_row(
            str(row.k),
            row.method,
            _pct(row.eer),
            _pct(row.eer_skilled),
            _pct(row.points["far-skilled-1"]["frr"]),
            _pct(row.points["far-skilled-5"]["frr"]),
            "yes" if row.chosen else "",
        )
    console.print(table)

"""The accuracy benchmark, reproducible from scratch: ``inkproof benchmark accuracy``.

Every entry trains its own model with the recipe of the bundled model (:data:`DEFAULT_RECIPE`: the
multiscale compact CNN at 150x220 with a CosFace writer-classification loss plus a co-tuplet term
against each writer's own skilled forgeries) on training writers only, picks the checkpoint and the
thresholds on validation writers only, and reports on writers the model never saw.
``with_teacher`` adds, per entry, an EfficientNet-Lite0 teacher fine-tuned from ImageNet
(:data:`TEACHER`) and a student distilled from it (:data:`STUDENT`), reported beside the default model.

* ``main``: CEDAR + BHSig260-Hindi, each split 70/15/15 by writer; reported per dataset on its
  test writers. This is how the bundled model is trained.
* ``cross``: trained on one dataset (its own 85/15 train/validation writers), tested on every
  writer of the other.
* ``cedar-kfold``: CEDAR in k writer-disjoint folds; each fold trains on BHSig's training writers
  and the CEDAR writers outside the fold (validation writers drawn from those), tests on the fold.

For each test: EER, FAR on skilled and on random forgeries and FRR at the validation threshold,
AUC, and the EER of the K-reference protocol (K = 1, 3, 5, 10, mean fusion). Runs are kept in
``<out>/runs`` and reused (or resumed) when the command runs again.

* ``claims``: trains nothing. Writer-dependent claim scoring (every method, K = 1, 3, 5, 10,
  operating points) of the bundled model on the main split's test writers, with the method and
  thresholds its card chose on validation writers (:mod:`inkproof.benchmark.claims`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.data.adapters import load_dataset
from inkproof.data.records import SignatureDataset
from inkproof.data.splits import WriterSplit, kfold_writers, split_writers

PARTS = ("main", "cross", "cedar-kfold", "claims")

DEFAULT_RECIPE: dict[str, Any] = {
    "model": "ms-compact",
    "model_settings": {"width": 16, "embedding_dim": 128, "dropout": 0.1},
    "preprocess": {"height": 150, "width": 220},
    "loss": "cosface",
    "margin": 0.35,
    "skilled_weight": 1.0,
    "skilled_term": "cotuplet",
    "skilled_margin": 0.2,
    "writers_per_batch": 8,
    "samples_per_writer": 6,
    "forgeries_per_writer": 4,
    "lr": 0.003,
    "weight_decay": 0.0001,
    "warmup_epochs": 1,
    "epochs": 20,
    "early_stopping": 6,
}
TEACHER: dict[str, Any] = {
    "model": "efficientnet-lite0",
    "model_settings": {"frozen_blocks": 2, "embedding_dim": 128, "dropout": 0.2},
    "loss": "cosface",
    "margin": 0.35,
    "writers_per_batch": 8,
    "samples_per_writer": 6,
    "forgeries_per_writer": 3,
    "lr": 0.001,
    "weight_decay": 0.0001,
    "warmup_epochs": 1,
    "epochs": 10,
    "early_stopping": 4,
}
STUDENT: dict[str, Any] = {**DEFAULT_RECIPE, "distill_weight": 4.0}
DEFAULT_KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Entry:
    """One trained pair of models and the test sets it is reported on."""

    name: str
    datasets: tuple[str, ...]  # dataset folders used for training
    split: WriterSplit  # writer ids in the combined namespace ("<dataset>/<writer>" for several)
    tests: tuple[tuple[str, str, tuple[str, ...]], ...]  # (label, dataset folder, writers)
    meta: dict[str, Any] = field(default_factory=dict)


def _prefixed(dataset: SignatureDataset, writers: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{dataset.name}/{w}" for w in writers)


def plan_entries(data_root: Path, parts: Sequence[str], folds: int = 5, seed: int = 0) -> list[Entry]:
    """The entries of the benchmark (which writers train, validate and test what)."""
    cedar_path, hindi_path = data_root / "cedar", data_root / "bhsig-hindi"
    cedar, hindi = load_dataset(cedar_path, "cedar"), load_dataset(hindi_path, "bhsig")
    cedar_split = split_writers(cedar.writers(), seed=seed, dataset=cedar.name)
    hindi_split = split_writers(hindi.writers(), seed=seed, dataset=hindi.name)
    entries = []
    if "main" in parts:
        combined = WriterSplit(
            train=_prefixed(cedar, cedar_split.train) + _prefixed(hindi, hindi_split.train),
            validation=_prefixed(cedar, cedar_split.validation) + _prefixed(hindi, hindi_split.validation),
            test=_prefixed(cedar, cedar_split.test) + _prefixed(hindi, hindi_split.test),
            dataset=f"{cedar.name}+{hindi.name}",
            seed=seed,
        )
        entries.append(
            Entry(
                "main",
                (str(cedar_path), str(hindi_path)),
                combined,
                (
                    ("CEDAR (test writers)", str(cedar_path), cedar_split.test),
                    ("BHSig260-Hindi (test writers)", str(hindi_path), hindi_split.test),
                ),
            )
        )
    if "cross" in parts:
        for source, source_path, target, target_path in (
            (hindi, hindi_path, cedar, cedar_path),
            (cedar, cedar_path, hindi, hindi_path),
        ):
            split = split_writers(source.writers(), fractions=(0.85, 0.15, 0.0), seed=seed, dataset=source.name)
            entries.append(
                Entry(
                    f"cross-{source.name}",
                    (str(source_path),),
                    split,
                    (
                        (
                            f"{source.name} -> {target.name} (all {len(target.writers())} writers)",
                            str(target_path),
                            target.writers(),
                        ),
                    ),
                )
            )
    if "cedar-kfold" in parts:
        for fold, cedar_fold in enumerate(kfold_writers(cedar.writers(), folds=folds, seed=seed, dataset=cedar.name)):
            split = WriterSplit(
                train=_prefixed(cedar, cedar_fold.train) + _prefixed(hindi, hindi_split.train),
                validation=_prefixed(cedar, cedar_fold.validation) + _prefixed(hindi, hindi_split.validation),
                test=_prefixed(cedar, cedar_fold.test),
                dataset=f"{cedar.name}+{hindi.name}#fold{fold}",
                seed=seed,
            )
            entries.append(
                Entry(
                    f"cedar-fold{fold}",
                    (str(cedar_path), str(hindi_path)),
                    split,
                    ((f"CEDAR fold {fold} (test writers)", str(cedar_path), cedar_fold.test),),
                    {"fold": fold},
                )
            )
    return entries


def _train_models(
    entry: Entry, runs: Path, *, epoch_scale: float, seed: int, with_teacher: bool, log: Callable[[str], None]
) -> dict[str, Path]:
    """The default model (and, ``with_teacher``, a teacher and its distilled student) of ``entry``,
    as model cards by role; completed runs are reused, partial ones resumed."""
    from inkproof.training.config import TrainConfig
    from inkproof.training.trainer import BEST_DIR, train

    split_file = runs / f"{entry.name}-split.json"
    entry.split.save(split_file)
    recipes = [("default", DEFAULT_RECIPE)] + ([("teacher", TEACHER), ("student", STUDENT)] if with_teacher else [])
    cards: dict[str, Path] = {}
    for role, recipe in recipes:
        run = runs / f"{entry.name}-{role}"
        settings = {**recipe, "data": list(entry.datasets), "split": str(split_file), "seed": seed}
        settings["epochs"] = max(1, round(recipe["epochs"] * epoch_scale))
        if role == "student":
            settings["teacher"] = str(cards["teacher"])
        config = TrainConfig.from_dict(settings)
        finished = (
            (run / "history.json").is_file()
            and (run / BEST_DIR / "model.json").is_file()
            and (len(json.loads((run / "history.json").read_text())) >= config.epochs or (run / "done").exists())
        )
        if not finished:
            log(f"training {entry.name} {role} ({config.model}, {config.epochs} epochs) in {run}")
            train(config, run, resume=(run / "config.json").is_file())
            (run / "done").write_text(time.strftime("%Y-%m-%d %H:%M:%S") + "\n")
        cards[role] = run / BEST_DIR / "model.json"
    return cards


def _evaluate(card: Path, dataset_path: str, writers: Sequence[str], out: Path, seed: int) -> dict[str, Any]:
    from inkproof.evaluation.evaluate import evaluate
    from inkproof.evaluation.scoring import load_scorer

    scorer = load_scorer(card, device="cpu")
    dataset = load_dataset(dataset_path)
    result = evaluate(scorer, dataset, list(writers), out_dir=out, seed=seed, ks=DEFAULT_KS)
    report = result.report.to_dict()
    return {
        "writers": len(writers),
        "threshold": report["threshold"],
        "eer": report["eer"],
        "eer_skilled": report["eer_skilled"],
        "eer_random": report["eer_random"],
        "far_skilled": report["far_skilled"],
        "far_random": report["far_random"],
        "frr": report["frr"],
        "auc": report["auc"],
        "per_writer_eer": report["per_writer_eer"],
        "references": {f"{r.k}": r.eer for r in result.references if r.fusion == "mean"},
        "references_skilled": {f"{r.k}": r.eer_skilled for r in result.references if r.fusion == "mean"},
        "artifacts": str(out),
    }


def run_accuracy_benchmark(
    data_root: str | Path,
    out: str | Path,
    *,
    parts: Sequence[str] = PARTS,
    folds: int = 5,
    epoch_scale: float = 1.0,
    seed: int = 0,
    with_teacher: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train and evaluate every entry; returns the JSON-ready record (also written by the CLI)."""
    from inkproof.benchmark.report import machine_description

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown benchmark parts {sorted(unknown)}; choose from {PARTS}")
    root = Path(out)
    runs = root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    began = time.perf_counter()
    claims = None
    if "claims" in parts:
        from inkproof.benchmark.claims import run_claims_benchmark

        claims = run_claims_benchmark(data_root, seed=seed, cache_dir=root / "cache", log=log)
    for entry in plan_entries(Path(data_root), parts, folds=folds, seed=seed):
        cards = _train_models(entry, runs, epoch_scale=epoch_scale, seed=seed, with_teacher=with_teacher, log=log)
        for label, dataset_path, writers in entry.tests:
            for role, card in cards.items():
                folder = root / "evaluations" / f"{entry.name}-{role}-{Path(dataset_path).name}"
                log(f"evaluating {entry.name} {role} on {label}")
                metrics = _evaluate(card, dataset_path, writers, folder, seed)
                rows.append({"entry": entry.name, "test": label, "model": role, **entry.meta, **metrics})
    if rows:
        _roc_figure(rows, root / "roc.png")
    return {
        "data_root": str(data_root),
        "parts": list(parts),
        "folds": folds,
        "epoch_scale": epoch_scale,
        "seed": seed,
        "recipes": {"default": DEFAULT_RECIPE, **({"teacher": TEACHER, "student": STUDENT} if with_teacher else {})},
        "results": rows,
        **({"claims": claims} if claims is not None else {}),
        "machine": machine_description(),
        "hours": (time.perf_counter() - began) / 3600.0,
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _roc_figure(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """ROC curves of the default model on every test set except the k folds (one per fold would
    crowd the figure; their mean is in the table)."""
    from inkproof.evaluation.plots import plot_roc_comparison

    curves = {}
    for row in rows:
        if row["model"] != "default" or "fold" in row:
            continue
        scores = np.genfromtxt(Path(row["artifacts"]) / "scores.csv", delimiter=",", names=True, dtype=None)
        curves[row["test"]] = (scores["label"].astype(int), scores["score"].astype(float))
    return plot_roc_comparison(curves, path, title="Default model, writers never seen in training") if curves else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f}"


def accuracy_markdown(record: dict[str, Any]) -> str:
    """The table of per-test results plus k-fold means."""
    lines = [
        "All numbers in %, writer-independent: thresholds from validation writers, tests on unseen writers. "
        f"Recipe scale {record['epoch_scale']}, seed {record['seed']}, {record['timestamp']}.",
        "",
        "| entry | test | model | EER | EER skilled | EER random | FAR skilled | FAR random | FRR | AUC | "
        "EER K=1 | K=3 | K=5 | K=10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in record["results"]:
        refs = row["references"]
        lines.append(
            f"| {row['entry']} | {row['test']} | {row['model']} | {_pct(row['eer'])} | {_pct(row['eer_skilled'])} | "
            f"{_pct(row['eer_random'])} | {_pct(row['far_skilled'])} | {_pct(row['far_random'])} | "
            f"{_pct(row['frr'])} | {row['auc']:.4f} | "
            + " | ".join(_pct(refs.get(k)) for k in ("1", "3", "5", "10"))
            + " |"
        )
    folds = [r for r in record["results"] if "fold" in r]
    for model in ("default", "student", "teacher"):
        rows = [r for r in folds if r["model"] == model]
        if rows:
            eer = np.array([r["eer"] for r in rows])
            k5 = np.array([r["references"].get("5", np.nan) for r in rows], dtype=float)
            lines.append("")
            lines.append(
                f"CEDAR {len(rows)}-fold, {model}: EER {100 * eer.mean():.2f} ± {100 * eer.std():.2f}; "
                f"EER with 5 references {100 * np.nanmean(k5):.2f} ± {100 * np.nanstd(k5):.2f}."
            )
    return "\n".join(lines)

"""The training loop: writer-disjoint data, resumable checkpoints, validation EER, calibrated
thresholds in the model card.

Single process on CPU or one GPU; several processes (``torchrun``) use DistributedDataParallel
with NCCL on CUDA or Gloo on CPU. Only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from inkproof.artifact import ModelCard
from inkproof.data.adapters import load_dataset
from inkproof.data.bank import build_image_bank, default_cache_dir
from inkproof.data.pairs import make_pairs
from inkproof.data.records import SignatureDataset, combine_datasets
from inkproof.data.splits import WriterSplit, split_writers
from inkproof.evaluation.metrics import CalibratedThresholds, calibrate_thresholds, equal_error_rate
from inkproof.models.base import SiameseModel, count_embedding_macs, count_parameters
from inkproof.models.device import resolve_device
from inkproof.models.losses import (
    IDENTITY_LOSSES,
    batch_hard_triplet_loss,
    bce_loss,
    contrastive_loss,
    cosface_loss,
    cotuplet_loss,
    double_margin_contrastive_loss,
    skilled_cotuplet_loss,
    skilled_triplet_loss,
)
from inkproof.models.registry import build_model
from inkproof.training import checkpoint as ckpt
from inkproof.training.config import TrainConfig
from inkproof.training.data import (
    BankDataset,
    Selection,
    epoch_rng,
    make_augmenter,
    sample_pairs,
    sample_triplet_batches,
    seed_worker,
)

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
HISTORY_FILE = "history.json"
BEST_DIR = "best"


class TrainingError(RuntimeError):
    """Training cannot start or continue (bad run folder, mismatched resume, no data)."""


class Callback(Protocol):
    def on_step_end(self, epoch: int, step: int, loss: float) -> None: ...

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    card_path: Path
    best_epoch: int
    best_validation_eer: float
    epochs_run: int
    stopped_early: bool
    thresholds: CalibratedThresholds
    history: tuple[dict[str, float], ...] = field(default_factory=tuple)


# --- environment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> tuple[Distributed, torch.device]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return Distributed(rank, world_size, local_rank), device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries still draw from the legacy global RNG
    torch.manual_seed(seed)


def default_workers() -> int:
    cores = os.cpu_count() or 1
    # On a small machine the main process keeps both cores busy with the model; workers only
    # add contention.
    return 0 if cores <= 2 else min(4, cores // 2)


# --- data ----------------------------------------------------------------------------------


def load_training_data(config: TrainConfig) -> tuple[SignatureDataset, WriterSplit]:
    """The (combined) dataset and its writer-disjoint split."""
    if not config.data:
        raise TrainingError("no training data given (--data)")
    datasets = [load_dataset(path, config.data_format) for path in config.data]
    combined = combine_datasets(datasets)
    if config.split is not None:
        split = WriterSplit.load(config.split)
        split.check_against(combined)
        return combined, split
    parts = [
        split_writers(d.writers(), fractions=config.split_fractions, seed=config.split_seed, dataset=d.name)
        for d in datasets
    ]
    if len(parts) == 1:
        return combined, parts[0]

    def prefixed(dataset: SignatureDataset, writers: Sequence[str]) -> tuple[str, ...]:
        return tuple(f"{dataset.name}/{w}" for w in writers)

    return combined, WriterSplit(
        train=sum((prefixed(d, p.train) for d, p in zip(datasets, parts, strict=True)), ()),
        validation=sum((prefixed(d, p.validation) for d, p in zip(datasets, parts, strict=True)), ()),
        test=sum((prefixed(d, p.test) for d, p in zip(datasets, parts, strict=True)), ()),
        dataset=combined.name,
        seed=config.split_seed,
        fractions=config.split_fractions,
    )


# --- objective -----------------------------------------------------------------------------


class Objective(nn.Module):
    """Wraps the model so that one ``forward`` computes the loss of a batch (what DDP needs).

    With ``teacher_embeddings`` (distillation), batches carry the bank index of every image in
    their last columns, and the loss adds ``distill_weight * (1 - cosine(student, teacher))``.
    """

    def __init__(
        self,
        model: SiameseModel,
        config: TrainConfig,
        teacher_embeddings: torch.Tensor | None = None,
        identities: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.teacher_embeddings = teacher_embeddings
        # CosFace keeps one class centre per training identity; they are not part of the model.
        self.centres = (
            nn.Parameter(torch.randn(identities, model.config.embedding_dim) * 0.01)
            if config.loss == "cosface"
            else None
        )

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        config = self.config
        if config.loss == "cosface":
            assert self.centres is not None
            images, identities, genuine = batch[:3]
            embeddings = self.model.embed(images)
            loss = cosface_loss(embeddings, identities, self.centres, config.cosface_scale, config.margin)
            if config.skilled_weight:
                writers = self.centres.shape[0] // 2  # forgeries of writer w have identity w + writers
                if config.skilled_term == "cotuplet":
                    term = skilled_cotuplet_loss(
                        embeddings, identities, genuine.bool(), writers, config.skilled_margin, config.cotuplet_scale
                    )
                else:
                    term = skilled_triplet_loss(embeddings, identities, genuine.bool(), writers, config.skilled_margin)
                loss = loss + config.skilled_weight * term
            return loss + self._distillation(embeddings, batch[3:])
        if config.loss == "cotuplet":
            images, identities, genuine = batch[:3]
            embeddings = self.model.embed(images)
            loss = cotuplet_loss(embeddings, identities, genuine.bool(), config.margin, config.cotuplet_scale)
            return loss + self._distillation(embeddings, batch[3:])
        if config.loss == "triplet":
            images, identities, genuine = batch[:3]
            embeddings = self.model.embed(images)
            metric: Literal["cosine", "euclidean"] = "cosine" if self.model.config.head == "cosine" else "euclidean"
            loss = batch_hard_triplet_loss(embeddings, identities, genuine.bool(), config.margin, metric)
            return loss + self._distillation(embeddings, batch[3:])
        first, second, targets = batch[:3]
        embeddings = self.model.embed(torch.cat([first, second]))
        a, b = embeddings.chunk(2)
        if config.loss == "bce":
            loss = bce_loss(self.model.score(a, b), targets)
        elif config.loss == "contrastive":
            loss = contrastive_loss(self.model.distance(a, b), targets, config.margin)
        else:
            loss = double_margin_contrastive_loss(
                self.model.distance(a, b), targets, config.positive_margin, config.negative_margin
            )
        return loss + self._distillation(embeddings, batch[3:])

    def _distillation(self, embeddings: torch.Tensor, indices: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.teacher_embeddings is None or not indices:
            return embeddings.new_zeros(())
        targets = self.teacher_embeddings[torch.cat(indices)]
        agreement = torch.nn.functional.cosine_similarity(embeddings, targets, dim=1)
        return self.config.distill_weight * (1.0 - agreement).mean()


def make_optimizer(config: TrainConfig, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=True,
        )
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)


class LearningRateSchedule:
    """Linear warmup, then cosine decay, step decay or a constant rate (per optimisation step).

    A picklable callable object (not a lambda) so the scheduler's state serialises cleanly.
    """

    def __init__(self, config: TrainConfig, steps_per_epoch: int) -> None:
        self.kind = config.schedule
        self.warmup = max(0, round(config.warmup_epochs * steps_per_epoch))
        self.total = max(1, config.epochs * steps_per_epoch)
        self.step_every = max(1, config.step_size * steps_per_epoch)
        self.gamma = config.gamma

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if self.kind == "cosine":
            progress = (step - self.warmup) / max(1, self.total - self.warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        if self.kind == "step":
            return float(self.gamma ** ((step - self.warmup) // self.step_every))
        return 1.0


# --- evaluation helpers (also used by inkproof.evaluation) ----------------------------------


@torch.no_grad()
def embed_bank(model: SiameseModel, bank: np.ndarray, device: torch.device, batch_size: int = 128) -> torch.Tensor:
    """Embeddings of every image of a uint8 bank, in eval mode."""
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(bank), batch_size):
        images = torch.from_numpy(bank[start : start + batch_size].astype(np.float32) / 255.0).unsqueeze(1)
        chunks.append(model.embed(images.to(device)).float().cpu())
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros(0, model.config.embedding_dim)


@torch.no_grad()
def score_index_pairs(model: SiameseModel, embeddings: torch.Tensor, pairs: np.ndarray) -> np.ndarray:
    """Scores of (index_a, index_b) rows against a table of embeddings."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for start in range(0, len(pairs), 4096):
        rows = torch.from_numpy(pairs[start : start + 4096])
        a = embeddings[rows[:, 0]].to(device)
        b = embeddings[rows[:, 1]].to(device)
        scores.append(model.score(a, b).float().cpu())
    model.train(was_training)
    return torch.cat(scores).numpy().astype(np.float64) if scores else np.zeros(0)


@dataclass(frozen=True)
class ValidationSet:
    """Validation pairs over the validation writers' image bank: per writer the genuine pairs, the
    skilled-forgery pairs and as many random-forgery pairs as skilled ones (the evaluation protocol).

    With several datasets, pairs are made per dataset: a random forgery then comes from the same
    dataset (another script or scanner would make it trivially easy), and the EER of each
    dataset is reported as well as the pooled one.
    """

    bank: np.ndarray
    pairs: np.ndarray  # (n, 2) bank indices
    labels: np.ndarray
    kinds: np.ndarray
    groups: np.ndarray  # dataset of each pair ("" for a single dataset)

    @classmethod
    def build(
        cls,
        dataset: SignatureDataset,
        writers: Sequence[str],
        bank: np.ndarray,
        selection: Selection,
        config: TrainConfig,
    ) -> ValidationSet:
        count = config.validation_pairs
        index = selection.index_of()
        by_group: dict[str, list[str]] = {}
        for writer in writers:
            by_group.setdefault(writer.split("/", 1)[0] if "/" in writer else "", []).append(writer)
        rows, labels, kinds, groups = [], [], [], []
        for group, members in sorted(by_group.items()):
            # As many random as skilled pairs per writer: the protocol evaluation reports, so that the
            # checkpoint and the calibrated thresholds are chosen on the pair mix they are judged on.
            pairs = make_pairs(dataset, writers=members, seed=config.seed, genuine=count, skilled=count)
            rows += [(index[p.reference], index[p.query]) for p in pairs.pairs]
            labels.append(pairs.labels())
            kinds += [p.kind for p in pairs.pairs]
            groups += [group] * len(pairs)
        return cls(bank, np.array(rows, dtype=np.int64), np.concatenate(labels), np.array(kinds), np.array(groups))

    def evaluate(self, model: SiameseModel, device: torch.device) -> tuple[dict[str, float], np.ndarray]:
        scores = score_index_pairs(model, embed_bank(model, self.bank, device), self.pairs)
        metrics = {"val_eer": equal_error_rate(self.labels, scores).eer}
        for kind in ("skilled", "random"):
            keep = (self.kinds == "genuine") | (self.kinds == kind)
            if (self.kinds == kind).any():
                metrics[f"val_eer_{kind}"] = equal_error_rate(self.labels[keep], scores[keep]).eer
        names = sorted(set(self.groups.tolist()) - {""})
        if len(names) > 1:
            for name in names:
                keep = self.groups == name
                metrics[f"val_eer_{name}"] = equal_error_rate(self.labels[keep], scores[keep]).eer
        return metrics, scores


# --- the run -------------------------------------------------------------------------------


def _check_resume(run_dir: Path, config: TrainConfig) -> None:
    saved = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    current = json.loads(config.to_json())
    # Extending a run (more epochs, other early stopping) is fine; anything else would mix two runs.
    tolerated = {"epochs", "early_stopping", "num_workers", "device", "threads", "tensorboard"}
    different = sorted(k for k in current if k not in tolerated and saved.get(k) != current[k])
    if different:
        raise TrainingError(f"cannot resume {run_dir}: settings differ from the saved run: {different}")


def _load_initial_weights(model: SiameseModel, source: str) -> None:
    from inkproof.artifact import card_path_for

    path = Path(source)
    if path.suffix != ".safetensors":
        card_file = card_path_for(path)
        path = ModelCard.load(card_file).path_of("weights", card_file)
    ckpt.load_weights(model, path, strict=False)


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    cache_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``config`` into ``run_dir``; with ``resume`` continue from its latest checkpoint."""
    from rich.console import Console

    console = Console(stderr=True, quiet=not progress)
    say = log or (lambda message: console.print(message, highlight=False))
    run = Path(run_dir)
    device = resolve_device(config.device)
    world, device = _init_distributed(device)
    if device.type == "cpu":
        torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // world.world_size))
    if resume and not (run / CONFIG_FILE).is_file():
        raise TrainingError(f"nothing to resume in {run} (no {CONFIG_FILE})")
    if not resume and (run / ckpt.LATEST).exists():
        raise TrainingError(f"{run} already holds a run; pass --resume to continue it or choose a new folder")
    if resume:
        _check_resume(run, config)
    seed_everything(config.seed)

    dataset, split = load_training_data(config)
    if not split.train or not split.validation:
        raise TrainingError("training needs train and validation writers")
    if world.is_main:
        run.mkdir(parents=True, exist_ok=True)
        (run / CONFIG_FILE).write_text(config.to_json(), encoding="utf-8")
        split.save(run / SPLIT_FILE)
        ckpt.remove_partial_checkpoints(run)

    cache = cache_dir if cache_dir is not None else default_cache_dir()
    train_set = Selection.of(dataset, split.train)
    val_set = Selection.of(dataset, split.validation)
    train_bank = build_image_bank(train_set.paths, config.preprocess, cache_dir=cache, description="train images")
    val_bank = build_image_bank(val_set.paths, config.preprocess, cache_dir=cache, description="validation images")
    validation = ValidationSet.build(dataset, split.validation, val_bank, val_set, config)

    model = build_model(config.model, config.model_config(), input_size=config.input_size())
    if config.init_from:
        _load_initial_weights(model, config.init_from)
    if config.freeze_backbone:
        model.freeze_backbone()
    total, trainable = count_parameters(model), count_parameters(model, trainable_only=True)
    macs = count_embedding_macs(model, config.input_size())
    height, width = config.input_size()
    say(
        f"model {config.model}: {total / 1e6:.2f} M parameters ({trainable / 1e6:.2f} M trainable), "
        f"{macs / 1e6:.1f} M multiply-adds per signature at {height}x{width}; "
        f"device {device}; {len(split.train)} train / {len(split.validation)} validation writers"
    )
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    teacher = _teacher_embeddings(config, train_set, cache, device) if config.teacher else None
    if teacher is not None and teacher.shape[1] != model.config.embedding_dim:
        raise TrainingError(
            f"the teacher's embeddings have {teacher.shape[1]} dimensions, the student's "
            f"{model.config.embedding_dim}; set the student's embedding_dim to match"
        )
    objective_core = Objective(
        model, config, teacher, identities=2 * config.mirrored_writers * len(train_set.writers)
    ).to(device)
    objective: nn.Module = objective_core
    if world.enabled:
        objective = nn.parallel.DistributedDataParallel(
            objective_core, device_ids=[device.index] if device.type == "cuda" else None
        )

    if config.loss in IDENTITY_LOSSES:
        per_batch = config.writers_per_batch * config.samples_per_writer
        genuine_count = sum(len(w.genuine) for w in train_set.writers)
        steps = config.batches_per_epoch or max(1, math.ceil(genuine_count / per_batch))
    else:
        steps = max(1, math.ceil(config.pairs_per_epoch / config.batch_size))
    steps = max(1, steps // world.world_size)
    optimizer = make_optimizer(config, [p for p in objective_core.parameters() if p.requires_grad])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LearningRateSchedule(config, steps))
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    state: dict[str, Any] = {"history": [], "best_eer": None, "best_epoch": 0, "stale_epochs": 0}
    start_epoch = 1
    if resume:
        latest = ckpt.latest_checkpoint(run)
        if latest is not None:
            loaded = ckpt.load_checkpoint(latest, objective_core, optimizer, scheduler)
            state = {k: loaded[k] for k in state}
            if use_amp and "scaler" in loaded:
                scaler.load_state_dict(loaded["scaler"])
            start_epoch = int(loaded["epoch"]) + 1
            say(f"resuming {run} after epoch {loaded['epoch']}")

    writer = _tensorboard(run, config) if world.is_main else None
    workers = default_workers() if config.num_workers is None else config.num_workers
    stopped_early = False
    epoch = start_epoch - 1
    for epoch in range(start_epoch, config.epochs + 1):
        if state["stale_epochs"] >= (config.early_stopping or math.inf):
            stopped_early = True
            break
        began = time.perf_counter()
        seed_everything(config.seed * 100_003 + epoch)
        loader = _epoch_loader(config, train_set, train_bank, epoch, steps, world, workers, teacher is not None)
        model.train()
        losses = []
        with _ProgressBar(progress and world.is_main, f"epoch {epoch}/{config.epochs}", len(loader)) as bar:
            for step, batch in enumerate(loader):
                batch = tuple(_to_device(t, device, config.channels_last) for t in batch)
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                    loss = objective(*batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(objective_core.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                value = float(loss.detach())
                losses.append(value)
                bar(loss=float(np.mean(losses[-20:])))
                for callback in callbacks:
                    callback.on_step_end(epoch, step, value)
        metrics, scores = validation.evaluate(model, device)
        entry = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "lr": float(optimizer.param_groups[0]["lr"]),
            "seconds": time.perf_counter() - began,
            **metrics,
        }
        state["history"].append(entry)
        improved = epoch >= config.save_after and (state["best_eer"] is None or metrics["val_eer"] < state["best_eer"])
        if improved:
            state.update(best_eer=metrics["val_eer"], best_epoch=epoch, stale_epochs=0)
            if world.is_main:
                _save_best(run, model, config, calibrate_thresholds(validation.labels, scores), split, entry)
        elif epoch >= config.save_after:
            state["stale_epochs"] += 1
        if world.is_main:
            extra = {"scaler": scaler.state_dict()} if use_amp else {}
            ckpt.save_checkpoint(run, epoch, objective_core, optimizer, scheduler, {**state, **extra})
            _write_history(run, state["history"])
            if writer is not None:
                for key, value in entry.items():
                    if key != "epoch":
                        writer.add_scalar(key, value, epoch)
                writer.flush()
        say(
            f"epoch {epoch}: loss {entry['train_loss']:.4f}  val EER {metrics['val_eer']:.2%}"
            + (f"  (skilled {metrics['val_eer_skilled']:.2%})" if "val_eer_skilled" in metrics else "")
            + ("  *best*" if improved else "")
        )
        for callback in callbacks:
            callback.on_epoch_end(epoch, entry)
    if writer is not None:
        writer.close()
    if world.is_main:
        from inkproof.training.plots import plot_history

        plot_history(state["history"], run / "history.png")
    if world.enabled:
        dist.barrier()
    card_path = run / BEST_DIR / "model.json"
    if not card_path.is_file():
        raise TrainingError("no best model was saved (is save_after larger than the number of epochs?)")
    card = ModelCard.load(card_path)
    assert card.thresholds is not None
    return TrainResult(
        run_dir=run,
        card_path=card_path,
        best_epoch=int(state["best_epoch"]),
        best_validation_eer=float(state["best_eer"]),
        epochs_run=epoch,
        stopped_early=stopped_early,
        thresholds=card.thresholds,
        history=tuple(state["history"]),
    )


def _to_device(tensor: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    tensor = tensor.to(device, non_blocking=True)
    if channels_last and tensor.ndim == 4:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def _epoch_loader(
    config: TrainConfig,
    selection: Selection,
    bank: np.ndarray,
    epoch: int,
    steps: int,
    world: Distributed,
    workers: int,
    with_indices: bool = False,
) -> DataLoader[tuple[torch.Tensor, ...]]:
    """The epoch's batches; ``with_indices`` appends each image's bank index (distillation)."""
    rng = epoch_rng(config.seed, epoch)
    augment = make_augmenter(config.seed * 100_003 + epoch) if config.augment else None
    if config.loss in IDENTITY_LOSSES:
        batches = sample_triplet_batches(
            selection.writers,
            batches=steps * world.world_size,
            writers_per_batch=config.writers_per_batch,
            samples_per_writer=config.samples_per_writer,
            forgeries_per_writer=config.forgeries_per_writer,
            rng=rng,
            pseudo_forgeries_per_writer=config.pseudo_forgeries_per_writer,
            mirrors=config.mirrored_writers,
        )[world.rank :: world.world_size]
        rows = np.concatenate(batches)
        # the last columns flag pseudo forgeries and mirrors for the loader; the objective sees the others
        pseudo, mirror, rows = rows[:, 3].astype(bool), rows[:, 4], rows[:, :3]
        if with_indices:
            rows = np.column_stack([rows, rows[:, 0]])
        bounds = np.cumsum([0, *(len(b) for b in batches)])
        forge = None
        if config.pseudo_forgeries_per_writer:
            from inkproof.training.pseudo_forgery import make_pseudo_forger

            forge = make_pseudo_forger(config.seed * 100_003 + epoch + 1)
        dataset = BankDataset(bank, rows, image_columns=1, augment=augment, pseudo=pseudo, forge=forge, mirror=mirror)
        batch_sampler = [list(range(bounds[i], bounds[i + 1])) for i in range(len(batches))]
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers, worker_init_fn=seed_worker)
    rows = sample_pairs(
        selection.writers,
        steps * world.world_size * config.batch_size,
        config.pair_mix,
        rng,
        selection.same_instance,
    )[world.rank :: world.world_size]
    if with_indices:
        rows = np.column_stack([rows, rows[:, 0], rows[:, 1]])
    dataset = BankDataset(bank, rows, image_columns=2, augment=augment)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=seed_worker,
        drop_last=len(rows) > config.batch_size,
    )


def _teacher_embeddings(
    config: TrainConfig, selection: Selection, cache: Path | None, device: torch.device
) -> torch.Tensor:
    """The teacher's (normalised) embeddings of every training image, from its own preprocessing
    (or read from a teacher-embeddings file, :mod:`inkproof.training.teacher`).

    They are computed once, on the unaugmented images: the student sees augmented inputs and
    learns to land where the teacher puts the clean signature.
    """
    from inkproof.evaluation.scoring import load_scorer

    assert config.teacher is not None
    if config.teacher.endswith(".safetensors"):  # embeddings precomputed by the GPU teacher recipe
        from inkproof.training.teacher_embeddings import load_teacher_embeddings

        return load_teacher_embeddings(config.teacher, selection.paths).to(device)
    teacher = load_scorer(config.teacher, device=str(device) if device.type == "cuda" else "cpu")
    bank = build_image_bank(
        selection.paths, teacher.card.preprocess_config, cache_dir=cache, description="teacher images"
    )
    rows = [teacher.embed(bank[i : i + 128].astype(np.float32) / 255.0) for i in range(0, len(bank), 128)]
    embeddings = torch.from_numpy(np.concatenate(rows)).float()
    return torch.nn.functional.normalize(embeddings, dim=1).to(device)


def _save_best(
    run: Path,
    model: SiameseModel,
    config: TrainConfig,
    thresholds: CalibratedThresholds,
    split: WriterSplit,
    entry: dict[str, float],
) -> None:
    folder = run / BEST_DIR
    weights = folder / "model.safetensors"
    digest = ckpt.save_weights(model, weights)
    card = ModelCard(
        name=config.model,
        model_config=model.config.to_dict(),
        preprocess=config.preprocess.to_dict(),
        head=model.config.head,
        embedding_dim=model.config.embedding_dim,
        format="safetensors",
        files={"weights": weights.name},
        sha256={weights.name: digest},
        thresholds=thresholds,
        training={
            "data": list(config.data),
            "split": split.to_dict(),
            "epoch": entry["epoch"],
            "validation": {k: v for k, v in entry.items() if k.startswith("val_")},
            "loss": config.loss,
            "seed": config.seed,
        },
    )
    card.save(folder / "model.json")


def _write_history(run: Path, history: list[dict[str, float]]) -> None:
    temporary = run / (HISTORY_FILE + ".tmp")
    temporary.write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    temporary.replace(run / HISTORY_FILE)


def _tensorboard(run: Path, config: TrainConfig) -> Any:
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional at run time
        return None
    return SummaryWriter(log_dir=str(run / "tensorboard"))


class _ProgressBar:
    """A rich progress bar that shows the running loss, or nothing when disabled."""

    def __init__(self, enabled: bool, description: str, total: int) -> None:
        self.enabled = enabled
        self.description = description
        self.total = total

    def __enter__(self) -> Callable[..., None]:
        if not self.enabled:
            return lambda **_: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeRemainingColumn(),
            transient=True,
        )
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total, loss=float("nan"))

        def advance(**fields: float) -> None:
            self.progress.update(task, advance=1)
            self.progress.tasks[task].fields.update(fields)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

"""Train a segmentation network: augmented crops, mixup with soft targets, resumable checkpoints.

One epoch visits every training example once, as a random crop (padded up to the model's
multiple) under albumentations augmentation. Batches are mixed (mixup) and the loss is soft-label
cross-entropy plus soft Dice, both skipping unlabelled/padded pixels. AdamW with a cosine
schedule (per step). After each epoch the whole validation set is predicted at full size and
scored from one confusion matrix (per-class IoU and Dice); the best mean IoU is kept in
``best/`` with its card, and a checkpoint (safetensors + JSON, the project's helpers) lets
``resume=True`` continue exactly where a run stopped.

Everything random is derived from ``(seed, epoch)`` (data order, mixup) or ``(seed, epoch,
example)`` (augmentation), so a resumed run produces the same weights as an uninterrupted one.

Run folder::

    segmentation.json   config and training settings (checked on resume)
    split.json          train / validation example keys
    checkpoints/        epoch-NNNN/ (model, optimizer, state), latest.json beside
    history.json        one row per epoch: losses, lr, val_miou, val_iou.<class>, val_dice.<class>
    history.png         curves
    overlays/           epoch-NNNN.png: image | truth | prediction for a few validation images
    best/               model.safetensors + model.json (SegmentationCard)
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from inkproof.models.device import resolve_device
from inkproof.segmentation.dataset import IGNORE_INDEX, SegmentationDataset
from inkproof.segmentation.metrics import SegmentationScores, confusion_matrix, scores_from_confusion
from inkproof.segmentation.model import SegmentationConfig, SegmentationNet, build_segmentation_model, count_parameters
from inkproof.segmentation.overlay import grid, overlay, save_png
from inkproof.segmentation.runtime import SegmentationCard, round_up
from inkproof.training import checkpoint as ckpt
from inkproof.training.trainer import (
    Callback,
    TrainingError,
    _ProgressBar,
    default_workers,
    seed_everything,
)

SETTINGS_FILE = "segmentation.json"
SPLIT_FILE = "split.json"
HISTORY_FILE = "history.json"
PLOT_FILE = "history.png"
OVERLAY_DIR = "overlays"
BEST_DIR = "best"
# Settings that may change between a run and its resumption without mixing two different runs.
_RESUMABLE = {"epochs", "device", "num_workers", "threads", "overlays"}


@dataclass(frozen=True)
class AugmentSettings:
    """Probabilities (and ranges) of the training augmentations; validation is never augmented.

    Vertical flips are off by default: page layouts and handwriting have an up and a down.
    """

    horizontal_flip: float = 0.5
    vertical_flip: float = 0.0
    affine: float = 0.5
    rotate: float = 5.0  # degrees, +-
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05  # fraction of the crop, +-
    brightness_contrast: float = 0.5
    blur: float = 0.2
    noise: float = 0.2
    jpeg: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["scale"] = list(self.scale)
        return values


@dataclass(frozen=True)
class SegmentationResult:
    run_dir: Path
    card_path: Path
    weights_path: Path
    best_epoch: int
    best_miou: float
    iou: dict[str, float]  # per class, best epoch (NaN: class absent from validation and predictions)
    dice: dict[str, float]
    epochs_run: int
    history_path: Path
    plot_path: Path | None
    overlay_paths: tuple[Path, ...]
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)


# --- data --------------------------------------------------------------------------------------


def make_augmenter(settings: AugmentSettings | None, crop: tuple[int, int], pad_value: int) -> Any:
    """The albumentations pipeline: pad to the crop, random crop, then the enabled augmentations.

    Padding (from the crop or from affine borders) is paper on the image and IGNORE_INDEX on the
    mask, so the loss never learns from pixels that were not in the data.
    """
    import albumentations as A

    height, width = crop
    constant = 0  # cv2.BORDER_CONSTANT
    steps: list[Any] = [
        A.PadIfNeeded(
            min_height=height,
            min_width=width,
            position="random" if settings else "top_left",
            border_mode=constant,
            fill=pad_value,
            fill_mask=IGNORE_INDEX,
        ),
        A.RandomCrop(height, width),
    ]
    if settings is not None:
        steps += [
            A.HorizontalFlip(p=settings.horizontal_flip),
            A.VerticalFlip(p=settings.vertical_flip),
            A.Affine(
                scale=settings.scale,
                translate_percent=(-settings.translate, settings.translate),
                rotate=(-settings.rotate, settings.rotate),
                border_mode=constant,
                fill=pad_value,
                fill_mask=IGNORE_INDEX,
                p=settings.affine,
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=settings.brightness_contrast),
            A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2), p=settings.blur),
            A.GaussNoise(std_range=(0.02, 0.08), p=settings.noise),
            A.ImageCompression(quality_range=(40, 95), p=settings.jpeg),
        ]
    return A.Compose(steps)


def _item_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class _TrainingCrops(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Augmented crops of one epoch; each example's augmentation is seeded by (seed, epoch, index)."""

    def __init__(self, dataset: SegmentationDataset, augment: Any, seed: int, epoch: int) -> None:
        self.dataset = dataset
        self.augment = augment
        self.seed = seed
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.dataset[index]
        self.augment.set_random_seed(_item_seed(self.seed, self.epoch, index))
        out = self.augment(image=image, mask=mask)
        pixels = torch.from_numpy(np.ascontiguousarray(out["image"], dtype=np.float32) / 255.0).unsqueeze(0)
        return pixels, torch.from_numpy(np.ascontiguousarray(out["mask"]).astype(np.int64))


def epoch_batches(count: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's shuffled batches; a trailing single example joins the previous batch, because
    BatchNorm cannot normalise one example whose deepest feature map is 1x1."""
    order = np.random.default_rng([seed, epoch]).permutation(count)
    batches = [order[i : i + batch_size].tolist() for i in range(0, count, batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())
    return batches


# --- loss --------------------------------------------------------------------------------------


def soft_targets(mask: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H, W) indices -> one-hot (N, C, H, W) float and a (N, H, W) weight (0 where ignored)."""
    valid = mask != IGNORE_INDEX
    one_hot = F.one_hot(torch.where(valid, mask, torch.zeros_like(mask)), classes).permute(0, 3, 1, 2).float()
    return one_hot * valid.unsqueeze(1), valid.float()


def mix_batch(
    images: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, lam: float, permutation: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix each example with ``permutation``'s partner; targets stay distributions where labelled."""
    mixed_images = lam * images + (1.0 - lam) * images[permutation]
    mixed_targets = lam * targets + (1.0 - lam) * targets[permutation]
    mixed_weights = lam * weights + (1.0 - lam) * weights[permutation]
    # Where only one partner is labelled, its label is the whole target (with a lower weight).
    mixed_targets = mixed_targets / mixed_weights.clamp_min(1e-6).unsqueeze(1)
    return mixed_images, mixed_targets, mixed_weights


def segmentation_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    *,
    dice_weight: float = 1.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft-label cross-entropy + ``dice_weight`` x soft Dice loss, weighted per pixel.

    ``class_weights`` (one per class) scale each class's cross-entropy term, for classes too rare
    or too small for the network to learn at their natural frequency. Dice averages over the
    classes present in the batch's targets: a class absent from a crop would otherwise reward
    predicting nothing and dominate the mean.
    """
    log_probabilities = F.log_softmax(logits.float(), dim=1)
    total = weights.sum().clamp_min(1e-6)
    weighted = targets if class_weights is None else targets * class_weights.view(1, -1, 1, 1)
    cross_entropy = (-(weighted * log_probabilities).sum(dim=1) * weights).sum() / total
    if dice_weight == 0:
        return cross_entropy
    probabilities = log_probabilities.exp()
    w = weights.unsqueeze(1)
    intersection = (probabilities * targets * w).sum(dim=(0, 2, 3))
    cardinality = ((probabilities + targets) * w).sum(dim=(0, 2, 3))
    dice = (2.0 * intersection + 1.0) / (cardinality + 1.0)
    present = (targets * w).sum(dim=(0, 2, 3)) > 0
    dice_loss = (1.0 - dice)[present].mean() if bool(present.any()) else logits.new_zeros(())
    return cross_entropy + dice_weight * dice_loss


class CosineSchedule:
    """Linear warmup then cosine decay to zero, per optimisation step (a picklable LambdaLR factor)."""

    def __init__(self, total_steps: int, warmup_steps: int = 0) -> None:
        self.total = max(1, total_steps)
        self.warmup = max(0, warmup_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# --- validation --------------------------------------------------------------------------------


@dataclass
class ValidationOutcome:
    scores: SegmentationScores
    loss: float
    examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (image, truth, prediction) for overlays


def _same_size_groups(dataset: SegmentationDataset, batch_size: int) -> Iterator[list[tuple[np.ndarray, np.ndarray]]]:
    """Consecutive examples of one size, up to ``batch_size`` at a time (pages rarely share sizes)."""
    group: list[tuple[np.ndarray, np.ndarray]] = []
    for index in range(len(dataset)):
        image, mask = dataset[index]
        if group and (len(group) == batch_size or group[0][0].shape != image.shape):
            yield group
            group = []
        group.append((image, mask))
    if group:
        yield group


@torch.no_grad()
def validate(
    model: SegmentationNet,
    dataset: SegmentationDataset,
    device: torch.device,
    *,
    batch_size: int = 4,
    keep_examples: int = 0,
    channels_last: bool = False,
    amp: bool = False,
) -> ValidationOutcome:
    """Predict every validation example at full size (padded to the multiple) and score it."""
    config = model.config
    was_training = model.training
    model.eval()
    matrix = np.zeros((config.classes, config.classes), dtype=np.int64)
    loss_sum, pixel_count = 0.0, 0
    examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for group in _same_size_groups(dataset, batch_size):
        height, width = group[0][0].shape
        padded_h, padded_w = round_up(height, config.multiple), round_up(width, config.multiple)
        images = np.full((len(group), 1, padded_h, padded_w), config.pad_value, dtype=np.float32)
        masks = np.full((len(group), padded_h, padded_w), IGNORE_INDEX, dtype=np.int64)
        for i, (image, mask) in enumerate(group):
            images[i, 0, :height, :width] = image
            masks[i, :height, :width] = mask
        batch = torch.from_numpy(images / 255.0).to(device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(batch).float()
        target = torch.from_numpy(masks).to(device)
        losses = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="sum")
        loss_sum += float(losses)
        pixel_count += int((target != IGNORE_INDEX).sum())
        prediction = logits.argmax(dim=1).cpu().numpy()[:, :height, :width]
        truth = masks[:, :height, :width]
        matrix += confusion_matrix(truth, prediction, config.classes, ignore_index=IGNORE_INDEX)
        for i, (image, mask) in enumerate(group):
            if len(examples) < keep_examples:
                examples.append((image, mask, prediction[i].astype(np.uint8)))
    model.train(was_training)
    return ValidationOutcome(
        scores=scores_from_confusion(matrix, dataset.palette.names),
        loss=loss_sum / pixel_count if pixel_count else float("nan"),
        examples=examples,
    )


# --- run-folder files --------------------------------------------------------------------------


def _clean(value: float) -> float | None:
    """NaN/inf -> None: history.json stays strict JSON."""
    return float(value) if math.isfinite(value) else None


def _write_json(path: Path, payload: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def plot_history(history: Sequence[dict[str, Any]], class_names: Sequence[str], path: str | Path) -> Path | None:
    """Loss, mean IoU/Dice and per-class IoU over epochs as one PNG; None without history."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key: str) -> list[float]:
        return [float("nan") if h.get(key) is None else float(h[key]) for h in history]

    epochs = [h["epoch"] for h in history]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, series("train_loss"), marker="o", label="train")
    axes[0].plot(epochs, series("val_loss"), marker="o", label="validation (CE)")
    axes[0].set_title("loss")
    axes[0].legend()
    axes[1].plot(epochs, series("val_miou"), marker="o", label="mean IoU")
    axes[1].plot(epochs, series("val_mdice"), marker="o", label="mean Dice")
    axes[1].set_title("validation")
    axes[1].set_ylim(0, 1)
    axes[1].legend()
    for name in class_names:
        axes[2].plot(epochs, series(f"val_iou.{name}"), marker="o", label=name)
    axes[2].set_title("validation IoU per class")
    axes[2].set_ylim(0, 1)
    axes[2].legend(fontsize="small")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    target = Path(path)
    temporary = target.with_name(target.stem + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(target)
    return target


def _shrink(image: np.ndarray, longest: int) -> np.ndarray:
    """Nearest-neighbour downscale so overlay grids of whole pages stay small."""
    height, width = image.shape[:2]
    factor = max(height, width) / longest
    if factor <= 1:
        return image
    rows = (np.arange(max(1, round(height / factor))) * factor).astype(int)
    cols = (np.arange(max(1, round(width / factor))) * factor).astype(int)
    return image[rows][:, cols]


def save_overlays(
    examples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    colors: Sequence[Sequence[int]],
    path: str | Path,
    *,
    longest: int = 512,
) -> Path:
    """One row per example: image | ground truth over image | prediction over image."""
    cells: list[np.ndarray] = []
    for image, truth, prediction in examples:
        cells += [
            _shrink(np.repeat(image[:, :, None], 3, axis=2), longest),
            _shrink(overlay(image, truth, colors, 0.5), longest),
            _shrink(overlay(image, prediction, colors, 0.5), longest),
        ]
    return save_png(grid(cells, columns=3), path)


def _settings(
    config: SegmentationConfig,
    dataset: SegmentationDataset,
    values: dict[str, Any],
) -> dict[str, Any]:
    return {
        "config": config.to_dict(),
        "classes": dataset.palette.to_dict(),
        "dataset": dataset.name,
        "training": values,
    }


def _check_resume(run: Path, settings: dict[str, Any], split: dict[str, list[str]]) -> None:
    saved = json.loads((run / SETTINGS_FILE).read_text(encoding="utf-8"))
    different = sorted(k for k in ("config", "classes", "dataset") if saved.get(k) != settings[k])
    saved_training, training = saved.get("training", {}), settings["training"]
    different += sorted(
        f"training.{k}"
        for k in set(saved_training) | set(training)
        if k not in _RESUMABLE and saved_training.get(k) != training.get(k)
    )
    if different:
        raise TrainingError(f"cannot resume {run}: settings differ from the saved run: {different}")
    saved_split = json.loads((run / SPLIT_FILE).read_text(encoding="utf-8")) if (run / SPLIT_FILE).is_file() else None
    if saved_split is not None and saved_split != split:
        raise TrainingError(f"cannot resume {run}: the train/validation examples differ from the saved run's")


def _save_best(
    run: Path,
    model: SegmentationNet,
    dataset: SegmentationDataset,
    name: str,
    entry: dict[str, Any],
    scores: SegmentationScores,
    training: dict[str, Any],
) -> Path:
    folder = run / BEST_DIR
    weights = folder / "model.safetensors"
    digest = ckpt.save_weights(model, weights)
    card = SegmentationCard(
        name=name,
        config=model.config.to_dict(),
        class_names=dataset.palette.names,
        class_colors=dataset.palette.colors,
        format="safetensors",
        files={"weights": weights.name},
        sha256={weights.name: digest},
        validation={
            "epoch": entry["epoch"],
            "miou": _clean(scores.mean_iou),
            "mdice": _clean(scores.mean_dice),
            "pixel_accuracy": _clean(scores.pixel_accuracy),
            "iou": {k: _clean(v) for k, v in scores.per_class_iou().items()},
            "dice": {k: _clean(v) for k, v in scores.per_class_dice().items()},
        },
        training=training,
    )
    return card.save(folder / "model.json")


# --- the run -----------------------------------------------------------------------------------


def train_segmentation(
    config: SegmentationConfig,
    dataset: SegmentationDataset,
    run_dir: str | Path,
    *,
    epochs: int = 30,
    batch_size: int = 8,
    lr: float = 1e-3,
    crop: tuple[int, int] = (256, 256),
    mixup: float = 0.2,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    seed: int = 0,
    validation: SegmentationDataset | None = None,
    validation_fraction: float = 0.2,
    weight_decay: float = 1e-4,
    dice_weight: float = 1.0,
    class_weights: Sequence[float] | None = None,
    warmup_epochs: float = 0.0,
    augment: AugmentSettings | None = AugmentSettings(),  # frozen, so a shared default is safe
    amp: bool = True,
    num_workers: int | None = None,
    threads: int | None = None,
    overlays: int = 4,
    name: str | None = None,
    callbacks: Sequence[Callback] = (),
    log: Callable[[str], None] | None = None,
) -> SegmentationResult:
    """Train ``config`` on ``dataset`` into ``run_dir``; ``resume`` continues its latest checkpoint.

    ``validation`` defaults to a hash split of ``dataset`` (``validation_fraction``, ``seed``).
    ``crop`` is rounded up to the model's multiple; smaller images are padded. ``mixup`` is the
    Beta(alpha, alpha) parameter (0 turns mixup off). Raises TrainingError for an unusable run
    folder or a resume whose settings differ.
    """
    from rich.console import Console

    console = Console(stderr=True, quiet=not progress)
    say = log or (lambda message: console.print(message, highlight=False))
    if config.classes != len(dataset.palette):
        raise TrainingError(f"the config has {config.classes} classes, the dataset {len(dataset.palette)}")
    if epochs < 1 or batch_size < 1 or lr <= 0 or mixup < 0:
        raise TrainingError("epochs and batch_size must be >= 1, lr > 0 and mixup >= 0")
    run = Path(run_dir)
    if resume and not (run / SETTINGS_FILE).is_file():
        raise TrainingError(f"nothing to resume in {run} (no {SETTINGS_FILE})")
    if not resume and (run / ckpt.LATEST).exists():
        raise TrainingError(f"{run} already holds a run; pass resume=True to continue it or choose a new folder")

    if validation is None:
        train_set, val_set = dataset.split(validation_fraction, seed=seed)
    else:
        train_set, val_set = dataset, validation
        if validation.palette != dataset.palette:
            raise TrainingError("the validation set's classes differ from the training set's")
    if class_weights is not None and (len(class_weights) != config.classes or min(class_weights) <= 0):
        raise TrainingError(f"class_weights needs {config.classes} positive values, got {list(class_weights)}")
    crop_size = (round_up(crop[0], config.multiple), round_up(crop[1], config.multiple))
    training_values: dict[str, Any] = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "crop": list(crop_size),
        "mixup": mixup,
        "seed": seed,
        "weight_decay": weight_decay,
        "dice_weight": dice_weight,
        "warmup_epochs": warmup_epochs,
        "augment": augment.to_dict() if augment else None,
        "amp": amp,
        "device": device,
        "num_workers": num_workers,
        "threads": threads,
        "overlays": overlays,
    }
    if class_weights is not None:  # recorded only when used, so runs from before it still resume
        training_values["class_weights"] = [float(w) for w in class_weights]
    settings = _settings(config, dataset, training_values)
    split = {"train": list(train_set.keys), "validation": list(val_set.keys)}
    if resume:
        _check_resume(run, settings, split)

    torch_device = resolve_device(device)
    if torch_device.type == "cpu":
        torch.set_num_threads(threads or (os.cpu_count() or 1))
    run.mkdir(parents=True, exist_ok=True)
    _write_json(run / SETTINGS_FILE, settings)
    _write_json(run / SPLIT_FILE, split)
    ckpt.remove_partial_checkpoints(run)

    seed_everything(seed)
    model = build_segmentation_model(config)
    channels_last = torch_device.type == "cuda"
    use_amp = amp and torch_device.type == "cuda"
    model.to(torch_device)
    class_weight_tensor = (
        None if class_weights is None else torch.tensor([float(w) for w in class_weights], device=torch_device)
    )
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model_name = name or f"{config.architecture}-{config.encoder}"
    say(
        f"segmentation {model_name}: {count_parameters(model) / 1e6:.2f} M parameters, {config.classes} classes, "
        f"device {torch_device}; {len(train_set)} train / {len(val_set)} validation examples, crop {crop_size}"
    )

    steps = max(1, math.ceil(len(train_set) / batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = CosineSchedule(epochs * steps, round(warmup_epochs * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    state: dict[str, Any] = {"history": [], "best_miou": None, "best_epoch": 0}
    start_epoch = 1
    if resume:
        latest = ckpt.latest_checkpoint(run)
        if latest is not None:
            loaded = ckpt.load_checkpoint(latest, model, optimizer, scheduler)
            state = {k: loaded[k] for k in state}
            if use_amp and "scaler" in loaded:
                scaler.load_state_dict(loaded["scaler"])
            # load_state_dict restored the saved schedule; a run extended to more epochs stretches
            # the remaining cosine over the new length instead of training on at a zero rate.
            schedule.total = max(1, epochs * steps)
            start_epoch = int(loaded["epoch"]) + 1
            say(f"resuming {run} after epoch {loaded['epoch']}")

    augmenter = make_augmenter(augment, crop_size, config.pad_value)
    workers = default_workers() if num_workers is None else num_workers
    overlay_paths: list[Path] = []
    epoch = start_epoch - 1
    for epoch in range(start_epoch, epochs + 1):
        began = time.perf_counter()
        seed_everything(seed * 100_003 + epoch)
        loader = DataLoader(
            _TrainingCrops(train_set, augmenter, seed, epoch),
            batch_sampler=epoch_batches(len(train_set), batch_size, seed, epoch),
            num_workers=workers,
        )
        mix_rng = np.random.default_rng([seed, epoch, 1])
        model.train()
        losses: list[float] = []
        with _ProgressBar(progress, f"epoch {epoch}/{epochs}", len(loader)) as bar:
            for step, (images, masks) in enumerate(loader):
                images, masks = images.to(torch_device), masks.to(torch_device)
                targets, weights = soft_targets(masks, config.classes)
                if mixup > 0 and len(images) > 1:
                    lam = float(mix_rng.beta(mixup, mixup))
                    lam = max(lam, 1.0 - lam)  # the first image stays the main one
                    permutation = torch.from_numpy(mix_rng.permutation(len(images))).to(torch_device)
                    images, targets, weights = mix_batch(images, targets, weights, lam, permutation)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device_type=torch_device.type, dtype=torch.float16, enabled=use_amp):
                    logits = model(images)
                loss = segmentation_loss(
                    logits, targets, weights, dice_weight=dice_weight, class_weights=class_weight_tensor
                )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                value = float(loss.detach())
                losses.append(value)
                bar(loss=float(np.mean(losses[-20:])))
                for callback in callbacks:
                    callback.on_step_end(epoch, step, value)

        last = epoch == epochs
        outcome = validate(
            model,
            val_set,
            torch_device,
            batch_size=batch_size,
            keep_examples=overlays if last else 0,
            channels_last=channels_last,
            amp=use_amp,
        )
        scores = outcome.scores
        entry: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": _clean(float(np.mean(losses))) if losses else None,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "seconds": time.perf_counter() - began,
            "val_loss": _clean(outcome.loss),
            **{k: _clean(v) for k, v in scores.as_metrics("val_").items()},
        }
        state["history"].append(entry)
        miou = scores.mean_iou
        improved = math.isfinite(miou) and (state["best_miou"] is None or miou > state["best_miou"])
        if improved:
            state.update(best_miou=miou, best_epoch=epoch)
            provenance = {"dataset": dataset.name, "train_examples": len(train_set), **training_values}
            _save_best(run, model, dataset, model_name, entry, scores, provenance)
        extra = {"scaler": scaler.state_dict()} if use_amp else {}
        ckpt.save_checkpoint(run, epoch, model, optimizer, scheduler, {**state, **extra})
        _write_json(run / HISTORY_FILE, state["history"])
        if outcome.examples:
            overlay_paths.append(
                save_overlays(outcome.examples, dataset.palette.colors, run / OVERLAY_DIR / f"epoch-{epoch:04d}.png")
            )
        per_class = ", ".join(f"{n} {v:.1%}" for n, v in scores.per_class_iou().items() if math.isfinite(v))
        say(
            f"epoch {epoch}: loss {np.mean(losses) if losses else float('nan'):.4f}  val mIoU {miou:.2%} ({per_class})"
            + ("  *best*" if improved else "")
        )
        for callback in callbacks:
            callback.on_epoch_end(epoch, {k: v for k, v in entry.items() if isinstance(v, int | float)})

    plot_path = plot_history(state["history"], dataset.palette.names, run / PLOT_FILE)
    card_path = run / BEST_DIR / "model.json"
    if not card_path.is_file():
        raise TrainingError("no best model was saved (validation mean IoU was never defined)")
    card = SegmentationCard.load(card_path)
    best = card.validation
    if not overlay_paths:
        overlay_paths = sorted((run / OVERLAY_DIR).glob("epoch-*.png"))[-1:]
    return SegmentationResult(
        run_dir=run,
        card_path=card_path,
        weights_path=card_path.parent / card.files["weights"],
        best_epoch=int(state["best_epoch"]),
        best_miou=float(state["best_miou"]),
        iou={k: float("nan") if v is None else float(v) for k, v in best["iou"].items()},
        dice={k: float("nan") if v is None else float(v) for k, v in best["dice"].items()},
        epochs_run=epoch,
        history_path=run / HISTORY_FILE,
        plot_path=plot_path,
        overlay_paths=tuple(overlay_paths),
        history=tuple(state["history"]),
    )


def load_trained_model(card_path: str | Path, *, device: str = "cpu") -> tuple[SegmentationNet, SegmentationCard]:
    """The torch model of a training card (``best/model.json`` or its run folder), in eval mode."""
    from inkproof.artifact import card_path_for

    path = card_path_for(card_path)
    card = SegmentationCard.load(path)
    if card.format != "safetensors":
        raise TrainingError(f"{path} is a {card.format} model card; a training card (safetensors) is needed")
    model = build_segmentation_model(SegmentationConfig.from_dict({**card.config, "encoder_weights": None}))
    ckpt.load_weights(model, card.path_of("weights", path))
    return model.to(resolve_device(device)).eval(), card


__all__ = [
    "AugmentSettings",
    "SegmentationResult",
    "load_trained_model",
    "train_segmentation",
    "validate",
]

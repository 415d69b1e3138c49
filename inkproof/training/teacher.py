"""The GPU teacher recipe: train a large forgery-aware teacher on one GPU, then write its
embeddings of every training image (clean and augmented views) to one safetensors file, so a
compact student is distilled from that file on a CPU without ever running the teacher there.

``inkproof train-teacher --data CEDAR --data HINDI --split SPLIT --out RUN`` runs
:data:`TEACHER_GPU_RECIPE` (the multiscale EfficientNet-Lite0 at 150x220 with CosFace and the
co-tuplet skilled-forgery term, mixed precision on CUDA) and writes ``RUN/teacher-embeddings.safetensors``.
A student then names that file as its teacher: ``teacher: RUN/teacher-embeddings.safetensors``.

The file holds ``embeddings`` (N, 1 + views, D) float16 (view 0: the clean image; the others:
the training augmentation with seeds ``seed + v``) and, as JSON metadata, each image's key (its
last three path parts, e.g. ``cedar/genuine/original_1_1.png``, so the file is portable between
machines with different data folders), the teacher's name, preprocessing and views.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inkproof.errors import InkproofError

# Measured on no GPU here (this project's machine has none): sized for one H200-class GPU at
# about 10 minutes; the CPU test runs it with tiny overrides.
TEACHER_GPU_RECIPE: dict[str, Any] = {
    "model": "ms-efficientnet-lite0",
    "model_settings": {"embedding_dim": 128, "dropout": 0.2},
    "preprocess": {"height": 150, "width": 220},
    "loss": "cosface",
    "margin": 0.35,
    "skilled_weight": 1.0,
    "skilled_margin": 0.2,
    "skilled_term": "cotuplet",
    "writers_per_batch": 16,
    "samples_per_writer": 6,
    "forgeries_per_writer": 4,
    "lr": 0.001,
    "weight_decay": 0.0001,
    "warmup_epochs": 2,
    "epochs": 40,
    "early_stopping": 10,
    "amp": True,
    "num_workers": 8,
}
EMBEDDINGS_FILE = "teacher-embeddings.safetensors"


class TeacherEmbeddingsError(InkproofError, ValueError):
    """A teacher-embeddings file is unreadable or lacks images the student trains on."""


@dataclass(frozen=True)
class TeacherResult:
    run_dir: Path
    card_path: Path
    embeddings_path: Path
    images: int
    views: int
    best_validation_eer: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.run_dir),
            "model_card": str(self.card_path),
            "embeddings": str(self.embeddings_path),
            "images": self.images,
            "views": self.views,
            "best_validation_eer": self.best_validation_eer,
        }


def image_key(path: str | Path) -> str:
    """The machine-independent key of a dataset image: its last three path parts."""
    return "/".join(Path(path).parts[-3:])


def write_teacher_embeddings(
    card_path: str | Path,
    paths: Sequence[Path],
    out: str | Path,
    *,
    views: int = 8,
    seed: int = 0,
    device: str = "auto",
    cache_dir: Path | None = None,
    batch_size: int = 256,
) -> Path:
    """Embed ``paths`` with the teacher of ``card_path``: the clean image and ``views`` augmented
    copies each (the training augmentation, in the teacher's preprocessing)."""
    from safetensors.torch import save_file

    from inkproof.data.bank import build_image_bank
    from inkproof.evaluation.scoring import load_scorer
    from inkproof.training.data import make_augmenter

    if views < 0:
        raise ValueError(f"views must be >= 0, got {views}")
    teacher = load_scorer(card_path, device=device)
    bank = build_image_bank(paths, teacher.card.preprocess_config, cache_dir=cache_dir, description="teacher images")
    per_view = []
    for view in range(views + 1):
        augment = make_augmenter(seed + view) if view else None
        images = bank if augment is None else np.stack([augment(image=image)["image"] for image in bank])
        rows = [
            teacher.embed(images[i : i + batch_size].astype(np.float32) / 255.0)
            for i in range(0, len(images), batch_size)
        ]
        per_view.append(np.concatenate(rows) if rows else np.zeros((0, teacher.card.embedding_dim), np.float32))
    embeddings = torch.from_numpy(np.stack(per_view, axis=1)).to(torch.float16)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "keys": json.dumps([image_key(p) for p in paths]),
        "teacher": teacher.card.name,
        "preprocess": json.dumps(teacher.card.preprocess),
        "views": str(views),
        "seed": str(seed),
    }
    save_file({"embeddings": embeddings.contiguous()}, str(target), metadata=metadata)
    return target


def load_teacher_embeddings(path: str | Path, paths: Sequence[Path]) -> torch.Tensor:
    """(len(paths), D) distillation targets from a teacher-embeddings file: per image the mean of
    its normalised views (clean and augmented), normalised again. The student sees one random
    augmentation per step; the average over views is where the teacher puts the signature
    whatever the augmentation, a steadier target than the clean view alone."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            embeddings = handle.get_tensor("embeddings").float()
        keys = json.loads(metadata["keys"])
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise TeacherEmbeddingsError(f"{path} is not a teacher-embeddings file: {exc}") from None
    if embeddings.ndim != 3 or embeddings.shape[0] != len(keys):
        raise TeacherEmbeddingsError(f"{path}: embeddings of shape {tuple(embeddings.shape)} for {len(keys)} images")
    position = {key: i for i, key in enumerate(keys)}
    missing = [image_key(p) for p in paths if image_key(p) not in position]
    if missing:
        raise TeacherEmbeddingsError(f"{path} lacks {len(missing)} training images, e.g. {missing[:3]}")
    chosen = embeddings[[position[image_key(p)] for p in paths]]
    mean = torch.nn.functional.normalize(chosen, dim=2).mean(dim=1)
    return torch.nn.functional.normalize(mean, dim=1)


def train_teacher(
    settings: dict[str, Any],
    out: str | Path,
    *,
    views: int = 8,
    resume: bool = False,
    progress: bool = True,
    cache_dir: Path | None = None,
) -> TeacherResult:
    """Train :data:`TEACHER_GPU_RECIPE` updated with ``settings`` (data, split, overrides) into
    ``out``, then write the embeddings of every training image to ``out/teacher-embeddings.safetensors``."""
    from inkproof.training.config import TrainConfig
    from inkproof.training.data import Selection
    from inkproof.training.trainer import load_training_data, train

    recipe = {**TEACHER_GPU_RECIPE, **settings}
    recipe["model_settings"] = {**TEACHER_GPU_RECIPE["model_settings"], **settings.get("model_settings", {})}
    config = TrainConfig.from_dict(recipe)
    result = train(config, out, resume=resume, progress=progress, cache_dir=cache_dir)
    dataset, split = load_training_data(config)
    paths = Selection.of(dataset, split.train).paths
    device = "cuda" if config.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    target = write_teacher_embeddings(
        result.card_path,
        paths,
        Path(out) / EMBEDDINGS_FILE,
        views=views,
        seed=config.seed,
        device=device,
        cache_dir=cache_dir,
    )
    return TeacherResult(Path(out), result.card_path, target, len(paths), views, result.best_validation_eer)

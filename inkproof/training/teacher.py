"""The GPU teacher recipe: train a large forgery-aware teacher on one GPU, then write its
embeddings of every training image (clean and augmented views) to one safetensors file, so a
compact student is distilled from that file on a CPU without ever running the teacher there.

``inkproof train-teacher --data CEDAR --data HINDI --split SPLIT --out RUN`` runs
:data:`TEACHER_GPU_RECIPE` (the multiscale EfficientNet-Lite0 at 150x220 with CosFace and the
co-tuplet skilled-forgery term, mixed precision on CUDA) and writes ``RUN/teacher-embeddings.safetensors``.
A student then names that file as its teacher: ``teacher: RUN/teacher-embeddings.safetensors``.

The file's format lives in :mod:`inkproof.training.teacher_embeddings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inkproof.training.teacher_embeddings import EMBEDDINGS_FILE, write_teacher_embeddings

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

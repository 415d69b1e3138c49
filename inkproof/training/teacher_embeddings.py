"""The teacher-embeddings file: a teacher's embeddings of every training image (the clean view
and augmented views), written once where the teacher runs and read by the student's trainer.

The file holds ``embeddings`` (N, 1 + views, D) float16 (view 0: the clean image; the others:
the training augmentation with seeds ``seed + v``) and, as JSON metadata, each image's key (its
last three path parts, e.g. ``cedar/genuine/original_1_1.png``, so the file is portable between
machines with different data folders), the teacher's name, preprocessing and views.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from inkproof.errors import InkproofError

EMBEDDINGS_FILE = "teacher-embeddings.safetensors"


class TeacherEmbeddingsError(InkproofError, ValueError):
    """A teacher-embeddings file is unreadable or lacks images the student trains on."""


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

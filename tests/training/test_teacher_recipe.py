"""The GPU teacher recipe, run on the CPU with tiny settings: train, write the embeddings file,
distil a student from the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from inkproof.training.teacher import TEACHER_GPU_RECIPE, train_teacher
from inkproof.training.teacher_embeddings import EMBEDDINGS_FILE, TeacherEmbeddingsError, load_teacher_embeddings

# The recipe with the Lite0 trunk swapped for a tiny compact one: the same multiscale model, loss
# and code path, in seconds on a CPU.
TINY = {
    "model": "ms-compact",
    "preprocess": {"height": 48, "width": 72},
    "model_settings": {"width": 8, "depth": (1, 1, 1, 1), "embedding_dim": 16, "regional_channels": 8},
    "epochs": 1,
    "batches_per_epoch": 1,
    "writers_per_batch": 3,
    "samples_per_writer": 2,
    "forgeries_per_writer": 1,
    "validation_pairs": 4,
    "split_fractions": (0.6, 0.2, 0.2),
    "num_workers": 0,
    "tensorboard": False,
    "device": "cpu",
}


def test_recipe_is_the_forgery_aware_gpu_teacher() -> None:
    from inkproof.training.config import TrainConfig

    config = TrainConfig.from_dict(TEACHER_GPU_RECIPE)
    assert config.model == "ms-efficientnet-lite0" and config.amp
    assert config.skilled_term == "cotuplet" and config.skilled_weight > 0
    assert config.input_size()[0] * config.input_size()[1] > 112 * 160  # larger than the CPU default


def test_teacher_recipe_writes_embeddings_a_student_distils_from(synthetic_root: Path, tmp_path: Path) -> None:
    from inkproof.training.trainer import train
    from tests.training.test_trainer import tiny_config

    cache = tmp_path / "cache"
    result = train_teacher({**TINY, "data": [str(synthetic_root)]}, tmp_path / "teacher", views=2, cache_dir=cache)
    assert result.embeddings_path == tmp_path / "teacher" / EMBEDDINGS_FILE
    with safe_open(str(result.embeddings_path), framework="pt") as handle:
        embeddings = handle.get_tensor("embeddings")
        metadata = handle.metadata()
    keys = json.loads(metadata["keys"])
    assert embeddings.shape == (result.images, 3, 16) and len(keys) == result.images
    assert metadata["teacher"] == "ms-compact"
    # Augmented views differ from the clean one, but stay close to it.
    views = torch.nn.functional.normalize(embeddings.float(), dim=2)
    agreement = (views[:, 0] * views[:, 1]).sum(dim=1)
    assert not torch.allclose(views[:, 0], views[:, 1]) and float(agreement.mean()) > 0.5

    student = tiny_config(
        synthetic_root,
        model="compact",
        model_settings={"width": 8, "depth": (1, 1, 1, 1), "embedding_dim": 16},
        loss="cosface",
        teacher=str(result.embeddings_path),
        batches_per_epoch=1,
    )
    distilled = train(student, tmp_path / "student", progress=False, cache_dir=cache)
    assert distilled.history[0]["train_loss"] > 0


def test_a_file_missing_training_images_is_refused(synthetic_root: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "partial.safetensors"
    save_file({"embeddings": torch.ones(1, 1, 4)}, str(path), metadata={"keys": json.dumps(["a/b/c.png"])})
    assert load_teacher_embeddings(path, [Path("/x/a/b/c.png")]).shape == (1, 4)
    with pytest.raises(TeacherEmbeddingsError, match="lacks 1"):
        load_teacher_embeddings(path, [Path("/x/a/b/c.png"), Path("/x/a/b/d.png")])
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(TeacherEmbeddingsError):
        load_teacher_embeddings(tmp_path / "junk.safetensors", [Path("/x/a/b/c.png")])

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from inkproof.artifact import ModelCard, sha256_file
from inkproof.models import available_models
from inkproof.preprocess import PREPROCESS_VERSION, PreprocessConfig
from inkproof.training.config import TrainConfig, load_config_file
from inkproof.training.trainer import TrainingError, train

SMALL = PreprocessConfig(height=48, width=72)


def tiny_config(data: Path, **changes: object) -> TrainConfig:
    settings: dict[str, object] = {
        "data": (str(data),),
        "preprocess": SMALL,
        "epochs": 1,
        "batch_size": 8,
        "pairs_per_epoch": 16,
        "writers_per_batch": 3,
        "samples_per_writer": 2,
        "batches_per_epoch": 2,
        "validation_pairs": 4,
        "split_fractions": (0.6, 0.2, 0.2),
        "num_workers": 0,
        "tensorboard": False,
    }
    settings.update(changes)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def _loss_for(name: str) -> dict[str, object]:
    if name.startswith("siamese-"):
        return {"loss": "bce"}
    if name == "signet":
        return {"loss": "contrastive"}
    if name == "efficientnet-lite0":
        return {"loss": "triplet", "model_settings": {"pretrained": False}}
    return {"loss": "triplet"}


@pytest.mark.parametrize("name", sorted(available_models()))
def test_one_epoch_for_every_model(name: str, synthetic_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(synthetic_root, model=name, **_loss_for(name))
    result = train(config, tmp_path / "run", progress=False, cache_dir=cache_dir)
    assert result.epochs_run == 1
    assert 0.0 <= result.best_validation_eer <= 1.0
    card = ModelCard.load(result.card_path)
    assert card.name == name
    assert card.preprocess_version == PREPROCESS_VERSION
    assert card.input_size == (48, 72)
    weights = result.card_path.parent / card.files["weights"]
    assert card.sha256[weights.name] == sha256_file(weights)
    assert card.thresholds is not None
    assert card.thresholds.validation_eer == pytest.approx(result.best_validation_eer)


def test_run_artifacts(synthetic_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    run = tmp_path / "run"
    result = train(tiny_config(synthetic_root, epochs=2, tensorboard=True), run, progress=False, cache_dir=cache_dir)
    for name in (
        "config.json",
        "split.json",
        "history.json",
        "history.png",
        "latest.json",
        "best/model.json",
    ):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"train_loss", "val_eer", "lr"} <= set(history[0])
    split = json.loads((run / "split.json").read_text())
    assert not set(split["train"]) & set(split["validation"])
    assert not set(split["train"]) & set(split["test"])
    assert len(result.history) == 2
    # The saved config reloads to the same typed config.
    reloaded = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert reloaded == tiny_config(synthetic_root, epochs=2, tensorboard=True)


class Interrupt(Exception):
    pass


class StopAt:
    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step

    def on_step_end(self, epoch: int, step: int, loss: float) -> None:
        if (epoch, step) == (self.epoch, self.step):
            raise Interrupt

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


@pytest.mark.parametrize("loss", ["triplet", "contrastive", "cosface"])
def test_resume_after_interrupt_matches_uninterrupted_run(
    loss: str, synthetic_root: Path, tmp_path: Path, cache_dir: Path
) -> None:
    config = tiny_config(synthetic_root, epochs=3, loss=loss, pairs_per_epoch=32, batches_per_epoch=4)
    train(config, tmp_path / "straight", progress=False, cache_dir=cache_dir)
    with pytest.raises(Interrupt):
        train(config, tmp_path / "broken", progress=False, cache_dir=cache_dir, callbacks=[StopAt(2, 1)])
    assert json.loads((tmp_path / "broken" / "latest.json").read_text())["epoch"] == 1
    train(config, tmp_path / "broken", resume=True, progress=False, cache_dir=cache_dir)
    final_straight = load_file(str(tmp_path / "straight" / "checkpoints" / "epoch-0003" / "model.safetensors"))
    final_resumed = load_file(str(tmp_path / "broken" / "checkpoints" / "epoch-0003" / "model.safetensors"))
    assert final_straight.keys() == final_resumed.keys()
    for key in final_straight:
        assert torch.equal(final_straight[key], final_resumed[key]), key
    history_a = json.loads((tmp_path / "straight" / "history.json").read_text())
    history_b = json.loads((tmp_path / "broken" / "history.json").read_text())
    assert [h["val_eer"] for h in history_a] == [h["val_eer"] for h in history_b]


def test_process_killed_mid_training_resumes(synthetic_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "inkproof",
        "train",
        "--out",
        str(run),
        "--data",
        str(synthetic_root),
        "--height",
        "48",
        "--width",
        "72",
        "--epochs",
        "30",
        "--batch-size",
        "8",
        "--pairs-per-epoch",
        "64",
        "--loss",
        "contrastive",
        "--workers",
        "0",
        "--early-stopping",
        "0",
    ]
    env = {**os.environ, "INKPROOF_CACHE": str(cache_dir)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run / "latest.json").exists():
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint within two minutes"
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = json.loads((run / "latest.json").read_text())["epoch"]
    resumed = subprocess.run(
        [*command[:-2], "--early-stopping", "0", "--resume", "--epochs", str(done_before + 1), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert not list((run / "checkpoints").glob("*.tmp"))  # a torn write is cleaned up on resume
    assert json.loads(resumed.stdout)["epochs_run"] == done_before + 1
    assert json.loads((run / "latest.json").read_text())["epoch"] == done_before + 1


def test_head_only_fine_tuning_leaves_the_backbone_alone(synthetic_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    first = train(tiny_config(synthetic_root), tmp_path / "base", progress=False, cache_dir=cache_dir)
    base_weights = load_file(str(first.card_path.parent / "model.safetensors"))
    config = tiny_config(synthetic_root, init_from=str(first.card_path), freeze_backbone=True, lr=0.01)
    second = train(config, tmp_path / "head", progress=False, cache_dir=cache_dir)
    tuned = load_file(str(second.card_path.parent / "model.safetensors"))
    body = [k for k in base_weights if k.startswith("body.")]
    head = [k for k in base_weights if k.startswith("projection.")]
    assert body and head
    for key in body:  # weights and BatchNorm running statistics alike
        assert torch.equal(base_weights[key], tuned[key]), key
    assert any(not torch.equal(base_weights[k], tuned[k]) for k in head)


def test_refuses_to_overwrite_or_resume_a_different_run(synthetic_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(synthetic_root), run, progress=False, cache_dir=cache_dir)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(tiny_config(synthetic_root), run, progress=False, cache_dir=cache_dir)
    with pytest.raises(TrainingError, match="settings differ"):
        train(tiny_config(synthetic_root, lr=0.5), run, resume=True, progress=False, cache_dir=cache_dir)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny_config(synthetic_root), tmp_path / "empty", resume=True, progress=False, cache_dir=cache_dir)


def test_config_files_and_validation(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text("model: compact\nloss: contrastive\nepochs: 3\nmodel_settings: {width: 16}\n")
    (tmp_path / "run.toml").write_text(
        'model = "compact"\nloss = "contrastive"\nepochs = 3\n[model_settings]\nwidth = 16\n'
    )
    from_yaml = TrainConfig.from_dict(load_config_file(tmp_path / "run.yaml"))
    from_toml = TrainConfig.from_dict(load_config_file(tmp_path / "run.toml"))
    assert from_yaml == from_toml
    assert from_yaml.model_config().width == 16  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="needs head 'product'"):
        TrainConfig(model="compact", loss="bce")
    with pytest.raises(ValueError, match="distance head"):
        TrainConfig(model="siamese-resnet18", loss="triplet")
    with pytest.raises(ValueError, match="cosface loss only"):
        TrainConfig(model="compact", loss="triplet", skilled_weight=1.0)
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig.from_dict({"model": "nope"})


@pytest.mark.slow
def test_distributed_data_parallel_on_cpu(synthetic_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    """Two processes with torchrun and the Gloo backend (the CUDA path uses NCCL the same way)."""
    run = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "inkproof",
        "train",
        "--out",
        str(run),
        "--data",
        str(synthetic_root),
        "--height",
        "48",
        "--width",
        "72",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--pairs-per-epoch",
        "32",
        "--loss",
        "contrastive",
        "--workers",
        "0",
        "--threads",
        "1",
    ]
    result = subprocess.run(
        command,
        env={**os.environ, "INKPROOF_CACHE": str(cache_dir)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "best" / "model.json").is_file()


def test_distillation_pulls_the_student_towards_the_teacher(
    synthetic_root: Path, tmp_path: Path, cache_dir: Path
) -> None:
    from inkproof.data.bank import build_image_bank
    from inkproof.data.records import SignatureDataset
    from inkproof.models.torch_scorer import TorchScorer
    from inkproof.training.data import Selection
    from inkproof.training.trainer import load_training_data

    teacher = train(tiny_config(synthetic_root, epochs=1), tmp_path / "teacher", progress=False, cache_dir=cache_dir)
    student_config = tiny_config(
        synthetic_root,
        epochs=2,
        batches_per_epoch=25,
        teacher=str(teacher.card_path),
        distill_weight=5.0,
        lr=0.003,
        model_settings={"width": 8, "depth": (1, 1, 1, 1)},
        preprocess=PreprocessConfig(height=40, width=60),
    )
    dataset, split = load_training_data(student_config)
    assert isinstance(dataset, SignatureDataset)
    paths = Selection.of(dataset, split.train).paths
    teacher_vectors = TorchScorer.from_card(teacher.card_path, device="cpu").embed(
        build_image_bank(paths, PreprocessConfig(height=48, width=72)).astype("float32") / 255.0
    )
    student_bank = build_image_bank(paths, student_config.preprocess).astype("float32") / 255.0

    def agreement(card: Path | None) -> float:
        import numpy as np

        from inkproof.models.registry import build_model

        if card is None:
            torch.manual_seed(0)
            model = build_model("compact", student_config.model_config(), input_size=(40, 60))
            scorer = TorchScorer(model, ModelCard.load(teacher.card_path), torch.device("cpu"))
        else:
            scorer = TorchScorer.from_card(card, device="cpu")
        student = scorer.embed(student_bank)
        a = student / np.linalg.norm(student, axis=1, keepdims=True)
        b = teacher_vectors / np.linalg.norm(teacher_vectors, axis=1, keepdims=True)
        return float((a * b).sum(axis=1).mean())

    result = train(student_config, tmp_path / "student", progress=False, cache_dir=cache_dir)
    assert agreement(result.card_path) > agreement(None) + 0.1
    with pytest.raises(TrainingError, match="embedding_dim to match"):
        train(
            student_config.replace(model_settings={"width": 8, "embedding_dim": 16}),
            tmp_path / "bad",
            progress=False,
            cache_dir=cache_dir,
        )

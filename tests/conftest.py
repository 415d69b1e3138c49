"""Shared fixtures: small image factories and the location of the optional real datasets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import draw_scribble

REPO_ROOT = Path(__file__).resolve().parents[1]


def real_data_root() -> Path:
    return Path(os.environ.get("INKPROOF_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real datasets; tests using it skip with a reason when they are absent."""
    root = real_data_root()
    if not (root / "cedar").is_dir():
        pytest.skip(f"real datasets not found at {root} (set INKPROOF_DATA to run real-data tests)")
    return root


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; restore the process-wide setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def scribble() -> Callable[..., np.ndarray]:
    return draw_scribble


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset (folder-per-writer): 10 writers x 6 genuine x 4 forged."""
    from inkproof.data.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("synthetic") / "synth"
    generate_dataset(root, SyntheticConfig(writers=10, genuine_per_writer=6, forged_per_writer=4, seed=3))
    return root


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """Keep preprocessed-image caches inside the test's own folder."""
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def trained_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for one epoch on the synthetic set (its run folder)."""
    from inkproof.preprocess import PreprocessConfig
    from inkproof.training.config import TrainConfig
    from inkproof.training.trainer import train

    folder = tmp_path_factory.mktemp("trained")
    config = TrainConfig(
        data=(str(synthetic_root),),
        preprocess=PreprocessConfig(height=48, width=72),
        model="compact",
        model_settings={"width": 8, "depth": (1, 1, 1, 1), "embedding_dim": 32},
        epochs=1,
        batches_per_epoch=2,
        writers_per_batch=3,
        samples_per_writer=2,
        validation_pairs=4,
        split_fractions=(0.6, 0.2, 0.2),
        num_workers=0,
        tensorboard=False,
    )
    train(config, folder / "run", progress=False, cache_dir=folder / "cache")
    return folder / "run"


@pytest.fixture(scope="session")
def onnx_model(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported to ONNX (its model card)."""
    from inkproof.export.onnx_export import export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    return export_onnx(trained_run, folder / "model.onnx").card_path

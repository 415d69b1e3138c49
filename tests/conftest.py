"""Shared fixtures: small image factories and the location of the optional real datasets."""

from __future__ import annotations

import os
from collections.abc import Callable
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

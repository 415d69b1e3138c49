"""Image banks: every image of a selection preprocessed once into one uint8 array.

Training and evaluation read the same images many times; the bank holds the model inputs
(ink bright, quantised to 8 bits) in memory and can be cached on disk, keyed by the
preprocessing fingerprint and the files' paths, sizes and modification times.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from inkproof.imaging import load_image
from inkproof.preprocess import PreprocessConfig, preprocess_signature

CACHE_ENV = "INKPROOF_CACHE"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "inkproof")) / "preprocessed"


def _bank_key(paths: Sequence[Path], config: PreprocessConfig) -> str:
    digest = hashlib.sha256(config.fingerprint().encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _preprocess_one(path: Path, config: PreprocessConfig) -> np.ndarray:
    values = preprocess_signature(load_image(path), config)
    return np.round(values * 255.0).astype(np.uint8)


def build_image_bank(
    paths: Sequence[Path],
    config: PreprocessConfig,
    *,
    cache_dir: Path | None = None,
    threads: int | None = None,
    description: str = "preprocessing",
) -> np.ndarray:
    """(N, H, W) uint8 model inputs for ``paths`` (ink bright), cached on disk when ``cache_dir``."""
    if cache_dir is not None:
        cached = cache_dir / f"{_bank_key(paths, config)}.npy"
        if cached.is_file():
            bank = np.load(cached)
            if bank.shape == (len(paths), *config.input_size):
                return bank
    from rich.progress import Progress

    bank = np.zeros((len(paths), *config.input_size), dtype=np.uint8)
    workers = threads or max(1, os.cpu_count() or 1)
    with Progress(transient=True) as progress, ThreadPoolExecutor(workers) as pool:
        task = progress.add_task(description, total=len(paths))
        # Pillow and numpy release the GIL in the heavy parts, so threads overlap well enough.
        for index, values in enumerate(pool.map(lambda p: _preprocess_one(p, config), paths)):
            bank[index] = values
            progress.advance(task)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_name(cached.name + ".tmp.npy")
        np.save(temporary, bank)
        temporary.replace(cached)
    return bank

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inkproof.data.loader import ImageLoader
from inkproof.errors import InvalidImageError
from inkproof.preprocess import PreprocessConfig, preprocess_signature
from tests.helpers import draw_scribble, write_png


def test_loads_on_demand_and_caches(tmp_path: Path) -> None:
    paths = [write_png(tmp_path / f"{i}.png", draw_scribble(seed=i)) for i in range(3)]
    config = PreprocessConfig(height=32, width=48)
    loader = ImageLoader(config, cache_bytes=2 * 32 * 48 * 4)
    first = loader(paths[0])
    np.testing.assert_array_equal(first, preprocess_signature(draw_scribble(seed=0), config))
    assert loader(paths[0]) is first
    assert not first.flags.writeable
    loader(paths[1])
    loader(paths[2])  # evicts the least recently used entry
    info = loader.cache_info()
    assert (info.hits, info.misses, info.items) == (1, 3, 2)
    assert info.bytes <= info.max_bytes


def test_without_cache_and_raw_pixels(tmp_path: Path) -> None:
    path = write_png(tmp_path / "a.png", draw_scribble())
    loader = ImageLoader()
    raw = loader(path)
    assert raw.dtype == np.uint8
    assert loader.cache_info().items == 0
    with pytest.raises(InvalidImageError):
        loader(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="cache_bytes"):
        ImageLoader(cache_bytes=-1)

"""Lazy image loading with an optional bounded cache.

Records hold paths only; pixels are read when a consumer asks for them. Training reads the same
images every epoch, so a byte-bounded LRU cache of preprocessed arrays saves the decode and
preprocessing cost without holding a whole dataset in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inkproof.imaging import DEFAULT_MAX_PIXELS, load_image
from inkproof.preprocess import PreprocessConfig, preprocess_signature


@dataclass(frozen=True)
class CacheInfo:
    hits: int
    misses: int
    items: int
    bytes: int
    max_bytes: int


class ImageLoader:
    """Callable that maps a path to a grayscale uint8 array, or to the model input when a
    :class:`PreprocessConfig` is given. ``cache_bytes=0`` disables caching. Thread-safe."""

    def __init__(
        self,
        preprocess: PreprocessConfig | None = None,
        *,
        cache_bytes: int = 0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if cache_bytes < 0:
            raise ValueError("cache_bytes must be >= 0")
        self.preprocess = preprocess
        self.max_pixels = max_pixels
        self._max_bytes = cache_bytes
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()

    def __call__(self, path: str | Path) -> np.ndarray:
        key = Path(path)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._hits += 1
                return cached
            self._misses += 1
        array = load_image(key, max_pixels=self.max_pixels)
        if self.preprocess is not None:
            array = preprocess_signature(array, self.preprocess)
        array.setflags(write=False)  # cached arrays are shared between callers
        if self._max_bytes:
            self._store(key, array)
        return array

    def _store(self, key: Path, array: np.ndarray) -> None:
        if array.nbytes > self._max_bytes:
            return
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = array
            self._bytes += array.nbytes
            while self._bytes > self._max_bytes:
                _, evicted = self._cache.popitem(last=False)
                self._bytes -= evicted.nbytes

    def cache_info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._cache), self._bytes, self._max_bytes)

"""Small helpers shared by tests (importable as tests.helpers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def draw_scribble(width: int = 300, height: int = 120, seed: int = 0, paper: int = 245) -> np.ndarray:
    """A quick stroke drawing for tests that need some ink but no realism."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (width, height), paper)
    draw = ImageDraw.Draw(image)
    points = [
        (float(x), float(y))
        for x, y in zip(
            np.linspace(width * 0.1, width * 0.9, 12),
            rng.uniform(height * 0.25, height * 0.75, 12),
            strict=True,
        )
    ]
    draw.line(points, fill=30, width=4, joint="curve")
    return np.asarray(image, dtype=np.uint8).copy()


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path

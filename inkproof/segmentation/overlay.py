"""Colour masks, overlays and image grids as RGB uint8 arrays (numpy and Pillow only).

Used by training (validation overlays), by the runtime's callers and by tests; nothing here
needs torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

Colour = tuple[int, int, int]


def _palette_array(colors: Sequence[Sequence[int]]) -> np.ndarray:
    table = np.asarray(colors, dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 3 or len(table) == 0:
        raise ValueError("colors must be a non-empty sequence of (R, G, B) triples")
    if table.min() < 0 or table.max() > 255:
        raise ValueError("colour components must lie in 0..255")
    return table.astype(np.uint8)


def colour_mask(mask: np.ndarray, colors: Sequence[Sequence[int]], *, unknown: Colour = (255, 0, 255)) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) RGB; indices without a colour (ignore) become ``unknown``."""
    table = _palette_array(colors)
    index = np.asarray(mask).astype(np.int64)
    known = (index >= 0) & (index < len(table))
    rgb = table[np.where(known, index, 0)]
    rgb[~known] = unknown
    return rgb


def overlay(
    gray: np.ndarray,
    mask: np.ndarray,
    colors: Sequence[Sequence[int]],
    alpha: float = 0.5,
    *,
    skip_background: bool = True,
) -> np.ndarray:
    """The grayscale image in RGB with each class's colour blended in at ``alpha``.

    Class 0 is background and is left untouched by default: blending its colour (often black)
    over the whole page would only hide the image.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    image = np.asarray(gray)
    if image.ndim == 3:
        image = image.mean(axis=2)
    if image.shape != np.asarray(mask).shape:
        raise ValueError(f"image {image.shape} and mask {np.asarray(mask).shape} differ in size")
    base = np.repeat(image.astype(np.float32)[:, :, None], 3, axis=2)
    paint = colour_mask(mask, colors).astype(np.float32)
    weight = np.full(image.shape, alpha, dtype=np.float32)
    if skip_background:
        weight[np.asarray(mask) == 0] = 0.0
    blended = base * (1.0 - weight[:, :, None]) + paint * weight[:, :, None]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def grid(images: Sequence[np.ndarray], *, columns: int = 3, padding: int = 4, fill: int | Colour = 255) -> np.ndarray:
    """Tile gray or RGB images (any sizes) row by row into one RGB image; cells are top-left aligned."""
    if not images:
        raise ValueError("grid needs at least one image")
    if columns < 1:
        raise ValueError("columns must be >= 1")
    tiles = [
        np.repeat(np.asarray(im)[:, :, None], 3, axis=2) if np.asarray(im).ndim == 2 else np.asarray(im)
        for im in images
    ]
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    width = min(columns, len(tiles)) * (cell_w + padding) + padding
    height = len(rows) * (cell_h + padding) + padding
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[...] = np.asarray(fill, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            top = padding + r * (cell_h + padding)
            left = padding + c * (cell_w + padding)
            canvas[top : top + tile.shape[0], left : left + tile.shape[1]] = tile.astype(np.uint8)
    return canvas


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a gray or RGB uint8 array as PNG (atomically: a reader never sees half a file)."""
    from PIL import Image

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(temporary, format="PNG")
    temporary.replace(target)
    return target

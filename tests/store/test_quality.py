from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from inkproof.imaging import load_image
from inkproof.store import quality
from inkproof.store.quality import assess, component_sizes, count_components
from tests.helpers import draw_scribble


def speckles(width: int = 400, height: int = 200, dots: int = 300, seed: int = 0) -> np.ndarray:
    """A page of dirt or tiny print: hundreds of small dark dots."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width), 240, dtype=np.uint8)
    for y, x in zip(rng.integers(2, height - 4, dots), rng.integers(2, width - 4, dots), strict=True):
        image[y : y + 3, x : x + 3] = 20
    return image


def flood_fill_sizes(mask: np.ndarray) -> list[int]:
    """Reference 8-connected component sizes by breadth-first search."""
    seen = np.zeros_like(mask, dtype=bool)
    sizes = []
    height, width = mask.shape
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        queue, size = deque([start]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        sizes.append(size)
    return sorted(sizes)


def test_component_sizes_match_a_flood_fill() -> None:
    rng = np.random.default_rng(7)
    for _ in range(150):
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        mask = rng.random(shape) < rng.uniform(0.05, 0.8)
        assert sorted(component_sizes(mask).tolist()) == flood_fill_sizes(mask)
    # Diagonal neighbours connect (8-connectivity); a gap of one pixel separates.
    assert component_sizes(np.eye(6, dtype=bool)).tolist() == [6]
    assert len(component_sizes(np.array([[1, 0, 1]], dtype=bool))) == 2
    assert component_sizes(np.zeros((5, 5), dtype=bool)).size == 0


def test_small_specks_are_not_counted_as_strokes() -> None:
    mask = np.zeros((50, 50), dtype=bool)
    mask[10, 10] = True  # one pixel of dust
    mask[20:30, 5:45] = True  # a stroke
    assert count_components(mask, min_area=1) == 2
    assert count_components(mask, min_area=8) == 1


def test_real_signatures_pass(synthetic_root: Path) -> None:
    for path in sorted(synthetic_root.glob("W00[1-4]/*/*.png")):
        report = assess(load_image(path))
        assert report.ok, (path, report.problems)
        assert 0.5 <= report.score <= 1.0
        assert 1 <= report.components <= quality.MAX_COMPONENTS
    scribble = assess(draw_scribble())
    assert scribble.ok and scribble.score == 1.0 and scribble.components == 1


def test_blank_tiny_noisy_and_inky_images_are_refused_with_reasons() -> None:
    blank = assess(np.full((200, 400), 235, dtype=np.uint8))
    assert not blank.ok and blank.problems == ("blank (no ink found)",) and blank.score == 0.0
    assert blank.components == 0 and blank.ink_fraction == 0.0

    tiny = assess(draw_scribble(width=40, height=20))
    assert not tiny.ok
    assert tiny.problems[0] == f"too small (40x20 px; at least {quality.MIN_WIDTH}x{quality.MIN_HEIGHT})"
    assert (tiny.width, tiny.height) == (40, 20)

    noisy = assess(speckles())
    assert not noisy.ok and noisy.components > quality.MAX_COMPONENTS
    assert any(
        p.startswith(f"too many ink components ({noisy.components}; at most {quality.MAX_COMPONENTS})")
        and p.endswith("noise, text or a scan of a whole page?")
        for p in noisy.problems
    )

    dot = np.full((200, 400), 240, dtype=np.uint8)
    dot[100:106, 200:206] = 10
    few = assess(dot)
    assert not few.ok and few.problems[0].startswith("too few ink strokes (")

    dark = np.full((200, 400), 240, dtype=np.uint8)
    dark[:, :300] = 15
    inky = assess(dark)
    assert not inky.ok and inky.problems[0].startswith("too much ink (75% of the image")

    for report in (blank, tiny, noisy, few, inky):
        assert 0.0 <= report.score < 0.5
        assert report.to_dict()["problems"] == list(report.problems)


def test_uniform_noise_is_refused() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 1000)).astype(np.uint8)
    report = assess(noise)
    assert not report.ok and any(p.startswith("too many ink components") for p in report.problems)


def test_assess_is_fast_on_a_large_scan() -> None:
    images = [draw_scribble(width=1000, height=300), speckles(1000, 300, dots=2000)]
    for image in images:
        assess(image)  # warm up
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            assess(image)
            timings.append(time.perf_counter() - start)
        # About 10-15 ms here; the bound leaves room for a busy CI machine.
        assert min(timings) < 0.05, timings


def test_assess_wants_a_loaded_grayscale_image() -> None:
    with pytest.raises(ValueError, match="load_image"):
        assess(np.zeros((10, 10, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="load_image"):
        assess(np.zeros((10, 10), dtype=np.float32))

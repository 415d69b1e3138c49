"""The synthetic signature generator: determinism, image sanity, task realism, files on disk."""

from __future__ import annotations

import dataclasses
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from inkproof.data.synthetic import (
    MAX_HEIGHT,
    MAX_WIDTH,
    MIN_HEIGHT,
    MIN_WIDTH,
    SyntheticConfig,
    SyntheticSummary,
    WriterStyle,
    contact_sheet,
    generate_dataset,
    render_forgery,
    render_genuine,
    writer_id,
    writer_style,
)

CONFIG = SyntheticConfig()


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "L"
        return np.asarray(im).copy()


def _descriptor(img: np.ndarray) -> np.ndarray:
    """Fixed shape descriptor: ink crop, blurred, resized to 32x96, zero-mean unit vector."""
    ink = 255.0 - img.astype(np.float64)
    ink = np.clip(ink - np.median(ink) - 20.0, 0.0, None)
    ys, xs = np.nonzero(ink > 40.0)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    small = (
        Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8))
        .filter(ImageFilter.GaussianBlur(3))
        .resize((96, 32), Image.Resampling.BILINEAR)
    )
    vec = np.asarray(small, dtype=np.float64).ravel()
    vec -= vec.mean()
    return vec / np.linalg.norm(vec)


# --- identifiers and validation ---------------------------------------------------------------


def test_writer_id_is_one_based_and_zero_padded() -> None:
    assert writer_id(1) == "W001"
    assert writer_id(42) == "W042"
    assert writer_id(1234) == "W1234"
    with pytest.raises(ValueError, match="writer index"):
        writer_id(0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"writers": 0},
        {"genuine_per_writer": 0},
        {"forged_per_writer": -1},
        {"seed": -1},
        {"noise": -0.5},
        {"noise": float("nan")},
        {"blur": -1.0},
        {"supersample": 0},
        {"supersample": 8},
        {"forgery_skill": 1.5},
        {"writers": 2.5},
        {"writers": True},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the field; any field may fail
        SyntheticConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_valid_and_frozen() -> None:
    config = SyntheticConfig()
    assert (config.writers, config.genuine_per_writer, config.forged_per_writer, config.seed) == (
        10,
        12,
        12,
        0,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.writers = 3  # type: ignore[misc]


def test_writer_style_is_frozen_with_read_only_template() -> None:
    style = writer_style(0, 1)
    assert isinstance(style, WriterStyle)
    assert style.id == "W001"
    assert 1 <= len(style.strokes) <= 3
    assert len(style.letters) == len(style.strokes)
    for stroke, letters in zip(style.strokes, style.letters, strict=True):
        assert stroke.ndim == 2 and stroke.shape[1] == 2 and len(stroke) == len(letters)
        with pytest.raises(ValueError, match="read-only"):
            stroke[0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        style.pen_width = 9.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="seed"):
        writer_style(-1, 1)
    with pytest.raises(ValueError, match="writer index"):
        writer_style(0, 0)
    with pytest.raises(ValueError, match="sample_index"):
        render_genuine(style, -1)


# --- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [1, 2, 3, 4, 5, 6])
def test_images_are_plausible_scans(writer: int) -> None:
    style = writer_style(0, writer)
    for img in (render_genuine(style, 1), render_forgery(style, 1)):
        assert img.dtype == np.uint8 and img.ndim == 2
        height, width = img.shape
        assert MIN_HEIGHT <= height <= MAX_HEIGHT and MIN_WIDTH <= width <= MAX_WIDTH
        paper = np.median(img)
        assert 215 <= paper <= 252, "paper should be light"
        ink = img < 140
        assert 300 < ink.sum() < 0.25 * img.size, "there should be some ink, but mostly paper"
        assert img.min() < 100, "stroke cores should be dark"
        border = np.concatenate([img[:2].ravel(), img[-2:].ravel(), img[:, :2].ravel(), img[:, -2:].ravel()])
        assert border.min() > 150, "ink must not be cut off at the image border"


def test_sizes_vary_by_writer() -> None:
    shapes = {render_genuine(writer_style(0, w), 1).shape for w in range(1, 7)}
    assert len({h for h, _ in shapes}) >= 4
    assert len({w for _, w in shapes}) >= 4


def test_rendering_is_deterministic() -> None:
    style = writer_style(0, 2)
    np.testing.assert_array_equal(render_genuine(style, 1), render_genuine(writer_style(0, 2), 1))
    np.testing.assert_array_equal(render_forgery(style, 3), render_forgery(writer_style(0, 2), 3))
    other_seed = render_genuine(writer_style(1, 2), 1)
    assert not np.array_equal(render_genuine(style, 1), other_seed)
    assert not np.array_equal(render_genuine(style, 1), render_genuine(style, 2))
    assert not np.array_equal(render_genuine(style, 1), render_forgery(style, 1))


def test_noise_and_texture_knobs() -> None:
    style = writer_style(0, 3)
    clean = render_genuine(style, 1, SyntheticConfig(noise=0.0, paper_texture=False, blur=0.0))
    noisy = render_genuine(style, 1)
    tone = int(np.bincount(clean.ravel()).argmax())
    assert (clean == tone).mean() > 0.8, "without texture and noise the paper is one flat tone"
    assert (noisy == int(np.bincount(noisy.ravel()).argmax())).mean() < 0.3, "scanner noise and texture"
    assert tone >= 220


# --- the verification task is realistic --------------------------------------------------------


@pytest.fixture(scope="module")
def descriptors() -> dict[int, tuple[list[np.ndarray], list[np.ndarray]]]:
    out = {}
    for writer in range(1, 6):
        style = writer_style(0, writer)
        genuine = [_descriptor(render_genuine(style, i)) for i in range(1, 6)]
        forged = [_descriptor(render_forgery(style, i)) for i in range(1, 6)]
        out[writer] = (genuine, forged)
    return out


def test_genuine_samples_cluster_by_writer(
    descriptors: dict[int, tuple[list[np.ndarray], list[np.ndarray]]],
) -> None:
    same = [a @ b for g, _ in descriptors.values() for a, b in combinations(g, 2)]
    other = [
        a @ b for w, (g, _) in descriptors.items() for v, (h, _) in descriptors.items() if v > w for a in g for b in h
    ]
    assert np.mean(same) > np.mean(other) + 0.25
    # Nearest neighbour among all other genuine samples belongs to the same writer.
    items = [(w, d) for w, (g, _) in descriptors.items() for d in g]
    hits = 0
    for i, (w, d) in enumerate(items):
        sims = [(d @ e, v) for j, (v, e) in enumerate(items) if j != i]
        hits += max(sims)[1] == w
    assert hits / len(items) >= 0.9


def test_skilled_forgeries_are_close_but_less_similar_than_genuine(
    descriptors: dict[int, tuple[list[np.ndarray], list[np.ndarray]]],
) -> None:
    genuine_pairs, forgery_pairs, random_pairs, writers_ok = [], [], [], 0
    for w, (g, f) in descriptors.items():
        gg = np.mean([a @ b for a, b in combinations(g, 2)])
        gf = np.mean([a @ b for a in g for b in f])
        genuine_pairs.append(gg)
        forgery_pairs.append(gf)
        writers_ok += gf < gg
        random_pairs += [a @ b for v, (h, _) in descriptors.items() if v != w for a in g for b in h]
    assert np.mean(forgery_pairs) < np.mean(genuine_pairs) - 0.05
    assert writers_ok >= len(descriptors) - 1
    # Skilled forgeries imitate the writer: much closer than another writer's signature.
    assert np.mean(forgery_pairs) > np.mean(random_pairs) + 0.15


def test_forgeries_are_not_separable_by_global_statistics() -> None:
    stats: dict[str, list[tuple[float, float, float, float]]] = {"g": [], "f": []}
    for writer in range(1, 7):
        style = writer_style(0, writer)
        for i in (1, 2):
            for kind, img in (("g", render_genuine(style, i)), ("f", render_forgery(style, i))):
                stats[kind].append((img.shape[0], img.shape[1], img.mean(), (img < 128).mean()))
    g, f = np.array(stats["g"]), np.array(stats["f"])
    ratio = f.mean(axis=0) / g.mean(axis=0)
    assert np.all(np.abs(ratio[:3] - 1.0) < 0.08), ratio  # height, width, mean gray
    assert abs(ratio[3] - 1.0) < 0.3, ratio  # fraction of ink pixels


# --- files on disk -----------------------------------------------------------------------------


def test_generate_dataset_layout_and_order_independence(tmp_path: Path) -> None:
    config = SyntheticConfig(writers=3, genuine_per_writer=2, forged_per_writer=2, seed=5)
    summary = generate_dataset(tmp_path / "ds", config)
    assert isinstance(summary, SyntheticSummary)
    assert summary.root == tmp_path / "ds"
    assert summary.writers == ("W001", "W002", "W003")
    assert (summary.genuine, summary.forged) == (6, 6)
    for wid in summary.writers:
        assert sorted(p.name for p in (summary.root / wid / "genuine").iterdir()) == [
            f"{wid}_g_01.png",
            f"{wid}_g_02.png",
        ]
        assert sorted(p.name for p in (summary.root / wid / "forged").iterdir()) == [
            f"{wid}_f_01.png",
            f"{wid}_f_02.png",
        ]
    readme = (summary.root / "README.txt").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower() and "inkproof" in readme
    assert json.loads(readme[readme.index("{") :]) == dataclasses.asdict(config)

    # Writer 3 rendered alone gives the same pixels as inside the dataset (1-based sample indices).
    alone = writer_style(5, 3)
    np.testing.assert_array_equal(_load(summary.root / "W003/genuine/W003_g_02.png"), render_genuine(alone, 2, config))
    np.testing.assert_array_equal(_load(summary.root / "W003/forged/W003_f_01.png"), render_forgery(alone, 1, config))


def test_generate_dataset_rerun_overwrites_cleanly(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    generate_dataset(root, SyntheticConfig(writers=1, genuine_per_writer=3, forged_per_writer=2))
    foreign = root / "W001" / "genuine" / "notes.txt"
    foreign.write_text("keep me", encoding="utf-8")
    generate_dataset(root, SyntheticConfig(writers=1, genuine_per_writer=2, forged_per_writer=1), progress=True)
    assert sorted(p.name for p in (root / "W001" / "genuine").iterdir()) == [
        "W001_g_01.png",
        "W001_g_02.png",
        "notes.txt",
    ]
    assert [p.name for p in (root / "W001" / "forged").iterdir()] == ["W001_f_01.png"]
    assert foreign.read_text(encoding="utf-8") == "keep me"
    assert not list(root.rglob("*.tmp"))


def test_file_names_grow_past_two_digits() -> None:
    from inkproof.data.synthetic import _sample_name

    assert _sample_name("W001", "g", 7, 12) == "W001_g_07.png"
    assert _sample_name("W001", "f", 7, 120) == "W001_f_007.png"


def test_contact_sheet(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    generate_dataset(root, SyntheticConfig(writers=2, genuine_per_writer=2, forged_per_writer=2))
    out = contact_sheet(root, tmp_path / "sheet" / "sheet.png", writers=4, genuine=2, forged=1)
    assert out == tmp_path / "sheet" / "sheet.png"
    with Image.open(out) as im:
        assert im.format == "PNG"
        width, height = im.size
        sheet = np.asarray(im.convert("L"))
    assert 3 * 200 <= width <= 3 * 400  # three cells per row
    assert 2 * 100 <= height <= 2 * 200  # two writers present, though four were asked for
    assert (sheet < 100).mean() > 0.005, "thumbnails and captions should show ink"
    with pytest.raises(FileNotFoundError):
        contact_sheet(tmp_path / "sheet", tmp_path / "x.png")

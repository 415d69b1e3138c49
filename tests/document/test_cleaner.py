"""The signature cleaner: composited training examples, a tiny model trained, exported and run
through the torch-free runtime, typed errors, the bundled model and the benchmark function.

Everything here is synthetic (signatures rendered by inkproof itself); the real-data checks at the
end are marked ``realdata``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from inkproof.artifact import ArtifactError
from inkproof.data.synthetic import render_genuine, writer_style
from inkproof.document.cleaner import CleanerModelError, CleanResult, SignatureCleaner, clean_signature
from inkproof.document.cleaner_training import (
    MASK_BLUR,
    CleanerExamples,
    CleanerTrainSettings,
    benchmark_cleaner,
    bilevel,
    heldout_examples,
    load_signature,
    signature_paths,
    writer_split,
)
from inkproof.document.synthetic import MASK_THRESHOLD, _masked_alpha, cleaner_example
from inkproof.errors import InkproofError, InvalidImageError
from inkproof.preprocess import ink_mask
from inkproof.segmentation.metrics import confusion_matrix, iou_from_confusion
from tests.helpers import write_png

TINY = CleanerTrainSettings(
    encoder="tu-test_resnet",
    encoder_weights=None,
    encoder_depth=5,
    decoder_width=2,
    crop=(64, 128),
    examples_per_epoch=16,
    batch_size=8,
    validation_real=0,
    validation_synthetic=6,
)


def _real_like(seed: int = 0, writer: int = 3) -> np.ndarray:
    """A clean scanned signature on textured gray paper, from the synthetic generator."""
    return render_genuine(writer_style(seed, writer), 0)


def _ink_iou(truth: np.ndarray, prediction: np.ndarray) -> float:
    return float(iou_from_confusion(confusion_matrix(truth.astype(int), prediction.astype(int), 2))[1])


# --- composited examples -------------------------------------------------------------------------


def test_masked_alpha_is_zero_exactly_off_the_ink_mask() -> None:
    gray = _real_like()
    ink = ink_mask(gray, MASK_BLUR)
    alpha = _masked_alpha(gray, ink)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = ink[max(rows[0] - 2, 0) : rows[-1] + 3, max(cols[0] - 2, 0) : cols[-1] + 3]
    assert alpha.shape == crop.shape
    assert np.array_equal(alpha > 0, crop)
    assert alpha[crop].min() > MASK_THRESHOLD  # every mask pixel survives as ink
    with pytest.raises(ValueError, match="no ink"):
        _masked_alpha(gray, np.zeros_like(ink))
    with pytest.raises(ValueError, match="bool mask"):
        _masked_alpha(gray, ink[:-1])


def test_composite_mask_is_the_signature_ink_not_its_paper() -> None:
    # A long bar on noisy gray paper, plus a dark square that the ink mask leaves out: if paper or
    # the square leaked into the composite, its mask would stop being one long flat shape.
    rng = np.random.default_rng(0)
    signature = np.clip(rng.normal(215, 8, (200, 600)), 0, 255).astype(np.uint8)
    signature[95:105, 50:550] = 40
    signature[170:195, 10:40] = 20
    ink = np.zeros(signature.shape, dtype=bool)
    ink[95:105, 50:550] = True
    for index in range(6):
        image, mask = cleaner_example(index, size=(160, 384), signature=signature, ink=ink)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert cols.size > 8 * rows.size  # the bar only (rotated by at most 4 degrees)
        scale = cols.size / 500
        assert 0.6 < mask.sum() / (10 * 500 * scale**2) < 1.6  # the bar's area at the patch's scale
        assert float(image[mask].mean()) < float(image[~mask].mean()) - 30


def test_composites_really_add_print_and_lines() -> None:
    cluttered, ious = 0, []
    for index in range(20):
        image, mask = cleaner_example(index, size=(160, 384), seed=5)
        near_ink = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(5))) > 0
        dark_elsewhere = (image < np.median(image) - 50) & ~near_ink
        cluttered += int(dark_elsewhere.mean() > 0.005)
        ious.append(_ink_iou(mask, ink_mask(image, MASK_BLUR)))
    assert cluttered >= 14  # most patches carry dark print, lines or stamps away from the ink
    assert float(np.mean(ious)) < 0.7  # so a plain Otsu threshold cannot tell ink from print


def test_cleaner_examples_are_deterministic_and_sized(tmp_path: Path) -> None:
    files = [write_png(tmp_path / f"sig{i}.png", _real_like(writer=i + 1)) for i in range(3)]
    source = CleanerExamples(files, length=10, size=(64, 128), real_fraction=0.5, bilevel=0.0)
    assert len(source) == 10
    for index in range(10):
        image, mask = source(index)
        again_image, again_mask = source(index)
        assert np.array_equal(image, again_image) and np.array_equal(mask, again_mask)
        assert image.dtype == np.uint8 and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        assert image.shape[0] >= 64 and image.shape[1] >= 128 and mask.any()
    fixed = CleanerExamples(files, length=4, size=(96, 200), vary=False, synthetic_seed=None)
    assert {fixed(i)[0].shape for i in range(4)} == {(96, 200)}
    one, other = CleanerExamples(files, length=4).settings(), CleanerExamples(files[:2], length=4).settings()
    assert one["signatures"] == 3 and one["signatures_sha256"] != other["signatures_sha256"]


def test_bilevel_scans_keep_only_visible_ink() -> None:
    image, mask = cleaner_example(2, size=(128, 256))
    binary, kept = bilevel(image, mask)
    assert set(np.unique(binary)) <= {0, 255}
    assert not np.any(kept & (binary == 255)) and kept.sum() > 0.5 * mask.sum()


def test_heldout_examples_cover_the_given_signatures(tmp_path: Path) -> None:
    files = [write_png(tmp_path / f"sig{i}.png", _real_like(writer=i + 1)) for i in range(4)]
    made = heldout_examples(files, real=3, synthetic=2, synthetic_seed=1000, seed=1)
    assert len(made) == 5 and all(image.shape == (160, 384) for image, _ in made)
    assert all(mask.any() for _, mask in made)


def test_writer_split_of_a_plain_dataset(synthetic_root: Path) -> None:
    datasets, split = writer_split(synthetic_root)
    roles = {role: signature_paths(datasets, split, role) for role in ("train", "validation", "test")}
    assert all(roles.values())
    assert not set(roles["train"]) & (set(roles["validation"]) | set(roles["test"]))
    writer_of = {r.path: f"{datasets[0].name}/{r.writer}" for r in datasets[0].records}
    for role, paths in roles.items():
        assert {writer_of[p] for p in paths} == set(split.writers(role))  # type: ignore[arg-type]


# --- a tiny trained cleaner ----------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_cleaner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cleaner trained for two steps on synthetic writers and exported to ONNX (its card)."""
    from inkproof.document.cleaner_training import export_cleaner, train_cleaner

    root = tmp_path_factory.mktemp("cleaner")
    result = train_cleaner(
        None, root / "run", epochs=1, settings=TINY, device="cpu", threads=1, num_workers=0, progress=False
    )
    assert result.card_path.is_file() and result.epochs_run == 1
    history = json.loads(result.history_path.read_text())
    assert history[0]["train_loss"] > 0 and history[0]["val_iou.ink"] is not None
    exported = export_cleaner(result.run_dir, root / "model")
    assert exported.parity.passed
    return exported.card_path


def test_torch_free_runtime_end_to_end(tiny_cleaner: Path, tmp_path: Path) -> None:
    image, _ = cleaner_example(1, size=(150, 333))
    source = write_png(tmp_path / "noisy.png", image)
    code = f"""
import sys
import numpy as np
from inkproof.document.cleaner import SignatureCleaner, clean_signature
with SignatureCleaner({str(tiny_cleaner)!r}, threads=1) as cleaner:
    result = cleaner.clean({str(source)!r})
assert result.image.shape == result.mask.shape == (150, 333), result.image.shape
assert result.image.dtype == np.uint8 and result.mask.dtype == np.bool_
clean_signature({str(source)!r}, model={str(tiny_cleaner)!r})
heavy = {{"torch", "torchvision", "timm", "albumentations", "segmentation_models_pytorch"}}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print("LOADED", loaded)
sys.exit(1 if loaded else 0)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("shape", [(37, 101), (101, 203), (5, 7), (64, 128)])
def test_clean_keeps_any_shape_and_the_ink_tones(tiny_cleaner: Path, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0])
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    with SignatureCleaner(tiny_cleaner, threads=1, threshold=0.3) as cleaner:
        result = cleaner.clean(image)
    assert isinstance(result, CleanResult)
    assert result.image.shape == result.mask.shape == shape
    assert np.array_equal(result.image, np.where(result.mask, image, 255))
    assert result.ink_fraction == pytest.approx(result.mask.mean())
    assert result.to_dict()["ink_pixels"] == int(result.mask.sum())
    assert result.to_dict()["height"] == shape[0] and "image" not in result.to_dict()


def test_large_inputs_are_cleaned_at_reduced_size(tiny_cleaner: Path) -> None:
    image, _ = cleaner_example(3, size=(120, 700))
    with SignatureCleaner(tiny_cleaner, threads=1, max_side=256) as small, SignatureCleaner(tiny_cleaner) as full:
        reduced = small.clean(image)
        assert reduced.mask.shape == image.shape
        assert np.array_equal(reduced.image, np.where(reduced.mask, image, 255))
        # The tiny model barely learnt anything; the two paths must still agree on most pixels.
        assert np.mean(reduced.mask == full.clean(image).mask) > 0.7


def test_typed_errors(tiny_cleaner: Path, onnx_model: Path, tmp_path: Path) -> None:
    with pytest.raises(CleanerModelError, match="no cleaner model"):
        SignatureCleaner(tmp_path / "missing" / "model.json")
    with pytest.raises(InkproofError):
        clean_signature(np.zeros((8, 8), np.uint8), model=tmp_path / "missing")
    with SignatureCleaner(tiny_cleaner, threads=1) as cleaner:
        with pytest.raises(InvalidImageError):
            cleaner.clean(b"not an image at all")
        with pytest.raises(InvalidImageError, match="file not found"):
            cleaner.clean(tmp_path / "nope.png")
    with pytest.raises(ArtifactError, match="not a segmentation model card"):
        SignatureCleaner(onnx_model)  # a verification model is no cleaner
    card = json.loads(tiny_cleaner.read_text())
    card["class_names"] = ["background", "print"]
    other = tiny_cleaner.with_name("print.json")
    other.write_text(json.dumps(card))
    with pytest.raises(CleanerModelError, match="no 'ink'"):
        SignatureCleaner(other)
    with pytest.raises(ValueError, match="threshold"):
        SignatureCleaner(tiny_cleaner, threshold=1.0)


def test_benchmark_function_on_synthetic_writers(tiny_cleaner: Path, onnx_model: Path, synthetic_root: Path) -> None:
    out = tiny_cleaner.parent.parent / "bench"
    record = benchmark_cleaner(
        onnx_model, tiny_cleaner, synthetic_root, out, examples=4, synthetic=3, max_writers=2, threads=1, progress=False
    )
    assert set(record.segmentation) == {"validation writers", "test writers", "unseen synthetic writers"}
    for row in record.segmentation.values():
        assert 0.0 <= row["cleaner"]["ink_iou"] <= 1.0 and 0.0 <= row["otsu_baseline"]["ink_dice"] <= 1.0
    ((name, effect),) = record.verification.items()
    for condition in ("clean", "noisy", "noisy_cleaned", "clean_cleaned"):
        assert 0.0 <= effect[condition]["eer"] <= 1.0
        assert effect[condition]["n_genuine"] > 0
    assert record.speed["ms_per_signature_mean"] > 0 and record.cleaner["model_bytes"] > 0
    saved = json.loads((out / "cleaner.json").read_text())
    assert saved["verification"][name]["clean"]["eer"] == effect["clean"]["eer"]
    for file in ("grid-synthetic.png", "grid-heldout.png"):
        with Image.open(out / file) as grid:
            assert grid.width > 3 * 100  # three columns: noisy | cleaned | truth


# --- the bundled cleaner ---------------------------------------------------------------------------


def test_bundled_cleaner_cleans_unseen_synthetic_writers() -> None:
    made = heldout_examples((), real=0, synthetic=8, synthetic_seed=4_242, seed=9)
    with SignatureCleaner(threads=1) as cleaner:
        masks = [cleaner.clean(image).mask for image, _ in made]
    truth = np.concatenate([mask.ravel() for _, mask in made])
    predicted = np.concatenate([mask.ravel() for mask in masks])
    otsu = np.concatenate([ink_mask(image, MASK_BLUR).ravel() for image, _ in made])
    assert _ink_iou(truth, predicted) > 0.7
    assert _ink_iou(truth, predicted) > _ink_iou(truth, otsu) + 0.2


# --- real data -----------------------------------------------------------------------------------


@pytest.mark.realdata
def test_training_uses_only_training_writers_of_the_verification_split(shared_data: Path) -> None:
    from inkproof.benchmark.accuracy import plan_entries

    datasets, split = writer_split(shared_data)
    assert split == plan_entries(shared_data, ["main"])[0].split
    train = signature_paths(datasets, split, "train")
    held_out = set(signature_paths(datasets, split, "validation")) | set(signature_paths(datasets, split, "test"))
    assert train and held_out and not set(train) & held_out
    writers = {f"{d.name}/{r.writer}" for d in datasets for r in d.records if r.path in set(train)}
    assert writers <= set(split.train)


@pytest.mark.realdata
def test_cedar_gray_paper_never_becomes_ink(shared_data: Path) -> None:
    path = shared_data / "cedar" / "genuine" / "original_1_1.png"
    gray, ink = load_signature(path)
    assert np.median(gray) < 245 and ink.mean() < 0.1  # gray paper, thin strokes
    for index in range(4):
        image, mask = cleaner_example(index, size=(160, 384), signature=gray, ink=ink)
        assert 0 < mask.mean() < 0.15
        assert float(image[mask].mean()) < float(image[~mask].mean()) - 30

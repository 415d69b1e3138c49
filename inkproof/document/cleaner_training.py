"""Train, export and benchmark the signature cleaner (:mod:`inkproof.document.cleaner`).

Training pairs are made on the fly by :func:`inkproof.document.synthetic.cleaner_example`: a clean
signature composited over printed text, form lines, stamps and paper texture, then blurred,
noised and JPEG-compressed; :class:`CleanerExamples` adds size/aspect variety and some bilevel
(fax-like) scans. Signatures come from the synthetic pen model and from the real datasets'
**training writers** of the bundled verification model's split (:func:`writer_split`); validation
and test writers are never trained on. The ground truth of a real signature is its Otsu ink mask
(:func:`inkproof.preprocess.ink_mask` at :data:`MASK_BLUR`), so paper of any tone (CEDAR's gray)
never becomes ink.

Held-out examples: during training, validation writers plus unseen synthetic writers pick the
best epoch; :func:`benchmark_cleaner` reports validation writers, test writers and another unseen
synthetic set separately, an Otsu baseline, the speed of the torch-free runtime, and the effect
on verification: EER of clean pairs, of the same pairs with a noisy query, and with the noisy
query cleaned.

Torch is imported only inside :func:`train_cleaner` and :func:`export_cleaner`; the benchmark runs
the exported ONNX cleaner and any model card (ONNX or torch) through the project's evaluation code.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inkproof.data.adapters import load_dataset
from inkproof.data.records import SignatureDataset
from inkproof.data.splits import WriterSplit, split_writers
from inkproof.document.synthetic import cleaner_example
from inkproof.errors import EmptyDatasetError
from inkproof.imaging import load_image
from inkproof.preprocess import ink_mask, otsu_threshold

if TYPE_CHECKING:
    from inkproof.document.cleaner import SignatureCleaner
    from inkproof.segmentation.export import SegmentationExportResult
    from inkproof.segmentation.train import SegmentationResult

CLASS_NAMES = ("background", "ink")
#: Gaussian blur of the Otsu mask of real signatures: 1 px follows the strokes (the
#: preprocessing default of 2 px adds a halo of paper around them).
MASK_BLUR = 1.0
DEFAULT_CROP = (128, 256)
#: Size of held-out examples (validation during training, the benchmark's IoU).
HELDOUT_SIZE = (160, 384)
# Seeds of the synthetic writers: training, validation (model selection), benchmark. Distinct seeds
# give distinct writer styles, so validation and benchmark writers are unseen in training.
SYNTHETIC_TRAIN_SEED = 0
SYNTHETIC_VALIDATION_SEED = 1_000
SYNTHETIC_TEST_SEED = 2_000
_KIND_EXAMPLE = 7_001  # SeedSequence entry of CleanerExamples' own choices, fixed forever
_NOISE_SEED = 3_000  # clutter of the benchmark's noisy queries


# --- which signatures ----------------------------------------------------------------------------


def writer_split(data_root: str | Path) -> tuple[tuple[SignatureDataset, ...], WriterSplit]:
    """The datasets under ``data_root`` and their writer split, ids ``"<dataset name>/<writer>"``.

    With ``cedar/`` and ``bhsig-hindi/`` under ``data_root`` this is the split of the bundled
    verification model (:func:`inkproof.benchmark.accuracy.plan_entries`, part ``main``); any other
    dataset folder is split 70/15/15 by writer with seed 0.
    """
    root = Path(data_root)
    if (root / "cedar").is_dir() and (root / "bhsig-hindi").is_dir():
        from inkproof.benchmark.accuracy import plan_entries

        entry = plan_entries(root, ["main"])[0]
        return tuple(load_dataset(path) for path in entry.datasets), entry.split
    dataset = load_dataset(root)
    own = split_writers(dataset.writers(), seed=0, dataset=dataset.name)

    def prefixed(writers: Sequence[str]) -> tuple[str, ...]:
        return tuple(f"{dataset.name}/{w}" for w in writers)

    split = WriterSplit(prefixed(own.train), prefixed(own.validation), prefixed(own.test), dataset=dataset.name, seed=0)
    return (dataset,), split


def signature_paths(
    datasets: Sequence[SignatureDataset], split: WriterSplit, role: str, *, dataset: str | None = None
) -> list[Path]:
    """Image files (genuine and forged) of the ``role`` writers, optionally of one dataset only."""
    writers = set(split.writers(role))  # type: ignore[arg-type]
    return sorted(
        record.path
        for data in datasets
        if dataset is None or data.name == dataset
        for record in data.records
        if f"{data.name}/{record.writer}" in writers
    )


def load_signature(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A clean signature file as (uint8 gray, its Otsu ink mask): the ground truth of real data."""
    gray = load_image(path)
    return gray, ink_mask(gray, MASK_BLUR)


# --- examples ------------------------------------------------------------------------------------


def bilevel(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fax-like 1-bit version (Otsu threshold); ink that the threshold drops leaves the mask."""
    dark = image <= otsu_threshold(image)
    return np.where(dark, np.uint8(0), np.uint8(255)).astype(np.uint8), mask & dark


class CleanerExamples:
    """``index -> (noisy uint8 image, uint8 mask 0/1)``: the source of :class:`SegmentationDataset`.

    Example ``index`` takes a real signature from ``signatures`` with probability
    ``real_fraction`` (always, when ``synthetic_seed`` is None; never, when there are none), else a
    synthetic writer of ``synthetic_seed``. With ``vary`` the patch is ``size`` scaled by
    ``scale`` (both sides at least ``size``) with an aspect ratio drawn from ``aspect``; otherwise
    exactly ``size``. ``bilevel`` is the share of 1-bit scans. ``ordered`` makes example ``i`` use
    signature ``i % len(signatures)`` (even coverage of a held-out set) instead of a random one.
    Deterministic in ``index``; picklable (data-loader workers).
    """

    def __init__(
        self,
        signatures: Sequence[str | Path],
        *,
        length: int,
        size: tuple[int, int] = DEFAULT_CROP,
        seed: int = 0,
        synthetic_seed: int | None = SYNTHETIC_TRAIN_SEED,
        real_fraction: float = 0.6,
        vary: bool = True,
        scale: tuple[float, float] = (1.0, 1.8),
        aspect: tuple[float, float] = (1.6, 3.4),
        bilevel: float = 0.1,
        ordered: bool = False,
    ) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if not signatures and synthetic_seed is None:
            raise EmptyDatasetError("no real signatures and no synthetic writers to make examples from")
        self.signatures = tuple(str(p) for p in signatures)
        self.length = length
        self.size = (int(size[0]), int(size[1]))
        self.seed = seed
        self.synthetic_seed = synthetic_seed
        self.real_fraction = real_fraction if self.signatures else 0.0
        if synthetic_seed is None:
            self.real_fraction = 1.0
        self.vary = vary
        self.scale = scale
        self.aspect = aspect
        self.bilevel = bilevel
        self.ordered = ordered

    def __len__(self) -> int:
        return self.length

    def patch_size(self, rng: np.random.Generator) -> tuple[int, int]:
        if not self.vary:
            return self.size
        height = max(self.size[0], round(self.size[0] * rng.uniform(*self.scale)))
        width = max(self.size[1], round(height * rng.uniform(*self.aspect)))
        return height, width

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index, _KIND_EXAMPLE]))
        size = self.patch_size(rng)
        if rng.random() < self.real_fraction:
            pick = index % len(self.signatures) if self.ordered else int(rng.integers(len(self.signatures)))
            gray, ink = load_signature(self.signatures[pick])
            image, mask = cleaner_example(index, size=size, seed=self.seed, signature=gray, ink=ink)
        else:
            assert self.synthetic_seed is not None
            image, mask = cleaner_example(index, size=size, seed=self.synthetic_seed)
        if rng.random() < self.bilevel:
            image, mask = bilevel(image, mask)
        return image, mask.astype(np.uint8)

    def settings(self) -> dict[str, Any]:
        """What defines the examples (signature files by count and digest, not by listing)."""
        digest = hashlib.sha256("\n".join(self.signatures).encode()).hexdigest()[:16]
        values = {k: v for k, v in vars(self).items() if k != "signatures"}
        return {**values, "signatures": len(self.signatures), "signatures_sha256": digest}


class _Examples:
    """Precomputed examples behind the ``index -> example`` interface (held-out sets)."""

    def __init__(self, examples: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.examples[index]


def heldout_examples(
    signatures: Sequence[str | Path], *, real: int, synthetic: int, synthetic_seed: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``real`` examples of the given (held-out) signatures, then ``synthetic`` of unseen writers."""
    examples: list[tuple[np.ndarray, np.ndarray]] = []
    if real and signatures:
        chosen = _spread(signatures, real)
        source = CleanerExamples(
            chosen, length=len(chosen), size=HELDOUT_SIZE, seed=seed, synthetic_seed=None, vary=False, ordered=True
        )
        examples += [source(i) for i in range(len(chosen))]
    if synthetic:
        source = CleanerExamples(
            (), length=synthetic, size=HELDOUT_SIZE, seed=seed, synthetic_seed=synthetic_seed, vary=False
        )
        examples += [source(i) for i in range(synthetic)]
    return examples


def _spread(items: Sequence[str | Path], count: int) -> list[str | Path]:
    """``count`` items evenly spaced over ``items`` (all of them when there are fewer)."""
    if count >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


# --- training and export ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanerTrainSettings:
    """Network and data of a cleaner run (recorded in the run folder's ``cleaner.json``)."""

    encoder: str = "tu-tf_efficientnet_lite0"
    encoder_weights: str | None = "imagenet"
    encoder_depth: int = 4
    decoder_width: int = 16
    crop: tuple[int, int] = DEFAULT_CROP
    examples_per_epoch: int = 2000
    batch_size: int = 8
    lr: float = 2e-3
    real_fraction: float = 0.6
    bilevel: float = 0.1
    validation_real: int = 240
    validation_synthetic: int = 120
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["crop"] = list(self.crop)
        return values


def train_cleaner(
    data_root: str | Path | None,
    out: str | Path,
    *,
    epochs: int = 8,
    settings: CleanerTrainSettings = CleanerTrainSettings(),  # frozen, so a shared default is safe
    device: str = "auto",
    resume: bool = False,
    threads: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> SegmentationResult:
    """Train a cleaner into the run folder ``out`` (``resume`` continues it after its last epoch).

    ``data_root`` holds the real datasets (see :func:`writer_split`); ``None`` trains on
    synthetic writers only. The best epoch (by validation mean IoU) is kept in ``out/best``.
    """
    from inkproof.segmentation.dataset import SegmentationDataset
    from inkproof.segmentation.model import SegmentationConfig
    from inkproof.segmentation.train import train_segmentation

    train_files: list[Path] = []
    validation_files: list[Path] = []
    if data_root is not None:
        datasets, split = writer_split(data_root)
        train_files = signature_paths(datasets, split, "train")
        validation_files = signature_paths(datasets, split, "validation")
        if not train_files:
            raise EmptyDatasetError(f"no training-writer signatures under {data_root}")
    source = CleanerExamples(
        train_files,
        length=settings.examples_per_epoch,
        size=settings.crop,
        seed=settings.seed,
        real_fraction=settings.real_fraction,
        bilevel=settings.bilevel,
    )
    # The name fingerprints the data, so resuming with other signatures or settings is refused.
    described = json.dumps({"train": source.settings(), "settings": settings.to_dict()}, sort_keys=True)
    name = f"cleaner-{hashlib.sha256(described.encode()).hexdigest()[:12]}"
    dataset = SegmentationDataset.from_source(source, CLASS_NAMES, name=name)
    held_out = heldout_examples(
        validation_files,
        real=settings.validation_real,
        synthetic=settings.validation_synthetic,
        synthetic_seed=SYNTHETIC_VALIDATION_SEED,
        seed=settings.seed + 1,
    )
    validation = SegmentationDataset.from_source(_Examples(held_out), dataset.palette, name=f"{name}-validation")
    config = SegmentationConfig(
        classes=len(CLASS_NAMES),
        architecture="unet",
        encoder=settings.encoder,
        encoder_weights=settings.encoder_weights,
        encoder_depth=settings.encoder_depth,
        decoder_width=settings.decoder_width,
    )
    run = Path(out)
    run.mkdir(parents=True, exist_ok=True)
    (run / "cleaner.json").write_text(
        json.dumps(
            {
                "settings": settings.to_dict(),
                "data_root": None if data_root is None else str(data_root),
                "train_signatures": len(train_files),
                "validation_signatures": len(validation_files),
                "validation_examples": {
                    "real": min(settings.validation_real, len(validation_files)),
                    "synthetic": settings.validation_synthetic,
                },
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return train_segmentation(
        config,
        dataset,
        run,
        epochs=epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        crop=settings.crop,
        mixup=0.0,  # blending two patches would ask for ink that is half print: not a useful target
        device=device,
        resume=resume,
        progress=progress,
        seed=settings.seed,
        validation=validation,
        warmup_epochs=0.25,
        num_workers=num_workers,
        threads=threads,
        name="signature-cleaner",
        log=log,
    )


def export_cleaner(run: str | Path, out_dir: str | Path) -> SegmentationExportResult:
    """Export a cleaner run (or its ``best/model.json``) to ``out_dir/model.onnx`` + ``model.json``."""
    from inkproof.segmentation.export import export_segmentation

    # Parity at signature-like sizes (multiples of 32, so of any encoder depth's multiple).
    return export_segmentation(run, Path(out_dir) / "model.onnx", sizes=[(128, 256), (160, 384)])


# --- benchmark ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanerBenchmark:
    """What :func:`benchmark_cleaner` measured; ``to_dict`` is the JSON record."""

    cleaner: dict[str, Any]
    verifier: dict[str, Any]
    segmentation: dict[str, dict[str, Any]]  # group -> ink IoU/Dice (cleaner and Otsu baseline)
    verification: dict[str, dict[str, Any]]  # test set -> EER etc. per query condition
    speed: dict[str, float]
    files: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ink_scores(truths: Sequence[np.ndarray], predictions: Sequence[np.ndarray]) -> dict[str, float]:
    from inkproof.segmentation.metrics import confusion_matrix, dice_from_confusion, iou_from_confusion

    matrix = np.zeros((2, 2), dtype=np.int64)
    for truth, prediction in zip(truths, predictions, strict=True):
        matrix += confusion_matrix(truth.astype(np.int64), prediction.astype(np.int64), 2)
    return {
        "ink_iou": float(iou_from_confusion(matrix)[1]),
        "ink_dice": float(dice_from_confusion(matrix)[1]),
        "pixel_accuracy": float(np.trace(matrix) / matrix.sum()),
    }


def noisy_size(shape: tuple[int, int], height: int = 160) -> tuple[int, int]:
    """Patch size for a noisy copy of a signature of ``shape``: its aspect ratio with some margin."""
    aspect = shape[1] / max(shape[0], 1)
    return height, int(np.clip(round(height * aspect * 1.25), 2 * height, 6 * height))


def _view(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask.astype(bool), image, np.uint8(255)).astype(np.uint8)


def _example_grid(examples: Sequence[tuple[np.ndarray, np.ndarray]], cleaned: Sequence[np.ndarray], path: Path) -> Path:
    """Rows of noisy | cleaned | ground truth (noisy tones inside the true mask)."""
    from inkproof.segmentation.overlay import grid, save_png

    cells: list[np.ndarray] = []
    for (image, truth), clean in zip(examples, cleaned, strict=True):
        cells += [image, clean, _view(image, truth)]
    return save_png(grid(cells, columns=3), path)


def benchmark_cleaner(
    model: str | Path,
    cleaner: str | Path,
    data_root: str | Path,
    out: str | Path,
    *,
    examples: int = 300,
    synthetic: int = 200,
    max_writers: int | None = None,
    grid_rows: int = 6,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = True,
) -> CleanerBenchmark:
    """Measure the cleaner ``cleaner`` (ONNX card) on held-out writers and its effect on ``model``.

    Segmentation: up to ``examples`` composites per group of held-out writers (validation, test,
    and each dataset's test writers) and ``synthetic`` of unseen synthetic writers; ink IoU/Dice of
    the cleaner and of a plain Otsu threshold of the noisy image. Verification, per dataset's test
    writers (at most ``max_writers``): the standard pairs (:func:`inkproof.data.pairs.make_pairs`)
    scored clean, with a noisy query, with the noisy query cleaned, and with the clean query
    cleaned (EER etc. from :func:`inkproof.evaluation.metrics.evaluate_scores` at the model's
    validation threshold). Writes ``cleaner.json``, ``grid-synthetic.png`` (synthetic writers only)
    and ``grid-heldout.png`` (validation writers) into ``out``.
    """
    from rich.progress import Progress

    from inkproof.artifact import card_path_for
    from inkproof.benchmark.report import machine_description
    from inkproof.document.cleaner import SignatureCleaner
    from inkproof.evaluation.scoring import load_scorer

    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    datasets, split = writer_split(data_root)
    scorer = load_scorer(model, device="cpu")
    groups: dict[str, list[Path]] = {
        "validation writers": signature_paths(datasets, split, "validation"),
        "test writers": signature_paths(datasets, split, "test"),
    }
    if len(datasets) > 1:
        for data in datasets:
            groups[f"test writers: {data.name}"] = signature_paths(datasets, split, "test", dataset=data.name)

    segmentation: dict[str, dict[str, Any]] = {}
    verification: dict[str, dict[str, Any]] = {}
    timings: list[float] = []
    files: dict[str, str] = {}
    with SignatureCleaner(cleaner, threads=threads) as runtime, Progress(transient=True, disable=not progress) as bar:
        for label, paths in [*groups.items(), ("unseen synthetic writers", [])]:
            unseen = label == "unseen synthetic writers"
            made = heldout_examples(
                paths,
                real=0 if unseen else examples,
                synthetic=synthetic if unseen else 0,
                synthetic_seed=SYNTHETIC_TEST_SEED,
                seed=seed + 2,
            )
            if not made:
                continue
            scores, predicted = _segmentation_scores(runtime, made, timings, bar, label)
            segmentation[label] = {"signatures": len(_spread(paths, examples)) if paths else None, **scores}
            grid_name = {"unseen synthetic writers": "grid-synthetic.png", "validation writers": "grid-heldout.png"}
            if label in grid_name:
                rows = made[:grid_rows]
                cleaned = [_view(image, mask) for (image, _), mask in zip(rows, predicted, strict=False)]
                files[grid_name[label]] = str(_example_grid(rows, cleaned, target / grid_name[label]))
        for data in datasets:
            writers = [w.split("/", 1)[1] for w in split.test if w.startswith(f"{data.name}/")][:max_writers]
            if writers:
                verification[data.name] = _verification_effect(scorer, runtime, data, writers, seed, bar)
        card = runtime.engine.card

    milliseconds = np.array(timings) * 1000.0
    record = CleanerBenchmark(
        cleaner={
            "card": str(cleaner),
            "name": card.name,
            "sha256": card.sha256,
            "model_bytes": (card_path_for(cleaner).parent / card.files["model"]).stat().st_size,
            "config": card.config,
            "validation": card.validation,
        },
        verifier={"card": str(model), "name": scorer.card.name, "sha256": scorer.card.sha256},
        segmentation=segmentation,
        verification=verification,
        speed={
            "ms_per_signature_mean": float(milliseconds.mean()),
            "ms_per_signature_p50": float(np.median(milliseconds)),
            "signatures_timed": float(milliseconds.size),
            "threads": float(threads or (os.cpu_count() or 1)),
        },
        files=files,
        settings={
            "data_root": str(data_root),
            "examples": examples,
            "synthetic": synthetic,
            "max_writers": max_writers,
            "heldout_size": list(HELDOUT_SIZE),
            "seed": seed,
            "machine": machine_description(),
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    files["json"] = str(target / "cleaner.json")
    (target / "cleaner.json").write_text(json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8")
    return record


def _segmentation_scores(
    runtime: SignatureCleaner,
    made: Sequence[tuple[np.ndarray, np.ndarray]],
    timings: list[float],
    bar: Any,
    label: str,
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Ink IoU/Dice of the cleaner and of Otsu on ``made``; the cleaner's masks; timings appended."""
    task = bar.add_task(f"cleaning: {label}", total=len(made))
    predicted, otsu = [], []
    for image, _ in made:
        began = time.perf_counter()
        predicted.append(runtime.clean(image).mask)
        timings.append(time.perf_counter() - began)
        otsu.append(ink_mask(image, MASK_BLUR))
        bar.advance(task)
    truths = [mask for _, mask in made]
    scores = {
        "examples": len(made),
        "cleaner": _ink_scores(truths, predicted),
        "otsu_baseline": _ink_scores(truths, otsu),
    }
    return scores, predicted


def _verification_effect(
    scorer: Any, runtime: SignatureCleaner, data: SignatureDataset, writers: Sequence[str], seed: int, bar: Any
) -> dict[str, Any]:
    """EER etc. of the standard pairs of ``writers``: clean, noisy query, cleaned noisy query, cleaned clean query."""
    from inkproof.data.pairs import make_pairs
    from inkproof.evaluation.evaluate import embed_paths
    from inkproof.evaluation.metrics import evaluate_scores
    from inkproof.preprocess import preprocess_signature

    pairs = make_pairs(data, writers=writers, seed=seed)
    paths = sorted(set(pairs.images()))
    row = {path: i for i, path in enumerate(paths)}
    config = scorer.card.preprocess_config
    variants: dict[str, list[np.ndarray]] = {"noisy": [], "noisy_cleaned": [], "clean_cleaned": []}
    task = bar.add_task(f"noisy and cleaned queries: {data.name}", total=len(paths))
    for index, path in enumerate(paths):
        gray, ink = load_signature(path)
        size = noisy_size((gray.shape[0], gray.shape[1]))
        noisy, _ = cleaner_example(index, size=size, seed=_NOISE_SEED + seed, signature=gray, ink=ink)
        variants["noisy"].append(preprocess_signature(noisy, config))
        variants["noisy_cleaned"].append(preprocess_signature(runtime.clean(noisy).image, config))
        variants["clean_cleaned"].append(preprocess_signature(runtime.clean(gray).image, config))
        bar.advance(task)
    embeddings = {"clean": embed_paths(scorer, paths)}
    for name, inputs in variants.items():
        embeddings[name] = np.concatenate(
            [scorer.embed(np.stack(inputs[i : i + 256])) for i in range(0, len(inputs), 256)]
        )
    first = np.array([row[p.reference] for p in pairs.pairs])
    second = np.array([row[p.query] for p in pairs.pairs])
    labels, kinds = pairs.labels(), [p.kind for p in pairs.pairs]
    pair_writers = [p.writer or "" for p in pairs.pairs]
    threshold = scorer.card.threshold("eer")
    reports: dict[str, Any] = {"writers": len(writers), "pairs": len(pairs), "images": len(paths)}
    for name, queries in embeddings.items():
        scores = np.asarray(scorer.score(embeddings["clean"][first], queries[second]), dtype=np.float64)
        reports[name] = evaluate_scores(scores, labels, kinds, threshold, writers=pair_writers).to_dict()
    lost = reports["noisy"]["eer"] - reports["clean"]["eer"]
    regained = reports["noisy"]["eer"] - reports["noisy_cleaned"]["eer"]
    reports["eer_recovered_fraction"] = regained / lost if lost > 0 else None
    return reports


__all__ = [
    "CLASS_NAMES",
    "MASK_BLUR",
    "CleanerBenchmark",
    "CleanerExamples",
    "CleanerTrainSettings",
    "benchmark_cleaner",
    "bilevel",
    "export_cleaner",
    "heldout_examples",
    "load_signature",
    "signature_paths",
    "train_cleaner",
    "writer_split",
]

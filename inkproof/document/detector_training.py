"""Train, evaluate and export the page detector (torch for training and export, imported lazily).

Training examples are whole pages at the detector's working scale with every field box painted as a
filled region of its class (larger boxes first, so a box inside another stays visible):

* **Tobacco800** train pages of the leak-free split (:func:`inkproof.document.tobacco.split_pages`),
  less a group-aware validation part; the held-out test pages are never seen. Tobacco800 boxes only
  signatures and logos. Everything outside those boxes is labelled *background*, including the odd
  unboxed initials or handwritten date: its annotators left such handwriting (and marginal notes)
  unboxed on purpose, so on real scans "handwriting that is not a signature" must not fire as a
  signature, and the Tobacco800 evaluation counts it as a false signature. Marking those pixels
  "unknown" (ignored) is impossible without knowing where they are, and ignoring all unboxed pixels
  would throw away the only real-scan negatives (print, stamps, notes, noise). The price is known:
  initials, handwritten dates and redactions are learnt from synthetic pages alone.
* **Synthetic pages** (:func:`inkproof.document.synthetic.render_page`), exact boxes for all five
  classes, generated on demand through :meth:`SegmentationDataset.from_source` and cached in the run
  folder (``cache/``), so a resumed run does not render them again.
* **Hard negatives** (optional): synthetic training pages that carry unboxed notes, figures, pen
  marks and script wordmarks (``hard_negatives``), and the Tobacco800 training pages on which a
  detector fired on such handwriting (:mod:`inkproof.document.mining`), shown more often
  (``mined_negatives``, ``mined_repeats``).

Augmentation (the segmentation trainer's albumentations pipeline) suits scans: random crops, scale
0.8-1.25, rotation within 2 degrees, brightness/contrast, blur, sensor noise and JPEG artefacts; no
flips (text and letterheads have a left and a right).

Evaluation runs the exported (ONNX) detector on held-out Tobacco800 pages (signature, logo) and on
synthetic pages of a seed no training page used (all five classes): COCO-style AP@0.5 and
AP@[.5:.95] per class (:mod:`inkproof.evaluation.detection`), milliseconds per page (resize, network
and boxes; pages decoded beforehand, decoding timed separately) and annotated pages (green: truth,
class colours: predictions) for inspection.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inkproof.document.box_reading import PageMaps, read_page, to_working_scale
from inkproof.document.detector import (
    DetectorCard,
    DetectorSettings,
    FieldDetection,
    PageDetector,
    annotate_page,
    class_colours,
)
from inkproof.document.synthetic import FIELD_CLASSES, FIELD_COLOURS, PageConfig, render_page
from inkproof.document.tobacco import AnnotatedPage, Tobacco800, load_tobacco800, split_pages
from inkproof.errors import DatasetFormatError
from inkproof.evaluation.detection import BoxTuple, Detection, coco_average_precision
from inkproof.imaging import load_image
from inkproof.segmentation.dataset import ClassPalette, SegmentationDataset

__all__ = [
    "DETECTOR_PALETTE",
    "DetectorEvaluation",
    "DetectorRun",
    "DetectorTrainingConfig",
    "DetectorTuning",
    "boxes_to_mask",
    "build_datasets",
    "evaluate_detector",
    "export_detector",
    "find_tobacco",
    "quantize_detector",
    "train_detector",
    "tune_detector",
]

DETECTOR_PALETTE = ClassPalette(("background", *FIELD_CLASSES), ((0, 0, 0), *(FIELD_COLOURS[c] for c in FIELD_CLASSES)))
RUN_SETTINGS = "detector.json"
CACHE_DIR = "cache"
#: Seeds of the synthetic page sets; fixed forever so that held-out pages stay held out.
SYNTHETIC_TRAIN_SEED = 7100
SYNTHETIC_VALIDATION_SEED = 7200
SYNTHETIC_TEST_SEED = 7300

Split = Literal["test", "validation"]


@dataclass(frozen=True)
class DetectorTrainingConfig:
    """Everything that defines a detector training run (saved as ``detector.json`` in the run)."""

    long_side: int = 512
    architecture: str = "fpn"
    encoder: str = "tu-tf_efficientnet_lite0"
    encoder_weights: str | None = "imagenet"
    encoder_depth: int = 5
    decoder_width: int = 8
    epochs: int = 8
    batch_size: int = 8
    lr: float = 2e-3
    crop: tuple[int, int] = (320, 320)
    mixup: float = 0.0  # a blend of two pages shows ghost text no scanner makes
    dice_weight: float = 1.0
    # Cross-entropy weight per class (background first, then FIELD_CLASSES); None: all 1.
    class_weights: tuple[float, ...] | None = None
    warmup_epochs: float = 0.3
    synthetic_pages: int = 400
    synthetic_validation_pages: int = 30
    synthetic_page_size: tuple[int, int] = (1240, 1754)  # (width, height): A4 at 150 dpi
    tobacco: bool = True
    # Chance that a synthetic training page carries unboxed notes, figures, marks and a script
    # wordmark (synthetic/negatives.py); validation pages never do, so runs stay comparable.
    hard_negatives: float = 0.0
    # JSON of the detector's own false signature boxes on training pages (inkproof.document.mining):
    # those pages are shown ``mined_repeats`` extra times per epoch.
    mined_negatives: str | None = None
    mined_repeats: int = 2
    test_fraction: float = 0.2  # the leak-free split's held-out part (tobacco.split_pages)
    validation_fraction: float = 0.12  # of the remaining train pages, also group-aware
    split_seed: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop", (int(self.crop[0]), int(self.crop[1])))
        size = self.synthetic_page_size
        object.__setattr__(self, "synthetic_page_size", (int(size[0]), int(size[1])))
        if self.class_weights is not None:
            object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))
            if len(self.class_weights) != len(FIELD_CLASSES) + 1 or min(self.class_weights) <= 0:
                raise ValueError(f"class_weights needs {len(FIELD_CLASSES) + 1} positive values (background first)")
        if self.long_side < 64 or self.synthetic_pages < 0 or self.synthetic_validation_pages < 0:
            raise ValueError("long_side must be >= 64 and page counts >= 0")
        if not self.tobacco and self.synthetic_pages < 2:
            raise ValueError("without Tobacco800 pages, at least 2 synthetic pages are needed")
        if not 0.0 <= self.hard_negatives <= 1.0 or not 0 <= self.mined_repeats <= 10:
            raise ValueError("hard_negatives must be in [0, 1] and mined_repeats in [0, 10]")

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["crop"] = list(self.crop)
        values["synthetic_page_size"] = list(self.synthetic_page_size)
        if self.class_weights is None:
            del values["class_weights"]  # so that the settings of runs from before it still match
        else:
            values["class_weights"] = list(self.class_weights)
        # Settings added later are left out at their defaults, so older runs' settings still match.
        if self.hard_negatives == 0.0:
            del values["hard_negatives"]
        if self.mined_negatives is None:
            del values["mined_negatives"], values["mined_repeats"]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorTrainingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        pairs = ("crop", "synthetic_page_size", "class_weights")
        chosen: dict[str, Any] = {
            k: (tuple(v) if k in pairs and v is not None else v) for k, v in values.items() if k in known
        }
        return cls(**chosen)


# --- data --------------------------------------------------------------------------------------


def find_tobacco(data: str | Path | None) -> Path:
    """The Tobacco800 folder: ``data`` itself, its ``tobacco800/`` child, or the shared data root's."""
    from inkproof.data.location import data_root

    base = data_root(data)
    for candidate in (base, base / "tobacco800"):
        if (candidate / "train.csv").is_file() and (candidate / "boxes_attrs.csv").is_file():
            return candidate
    raise DatasetFormatError(f"no Tobacco800 folder at {base} (expected train.csv and boxes_attrs.csv)")


def tobacco_splits(
    root: str | Path, config: DetectorTrainingConfig
) -> tuple[list[AnnotatedPage], list[AnnotatedPage], list[AnnotatedPage]]:
    """(train, validation, test) pages; validation is split off the train part like the test part."""
    data = load_tobacco800(root)
    train, test = split_pages(data, test_fraction=config.test_fraction, seed=config.split_seed)
    rest = Tobacco800(tuple(train), data.duplicates)
    fit, validation = split_pages(rest, test_fraction=config.validation_fraction, seed=config.split_seed + 1)
    return fit, validation, test


def boxes_to_mask(
    shape: tuple[int, int], boxes: Sequence[tuple[str, BoxTuple]], scale: tuple[float, float]
) -> np.ndarray:
    """(h, w) class-index mask with each box (page pixels) filled at working scale; big boxes first."""
    mask = np.zeros(shape, dtype=np.uint8)
    sx, sy = scale
    index = {name: i for i, name in enumerate(DETECTOR_PALETTE.names)}
    ordered = sorted(boxes, key=lambda b: -(b[1][2] - b[1][0]) * (b[1][3] - b[1][1]))
    for label, (x0, y0, x1, y1) in ordered:
        top, left = max(0, int(np.floor(y0 * sy))), max(0, int(np.floor(x0 * sx)))
        bottom, right = max(top + 1, int(np.ceil(y1 * sy))), max(left + 1, int(np.ceil(x1 * sx)))
        mask[top:bottom, left:right] = index[label]
    return mask


def _working_example(
    gray: np.ndarray, boxes: Sequence[tuple[str, BoxTuple]], long_side: int
) -> tuple[np.ndarray, np.ndarray]:
    small = to_working_scale(gray, long_side)
    h, w = small.shape
    return small, boxes_to_mask((h, w), boxes, (w / gray.shape[1], h / gray.shape[0]))


def tobacco_truth(page: AnnotatedPage) -> list[tuple[str, BoxTuple]]:
    return [(b.label, (b.x0, b.y0, b.x1, b.y1)) for b in page.boxes]


def synthetic_truth(
    index: int, seed: int, size: tuple[int, int] = (1240, 1754), hard_negatives: float = 0.0
) -> tuple[np.ndarray, list[tuple[str, BoxTuple]]]:
    page = render_page(index, PageConfig(width=size[0], height=size[1], seed=seed, hard_negatives=hard_negatives))
    return page.image, [(f.label, tuple(float(v) for v in f.box)) for f in page.fields]  # type: ignore[misc]


class PageSource:
    """Picklable ``index -> (working-scale page, mask)`` over Tobacco800 pages then synthetic pages,
    cached as compressed ``.npz`` in ``cache`` (if given) so a resumed run skips the rendering."""

    def __init__(
        self,
        tobacco: Sequence[AnnotatedPage],
        synthetic: int,
        synthetic_seed: int,
        long_side: int,
        cache: Path | None = None,
        page_size: tuple[int, int] = (1240, 1754),
        hard_negatives: float = 0.0,
    ) -> None:
        self.tobacco = list(tobacco)
        self.synthetic = synthetic
        self.synthetic_seed = synthetic_seed
        self.page_size = page_size
        self.hard_negatives = hard_negatives
        self.long_side = long_side
        self.cache = cache
        self.memory: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.tobacco) + self.synthetic

    def key(self, index: int) -> str:
        if index < len(self.tobacco):
            return f"tobacco-{self.long_side}-{self.tobacco[index].path.stem}"
        width, height = self.page_size
        negatives = f"-negatives{self.hard_negatives:g}" if self.hard_negatives else ""
        return (
            f"synthetic-{self.long_side}-{width}x{height}-{self.synthetic_seed}{negatives}-{index - len(self.tobacco)}"
        )

    def _make(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index < len(self.tobacco):
            page = self.tobacco[index]
            return _working_example(load_image(page.path), tobacco_truth(page), self.long_side)
        image, boxes = synthetic_truth(
            index - len(self.tobacco), self.synthetic_seed, self.page_size, self.hard_negatives
        )
        return _working_example(image, boxes, self.long_side)

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self.memory:
            return self.memory[index]
        path = self.cache / f"{self.key(index)}.npz" if self.cache is not None else None
        example: tuple[np.ndarray, np.ndarray] | None = None
        if path is not None and path.is_file():
            try:
                with np.load(path) as stored:
                    example = (stored["image"], stored["mask"])
            except (OSError, ValueError, KeyError):
                example = None  # a file cut short by an interruption: make it again
        if example is None:
            example = self._make(index)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(path.stem + ".tmp.npz")
                np.savez_compressed(temporary, image=example[0], mask=example[1])
                temporary.replace(path)
        self.memory[index] = example
        return example


class RepeatedSource:
    """A page source whose examples are shown in ``order`` (indices of ``source``, repeats allowed)."""

    def __init__(self, source: PageSource, order: Sequence[int]) -> None:
        self.source = source
        self.order = list(order)

    def __len__(self) -> int:
        return len(self.order)

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.source(self.order[index])


# The file format that inkproof.document.mining writes and training reads.
MINED_FORMAT = "inkproof-mined-negatives/1"


def load_mined(path: str | Path) -> dict[str, list[list[float]]]:
    """The mined pages (file name -> false boxes) of a file that ``inkproof.document.mining`` wrote."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DatasetFormatError(f"cannot read mined negatives {path}: {error}") from None
    mined = values if isinstance(values, dict) else {}
    if mined.get("format") != MINED_FORMAT or not isinstance(mined.get("pages"), dict):
        raise DatasetFormatError(f"{path} is not a mined-negatives file ({MINED_FORMAT})")
    return dict(mined["pages"])


def mined_page_order(pages: Sequence[AnnotatedPage], mined: str | Path, repeats: int) -> list[int]:
    """Every training page once, then each page with mined false signatures ``repeats`` more times."""
    flagged = load_mined(mined)
    extra = [i for i, page in enumerate(pages) if page.path.name in flagged]
    return list(range(len(pages))) + extra * repeats


def build_datasets(
    config: DetectorTrainingConfig, data: str | Path | None, cache: Path | None = None
) -> tuple[SegmentationDataset, SegmentationDataset]:
    """(train, validation) datasets; the held-out Tobacco800 test pages are in neither."""
    train_pages: list[AnnotatedPage] = []
    validation_pages: list[AnnotatedPage] = []
    if config.tobacco:
        train_pages, validation_pages, _ = tobacco_splits(find_tobacco(data), config)
    size = config.synthetic_page_size
    train_source = PageSource(
        train_pages, config.synthetic_pages, SYNTHETIC_TRAIN_SEED, config.long_side, cache, size, config.hard_negatives
    )
    source: PageSource | RepeatedSource = train_source
    if config.mined_negatives is not None and config.mined_repeats > 0:
        order = mined_page_order(train_pages, config.mined_negatives, config.mined_repeats)
        source = RepeatedSource(train_source, order + list(range(len(train_pages), len(train_source))))
    validation_source = PageSource(
        validation_pages, config.synthetic_validation_pages, SYNTHETIC_VALIDATION_SEED, config.long_side, cache, size
    )
    name = f"pages-tobacco{len(train_pages)}-synthetic{config.synthetic_pages}-L{config.long_side}"
    train = SegmentationDataset.from_source(source, DETECTOR_PALETTE, name=name)
    validation = SegmentationDataset.from_source(validation_source, DETECTOR_PALETTE, name=f"{name}-validation")
    return train, validation


# --- training ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorRun:
    run_dir: Path
    card_path: Path  # best/model.json (safetensors training card)
    best_epoch: int
    best_miou: float
    iou: dict[str, float]
    epochs_run: int
    train_examples: int
    validation_examples: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["run_dir"], values["card_path"] = str(self.run_dir), str(self.card_path)
        return values


def segmentation_config(config: DetectorTrainingConfig) -> Any:
    from inkproof.segmentation.model import SegmentationConfig

    return SegmentationConfig(
        classes=len(DETECTOR_PALETTE),
        architecture=config.architecture,
        encoder=config.encoder,
        encoder_weights=config.encoder_weights,
        encoder_depth=config.encoder_depth,
        decoder_width=config.decoder_width,
    )


def augment_settings() -> Any:
    from inkproof.segmentation.train import AugmentSettings

    return AugmentSettings(
        horizontal_flip=0.0,
        affine=0.7,
        rotate=2.0,
        scale=(0.8, 1.25),
        translate=0.05,
        brightness_contrast=0.5,
        blur=0.2,
        noise=0.3,
        jpeg=0.3,
    )


def train_detector(
    config: DetectorTrainingConfig,
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> DetectorRun:
    """Train the detector into ``run_dir`` (resumable: ``resume=True`` continues the latest epoch)."""
    from inkproof.segmentation.train import train_segmentation
    from inkproof.training.trainer import TrainingError

    run = Path(run_dir)
    settings_file = run / RUN_SETTINGS
    if resume and settings_file.is_file():
        saved = DetectorTrainingConfig.from_dict(json.loads(settings_file.read_text(encoding="utf-8")))
        if dataclasses.replace(saved, epochs=config.epochs) != config:
            raise TrainingError(f"cannot resume {run}: the detector settings differ from {settings_file}")
    began = time.perf_counter()
    train, validation = build_datasets(config, data, run / CACHE_DIR)
    run.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    result = train_segmentation(
        segmentation_config(config),
        train,
        run,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        crop=config.crop,
        mixup=config.mixup,
        device=device,
        resume=resume,
        progress=progress,
        seed=config.seed,
        validation=validation,
        dice_weight=config.dice_weight,
        class_weights=config.class_weights,
        warmup_epochs=config.warmup_epochs,
        augment=augment_settings(),
        num_workers=0,  # examples are cached in this process; workers would each render their own
        threads=threads,
        name=f"page-detector-{config.architecture}-{config.encoder}",
        log=log,
    )
    return DetectorRun(
        run_dir=run,
        card_path=result.card_path,
        best_epoch=result.best_epoch,
        best_miou=result.best_miou,
        iou=result.iou,
        epochs_run=result.epochs_run,
        train_examples=len(train),
        validation_examples=len(validation),
        seconds=time.perf_counter() - began,
    )


def export_detector(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    threshold: float = 0.5,
    merge: int = 3,
    min_side: int = 3,
    min_area: int = 16,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Export a training run to ``out_dir/model.onnx`` + ``out_dir/model.json`` (detector card)."""
    from inkproof.segmentation.export import export_segmentation

    run = Path(run_dir)
    settings_file = run / RUN_SETTINGS
    if not settings_file.is_file():
        raise DatasetFormatError(f"{run} is not a detector run (no {RUN_SETTINGS})")
    config = DetectorTrainingConfig.from_dict(json.loads(settings_file.read_text(encoding="utf-8")))
    folder = Path(out_dir)
    kwargs: dict[str, Any] = {} if log is None else {"log": log}
    exported = export_segmentation(run / "best" / "model.json", folder / "model.onnx", **kwargs)
    from inkproof.segmentation.runtime import SegmentationCard

    segmentation = SegmentationCard.load(exported.card_path)
    segmentation = dataclasses.replace(
        segmentation,
        training={**segmentation.training, "detector": config.to_dict()},
        notes="Page field detector: filled-box heat maps, read by inkproof.document.detector.",
    )
    settings = DetectorSettings(
        classes=FIELD_CLASSES,
        long_side=config.long_side,
        threshold=threshold,
        merge=merge,
        min_side=min_side,
        min_area=min_area,
    )
    return DetectorCard(segmentation, settings).save(exported.card_path)


# --- evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetEvaluation:
    """Detection scores of one page set."""

    name: str
    pages: int
    boxes: dict[str, int]  # ground-truth boxes per class
    ap50: dict[str, float]
    ap75: dict[str, float]
    ap50_95: dict[str, float]
    detect_ms: dict[str, float]  # median, mean, p90 per page (resize + network + boxes)
    load_ms: dict[str, float]  # decoding the page file (Tobacco800 TIFFs; synthetic pages are rendered)
    annotated: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["annotated"] = list(self.annotated)
        return values


@dataclass(frozen=True)
class DetectorEvaluation:
    model: str
    threshold: float | None  # the one threshold given for every class; None: the card's settings
    sets: tuple[SetEvaluation, ...]
    machine: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # how the maps were read into boxes
    metrics_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "threshold": self.threshold,
            "settings": self.settings,
            "sets": {s.name: s.to_dict() for s in self.sets},
            "machine": self.machine,
            "metrics_path": None if self.metrics_path is None else str(self.metrics_path),
        }


def _summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 2),
        "mean": round(statistics.fmean(values), 2),
        "p90": round(float(np.percentile(values, 90)), 2),
    }


def _score_set(
    name: str,
    items: Sequence[tuple[str, Callable[[], tuple[np.ndarray, list[tuple[str, BoxTuple]]]]]],
    detector: PageDetector,
    labels: Sequence[str],
    out: Path | None,
    annotated: int,
    threshold: float | None,
    advance: Callable[[], None],
) -> SetEvaluation:
    truth: dict[str, list[tuple[str, BoxTuple]]] = {}
    detections: list[Detection] = []
    detect_ms: list[float] = []
    load_ms: list[float] = []
    written: list[str] = []
    colours = class_colours(detector.card)
    for key, load in items:
        began = time.perf_counter()
        gray, boxes = load()
        load_ms.append((time.perf_counter() - began) * 1000.0)
        result = detector.detect(gray, threshold=threshold)
        detect_ms.append(result.milliseconds)
        truth[key] = [(label, box) for label, box in boxes if label in labels]
        kept: list[FieldDetection] = [d for d in result.detections if d.label in labels]
        detections += [Detection(key, d.label, tuple(float(v) for v in d.box), d.confidence) for d in kept]  # type: ignore[arg-type]
        if out is not None and len(written) < annotated:
            from inkproof.segmentation.overlay import save_png

            gt = [(label, tuple(round(v) for v in box)) for label, box in truth[key]]
            image = annotate_page(gray, kept, colours, truth=gt)  # type: ignore[arg-type]
            written.append(str(save_png(image, out / f"{name}-{Path(key).stem}.png")))
        advance()
    scores = {label: coco_average_precision(detections, truth, label) for label in labels}

    def pick(metric: str) -> dict[str, float]:
        return {label: round(values[metric], 4) for label, values in scores.items()}

    counts = {label: sum(1 for boxes in truth.values() for kind, _ in boxes if kind == label) for label in labels}
    return SetEvaluation(
        name,
        len(items),
        counts,
        pick("ap50"),
        pick("ap75"),
        pick("ap50_95"),
        _summary(detect_ms),
        _summary(load_ms),
        tuple(written),
    )


def machine_description() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1m": round(load[0], 2),
        "python": platform.python_version(),
    }


PageLoader = Callable[[], tuple[np.ndarray, list[tuple[str, BoxTuple]]]]
PageSet = tuple[str, list[tuple[str, PageLoader]], tuple[str, ...]]  # name, (key, loader) items, classes


def _page_sets(
    card: DetectorCard, data: str | Path | None, split: Split, synthetic_pages: int, tobacco: bool
) -> list[PageSet]:
    """The held-out pages of ``split`` the model never trained on: Tobacco800 (signature and logo
    annotated) and synthetic pages of that split's seed (all classes)."""
    config = DetectorTrainingConfig.from_dict(card.segmentation.training.get("detector") or {})
    work: list[PageSet] = []
    if tobacco:
        _, validation_pages, test_pages = tobacco_splits(find_tobacco(data), config)
        pages = test_pages if split == "test" else validation_pages

        def tobacco_loader(page: AnnotatedPage) -> PageLoader:
            return lambda: (load_image(page.path), tobacco_truth(page))

        work.append((f"tobacco800-{split}", [(str(p.path), tobacco_loader(p)) for p in pages], ("signature", "logo")))
    if synthetic_pages:
        seed = SYNTHETIC_TEST_SEED if split == "test" else SYNTHETIC_VALIDATION_SEED

        def synthetic_loader(index: int) -> PageLoader:
            return lambda: synthetic_truth(index, seed, config.synthetic_page_size)

        items = [(f"synthetic-{seed}-{i:04d}", synthetic_loader(i)) for i in range(synthetic_pages)]
        work.append((f"synthetic-{split}", items, FIELD_CLASSES))
    return work


def evaluate_detector(
    model: str | Path,
    *,
    data: str | Path | None = None,
    out: str | Path | None = None,
    split: Split = "test",
    synthetic_pages: int = 100,
    tobacco: bool = True,
    annotated: int = 6,
    threshold: float | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> DetectorEvaluation:
    """AP and speed of an exported detector on held-out Tobacco800 pages and synthetic pages.

    ``split="validation"`` scores the validation pages instead (for choosing settings without
    touching the test pages). The split settings come from the card's training record, so the
    held-out pages are exactly those the model never saw. Writes ``metrics.json`` and annotated
    pages to ``out`` when given.
    """
    detector = PageDetector.from_card(model, threads=threads)
    folder = Path(out) if out is not None else None
    work = _page_sets(detector.card, data, split, synthetic_pages, tobacco)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    sets: list[SetEvaluation] = []
    with (
        detector,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not progress,
            transient=True,
        ) as bar,
    ):
        for name, items, labels in work:
            task = bar.add_task(name, total=len(items))

            def advance(task: Any = task) -> None:
                bar.advance(task)

            sets.append(_score_set(name, items, detector, labels, folder, annotated, threshold, advance))
    evaluation = DetectorEvaluation(
        model=str(model),
        threshold=None if threshold is None else float(threshold),
        settings=detector.settings.to_dict(),
        sets=tuple(sets),
        machine={**machine_description(), "threads": threads or os.cpu_count()},
    )
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        metrics = folder / "metrics.json"
        evaluation = dataclasses.replace(evaluation, metrics_path=metrics)
        metrics.write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n", encoding="utf-8")
    return evaluation


def record_evaluation(card_path: str | Path, evaluation: DetectorEvaluation) -> Path:
    """Store ``evaluation``'s scores in the detector card's ``evaluation`` section."""
    card = DetectorCard.load(card_path)
    summary = {s.name: {k: v for k, v in s.to_dict().items() if k != "annotated"} for s in evaluation.sets}
    return dataclasses.replace(card, evaluation=summary).save(card_path)


# --- reading the maps: settings chosen on validation pages --------------------------------------

TUNE_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TUNE_MERGES = (1, 3, 6)
TUNE_MIN_SIDES = (3, 5, 8)  # working-scale pixels: specks smaller than a field's short side


@dataclass(frozen=True)
class DetectorTuning:
    """What :func:`tune_detector` chose and the validation AP@0.5 behind each choice."""

    settings: DetectorSettings
    before: dict[str, float]  # "<set>.<class>" -> validation AP@0.5 with the card's settings
    after: dict[str, float]  # the same with the chosen settings
    candidates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "validation_ap50_before": self.before,
            "validation_ap50_after": self.after,
            "candidates": self.candidates,
        }


def tune_detector(
    model: str | Path,
    *,
    data: str | Path | None = None,
    synthetic_pages: int = 30,
    tobacco: bool = True,
    thresholds: Sequence[float] = TUNE_THRESHOLDS,
    merges: Sequence[int] = TUNE_MERGES,
    min_sides: Sequence[int] = TUNE_MIN_SIDES,
    threads: int | None = None,
    write: bool = True,
    progress: bool = True,
) -> DetectorTuning:
    """Choose how the detector's maps become boxes, on the *validation* pages only.

    The network runs once per page; then every merge radius, smallest box side, per-class
    threshold and tightening to ink (on or off per class) is scored by AP@0.5 (AP@[.5:.95] breaks
    ties), each class on the page sets that annotate it. Per (merge, smallest side) the best
    threshold and tightening of each class are kept; the pair with the best mean over classes wins.
    ``write`` stores the choice in the card, where :class:`~inkproof.document.detector.PageDetector` reads it.
    """
    from rich.progress import Progress

    from inkproof.artifact import card_path_for

    card_path = card_path_for(Path(model))
    detector = PageDetector.from_card(card_path, threads=threads)
    base = detector.settings
    work = _page_sets(detector.card, data, "validation", synthetic_pages, tobacco)
    pages: list[tuple[str, str, np.ndarray, PageMaps, list[tuple[str, BoxTuple]]]] = []
    with detector, Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("validation pages", total=sum(len(items) for _, items, _ in work))
        for name, items, labels in work:
            for key, load in items:
                gray, truth = load()
                pages.append((name, key, gray, detector.maps(gray), [(c, b) for c, b in truth if c in labels]))
                bar.advance(task)
    annotating = {name: labels for name, _, labels in work}

    def scores(settings: DetectorSettings, tighten: Sequence[str]) -> dict[str, tuple[float, float]]:
        found: dict[str, list[Detection]] = {name: [] for name in annotating}
        truth: dict[str, dict[str, list[tuple[str, BoxTuple]]]] = {name: {} for name in annotating}
        for name, key, gray, maps, boxes in pages:
            detections = read_page(gray, maps, dataclasses.replace(settings, tighten=tuple(tighten)))
            truth[name][key] = boxes
            for d in detections:
                x0, y0, x1, y1 = d.box
                found[name].append(Detection(key, d.label, (float(x0), float(y0), float(x1), float(y1)), d.confidence))
        result: dict[str, tuple[float, float]] = {}
        for name, labels in annotating.items():
            for label in labels:
                if any(c == label for boxes in truth[name].values() for c, _ in boxes):
                    ap = coco_average_precision(found[name], truth[name], label)
                    result[f"{name}.{label}"] = (ap["ap50"], ap["ap50_95"])
        return result

    def per_class(table: dict[str, tuple[float, float]]) -> dict[str, float]:
        merged: dict[str, list[float]] = {}
        for key, (ap50, ap50_95) in table.items():
            merged.setdefault(key.rsplit(".", 1)[1], []).append(ap50 + 1e-3 * ap50_95)
        return {label: float(np.mean(values)) for label, values in merged.items()}

    before = scores(base, base.tighten)
    best: tuple[float, DetectorSettings] | None = None
    candidates = 0
    for merge, min_side in [(m, side) for m in merges for side in min_sides]:
        choice: dict[str, tuple[float, float, bool]] = {}  # class -> (score, threshold, tighten)
        for threshold in thresholds:
            for tighten in (False, True):
                candidates += 1
                trial = dataclasses.replace(
                    base, merge=merge, min_side=min_side, threshold=threshold, class_thresholds=(), tighten=()
                )
                for label, score in per_class(scores(trial, base.classes if tighten else ())).items():
                    if label not in choice or score > choice[label][0]:
                        choice[label] = (score, threshold, tighten)
        if not choice:
            continue
        mean = float(np.mean([score for score, _, _ in choice.values()]))
        settings = dataclasses.replace(
            base,
            merge=merge,
            min_side=min_side,
            class_thresholds=tuple((label, level) for label, (_, level, _) in choice.items()),
            tighten=tuple(label for label, (_, _, tight) in choice.items() if tight),
        )
        if best is None or mean > best[0]:
            best = (mean, settings)
    chosen = base if best is None else best[1]
    after = scores(chosen, chosen.tighten)

    def rounded(table: dict[str, tuple[float, float]]) -> dict[str, float]:
        return {key: round(ap50, 4) for key, (ap50, _) in table.items()}

    tuning = DetectorTuning(chosen, rounded(before), rounded(after), candidates)
    if write:
        card = DetectorCard.load(card_path)
        segmentation = dataclasses.replace(
            card.segmentation, training={**card.segmentation.training, "tuning": tuning.to_dict()}
        )
        dataclasses.replace(card, segmentation=segmentation, settings=chosen).save(card_path)
    return tuning


# --- int8 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorQuantization:
    card_path: Path
    size_before: int
    size_after: int
    ap50_before: dict[str, float]  # validation pages, per page set and class
    ap50_after: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["card_path"] = str(self.card_path)
        return values


class _PageReader:
    """Calibration pages for onnxruntime, one working-scale page per batch."""

    def __init__(self, pages: Sequence[np.ndarray], multiple: int, pad_value: int) -> None:
        from inkproof.segmentation.runtime import pad_to_multiple

        self._batches = iter(
            [
                {"images": pad_to_multiple(page, multiple, value=pad_value).astype(np.float32)[None, None] / 255.0}
                for page in pages
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # the calibrator reads the data once
        pass


def _validation_ap50(card: Path, data: str | Path | None, tobacco: bool, synthetic_pages: int) -> dict[str, float]:
    evaluation = evaluate_detector(
        card, data=data, split="validation", synthetic_pages=synthetic_pages, tobacco=tobacco, progress=False
    )
    return {f"{s.name}.{label}": value for s in evaluation.sets for label, value in s.ap50.items()}


def quantize_detector(
    model: str | Path,
    out_dir: str | Path,
    *,
    data: str | Path | None = None,
    calibration_pages: int = 48,
    synthetic_pages: int = 30,
    max_ap_drop: float = 0.02,
) -> DetectorQuantization:
    """Static int8 (QDQ, per-channel weights) of an exported detector, calibrated on training pages.

    AP@0.5 is measured on the validation pages before and after; when any class loses more than
    ``max_ap_drop`` (absolute) the int8 model is refused (QuantizationRejected) and nothing is written.
    """
    import shutil
    import tempfile

    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from inkproof.artifact import card_path_for, sha256_file
    from inkproof.export.quantize import QuantizationRejected

    source = card_path_for(model)
    card = DetectorCard.load(source)
    config = DetectorTrainingConfig.from_dict(card.segmentation.training.get("detector") or {})
    graph = card.segmentation.path_of("model", source)
    before = _validation_ap50(source, data, config.tobacco, synthetic_pages)
    train_source, _ = build_datasets(config, data)
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(train_source), size=min(calibration_pages, len(train_source)), replace=False)
    pages = [train_source[int(i)][0] for i in sorted(chosen)]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        prepared = folder / "prepared.onnx"
        quant_pre_process(str(graph), str(prepared), skip_symbolic_shape=True)
        quantized = folder / "model.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            _PageReader(pages, card.segmentation.multiple, card.segmentation.pad_value),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        info = {"mode": "static", "calibration_pages": len(pages), "source_sha256": card.segmentation.sha256}
        segmentation = dataclasses.replace(
            card.segmentation,
            files={"model": quantized.name},
            sha256={quantized.name: sha256_file(quantized)},
            training={**card.segmentation.training, "quantization": info},
        )
        scratch_card = dataclasses.replace(card, segmentation=segmentation).save(folder / "model.json")
        after = _validation_ap50(scratch_card, data, config.tobacco, synthetic_pages)
        drops = {k: before[k] - after[k] for k in before if np.isfinite(before[k]) and np.isfinite(after[k])}
        worst = max(drops, key=lambda k: drops[k]) if drops else None
        if worst is not None and drops[worst] > max_ap_drop:
            raise QuantizationRejected(
                f"int8 lowers validation AP@0.5 of {worst} from {before[worst]:.3f} to {after[worst]:.3f} "
                f"(more than {max_ap_drop:.3f}); nothing was written"
            )
        target = Path(out_dir)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(quantized, target / quantized.name)
        info.update(validation_ap50_fp32=before, validation_ap50_int8=after)
        final = dataclasses.replace(
            card,
            segmentation=dataclasses.replace(
                segmentation, training={**card.segmentation.training, "quantization": info}
            ),
        ).save(target / "model.json")
    return DetectorQuantization(final, graph.stat().st_size, (target / quantized.name).stat().st_size, before, after)

"""Find signatures, initials, handwritten dates, redactions and logos on document pages (torch-free).

The detector is a segmentation network (:mod:`inkproof.segmentation`) trained to paint each field's
box as a filled region of its class. At run time a page is resized so that its long side is the
card's working size (the scale it was trained at; some classes may be read from a second pass at
another size), padded to the network's multiple, and each class's probability map is turned into
boxes as :mod:`inkproof.document.box_reading` describes (thresholds, grouping, tightening to ink,
joining, splitting, trimming).

The settings (classes, working size, threshold, dilation, minimum size) live in the ``detector``
section of the model card, a :class:`~inkproof.segmentation.runtime.SegmentationCard` JSON with that
extra section, so a model and the way its maps are read travel together. The bundled model is at
``inkproof/assets/models/detector/model.json``.

Example::

    from inkproof.document.detector import PageDetector, detect_document

    detector = PageDetector.from_card()                   # the bundled model
    result = detector.detect("page.png")                  # PageDetections
    for field in result.detections:
        print(field.label, field.box, f"{field.confidence:.2f}")
    document = detect_document("contract.pdf", detector=detector, out="found")  # + crops, boxes.json
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inkproof.artifact import ArtifactError, card_path_for
from inkproof.atomic import write_json_atomic
from inkproof.document.box_reading import (
    Box,
    DetectorSettings,
    FieldDetection,
    PageMaps,
    ink_mask,
    read_page,
    to_working_scale,
)
from inkproof.document.pages import DEFAULT_DPI, DEFAULT_MAX_PAGES, Page, iter_pages, open_document
from inkproof.document.signature_filter import FILTER_FILE, SignatureFilter
from inkproof.errors import InkproofError
from inkproof.imaging import DEFAULT_MAX_PIXELS, ImageSource, load_image
from inkproof.segmentation.runtime import SegmentationCard, SegmentationEngine, pad_to_multiple

__all__ = [
    "DEFAULT_MODEL_DIR",
    "DetectorCard",
    "DetectorModelMissingError",
    "DetectorSettings",
    "DocumentDetections",
    "FieldDetection",
    "PageDetections",
    "PageDetector",
    "annotate_page",
    "default_model_path",
    "detect_document",
]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "models" / "detector"
DETECTOR_SECTION = "detector"


class DetectorModelMissingError(InkproofError, FileNotFoundError):
    """No detector model where one was expected (the bundled one, or the path given)."""


def default_model_path() -> Path:
    """The bundled detector's card; raises :class:`DetectorModelMissingError` when it is absent."""
    card = DEFAULT_MODEL_DIR / "model.json"
    if not card.is_file():
        raise DetectorModelMissingError(
            f"no detector model at {card}; pass --model (a card from `inkproof detector export`) "
            "or reinstall inkproof with its bundled assets"
        )
    return card


# --- the card ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorCard:
    """A segmentation card plus the ``detector`` section (settings and measured evaluation)."""

    segmentation: SegmentationCard
    settings: DetectorSettings
    evaluation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = self.segmentation.class_names
        if tuple(names[1:]) != self.settings.classes:
            raise ArtifactError(
                f"the detector classes {list(self.settings.classes)} do not match the model's "
                f"non-background classes {list(names[1:])}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.segmentation.to_dict(),
            DETECTOR_SECTION: {"settings": self.settings.to_dict(), "evaluation": self.evaluation},
        }

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DetectorCard:
        source = Path(path)
        if not source.is_file():
            raise DetectorModelMissingError(f"no detector model card at {source}")
        try:
            values = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"cannot read model card {source}: {exc}") from None
        section = values.get(DETECTOR_SECTION) if isinstance(values, dict) else None
        if not isinstance(section, dict) or "settings" not in section:
            raise ArtifactError(
                f"{source} is not a detector card (no '{DETECTOR_SECTION}' section); "
                "export one with `inkproof detector export`"
            )
        try:
            settings = DetectorSettings.from_dict(section["settings"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{source}: bad detector settings ({exc})") from None
        return cls(SegmentationCard.from_dict(values), settings, dict(section.get("evaluation") or {}))


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageDetections:
    page: int  # 0-based page index in its document
    width: int
    height: int
    detections: tuple[FieldDetection, ...]  # highest confidence first
    milliseconds: float = float("nan")  # resize + network + boxes

    def to_dict(self) -> dict[str, Any]:
        return {
            "page": self.page + 1,
            "width": self.width,
            "height": self.height,
            "milliseconds": round(self.milliseconds, 2) if np.isfinite(self.milliseconds) else None,
            "detections": [d.to_dict() for d in self.detections],
        }

    def of(self, label: str) -> tuple[FieldDetection, ...]:
        return tuple(d for d in self.detections if d.label == label)


@dataclass(frozen=True)
class DocumentDetections:
    source: str
    model: str
    pages: tuple[PageDetections, ...]
    files: tuple[Path, ...] = ()  # what detect_document wrote (boxes.json, crops, annotated pages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model": self.model,
            "pages": [p.to_dict() for p in self.pages],
            "files": [str(f) for f in self.files],
        }

    @property
    def count(self) -> int:
        return sum(len(p.detections) for p in self.pages)


# --- the detector ------------------------------------------------------------------------------


class PageDetector:
    """An exported detector (ONNX + detector card) run with onnxruntime; no torch."""

    def __init__(
        self,
        card: DetectorCard,
        model_path: str | Path,
        *,
        threads: int | None = None,
        device: str = "cpu",
        threshold: float | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        signature_filter: SignatureFilter | None = None,
    ) -> None:
        if threshold is not None and not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        self.card = card
        self.settings = card.settings
        self.signature_filter = signature_filter
        self.threshold_override = None if threshold is None else float(threshold)
        self.max_pixels = max_pixels
        self.engine = SegmentationEngine(card.segmentation, model_path, device=device, threads=threads)

    @classmethod
    def from_card(cls, card: str | Path | None = None, *, use_filter: bool = True, **options: Any) -> PageDetector:
        """Load a detector card (``model.json``), its ``.onnx`` or its folder; None: the bundled model.

        A :class:`~inkproof.document.signature_filter.SignatureFilter` saved beside the card
        (``signature-filter.json``) re-scores its signature boxes unless ``use_filter`` is False.
        """
        if card is None:
            path = default_model_path()
        else:
            given = Path(card)
            if not given.exists():
                raise DetectorModelMissingError(f"no detector model at {given}")
            path = card_path_for(given)
        loaded = DetectorCard.load(path)
        if loaded.segmentation.format != "onnx":
            raise ArtifactError(f"{path} describes a {loaded.segmentation.format} model; export it to ONNX first")
        beside = Path(path).parent / FILTER_FILE
        if use_filter and beside.is_file() and "signature_filter" not in options:
            try:
                options["signature_filter"] = SignatureFilter.load(beside)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ArtifactError(f"cannot read the signature filter {beside}: {exc}") from None
        return cls(loaded, loaded.segmentation.path_of("model", path), **options)

    @property
    def name(self) -> str:
        return self.card.segmentation.name

    @property
    def threshold(self) -> float:
        """The threshold every class uses when overridden, else the card's default one."""
        return self.settings.threshold if self.threshold_override is None else self.threshold_override

    def probabilities(self, gray: np.ndarray, long_side: int | None = None) -> tuple[np.ndarray, tuple[float, float]]:
        """(C, h, w) probabilities at working scale (the settings' ``long_side`` unless given) and the
        (x, y) scale from page to working pixels."""
        height, width = gray.shape
        small = to_working_scale(gray, self.settings.long_side if long_side is None else long_side)
        h, w = small.shape
        padded = pad_to_multiple(small, self.engine.multiple, value=self.card.segmentation.pad_value)
        output = self.engine.run(padded.astype(np.float32)[None, None] * np.float32(1 / 255))[0]
        return output[:, :h, :w], (w / width, h / height)

    def maps(self, gray: np.ndarray) -> PageMaps:
        """The probabilities at every working size the settings read a class at."""
        return {side: self.probabilities(gray, side) for side in self.settings.long_sides}

    def detect(self, page: ImageSource, *, index: int = 0, threshold: float | None = None) -> PageDetections:
        """The fields on one page (any image :func:`~inkproof.imaging.load_image` reads).

        ``threshold`` overrides the detector's for this call; ``index`` is recorded as the page number.
        """
        if threshold is not None and not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        gray = load_image(page, max_pixels=self.max_pixels)
        began = time.perf_counter()
        maps = self.maps(gray)
        height, width = gray.shape
        level = self.threshold_override if threshold is None else threshold
        signature_filter = self.signature_filter if "signature" in self.settings.classes else None
        # One ink mask for reading and the filter (an Otsu pass over the whole page each).
        ink = ink_mask(gray) if signature_filter is not None or self.settings.reads_ink else None
        boxes = read_page(gray, maps, self.settings, threshold=level, ink=ink)
        if signature_filter is not None:
            boxes = signature_filter.apply(gray, boxes, ink=ink)
        elapsed = (time.perf_counter() - began) * 1000.0
        return PageDetections(index, width, height, tuple(boxes), elapsed)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> PageDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- drawing and writing -------------------------------------------------------------------------

_TRUTH_COLOUR = (0, 170, 0)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def annotate_page(
    gray: np.ndarray,
    detections: Sequence[FieldDetection],
    colours: dict[str, tuple[int, int, int]],
    *,
    truth: Sequence[tuple[str, Box]] = (),
    longest: int | None = 1600,
) -> np.ndarray:
    """The page in RGB with predicted boxes in their class colours (label and confidence on top)
    and, when given, ground-truth boxes as thin green frames; downscaled to ``longest`` pixels."""
    image = Image.fromarray(np.asarray(gray, dtype=np.uint8)).convert("RGB")
    factor = 1.0
    if longest is not None and max(image.size) > longest:
        factor = longest / max(image.size)
        image = image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BOX)
    draw = ImageDraw.Draw(image)
    font = _font(max(11, round(max(image.size) / 90)))
    for label, box in truth:
        x0, y0, x1, y1 = (v * factor for v in box)
        draw.rectangle((x0 - 3, y0 - 3, x1 + 2, y1 + 2), outline=_TRUTH_COLOUR, width=1)
        draw.text((x0 - 3, y1 + 3), f"truth: {label}", fill=_TRUTH_COLOUR, font=font)
    for detection in detections:
        colour = colours.get(detection.label, (255, 0, 255))
        x0, y0, x1, y1 = (v * factor for v in detection.box)
        # A box a few page pixels wide is under one pixel once downscaled: draw it one pixel wide.
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=colour, width=2)
        text = f"{detection.label} {detection.confidence:.2f}"
        top = max(0.0, y0 - font.size - 4) if isinstance(font, ImageFont.FreeTypeFont) else max(0.0, y0 - 14)
        draw.text((x0, top), text, fill=colour, font=font)
    return np.asarray(image)


def class_colours(card: DetectorCard) -> dict[str, tuple[int, int, int]]:
    names, colours = card.segmentation.class_names, card.segmentation.class_colors
    return {name: tuple(colour) for name, colour in zip(names[1:], colours[1:], strict=True)}  # type: ignore[misc]


def _save(image: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    Image.fromarray(np.ascontiguousarray(image)).save(temporary, format="PNG")
    temporary.replace(path)
    return path


def _write_outputs(
    page: Page, result: PageDetections, colours: dict[str, tuple[int, int, int]], out: Path
) -> list[Path]:
    files: list[Path] = []
    counters: dict[str, int] = {}
    for detection in result.detections:
        counters[detection.label] = counters.get(detection.label, 0) + 1
        x0, y0, x1, y1 = detection.box
        name = f"page{page.index + 1}_{detection.label}_{counters[detection.label]}.png"
        files.append(_save(page.image[y0:y1, x0:x1], out / "crops" / name))
    annotated = annotate_page(page.image, result.detections, colours)
    files.append(_save(annotated, out / f"page{page.index + 1}_annotated.png"))
    return files


def detect_document(
    source: str | os.PathLike[str] | bytes,
    *,
    detector: PageDetector | None = None,
    model: str | Path | None = None,
    threshold: float | None = None,
    threads: int | None = None,
    out: str | Path | None = None,
    dpi: float = DEFAULT_DPI,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_pixels: int | None = None,
) -> DocumentDetections:
    """Detect fields on every page of a PNG/JPEG/TIFF/PDF, one page at a time
    (:func:`~inkproof.document.pages.iter_pages`).

    ``detector`` is reused when given, else one is loaded from ``model`` (default: the bundled
    model). With ``out``, writes ``boxes.json`` (this result), ``crops/page1_signature_1.png`` ...
    (page pixels) and ``page1_annotated.png`` ... there, each page's files as soon as it is read.
    """
    document = open_document(source, dpi=dpi, max_pages=max_pages, max_pixels=max_pixels)
    active = detector or PageDetector.from_card(model, threads=threads, max_pixels=document.max_pixels)
    folder = None if out is None else Path(out)
    colours = class_colours(active.card)
    try:
        results: list[PageDetections] = []
        files: list[Path] = []
        for page in iter_pages(document):
            result = active.detect(page.image, index=page.index, threshold=threshold)
            results.append(result)
            if folder is not None:
                files.extend(_write_outputs(page, result, colours, folder))
        detections = DocumentDetections(document.source, active.name, tuple(results))
        if folder is None:
            return detections
        boxes = folder / "boxes.json"
        detections = dataclasses.replace(detections, files=(boxes, *files))
        folder.mkdir(parents=True, exist_ok=True)
        boxes.write_text(json.dumps(detections.to_dict(), indent=2) + "\n", encoding="utf-8")
        return detections
    finally:
        if detector is None:
            active.close()

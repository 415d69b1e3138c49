"""Torch-free segmentation inference: an ONNX graph, its card, numpy and onnxruntime.

:class:`SegmentationEngine` reads any image :func:`~inkproof.imaging.load_image` accepts, pads
it to the model's multiple (32 for depth-5 encoders) with the paper value it was trained with (or
by reflection), runs onnxruntime and crops the result back to the input's size. Big inputs can
be cut into overlapping tiles whose probabilities are blended with a feathered window, so a
scanned A4 page (1754x1240 at 150 dpi) needs neither a huge buffer nor shows tile seams.

:class:`SegmentationCard` is the JSON beside every segmentation model file (safetensors from
training, ONNX from export): config, class names and colours, sha256 of each file, validation
scores and training provenance.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inkproof.artifact import ArtifactError, card_path_for, sha256_file
from inkproof.atomic import write_json_atomic
from inkproof.imaging import DEFAULT_MAX_PIXELS, ImageSource, load_image

CARD_VERSION = 1
TASK = "segmentation"
SegmentationFormat = Literal["safetensors", "onnx"]
PadMode = Literal["constant", "reflect"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class SegmentationCard:
    """The JSON card of a segmentation model; ``config`` is a SegmentationConfig as a dict."""

    name: str
    config: dict[str, Any]
    class_names: tuple[str, ...]
    class_colors: tuple[tuple[int, int, int], ...]
    format: SegmentationFormat
    files: dict[str, str]  # role ("weights" or "model") -> file name beside the card
    sha256: dict[str, str]
    validation: dict[str, Any] = field(default_factory=dict)  # miou, mdice, per-class iou/dice, epoch
    training: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    created: str = field(default_factory=_now)
    inkproof_version: str = ""
    task: str = TASK
    card_version: int = CARD_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "class_colors", tuple(tuple(int(v) for v in c) for c in self.class_colors))
        if not self.inkproof_version:
            from inkproof import __version__

            object.__setattr__(self, "inkproof_version", __version__)
        if self.task != TASK:
            raise ArtifactError(f"not a segmentation model card (task {self.task!r})")
        if len(self.class_names) != int(self.config.get("classes", -1)):
            raise ArtifactError("the card's class names do not match the config's number of classes")

    @property
    def multiple(self) -> int:
        return int(2 ** int(self.config.get("encoder_depth", 5)))

    @property
    def pad_value(self) -> int:
        return int(self.config.get("pad_value", 255))

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["class_names"] = list(self.class_names)
        values["class_colors"] = [list(c) for c in self.class_colors]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SegmentationCard:
        known = {f.name for f in dataclasses.fields(cls)}
        if values.get("task") != TASK:
            raise ArtifactError("not a segmentation model card (no task 'segmentation')")
        try:
            return cls(**{k: v for k, v in values.items() if k in known})
        except TypeError as exc:
            raise ArtifactError(f"not a segmentation model card: {exc}") from None

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> SegmentationCard:
        source = Path(path)
        try:
            values = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"cannot read model card {source}: {exc}") from None
        if not isinstance(values, dict):
            raise ArtifactError(f"{source} is not a model card")
        return cls.from_dict(values)

    def path_of(self, role: str, card_path: str | Path) -> Path:
        """Absolute path of the file playing ``role``, checked against its recorded sha256."""
        if role not in self.files:
            raise ArtifactError(f"segmentation card has no {role!r} file (has: {sorted(self.files)})")
        path = Path(card_path).parent / self.files[role]
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
        expected = self.sha256.get(self.files[role])
        if expected and sha256_file(path) != expected:
            raise ArtifactError(f"{path} does not match the sha256 recorded in its model card")
        return path


# --- geometry helpers (pure numpy; also used by tests) -----------------------------------------


def round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def pad_to_multiple(image: np.ndarray, multiple: int, *, mode: PadMode = "constant", value: int = 255) -> np.ndarray:
    """Pad a (H, W) image at the bottom and right so both sides are multiples of ``multiple``."""
    height, width = image.shape
    extra_h, extra_w = round_up(height, multiple) - height, round_up(width, multiple) - width
    if not extra_h and not extra_w:
        return image
    widths = ((0, extra_h), (0, extra_w))
    if mode == "reflect":
        # Reflection needs at least two pixels along an axis; a one-pixel line is repeated instead.
        if min(height, width) < 2:
            return np.pad(image, widths, mode="edge")
        return np.pad(image, widths, mode="reflect")
    return np.pad(image, widths, mode="constant", constant_values=value)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` shared."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _feather(size: int, overlap: int) -> np.ndarray:
    """1-D blending weights: a linear ramp over the overlap at both ends, never exactly zero."""
    if overlap <= 0:
        return np.ones(size, dtype=np.float32)
    position = np.arange(size, dtype=np.float32)
    distance = np.minimum(position + 1, size - position)
    return np.clip(distance / (overlap + 1), 1e-3, 1.0).astype(np.float32)


# --- the engine --------------------------------------------------------------------------------


class SegmentationEngine:
    """An ONNX segmentation model with its card; ``predict`` maps a page to class indices."""

    def __init__(
        self,
        card: SegmentationCard,
        model_path: str | Path,
        *,
        device: str = "auto",
        threads: int | None = None,
        tile: int | None = None,
        overlap: int = 64,
        pad_mode: PadMode = "constant",
        batch_size: int = 4,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        import onnxruntime as ort

        from inkproof.runtime.engine import providers_for

        if pad_mode not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")
        if tile is not None and tile < card.multiple:
            raise ValueError(f"tile must be at least {card.multiple} pixels, got {tile}")
        if overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        self.card = card
        self.multiple = card.multiple
        self.tile = None if tile is None else round_up(tile, card.multiple)
        self.overlap = overlap
        self.pad_mode: PadMode = pad_mode
        self.batch_size = max(1, batch_size)
        self.max_pixels = max_pixels
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session: Any = ort.InferenceSession(str(model_path), options, providers=providers_for(device))
        self._input = self._session.get_inputs()[0].name

    @classmethod
    def from_card(cls, card: str | Path, **options: Any) -> SegmentationEngine:
        """Load from an ONNX card (``<out>.json``), its ``.onnx`` file or a folder holding ``model.json``."""
        card_path = card_path_for(card)
        loaded = SegmentationCard.load(card_path)
        if loaded.format != "onnx":
            raise ArtifactError(
                f"{card_path} describes a {loaded.format} model; export it to ONNX first "
                "(inkproof.segmentation.export.export_segmentation)"
            )
        return cls(loaded, loaded.path_of("model", card_path), **options)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.card.class_names

    @property
    def class_colors(self) -> tuple[tuple[int, int, int], ...]:
        return self.card.class_colors

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Raw graph call: (N, 1, H, W) float32 in [0, 1], H and W multiples -> (N, C, H, W) probabilities."""
        outputs = self._session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(outputs[0], dtype=np.float32)

    def predict(self, image: ImageSource) -> tuple[np.ndarray, np.ndarray]:
        """(class-index mask uint8 (H, W), probabilities float32 (C, H, W)) at the input's size."""
        gray = load_image(image, max_pixels=self.max_pixels)
        height, width = gray.shape
        padded = pad_to_multiple(gray, self.multiple, mode=self.pad_mode, value=self.card.pad_value)
        pixels = padded.astype(np.float32) / 255.0
        if self.tile is None or (padded.shape[0] <= self.tile and padded.shape[1] <= self.tile):
            probabilities = self.run(pixels[None, None])[0]
        else:
            probabilities = self._tiled(pixels, self.tile)
        probabilities = np.ascontiguousarray(probabilities[:, :height, :width])
        return probabilities.argmax(axis=0).astype(np.uint8), probabilities

    def _tiled(self, pixels: np.ndarray, tile: int) -> np.ndarray:
        height, width = pixels.shape
        tile_h, tile_w = min(tile, height), min(tile, width)
        # The overlap is kept below half a tile so every tile still owns a core of its own.
        overlap = min(self.overlap, tile_h // 2, tile_w // 2)
        boxes = [(y, x) for y in tile_starts(height, tile_h, overlap) for x in tile_starts(width, tile_w, overlap)]
        window = np.outer(_feather(tile_h, overlap), _feather(tile_w, overlap))
        total = np.zeros((self.card.classes, height, width), dtype=np.float32)
        weight = np.zeros((height, width), dtype=np.float32)
        for start in range(0, len(boxes), self.batch_size):
            chunk = boxes[start : start + self.batch_size]
            batch = np.stack([pixels[y : y + tile_h, x : x + tile_w] for y, x in chunk])[:, None]
            for (y, x), probabilities in zip(chunk, self.run(batch), strict=True):
                total[:, y : y + tile_h, x : x + tile_w] += probabilities * window
                weight[y : y + tile_h, x : x + tile_w] += window
        return total / weight[None]

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> SegmentationEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

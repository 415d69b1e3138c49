"""The one preprocessing function that turns a signature image into model input.

Training, evaluation, ONNX inference and the service all call :func:`preprocess_signature`, and
every model artifact records :data:`PREPROCESS_VERSION` with the :class:`PreprocessConfig` it was
trained with. Any change to what this module computes must bump the version, so that a model is
never fed inputs prepared differently from those it learned on.

Steps (version 1):

1. Gaussian blur (``blur_sigma``) and Otsu's threshold on the blurred image; pixels at or below
   the threshold are ink. Paper of any brightness becomes exactly 0, which removes the background
   level (e.g. gray versus white paper) as a cue.
2. Crop to the bounding box of the ink.
3. Ink values: ``normalized`` maps each ink pixel's darkness relative to the threshold and the
   image's darkest ink onto [0, 1] (independent of scanner gain and paper tone); ``gray`` keeps
   ``1 - pixel / 255``; ``binary`` sets every ink pixel to 1.
4. Placement: in ``fit`` mode (no ``canvas``) the crop is scaled to fit the output size minus a
   margin, keeping its aspect ratio; with a ``canvas`` (sigver style) it is placed at source
   resolution on a fixed canvas, which is then resized to cover the output and centre-cropped.
   Either way the ink's centre of mass sits as close to the centre as the borders allow.
5. Result: float32 array of shape (height, width), ink bright, background 0, quantised to
   multiples of 1/255 so that an 8-bit copy (training image banks) holds exactly the same input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageFilter

from inkproof.imaging import DEFAULT_MAX_PIXELS, ImageSource, load_image

PREPROCESS_VERSION = "1"

InkMode = Literal["normalized", "gray", "binary"]
_INK_MODES: tuple[str, ...] = ("normalized", "gray", "binary")

# Below this spread between the darkest and lightest blurred pixel an image holds no ink.
_MIN_CONTRAST = 12.0


@dataclass(frozen=True)
class PreprocessConfig:
    """Parameters of :func:`preprocess_signature`; recorded with every model."""

    height: int = 150
    width: int = 220
    canvas: tuple[int, int] | None = None
    margin: float = 0.04
    ink: InkMode = "normalized"
    blur_sigma: float = 2.0

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise ValueError(f"output size must be at least 8x8, got {self.height}x{self.width}")
        if not 0.0 <= self.margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {self.margin}")
        if self.ink not in _INK_MODES:
            raise ValueError(f"ink must be one of {_INK_MODES}, got {self.ink!r}")
        if self.blur_sigma < 0:
            raise ValueError(f"blur_sigma must be >= 0, got {self.blur_sigma}")
        if self.canvas is not None:
            canvas = tuple(int(v) for v in self.canvas)
            if len(canvas) != 2 or min(canvas) < 8:
                raise ValueError(f"canvas must be (height, width) of at least 8x8, got {self.canvas}")
            object.__setattr__(self, "canvas", canvas)

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters together with the function version."""
        values = dataclasses.asdict(self)
        values["canvas"] = list(self.canvas) if self.canvas else None
        return {"version": PREPROCESS_VERSION, **values}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessConfig:
        """Rebuild a config from :meth:`to_dict` output; refuses another function version."""
        values = dict(values)
        version = str(values.pop("version", PREPROCESS_VERSION))
        if version != PREPROCESS_VERSION:
            raise ValueError(
                f"preprocessing version {version!r} is not supported by this inkproof "
                f"(it implements version {PREPROCESS_VERSION!r})"
            )
        canvas = values.get("canvas")
        values["canvas"] = tuple(canvas) if canvas else None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown preprocessing parameters: {sorted(unknown)}")
        return cls(**values)

    def fingerprint(self) -> str:
        """Short stable hash of version and parameters, for cache keys and artifact checks."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def otsu_threshold(gray: np.ndarray) -> float:
    """Otsu's threshold of a uint8 image: pixels ``<= t`` form the dark class."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0.0
    levels = np.arange(256, dtype=np.float64)
    weight_dark = np.cumsum(hist)
    weight_light = total - weight_dark
    sum_dark = np.cumsum(hist * levels)
    mean_dark = sum_dark / np.maximum(weight_dark, 1e-12)
    mean_light = (sum_dark[-1] - sum_dark) / np.maximum(weight_light, 1e-12)
    between = weight_dark * weight_light * (mean_dark - mean_light) ** 2
    between[(weight_dark == 0) | (weight_light == 0)] = -1.0
    # Several levels can tie on a two-valued image; take the middle of the plateau.
    best = np.flatnonzero(between == between.max())
    return float(best[len(best) // 2])


def ink_mask(gray: np.ndarray, blur_sigma: float = 2.0) -> np.ndarray:
    """Boolean ink mask of a uint8 grayscale image (Otsu on the blurred image)."""
    blurred = _blur(gray, blur_sigma)
    if float(blurred.max()) - float(blurred.min()) < _MIN_CONTRAST:
        return np.zeros(gray.shape, dtype=bool)
    return blurred <= otsu_threshold(blurred)


def preprocess_signature(gray: np.ndarray, config: PreprocessConfig | None = None) -> np.ndarray:
    """Turn a uint8 grayscale signature image into a float32 (height, width) model input.

    A blank image (no ink) gives an all-zero array; quality checks flag such inputs separately.
    """
    config = config or PreprocessConfig()
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError("preprocess_signature expects a 2-D uint8 array; use load_image first")
    out = np.zeros(config.input_size, dtype=np.float32)
    blurred = _blur(gray, config.blur_sigma)
    if float(blurred.max()) - float(blurred.min()) < _MIN_CONTRAST:
        return out
    threshold = otsu_threshold(blurred)
    rows = np.flatnonzero((blurred <= threshold).any(axis=1))
    cols = np.flatnonzero((blurred <= threshold).any(axis=0))
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    ink = _ink_values(crop, threshold, config.ink)
    if not ink.any():
        return out
    placed = _place_fit(ink, config) if config.canvas is None else _place_on_canvas(ink, config)
    return (np.round(placed * 255.0) / 255.0).astype(np.float32)


def preprocess(
    source: ImageSource, config: PreprocessConfig | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Load ``source`` safely and preprocess it: the full path from any image to model input."""
    return preprocess_signature(load_image(source, max_pixels=max_pixels), config)


def _blur(gray: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return gray
    return np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(radius=sigma)), dtype=np.uint8)


def _ink_values(crop: np.ndarray, threshold: float, mode: str) -> np.ndarray:
    pixels = crop.astype(np.float32)
    is_ink = pixels <= threshold
    if mode == "binary":
        return is_ink.astype(np.float32)
    if mode == "gray":
        return np.where(is_ink, 1.0 - pixels / 255.0, 0.0).astype(np.float32)
    if not is_ink.any():
        return np.zeros_like(pixels)
    # Darkest ink (robust to a few dead pixels) maps to 1, the threshold to 0.
    darkest = float(np.percentile(pixels[is_ink], 1.0))
    span = max(threshold - darkest, 1.0)
    values = np.clip((threshold - pixels) / span, 0.0, 1.0)
    # Ink pixels right at the threshold would vanish; keep a floor so strokes keep their shape.
    return np.where(is_ink, np.maximum(values, 1.0 / 32.0), 0.0).astype(np.float32)


def _resize(values: np.ndarray, height: int, width: int) -> np.ndarray:
    if values.shape == (height, width):
        return values
    # A float32 array becomes a mode "F" image; Pillow's resampling antialiases when shrinking.
    resized = Image.fromarray(values.astype(np.float32, copy=False)).resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _centre_of_mass(values: np.ndarray) -> tuple[float, float]:
    total = float(values.sum())
    rows = np.arange(values.shape[0], dtype=np.float64)
    cols = np.arange(values.shape[1], dtype=np.float64)
    return (
        float(values.sum(axis=1) @ rows) / total,
        float(values.sum(axis=0) @ cols) / total,
    )


def _paste_centred(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Place ``values`` (no larger than the target) with its centre of mass near the centre."""
    com_row, com_col = _centre_of_mass(values)
    top = round(height / 2.0 - com_row)
    left = round(width / 2.0 - com_col)
    top = min(max(top, 0), height - values.shape[0])
    left = min(max(left, 0), width - values.shape[1])
    out = np.zeros((height, width), dtype=np.float32)
    out[top : top + values.shape[0], left : left + values.shape[1]] = values
    return out


def _fit_within(values: np.ndarray, max_height: float, max_width: float) -> np.ndarray:
    scale = min(max_height / values.shape[0], max_width / values.shape[1])
    new_height = max(1, min(int(max_height), round(values.shape[0] * scale)))
    new_width = max(1, min(int(max_width), round(values.shape[1] * scale)))
    return _resize(values, new_height, new_width)


def _place_fit(ink: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    usable_height = config.height * (1.0 - 2.0 * config.margin)
    usable_width = config.width * (1.0 - 2.0 * config.margin)
    scaled = _fit_within(ink, usable_height, usable_width)
    return _paste_centred(scaled, config.height, config.width)


def _place_on_canvas(ink: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    assert config.canvas is not None
    canvas_height, canvas_width = config.canvas
    if ink.shape[0] > canvas_height or ink.shape[1] > canvas_width:
        ink = _fit_within(ink, canvas_height, canvas_width)
    canvas = _paste_centred(ink, canvas_height, canvas_width)
    # Resize so the canvas covers the output, then centre-crop (as sigver does).
    scale = max(config.height / canvas_height, config.width / canvas_width)
    cover_height = max(config.height, round(canvas_height * scale))
    cover_width = max(config.width, round(canvas_width * scale))
    covered = _resize(canvas, cover_height, cover_width)
    top = (cover_height - config.height) // 2
    left = (cover_width - config.width) // 2
    return covered[top : top + config.height, left : left + config.width].copy()

"""The signature cleaner: keep a signature's ink, remove printed text, lines, stamps and paper.

A segmentation model (trained by :mod:`inkproof.document.cleaner_training` on synthetic
composites) labels every pixel ink or background; the cleaned image is white paper with the
original gray tones of the ink pixels, so a verifier downstream sees the same strokes without
the clutter. Torch-free: numpy, Pillow and onnxruntime (through
:class:`~inkproof.segmentation.runtime.SegmentationEngine`).

>>> from inkproof.document.cleaner import SignatureCleaner
>>> cleaner = SignatureCleaner()                  # the bundled model
>>> result = cleaner.clean("crop.png")
>>> result.image, result.mask, result.ink_fraction
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inkproof.artifact import ArtifactError
from inkproof.imaging import DEFAULT_MAX_PIXELS, ImageSource, describe_source, load_image
from inkproof.segmentation.runtime import PadMode, SegmentationEngine

INK_CLASS = "ink"
#: Inputs longer than this are cleaned at a reduced size (the model was trained on crops of
#: roughly 100-400 px) and the ink mask is scaled back to the input's size.
DEFAULT_MAX_SIDE = 1024


class CleanerModelError(ArtifactError):
    """The cleaner model is missing, or its card does not describe an ink segmentation model."""


def default_cleaner_path() -> Path:
    """The card of the cleaner bundled inside the package."""
    return Path(str(resources.files("inkproof") / "assets" / "models" / "cleaner" / "model.json"))


@dataclass(frozen=True, eq=False)
class CleanResult:
    """A cleaned signature: ``image`` is uint8 (H, W), white (255) wherever ``mask`` is False."""

    image: np.ndarray
    mask: np.ndarray  # bool (H, W): True = signature ink
    ink_fraction: float
    model: str
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.mask.shape[0]), int(self.mask.shape[1]))

    def to_dict(self) -> dict[str, Any]:
        """Summary without the pixel arrays (write ``image``/``mask`` as files instead)."""
        return {
            "source": self.source,
            "model": self.model,
            "height": self.shape[0],
            "width": self.shape[1],
            "ink_pixels": int(self.mask.sum()),
            "ink_fraction": self.ink_fraction,
        }


class SignatureCleaner:
    """A loaded cleaner model.

    ``model`` is an ONNX segmentation card, its ``.onnx`` file or a folder holding ``model.json``
    (``None``: the bundled model). A pixel is ink when its ink probability reaches ``threshold``.
    Inputs are padded to the model's multiple (32 for depth-5 encoders, 16 for depth 4) by the
    engine and cropped back; inputs longer than ``max_side`` are cleaned at reduced size.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        threads: int | None = None,
        device: str = "cpu",
        threshold: float = 0.5,
        max_side: int = DEFAULT_MAX_SIDE,
        pad_mode: PadMode = "constant",
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        path = Path(model) if model is not None else default_cleaner_path()
        if not path.exists():
            where = "no bundled cleaner model at" if model is None else "no cleaner model at"
            raise CleanerModelError(
                f"{where} {path}; pass model= (an exported cleaner card, `inkproof cleaner export`)"
            )
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        if max_side < 32:
            raise ValueError(f"max_side must be at least 32, got {max_side}")
        # Tiles bound the memory of a page-sized input; signature crops run in one piece.
        self.engine = SegmentationEngine.from_card(
            path, device=device, threads=threads, pad_mode=pad_mode, tile=1024, max_pixels=max_pixels
        )
        names = self.engine.class_names
        if INK_CLASS not in names:
            raise CleanerModelError(f"{path} is not a cleaner model: its classes {list(names)} have no {INK_CLASS!r}")
        self.ink_index = names.index(INK_CLASS)
        self.threshold = threshold
        self.max_side = max_side
        self.max_pixels = max_pixels

    @property
    def name(self) -> str:
        return self.engine.card.name

    @property
    def multiple(self) -> int:
        return self.engine.multiple

    def ink_probability(self, gray: np.ndarray) -> np.ndarray:
        """Ink probability (float32, the input's shape) of a uint8 grayscale image."""
        height, width = gray.shape
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            small = (max(1, round(width * scale)), max(1, round(height * scale)))
            reduced = np.asarray(Image.fromarray(gray).resize(small, Image.Resampling.BILINEAR))
            _, probabilities = self.engine.predict(reduced)
            ink = Image.fromarray(np.ascontiguousarray(probabilities[self.ink_index]))
            return np.asarray(ink.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
        _, probabilities = self.engine.predict(gray)
        return probabilities[self.ink_index]

    def clean(self, image: ImageSource) -> CleanResult:
        """Clean one signature image (any source :func:`~inkproof.imaging.load_image` reads)."""
        gray = load_image(image, max_pixels=self.max_pixels)
        mask = self.ink_probability(gray) >= self.threshold
        cleaned = np.where(mask, gray, np.uint8(255)).astype(np.uint8)
        return CleanResult(
            image=cleaned,
            mask=mask,
            ink_fraction=float(mask.mean()) if mask.size else 0.0,
            model=self.name,
            source=describe_source(image),
        )

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> SignatureCleaner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: dict[str, SignatureCleaner] = {}
_shared_lock = threading.Lock()


def clean_signature(image: ImageSource, *, model: str | Path | None = None) -> CleanResult:
    """Clean one signature with a shared, lazily loaded :class:`SignatureCleaner`."""
    key = str(Path(model).resolve()) if model is not None else ""
    with _shared_lock:
        if key not in _shared:
            _shared[key] = SignatureCleaner(model)
        cleaner = _shared[key]
    return cleaner.clean(image)


__all__ = [
    "DEFAULT_MAX_SIDE",
    "CleanResult",
    "CleanerModelError",
    "SignatureCleaner",
    "clean_signature",
    "default_cleaner_path",
]

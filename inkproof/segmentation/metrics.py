"""Segmentation metrics from a confusion matrix: per-class IoU and Dice (pure numpy).

Validation accumulates one confusion matrix over every pixel of every image, so the scores are
pixel-weighted over the whole set (not an average of per-image scores, which small images and
empty classes would distort). A class that appears neither in the target nor in the prediction
has no defined IoU/Dice: it is NaN, and the means skip it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def confusion_matrix(
    target: np.ndarray, prediction: np.ndarray, classes: int, *, ignore_index: int | None = None
) -> np.ndarray:
    """(classes, classes) int64 counts; rows are true classes, columns predicted ones.

    Pixels whose target is ``ignore_index`` (padding, unlabelled) are left out; any other value
    outside ``0..classes-1`` in either array is an error rather than silently dropped.
    """
    target = np.asarray(target)
    prediction = np.asarray(prediction)
    if target.shape != prediction.shape:
        raise ValueError(f"target {target.shape} and prediction {prediction.shape} differ in shape")
    t = target.reshape(-1).astype(np.int64)
    p = prediction.reshape(-1).astype(np.int64)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    if t.size and (t.min() < 0 or t.max() >= classes or p.min() < 0 or p.max() >= classes):
        raise ValueError(f"class indices must lie in 0..{classes - 1}")
    return np.bincount(t * classes + p, minlength=classes * classes).reshape(classes, classes)


def iou_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class intersection over union, TP / (TP + FP + FN); NaN where the class never occurs."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def dice_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class Dice (F1), 2 TP / (2 TP + FP + FN); NaN where the class never occurs."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    total = matrix.sum(axis=0) + matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 2.0 * true_positive / total, np.nan)


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


@dataclass(frozen=True)
class SegmentationScores:
    """Per-class IoU and Dice plus their means and the pixel accuracy."""

    names: tuple[str, ...]
    iou: tuple[float, ...]
    dice: tuple[float, ...]
    pixel_accuracy: float

    @property
    def mean_iou(self) -> float:
        return _nanmean(np.array(self.iou, dtype=np.float64))

    @property
    def mean_dice(self) -> float:
        return _nanmean(np.array(self.dice, dtype=np.float64))

    def per_class_iou(self) -> dict[str, float]:
        return dict(zip(self.names, self.iou, strict=True))

    def per_class_dice(self) -> dict[str, float]:
        return dict(zip(self.names, self.dice, strict=True))

    def as_metrics(self, prefix: str = "val_") -> dict[str, float]:
        """Flat name -> value entries (history rows): means, accuracy, then one per class."""
        metrics = {
            f"{prefix}miou": self.mean_iou,
            f"{prefix}mdice": self.mean_dice,
            f"{prefix}pixel_accuracy": self.pixel_accuracy,
        }
        metrics.update({f"{prefix}iou.{name}": value for name, value in self.per_class_iou().items()})
        metrics.update({f"{prefix}dice.{name}": value for name, value in self.per_class_dice().items()})
        return metrics


def scores_from_confusion(matrix: np.ndarray, names: Sequence[str]) -> SegmentationScores:
    matrix = np.asarray(matrix)
    if matrix.shape != (len(names), len(names)):
        raise ValueError(f"confusion matrix {matrix.shape} does not fit {len(names)} class names")
    total = matrix.sum()
    accuracy = float(np.trace(matrix) / total) if total else float("nan")
    return SegmentationScores(
        names=tuple(names),
        iou=tuple(float(v) for v in iou_from_confusion(matrix)),
        dice=tuple(float(v) for v in dice_from_confusion(matrix)),
        pixel_accuracy=accuracy,
    )

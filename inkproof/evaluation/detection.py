"""Detection metrics: box IoU and COCO-style average precision (101-point interpolation).

Each ground-truth box can be matched once; detections are taken from the highest score down and
matched to the unmatched ground-truth box of the same label with the highest IoU above the
threshold. AP@[.5:.95] averages AP over IoU thresholds 0.50, 0.55, ..., 0.95.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BoxTuple = tuple[float, float, float, float]  # x0, y0, x1, y1 (x1, y1 exclusive)


@dataclass(frozen=True)
class Detection:
    page: str
    label: str
    box: BoxTuple
    score: float


def box_iou(a: BoxTuple, b: BoxTuple) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def average_precision(
    detections: Sequence[Detection],
    ground_truth: Mapping[str, Sequence[tuple[str, BoxTuple]]],
    label: str,
    iou_threshold: float = 0.5,
) -> float:
    """AP of ``label`` at one IoU threshold; nan when there is no ground-truth box of that label."""
    truth: dict[str, list[BoxTuple]] = defaultdict(list)
    for page, boxes in ground_truth.items():
        truth[page] = [box for kind, box in boxes if kind == label]
    total = sum(len(boxes) for boxes in truth.values())
    if total == 0:
        return float("nan")
    ranked = sorted((d for d in detections if d.label == label), key=lambda d: (-d.score, d.page, d.box))
    used: dict[str, set[int]] = defaultdict(set)
    hits = np.zeros(len(ranked))
    for rank, detection in enumerate(ranked):
        best, best_iou = -1, iou_threshold
        for index, box in enumerate(truth.get(detection.page, [])):
            if index in used[detection.page]:
                continue
            overlap = box_iou(detection.box, box)
            if overlap >= best_iou:
                best, best_iou = index, overlap
        if best >= 0:
            used[detection.page].add(best)
            hits[rank] = 1
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(ranked) + 1) if len(ranked) else np.zeros(0)
    recall = true_positives / total
    # COCO: precision made monotone from the right, sampled at 101 recall points.
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    samples = []
    for point in np.linspace(0.0, 1.0, 101):
        reached = np.searchsorted(recall, point, side="left")
        samples.append(float(envelope[reached]) if reached < len(envelope) else 0.0)
    return float(np.mean(samples))


def coco_average_precision(
    detections: Sequence[Detection], ground_truth: Mapping[str, Sequence[tuple[str, BoxTuple]]], label: str
) -> dict[str, float]:
    """AP@0.5, AP@0.75 and AP@[.5:.95] of ``label``."""
    thresholds = np.round(np.arange(0.5, 0.96, 0.05), 2)
    values = [average_precision(detections, ground_truth, label, float(t)) for t in thresholds]
    return {"ap50": values[0], "ap75": values[5], "ap50_95": float(np.mean(values))}

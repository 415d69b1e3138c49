"""A second look at each signature the detector finds: one signature or a piece of one, a
handwritten note, a date, a scribble, a script wordmark? (torch-free)

On real pages the detector's errors are false signatures and fragments, not loose boxes
(docs/benchmarks.md, "Page field detector"): handwritten notes, dates and routing scribbles, a
cursive company wordmark read as two signatures, one signature split into two small boxes. Two
steps address them, both read from a JSON file beside the detector card (:data:`FILTER_FILE`) and
chosen on validation pages:

1. :func:`merge_fragments` joins signature boxes that lie on one line with a small gap between
   them (a gap under ``merge_gap`` times the taller box's height, their heights overlapping by
   at least ``merge_overlap`` of the shorter one).
2. :class:`SignatureFilter` scores each remaining box with a logistic regression over cheap
   features of the box, the page and the detector's own evidence (:func:`candidate_features`):
   its size and place on the page, the ink inside and around it, whether a logo box covers it,
   how many other candidates the page has. The detector's confidence is replaced by the
   filter's probability, and boxes below ``drop_below`` are dropped.

The filter is trained on the detector's candidates on Tobacco800 *training* pages (a candidate is
a signature when it overlaps an annotated one with IoU >= 0.5), its settings are chosen on
validation pages, and held-out pages only score it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FILTER_FILE = "signature-filter.json"
FEATURES = (
    "confidence",
    "log_width",
    "log_height",
    "log_aspect",
    "centre_x",
    "centre_y",
    "ink_inside",
    "ink_around",
    "under_logo",
    "log_candidates",
    "rank_on_page",
    "largest_on_page",
)

Box = tuple[int, int, int, int]


def _boxes_of(detections: Sequence[Any], label: str) -> list[Any]:
    return [d for d in detections if d.label == label]


def merge_fragments(boxes: Sequence[Any], *, gap: float, overlap: float, narrower_than: float = 0.0) -> list[Any]:
    """Join boxes on one line with a small gap (module docstring); the joined box keeps the
    larger confidence. ``boxes`` are FieldDetection-like (``box``, ``confidence``). With
    ``narrower_than`` (pixels) only boxes narrower than that are joined: fragments are small, and a
    whole signature must not swallow the date written beside it."""
    items = [(tuple(int(v) for v in d.box), float(d.confidence), d) for d in boxes]
    changed = True
    while changed and len(items) > 1:
        changed = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i][0], items[j][0]
                if narrower_than > 0 and max(a[2] - a[0], b[2] - b[0]) >= narrower_than:
                    continue
                ha, hb = a[3] - a[1], b[3] - b[1]
                shared = min(a[3], b[3]) - max(a[1], b[1])
                horizontal = max(0, max(a[0], b[0]) - min(a[2], b[2]))
                if shared >= overlap * min(ha, hb) and horizontal <= gap * max(ha, hb):
                    box = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    keep = items[i] if items[i][1] >= items[j][1] else items[j]
                    items[i] = (box, keep[1], keep[2])
                    del items[j]
                    changed = True
                    break
            if changed:
                break
    return [dataclasses.replace(d, box=box, confidence=confidence) for box, confidence, d in items]


def candidate_features(
    gray: np.ndarray, ink: np.ndarray, signatures: Sequence[Any], logos: Sequence[Any]
) -> np.ndarray:
    """(n, len(FEATURES)) features of the signature candidates on one page.

    ``ink`` is the page's boolean ink mask (darker than its Otsu level); ``logos`` are the logo
    boxes the detector found on the page.
    """
    height, width = gray.shape
    n = len(signatures)
    rows = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return rows
    confidences = np.array([float(s.confidence) for s in signatures])
    order = np.argsort(-confidences, kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n)
    areas = np.array([max(1, (s.box[2] - s.box[0]) * (s.box[3] - s.box[1])) for s in signatures], dtype=np.float64)
    for i, s in enumerate(signatures):
        x0, y0, x1, y1 = (int(v) for v in s.box)
        w, h = max(1, x1 - x0), max(1, y1 - y0)
        inside = ink[y0:y1, x0:x1]
        ax0, ay0 = max(0, x0 - h), max(0, y0 - h)
        ax1, ay1 = min(width, x1 + h), min(height, y1 + h)
        ring = ink[ay0:ay1, ax0:ax1]
        ring_area = max(1, ring.size - inside.size)
        covered = 0.0
        for logo in logos:
            lx0, ly0, lx1, ly1 = logo.box
            iw, ih = min(x1, lx1) - max(x0, lx0), min(y1, ly1) - max(y0, ly0)
            if iw > 0 and ih > 0:
                covered = max(covered, iw * ih / (w * h))
        rows[i] = (
            confidences[i],
            np.log(w / width),
            np.log(h / height),
            np.log(w / h),
            (x0 + x1) / 2 / width,
            (y0 + y1) / 2 / height,
            float(inside.mean()) if inside.size else 0.0,
            float((ring.sum() - inside.sum()) / ring_area),
            covered,
            np.log1p(n - 1),
            rank[i],
            float(areas[i] >= areas.max()),
        )
    return rows


@dataclass(frozen=True)
class SignatureFilter:
    """Logistic regression over :data:`FEATURES` (standardised), with the merge and drop settings."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    drop_below: float = 0.05
    merge_gap: float = 0.0  # 0 disables merging
    merge_overlap: float = 0.5
    merge_narrower_than: float = 0.0  # of the page width; 0: any width
    features: tuple[str, ...] = FEATURES
    notes: str = ""

    def __post_init__(self) -> None:
        if tuple(self.features) != FEATURES:
            raise ValueError(f"this filter was trained on features {list(self.features)}, not {list(FEATURES)}")
        if not len(self.mean) == len(self.scale) == len(self.weights) == len(FEATURES):
            raise ValueError("mean, scale and weights need one value per feature")

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))

    def apply(self, gray: np.ndarray, detections: Sequence[Any], *, ink: np.ndarray | None = None) -> list[Any]:
        """``detections`` with the signatures merged, re-scored and filtered (other classes unchanged).
        ``ink`` is the page's ink mask (pixels darker than its Otsu level) when already computed."""
        from inkproof.preprocess.signature import otsu_threshold

        signatures = _boxes_of(detections, "signature")
        if not signatures:
            return list(detections)
        if self.merge_gap > 0:
            signatures = merge_fragments(
                signatures,
                gap=self.merge_gap,
                overlap=self.merge_overlap,
                narrower_than=self.merge_narrower_than * gray.shape[1],
            )
        if ink is None:
            ink = gray < otsu_threshold(gray)
        scores = self.probabilities(candidate_features(gray, ink, signatures, _boxes_of(detections, "logo")))
        kept = [
            dataclasses.replace(s, confidence=float(p))
            for s, p in zip(signatures, scores, strict=True)
            if p >= self.drop_below
        ]
        others = [d for d in detections if d.label != "signature"]
        return sorted(kept + others, key=lambda d: (-d.confidence, d.label, d.box))

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        for key in ("mean", "scale", "weights", "features"):
            values[key] = list(values[key])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SignatureFilter:
        known = {f.name for f in dataclasses.fields(cls)}
        given: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
        return cls(**given)

    def save(self, path: str | Path) -> Path:
        from inkproof.atomic import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> SignatureFilter:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def fit_filter(
    features: np.ndarray, labels: np.ndarray, *, l2: float = 1.0, iterations: int = 50, **settings: Any
) -> SignatureFilter:
    """Logistic regression by Newton's method (L2 ``l2`` on the standardised weights)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ beta)))
        gradient = z.T @ (p - y) + penalty * beta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return SignatureFilter(
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in beta[:-1]),
        float(beta[-1]),
        **settings,
    )


__all__ = ["FEATURES", "FILTER_FILE", "SignatureFilter", "candidate_features", "fit_filter", "merge_fragments"]

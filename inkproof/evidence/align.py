"""Similarity alignment of two ink maps (numpy + Pillow), for overlays an examiner can read.

A moment-based first guess (centroids, principal axes, spread) is refined by a pattern search
that minimises the symmetric chamfer distance: the mean distance from each ink pixel of one
signature to the nearest ink of the other, read from exact Euclidean distance transforms.
Ink maps are small (the model's input size), so brute-force transforms cost a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["Alignment", "align", "distance_transform", "warp"]

_INK = 0.25  # an ink map value above this counts as ink for the distances


@dataclass(frozen=True)
class Alignment:
    """Maps query pixel (x, y) to reference coordinates: ``s R(angle) (p - centre) + centre + (dx, dy)``."""

    angle_deg: float
    scale: float
    dx: float
    dy: float
    centre_x: float
    centre_y: float
    chamfer_before: float  # mean symmetric distance (pixels) without alignment
    chamfer_after: float

    def matrix(self) -> np.ndarray:
        """2x3 affine matrix of the query -> reference map."""
        theta = math.radians(self.angle_deg)
        c, s = self.scale * math.cos(theta), self.scale * math.sin(theta)
        rot = np.array([[c, -s], [s, c]])
        centre = np.array([self.centre_x, self.centre_y])
        offset = centre + np.array([self.dx, self.dy]) - rot @ centre
        return np.hstack([rot, offset[:, None]])

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) query (x, y) points in reference coordinates."""
        m = self.matrix()
        return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]

    def to_dict(self) -> dict[str, Any]:
        return {
            "angle_deg": round(self.angle_deg, 3),
            "scale": round(self.scale, 4),
            "dx": round(self.dx, 3),
            "dy": round(self.dy, 3),
            "chamfer_before": round(self.chamfer_before, 3),
            "chamfer_after": round(self.chamfer_after, 3),
        }


def distance_transform(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of every pixel to the nearest True pixel (separable, brute force
    per axis: O(H W (H + W)) memory-bounded for model-sized maps). No ink: all distances large."""
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    big = float(h * h + w * w)
    if not mask.any():
        return np.full((h, w), math.sqrt(big))
    xs = np.arange(w, dtype=np.float64)
    # Along rows: squared distance to the nearest ink pixel in the same row.
    along = np.where(mask[:, None, :], (xs[None, :, None] - xs[None, None, :]) ** 2, big).min(axis=2)
    ys = np.arange(h, dtype=np.float64)
    # Across rows: min over rows y' of along[y', x] + (y - y')^2, one column block at a time.
    out = np.empty((h, w))
    step = max(1, 2_000_000 // (h * h))
    for start in range(0, w, step):
        block = along[:, start : start + step]
        out[:, start : start + step] = (block[None, :, :] + ((ys[:, None] - ys[None, :]) ** 2)[:, :, None]).min(axis=1)
    return np.sqrt(out)


def query_distances(ink: np.ndarray) -> np.ndarray:
    return distance_transform(ink > _INK)


def _points(ink: np.ndarray, limit: int = 3000) -> np.ndarray:
    ys, xs = np.nonzero(ink > _INK)
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    if len(points) > limit:  # a deterministic subsample bounds the cost of each evaluation
        points = points[np.linspace(0, len(points) - 1, limit).astype(int)]
    return points


def _sample(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear reads of ``field`` at (x, y) points; outside the map reads the border plus distance."""
    h, w = field.shape
    x = np.clip(points[:, 0], 0, w - 1.001)
    y = np.clip(points[:, 1], 0, h - 1.001)
    outside = np.hypot(points[:, 0] - x, points[:, 1] - y)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    top = field[y0, x0] * (1 - fx) + field[y0, x0 + 1] * fx
    bottom = field[y0 + 1, x0] * (1 - fx) + field[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy + outside


def _moments(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    centre = points.mean(axis=0)
    cov = np.cov((points - centre).T) if len(points) > 1 else np.eye(2)
    values, vectors = np.linalg.eigh(cov)
    major = vectors[:, int(np.argmax(values))]
    angle = math.degrees(math.atan2(major[1], major[0]))
    angle = (angle + 90.0) % 180.0 - 90.0  # an axis, not a direction
    return centre, angle, math.sqrt(max(float(values.sum()), 1e-9))


def align(
    query: np.ndarray,
    reference: np.ndarray,
    *,
    max_angle: float = 30.0,
    iterations: int = 60,
    query_field: np.ndarray | None = None,
) -> Alignment:
    """The similarity transform (rotation, scale, shift) that lays ``query`` ink onto ``reference`` ink.

    Both are ink maps of one shape (ink high, paper 0), e.g. preprocessed model inputs.
    ``query_field`` (:func:`query_distances`) saves recomputing the query's distance transform
    when one query is aligned to several references.
    """
    q_points, r_points = _points(query), _points(reference)
    if len(q_points) == 0 or len(r_points) == 0:
        return Alignment(0.0, 1.0, 0.0, 0.0, 0.0, 0.0, float("inf"), float("inf"))
    r_field = distance_transform(reference > _INK)
    q_field = query_distances(query) if query_field is None else query_field
    q_centre, q_angle, q_spread = _moments(q_points)
    r_centre, r_angle, r_spread = _moments(r_points)

    def make(params: np.ndarray) -> Alignment:
        angle, log_scale, dx, dy = (float(v) for v in params)
        return Alignment(angle, math.exp(log_scale), dx, dy, float(q_centre[0]), float(q_centre[1]), 0.0, 0.0)

    def cost(params: np.ndarray) -> float:
        transform = make(params)
        forward = _sample(r_field, transform.apply(q_points)).mean()
        inverse = np.linalg.inv(np.vstack([transform.matrix(), [0.0, 0.0, 1.0]]))[:2]
        backward = _sample(q_field, r_points @ inverse[:, :2].T + inverse[:, 2]).mean()
        return float(0.5 * (forward + backward))

    identity = np.zeros(4)
    shift = r_centre - q_centre
    # The principal axis is ambiguous for round signatures: try the moment angle and no rotation.
    moment_angle = float(np.clip((r_angle - q_angle + 90.0) % 180.0 - 90.0, -max_angle, max_angle))
    log_scale = float(np.clip(math.log(r_spread / q_spread), -0.4, 0.4))
    starts = [np.array([a, log_scale, shift[0], shift[1]]) for a in (moment_angle, 0.0)]
    best = min(starts, key=cost)
    best_cost = cost(best)
    steps = np.array([4.0, 0.05, 2.0, 2.0])
    # Pattern search (one coordinate at a time, halving steps): robust on the chamfer surface's kinks.
    for _ in range(iterations):
        improved = False
        for i in range(4):
            for sign in (1.0, -1.0):
                trial = best.copy()
                trial[i] += sign * steps[i]
                trial[0] = float(np.clip(trial[0], -max_angle, max_angle))
                trial[1] = float(np.clip(trial[1], -0.5, 0.5))
                value = cost(trial)
                if value < best_cost - 1e-9:
                    best, best_cost, improved = trial, value, True
                    break
        if not improved:
            steps = steps / 2.0
            if steps[2] < 0.05:
                break
    result = make(best)
    return Alignment(
        result.angle_deg,
        result.scale,
        result.dx,
        result.dy,
        result.centre_x,
        result.centre_y,
        chamfer_before=cost(identity),
        chamfer_after=best_cost,
    )


def warp(image: np.ndarray, alignment: Alignment) -> np.ndarray:
    """``image`` (query frame, float) resampled into the reference frame with bilinear interpolation."""
    inverse = np.linalg.inv(np.vstack([alignment.matrix(), [0.0, 0.0, 1.0]]))[:2]
    h, w = image.shape
    source = Image.fromarray(np.asarray(image, dtype=np.float32), mode="F")
    # Pillow's AFFINE data maps output (x, y) to input coordinates: the inverse transform.
    warped = source.transform((w, h), Image.Transform.AFFINE, tuple(inverse.ravel()), Image.Resampling.BILINEAR)
    return np.asarray(warped, dtype=np.float32)

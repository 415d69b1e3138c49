"""Scan degradation: paper texture, compositing by darkening, blur, sensor noise, JPEG, and the skew transform."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from inkproof.document.synthetic.config import F32, U8

# --------------------------------------------------------------------------------------------
# Paper, compositing and scan effects
# --------------------------------------------------------------------------------------------


_NOISE_TABLE_SIZE = 6_000_000


@lru_cache(maxsize=1)
def _noise_table() -> F32:
    table = np.random.default_rng(20240611).standard_normal(_NOISE_TABLE_SIZE, dtype=np.float32)
    table.setflags(write=False)
    return table


def _gaussian(rng: np.random.Generator, shape: tuple[int, int]) -> F32:
    """Unit Gaussian noise of ``shape`` (read-only).

    Drawing millions of normals per page was a large part of the render time; a window of a fixed
    table at a random offset has the same per-pixel statistics.
    """
    n = shape[0] * shape[1]
    table = _noise_table()
    if n > table.size - (1 << 20):  # too large a page for the table to give varied windows
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, table.size - n))
    return table[start : start + n].reshape(shape)


def _smooth_weights(n: int, knots: int) -> F32:
    """(n, knots) weights interpolating ``knots`` values smoothly (smoothstep) over n samples."""
    t = np.linspace(0.0, knots - 1.0, n)
    i = np.minimum(t.astype(np.int64), knots - 2)
    f = t - i
    f = f * f * (3 - 2 * f)
    w = np.zeros((n, knots), dtype=np.float32)
    w[np.arange(n), i] = 1 - f
    w[np.arange(n), i + 1] = f
    return w


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], knots: tuple[int, int], sigma: float) -> F32:
    """Low-frequency variation (uneven lighting, paper tone): a coarse random grid, smoothly interpolated."""
    coarse = rng.normal(0.0, sigma, knots).astype(np.float32)
    return np.asarray(_smooth_weights(shape[0], knots[0]) @ coarse @ _smooth_weights(shape[1], knots[1]).T)


def _paper(rng: np.random.Generator, shape: tuple[int, int], gray: float) -> F32:
    """Paper tone with uneven lighting and fibre grain."""
    paper = _smooth_field(rng, shape, (4, 3), rng.uniform(1.0, 3.5))
    paper += np.float32(gray)
    paper += _gaussian(rng, shape) * np.float32(rng.uniform(0.8, 2.0))
    return paper


def _darken(canvas: F32, paper: F32, alpha: F32, tone: float, x: int, y: int) -> None:
    """Composite ink of coverage ``alpha`` and gray ``tone`` at (x, y) by darkening (min); clips at the edges."""
    h, w = alpha.shape
    H, W = canvas.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x]
    p = paper[y0:y1, x0:x1]
    region = canvas[y0:y1, x0:x1]
    np.minimum(region, p - a * (p - np.float32(tone)), out=region)


def _jpeg(image: U8, quality: int) -> U8:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("L")).copy()


def _blur(img: Image.Image, sigma: float) -> Image.Image:
    """Optical blur of ``sigma`` < ~1.5 px: a 3x3 Gaussian kernel, several times faster than GaussianBlur."""
    if sigma < 0.1:
        return img
    a = math.exp(-1.0 / (2.0 * sigma * sigma))
    k = (a, 1.0, a)
    weights = [kx * ky for ky in k for kx in k]
    return img.filter(ImageFilter.Kernel((3, 3), weights, scale=sum(weights)))


def _scan(image: U8, rng: np.random.Generator, noise: float, paper: float) -> U8:
    """Optics, sensor and compression of a scanner (geometry is handled by the caller)."""
    img = _blur(Image.fromarray(image), rng.uniform(0.25, 0.8) * min(noise, 2.0))
    arr = np.asarray(img, dtype=np.float32)
    # Exposure differs between scanners: a little gain and offset around the paper level.
    gain = np.float32(rng.uniform(0.92, 1.06))
    arr *= gain
    arr += np.float32((1 - gain) * paper + rng.normal(0, 2))
    arr += _gaussian(rng, arr.shape) * np.float32(rng.uniform(1.0, 4.0) * noise)
    h, w = arr.shape
    for _ in range(int(rng.poisson(4 * noise))):  # dust and toner specks
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        arr[cy : cy + int(rng.integers(1, 3)), cx : cx + int(rng.integers(1, 3))] = np.float32(rng.uniform(40, 160))
    if rng.random() < 0.1 * min(noise, 1.0):  # a bilevel, fax-like page
        # Threshold near the paper, as fax machines do: thin strokes survive, somewhat bolder.
        threshold = np.float32(paper - rng.uniform(35, 80))
        arr = np.where(arr < threshold, np.float32(rng.uniform(10, 40)), np.float32(rng.uniform(235, 252)))
    out = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    return _jpeg(out, int(rng.integers(60, 91)))


@dataclass(frozen=True)
class _Affine:
    """Page skew: output pixel -> input pixel is ``inverse``; ``forward`` maps input -> output points."""

    inverse: tuple[float, float, float, float, float, float]
    forward: npt.NDArray[np.float64]  # 2x3

    @classmethod
    def rotation(cls, degrees: float, width: int, height: int) -> _Affine:
        a = math.radians(degrees)
        c, s = math.cos(a), math.sin(a)
        cx, cy = width / 2.0, height / 2.0
        inverse = (c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy)
        forward = np.array([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy]])
        return cls(inverse, forward)

    def apply(self, image: Image.Image, fill: int, resample: Image.Resampling) -> Image.Image:
        return image.transform(image.size, Image.Transform.AFFINE, self.inverse, resample=resample, fillcolor=fill)

    def apply_patch(self, alpha: F32, x: int, y: int, width: int, height: int) -> tuple[F32, int, int]:
        """Transform a patch placed at (x, y) on the page; returns it and its new origin, clipped to the page.

        Using the page's mapping shifted by integer offsets makes the result identical to
        transforming a page that holds only this patch.
        """
        # Pillow samples nothing beyond an image's edge; a zero border lets edge pixels blend with
        # the empty paper around them, as they do on the page.
        alpha = np.pad(alpha, 2)
        x, y = x - 2, y - 2
        h, w = alpha.shape
        corners = np.array([[x, y, 1.0], [x + w, y, 1.0], [x, y + h, 1.0], [x + w, y + h, 1.0]]) @ self.forward.T
        X0 = max(math.floor(corners[:, 0].min()) - 2, 0)
        Y0 = max(math.floor(corners[:, 1].min()) - 2, 0)
        X1 = min(math.ceil(corners[:, 0].max()) + 2, width)
        Y1 = min(math.ceil(corners[:, 1].max()) + 2, height)
        if X1 <= X0 or Y1 <= Y0:
            return np.zeros((0, 0), dtype=np.float32), X0, Y0
        a, b, c, d, e, f = self.inverse
        data = (a, b, a * X0 + b * Y0 + c - x, d, e, d * X0 + e * Y0 + f - y)
        out = Image.fromarray(alpha).transform(
            (X1 - X0, Y1 - Y0), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR, fillcolor=0.0
        )
        return np.asarray(out, dtype=np.float32), X0, Y0

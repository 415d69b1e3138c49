"""Training examples for the signature cleaner: a signature over a patch of document clutter,
with its exact ink mask."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from inkproof.document.synthetic.config import (
    _KIND_CLEANER,
    F32,
    MASK_THRESHOLD,
    U8,
    WRITER_POOL,
    FieldBox,
    Mask,
    SyntheticPage,
    _check_int,
)
from inkproof.document.synthetic.handwriting import _bbox, _ink_alpha, _signature_pieces, _style
from inkproof.document.synthetic.printing import _STAMP_WORDS, _font, _paste_text, _person, _pick, _prose, _word_length
from inkproof.document.synthetic.scan import _blur, _gaussian, _jpeg, _smooth_field

# --------------------------------------------------------------------------------------------
# Training pairs for a signature cleaner
# --------------------------------------------------------------------------------------------


def crop_signature_pair(page: SyntheticPage, field: FieldBox, pad: int = 8) -> tuple[U8, U8]:
    """(noisy crop of the page, clean crop) around ``field`` with ``pad`` pixels of context.

    The clean crop is paper-white with only the handwriting of ``page.ink_mask``, drawn in the
    writer's ink gray (the median of the page over ink pixels that no print covers).
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    H, W = page.image.shape
    x0, y0, x1, y1 = field.box
    x0, y0, x1, y1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, W), min(y1 + pad, H)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"field box {field.box} is outside the page")
    noisy = page.image[y0:y1, x0:x1].copy()
    ink = page.ink_mask[y0:y1, x0:x1]
    clean_ink = ink & ~page.print_mask[y0:y1, x0:x1]
    gray = int(np.median(noisy[clean_ink])) if clean_ink.any() else 60
    clean = np.full(noisy.shape, 255, dtype=np.uint8)
    clean[ink] = min(gray, 160)
    return noisy, clean


def _signature_alpha(signature: npt.NDArray[np.generic]) -> F32:
    """Ink coverage of a clean scanned signature (dark on light): paper and its texture map to 0."""
    img = np.asarray(signature)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"signature must be a (H, W) or (H, W, 3) image, got shape {np.shape(signature)}")
    gray = img.astype(np.float32)
    sample = gray[:: max(1, gray.shape[0] // 64), :: max(1, gray.shape[1] // 64)]  # robust levels, cheaply
    paper = float(np.percentile(sample, 75))
    ink = float(min(gray.min() + 10.0, paper - 40.0))
    alpha = (np.float32(paper) - gray) / np.float32(max(paper - ink, 30.0))
    # Below ~15% is paper texture or scanner noise of the source, not ink.
    alpha = np.clip((alpha - np.float32(0.15)) / np.float32(0.85), 0.0, 1.0)
    box = _bbox(alpha >= MASK_THRESHOLD)
    if box is None:
        raise ValueError("signature has no ink (expected dark ink on light paper)")
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(alpha[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2])


def _masked_alpha(signature: npt.NDArray[np.generic], ink: Mask) -> F32:
    """Ink coverage of a clean signature inside its ink mask; exactly 0 outside it.

    Darkness is measured from the median paper outside the mask to the darkest ink, with a floor
    just above MASK_THRESHOLD so that every mask pixel stays in the composited example's mask.
    """
    img = np.asarray(signature)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    mask = np.asarray(ink)
    if img.ndim != 2 or min(img.shape) < 2 or mask.shape != img.shape or mask.dtype != np.bool_:
        raise ValueError(f"ink must be a bool mask of the signature's shape {img.shape}, got {mask.dtype} {mask.shape}")
    box = _bbox(mask)
    if box is None:
        raise ValueError("signature has no ink (its ink mask is empty)")
    gray = img.astype(np.float32)
    paper = float(np.median(gray[~mask])) if not mask.all() else 255.0
    darkest = float(np.percentile(gray[mask], 1.0))
    alpha = np.clip((np.float32(paper) - gray) / np.float32(max(paper - darkest, 30.0)), MASK_THRESHOLD + 0.1, 1.0)
    alpha = np.where(mask, alpha, np.float32(0.0)).astype(np.float32)
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(alpha[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2])


def cleaner_example(
    index: int,
    *,
    size: tuple[int, int] = (128, 384),
    seed: int = 0,
    signature: npt.NDArray[np.generic] | None = None,
    ink: Mask | None = None,
) -> tuple[U8, Mask]:
    """One signature over a patch of document clutter: (uint8 noisy image of ``size``, bool ink mask).

    Clutter: printed text lines, a form line with its label, part of a stamp, paper texture; then
    blur, noise and JPEG. The signature is a synthetic writer's, or ``signature`` (a clean uint8
    image, dark ink on light paper, any size) rescaled into the patch. ``ink`` (the signature's
    boolean ink mask, e.g. :func:`inkproof.preprocess.ink_mask`) restricts its coverage to that mask,
    so the source's paper, whatever its tone or texture, never becomes ink. Deterministic by (seed, index).
    """
    _check_int("index", index, 0, 2**63 - 1)
    _check_int("seed", seed, 0, 2**63 - 1)
    if not isinstance(size, tuple | list) or len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    H, W = _check_int("size[0]", size[0], 32, 4096), _check_int("size[1]", size[1], 32, 4096)
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, _KIND_CLEANER]))
    paper_gray = float(rng.uniform(205, 250))

    # Signature coverage, placed so that most of it is inside the patch.
    fill_w, fill_h = rng.uniform(0.55, 0.95) * W, rng.uniform(0.5, 0.9) * H
    if signature is None:
        style = _style(seed, int(rng.integers(1, WRITER_POOL + 1)))
        pen = max(1.0, style.pen_width * rng.uniform(0.55, 0.9) * H / 128)
        pieces = _signature_pieces(style, rng, fill_w, fill_h, pen)
        for p in pieces:  # fewer ink levels, fewer polyline runs to draw: a good share of the time
            p.ink = np.round(p.ink * 5.0) / 5.0
        alpha = _ink_alpha(pieces, 2)
    else:
        src = _signature_alpha(signature) if ink is None else _masked_alpha(signature, ink)
        k = min(fill_w / src.shape[1], fill_h / src.shape[0])
        new = (max(2, round(src.shape[1] * k)), max(2, round(src.shape[0] * k)))
        im = Image.fromarray(src).resize(new, Image.Resampling.BILINEAR)
        alpha = np.asarray(
            im.rotate(float(rng.uniform(-4, 4)), Image.Resampling.BILINEAR, expand=True), dtype=np.float32
        )
        alpha = np.clip(alpha, 0.0, 1.0)
    sh, sw = alpha.shape
    sx = int(rng.integers(min(0, W - sw), max(W - sw, 0) + 1))
    sy = int(rng.integers(min(0, H - sh), max(H - sh, 0) + 1))
    sig = np.zeros((H, W), dtype=np.float32)
    ys0, xs0 = max(sy, 0), max(sx, 0)
    ys1, xs1 = min(sy + sh, H), min(sx + sw, W)
    sig[ys0:ys1, xs0:xs1] = alpha[ys0 - sy : ys1 - sy, xs0 - sx : xs1 - sx]
    ink_box = _bbox(sig >= MASK_THRESHOLD) or (0, 0, W, H)

    # Clutter around and under it.
    layer = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(layer)
    text_size = int(rng.integers(max(8, H // 12), max(10, H // 5)))
    pitch = text_size * rng.uniform(1.2, 1.7)
    y = rng.uniform(-text_size, H * 0.6)
    x = float(rng.uniform(-W * 0.5, W * 0.3))
    for _ in range(int(rng.integers(0, 4))):  # a few lines of a paragraph
        _paste_text(layer, x, y, " ".join(_prose(rng, 2 + int(W / text_size / 3), plain=True)), text_size)
        y += pitch
    line_y = int(np.clip(ink_box[3] - rng.uniform(-0.1, 0.35) * (ink_box[3] - ink_box[1]), 2, H - 3))
    if rng.random() < 0.65:  # the signature line, often with its label
        x0 = int(rng.uniform(-10, W * 0.3))
        draw.rectangle((x0, line_y, int(rng.uniform(W * 0.7, W + 10)), line_y + int(rng.integers(1, 3)) - 1), fill=255)
        if rng.random() < 0.5:
            label = _pick(rng, ("Signature:", "Signed:", "By:"))
            _paste_text(layer, x0 - _word_length(text_size, label) - 6, line_y - text_size, label, text_size)
        if rng.random() < 0.4:
            _paste_text(layer, x0, line_y + 4, _person(rng), text_size)
    if rng.random() < 0.12:  # a table rule
        x = int(rng.integers(W))
        draw.rectangle((x, 0, x + int(rng.integers(1, 3)) - 1, H), fill=255)
    stamp = None
    if rng.random() < 0.25:  # part of a stamp
        simg = Image.new("L", (W, H), 0)
        sd = ImageDraw.Draw(simg)
        r = float(rng.uniform(0.4, 1.0) * H)
        cx, cy = float(rng.uniform(0, W)), float(rng.uniform(0, H))
        thick = int(rng.integers(2, 4))
        sd.ellipse((cx - r, cy - r, cx + r, cy + r), outline=255, width=thick)
        sd.ellipse((cx - 0.8 * r, cy - 0.8 * r, cx + 0.8 * r, cy + 0.8 * r), outline=255, width=max(1, thick - 1))
        sd.text((cx, cy), _pick(rng, _STAMP_WORDS), fill=255, font=_font(max(8, int(r * 0.3))), anchor="mm")
        stamp = np.asarray(simg, dtype=np.float32) * np.float32(rng.uniform(0.4, 0.85) / 255)

    paper = _smooth_field(rng, (H, W), (max(2, H // 48), max(2, W // 48)), rng.uniform(1.0, 4.0))
    paper += np.float32(paper_gray)
    paper += _gaussian(rng, (H, W)) * np.float32(rng.uniform(0.5, 2.0))
    canvas = paper - np.asarray(layer, dtype=np.float32) * np.float32(1 / 255) * (
        paper - np.float32(rng.uniform(5, 70))
    )
    if stamp is not None:
        np.minimum(canvas, paper - stamp * (paper - np.float32(rng.uniform(60, 150))), out=canvas)
    np.minimum(canvas, paper - sig * (paper - np.float32(rng.uniform(15, 120))), out=canvas)

    img = _blur(Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8)), rng.uniform(0.0, 1.0))
    arr = np.asarray(img, dtype=np.float32) + _gaussian(rng, (H, W)) * np.float32(rng.uniform(0.5, 6.0))
    out = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        out = _jpeg(out, int(rng.integers(40, 91)))
    return out, sig >= MASK_THRESHOLD

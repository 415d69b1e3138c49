"""Evidence for a decision: what was compared, with which model, and what an examiner can check.

:func:`compare` builds, for a query and each reference, the side-by-side view, the aligned overlay
(query red, reference blue, shared ink black), an occlusion-sensitivity map (blank out a patch of
the query, re-embed, measure the score change: batched, at most ``max_patches`` patches) and
measured features. :class:`EvidenceRecord` adds the decision and the provenance (model name and
sha256, preprocessing version, thresholds, reference hashes, time). numpy + Pillow + the ONNX
engine only; no torch.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from inkproof.artifact import model_tag_of
from inkproof.errors import NoInkError
from inkproof.evidence.align import Alignment, align, query_distances, warp
from inkproof.evidence.features import Features, measure
from inkproof.imaging import ImageSource, image_digest, load_image

if TYPE_CHECKING:
    from inkproof.verifier import Verifier

__all__ = [
    "Comparison",
    "EvidenceRecord",
    "ModelProvenance",
    "Reproduction",
    "Sensitivity",
    "compare",
    "model_provenance",
    "png_data_uri",
]

DISPLAY_SCALE = 2  # images are the model's input, enlarged for the eye
MAX_PATCHES = 160  # occlusion cost bound: at most this many re-embedded queries per evidence


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _enlarge(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    image = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    return np.asarray(image.resize((w * DISPLAY_SCALE, h * DISPLAY_SCALE), Image.Resampling.BICUBIC))


def _ink_rgb(ink: np.ndarray) -> np.ndarray:
    value = (255.0 * (1.0 - np.clip(ink, 0.0, 1.0))).astype(np.uint8)
    return np.repeat(value[:, :, None], 3, axis=2)


def _side_by_side(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    gap = np.full((query.shape[0], 6, 3), 200, dtype=np.uint8)
    return np.concatenate([_ink_rgb(query), gap, _ink_rgb(reference)], axis=1)


def _overlay(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Query ink red, reference ink blue, ink both share black."""
    q, r = np.clip(query, 0.0, 1.0), np.clip(reference, 0.0, 1.0)
    rgb = np.stack([1.0 - r, 1.0 - np.maximum(q, r), 1.0 - q], axis=2)
    return (255.0 * rgb).astype(np.uint8)


def _sensitivity_rgb(query: np.ndarray, change: np.ndarray) -> np.ndarray:
    """The query in grey with the score change painted on: red where blanking the region raises
    the score (the region counts against the match), green where it lowers it (supports it)."""
    base = 255.0 - 110.0 * np.clip(query, 0.0, 1.0)
    scale = float(np.abs(change).max()) or 1.0
    strength = np.clip(np.abs(change) / scale, 0.0, 1.0)[:, :, None] * 0.75
    colour = np.where((change > 0)[:, :, None], np.array([220.0, 30.0, 30.0]), np.array([20.0, 150.0, 60.0]))
    rgb = base[:, :, None] * (1.0 - strength) + colour * strength
    return rgb.astype(np.uint8)


@dataclass(frozen=True)
class Sensitivity:
    patch: int
    stride: int
    patches: int  # re-embedded occluded queries (the cost)
    max_raise: float  # largest score increase from blanking one patch (disagreement)
    max_drop: float  # largest score decrease (support)

    def to_dict(self) -> dict[str, Any]:
        return {
            "patch": self.patch,
            "stride": self.stride,
            "patches": self.patches,
            "max_raise": round(self.max_raise, 5),
            "max_drop": round(self.max_drop, 5),
        }


@dataclass(frozen=True)
class Comparison:
    """The query against one reference."""

    reference_id: int | None
    reference_sha256: str
    score: float
    used: bool
    alignment: Alignment
    features: Features  # the reference's
    sensitivity: Sensitivity
    images: Mapping[str, bytes] = field(repr=False)  # side_by_side, overlay, sensitivity (PNG)

    def to_dict(self, *, images: bool = True) -> dict[str, Any]:
        values: dict[str, Any] = {
            "reference_id": self.reference_id,
            "reference_sha256": self.reference_sha256,
            "score": self.score,
            "used": self.used,
            "alignment": self.alignment.to_dict(),
            "features": self.features.to_dict(),
            "sensitivity": self.sensitivity.to_dict(),
        }
        if images:
            values["images"] = {name: png_data_uri(data) for name, data in self.images.items()}
        return values


@dataclass(frozen=True)
class ModelProvenance:
    name: str
    tag: str
    format: str
    embedder_sha256: str
    preprocess_version: str
    head: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Reproduction:
    """A logged decision recomputed from the log, the stored references and the model."""

    logged_model_tag: str
    logged_scores: tuple[float | None, ...]
    recomputed_scores: tuple[float | None, ...]
    logged_fused_score: float
    recomputed_fused_score: float | None
    logged_decision: str
    recomputed_decision: str | None
    same_model: bool
    references_present: bool
    matches: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(
            self.__dict__, logged_scores=list(self.logged_scores), recomputed_scores=list(self.recomputed_scores)
        )


@dataclass(frozen=True)
class EvidenceRecord:
    kind: str  # "claim" or "pair"
    created_at: str  # when this evidence was built (ISO 8601, UTC)
    model: ModelProvenance
    query_sha256: str
    query_features: Features | None  # None: the query image was not kept (scores and provenance only)
    decision: str
    score: float  # the number the thresholds apply to (fused for a claim)
    accept_threshold: float
    reject_threshold: float | None
    threshold_source: str
    method: str
    operating_point: str | None
    comparisons: tuple[Comparison, ...]
    build_seconds: float
    query_image: bytes = field(repr=False, default=b"")
    log_id: int | None = None
    claimed_external_id: str | None = None
    decided_at: str | None = None  # when the logged decision was made
    review: Mapping[str, Any] | None = None  # reviewer, decision, note, time
    reproduction: Reproduction | None = None

    def to_dict(self, *, images: bool = True) -> dict[str, Any]:
        values: dict[str, Any] = {
            "kind": self.kind,
            "created_at": self.created_at,
            "model": self.model.to_dict(),
            "query_sha256": self.query_sha256,
            "query_features": self.query_features.to_dict() if self.query_features is not None else None,
            "decision": self.decision,
            "score": self.score,
            "accept_threshold": self.accept_threshold,
            "reject_threshold": self.reject_threshold,
            "threshold_source": self.threshold_source,
            "method": self.method,
            "operating_point": self.operating_point,
            "log_id": self.log_id,
            "claimed_external_id": self.claimed_external_id,
            "decided_at": self.decided_at,
            "review": dict(self.review) if self.review is not None else None,
            "reproduction": self.reproduction.to_dict() if self.reproduction is not None else None,
            "build_seconds": round(self.build_seconds, 4),
            "comparisons": [c.to_dict(images=images) for c in self.comparisons],
        }
        if images:
            values["query_image"] = png_data_uri(self.query_image) if self.query_image else None
        return values


def model_provenance(verifier: Verifier) -> ModelProvenance:
    card = verifier.card
    embedder = card.files.get("embedder") or card.files.get("weights") or ""
    return ModelProvenance(
        name=card.name,
        tag=model_tag_of(card),
        format=str(card.format),
        embedder_sha256=card.sha256.get(embedder, ""),
        preprocess_version=card.preprocess_version,
        head=card.head,
    )


def _patches(shape: tuple[int, int], ink: np.ndarray, max_patches: int) -> tuple[int, int, list[tuple[int, int]]]:
    """Patch size, stride and the top-left corners of patches that hold ink (blanking paper changes nothing)."""
    h, w = shape
    patch = max(8, round(min(h, w) / 7))
    stride = max(4, patch // 2)
    while True:
        corners = [
            (y, x)
            for y in range(0, max(h - patch, 0) + 1, stride)
            for x in range(0, max(w - patch, 0) + 1, stride)
            if ink[y : y + patch, x : x + patch].max() > 0.25
        ]
        if len(corners) <= max_patches:
            return patch, stride, corners
        stride += 2


def compare(
    verifier: Verifier,
    query: np.ndarray,
    references: Sequence[tuple[int | None, str, np.ndarray]],
    *,
    max_patches: int = MAX_PATCHES,
) -> tuple[np.ndarray, list[Comparison], np.ndarray]:
    """(query model input, comparisons, per-reference scores) for a decoded grey query and
    (reference id, sha256, decoded grey image) references."""
    engine = verifier.engine
    q_input = engine.prepare(query)
    r_inputs = [engine.prepare(gray) for _, _, gray in references]
    for name, model_input in [
        ("the query", q_input),
        *((f"reference {r[0]}", x) for r, x in zip(references, r_inputs, strict=True)),
    ]:
        if not model_input.any():  # two blank inputs would embed alike: no evidence of anything
            raise NoInkError(name)
    patch, stride, corners = _patches(q_input.shape, q_input, max_patches)
    occluded = np.repeat(q_input[None], len(corners), axis=0)
    for i, (y, x) in enumerate(corners):
        occluded[i, y : y + patch, x : x + patch] = 0.0
    # One batch: the query, the references and every occluded query.
    if not references:  # every logged reference deleted since: nothing to compare with
        return q_input, [], np.zeros(0)
    embeddings = engine.embed(np.concatenate([q_input[None], np.stack(r_inputs), occluded]))
    q_vec, r_vecs, o_vecs = embeddings[0], embeddings[1 : 1 + len(r_inputs)], embeddings[1 + len(r_inputs) :]
    scores = verifier.score_embeddings(np.repeat(q_vec[None], len(r_vecs), axis=0), r_vecs)
    comparisons: list[Comparison] = []
    q_field = query_distances(q_input)
    for k, ((ref_id, sha, _), r_input) in enumerate(zip(references, r_inputs, strict=True)):
        change = np.zeros(q_input.shape)
        count = np.zeros(q_input.shape)
        deltas = np.zeros(0)
        if len(o_vecs):
            deltas = verifier.score_embeddings(o_vecs, np.repeat(r_vecs[k][None], len(o_vecs), axis=0)) - scores[k]
            for (y, x), delta in zip(corners, deltas, strict=True):
                change[y : y + patch, x : x + patch] += delta
                count[y : y + patch, x : x + patch] += 1
        change = np.divide(change, count, out=np.zeros_like(change), where=count > 0)
        alignment = align(q_input, r_input, query_field=q_field)
        aligned = warp(q_input, alignment) if math.isfinite(alignment.chamfer_after) else q_input
        images = {
            "side_by_side": png_bytes(_enlarge(_side_by_side(q_input, r_input))),
            "overlay": png_bytes(_enlarge(_overlay(aligned, r_input))),
            "sensitivity": png_bytes(_enlarge(_sensitivity_rgb(q_input, change))),
        }
        comparisons.append(
            Comparison(
                reference_id=ref_id,
                reference_sha256=sha,
                score=float(scores[k]),
                used=True,
                alignment=alignment,
                features=measure(r_input),
                sensitivity=Sensitivity(
                    patch,
                    stride,
                    len(corners),
                    float(deltas.max()) if len(deltas) else 0.0,
                    float(-deltas.min()) if len(deltas) else 0.0,
                ),
                images=images,
            )
        )
    return q_input, comparisons, np.asarray(scores, dtype=np.float64)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def pair_evidence(
    verifier: Verifier, reference: ImageSource, query: ImageSource, *, threshold: float | None = None
) -> EvidenceRecord:
    """Evidence for ``inkproof verify a.png b.png``: one reference, one query."""
    from inkproof.verifier import decide

    start = time.perf_counter()
    max_pixels = int(getattr(verifier.engine, "max_pixels", 64_000_000))
    reference = load_image(reference, max_pixels=max_pixels)
    query = load_image(query, max_pixels=max_pixels)
    used, rule = verifier._resolve(threshold)
    q_input, comparisons, scores = compare(verifier, query, [(None, image_digest(reference), reference)])
    score = float(scores[0])
    return EvidenceRecord(
        kind="pair",
        created_at=now_iso(),
        model=model_provenance(verifier),
        query_sha256=image_digest(query),
        query_features=measure(q_input),
        decision=decide(score, used),
        score=score,
        accept_threshold=used,
        reject_threshold=None,
        threshold_source=rule,
        method="pair",
        operating_point=None,
        comparisons=tuple(comparisons),
        build_seconds=time.perf_counter() - start,
        query_image=png_bytes(_enlarge(_ink_rgb(q_input))),
    )


def query_png(q_input: np.ndarray) -> bytes:
    return png_bytes(_enlarge(_ink_rgb(q_input)))


def with_used(comparisons: Sequence[Comparison], used: Mapping[int | None, bool]) -> tuple[Comparison, ...]:
    from dataclasses import replace

    return tuple(replace(c, used=used.get(c.reference_id, True)) for c in comparisons)

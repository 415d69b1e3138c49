"""The Python API: a :class:`Verifier` holds a loaded model; ``verify`` and ``embed`` return
frozen results. Torch-free: this path uses numpy, Pillow and onnxruntime only.

>>> from inkproof import Verifier
>>> verifier = Verifier()                       # the bundled model
>>> result = verifier.verify("reference.png", "query.png")
>>> result.decision, result.score, result.threshold
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inkproof.artifact import ArtifactError, ModelCard, card_path_for
from inkproof.errors import InvalidImageError, NoInkError
from inkproof.imaging import DEFAULT_MAX_PIXELS, ImageSource, describe_source
from inkproof.runtime.engine import Engine
from inkproof.validation import clean_threshold

Decision = Literal["genuine", "forgery"]
THRESHOLD_RULES = ("eer", "far_1", "far_0_1")


def default_model_path() -> Path:
    """The card of the model bundled inside the package."""
    return Path(str(resources.files("inkproof") / "assets" / "models" / "default" / "model.json"))


@dataclass(frozen=True)
class VerificationResult:
    score: float
    threshold: float
    threshold_rule: str  # "eer", "far_1", "far_0_1" (calibrated on validation writers) or "custom"
    decision: Decision
    model: str
    reference: str
    query: str

    @property
    def accepted(self) -> bool:
        return self.decision == "genuine"

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "threshold_rule": self.threshold_rule,
            "decision": self.decision,
            "accepted": self.accepted,
            "model": self.model,
            "reference": self.reference,
            "query": self.query,
        }


@dataclass(frozen=True)
class EmbeddingResult:
    vector: np.ndarray
    model: str
    preprocess_version: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "vector": [float(v) for v in self.vector],
            "model": self.model,
            "preprocess_version": self.preprocess_version,
            "source": self.source,
        }


def source_key(source: ImageSource) -> object:
    """What makes two image sources the same image without decoding them."""
    if isinstance(source, (str, os.PathLike)):
        return ("path", os.path.abspath(os.fspath(source)))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return ("bytes", bytes(source))
    return ("object", id(source))  # arrays and PIL images: only the same object is the same image


@dataclass(frozen=True)
class DistinctEmbeddings:
    """Embeddings of distinct images (:meth:`Verifier.embed_distinct`) and the errors of those
    that could not be embedded, both keyed by :func:`source_key`."""

    rows: dict[object, int]
    vectors: np.ndarray
    errors: dict[object, InvalidImageError]

    def vector(self, source: ImageSource) -> np.ndarray:
        key = source_key(source)
        if key in self.errors:
            raise self.errors[key]
        return self.vectors[self.rows[key]]

    def error_of(self, source: ImageSource) -> InvalidImageError | None:
        return self.errors.get(source_key(source))


def merge_embeddings(parts: Sequence[DistinctEmbeddings]) -> DistinctEmbeddings:
    """One :class:`DistinctEmbeddings` from several (e.g. embedded in chunks to show progress)."""
    rows: dict[object, int] = {}
    errors: dict[object, InvalidImageError] = {}
    offset = 0
    for part in parts:
        rows.update({key: offset + row for key, row in part.rows.items()})
        errors.update(part.errors)
        offset += len(part.vectors)
    vectors = [part.vectors for part in parts if len(part.vectors)]
    return DistinctEmbeddings(rows, np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32), errors)


def decide(score: float, threshold: float) -> Decision:
    """Accept iff ``score >= threshold`` (a threshold of 0 is a threshold like any other)."""
    return "genuine" if score >= threshold else "forgery"


class Verifier:
    """A loaded model plus an operating threshold.

    ``model`` is a model card, an ONNX file with its card, or a folder holding ``model.json``;
    ``None`` uses the bundled model. ``threshold`` fixes the operating point; otherwise ``rule``
    picks one of the thresholds calibrated on validation writers (``eer``, ``far_1``, ``far_0_1``).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        threshold: float | None = None,
        rule: str = "eer",
        device: str = "auto",
        threads: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        path = Path(model) if model is not None else default_model_path()
        if model is None and not path.is_file():
            raise ArtifactError(f"no bundled model at {path}; pass model= (an exported ONNX model card)")
        if rule not in THRESHOLD_RULES:
            raise ValueError(f"rule must be one of {THRESHOLD_RULES}, got {rule!r}")
        self.engine = Engine.from_card(path, device=device, threads=threads, max_pixels=max_pixels)
        self.card_path = card_path_for(path)  # files beside the card (the claims cohort) are found from here
        self.card: ModelCard = self.engine.card
        self.rule = rule
        self._threshold = threshold

    @property
    def threshold(self) -> float:
        return self._threshold if self._threshold is not None else self.card.threshold(self.rule)

    def _resolve(self, threshold: float | None) -> tuple[float, str]:
        if threshold is not None:
            return clean_threshold(threshold), "custom"
        if self._threshold is not None:
            return self._threshold, "custom"
        return self.card.threshold(self.rule), self.rule

    def verify(
        self, reference: ImageSource, query: ImageSource, *, threshold: float | None = None
    ) -> VerificationResult:
        """Is ``query`` by the writer of ``reference``?"""
        return self.verify_many([(reference, query)], threshold=threshold)[0]

    def verify_many(
        self, pairs: Sequence[tuple[ImageSource, ImageSource]], *, threshold: float | None = None
    ) -> list[VerificationResult]:
        """Many pairs at once: each distinct image is decoded and embedded once, in batches. An
        image without ink raises :class:`NoInkError`: two blank images embed alike and would
        score as one writer."""
        sources: list[ImageSource] = [s for pair in pairs for s in pair]
        embedded = self.embed_distinct(sources)
        if embedded.errors:
            raise next(iter(embedded.errors.values()))
        return self.score_pairs(embedded, pairs, threshold=threshold)

    def embed_distinct(self, sources: Sequence[ImageSource]) -> DistinctEmbeddings:
        """Embed each distinct image of ``sources`` once (paths compare by location, bytes by
        content, arrays and PIL images by identity). An image that cannot be read, or has no ink,
        is left out and its error kept, so a batch can report it and go on."""
        keys: dict[object, int] = {}
        distinct: list[ImageSource] = []
        for source in sources:
            key = source_key(source)
            if key not in keys:
                keys[key] = len(distinct)
                distinct.append(source)
        prepared = self.engine.prepare_each(distinct)
        errors: dict[object, InvalidImageError] = {}
        inputs: list[np.ndarray] = []
        rows: dict[object, int] = {}
        for source, outcome in zip(distinct, prepared, strict=True):
            key = source_key(source)
            if isinstance(outcome, InvalidImageError):
                errors[key] = outcome
            elif not outcome.any():  # preprocessing found no ink: the input is all paper
                errors[key] = NoInkError(describe_source(source))
            else:
                rows[key] = len(inputs)
                inputs.append(outcome)
        size = self.card.preprocess_config.input_size
        vectors = self.engine.embed(np.stack(inputs) if inputs else np.zeros((0, *size), dtype=np.float32))
        return DistinctEmbeddings(rows, vectors, errors)

    def score_pairs(
        self,
        embedded: DistinctEmbeddings,
        pairs: Sequence[tuple[ImageSource, ImageSource]],
        *,
        threshold: float | None = None,
    ) -> list[VerificationResult]:
        """Decisions for ``pairs`` whose images are all in ``embedded`` (none of them failed)."""
        used, rule = self._resolve(threshold)
        left = np.stack([embedded.vector(a) for a, _ in pairs]) if pairs else np.zeros((0, 1), np.float32)
        right = np.stack([embedded.vector(b) for _, b in pairs]) if pairs else np.zeros((0, 1), np.float32)
        scores = self.engine.score(left, right) if pairs else np.zeros(0)
        return [
            VerificationResult(
                score=float(score),
                threshold=used,
                threshold_rule=rule,
                decision=decide(float(score), used),
                model=self.card.name,
                reference=describe_source(reference),
                query=describe_source(query),
            )
            for (reference, query), score in zip(pairs, scores, strict=True)
        ]

    def embed(self, source: ImageSource) -> EmbeddingResult:
        vector = self.embed_many([source])[0]
        vector.setflags(write=False)
        return EmbeddingResult(vector, self.card.name, self.card.preprocess_version, describe_source(source))

    def embed_many(self, sources: Sequence[ImageSource]) -> np.ndarray:
        return self.engine.embed_sources(sources)

    def embed_query(self, gray: np.ndarray, description: str = "image") -> np.ndarray:
        """The (D,) embedding of one decoded query image, refused with :class:`NoInkError` when
        it holds no ink (a blank query would match every blank reference). The check reads the
        model input, all zero exactly when the preprocessing found no ink, so the image is not
        blurred a second time: on a request's path that pass cost as much as the network."""
        model_input = self.engine.prepare(gray)
        if not model_input.any():
            raise NoInkError(description)
        return self.engine.embed(model_input[None])[0]

    def score_embeddings(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.engine.score(a, b)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: dict[str, Verifier] = {}
_shared_lock = threading.Lock()


def _shared_verifier(model: str | Path | None) -> Verifier:
    key = str(Path(model).resolve()) if model is not None else ""
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Verifier(model)
        return _shared[key]


def verify(
    reference: ImageSource,
    query: ImageSource,
    *,
    model: str | Path | None = None,
    threshold: float | None = None,
) -> VerificationResult:
    """Verify one pair with a shared, lazily loaded :class:`Verifier` (the bundled model by default)."""
    return _shared_verifier(model).verify(reference, query, threshold=threshold)


def embed(source: ImageSource, *, model: str | Path | None = None) -> EmbeddingResult:
    """The embedding of one signature with a shared :class:`Verifier`."""
    return _shared_verifier(model).embed(source)

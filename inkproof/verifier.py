"""The Python API: a :class:`Verifier` holds a loaded model; ``verify`` and ``embed`` return
frozen results. Torch-free: this path uses numpy, Pillow and onnxruntime only.

>>> from inkproof import Verifier
>>> verifier = Verifier()                       # the bundled model
>>> result = verifier.verify("reference.png", "query.png")
>>> result.decision, result.score, result.threshold
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inkproof.artifact import ArtifactError, ModelCard
from inkproof.errors import NoInkError
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
        """Many pairs at once: each distinct image is embedded once, in batches. An image without
        ink raises :class:`NoInkError`: two blank images embed alike and would score as one writer."""
        used, rule = self._resolve(threshold)
        sources: list[ImageSource] = [s for pair in pairs for s in pair]
        inputs = self.engine.prepare_many(sources)
        for source, model_input in zip(sources, inputs, strict=True):
            if not model_input.any():  # preprocessing found no ink: the input is all paper
                raise NoInkError(describe_source(source))
        embeddings = self.engine.embed(inputs)
        scores = self.engine.score(embeddings[0::2], embeddings[1::2])
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

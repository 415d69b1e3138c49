"""What evaluation (and every other consumer) needs from a model, whatever runs it.

A :class:`Scorer` maps preprocessed signatures to embeddings and two embeddings to a pair score.
The torch implementation serves training-time evaluation; the onnxruntime engine implements the
same protocol for torch-free inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from inkproof.artifact import ModelCard


class Scorer(Protocol):
    card: ModelCard

    def embed(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) float32 inputs in [0, 1] -> (N, D) float32 embeddings."""
        ...

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row-wise pair scores of two (M, D) embedding arrays; higher = same writer."""
        ...


def load_scorer(model: str | Path, *, device: str = "auto") -> Scorer:
    """A scorer for a model card, weight file or run folder: torch for safetensors weights,
    onnxruntime for ONNX models."""
    from inkproof.artifact import ModelCard, card_path_for

    card_path = card_path_for(model)
    card = ModelCard.load(card_path)
    if card.format == "safetensors":
        from inkproof.models.torch_scorer import TorchScorer

        return TorchScorer.from_card(card_path, device=device)
    from inkproof.runtime.engine import Engine

    return Engine.from_card(card_path, device=device)

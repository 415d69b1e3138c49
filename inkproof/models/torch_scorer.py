"""A :class:`~inkproof.evaluation.scoring.Scorer` backed by a torch model (safetensors weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inkproof.artifact import ModelCard
from inkproof.models.base import SiameseModel
from inkproof.models.device import resolve_device
from inkproof.models.registry import build_model, config_from_dict


class TorchScorer:
    def __init__(self, model: SiameseModel, card: ModelCard, device: torch.device, batch_size: int = 64) -> None:
        self.model = model.to(device).eval()
        self.card = card
        self.device = device
        self.batch_size = batch_size

    @classmethod
    def from_card(cls, card_path: str | Path, *, device: str = "auto") -> TorchScorer:
        from inkproof.training.checkpoint import load_weights

        card = ModelCard.load(card_path)
        config = config_from_dict(card.name, card.model_config)
        model = build_model(card.name, config, input_size=card.input_size)
        load_weights(model, card.path_of("weights", card_path))
        return cls(model, card, resolve_device(device))

    @torch.no_grad()
    def embed(self, images: np.ndarray) -> np.ndarray:
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + self.batch_size], dtype=np.float32))
            chunks.append(self.model.embed(batch.unsqueeze(1).to(self.device)).float().cpu().numpy())
        if not chunks:
            return np.zeros((0, self.card.embedding_dim), dtype=np.float32)
        return np.concatenate(chunks)

    @torch.no_grad()
    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        left = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)
        right = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)).to(self.device)
        result: np.ndarray = self.model.score(left, right).float().cpu().numpy()
        return result

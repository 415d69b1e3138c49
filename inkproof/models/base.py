"""The torch side of every model: a single-branch embedder plus a pair-scoring head.

``embed`` maps a batch of preprocessed signatures (N, 1, H, W) to embeddings (N, D); ``score``
turns two embeddings into a pair score (higher = same writer). Export uses the two halves
separately, so one embedding per reference is computed once and reused.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inkproof.models.registry import ModelConfig

# Euclidean distance gets this under the square root so its gradient stays finite at zero.
_DISTANCE_EPS = 1e-9


class ProductHead(nn.Module):
    """Logit from the element-wise product of two embeddings (BatchNorm, dropout, small MLP)."""

    def __init__(self, embedding_dim: int, dropout: float) -> None:
        super().__init__()
        hidden = max(16, embedding_dim // 2)
        self.layers = nn.Sequential(
            nn.BatchNorm1d(embedding_dim),
            nn.Linear(embedding_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.layers(a * b).squeeze(1)


class SiameseModel(nn.Module):
    """``body`` (images -> features) + projection to the embedding + the configured head."""

    def __init__(self, name: str, body: nn.Module, feature_dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.name = name
        self.config = config
        self.body = body
        self.projection = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(feature_dim, config.embedding_dim))
        self.pair_head: nn.Module | None = (
            ProductHead(config.embedding_dim, config.dropout) if config.head == "product" else None
        )
        self._frozen: list[nn.Module] = []

    @property
    def head_kind(self) -> str:
        return self.config.head

    @property
    def uses_distance(self) -> bool:
        """True when training works on distances (contrastive / triplet losses)."""
        return self.config.head in ("cosine", "euclidean")

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        if self.config.input_mean != 0.0 or self.config.input_std != 1.0:
            images = (images - self.config.input_mean) / self.config.input_std
        embedding = self.projection(self.body(images))
        if self.config.head == "cosine":
            embedding = F.normalize(embedding, dim=1)
        return embedding

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.config.head == "cosine":
            return 1.0 - (a * b).sum(dim=1)
        if self.config.head == "euclidean":
            return torch.sqrt(((a - b) ** 2).sum(dim=1) + _DISTANCE_EPS)
        raise ValueError("a product head scores pairs directly; it has no distance")

    def score(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine head: cosine similarity in [-1, 1]; Euclidean: minus the distance; product: a logit."""
        if self.pair_head is not None:
            return self.pair_head(a, b)
        if self.config.head == "cosine":
            return (a * b).sum(dim=1)
        return -self.distance(a, b)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.score(self.embed(a), self.embed(b))

    # --- head-only fine-tuning -----------------------------------------------------------

    @property
    def backbone_frozen(self) -> bool:
        return any(module is self.body for module in self._frozen)

    def freeze(self, *modules: nn.Module) -> None:
        """Fix ``modules``: no gradients, and their BatchNorm layers stay in eval mode (running
        statistics untouched) even while the rest of the model trains."""
        for module in modules:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
            module.eval()
            self._frozen.append(module)

    def freeze_backbone(self) -> None:
        """Train only the projection and head (head-only fine-tuning)."""
        self.freeze(self.body)

    def train(self, mode: bool = True) -> SiameseModel:
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config.to_dict()}


def one_channel_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of ``conv`` taking one input channel; pretrained RGB filters are summed."""
    single = nn.Conv2d(
        1,
        conv.out_channels,
        kernel_size=conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=1,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        single.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None and single.bias is not None:
            single.bias.copy_(conv.bias)
    return single


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_embedding_macs(model: SiameseModel, input_size: tuple[int, int]) -> int:
    """Multiply-adds of one ``embed`` call on a single image (from torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.embed(torch.zeros(1, 1, *input_size))
    model.train(was_training)
    return int(counter.get_total_flops() // 2)

"""SigNet (Dey et al. 2017): the classic Siamese CNN for offline signatures, as in the paper.

Input 155x220 in the paper (any size works); about 114 M parameters at that size, almost all in
the first fully connected layer. Kept for comparison; it is far too slow to be a CPU default.
"""

from __future__ import annotations

import torch
from torch import nn

from inkproof.models.base import SiameseModel
from inkproof.models.registry import SigNetConfig


class SigNetBody(nn.Module):
    def __init__(self, input_size: tuple[int, int], conv_dropout: float, fc_dropout: float) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 96, kernel_size=11, stride=1),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout2d(conv_dropout),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout2d(conv_dropout),
        )
        with torch.no_grad():
            flat = int(self.features(torch.zeros(1, 1, *input_size)).numel())
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, 1024), nn.ReLU(inplace=True))
        self.feature_dim = 1024

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


def build(config: SigNetConfig, *, input_size: tuple[int, int]) -> SiameseModel:
    body = SigNetBody(input_size, config.conv_dropout, config.dropout)
    return SiameseModel("signet", body, body.feature_dim, config)

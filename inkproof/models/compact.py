"""inkproof's compact CNN: the CPU-friendly default family.

MobileNetV2-style inverted residual blocks (pointwise expand, depthwise 3x3, pointwise project)
in four stages that halve the resolution and double the width. Signatures are wide and their
layout matters, so the head pools both the average and the maximum of the last feature map.
"""

from __future__ import annotations

import torch
from torch import nn

from inkproof.models.base import SiameseModel
from inkproof.models.registry import CompactConfig


def _conv_bn(
    inputs: int, outputs: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(outputs),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int, expansion: int = 3) -> None:
        super().__init__()
        hidden = inputs * expansion
        self.block = nn.Sequential(
            _conv_bn(inputs, hidden, 1),
            _conv_bn(hidden, hidden, 3, stride=stride, groups=hidden),
            _conv_bn(hidden, outputs, 1, act=False),
        )
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class CompactBody(nn.Module):
    def __init__(self, width: int, depth: tuple[int, ...], conv_dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(1, width, 3, stride=2)]
        channels = width
        for stage, blocks in enumerate(depth):
            out_channels = width * 2**stage
            for index in range(blocks):
                layers.append(InvertedResidual(channels, out_channels, stride=2 if index == 0 else 1))
                channels = out_channels
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout2d(conv_dropout)
        self.feature_dim = 2 * channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.dropout(self.features(images))
        return torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)


def build(config: CompactConfig, *, input_size: tuple[int, int]) -> SiameseModel:
    body = CompactBody(config.width, config.depth, config.conv_dropout)
    return SiameseModel("compact", body, body.feature_dim, config)

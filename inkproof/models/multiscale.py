"""A multiscale global + regional embedder for skilled-forgery verification (after MS-SigNet,
arXiv 2308.00428).

A skilled forgery copies a signature's overall shape; what gives it away is local: hesitant
strokes, different proportions between parts. So besides the usual global descriptor of the last
(stride-32) feature map, a regional branch reads the finer stride-16 map: squeeze-excitation
re-weights its channels, a 1x1 convolution reduces them, and the map is pooled (average and
maximum) over horizontal strips and vertical strips of the signature separately, so each part of
the signature gets its own slots in the embedding instead of being averaged away. Both branches
are concatenated and projected by :class:`~inkproof.models.base.SiameseModel`.

The trunk is the compact CNN (CPU-cheap, from scratch) or ImageNet EfficientNet-Lite0. Strips are
cut with fixed integer bounds (the input size is fixed per model), which exports to ONNX as plain
slices.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from inkproof.models.base import SiameseModel
from inkproof.models.compact import InvertedResidual, _conv_bn
from inkproof.models.registry import MultiscaleConfig


class SqueezeExcitation(nn.Module):
    """Channel attention: a gate in (0, 1) per channel from the globally pooled map."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(4, channels // reduction)
        self.gate = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        weights = self.gate(maps.mean(dim=(2, 3)))
        return maps * weights[:, :, None, None]


def _bounds(size: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, non-empty [start, stop) ranges covering ``size`` (overlapping by one
    row when the map is smaller than ``parts``)."""
    edges = [round(i * size / parts) for i in range(parts + 1)]
    return [(min(edges[i], size - 1), max(edges[i + 1], min(edges[i], size - 1) + 1)) for i in range(parts)]


def part_pool(maps: torch.Tensor, horizontal: int, vertical: int) -> torch.Tensor:
    """Average and maximum of ``maps`` (N, C, H, W) over ``horizontal`` strips (rows of the
    signature) and ``vertical`` strips (its left-to-right parts): (N, 2 * C * (h + v))."""
    height, width = int(maps.shape[2]), int(maps.shape[3])
    pooled = []
    for start, stop in _bounds(height, horizontal):
        strip = maps[:, :, start:stop, :]
        pooled += [strip.mean(dim=(2, 3)), strip.amax(dim=(2, 3))]
    for start, stop in _bounds(width, vertical):
        strip = maps[:, :, :, start:stop]
        pooled += [strip.mean(dim=(2, 3)), strip.amax(dim=(2, 3))]
    return torch.cat(pooled, dim=1)


class CompactTrunk(nn.Module):
    """The compact CNN's stages, returning the stride-16 and stride-32 maps."""

    def __init__(self, width: int, depth: tuple[int, ...]) -> None:
        super().__init__()
        if len(depth) != 4:
            raise ValueError("the multiscale compact trunk needs four stages (depth of length 4)")
        stages: list[nn.Module] = []
        channels = width
        for stage, blocks in enumerate(depth):
            out_channels = width * 2**stage
            layers = []
            for index in range(blocks):
                layers.append(InvertedResidual(channels, out_channels, stride=2 if index == 0 else 1))
                channels = out_channels
            stages.append(nn.Sequential(*layers))
        self.early = nn.Sequential(_conv_bn(1, width, 3, stride=2), *stages[:3])
        self.late = stages[3]
        self.mid_channels = width * 4
        self.last_channels = width * 8

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mid = self.early(images)
        return mid, self.late(mid)


class LiteTrunk(nn.Module):
    """EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``): blocks 0-4 give the stride-16 map
    (112 channels), blocks 5-6 and the 1x1 head the stride-32 map (1280 channels)."""

    def __init__(self, pretrained: bool) -> None:
        super().__init__()
        import timm

        from inkproof.models.efficientnet_lite import _load_pretrained

        net = timm.create_model("tf_efficientnet_lite0", pretrained=False, in_chans=1, num_classes=0)
        if pretrained:
            _load_pretrained(net)
        blocks = cast(nn.Sequential, net.blocks)
        self.stem = nn.Sequential(cast(nn.Module, net.conv_stem), cast(nn.Module, net.bn1))
        self.blocks = blocks
        self.head = nn.Sequential(cast(nn.Module, net.conv_head), cast(nn.Module, net.bn2))
        self.mid_channels = 112
        self.last_channels: int = net.num_features  # type: ignore[assignment]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(images)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index == 4:
                mid = x
        return mid, self.head(x)


class MultiscaleBody(nn.Module):
    def __init__(self, config: MultiscaleConfig) -> None:
        super().__init__()
        self.trunk: CompactTrunk | LiteTrunk = (
            LiteTrunk(config.pretrained)
            if config.trunk == "efficientnet-lite0"
            else CompactTrunk(config.width, config.depth)
        )
        self.horizontal, self.vertical = config.horizontal_parts, config.vertical_parts
        self.global_attention = SqueezeExcitation(self.trunk.last_channels, config.se_reduction)
        self.regional_attention = SqueezeExcitation(self.trunk.mid_channels, config.se_reduction)
        self.regional_reduce = _conv_bn(self.trunk.mid_channels, config.regional_channels, 1)
        self.dropout = nn.Dropout2d(config.conv_dropout)
        self.feature_dim = 2 * self.trunk.last_channels + 2 * config.regional_channels * (
            config.horizontal_parts + config.vertical_parts
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mid, last = self.trunk(images)
        last = self.dropout(self.global_attention(last))
        regional = self.dropout(self.regional_reduce(self.regional_attention(mid)))
        return torch.cat(
            [last.mean(dim=(2, 3)), last.amax(dim=(2, 3)), part_pool(regional, self.horizontal, self.vertical)], dim=1
        )


def build(config: MultiscaleConfig, *, input_size: tuple[int, int]) -> SiameseModel:
    body = MultiscaleBody(config)
    name = "ms-efficientnet-lite0" if config.trunk == "efficientnet-lite0" else "ms-compact"
    model = SiameseModel(name, body, body.feature_dim, config)
    if config.trunk == "efficientnet-lite0" and config.frozen_blocks:
        trunk = cast(LiteTrunk, body.trunk)
        model.freeze(trunk.stem, *trunk.blocks[: config.frozen_blocks])
    return model

"""A compact vision transformer (timm, random initialisation) in the spirit of DetailSemNet.

Signatures are not square: the input is zero-padded (background is 0) on the right and bottom
to whole patches, and the patch grid follows that padded size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inkproof.models.base import SiameseModel
from inkproof.models.registry import ViTConfig


class PaddedViT(nn.Module):
    def __init__(self, config: ViTConfig, input_size: tuple[int, int]) -> None:
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        patch = config.patch_size
        self.padding = (-input_size[1] % patch, -input_size[0] % patch)
        padded = (input_size[0] + self.padding[1], input_size[1] + self.padding[0])
        self.transformer = VisionTransformer(
            img_size=padded,
            patch_size=patch,
            in_chans=1,
            num_classes=0,
            embed_dim=config.width,
            depth=config.layers,
            num_heads=config.heads,
            global_pool="avg",
            drop_rate=config.conv_dropout,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if any(self.padding):
            images = F.pad(images, (0, self.padding[0], 0, self.padding[1]))
        features: torch.Tensor = self.transformer(images)
        return features


def build(config: ViTConfig, *, input_size: tuple[int, int]) -> SiameseModel:
    return SiameseModel("vit-tiny", PaddedViT(config, input_size), config.width, config)

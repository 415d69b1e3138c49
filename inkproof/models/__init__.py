"""Models: a torch-free registry of names and typed configs; torch modules load on demand."""

from inkproof.models.registry import (
    BackboneConfig,
    CompactConfig,
    EfficientNetLiteConfig,
    ModelConfig,
    ModelSpec,
    MultiscaleConfig,
    SigNetConfig,
    ViTConfig,
    available_models,
    build_model,
    config_from_dict,
    model_config,
    model_spec,
)

__all__ = [
    "BackboneConfig",
    "CompactConfig",
    "EfficientNetLiteConfig",
    "ModelConfig",
    "ModelSpec",
    "MultiscaleConfig",
    "SigNetConfig",
    "ViTConfig",
    "available_models",
    "build_model",
    "config_from_dict",
    "model_config",
    "model_spec",
]

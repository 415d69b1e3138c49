from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inkproof.models import MultiscaleConfig, build_model, model_config
from inkproof.models.multiscale import _bounds, part_pool
from tests.training.test_trainer import tiny_config

SIZE = (48, 72)


def test_registry_and_config_validation() -> None:
    lite = model_config("ms-efficientnet-lite0")
    assert isinstance(lite, MultiscaleConfig)
    assert lite.trunk == "efficientnet-lite0" and lite.input_mean == 0.5
    assert model_config("ms-compact").trunk == "compact"
    with pytest.raises(ValueError, match="trunk"):
        model_config("ms-compact", trunk="resnet")
    with pytest.raises(ValueError, match="parts"):
        model_config("ms-compact", vertical_parts=0)
    with pytest.raises(ValueError, match="depth"):
        model_config("ms-compact", depth=(1, 2, 3))


@pytest.mark.parametrize(("size", "parts"), [(7, 2), (10, 4), (3, 4), (1, 2), (5, 5)])
def test_part_bounds_are_non_empty_and_cover_the_map(size: int, parts: int) -> None:
    bounds = _bounds(size, parts)
    assert len(bounds) == parts
    assert all(0 <= start < stop <= size for start, stop in bounds)
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    covered = set().union(*(range(start, stop) for start, stop in bounds))
    assert covered == set(range(size))


def test_part_pooling_sees_where_ink_is_global_pooling_does_not() -> None:
    left, right = torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 4, 8)
    left[0, 0, 1, 1] = 1.0
    right[0, 0, 1, 6] = 1.0
    assert torch.equal(left.mean(dim=(2, 3)), right.mean(dim=(2, 3)))
    assert torch.equal(left.amax(dim=(2, 3)), right.amax(dim=(2, 3)))
    pooled_left, pooled_right = part_pool(left, 2, 4), part_pool(right, 2, 4)
    assert pooled_left.shape == (1, 2 * 2 * (2 + 4))
    assert not torch.equal(pooled_left, pooled_right)


@pytest.mark.parametrize("name", ["ms-compact", "ms-efficientnet-lite0"])
def test_both_branches_receive_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, model_config(name, pretrained=False), input_size=SIZE)
    model.embed(torch.rand(4, 1, *SIZE)).pow(2).sum().backward()
    body = model.body
    for branch in (body.global_attention, body.regional_attention, body.regional_reduce):
        grads = [p.grad for p in branch.parameters()]
        assert all(g is not None and bool(g.abs().sum() > 0) for g in grads)


def test_multiscale_trains_with_cotuplet_and_pseudo_forgeries_and_exports(synthetic_root: Path, tmp_path: Path) -> None:
    from inkproof.export.onnx_export import export_onnx
    from inkproof.runtime.engine import Engine
    from inkproof.training.trainer import train

    config = tiny_config(
        synthetic_root,
        model="ms-compact",
        model_settings={"width": 8, "depth": (1, 1, 1, 1), "embedding_dim": 32, "regional_channels": 8},
        loss="cosface",
        skilled_weight=1.0,
        skilled_term="cotuplet",
        pseudo_forgeries_per_writer=1,
    )
    result = train(config, tmp_path / "run", progress=False, cache_dir=tmp_path / "cache")
    assert np.isfinite(result.history[0]["train_loss"])
    exported = export_onnx(result.card_path, tmp_path / "onnx" / "model.onnx")
    assert exported.parity.passed
    with Engine.from_card(exported.card_path, device="cpu") as engine:
        assert engine.embed(np.random.default_rng(0).random((3, *SIZE), dtype=np.float32)).shape == (3, 32)

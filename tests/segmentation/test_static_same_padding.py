"""Export replaces timm's run-time SAME padding by a fixed one; both must agree on every valid size."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
timm_layers = pytest.importorskip("timm.layers")

from inkproof.segmentation.export import _StaticSameConv, _use_static_same_padding  # noqa: E402


def _net() -> torch.nn.Module:
    same = timm_layers.Conv2dSame
    return torch.nn.Sequential(
        same(1, 4, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.Sequential(same(4, 4, 5, stride=2, groups=4), same(4, 2, (3, 5), stride=(2, 1))),
    ).eval()


def test_fixed_padding_matches_timm_on_multiples_of_the_stride() -> None:
    torch.manual_seed(0)
    net = _net()
    fixed = _net()
    fixed.load_state_dict(net.state_dict())
    _use_static_same_padding(fixed)
    assert sum(isinstance(m, _StaticSameConv) for m in fixed.modules()) == 3
    assert isinstance(fixed[0], _StaticSameConv) and isinstance(fixed[2][1], _StaticSameConv)
    for height, width in [(32, 32), (64, 96), (160, 384)]:
        x = torch.rand(2, 1, height, width)
        with torch.no_grad():
            assert torch.allclose(net(x), fixed(x), atol=1e-6), (height, width)
    # An odd size is outside the graph's contract (the runtime pads to a multiple): there they differ.
    odd = torch.rand(1, 1, 33, 33)
    with torch.no_grad():
        assert net(odd).shape != fixed(odd).shape or not torch.allclose(net(odd), fixed(odd))

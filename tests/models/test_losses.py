from __future__ import annotations

import pytest
import torch

from inkproof.models.losses import (
    batch_hard_triplet_loss,
    bce_loss,
    contrastive_loss,
    cotuplet_loss,
    double_margin_contrastive_loss,
    skilled_cotuplet_loss,
    skilled_triplet_loss,
)


def test_contrastive_loss_values() -> None:
    distances = torch.tensor([0.0, 2.0, 0.5, 1.5])
    targets = torch.tensor([1, 1, 0, 0])
    # genuine: 0 and 4; forgery inside margin 1: (1-0.5)^2 = 0.25; beyond margin: 0
    expected = 0.5 * (0.0 + 4.0 + 0.25 + 0.0) / 4
    assert contrastive_loss(distances, targets, margin=1.0).item() == pytest.approx(expected)


def test_double_margin_leaves_room_for_genuine_variation() -> None:
    distances = torch.tensor([0.1, 0.5, 0.5, 1.0])
    targets = torch.tensor([1, 1, 0, 0])
    loss = double_margin_contrastive_loss(distances, targets, positive_margin=0.2, negative_margin=0.8)
    assert loss.item() == pytest.approx((0.0 + 0.09 + 0.09 + 0.0) / 4)
    with pytest.raises(ValueError, match="smaller"):
        double_margin_contrastive_loss(distances, targets, 0.8, 0.2)


def test_bce_loss_prefers_correct_logits() -> None:
    targets = torch.tensor([1, 0])
    assert bce_loss(torch.tensor([5.0, -5.0]), targets) < bce_loss(torch.tensor([-5.0, 5.0]), targets)


def test_batch_hard_triplet_mines_hardest_examples() -> None:
    # Writer 0: two genuine at x=0 and x=1; its forgery (identity 2) at x=1.2; writer 1 far away.
    embeddings = torch.tensor([[0.0], [1.0], [1.2], [10.0], [10.5]])
    identities = torch.tensor([0, 0, 2, 1, 1])
    anchors = torch.tensor([True, True, False, True, True])
    loss = batch_hard_triplet_loss(embeddings, identities, anchors, margin=0.5, metric="euclidean")
    # anchor 0: hardest positive 1.0, hardest negative 1.2 -> 0.3; anchor 1: pos 1.0, neg 0.2 -> 1.3;
    # anchors 3 and 4: pos 0.5, neg >= 8.8 -> 0.
    assert loss.item() == pytest.approx((0.3 + 1.3) / 4, abs=1e-4)


def test_triplet_without_valid_anchor_is_zero_but_differentiable() -> None:
    embeddings = torch.rand(3, 4, requires_grad=True)
    loss = batch_hard_triplet_loss(embeddings, torch.tensor([0, 1, 2]), torch.ones(3, dtype=torch.bool), 0.2)
    loss.backward()
    assert loss.item() == 0.0
    assert embeddings.grad is not None


def test_skilled_triplet_uses_only_the_writers_own_forgeries() -> None:
    # 2 writers; identities 0, 1 genuine and 2, 3 their forgeries. Unit vectors at angles (degrees):
    # writer 0 at 0 and 20, its forgery at 10; writer 1 at 5 and 90, its forgery at 225.
    angles = torch.tensor([0.0, 20.0, 10.0, 5.0, 90.0, 225.0]) * torch.pi / 180
    embeddings = torch.stack([angles.cos(), angles.sin()], dim=1)
    identities = torch.tensor([0, 0, 2, 1, 1, 3])
    genuine = torch.tensor([True, True, False, True, True, False])
    loss = skilled_triplet_loss(embeddings, identities, genuine, writers=2, margin=0.1)

    def distance(a: float, b: float) -> float:
        return 1.0 - float(torch.cos(torch.tensor((a - b) * torch.pi / 180)))

    # Writer 0's anchors: positive at 20 degrees, own forgery at 10 degrees -> violated. Writer 1's
    # genuine signature at 5 degrees is close to writer 0's anchors but is not a negative here, and
    # writer 1's own forgery lies far beyond its positive, so its anchors cost nothing.
    violation = distance(0, 20) - distance(0, 10) + 0.1
    assert loss.item() == pytest.approx(2 * violation / 4, abs=1e-5)


def _unit(degrees: list[float]) -> torch.Tensor:
    angles = torch.tensor(degrees) * torch.pi / 180
    return torch.stack([angles.cos(), angles.sin()], dim=1)


# One writer: genuine anchor at 0 degrees, positives at the given angles, own forgeries beyond.
_IDS = torch.tensor([0, 0, 0, 2, 2])
_GENUINE = torch.tensor([True, True, True, False, False])


def test_cotuplet_is_zero_when_every_margin_holds() -> None:
    embeddings = _unit([0.0, 5.0, -5.0, 90.0, -90.0])
    loss = skilled_cotuplet_loss(embeddings, _IDS, _GENUINE, writers=2, margin=0.2, scale=10.0)
    assert loss.item() == 0.0


def test_cotuplet_falls_as_positives_move_closer() -> None:
    def loss_at(spread: float) -> float:
        embeddings = _unit([0.0, spread, -spread, 40.0, -40.0])
        return skilled_cotuplet_loss(embeddings, _IDS, _GENUINE, writers=2, margin=0.2).item()

    values = [loss_at(spread) for spread in (35.0, 25.0, 15.0)]
    assert values[0] > values[1] > values[2] > 0.0


def test_cotuplet_gradient_pulls_positives_and_pushes_forgeries() -> None:
    angles = torch.tensor([0.0, 30.0, -30.0, 20.0, -45.0], requires_grad=True)
    radians = angles * torch.pi / 180
    embeddings = torch.stack([radians.cos(), radians.sin()], dim=1)
    loss = skilled_cotuplet_loss(embeddings, _IDS, _GENUINE, writers=2, margin=0.2)
    loss.backward()
    assert angles.grad is not None
    grad = angles.grad
    # Gradient descent moves angle - grad: the positives at +-30 degrees towards 0, the forgery at
    # 20 degrees up and the one at -45 degrees down (away from the genuine cluster). Every
    # positive and every negative gets a share, unlike a batch-hard triplet.
    assert grad[1] > 0 and grad[2] < 0
    assert grad[3] < 0 and grad[4] > 0
    assert bool((grad[1:] != 0).all())


def test_cotuplet_bounds_the_batch_hard_triplet_and_tends_to_it() -> None:
    torch.manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(12, 8), dim=1)
    identities = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3])
    genuine = identities < 2
    own = identities.unsqueeze(0) == identities.unsqueeze(1) + 2
    hard = batch_hard_triplet_loss(embeddings, identities, genuine, 0.1, "cosine", negative_mask=own)
    soft = cotuplet_loss(embeddings, identities, genuine, 0.1, scale=5.0, negative_mask=own)
    sharp = cotuplet_loss(embeddings, identities, genuine, 0.1, scale=1e4, negative_mask=own)
    assert soft.item() >= hard.item() > 0.0
    assert sharp.item() == pytest.approx(hard.item(), abs=1e-3)
    with pytest.raises(ValueError, match="scale"):
        cotuplet_loss(embeddings, identities, genuine, 0.1, scale=0.0)


def test_skilled_cotuplet_ignores_other_writers_and_is_differentiable_without_anchors() -> None:
    # Writer 1's genuine signature sits right on writer 0's anchor but is not a skilled negative.
    embeddings = _unit([0.0, 5.0, 90.0, 1.0, 3.0, 200.0])
    identities = torch.tensor([0, 0, 2, 1, 1, 3])
    genuine = torch.tensor([True, True, False, True, True, False])
    assert skilled_cotuplet_loss(embeddings, identities, genuine, writers=2, margin=0.2).item() == 0.0
    # ...whereas the standalone co-tuplet counts every other identity as a negative.
    assert cotuplet_loss(embeddings, identities, genuine, margin=0.2).item() > 0.0
    lonely = torch.rand(3, 4, requires_grad=True)
    loss = cotuplet_loss(lonely, torch.tensor([0, 1, 2]), torch.ones(3, dtype=torch.bool), 0.2)
    loss.backward()
    assert loss.item() == 0.0 and lonely.grad is not None

from __future__ import annotations

import pytest
import torch

from inkproof.models.losses import (
    batch_hard_triplet_loss,
    bce_loss,
    contrastive_loss,
    double_margin_contrastive_loss,
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

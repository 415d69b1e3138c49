"""Losses for Siamese and metric-learning training.

Pair losses take a batch of pairs with ``targets`` 1 (same writer, both genuine) or 0 (forgery):
``contrastive`` and ``double-margin`` work on distances, ``bce`` on logits. The triplet loss works
on a batch of embeddings with identity labels and mines the hardest positive and negative of
every anchor inside the batch.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["contrastive", "double-margin", "bce", "triplet", "cosface", "cotuplet"]
LOSSES: tuple[str, ...] = ("contrastive", "double-margin", "bce", "triplet", "cosface", "cotuplet")
DISTANCE_LOSSES = frozenset({"contrastive", "double-margin", "triplet", "cosface", "cotuplet"})
# Losses trained on batches of identities (P writers x K signatures) rather than on pairs.
IDENTITY_LOSSES = frozenset({"triplet", "cosface", "cotuplet"})
# The term added to CosFace against each writer's own skilled forgeries.
SkilledTerm = Literal["triplet", "cotuplet"]
SKILLED_TERMS: tuple[str, ...] = ("triplet", "cotuplet")


def contrastive_loss(distances: torch.Tensor, targets: torch.Tensor, margin: float) -> torch.Tensor:
    """Hadsell et al.: pull genuine pairs together, push forgeries beyond ``margin``."""
    targets = targets.float()
    positive = targets * distances.pow(2)
    negative = (1.0 - targets) * F.relu(margin - distances).pow(2)
    return 0.5 * (positive + negative).mean()


def double_margin_contrastive_loss(
    distances: torch.Tensor, targets: torch.Tensor, positive_margin: float, negative_margin: float
) -> torch.Tensor:
    """Genuine pairs only pay beyond ``positive_margin``; forgeries only inside ``negative_margin``.

    Leaving genuine pairs some room avoids collapsing each writer to a point, which helps with
    natural within-writer variation.
    """
    if positive_margin >= negative_margin:
        raise ValueError("positive_margin must be smaller than negative_margin")
    targets = targets.float()
    positive = targets * F.relu(distances - positive_margin).pow(2)
    negative = (1.0 - targets) * F.relu(negative_margin - distances).pow(2)
    return (positive + negative).mean()


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, targets.float())


def pairwise_distances(embeddings: torch.Tensor, metric: Literal["cosine", "euclidean"]) -> torch.Tensor:
    if metric == "cosine":
        normalised = F.normalize(embeddings, dim=1)
        return 1.0 - normalised @ normalised.T
    squared = (embeddings.unsqueeze(1) - embeddings.unsqueeze(0)).pow(2).sum(-1)
    return torch.sqrt(squared + 1e-9)


def cosface_loss(
    embeddings: torch.Tensor, identities: torch.Tensor, weights: torch.Tensor, scale: float, margin: float
) -> torch.Tensor:
    """Large-margin cosine loss (CosFace / AM-softmax): classify each signature into its
    identity (a writer, or "skilled forgeries of a writer") with the target logit reduced by
    ``margin``, which makes writers compact and well separated on the unit sphere."""
    cosine = F.normalize(embeddings, dim=1) @ F.normalize(weights, dim=1).T
    logits = scale * (cosine - margin * F.one_hot(identities, num_classes=weights.shape[0]))
    return F.cross_entropy(logits, identities)


def batch_hard_triplet_loss(
    embeddings: torch.Tensor,
    identities: torch.Tensor,
    anchor_mask: torch.Tensor,
    margin: float,
    metric: Literal["cosine", "euclidean"] = "cosine",
    negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hermans et al. batch-hard triplet loss.

    ``identities`` label each embedding; a skilled forgery of writer w carries an identity of its
    own, so it is a negative for w's genuine signatures. Only rows with ``anchor_mask`` (genuine
    signatures) act as anchors, so forgeries are never pulled towards each other. Anchors
    without a positive or a negative in the batch are skipped. ``negative_mask`` (N, N) limits
    which rows count as negatives of each anchor (default: every other identity).
    """
    distances = pairwise_distances(embeddings, metric)
    same = identities.unsqueeze(0) == identities.unsqueeze(1)
    eye = torch.eye(len(identities), dtype=torch.bool, device=embeddings.device)
    positives = same & ~eye & anchor_mask.unsqueeze(0)
    negatives = ~same if negative_mask is None else negative_mask & ~same
    hardest_positive = torch.where(positives, distances, torch.full_like(distances, -1.0)).amax(dim=1)
    hardest_negative = torch.where(negatives, distances, torch.full_like(distances, float("inf"))).amin(dim=1)
    valid = anchor_mask & positives.any(dim=1) & negatives.any(dim=1)
    if not bool(valid.any()):
        return embeddings.sum() * 0.0  # keeps the graph; nothing to learn from this batch
    losses = F.relu(hardest_positive - hardest_negative + margin)
    return losses[valid].mean()


def skilled_triplet_loss(
    embeddings: torch.Tensor, identities: torch.Tensor, genuine: torch.Tensor, writers: int, margin: float
) -> torch.Tensor:
    """Batch-hard triplets whose negatives are only the anchor writer's own skilled forgeries
    (identity ``writer + writers``): every genuine signature must lie closer to the writer's
    other genuine signatures than to the closest imitation of them, by ``margin`` (cosine)."""
    own_forgeries = identities.unsqueeze(0) == (identities.unsqueeze(1) + writers)
    return batch_hard_triplet_loss(embeddings, identities, genuine, margin, "cosine", negative_mask=own_forgeries)


def cotuplet_loss(
    embeddings: torch.Tensor,
    identities: torch.Tensor,
    anchor_mask: torch.Tensor,
    margin: float,
    scale: float = 10.0,
    negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Co-tuplet loss (after MS-SigNet): every anchor sees *all* its positives and *all* its
    negatives in the batch at once, not only the hardest pair.

    With cosine distances d, per anchor a: ``relu(P_a - N_a + margin)`` where
    ``P_a = logsumexp_p(scale * d_ap) / scale`` is a smooth maximum over the positives and
    ``N_a = -logsumexp_n(-scale * d_an) / scale`` a smooth minimum over the negatives. The smooth
    maximum is never below the true maximum (and the smooth minimum never above the true
    minimum), so a zero loss guarantees the hard margin between every positive and every
    negative; below that, each positive and negative gets a gradient weighted by its softmax
    share, which spreads learning over the tuple instead of one mined pair. ``scale`` -> infinity
    gives the batch-hard triplet loss. Only ``anchor_mask`` rows (genuine signatures) are anchors;
    ``negative_mask`` (N, N) limits the negatives (default: every other identity). Anchors
    without a positive or a negative are skipped.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    distances = pairwise_distances(embeddings, "cosine")
    same = identities.unsqueeze(0) == identities.unsqueeze(1)
    eye = torch.eye(len(identities), dtype=torch.bool, device=embeddings.device)
    positives = same & ~eye & anchor_mask.unsqueeze(0)
    negatives = ~same if negative_mask is None else negative_mask & ~same
    valid = anchor_mask & positives.any(dim=1) & negatives.any(dim=1)
    if not bool(valid.any()):
        return embeddings.sum() * 0.0  # keeps the graph; nothing to learn from this batch
    masked = torch.full_like(distances, float("-inf"))
    smooth_positive = torch.logsumexp(torch.where(positives, scale * distances, masked), dim=1) / scale
    smooth_negative = -torch.logsumexp(torch.where(negatives, -scale * distances, masked), dim=1) / scale
    losses = F.relu(smooth_positive - smooth_negative + margin)
    return losses[valid].mean()


def skilled_cotuplet_loss(
    embeddings: torch.Tensor,
    identities: torch.Tensor,
    genuine: torch.Tensor,
    writers: int,
    margin: float,
    scale: float = 10.0,
) -> torch.Tensor:
    """The co-tuplet loss whose negatives are only the anchor writer's own skilled (or pseudo)
    forgeries, identity ``writer + writers``: the term that sits beside CosFace."""
    own_forgeries = identities.unsqueeze(0) == (identities.unsqueeze(1) + writers)
    return cotuplet_loss(embeddings, identities, genuine, margin, scale, negative_mask=own_forgeries)

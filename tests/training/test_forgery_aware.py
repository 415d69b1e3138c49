"""Forgery-aware training settings: pseudo skilled forgeries and the co-tuplet term."""

from __future__ import annotations

import numpy as np
import pytest

from inkproof.training.config import TrainConfig
from inkproof.training.data import BankDataset, WriterIndex, epoch_rng, make_augmenter, mirrored, sample_triplet_batches
from inkproof.training.pseudo_forgery import make_pseudo_forger

WRITERS = (
    WriterIndex("a", (0, 1, 2, 3), (4, 5)),
    WriterIndex("b", (6, 7, 8, 9), (10, 11)),
    WriterIndex("c", (12, 13, 14), ()),
)


def _batches(batches: int, **options: int) -> list[np.ndarray]:
    """Batches of 3 writers x 2 genuine signatures + 1 forgery each, from one fixed stream."""
    return sample_triplet_batches(
        WRITERS,
        batches=batches,
        writers_per_batch=3,
        samples_per_writer=2,
        forgeries_per_writer=1,
        rng=epoch_rng(0, 1),
        **options,
    )


def test_pseudo_forgeries_are_a_writers_genuine_images_labelled_as_its_forgeries() -> None:
    batches = _batches(4, pseudo_forgeries_per_writer=2)
    for batch in batches:
        pseudo = batch[batch[:, 3] == 1]
        assert len(pseudo) == 2 * len(WRITERS)  # writer c has no real forgeries but gets pseudo ones
        for image, identity, genuine, *_ in pseudo:
            writer = WRITERS[identity - len(WRITERS)]
            assert image in writer.genuine and genuine == 0
        real = batch[batch[:, 3] == 0]
        assert len(real) == 3 * 2 + 2 * 1
    plain = _batches(1)
    assert not plain[0][:, 3].any()


def _signature() -> np.ndarray:
    image = np.zeros((48, 96), dtype=np.uint8)
    image[20:24, 10:86] = 255
    image[10:38, 40:44] = 255
    return image


def test_pseudo_forger_distorts_but_keeps_the_signature() -> None:
    image = _signature()
    forged = make_pseudo_forger(0)(image=image)["image"]
    assert forged.shape == image.shape and forged.dtype == np.uint8
    ink, forged_ink = image > 127, forged > 127
    overlap = (ink & forged_ink).sum() / (ink | forged_ink).sum()
    assert 0.0 < overlap < 0.9  # moved and reshaped, not erased
    assert forged_ink.sum() > 0.3 * ink.sum()


def test_loader_forges_only_flagged_rows() -> None:
    bank = np.stack([_signature(), _signature()])
    rows = np.array([[0, 0, 1], [1, 2, 0]])
    dataset = BankDataset(
        bank, rows, image_columns=1, augment=None, pseudo=np.array([False, True]), forge=make_pseudo_forger(1)
    )
    clean, forged = dataset[0][0], dataset[1][0]
    assert np.array_equal(clean.numpy()[0], bank[0] / 255.0)
    assert not np.array_equal(forged.numpy()[0], bank[1] / 255.0)
    with pytest.raises(ValueError, match="forge"):
        BankDataset(bank, rows, image_columns=1, augment=None, pseudo=np.array([False, True]))


def test_config_validates_the_forgery_aware_settings() -> None:
    config = TrainConfig(model="compact", loss="cosface", skilled_weight=1.0, skilled_term="cotuplet")
    assert config.skilled_term == "cotuplet"
    assert TrainConfig(model="ms-compact", loss="cotuplet").loss == "cotuplet"
    with pytest.raises(ValueError, match="skilled_term"):
        TrainConfig(model="compact", loss="cosface", skilled_term="quadruplet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cotuplet_scale"):
        TrainConfig(model="compact", loss="cosface", cotuplet_scale=0.0)
    with pytest.raises(ValueError, match="pseudo"):
        TrainConfig(model="compact", loss="cosface", pseudo_forgeries_per_writer=-1)
    with pytest.raises(ValueError, match="cotuplet"):
        TrainConfig(model="siamese-resnet18", loss="cotuplet")


def test_mirrored_writers_are_writers_of_their_own_with_mirrored_forgeries() -> None:
    def draw(mirrors: int) -> list[np.ndarray]:
        return _batches(30, mirrors=mirrors)

    # Without mirrors no row is mirrored.
    assert all(not batch[:, 4].any() for batch in draw(1))
    seen = set()
    for batch in draw(4):
        for image, identity, genuine, _, mirror in batch:
            seen.add((int(identity), int(mirror)))
            offset = 0 if genuine else 4 * len(WRITERS)  # forgeries: after every genuine identity
            writer, expected_mirror = (identity - offset) % len(WRITERS), (identity - offset) // len(WRITERS)
            assert mirror == expected_mirror
            assert image in (WRITERS[writer].genuine if genuine else WRITERS[writer].forged)
    assert {mirror for _, mirror in seen} == {0, 1, 2, 3}
    assert len({identity for identity, _ in seen}) > 2 * len(WRITERS)
    with pytest.raises(ValueError, match="mirrors"):
        draw(3)


def test_loader_mirrors_each_row_as_flagged() -> None:
    image = _signature()
    image[0, 0] = 7  # a corner to follow
    bank = np.stack([image] * 4)
    rows = np.array([[0, 0, 1], [1, 1, 1], [2, 2, 1], [3, 3, 1]])
    dataset = BankDataset(bank, rows, image_columns=1, augment=None, mirror=np.array([0, 1, 2, 3]))
    corners = [dataset[i][0].numpy()[0] for i in range(4)]
    assert corners[0][0, 0] * 255 == 7 and corners[1][0, -1] * 255 == 7
    assert corners[2][-1, 0] * 255 == 7 and corners[3][-1, -1] * 255 == 7
    assert np.array_equal(mirrored(mirrored(image, 3), 3), image)
    augmented = BankDataset(bank, rows, image_columns=1, augment=make_augmenter(0), mirror=np.array([0, 1, 2, 3]))
    assert all(augmented[i][0].shape == (1, *image.shape) for i in range(4))


def test_config_checks_mirrored_writers() -> None:
    assert TrainConfig(model="ms-compact", loss="cosface", mirrored_writers=4).mirrored_writers == 4
    with pytest.raises(ValueError, match="mirrored_writers"):
        TrainConfig(model="ms-compact", loss="cosface", mirrored_writers=3)
    with pytest.raises(ValueError, match="identity losses"):
        TrainConfig(model="siamese-resnet18", loss="bce", mirrored_writers=2)

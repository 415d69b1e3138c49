"""Training data: per-epoch pair and triplet sampling over an image bank, and augmentation.

Images come from :mod:`inkproof.data.bank` (preprocessed once, the same function as inference).
Sampling for epoch ``e`` draws from a generator seeded by
``(seed, e)`` only, so an interrupted run that resumes at epoch ``e`` sees exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from inkproof.data.records import SignatureDataset


@dataclass(frozen=True)
class WriterIndex:
    """Indices into the image bank of one writer's genuine and forged signatures."""

    writer: str
    genuine: tuple[int, ...]
    forged: tuple[int, ...]


@dataclass(frozen=True)
class Selection:
    """The images of some writers, with their positions in the bank."""

    dataset: SignatureDataset
    paths: tuple[Path, ...]
    writers: tuple[WriterIndex, ...]
    same_instance: frozenset[frozenset[int]]  # bank positions of listed re-scans of one signature

    @classmethod
    def of(cls, dataset: SignatureDataset, writers: Sequence[str]) -> Selection:
        chosen = dataset.subset(writers)
        paths: list[Path] = []
        groups = []
        for writer, samples in chosen.by_writer().items():
            start = len(paths)
            paths += [r.path for r in samples.genuine]
            middle = len(paths)
            paths += [r.path for r in samples.forged]
            groups.append(WriterIndex(writer, tuple(range(start, middle)), tuple(range(middle, len(paths)))))
        position = {path: i for i, path in enumerate(paths)}
        same = frozenset(
            frozenset((position[a], position[b])) for a, b in chosen.near_duplicates if a in position and b in position
        )
        return cls(chosen, tuple(paths), tuple(groups), same)

    def index_of(self) -> dict[Path, int]:
        return {path: i for i, path in enumerate(self.paths)}


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def sample_pairs(
    writers: Sequence[WriterIndex],
    count: int,
    mix: tuple[float, float, float],
    rng: np.random.Generator,
    same_instance: frozenset[frozenset[int]] = frozenset(),
) -> np.ndarray:
    """(count, 3) int array of (index_a, index_b, target): genuine, skilled and random pairs
    drawn in the proportions of ``mix``. Re-scans of one signature never form a genuine pair."""
    usable = [w for w in writers if len(w.genuine) >= 2]
    # Writers whose genuine signatures are all re-scans of one another cannot give a genuine pair.
    pairable = [w for w in usable if _has_distinct_pair(w.genuine, same_instance)]
    with_forgeries = [w for w in usable if w.forged]
    weights = np.array(mix, dtype=np.float64)
    if not with_forgeries:
        weights[1] = 0.0
    if len(usable) < 2:
        weights[2] = 0.0
    if not pairable:
        weights[0] = 0.0
    if not usable or weights.sum() == 0:
        raise ValueError("not enough writers with two or more genuine signatures to form training pairs")
    kinds = rng.choice(3, size=count, p=weights / weights.sum())
    rows = np.zeros((count, 3), dtype=np.int64)
    for i, kind in enumerate(kinds):
        if kind == 1:
            writer = with_forgeries[rng.integers(len(with_forgeries))]
            rows[i] = (
                writer.genuine[rng.integers(len(writer.genuine))],
                writer.forged[rng.integers(len(writer.forged))],
                0,
            )
            continue
        if kind == 0:
            writer = pairable[rng.integers(len(pairable))]
            while True:
                a, b = rng.choice(writer.genuine, size=2, replace=False)
                if frozenset((int(a), int(b))) not in same_instance:
                    break
            rows[i] = (a, b, 1)
        else:
            writer = usable[rng.integers(len(usable))]
            other = usable[rng.integers(len(usable))]
            while other.writer == writer.writer:
                other = usable[rng.integers(len(usable))]
            rows[i] = (
                writer.genuine[rng.integers(len(writer.genuine))],
                other.genuine[rng.integers(len(other.genuine))],
                0,
            )
    return rows


def _has_distinct_pair(indices: Sequence[int], same_instance: frozenset[frozenset[int]]) -> bool:
    return any(frozenset((a, b)) not in same_instance for k, a in enumerate(indices) for b in indices[k + 1 :])


def sample_triplet_batches(
    writers: Sequence[WriterIndex],
    *,
    batches: int,
    writers_per_batch: int,
    samples_per_writer: int,
    forgeries_per_writer: int,
    rng: np.random.Generator,
    pseudo_forgeries_per_writer: int = 0,
    mirrors: int = 1,
) -> list[np.ndarray]:
    """Batches for batch-hard triplet mining: P writers x K genuine signatures, plus up to F of
    each writer's skilled forgeries. Each row is (image index, identity, is_genuine, is_pseudo,
    mirror); a writer's forgeries share an identity of their own (offset by the number of
    identities of genuine writers). ``pseudo_forgeries_per_writer`` adds rows of the writer's
    genuine images flagged ``is_pseudo``: the loader distorts them into pseudo forgeries, labelled
    as the writer's forgeries.

    ``mirrors`` > 1 adds mirrored copies of every writer as writers of their own (identity
    augmentation, :data:`MIRRORS`): the loader flips every image of mirrored writer ``m`` the same
    way, its forgeries included. Identity of writer ``w`` in mirror ``m``: ``m * W + w`` for its
    genuine signatures, ``mirrors * W`` more for its forgeries (``W`` = ``len(writers)``).
    """
    if mirrors not in (1, 2, 4):
        raise ValueError(f"mirrors must be 1, 2 or 4, got {mirrors}")
    usable = [i for i, w in enumerate(writers) if len(w.genuine) >= 2]
    if len(usable) < 2:
        raise ValueError("triplet batches need at least two writers with two or more genuine signatures")
    # With one mirror this is ``usable`` itself, so the draws are those of a run without mirrors.
    identities = [position * mirrors + mirror for position in usable for mirror in range(mirrors)]
    per_batch = min(writers_per_batch, len(identities))
    forged_offset = mirrors * len(writers)
    result = []
    for _ in range(batches):
        rows = []
        for chosen in rng.choice(identities, size=per_batch, replace=False):
            position, mirror = divmod(int(chosen), mirrors)
            writer = writers[position]
            genuine_id = mirror * len(writers) + position
            take = min(samples_per_writer, len(writer.genuine))
            rows += [(int(i), genuine_id, 1, 0, mirror) for i in rng.choice(writer.genuine, size=take, replace=False)]
            if writer.forged and forgeries_per_writer:
                take = min(forgeries_per_writer, len(writer.forged))
                forged = rng.choice(writer.forged, size=take, replace=False)
                rows += [(int(i), genuine_id + forged_offset, 0, 0, mirror) for i in forged]
            if pseudo_forgeries_per_writer:
                take = min(pseudo_forgeries_per_writer, len(writer.genuine))
                source = rng.choice(writer.genuine, size=take, replace=False)
                rows += [(int(i), genuine_id + forged_offset, 0, 1, mirror) for i in source]
        result.append(np.array(rows, dtype=np.int64))
    return result


#: The mirror images a training writer may appear as (index = the ``mirror`` of a batch row): as
#: written, flipped left to right, upside down, and both. A mirrored signature is written by no
#: one, but its genuine samples vary as the writer's do and its forgeries differ from them as the
#: writer's forgeries do, so it adds a writer to learn from (identity augmentation).
MIRRORS = ("none", "left-right", "upside-down", "both")


def mirrored(image: np.ndarray, mirror: int) -> np.ndarray:
    """``image`` as mirrored writer ``mirror`` (:data:`MIRRORS`) writes it."""
    if mirror == 0:
        return image
    if mirror not in (1, 2, 3):
        raise ValueError(f"mirror must be 0-3, got {mirror}")
    flipped = image[:, ::-1] if mirror == 1 else image[::-1, :] if mirror == 2 else image[::-1, ::-1]
    return np.ascontiguousarray(flipped)  # a plain array for the forger and augmentation that follow


def make_augmenter(seed: int) -> Any:
    """Training-only augmentation of preprocessed signatures (ink bright on a black background):
    small rotation/scale/shear/shift, elastic distortion, stroke-width jitter and light noise."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations as A

    return A.Compose(
        [
            A.Affine(rotate=(-5, 5), scale=(0.9, 1.1), translate_percent=(-0.04, 0.04), shear=(-6, 6), p=0.8),
            A.ElasticTransform(alpha=15, sigma=5, p=0.25),
            A.OneOf(
                [
                    A.Morphological(scale=(1, 2), operation="dilation"),
                    A.Morphological(scale=(1, 2), operation="erosion"),
                ],
                p=0.3,
            ),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.15),
        ],
        seed=seed,
    )


class BankDataset(Dataset[tuple[torch.Tensor, ...]]):
    """Items from the uint8 bank as float tensors (1, H, W) in [0, 1], augmented if asked.

    ``rows`` is an int array whose first ``image_columns`` columns index the bank and whose other
    columns are passed through (targets, identities). Rows where ``pseudo`` is true are passed
    through ``forge`` (a pseudo skilled forgery) before the augmentation.
    """

    def __init__(
        self,
        bank: np.ndarray,
        rows: np.ndarray,
        *,
        image_columns: int,
        augment: Any | None,
        pseudo: np.ndarray | None = None,
        forge: Any | None = None,
        mirror: np.ndarray | None = None,
    ) -> None:
        if pseudo is not None and pseudo.any() and forge is None:
            raise ValueError("rows are flagged as pseudo forgeries but no forge transform was given")
        self.bank = bank
        self.rows = rows
        self.image_columns = image_columns
        self.augment = augment
        self.pseudo = pseudo
        self.forge = forge
        self.mirror = mirror

    def __len__(self) -> int:
        return len(self.rows)

    def _image(self, index: int, forge: bool = False, mirror: int = 0) -> torch.Tensor:
        image = mirrored(self.bank[index], mirror)
        if forge and self.forge is not None:
            image = self.forge(image=image)["image"]
        if self.augment is not None:
            image = self.augment(image=image)["image"]
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32) / 255.0).unsqueeze(0)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        row = self.rows[item]
        forge = bool(self.pseudo[item]) if self.pseudo is not None else False
        mirror = int(self.mirror[item]) if self.mirror is not None else 0
        images = tuple(self._image(int(i), forge, mirror) for i in row[: self.image_columns])
        extras = tuple(torch.tensor(int(v)) for v in row[self.image_columns :])
        return (*images, *extras)


def seed_worker(worker_id: int) -> None:
    """Give each data-loader worker its own, reproducible augmentation stream."""
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    seed = int(torch.initial_seed() % (2**31))
    dataset = info.dataset
    if isinstance(dataset, BankDataset) and dataset.augment is not None:
        dataset.augment.set_random_seed(seed)
    if isinstance(dataset, BankDataset) and dataset.forge is not None:
        dataset.forge.set_random_seed(seed + 1)
    np.random.seed(seed)  # noqa: NPY002 - seeds the legacy global RNG other libraries use

"""Writer-disjoint splits and stratified subsets.

Writer-independent evaluation needs train, validation and test writers that never overlap:
models and thresholds are chosen on validation writers and reported on test writers. A split is
saved as a JSON manifest that later commands (training, evaluation) read back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inkproof.atomic import write_json_atomic
from inkproof.data.pairs import PairSet
from inkproof.data.records import SignatureDataset, writer_sort_key
from inkproof.errors import SplitError, UnknownWriterError

Role = Literal["train", "validation", "test"]
ROLES: tuple[Role, ...] = ("train", "validation", "test")
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class WriterSplit:
    """Disjoint writer lists for training, validation and test."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]
    dataset: str = ""
    seed: int | None = None
    fractions: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for role in ROLES:
            members = getattr(self, role)
            if len(set(members)) != len(members):
                raise SplitError(f"{role} lists a writer twice")
            for writer in members:
                if writer in seen:
                    raise SplitError(f"writer {writer!r} is in both {seen[writer]} and {role}")
                seen[writer] = role
            object.__setattr__(self, role, tuple(sorted(members, key=writer_sort_key)))

    def writers(self, role: Role) -> tuple[str, ...]:
        if role not in ROLES:
            raise SplitError(f"unknown role {role!r}; expected one of {ROLES}")
        members: tuple[str, ...] = getattr(self, role)
        return members

    def role_of(self, writer: str) -> Role:
        for role in ROLES:
            if writer in getattr(self, role):
                return role
        raise UnknownWriterError(writer)

    def check_against(self, dataset: SignatureDataset) -> None:
        """Every writer of the split must exist in ``dataset``."""
        known = set(dataset.writers())
        for role in ROLES:
            for writer in getattr(self, role):
                if writer not in known:
                    raise UnknownWriterError(writer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "dataset": self.dataset,
            "seed": self.seed,
            "fractions": list(self.fractions) if self.fractions else None,
            "train": list(self.train),
            "validation": list(self.validation),
            "test": list(self.test),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WriterSplit:
        try:
            fractions = data.get("fractions")
            return cls(
                train=tuple(str(w) for w in data["train"]),
                validation=tuple(str(w) for w in data["validation"]),
                test=tuple(str(w) for w in data["test"]),
                dataset=str(data.get("dataset", "")),
                seed=data.get("seed"),
                fractions=(float(fractions[0]), float(fractions[1]), float(fractions[2])) if fractions else None,
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise SplitError(f"not a split manifest: missing or malformed {exc}") from None

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> WriterSplit:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SplitError(f"cannot read split manifest {path}: {exc}") from None
        return cls.from_dict(data)


def split_writers(
    writers: Iterable[str],
    *,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    dataset: str = "",
) -> WriterSplit:
    """Shuffle ``writers`` with ``seed`` and cut them by ``fractions`` (train, validation, test).

    Every role with a non-zero fraction gets at least one writer.
    """
    ordered = sorted(set(writers), key=writer_sort_key)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise SplitError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    needed = sum(1 for f in fractions if f > 0)
    if len(ordered) < needed:
        raise SplitError(f"{len(ordered)} writer(s) cannot fill {needed} non-empty roles")
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    sizes = _allocate(len(ordered), fractions)
    cut_train, cut_validation = sizes[0], sizes[0] + sizes[1]
    return WriterSplit(
        train=tuple(shuffled[:cut_train]),
        validation=tuple(shuffled[cut_train:cut_validation]),
        test=tuple(shuffled[cut_validation:]),
        dataset=dataset,
        seed=seed,
        fractions=(float(fractions[0]), float(fractions[1]), float(fractions[2])),
    )


def _allocate(total: int, fractions: Sequence[float]) -> list[int]:
    """Integer role sizes summing to ``total``: largest remainders, at least one per used role."""
    raw = [total * f for f in fractions]
    sizes = [int(np.floor(r)) for r in raw]
    for i in sorted(range(3), key=lambda i: raw[i] - sizes[i], reverse=True)[: total - sum(sizes)]:
        sizes[i] += 1
    for i in range(3):
        if fractions[i] > 0 and sizes[i] == 0:
            donor = max(range(3), key=lambda j: sizes[j])
            sizes[donor] -= 1
            sizes[i] += 1
    return sizes


def kfold_writers(
    writers: Iterable[str],
    *,
    folds: int = 5,
    validation_fraction: float = 0.15,
    seed: int = 0,
    dataset: str = "",
) -> list[WriterSplit]:
    """Writer-disjoint k-fold: each fold tests one block of writers; validation writers are
    drawn from the remaining ones (so thresholds are never chosen on the fold's test writers)."""
    ordered = sorted(set(writers), key=writer_sort_key)
    if folds < 2 or len(ordered) < folds + 2:
        raise SplitError(f"{len(ordered)} writers cannot make {folds} folds with validation writers")
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    blocks = np.array_split(np.arange(len(shuffled)), folds)
    splits = []
    for fold, block in enumerate(blocks):
        test = [shuffled[i] for i in block]
        rest = [w for w in shuffled if w not in set(test)]
        n_validation = max(1, round(len(rest) * validation_fraction))
        splits.append(
            WriterSplit(
                train=tuple(rest[n_validation:]),
                validation=tuple(rest[:n_validation]),
                test=tuple(test),
                dataset=f"{dataset}#fold{fold}" if dataset else f"fold{fold}",
                seed=seed,
            )
        )
    return splits


def subset_writers(
    dataset: SignatureDataset, *, fraction: float | None = None, count: int | None = None, seed: int = 0
) -> SignatureDataset:
    """A random subset of whole writers (each keeps all its genuine and forged samples, so the
    genuine/forged ratio of the dataset is preserved writer by writer)."""
    writers = dataset.writers()
    n = _subset_size(len(writers), fraction, count)
    chosen = np.sort(np.random.default_rng(seed).choice(len(writers), size=n, replace=False))
    return dataset.subset([writers[i] for i in chosen], name=f"{dataset.name}-subset")


def subset_pairs(pairs: PairSet, *, fraction: float | None = None, count: int | None = None, seed: int = 0) -> PairSet:
    """A stratified random subset of pairs: each kind (genuine, skilled, random, unknown) keeps
    its share, so the genuine/forgery ratio is preserved."""
    n = _subset_size(len(pairs), fraction, count)
    rng = np.random.default_rng(seed)
    by_kind: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs.pairs):
        by_kind.setdefault(pair.kind, []).append(i)
    exact = {kind: n * len(members) / len(pairs) for kind, members in by_kind.items()}
    quotas = {kind: int(np.floor(value)) for kind, value in exact.items()}
    for kind in sorted(exact, key=lambda k: exact[k] - quotas[k], reverse=True)[: n - sum(quotas.values())]:
        quotas[kind] += 1
    keep: set[int] = set()
    for kind in sorted(by_kind):
        members = by_kind[kind]
        keep |= set(rng.choice(members, size=min(quotas[kind], len(members)), replace=False).tolist())
    return PairSet(tuple(p for i, p in enumerate(pairs.pairs) if i in keep), pairs.root)


def _subset_size(total: int, fraction: float | None, count: int | None) -> int:
    if (fraction is None) == (count is None):
        raise ValueError("give exactly one of fraction or count")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        return max(1, round(total * fraction))
    assert count is not None
    if not 0 < count <= total:
        raise ValueError(f"count must be in 1..{total}, got {count}")
    return count

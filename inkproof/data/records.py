"""Signature records and datasets: paths and labels only; pixels load on demand."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inkproof.errors import EmptyDatasetError, UnknownWriterError

Label = Literal["genuine", "forged"]


def writer_sort_key(writer: str) -> tuple[Any, ...]:
    """Natural order: "2" before "10", "W2" before "W10"."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", writer))


def normalise_writer_id(raw: str) -> str:
    """Purely numeric ids lose leading zeros ("007" -> "7") so adapters agree on one spelling."""
    return str(int(raw)) if raw.isdigit() else raw


@dataclass(frozen=True, order=True)
class SignatureRecord:
    """One signature image.

    ``writer`` is the identity the signature shows: its author for a genuine signature, the
    imitated person for a forgery. ``forger`` is set only when the dataset names the forger.
    """

    writer: str
    label: Label
    path: Path
    sample: int | None = None
    forger: str | None = None

    @property
    def is_genuine(self) -> bool:
        return self.label == "genuine"


@dataclass(frozen=True)
class WriterSamples:
    writer: str
    genuine: tuple[SignatureRecord, ...]
    forged: tuple[SignatureRecord, ...]


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    format: str
    root: str
    writers: int
    genuine: int
    forged: int
    genuine_per_writer: tuple[int, int, float]  # min, max, median
    forged_per_writer: tuple[int, int, float]
    near_duplicate_pairs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "root": self.root,
            "writers": self.writers,
            "genuine": self.genuine,
            "forged": self.forged,
            "genuine_per_writer": dict(zip(("min", "max", "median"), self.genuine_per_writer, strict=True)),
            "forged_per_writer": dict(zip(("min", "max", "median"), self.forged_per_writer, strict=True)),
            "near_duplicate_pairs": self.near_duplicate_pairs,
        }


def _count_stats(counts: Sequence[int]) -> tuple[int, int, float]:
    if not counts:
        return (0, 0, 0.0)
    return (min(counts), max(counts), float(statistics.median(counts)))


@dataclass(frozen=True)
class SignatureDataset:
    """Records of one dataset, sorted by (writer, label, path) so iteration order is stable.

    ``near_duplicates`` holds ``(kept, copy)`` pairs of different files that show the same
    physical signature (re-scans, re-crops); pair generation never treats such a pair as two
    genuine samples, and :meth:`without_near_duplicates` drops each ``copy``.
    """

    name: str
    root: Path
    format: str
    records: tuple[SignatureRecord, ...]
    near_duplicates: frozenset[tuple[Path, Path]] = field(default_factory=frozenset)
    _same_instance: frozenset[frozenset[Path]] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        ordered = tuple(
            sorted(self.records, key=lambda r: (writer_sort_key(r.writer), r.label, writer_sort_key(str(r.path))))
        )
        object.__setattr__(self, "records", ordered)
        object.__setattr__(self, "_same_instance", frozenset(frozenset(p) for p in self.near_duplicates))

    def __len__(self) -> int:
        return len(self.records)

    def writers(self) -> tuple[str, ...]:
        return tuple(sorted({r.writer for r in self.records}, key=writer_sort_key))

    def by_writer(self) -> dict[str, WriterSamples]:
        grouped: dict[str, tuple[list[SignatureRecord], list[SignatureRecord]]] = {}
        for record in self.records:
            genuine, forged = grouped.setdefault(record.writer, ([], []))
            (genuine if record.is_genuine else forged).append(record)
        return {
            writer: WriterSamples(writer, tuple(genuine), tuple(forged))
            for writer, (genuine, forged) in grouped.items()
        }

    def samples_of(self, writer: str) -> WriterSamples:
        samples = self.by_writer().get(writer)
        if samples is None:
            raise UnknownWriterError(writer)
        return samples

    def subset(self, writers: Iterable[str], *, name: str | None = None) -> SignatureDataset:
        """The records of ``writers`` only; unknown writers raise :class:`UnknownWriterError`."""
        wanted = set(writers)
        missing = wanted - set(self.writers())
        if missing:
            raise UnknownWriterError(sorted(missing, key=writer_sort_key)[0])
        kept = tuple(r for r in self.records if r.writer in wanted)
        kept_paths = {r.path for r in kept}
        duplicates = frozenset(pair for pair in self.near_duplicates if set(pair) <= kept_paths)
        return SignatureDataset(name or self.name, self.root, self.format, kept, duplicates)

    def is_same_instance(self, a: Path, b: Path) -> bool:
        """True when ``a`` and ``b`` are the same file or listed re-scans of one signature."""
        return a == b or frozenset((a, b)) in self._same_instance

    def without_near_duplicates(self) -> SignatureDataset:
        """One file per physical signature: the copy in each near-duplicate pair is dropped."""
        drop = {copy for _, copy in self.near_duplicates}
        kept = tuple(r for r in self.records if r.path not in drop)
        return SignatureDataset(self.name, self.root, self.format, kept, frozenset())

    def require_nonempty(self) -> SignatureDataset:
        if not self.records:
            raise EmptyDatasetError(f"dataset {self.name!r} at {self.root} holds no signatures")
        return self

    def summary(self) -> DatasetSummary:
        groups = self.by_writer().values()
        return DatasetSummary(
            name=self.name,
            format=self.format,
            root=str(self.root),
            writers=len(groups),
            genuine=sum(len(g.genuine) for g in groups),
            forged=sum(len(g.forged) for g in groups),
            genuine_per_writer=_count_stats([len(g.genuine) for g in groups]),
            forged_per_writer=_count_stats([len(g.forged) for g in groups]),
            near_duplicate_pairs=len(self.near_duplicates),
        )


def combine_datasets(datasets: Sequence[SignatureDataset]) -> SignatureDataset:
    """One dataset from several; writer ids become ``<dataset>/<writer>`` so they stay distinct."""
    if not datasets:
        raise EmptyDatasetError("no datasets to combine")
    if len(datasets) == 1:
        return datasets[0]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"datasets to combine need distinct names, got {names}")
    records = tuple(
        SignatureRecord(f"{d.name}/{r.writer}", r.label, r.path, r.sample, f"{d.name}/{r.forger}" if r.forger else None)
        for d in datasets
        for r in d.records
    )
    duplicates = frozenset(pair for d in datasets for pair in d.near_duplicates)
    return SignatureDataset("+".join(names), datasets[0].root, "combined", records, duplicates)

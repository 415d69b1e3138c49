"""Manifests of batch jobs: pairs or images (CSV or Parquet) with absolute paths and a digest."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inkproof.batch.common import BatchJobError, file_digest, pyarrow_modules


@dataclass(frozen=True)
class Manifest:
    """The pairs (reference, query, label, kind) or images of a manifest, with absolute paths."""

    references: tuple[str, ...]
    queries: tuple[str, ...]
    labels: tuple[int, ...]
    kinds: tuple[str, ...]
    digest: str

    @property
    def images(self) -> list[str]:
        """Distinct images in order of first appearance."""
        return list(dict.fromkeys(p for pair in zip(self.references, self.queries, strict=True) for p in pair))


def read_manifest(path: str | Path, *, root: str | Path | None = None, images_only: bool = False) -> Manifest:
    """Pairs from a pair CSV/text file (as ``verify --pairs`` reads it) or a Parquet file with
    ``reference``, ``query`` and optional ``label``, ``kind`` columns; with ``images_only`` also a
    one-column list of images (CSV or Parquet column ``image``). Relative paths start at ``root``
    (default: the manifest's folder)."""
    source = Path(path)
    if not source.is_file():
        raise BatchJobError(f"manifest {source} not found")
    base = Path(root).resolve() if root is not None else source.resolve().parent
    digest = file_digest(source)

    def resolve(value: str) -> str:
        return str((base / value).resolve()) if not os.path.isabs(value) else value

    if source.suffix.lower() == ".parquet":
        _, pq = pyarrow_modules()
        table = pq.read_table(source)
        columns = set(table.column_names)
        if images_only and "image" in columns:
            images = [resolve(str(v)) for v in table.column("image").to_pylist()]
            return Manifest(tuple(images), tuple(images), (), (), digest)
        if not {"reference", "query"} <= columns:
            raise BatchJobError(f"{source}: a Parquet manifest needs columns reference and query (or image)")
        references = [resolve(str(v)) for v in table.column("reference").to_pylist()]
        queries = [resolve(str(v)) for v in table.column("query").to_pylist()]
        n = len(references)
        labels = [int(v) for v in table.column("label").to_pylist()] if "label" in columns else [-1] * n
        kinds = [str(v) for v in table.column("kind").to_pylist()] if "kind" in columns else ["unknown"] * n
        return Manifest(tuple(references), tuple(queries), tuple(labels), tuple(kinds), digest)
    if images_only:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and row[0].strip()]
        if rows and len(rows[0]) == 1:  # a list of images, with or without an "image" header
            values = [row[0].strip() for row in rows if row[0].strip().lower() != "image"]
            images = [resolve(v) for v in values]
            return Manifest(tuple(images), tuple(images), (), (), digest)
    from inkproof.data.pairs import read_pair_file
    from inkproof.errors import DatasetFormatError, EmptyDatasetError

    try:
        pairs = read_pair_file(source, root=base).pairs
    except (DatasetFormatError, EmptyDatasetError) as exc:
        raise BatchJobError(str(exc)) from None
    return Manifest(
        tuple(str(p.reference) for p in pairs),
        tuple(str(p.query) for p in pairs),
        tuple(int(p.label) for p in pairs),
        tuple(str(p.kind) for p in pairs),
        digest,
    )


def write_synthetic_manifest(path: str | Path, images: Sequence[str | Path], pairs: int, seed: int = 0) -> Path:
    """A pair CSV of ``pairs`` random pairs over ``images`` (labels random): for throughput tests."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(images), size=(pairs, 2))
    labels = rng.integers(0, 2, size=pairs)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["img1", "img2", "label"])
        for (a, b), label in zip(chosen, labels, strict=True):
            writer.writerow([str(images[a]), str(images[b]), int(label)])
    temporary.replace(target)
    return target


__all__ = ["Manifest", "read_manifest", "write_synthetic_manifest"]

"""Manifests of batch jobs: pairs or images (CSV or Parquet) with absolute paths and a digest."""

from __future__ import annotations

import csv
import hashlib
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
        columns = _parquet_columns(source)
        if images_only and "image" in columns:
            images = [resolve(str(v)) for v in columns["image"]]
            return Manifest(tuple(images), tuple(images), (), (), digest)
        if not {"reference", "query"} <= set(columns):
            raise BatchJobError(f"{source}: a Parquet manifest needs columns reference and query (or image)")
        references = [resolve(str(v)) for v in columns["reference"]]
        queries = [resolve(str(v)) for v in columns["query"]]
        n = len(references)
        labels = [_label(v, f"{source} row {i + 1}") for i, v in enumerate(columns.get("label", [None] * n))]
        kinds = [str(v) for v in columns["kind"]] if "kind" in columns else ["unknown"] * n
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


def _parquet_columns(source: Path) -> dict[str, list[object]]:
    """Every column of a Parquet manifest by its (stripped) name."""
    _, pq = pyarrow_modules()
    try:
        table = pq.read_table(source)
    except Exception as exc:  # pyarrow's errors for a file that is not Parquet vary
        raise BatchJobError(f"{source}: not a readable Parquet file ({exc})") from None
    return {name.strip(): table.column(name).to_pylist() for name in table.column_names}


def _header_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> dict[str, list[object]]:
    """The columns of CSV rows under ``header`` (stripped names); short rows read as empty cells."""
    names = [name.strip() for name in header]
    return {name: [row[i] if i < len(row) else "" for row in rows] for i, name in enumerate(names)}


@dataclass(frozen=True)
class ClaimsManifest:
    """Claims of a manifest: the claimed writer's external id and the query image (absolute path)
    of each row, its label (1 genuine, 0 forgery, -1 unknown) and kind, in manifest order."""

    writers: tuple[str, ...]
    queries: tuple[str, ...]
    labels: tuple[int, ...]
    kinds: tuple[str, ...]
    digest: str
    root: str  # the folder relative query paths start at


CLAIMS_REQUIRED = ("writer", "query")
_LABELS = {1.0: 1, 0.0: 0, -1.0: -1}


def _label(value: object, where: str) -> int:
    text = "" if value is None else str(value).strip()
    if not text:
        return -1
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number not in _LABELS:
        raise BatchJobError(f"{where}: label must be 1 (genuine), 0 (forgery) or -1 (unknown), got {text!r}")
    return _LABELS[number]


def read_claims_manifest(path: str | Path, *, root: str | Path | None = None) -> ClaimsManifest:
    """Claims from a CSV file with a header row, or a Parquet file: columns ``writer`` and
    ``query``, optional ``label`` and ``kind`` (other columns are ignored). Relative query paths
    start at ``root`` (default: the manifest's folder). A missing column, an empty file, an empty
    writer or query, or a label other than 1, 0, -1 (empty: -1) is a :class:`BatchJobError`."""
    source = Path(path)
    if not source.is_file():
        raise BatchJobError(f"manifest {source} not found")
    base = Path(root).resolve() if root is not None else source.resolve().parent
    columns: dict[str, list[object]]
    if source.suffix.lower() == ".parquet":
        columns = _parquet_columns(source)
    else:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = [row for row in reader if any(cell.strip() for cell in row)]
        if header is None:
            raise BatchJobError(f"{source}: empty file; a claims manifest starts with a header row (writer,query)")
        columns = _header_columns(header, rows)
    missing = [name for name in CLAIMS_REQUIRED if name not in columns]
    if missing:
        raise BatchJobError(
            f"{source}: no {' or '.join(missing)} column; a claims manifest has columns writer and query "
            f"(optional label, kind), found {', '.join(columns) or 'none'}"
        )
    count = len(columns["writer"])
    if count == 0:
        raise BatchJobError(f"{source}: no claims (the manifest has a header but no rows)")

    def cell(name: str, row: int) -> str:
        value = columns[name][row]
        text = "" if value is None else str(value).strip()
        if not text:
            raise BatchJobError(f"{source}: row {row + 1} has an empty {name}")
        return text

    def resolve(value: str) -> str:
        return value if os.path.isabs(value) else str((base / value).resolve())

    labels = columns.get("label")
    kinds = columns.get("kind")
    return ClaimsManifest(
        writers=tuple(cell("writer", i) for i in range(count)),
        queries=tuple(resolve(cell("query", i)) for i in range(count)),
        labels=tuple(-1 if labels is None else _label(labels[i], f"{source}: row {i + 1}") for i in range(count)),
        kinds=tuple(
            "unknown" if kinds is None or kinds[i] is None else (str(kinds[i]).strip() or "unknown")
            for i in range(count)
        ),
        digest=file_digest(source),
        root=str(base),
    )


@dataclass(frozen=True)
class DocumentsManifest:
    """Documents to index: each file's absolute path and the name it is stored under (its path
    relative to the folder or root), in manifest order."""

    paths: tuple[str, ...]
    names: tuple[str, ...]
    digest: str
    root: str


def _document_name(value: str, path: Path, base: Path) -> str:
    """The stored name of a manifest row without a name: its path as given when relative, the
    path relative to the root when an absolute path lies under it, else the absolute path (two
    files with one base name in different folders must not collide)."""
    if not os.path.isabs(value):
        return Path(value).as_posix()
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def read_documents_manifest(source: str | Path, *, root: str | Path | None = None) -> DocumentsManifest:
    """Documents from a folder (every PNG/JPEG/TIFF/PDF under it, as ``document index`` reads
    it), a CSV file (a ``document`` column, optional ``name``; or one path per line) or a Parquet
    file with those columns. Relative paths start at ``root`` (default: the manifest's folder) and
    are the stored names unless a ``name`` is given (absolute paths: relative to ``root`` when
    under it, else in full). The digest covers the listing, so a folder
    that gained or lost files is another job."""
    given = Path(source)
    if given.is_dir():
        from inkproof.store.documents import document_files

        files = document_files(given)
        if not files:
            raise BatchJobError(f"{given}: no PNG, JPEG, TIFF or PDF files in the folder")
        listing = "\n".join(name for _, name in files).encode("utf-8")
        return DocumentsManifest(
            tuple(str(path.resolve()) for path, _ in files),
            tuple(name for _, name in files),
            hashlib.sha256(listing).hexdigest(),
            str(given.resolve()),
        )
    if not given.is_file():
        raise BatchJobError(f"manifest {given} not found")
    base = Path(root).resolve() if root is not None else given.resolve().parent
    columns: dict[str, list[object]]
    if given.suffix.lower() == ".parquet":
        columns = _parquet_columns(given)
    else:
        with given.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
        header = [cell.strip() for cell in rows[0]] if rows else []
        if "document" in header:
            columns = _header_columns(header, rows[1:])
        elif rows and all(len(row) == 1 for row in rows):  # one path per line, no header
            columns = {"document": [row[0] for row in rows]}
        else:
            raise BatchJobError(
                f"{given}: a documents manifest has a document column (optional name), or one path a line"
            )
    if "document" not in columns:
        raise BatchJobError(f"{given}: no document column, found {', '.join(columns) or 'none'}")
    values = [("" if v is None else str(v).strip()) for v in columns["document"]]
    if not values:
        raise BatchJobError(f"{given}: no documents")
    names = columns.get("name")
    paths, stored = [], []
    for row, value in enumerate(values):
        if not value:
            raise BatchJobError(f"{given}: row {row + 1} has an empty document")
        path = Path(value) if os.path.isabs(value) else base / value
        name = "" if names is None or names[row] is None else str(names[row]).strip()
        paths.append(str(path.resolve()))
        stored.append(name or _document_name(value, path, base))
    return DocumentsManifest(tuple(paths), tuple(stored), file_digest(given), str(base))


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


__all__ = [
    "CLAIMS_REQUIRED",
    "ClaimsManifest",
    "DocumentsManifest",
    "Manifest",
    "read_claims_manifest",
    "read_documents_manifest",
    "read_manifest",
    "write_synthetic_manifest",
]

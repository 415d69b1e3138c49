"""Verification pairs: deterministic generation from a dataset, and pair files on disk.

A pair is (reference, query, label): label 1 when both are genuine signatures of the same
writer, 0 when the query is a forgery of the reference's writer. The kind of a forgery pair is
``skilled`` (a skilled forgery of that writer), ``random`` (another writer's genuine signature)
or ``unknown`` (a pair file that does not say).

Generation is deterministic for a seed: writers and samples are visited in sorted order and all
sampling draws from one seeded generator, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np

from inkproof.data.records import SignatureDataset, SignatureRecord
from inkproof.errors import DatasetFormatError, EmptyDatasetError
from inkproof.evaluation.metrics import PAIR_KINDS

PairKind = Literal["genuine", "skilled", "random", "unknown"]
CountSpec = int | Literal["all"]
CSV_HEADER = ("img1", "img2", "label", "kind", "writer")


@dataclass(frozen=True)
class SignaturePair:
    reference: Path
    query: Path
    label: int
    kind: PairKind
    writer: str | None = None

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise ValueError(f"pair label must be 0 or 1, got {self.label!r}")
        if self.kind not in PAIR_KINDS:
            raise ValueError(f"pair kind must be one of {PAIR_KINDS}, got {self.kind!r}")
        if (self.kind == "genuine") != (self.label == 1):
            raise ValueError(f"kind {self.kind!r} does not agree with label {self.label}")


@dataclass(frozen=True)
class PairSet:
    """Pairs plus the folder their relative paths are written against."""

    pairs: tuple[SignaturePair, ...]
    root: Path

    def __len__(self) -> int:
        return len(self.pairs)

    def counts(self) -> dict[str, int]:
        counted: Counter[str] = Counter(pair.kind for pair in self.pairs)
        return {kind: counted.get(kind, 0) for kind in PAIR_KINDS}

    def labels(self) -> np.ndarray:
        return np.array([pair.label for pair in self.pairs], dtype=np.int64)

    def images(self) -> list[Path]:
        """Every distinct image the pairs mention, sorted."""
        return sorted({p for pair in self.pairs for p in (pair.reference, pair.query)})


def make_pairs(
    dataset: SignatureDataset,
    *,
    seed: int = 0,
    writers: Iterable[str] | None = None,
    genuine: CountSpec = "all",
    skilled: CountSpec = "all",
    random: CountSpec | None = None,
    balanced: bool = False,
) -> PairSet:
    """Pairs for ``writers`` (default: all) of ``dataset``.

    Per writer: ``genuine`` genuine-genuine pairs (``"all"``: every unordered pair, e.g. 276 for
    24 signatures), ``skilled`` genuine-skilled pairs (``"all"``: every genuine x forgery, e.g.
    24 x 24), and ``random`` genuine-random pairs whose query is a genuine signature of another
    writer *of the same selection* (``None``: as many as that writer's skilled pairs). An int
    samples that many without replacement. A file is never paired with itself or with a listed
    re-scan of the same signature. ``balanced`` then subsamples the larger class so genuine and
    forgery pairs are equally many, keeping the skilled/random ratio.
    """
    selected = dataset.subset(writers) if writers is not None else dataset
    groups = selected.by_writer()
    if not groups:
        raise EmptyDatasetError(f"no writers selected from {dataset.name!r}")
    rng = np.random.default_rng(seed)
    all_genuine = [(writer, record) for writer, g in groups.items() for record in g.genuine]
    pairs: list[SignaturePair] = []
    for writer, samples in groups.items():
        same = [
            (a, b)
            for a, b in itertools.combinations(samples.genuine, 2)
            if not selected.is_same_instance(a.path, b.path)
        ]
        pairs += _pick(rng, same, genuine, writer, "genuine")
        forged = [(g, f) for g in samples.genuine for f in samples.forged]
        chosen_skilled = _pick(rng, forged, skilled, writer, "skilled")
        pairs += chosen_skilled
        n_random = len(chosen_skilled) if random is None else random
        others = [record for other, record in all_genuine if other != writer]
        pairs += _sample_random(rng, samples.genuine, others, n_random, writer)
    if balanced:
        pairs = _balance(rng, pairs)
    if not pairs:
        raise EmptyDatasetError(f"no pairs could be formed from {dataset.name!r} with these settings")
    return PairSet(tuple(pairs), dataset.root)


def _pick(
    rng: np.random.Generator,
    candidates: Sequence[tuple[SignatureRecord, SignatureRecord]],
    count: CountSpec,
    writer: str,
    kind: PairKind,
) -> list[SignaturePair]:
    if count != "all":
        if count < 0:
            raise ValueError(f"pair count must be >= 0 or 'all', got {count}")
        if count < len(candidates):
            chosen = np.sort(rng.choice(len(candidates), size=count, replace=False))
            candidates = [candidates[i] for i in chosen]
    label = 1 if kind == "genuine" else 0
    return [SignaturePair(a.path, b.path, label, kind, writer) for a, b in candidates]


def _sample_random(
    rng: np.random.Generator,
    references: Sequence[SignatureRecord],
    others: Sequence[SignatureRecord],
    count: CountSpec,
    writer: str,
) -> list[SignaturePair]:
    total = len(references) * len(others)
    if total == 0:
        return []
    if count == "all":
        indices = np.arange(total)
    else:
        if count < 0:
            raise ValueError(f"pair count must be >= 0 or 'all', got {count}")
        indices = np.sort(rng.choice(total, size=min(count, total), replace=False))
    return [
        SignaturePair(references[i // len(others)].path, others[i % len(others)].path, 0, "random", writer)
        for i in indices.tolist()
    ]


def _balance(rng: np.random.Generator, pairs: list[SignaturePair]) -> list[SignaturePair]:
    positives = [i for i, p in enumerate(pairs) if p.label == 1]
    negatives = [i for i, p in enumerate(pairs) if p.label == 0]
    if len(positives) == len(negatives) or not positives or not negatives:
        return pairs
    if len(positives) > len(negatives):
        keep = set(negatives) | set(rng.choice(positives, size=len(negatives), replace=False).tolist())
    else:
        keep = set(positives)
        # Keep the skilled/random ratio among the negatives that survive.
        by_kind: dict[str, list[int]] = {}
        for i in negatives:
            by_kind.setdefault(pairs[i].kind, []).append(i)
        remaining = len(positives)
        kinds = sorted(by_kind)
        for position, kind in enumerate(kinds):
            members = by_kind[kind]
            # The last kind takes what is left, so the negatives add up exactly.
            last = position == len(kinds) - 1
            quota = remaining if last else round(len(positives) * len(members) / len(negatives))
            quota = min(quota, len(members))
            remaining -= quota
            keep |= set(rng.choice(members, size=quota, replace=False).tolist())
    return [pair for i, pair in enumerate(pairs) if i in keep]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def pairs_to_csv(pairs: PairSet, root: Path | None = None) -> str:
    """CSV text (``img1,img2,label,kind,writer``), paths relative to ``root`` (default: the pair set's)."""
    base = (root or pairs.root).resolve()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for pair in pairs.pairs:
        writer.writerow(
            (
                _relative(pair.reference, base),
                _relative(pair.query, base),
                pair.label,
                pair.kind,
                pair.writer or "",
            )
        )
    return buffer.getvalue()


def write_pairs(pairs: PairSet, path: str | Path, root: Path | None = None) -> Path:
    """Write a pair CSV atomically (a temporary file renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(pairs_to_csv(pairs, root), encoding="utf-8")
    temporary.replace(target)
    return target


def read_pair_file(
    path: str | Path,
    *,
    root: str | Path | None = None,
    format: str | None = None,
    genuine_label: int = 1,
) -> PairSet:
    """Read a CSV (``img1,img2,label[,kind,writer]``) or text (``ref query label``) pair file.

    Relative image paths resolve against ``root`` (default: the pair file's folder).
    ``genuine_label`` is the label value that means "same writer" in the file (some public
    pair lists use 1 for forgeries).
    """
    source = Path(path)
    if not source.is_file():
        raise DatasetFormatError(f"pair file {source} not found")
    base = Path(root).resolve() if root is not None else source.resolve().parent
    chosen = format or ("csv-pairs" if source.suffix.lower() == ".csv" else "txt-pairs")
    if chosen not in ("csv-pairs", "txt-pairs"):
        raise DatasetFormatError(f"{chosen!r} is not a pair file format (csv-pairs or txt-pairs)")
    text = source.read_text(encoding="utf-8-sig")
    rows = _csv_rows(text, source) if chosen == "csv-pairs" else _text_rows(text, source)
    pairs = []
    for line_number, (first, second, raw_label, kind, writer) in rows:
        try:
            value = int(float(raw_label))
        except ValueError:
            raise DatasetFormatError(f"{source}:{line_number}: label {raw_label!r} is not a number") from None
        if value not in (0, 1):
            raise DatasetFormatError(f"{source}:{line_number}: label must be 0 or 1, got {raw_label!r}")
        label = 1 if value == genuine_label else 0
        pair_kind = cast(PairKind, kind or ("genuine" if label == 1 else "unknown"))
        try:
            pairs.append(SignaturePair(base / first, base / second, label, pair_kind, writer or None))
        except ValueError as exc:
            raise DatasetFormatError(f"{source}:{line_number}: {exc}") from None
    if not pairs:
        raise EmptyDatasetError(f"pair file {source} holds no pairs")
    return PairSet(tuple(pairs), base)


_Row = tuple[int, tuple[str, str, str, str, str]]


def _csv_rows(text: str, source: Path) -> list[_Row]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    start = 1 if header[:2] == ["img1", "img2"] or "label" in header else 0
    kind_column = header.index("kind") if start and "kind" in header else None
    writer_column = header.index("writer") if start and "writer" in header else None
    parsed: list[_Row] = []
    for number, row in enumerate(rows[start:], start=start + 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 3:
            raise DatasetFormatError(f"{source}:{number}: expected img1,img2,label, got {row}")
        kind = row[kind_column].strip() if kind_column is not None and kind_column < len(row) else ""
        writer = row[writer_column].strip() if writer_column is not None and writer_column < len(row) else ""
        parsed.append((number, (row[0].strip(), row[1].strip(), row[2].strip(), kind, writer)))
    return parsed


def _text_rows(text: str, source: Path) -> list[_Row]:
    parsed: list[_Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 3:
            raise DatasetFormatError(f"{source}:{number}: expected '<reference> <query> <label>', got {line!r}")
        parsed.append((number, (fields[0], fields[1], fields[2], "", "")))
    return parsed

"""Dataset adapters: turn a folder (or pair file) into :class:`SignatureDataset` records.

Supported record layouts, detected automatically (or chosen with ``format=``):

* ``cedar``: ``original_<writer>_<n>.png`` / ``forgeries_<writer>_<n>.png`` anywhere below the root.
* ``bhsig``: BHSig260 names, ``bhh_<writer>_g_<n>.png`` / ``bhb_..._f_...`` or the original
  ``H-S-<writer>-G-<n>.tif`` / ``B-S-<writer>-F-<n>.tif``.
* ``sigcomp``: ICDAR-2011 / SigComp style folders ``NNN/`` (genuine) and ``NNN_forg/`` (forgeries).
* ``folders``: one folder per writer, ``<writer>/genuine/*`` and ``<writer>/forged/*``.

Pair files (``csv-pairs``: ``img1,img2,label``; ``txt-pairs``: ``reference query label``) are
read by :mod:`inkproof.data.pairs`; :func:`load_dataset` derives records from them when the
image names follow one of the layouts above.

A ``near_duplicates.csv`` (``path_a,path_b``, relative to the root) beside the images lists files
that show the same physical signature; it is honoured by pair generation.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from inkproof.data.records import Label, SignatureDataset, SignatureRecord, normalise_writer_id
from inkproof.errors import DatasetFormatError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})
NEAR_DUPLICATES_FILE = "near_duplicates.csv"

_CEDAR = re.compile(r"^(original|forgeries)_(\d+)_(\d+)$", re.IGNORECASE)
_BHSIG_RENAMED = re.compile(r"^bh[bh]_(\d+)_([gf])_(\d+)$", re.IGNORECASE)
_BHSIG_ORIGINAL = re.compile(r"^[bh]-s-(\d+)-([gf])-(\d+)$", re.IGNORECASE)
_SIGCOMP_DIR = re.compile(r"^(\d+)(_forg)?$", re.IGNORECASE)
_TRAILING_NUMBER = re.compile(r"(\d+)$")
_GENUINE_DIRS = frozenset({"genuine", "genuines", "real", "original", "originals"})
_FORGED_DIRS = frozenset({"forged", "forgery", "forgeries", "forg", "skilled", "fake"})

Parser = Callable[[Path, Path], SignatureRecord | None]


def _sample_number(stem: str) -> int | None:
    match = _TRAILING_NUMBER.search(stem)
    return int(match.group(1)) if match else None


def _parse_cedar(path: Path, root: Path) -> SignatureRecord | None:
    match = _CEDAR.match(path.stem)
    if not match:
        return None
    kind, writer, sample = match.groups()
    label: Label = "genuine" if kind.lower() == "original" else "forged"
    return SignatureRecord(normalise_writer_id(writer), label, path, int(sample))


def _parse_bhsig(path: Path, root: Path) -> SignatureRecord | None:
    match = _BHSIG_RENAMED.match(path.stem) or _BHSIG_ORIGINAL.match(path.stem)
    if not match:
        return None
    writer, kind, sample = match.groups()
    label: Label = "genuine" if kind.lower() == "g" else "forged"
    return SignatureRecord(normalise_writer_id(writer), label, path, int(sample))


def _parse_sigcomp(path: Path, root: Path) -> SignatureRecord | None:
    match = _SIGCOMP_DIR.match(path.parent.name)
    if not match or path.parent == root:
        return None
    raw_writer, forged_suffix = match.groups()
    writer = normalise_writer_id(raw_writer)
    forger = None
    if forged_suffix:
        # Forgery files are often named <n>_<forger><writer>, e.g. 01_0114049 for writer 049.
        parts = path.stem.split("_")
        if len(parts) == 2 and parts[1].isdigit() and parts[1].endswith(raw_writer):
            prefix = parts[1][: -len(raw_writer)]
            forger = normalise_writer_id(prefix) if prefix else None
    label: Label = "forged" if forged_suffix else "genuine"
    return SignatureRecord(writer, label, path, _sample_number(path.stem.split("_")[0]), forger)


def _parse_folders(path: Path, root: Path) -> SignatureRecord | None:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    if len(parts) < 3:
        return None
    writer, kind = parts[-3], parts[-2].lower()
    label: Label
    if kind in _GENUINE_DIRS:
        label = "genuine"
    elif kind in _FORGED_DIRS:
        label = "forged"
    else:
        return None
    return SignatureRecord(normalise_writer_id(writer), label, path, _sample_number(path.stem))


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    parse: Parser


RECORD_LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("cedar", "CEDAR names original_<writer>_<n>.png / forgeries_<writer>_<n>.png", _parse_cedar),
        Layout(
            "bhsig",
            "BHSig260 names bhh_<writer>_g_<n>.png / bhh_<writer>_f_<n>.png or H-S-<writer>-G-<n>.tif",
            _parse_bhsig,
        ),
        Layout("sigcomp", "SigComp folders <NNN>/ (genuine) and <NNN>_forg/ (forgeries)", _parse_sigcomp),
        Layout("folders", "one folder per writer: <writer>/genuine/* and <writer>/forged/*", _parse_folders),
    )
}
PAIR_FORMATS: dict[str, str] = {
    "csv-pairs": "a .csv pair file with columns img1,img2,label",
    "txt-pairs": "a .txt pair file with lines '<reference> <query> <label>'",
}
FORMATS: tuple[str, ...] = (*RECORD_LAYOUTS, *PAIR_FORMATS)


def expected_layouts() -> str:
    """One line per supported layout, for error messages."""
    lines = [f"  - {name}: {layout.description}" for name, layout in RECORD_LAYOUTS.items()]
    lines += [f"  - {name}: {description}" for name, description in PAIR_FORMATS.items()]
    return "\n".join(lines)


def iter_image_files(root: Path) -> Iterator[Path]:
    """Image files below ``root`` in sorted order, skipping hidden files and folders."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if any(part.startswith(".") for part in relative):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            yield path


def detect_format(path: str | Path) -> str:
    """Name of the layout of ``path``; raises :class:`DatasetFormatError` listing what was expected."""
    path = Path(path)
    if not path.exists():
        raise DatasetFormatError(f"{path} does not exist")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return "csv-pairs"
        if suffix in {".txt", ".lst", ".tsv"}:
            return "txt-pairs"
        raise DatasetFormatError(f"{path} is a file but not a pair file; expected one of:\n{expected_layouts()}")
    images = list(iter_image_files(path))
    if not images:
        raise DatasetFormatError(f"no images found under {path}; expected one of:\n{expected_layouts()}")
    matches = {
        name: sum(1 for image in images if layout.parse(image, path) is not None)
        for name, layout in RECORD_LAYOUTS.items()
    }
    # Name-based layouts are specific; prefer them when they explain nearly every file, so that
    # e.g. <root>/genuine/original_1_1.png is not mistaken for a writer folder called "genuine".
    specific = [name for name in ("cedar", "bhsig") if matches[name] >= 0.9 * len(images)]
    best = specific[0] if specific else max(matches, key=lambda name: matches[name])
    if matches[best] == 0:
        examples = ", ".join(str(p.relative_to(path)) for p in images[:3])
        raise DatasetFormatError(
            f"{len(images)} images under {path} (e.g. {examples}) but none matches a known layout; "
            f"expected one of:\n{expected_layouts()}\nor pass --format explicitly"
        )
    return best


def load_dataset(path: str | Path, format: str | None = None, *, name: str | None = None) -> SignatureDataset:
    """Records of the dataset at ``path`` (layout auto-detected unless ``format`` is given)."""
    root = Path(path).resolve()
    chosen = format or detect_format(root)
    if chosen not in FORMATS:
        raise DatasetFormatError(f"unknown format {chosen!r}; expected one of:\n{expected_layouts()}")
    if chosen in PAIR_FORMATS:
        return _dataset_from_pair_file(root, chosen, name)
    if not root.is_dir():
        raise DatasetFormatError(f"format {chosen!r} expects a folder, got {root}")
    parse = RECORD_LAYOUTS[chosen].parse
    records = [record for image in iter_image_files(root) if (record := parse(image, root)) is not None]
    if not records:
        raise DatasetFormatError(
            f"no images under {root} match the {chosen!r} layout "
            f"({RECORD_LAYOUTS[chosen].description}); expected one of:\n{expected_layouts()}"
        )
    return SignatureDataset(
        name=name or root.name,
        root=root,
        format=chosen,
        records=tuple(records),
        near_duplicates=read_near_duplicates(root),
    )


def discover_datasets(path: str | Path) -> list[Path]:
    """Dataset folders at ``path``: itself, or, for a collection such as ``shared/data``, each
    sub-folder that holds a dataset of its own (folders that hold none, e.g. page scans, are skipped)."""
    root = Path(path)
    try:
        if detect_format(root) != "folders":
            return [root]
    except DatasetFormatError:
        pass
    children = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            if detect_format(child) != "folders":
                children.append(child)
        except DatasetFormatError:
            continue
    return children or [root]


def parse_record_path(path: Path, root: Path) -> SignatureRecord | None:
    """A record for one image path using whichever layout's naming it follows, else None."""
    for layout in RECORD_LAYOUTS.values():
        record = layout.parse(path, root)
        if record is not None:
            return record
    return None


def read_near_duplicates(root: Path) -> frozenset[tuple[Path, Path]]:
    """``(kept, copy)`` path pairs from ``root/near_duplicates.csv``, or none when it is absent."""
    listing = root / NEAR_DUPLICATES_FILE
    if not listing.is_file():
        return frozenset()
    with listing.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path_a", "path_b"} <= set(reader.fieldnames):
            raise DatasetFormatError(f"{listing} must have columns path_a,path_b")
        return frozenset(((root / row["path_a"]).resolve(), (root / row["path_b"]).resolve()) for row in reader)


def _dataset_from_pair_file(path: Path, format: str, name: str | None) -> SignatureDataset:
    from inkproof.data.pairs import read_pair_file

    pairs = read_pair_file(path, format=format)
    images = sorted({p for pair in pairs.pairs for p in (pair.reference, pair.query)})
    records = []
    for image in images:
        record = parse_record_path(image, pairs.root)
        if record is None:
            raise DatasetFormatError(
                f"{path} is a pair file and {image} does not follow a known naming scheme, so writers "
                "cannot be recovered; use it as pairs (--pairs) instead of as a dataset"
            )
        records.append(record)
    return SignatureDataset(name or path.stem, pairs.root, format, tuple(records))

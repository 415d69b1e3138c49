"""Tobacco800 pages with signature and logo boxes, and a leak-free train/test split.

The released test pages carry no ground truth, so detection is measured on a held-out part of the
annotated training pages. Pages are grouped before splitting so that nothing leaks across: a
signer (``author_id``) appears on one side only, byte-identical duplicate pages stay together, and
the pages of one original document (``name_1.tif``, ``name_2.tif``) stay together.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inkproof.errors import DatasetFormatError


@dataclass(frozen=True)
class Box:
    label: str  # "signature" or "logo"
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int
    author: str = ""


@dataclass(frozen=True)
class AnnotatedPage:
    path: Path
    width: int
    height: int
    dpi: float
    boxes: tuple[Box, ...]
    document: str  # original document name without the page suffix


@dataclass(frozen=True)
class Tobacco800:
    pages: tuple[AnnotatedPage, ...]
    duplicates: tuple[tuple[Path, Path], ...]  # byte-identical pages (kept, listed so splits keep them together)


def load_tobacco800(root: str | Path) -> Tobacco800:
    """The 1,039 annotated training pages (356 of them known negatives without any box)."""
    base = Path(root)
    for name in ("train.csv", "boxes_attrs.csv"):
        if not (base / name).is_file():
            raise DatasetFormatError(f"{base} is not a Tobacco800 folder (missing {name})")
    boxes: dict[str, list[Box]] = defaultdict(list)
    with (base / "boxes_attrs.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            boxes[row["image"]].append(
                Box(row["label"], int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"]), row["author_id"])
            )
    pages = []
    with (base / "train.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["annotated"] != "1":
                continue
            original = row["original_name"] or Path(row["image"]).stem
            document = re.sub(r"(-page\d+)?(_\d+)?\.tif$", "", original, flags=re.IGNORECASE)
            pages.append(
                AnnotatedPage(
                    base / row["image"],
                    int(row["width"]),
                    int(row["height"]),
                    float(row["dpi_x"] or 0) or 150.0,
                    tuple(boxes.get(row["image"], [])),
                    document,
                )
            )
    duplicates_file = base / "duplicate_pages.csv"
    duplicates: list[tuple[Path, Path]] = []
    if duplicates_file.is_file():
        with duplicates_file.open(newline="") as handle:
            duplicates = [(base / row["image"], base / row["duplicate_of"]) for row in csv.DictReader(handle)]
    return Tobacco800(tuple(pages), tuple(duplicates))


def split_pages(
    data: Tobacco800, *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[AnnotatedPage], list[AnnotatedPage]]:
    """Group-aware split: signers, duplicate pages and documents never straddle train and test."""
    pages = list(data.pages)
    parent = list(range(len(pages)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    first_by_key: dict[str, int] = {}
    for index, page in enumerate(pages):
        keys = [f"doc:{page.document}"] + [f"author:{b.author}" for b in page.boxes if b.author]
        for key in keys:
            if key in first_by_key:
                union(index, first_by_key[key])
            else:
                first_by_key[key] = index
    by_path = {page.path: i for i, page in enumerate(pages)}
    for a, b in data.duplicates:
        if a in by_path and b in by_path:
            union(by_path[a], by_path[b])
    groups: dict[int, list[int]] = defaultdict(list)
    for index in range(len(pages)):
        groups[find(index)].append(index)
    order = sorted(groups.values(), key=lambda members: min(members))
    rng = np.random.default_rng(seed)
    test: set[int] = set()
    for position in rng.permutation(len(order)):
        if len(test) >= test_fraction * len(pages):
            break
        test.update(order[position])
    train_pages = [p for i, p in enumerate(pages) if i not in test]
    test_pages = [p for i, p in enumerate(pages) if i in test]
    return train_pages, test_pages

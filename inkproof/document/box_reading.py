"""How a page detector's probability maps become field boxes: settings and reading (pure numpy).

The detector is a segmentation network (:mod:`inkproof.segmentation`) trained to paint each field's
box as a filled region of its class. At run time a page is resized so that its long side is the
card's working size (the scale it was trained at), padded to the network's multiple, and each
class's probability map is turned into boxes:

1. threshold the class's probability map;
2. dilate the result by a few pixels, only to group pieces (a signature whose strokes break apart
   must give one box, not three);
3. take the connected components of the dilated mask; each component's box is the extent of the
   *undilated* pixels inside it (so the dilation does not inflate boxes), its confidence the mean
   probability over them;
4. drop boxes below the minimum size and map the rest back to page pixels;
5. shrink the boxes of the ``tighten`` classes to the ink inside them.

Settings version 2 adds two steps, each for the classes it names: before step 4, a class's pieces
that lie in one region above a lower threshold are joined when that region is no larger than a
field; after step 5, a box of stacked fields is cut at empty horizontal bands of its ink
(:func:`read_boxes`, :class:`DetectorSettings`). Settings version 3 can read some classes from a
second pass of the network at another working size (:func:`read_page`) and trim a thin line of text
off a box's top or bottom (:func:`trim_text_lines`).

The settings are stored in the detector card (:mod:`inkproof.document.detector`), which runs the
network and calls :func:`read_page`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "SETTINGS_VERSION",
    "Box",
    "DetectorSettings",
    "FieldDetection",
    "PageMaps",
    "boxes_from_probabilities",
    "ink_mask",
    "label_runs",
    "read_boxes",
    "read_page",
    "split_stacked",
    "tighten_to_ink",
    "to_working_scale",
    "trim_text_lines",
    "working_size",
]

Box = tuple[int, int, int, int]


# --- settings ------------------------------------------------------------------------------------


SETTINGS_VERSION = 3  # 1: thresholds, merge, sizes, tightening; 2: joining, splitting; 3: class sizes, trimming
_VERSION_2_FIELDS = (  # the settings version 2 added; at their defaults a card reads as version 1 did
    "join_thresholds",
    "join_max_width",
    "join_max_height",
    "split",
    "split_min_height",
    "split_empty",
    "split_band",
    "split_min_part",
    "split_part_ink",
    "split_part_width",
)
_VERSION_3_FIELDS = ("class_long_sides", "trim", "trim_line")  # at their defaults a card reads as before


@dataclass(frozen=True)
class DetectorSettings:
    """How pages are scaled for the network and how its probability maps become boxes.

    ``classes`` are the field classes in the network's channel order after background (channel 0).
    ``long_side`` is the working size: a page is resized so its longer side has this many pixels.
    ``merge`` (pixels at working scale) is the dilation used to group pieces; ``min_side`` and
    ``min_area`` (working-scale pixels) drop specks. ``class_thresholds`` replace ``threshold`` for
    the classes they name; boxes of the ``tighten`` classes shrink to the ink inside them (the maps
    are coarser than a pen stroke, so a handwriting box read from them has a margin of paper).
    ``inkproof detector tune`` chooses these on validation pages.

    Version 2 of the settings adds two optional steps, both off unless named (a card without them
    reads boxes exactly as version 1 did):

    * ``join_thresholds`` (class -> a lower threshold): the pieces of a class found at its threshold
      that lie in one region of the map above the lower threshold become one box (the extent of
      that region), when that region is at most ``join_max_width`` of the map's width and
      ``join_max_height`` of its height; a larger region (two neighbouring fields painted as one
      weaker blob) leaves its pieces as they were.
    * ``split`` (classes): a box taller than ``split_min_height`` of the page is cut at each
      horizontal band of at least ``split_band`` of the page height whose rows hold at most
      ``split_empty`` of the box's mean ink per row (two signatures stacked in one box), when
      every part keeps an ink height of at least ``split_min_part`` of the page, at least
      ``split_part_ink`` of the box's mean ink per row and an ink width of at least
      ``split_part_width`` of the box's (a flourish's tail is not a second signature); each part
      shrinks to its ink.

    Version 3 adds two more:

    * ``class_long_sides`` (class -> working size): those classes are read from a second pass of
      the network over the page at that size (small handwriting gains from more pixels; a large
      logo needs the coarser scale the network's receptive field was trained for);
    * ``trim`` (classes): after splitting, a box whose ink ends (or starts) with a line no taller
      than ``trim_line`` of the page, apart from the rest by rows without ink, loses that line: the
      printed name under a signature, or "Sincerely," above it (:func:`trim_text_lines`).
    """

    classes: tuple[str, ...]
    long_side: int = 1024
    threshold: float = 0.5
    merge: int = 3
    min_side: int = 4
    min_area: int = 24
    class_thresholds: tuple[tuple[str, float], ...] = ()
    tighten: tuple[str, ...] = ()
    join_thresholds: tuple[tuple[str, float], ...] = ()
    join_max_width: float = 0.4
    join_max_height: float = 0.12
    split: tuple[str, ...] = ()
    split_min_height: float = 0.1
    split_empty: float = 0.2
    split_band: float = 0.002
    split_min_part: float = 0.025
    split_part_ink: float = 0.3
    split_part_width: float = 0.5
    class_long_sides: tuple[tuple[str, int], ...] = ()
    trim: tuple[str, ...] = ()
    trim_line: float = 0.016

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        for name, kind in (("class_thresholds", float), ("join_thresholds", float), ("class_long_sides", int)):
            given = getattr(self, name)
            pairs = given.items() if isinstance(given, dict) else given
            object.__setattr__(self, name, tuple(sorted((str(k), kind(v)) for k, v in pairs)))
        object.__setattr__(self, "tighten", tuple(str(c) for c in self.tighten))
        object.__setattr__(self, "split", tuple(str(c) for c in self.split))
        object.__setattr__(self, "trim", tuple(str(c) for c in self.trim))
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct and non-empty, got {self.classes}")
        named = (
            {name for name, _ in self.class_thresholds}
            | set(self.tighten)
            | {name for name, _ in self.join_thresholds}
            | set(self.split)
            | {name for name, _ in self.class_long_sides}
            | set(self.trim)
        )
        if not named <= set(self.classes):
            raise ValueError(
                "class_thresholds/tighten/join_thresholds/split/class_long_sides/trim name unknown classes: "
                f"{sorted(named - set(self.classes))}"
            )
        if any(not 0.0 < level < 1.0 for _, level in self.class_thresholds):
            raise ValueError(f"class thresholds must lie in (0, 1), got {dict(self.class_thresholds)}")
        if any(not 0.0 < level < 1.0 for _, level in self.join_thresholds):
            raise ValueError(f"join thresholds must lie in (0, 1), got {dict(self.join_thresholds)}")
        if any(not 32 <= int(side) <= 8192 for side in (self.long_side, *dict(self.class_long_sides).values())):
            raise ValueError(f"long sides must lie in 32..8192, got {self.long_side} and {dict(self.class_long_sides)}")
        if not 0.0 < float(self.threshold) < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}")
        if self.merge < 0 or self.min_side < 1 or self.min_area < 1:
            raise ValueError("merge must be >= 0, min_side and min_area >= 1")
        fractions = (
            "join_max_width",
            "join_max_height",
            "split_min_height",
            "split_band",
            "split_min_part",
            "trim_line",
        )
        if any(not 0.0 < float(getattr(self, name)) <= 1.0 for name in fractions):
            raise ValueError(f"{', '.join(fractions)} must lie in (0, 1]")
        if not 0.0 <= float(self.split_part_width) <= 1.0:
            raise ValueError(f"split_part_width must lie in [0, 1], got {self.split_part_width}")
        if not 0.0 <= float(self.split_empty) < 1.0 or float(self.split_part_ink) < 0.0:
            raise ValueError("split_empty must lie in [0, 1) and split_part_ink be >= 0")

    def threshold_of(self, label: str) -> float:
        return dict(self.class_thresholds).get(label, self.threshold)

    def long_side_of(self, label: str) -> int:
        """The working size ``label`` is read at."""
        return dict(self.class_long_sides).get(label, self.long_side)

    @property
    def long_sides(self) -> tuple[int, ...]:
        """Every working size a page is run at, ``long_side`` first."""
        return tuple(dict.fromkeys((self.long_side, *(self.long_side_of(c) for c in self.classes))))

    @property
    def reads_ink(self) -> bool:
        """Whether reading boxes needs the page's :func:`ink_mask` (tightening, splitting, trimming)."""
        return bool(self.tighten or self.split or self.trim)

    def join_threshold_of(self, label: str) -> float | None:
        """The lower threshold that joins ``label``'s pieces, None when they are not joined."""
        return dict(self.join_thresholds).get(label)

    @property
    def version(self) -> int:
        """The oldest settings version that reads boxes as these do (a card keeps that layout)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        if any(getattr(self, name) != defaults[name] for name in _VERSION_3_FIELDS):
            return 3
        return 2 if any(getattr(self, name) != defaults[name] for name in _VERSION_2_FIELDS) else 1

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["classes"] = list(self.classes)
        values["class_thresholds"] = dict(self.class_thresholds)
        values["tighten"] = list(self.tighten)
        version = self.version
        if version == 1:  # the card keeps version 1's layout, byte for byte
            return {
                name: value
                for name, value in values.items()
                if name not in _VERSION_2_FIELDS and name not in _VERSION_3_FIELDS
            }
        values["join_thresholds"] = dict(self.join_thresholds)
        values["split"] = list(self.split)
        if version == 2:  # and version 2's
            return {"version": 2, **{k: v for k, v in values.items() if k not in _VERSION_3_FIELDS}}
        values["class_long_sides"] = dict(self.class_long_sides)
        values["trim"] = list(self.trim)
        return {"version": version, **values}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorSettings:
        values = dict(values)
        version = int(values.pop("version", 1))
        if not 1 <= version <= SETTINGS_VERSION:
            raise ValueError(
                f"detector settings version {version}: this inkproof reads versions 1 to {SETTINGS_VERSION} "
                "(a newer inkproof wrote this card?)"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        if version < 3:
            known -= set(_VERSION_3_FIELDS)
        if version == 1:
            known -= set(_VERSION_2_FIELDS)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown detector settings: {unknown}")
        given = {
            **values,
            "classes": tuple(values["classes"]),
            "class_thresholds": tuple(dict(values.get("class_thresholds") or {}).items()),
            "tighten": tuple(values.get("tighten", ())),
            "join_thresholds": tuple(dict(values.get("join_thresholds") or {}).items()),
            "split": tuple(values.get("split", ())),
            "class_long_sides": tuple(dict(values.get("class_long_sides") or {}).items()),
            "trim": tuple(values.get("trim", ())),
        }
        return cls(**given)


@dataclass(frozen=True)
class FieldDetection:
    """One found field: ``box`` is (x0, y0, x1, y1) in page pixels, x1/y1 exclusive."""

    label: str
    box: Box
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "box": list(self.box), "confidence": round(float(self.confidence), 4)}


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(w, h) of a page resized so that its longer side is ``long_side`` (aspect kept)."""
    factor = long_side / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def to_working_scale(gray: np.ndarray, long_side: int) -> np.ndarray:
    """The page resized to the working size: area averaging when shrinking (thin strokes of bilevel
    scans become gray instead of vanishing), bilinear when enlarging. Training uses the same call."""
    height, width = gray.shape
    size = working_size(width, height, long_side)
    if size == (width, height):
        return gray
    method = Image.Resampling.BOX if size[0] < width else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(gray).resize(size, method), dtype=np.uint8)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a (2r+1)^2 square, separably through box sums (O(pixels) for any r)."""
    if radius <= 0:
        return mask
    out = mask
    for axis in (0, 1):
        counts = np.cumsum(out, axis=axis, dtype=np.int32)
        padded = np.concatenate([np.zeros_like(counts.take([0], axis=axis)), counts], axis=axis)
        length = out.shape[axis]
        upper = np.minimum(np.arange(length) + radius + 1, length)
        lower = np.maximum(np.arange(length) - radius, 0)
        out = (padded.take(upper, axis=axis) - padded.take(lower, axis=axis)) > 0
    return out


def label_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """8-connected components of a boolean (H, W) mask, as horizontal runs.

    Returns (rows, starts, ends, component, count): run ``i`` covers ``mask[rows[i],
    starts[i]:ends[i]]`` and belongs to component ``component[i]`` (0..count-1, numbered in
    raster order of their first run). Runs instead of a label image keep this fast in numpy and
    plain Python: a page's heat map has a few thousand runs, not hundreds of thousands of pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    height = mask.shape[0]
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    start_rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # same raster order as the starts, one end per start
    count = len(starts)
    parent = list(range(count))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    bounds = np.searchsorted(start_rows, np.arange(height + 1))
    s_list, e_list = starts.tolist(), ends.tolist()
    for row in range(1, height):
        a, a_end = int(bounds[row - 1]), int(bounds[row])
        b, b_end = int(bounds[row]), int(bounds[row + 1])
        # Two pointers over the previous row's and this row's runs; 8-connectivity means runs touch
        # when they overlap after widening by one pixel.
        while a < a_end and b < b_end:
            if s_list[a] <= e_list[b] and s_list[b] <= e_list[a]:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
            if e_list[a] < e_list[b]:
                a += 1
            else:
                b += 1
    roots = np.array([find(i) for i in range(count)], dtype=np.int64)
    unique, component = np.unique(roots, return_inverse=True)
    return start_rows, starts, ends, component.reshape(-1), len(unique)


def _runs_of(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, starts, ends) of the horizontal runs of a boolean mask, in raster order."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return rows, starts, ends


def _grouped_runs(mask: np.ndarray, merge: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The runs of ``mask`` (rows, starts, ends), the group of each (the component of the mask
    dilated by ``merge`` that holds it) and the number of groups."""
    group_rows, group_starts, _, group_of, groups = label_runs(_dilate(mask, merge))
    rows, starts, ends = _runs_of(mask)
    # Each undilated run lies inside exactly one dilated run of its row: find that run.
    width = mask.shape[1] + 1
    keys = group_rows.astype(np.int64) * width + group_starts
    owner = group_of[np.searchsorted(keys, rows.astype(np.int64) * width + starts, side="right") - 1]
    return rows, starts, ends, owner, groups


def _extents(
    rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, owner: np.ndarray, groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x0, y0, x1, y1) of each group's runs, x1/y1 exclusive."""
    x0 = np.full(groups, np.iinfo(np.int64).max)
    y0 = np.full(groups, np.iinfo(np.int64).max)
    x1 = np.zeros(groups, dtype=np.int64)
    y1 = np.zeros(groups, dtype=np.int64)
    np.minimum.at(x0, owner, starts)
    np.minimum.at(y0, owner, rows)
    np.maximum.at(x1, owner, ends)
    np.maximum.at(y1, owner, rows + 1)
    return x0, y0, x1, y1


def _join_pieces(
    region: np.ndarray,
    merge: int,
    pieces: tuple[np.ndarray, np.ndarray, np.ndarray, int],
    stats: tuple[np.ndarray, ...],
    limits: tuple[float, float],
) -> tuple[np.ndarray, ...]:
    """Join the pieces (groups of the thresholded mask) that lie in one group of ``region`` (the map
    above the lower threshold) when that group's extent is within ``limits`` (width, height).

    ``pieces`` are the mask's (rows, starts, owner, count) and ``stats`` its (area, mass, x0, y0,
    x1, y1) per piece; the same arrays come back for the joined pieces: area and mass summed over
    the pieces (the confidence stays the mean over pixels above the threshold), the extent that of
    the region's group.
    """
    rows, starts, owner, count = pieces
    area, mass, x0, y0, x1, y1 = stats
    region_rows, region_starts, region_ends, region_owner, regions = _grouped_runs(region, merge)
    rx0, ry0, rx1, ry1 = _extents(region_rows, region_starts, region_ends, region_owner, regions)
    # Every run of the mask lies inside one run of the region (the region holds the mask).
    width = region.shape[1] + 1
    keys = region_rows.astype(np.int64) * width + region_starts
    run_region = region_owner[np.searchsorted(keys, rows.astype(np.int64) * width + starts, side="right") - 1]
    piece_region = np.zeros(count, dtype=np.int64)
    piece_region[owner] = run_region  # the runs of one piece share its region group
    members = np.bincount(piece_region, minlength=regions)
    joinable = (members >= 2) & (rx1 - rx0 <= limits[0]) & (ry1 - ry0 <= limits[1])
    # A joined piece's index: the first of its region group's pieces; the others are folded into it.
    first: dict[int, int] = {}
    keep = np.zeros(count, dtype=bool)
    target = np.arange(count)
    for piece in range(count):
        group = int(piece_region[piece])
        if joinable[group]:
            target[piece] = first.setdefault(group, piece)
        keep[piece] = target[piece] == piece
    area = np.bincount(target, weights=area, minlength=count)
    mass = np.bincount(target, weights=mass, minlength=count)
    x0, y0, x1, y1 = (v.copy() for v in (x0, y0, x1, y1))
    for group, piece in first.items():
        x0[piece], y0[piece], x1[piece], y1[piece] = rx0[group], ry0[group], rx1[group], ry1[group]
    return area[keep], mass[keep], x0[keep], y0[keep], x1[keep], y1[keep]


def boxes_from_probabilities(
    probabilities: np.ndarray,
    settings: DetectorSettings,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    page_size: tuple[int, int] | None = None,
    threshold: float | None = None,
    classes: Collection[str] | None = None,
) -> list[FieldDetection]:
    """Boxes of every field class (or of ``classes``) from (C, h, w) probabilities (channel 0 background).

    ``scale`` is (working width / page width, working height / page height); boxes are divided by
    it and clipped to ``page_size`` (w, h) when given. ``threshold`` replaces the settings' for
    every class. The pieces of a class with a join threshold (below the threshold in use) are
    joined as :class:`DetectorSettings` describes. Highest confidence first.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 3 or probabilities.shape[0] != len(settings.classes) + 1:
        raise ValueError(f"expected ({len(settings.classes) + 1}, h, w) probabilities, got shape {probabilities.shape}")
    sx, sy = scale
    map_height, map_width = probabilities.shape[1:]
    found: list[FieldDetection] = []
    for channel, label in enumerate(settings.classes, start=1):
        if classes is not None and label not in classes:
            continue
        level = settings.threshold_of(label) if threshold is None else float(threshold)
        full = probabilities[channel] >= level
        if not full.any():
            continue
        lower = settings.join_threshold_of(label)
        region = probabilities[channel] >= lower if lower is not None and lower < level else None
        spread = full if region is None else region  # the region holds the mask
        # Work inside the mask's bounding rectangle (plus the dilation): fields cover a small part
        # of a page, so this keeps the cost near the fields' size rather than the page's.
        ys, xs = np.nonzero(spread.any(axis=1))[0], np.nonzero(spread.any(axis=0))[0]
        top, left = max(0, int(ys[0]) - settings.merge), max(0, int(xs[0]) - settings.merge)
        bottom = min(full.shape[0], int(ys[-1]) + 1 + settings.merge)
        right = min(full.shape[1], int(xs[-1]) + 1 + settings.merge)
        mask = full[top:bottom, left:right]
        heat = probabilities[channel, top:bottom, left:right]
        rows, starts, ends, owner, groups = _grouped_runs(mask, settings.merge)
        flat = rows.astype(np.int64) * mask.shape[1]
        bounds = np.stack([flat + starts, flat + ends], axis=1).reshape(-1)
        # reduceat sums each [start, end) run; every second entry spans a gap and is dropped.
        run_mass = np.add.reduceat(np.append(heat.reshape(-1), 0.0).astype(np.float64), bounds)[::2]
        area = np.bincount(owner, weights=ends - starts, minlength=groups)
        mass = np.bincount(owner, weights=run_mass, minlength=groups)
        x0, y0, x1, y1 = _extents(rows, starts, ends, owner, groups)
        if region is not None:
            limits = (settings.join_max_width * map_width, settings.join_max_height * map_height)
            pieces = (rows, starts, owner, groups)
            stats = (area, mass, x0, y0, x1, y1)
            inside = region[top:bottom, left:right]
            area, mass, x0, y0, x1, y1 = _join_pieces(inside, settings.merge, pieces, stats, limits)
        x0, x1, y0, y1 = x0 + left, x1 + left, y0 + top, y1 + top
        for g in range(len(area)):
            if area[g] < settings.min_area or min(x1[g] - x0[g], y1[g] - y0[g]) < settings.min_side:
                continue
            box = (
                int(np.floor(x0[g] / sx)),
                int(np.floor(y0[g] / sy)),
                int(np.ceil(x1[g] / sx)),
                int(np.ceil(y1[g] / sy)),
            )
            if page_size is not None:
                box = (max(0, box[0]), max(0, box[1]), min(page_size[0], box[2]), min(page_size[1], box[3]))
            found.append(FieldDetection(label, box, float(mass[g] / area[g])))
    found.sort(key=lambda d: (-d.confidence, d.label, d.box))
    return found


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """The page's ink: pixels darker than its Otsu level."""
    from inkproof.preprocess.signature import otsu_threshold

    return np.asarray(gray < otsu_threshold(gray))


def tighten_to_ink(
    gray: np.ndarray,
    detections: Sequence[FieldDetection],
    classes: Sequence[str],
    *,
    ink: np.ndarray | None = None,
) -> list[FieldDetection]:
    """Shrink the boxes of ``classes`` to the ink inside them (pixels darker than the page's Otsu
    level, or ``ink`` when given).

    A box with no ink inside is kept as it is; other classes pass unchanged.
    """
    wanted = set(classes)
    if not wanted.intersection(d.label for d in detections):
        return list(detections)
    ink = ink_mask(gray) if ink is None else ink
    tightened: list[FieldDetection] = []
    for detection in detections:
        x0, y0, x1, y1 = detection.box
        inside = ink[y0:y1, x0:x1]
        if detection.label not in wanted or not inside.any():
            tightened.append(detection)
            continue
        rows, cols = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
        box = (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)
        tightened.append(dataclasses.replace(detection, box=box))
    return tightened


def _true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True values."""
    steps = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.nonzero(steps == 1)[0].tolist(), np.nonzero(steps == -1)[0].tolist(), strict=True))


def _span(flags: np.ndarray) -> int:
    """Rows (or columns) from the first nonzero entry of ``flags`` to the last; 0 when none is."""
    found = np.nonzero(flags)[0]
    return int(found[-1] - found[0] + 1) if found.size else 0


def split_stacked(ink: np.ndarray, box: Box, settings: DetectorSettings) -> list[Box]:
    """``box`` cut at its empty horizontal bands, as :class:`DetectorSettings` describes (``split_*``);
    ``[box]`` when it is not tall enough, has no such band, or a cut would leave a part that does
    not look like a line of handwriting. ``ink`` is the page's ink mask, ``box`` in page pixels."""
    page_height = ink.shape[0]
    x0, y0, x1, y1 = box
    height = y1 - y0
    if height < settings.split_min_height * page_height:
        return [box]
    inside = ink[y0:y1, x0:x1]
    rows = inside.sum(axis=1).astype(np.float64)
    mean = float(rows.mean()) if rows.size else 0.0
    if mean <= 0.0:
        return [box]
    bands = [
        (a, b)
        for a, b in _true_runs(rows <= settings.split_empty * mean)
        if b - a >= settings.split_band * page_height and a > 0 and b < height
    ]
    cuts = [(a + b) // 2 for a, b in bands]

    def small_part(edges: list[int]) -> int | None:
        for index, (a, b) in enumerate(itertools.pairwise(edges)):
            tall = _span(rows[a:b] > 0)
            if tall < settings.split_min_part * page_height or rows[a:b].sum() < settings.split_part_ink * mean * tall:
                return index
            cols = np.nonzero(inside[a:b].any(axis=0))[0]
            if cols[-1] - cols[0] + 1 < settings.split_part_width * (x1 - x0):
                return index
        return None

    # Drop cuts that leave a part too short or too faint, the narrower band beside it first.
    while cuts and (bad := small_part([0, *cuts, height])) is not None:
        beside = [j for j in (bad - 1, bad) if 0 <= j < len(cuts)]
        j = min(beside, key=lambda k: bands[k][1] - bands[k][0])
        del cuts[j], bands[j]
    if not cuts:
        return [box]
    parts: list[Box] = []
    for a, b in itertools.pairwise([0, *cuts, height]):
        part = inside[a:b]
        inked_rows, inked_cols = np.nonzero(part.any(axis=1))[0], np.nonzero(part.any(axis=0))[0]
        top, bottom = y0 + a + int(inked_rows[0]), y0 + a + int(inked_rows[-1]) + 1
        parts.append((x0 + int(inked_cols[0]), top, x0 + int(inked_cols[-1]) + 1, bottom))
    return parts


def trim_text_lines(ink: np.ndarray, box: Box, settings: DetectorSettings) -> Box:
    """``box`` without a thin line of ink at its bottom or top (``settings.trim_line`` of the page
    tall at most, apart from the rest by rows without ink), shrunk to the ink that is left; the
    rest of the box is never trimmed away. ``ink`` is the page's ink mask, ``box`` in page pixels."""
    x0, y0, x1, y1 = box
    inside = ink[y0:y1, x0:x1]
    inked = np.asarray(inside.any(axis=1), dtype=bool)
    gaps = [(a, b) for a, b in _true_runs(~inked) if a > 0 and b < len(inked)]
    if not gaps:
        return box
    thin = settings.trim_line * ink.shape[0]
    top, bottom = 0, len(inked)
    if _span(inked[gaps[-1][1] :]) <= thin:
        bottom = gaps[-1][0]
    if gaps[0][1] < bottom and _span(inked[: gaps[0][0]]) <= thin:
        top = gaps[0][1]
    if (top, bottom) == (0, len(inked)):
        return box
    rows, cols = np.nonzero(inked[top:bottom])[0], np.nonzero(inside[top:bottom].any(axis=0))[0]
    return (x0 + int(cols[0]), y0 + top + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + top + int(rows[-1]) + 1)


def read_boxes(
    gray: np.ndarray,
    probabilities: np.ndarray,
    scale: tuple[float, float],
    settings: DetectorSettings,
    *,
    threshold: float | None = None,
    classes: Collection[str] | None = None,
    ink: np.ndarray | None = None,
) -> list[FieldDetection]:
    """The page's fields (or those of ``classes``) from the detector's (C, h, w) probabilities at
    working scale: boxes from the maps (:func:`boxes_from_probabilities`), tightened to ink
    (:func:`tighten_to_ink`), stacked fields split (:func:`split_stacked`), thin text lines trimmed
    off (:func:`trim_text_lines`), as ``settings`` say.
    ``ink`` is the page's :func:`ink_mask` when already computed. Highest confidence first."""
    height, width = gray.shape
    page_size = (width, height)
    boxes = boxes_from_probabilities(
        probabilities, settings, scale=scale, page_size=page_size, threshold=threshold, classes=classes
    )
    wanted = set(settings.split) | set(settings.trim)
    if not settings.tighten and not wanted.intersection(d.label for d in boxes):
        return boxes
    ink = ink_mask(gray) if ink is None else ink
    if settings.tighten:
        boxes = tighten_to_ink(gray, boxes, settings.tighten, ink=ink)
    if wanted.intersection(d.label for d in boxes):
        split: list[FieldDetection] = []
        for detection in boxes:
            parts = (
                split_stacked(ink, detection.box, settings) if detection.label in settings.split else [detection.box]
            )
            if detection.label in settings.trim:
                parts = [trim_text_lines(ink, part, settings) for part in parts]
            split.extend(dataclasses.replace(detection, box=part) for part in parts)
        boxes = sorted(split, key=lambda d: (-d.confidence, d.label, d.box))
    return boxes


PageMaps = dict[int, tuple[np.ndarray, tuple[float, float]]]  # working size -> (probabilities, scale)


def read_page(
    gray: np.ndarray,
    maps: PageMaps,
    settings: DetectorSettings,
    *,
    threshold: float | None = None,
    ink: np.ndarray | None = None,
) -> list[FieldDetection]:
    """:func:`read_boxes` of each class from the map of its working size (``settings.long_side_of``),
    one list, highest confidence first. ``ink`` is the page's :func:`ink_mask` when already computed."""
    if settings.long_sides == (settings.long_side,):  # one pass: read_boxes finds the ink only if needed
        probabilities, scale = maps[settings.long_side]
        return read_boxes(gray, probabilities, scale, settings, threshold=threshold, ink=ink)
    if ink is None and settings.reads_ink:
        ink = ink_mask(gray)
    found: list[FieldDetection] = []
    for side in settings.long_sides:
        classes = {c for c in settings.classes if settings.long_side_of(c) == side}
        probabilities, scale = maps[side]
        found += read_boxes(gray, probabilities, scale, settings, threshold=threshold, classes=classes, ink=ink)
    return sorted(found, key=lambda d: (-d.confidence, d.label, d.box))

"""Segmentation data: a folder of images with colour masks, or examples made on the fly.

Folder layout (what a user brings)::

    root/images/<stem>.png|jpg|jpeg|tif|tiff   any image load_image reads (made grayscale)
    root/masks/<stem>.png                      colour mask, same size, one colour per class
    root/colors.csv                            header ``name,R,G,B``; first row is background

:meth:`SegmentationDataset.from_folder` checks everything up front and raises a typed error that
lists every offending file (missing masks, colours not in ``colors.csv``, size mismatches), so a
user fixes a dataset in one pass instead of one crash per epoch. Masks are lossless PNG on
purpose: JPEG would invent colours at every edge.

:meth:`SegmentationDataset.from_source` wraps a callable ``index -> (gray uint8, int mask)``
with a length, so a trainer can synthesise examples (it should be deterministic in ``index``
for a resumed run to see the same data). Torch-free: numpy and Pillow only.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from inkproof.errors import DatasetFormatError
from inkproof.imaging import DEFAULT_MAX_PIXELS, image_size, load_image
from inkproof.segmentation.overlay import Colour, colour_mask

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Mask value for pixels that carry no label (padding, "don't care"); losses and metrics skip it.
IGNORE_INDEX = 255
MAX_CLASSES = IGNORE_INDEX  # class indices 0..254 fit a uint8 mask beside IGNORE_INDEX

Example = tuple[np.ndarray, np.ndarray]
ExampleSource = Callable[[int], Example]


# --- errors ----------------------------------------------------------------------------------


class SegmentationDataError(DatasetFormatError):
    """A segmentation dataset is malformed; subclasses say how and carry the offending items."""


class ColorsFileError(SegmentationDataError):
    """``colors.csv`` is missing or malformed (header, values, duplicates, too few classes)."""


class MissingMaskError(SegmentationDataError):
    def __init__(self, stems: Sequence[str], masks_dir: Path) -> None:
        self.stems = tuple(stems)
        super().__init__(f"{len(self.stems)} image(s) have no mask {masks_dir}/<stem>.png: {_listing(self.stems)}")


class UnknownColourError(SegmentationDataError):
    """Mask colours that ``colors.csv`` does not name; ``colours`` maps each to the files using it."""

    def __init__(self, colours: dict[Colour, list[str]]) -> None:
        self.colours = {colour: sorted(set(files)) for colour, files in sorted(colours.items())}
        parts = [f"{colour} in {_listing(files, 3)}" for colour, files in self.colours.items()]
        super().__init__(f"{len(self.colours)} mask colour(s) not in colors.csv: {_listing(parts, 8)}")


class MaskSizeError(SegmentationDataError):
    """Masks whose size differs from their image's; ``mismatches`` is (stem, image wxh, mask wxh)."""

    def __init__(self, mismatches: Sequence[tuple[str, tuple[int, int], tuple[int, int]]]) -> None:
        self.mismatches = tuple(mismatches)
        parts = [f"{stem} (image {iw}x{ih}, mask {mw}x{mh})" for stem, (iw, ih), (mw, mh) in self.mismatches]
        super().__init__(f"{len(parts)} mask(s) differ in size from their image: {_listing(parts)}")


def _listing(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


# --- classes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassPalette:
    """Class names and their mask colours; index 0 is background."""

    names: tuple[str, ...]
    colors: tuple[Colour, ...]

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        colors = tuple((int(c[0]), int(c[1]), int(c[2])) for c in self.colors)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "colors", colors)
        if len(names) != len(colors):
            raise ColorsFileError(f"{len(names)} class names but {len(colors)} colours")
        if not 2 <= len(names) <= MAX_CLASSES:
            raise ColorsFileError(f"need 2..{MAX_CLASSES} classes (background first), got {len(names)}")
        if any(not n.strip() for n in names):
            raise ColorsFileError("class names must not be empty")
        for label, values in (("class names", names), ("colours", colors)):
            repeated = sorted({str(v) for v in values if values.count(v) > 1})
            if repeated:
                raise ColorsFileError(f"duplicate {label}: {', '.join(repeated)}")
        if any(not 0 <= v <= 255 for c in colors for v in c):
            raise ColorsFileError("colour components must lie in 0..255")

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def default(cls, names: Sequence[str]) -> ClassPalette:
        """Distinct colours for ``names`` (background black), for sources without a colors.csv."""
        base: list[Colour] = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
        base += [(70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128), (170, 110, 40)]
        colors = list(base[: len(names)])
        step = 0
        while len(colors) < len(names):  # more classes than hand-picked colours: spread over the cube
            step += 1
            candidate = ((step * 97) % 256, (step * 57) % 256, (step * 151) % 256)
            if candidate not in colors:
                colors.append(candidate)
        return cls(tuple(names), tuple(colors))

    @classmethod
    def from_csv(cls, path: str | Path) -> ClassPalette:
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ColorsFileError(f"cannot read {source}: {exc}") from None
        return cls.from_csv_text(text, source=str(source))

    @classmethod
    def from_csv_text(cls, text: str, *, source: str = "colors.csv") -> ClassPalette:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
        if not rows:
            raise ColorsFileError(f"{source} is empty (expected a header name,R,G,B)")
        header = [cell.strip().lower() for cell in rows[0]]
        if header != ["name", "r", "g", "b"]:
            raise ColorsFileError(f"{source}: header must be name,R,G,B, got {','.join(rows[0])}")
        names: list[str] = []
        colors: list[Colour] = []
        for line, row in enumerate(rows[1:], start=2):
            if len(row) != 4:
                raise ColorsFileError(f"{source} line {line}: expected 4 fields (name,R,G,B), got {len(row)}")
            try:
                r, g, b = (int(cell.strip()) for cell in row[1:])
            except ValueError:
                raise ColorsFileError(f"{source} line {line}: R, G, B must be integers, got {row[1:]}") from None
            names.append(row[0].strip())
            colors.append((r, g, b))
        try:
            return cls(tuple(names), tuple(colors))
        except ColorsFileError as exc:
            raise ColorsFileError(f"{source}: {exc}") from None

    def to_csv_text(self) -> str:
        lines = ["name,R,G,B", *(f"{n},{r},{g},{b}" for n, (r, g, b) in zip(self.names, self.colors, strict=True))]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "colors": [list(c) for c in self.colors]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClassPalette:
        return cls(tuple(values["names"]), tuple(tuple(c) for c in values["colors"]))


# --- colour <-> index ------------------------------------------------------------------------


def _codes(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _colour_of(code: int) -> Colour:
    return ((code >> 16) & 255, (code >> 8) & 255, code & 255)


def colour_to_index(rgb: np.ndarray, palette: ClassPalette, *, source: str = "<mask>") -> np.ndarray:
    """(H, W, 3) colour mask -> (H, W) uint8 class indices; unknown colours raise UnknownColourError."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise SegmentationDataError(f"{source}: a colour mask must have shape (H, W, 3), got {rgb.shape}")
    codes = _codes(rgb)
    palette_codes = _codes(np.array(palette.colors, dtype=np.int32))
    order = np.argsort(palette_codes)
    ordered = palette_codes[order]
    position = np.clip(np.searchsorted(ordered, codes), 0, len(ordered) - 1)
    found = ordered[position] == codes
    if not found.all():
        unknown = np.unique(codes[~found])
        raise UnknownColourError({_colour_of(int(code)): [source] for code in unknown})
    return order[position].astype(np.uint8)


def index_to_colour(mask: np.ndarray, palette: ClassPalette) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 colour mask (the inverse of colour_to_index)."""
    return colour_mask(mask, palette.colors)


def read_colour_mask(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A mask file as (H, W, 3) uint8 RGB; palette and gray masks are expanded, alpha dropped."""
    source = Path(path)
    try:
        with Image.open(source) as im:
            if im.width * im.height > max_pixels:
                raise SegmentationDataError(f"{source}: {im.width}x{im.height} exceeds {max_pixels} pixels")
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise SegmentationDataError(f"{source}: not a readable mask image ({exc})") from exc


def write_colour_mask(mask: np.ndarray, palette: ClassPalette, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(index_to_colour(mask, palette)).save(target, format="PNG")
    return target


# --- the dataset -----------------------------------------------------------------------------


def _split_rank(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


class SegmentationDataset:
    """Indexable (gray uint8 (H, W), class-index uint8 (H, W)) examples with a class palette.

    ``keys`` name the examples (file stems, or the index of a generated one) and drive the
    deterministic train/validation split.
    """

    def __init__(
        self,
        palette: ClassPalette,
        loader: ExampleSource,
        keys: Sequence[str],
        *,
        name: str = "",
        indices: Sequence[int] | None = None,
    ) -> None:
        self.palette = palette
        self.name = name
        self._loader = loader
        self._keys = tuple(keys)
        self._indices = tuple(range(len(self._keys))) if indices is None else tuple(indices)

    # construction ---------------------------------------------------------------------------

    @classmethod
    def from_folder(cls, root: str | Path, *, check_masks: bool = True, cache: bool = False) -> SegmentationDataset:
        """Read and validate ``root`` (layout in the module docstring).

        ``check_masks`` decodes every mask once to find unknown colours and size mismatches;
        ``cache`` keeps decoded examples in memory (fine for signatures, not for many pages).
        """
        folder = Path(root)
        images_dir, masks_dir, colors_file = folder / "images", folder / "masks", folder / "colors.csv"
        if not folder.is_dir():
            raise SegmentationDataError(f"{folder} is not a folder")
        for required in (images_dir, masks_dir):
            if not required.is_dir():
                raise SegmentationDataError(f"{folder} has no {required.name}/ folder (expected images/, masks/)")
        if not colors_file.is_file():
            raise ColorsFileError(f"{folder} has no colors.csv (header name,R,G,B; background first)")
        palette = ClassPalette.from_csv(colors_file)

        images: dict[str, Path] = {}
        duplicates: list[str] = []
        for path in sorted(images_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                if path.stem in images:
                    duplicates.append(path.stem)
                images[path.stem] = path
        if duplicates:
            raise SegmentationDataError(f"several images share a stem: {_listing(sorted(set(duplicates)))}")
        if not images:
            raise SegmentationDataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}")
        masks = {stem: masks_dir / f"{stem}.png" for stem in images}
        missing = [stem for stem, path in masks.items() if not path.is_file()]
        if missing:
            raise MissingMaskError(missing, masks_dir)

        if check_masks:
            unknown: dict[Colour, list[str]] = {}
            mismatches: list[tuple[str, tuple[int, int], tuple[int, int]]] = []
            for stem in images:
                rgb = read_colour_mask(masks[stem])
                size = image_size(images[stem])
                if (rgb.shape[1], rgb.shape[0]) != size:
                    mismatches.append((stem, size, (rgb.shape[1], rgb.shape[0])))
                try:
                    colour_to_index(rgb, palette, source=masks[stem].name)
                except UnknownColourError as exc:
                    for colour, files in exc.colours.items():
                        unknown.setdefault(colour, []).extend(files)
            if mismatches:
                raise MaskSizeError(mismatches)
            if unknown:
                raise UnknownColourError(unknown)

        stems = list(images)
        loader: ExampleSource = _FolderLoader([images[s] for s in stems], [masks[s] for s in stems], palette)
        if cache:
            loader = _Cached(loader)
        return cls(palette, loader, stems, name=folder.name)

    @classmethod
    def from_source(
        cls,
        source: ExampleSource,
        palette: ClassPalette | Sequence[str],
        *,
        length: int | None = None,
        name: str = "generated",
    ) -> SegmentationDataset:
        """Examples from ``source(index)``; ``length`` defaults to ``len(source)``.

        ``palette`` may be just the class names (colours are then chosen for the overlays).
        """
        if length is None:
            if not hasattr(source, "__len__"):
                raise SegmentationDataError("pass length= for a source without __len__")
            length = len(source)
        if length < 1:
            raise SegmentationDataError(f"a source needs at least one example, got length {length}")
        classes = palette if isinstance(palette, ClassPalette) else ClassPalette.default(palette)
        return cls(classes, source, [str(i) for i in range(length)], name=name)

    # access ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._indices)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._keys[i] for i in self._indices)

    @property
    def classes(self) -> int:
        return len(self.palette)

    def __getitem__(self, index: int) -> Example:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        source_index = self._indices[index]
        image, mask = self._loader(source_index)
        return _checked(image, mask, len(self.palette), self._keys[source_index])

    def __iter__(self) -> Iterator[Example]:
        for index in range(len(self)):
            yield self[index]

    def subset(self, indices: Sequence[int]) -> SegmentationDataset:
        return SegmentationDataset(
            self.palette, self._loader, self._keys, name=self.name, indices=[self._indices[i] for i in indices]
        )

    def split(
        self, validation_fraction: float = 0.2, *, seed: int = 0
    ) -> tuple[SegmentationDataset, SegmentationDataset]:
        """(train, validation), decided by a hash of each key and ``seed``.

        The examples with the lowest hashes go to validation, so the split does not depend on
        file order, and adding files moves few existing ones across.
        """
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {validation_fraction}")
        if len(self) < 2:
            raise SegmentationDataError("a train/validation split needs at least 2 examples")
        count = min(len(self) - 1, max(1, round(validation_fraction * len(self))))
        ranked = sorted(range(len(self)), key=lambda i: _split_rank(self._keys[self._indices[i]], seed))
        validation = sorted(ranked[:count])
        train = sorted(ranked[count:])
        return self.subset(train), self.subset(validation)


def _checked(image: np.ndarray, mask: np.ndarray, classes: int, key: str) -> Example:
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise SegmentationDataError(
            f"example {key}: image must be a (H, W) uint8 array, got {image.dtype} {image.shape}"
        )
    if mask.shape != image.shape:
        raise SegmentationDataError(f"example {key}: mask {mask.shape} differs from image {image.shape}")
    if not np.issubdtype(mask.dtype, np.integer):
        raise SegmentationDataError(f"example {key}: mask must hold integer class indices, got {mask.dtype}")
    if mask.size:
        low, high = int(mask.min()), int(mask.max())
        bad = low < 0 or (high >= classes and high != IGNORE_INDEX)
        if bad or (high == IGNORE_INDEX and np.any((mask >= classes) & (mask != IGNORE_INDEX))):
            raise SegmentationDataError(
                f"example {key}: mask values must lie in 0..{classes - 1} (or {IGNORE_INDEX} = unlabelled)"
            )
    return image, mask.astype(np.uint8, copy=False)


class _FolderLoader:
    """Picklable loader (DataLoader workers) of one image/mask pair per index."""

    def __init__(self, images: list[Path], masks: list[Path], palette: ClassPalette) -> None:
        self.images, self.masks, self.palette = images, masks, palette

    def __call__(self, index: int) -> Example:
        image = load_image(self.images[index])
        rgb = read_colour_mask(self.masks[index])
        if rgb.shape[:2] != image.shape:
            image_wh, mask_wh = (image.shape[1], image.shape[0]), (rgb.shape[1], rgb.shape[0])
            raise MaskSizeError([(self.images[index].stem, image_wh, mask_wh)])
        return image, colour_to_index(rgb, self.palette, source=self.masks[index].name)


class _Cached:
    def __init__(self, loader: ExampleSource) -> None:
        self.loader = loader
        self.store: dict[int, Example] = {}

    def __call__(self, index: int) -> Example:
        if index not in self.store:
            self.store[index] = self.loader(index)
        return self.store[index]

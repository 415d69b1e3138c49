"""Which writers (or pairs) an evaluation uses: the held-out role of the run's own split, every
writer of another dataset (cross-dataset), or a user's pair file."""

from __future__ import annotations

from pathlib import Path

from inkproof.artifact import ModelCard
from inkproof.data.adapters import load_dataset
from inkproof.data.pairs import PairSet, read_pair_file
from inkproof.data.records import SignatureDataset, combine_datasets
from inkproof.data.splits import ROLES, WriterSplit
from inkproof.errors import SplitError


def select_writers(
    card: ModelCard,
    model: Path,
    *,
    data: Path | None,
    data_format: str | None,
    split: str,
    split_file: Path | None,
    pairs: Path | None,
) -> tuple[SignatureDataset | None, list[str] | None, PairSet | None, str]:
    """(dataset, writers, pairs, label) for an evaluation request."""
    if pairs is not None:
        return None, None, read_pair_file(pairs, root=data), pairs.stem
    sources = [str(data)] if data is not None else list(card.training.get("data", []))
    if not sources:
        raise SplitError("the model card does not name its training data; pass --data")
    dataset = combine_datasets([load_dataset(source, data_format) for source in sources])
    if split == "all":
        return dataset, list(dataset.writers()), None, f"{dataset.name}-all"
    if split not in ROLES:
        raise SplitError(f"--split must be one of {', '.join((*ROLES, 'all'))}, got {split!r}")
    if split_file is not None:
        manifest = WriterSplit.load(split_file)
    elif "split" in card.training:
        manifest = WriterSplit.from_dict(card.training["split"])
    else:
        raise SplitError("the model card carries no split; pass --split-file or --split all")
    writers = writers_in(dataset, manifest.writers(split))
    if not writers:
        raise SplitError(
            f"none of the run's {split} writers belong to {dataset.name!r}; "
            "for another dataset use --split all (cross-dataset evaluation)"
        )
    return dataset, writers, None, f"{dataset.name}-{split}"


def writers_in(dataset: SignatureDataset, writers: tuple[str, ...]) -> list[str]:
    """The split's writers that exist in ``dataset``; a split made over several datasets names
    writers ``<dataset>/<writer>``, which maps onto the plain ids of one of them."""
    known = set(dataset.writers())
    direct = [w for w in writers if w in known]
    prefix = f"{dataset.name}/"
    stripped = [w[len(prefix) :] for w in writers if w.startswith(prefix) and w[len(prefix) :] in known]
    return direct + stripped

from __future__ import annotations

from pathlib import Path

import pytest

from inkproof.data.adapters import load_dataset
from inkproof.data.pairs import make_pairs
from inkproof.data.splits import (
    WriterSplit,
    kfold_writers,
    split_writers,
    subset_pairs,
    subset_writers,
)
from inkproof.errors import SplitError, UnknownWriterError
from tests.helpers import draw_scribble, write_png

WRITERS = [str(i) for i in range(1, 56)]


def test_split_is_disjoint_complete_and_deterministic() -> None:
    split = split_writers(WRITERS, fractions=(0.7, 0.15, 0.15), seed=0)
    train, validation, test = set(split.train), set(split.validation), set(split.test)
    assert not (train & validation or train & test or validation & test)
    assert train | validation | test == set(WRITERS)
    assert (len(train), len(validation), len(test)) == (39, 8, 8)
    assert split == split_writers(WRITERS, seed=0)
    assert split != split_writers(WRITERS, seed=1)


def test_every_used_role_gets_a_writer() -> None:
    split = split_writers(["a", "b", "c"], fractions=(0.9, 0.05, 0.05), seed=0)
    assert len(split.validation) == 1 and len(split.test) == 1
    with pytest.raises(SplitError, match="cannot fill"):
        split_writers(["a", "b"], fractions=(0.5, 0.25, 0.25))
    with pytest.raises(SplitError, match="summing to 1"):
        split_writers(WRITERS, fractions=(0.5, 0.5, 0.5))


def test_overlapping_explicit_split_is_refused() -> None:
    with pytest.raises(SplitError, match="both train and test"):
        WriterSplit(train=("1", "2"), validation=("3",), test=("2",))


def test_manifest_round_trip(tmp_path: Path) -> None:
    split = split_writers(WRITERS, seed=4, dataset="cedar")
    path = split.save(tmp_path / "split.json")
    assert WriterSplit.load(path) == split
    assert split.role_of(split.test[0]) == "test"
    with pytest.raises(UnknownWriterError):
        split.role_of("999")
    (tmp_path / "broken.json").write_text('{"train": []}')
    with pytest.raises(SplitError, match="not a split manifest"):
        WriterSplit.load(tmp_path / "broken.json")


def test_kfold_tests_every_writer_once() -> None:
    folds = kfold_writers(WRITERS, folds=5, seed=0)
    tested = [w for fold in folds for w in fold.test]
    assert sorted(tested) == sorted(WRITERS)
    for fold in folds:
        assert len(fold.test) == 11
        assert not set(fold.validation) & set(fold.test)
        assert not set(fold.train) & set(fold.test)
        assert len(fold.train) + len(fold.validation) + len(fold.test) == 55


def test_subsets_keep_class_balance(tmp_path: Path) -> None:
    image = draw_scribble(width=40, height=20)
    for writer in range(1, 11):
        for n in range(1, 5):
            write_png(tmp_path / f"genuine/original_{writer}_{n}.png", image)
            write_png(tmp_path / f"forged/forgeries_{writer}_{n}.png", image)
    dataset = load_dataset(tmp_path)
    half = subset_writers(dataset, fraction=0.5, seed=0)
    summary = half.summary()
    assert summary.writers == 5 and summary.genuine == summary.forged == 20
    assert subset_writers(dataset, count=3, seed=0).summary().writers == 3
    with pytest.raises(ValueError, match="exactly one"):
        subset_writers(dataset, fraction=0.5, count=3)

    pairs = make_pairs(dataset, seed=0)
    fraction = subset_pairs(pairs, fraction=0.25, seed=0)
    full, part = pairs.counts(), fraction.counts()
    for kind in ("genuine", "skilled", "random"):
        assert abs(part[kind] - full[kind] * 0.25) <= 1
    assert len(subset_pairs(pairs, count=17, seed=0)) == 17


@pytest.mark.realdata
def test_real_split_has_no_shared_writer(shared_data: Path) -> None:
    cedar = load_dataset(shared_data / "cedar")
    split = split_writers(cedar.writers(), seed=0)
    split.check_against(cedar)
    assert not set(split.train) & set(split.test)

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from inkproof.data.adapters import load_dataset
from inkproof.data.pairs import SignaturePair, make_pairs, pairs_to_csv, read_pair_file, write_pairs
from inkproof.data.records import SignatureDataset
from inkproof.errors import DatasetFormatError, EmptyDatasetError
from tests.helpers import draw_scribble, write_png


@pytest.fixture
def dataset(tmp_path: Path) -> SignatureDataset:
    image = draw_scribble(width=40, height=20)
    for writer in range(1, 5):
        for n in range(1, 6):
            write_png(tmp_path / f"genuine/original_{writer}_{n}.png", image)
        for n in range(1, 4):
            write_png(tmp_path / f"forged/forgeries_{writer}_{n}.png", image)
    (tmp_path / "near_duplicates.csv").write_text("path_a,path_b\ngenuine/original_1_1.png,genuine/original_1_2.png\n")
    return load_dataset(tmp_path)


def test_standard_protocol_counts(dataset: SignatureDataset) -> None:
    pairs = make_pairs(dataset, seed=0)
    counts = pairs.counts()
    # C(5,2) = 10 genuine pairs per writer, minus the listed re-scan pair of writer 1.
    assert counts["genuine"] == 4 * 10 - 1
    assert counts["skilled"] == 4 * 5 * 3
    assert counts["random"] == counts["skilled"]  # default: as many random as skilled
    assert counts["unknown"] == 0


def test_no_self_pairs_and_no_rescan_pairs(dataset: SignatureDataset) -> None:
    rescan = {dataset.root / "genuine/original_1_1.png", dataset.root / "genuine/original_1_2.png"}
    for pair in make_pairs(dataset, seed=0).pairs:
        assert pair.reference != pair.query
        assert {pair.reference, pair.query} != rescan


def test_pair_semantics(dataset: SignatureDataset) -> None:
    by_path = {r.path: r for r in dataset.records}
    for pair in make_pairs(dataset, seed=3).pairs:
        reference, query = by_path[pair.reference], by_path[pair.query]
        assert reference.is_genuine and reference.writer == pair.writer
        if pair.kind == "genuine":
            assert query.is_genuine and query.writer == pair.writer and pair.label == 1
        elif pair.kind == "skilled":
            assert not query.is_genuine and query.writer == pair.writer and pair.label == 0
        else:
            assert query.is_genuine and query.writer != pair.writer and pair.label == 0


def test_random_forgeries_stay_inside_the_selection(dataset: SignatureDataset) -> None:
    pairs = make_pairs(dataset, seed=0, writers=["1", "2"])
    writers_seen = {p.writer for p in pairs.pairs}
    by_path = {r.path: r.writer for r in dataset.records}
    assert writers_seen == {"1", "2"}
    assert {by_path[p.query] for p in pairs.pairs} <= {"1", "2"}


def test_sampled_counts_are_deterministic(dataset: SignatureDataset) -> None:
    first = make_pairs(dataset, seed=7, genuine=3, skilled=4, random=2)
    second = make_pairs(dataset, seed=7, genuine=3, skilled=4, random=2)
    other = make_pairs(dataset, seed=8, genuine=3, skilled=4, random=2)
    assert first == second
    assert first != other
    assert first.counts() == {"genuine": 12, "skilled": 16, "random": 8, "unknown": 0}
    assert pairs_to_csv(first) == pairs_to_csv(second)


def test_balanced_keeps_skilled_random_ratio(dataset: SignatureDataset) -> None:
    pairs = make_pairs(dataset, seed=0, balanced=True)
    counts = pairs.counts()
    assert counts["genuine"] == counts["skilled"] + counts["random"]
    assert abs(counts["skilled"] - counts["random"]) <= 1


def test_empty_selection(dataset: SignatureDataset) -> None:
    with pytest.raises(EmptyDatasetError):
        make_pairs(dataset, seed=0, writers=[])
    with pytest.raises(EmptyDatasetError):
        make_pairs(dataset, seed=0, genuine=0, skilled=0, random=0)


def test_csv_round_trip(dataset: SignatureDataset, tmp_path: Path) -> None:
    pairs = make_pairs(dataset, seed=0, genuine=2, skilled=2, random=2)
    target = write_pairs(pairs, tmp_path / "out" / "pairs.csv", root=dataset.root)
    back = read_pair_file(target, root=dataset.root)
    assert back.pairs == pairs.pairs
    assert target.read_text().splitlines()[0] == "img1,img2,label,kind,writer"


def test_plain_csv_and_text_pair_files(tmp_path: Path) -> None:
    (tmp_path / "plain.csv").write_text("a.png,b.png,1\na.png,c.png,0\n")
    plain = read_pair_file(tmp_path / "plain.csv")
    assert [p.kind for p in plain.pairs] == ["genuine", "unknown"]
    assert plain.pairs[0].reference == tmp_path / "a.png"
    (tmp_path / "pairs.txt").write_text("# reference query label\nx/a.tif x/b.tif 1\n\nx/a.tif y/c.tif 0\n")
    text = read_pair_file(tmp_path / "pairs.txt", root=tmp_path / "data")
    assert len(text) == 2
    assert text.pairs[1].query == tmp_path / "data" / "y/c.tif"


def test_flipped_label_convention(tmp_path: Path) -> None:
    # Some public pair lists mark forgeries with 1.
    (tmp_path / "flipped.csv").write_text("img1,img2,label\na.png,b.png,1\na.png,c.png,0\n")
    pairs = read_pair_file(tmp_path / "flipped.csv", genuine_label=0)
    assert [p.label for p in pairs.pairs] == [0, 1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("img1,img2,label\na.png,b.png,yes\n", "not a number"),
        ("img1,img2,label\na.png,b.png,2\n", "must be 0 or 1"),
        ("img1,img2,label\na.png\n", "expected img1,img2,label"),
        ("img1,img2,label\n", "holds no pairs"),
        ("img1,img2,label,kind\na.png,b.png,1,skilled\n", "does not agree"),
    ],
)
def test_malformed_pair_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises((DatasetFormatError, EmptyDatasetError), match=message):
        read_pair_file(path)


def test_text_pair_file_needs_three_fields(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("a.png b.png\n")
    with pytest.raises(DatasetFormatError, match="expected '<reference> <query> <label>'"):
        read_pair_file(tmp_path / "bad.txt")


def test_pair_validation() -> None:
    with pytest.raises(ValueError, match="label"):
        SignaturePair(Path("a"), Path("b"), 2, "genuine")
    with pytest.raises(ValueError, match="kind"):
        SignaturePair(Path("a"), Path("b"), 0, "imitation")  # type: ignore[arg-type]


@pytest.mark.realdata
def test_cedar_protocol_counts(shared_data: Path) -> None:
    cedar = load_dataset(shared_data / "cedar")
    pairs = make_pairs(cedar, seed=0, writers=["1"], random=0)
    assert pairs.counts()["genuine"] == 276
    assert pairs.counts()["skilled"] == 24 * 24
    for a, b in itertools.combinations(pairs.pairs[:50], 2):
        assert (a.reference, a.query) != (b.reference, b.query)

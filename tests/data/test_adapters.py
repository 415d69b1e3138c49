from __future__ import annotations

from pathlib import Path

import pytest

from inkproof.data.adapters import detect_format, discover_datasets, load_dataset
from inkproof.errors import DatasetFormatError, UnknownWriterError
from tests.helpers import draw_scribble, write_png


def _touch_images(root: Path, names: list[str]) -> None:
    image = draw_scribble(width=60, height=30)
    for name in names:
        write_png(root / name, image)


def test_cedar_layout(tmp_path: Path) -> None:
    _touch_images(
        tmp_path,
        [f"genuine/original_{w}_{n}.png" for w in (1, 2, 10) for n in (1, 2, 3)]
        + [f"forged/forgeries_{w}_{n}.png" for w in (1, 2, 10) for n in (1, 2)],
    )
    assert detect_format(tmp_path) == "cedar"
    dataset = load_dataset(tmp_path)
    assert dataset.writers() == ("1", "2", "10")
    summary = dataset.summary()
    assert (summary.writers, summary.genuine, summary.forged) == (3, 9, 6)
    forged = dataset.samples_of("10").forged
    assert [r.sample for r in forged] == [1, 2]
    assert all(r.label == "forged" and r.writer == "10" for r in forged)


@pytest.mark.parametrize(
    "names",
    [
        ["bhh_001_g_01.png", "bhh_001_g_02.png", "bhh_001_f_01.png", "bhh_002_g_01.png"],
        ["001/H-S-1-G-01.tif", "001/H-S-1-G-02.tif", "001/H-S-1-F-01.tif", "002/H-S-2-G-01.tif"],
        ["B-S-1-G-01.tif", "B-S-1-G-02.tif", "B-S-1-F-01.tif", "B-S-2-G-01.tif"],
    ],
)
def test_bhsig_layouts(tmp_path: Path, names: list[str]) -> None:
    _touch_images(tmp_path, names)
    assert detect_format(tmp_path) == "bhsig"
    dataset = load_dataset(tmp_path)
    assert dataset.writers() == ("1", "2")
    assert len(dataset.samples_of("1").genuine) == 2
    assert len(dataset.samples_of("1").forged) == 1


def test_sigcomp_layout_with_forger(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["049/01_049.png", "049/02_049.png", "049_forg/01_0114049.PNG", "050/01_050.png"])
    assert detect_format(tmp_path) == "sigcomp"
    dataset = load_dataset(tmp_path)
    assert dataset.writers() == ("49", "50")
    (forgery,) = dataset.samples_of("49").forged
    assert forgery.forger == "114"


def test_folder_per_writer_layout(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["alice/genuine/a.png", "alice/genuine/b.png", "alice/forged/c.png", "bob/genuine/d.jpg"])
    assert detect_format(tmp_path) == "folders"
    dataset = load_dataset(tmp_path)
    assert dataset.writers() == ("alice", "bob")
    assert dataset.summary().forged == 1


def test_explicit_format_override_and_mismatch(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["alice/genuine/a.png"])
    assert load_dataset(tmp_path, "folders").format == "folders"
    with pytest.raises(DatasetFormatError, match="match the 'cedar' layout"):
        load_dataset(tmp_path, "cedar")
    with pytest.raises(DatasetFormatError, match="unknown format"):
        load_dataset(tmp_path, "gpds")


def test_empty_folder_and_unknown_layout_list_expected_layouts(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="no images found") as info:
        detect_format(tmp_path)
    assert "cedar" in str(info.value) and "folders" in str(info.value)
    _touch_images(tmp_path, ["random_name.png"])
    with pytest.raises(DatasetFormatError, match="none matches a known layout"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetFormatError, match="does not exist"):
        detect_format(tmp_path / "missing")


def test_hidden_files_are_ignored(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["alice/genuine/a.png", ".cache/alice/genuine/x.png", "alice/genuine/.b.png"])
    assert len(load_dataset(tmp_path)) == 1


def test_near_duplicates_are_read_and_honoured(tmp_path: Path) -> None:
    _touch_images(tmp_path, [f"genuine/original_1_{n}.png" for n in (1, 2, 3)])
    (tmp_path / "near_duplicates.csv").write_text(
        "path_a,path_b,same_writer\ngenuine/original_1_1.png,genuine/original_1_3.png,1\n"
    )
    dataset = load_dataset(tmp_path)
    a, b = dataset.root / "genuine/original_1_1.png", dataset.root / "genuine/original_1_3.png"
    assert dataset.is_same_instance(a, b) and dataset.is_same_instance(b, a)
    assert not dataset.is_same_instance(a, dataset.root / "genuine/original_1_2.png")
    kept = dataset.without_near_duplicates()
    assert [r.path.name for r in kept.records] == ["original_1_1.png", "original_1_2.png"]


def test_subset_and_unknown_writer(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["a/genuine/1.png", "b/genuine/1.png", "c/genuine/1.png"])
    dataset = load_dataset(tmp_path)
    assert dataset.subset(["a", "c"]).writers() == ("a", "c")
    with pytest.raises(UnknownWriterError):
        dataset.subset(["zed"])
    with pytest.raises(UnknownWriterError):
        dataset.samples_of("zed")


def test_pair_file_as_dataset(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["genuine/original_1_1.png", "genuine/original_1_2.png", "forged/forgeries_1_1.png"])
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "img1,img2,label\ngenuine/original_1_1.png,genuine/original_1_2.png,1\n"
        "genuine/original_1_1.png,forged/forgeries_1_1.png,0\n"
    )
    assert detect_format(pairs) == "csv-pairs"
    dataset = load_dataset(pairs)
    assert dataset.summary().genuine == 2 and dataset.summary().forged == 1
    opaque = tmp_path / "opaque.txt"
    opaque.write_text("x.png y.png 1\n")
    with pytest.raises(DatasetFormatError, match="cannot be recovered"):
        load_dataset(opaque)


def test_discover_datasets_in_a_collection(tmp_path: Path) -> None:
    _touch_images(tmp_path / "cedar", ["genuine/original_1_1.png", "forged/forgeries_1_1.png"])
    _touch_images(tmp_path / "hindi", ["genuine/bhh_001_g_01.png"])
    _touch_images(tmp_path / "pages", ["pages/p1.tif"])
    found = discover_datasets(tmp_path)
    assert [p.name for p in found] == ["cedar", "hindi"]
    assert discover_datasets(tmp_path / "cedar") == [tmp_path / "cedar"]


@pytest.mark.realdata
def test_real_dataset_counts_match_the_data_readme(shared_data: Path) -> None:
    cedar = load_dataset(shared_data / "cedar").summary()
    assert (cedar.writers, cedar.genuine, cedar.forged) == (55, 1320, 1320)
    hindi = load_dataset(shared_data / "bhsig-hindi").summary()
    assert (hindi.writers, hindi.genuine, hindi.forged) == (100, 2393, 2992)
    assert hindi.near_duplicate_pairs == 166

"""Batch jobs on local Ray (2 workers): the scores of ``verify --pairs``, and a resume that
recomputes only the partitions a killed job had not finished."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inkproof.cli.app import app
from inkproof.data.adapters import load_dataset
from inkproof.data.pairs import make_pairs, write_pairs

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from inkproof.batch import BatchJobError, read_embeddings, read_scores, run_batch

runner = CliRunner()


def _comparable(rows: Iterator[dict]) -> list[dict]:
    """Rows with NaN scores (failed pairs) as None, so that equal rows compare equal."""
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()} for row in rows]


@pytest.fixture(scope="module")
def manifest(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pairs of the synthetic dataset (paths relative to it: pass it as the root)."""
    folder = tmp_path_factory.mktemp("manifest")
    pairs = write_pairs(
        make_pairs(load_dataset(synthetic_root), seed=0, genuine=1, skilled=1, random=1), folder / "p.csv"
    )
    # One pair with an image that is not a signature at all: only that pair fails.
    broken = folder / "broken.png"
    broken.write_bytes(b"not an image")
    with pairs.open("a", newline="") as handle:
        first = next(csv.reader(pairs.open()))  # header
        row = {name: "" for name in first}
        row.update({first[0]: str(broken), first[1]: str(sorted((synthetic_root / "W001" / "genuine").iterdir())[0])})
        row[first[2]] = "0"
        csv.writer(handle, lineterminator="\n").writerow([row[name] for name in first])
    return pairs


def test_batch_verify_gives_the_scores_of_verify_pairs(
    local_ray: None, manifest: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    single = tmp_path / "single.csv"
    result = runner.invoke(
        app, ["verify", "--pairs", str(manifest), "--data", str(synthetic_root), "--out", str(single), "--json"]
    )
    assert result.exit_code == 0, result.output
    with single.open(newline="") as handle:
        expected = list(csv.DictReader(handle))

    summary = run_batch(
        "verify", manifest, tmp_path / "job", root=synthetic_root, workers=2, partition_pairs=7, partition_images=16
    )
    rows = list(read_scores(tmp_path / "job"))
    assert summary.items == len(expected) == len(rows)
    assert [s.computed for s in summary.stages] == [s.partitions for s in summary.stages]
    for want, got in zip(expected, rows, strict=True):
        assert (got["reference"], got["query"]) == (want["reference"], want["query"])
        assert got["label"] == int(want["label"]) and got["kind"] == want["kind"]
        if want["error"]:
            assert got["error"] and got["decision"] == "" and np.isnan(got["score"])
        else:
            assert got["error"] == "" and got["decision"] == want["decision"]
            assert got["score"] == pytest.approx(float(want["score"]), abs=1e-6)
    assert sum(bool(r["error"]) for r in rows) == 1
    # Each distinct image was embedded once.
    embedded, vectors, errors = read_embeddings(tmp_path / "job" / "embeddings")
    assert len(embedded) + len(errors) == summary.distinct_images == len(vectors)


def test_a_killed_job_resumes_without_recomputing_finished_partitions(
    local_ray: None, manifest: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "job"
    first = run_batch("verify", manifest, out, root=synthetic_root, workers=2, partition_pairs=5, partition_images=16)
    parts = sorted((out / "scores").glob("part-*.parquet"))
    assert len(parts) == first.stages[1].partitions >= 4
    before = {p.name: os.stat(p).st_mtime_ns for p in parts}
    expected = _comparable(read_scores(out))
    # As a kill -9 leaves it: one partition never written, one written without its marker, a
    # half-written temporary file.
    parts[1].unlink()
    parts[1].with_suffix(".done").unlink()
    parts[2].with_suffix(".done").unlink()
    (out / "scores" / "part-00003.parquet.999.tmp").write_bytes(b"half")

    again = run_batch("verify", manifest, out, root=synthetic_root, workers=2, partition_pairs=5, partition_images=16)
    assert (again.stages[0].computed, again.stages[0].skipped) == (0, again.stages[0].partitions)
    assert (again.stages[1].computed, again.stages[1].skipped) == (2, again.stages[1].partitions - 2)
    after = {p.name: os.stat(p).st_mtime_ns for p in sorted((out / "scores").glob("part-*.parquet"))}
    unchanged = [name for name in before if name not in (parts[1].name, parts[2].name)]
    assert all(after[name] == before[name] for name in unchanged)
    assert _comparable(read_scores(out)) == expected

    # The folder belongs to that job: another partitioning is refused, not mixed in.
    with pytest.raises(BatchJobError, match="another job"):
        run_batch("verify", manifest, out, root=synthetic_root, workers=2, partition_pairs=6)


def test_parquet_pair_manifests_are_read_or_refused_clearly(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from inkproof.batch.manifest import read_manifest

    pq.write_table(pa.table({"reference": ["a.png"], "query": ["b.png"], "label": [0]}), tmp_path / "ok.parquet")
    read = read_manifest(tmp_path / "ok.parquet")
    assert read.labels == (0,) and read.references == (str((tmp_path / "a.png").resolve()),)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(BatchJobError, match="not a readable Parquet file"):
        read_manifest(tmp_path / "broken.parquet")
    pq.write_table(pa.table({"reference": ["a.png"], "query": ["b.png"], "label": ["yes"]}), tmp_path / "bad.parquet")
    with pytest.raises(BatchJobError, match="label must be 1"):
        read_manifest(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"image": ["a.png"]}), tmp_path / "images.parquet")
    with pytest.raises(BatchJobError, match="needs columns reference and query"):
        read_manifest(tmp_path / "images.parquet")
    assert read_manifest(tmp_path / "images.parquet", images_only=True).references == (
        str((tmp_path / "a.png").resolve()),
    )

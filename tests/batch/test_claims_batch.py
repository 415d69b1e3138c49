"""``batch verify-claims`` on local Ray (2 workers) against a real store: the answers of
``verify_claim``, typed errors in their rows, and a resume after a kill that recomputes only the
unfinished partitions and leaves exactly one log entry per claim, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import delete, select
from typer.testing import CliRunner

from inkproof.cli.app import app
from inkproof.store import Database, SignatureStore, open_database
from inkproof.store.helpers import META_REINDEX
from inkproof.store.schema import StoreMeta, VerificationLog
from inkproof.verifier import Verifier

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from inkproof.batch import (
    BatchJobError,
    claim_key,
    read_claims,
    read_claims_manifest,
    run_claims,
)
from inkproof.batch.claims import ClaimsWorker
from inkproof.batch.partitions import run_stage

runner = CliRunner()
ENROLLED = ("W001", "W002", "W003", "W004")


@pytest.fixture(scope="module")
def bundled() -> Iterator[Verifier]:
    """The bundled model (calibrated for claims), as the batch workers load it."""
    with Verifier(None, device="cpu") as loaded:
        yield loaded


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "store.db")


def enrolled_store(url: str, verifier: Verifier, synthetic_root: Path) -> Database:
    """Four writers with five references each, and one writer without references."""
    database = open_database(url)
    store = SignatureStore(database, verifier)
    for writer in ENROLLED:
        store.enroll(writer, sorted((synthetic_root / writer / "genuine").glob("*.png"))[:5])
    store.create_writer("NOREFS")
    return database


def write_claims(folder: Path, synthetic_root: Path) -> tuple[Path, list[dict[str, str]]]:
    """Claims relative to the dataset (pass it as the root): each enrolled writer's sixth genuine
    signature, two skilled forgeries and another writer's signature; then four rows that fail."""
    folder.mkdir(parents=True, exist_ok=True)
    blank = folder / "blank.png"
    Image.new("L", (220, 90), 255).save(blank)

    def image(writer: str, kind: str, i: int) -> str:
        return str(sorted((synthetic_root / writer / kind).glob("*.png"))[i].relative_to(synthetic_root))

    rows = []
    for n, writer in enumerate(ENROLLED):
        rows.append({"writer": writer, "query": image(writer, "genuine", 5), "label": "1", "kind": "genuine"})
        rows += [
            {"writer": writer, "query": image(writer, "forged", i), "label": "0", "kind": "skilled"} for i in (0, 1)
        ]
        other = f"W00{5 + n}"
        rows.append({"writer": writer, "query": image(other, "genuine", 0), "label": "0", "kind": "random"})
    rows += [
        {"writer": "NOBODY", "query": image("W001", "genuine", 5), "label": "", "kind": ""},
        {"writer": "W001", "query": str(blank), "label": "-1", "kind": "blank"},
        {"writer": "NOREFS", "query": image("W002", "genuine", 5), "label": "", "kind": ""},
        {"writer": "W002", "query": str(folder / "missing.png"), "label": "", "kind": ""},
    ]
    path = folder / "claims.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["writer", "query", "label", "kind"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path, rows


ERRORS = ("UnknownWriterError", "NoInkError", "NoReferencesError", "InvalidImageError")


def logged_keys(database: Database) -> list[str | None]:
    with database.session(write=False) as session:
        return list(session.scalars(select(VerificationLog.idempotency_key).order_by(VerificationLog.id)))


def test_claims_batch_gives_the_answers_of_verify_claim(
    local_ray: None, bundled: Verifier, synthetic_root: Path, tmp_path: Path
) -> None:
    url = str(tmp_path / "store.db")
    database = enrolled_store(url, bundled, synthetic_root)
    manifest, claims = write_claims(tmp_path / "m", synthetic_root)
    out = tmp_path / "job"
    command = ["batch", "verify-claims", "--claims", str(manifest), "--db", url, "--out", str(out)]
    command += ["--root", str(synthetic_root), "--operating-point", "eer", "--partition-size", "4", "--json"]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # Ray logs to stderr
    rows = list(read_claims(out))
    assert summary["job"] == "verify-claims" and summary["items"] == len(claims) == len(rows)
    assert summary["stages"][0]["computed"] == summary["stages"][0]["partitions"] == 5
    assert summary["outcomes"]["error"] == 4 and sum(summary["outcomes"].values()) == len(claims)

    # Every row in manifest order, errors typed in their rows, the rest as verify_claim answers.
    store = SignatureStore(database, bundled)
    for claim, row in zip(claims, rows, strict=True):
        assert row["writer"] == claim["writer"]
        assert row["query"] == str((synthetic_root / claim["query"]).resolve())
        assert row["label"] == int(claim["label"] or -1) and row["kind"] == (claim["kind"] or "unknown")
    for row, error in zip(rows[-4:], ERRORS, strict=True):
        assert row["error"].startswith(f"{error}:") and row["decision"] == "" and row["log_id"] is None
        assert np.isnan(row["score"])
    decisions = set()
    for row in rows[:-4]:
        assert row["error"] == ""
        direct = store.verify_claim(row["writer"], row["query"], operating_point="eer")
        assert (row["decision"], row["status"], row["method"]) == (direct.decision, direct.status, direct.method)
        assert row["score"] == pytest.approx(direct.fused_score, abs=1e-6)
        assert (row["accept_threshold"], row["reject_threshold"]) == (direct.accept_threshold, direct.reject_threshold)
        decisions.add(row["decision"])
    assert len(decisions) >= 2  # the claims are not all decided alike
    # One log entry per claim that was scored, keyed by the job (partitions run side by side, so
    # in any order); then the direct claims, unkeyed.
    record = json.loads((out / "_job.json").read_text())
    digest = record["idempotency_keys"].split(":")[0]
    scored = len(rows) - 4
    keys = logged_keys(database)
    assert sorted(keys[:scored], key=str) == sorted((claim_key(digest, i) for i in range(scored)), key=str)
    assert keys[scored:] == [None] * scored
    assert sorted(r["log_id"] for r in rows[:scored]) == list(range(1, scored + 1))
    database.dispose()


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}


def test_a_killed_claims_job_resumes_and_logs_each_claim_once(
    local_ray: None, bundled: Verifier, synthetic_root: Path, store_url: str, tmp_path: Path
) -> None:
    database = enrolled_store(store_url, bundled, synthetic_root)
    manifest, _ = write_claims(tmp_path / "m", synthetic_root)
    out = tmp_path / "job"

    def run(folder: Path = out, **options: Any) -> Any:
        return run_claims(
            manifest, folder, database=store_url, root=synthetic_root, workers=2, partition_claims=3, **options
        )

    first = run()
    assert (first.stages[0].partitions, first.stages[0].computed) == (7, 7)
    before = [_comparable(r) for r in read_claims(out)]
    parts = sorted((out / "claims").glob("part-*.parquet"))
    mtimes = {p.name: os.stat(p).st_mtime_ns for p in parts}
    digest = json.loads((out / "_job.json").read_text())["idempotency_keys"].split(":")[0]
    scored = [i for i, row in enumerate(before) if not row["error"]]
    expected = sorted(claim_key(digest, i) for i in scored)
    assert sorted(map(str, logged_keys(database))) == expected

    # As a kill -9 leaves it: partition 1 killed after logging its first claim (its later claims
    # never logged, its file never written), partition 2 written but not marked done.
    lost = [claim_key(digest, i) for i in (4, 5)]
    with database.session() as session:
        session.execute(delete(VerificationLog).where(VerificationLog.idempotency_key.in_(lost)))
    parts[1].unlink()
    parts[1].with_suffix(".done").unlink()
    parts[2].with_suffix(".done").unlink()

    again = run()
    assert (again.stages[0].computed, again.stages[0].skipped) == (2, 5)
    after = [_comparable(r) for r in read_claims(out)]
    unchanged = [p.name for i, p in enumerate(parts) if i not in (1, 2)]
    assert all(os.stat(out / "claims" / name).st_mtime_ns == mtimes[name] for name in unchanged)
    # Exactly one log entry per scored claim: the replayed ones kept their entries (and ids), the
    # two lost ones were scored and logged again, with the same answers.
    keys = logged_keys(database)
    assert sorted(map(str, keys)) == expected and len(keys) == len(scored)
    for i, (old, new) in enumerate(zip(before, after, strict=True)):
        if i in (4, 5):
            assert new["log_id"] > max(r["log_id"] or 0 for r in before)
            old, new = {**old, "log_id": None}, {**new, "log_id": None}
            assert new.pop("score") == pytest.approx(old.pop("score"), abs=1e-6)
        assert new == old

    # The same job in another folder is the same claims: answered from the log, nothing logged.
    elsewhere = run(tmp_path / "again")
    assert elsewhere.stages[0].computed == 7 and logged_keys(database) == keys
    assert [r["log_id"] for r in read_claims(tmp_path / "again")] == [r["log_id"] for r in after]
    # The folder belongs to its job: another operating point is refused, not mixed in.
    with pytest.raises(BatchJobError, match=r"another job.*operating_point"):
        run(operating_point="eer")
    database.dispose()


def test_manifests_and_stores_are_checked_before_anything_runs(
    bundled: Verifier, synthetic_root: Path, tmp_path: Path
) -> None:
    def manifest(text: str, name: str = "c.csv") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    cases = {
        "": "empty file",
        "writer,image\nW001,a.png\n": "no query column",
        "query\na.png\n": "no writer column",
        "writer,query\n": "no claims",
        "writer,query,label\nW001,a.png,1\nW001,b.png,yes\n": "row 2: label must be 1",
        "writer,query,label\nW001,a.png,2\n": "label must be 1 .*got '2'",
        "writer,query\n,a.png\n": "row 1 has an empty writer",
    }
    for text, message in cases.items():
        with pytest.raises(BatchJobError, match=message):
            read_claims_manifest(manifest(text))
    good = read_claims_manifest(manifest("writer,query,label,kind,extra\nW001, a.png ,1.0,,x\nW002,/abs/b.png,,k,y\n"))
    assert good.writers == ("W001", "W002") and good.labels == (1, -1) and good.kinds == ("unknown", "k")
    assert good.queries == (str(tmp_path / "a.png"), "/abs/b.png")

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"writer": ["W001"], "image": ["a.png"]}), tmp_path / "c.parquet")
    with pytest.raises(BatchJobError, match="no query column"):
        read_claims_manifest(tmp_path / "c.parquet")
    pq.write_table(pa.table({"writer": ["W001"], "query": ["a.png"], "label": [0]}), tmp_path / "d.parquet")
    assert read_claims_manifest(tmp_path / "d.parquet").labels == (0,)

    # On the command line: one line and exit status 2, never a traceback.
    bad = manifest("writer,query,label\nW001,a.png,maybe\n")
    result = runner.invoke(app, ["batch", "verify-claims", "--claims", str(bad), "--db", "x.db", "--out", "o"])
    assert result.exit_code == 2 and "BatchJobError" in result.output and "Traceback" not in result.output

    # The store must exist, hold this model's embeddings and writers, and not be mid-reindex.
    good_path = manifest("writer,query\nW001,a.png\n")
    with pytest.raises(BatchJobError, match="no store at"):
        run_claims(good_path, tmp_path / "o1", database=tmp_path / "none.db")
    with pytest.raises(BatchJobError, match="operating point must be one of"):
        run_claims(good_path, tmp_path / "o1", database=tmp_path / "none.db", operating_point="far1")
    empty = tmp_path / "empty.db"
    open_database(empty).dispose()
    with pytest.raises(BatchJobError, match="no enrolled writers"):
        run_claims(good_path, tmp_path / "o2", database=empty)
    database = enrolled_store(str(tmp_path / "s.db"), bundled, synthetic_root)
    with database.session() as session:
        session.add(StoreMeta(key=META_REINDEX, value="x"))
    with pytest.raises(BatchJobError, match="being reindexed"):
        run_claims(good_path, tmp_path / "o3", database=tmp_path / "s.db")
    database.dispose()
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3" / "claims").exists()


def test_a_store_wide_error_stops_the_stage_in_one_line(
    local_ray: None, bundled: Verifier, synthetic_root: Path, tmp_path: Path
) -> None:
    """What is wrong with the store, not with one claim, is no row's error: the stage stops with
    the typed error and the partition stays unfinished for a rerun."""
    url = str(tmp_path / "s.db")
    database = enrolled_store(url, bundled, synthetic_root)
    manifest, _ = write_claims(tmp_path / "m", synthetic_root)
    with database.session() as session:  # a reindex began after the job started
        session.add(StoreMeta(key=META_REINDEX, value="x"))
    arguments = {
        "manifest": read_claims_manifest(manifest, root=synthetic_root),
        "folder": str(tmp_path / "job"),
        "size": 100,
        "database": url,
        "model": None,
        "operating_point": "eer",
        "job_digest": "0" * 64,
    }
    with pytest.raises(BatchJobError, match=r"partition 0 failed: ReindexInProgressError: .*run the job again"):
        run_stage("claims", tmp_path / "job", 20, 100, ClaimsWorker, arguments, 1, lambda *_: None)
    assert not list((tmp_path / "job").glob("part-*")) and logged_keys(database) == []
    database.dispose()

"""A process killed (SIGKILL) in the middle of enrolling never leaves a partial writer."""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from inkproof.store import open_database

REPO = Path(__file__).resolve().parents[2]
REFERENCES = 60

# Enrolls writers K<run>_0, K<run>_1, ... of 60 references each until it is killed. After each
# flush it reports how many references the flush wrote and dawdles a little, so that kills land
# inside the enrollment's transaction (rows written, not committed) as well as elsewhere.
ENROLLER = """
import sys, time
from sqlalchemy import event
from sqlalchemy.orm import Session
from inkproof.imaging import load_image
from inkproof.store import SignatureStore, open_database
from inkproof.store.schema import Reference
from inkproof.verifier import Verifier

database, model, run, references, *paths = sys.argv[1:]
store = SignatureStore(open_database(database), Verifier(model, device="cpu", threads=1))


def after_flush(session, context):
    written = sum(isinstance(item, Reference) for item in session.new)
    print("flushed", written, flush=True)
    time.sleep(0.3 if written else 0.05)


event.listen(Session, "after_flush", after_flush)
base = [load_image(path) for path in paths]
copies = []
for i in range(int(references)):
    image = base[i % len(base)].copy()
    image[0, 0] = 200 + i % 50  # a small change in a paper corner: every copy has its own sha256
    image[0, 1] = 200 + i // 50
    copies.append(image)
print("started", flush=True)
for k in range(1000):
    name = f"K{run}_{k}"
    store.enroll(name, copies)
    print("committed", name, flush=True)
"""


def wait_for_line(process: subprocess.Popen[str], expected: str, timeout: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.strip() == expected:
                return
            if not line:
                break
    process.kill()
    raise AssertionError(f"no {expected!r} line; stderr: {process.stderr.read() if process.stderr else ''}")


def kill_during(script: str, args: Sequence[str], *, inside: int | None, pause: float) -> set[str]:
    """Run ``script`` (it prints ``started``, ``flushed N`` and ``committed NAME`` lines), SIGKILL it
    right after a flush of ``inside`` rows (a transaction written but not committed) or, with
    ``inside`` None, ``pause`` seconds after it started; the names it reported committed."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_line(process, "started", timeout=120)
    if inside is not None:
        wait_for_line(process, f"flushed {inside}", timeout=60)
    else:
        time.sleep(pause)
    os.kill(process.pid, signal.SIGKILL)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return {line.split()[1] for line in out.splitlines() if line.startswith("committed")}


def killed_enrollments_leave_whole_writers(
    script: str,
    model: Path,
    database: Path,
    images: Sequence[str],
    *,
    references: int,
    seed: int,
    pauses: tuple[float, float],
) -> dict[str, int]:
    """Kill an enrolling ``script`` three times: first right after a transaction's references were
    written (inside it), then at random moments in ``pauses`` seconds. After every kill the SQLite
    store is intact and each writer complete (``references`` rows) or absent; the final counts."""
    rng = random.Random(seed)
    committed: set[str] = set()
    counts: dict[str, int] = {}
    for run in range(3):
        args = [str(database), str(model), str(run), str(references), *images]
        pause = 0.0 if run == 0 else rng.uniform(*pauses)
        committed |= kill_during(script, args, inside=references if run == 0 else None, pause=pause)
        if run == 0:
            assert not committed  # killed inside the first enrollment's transaction
        with open_database(database) as db, db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            counts = dict(
                connection.exec_driver_sql(
                    "SELECT w.external_id, count(r.id) FROM writers w "
                    "LEFT JOIN signature_references r ON r.writer_id = w.id GROUP BY w.external_id"
                ).all()
            )
        assert all(count == references for count in counts.values()), counts
        assert committed <= set(counts)  # everything reported committed survived the kill
        assert len(set(counts) - committed) <= 1  # at most the one committed just before the kill
        if run == 0:
            assert "K0_0" not in counts  # its rows were written but never committed
    return counts


def test_killed_enrollments_leave_no_partial_writer(store_model: Path, synthetic_root: Path, tmp_path: Path) -> None:
    database = tmp_path / "kill.db"
    open_database(database).dispose()
    images = [str(p) for p in sorted((synthetic_root / "W001" / "genuine").glob("*.png"))]
    counts = killed_enrollments_leave_whole_writers(
        ENROLLER, store_model, database, images, references=REFERENCES, seed=20240601, pauses=(0.2, 2.5)
    )
    # The file is a plain SQLite database that other tools can read too.
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM writers").fetchone()[0] == len(counts)

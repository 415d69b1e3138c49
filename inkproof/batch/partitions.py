"""Partitions of a job's stage: the deterministic plan, the files (Parquet written atomically,
then a done marker), the job record that ties a folder to one job, and running the unfinished
partitions of a stage on Ray Data."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.atomic import write_json_atomic
from inkproof.batch.common import BatchJobError, StageSummary, pyarrow_modules
from inkproof.errors import InkproofError
from inkproof.imaging import one_line

JOB_FILE = "_job.json"


def partitions(count: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) of each partition of ``count`` rows: deterministic, so a rerun finds its own."""
    return [(start, min(count, start + size)) for start in range(0, count, size)]


# --- partition files -------------------------------------------------------------------------


def _part_path(folder: Path, index: int) -> Path:
    return folder / f"part-{index:05d}.parquet"


def partition_done(folder: Path, index: int) -> bool:
    """Finished: the Parquet file and its marker (written after it) both exist."""
    return _part_path(folder, index).is_file() and _part_path(folder, index).with_suffix(".done").is_file()


def write_partition(folder: Path, index: int, columns: dict[str, Any], schema: Any = None) -> int:
    """Write one partition atomically, then its marker; returns the number of rows."""
    pa, pq = pyarrow_modules()
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns, schema=schema)
    target = _part_path(folder, index)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    pq.write_table(table, temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    write_json_atomic(target.with_suffix(".done"), {"rows": table.num_rows})
    return int(table.num_rows)


def read_partitions(folder: Path) -> Iterator[dict[str, Any]]:
    """The rows of a stage's partitions in manifest order."""
    _, pq = pyarrow_modules()
    for part in sorted(folder.glob("part-*.parquet")):
        yield from pq.read_table(part).to_pylist()


# --- running ----------------------------------------------------------------------------------


def check_job(out: Path, record: dict[str, Any]) -> None:
    """Write the job record into a new folder; refuse a folder that holds another job."""
    path = out / JOB_FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != record:
            changed = sorted(k for k in record.keys() | previous.keys() if record.get(k) != previous.get(k))
            raise BatchJobError(
                f"{out} holds another job ({JOB_FILE} differs: {', '.join(changed)}); give a new --out or "
                "remove the folder"
            )
    else:
        write_json_atomic(path, record)


def start_ray(address: str | None, workers: int) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BatchJobError("batch jobs need ray: pip install 'inkproof[scale]'") from exc
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    return ray


def begin_job(
    out: str | Path,
    record: dict[str, Any],
    progress: bool | Callable[[str, int, int], None],
    address: str | None,
    workers: int,
) -> tuple[Path, Callable[[str, int, int], None]]:
    """What every job does before its stages: claim the folder for ``record`` (refusing one that
    holds another job), choose the progress callback and start Ray. Returns (folder, progress)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    check_job(folder, record)
    show = progress if callable(progress) else progress_printer(bool(progress))
    start_ray(address, workers)
    return folder, show


def run_partitions(batch: dict[str, np.ndarray], run: Callable[[int], int]) -> dict[str, np.ndarray]:
    """A worker's answer to a batch of partition indexes: the rows written for each, or the typed
    error that stopped one. The driver reports that error in one line; raised in the actor, it
    would reach the driver as Ray's traceback with the message buried in it."""
    rows, errors = [], []
    for index in batch["partition"]:
        try:
            rows.append(run(int(index)))
            errors.append("")
        except InkproofError as exc:
            rows.append(-1)
            errors.append(f"{type(exc).__name__}: {one_line(exc)}")
    return {"partition": np.asarray(batch["partition"]), "rows": np.asarray(rows), "error": np.asarray(errors)}


def run_stage(
    name: str,
    folder: Path,
    count: int,
    size: int,
    worker: type,
    arguments: dict[str, Any],
    workers: int,
    progress: Callable[[str, int, int], None],
) -> StageSummary:
    """Run the partitions of one stage that are not finished yet, ``workers`` actors at once."""
    began = time.perf_counter()
    plan = partitions(count, size)
    todo = [i for i in range(len(plan)) if not partition_done(folder, i)]
    skipped = len(plan) - len(todo)
    progress(name, skipped, len(plan))
    if todo:
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        tasks = ray.data.from_items([{"partition": i} for i in todo], override_num_blocks=len(todo))
        results = tasks.map_batches(
            worker,
            fn_constructor_kwargs=arguments,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(todo)))),
            num_cpus=1,
        )
        done = skipped
        for result in results.iter_rows():
            if result["error"]:
                raise BatchJobError(
                    f"{name}: partition {result['partition']} failed: {result['error']}; the {done} finished "
                    "partitions are kept, run the job again to resume"
                )
            done += 1
            progress(name, done, len(plan))
    return StageSummary(name, len(plan), len(todo), skipped, count, time.perf_counter() - began)


def progress_printer(enabled: bool) -> Callable[[str, int, int], None]:
    def show(stage: str, done: int, total: int) -> None:
        if enabled:
            print(f"{stage}: {done}/{total} partitions", flush=True)

    return show


__all__ = [
    "JOB_FILE",
    "begin_job",
    "check_job",
    "partition_done",
    "partitions",
    "progress_printer",
    "read_partitions",
    "run_partitions",
    "run_stage",
    "start_ray",
    "write_partition",
]

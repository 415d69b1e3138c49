"""Batch jobs on Ray Data: ``inkproof batch embed`` and ``inkproof batch verify``.

A job reads a manifest (CSV or Parquet) and runs in two stages, each cut into partitions by
position in the manifest, so the same manifest always gives the same partitions:

1. **embed**: the distinct images of the manifest (in order of first appearance) are embedded, a
   partition of images per task; each image is decoded and embedded exactly once in the job.
2. **score** (verify only): pairs are scored from those embeddings with the model's head, a
   partition of pairs per task, written with the columns of ``inkproof verify --pairs``.

Tasks run in Ray actors (:class:`ray.data.ActorPoolStrategy` via ``map_batches``), each holding one
torch-free :class:`inkproof.Verifier` loaded once. Every partition is written as a Parquet file
(a sibling renamed over it) followed by a ``.done`` marker (written the same way); a partition
counts as finished only when both exist, so a job killed at any point (even ``kill -9``) resumes
with the partitions it lacks and never recomputes finished ones. ``_job.json`` records what the
folder was made from (manifest digest, partition size, model, threshold) and a different job is
refused in it.

Ray, pyarrow and pandas are imported inside functions only: ``import inkproof`` stays light.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.atomic import write_json_atomic
from inkproof.errors import InkproofError

PARTITION_PAIRS = 4096
PARTITION_IMAGES = 256
JOB_FILE = "_job.json"
PAIR_COLUMNS = ("reference", "query", "score", "decision", "label", "kind", "error")


class BatchJobError(InkproofError):
    """A batch job cannot start: a bad manifest, Ray or pyarrow missing, or an output folder
    that holds another job."""


@dataclass(frozen=True)
class StageSummary:
    stage: str  # "embed" or "score"
    partitions: int
    computed: int  # partitions run now
    skipped: int  # partitions finished by an earlier run
    rows: int
    seconds: float


@dataclass(frozen=True)
class BatchSummary:
    job: str  # "embed" or "verify"
    out: str
    items: int  # images (embed) or pairs (verify)
    distinct_images: int
    stages: tuple[StageSummary, ...]
    seconds: float
    workers: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Manifest:
    """The pairs (reference, query, label, kind) or images of a manifest, with absolute paths."""

    references: tuple[str, ...]
    queries: tuple[str, ...]
    labels: tuple[int, ...]
    kinds: tuple[str, ...]
    digest: str

    @property
    def images(self) -> list[str]:
        """Distinct images in order of first appearance."""
        return list(dict.fromkeys(p for pair in zip(self.references, self.queries, strict=True) for p in pair))


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise BatchJobError("batch jobs need pyarrow and ray: pip install 'inkproof[scale]'") from exc
    return pa, pq


def _digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def read_manifest(path: str | Path, *, root: str | Path | None = None, images_only: bool = False) -> Manifest:
    """Pairs from a pair CSV/text file (as ``verify --pairs`` reads it) or a Parquet file with
    ``reference``, ``query`` and optional ``label``, ``kind`` columns; with ``images_only`` also a
    one-column list of images (CSV or Parquet column ``image``). Relative paths start at ``root``
    (default: the manifest's folder)."""
    source = Path(path)
    if not source.is_file():
        raise BatchJobError(f"manifest {source} not found")
    base = Path(root).resolve() if root is not None else source.resolve().parent
    digest = _digest(source)

    def resolve(value: str) -> str:
        return str((base / value).resolve()) if not os.path.isabs(value) else value

    if source.suffix.lower() == ".parquet":
        _, pq = _pyarrow()
        table = pq.read_table(source)
        columns = set(table.column_names)
        if images_only and "image" in columns:
            images = [resolve(str(v)) for v in table.column("image").to_pylist()]
            return Manifest(tuple(images), tuple(images), (), (), digest)
        if not {"reference", "query"} <= columns:
            raise BatchJobError(f"{source}: a Parquet manifest needs columns reference and query (or image)")
        references = [resolve(str(v)) for v in table.column("reference").to_pylist()]
        queries = [resolve(str(v)) for v in table.column("query").to_pylist()]
        n = len(references)
        labels = [int(v) for v in table.column("label").to_pylist()] if "label" in columns else [-1] * n
        kinds = [str(v) for v in table.column("kind").to_pylist()] if "kind" in columns else ["unknown"] * n
        return Manifest(tuple(references), tuple(queries), tuple(labels), tuple(kinds), digest)
    if images_only:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and row[0].strip()]
        if rows and len(rows[0]) == 1:  # a list of images, with or without an "image" header
            values = [row[0].strip() for row in rows if row[0].strip().lower() != "image"]
            images = [resolve(v) for v in values]
            return Manifest(tuple(images), tuple(images), (), (), digest)
    from inkproof.data.pairs import read_pair_file
    from inkproof.errors import DatasetFormatError, EmptyDatasetError

    try:
        pairs = read_pair_file(source, root=base).pairs
    except (DatasetFormatError, EmptyDatasetError) as exc:
        raise BatchJobError(str(exc)) from None
    return Manifest(
        tuple(str(p.reference) for p in pairs),
        tuple(str(p.query) for p in pairs),
        tuple(int(p.label) for p in pairs),
        tuple(str(p.kind) for p in pairs),
        digest,
    )


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
    pa, pq = _pyarrow()
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


# --- workers (Ray actors) ------------------------------------------------------------------


def _open_verifier(model: str | None, threshold: float | None, rule: str) -> Any:
    from inkproof.verifier import Verifier

    return Verifier(model, threshold=threshold, rule=rule, threads=1)


class EmbedWorker:
    """Embeds partitions of the job's distinct images; one verifier per actor."""

    def __init__(self, manifest: Manifest, folder: str, size: int, model: str | None) -> None:
        self.images = manifest.images
        self.folder = Path(folder)
        self.size = size
        self.verifier = _open_verifier(model, None, "eer")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for index in batch["partition"]:
            rows.append(self.run(int(index)))
        return {"partition": np.asarray(batch["partition"]), "rows": np.asarray(rows)}

    def run(self, index: int) -> int:
        pa, _ = _pyarrow()
        start = index * self.size
        images = self.images[start : start + self.size]
        embedded = self.verifier.embed_distinct(images)
        dim = self.verifier.card.embedding_dim
        vectors, errors = [], []
        for image in images:
            problem = embedded.error_of(image)
            errors.append("" if problem is None else str(problem))
            vectors.append(np.zeros(dim, np.float32) if problem is not None else embedded.vector(image))
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(images), dim)
        vector_type = pa.list_(pa.float32(), dim)
        columns = {
            "image": pa.array(images, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), pa.float32()), dim),
            "error": pa.array(errors, pa.string()),
        }
        schema = pa.schema([("image", pa.string()), ("vector", vector_type), ("error", pa.string())])
        return write_partition(self.folder, index, columns, schema)


def read_embeddings(folder: str | Path) -> tuple[dict[str, int], np.ndarray, dict[str, str]]:
    """(row of each image, vectors, error of each failed image) of an embed stage's partitions."""
    _, pq = _pyarrow()
    rows: dict[str, int] = {}
    errors: dict[str, str] = {}
    blocks: list[np.ndarray] = []
    for part in sorted(Path(folder).glob("part-*.parquet")):
        table = pq.read_table(part)
        images = table.column("image").to_pylist()
        problems = table.column("error").to_pylist()
        vectors = table.column("vector").combine_chunks()
        dim = vectors.type.list_size
        matrix = np.asarray(vectors.values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
        offset = sum(int(b.shape[0]) for b in blocks)
        for i, (image, problem) in enumerate(zip(images, problems, strict=True)):
            if problem:
                errors[image] = problem
            else:
                rows[image] = offset + i
        blocks.append(matrix)
    return rows, (np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)), errors


class ScoreWorker:
    """Scores partitions of pairs from the embed stage's output; one verifier per actor."""

    def __init__(
        self, manifest: Manifest, folder: str, embeddings: str, size: int, model: str | None, threshold: Any
    ) -> None:
        self.manifest = manifest
        self.folder = Path(folder)
        self.size = size
        value, rule = threshold
        self.verifier = _open_verifier(model, value, rule)
        self.rows, self.vectors, self.errors = read_embeddings(embeddings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self.run(int(index)) for index in batch["partition"]]
        return {"partition": np.asarray(batch["partition"]), "rows": np.asarray(rows)}

    def run(self, index: int) -> int:
        from inkproof.verifier import DistinctEmbeddings, source_key

        m = self.manifest
        start, stop = index * self.size, min(len(m.references), (index + 1) * self.size)
        pairs = [(m.references[i], m.queries[i]) for i in range(start, stop)]
        usable = [p for p in pairs if p[0] in self.rows and p[1] in self.rows]
        needed = list(dict.fromkeys(path for pair in usable for path in pair))
        embedded = DistinctEmbeddings(
            {source_key(path): row for row, path in enumerate(needed)},
            self.vectors[[self.rows[path] for path in needed]] if needed else np.zeros((0, 0), np.float32),
            {},
        )
        # The same scoring call as ``verify --pairs``: identical scores and decisions.
        scored = iter(self.verifier.score_pairs(embedded, usable))
        columns: dict[str, list[Any]] = {name: [] for name in PAIR_COLUMNS}
        for offset, (reference, query) in enumerate(pairs):
            problem = self.errors.get(reference) or self.errors.get(query) or ""
            score, decision = (float("nan"), "")
            if not problem:
                result = next(scored)
                score, decision = result.score, result.decision
            columns["reference"].append(reference)
            columns["query"].append(query)
            columns["score"].append(score)
            columns["decision"].append(decision)
            columns["label"].append(m.labels[start + offset] if m.labels else -1)
            columns["kind"].append(m.kinds[start + offset] if m.kinds else "unknown")
            columns["error"].append(problem)
        return write_partition(self.folder, index, columns)


# --- running ----------------------------------------------------------------------------------


def _check_job(out: Path, record: dict[str, Any]) -> None:
    path = out / JOB_FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != record:
            raise BatchJobError(
                f"{out} holds another job ({JOB_FILE} differs: manifest, partition size, model or "
                "threshold); give a new --out or remove the folder"
            )
    else:
        write_json_atomic(path, record)


def _start_ray(address: str | None, workers: int) -> Any:
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


def _run_stage(
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
        for _ in results.iter_rows():
            done += 1
            progress(name, done, len(plan))
    return StageSummary(name, len(plan), len(todo), skipped, count, time.perf_counter() - began)


def _progress_printer(enabled: bool) -> Callable[[str, int, int], None]:
    def show(stage: str, done: int, total: int) -> None:
        if enabled:
            print(f"{stage}: {done}/{total} partitions", flush=True)

    return show


def run_batch(
    job: str,
    manifest_path: str | Path,
    out: str | Path,
    *,
    root: str | Path | None = None,
    model: str | Path | None = None,
    threshold: float | None = None,
    rule: str = "eer",
    workers: int = 2,
    address: str | None = None,
    partition_pairs: int = PARTITION_PAIRS,
    partition_images: int = PARTITION_IMAGES,
    progress: bool | Callable[[str, int, int], None] = False,
) -> BatchSummary:
    """Run (or resume) ``embed`` or ``verify`` over a manifest into ``out`` on local Ray
    (``workers`` CPUs) or the cluster at ``address``; see the module docstring."""
    if job not in ("embed", "verify"):
        raise ValueError(f"job must be 'embed' or 'verify', got {job!r}")
    _pyarrow()
    began = time.perf_counter()
    manifest = read_manifest(manifest_path, root=root, images_only=job == "embed")
    model_name = None if model is None else str(Path(model).resolve())
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    from inkproof.verifier import Verifier

    with Verifier(model_name) as probe:  # fails early on a bad model; names it in the job record
        card = probe.card
        tag = f"{card.name}:{json.dumps(sorted(card.sha256.items()))}"
    record = {
        "job": job,
        "manifest_sha256": manifest.digest,
        "partition_pairs": partition_pairs,
        "partition_images": partition_images,
        "model": tag,
        "threshold": threshold,
        "rule": rule,
    }
    _check_job(folder, record)
    show = progress if callable(progress) else _progress_printer(bool(progress))
    _start_ray(address, workers)
    images = manifest.images
    stages = [
        _run_stage(
            "embed",
            folder / "embeddings",
            len(images),
            partition_images,
            EmbedWorker,
            {"manifest": manifest, "folder": str(folder / "embeddings"), "size": partition_images, "model": model_name},
            workers,
            show,
        )
    ]
    if job == "verify":
        stages.append(
            _run_stage(
                "score",
                folder / "scores",
                len(manifest.references),
                partition_pairs,
                ScoreWorker,
                {
                    "manifest": manifest,
                    "folder": str(folder / "scores"),
                    "embeddings": str(folder / "embeddings"),
                    "size": partition_pairs,
                    "model": model_name,
                    "threshold": (threshold, rule),
                },
                workers,
                show,
            )
        )
    return BatchSummary(
        job,
        str(folder),
        len(manifest.references),
        len(images),
        tuple(stages),
        time.perf_counter() - began,
        workers,
    )


def read_scores(out: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of a finished ``verify`` job, in manifest order."""
    _, pq = _pyarrow()
    for part in sorted((Path(out) / "scores").glob("part-*.parquet")):
        yield from pq.read_table(part).to_pylist()


def write_synthetic_manifest(path: str | Path, images: Sequence[str | Path], pairs: int, seed: int = 0) -> Path:
    """A pair CSV of ``pairs`` random pairs over ``images`` (labels random): for throughput tests."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(images), size=(pairs, 2))
    labels = rng.integers(0, 2, size=pairs)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["img1", "img2", "label"])
        for (a, b), label in zip(chosen, labels, strict=True):
            writer.writerow([str(images[a]), str(images[b]), int(label)])
    temporary.replace(target)
    return target


__all__ = [
    "PAIR_COLUMNS",
    "BatchJobError",
    "BatchSummary",
    "Manifest",
    "StageSummary",
    "partition_done",
    "partitions",
    "read_embeddings",
    "read_manifest",
    "read_scores",
    "run_batch",
    "write_partition",
    "write_synthetic_manifest",
]

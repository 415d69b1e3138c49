"""``batch embed`` and ``batch verify``: images embedded once, then pairs scored.

1. **embed**: the distinct images of the manifest (in order of first appearance) are embedded, a
   partition of images per task; each image is decoded and embedded exactly once in the job.
2. **score** (verify only): pairs are scored from those embeddings with the model's head, a
   partition of pairs per task, written with the columns of ``inkproof verify --pairs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.batch.common import BatchSummary, model_identity, open_verifier, pyarrow_modules
from inkproof.batch.manifest import Manifest, read_manifest
from inkproof.batch.partitions import (
    begin_job,
    read_partitions,
    run_partitions,
    run_stage,
    write_partition,
)

PARTITION_PAIRS = 4096
PARTITION_IMAGES = 256
PAIR_COLUMNS = ("reference", "query", "score", "decision", "label", "kind", "error")


# --- workers (Ray actors) ------------------------------------------------------------------


class EmbedWorker:
    """Embeds partitions of the job's distinct images; one verifier per actor."""

    def __init__(self, manifest: Manifest, folder: str, size: int, model: str | None) -> None:
        self.images = manifest.images
        self.folder = Path(folder)
        self.size = size
        self.verifier = open_verifier(model, None, "eer")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_partitions(batch, self.run)

    def run(self, index: int) -> int:
        pa, _ = pyarrow_modules()
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
    _, pq = pyarrow_modules()
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
        self.verifier = open_verifier(model, value, rule)
        self.rows, self.vectors, self.errors = read_embeddings(embeddings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_partitions(batch, self.run)

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
    pyarrow_modules()
    began = time.perf_counter()
    manifest = read_manifest(manifest_path, root=root, images_only=job == "embed")
    model_name, tag = model_identity(model)
    record = {
        "job": job,
        "manifest_sha256": manifest.digest,
        "partition_pairs": partition_pairs,
        "partition_images": partition_images,
        "model": tag,
        "threshold": threshold,
        "rule": rule,
    }
    folder, show = begin_job(out, record, progress, address, workers)
    images = manifest.images
    stages = [
        run_stage(
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
            run_stage(
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
    yield from read_partitions(Path(out) / "scores")


__all__ = [
    "PAIR_COLUMNS",
    "PARTITION_IMAGES",
    "PARTITION_PAIRS",
    "EmbedWorker",
    "ScoreWorker",
    "read_embeddings",
    "read_scores",
    "run_batch",
]

"""Batch verification throughput: one process (the path of ``verify --pairs``) against
``inkproof batch verify`` on local Ray, on the same synthetic manifest, plus a kill -9 and resume.

The manifest pairs random images of ``writers`` synthetic writers (``images_per_writer`` each,
rendered by :mod:`inkproof.data.synthetic`), so distinct images are far fewer than pairs, as with
reference signatures that recur across a night's cheques. Both paths embed each distinct image
once; what differs is the number of processes and Ray's overhead (actor start, task scheduling,
Parquet writes).

:func:`run_index_benchmark` does the same for documents: ``document index`` on a folder of
synthetic A4 pages in one process against ``inkproof batch index-documents`` on local Ray.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from inkproof.benchmark.report import describe_machine, machine_description


def _render_images(folder: Path, writers: int, per_writer: int) -> list[Path]:
    from PIL import Image

    from inkproof.data.synthetic import SyntheticConfig, render_genuine, writer_style

    config = SyntheticConfig(seed=7)
    paths = []
    for writer in range(1, writers + 1):
        style = writer_style(7, writer)
        for sample in range(per_writer):
            path = folder / f"w{writer:04d}_{sample:02d}.png"
            Image.fromarray(render_genuine(style, sample, config)).save(path)
            paths.append(path)
    return paths


def _single_process(manifest: Path, model: str | None) -> float:
    """The ``verify --pairs`` path: distinct images embedded in chunks, then every pair scored."""
    from inkproof.data.pairs import read_pair_file
    from inkproof.verifier import Verifier, merge_embeddings

    began = time.perf_counter()
    pairs = read_pair_file(manifest).pairs
    with Verifier(model) as verifier:
        paths = list(dict.fromkeys(p for pair in pairs for p in (pair.reference, pair.query)))
        embedded = merge_embeddings([verifier.embed_distinct(paths[i : i + 256]) for i in range(0, len(paths), 256)])
        verifier.score_pairs(embedded, [(p.reference, p.query) for p in pairs])
    return time.perf_counter() - began


def _kill_and_resume(manifest: Path, out: Path, model: str | None, workers: int, after: int) -> dict[str, Any]:
    """Start ``inkproof batch verify`` in its own process group, kill -9 the whole group once
    ``after`` score partitions are done, then resume in this process."""
    command = [sys.executable, "-m", "inkproof", "batch", "verify", "--pairs", str(manifest), "--out", str(out)]
    command += ["--workers", str(workers), "--json"]
    if model is not None:
        command += ["--model", model]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "scores").glob("*.done"))) >= after:
            break
        time.sleep(0.2)
    finished_before_kill = process.poll() is not None
    if not finished_before_kill:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_at_kill = len(list((out / "scores").glob("*.done")))
    time.sleep(5)  # let the killed job's Ray processes notice their driver is gone
    from inkproof.batch import run_batch

    resumed = run_batch("verify", manifest, out, model=model, workers=workers)
    score = resumed.stages[-1]
    return {
        "killed": not finished_before_kill,
        "score_partitions": score.partitions,
        "done_at_kill": done_at_kill,
        "skipped_on_resume": score.skipped,
        "computed_on_resume": score.computed,
        "resume_seconds": resumed.seconds,
    }


def run_batch_benchmark(
    model: str | Path | None = None,
    *,
    pairs: int = 100_000,
    writers: int = 100,
    images_per_writer: int = 10,
    workers: int = 2,
    kill_after: int = 5,
) -> dict[str, Any]:
    import ray

    from inkproof.batch import run_batch, write_synthetic_manifest

    model_name = None if model is None else str(Path(model).resolve())
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "images").mkdir()
        images = _render_images(folder / "images", writers, images_per_writer)
        manifest = write_synthetic_manifest(folder / "pairs.csv", images, pairs)
        single_s = _single_process(manifest, model_name)
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            began = time.perf_counter()
            summary = run_batch("verify", manifest, folder / "job", model=model_name, workers=workers)
            ray_s = time.perf_counter() - began
        finally:
            ray.shutdown()
        kill = _kill_and_resume(manifest, folder / "killed", model_name, workers, kill_after) if kill_after else None
    return {
        "model": model_name or "bundled",
        "pairs": pairs,
        "distinct_images": len(images),
        "workers": workers,
        "single_process_s": single_s,
        "single_process_pairs_per_s": pairs / single_s,
        "ray_s": ray_s,
        "ray_pairs_per_s": pairs / ray_s,
        "ray_stages": [{"stage": s.stage, "partitions": s.partitions, "seconds": s.seconds} for s in summary.stages],
        "kill_and_resume": kill,
        "machine": machine_description(),
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def batch_markdown(record: dict[str, Any]) -> str:
    lines = [
        f"{record['pairs']:,} pairs over {record['distinct_images']:,} distinct synthetic images, "
        f"{record['timestamp']}. Machine: {describe_machine(record['machine'])}.",
        "",
        "| path | seconds | pairs/s |",
        "|---|---|---|",
        f"| one process (`verify --pairs`) | {record['single_process_s']:.1f} | "
        f"{record['single_process_pairs_per_s']:,.0f} |",
        f"| `batch verify`, local Ray, {record['workers']} workers | {record['ray_s']:.1f} | "
        f"{record['ray_pairs_per_s']:,.0f} |",
    ]
    for stage in record["ray_stages"]:
        lines.append(f"| - Ray stage {stage['stage']} ({stage['partitions']} partitions) | {stage['seconds']:.1f} | |")
    kill = record.get("kill_and_resume")
    if kill:
        lines += [
            "",
            f"kill -9 of the job's process group with {kill['done_at_kill']} of {kill['score_partitions']} score "
            f"partitions done: the rerun skipped {kill['skipped_on_resume']} and computed "
            f"{kill['computed_on_resume']} ({kill['resume_seconds']:.1f} s).",
        ]
    return "\n".join(lines)


def run_index_benchmark(
    *,
    documents: int = 40,
    workers: int = 2,
    seed: int = 11,
) -> dict[str, Any]:
    """Index ``documents`` synthetic A4 pages (150 dpi PNG) with the bundled detector and cleaner:
    once in one process (``document index``, the engines on all cores) into one store, once as
    ``batch index-documents`` on local Ray into another."""
    import ray
    from PIL import Image

    from inkproof.batch import run_index_documents
    from inkproof.document.cleaner import SignatureCleaner
    from inkproof.document.detector import PageDetector
    from inkproof.document.synthetic import PageConfig, render_page
    from inkproof.store import SignatureStore, open_database
    from inkproof.verifier import Verifier

    config = PageConfig(signatures=(1, 3), seed=seed)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "pages").mkdir()
        for index in range(documents):
            Image.fromarray(render_page(index, config).image).save(folder / "pages" / f"page-{index:04d}.png")
        began = time.perf_counter()
        detector, cleaner = PageDetector.from_card(None), SignatureCleaner()
        with open_database(folder / "single.db") as database, Verifier(None) as verifier:
            result = SignatureStore(database, verifier).documents.index_folder(
                folder / "pages", detector, cleaner=cleaner
            )
        detector.close()
        cleaner.close()
        single_s = time.perf_counter() - began
        signatures = sum(entry.signatures for entry in result.entries)
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        try:
            began = time.perf_counter()
            summary = run_index_documents(folder / "pages", folder / "job", database=folder / "ray.db", workers=workers)
            ray_s = time.perf_counter() - began
        finally:
            ray.shutdown()
    return {
        "documents": documents,
        "signatures_single": signatures,
        "signatures_ray": summary.outcomes["signatures"],
        "workers": workers,
        "single_process_s": single_s,
        "single_process_pages_per_s": documents / single_s,
        "ray_s": ray_s,
        "ray_pages_per_s": documents / ray_s,
        "ray_stage_s": summary.stages[0].seconds,
        "partitions": summary.stages[0].partitions,
        "machine": machine_description(),
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def index_markdown(record: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"{record['documents']} synthetic one-page A4 documents (150 dpi, 1-3 signatures each), "
            f"{record['timestamp']}. Machine: {describe_machine(record['machine'])}.",
            "",
            "| path | seconds | pages/s | signatures stored |",
            "|---|---|---|---|",
            f"| one process (`document index`) | {record['single_process_s']:.1f} | "
            f"{record['single_process_pages_per_s']:.2f} | {record['signatures_single']} |",
            f"| `batch index-documents`, local Ray, {record['workers']} workers | {record['ray_s']:.1f} | "
            f"{record['ray_pages_per_s']:.2f} | {record['signatures_ray']} |",
            f"| - Ray stage documents ({record['partitions']} partitions) | {record['ray_stage_s']:.1f} | | |",
        ]
    )

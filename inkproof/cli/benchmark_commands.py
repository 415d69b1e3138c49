"""``inkproof benchmark ...``: measurements that write JSON and a section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from inkproof.cli.common import JsonOption, console, print_json, reports_errors

app = typer.Typer(help="Benchmarks (JSON + markdown table in docs/benchmarks.md).", no_args_is_help=True)


def _publish(
    record: dict[str, Any], table: str, out: Path, markdown: Path | None, section: str, title: str, json_out: bool
) -> None:
    """Write the JSON record and the markdown section, then show the record (--json) or the table."""
    from inkproof.benchmark.report import update_section, write_json

    write_json(out, record)
    if markdown is not None:
        update_section(markdown, section, table, title=title)
    if json_out:
        print_json(record)
        return
    console.print(table)
    console.print(f"[green]wrote[/] {out}" + (f" and {markdown}" if markdown else ""))


@app.command()
@reports_errors
def speed(
    model: Path | None = typer.Option(None, "--model", help="fp32 ONNX model card (default: the bundled model)."),
    int8: Path | None = typer.Option(None, "--int8", help="int8 model card to time as well."),
    torch_eager: bool = typer.Option(True, "--torch/--no-torch", help="Also time torch eager when installed."),
    batches: str = typer.Option("1,8,32,128", help="Batch sizes for throughput."),
    threads: int | None = typer.Option(None, min=1, help="Threads (default: all cores)."),
    seconds: float = typer.Option(2.0, min=0.1, help="Seconds per throughput measurement."),
    out: Path = typer.Option(Path("benchmarks/results/speed.json"), "--out", help="JSON record."),
    markdown: Path | None = typer.Option(Path("docs/benchmarks.md"), "--markdown", help="Markdown file to update."),
    json_out: bool = JsonOption,
) -> None:
    """Latency (p50/p95/p99 at batch 1) and throughput per backend; preprocessing timed separately."""
    from inkproof.benchmark.speed import run_speed_benchmark, speed_markdown
    from inkproof.verifier import default_model_path

    record = run_speed_benchmark(
        model or default_model_path(),
        int8=int8,
        include_torch=torch_eager,
        batches=[int(b) for b in batches.split(",") if b.strip()],
        threads=threads,
        seconds=seconds,
    )
    _publish(record, speed_markdown(record), out, markdown, "speed", "Inference speed", json_out)


@app.command()
@reports_errors
def service(
    model: Path | None = typer.Option(None, "--model", help="Model card (default: the bundled model)."),
    clients: str = typer.Option("8,32", help="Concurrent verify-claim clients."),
    seconds: float = typer.Option(10.0, min=1.0, help="Seconds of load per client count."),
    identify_sizes: str = typer.Option("1000,100000", help="Enrolled references for the identify latency."),
    workers: str = typer.Option("1,2", help="Server worker processes (serve --workers) for verify-claim."),
    postgres: str | None = typer.Option(
        None, "--postgres", help="Also run against this (empty) PostgreSQL database URL; it is filled with test data."
    ),
    out: Path = typer.Option(Path("benchmarks/results/service.json"), "--out", help="JSON record."),
    markdown: Path | None = typer.Option(Path("docs/benchmarks.md"), "--markdown", help="Markdown file to update."),
    json_out: bool = JsonOption,
) -> None:
    """Load test of a real `inkproof serve` over loopback: verify-claim throughput, identify latency."""
    from inkproof.benchmark.service_load import run_service_benchmark, service_markdown

    runs = [
        run_service_benchmark(
            model,
            clients=[int(c) for c in clients.split(",") if c.strip()],
            workers=[int(w) for w in workers.split(",") if w.strip()],
            seconds=seconds,
            identify_sizes=[int(s) for s in identify_sizes.split(",") if s.strip()],
            postgres_url=url,
        )
        for url in ([None] if postgres is None else [None, postgres])
    ]
    record = {"runs": runs}
    _publish(record, service_markdown(runs), out, markdown, "service", "REST service under load", json_out)


@app.command()
@reports_errors
def batch(
    model: Path | None = typer.Option(None, "--model", help="Model card (default: the bundled model)."),
    pairs: int = typer.Option(100_000, min=1, help="Pairs in the synthetic manifest."),
    writers: int = typer.Option(100, min=1, help="Synthetic writers (10 images each)."),
    workers: int = typer.Option(2, min=1, help="Ray workers (local Ray)."),
    kill_after: int = typer.Option(5, min=0, help="Kill -9 a second run after this many score partitions (0: no)."),
    out: Path = typer.Option(Path("benchmarks/results/batch.json"), "--out", help="JSON record."),
    markdown: Path | None = typer.Option(Path("docs/benchmarks.md"), "--markdown", help="Markdown file to update."),
    json_out: bool = JsonOption,
) -> None:
    """Batch verification throughput: one process against `inkproof batch verify` on local Ray."""
    from inkproof.benchmark.batch_throughput import batch_markdown, run_batch_benchmark

    record = run_batch_benchmark(model, pairs=pairs, writers=writers, workers=workers, kill_after=kill_after)
    _publish(record, batch_markdown(record), out, markdown, "batch", "Batch verification on Ray", json_out)


@app.command("batch-documents")
@reports_errors
def batch_documents(
    documents: int = typer.Option(40, min=1, help="Synthetic one-page documents."),
    workers: int = typer.Option(2, min=1, help="Ray workers (local Ray)."),
    out: Path = typer.Option(Path("benchmarks/results/batch-documents.json"), "--out", help="JSON record."),
    markdown: Path | None = typer.Option(Path("docs/benchmarks.md"), "--markdown", help="Markdown file to update."),
    json_out: bool = JsonOption,
) -> None:
    """Document indexing throughput: `document index` in one process against `inkproof batch
    index-documents` on local Ray."""
    from inkproof.benchmark.batch_throughput import index_markdown, run_index_benchmark

    record = run_index_benchmark(documents=documents, workers=workers)
    _publish(record, index_markdown(record), out, markdown, "batch-documents", "Indexing documents on Ray", json_out)


@app.command()
@reports_errors
def accuracy(
    data: Path | None = typer.Option(
        None, "--data", help="Folder holding cedar/ and bhsig-hindi/ (default: ../shared/data)."
    ),
    out: Path = typer.Option(Path("benchmarks/results/accuracy"), "--out", help="Runs, evaluations and JSON."),
    parts: str = typer.Option(
        "main,cross,cedar-kfold,claims",
        help="Which entries: main, cross, cedar-kfold (each trains models), claims (the bundled model's "
        "writer-dependent scoring on the main split's test writers; trains nothing).",
    ),
    folds: int = typer.Option(5, min=2, help="CEDAR folds."),
    epoch_scale: float = typer.Option(1.0, min=0.05, help="Scale every recipe's epoch count (budget runs)."),
    seed: int = typer.Option(0),
    with_teacher: bool = typer.Option(
        False, "--with-teacher", help="Also train an EfficientNet-Lite0 teacher and a distilled student per entry."
    ),
    markdown: Path | None = typer.Option(Path("docs/benchmarks.md"), "--markdown", help="Markdown file to update."),
    json_out: bool = JsonOption,
) -> None:
    """Reproduce the accuracy table from scratch (trains every model it reports on)."""
    from inkproof.benchmark.accuracy import accuracy_markdown, run_accuracy_benchmark
    from inkproof.benchmark.report import update_section, write_json
    from inkproof.data.location import data_root

    record = run_accuracy_benchmark(
        data_root(data),
        out,
        parts=[p.strip() for p in parts.split(",") if p.strip()],
        folds=folds,
        epoch_scale=epoch_scale,
        seed=seed,
        with_teacher=with_teacher,
        log=lambda message: console.print(message, highlight=False),
    )
    tables = []
    if record["results"]:  # a claims-only run leaves the trained entries' JSON and table alone
        write_json(out / "accuracy.json", record)
        tables.append(accuracy_markdown(record))
        if markdown is not None:
            update_section(markdown, "accuracy", tables[-1], title="Accuracy (writer-independent)")
    if "claims" in record:
        from inkproof.benchmark.claims import claims_markdown

        write_json(out / "claims.json", record["claims"])
        tables.append(claims_markdown(record["claims"]))
        if markdown is not None:
            update_section(markdown, "claims", tables[-1], title="Claims with several references")
    if json_out:
        print_json(record)
        return
    for table in tables:
        console.print(table)


@app.command()
@reports_errors
def shortcut(
    data: Path | None = typer.Option(None, "--data", help="The CEDAR folder (default: ../shared/data/cedar)."),
    seed: int = typer.Option(0),
    epochs: int = typer.Option(8, min=1, help="Epochs of the small CNN."),
    out: Path = typer.Option(Path("benchmarks/results/shortcut.json"), "--out", help="JSON record."),
    markdown: Path | None = typer.Option(Path("docs/benchmarks.md"), "--markdown", help="Markdown file to update."),
    json_out: bool = JsonOption,
) -> None:
    """Can one image tell genuine from forged on unseen CEDAR writers? Raw scans vs preprocessing."""
    from inkproof.benchmark.report import update_section, write_json
    from inkproof.benchmark.shortcut import run_shortcut_check, shortcut_markdown
    from inkproof.data.location import data_root

    record = run_shortcut_check(data or data_root() / "cedar", seed=seed, epochs=epochs)
    write_json(out, record)
    table = shortcut_markdown(record)
    if markdown is not None:
        update_section(markdown, "shortcut", table, title="Shortcut check (CEDAR background)")
    if json_out:
        print_json(record)
        return
    console.print(table)

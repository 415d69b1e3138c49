"""``inkproof benchmark ...``: measurements that write JSON and a section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

import typer

from inkproof.cli.common import JsonOption, console, print_json, reports_errors

app = typer.Typer(help="Benchmarks (JSON + markdown table in docs/benchmarks.md).", no_args_is_help=True)


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
    from inkproof.benchmark.report import update_section, write_json
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
    write_json(out, record)
    table = speed_markdown(record)
    if markdown is not None:
        update_section(markdown, "speed", table, title="Inference speed")
    if json_out:
        print_json(record)
        return
    console.print(table)
    console.print(f"[green]wrote[/] {out}" + (f" and {markdown}" if markdown else ""))

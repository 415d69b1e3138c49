"""``inkproof batch``: embed and verify manifests, verify claims against the store, on Ray Data
(see :mod:`inkproof.batch`)."""

from __future__ import annotations

from pathlib import Path

import typer

from inkproof.cli.common import JsonOption, console, print_json, reports_errors

app = typer.Typer(
    help="Batch jobs on Ray Data over CSV or Parquet manifests: resumable, Parquet partitions out.",
    no_args_is_help=True,
)

ManifestOption = typer.Option(..., "--pairs", help="Pair file (CSV/text as for verify --pairs, or Parquet).")
OutOption = typer.Option(..., "--out", help="Job folder: Parquet partitions, done markers, _job.json.")
DataOption = typer.Option(None, "--data", help="Folder that relative paths in the manifest start from.")
ModelOption = typer.Option(None, "--model", help="Model card or folder (default: the bundled model).")
WorkersOption = typer.Option(2, "--workers", min=1, help="Actors (one CPU and one loaded model each).")
AddressOption = typer.Option(None, "--address", help="Ray cluster address (default: start local Ray).")
PartitionOption = typer.Option(None, "--partition-size", min=1, help="Pairs (verify) or images (embed) per partition.")


def _print(summary: object, json_out: bool) -> None:
    from inkproof.batch import BatchSummary

    assert isinstance(summary, BatchSummary)
    if json_out:
        print_json(summary.to_dict())
        return
    for stage in summary.stages:
        console.print(
            f"{stage.stage}: {stage.computed} partitions computed, {stage.skipped} already done "
            f"({stage.rows} rows, {stage.seconds:.1f} s)"
        )
    if summary.outcomes:
        console.print(", ".join(f"{count} {outcome}" for outcome, count in summary.outcomes.items()))
    console.print(
        f"{summary.items} items, {summary.distinct_images} distinct images in {summary.seconds:.1f} s; "
        f"results in {summary.out}"
    )


@app.command("verify")
@reports_errors
def verify(
    pairs: Path = ManifestOption,
    out: Path = OutOption,
    data: Path | None = DataOption,
    model: Path | None = ModelOption,
    threshold: float | None = typer.Option(None, "--threshold", help="Operating threshold (0 is a threshold)."),
    threshold_rule: str = typer.Option("eer", "--threshold-rule", help="Calibrated threshold: eer, far_1, far_0_1."),
    workers: int = WorkersOption,
    address: str | None = AddressOption,
    partition_size: int | None = PartitionOption,
    json_out: bool = JsonOption,
) -> None:
    """Score every pair of a manifest (columns reference, query, score, decision, label, kind, error);
    a rerun with the same --out resumes, skipping finished partitions."""
    from inkproof.batch import PARTITION_PAIRS, run_batch

    summary = run_batch(
        "verify",
        pairs,
        out,
        root=data,
        model=model,
        threshold=threshold,
        rule=threshold_rule,
        workers=workers,
        address=address,
        partition_pairs=partition_size or PARTITION_PAIRS,
        progress=not json_out,
    )
    _print(summary, json_out)


@app.command("embed")
@reports_errors
def embed(
    images: Path = typer.Option(..., "--images", help="Image list (CSV/Parquet column image) or a pair file."),
    out: Path = OutOption,
    data: Path | None = DataOption,
    model: Path | None = ModelOption,
    workers: int = WorkersOption,
    address: str | None = AddressOption,
    partition_size: int | None = PartitionOption,
    json_out: bool = JsonOption,
) -> None:
    """Embed every distinct image of a manifest into Parquet partitions (image, vector, error)."""
    from inkproof.batch import PARTITION_IMAGES, run_batch

    summary = run_batch(
        "embed",
        images,
        out,
        root=data,
        model=model,
        workers=workers,
        address=address,
        partition_images=partition_size or PARTITION_IMAGES,
        progress=not json_out,
    )
    _print(summary, json_out)


@app.command("verify-claims")
@reports_errors
def verify_claims(
    claims: Path = typer.Option(
        ..., "--claims", help="Claims: CSV with a header row, or Parquet; columns writer, query (optional label, kind)."
    ),
    db: str = typer.Option(..., "--db", help="Enrollment store: a path or SQLAlchemy URL that every worker can reach."),
    out: Path = OutOption,
    model: Path | None = ModelOption,
    operating_point: str = typer.Option(
        "far-skilled-5",
        "--operating-point",
        help="Accept threshold of the claims: eer, far-skilled-1 or far-skilled-5.",
    ),
    workers: int = WorkersOption,
    address: str | None = AddressOption,
    partition_size: int | None = typer.Option(None, "--partition-size", min=1, help="Claims per partition."),
    root: Path | None = typer.Option(
        None, "--root", help="Folder that relative query paths start from (default: the manifest's folder)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Verify every claim of a manifest against the store, as verify-claim does, logging each claim
    exactly once (columns writer, query, decision, status, score, accept_threshold, reject_threshold,
    method, log_id, label, kind, error); a rerun with the same --out resumes, and claims logged
    before a kill come back from the log instead of being logged again."""
    from inkproof.batch import PARTITION_CLAIMS, run_claims

    summary = run_claims(
        claims,
        out,
        database=db,
        root=root,
        model=model,
        operating_point=operating_point,
        workers=workers,
        address=address,
        partition_claims=partition_size or PARTITION_CLAIMS,
        progress=not json_out,
    )
    _print(summary, json_out)

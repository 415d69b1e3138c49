"""``inkproof batch``: embed and verify manifests, verify claims against the store, index scanned
documents into it, on Ray Data (see :mod:`inkproof.batch`)."""

from __future__ import annotations

from pathlib import Path

import typer

from inkproof.cli.common import JsonOption, MaxPixelsOption, console, print_json, reports_errors

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


#: What a job's items and distinct inputs are, for its summary line.
_NOUNS = {
    "embed": ("images", "images"),
    "verify": ("pairs", "images"),
    "verify-claims": ("claims", "query images"),
    "index-documents": ("documents", "files"),
}


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
    items, distinct = _NOUNS.get(summary.job, ("items", "images"))
    console.print(
        f"{summary.items} {items}, {summary.distinct_images} distinct {distinct} in {summary.seconds:.1f} s; "
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


@app.command("index-documents")
@reports_errors
def index_documents(
    documents: Path = typer.Option(
        ...,
        "--documents",
        help="A folder of PNG/JPEG/TIFF/PDF files (searched recursively), or a CSV/Parquet manifest "
        "with a document column (optional name).",
    ),
    db: str = typer.Option(..., "--db", help="Enrollment store: a path or SQLAlchemy URL that every worker can reach."),
    out: Path = OutOption,
    model: Path | None = ModelOption,
    detector: Path | None = typer.Option(None, "--detector", help="Detector card or folder (default: bundled)."),
    clean: bool = typer.Option(
        True, "--clean/--no-clean", help="Clean crops of print and lines before embedding them, as document index."
    ),
    dpi: float = typer.Option(150.0, "--dpi", min=36, max=600, help="PDF rendering resolution."),
    max_pages: int = typer.Option(50, "--max-pages", min=1, help="Documents with more pages fail (their row)."),
    max_pixels: int | None = MaxPixelsOption,
    workers: int = WorkersOption,
    address: str | None = AddressOption,
    partition_size: int | None = typer.Option(None, "--partition-size", min=1, help="Documents per partition."),
    root: Path | None = typer.Option(
        None, "--root", help="Folder that relative paths of a manifest start from (default: the manifest's folder)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Find the signatures on every page of every document and store them, as document index does
    (columns document, name, status, document_id, pages, signatures, error, seconds); a rerun with
    the same --out resumes, and documents stored before a kill are found by their bytes, not stored
    twice. Exits with status 1 when some documents could not be read."""
    from inkproof.batch import PARTITION_DOCUMENTS, run_index_documents

    summary = run_index_documents(
        documents,
        out,
        database=db,
        root=root,
        model=model,
        detector=detector,
        clean=clean,
        dpi=dpi,
        max_pages=max_pages,
        max_pixels=max_pixels,
        workers=workers,
        address=address,
        partition_documents=partition_size or PARTITION_DOCUMENTS,
        progress=not json_out,
    )
    _print(summary, json_out)
    if summary.outcomes.get("failed"):
        raise typer.Exit(code=1)

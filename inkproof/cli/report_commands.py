"""``inkproof document report``: find, clean and verify the signatures of a document and check it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from inkproof.cli.common import JsonOption, MaxPixelsOption, console, print_json, reports_errors
from inkproof.cli.store_commands import ModelOption, _store


@reports_errors
def document_report(
    document: Path = typer.Argument(..., help="PNG, JPEG, TIFF (every page) or PDF."),
    out: Path | None = typer.Option(None, "--out", help="Folder for report.json, report.html and images."),
    expect: int | None = typer.Option(
        None, "--expect", min=0, help="Signatures the document must carry: exactly N (see --at-least)."
    ),
    at_least: bool = typer.Option(False, "--at-least", help="--expect N means at least N signatures."),
    claimed: list[str] | None = typer.Option(None, "--claimed", help="Writer who should have signed; repeat."),
    db: str | None = typer.Option(None, "--db", help="Store to identify or verify signatures against."),
    model: Path | None = ModelOption,
    detector: Path | None = typer.Option(None, "--detector", help="Detector card (default: the bundled one)."),
    cleaner: Path | None = typer.Option(None, "--cleaner", help="Cleaner card (default: the bundled one)."),
    clean: bool = typer.Option(True, "--clean/--no-clean", help="Clean crops before verifying them."),
    initials_every_page: bool = typer.Option(False, "--initials-every-page", help="Check every page is initialled."),
    dated: bool = typer.Option(
        False, "--dated", help="Check every signature has a date on its line or directly below it."
    ),
    ocr: bool | None = typer.Option(
        None,
        "--ocr/--no-ocr",
        help="With --dated, read printed dates around each signature (default: when the ocr extra is installed).",
    ),
    review_below: float = typer.Option(
        0.9, "--review-below", min=0.0, max=1.0, help="Fields found with less confidence make a rule say review."
    ),
    dpi: float = typer.Option(150.0, "--dpi", min=36, max=600, help="PDF rendering resolution."),
    max_pages: int = typer.Option(50, "--max-pages", min=1, help="Refuse documents with more pages."),
    max_pixels: int | None = MaxPixelsOption,
    json_out: bool = JsonOption,
) -> None:
    """Signatures (and initials, dates, redactions, logos) on every page; with --db each is
    identified or verified against the claimed writers; rules give a verdict with the pages concerned.
    Exits with status 1 when a rule fails, 3 when none fails but an uncertain finding needs review."""
    from inkproof.document.cleaner import SignatureCleaner
    from inkproof.document.detector import PageDetector
    from inkproof.document.pages import open_document
    from inkproof.document.report import (
        IGNORE_BELOW,
        InvalidReportOutputError,
        RapidOcrReader,
        build_report,
        ocr_available,
        write_report,
    )

    if out is not None and out.exists() and not out.is_dir():  # before minutes of work, not after
        raise InvalidReportOutputError(f"{out}: exists and is not a folder; give a folder for the report")
    # OCR serves the date rule only (it costs seconds per page), and reads around signatures.
    use_ocr = dated and (ocr_available() if ocr is None else ocr)
    limit = open_document(document, dpi=dpi, max_pages=max_pages, max_pixels=max_pixels).max_pixels
    with PageDetector.from_card(detector, max_pixels=limit) as page_detector:
        active_cleaner = SignatureCleaner(cleaner) if clean else None
        store = _store(db, model) if db is not None else None
        try:
            report = build_report(
                document,
                detector=page_detector,
                cleaner=active_cleaner,
                store=store,
                claimed=claimed or (),
                expect=expect,
                at_least=at_least,
                initials_every_page=initials_every_page,
                dated=dated,
                text_reader=RapidOcrReader() if use_ocr else None,
                review_below=review_below,
                ignore_below=min(IGNORE_BELOW, review_below),
                dpi=dpi,
                max_pages=max_pages,
                max_pixels=limit,
            )
        finally:
            if active_cleaner is not None:
                active_cleaner.close()
    files = write_report(report, out) if out is not None else ()
    if json_out:
        print_json({**report.to_dict(), "files": [str(f) for f in files]})
    else:
        table = Table(title=f"{report.source}: {len(report.signatures)} signature(s) on {len(report.pages)} page(s)")
        for column in ("signature", "box", "confidence", "writer", "date"):
            table.add_column(column)
        for s in report.signatures:
            if s.claim:
                who = f"{s.claim['writer']}: {s.claim['decision']} ({s.claim['fused_score']:.3f})"
            else:
                who = ", ".join(f"{c['external_id']} {c['score']:.3f}" for c in s.identified) or "-"
            date = f"{s.date.kind} {s.date.text}".strip() if s.date else "-"
            confidence = f"{s.confidence:.2f}" + (" (uncertain)" if s.uncertain else "")
            table.add_row(s.name, str(list(s.box)), confidence, who, date)
        console.print(table)
        colours = {"pass": "green", "review": "yellow", "fail": "red"}
        for rule in report.rules:
            console.print(
                f"[{colours[rule.verdict]}]{rule.verdict.upper()}[/] {rule.rule}: {rule.detail}",
                highlight=False,
                soft_wrap=True,
            )
        console.print(f"verdict: [{colours[report.verdict]}]{report.verdict.upper()}[/]", highlight=False)
        if files:
            console.print(f"[green]wrote[/] {files[1]} and {len(files) - 1} more files in {out}", soft_wrap=True)
    if report.verdict == "fail":
        raise typer.Exit(1)
    if report.verdict == "review":
        raise typer.Exit(3)

"""``inkproof synth``: render a synthetic signature dataset (no real data involved)."""

from __future__ import annotations

from pathlib import Path

import typer

from inkproof.cli.common import console, reports_errors


@reports_errors
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (folder-per-writer layout)."),
    writers: int = typer.Option(10, min=1, help="Number of writers."),
    genuine: int = typer.Option(12, min=1, help="Genuine signatures per writer."),
    forged: int = typer.Option(12, min=0, help="Skilled forgeries per writer."),
    seed: int = typer.Option(0, help="Seed; the same seed renders the same pixels."),
    contact_sheet: Path | None = typer.Option(None, help="Also save a contact sheet PNG here."),
) -> None:
    """Render synthetic writers with genuine signatures and skilled forgeries."""
    from inkproof.data.synthetic import SyntheticConfig, generate_dataset
    from inkproof.data.synthetic import contact_sheet as make_sheet

    config = SyntheticConfig(writers=writers, genuine_per_writer=genuine, forged_per_writer=forged, seed=seed)
    summary = generate_dataset(out, config, progress=True)
    console.print(
        f"[green]wrote[/] {summary.root}: {len(summary.writers)} writers, "
        f"{summary.genuine} genuine, {summary.forged} forged"
    )
    if contact_sheet is not None:
        console.print(f"[green]wrote[/] {make_sheet(out, contact_sheet)}")

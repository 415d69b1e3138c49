"""``inkproof demo``: render synthetic writers and verify sample pairs with the bundled model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from inkproof.cli.common import JsonOption, console, print_json, reports_errors


@reports_errors
def demo(
    out: Path = typer.Option(Path("inkproof-demo/signatures"), "--out", help="Where to render the synthetic writers."),
    writers: int = typer.Option(4, min=2, help="Synthetic writers to render."),
    seed: int = typer.Option(0, help="Seed of the synthetic writers."),
    model: Path | None = typer.Option(None, "--model", help="Model card (default: the bundled model)."),
    json_out: bool = JsonOption,
) -> None:
    """Render a few synthetic writers, then verify genuine, skilled-forgery and random pairs."""
    from inkproof.data.adapters import load_dataset
    from inkproof.data.pairs import make_pairs
    from inkproof.data.synthetic import SyntheticConfig, generate_dataset
    from inkproof.verifier import Verifier

    generate_dataset(out, SyntheticConfig(writers=writers, genuine_per_writer=6, forged_per_writer=4, seed=seed))
    dataset = load_dataset(out)
    pairs = make_pairs(dataset, seed=seed, genuine=2, skilled=2, random=2)
    with Verifier(model) as verifier:
        results = verifier.verify_many([(p.reference, p.query) for p in pairs.pairs])
    outcomes = list(zip(pairs.pairs, results, strict=True))
    correct = sum(result.accepted == (pair.label == 1) for pair, result in outcomes)
    if json_out:
        rows = [
            {
                "writer": pair.writer,
                "truth": pair.kind,
                **result.to_dict(),
                "correct": result.accepted == (pair.label == 1),
            }
            for pair, result in outcomes
        ]
        print_json({"rows": rows, "correct": correct, "threshold": results[0].threshold})
        return
    table = Table(
        title=f"Synthetic signatures in {out}: {verifier.card.name}, threshold {results[0].threshold:.3f} "
        f"({results[0].threshold_rule})"
    )
    for column in ("writer", "reference", "query", "truth", "score", "decision", ""):
        table.add_column(column)
    for pair, result in outcomes:
        mark = "[green]ok[/]" if result.accepted == (pair.label == 1) else "[red]wrong[/]"
        cells = (pair.writer or "", pair.reference.name, pair.query.name, pair.kind, f"{result.score:.3f}")
        table.add_row(*cells, result.decision, mark)
    console.print(table)
    console.print(
        f"{correct}/{len(outcomes)} decisions correct on synthetic signatures (the bundled model was "
        "trained on scanned signatures, not on these renders)."
    )

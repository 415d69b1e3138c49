"""``inkproof data ...``: describe datasets, split writers, take subsets, generate pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import typer
from rich.table import Table

from inkproof.cli.common import (
    DataOption,
    FormatOption,
    JsonOption,
    console,
    parse_count,
    parse_fractions,
    parse_writer_list,
    print_json,
    reports_errors,
)
from inkproof.data.adapters import discover_datasets, load_dataset
from inkproof.data.location import data_root
from inkproof.data.pairs import CountSpec, make_pairs, read_pair_file, write_pairs
from inkproof.data.splits import ROLES, WriterSplit, split_writers, subset_pairs, subset_writers

app = typer.Typer(help="Inspect datasets and prepare writer-disjoint splits and pairs.", no_args_is_help=True)


@app.command()
@reports_errors
def describe(data: Path | None = DataOption, format: str | None = FormatOption, json_out: bool = JsonOption) -> None:
    """Writers, genuine and forged counts of a dataset (or of each dataset in a collection)."""
    root = data_root(data)
    roots = [root] if format else discover_datasets(root)
    summaries = [load_dataset(path, format).summary() for path in roots]
    if json_out:
        print_json([s.to_dict() for s in summaries])
        return
    table = Table(title=f"Datasets at {root}")
    for column in (
        "dataset",
        "format",
        "writers",
        "genuine",
        "forged",
        "genuine/writer",
        "forged/writer",
        "re-scans",
    ):
        table.add_column(column, justify="left" if column in ("dataset", "format") else "right")
    for s in summaries:
        table.add_row(
            s.name,
            s.format,
            str(s.writers),
            str(s.genuine),
            str(s.forged),
            _range(s.genuine_per_writer),
            _range(s.forged_per_writer),
            str(s.near_duplicate_pairs),
        )
    console.print(table)


def _range(stats: tuple[int, int, float]) -> str:
    low, high, _ = stats
    return str(low) if low == high else f"{low}-{high}"


@app.command()
@reports_errors
def split(
    out: Path = typer.Option(..., "--out", help="Where to write the split manifest (JSON)."),
    data: Path | None = DataOption,
    format: str | None = FormatOption,
    seed: int = typer.Option(0, help="Shuffle seed."),
    fractions: str = typer.Option("0.7,0.15,0.15", help="train,validation,test fractions of writers."),
    train: str | None = typer.Option(None, help="Explicit train writers (comma list or file)."),
    validation: str | None = typer.Option(None, help="Explicit validation writers."),
    test: str | None = typer.Option(None, help="Explicit test writers."),
    json_out: bool = JsonOption,
) -> None:
    """Split writers into disjoint train / validation / test sets and save the manifest."""
    dataset = load_dataset(data_root(data), format)
    explicit = [parse_writer_list(v) for v in (train, validation, test)]
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise typer.BadParameter("give all of --train, --validation and --test, or none")
        lists = [tuple(v or ()) for v in explicit]
        manifest = WriterSplit(lists[0], lists[1], lists[2], dataset=dataset.name)
        manifest.check_against(dataset)
    else:
        manifest = split_writers(
            dataset.writers(), fractions=parse_fractions(fractions), seed=seed, dataset=dataset.name
        )
    manifest.save(out)
    if json_out:
        print_json(manifest.to_dict())
        return
    console.print(
        f"[green]wrote[/] {out}: {len(manifest.train)} train, {len(manifest.validation)} validation, "
        f"{len(manifest.test)} test writers"
    )


@app.command()
@reports_errors
def subset(
    out: Path = typer.Option(..., "--out", help="Output: writer list (.json) or, with --pairs, a pair CSV."),
    data: Path | None = DataOption,
    format: str | None = FormatOption,
    pairs: Path | None = typer.Option(None, "--pairs", help="Take a stratified subset of this pair file."),
    fraction: float | None = typer.Option(None, help="Fraction of writers (or pairs) to keep."),
    count: int | None = typer.Option(None, help="Number of writers (or pairs) to keep."),
    seed: int = typer.Option(0, help="Sampling seed."),
) -> None:
    """A stratified subset: whole writers (keeping the genuine/forged ratio) or pairs by kind."""
    if pairs is not None:
        kept = subset_pairs(read_pair_file(pairs, root=data), fraction=fraction, count=count, seed=seed)
        write_pairs(kept, out)
        console.print(f"[green]wrote[/] {out}: {len(kept)} pairs {kept.counts()}")
        return
    dataset = subset_writers(load_dataset(data_root(data), format), fraction=fraction, count=count, seed=seed)
    summary = dataset.summary()
    payload = {"dataset": summary.to_dict(), "seed": seed, "writers": list(dataset.writers())}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    counts = f"{summary.writers} writers, {summary.genuine} genuine, {summary.forged} forged"
    console.print(f"[green]wrote[/] {out}: {counts}")


@app.command("pairs")
@reports_errors
def pairs_command(
    out: Path = typer.Option(..., "--out", help="Output folder: split.json and one pair CSV per role."),
    data: Path | None = DataOption,
    format: str | None = FormatOption,
    split_file: Path | None = typer.Option(None, "--split", help="Use this split manifest instead of making one."),
    seed: int = typer.Option(0, help="Seed for the split (when made here) and for pair sampling."),
    fractions: str = typer.Option("0.7,0.15,0.15", help="train,validation,test fractions of writers."),
    genuine: str = typer.Option("all", help="Genuine-genuine pairs per writer: 'all' or a number."),
    skilled: str = typer.Option("all", help="Genuine-skilled-forgery pairs per writer: 'all' or a number."),
    random: str | None = typer.Option(
        None, help="Genuine-random-forgery pairs per writer (default: as many as skilled)."
    ),
    balanced: bool = typer.Option(False, help="Subsample so genuine and forgery pairs are equally many."),
    json_out: bool = JsonOption,
) -> None:
    """Deterministic verification pairs for each role of a writer-disjoint split."""
    dataset = load_dataset(data_root(data), format)
    if split_file is not None:
        manifest = WriterSplit.load(split_file)
        manifest.check_against(dataset)
    else:
        manifest = split_writers(
            dataset.writers(), fractions=parse_fractions(fractions), seed=seed, dataset=dataset.name
        )
    out.mkdir(parents=True, exist_ok=True)
    manifest.save(out / "split.json")
    summary: dict[str, dict[str, int]] = {}
    for role in ROLES:
        writers = manifest.writers(role)
        if not writers:
            continue
        pair_set = make_pairs(
            dataset,
            writers=writers,
            seed=seed,
            genuine=cast(CountSpec, parse_count(genuine)),
            skilled=cast(CountSpec, parse_count(skilled)),
            random=None if random is None else cast(CountSpec, parse_count(random)),
            balanced=balanced,
        )
        write_pairs(pair_set, out / f"{role}.csv", root=dataset.root)
        summary[role] = {"writers": len(writers), **pair_set.counts(), "total": len(pair_set)}
    (out / "pairs.json").write_text(
        json.dumps({"dataset": dataset.name, "root": str(dataset.root), "seed": seed, "roles": summary}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    if json_out:
        print_json(summary)
        return
    table = Table(title=f"Pairs for {dataset.name} (seed {seed}) in {out}")
    for column in ("role", "writers", "genuine", "skilled", "random", "total"):
        table.add_column(column, justify="left" if column == "role" else "right")
    for role_name, counts in summary.items():
        table.add_row(role_name, *(str(counts[k]) for k in ("writers", "genuine", "skilled", "random", "total")))
    console.print(table)

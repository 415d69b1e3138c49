"""``inkproof verify`` and ``inkproof embed``: torch-free commands over :class:`inkproof.Verifier`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import typer
from rich.panel import Panel

from inkproof.cli.common import JsonOption, check_report_path, console, error_console, print_json, reports_errors

ModelOption = typer.Option(None, "--model", help="Model card or folder (default: the bundled model).")
DeviceOption = typer.Option("auto", "--device", help="auto, cpu, cuda or tensorrt (onnxruntime providers).")
ThresholdOption = typer.Option(None, "--threshold", help="Operating threshold (0 is a threshold).")
RuleOption = typer.Option("eer", "--threshold-rule", help="Calibrated threshold: eer, far_1 or far_0_1.")


@reports_errors
def verify(
    reference: Path | None = typer.Argument(None, help="Reference signature image."),
    query: Path | None = typer.Argument(None, help="Questioned signature image."),
    pairs: Path | None = typer.Option(None, "--pairs", help="Verify every pair of this CSV/text pair file."),
    data: Path | None = typer.Option(None, "--data", help="Folder that relative paths in --pairs start from."),
    out: Path | None = typer.Option(None, "--out", help="With --pairs: results file (.csv or .json)."),
    model: Path | None = ModelOption,
    threshold: float | None = ThresholdOption,
    threshold_rule: str = RuleOption,
    device: str = DeviceOption,
    report: Path | None = typer.Option(
        None, "--report", help="Write the evidence (overlay, sensitivity, features, provenance): .html or .pdf."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Decide whether QUERY was written by the writer of REFERENCE (or every pair of --pairs)."""
    from inkproof.verifier import Verifier

    if pairs is None and (reference is None or query is None):
        raise typer.BadParameter("give REFERENCE and QUERY, or --pairs FILE")
    if report is not None:
        check_report_path(report)
        if pairs is not None:
            raise typer.BadParameter("--report is for one pair, not --pairs")
    with Verifier(model, threshold=threshold, rule=threshold_rule, device=device) as verifier:
        if pairs is None:
            assert reference is not None
            assert query is not None
            result = verifier.verify(reference, query)
            if report is not None:
                from inkproof.evidence import pair_evidence, write_report

                write_report(pair_evidence(verifier, reference, query, threshold=threshold), report)
                error_console.print(f"evidence written to {report}")
            if json_out:
                print_json(result.to_dict())
                return
            colour = "green" if result.accepted else "red"
            console.print(
                Panel(
                    f"[bold {colour}]{result.decision.upper()}[/]\n"
                    f"score {result.score:.4f}  threshold {result.threshold:.4f} ({result.threshold_rule})\n"
                    f"model {result.model}",
                    title=f"{reference.name} vs {query.name}",
                    expand=False,
                )
            )
            return
        _verify_pair_file(verifier, pairs, data, out, json_out)


def _verify_pair_file(verifier: object, pairs: Path, data: Path | None, out: Path | None, json_out: bool) -> None:
    from inkproof.data.pairs import read_pair_file
    from inkproof.errors import InvalidImageError
    from inkproof.evaluation.metrics import accuracy_at, far, frr
    from inkproof.verifier import DistinctEmbeddings, VerificationResult, Verifier, merge_embeddings

    assert isinstance(verifier, Verifier)
    pair_set = read_pair_file(pairs, root=data)
    # Each distinct image is decoded, preprocessed and embedded once (a reference usually appears
    # in many pairs); an unreadable or blank image fails only the pairs it is in.
    paths: list[Path] = list(dict.fromkeys(path for p in pair_set.pairs for path in (p.reference, p.query)))
    chunk = 256
    parts: list[DistinctEmbeddings] = []
    with console.status("embedding images") as status:
        for start in range(0, len(paths), chunk):
            parts.append(verifier.embed_distinct(paths[start : start + chunk]))
            status.update(f"embedding images: {min(start + chunk, len(paths))}/{len(paths)}")
    embedded = merge_embeddings(parts)
    usable = [p for p in pair_set.pairs if not (embedded.error_of(p.reference) or embedded.error_of(p.query))]
    scored = iter(verifier.score_pairs(embedded, [(p.reference, p.query) for p in usable]))
    results: list[VerificationResult] = []
    rows: list[dict[str, object]] = []
    for pair in pair_set.pairs:
        problem = embedded.error_of(pair.reference) or embedded.error_of(pair.query)
        if problem is None:
            result = next(scored)
            results.append(result)
            rows.append({**result.to_dict(), "label": pair.label, "kind": pair.kind, "error": ""})
        else:
            rows.append(
                {
                    "reference": str(pair.reference),
                    "query": str(pair.query),
                    "label": pair.label,
                    "kind": pair.kind,
                    "error": str(problem),
                }
            )
    if not results:
        raise InvalidImageError(str(pairs), "no pair could be scored (every pair has an unreadable or blank image)")
    scores = np.array([r.score for r in results])
    labels = np.array([p.label for p in usable], dtype=np.int64)
    threshold = results[0].threshold
    summary = {
        "pairs": len(rows),
        "scored": len(results),
        "failed": len(rows) - len(results),
        "distinct_images": len(paths),
        "unreadable_images": len(embedded.errors),
        "accepted": int(sum(r.accepted for r in results)),
        "threshold": threshold,
        "threshold_rule": results[0].threshold_rule,
        "accuracy": accuracy_at(labels, scores, threshold),
        "frr": frr(scores[labels == 1], threshold),
        "far": far(scores[labels == 0], threshold),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".json":
            out.write_text(json.dumps({"summary": summary, "results": rows}, indent=2) + "\n", encoding="utf-8")
        else:
            with out.open("w", newline="", encoding="utf-8") as handle:
                columns = list(dict.fromkeys(key for row in rows for key in row))
                writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
    if json_out:
        print_json({"summary": summary, **({} if out else {"results": rows})})
        return
    if summary["failed"]:
        error_console.print(
            f"{summary['failed']} of {summary['pairs']} pairs not scored: {summary['unreadable_images']} images "
            "could not be read or show no ink (the rows say which)"
        )
    console.print(
        f"{summary['scored']} pairs scored, {summary['accepted']} accepted at threshold {threshold:.4f} "
        f"({summary['threshold_rule']}); against the file's labels: accuracy {summary['accuracy']:.2%}, "
        f"FRR {summary['frr']:.2%}, FAR {summary['far']:.2%}" + (f"; results in {out}" if out else "")
    )


@reports_errors
def embed(
    folder: Path = typer.Argument(..., help="Folder of signature images (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="Output .npz (embeddings, paths, model, preprocess version)."),
    model: Path | None = ModelOption,
    device: str = DeviceOption,
    batch: int = typer.Option(64, min=1, help="Images per batch."),
    json_out: bool = JsonOption,
) -> None:
    """Embed every image of FOLDER; unreadable files are listed, never silently dropped."""
    from rich.progress import Progress

    from inkproof.data.adapters import iter_image_files
    from inkproof.errors import EmptyDatasetError, InvalidImageError
    from inkproof.verifier import Verifier

    files = list(iter_image_files(folder)) if folder.is_dir() else []
    if not files:
        raise EmptyDatasetError(f"no images under {folder}")
    kept: list[str] = []
    failed: list[tuple[str, str]] = []
    vectors = []
    with Verifier(model, device=device) as verifier, Progress(transient=True) as progress:
        task = progress.add_task("embedding", total=len(files))
        for start in range(0, len(files), batch):
            chunk = files[start : start + batch]
            images = []
            for path in chunk:
                try:
                    images.append(verifier.engine.prepare(path))
                    kept.append(str(path.relative_to(folder)))
                except InvalidImageError as exc:
                    failed.append((str(path.relative_to(folder)), exc.reason))
                progress.advance(task)
            if images:
                vectors.append(verifier.engine.embed(np.stack(images)))
        card = verifier.card
    embeddings = np.concatenate(vectors) if vectors else np.zeros((0, card.embedding_dim), np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        embeddings=embeddings,
        paths=np.array(kept),
        failed=np.array([f"{name}: {reason}" for name, reason in failed]),
        model=np.array(card.name),
        preprocess_version=np.array(card.preprocess_version),
    )
    for name, reason in failed:
        error_console.print(f"[yellow]skipped[/] {name}: {reason}")
    if json_out:
        print_json(
            {
                "out": str(out),
                "embedded": len(kept),
                "failed": [{"path": p, "reason": r} for p, r in failed],
                "dimensions": int(embeddings.shape[1]),
            }
        )
        return
    console.print(
        f"[green]wrote[/] {out}: {len(kept)} embeddings of {embeddings.shape[1]} dimensions"
        + (f", {len(failed)} unreadable file(s) skipped" if failed else "")
    )

"""The claims part of ``inkproof benchmark accuracy``: writer-dependent scoring with K references.

It trains nothing: it takes a model card calibrated by ``inkproof calibrate-claims`` (the bundled
model by default), the split recorded in the card (the main split), and reports every scoring
method at K = 1, 3, 5, 10 on each dataset's TEST writers at the thresholds the card chose on the
validation writers: pooled EER, skilled-only EER, and FRR with the FAR on skilled forgeries it
actually gives at the far-skilled-1 / far-skilled-5 / eer operating points. It also measures the
reference outlier check on the test writers. The validation results recorded in the card (what
each method reached, and what was chosen) go beside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inkproof.claims import ClaimsCalibration, ClaimsConfigError, load_cohort
from inkproof.evaluation.claims import embed_files, evaluate_claims, method_label, outlier_rates
from inkproof.evaluation.references import ReferenceSample

DATASETS = (("cedar", "CEDAR"), ("bhsig-hindi", "BHSig260-Hindi"))


def run_claims_benchmark(
    data_root: str | Path,
    *,
    model: str | Path | None = None,
    seed: int = 0,
    repeats: int = 5,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    from inkproof.artifact import ModelCard, card_path_for
    from inkproof.data.adapters import load_dataset
    from inkproof.data.splits import WriterSplit
    from inkproof.evaluation.scoring import load_scorer
    from inkproof.evaluation.selection import writers_in
    from inkproof.verifier import default_model_path

    card_path = card_path_for(model or default_model_path())
    card = ModelCard.load(card_path)
    if not card.claims:
        raise ClaimsConfigError(f"{card_path} has no claims calibration; run `inkproof calibrate-claims` first")
    if "split" not in card.training:
        raise ClaimsConfigError(f"{card_path} records no split: its test writers are unknown")
    calibration = ClaimsCalibration.from_dict(card.claims)
    cohort = load_cohort(card_path.parent / calibration.cohort_file, calibration.cohort_sha256)
    split = WriterSplit.from_dict(card.training["split"])
    scorer = load_scorer(card_path, device="cpu")
    tests = []
    began = time.perf_counter()
    for folder, label in DATASETS:
        dataset = load_dataset(Path(data_root) / folder)
        writers = writers_in(dataset, split.test)
        if not writers:
            continue
        subset = dataset.subset(writers)
        paths = sorted({r.path for r in subset.records})
        row = {p: i for i, p in enumerate(paths)}
        log(f"claims: embedding {len(paths)} signatures of {len(writers)} {label} test writers")
        embeddings = embed_files(scorer, paths, cache_dir)
        samples = [ReferenceSample(r.writer, r.is_genuine, row[r.path]) for r in subset.records]
        same = {frozenset((row[a], row[b])) for a, b in subset.near_duplicates if a in row and b in row}
        rows = evaluate_claims(samples, embeddings, calibration, cohort, seed=seed, repeats=repeats, same_instance=same)
        tests.append(
            {
                "test": f"{label} (test writers)",
                "dataset": folder,
                "writers": len(writers),
                "rows": [r.to_dict() for r in rows],
                "outliers": outlier_rates(samples, embeddings, calibration.outlier_threshold, seed=seed),
            }
        )
    return {
        "model": str(card_path.parent.name),
        "chosen": {str(k): m for k, m in calibration.chosen.items()},
        "cohort": calibration.record.get("cohort", {}),
        "validation": calibration.record.get("validation", []),
        "validation_outliers": calibration.record.get("outliers", {}),
        "outlier_threshold": calibration.outlier_threshold,
        "repeats": repeats,
        "seed": seed,
        "tests": tests,
        "seconds": time.perf_counter() - began,
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f}"


def claims_markdown(record: dict[str, Any], *, baselines: tuple[str, ...] = ("mean", "max")) -> str:
    """Test writers: the chosen method and the plain baselines per K; then validation: every method per K."""
    lines = [
        f"Model `{record['model']}`, main split, thresholds and method chosen on the validation writers; "
        f"{record['repeats']} reference draws per writer, seed {record['seed']}, {record['timestamp']}. "
        "FRR (FAR skilled) in % at each operating point's validation threshold; **bold**: the method chosen "
        "on validation for that K.",
        "",
        "| test writers | K | method | EER | EER skilled | far-skilled-1: FRR (FAR skilled) | "
        "far-skilled-5: FRR (FAR skilled) | eer: FRR (FAR skilled) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for test in record["tests"]:
        rows = sorted(test["rows"], key=lambda r: (r["k"], not r["chosen"], r["method"]))
        for row in rows:
            if not row["chosen"] and row["method"] not in baselines:
                continue
            name = method_label(row["method"])
            points = row["points"]
            cells = [
                f"{_pct(points[p]['frr'])} ({_pct(points[p]['far_skilled'])})"
                for p in ("far-skilled-1", "far-skilled-5", "eer")
            ]
            lines.append(
                f"| {test['test']} | {row['k']} | {f'**{name}**' if row['chosen'] else name} | "
                f"{_pct(row['eer'])} | {_pct(row['eer_skilled'])} | " + " | ".join(cells) + " |"
            )
    lines += ["", "Reference outlier check (5 references; a flagged reference is kept out of scoring):", ""]
    lines += [
        "| writers | genuine sets with a flag | skilled forgery among them flagged | other writer's signature flagged |"
    ]
    lines += ["|---|---|---|---|"]
    outlier_rows = [("validation (threshold chosen here)", record.get("validation_outliers", {}))]
    outlier_rows += [(t["test"], t["outliers"]) for t in record["tests"]]
    for label, rates in outlier_rows:
        if rates:
            lines.append(
                f"| {label} | {_pct(rates.get('genuine_sets_with_a_flag'))} | "
                f"{_pct(rates.get('skilled_forgery_among_references_flagged'))} | "
                f"{_pct(rates.get('other_writer_among_references_flagged'))} |"
            )
    validation = record.get("validation", [])
    if validation:
        ks = sorted({int(r["k"]) for r in validation})
        by = {(r["method"], int(r["k"])): r for r in validation}
        methods = sorted(
            {r["method"] for r in validation}, key=lambda m: min(by[(m, k)]["eer"] or 1 for k in ks if (m, k) in by)
        )
        lines += [
            "",
            "Every method on the validation writers (pooled EER %, the criterion; skilled-only EER in brackets):",
            "",
            "| method | " + " | ".join(f"K={k}" for k in ks) + " |",
            "|---|" + "---|" * len(ks),
        ]
        for method in methods:
            cells = []
            for k in ks:
                r = by.get((method, k))
                if r is None:
                    cells.append("--")
                    continue
                text = f"{_pct(r['eer'])} ({_pct(r['eer_skilled'])})"
                cells.append(f"**{text}**" if r.get("chosen") else text)
            lines.append(f"| {method_label(method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pooled_test_numbers(record: dict[str, Any], dataset: str, k: int) -> dict[str, Any] | None:
    """The chosen method's row for one dataset and K (for README tables and checks)."""
    for test in record["tests"]:
        if test["dataset"] == dataset:
            for row in test["rows"]:
                if row["k"] == k and row["chosen"]:
                    return dict(row)
    return None


__all__ = ["claims_markdown", "pooled_test_numbers", "run_claims_benchmark"]

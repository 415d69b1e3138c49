"""Writer-independent evaluation of a model on the pairs of held-out writers.

The operating threshold comes from the model card (calibrated on validation writers during
training) unless the caller overrides it; test scores never choose it. Results: a
:class:`VerificationReport` (FAR on skilled and on random forgeries, FRR, EER, AUC, ...), the
K-reference protocol, a metrics JSON, the scores, and figures (ROC, DET, histogram, hardest pairs).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.data.bank import build_image_bank
from inkproof.data.pairs import PairSet, make_pairs
from inkproof.data.records import SignatureDataset
from inkproof.evaluation.claims import ClaimMetrics
from inkproof.evaluation.metrics import VerificationReport, evaluate_scores
from inkproof.evaluation.references import ReferenceResult, ReferenceSample, reference_set_evaluation
from inkproof.evaluation.scoring import Scorer
from inkproof.imaging import load_image

DEFAULT_KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class EvaluationResult:
    report: VerificationReport
    threshold_source: str
    model: str
    dataset: str
    writers: int
    references: tuple[ReferenceResult, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    #: Writer-dependent claim scoring per K and method at the card's validation thresholds.
    claims: tuple[ClaimMetrics, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "writers": self.writers,
            "threshold_source": self.threshold_source,
            "report": self.report.to_dict(),
            "references": [r.to_dict() for r in self.references],
            "claims": [c.to_dict() for c in self.claims],
            "files": self.files,
        }


def embed_paths(scorer: Scorer, paths: Sequence[Path], *, cache_dir: Path | None = None) -> np.ndarray:
    """Embeddings of image files, preprocessed with the model's own preprocessing."""
    bank = build_image_bank(paths, scorer.card.preprocess_config, cache_dir=cache_dir, description="test images")
    embeddings = [scorer.embed(bank[i : i + 256].astype(np.float32) / 255.0) for i in range(0, len(bank), 256)]
    return np.concatenate(embeddings) if embeddings else np.zeros((0, scorer.card.embedding_dim), np.float32)


def score_pair_set(
    scorer: Scorer, pairs: PairSet, *, cache_dir: Path | None = None, extra_paths: Sequence[Path] = ()
) -> tuple[np.ndarray, np.ndarray, dict[Path, int]]:
    """(scores of ``pairs``, embeddings, row of each path): every image is embedded once."""
    paths = sorted(set(pairs.images()) | set(extra_paths))
    row = {path: i for i, path in enumerate(paths)}
    embeddings = embed_paths(scorer, paths, cache_dir=cache_dir)
    first = np.array([row[p.reference] for p in pairs.pairs], dtype=np.int64)
    second = np.array([row[p.query] for p in pairs.pairs], dtype=np.int64)
    scores = np.asarray(scorer.score(embeddings[first], embeddings[second]), dtype=np.float64)
    return scores, embeddings, row


def evaluate(
    scorer: Scorer,
    dataset: SignatureDataset | None,
    writers: Sequence[str] | None,
    *,
    out_dir: str | Path,
    pairs: PairSet | None = None,
    threshold: float | None = None,
    rule: str = "eer",
    seed: int = 0,
    ks: Sequence[int] = DEFAULT_KS,
    plots: bool = True,
    cache_dir: Path | None = None,
    card_path: Path | None = None,
) -> EvaluationResult:
    """Score the pairs of ``writers`` (standard protocol, or the given ``pairs``) and report.

    ``threshold`` overrides the card's validation-calibrated threshold (``0.0`` is a threshold
    like any other); ``rule`` picks which calibrated threshold to use (eer, far_1, far_0_1).
    With ``card_path`` of a card calibrated for claims (``inkproof calibrate-claims``), every
    claim scoring method is also measured per K at the card's validation thresholds.
    """
    if pairs is None:
        if dataset is None:
            raise ValueError("give a dataset (with writers) or pairs")
        pairs = make_pairs(dataset, writers=writers, seed=seed)
    if threshold is not None:
        used, source = float(threshold), "override"
    else:
        used, source = scorer.card.threshold(rule), f"validation:{rule}"

    scores, embeddings, row = score_pair_set(
        scorer, pairs, cache_dir=cache_dir, extra_paths=sorted(_writer_paths(dataset, writers))
    )
    labels = pairs.labels()
    kinds = [p.kind for p in pairs.pairs]
    pair_writers = [p.writer or "" for p in pairs.pairs]
    report = evaluate_scores(scores, labels, kinds, used, writers=pair_writers if all(pair_writers) else None)

    references: tuple[ReferenceResult, ...] = ()
    claims: tuple[ClaimMetrics, ...] = ()
    if dataset is not None and writers is not None:
        samples = [ReferenceSample(r.writer, r.is_genuine, row[r.path]) for r in dataset.subset(writers).records]
        same = {frozenset((row[a], row[b])) for a, b in dataset.near_duplicates if a in row and b in row}
        references = tuple(
            reference_set_evaluation(samples, embeddings, scorer.score, ks=ks, seed=seed, same_instance=same)
        )
        if card_path is not None and scorer.card.claims:
            claims = _claims(scorer, card_path, samples, embeddings, ks, seed, same)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"scores": str(_write_scores(out / "scores.csv", pairs, scores))}
    if plots:
        files.update(_figures(out, pairs, labels, scores, kinds, used, references))
    result = EvaluationResult(
        report=report,
        threshold_source=source,
        model=scorer.card.name,
        dataset=dataset.name if dataset is not None else str(pairs.root),
        writers=len(set(pair_writers) - {""}),
        references=references,
        files=files,
        claims=claims,
    )
    metrics_path = out / "metrics.json"
    files["metrics"] = str(metrics_path)
    metrics_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return result


def _claims(
    scorer: Scorer,
    card_path: Path,
    samples: Sequence[ReferenceSample],
    embeddings: np.ndarray,
    ks: Sequence[int],
    seed: int,
    same: set[frozenset[int]],
) -> tuple[ClaimMetrics, ...]:
    from inkproof.claims import ClaimsCalibration, load_cohort
    from inkproof.evaluation.claims import evaluate_claims

    calibration = ClaimsCalibration.from_dict(scorer.card.claims or {})
    cohort = load_cohort(Path(card_path).parent / calibration.cohort_file, calibration.cohort_sha256)
    ks = [k for k in ks if k in calibration.thresholds]
    return tuple(evaluate_claims(samples, embeddings, calibration, cohort, ks=ks, seed=seed, same_instance=same))


def _writer_paths(dataset: SignatureDataset | None, writers: Sequence[str] | None) -> set[Path]:
    if dataset is None or writers is None:
        return set()
    return {r.path for r in dataset.subset(writers).records}


def _write_scores(path: Path, pairs: PairSet, scores: np.ndarray) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("img1", "img2", "label", "kind", "writer", "score"))
        for pair, score in zip(pairs.pairs, scores, strict=True):
            writer.writerow((pair.reference, pair.query, pair.label, pair.kind, pair.writer or "", repr(float(score))))
    return path


def _figures(
    out: Path,
    pairs: PairSet,
    labels: np.ndarray,
    scores: np.ndarray,
    kinds: Sequence[str],
    threshold: float,
    references: Sequence[ReferenceResult],
) -> dict[str, str]:
    from inkproof.evaluation import plots

    files = {
        "roc": plots.plot_roc(labels, scores, kinds, out / "roc.png", threshold=threshold),
        "det": plots.plot_det(labels, scores, kinds, out / "det.png", threshold=threshold),
        "histogram": plots.plot_score_histogram(scores, kinds, out / "score_histogram.png", threshold=threshold),
    }
    genuine, forged = plots.hardest_pairs(labels, scores, 6)
    tiles = []
    for index in [*genuine, *forged]:
        pair = pairs.pairs[index]
        verdict = "accepted" if scores[index] >= threshold else "rejected"
        caption = f"{pair.kind} ({pair.writer or '?'}): score {scores[index]:.4g}, {verdict}"
        tiles.append((load_image(pair.reference), load_image(pair.query), caption))
    files["hardest_pairs"] = plots.pair_grid(
        tiles,
        out / "hardest_pairs.png",
        title="Hardest pairs: lowest-scored genuine, highest-scored forgeries",
    )
    if references:
        rows = [(r.k, r.fusion, r.eer) for r in references]
        files["references"] = plots.plot_eer_by_references(rows, out / "eer_by_references.png")
    return {name: str(path) for name, path in files.items()}

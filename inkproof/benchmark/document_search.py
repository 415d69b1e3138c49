"""Signer retrieval among document signature crops (``inkproof benchmark document-search``).

Tobacco800 annotates each signature box with its signer (``author_id``). The detector's
signer-disjoint split (:func:`inkproof.document.detector_training.tobacco_splits`) gives validation
signers and held-out test signers that share nothing with each other. On each side every annotated
signature is cropped as the report crops it (box plus :data:`~inkproof.document.report.CROP_PAD`),
optionally cleaned by the bundled cleaner, and embedded by the verification model; crops of one
signer on different documents are same-signer pairs, crops of different signers are different-signer
pairs (two crops of the same document or of byte-identical duplicate pages are never paired: they
may be the same scan).

* Validation signers calibrate crop-vs-crop thresholds (EER and FAR 1 %, the rules the store uses
  for "no_match" and "match"); they are written to :data:`CALIBRATION_FILE` beside the model, which
  :meth:`~inkproof.store.documents.DocumentStore.search_documents` uses for crops.
* Test signers measure retrieval: each crop whose signer has another crop elsewhere queries all
  other crops (those of its own document excluded): precision@1, mean average precision, and the
  decision error rates at the validation thresholds (same-signer crops called "no_match",
  different-signer crops called "match").
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.atomic import write_json_atomic
from inkproof.evaluation.metrics import calibrate_thresholds, equal_error_rate, labelled_scores

CALIBRATION_FILE = "document-search.json"


@dataclass(frozen=True)
class SignerCrop:
    signer: str
    group: str  # document (duplicate pages share one group): crops of one group are never paired
    image: np.ndarray


def signer_crops(pages: Sequence[Any], duplicates: Sequence[tuple[Path, Path]] = ()) -> list[SignerCrop]:
    """Every signature with a signer id on ``pages`` (:class:`~inkproof.document.tobacco.AnnotatedPage`)."""
    from inkproof.document.report import CROP_PAD
    from inkproof.imaging import load_image

    group_of = {page.path: page.document for page in pages}
    for a, b in duplicates:  # a duplicate page joins the group of the page it copies
        if a in group_of and b in group_of:
            group_of[a] = group_of[b]
    crops = []
    for page in pages:
        boxes = [b for b in page.boxes if b.label == "signature" and b.author]
        if not boxes:
            continue
        image = load_image(page.path)
        height, width = image.shape
        for box in boxes:
            x0, y0 = max(0, box.x0 - CROP_PAD), max(0, box.y0 - CROP_PAD)
            x1, y1 = min(width, box.x1 + CROP_PAD), min(height, box.y1 + CROP_PAD)
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            crops.append(SignerCrop(box.author, group_of[page.path], np.ascontiguousarray(image[y0:y1, x0:x1])))
    return crops


def pair_scores(scores: np.ndarray, signers: Sequence[str], groups: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(same-signer, different-signer) scores of every pair i < j from different groups."""
    n = len(signers)
    rows, cols = np.triu_indices(n, k=1)
    signer = np.asarray(signers)
    group = np.asarray(groups)
    usable = group[rows] != group[cols]
    rows, cols = rows[usable], cols[usable]
    same = signer[rows] == signer[cols]
    values = scores[rows, cols]
    return values[same], values[~same]


def retrieval(scores: np.ndarray, signers: Sequence[str], groups: Sequence[str]) -> dict[str, float]:
    """Precision@1 and mean average precision over the queries that have a same-signer crop elsewhere."""
    signer = np.asarray(signers)
    group = np.asarray(groups)
    hits_at_1, precisions = [], []
    for q in range(len(signer)):
        allowed = group != group[q]
        relevant = allowed & (signer == signer[q])
        if not relevant.any():
            continue
        order = np.argsort(-np.where(allowed, scores[q], -np.inf), kind="stable")
        order = order[allowed[order]]
        hits = relevant[order]
        hits_at_1.append(float(hits[0]))
        ranks = np.nonzero(hits)[0] + 1
        precisions.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    return {
        "queries": len(hits_at_1),
        "precision_at_1": float(np.mean(hits_at_1)) if hits_at_1 else float("nan"),
        "mean_average_precision": float(np.mean(precisions)) if precisions else float("nan"),
    }


def _embed(crops: Sequence[SignerCrop], verifier: Any, cleaner: Any | None) -> np.ndarray:
    images = [c.image if cleaner is None else cleaner.clean(c.image).image for c in crops]
    return np.asarray(verifier.embed_many(images), dtype=np.float32)


def _score_matrix(embeddings: np.ndarray, verifier: Any) -> np.ndarray:
    n = len(embeddings)
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.asarray(verifier.score_embeddings(embeddings[rows.ravel()], embeddings[cols.ravel()])).reshape(n, n)


def run_document_search_benchmark(
    data_root: str | Path,
    *,
    model: str | Path | None = None,
    cleaner_model: str | Path | None = None,
    threads: int | None = None,
    calibration_out: str | Path | None = None,
) -> dict[str, Any]:
    """Calibrate on validation signers, measure on test signers, raw and cleaned crops (module docstring).

    With ``calibration_out`` the cleaned-crop thresholds are written there (a JSON beside the model).
    """
    from inkproof.artifact import model_tag_of
    from inkproof.document.cleaner import SignatureCleaner
    from inkproof.document.detector_training import DetectorTrainingConfig, tobacco_splits
    from inkproof.document.tobacco import load_tobacco800
    from inkproof.verifier import Verifier

    began = time.perf_counter()
    root = Path(data_root) / "tobacco800" if (Path(data_root) / "tobacco800").is_dir() else Path(data_root)
    data = load_tobacco800(root)
    _, validation_pages, test_pages = tobacco_splits(root, DetectorTrainingConfig())
    sides = {
        "validation": signer_crops(validation_pages, data.duplicates),
        "test": signer_crops(test_pages, data.duplicates),
    }
    assert not {c.signer for c in sides["validation"]} & {c.signer for c in sides["test"]}
    results: dict[str, Any] = {"signers": {}, "crops": {}}
    for side, crops in sides.items():
        results["signers"][side] = len({c.signer for c in crops})
        results["crops"][side] = len(crops)
    with Verifier(model, threads=threads) as verifier, SignatureCleaner(cleaner_model, threads=threads) as cleaner:
        tag = model_tag_of(verifier.card)
        for variant, active in (("raw", None), ("cleaned", cleaner)):
            entry: dict[str, Any] = {}
            matrices = {}
            for side, crops in sides.items():
                matrices[side] = _score_matrix(_embed(crops, verifier, active), verifier)
            val = sides["validation"]
            same, different = pair_scores(matrices["validation"], [c.signer for c in val], [c.group for c in val])
            calibrated = calibrate_thresholds(*labelled_scores(same, different))
            accept, reject = float(calibrated.far_1), float(calibrated.eer)
            test = sides["test"]
            signers, groups = [c.signer for c in test], [c.group for c in test]
            t_same, t_diff = pair_scores(matrices["test"], signers, groups)
            card_accept, card_reject = verifier.card.threshold("far_1"), verifier.card.threshold("eer")
            entry["validation"] = {
                "same_signer_pairs": len(same),
                "different_signer_pairs": len(different),
                "eer": float(calibrated.validation_eer),
                "accept_far_1": accept,
                "reject_eer": reject,
            }
            entry["test"] = {
                **retrieval(matrices["test"], signers, groups),
                "same_signer_pairs": len(t_same),
                "different_signer_pairs": len(t_diff),
                "eer": float(equal_error_rate(*labelled_scores(t_same, t_diff)).eer),
                "same_signer_median_score": float(np.median(t_same)) if len(t_same) else float("nan"),
                # Decisions as search reports them: "no_match" below reject, "match" at accept or above.
                "crop_thresholds": _decision_rates(t_same, t_diff, accept, reject),
                "model_thresholds": _decision_rates(t_same, t_diff, card_accept, card_reject),
            }
            results[variant] = entry
        results["model"] = verifier.card.name
        results["model_tag"] = tag
        if calibration_out is not None:
            cleaned = results["cleaned"]["validation"]
            write_json_atomic(
                calibration_out,
                {
                    "model_tag": tag,
                    "crops": "cleaned",
                    "thresholds": {"far_1": cleaned["accept_far_1"], "eer": cleaned["reject_eer"]},
                    "calibration": (
                        f"Tobacco800 validation signers ({results['signers']['validation']} signers, "
                        f"{results['crops']['validation']} crops, {cleaned['same_signer_pairs']} same-signer and "
                        f"{cleaned['different_signer_pairs']} different-signer pairs), cleaned by the bundled cleaner"
                    ),
                    "validation_eer": cleaned["eer"],
                },
            )
    results["seconds"] = round(time.perf_counter() - began, 1)
    return results


def _decision_rates(same: np.ndarray, different: np.ndarray, accept: float, reject: float) -> dict[str, float]:
    return {
        "accept": round(float(accept), 4),
        "reject": round(float(reject), 4),
        "same_signer_no_match": float(np.mean(same < reject)) if len(same) else float("nan"),
        "same_signer_match": float(np.mean(same >= accept)) if len(same) else float("nan"),
        "different_signer_match": float(np.mean(different >= accept)) if len(different) else float("nan"),
        "different_signer_no_match": float(np.mean(different < reject)) if len(different) else float("nan"),
    }


def main() -> None:  # pragma: no cover - a measurement run, see docs/benchmarks.md
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", required=True, help="JSON of the results")
    parser.add_argument("--calibration", help="write the cleaned-crop thresholds here")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    results = run_document_search_benchmark(args.data, threads=args.threads, calibration_out=args.calibration)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()

"""Train the signature filter (:mod:`inkproof.document.signature_filter`) of a detector.

``python -m inkproof.document.filter_training --data ../shared/data --out signature-filter.json``
runs the detector (without a filter) on the Tobacco800 *training* and *validation* pages of its
card's split, collects its signature boxes with their features, labels each by IoU >= 0.5 with an
annotated signature, fits the logistic regression on the training pages for each setting of the
grid, and keeps the setting with the best validation AP@0.5 (fewest false boxes at confidence
>= 0.9 on a tie). No box is dropped (``drop_below`` 0): on validation pages every drop level tried
(0.005-0.2) lost true signatures and AP (0.686 -> 0.678-0.635); low scores make a box "uncertain"
in the report instead. The held-out test pages are never read. Torch-free, like the detector.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.document.signature_filter import SignatureFilter, candidate_features, fit_filter, merge_fragments
from inkproof.evaluation.detection import Detection, box_iou, coco_average_precision

L2_GRID = (0.1, 1.0, 10.0)
MERGE_GRID: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 0.06), (1.0, 0.1))  # (gap, narrower)


def detect_all(detector: Any, pages: Sequence[Any]) -> list[tuple[Any, tuple[Any, ...]]]:
    """Each page with the detector's fields on it (run once; the settings tried reuse them)."""
    from inkproof.imaging import load_image

    return [(page, detector.detect(load_image(page.path)).detections) for page in pages]


def collect(
    detected: Sequence[tuple[Any, tuple[Any, ...]]], *, gap: float = 0.0, narrower: float = 0.0
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, tuple[int, int, int, int]]], dict[str, list[Any]]]:
    """(features, labels, (page key, box) of each candidate, truth by page) of the detected pages."""
    from inkproof.imaging import load_image
    from inkproof.preprocess.signature import otsu_threshold

    rows, labels, meta = [], [], []
    truth: dict[str, list[Any]] = {}
    for page, found in detected:
        key = str(page.path)
        gray = load_image(page.path)
        signatures = [d for d in found if d.label == "signature"]
        if gap > 0:
            signatures = merge_fragments(signatures, gap=gap, overlap=0.3, narrower_than=narrower * gray.shape[1])
        logos = [d for d in found if d.label == "logo"]
        features = candidate_features(gray, gray < otsu_threshold(gray), signatures, logos)
        truth[key] = [("signature", (b.x0, b.y0, b.x1, b.y1)) for b in page.boxes if b.label == "signature"]
        for signature, row in zip(signatures, features, strict=True):
            best = max([box_iou(signature.box, box) for _, box in truth[key]] or [0.0])
            rows.append(row)
            labels.append(best >= 0.5)
            meta.append((key, signature.box))
    return np.asarray(rows).reshape(len(rows), -1), np.asarray(labels, dtype=bool), meta, truth


def score(meta: Sequence[Any], scores: np.ndarray, labels: np.ndarray, truth: dict[str, list[Any]]) -> dict[str, Any]:
    detections = [
        Detection(key, "signature", (float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(value))
        for (key, b), value in zip(meta, scores, strict=True)
    ]
    ap = coco_average_precision(detections, truth, "signature")
    return {
        "ap50": round(ap["ap50"], 4),
        "ap50_95": round(ap["ap50_95"], 4),
        "false_at_0_9": int(np.sum((scores >= 0.9) & ~labels)),
        "boxes": len(meta),
    }


def train_signature_filter(
    data: str | Path, *, model: str | Path | None = None
) -> tuple[SignatureFilter, dict[str, Any]]:
    """The filter chosen on validation pages, and the validation table of every setting tried."""
    from inkproof.document.detector import PageDetector
    from inkproof.document.detector_training import DetectorTrainingConfig, find_tobacco, tobacco_splits

    tried: list[dict[str, Any]] = []
    best: tuple[tuple[float, float], SignatureFilter] | None = None
    with PageDetector.from_card(model, use_filter=False, threads=1) as detector:
        config = DetectorTrainingConfig.from_dict(detector.card.segmentation.training.get("detector") or {})
        fit_pages, validation_pages, _ = tobacco_splits(find_tobacco(data), config)
        fit_found, validation_found = detect_all(detector, fit_pages), detect_all(detector, validation_pages)
        for gap, narrower in MERGE_GRID:
            x_fit, y_fit, _, _ = collect(fit_found, gap=gap, narrower=narrower)
            x_val, y_val, meta, truth = collect(validation_found, gap=gap, narrower=narrower)
            if gap == 0.0:
                tried.append({"setting": "detector alone", **score(meta, x_val[:, 0], y_val, truth)})
            for l2 in L2_GRID:
                candidate = fit_filter(
                    x_fit, y_fit, l2=l2, merge_gap=gap, merge_overlap=0.3, merge_narrower_than=narrower, drop_below=0.0
                )
                result = score(meta, candidate.probabilities(x_val), y_val, truth)
                tried.append({"setting": f"filter l2={l2} merge gap={gap} narrower={narrower}", **result})
                key = (float(result["ap50"]), -float(result["false_at_0_9"]))
                if best is None or key > best[0]:
                    best = (key, candidate)
    assert best is not None
    chosen = best[1]
    notes = (
        f"trained on {len(fit_pages)} Tobacco800 training pages, chosen on {len(validation_pages)} validation pages "
        f"(validation AP@0.5 {best[0][0]}, {-best[0][1]:.0f} false boxes at >= 0.9)"
    )
    from dataclasses import replace

    return replace(chosen, notes=notes), {"tried": tried, "notes": notes}


def main() -> None:  # pragma: no cover - a training run
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--model", default=None, help="detector card (default: the bundled one)")
    parser.add_argument("--out", required=True, help="signature-filter.json to write")
    args = parser.parse_args()
    chosen, table = train_signature_filter(args.data, model=args.model)
    chosen.save(args.out)
    Path(args.out).with_suffix(".validation.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(table, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()

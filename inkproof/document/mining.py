"""Mine the detector's own false signatures on Tobacco800 *training* pages (hard negatives).

``python -m inkproof.document.mining --data ../shared/data --out mined.json`` runs a detector
(the bundled one by default, without its signature filter) over the training pages of its card's
split and lists, per page, each signature box that is not a signature: it overlaps no annotated
signature by IoU >= ``max_iou`` and lies mostly (``max_inside``) outside every one of them, so a
fragment of a real signature is not counted. Such boxes are handwritten notes, dates, routing
marks and script wordmarks; detector training shows their pages more often
(``DetectorTrainingConfig.mined_negatives``). Validation and held-out test pages are never read.
Torch-free, like the detector.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from inkproof.evaluation.detection import BoxTuple, box_iou


def _inside(box: BoxTuple, other: BoxTuple) -> float:
    """Share of ``box``'s area that lies inside ``other``."""
    w = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    h = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    return w * h / area


def false_signatures(
    found: Iterable[tuple[BoxTuple, float]],
    truth: Sequence[BoxTuple],
    *,
    min_confidence: float = 0.5,
    max_iou: float = 0.1,
    max_inside: float = 0.5,
) -> list[tuple[BoxTuple, float]]:
    """The (box, confidence) pairs of ``found`` that are confident and belong to no true signature."""
    return [
        (box, confidence)
        for box, confidence in found
        if confidence >= min_confidence
        and all(box_iou(box, t) < max_iou and _inside(box, t) < max_inside for t in truth)
    ]


def mine_false_signatures(
    data: str | Path | None, *, model: str | Path | None = None, min_confidence: float = 0.5, progress: bool = True
) -> dict[str, Any]:
    """``{"format", "model", "pages": {file name: [[x0, y0, x1, y1, confidence], ...]}, ...}``."""
    from rich.progress import Progress

    from inkproof.document.detector import PageDetector
    from inkproof.document.detector_training import MINED_FORMAT, DetectorTrainingConfig, find_tobacco, tobacco_splits
    from inkproof.imaging import load_image

    pages: dict[str, list[list[float]]] = {}
    with PageDetector.from_card(model, use_filter=False, threads=2) as detector:
        config = DetectorTrainingConfig.from_dict(detector.card.segmentation.training.get("detector") or {})
        train_pages, _, _ = tobacco_splits(find_tobacco(data), config)
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("mining false signatures", total=len(train_pages))
            for page in train_pages:
                found = [
                    (d.box, float(d.confidence))
                    for d in detector.detect(load_image(page.path)).detections
                    if d.label == "signature"
                ]
                truth = [(b.x0, b.y0, b.x1, b.y1) for b in page.boxes if b.label == "signature"]
                false = false_signatures(found, truth, min_confidence=min_confidence)
                if false:
                    pages[page.path.name] = [[*map(float, box), round(c, 4)] for box, c in false]
                bar.advance(task)
        name = detector.card.segmentation.name
    return {
        "format": MINED_FORMAT,
        "model": name,
        "min_confidence": min_confidence,
        "training_pages": len(train_pages),
        "false_boxes": sum(len(v) for v in pages.values()),
        "pages": pages,
    }


def main() -> None:  # pragma: no cover - a run over the data
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--model", default=None, help="detector card (default: the bundled one)")
    parser.add_argument("--min-confidence", type=float, default=0.5)
    parser.add_argument("--out", required=True, help="mined.json to write")
    args = parser.parse_args()
    mined = mine_false_signatures(args.data, model=args.model, min_confidence=args.min_confidence)
    Path(args.out).write_text(json.dumps(mined, indent=1) + "\n", encoding="utf-8")
    print(f"{mined['false_boxes']} false signature boxes on {len(mined['pages'])} of {mined['training_pages']} pages")


if __name__ == "__main__":  # pragma: no cover
    main()

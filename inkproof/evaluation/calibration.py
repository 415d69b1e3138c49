"""Recalibrate a model's thresholds on a user's own validation data.

The bundled thresholds were chosen on the validation writers of the training split. Scans from
another scanner, population or script can shift the score distributions, so a deployment can
recalibrate on its own labelled pairs (never on the pairs it will report results for). The
result is a copy of the model card, beside copies of the model files, with new thresholds and a
record of where they came from.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from inkproof.artifact import card_path_for
from inkproof.data.pairs import PairSet
from inkproof.evaluation.metrics import CalibratedThresholds, calibrate_thresholds
from inkproof.evaluation.scoring import load_scorer


@dataclass(frozen=True)
class CalibrationResult:
    card_path: Path
    thresholds: CalibratedThresholds
    previous: CalibratedThresholds | None


def calibrate(
    model: str | Path, pairs: PairSet, out: str | Path, *, source: str = "", cache_dir: Path | None = None
) -> CalibrationResult:
    """Score ``pairs`` with ``model`` and write a recalibrated copy of its card to ``out``."""
    from inkproof.evaluation.evaluate import score_pair_set

    card_path = card_path_for(model)
    scorer = load_scorer(card_path, device="cpu")
    scores, _, _ = score_pair_set(scorer, pairs, cache_dir=cache_dir)
    thresholds = calibrate_thresholds(pairs.labels(), scores)

    card = scorer.card
    target = Path(out)
    if target.suffix != ".json":
        target = target / "model.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    for name in card.files.values():
        source_file = card_path.parent / name
        if source_file.resolve() != (target.parent / name).resolve():
            shutil.copyfile(source_file, target.parent / name)
    record = {
        "source": source or str(pairs.root),
        "pairs": len(pairs),
        "counts": pairs.counts(),
        "validation_eer": thresholds.validation_eer,
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "previous_thresholds": card.thresholds.to_dict() if card.thresholds else None,
    }
    calibrated = card.with_changes(thresholds=thresholds, training={**card.training, "calibration": record})
    return CalibrationResult(calibrated.save(target), thresholds, card.thresholds)

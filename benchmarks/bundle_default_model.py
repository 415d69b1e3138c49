"""Build the model bundled inside the package from the accuracy benchmark's ``main`` run.

    inkproof benchmark accuracy --parts main --out benchmarks/results/accuracy
    python benchmarks/bundle_default_model.py benchmarks/results/accuracy/runs/main-default

Exports the best checkpoint to ONNX (parity-checked against torch), tries static int8 quantisation
(kept only when the validation EER rises by at most ``--max-eer-increase``), and writes the model
card with what a user needs to judge the model: training data and protocol, validation numbers,
calibrated thresholds, sha256 of every file, and the licence situation of the training data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from inkproof.artifact import ModelCard
from inkproof.export.onnx_export import export_onnx
from inkproof.export.quantize import QuantizationRejected, quantize, validation_pairs_for

TARGET = Path(__file__).resolve().parents[1] / "inkproof" / "assets" / "models" / "default"
NOTES = (
    "Research evaluation model. Trained on the CEDAR and BHSig260-Hindi (writers 1-100) signature "
    "datasets, which came without a licence; use it to evaluate inkproof, not as a licensed product. "
    "Writer-independent protocol: train, validation and test writers are disjoint; the checkpoint "
    "and thresholds were chosen on validation writers only. Accuracy on held-out writers: "
    "docs/benchmarks.md."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="Training run folder (its best/ model is bundled).")
    parser.add_argument("--data", type=Path, default=None, help="Dataset folder (default: the run's training data).")
    parser.add_argument("--out", type=Path, default=TARGET)
    parser.add_argument("--max-eer-increase", type=float, default=0.005)
    args = parser.parse_args()

    run: Path = args.run
    history = json.loads((run / "history.json").read_text())
    split = json.loads((run / "split.json").read_text())
    best = min(history, key=lambda entry: entry["val_eer"])
    with tempfile.TemporaryDirectory() as scratch:
        exported = export_onnx(run, Path(scratch) / "model.onnx")
        print(f"exported; parity {exported.parity}")
        card = ModelCard.load(exported.card_path)
        training = {
            **card.training,
            "datasets": ["CEDAR (55 writers)", "BHSig260-Hindi (writers 1-100)"],
            "protocol": "writer-disjoint 70/15/15 split per dataset, seed 0; checkpoint and thresholds on validation",
            "train_writers": len(split["train"]),
            "validation_writers": len(split["validation"]),
            "test_writers": len(split["test"]),
            "best_epoch": best["epoch"],
            "validation": {k: v for k, v in best.items() if k.startswith("val_")},
            "data_licence": "none given with the datasets; research evaluation only",
        }
        card = card.with_changes(training=training, notes=NOTES)
        card.save(exported.card_path)

        pairs, calibration = validation_pairs_for(card, data=args.data)
        int8_path = Path(scratch) / "model-int8.onnx"
        try:
            quantized = quantize(exported.card_path, int8_path, validation=pairs, calibration=calibration)
            print(f"int8 kept: validation EER {quantized.eer_before:.4f} -> {quantized.eer_after:.4f}")
        except QuantizationRejected as refused:
            print(f"int8 not bundled: {refused}")
        args.out.mkdir(parents=True, exist_ok=True)
        for old in args.out.glob("model*"):
            old.unlink()
        for produced in Path(scratch).glob("model*"):
            shutil.copyfile(produced, args.out / produced.name)
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.glob("model*"))}
    print(json.dumps(sizes, indent=2))


if __name__ == "__main__":
    main()

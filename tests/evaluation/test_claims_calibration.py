"""calibrate-claims end to end on the synthetic set: cohort from training writers, the choice per K
from validation writers, a card the store and `evaluate` use; re-running gives the same card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from inkproof.artifact import ModelCard, sha256_file
from inkproof.claims import ClaimsCalibration, load_cohort
from inkproof.cli.app import app
from inkproof.data.adapters import load_dataset
from inkproof.data.splits import WriterSplit
from inkproof.evaluation.claims import calibrate_claims
from inkproof.evaluation.evaluate import evaluate
from inkproof.evaluation.scoring import load_scorer
from inkproof.evaluation.selection import writers_in
from inkproof.store import SignatureStore, open_database
from inkproof.verifier import Verifier

runner = CliRunner()


def test_calibrate_claims_is_rerunnable_and_feeds_store_and_evaluation(
    onnx_model: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    first = calibrate_claims(
        onnx_model, data=[synthetic_root], out=tmp_path / "a", ks=(1, 3, 5), repeats=1, log=lambda _: None
    )
    card = ModelCard.load(first.card_path)
    calibration = ClaimsCalibration.from_dict(card.claims or {})
    assert sorted(calibration.chosen) == [1, 3, 5]
    assert card.files["cohort"] == "model.cohort.npy"
    assert card.sha256["model.cohort.npy"] == sha256_file(first.card_path.parent / "model.cohort.npy")
    # The cohort holds genuine signatures of TRAINING writers only: 6 per writer.
    split = WriterSplit.from_dict(card.training["split"])
    dataset = load_dataset(synthetic_root)
    train = writers_in(dataset, split.train)
    cohort = load_cohort(first.card_path.parent / "model.cohort.npy", card.sha256["model.cohort.npy"])
    assert len(cohort) == 6 * len(train)
    assert {r["k"] for r in calibration.record["validation"]} == {1, 3, 5}
    assert all(calibration.chosen[k] in calibration.thresholds[k] for k in (1, 3, 5))
    # The original card is untouched; the copy carries the model files.
    assert ModelCard.load(onnx_model).claims is None and (first.card_path.parent / card.files["embedder"]).is_file()

    # The CLI, again into another folder: the same choice and thresholds (deterministic).
    result = runner.invoke(
        app,
        ["calibrate-claims", "--model", str(onnx_model), "--data", str(synthetic_root), "--out", str(tmp_path / "b"),
         "--ks", "1,3,5", "--repeats", "1", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    again = ClaimsCalibration.from_dict(json.loads(result.output)["claims"])
    assert again.chosen == calibration.chosen and again.thresholds == calibration.thresholds
    assert again.cohort_sha256 == calibration.cohort_sha256

    # The store scores a writer with the method and thresholds chosen for its number of references.
    test_writer = writers_in(dataset, split.test)[0]
    genuine = sorted((synthetic_root / test_writer / "genuine").glob("*.png"))
    with Verifier(first.card_path, device="cpu") as verifier:
        store = SignatureStore(open_database(tmp_path / "store.db"), verifier)
        store.enroll(test_writer, genuine[:5])
        claim = store.verify_claim(test_writer, genuine[5], operating_point="eer")
        used = claim.references_used  # 5, or 4 when the outlier check flagged one
        assert used >= 4 and claim.method == calibration.method_for(used)
        assert claim.calibrated_k == calibration.k_for(used)
        assert claim.accept_threshold == calibration.threshold(used, "eer")

    # `evaluate` reports every method per K on the test writers at the card's validation thresholds.
    scorer = load_scorer(first.card_path, device="cpu")
    evaluation = evaluate(
        scorer,
        dataset,
        writers_in(dataset, split.test),
        out_dir=tmp_path / "eval",
        ks=(1, 3, 5),
        plots=False,
        card_path=first.card_path,
    )
    chosen = {(row.k, row.method) for row in evaluation.claims if row.chosen}
    assert chosen == {(k, m) for k, m in calibration.chosen.items()}
    for row in evaluation.claims:
        assert row.points["eer"]["threshold"] == calibration.thresholds[row.k][row.method]["eer"]
        assert 0.0 <= row.points["far-skilled-1"]["frr"] <= 1.0
    assert np.isfinite([row.eer for row in evaluation.claims]).all()
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["claims"]

"""verify-claim with the bundled model's claims calibration: the operating point on the command
line, the method and thresholds in the answer; delete-reference refits."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from inkproof.artifact import ModelCard
from inkproof.claims import ClaimsCalibration
from inkproof.cli.app import app
from inkproof.verifier import default_model_path

runner = CliRunner()


def test_verify_claim_operating_points_and_delete_reference(synthetic_root: Path, tmp_path: Path) -> None:
    calibration = ClaimsCalibration.from_dict(ModelCard.load(default_model_path()).claims or {})
    db = str(tmp_path / "store.db")
    genuine = sorted((synthetic_root / "W004" / "genuine").glob("*.png"))
    enrolled = runner.invoke(app, ["enroll", "W004", *map(str, genuine[:5]), "--db", db, "--json"])
    assert enrolled.exit_code == 0, enrolled.output
    body = json.loads(enrolled.output)
    used = 5 - len(body["flagged"])
    assert body["scoring_method"] == calibration.method_for(used)

    answers = {}
    for point in ("eer", "far-skilled-1", "far-skilled-5"):
        result = runner.invoke(
            app, ["verify-claim", "W004", str(genuine[5]), "--db", db, "--operating-point", point, "--json"]
        )
        assert result.exit_code == 0, result.output
        answers[point] = json.loads(result.output)
        assert answers[point]["operating_point"] == point
        assert answers[point]["accept_threshold"] == calibration.threshold(used, point)
        assert answers[point]["method"] == calibration.method_for(used)
    # One score, three thresholds: the stricter the operating point, the higher the threshold.
    assert len({a["fused_score"] for a in answers.values()}) == 1
    assert (
        answers["eer"]["accept_threshold"]
        < answers["far-skilled-5"]["accept_threshold"]
        < answers["far-skilled-1"]["accept_threshold"]
    )
    wrong = runner.invoke(app, ["verify-claim", "W004", str(genuine[5]), "--db", db, "--operating-point", "far1"])
    assert wrong.exit_code == 2 and "operating point must be one of" in wrong.output

    reference = answers["eer"]["reference_scores"][0]["reference_id"]
    deleted = runner.invoke(app, ["writers", "delete-reference", "W004", str(reference), "--db", db, "--json"])
    assert deleted.exit_code == 0, deleted.output
    detail = json.loads(deleted.output)
    assert reference not in [r["id"] for r in detail["references"]]
    assert detail["scoring_method"] == calibration.method_for(
        len(detail["references"]) - sum(c["flagged"] for c in detail["checks"])
    )

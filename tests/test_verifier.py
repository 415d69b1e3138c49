from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import inkproof
from inkproof.artifact import ArtifactError
from inkproof.errors import InvalidImageError
from inkproof.verifier import Verifier, decide, default_model_path


@pytest.fixture(scope="module")
def verifier(onnx_model: Path) -> Verifier:
    return Verifier(onnx_model, device="cpu")


def _pair(root: Path) -> tuple[Path, Path, Path]:
    genuine = sorted((root / "W002" / "genuine").iterdir())
    forged = sorted((root / "W002" / "forged").iterdir())
    return genuine[0], genuine[1], forged[0]


def test_verify_returns_a_frozen_result(verifier: Verifier, synthetic_root: Path) -> None:
    reference, same, _ = _pair(synthetic_root)
    result = verifier.verify(reference, same)
    assert isinstance(result, inkproof.VerificationResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.score = 1.0  # type: ignore[misc]
    assert result.threshold == pytest.approx(verifier.card.threshold("eer"))
    assert result.threshold_rule == "eer"
    assert result.decision == ("genuine" if result.score >= result.threshold else "forgery")
    assert result.to_dict()["accepted"] == result.accepted


def test_threshold_zero_and_custom_thresholds(verifier: Verifier, synthetic_root: Path) -> None:
    reference, same, forged = _pair(synthetic_root)
    score = verifier.verify(reference, forged).score
    at_score = verifier.verify(reference, forged, threshold=score)
    assert at_score.accepted and at_score.threshold_rule == "custom"
    above = verifier.verify(reference, forged, threshold=float(np.nextafter(score, np.inf)))
    assert not above.accepted
    zero = verifier.verify(reference, same, threshold=0.0)
    assert zero.threshold == 0.0
    assert zero.accepted == (zero.score >= 0.0)
    assert decide(0.0, 0.0) == "genuine"
    assert decide(-1e-9, 0.0) == "forgery"


def test_batch_matches_single_and_embeddings(verifier: Verifier, synthetic_root: Path) -> None:
    reference, same, forged = _pair(synthetic_root)
    batch = verifier.verify_many([(reference, same), (reference, forged)])
    assert [r.score for r in batch] == pytest.approx(
        [verifier.verify(reference, same).score, verifier.verify(reference, forged).score], abs=1e-6
    )
    embedding = verifier.embed(reference)
    assert embedding.vector.shape == (32,)
    assert not embedding.vector.flags.writeable
    assert embedding.preprocess_version == verifier.card.preprocess_version


def test_embed_query_matches_embed_and_refuses_a_blank_image(verifier: Verifier, synthetic_root: Path) -> None:
    from inkproof.errors import NoInkError
    from inkproof.imaging import load_image

    reference, _, _ = _pair(synthetic_root)
    vector = verifier.embed_query(load_image(reference))
    assert vector == pytest.approx(verifier.embed(reference).vector, abs=1e-6)
    with pytest.raises(NoInkError, match=r"blank\.png"):
        verifier.embed_query(np.full((120, 300), 236, np.uint8), "blank.png")


def test_inputs_of_every_kind(verifier: Verifier, synthetic_root: Path) -> None:
    reference, same, _ = _pair(synthetic_root)
    from PIL import Image

    expected = verifier.verify(reference, same).score
    assert verifier.verify(reference.read_bytes(), Image.open(same)).score == pytest.approx(expected, abs=1e-6)
    assert verifier.verify(str(reference), np.asarray(Image.open(same))).score == pytest.approx(expected, abs=1e-6)
    with pytest.raises(InvalidImageError):
        verifier.verify(reference, b"not an image")


def test_module_level_functions_and_validation(onnx_model: Path, synthetic_root: Path) -> None:
    reference, same, _ = _pair(synthetic_root)
    assert inkproof.verify(reference, same, model=onnx_model).model == "compact"
    assert inkproof.embed(reference, model=onnx_model).vector.shape == (32,)
    with pytest.raises(ValueError, match="rule"):
        Verifier(onnx_model, rule="median")
    if not default_model_path().is_file():
        with pytest.raises(ArtifactError, match="no bundled model"):
            Verifier()

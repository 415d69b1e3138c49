from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from inkproof.artifact import ArtifactError, ModelCard, sha256_file
from inkproof.export.onnx_export import ExportError, export_onnx
from inkproof.models.torch_scorer import TorchScorer
from inkproof.runtime.engine import Engine


def test_export_files_card_and_metadata(onnx_model: Path, trained_run: Path) -> None:
    card = ModelCard.load(onnx_model)
    source = ModelCard.load(trained_run / "best" / "model.json")
    assert card.format == "onnx"
    assert card.name == source.name == "compact"
    assert card.preprocess == source.preprocess
    assert card.thresholds == source.thresholds
    for role in ("embedder", "head"):
        path = onnx_model.parent / card.files[role]
        assert card.sha256[path.name] == sha256_file(path)
        graph = onnx.load(str(path))
        onnx.checker.check_model(graph)
        metadata = {p.key: p.value for p in graph.metadata_props}
        assert metadata["inkproof.model"] == "compact"
        assert json.loads(metadata["inkproof.preprocess"])["version"] == source.preprocess_version
        assert json.loads(metadata["inkproof.input_size"]) == [48, 72]
        assert json.loads(metadata["inkproof.thresholds"])["eer"] == pytest.approx(source.thresholds.eer)
        assert json.loads(metadata["inkproof.source_sha256"]) == source.sha256


@pytest.mark.parametrize("batch", [1, 3, 17])
def test_dynamic_batch_and_parity_with_torch(onnx_model: Path, trained_run: Path, batch: int) -> None:
    torch_scorer = TorchScorer.from_card(trained_run / "best" / "model.json", device="cpu")
    images = np.random.default_rng(batch).random((batch, 48, 72), dtype=np.float32)
    with Engine.from_card(onnx_model, device="cpu") as engine:
        embeddings = engine.embed(images)
        expected = torch_scorer.embed(images)
        assert embeddings.shape == (batch, 32)
        np.testing.assert_allclose(embeddings, expected, atol=1e-4)
        scores = engine.score(embeddings, embeddings[::-1].copy())
        np.testing.assert_allclose(scores, torch_scorer.score(expected, expected[::-1].copy()), atol=1e-4)


def test_modified_weights_are_refused(onnx_model: Path, tmp_path: Path) -> None:
    card = ModelCard.load(onnx_model)
    for name in card.files.values():
        (tmp_path / name).write_bytes((onnx_model.parent / name).read_bytes())
    copy = card.save(tmp_path / "model.json")
    tampered = tmp_path / card.files["embedder"]
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="sha256"):
        Engine.from_card(copy)


def test_parity_failure_fails_the_export(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="differs from torch"):
        export_onnx(trained_run, tmp_path / "strict.onnx", tolerance=1e-30, simplify=False)
    assert not (tmp_path / "strict.json").exists()  # no card: the graph cannot be used by mistake


def test_runtime_refuses_a_torch_card(trained_run: Path) -> None:
    with pytest.raises(ArtifactError, match="engine runs ONNX models"):
        Engine.from_card(trained_run / "best" / "model.json")


def test_engine_input_validation(onnx_model: Path) -> None:
    with Engine.from_card(onnx_model, device="cpu") as engine:
        with pytest.raises(ValueError, match="expected inputs of shape"):
            engine.embed(np.zeros((2, 10, 10), dtype=np.float32))
        with pytest.raises(ValueError, match="one shape"):
            engine.score(np.zeros((2, 32)), np.zeros((3, 32)))
        assert engine.embed(np.zeros((0, 48, 72), dtype=np.float32)).shape == (0, 32)
    assert torch.__version__  # torch is allowed in this test module (export needs it)

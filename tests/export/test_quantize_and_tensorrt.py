from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from inkproof.artifact import ModelCard, sha256_file
from inkproof.cli.app import app
from inkproof.data.adapters import load_dataset
from inkproof.data.pairs import make_pairs
from inkproof.export.quantize import QuantizationRejected, quantize, validation_pairs_for
from inkproof.export.tensorrt import TensorRTUnavailable, export_tensorrt, tensorrt_status
from inkproof.runtime.engine import Engine

runner = CliRunner()


def _validation(synthetic_root: Path) -> tuple[object, list[Path]]:
    dataset = load_dataset(synthetic_root)
    writers = list(dataset.writers())[:4]
    pairs = make_pairs(dataset, writers=writers, seed=0, genuine=4, skilled=4, random=4)
    return pairs, [r.path for r in dataset.subset(list(dataset.writers())[4:]).records][:24]


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_quantized_model_is_written_when_accuracy_holds(
    mode: str, onnx_model: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    pairs, calibration = _validation(synthetic_root)
    result = quantize(
        onnx_model,
        tmp_path / "int8.onnx",
        validation=pairs,
        calibration=calibration,  # type: ignore[arg-type]
        mode=mode,
        max_eer_increase=1.0,
        cache_dir=tmp_path / "c",
    )  # type: ignore[arg-type]
    card = ModelCard.load(result.card_path)
    assert card.format == "onnx-int8"
    assert card.training["quantization"]["mode"] == mode
    assert card.training["quantization"]["eer_before"] == pytest.approx(result.eer_before)
    for name in card.files.values():
        assert card.sha256[name] == sha256_file(tmp_path / name)
    with Engine.from_card(result.card_path, device="cpu") as engine:
        assert engine.embed_sources([calibration[0]]).shape == (1, 32)


def test_quantization_guard_refuses_and_saves_nothing(onnx_model: Path, synthetic_root: Path, tmp_path: Path) -> None:
    pairs, calibration = _validation(synthetic_root)
    with pytest.raises(QuantizationRejected, match="nothing was saved"):
        quantize(
            onnx_model,
            tmp_path / "int8.onnx",
            validation=pairs,
            calibration=calibration,  # type: ignore[arg-type]
            mode="dynamic",
            max_eer_increase=-1.0,
            cache_dir=tmp_path / "c",
        )
    assert not list(tmp_path.glob("int8*"))


def test_validation_pairs_come_from_validation_writers(onnx_model: Path) -> None:
    card = ModelCard.load(onnx_model)
    pairs, calibration = validation_pairs_for(card)
    validation = set(card.training["split"]["validation"])
    train = set(card.training["split"]["train"])
    assert {p.writer for p in pairs.pairs} <= validation
    assert calibration
    assert all(path.parent.parent.name in train for path in calibration)


@pytest.mark.skipif(tensorrt_status() is None, reason="a GPU with TensorRT is present")
def test_tensorrt_without_gpu_is_a_clear_error(onnx_model: Path, tmp_path: Path) -> None:
    with pytest.raises(TensorRTUnavailable, match=r"needs an NVIDIA GPU|TensorRT is not installed"):
        export_tensorrt(onnx_model, tmp_path / "model.plan")
    result = runner.invoke(
        app,
        ["export", "--format", "tensorrt", "--model", str(onnx_model), "--out", str(tmp_path / "model.plan")],
    )
    assert result.exit_code == 2
    assert "TensorRTUnavailable" in result.output
    assert "runs on CPU" in result.output
    assert "Traceback" not in result.output

"""int8 quantisation of an exported embedder with onnxruntime, guarded by validation EER.

``dynamic`` quantises weights only; ``static`` (QDQ, per-channel weights) also quantises
activations, calibrated on images of training writers. Either way the validation EER (validation
writers of the model's own split, or a given set) is measured before and after, and the int8 model
is only written when the increase stays within the limit.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inkproof.artifact import ModelCard, card_path_for, sha256_file
from inkproof.data.bank import build_image_bank
from inkproof.data.pairs import PairSet, make_pairs
from inkproof.errors import InkproofError
from inkproof.evaluation.metrics import equal_error_rate
from inkproof.runtime.engine import Engine

Mode = Literal["dynamic", "static"]


class QuantizationRejected(InkproofError):
    """The int8 model lost more validation accuracy than allowed; nothing was written."""


@dataclass(frozen=True)
class QuantizationResult:
    card_path: Path
    mode: str
    eer_before: float
    eer_after: float
    size_before: int
    size_after: int

    @property
    def eer_increase(self) -> float:
        return self.eer_after - self.eer_before


def _pair_eer(engine: Engine, pairs: PairSet, cache_dir: Path | None) -> float:
    from inkproof.evaluation.evaluate import score_pair_set

    scores, _, _ = score_pair_set(engine, pairs, cache_dir=cache_dir)
    return equal_error_rate(pairs.labels(), scores).eer


class _CalibrationReader:
    """Feeds preprocessed calibration images to onnxruntime's calibrator in small batches."""

    def __init__(self, images: np.ndarray, input_name: str, batch_size: int = 16) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            {input_name: images[i : i + batch_size, None].astype(np.float32)} for i in range(0, len(images), batch_size)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # the calibrator reads the data once
        pass


def quantize(
    model: str | Path,
    out: str | Path,
    *,
    validation: PairSet,
    calibration: Sequence[Path] = (),
    mode: Mode = "static",
    max_eer_increase: float = 0.01,
    cache_dir: Path | None = None,
) -> QuantizationResult:
    """Quantise the embedder of an ONNX model card; refuses (raises) when the validation EER
    rises by more than ``max_eer_increase`` (absolute, e.g. 0.01 = one percentage point)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source_card_path = card_path_for(model)
    card = ModelCard.load(source_card_path)
    if card.format != "onnx":
        raise InkproofError(f"quantisation starts from an fp32 ONNX model (inkproof export), not {card.format}")
    if mode == "static" and not calibration:
        raise InkproofError("static quantisation needs calibration images")
    embedder = card.path_of("embedder", source_card_path)
    head = card.path_of("head", source_card_path)
    with Engine.from_card(source_card_path, device="cpu") as engine:
        eer_before = _pair_eer(engine, validation, cache_dir)

    target = Path(out).with_suffix(".onnx")
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(embedder), str(prepared), skip_symbolic_shape=True)
        quantized = Path(scratch) / target.name
        if mode == "dynamic":
            quantize_dynamic(str(prepared), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
        else:
            images = (
                build_image_bank(
                    list(calibration),
                    card.preprocess_config,
                    cache_dir=cache_dir,
                    description="calibration images",
                ).astype(np.float32)
                / 255.0
            )
            quantize_static(
                str(prepared),
                str(quantized),
                _CalibrationReader(images, "images"),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        head_copy = Path(scratch) / f"{target.stem}.head.onnx"
        shutil.copyfile(head, head_copy)
        info: dict[str, Any] = {"mode": mode, "source": card.files, "source_sha256": card.sha256}
        int8_card = card.with_changes(
            format="onnx-int8",
            files={"embedder": quantized.name, "head": head_copy.name},
            sha256={quantized.name: sha256_file(quantized), head_copy.name: sha256_file(head_copy)},
            training={**card.training, "quantization": info},
        )
        scratch_card = int8_card.save(Path(scratch) / f"{target.stem}.json")
        with Engine.from_card(scratch_card, device="cpu") as engine:
            eer_after = _pair_eer(engine, validation, cache_dir)
        if eer_after - eer_before > max_eer_increase:
            raise QuantizationRejected(
                f"{mode} int8 raises the validation EER from {eer_before:.2%} to {eer_after:.2%} "
                f"(+{eer_after - eer_before:.2%} > limit {max_eer_increase:.2%}); nothing was saved"
            )
        info.update(eer_before=eer_before, eer_after=eer_after)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(quantized, target)
        shutil.copyfile(head_copy, target.with_name(head_copy.name))
        card_path = int8_card.with_changes(training={**card.training, "quantization": info}).save(
            target.with_suffix(".json")
        )
    return QuantizationResult(card_path, mode, eer_before, eer_after, embedder.stat().st_size, target.stat().st_size)


def validation_pairs_for(
    card: ModelCard, *, data: Path | None = None, seed: int = 0, per_writer: int | Literal["all"] = "all"
) -> tuple[PairSet, list[Path]]:
    """(validation pairs, calibration images) from the model's own split: validation writers for
    the accuracy guard, training writers' images for calibration."""
    from inkproof.evaluation.selection import select_writers, writers_in

    dataset, writers, _, _ = select_writers(
        card, Path("."), data=data, data_format=None, split="validation", split_file=None, pairs=None
    )
    assert dataset is not None
    assert writers is not None
    # As many random as skilled pairs per writer: the protocol the model was selected and is evaluated on.
    pairs = make_pairs(dataset, writers=writers, seed=seed, genuine=per_writer, skilled=per_writer)
    train_writers = writers_in(dataset, tuple(card.training.get("split", {}).get("train", ())))
    rng = np.random.default_rng(seed)
    images = [r.path for r in dataset.subset(train_writers).records] if train_writers else pairs.images()
    chosen = sorted(rng.choice(len(images), size=min(128, len(images)), replace=False).tolist())
    return pairs, [images[i] for i in chosen]

"""Export a trained model to ONNX: the single-branch embedder and the pair-scoring head.

Two graphs with a dynamic batch axis (``<out>.onnx`` and ``<out>.head.onnx``), checked with
``onnx.checker``, simplified with onnxslim, and compared with torch on real and random inputs;
export fails when they disagree beyond the tolerance. The model card (``<out>.json``, also in
each graph's ``metadata_props``) records name, preprocessing, thresholds and sha256 of every file.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inkproof.artifact import ModelCard, card_path_for, sha256_file
from inkproof.errors import InkproofError
from inkproof.models.base import SiameseModel
from inkproof.models.torch_scorer import TorchScorer
from inkproof.preprocess import PreprocessConfig, preprocess_signature

DEFAULT_OPSET = 18


class ExportError(InkproofError):
    """Export failed a check (graph validity or parity with torch)."""


@dataclass(frozen=True)
class ParityReport:
    real_max_abs_diff: float
    random_max_abs_diff: float
    head_max_abs_diff: float
    tolerance: float
    samples: int

    @property
    def passed(self) -> bool:
        return max(self.real_max_abs_diff, self.random_max_abs_diff, self.head_max_abs_diff) <= self.tolerance


@dataclass(frozen=True)
class ExportResult:
    card_path: Path
    embedder: Path
    head: Path
    parity: ParityReport


class _Embedder(nn.Module):
    def __init__(self, model: SiameseModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.embed(images)


class _Head(nn.Module):
    def __init__(self, model: SiameseModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, reference: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return self.model.score(reference, query)


def _export_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    names: Sequence[str],
    output: str,
    path: Path,
    opset: int,
) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    argument_names = ["images"] if len(example) == 1 else ["reference", "query"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter is chatty about internal decompositions
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            opset_version=opset,
            input_names=list(names),
            output_names=[output],
            dynamic_shapes={name: {0: batch} for name in argument_names},
            external_data=False,
            verbose=False,
        )
    assert program is not None
    program.save(str(path))


def _finish_graph(path: Path, simplify: bool, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    if simplify:
        import onnxslim

        model = onnxslim.slim(model)
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def parity_inputs(config: PreprocessConfig, count: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(real, random) model inputs: preprocessed synthetic signatures and uniform noise."""
    from inkproof.data.synthetic import sample_signatures

    images = [preprocess_signature(image, config) for image in sample_signatures(count, seed=seed)]
    random = np.random.default_rng(seed).random((count, *config.input_size), dtype=np.float32)
    return np.stack(images), random


def export_onnx(
    model: str | Path,
    out: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    tolerance: float = 1e-4,
    parity_images: np.ndarray | None = None,
) -> ExportResult:
    """Export the model of a run or card to ``out`` (``.onnx``) plus head graph and card."""
    from inkproof.runtime.engine import Engine

    source_card_path = card_path_for(model)
    scorer = TorchScorer.from_card(source_card_path, device="cpu")
    card = scorer.card
    torch_model = scorer.model.eval()
    target = Path(out).with_suffix(".onnx")
    target.parent.mkdir(parents=True, exist_ok=True)
    head_path = target.with_name(f"{target.stem}.head.onnx")
    height, width = card.input_size

    example = torch.rand(2, 1, height, width)
    _export_graph(_Embedder(torch_model).eval(), (example,), ["images"], "embeddings", target, opset)
    with torch.no_grad():
        embeddings = torch_model.embed(example)
    _export_graph(
        _Head(torch_model).eval(),
        (embeddings, embeddings.flip(0)),
        ["reference", "query"],
        "scores",
        head_path,
        opset,
    )
    metadata = {
        "inkproof.model": card.name,
        "inkproof.preprocess": json.dumps(card.preprocess),
        "inkproof.input_size": json.dumps(list(card.input_size)),
        "inkproof.head": card.head,
        "inkproof.thresholds": json.dumps(card.thresholds.to_dict() if card.thresholds else None),
        "inkproof.source_sha256": json.dumps(card.sha256),
    }
    _finish_graph(target, simplify, metadata)
    _finish_graph(head_path, simplify, metadata)

    onnx_card = ModelCard(
        name=card.name,
        model_config=card.model_config,
        preprocess=card.preprocess,
        head=card.head,
        embedding_dim=card.embedding_dim,
        format="onnx",
        files={"embedder": target.name, "head": head_path.name},
        sha256={target.name: sha256_file(target), head_path.name: sha256_file(head_path)},
        thresholds=card.thresholds,
        training=card.training,
        notes=card.notes,
        created=card.created,
    )
    card_path = onnx_card.save(target.with_suffix(".json"))

    real, random = parity_inputs(card.preprocess_config)
    if parity_images is not None:
        real = np.concatenate([real, parity_images.astype(np.float32)])
    with Engine.from_card(card_path, device="cpu") as engine:
        diffs = []
        for batch in (real, random):
            expected = scorer.embed(batch)
            diffs.append(float(np.abs(engine.embed(batch) - expected).max()))
        reference = scorer.embed(real)
        query = reference[::-1].copy()
        head_diff = float(np.abs(engine.score(reference, query) - scorer.score(reference, query)).max())
    parity = ParityReport(diffs[0], diffs[1], head_diff, tolerance, len(real) + len(random))
    if not parity.passed:
        # Without its card the graph cannot be loaded by inkproof, so nobody uses it by mistake.
        card_path.unlink()
        raise ExportError(
            f"ONNX output differs from torch by up to {max([*diffs, head_diff]):.3g} "
            f"(tolerance {tolerance:g}); the graphs are left at {target} for inspection, without a model card"
        )
    return ExportResult(card_path, target, head_path, parity)

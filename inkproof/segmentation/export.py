"""Export a trained segmentation model to ONNX with dynamic batch, height and width.

The graph takes ``images`` (N, 1, H, W) float32 in [0, 1] with H and W multiples of the model's
multiple (32 for depth-5 encoders; the runtime pads) and returns ``probabilities`` (N, C, H, W),
softmax included so the runtime needs no torch-side knowledge. It is exported with the torch
dynamo exporter (height and width declared as ``multiple x k`` so the exporter can prove the
encoder's divisibility checks), simplified with onnxslim, checked with ``onnx.checker`` and
compared with torch at two input sizes; export fails when they differ beyond ``tolerance``.
The card (``<out>.json``, also in the graph's ``metadata_props``) carries the config, class
names and colours, the sha256 of the graph and the validation IoU.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inkproof.artifact import sha256_file
from inkproof.export.onnx_export import DEFAULT_OPSET, ExportError, _finish_graph
from inkproof.segmentation.model import SegmentationNet
from inkproof.segmentation.runtime import SegmentationCard, SegmentationEngine
from inkproof.segmentation.train import load_trained_model

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
MAX_SIDE = 16384  # the largest height/width the graph accepts, in pixels


@dataclass(frozen=True)
class SegmentationParity:
    """Largest absolute probability difference (ONNX vs torch) per input size."""

    max_abs_diff: dict[str, float]
    mask_agreement: float  # fraction of pixels whose argmax class agrees
    tolerance: float

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values())

    @property
    def passed(self) -> bool:
        return self.worst <= self.tolerance


@dataclass(frozen=True)
class SegmentationExportResult:
    card_path: Path
    model_path: Path
    parity: SegmentationParity


class _Probabilities(nn.Module):
    def __init__(self, model: SegmentationNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(images), dim=1)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


class _StaticSameConv(nn.Module):
    """A TensorFlow-style SAME convolution with its padding fixed for inputs divisible by its stride.

    timm's ``Conv2dSame`` computes the padding from the input size at run time; with dynamic
    height and width the dynamo exporter's symbolic shape reasoning on that arithmetic grows
    without bound. Every input here is a multiple of the model's multiple, so each strided layer
    sees a size divisible by its stride and the padding is the constant ``(k - 1) * d + 1 - s``.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        pads: list[int] = []
        for axis in (1, 0):  # F.pad order: (left, right, top, bottom)
            kernel, stride, dilation = conv.kernel_size[axis], conv.stride[axis], conv.dilation[axis]
            total = max((kernel - 1) * dilation + 1 - stride, 0)
            pads += [total // 2, total - total // 2]
        self.pads = tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        padded = nn.functional.pad(x, self.pads)
        return nn.functional.conv2d(padded, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)


def _use_static_same_padding(module: nn.Module) -> None:
    """Wrap every timm ``Conv2dSame`` inside ``module`` as :class:`_StaticSameConv`, in place."""
    for name, child in module.named_children():
        if type(child).__name__ == "Conv2dSame" and isinstance(child, nn.Conv2d):
            setattr(module, name, _StaticSameConv(child))
        else:
            _use_static_same_padding(child)


def export_graph(model: SegmentationNet, path: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """The bare ONNX graph (no slimming, metadata or parity check) with dynamic N, H, W.

    The parity check compares the graph against the unchanged model, so it also checks that
    the fixed SAME padding of :class:`_StaticSameConv` matches timm's run-time padding.
    """
    import copy

    multiple = model.config.multiple
    exported = copy.deepcopy(model)
    _use_static_same_padding(exported)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # Derived dimensions: H = multiple * k lets the exporter prove H % multiple == 0.
    rows = multiple * torch.export.Dim("row_blocks", min=1, max=MAX_SIDE // multiple)
    cols = multiple * torch.export.Dim("col_blocks", min=1, max=MAX_SIDE // multiple)
    example = torch.rand(2, model.config.in_channels, 2 * multiple, 3 * multiple)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter is chatty about internal decompositions
        program = torch.onnx.export(
            _Probabilities(exported).eval(),
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"images": {0: batch, 2: rows, 3: cols}},
            external_data=False,
            verbose=False,
        )
    assert program is not None
    program.save(str(target))
    return target


def parity_batches(multiple: int, sizes: Sequence[tuple[int, int]] | None = None, seed: int = 0) -> list[np.ndarray]:
    """Inputs for the parity check: per size, uniform noise and a page-like image (paper, strokes)."""
    rng = np.random.default_rng(seed)
    chosen = sizes or [(2 * multiple, 3 * multiple), (3 * multiple, 4 * multiple)]
    batches = []
    for height, width in chosen:
        noise = rng.random((1, 1, height, width), dtype=np.float32)
        page = np.full((1, 1, height, width), 0.95, dtype=np.float32)
        for _ in range(6):
            y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
            page[0, 0, y : y + rng.integers(2, max(3, height // 4)), x : x + rng.integers(2, max(3, width // 3))] = 0.1
        batches.append(np.concatenate([noise, page]))
    return batches


def export_segmentation(
    model: str | Path,
    out: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    tolerance: float = 1e-4,
    sizes: Sequence[tuple[int, int]] | None = None,
    log: Callable[[str], None] | None = _stderr,
) -> SegmentationExportResult:
    """Export the model of a training card or run folder to ``out`` (``.onnx``) plus its card.

    ``sizes`` are the (H, W) parity inputs (multiples of the model's multiple; default two
    sizes, neither of them the export example's). The max abs difference is reported through
    ``log`` (stderr by default); above ``tolerance`` the card is removed and ExportError raised.
    """
    torch_model, source_card = load_trained_model(model, device="cpu")
    multiple = torch_model.config.multiple
    for height, width in sizes or ():
        if height % multiple or width % multiple:
            raise ExportError(f"parity size {height}x{width} is not a multiple of {multiple}")
    target = Path(out).with_suffix(".onnx")
    export_graph(torch_model, target, opset=opset)
    metadata = {
        "inkproof.task": "segmentation",
        "inkproof.model": source_card.name,
        "inkproof.segmentation_config": json.dumps(source_card.config, sort_keys=True),
        "inkproof.classes": json.dumps(
            {"names": list(source_card.class_names), "colors": [list(c) for c in source_card.class_colors]}
        ),
        "inkproof.multiple": str(multiple),
        "inkproof.validation": json.dumps(source_card.validation),
        "inkproof.source_sha256": json.dumps(source_card.sha256),
    }
    _finish_graph(target, simplify, metadata)
    card = SegmentationCard(
        name=source_card.name,
        config=source_card.config,
        class_names=source_card.class_names,
        class_colors=source_card.class_colors,
        format="onnx",
        files={"model": target.name},
        sha256={target.name: sha256_file(target)},
        validation=source_card.validation,
        training={**source_card.training, "source_sha256": source_card.sha256},
        notes=source_card.notes,
        created=source_card.created,
    )
    card_path = card.save(target.with_suffix(".json"))

    diffs: dict[str, float] = {}
    agree, total = 0, 0
    with SegmentationEngine.from_card(card_path, device="cpu") as engine:
        for batch in parity_batches(multiple, sizes):
            with torch.no_grad():
                expected = torch.softmax(torch_model(torch.from_numpy(batch)), dim=1).numpy()
            actual = engine.run(batch)
            key = f"{batch.shape[2]}x{batch.shape[3]}"
            diffs[key] = float(np.abs(actual - expected).max())
            agree += int((actual.argmax(axis=1) == expected.argmax(axis=1)).sum())
            total += expected.shape[0] * expected.shape[2] * expected.shape[3]
    parity = SegmentationParity(diffs, agree / total, tolerance)
    if log is not None:
        log(
            "ONNX parity: max abs diff "
            + ", ".join(f"{size} {value:.3g}" for size, value in diffs.items())
            + f" (tolerance {tolerance:g}); argmax agreement {parity.mask_agreement:.4%}"
        )
    if not parity.passed:
        # Without its card the graph cannot be loaded by the runtime, so nobody uses it by mistake.
        card_path.unlink()
        raise ExportError(
            f"ONNX output differs from torch by up to {parity.worst:.3g} (tolerance {tolerance:g}); "
            f"the graph is left at {target} for inspection, without a model card"
        )
    return SegmentationExportResult(card_path, target, parity)

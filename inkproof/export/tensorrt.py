"""TensorRT fp16 engines for the embedder, where an NVIDIA GPU and TensorRT exist.

Built with the TensorRT Python API (or ``trtexec`` when only the command-line tool is installed)
from the exported ONNX embedder, with an optimisation profile over the batch size. Without a GPU
or TensorRT, :class:`TensorRTUnavailable` says so clearly; the ONNX model keeps working on CPU,
and onnxruntime's CUDA / TensorRT execution providers are the other GPU route (``--device``).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inkproof.artifact import ModelCard, card_path_for, sha256_file
from inkproof.errors import InkproofError


class TensorRTUnavailable(InkproofError):
    """No NVIDIA GPU or no TensorRT installation: a TensorRT engine cannot be built here."""


@dataclass(frozen=True)
class TensorRTResult:
    card_path: Path
    engine: Path
    builder: str


def gpu_present() -> bool:
    """True when an NVIDIA GPU is visible (through nvidia-smi, or torch when installed)."""
    if shutil.which("nvidia-smi"):
        probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and "GPU" in probe.stdout:
            return True
    if importlib.util.find_spec("torch") is not None:
        import torch

        return bool(torch.cuda.is_available())
    return False


def tensorrt_status() -> str | None:
    """None when an engine can be built, else the reason it cannot."""
    if not gpu_present():
        return "TensorRT export needs an NVIDIA GPU, and none was found on this machine"
    if importlib.util.find_spec("tensorrt") is None and shutil.which("trtexec") is None:
        return "TensorRT is not installed (pip install tensorrt, or put trtexec on PATH)"
    return None


def export_tensorrt(
    model: str | Path, out: str | Path, *, max_batch: int = 256, optimal_batch: int = 32, fp16: bool = True
) -> TensorRTResult:
    """Build a TensorRT engine from an ONNX model card; raises :class:`TensorRTUnavailable`."""
    reason = tensorrt_status()
    if reason is not None:
        raise TensorRTUnavailable(reason + "; the ONNX model runs on CPU (or with --device cuda via onnxruntime-gpu)")
    source = card_path_for(model)
    card = ModelCard.load(source)
    if card.format != "onnx":
        raise InkproofError("TensorRT engines are built from an fp32 ONNX export (inkproof export)")
    onnx_path = card.path_of("embedder", source)
    target = Path(out).with_suffix(".plan")
    target.parent.mkdir(parents=True, exist_ok=True)
    height, width = card.input_size
    shapes = {
        "min": (1, 1, height, width),
        "opt": (min(optimal_batch, max_batch), 1, height, width),
        "max": (max_batch, 1, height, width),
    }
    if importlib.util.find_spec("tensorrt") is not None:
        _build_with_python_api(onnx_path, target, shapes, fp16)
        builder = "tensorrt-python"
    else:
        _build_with_trtexec(onnx_path, target, shapes, fp16)
        builder = "trtexec"
    head = card.path_of("head", source)
    engine_card = card.with_changes(
        format="tensorrt",
        files={"engine": target.name, "head": head.name},
        sha256={target.name: sha256_file(target), head.name: card.sha256.get(head.name, sha256_file(head))},
        training={**card.training, "tensorrt": {"fp16": fp16, "max_batch": max_batch, "builder": builder}},
    )
    if head.parent != target.parent:
        shutil.copyfile(head, target.parent / head.name)
    return TensorRTResult(engine_card.save(target.with_suffix(".json")), target, builder)


def _build_with_python_api(onnx_path: Path, target: Path, shapes: Mapping[str, tuple[int, ...]], fp16: bool) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InkproofError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(network.get_input(0).name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise InkproofError("TensorRT failed to build the engine")
    target.write_bytes(bytes(serialized))


def _build_with_trtexec(onnx_path: Path, target: Path, shapes: Mapping[str, tuple[int, ...]], fp16: bool) -> None:
    def shape(values: tuple[int, ...]) -> str:
        return "images:" + "x".join(str(v) for v in values)

    command = [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={target}",
        f"--minShapes={shape(shapes['min'])}",
        f"--optShapes={shape(shapes['opt'])}",
        f"--maxShapes={shape(shapes['max'])}",
    ]
    if fp16:
        command.append("--fp16")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise InkproofError(f"trtexec failed: {result.stderr[-1000:]}")

"""``inkproof export`` and ``inkproof quantize`` (need the ``train`` extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from inkproof.cli.common import JsonOption, console, print_json, reports_errors


@reports_errors
def export(
    model: Path = typer.Option(..., "--model", help="Run folder or model card (safetensors, or ONNX for TensorRT)."),
    out: Path = typer.Option(..., "--out", help="Output file (model.onnx; model.plan for TensorRT)."),
    format: str = typer.Option("onnx", "--format", help="onnx or tensorrt."),
    opset: int = typer.Option(18, help="ONNX opset."),
    simplify: bool = typer.Option(True, help="Simplify the graph with onnxslim."),
    tolerance: float = typer.Option(1e-4, help="Largest allowed |ONNX - torch| difference."),
    json_out: bool = JsonOption,
) -> None:
    """Export the embedder and the scoring head (ONNX, with a parity check), or a TensorRT engine."""
    if format == "tensorrt":
        from inkproof.export.tensorrt import export_tensorrt

        trt = export_tensorrt(model, out)
        console.print(f"[green]wrote[/] {trt.engine} ({trt.builder}); card {trt.card_path}")
        return
    if format != "onnx":
        raise typer.BadParameter("--format must be onnx or tensorrt")
    from inkproof.export.onnx_export import export_onnx

    result = export_onnx(model, out, opset=opset, simplify=simplify, tolerance=tolerance)
    parity = result.parity
    payload = {
        "card": str(result.card_path),
        "embedder": str(result.embedder),
        "head": str(result.head),
        "parity": {
            "real_max_abs_diff": parity.real_max_abs_diff,
            "random_max_abs_diff": parity.random_max_abs_diff,
            "head_max_abs_diff": parity.head_max_abs_diff,
            "tolerance": parity.tolerance,
        },
    }
    if json_out:
        print_json(payload)
        return
    console.print(
        f"[green]wrote[/] {result.embedder} and {result.head}; card {result.card_path}\n"
        f"parity with torch: max |diff| {parity.real_max_abs_diff:.2e} (signatures), "
        f"{parity.random_max_abs_diff:.2e} (random inputs), {parity.head_max_abs_diff:.2e} (head); "
        f"tolerance {parity.tolerance:g}"
    )


@reports_errors
def quantize(
    model: Path = typer.Option(..., "--model", help="fp32 ONNX model card (from inkproof export)."),
    out: Path = typer.Option(..., "--out", help="Output .onnx for the int8 embedder."),
    mode: str = typer.Option("static", help="static (weights and activations, calibrated) or dynamic."),
    data: Path | None = typer.Option(None, "--data", help="Dataset of the model's split (default: its training data)."),
    calibration: Path | None = typer.Option(None, help="Folder of calibration images (default: training writers)."),
    max_eer_increase: float = typer.Option(0.01, help="Refuse when validation EER rises more (0.01 = 1 point)."),
    json_out: bool = JsonOption,
) -> None:
    """int8 quantisation; reports validation EER before and after and refuses a lossy result."""
    from inkproof.artifact import ModelCard, card_path_for
    from inkproof.data.adapters import iter_image_files
    from inkproof.export.quantize import quantize as run_quantize
    from inkproof.export.quantize import validation_pairs_for

    if mode not in ("static", "dynamic"):
        raise typer.BadParameter("--mode must be static or dynamic")
    card = ModelCard.load(card_path_for(model))
    pairs, calibration_images = validation_pairs_for(card, data=data)
    if calibration is not None:
        calibration_images = list(iter_image_files(calibration))
    result = run_quantize(
        model,
        out,
        validation=pairs,
        calibration=calibration_images,
        mode=mode,  # type: ignore[arg-type]
        max_eer_increase=max_eer_increase,
    )
    payload = {
        "card": str(result.card_path),
        "mode": result.mode,
        "validation_eer_before": result.eer_before,
        "validation_eer_after": result.eer_after,
        "bytes_before": result.size_before,
        "bytes_after": result.size_after,
    }
    if json_out:
        print_json(payload)
        return
    console.print(
        f"[green]wrote[/] {result.card_path}: "
        f"validation EER {result.eer_before:.2%} -> {result.eer_after:.2%} "
        f"({result.mode}); size {result.size_before / 1e6:.2f} MB -> {result.size_after / 1e6:.2f} MB"
    )

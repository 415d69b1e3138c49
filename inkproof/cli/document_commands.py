"""``inkproof detect`` (torch-free), ``inkproof detector train / evaluate / export`` and the generic
``inkproof segment train / export / predict`` on a user's own ``images/ + masks/ + colors.csv``."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from inkproof.cli.common import (
    DeviceOption,
    EncoderOption,
    JsonOption,
    MaxPixelsOption,
    PretrainedOption,
    ResumeOption,
    ThreadsOption,
    console,
    parse_crop,
    print_json,
    reports_errors,
)

detector_app = typer.Typer(help="Train, evaluate and export the page field detector.", no_args_is_help=True)
segment_app = typer.Typer(help="Generic segmentation on your own images/ + masks/ + colors.csv.", no_args_is_help=True)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


def _percent(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.1%}"


# --- inkproof detect -----------------------------------------------------------------------------


@reports_errors
def detect(
    document: Path = typer.Argument(..., help="Page image (PNG, JPEG, TIFF; every TIFF frame) or PDF."),
    out: Path | None = typer.Option(None, "--out", help="Write boxes.json, crops/ and annotated pages here."),
    model: Path | None = typer.Option(None, "--model", help="Detector card or folder (default: the bundled one)."),
    threshold: float | None = typer.Option(None, "--threshold", min=0.01, max=0.99, help="Probability threshold."),
    threads: int | None = ThreadsOption,
    dpi: float = typer.Option(150.0, "--dpi", min=36, max=600, help="PDF rendering resolution."),
    max_pages: int = typer.Option(50, "--max-pages", min=1, help="Refuse documents with more pages."),
    max_pixels: int | None = MaxPixelsOption,
    json_out: bool = JsonOption,
) -> None:
    """Find signatures, initials, handwritten dates, redactions and logos on every page."""
    from inkproof.document.detector import detect_document

    result = detect_document(
        document,
        model=model,
        threshold=threshold,
        threads=threads,
        out=out,
        dpi=dpi,
        max_pages=max_pages,
        max_pixels=max_pixels,
    )
    if json_out:
        print_json(result.to_dict())
        return
    table = Table(title=f"{result.source}: {result.count} field(s) ({result.model})")
    for column in ("page", "field", "box (x0, y0, x1, y1)", "confidence"):
        table.add_column(column)
    for page in result.pages:
        for field in page.detections:
            table.add_row(str(page.page + 1), field.label, ", ".join(map(str, field.box)), f"{field.confidence:.2f}")
    console.print(table)
    milliseconds = [p.milliseconds for p in result.pages]
    console.print(f"{len(result.pages)} page(s), {sum(milliseconds) / len(milliseconds):.0f} ms per page")
    if out is not None:
        console.print(f"[green]wrote[/] {len(result.files)} file(s) to {out}")


# --- inkproof detector ... -------------------------------------------------------------------------


@detector_app.command("train")
@reports_errors
def detector_train(
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoints, history, best model, page cache)."),
    data: Path | None = typer.Option(
        None, "--data", help="Tobacco800 folder (default: tobacco800/ under $INKPROOF_DATA, else ../shared/data)."
    ),
    synthetic_only: bool = typer.Option(False, "--synthetic-only", help="Train on synthetic pages only."),
    epochs: int = typer.Option(8, min=1),
    synthetic_pages: int = typer.Option(400, "--synthetic-pages", min=0, help="Synthetic training pages."),
    synthetic_validation: int = typer.Option(30, "--synthetic-validation", min=0, help="Synthetic validation pages."),
    long_side: int = typer.Option(512, "--long-side", min=64, help="Working scale: the page's long side in pixels."),
    architecture: str = typer.Option("fpn", help="unet or fpn."),
    encoder: str = EncoderOption,
    pretrained: bool = PretrainedOption,
    encoder_depth: int = typer.Option(5, min=3, max=5, help="Encoder stages (5: stride 32)."),
    decoder_width: int = typer.Option(8, min=1),
    crop: str = typer.Option("320,320", help="Training crop HEIGHT,WIDTH (working-scale pixels)."),
    batch_size: int = typer.Option(8, min=2),
    lr: float = typer.Option(2e-3),
    class_weights: str | None = typer.Option(
        None, "--class-weights", help="Cross-entropy weight per class, background first (e.g. 1,1,4,2,1,2)."
    ),
    hard_negatives: float = typer.Option(
        0.0,
        "--hard-negatives",
        min=0.0,
        max=1.0,
        help="Chance that a synthetic training page carries unboxed notes, figures, marks and a script wordmark.",
    ),
    mined_negatives: Path | None = typer.Option(
        None,
        "--mined-negatives",
        help="JSON of a detector's false signatures on training pages (python -m inkproof.document.mining).",
    ),
    mined_repeats: int = typer.Option(
        2, "--mined-repeats", min=0, max=10, help="Extra showings per epoch of each page with mined false signatures."
    ),
    device: str = DeviceOption,
    threads: int | None = ThreadsOption,
    resume: bool = ResumeOption,
    json_out: bool = JsonOption,
) -> None:
    """Train the detector on Tobacco800 train pages (held-out pages kept out) and synthetic pages."""
    from inkproof.document.detector_training import DetectorTrainingConfig, train_detector

    config = DetectorTrainingConfig(
        long_side=long_side,
        architecture=architecture,
        encoder=encoder,
        encoder_weights="imagenet" if pretrained else None,
        encoder_depth=encoder_depth,
        decoder_width=decoder_width,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        crop=parse_crop(crop),
        synthetic_pages=synthetic_pages,
        synthetic_validation_pages=synthetic_validation,
        tobacco=not synthetic_only,
        class_weights=None if class_weights is None else _floats(class_weights),
        hard_negatives=hard_negatives,
        mined_negatives=None if mined_negatives is None else str(mined_negatives.resolve()),
        mined_repeats=mined_repeats,
    )
    result = train_detector(config, out, data=data, device=device, resume=resume, threads=threads)
    if json_out:
        print_json(result.to_dict())
        return
    console.print(
        f"[green]trained[/] {result.run_dir}: best epoch {result.best_epoch}, validation mIoU "
        f"{_percent(result.best_miou)} ({', '.join(f'{k} {_percent(v)}' for k, v in result.iou.items())}); "
        f"{result.train_examples} train / {result.validation_examples} validation pages, "
        f"{result.seconds / 60:.1f} min"
    )


@detector_app.command("evaluate")
@reports_errors
def detector_evaluate(
    model: Path = typer.Option(..., "--model", help="Exported detector card or folder."),
    data: Path | None = typer.Option(None, "--data", help="Tobacco800 folder (default as for train)."),
    out: Path | None = typer.Option(None, "--out", help="Write metrics.json and annotated pages here."),
    split: str = typer.Option("test", help="test (held-out pages) or validation."),
    synthetic_pages: int = typer.Option(100, "--synthetic-pages", min=0, help="Held-out synthetic pages."),
    synthetic_only: bool = typer.Option(False, "--synthetic-only", help="Skip Tobacco800."),
    annotated: int = typer.Option(6, min=0, help="Annotated pages to write per page set."),
    threshold: float | None = typer.Option(None, "--threshold", min=0.01, max=0.99),
    threads: int | None = ThreadsOption,
    json_out: bool = JsonOption,
) -> None:
    """AP@0.5, AP@[.5:.95] per class and ms per page on held-out Tobacco800 and synthetic pages."""
    from inkproof.document.detector_training import evaluate_detector

    if split not in ("test", "validation"):
        raise typer.BadParameter("--split must be test or validation")
    result = evaluate_detector(
        model,
        data=data,
        out=out,
        split="test" if split == "test" else "validation",
        synthetic_pages=synthetic_pages,
        tobacco=not synthetic_only,
        annotated=annotated,
        threshold=threshold,
        threads=threads,
    )
    if json_out:
        print_json(result.to_dict())
        return
    how = "the card's thresholds" if result.threshold is None else f"threshold {result.threshold:g}"
    table = Table(title=f"detector {result.model} ({how})")
    for column in ("pages", "class", "boxes", "AP@0.5", "AP@[.5:.95]", "ms/page (median)"):
        table.add_column(column)
    for scores in result.sets:
        for label in scores.ap50:
            table.add_row(
                f"{scores.name} ({scores.pages})",
                label,
                str(scores.boxes[label]),
                _percent(scores.ap50[label]),
                _percent(scores.ap50_95[label]),
                f"{scores.detect_ms.get('median', float('nan')):.0f}",
            )
    console.print(table)
    if result.metrics_path is not None:
        console.print(f"[green]wrote[/] {result.metrics_path}")


@detector_app.command("tune")
@reports_errors
def detector_tune(
    model: Path = typer.Argument(..., help="Exported detector card or folder (updated in place)."),
    data: Path | None = typer.Option(None, "--data", help="Tobacco800 folder (default as for train)."),
    synthetic_pages: int = typer.Option(30, "--synthetic-pages", min=0, help="Synthetic validation pages."),
    synthetic_only: bool = typer.Option(False, "--synthetic-only", help="Skip Tobacco800."),
    threads: int | None = ThreadsOption,
    json_out: bool = JsonOption,
) -> None:
    """Choose how maps become boxes (per-class thresholds, merge, smallest box, tightening) on validation pages."""
    from inkproof.document.detector_training import tune_detector

    tuning = tune_detector(
        model, data=data, synthetic_pages=synthetic_pages, tobacco=not synthetic_only, threads=threads
    )
    if json_out:
        print_json(tuning.to_dict())
        return
    table = Table(title=f"validation AP@0.5 ({tuning.candidates} candidate settings)")
    for column in ("page set and class", "card's settings", "chosen"):
        table.add_column(column)
    for key, before in tuning.before.items():
        table.add_row(key, _percent(before), _percent(tuning.after[key]))
    console.print(table)
    settings = tuning.settings
    console.print(
        f"[green]stored[/] merge {settings.merge}, thresholds {dict(settings.class_thresholds)}, "
        f"tighten {list(settings.tighten)} in {model}"
    )


@detector_app.command("export")
@reports_errors
def detector_export(
    run: Path = typer.Argument(..., help="Detector training run folder."),
    out: Path = typer.Option(..., "--out", help="Output folder (model.onnx + model.json)."),
    threshold: float = typer.Option(0.5, min=0.01, max=0.99, help="Probability threshold stored in the card."),
    merge: int = typer.Option(3, min=0, help="Dilation (working pixels) that groups pieces of one field."),
    min_side: int = typer.Option(3, min=1, help="Smallest box side kept (working pixels)."),
    min_area: int = typer.Option(16, min=1, help="Smallest component area kept (working pixels)."),
    json_out: bool = JsonOption,
) -> None:
    """Export a detector run to ONNX (parity-checked) with its detector card."""
    from inkproof.document.detector_training import export_detector

    card = export_detector(run, out, threshold=threshold, merge=merge, min_side=min_side, min_area=min_area)
    if json_out:
        print_json({"card": str(card), "model": str(card.with_suffix(".onnx"))})
        return
    console.print(f"[green]wrote[/] {card.with_suffix('.onnx')} and {card}")


@detector_app.command("quantize")
@reports_errors
def detector_quantize(
    model: Path = typer.Argument(..., help="Exported (fp32) detector card or folder."),
    out: Path = typer.Option(..., "--out", help="Output folder (model.onnx + model.json, int8)."),
    data: Path | None = typer.Option(None, "--data", help="Tobacco800 folder (default as for train)."),
    calibration_pages: int = typer.Option(48, min=1, help="Training pages used to calibrate activations."),
    max_ap_drop: float = typer.Option(0.02, min=0.0, help="Refuse when a validation AP@0.5 drops more."),
    json_out: bool = JsonOption,
) -> None:
    """Static int8 quantisation, refused when validation AP@0.5 drops more than --max-ap-drop."""
    from inkproof.document.detector_training import quantize_detector

    result = quantize_detector(model, out, data=data, calibration_pages=calibration_pages, max_ap_drop=max_ap_drop)
    if json_out:
        print_json(result.to_dict())
        return
    changes = ", ".join(
        f"{k} {_percent(result.ap50_before[k])} -> {_percent(result.ap50_after[k])}" for k in result.ap50_before
    )
    console.print(
        f"[green]wrote[/] {result.card_path} ({result.size_before / 1e6:.1f} MB -> {result.size_after / 1e6:.1f} MB); "
        f"validation AP@0.5: {changes}"
    )


# --- inkproof segment ... --------------------------------------------------------------------------


@segment_app.command("train")
@reports_errors
def segment_train(
    data: Path = typer.Option(..., "--data", help="Folder with images/, masks/ and colors.csv."),
    out: Path = typer.Option(..., "--out", help="Run folder."),
    epochs: int = typer.Option(30, min=1),
    architecture: str = typer.Option("unet", help="unet or fpn."),
    encoder: str = typer.Option("mobilenet_v2", help="smp encoder name."),
    pretrained: bool = typer.Option(False, help="ImageNet weights (offline only for tu-tf_efficientnet_lite0)."),
    decoder_width: int = typer.Option(16, min=1),
    crop: str = typer.Option("256,256", help="Training crop HEIGHT,WIDTH."),
    batch_size: int = typer.Option(8, min=1),
    lr: float = typer.Option(1e-3),
    mixup: float = typer.Option(0.2, min=0.0, help="Mixup Beta parameter (0 disables)."),
    validation_fraction: float = typer.Option(0.2, min=0.01, max=0.9),
    seed: int = typer.Option(0),
    device: str = DeviceOption,
    threads: int | None = ThreadsOption,
    resume: bool = ResumeOption,
    json_out: bool = JsonOption,
) -> None:
    """Train a segmentation network on a folder of images and colour masks."""
    from inkproof.segmentation.dataset import SegmentationDataset
    from inkproof.segmentation.model import SegmentationConfig
    from inkproof.segmentation.train import train_segmentation

    dataset = SegmentationDataset.from_folder(data)
    config = SegmentationConfig(
        classes=len(dataset.palette),
        architecture=architecture,
        encoder=encoder,
        encoder_weights="imagenet" if pretrained else None,
        decoder_width=decoder_width,
    )
    result = train_segmentation(
        config,
        dataset,
        out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        crop=parse_crop(crop),
        mixup=mixup,
        device=device,
        resume=resume,
        seed=seed,
        validation_fraction=validation_fraction,
        threads=threads,
    )
    if json_out:
        print_json(
            {
                "run_dir": str(result.run_dir),
                "card": str(result.card_path),
                "best_epoch": result.best_epoch,
                "best_miou": result.best_miou,
                "iou": result.iou,
                "dice": result.dice,
                "epochs_run": result.epochs_run,
            }
        )
        return
    table = Table(title=f"{result.run_dir}: best epoch {result.best_epoch}, mIoU {_percent(result.best_miou)}")
    table.add_column("class")
    table.add_column("IoU")
    table.add_column("Dice")
    for name, value in result.iou.items():
        table.add_row(name, _percent(value), _percent(result.dice[name]))
    console.print(table)


@segment_app.command("export")
@reports_errors
def segment_export(
    run: Path = typer.Argument(..., help="Training run folder or its best/model.json."),
    out: Path = typer.Option(..., "--out", help="Output model.onnx (its card is written beside it)."),
    tolerance: float = typer.Option(1e-4, help="Largest allowed |ONNX - torch| probability difference."),
    json_out: bool = JsonOption,
) -> None:
    """Export a segmentation run to ONNX with a parity check against torch."""
    from inkproof.segmentation.export import export_segmentation

    result = export_segmentation(run, out, tolerance=tolerance, log=None)
    if json_out:
        print_json(
            {
                "card": str(result.card_path),
                "model": str(result.model_path),
                "max_abs_diff": result.parity.max_abs_diff,
                "mask_agreement": result.parity.mask_agreement,
            }
        )
        return
    console.print(
        f"[green]wrote[/] {result.model_path} and {result.card_path}; parity max |diff| "
        f"{result.parity.worst:.2e}, argmax agreement {result.parity.mask_agreement:.4%}"
    )


@segment_app.command("predict")
@reports_errors
def segment_predict(
    image: Path = typer.Argument(..., help="Image to segment."),
    model: Path = typer.Option(..., "--model", help="Exported (ONNX) segmentation card or folder."),
    out: Path = typer.Option(..., "--out", help="Colour mask to write (PNG, colours of colors.csv)."),
    overlay_path: Path | None = typer.Option(None, "--overlay", help="Also write the mask blended over the image."),
    tile: int | None = typer.Option(None, min=32, help="Tile size for large images (default: whole image)."),
    threads: int | None = ThreadsOption,
    json_out: bool = JsonOption,
) -> None:
    """Segment IMAGE with an exported model (torch-free) and write its colour mask."""
    import numpy as np

    from inkproof.imaging import load_image
    from inkproof.segmentation.overlay import colour_mask, overlay, save_png
    from inkproof.segmentation.runtime import SegmentationEngine

    gray = load_image(image)
    with SegmentationEngine.from_card(model, tile=tile, threads=threads) as engine:
        mask, _ = engine.predict(gray)
        colours = engine.class_colors
        names = engine.class_names
    save_png(colour_mask(mask, colours), out)
    if overlay_path is not None:
        save_png(overlay(gray, mask, colours), overlay_path)
    counts = np.bincount(mask.reshape(-1), minlength=len(names))
    fractions = {name: float(count / mask.size) for name, count in zip(names, counts, strict=True)}
    if json_out:
        print_json({"mask": str(out), "overlay": str(overlay_path) if overlay_path else None, "fractions": fractions})
        return
    table = Table(title=f"{image} ({gray.shape[1]}x{gray.shape[0]})")
    table.add_column("class")
    table.add_column("share of pixels")
    for name, value in fractions.items():
        table.add_row(name, _percent(value))
    console.print(table)
    console.print(f"[green]wrote[/] {out}" + (f" and {overlay_path}" if overlay_path else ""))

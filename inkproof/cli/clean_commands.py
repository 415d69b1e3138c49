"""``inkproof clean`` (torch-free) and ``inkproof cleaner train / export / benchmark``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from inkproof.cli.common import (
    DeviceOption,
    EncoderOption,
    JsonOption,
    PretrainedOption,
    ResumeOption,
    ThreadsOption,
    console,
    error_console,
    parse_crop,
    print_json,
    reports_errors,
)

cleaner_app = typer.Typer(help="Train, export and benchmark the signature cleaner.", no_args_is_help=True)

CleanerOption = typer.Option(None, "--model", help="Cleaner model card or folder (default: the bundled cleaner).")


def _save_png(array: object, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")  # type: ignore[arg-type]


@reports_errors
def clean(
    image: Path = typer.Argument(..., help="Signature image (PNG, JPEG, TIFF, ...)."),
    out: Path = typer.Argument(..., help="Cleaned image to write (PNG): ink on white paper."),
    mask: Path | None = typer.Option(None, "--mask", help="Also write the ink mask (PNG, ink white)."),
    model: Path | None = CleanerOption,
    threads: int | None = typer.Option(None, min=1, help="onnxruntime threads (default: all cores)."),
    json_out: bool = JsonOption,
) -> None:
    """Keep the signature ink of IMAGE and remove printed text, lines, stamps and background."""
    import numpy as np

    from inkproof.document.cleaner import SignatureCleaner

    with SignatureCleaner(model, threads=threads) as cleaner:
        result = cleaner.clean(image)
    _save_png(result.image, out)
    if mask is not None:
        _save_png(np.where(result.mask, np.uint8(255), np.uint8(0)), mask)
    payload = {**result.to_dict(), "out": str(out), "mask": str(mask) if mask else None}
    if json_out:
        print_json(payload)
        return
    console.print(
        f"[green]wrote[/] {out}" + (f" and {mask}" if mask else "") + f": {result.shape[1]}x{result.shape[0]}, "
        f"{result.ink_fraction:.2%} ink ({result.model})"
    )


@cleaner_app.command("train")
@reports_errors
def train(
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoints, history, best model)."),
    data: Path | None = typer.Option(
        None, "--data", help="Real datasets (cedar/, bhsig-hindi/); default $INKPROOF_DATA, else ../shared/data."
    ),
    synthetic_only: bool = typer.Option(False, "--synthetic-only", help="Train on synthetic signatures only."),
    epochs: int = typer.Option(8, min=1),
    examples: int = typer.Option(2000, "--examples", min=8, help="Generated examples per epoch."),
    encoder: str = EncoderOption,
    pretrained: bool = PretrainedOption,
    encoder_depth: int = typer.Option(4, min=3, max=5),
    decoder_width: int = typer.Option(16, min=1),
    crop: str = typer.Option("128,256", help="Training crop HEIGHT,WIDTH."),
    batch_size: int = typer.Option(8, min=2),
    lr: float = typer.Option(2e-3),
    validation_real: int = typer.Option(240, min=0, help="Held-out examples of validation writers."),
    validation_synthetic: int = typer.Option(120, min=0, help="Held-out examples of unseen synthetic writers."),
    device: str = DeviceOption,
    threads: int | None = ThreadsOption,
    resume: bool = ResumeOption,
    json_out: bool = JsonOption,
) -> None:
    """Train a cleaner on composites of synthetic and training-writer signatures."""
    from inkproof.document.cleaner_training import CleanerTrainSettings, train_cleaner
    from inkproof.training.trainer import TrainingError

    crop_size = parse_crop(crop)
    if synthetic_only:
        root = None
    else:
        from inkproof.data.location import data_root

        root = data_root(data)
    settings = CleanerTrainSettings(
        encoder=encoder,
        encoder_weights="imagenet" if pretrained else None,
        encoder_depth=encoder_depth,
        decoder_width=decoder_width,
        crop=crop_size,
        examples_per_epoch=examples,
        batch_size=batch_size,
        lr=lr,
        validation_real=validation_real,
        validation_synthetic=validation_synthetic,
    )
    try:
        result = train_cleaner(
            root, out, epochs=epochs, settings=settings, device=device, resume=resume, threads=threads
        )
    except TrainingError as exc:  # a RuntimeError, not an InkproofError: report it the same way
        error_console.print(f"[bold red]error:[/] TrainingError: {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    payload = {
        "run": str(result.run_dir),
        "card": str(result.card_path),
        "best_epoch": result.best_epoch,
        "best_miou": result.best_miou,
        "iou": result.iou,
        "dice": result.dice,
        "epochs_run": result.epochs_run,
    }
    if json_out:
        print_json(payload)
        return
    console.print(
        f"[green]best epoch {result.best_epoch}[/]: ink IoU {result.iou['ink']:.2%}, Dice {result.dice['ink']:.2%} "
        f"(validation writers + unseen synthetic writers); model {result.card_path}"
    )


@cleaner_app.command("export")
@reports_errors
def export(
    run: Path = typer.Argument(..., help="Cleaner run folder or its best/model.json."),
    out: Path = typer.Option(..., "--out", help="Folder for model.onnx + model.json."),
    json_out: bool = JsonOption,
) -> None:
    """Export a trained cleaner to ONNX (checked against torch) for the torch-free runtime."""
    from inkproof.document.cleaner_training import export_cleaner

    result = export_cleaner(run, out)
    size = result.model_path.stat().st_size
    payload = {
        "card": str(result.card_path),
        "model": str(result.model_path),
        "bytes": size,
        "parity_max_abs_diff": result.parity.max_abs_diff,
    }
    if json_out:
        print_json(payload)
        return
    console.print(f"[green]wrote[/] {result.model_path} ({size / 1e6:.1f} MB) and {result.card_path}")


@cleaner_app.command("benchmark")
@reports_errors
def benchmark(
    model: Path | None = typer.Option(None, "--model", help="Verification model card (default: the bundled model)."),
    cleaner: Path | None = typer.Option(None, "--cleaner", help="Cleaner card (default: the bundled cleaner)."),
    data: Path | None = typer.Option(None, "--data", help="Datasets (default: $INKPROOF_DATA, else ../shared/data)."),
    out: Path = typer.Option(..., "--out", help="Folder for cleaner.json and the example grids."),
    examples: int = typer.Option(300, min=1, help="Composites per group of held-out writers."),
    synthetic: int = typer.Option(200, min=0, help="Composites of unseen synthetic writers."),
    max_writers: int | None = typer.Option(None, min=1, help="Test writers per dataset for the EER part."),
    threads: int | None = typer.Option(None, min=1, help="onnxruntime threads of the cleaner."),
    json_out: bool = JsonOption,
) -> None:
    """Ink IoU/Dice on held-out writers and EER clean / noisy / cleaned with a verification model."""
    from inkproof.data.location import data_root
    from inkproof.document.cleaner import default_cleaner_path
    from inkproof.document.cleaner_training import benchmark_cleaner
    from inkproof.verifier import default_model_path

    record = benchmark_cleaner(
        model or default_model_path(),
        cleaner or default_cleaner_path(),
        data_root(data),
        out,
        examples=examples,
        synthetic=synthetic,
        max_writers=max_writers,
        threads=threads,
    )
    if json_out:
        print_json(record.to_dict())
        return
    table = Table(title="Cleaner: ink segmentation on held-out writers")
    for column in ("group", "examples", "ink IoU", "ink Dice", "Otsu IoU"):
        table.add_column(column)
    for group, row in record.segmentation.items():
        table.add_row(
            group,
            str(row["examples"]),
            f"{row['cleaner']['ink_iou']:.2%}",
            f"{row['cleaner']['ink_dice']:.2%}",
            f"{row['otsu_baseline']['ink_iou']:.2%}",
        )
    console.print(table)
    effect = Table(title=f"Verification EER with {record.verifier['name']} (test writers)")
    for column in ("dataset", "clean", "noisy query", "noisy query cleaned", "clean query cleaned", "recovered"):
        effect.add_column(column)
    for name, row in record.verification.items():
        recovered = row["eer_recovered_fraction"]
        effect.add_row(
            name,
            *(f"{row[k]['eer']:.2%}" for k in ("clean", "noisy", "noisy_cleaned", "clean_cleaned")),
            "n/a" if recovered is None else f"{recovered:.0%}",
        )
    console.print(effect)
    console.print(
        f"{record.speed['ms_per_signature_mean']:.1f} ms per signature; wrote "
        + ", ".join(str(path) for path in record.files.values())
    )

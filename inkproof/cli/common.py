"""Shared pieces of the command line: console, JSON output, error reporting, option types."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from inkproof.errors import InkproofError

console = Console()
# soft_wrap: an error stays one line when piped (rich would wrap it at 80 columns).
error_console = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")

DataOption = typer.Option(
    None, "--data", help="Dataset folder or pair file (default: $INKPROOF_DATA, else ../shared/data)."
)
FormatOption = typer.Option(None, "--format", help="Force a layout instead of auto-detecting it.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")
ThreadsOption = typer.Option(None, "--threads", min=1, help="CPU threads (default: all cores).")
DeviceOption = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
# Segmentation training (detector, cleaner, generic segment train).
EncoderOption = typer.Option("tu-tf_efficientnet_lite0", "--encoder", help="smp encoder name.")
PretrainedOption = typer.Option(
    True, "--pretrained/--no-pretrained", help="ImageNet weights (local for tu-tf_efficientnet_lite0 only)."
)
ResumeOption = typer.Option(False, "--resume", help="Continue the run in --out after its last epoch.")
MaxPixelsOption = typer.Option(
    None,
    "--max-pixels",
    min=1,
    help="Refuse document pages with more pixels (default: $INKPROOF_MAX_PIXELS, else 40,000,000).",
)


def parse_crop(text: str) -> tuple[int, int]:
    """``HEIGHT,WIDTH`` (or ``HEIGHTxWIDTH``) of a training crop, each at least 32 pixels."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"expected HEIGHT,WIDTH, got {text!r}") from None
    if len(values) != 2 or min(values) < 32:
        raise typer.BadParameter(f"expected HEIGHT,WIDTH of at least 32 pixels each, got {text!r}")
    return values[0], values[1]


def print_json(payload: Any) -> None:
    """JSON on stdout, nothing else (so it can be piped)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _one_line(exc: BaseException) -> str:
    """The message on one line, without object reprs, safe from rich markup ("inkproof[ocr]")."""
    from rich.markup import escape

    from inkproof.imaging import one_line

    return escape(one_line(exc))


def reports_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn inkproof's typed errors into a one-line message and exit status 2, never a traceback."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except InkproofError as exc:
            error_console.print(f"[bold red]error:[/] {type(exc).__name__}: {_one_line(exc)}", highlight=False)
            raise typer.Exit(code=2) from None
        except (ValueError, FileNotFoundError) as exc:
            error_console.print(f"[bold red]error:[/] {_one_line(exc)}", highlight=False)
            raise typer.Exit(code=2) from None

    return wrapper


def parse_fractions(text: str) -> tuple[float, float, float]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if len(parts) != 3:
        raise typer.BadParameter("expected three comma-separated numbers, e.g. 0.7,0.15,0.15")
    try:
        a, b, c = (float(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"not numbers: {text!r}") from None
    return (a, b, c)


def parse_count(text: str) -> int | str:
    """'all' or a non-negative integer."""
    if text.strip().lower() == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        raise typer.BadParameter(f"expected 'all' or an integer, got {text!r}") from None
    if value < 0:
        raise typer.BadParameter("counts must be >= 0")
    return value


def parse_writer_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    path = Path(text)
    if path.is_file():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [w.strip() for w in text.split(",") if w.strip()]


def check_report_path(path: Path) -> None:
    """Refuse an evidence report path of another format before any work (and before a claim is logged)."""
    if path.suffix.lower() not in (".html", ".htm", ".pdf"):
        from inkproof.evidence.report import EvidenceFormatError

        raise EvidenceFormatError(f"a report is .html or .pdf, not {path.name!r}")

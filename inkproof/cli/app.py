"""Entry point of the ``inkproof`` command. Each command parses options, calls one library
function and prints or serialises its result; heavy imports happen inside the commands."""

from __future__ import annotations

import typer

from inkproof import __version__
from inkproof.cli import (
    batch_commands,
    benchmark_commands,
    clean_commands,
    data_commands,
    demo_commands,
    document_commands,
    document_store_commands,
    export_commands,
    inference_commands,
    report_commands,
    store_commands,
    synth_commands,
    train_commands,
)
from inkproof.cli.common import console

app = typer.Typer(
    name="inkproof",
    help="Offline handwritten signature verification.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
document_app = typer.Typer(
    help="Whole documents: report on their signatures and fields; index and search a collection.",
    no_args_is_help=True,
)
document_app.command("report")(report_commands.document_report)
document_app.command("index")(document_store_commands.document_index)
document_app.command("search")(document_store_commands.document_search)
document_app.command("list")(document_store_commands.document_list)
document_app.command("delete")(document_store_commands.document_delete)

app.add_typer(data_commands.app, name="data")
app.add_typer(document_app, name="document")
app.add_typer(train_commands.models_app, name="models")
app.add_typer(benchmark_commands.app, name="benchmark")
app.add_typer(batch_commands.app, name="batch")
app.add_typer(clean_commands.cleaner_app, name="cleaner")
app.command("synth")(synth_commands.synth)
app.command("demo")(demo_commands.demo)
app.command("train")(train_commands.train)
app.command("train-teacher")(train_commands.train_teacher)
app.command("evaluate")(train_commands.evaluate)
app.command("tune")(train_commands.tune)
app.command("calibrate")(train_commands.calibrate)
app.command("calibrate-claims")(train_commands.calibrate_claims)
app.command("export")(export_commands.export)
app.command("quantize")(export_commands.quantize)
app.command("verify")(inference_commands.verify)
app.command("embed")(inference_commands.embed)
app.command("clean")(clean_commands.clean)
app.command("detect")(document_commands.detect)
app.add_typer(document_commands.detector_app, name="detector")
app.add_typer(document_commands.segment_app, name="segment")
app.command("enroll")(store_commands.enroll)
app.command("verify-claim")(store_commands.verify_claim)
app.command("identify")(store_commands.identify)
app.add_typer(store_commands.writers_app, name="writers")
app.add_typer(store_commands.review_app, name="review")
app.add_typer(store_commands.store_app, name="store")
app.add_typer(store_commands.keys_app, name="keys")
app.command("serve")(store_commands.serve)


def _show_version(value: bool) -> None:
    if value:
        console.print(f"inkproof {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Offline handwritten signature verification."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()

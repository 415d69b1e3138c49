"""Enrollment store commands (``enroll``, ``verify-claim``, ``identify``, ``writers``, ``review``,
``store``, ``keys``) and ``serve``; thin layers over :class:`inkproof.store.SignatureStore`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from inkproof.cli.common import JsonOption, check_report_path, console, print_json, reports_errors

DbOption = typer.Option(None, "--db", help="Store: a path or SQLAlchemy URL (default: $INKPROOF_DB or ./inkproof.db).")
ModelOption = typer.Option(None, "--model", help="Model card (default: the bundled model).")
DEMO_DIR = Path("inkproof-demo")

writers_app = typer.Typer(help="List, show and delete enrolled writers.", no_args_is_help=True)
review_app = typer.Typer(
    help="The review queue: claims scored between the reject and accept thresholds.", no_args_is_help=True
)
store_app = typer.Typer(help="Store maintenance.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of the REST service (stored hashed).", no_args_is_help=True)


def _store(db: str | None, model: Path | None = None, *, with_model: bool = True) -> Any:
    from inkproof.store.database import open_database
    from inkproof.store.repository import SignatureStore

    verifier = None
    if with_model:
        from inkproof.verifier import Verifier

        verifier = Verifier(model)
    return SignatureStore(open_database(db), verifier)


@reports_errors
def enroll(
    writer: str = typer.Argument(..., help="Writer id (created when new)."),
    images: list[Path] = typer.Argument(..., help="Reference signature images."),
    name: str | None = typer.Option(None, "--name", help="Display name."),
    quality: str = typer.Option("reject", help="reject: skip references failing quality checks; warn: keep them."),
    db: str | None = DbOption,
    model: Path | None = ModelOption,
    json_out: bool = JsonOption,
) -> None:
    """Enroll reference signatures of WRITER (all or nothing: one transaction)."""
    result = _store(db, model).enroll(writer, images, display_name=name, quality=quality)
    if json_out:
        print_json(result.to_dict())
        return
    table = Table(title=f"Enrollment of {writer}")
    for column in ("image", "accepted", "quality", "notes"):
        table.add_column(column)
    for item in result.images:
        notes = "; ".join(item.problems) + (" (already enrolled)" if item.duplicate else "")
        table.add_row(
            item.source,
            "[green]yes[/]" if item.accepted else "[red]no[/]",
            "-" if item.quality_score is None else f"{item.quality_score:.2f}",
            notes,
        )
    console.print(table)
    console.print(f"{writer} now has {result.references} reference(s).")
    for check in result.checks:
        if check.flagged:
            console.print(
                f"[yellow]flagged[/] reference {check.reference_id}: mean score {check.consistency:.3f} against the "
                "writer's other references is unusually low (a mix-up or a forgery?); it is kept out of claim "
                f"scoring until deleted (`inkproof writers delete-reference {writer} {check.reference_id}`)"
            )


@reports_errors
def verify_claim(
    writer: str = typer.Argument(..., help="Claimed writer."),
    query: Path = typer.Argument(..., help="Questioned signature image."),
    operating_point: str = typer.Option(
        "far-skilled-5",
        "--operating-point",
        help="Accept threshold, calibrated on validation writers for the writer's number of references: "
        "far-skilled-1 (accepts ~1 % of skilled forgeries), far-skilled-5 (~5 %) or eer (equal error rate). "
        "Claims scored between it and the EER threshold go to review.",
    ),
    fusion: str | None = typer.Option(
        None, help="Models without a claims calibration only: fusion of the per-reference scores, mean or max."
    ),
    db: str | None = DbOption,
    model: Path | None = ModelOption,
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Write the evidence (per-reference overlays, sensitivity, features, provenance): .html or .pdf.",
    ),
    json_out: bool = JsonOption,
) -> None:
    """Verify QUERY against the references of WRITER; uncertain scores go to the review queue."""
    if report is not None:
        check_report_path(report)
    store = _store(db, model)
    result = store.verify_claim(writer, query, fusion=fusion, operating_point=operating_point)
    if report is not None:
        from inkproof.evidence import write_report

        # Built from the log entry just written (the query is given again: it may not be kept).
        write_report(store.claim_evidence(result.log_id, query), report)
        if not json_out:
            console.print(f"evidence written to {report}", highlight=False)
    if json_out:
        print_json(result.to_dict())
        return
    colour = {"genuine": "green", "forgery": "red"}.get(result.decision, "yellow")
    console.print(
        f"[bold {colour}]{result.decision.upper()}[/]  score {result.fused_score:.4f} ({result.method}, "
        f"{result.references_used} reference(s)); accept at >= {result.accept_threshold:.4f} "
        f"({result.threshold_source}), reject below {result.reject_threshold:.4f}; log #{result.log_id}"
    )
    for item in result.reference_scores:
        note = "" if item.used else "  (flagged at enrollment: not used)"
        console.print(f"  reference {item.reference_id}: {item.score:.4f}{note}")


@reports_errors
def identify(
    query: Path = typer.Argument(..., help="Signature image to identify."),
    top: int = typer.Option(5, min=1, help="How many candidate writers."),
    db: str | None = DbOption,
    model: Path | None = ModelOption,
    json_out: bool = JsonOption,
) -> None:
    """The enrolled writers whose references are closest to QUERY."""
    result = _store(db, model).identify(query, top=top)
    if json_out:
        print_json(result.to_dict())
        return
    table = Table(title=f"Closest writers ({result.index} search over {result.references} references)")
    for column in ("rank", "writer", "name", "score"):
        table.add_column(column)
    for candidate in result.candidates:
        table.add_row(str(candidate.rank), candidate.external_id, candidate.display_name, f"{candidate.score:.4f}")
    console.print(table)


@writers_app.command("list")
@reports_errors
def writers_list(db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """Every enrolled writer with its reference count."""
    writers = _store(db, with_model=False).list_writers()
    if json_out:
        print_json([w.to_dict() for w in writers])
        return
    table = Table(title=f"{len(writers)} writer(s)")
    for column in ("writer", "name", "references", "enrolled"):
        table.add_column(column)
    for w in writers:
        table.add_row(w.external_id, w.display_name or "", str(w.references), str(w.created_at)[:19])
    console.print(table)


@writers_app.command("show")
@reports_errors
def writers_show(writer: str, db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """One writer and its references."""
    detail = _store(db, with_model=False).get_writer(writer)
    if json_out:
        print_json(detail.to_dict())
        return
    console.print(detail.to_dict())


@writers_app.command("delete")
@reports_errors
def writers_delete(
    writer: str,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    db: str | None = DbOption,
) -> None:
    """Delete a writer with its reference images and embeddings (verification logs stay)."""
    if not yes:
        typer.confirm(f"Delete {writer} and all its references?", abort=True)
    _store(db, with_model=False).delete_writer(writer)
    console.print(f"[green]deleted[/] {writer}")


@writers_app.command("delete-reference")
@reports_errors
def writers_delete_reference(
    writer: str,
    reference_id: int,
    db: str | None = DbOption,
    model: Path | None = ModelOption,
    json_out: bool = JsonOption,
) -> None:
    """Delete one reference of WRITER; the writer's claim scoring is refitted on the others."""
    detail = _store(db, model).delete_reference(writer, reference_id)
    if json_out:
        print_json(detail.to_dict())
        return
    console.print(f"[green]deleted[/] reference {reference_id}; {writer} has {len(detail.references)} left")


@review_app.command("list")
@reports_errors
def review_list(limit: int = typer.Option(50, min=1), db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """Claims waiting for a reviewer."""
    items = _store(db, with_model=False).pending_reviews(limit=limit)
    if json_out:
        print_json([i.to_dict() for i in items])
        return
    table = Table(title=f"{len(items)} pending review(s)")
    for column in ("log", "writer", "score", "accept at", "reject below", "when"):
        table.add_column(column)
    for item in items:
        table.add_row(
            str(item.log_id),
            item.claimed_external_id,
            f"{item.fused_score:.4f}",
            f"{item.threshold:.4f}",
            f"{item.reject_threshold:.4f}",
            str(item.created_at)[:19],
        )
    console.print(table)


@review_app.command("decide")
@reports_errors
def review_decide(
    log_id: int,
    decision: str = typer.Argument(..., help="genuine or forgery"),
    reviewer: str = typer.Option(..., "--reviewer", help="Who decided."),
    note: str | None = typer.Option(None, "--note", help="What the decision rests on (kept in the log)."),
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Record a reviewer's decision on a pending claim (the automatic one is kept too)."""
    item = _store(db, with_model=False).review(log_id, decision, reviewer, note=note)
    if json_out:
        print_json(item.to_dict())
        return
    console.print(f"[green]recorded[/] {decision} for log #{log_id} by {reviewer}")


@review_app.command("evidence")
@reports_errors
def review_evidence(
    log_id: int,
    report: Path = typer.Option(..., "--report", help="Output file: .html or .pdf."),
    query: Path | None = typer.Option(None, "--query", help="The query image, when the log did not keep it."),
    db: str | None = DbOption,
    model: Path | None = ModelOption,
    json_out: bool = JsonOption,
) -> None:
    """Rebuild the evidence of a logged claim from the log and check that its decision reproduces."""
    from inkproof.evidence import write_report

    check_report_path(report)
    record = _store(db, model).claim_evidence(log_id, query)
    write_report(record, report)
    if json_out:
        print_json(record.to_dict(images=False))
        return
    rep = record.reproduction
    state = (
        "no query image kept: scores and provenance only"
        if rep is None
        else ("reproduced" if rep.matches else f"NOT reproduced ({rep.note})")
    )
    console.print(f"evidence for log #{log_id} written to {report}: {state}", highlight=False)


@store_app.command("log-export")
@reports_errors
def store_log_export(
    out: Path | None = typer.Option(None, "--out", help="Output file (default: standard output)."),
    format: str = typer.Option("json", "--format", help="json or csv."),
    since: str | None = typer.Option(None, "--since", help="Only entries logged at or after this ISO date/time (UTC)."),
    db: str | None = DbOption,
) -> None:
    """Export the verification log for audits: every claim, its scores, thresholds, method, model
    tag, reference hashes and the reviewer's decision and note (images are not exported)."""
    from inkproof.store.audit import parse_since, write_log

    items = _store(db, with_model=False).export_log(since=parse_since(since))
    text = write_log(items, format)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"{len(items)} log entries written to {out}", highlight=False)


@store_app.command("reindex")
@reports_errors
def store_reindex(db: str | None = DbOption, model: Path | None = ModelOption) -> None:
    """Re-embed every reference with the current model (needed after switching models)."""
    count = _store(db, model).reindex(progress=True)
    console.print(f"[green]reindexed[/] {count} reference(s)")


@keys_app.command("create")
@reports_errors
def keys_create(name: str, db: str | None = DbOption) -> None:
    """Create an API key; it is shown once and stored only as a hash."""
    key = _store(db, with_model=False).create_api_key(name)
    console.print(f"API key {name!r}: [bold]{key}[/]\n(store it now; inkproof keeps only its hash)")


@keys_app.command("list")
@reports_errors
def keys_list(db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    keys = _store(db, with_model=False).list_api_keys()
    if json_out:
        print_json([k.to_dict() for k in keys])
        return
    for k in keys:
        console.print(k.to_dict())


@keys_app.command("revoke")
@reports_errors
def keys_revoke(name: str, db: str | None = DbOption) -> None:
    from inkproof.service.limits import KEY_CACHE_S

    _store(db, with_model=False).revoke_api_key(name)
    # Running services trust a key they accepted for a few seconds without asking the database.
    console.print(f"[green]revoked[/] {name} (running services refuse it within {KEY_CACHE_S:g} s)")


def _prepare_demo(db: str | None, model: Path | None) -> tuple[str, str]:
    """A demo store (SQLite in ./inkproof-demo) pre-enrolled with synthetic writers, and its API key."""
    from inkproof.data.synthetic import SyntheticConfig, generate_dataset

    DEMO_DIR.mkdir(exist_ok=True)
    database = db or str(DEMO_DIR / "inkproof.db")
    store = _store(database, model)
    if not store.list_writers():
        signatures = DEMO_DIR / "signatures"
        config = SyntheticConfig(writers=6, genuine_per_writer=8, forged_per_writer=4, seed=2024)
        summary = generate_dataset(signatures, config)
        for writer in summary.writers:
            genuine = sorted((signatures / writer / "genuine").iterdir())
            store.enroll(writer, genuine[:5], display_name=f"Synthetic writer {writer}")
        console.print(
            f"enrolled {len(summary.writers)} synthetic writers; more of their signatures "
            f"(unenrolled genuine ones and forgeries) are in {signatures}"
        )
    key_file = DEMO_DIR / "demo-api-key.txt"
    if key_file.is_file():
        key = key_file.read_text().strip()
        if store.check_api_key(key):
            return database, key
    key = store.create_api_key(f"demo-{os.getpid()}")
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return database, key


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


@reports_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    db: str | None = DbOption,
    model: Path | None = ModelOption,
    demo: bool = typer.Option(False, help="Use ./inkproof-demo: a store pre-enrolled with synthetic writers."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Do not require API keys (local experiments only)."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow --no-auth on an interface other than loopback (anyone who can reach it)."
    ),
    api_docs: bool = typer.Option(
        False, "--api-docs", help="Serve /docs and /redoc (their scripts come from a CDN); /openapi.json is always on."
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or tensorrt."),
    workers: int = typer.Option(
        1,
        min=1,
        help="Worker processes sharing the store (each loads the model and the identification index; "
        "on SQLite their writes take turns on the database's write lock).",
    ),
    index_dir: Path | None = typer.Option(
        None, help="Folder of the identification index file (default: beside a SQLite store; none for PostgreSQL)."
    ),
) -> None:
    """Serve the REST API (/api/v1, schema at /openapi.json) and the web UI (/)."""
    if no_auth and not _is_loopback(host):
        if not insecure:
            raise typer.BadParameter(
                f"--no-auth on {host} would let anyone who can reach it use the API; "
                "add --insecure if that is really wanted",
                param_hint="--no-auth",
            )
        console.print(f"[bold red]warning:[/] serving on {host} without API keys: anyone who can reach it has access")
    import uvicorn

    from inkproof.service.app import SETTINGS_ENV, ServiceSettings, create_app, settings_to_environment

    database = db
    if demo:
        database, key = _prepare_demo(db, model)
        console.print(f"demo store {database}; API key: [bold]{key}[/] (also in {DEMO_DIR / 'demo-api-key.txt'})")
    settings = ServiceSettings(
        model=model,
        database=database,
        require_api_key=not no_auth,
        device=device,
        api_docs=api_docs,
        index_dir=str(index_dir) if index_dir is not None else None,
    )
    docs = f"http://{host}:{port}/docs" if api_docs else f"http://{host}:{port}/openapi.json"
    console.print(f"inkproof serving on http://{host}:{port}/  (API: {docs})")
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        return
    # Several processes need the app as an import string; each builds it from these settings.
    os.environ[SETTINGS_ENV] = settings_to_environment(settings)
    uvicorn.run(
        "inkproof.service.app:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
    )

"""``document index / search / list / delete``: signatures found on scanned documents, kept in the
enrollment store and searched by writer similarity; thin layers over
:class:`inkproof.store.documents.DocumentStore`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from inkproof.cli.common import JsonOption, MaxPixelsOption, console, error_console, print_json, reports_errors
from inkproof.cli.store_commands import DbOption, ModelOption, _store

DetectorOption = typer.Option(None, "--detector", help="Detector card or folder (default: the bundled detector model).")


def _load_detector(card: Path | None) -> Any:
    """The page detector of ``card`` (None: the bundled one); it has ``detect`` and ``close``."""
    from inkproof.document.detector import PageDetector

    return PageDetector.from_card(card)


CleanOption = typer.Option(
    True, "--clean/--no-clean", help="Clean crops (and the query) of print and lines before embedding them."
)


def _load_cleaner(clean: bool) -> Any:
    """The bundled cleaner, or None."""
    from inkproof.document.cleaner import SignatureCleaner

    return SignatureCleaner() if clean else None


def _box(box: tuple[int, int, int, int] | list[int]) -> str:
    return ", ".join(str(v) for v in box)


@reports_errors
def document_index(
    folder: Path = typer.Argument(..., help="Folder of PNG/JPEG/TIFF/PDF documents (searched recursively)."),
    db: str | None = DbOption,
    model: Path | None = ModelOption,
    detector: Path | None = DetectorOption,
    dpi: float = typer.Option(150.0, "--dpi", min=36, max=600, help="PDF rendering resolution."),
    max_pages: int = typer.Option(50, "--max-pages", min=1, help="Refuse documents with more pages."),
    max_pixels: int | None = MaxPixelsOption,
    clean: bool = CleanOption,
    json_out: bool = JsonOption,
) -> None:
    """Find the signatures on every page of every document in FOLDER and store them (one
    transaction per document; files indexed before are recognised by their bytes and skipped).
    Exits with status 1 when some documents could not be read."""
    found = _load_detector(detector)  # first: a missing detector must not leave an empty store behind
    cleaner = _load_cleaner(clean)
    try:
        store = _store(db, model)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=error_console, transient=True) as progress:
            task = progress.add_task("indexing", total=None)

            def advance(done: int, total: int, source: str) -> None:
                progress.update(task, completed=done, total=total, description=source)

            result = store.documents.index_folder(
                folder,
                found,
                progress=advance,
                dpi=dpi,
                max_pages=max_pages,
                max_pixels=max_pixels,
                cleaner=cleaner,
            )
    finally:
        for resource in (found, cleaner):
            close = getattr(resource, "close", None)
            if callable(close):
                close()
    if json_out:
        print_json(result.to_dict())
    else:
        table = Table(title=f"{len(result.entries)} document(s) in {folder}")
        for column in ("document", "status", "pages", "signatures", "notes"):
            table.add_column(column)
        colours = {"indexed": "green", "existing": "cyan", "failed": "red"}
        for entry in result.entries:
            notes = entry.error or ("" if entry.name in (None, entry.source) else f"indexed before as {entry.name}")
            table.add_row(
                entry.source,
                f"[{colours[entry.status]}]{entry.status}[/]",
                str(entry.pages),
                str(entry.signatures),
                notes,
            )
        console.print(table)
        console.print(
            f"{result.count('indexed')} indexed, {result.count('existing')} already indexed, "
            f"{result.count('failed')} failed"
        )
    if result.count("failed"):
        raise typer.Exit(code=1)


@reports_errors
def document_search(
    query: Path = typer.Argument(..., help="Signature image: which documents did its writer sign?"),
    top: int = typer.Option(10, "--top", min=1, help="How many documents."),
    db: str | None = DbOption,
    model: Path | None = ModelOption,
    clean: bool = CleanOption,
    json_out: bool = JsonOption,
) -> None:
    """The documents most likely signed by the writer of QUERY, ranked by their best signature.
    Index and search the same way: both cleaned (the default) or both --no-clean."""
    store = _store(db, model)
    cleaner = _load_cleaner(clean)
    try:
        result = store.documents.search_documents(query, top=top, cleaner=cleaner)
    finally:
        if cleaner is not None:
            cleaner.close()
    if json_out:
        print_json(result.to_dict())
        return
    table = Table(
        title=f"Documents closest to {query.name} ({result.index} search over {result.signatures} signatures)"
    )
    for column in ("rank", "document", "page", "box (x0, y0, x1, y1)", "score", "decision", "writer"):
        table.add_column(column)
    colours = {"match": "green", "review": "yellow", "no_match": "red"}
    for match in result.matches:
        table.add_row(
            str(match.rank),
            match.name,
            str(match.page + 1),
            _box(match.box),
            f"{match.score:.4f}",
            f"[{colours[match.decision]}]{match.decision}[/]",
            match.writer_external_id or "",
        )
    console.print(table)
    console.print(
        f"match at >= {result.accept_threshold:.4f} ({result.threshold_source}), "
        f"no match below {result.reject_threshold:.4f}"
    )


@reports_errors
def document_list(db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """Every indexed document with its page and signature counts."""
    documents = _store(db, with_model=False).documents.list_documents()
    if json_out:
        print_json([d.to_dict() for d in documents])
        return
    table = Table(title=f"{len(documents)} document(s)")
    for column in ("id", "document", "pages", "signatures", "sha256", "indexed"):
        table.add_column(column)
    for d in documents:
        table.add_row(str(d.id), d.name, str(d.pages), str(d.signatures), d.file_sha256[:12], str(d.created_at)[:19])
    console.print(table)


@reports_errors
def document_delete(
    document: str = typer.Argument(..., help="Document name (as listed) or id."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    db: str | None = DbOption,
) -> None:
    """Delete a document with its signatures, crops and embeddings."""
    store = _store(db, with_model=False)
    if not yes:
        found = store.documents.get_document(document)
        typer.confirm(f"Delete {found.name} and its {len(found.signatures)} signature(s)?", abort=True)
    deleted = store.documents.delete_document(document)
    console.print(f"[green]deleted[/] {deleted.name} ({deleted.signatures} signature(s))")

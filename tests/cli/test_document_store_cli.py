"""``document index / search / list / delete`` on synthetic pages with a ground-truth detector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from inkproof.cli import document_store_commands
from inkproof.cli.document_store_commands import document_delete, document_index, document_list, document_search
from tests.store.test_documents import (
    TruthDetector,
    crop,
    make_doc_card,
    page_signatures,
    save_png,
    synthetic_page,
)

runner = CliRunner()


def flat(output: str) -> str:
    """The output without rich's line wrapping (the test console is 80 columns wide)."""
    return " ".join(output.split())


# The commands as the ``document`` group of the ``inkproof`` app registers them.
app = typer.Typer()
group = typer.Typer()
group.command("index")(document_index)
group.command("search")(document_search)
group.command("list")(document_list)
group.command("delete")(document_delete)
app.add_typer(group, name="document")


@pytest.fixture(scope="session")
def doc_card(onnx_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_doc_card(onnx_model, tmp_path_factory.mktemp("doc-model"))


@pytest.fixture
def scans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three synthetic documents (a PNG and a two-page TIFF); ``--detector`` loads the truth."""
    pages = [synthetic_page(i) for i in range(3)]
    folder = tmp_path / "scans"
    save_png(folder / "letter.png", pages[0].image)
    Image.fromarray(pages[1].image).save(
        folder / "contract.tif", save_all=True, append_images=[Image.fromarray(pages[2].image)]
    )
    monkeypatch.setattr(document_store_commands, "_load_detector", lambda card: TruthDetector(pages))
    return folder


def test_index_search_list_and_delete(scans: Path, doc_card: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    store_options = ["--db", db, "--model", str(doc_card)]
    indexed = runner.invoke(app, ["document", "index", str(scans), *store_options, "--json"])
    assert indexed.exit_code == 0, indexed.output
    payload = json.loads(indexed.stdout)
    assert payload["indexed"] == 2 and payload["failed"] == 0
    entries = {e["source"]: e for e in payload["entries"]}
    assert entries["contract.tif"]["pages"] == 2
    assert entries["contract.tif"]["signatures"] == len(page_signatures(synthetic_page(1))) + len(
        page_signatures(synthetic_page(2))
    )
    again = runner.invoke(app, ["document", "index", str(scans), *store_options])
    assert again.exit_code == 0, again.output
    assert "0 indexed, 2 already indexed, 0 failed" in flat(again.stdout)

    query = save_png(tmp_path / "query.png", crop(synthetic_page(2), page_signatures(synthetic_page(2))[0][0]))
    found = runner.invoke(app, ["document", "search", str(query), *store_options, "--top", "2", "--json"])
    assert found.exit_code == 0, found.output
    result = json.loads(found.stdout)
    best = result["matches"][0]
    assert (best["name"], best["page"], best["decision"]) == ("contract.tif", 1, "match")
    assert best["box"] == list(page_signatures(synthetic_page(2))[0][0]) and len(result["matches"]) == 2
    table = runner.invoke(app, ["document", "search", str(query), *store_options])
    assert table.exit_code == 0 and "contract.tif" in table.stdout and "match" in table.stdout

    listed = runner.invoke(app, ["document", "list", "--db", db, "--json"])
    assert [d["name"] for d in json.loads(listed.stdout)] == ["contract.tif", "letter.png"]
    deleted = runner.invoke(app, ["document", "delete", "contract.tif", "--yes", "--db", db])
    assert deleted.exit_code == 0 and "deleted" in deleted.stdout
    listed = runner.invoke(app, ["document", "list", "--db", db])
    assert "1 document(s)" in listed.stdout and "letter.png" in flat(listed.stdout)

    # Typed errors: one message, exit status 2, no traceback.
    gone = runner.invoke(app, ["document", "delete", "contract.tif", "--yes", "--db", db])
    assert gone.exit_code == 2 and flat(gone.output) == "error: UnknownDocumentError: unknown document: 'contract.tif'"
    missing = runner.invoke(app, ["document", "search", str(tmp_path / "nope.png"), *store_options])
    assert missing.exit_code == 2 and flat(missing.output).endswith("nope.png: file not found")


def test_unreadable_documents_fail_alone(scans: Path, doc_card: Path, tmp_path: Path) -> None:
    (scans / "scrap.pdf").write_bytes(b"%PDF-1.4 this is no PDF")
    db = str(tmp_path / "store.db")
    result = runner.invoke(app, ["document", "index", str(scans), "--db", db, "--model", str(doc_card)])
    assert result.exit_code == 1, result.output
    assert "scrap.pdf" in result.stdout and "2 indexed, 0 already indexed, 1 failed" in flat(result.stdout)


def test_a_missing_detector_is_a_one_line_error(doc_card: Path, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    result = runner.invoke(
        app,
        ["document", "index", str(tmp_path), "--db", str(db), "--model", str(doc_card), "--detector", "nope.json"],
    )
    assert result.exit_code == 2 and not db.exists()
    assert flat(result.output) == "error: DetectorModelMissingError: no detector model at nope.json"

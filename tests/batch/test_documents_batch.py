"""``batch index-documents`` on local Ray (2 workers) with the bundled detector and cleaner: the
documents and signatures ``document index`` stores, failed files in their rows, and a resume after
a kill that reruns only the unfinished partition and stores no document twice."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from inkproof.cli.app import app
from inkproof.document.cleaner import SignatureCleaner
from inkproof.document.detector import PageDetector
from inkproof.document.synthetic import PageConfig, render_page
from inkproof.store import SignatureStore, open_database
from inkproof.store.helpers import embedding_matrix
from inkproof.store.schema import Document, DocumentSignature
from inkproof.verifier import Verifier

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from inkproof.batch import BatchJobError, read_documents_manifest, read_indexed, run_index_documents

runner = CliRunner()
PAGE_CONFIG = PageConfig(width=800, height=1100, signatures=(1, 3))


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five readable documents (one a two-page TIFF, one a PDF, one the same bytes as another
    under a second name) and one broken file, as a user's scan folder holds them."""
    folder = tmp_path_factory.mktemp("scans")
    pages = [render_page(i, PAGE_CONFIG).image for i in range(5)]
    Image.fromarray(pages[0]).save(folder / "a.png")
    Image.fromarray(pages[1]).save(folder / "b.tif", save_all=True, append_images=[Image.fromarray(pages[2])])
    (folder / "sub").mkdir()
    Image.fromarray(pages[3]).save(folder / "sub" / "c.pdf", resolution=150.0)
    Image.fromarray(pages[4]).save(folder / "d.png")
    (folder / "e-copy-of-a.png").write_bytes((folder / "a.png").read_bytes())
    (folder / "f-broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not a document")
    return folder


def stored(url: str) -> dict[str, list[tuple[int, tuple[int, int, int, int], np.ndarray]]]:
    """Each stored document's signatures (page, box, embedding), by document name."""
    database = open_database(url)
    try:
        with database.session(write=False) as session:
            rows = session.execute(
                select(Document.name, DocumentSignature)
                .join(DocumentSignature, DocumentSignature.document_id == Document.id)
                .order_by(Document.name, DocumentSignature.page, DocumentSignature.x0, DocumentSignature.y0)
            ).all()
            found: dict[str, list[Any]] = {}
            for name, sig in rows:
                vector = embedding_matrix([bytes(sig.embedding)], sig.embedding_dim)[0]
                found.setdefault(name, []).append((sig.page, (sig.x0, sig.y0, sig.x1, sig.y1), vector))
            return found
    finally:
        database.dispose()


def test_batch_index_stores_what_document_index_stores(local_ray: None, scans: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "batch.db")
    summary = run_index_documents(scans, tmp_path / "job", database=url, workers=2, partition_documents=2)
    assert (summary.items, summary.stages[0].partitions, summary.stages[0].computed) == (6, 3, 3)
    rows = list(read_indexed(tmp_path / "job"))
    names = ["a.png", "b.tif", "d.png", "e-copy-of-a.png", "f-broken.jpg", "sub/c.pdf"]
    assert [Path(r["document"]).relative_to(scans).as_posix() for r in rows] == names
    by_name = {Path(r["document"]).relative_to(scans).as_posix(): r for r in rows}
    # The same bytes under two names are one document, whichever worker stored it first.
    copies = [by_name["a.png"], by_name["e-copy-of-a.png"]]
    assert sorted(r["status"] for r in copies) == ["existing", "indexed"]
    assert copies[0]["document_id"] == copies[1]["document_id"]
    broken = by_name["f-broken.jpg"]
    assert broken["status"] == "failed" and "f-broken.jpg" in broken["error"] and broken["document_id"] is None
    assert by_name["b.tif"]["pages"] == 2 and all(r["error"] == "" for r in rows if r is not broken)
    assert summary.outcomes == {
        "indexed": 4,
        "existing": 1,
        "failed": 1,
        "signatures": sum(r["signatures"] for r in rows),
    }

    # ``document index`` on the same folder, one process: the same documents, boxes and embeddings.
    single = str(tmp_path / "single.db")
    verifier = Verifier(None, device="cpu")
    store = SignatureStore(open_database(single), verifier)
    detector, cleaner = PageDetector.from_card(None), SignatureCleaner()
    try:
        result = store.documents.index_folder(scans, detector, cleaner=cleaner)
    finally:
        detector.close()
        cleaner.close()
        store.db.dispose()
    assert [(e.source, e.status) for e in result.entries] == [
        ("a.png", "indexed"),
        ("b.tif", "indexed"),
        ("d.png", "indexed"),
        ("e-copy-of-a.png", "existing"),
        ("f-broken.jpg", "failed"),
        ("sub/c.pdf", "indexed"),
    ]
    batch, one = stored(url), stored(single)
    if "e-copy-of-a.png" in batch:  # the copy's worker stored those bytes first, under its name
        batch["a.png"] = batch.pop("e-copy-of-a.png")
    assert sorted(batch) == sorted(one) and sum(len(v) for v in one.values()) > 4
    for name, signatures in one.items():
        assert [(p, b) for p, b, _ in batch[name]] == [(p, b) for p, b, _ in signatures], name
        for (_, _, a), (_, _, b) in zip(batch[name], signatures, strict=True):
            assert float(a @ b) == pytest.approx(1.0, abs=1e-5)

    # The batch-built store is searchable as any other: a stored crop finds its own document.
    with open_database(url) as database:
        searcher = SignatureStore(database, verifier)
        page, box, _ = batch["d.png"][0]
        image = np.asarray(Image.open(scans / "d.png"))
        best = searcher.documents.search_documents(image[box[1] : box[3], box[0] : box[2]]).matches[0]
        assert (best.name, best.page, best.box) == ("d.png", page, box)
    verifier.close()


def _documents(url: str) -> list[tuple[int, str]]:
    with open_database(url) as database, database.session(write=False) as session:
        return [(int(i), str(n)) for i, n in session.execute(select(Document.id, Document.name).order_by(Document.id))]


def test_a_killed_index_job_resumes_and_stores_each_document_once(local_ray: None, scans: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "store.db")
    out = tmp_path / "job"
    manifest = tmp_path / "documents.csv"
    wanted = ["a.png", "b.tif", "d.png", "sub/c.pdf"]
    manifest.write_text("document,name\n" + "".join(f"{scans / n},scan-{i}\n" for i, n in enumerate(wanted)))

    def run(folder: Path = out, **options: Any) -> Any:
        return run_index_documents(manifest, folder, database=url, workers=2, partition_documents=2, **options)

    first = run()
    assert (first.stages[0].partitions, first.stages[0].computed) == (2, 2)
    before = list(read_indexed(out))
    assert [r["name"] for r in before] == [f"scan-{i}" for i in range(4)]
    assert [r["status"] for r in before] == ["indexed"] * 4
    documents = _documents(url)
    parts = sorted((out / "documents").glob("part-*.parquet"))
    mtime = os.stat(parts[0]).st_mtime_ns

    # As a kill -9 leaves it: partition 1 stored its first document, then died before its second
    # document's transaction and before its file was written.
    with open_database(url) as database, database.session() as session:
        lost = session.scalar(select(Document.id).where(Document.name == "scan-3"))
        session.execute(delete(DocumentSignature).where(DocumentSignature.document_id == lost))
        session.execute(delete(Document).where(Document.id == lost))
    parts[1].unlink()
    parts[1].with_suffix(".done").unlink()

    again = run()
    assert (again.stages[0].computed, again.stages[0].skipped) == (1, 1)
    assert os.stat(parts[0]).st_mtime_ns == mtime
    after = list(read_indexed(out))
    assert after[:2] == before[:2]
    # The document stored before the kill is found by its bytes; the lost one is stored again.
    assert (after[2]["status"], after[2]["document_id"]) == ("existing", before[2]["document_id"])
    assert after[3]["status"] == "indexed" and after[3]["document_id"] not in {d for d, _ in documents}
    assert after[3]["signatures"] == before[3]["signatures"]
    assert sorted(n for _, n in _documents(url)) == [f"scan-{i}" for i in range(4)]
    with open_database(url) as database, database.session(write=False) as session:
        assert session.scalar(select(func.count(Document.id))) == 4

    # The folder belongs to its job: other cleaning is refused, not mixed in.
    with pytest.raises(BatchJobError, match=r"another job.*clean"):
        run(clean=False)


def test_manifests_are_checked_and_the_cli_reports_failed_documents(
    local_ray: None, scans: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BatchJobError, match="no PNG, JPEG, TIFF or PDF"):
        read_documents_manifest(empty)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,writer\nx.png,W1\n")
    with pytest.raises(BatchJobError, match="document column"):
        read_documents_manifest(bad)
    listed = tmp_path / "list.txt"
    elsewhere = tmp_path / "elsewhere" / "d.png"
    listed.write_text(f"{scans / 'd.png'}\nsub/c.pdf\n{elsewhere}\n")
    manifest = read_documents_manifest(listed, root=scans)
    # Absolute paths are named relative to the root when under it, else in full: no two collide.
    assert manifest.names == ("d.png", "sub/c.pdf", elsewhere.as_posix())
    assert manifest.paths[1] == str(scans / "sub" / "c.pdf")
    with pytest.raises(BatchJobError, match="no folder"):
        run_index_documents(listed, tmp_path / "job", database=str(tmp_path / "none" / "x.db"), root=scans)

    url = str(tmp_path / "cli.db")
    SignatureStore(open_database(url), Verifier(None, device="cpu")).db.dispose()  # an empty store
    both = tmp_path / "both.csv"
    both.write_text(f"document\n{scans / 'd.png'}\n{scans / 'f-broken.jpg'}\n")
    args = ["batch", "index-documents", "--documents", str(both), "--db", url, "--out", str(tmp_path / "cli")]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["job"] == "index-documents" and summary["outcomes"]["failed"] == 1
    assert summary["outcomes"]["indexed"] == 1 and summary["outcomes"]["signatures"] >= 1

"""Documents in the enrollment store: signatures found on synthetic pages, searched by writer."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from PIL import Image
from sqlalchemy import func, inspect, select, text

from inkproof.data.synthetic import render_genuine, writer_style
from inkproof.document.pages import InvalidDocumentError
from inkproof.document.synthetic import PageConfig, SyntheticPage, render_page
from inkproof.imaging import load_image
from inkproof.store import (
    Database,
    DocumentNameTakenError,
    InvalidDocumentInputError,
    SignatureInput,
    SignatureStore,
    StoreModelMismatchError,
    UnknownDocumentError,
    open_database,
)
from inkproof.store.documents import file_sha256
from inkproof.store.schema import Base, Document, DocumentSignature, Writer, utcnow
from inkproof.verifier import Verifier
from tests.store.conftest import pixel_model
from tests.store.test_kill import kill_during

# Synthetic pages: signers come from a pool of 500 writers, so a writer recurs across pages.
PAGE_CONFIG = PageConfig(width=800, height=1100, signatures=(1, 3))
SEARCH_PAGES = 8
# The document model's thresholds (a grid-12 pixel model, see ``doc_card``): across the queries of
# the search test the right documents' best scores have a median of 0.90, the others' 0.74.
DOC_THRESHOLDS = {"far_1": 0.93, "far_0_1": 0.97, "eer": 0.8}


@cache
def synthetic_page(index: int) -> SyntheticPage:
    return render_page(index, PAGE_CONFIG)


def page_signatures(page: SyntheticPage) -> list[tuple[tuple[int, int, int, int], str]]:
    return [(field.box, str(field.writer)) for field in page.fields if field.label == "signature"]


def crop(page: SyntheticPage, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return page.image[y0:y1, x0:x1].copy()


def page_inputs(page: SyntheticPage, page_index: int = 0) -> list[SignatureInput]:
    return [SignatureInput(page_index, box, 0.9, crop(page, box)) for box, _ in page_signatures(page)]


def page_sha(page: SyntheticPage) -> str:
    return file_sha256(page.image.tobytes())


@dataclass(frozen=True)
class Field:
    label: str
    box: tuple[int, int, int, int]
    confidence: float


@dataclass(frozen=True)
class Found:
    detections: tuple[Field, ...]


class TruthDetector:
    """A real detector for synthetic pages it was shown: it recognises the page (the closest one in
    pixels, so a PDF's JPEG round trip is fine) and returns its ground-truth boxes, every class."""

    name = "ground-truth"

    def __init__(self, pages: Sequence[SyntheticPage], extra: Sequence[Field] = ()) -> None:
        self.pages = list(pages)
        self.extra = tuple(extra)
        self.calls = 0

    def detect(self, page: np.ndarray) -> Found:
        self.calls += 1
        same = [p for p in self.pages if p.image.shape == page.shape]
        if not same:
            return Found(())
        distance = [float(np.abs(p.image.astype(np.int16) - page).mean()) for p in same]
        if min(distance) > 8.0:
            return Found(())
        best = same[int(np.argmin(distance))]
        return Found(tuple(Field(f.label, f.box, 0.9) for f in best.fields) + self.extra)


def save_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def make_doc_card(onnx_model: Path, folder: Path) -> Path:
    """A pixel-grid model coarse enough to tell the synthetic writers' page signatures apart:
    with 12x12 blocks (a 4x6 grid) the right document ranks first for 19 of the 30 search test
    queries (6x6 blocks: fewer), though skilled forgeries rank almost as high -- it compares
    shapes, it has learnt nothing."""
    card = pixel_model(onnx_model, folder, name="pixelgrid12", grid=12)
    values = json.loads(card.read_text())
    values["thresholds"].update(DOC_THRESHOLDS)
    card.write_text(json.dumps(values, indent=2))
    return card


@pytest.fixture(scope="session")
def doc_card(onnx_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_doc_card(onnx_model, tmp_path_factory.mktemp("doc-model"))


@pytest.fixture(scope="session")
def doc_verifier(doc_card: Path) -> Iterator[Verifier]:
    with Verifier(doc_card, device="cpu") as loaded:
        yield loaded


@pytest.fixture
def doc_store(database: Database, doc_verifier: Verifier) -> SignatureStore:
    return SignatureStore(database, doc_verifier)


def signature_rows(database: Database) -> list[tuple[int, str]]:
    with database.session(write=False) as session:
        rows = session.execute(select(DocumentSignature.document_id, DocumentSignature.model_tag)).all()
    return [(int(doc), str(tag)) for doc, tag in rows]


# --- schema ---------------------------------------------------------------------------------------


def test_the_documents_migration_goes_down_and_up(database: Database) -> None:
    from alembic import command

    from inkproof.store.database import alembic_config

    assert database.current_revision() == "0006"
    with database.session() as session:
        session.add(Writer(external_id="kept", display_name="", created_at=utcnow()))
    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")
    assert database.current_revision() == "0001"
    tables = set(inspect(database.engine).get_table_names())
    assert "writers" in tables and not {"documents", "document_signatures"} & tables
    with database.engine.connect() as connection:
        missing = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    added = {diff[1].name for diff in missing if diff[0] == "add_table"}
    indexed = {diff[1].table.name for diff in missing if diff[0] == "add_index"}
    # 0003 (writer_models), 0004 (five log columns), 0005 (reference_changes) and 0006 (the log's
    # idempotency key and its unique index) go down with it.
    assert added == {"documents", "document_signatures", "writer_models", "reference_changes"}
    assert indexed == {"document_signatures", "verification_logs"}
    assert len(missing) == 4 + 3 + 5 + 2  # four tables, the signatures' three indexes, 0004's and 0006's columns
    database.upgrade()
    assert database.current_revision() == "0006"
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with database.session(write=False) as session:
        assert session.scalars(select(Writer.external_id)).all() == ["kept"]


# --- storing, idempotence, deletion --------------------------------------------------------------


def test_index_get_search_and_delete(doc_store: SignatureStore, database: Database) -> None:
    documents = doc_store.documents
    pages = [synthetic_page(i) for i in range(3)]
    created = [documents.index_document(f"doc{i}.png", page_sha(p), 1, page_inputs(p)) for i, p in enumerate(pages)]
    assert all(item.created for item in created)
    first = created[0].document
    assert [s.box for s in first.signatures] == sorted(
        (box for box, _ in page_signatures(pages[0])), key=lambda b: (b[1], b[0])
    )
    assert {s.model_tag for s in first.signatures} == {doc_store.model_tag}
    # The stored crop is the crop, losslessly.
    box = first.signatures[0].box
    assert np.array_equal(load_image(documents.signature_image(first.signatures[0].id)), crop(pages[0], box))

    # The same file bytes again: the stored document, under its first name; nothing is added.
    again = documents.index_document("renamed.png", page_sha(pages[0]), 1, page_inputs(pages[0]))
    assert not again.created and again.document == first
    assert len(signature_rows(database)) == sum(len(page_signatures(p)) for p in pages)
    with pytest.raises(DocumentNameTakenError, match=r"doc1\.png"):
        documents.index_document("doc1.png", "f" * 64, 1, page_inputs(pages[1]))

    listed = documents.list_documents()
    assert [d.name for d in listed] == ["doc0.png", "doc1.png", "doc2.png"]
    assert [d.signatures for d in listed] == [len(page_signatures(p)) for p in pages]
    assert documents.get_document(first.id) == documents.get_document("doc0.png") == first
    assert documents.get_document(str(first.id)).name == "doc0.png"

    # A stored crop finds its own document first, on its page and box, at score 1: a match.
    target = created[1].document.signatures[-1]
    result = documents.search_documents(crop(pages[1], target.box), top=5)
    assert result.index == "exact" and result.signatures == len(signature_rows(database))
    best = result.matches[0]
    assert (best.name, best.page, best.box, best.signature_id) == ("doc1.png", 0, target.box, target.id)
    assert best.score == pytest.approx(1.0, abs=1e-5) and best.decision == "match"
    assert [m.rank for m in result.matches] == [1, 2, 3] and len({m.document_id for m in result.matches}) == 3
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    for match in result.matches:
        expected = "match" if match.score >= 0.93 else ("no_match" if match.score < 0.8 else "review")
        assert match.decision == expected
    assert json.loads(json.dumps(result.to_dict()))["matches"][0]["box"] == list(target.box)

    # Deleting the document row alone takes its signatures along (ON DELETE CASCADE).
    deleted = documents.delete_document("doc1.png")
    assert deleted.signatures == len(page_signatures(pages[1]))
    assert {doc for doc, _ in signature_rows(database)} == {created[0].document.id, created[2].document.id}
    with database.session() as session:
        session.execute(text("DELETE FROM documents WHERE name = 'doc2.png'"))
    assert {doc for doc, _ in signature_rows(database)} == {created[0].document.id}
    assert [m.name for m in documents.search_documents(crop(pages[1], target.box)).matches] == ["doc0.png"]
    with pytest.raises(UnknownDocumentError):
        documents.delete_document("doc1.png")
    with pytest.raises(UnknownDocumentError):
        documents.get_document(10_000)


def test_bad_input_is_refused_and_writes_nothing(doc_store: SignatureStore, database: Database) -> None:
    documents = doc_store.documents
    page = synthetic_page(0)
    good = page_inputs(page)
    image = good[0].image
    sha = page_sha(page)

    def index(signatures: list[Any], digest: str = sha, pages: int = 1, name: str = "a") -> object:
        return documents.index_document(name, digest, pages, signatures)

    bad_inputs: list[tuple[str, Callable[[], object]]] = [
        ("page must be", lambda: index([*good, (1, (0, 0, 5, 5), 0.5, image)])),
        ("empty or has negative", lambda: index([(0, (9, 0, 5, 5), 0.5, image)])),
        ("four integers", lambda: index([(0, (1, 2, 3), 0.5, image)])),
        ("confidence", lambda: index([(0, (0, 0, 5, 5), 1.5, image)])),
        ("not an image", lambda: index([(0, (0, 0, 5, 5), 0.5, b"junk")])),
        ("64 hex digits", lambda: index(list(good), digest="xyz")),
        ("pages must be", lambda: index(list(good), pages=0)),
        ("needs a name", lambda: index(list(good), name="  ")),
    ]
    for message, call in bad_inputs:
        with pytest.raises(InvalidDocumentInputError, match=message):
            call()
    assert documents.list_documents() == [] and signature_rows(database) == []
    # A document without signatures is a document (indexing it again finds it).
    empty = documents.index_document("blank.png", "0" * 64, 2, [])
    assert empty.created and empty.document.signatures == ()
    assert not documents.index_document("blank.png", "0" * 64, 2, []).created
    assert documents.search_documents(good[0].image).matches == ()


# --- search quality ----------------------------------------------------------------------------


def test_search_ranks_the_documents_a_writer_signed_first(doc_verifier: Verifier, tmp_path: Path) -> None:
    """Index 8 synthetic pages; query with separately rendered genuine signatures of each signer
    (:func:`inkproof.data.synthetic.render_genuine`, not crops of the pages): the right document
    must come first far more often than chance, and rank far better on average."""
    store = SignatureStore(open_database(tmp_path / "docs.db"), doc_verifier)
    signed: dict[str, set[str]] = {}
    for i in range(SEARCH_PAGES):
        page = synthetic_page(i)
        store.documents.index_document(f"page{i}", page_sha(page), 1, page_inputs(page))
        for _, writer in page_signatures(page):
            signed.setdefault(writer, set()).add(f"page{i}")
    ranks: list[int] = []
    chance: list[float] = []
    for writer, names in sorted(signed.items()):
        for sample in range(2):
            query = render_genuine(writer_style(PAGE_CONFIG.seed, int(writer[1:])), sample)
            matches = store.documents.search_documents(query, top=SEARCH_PAGES).matches
            assert len(matches) == SEARCH_PAGES
            ranked = [m.name for m in matches]
            ranks.append(min(ranked.index(name) for name in names) + 1)
            chance.append((SEARCH_PAGES + 1) / (len(names) + 1))  # expected best rank of a random order
    assert len(ranks) == 30
    # Measured: first for 19 of 30 queries, mean rank 1.7. Every signer here signed one of the 8
    # pages, so a random order puts the right one first 1 time in 8, at mean rank 4.5.
    assert sum(rank == 1 for rank in ranks) >= 15
    assert np.mean(ranks) <= 2.5 < np.mean(chance) - 1.5


def test_exact_and_index_search_agree(doc_verifier: Verifier, synthetic_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    database = open_database(tmp_path / "many.db")
    store = SignatureStore(database, doc_verifier, index_threshold=100)
    # 100 documents of 2 signatures: each synthetic specimen whole and without its left tenth.
    images = [load_image(path) for path in sorted(synthetic_root.glob("*/*/*.png"))]
    assert len(images) == 100
    for d, image in enumerate(images):
        width = image.shape[1]
        inputs = [(0, (0, 0, width, 50), 1.0, image), (0, (width // 10, 0, width, 50), 1.0, image[:, width // 10 :])]
        store.documents.index_document(f"doc{d:03d}", file_sha256(f"doc{d}".encode()), 1, inputs, identify=False)
    for q in range(6):
        image = images[q * 17]
        query = image[:, : image.shape[1] * 9 // 10]  # without its right tenth: close to, unlike any stored one
        auto = store.documents.search_documents(query, top=10)
        exact = store.documents.search_documents(query, top=10, force="exact")
        assert auto.index == "approximate" and exact.index == "exact" and auto.signatures == 200
        assert [m.name for m in auto.matches] == [m.name for m in exact.matches]
        assert [m.signature_id for m in auto.matches] == [m.signature_id for m in exact.matches]
        assert np.allclose([m.score for m in auto.matches], [m.score for m in exact.matches], atol=1e-5)
    small = SignatureStore(database, doc_verifier)  # default threshold: 200 signatures are searched exactly
    assert small.documents.search_documents(query).index == "exact"


# --- models and writers --------------------------------------------------------------------------


def test_another_model_is_refused_until_reindexed(
    database: Database, doc_verifier: Verifier, verifier: Verifier
) -> None:
    old = SignatureStore(database, doc_verifier)
    pages = [synthetic_page(i) for i in range(2)]
    writer_box, _ = page_signatures(pages[0])[0]
    old.enroll("W1", [crop(pages[0], writer_box)], quality="warn")
    for i, page in enumerate(pages):
        old.documents.index_document(f"doc{i}", page_sha(page), 1, page_inputs(page))
    count = len(signature_rows(database))
    query = crop(pages[1], page_signatures(pages[1])[0][0])

    new = SignatureStore(database, verifier)
    with pytest.raises(StoreModelMismatchError, match="inkproof store reindex"):
        new.documents.search_documents(query)
    with pytest.raises(StoreModelMismatchError, match="inkproof store reindex"):
        new.documents.index_document("doc9", "9" * 64, 1, page_inputs(synthetic_page(2)))
    assert new.documents.lookup(page_sha(pages[0])) is not None  # reading is fine
    assert len(signature_rows(database)) == count

    assert new.reindex() == 1 + count  # the reference and every document signature
    assert {tag for _, tag in signature_rows(database)} == {new.model_tag}
    detail = new.documents.get_document("doc0")
    expected = verifier.embed_many([load_image(new.documents.signature_image(s.id)) for s in detail.signatures])
    with database.session(write=False) as session:
        stored = dict(session.execute(select(DocumentSignature.id, DocumentSignature.embedding)).all())
    for signature, vector in zip(detail.signatures, expected, strict=True):
        assert np.allclose(np.frombuffer(stored[signature.id], dtype="<f4"), vector, atol=1e-6)
    # Identified again with the new model: the enrolled writer is the only candidate.
    assert {s.writer_external_id for s in detail.signatures} == {"W1"}
    # (The tiny trained model maps every signature to nearly one embedding: only the scale is checked.)
    matches = new.documents.search_documents(query).matches
    assert {m.name for m in matches} == {"doc0", "doc1"} and matches[0].score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(StoreModelMismatchError):
        old.documents.search_documents(query)


def test_documents_claim_the_store_for_their_model(
    database: Database, doc_verifier: Verifier, verifier: Verifier
) -> None:
    SignatureStore(database, doc_verifier).documents.index_document(
        "doc0", page_sha(synthetic_page(0)), 1, page_inputs(synthetic_page(0))
    )
    with pytest.raises(StoreModelMismatchError):
        SignatureStore(database, verifier).enroll("W1", [page_inputs(synthetic_page(0))[0].image], quality="warn")


def test_signatures_are_identified_against_enrolled_writers(doc_store: SignatureStore) -> None:
    documents = doc_store.documents
    page = synthetic_page(0)
    (box_a, _), (box_b, _) = page_signatures(page)[:2]
    doc_store.enroll("alice", [crop(page, box_a)], quality="warn")
    doc_store.enroll("bob", [crop(page, box_b)], quality="warn")
    detail = documents.index_document("doc0", page_sha(page), 1, page_inputs(page)).document
    by_box = {s.box: s for s in detail.signatures}
    assert by_box[box_a].writer_external_id == "alice" and by_box[box_b].writer_external_id == "bob"
    assert by_box[box_a].writer_score == pytest.approx(1.0, abs=1e-5)
    match = documents.search_documents(crop(page, box_b)).matches[0]
    assert match.box == box_b and match.writer_external_id == "bob"

    doc_store.delete_writer("alice")  # ON DELETE SET NULL: the signature stays, unidentified...
    after = {s.box: s for s in documents.get_document("doc0").signatures}
    assert after[box_a].writer_external_id is None and after[box_a].writer_score is None
    assert documents.identify_signatures() == len(detail.signatures)  # ...until identified again
    assert {s.writer_external_id for s in documents.get_document("doc0").signatures} == {"bob"}


# --- files, folders and detectors ---------------------------------------------------------------


class _DarkInk:
    """A cleaner stand-in: keeps pixels darker than mid-gray, paper elsewhere; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def clean(self, image: np.ndarray) -> Any:
        self.calls += 1
        gray = np.asarray(image, dtype=np.uint8)

        @dataclass
        class Cleaned:
            image: np.ndarray

        return Cleaned(np.where(gray < 128, gray, np.uint8(255)).astype(np.uint8))


def test_crops_and_queries_are_cleaned_and_judged_at_crop_thresholds(doc_store: SignatureStore, tmp_path: Path) -> None:
    documents = doc_store.documents
    pages = [synthetic_page(i) for i in range(2)]
    folder = tmp_path / "scans"
    for i, page in enumerate(pages):
        save_png(folder / f"p{i}.png", page.image)
    cleaner = _DarkInk()
    documents.index_folder(folder, TruthDetector(pages), cleaner=cleaner)
    signatures = sum(len(page_signatures(p)) for p in pages)
    assert cleaner.calls == signatures
    stored = documents.get_document("p1.png").signatures[0]
    raw = crop(pages[1], stored.box)
    assert np.array_equal(load_image(documents.signature_image(stored.id)), np.where(raw < 128, raw, 255))

    # This store's model has no crop calibration: the model's thresholds decide.
    plain = documents.search_documents(raw, cleaner=cleaner)
    assert cleaner.calls == signatures + 1
    assert plain.threshold_source.startswith("global:") and plain.matches[0].signature_id == stored.id
    # A calibration for this model is used; one for another model is not; custom thresholds win.
    calibration = tmp_path / "document-search.json"
    calibration.write_text(json.dumps({"model_tag": doc_store.model_tag, "thresholds": {"far_1": 0.6, "eer": 0.3}}))
    documents.crop_calibration = calibration
    found = documents.search_documents(raw, cleaner=cleaner)
    assert (found.accept_threshold, found.reject_threshold, found.threshold_source) == (
        0.6,
        0.3,
        "document-crops:far_1",
    )
    for match in found.matches:
        assert match.decision == ("match" if match.score >= 0.6 else ("no_match" if match.score < 0.3 else "review"))
    calibration.write_text(json.dumps({"model_tag": "another:000000000000", "thresholds": {"far_1": 0.6, "eer": 0.3}}))
    assert documents.search_documents(raw).threshold_source.startswith("global:")
    calibration.write_text(json.dumps({"model_tag": doc_store.model_tag, "thresholds": {"far_1": 0.6, "eer": 0.3}}))
    doc_store.custom_accept = 0.95
    assert documents.search_documents(raw).threshold_source == "custom"


def test_index_a_folder_with_a_detector(doc_store: SignatureStore, tmp_path: Path) -> None:
    pages = [synthetic_page(i) for i in range(4)]
    folder = tmp_path / "scans"
    save_png(folder / "a.png", pages[0].image)
    Image.fromarray(pages[1].image).save(
        folder / "b.tif", save_all=True, append_images=[Image.fromarray(pages[2].image)]
    )
    (folder / "sub").mkdir()
    Image.fromarray(pages[3].image).save(folder / "sub" / "c.pdf", resolution=150.0)  # JPEG inside: not exact
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not a document")
    # A box partly off the page is clipped to it; one wholly off it is dropped.
    off_page = (Field("signature", (790, 1090, 900, 1200), 0.4), Field("signature", (900, 0, 950, 40), 0.4))
    detector = TruthDetector(pages, extra=off_page)
    seen: list[tuple[int, int, str]] = []
    result = doc_store.documents.index_folder(folder, detector, progress=lambda *step: seen.append(step))
    assert [(e.source, e.status) for e in result.entries] == [
        ("a.png", "indexed"),
        ("b.tif", "indexed"),
        ("broken.jpg", "failed"),
        ("sub/c.pdf", "indexed"),
    ]
    assert seen == [(1, 4, "a.png"), (2, 4, "b.tif"), (3, 4, "broken.jpg"), (4, 4, "sub/c.pdf")]
    assert "broken.jpg" in str(result.entries[2].error)
    assert result.to_dict()["indexed"] == 3 and result.to_dict()["failed"] == 1

    tif = doc_store.documents.get_document("b.tif")
    assert tif.pages == 2 and tif.detector == "ground-truth"
    expected = sorted(
        [(0, box) for box, _ in page_signatures(pages[1])]
        + [(1, box) for box, _ in page_signatures(pages[2])]
        + [(0, (790, 1090, 800, 1100)), (1, (790, 1090, 800, 1100))]
    )
    assert sorted((s.page, s.box) for s in tif.signatures) == expected  # signatures only, clipped
    pdf = doc_store.documents.get_document("sub/c.pdf")
    assert sorted(s.box for s in pdf.signatures if s.confidence > 0.5) == sorted(
        b for b, _ in page_signatures(pages[3])
    )
    # A signature cut from the TIFF's second page finds it there.
    box, _ = page_signatures(pages[2])[0]
    best = doc_store.documents.search_documents(crop(pages[2], box)).matches[0]
    assert (best.name, best.page, best.box) == ("b.tif", 1, box)

    # Again: known bytes are recognised without running the detector.
    calls = detector.calls
    again = doc_store.documents.index_folder(folder, detector)
    assert [e.status for e in again.entries] == ["existing", "existing", "failed", "existing"]
    assert detector.calls == calls
    # Another file under a taken name is refused; a plain function is a detector too.
    save_png(folder / "a.png", pages[2].image)

    def only_truth(image: np.ndarray) -> tuple[Field, ...]:
        return TruthDetector(pages).detect(image).detections

    changed = doc_store.documents.index_folder(folder, only_truth)
    assert changed.entries[0].status == "failed" and "delete that document first" in str(changed.entries[0].error)
    moved = doc_store.documents.index_file(folder / "a.png", only_truth, name="a-v2.png")
    assert moved.created and moved.document.detector == "only_truth"
    with pytest.raises(InvalidDocumentError, match="not a folder"):
        doc_store.documents.index_folder(folder / "a.png", detector)


# --- killed mid-way --------------------------------------------------------------------------------

SIGNATURES = 40

# Indexes documents D<run>_0, D<run>_1, ... of 40 signatures each until killed. After each flush it
# reports how many signatures the flush wrote and dawdles, so that kills land inside a document's
# transaction (rows written, not committed) as well as elsewhere.
INDEXER = """
import hashlib, sys, time
from sqlalchemy import event
from sqlalchemy.orm import Session
from inkproof.imaging import load_image
from inkproof.store import SignatureInput, SignatureStore, open_database
from inkproof.store.schema import DocumentSignature
from inkproof.verifier import Verifier

database, model, run, count, *paths = sys.argv[1:]
store = SignatureStore(open_database(database), Verifier(model, device="cpu", threads=1))


def after_flush(session, context):
    written = sum(isinstance(item, DocumentSignature) for item in session.new)
    print("flushed", written, flush=True)
    time.sleep(0.3 if written else 0.05)


event.listen(Session, "after_flush", after_flush)
crops = [load_image(path) for path in paths]
inputs = [SignatureInput(i % 3, (i, i, i + 50, i + 20), 0.5, crops[i % len(crops)]) for i in range(int(count))]
print("started", flush=True)
for k in range(1000):
    name = f"D{run}_{k}"
    store.documents.index_document(name, hashlib.sha256(name.encode()).hexdigest(), 3, inputs, identify=False)
    print("committed", name, flush=True)
"""


def test_a_killed_indexer_leaves_no_partial_document(doc_card: Path, synthetic_root: Path, tmp_path: Path) -> None:
    database = tmp_path / "kill.db"
    open_database(database).dispose()
    images = [str(p) for p in sorted((synthetic_root / "W002" / "genuine").glob("*.png"))]
    rng = random.Random(20250201)
    committed: set[str] = set()
    for run in range(2):  # a kill inside the first document's transaction, then one at random
        args = [str(database), str(doc_card), str(run), str(SIGNATURES), *images]
        pause = 0.0 if run == 0 else rng.uniform(0.3, 2.0)
        committed |= kill_during(INDEXER, args, inside=SIGNATURES if run == 0 else None, pause=pause)
        if run == 0:
            assert not committed
        with open_database(database) as db, db.session(write=False) as session:
            assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            counts = dict(
                session.execute(
                    select(Document.name, func.count(DocumentSignature.id))
                    .outerjoin(DocumentSignature, DocumentSignature.document_id == Document.id)
                    .group_by(Document.name)
                ).all()
            )
        assert all(n == SIGNATURES for n in counts.values()), counts
        assert committed <= set(counts) and len(set(counts) - committed) <= 1
        if run == 0:
            assert "D0_0" not in counts

"""The identification index persists: saved beside the store, reloaded after a restart, kept in
step with other processes through the change counter, rebuilt when its file is missing, broken or
stale, and giving the same answers as a brute-force search."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from inkproof.imaging import image_digest, load_image
from inkproof.store import SignatureStore, open_database
from inkproof.store.bulk import insert_references
from inkproof.store.database import Database
from inkproof.store.helpers import META_EMBEDDING_DIM, META_MODEL_TAG
from inkproof.store.schema import Reference, StoreMeta, Writer, utcnow
from inkproof.verifier import Verifier
from tests.helpers import draw_scribble
from tests.store.test_identify_scale import PresetEmbeddings, normalised

WRITERS = 300


class Embeddings(PresetEmbeddings):
    """Preset vectors for the test's queries; the real model for anything else (enrollment)."""

    def embed_many(self, sources: list[Any]) -> np.ndarray:
        rows = []
        for source in sources:
            preset = self.vectors.get(image_digest(load_image(source)))
            rows.append(preset if preset is not None else self._verifier.embed_many([source])[0])
        return np.stack(rows)

    def embed_query(self, gray: np.ndarray, description: str = "image") -> np.ndarray:
        preset = self.vectors.get(image_digest(gray))
        return preset if preset is not None else self._verifier.embed_query(gray, description)


def _fill(database: Database, store: SignatureStore, rng: np.random.Generator, *, changes: bool = True) -> tuple:
    """WRITERS writers with two random references each, written through the schema (and, as the
    store's enrollment does, numbered in the change log unless ``changes`` is false)."""
    dim = store.card.embedding_dim
    embeddings = normalised(rng.standard_normal((2 * WRITERS, dim)))
    owners = np.repeat(np.arange(WRITERS), 2)
    with database.session() as session:
        session.add_all(
            [StoreMeta(key=META_MODEL_TAG, value=store.model_tag), StoreMeta(key=META_EMBEDDING_DIM, value=str(dim))]
        )
        external_ids = [f"R{i:04d}" for i in range(WRITERS)]
        insert_references(
            session,
            external_ids,
            owners,
            embeddings,
            model_tag=store.model_tag,
            preprocess_version="1",
            changes=changes,
        )
    return embeddings, owners


def _query(fake: PresetEmbeddings, vector: np.ndarray, seed: int) -> np.ndarray:
    image = draw_scribble(seed=seed)
    fake.vectors[image_digest(image)] = normalised(vector[None, :])[0]
    return image


def _brute_force(embeddings: np.ndarray, owners: np.ndarray, vector: np.ndarray, top: int) -> list[str]:
    scores = embeddings @ normalised(vector[None, :])[0]
    best = np.full(WRITERS, -np.inf)
    np.maximum.at(best, owners, scores)
    return [f"R{i:04d}" for i in np.argsort(-best)[:top]]


def _open(url: str, fake: PresetEmbeddings, folder: Path, **kwargs: Any) -> SignatureStore:
    return SignatureStore(open_database(url), cast(Any, fake), index_dir=folder, **kwargs)


def test_index_survives_a_restart_and_follows_other_processes(
    database_url: str, verifier: Verifier, tmp_path: Path, signatures: Any
) -> None:
    fake = Embeddings(verifier)
    folder = tmp_path / "indexes"
    first = _open(database_url, fake, folder)
    rng = np.random.default_rng(5)
    embeddings, owners = _fill(first.db, first, rng)

    built = first.load_index()
    assert built is not None and built.source == "database" and built.references == 2 * WRITERS
    assert built.kind == "exact" and built.path is not None and Path(built.path).is_file()
    for seed in range(6):
        vector = rng.standard_normal(embeddings.shape[1])
        found = first.identify(_query(fake, vector, seed), top=5)
        assert [c.external_id for c in found.candidates] == _brute_force(embeddings, owners, vector, 5)

    # A restart reads the file: nothing is rebuilt.
    second = _open(database_url, fake, folder)
    status = second.load_index()
    assert status is not None and (status.source, status.references, status.counter) == (
        "file",
        2 * WRITERS,
        built.counter,
    )

    # Another process enrolls and deletes: this one applies only those changes.
    fake.vectors.clear()
    enrolled = first.enroll("newcomer", [str(p) for p in signatures("W001")[:3]])
    added = [o.reference_id for o in enrolled.images if o.accepted]
    first.delete_writer("R0000")
    with second.db.session(write=False) as session:
        stored = {
            r.id: np.frombuffer(r.embedding, "<f4") for r in session.query(Reference).filter(Reference.id.in_(added))
        }
    status = second.load_index()
    assert status is not None and status.source == "changes" and status.references == 2 * WRITERS - 2 + len(added)
    probe = stored[added[0]]
    found = second.identify(_query(fake, probe, 99), top=3)
    assert found.candidates[0].external_id == "newcomer" and found.candidates[0].reference_id == added[0]
    near_gone = embeddings[0]
    found = second.identify(_query(fake, near_gone, 98), top=3)
    assert "R0000" not in [c.external_id for c in found.candidates]

    # Saved on request; a third process loads the file with every change in it.
    assert second.save_index()
    third = _open(database_url, fake, folder)
    status = third.load_index()
    assert status is not None and status.source == "file" and status.references == 2 * WRITERS - 2 + len(added)
    for store in (first, second, third):
        store.db.dispose()


def test_missing_broken_stale_or_bypassed_files_are_rebuilt(verifier: Verifier, tmp_path: Path) -> None:
    fake = Embeddings(verifier)
    url = str(tmp_path / "store.db")
    store = SignatureStore(open_database(url), cast(Any, fake))
    rng = np.random.default_rng(7)
    _fill(store.db, store, rng)
    status = store.load_index()
    assert status is not None and status.source == "database"
    path = store.index_path
    assert path is not None and path.parent == tmp_path and path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600  # embeddings are biometric templates

    def reopen() -> str:
        again = SignatureStore(open_database(url), cast(Any, fake))
        result = again.load_index()
        again.db.dispose()
        assert result is not None
        return result.source

    assert reopen() == "file"
    path.unlink()
    assert reopen() == "database" and path.is_file()
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a crash without the atomic rename
    assert reopen() == "database"
    # Rows written around the store (no change numbers): the file no longer matches the table.
    with store.db.session() as session:
        writer = session.query(Writer).first()
        assert writer is not None
        session.add(
            Reference(
                writer_id=writer.id,
                image_sha256="f" * 64,
                image_png=b"",
                embedding=np.ones(store.card.embedding_dim, "<f4").tobytes(),
                embedding_dim=store.card.embedding_dim,
                model_tag=store.model_tag,
                preprocess_version="1",
                quality_score=1.0,
                created_at=utcnow(),
            )
        )
    assert reopen() == "database"
    store.db.dispose()


def test_approximate_index_is_saved_with_its_graph(verifier: Verifier, tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    fake = Embeddings(verifier)
    url = str(tmp_path / "big.db")
    store = SignatureStore(open_database(url), cast(Any, fake), index_threshold=100)
    rng = np.random.default_rng(3)
    embeddings, owners = _fill(store.db, store, rng)
    status = store.load_index()
    assert status is not None and status.kind == "approximate"
    again = SignatureStore(open_database(url), cast(Any, fake), index_threshold=100)
    status = again.load_index()
    assert status is not None and (status.kind, status.source) == ("approximate", "file")
    for seed in range(8):
        vector = embeddings[rng.integers(len(embeddings))] + 0.3 * rng.standard_normal(embeddings.shape[1])
        found = again.identify(_query(fake, vector, 200 + seed), top=3)
        assert found.index == "approximate"
        assert [c.external_id for c in found.candidates] == _brute_force(embeddings, owners, vector, 3)
    # Deleting through the store masks the rows in the graph.
    again.delete_writer("R0001")
    found = again.identify(_query(fake, embeddings[2], 300), top=3)
    assert "R0001" not in [c.external_id for c in found.candidates]
    for s in (store, again):
        s.db.dispose()


def test_periodic_saves_run_off_the_request_thread(verifier: Verifier, tmp_path: Path, monkeypatch: Any) -> None:
    from inkproof.store import identification
    from inkproof.store.persistent_index import ReferenceIndex

    fake = Embeddings(verifier)
    url = str(tmp_path / "store.db")
    store = _open(url, fake, tmp_path / "indexes")
    embeddings, _ = _fill(store.db, store, np.random.default_rng(3))
    store.load_index()  # built from the database and saved before it returns
    savers: list[str] = []
    save = ReferenceIndex.save

    def recorded(index: ReferenceIndex, path: Path) -> None:
        savers.append(threading.current_thread().name)
        save(index, path)

    monkeypatch.setattr(ReferenceIndex, "save", recorded)
    monkeypatch.setattr(identification, "SAVE_INTERVAL_S", 0.0)
    store.delete_writer("R0000")
    store.identify(_query(fake, embeddings[5], 41), top=3)  # catches up the delete: a save is due
    assert store._saver is not None
    store._saver.join(timeout=30)
    assert savers == ["inkproof-index-save"]
    restarted = _open(url, fake, tmp_path / "indexes")
    status = restarted.load_index()
    assert status is not None and status.source == "file" and status.references == 2 * WRITERS - 2

    # A save that cannot write keeps the changes waiting for the next one.
    index = store._index
    assert index is not None
    index.dirty = 3
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with pytest.raises(FileExistsError):
        save(index, blocked / "index.npz")
    assert index.dirty == 3
    for opened in (store, restarted):
        opened.db.dispose()

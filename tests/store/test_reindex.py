"""Model changes: a store never mixes embeddings of two models; reindexing moves it to a new one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from inkproof.imaging import load_image
from inkproof.store import (
    Database,
    ReindexInProgressError,
    SignatureStore,
    StoreModelMismatchError,
)
from inkproof.store.helpers import META_MODEL_TAG, META_REINDEX
from inkproof.store.schema import Reference, StoreMeta
from inkproof.verifier import Verifier

Signatures = Callable[[str, str], list[Path]]


def stored_embeddings(database: Database) -> dict[int, tuple[np.ndarray, str]]:
    with database.session(write=False) as session:
        rows = session.execute(select(Reference.id, Reference.embedding, Reference.model_tag)).all()
    return {ref_id: (np.frombuffer(blob, dtype="<f4"), tag) for ref_id, blob, tag in rows}


def refuses_everything(store: SignatureStore, image: Path, error: type[Exception]) -> None:
    with pytest.raises(error, match="inkproof store reindex"):
        store.verify_claim("W001", image)
    with pytest.raises(error, match="inkproof store reindex"):
        store.identify(image)
    with pytest.raises(error, match="inkproof store reindex"):
        store.enroll("W009", [image])


def test_a_new_model_is_refused_until_reindexed(
    database: Database, pixel_verifier: Verifier, verifier: Verifier, signatures: Signatures
) -> None:
    old = SignatureStore(database, pixel_verifier)
    for writer in ("W001", "W002", "W003"):
        old.enroll(writer, signatures(writer, "genuine")[:3])
    query = signatures("W001", "genuine")[4]
    before = old.verify_claim("W001", query)

    # Another model (other weights, other embedding size): refused, and nothing was written.
    new = SignatureStore(database, verifier)
    assert new.model_tag != old.model_tag
    refuses_everything(new, query, StoreModelMismatchError)
    info = new.info()
    assert not info.consistent and info.stored_model_tag == old.model_tag and info.references == 9

    seen: list[tuple[int, int]] = []
    assert new.reindex(progress=lambda done, total: seen.append((done, total)), batch_size=4) == 9
    assert seen == [(4, 9), (8, 9), (9, 9)]
    # Every stored image now carries the new model's embedding of exactly that image.
    embeddings = stored_embeddings(database)
    ids = sorted(embeddings)
    images = [load_image(new.reference_image(ref_id)) for ref_id in ids]
    expected = verifier.embed_many(images)
    for ref_id, vector in zip(ids, expected, strict=True):
        assert embeddings[ref_id][1] == new.model_tag
        assert np.allclose(embeddings[ref_id][0], vector, atol=1e-6)
    assert new.info().consistent and new.verify_claim("W001", query).model_tag == new.model_tag
    assert new.identify(query).references == 9
    refuses_everything(old, query, StoreModelMismatchError)  # now the old model is the stranger

    # And back: the old model's scores are what they were before the round trip.
    assert old.reindex() == 9
    again = old.verify_claim("W001", query)
    assert again.fused_score == pytest.approx(before.fused_score, abs=1e-6)
    assert old.identify(query).candidates[0].external_id == "W001"


def test_a_foreign_model_tag_in_the_meta_is_refused(
    database: Database, pixel_verifier: Verifier, signatures: Signatures
) -> None:
    store = SignatureStore(database, pixel_verifier)
    store.enroll("W001", signatures("W001", "genuine")[:2])
    with database.session() as session:
        session.execute(update(StoreMeta).where(StoreMeta.key == META_MODEL_TAG).values(value="other:123456789abc"))
    refuses_everything(store, signatures("W001", "genuine")[3], StoreModelMismatchError)
    with pytest.raises(StoreModelMismatchError) as error:
        store.verify_claim("W001", signatures("W001", "genuine")[3])
    assert error.value.stored == "other:123456789abc" and error.value.current == store.model_tag
    assert store.reindex() == 2
    assert store.verify_claim("W001", signatures("W001", "genuine")[3]).reference_scores


def test_an_interrupted_reindex_blocks_the_store_until_finished(
    database: Database, pixel_verifier: Verifier, verifier: Verifier, signatures: Signatures
) -> None:
    old = SignatureStore(database, pixel_verifier)
    for writer in ("W004", "W005"):
        old.enroll(writer, signatures(writer, "genuine")[:3])
    new = SignatureStore(database, verifier)

    def crash(done: int, total: int) -> None:
        raise KeyboardInterrupt("killed half-way")

    with pytest.raises(KeyboardInterrupt):
        new.reindex(progress=crash, batch_size=2)
    tags = [tag for _, tag in stored_embeddings(database).values()]
    assert tags.count(new.model_tag) == 2 and tags.count(old.model_tag) == 4  # half done
    query = signatures("W001", "genuine")[0]
    # Half-reindexed: neither model may use it, and it says so.
    refuses_everything(new, query, ReindexInProgressError)
    refuses_everything(old, query, ReindexInProgressError)
    assert new.info().reindex_in_progress and not new.info().consistent
    with database.session(write=False) as session:
        assert session.get(StoreMeta, META_MODEL_TAG).value == old.model_tag  # type: ignore[union-attr]
        assert session.get(StoreMeta, META_REINDEX) is not None

    assert new.reindex() == 6
    assert new.info().consistent
    assert {tag for _, tag in stored_embeddings(database).values()} == {new.model_tag}
    assert new.verify_claim("W004", query).model_tag == new.model_tag

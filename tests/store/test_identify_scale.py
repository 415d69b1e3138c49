"""Identification over a 2,000-writer store: the approximate index finds the exact answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from inkproof.imaging import ImageSource, image_digest, load_image
from inkproof.store import SignatureStore, open_database
from inkproof.store.bulk import insert_references
from inkproof.store.helpers import META_EMBEDDING_DIM, META_MODEL_TAG
from inkproof.store.schema import StoreMeta
from inkproof.verifier import Verifier
from tests.helpers import draw_scribble

WRITERS = 2000


class PresetEmbeddings:
    """The real verifier, except that query images embed to vectors chosen by the test (looked up
    by the image's digest). Scores still come from the model's ONNX head."""

    def __init__(self, verifier: Verifier) -> None:
        self.card = verifier.card
        self.engine = verifier.engine
        self._verifier = verifier
        self.vectors: dict[str, np.ndarray] = {}

    def embed_many(self, sources: list[ImageSource]) -> np.ndarray:
        return np.stack([self.vectors[image_digest(load_image(source))] for source in sources])

    def embed_query(self, gray: np.ndarray, description: str = "image") -> np.ndarray:
        return self.vectors[image_digest(gray)]

    def score_embeddings(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._verifier.score_embeddings(a, b)


def normalised(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def test_approximate_identification_matches_exact(verifier: Verifier, tmp_path: Path) -> None:
    fake = PresetEmbeddings(verifier)
    database = open_database(tmp_path / "big.db")
    store = SignatureStore(database, cast(Any, fake), index_threshold=3000)
    rng = np.random.default_rng(11)
    dim = verifier.card.embedding_dim
    per_writer = rng.integers(1, 3, WRITERS)  # one or two references each
    embeddings = normalised(rng.standard_normal((int(per_writer.sum()), dim)))
    owners = np.repeat(np.arange(WRITERS), per_writer)

    with database.session() as session:
        session.add_all(
            [
                StoreMeta(key=META_MODEL_TAG, value=store.model_tag),
                StoreMeta(key=META_EMBEDDING_DIM, value=str(dim)),
            ]
        )
        external_ids = [f"R{i:05d}" for i in range(WRITERS)]
        insert_references(session, external_ids, owners, embeddings, model_tag=store.model_tag, preprocess_version="1")

    queries = []
    for i in range(16):
        image = draw_scribble(seed=1000 + i)
        near = embeddings[rng.integers(len(embeddings))] + 0.4 * rng.standard_normal(dim)
        fake.vectors[image_digest(image)] = normalised(near if i % 2 else rng.standard_normal(dim))
        queries.append(image)

    start = time.perf_counter()
    for query in queries:
        exact = store.identify(query, top=5, force="exact")
        approximate = store.identify(query, top=5, force="approximate")
        auto = store.identify(query, top=5)
        assert (exact.index, approximate.index, auto.index) == ("exact", "approximate", "exact")
        assert exact.references == approximate.references == len(embeddings)
        assert [c.external_id for c in approximate.candidates] == [c.external_id for c in exact.candidates]
        assert [c.reference_id for c in approximate.candidates] == [c.reference_id for c in exact.candidates]
        assert [c.score for c in approximate.candidates] == pytest.approx([c.score for c in exact.candidates])
        # Ground truth by brute force: writers ranked by their best reference's cosine.
        scores = embeddings @ fake.vectors[image_digest(query)]
        best = np.full(WRITERS, -np.inf)
        np.maximum.at(best, owners, scores)
        assert [c.external_id for c in exact.candidates] == [f"R{i:05d}" for i in np.argsort(-best)[:5]]
    assert time.perf_counter() - start < 20

    # Above the store's threshold the approximate index is picked by itself.
    store.index_threshold = 1000
    assert store.identify(queries[0]).index == "approximate"
    database.dispose()

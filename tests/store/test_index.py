from __future__ import annotations

import threading

import numpy as np
import pytest

from inkproof.store.index import (
    ApproximateIndex,
    EmbeddingIndex,
    ExactIndex,
    build_index,
)


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_index_matches_brute_force() -> None:
    data = unit_vectors(500) * np.random.default_rng(1).uniform(0.5, 2.0, (500, 1)).astype(np.float32)
    query = np.random.default_rng(2).standard_normal(32).astype(np.float32)
    cosine = ExactIndex(data, "cosine")
    expected = (data / np.linalg.norm(data, axis=1, keepdims=True)) @ (query / np.linalg.norm(query))
    hits = cosine.search(query, 10)
    assert [row for row, _ in hits] == list(np.argsort(-expected)[:10])
    assert [score for _, score in hits] == pytest.approx(np.sort(expected)[::-1][:10], abs=1e-5)

    euclidean = ExactIndex(data, "euclidean")
    distances = np.linalg.norm(data - query, axis=1)
    hits = euclidean.search(query, 5)
    assert [row for row, _ in hits] == list(np.argsort(distances)[:5])
    assert [score for _, score in hits] == pytest.approx(-np.sort(distances)[:5], abs=1e-5)


def test_approximate_index_agrees_with_exact_search() -> None:
    data = unit_vectors(2000, seed=3)
    exact = build_index(data, "cosine", force="exact")
    approximate = build_index(data, "cosine", force="approximate")
    assert isinstance(approximate, ApproximateIndex) and approximate.kind == "approximate"
    assert isinstance(exact, EmbeddingIndex) and isinstance(approximate, EmbeddingIndex)
    rng = np.random.default_rng(4)
    for i in range(30):
        # Queries near stored vectors (as signatures of enrolled writers are) and random ones.
        query = data[i * 61] + 0.3 * rng.standard_normal(32) if i % 2 else rng.standard_normal(32)
        assert [r for r, _ in approximate.search(query, 10)] == [r for r, _ in exact.search(query, 10)]
        assert [s for _, s in approximate.search(query, 10)] == pytest.approx(
            [s for _, s in exact.search(query, 10)], abs=1e-4
        )
    euclidean = build_index(data * 3.0, "euclidean", force="approximate")
    reference = build_index(data * 3.0, "euclidean", force="exact")
    query = rng.standard_normal(32)
    found, expected = euclidean.search(query, 5), reference.search(query, 5)
    assert [r for r, _ in found] == [r for r, _ in expected]
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], abs=1e-4)


def test_build_index_switches_at_the_threshold() -> None:
    data = unit_vectors(100)
    assert build_index(data, "cosine").kind == "exact"
    assert build_index(data, "cosine", threshold=100).kind == "approximate"
    assert build_index(data, "cosine", threshold=101).kind == "exact"
    assert build_index(data, "cosine", force="exact", threshold=10).kind == "exact"
    with pytest.raises(ValueError, match="force"):
        build_index(data, "cosine", force="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="product heads cannot be indexed"):
        build_index(data, "product")


def test_edge_cases() -> None:
    data = unit_vectors(3)
    for index in (ExactIndex(data, "cosine"), ApproximateIndex(data, "cosine")):
        assert len(index.search(data[0], 10)) == 3  # k above the size
        assert index.search(data[0], 0) == []
        assert index.search(data[0], 1)[0][0] == 0
        with pytest.raises(ValueError, match="shape"):
            index.search(np.zeros(5), 1)
    empty = np.zeros((0, 8), dtype=np.float32)
    assert ExactIndex(empty, "cosine").search(np.ones(8), 3) == []
    assert ApproximateIndex(empty, "cosine").search(np.ones(8), 3) == []


def test_concurrent_searches_give_the_same_results() -> None:
    data = unit_vectors(2000, seed=5)
    index = build_index(data, "cosine", force="approximate")
    queries = unit_vectors(40, seed=6)
    expected = [index.search(q, 5) for q in queries]
    results: dict[int, list[list[tuple[int, float]]]] = {}

    def work(worker: int) -> None:
        results[worker] = [index.search(q, 5) for q in queries]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(found == expected for found in results.values())

"""The 8-bit first pass of the exact identification search returns the full scan's answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inkproof.store import persistent_index
from inkproof.store.persistent_index import IndexKey, ReferenceIndex
from inkproof.store.quantised_scan import QuantisedScan

pytest.importorskip("faiss")

DIM = 32
KEY = IndexKey("model", "1", "cosine", DIM)


def _unit(rng: np.random.Generator, rows: int, scale: float = 1.0) -> np.ndarray:
    matrix = rng.standard_normal((rows, DIM)).astype(np.float32)
    return scale * matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _full_scan(index: ReferenceIndex, query: np.ndarray, k: int) -> list[int]:
    coarse, index._coarse = index._coarse, None
    try:
        return index._search_rows(query, k)
    finally:
        index._coarse = coarse


@pytest.fixture
def small_threshold(monkeypatch: Any) -> None:
    monkeypatch.setattr(persistent_index, "QUANTISED_FROM", 2_000)


def _proofs(monkeypatch: Any) -> list[bool]:
    """Records whether each search was answered by the 8-bit pass."""
    outcomes: list[bool] = []
    original = ReferenceIndex._proven_rows

    def recorded(self: ReferenceIndex, query: np.ndarray, k: int) -> list[int] | None:
        rows = original(self, query, k)
        outcomes.append(rows is not None)
        return rows

    monkeypatch.setattr(ReferenceIndex, "_proven_rows", recorded)
    return outcomes


def test_quantised_pass_gives_the_full_scans_rows_after_adds_and_deletes(
    small_threshold: None, monkeypatch: Any
) -> None:
    rng = np.random.default_rng(3)
    rows = 6_000
    index = ReferenceIndex(KEY)
    index.reset(np.arange(1, rows + 1), np.arange(rows) // 5, _unit(rng, rows), counter=1)
    assert index._coarse is not None and index.kind == "exact"
    # Deletes (masked rows) and adds after the 8-bit ranges were trained.
    index.apply((np.arange(rows + 1, rows + 301), np.arange(300), _unit(rng, 300)), range(1, 400, 3), counter=2)
    assert len(index._coarse) == len(index.alive)
    proofs = _proofs(monkeypatch)
    queries = _unit(rng, 60)
    queries[:20] = index.matrix[rng.choice(len(index.matrix), 20)] + 0.05 * _unit(rng, 20)  # near duplicates
    for query in queries:
        for k in (1, 20):
            assert index._search_rows(query, k) == _full_scan(index, query, k)
    assert sum(proofs) >= 0.9 * len(proofs), "the 8-bit pass should answer almost every search"
    # Duplicated rows (exact ties) rank by row, as in the full scan.
    index.apply((np.array([rows + 500, rows + 501]), np.array([7, 8]), np.repeat(queries[:1], 2, axis=0)), [], 3)
    assert index._search_rows(queries[0], 2) == _full_scan(index, queries[0], 2)


def test_a_loaded_index_rebuilds_its_8_bit_copy(small_threshold: None, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    index = ReferenceIndex(KEY)
    index.reset(np.arange(3_000), np.arange(3_000), _unit(rng, 3_000), counter=4)
    index.save(tmp_path / "index.npz")
    loaded = ReferenceIndex.load(tmp_path / "index.npz", KEY)
    assert loaded is not None and loaded._coarse is not None
    query = _unit(rng, 1)[0]
    assert loaded._search_rows(query, 10) == _full_scan(index, query, 10)


def test_a_failed_proof_falls_back_to_the_full_scan(small_threshold: None, monkeypatch: Any) -> None:
    rng = np.random.default_rng(4)
    index = ReferenceIndex(KEY)
    index.reset(np.arange(3_000), np.arange(3_000), _unit(rng, 3_000), counter=1)
    assert index._coarse is not None
    monkeypatch.setattr(QuantisedScan, "candidates", lambda self, query, count: (np.arange(count), np.inf))
    query = _unit(rng, 1)[0]
    assert index._search_rows(query, 5) == _full_scan(index, query, 5)


def test_error_bound_covers_rows_outside_the_trained_range() -> None:
    rng = np.random.default_rng(5)
    short, wide = _unit(rng, 1_000, scale=0.1), _unit(rng, 10)
    scan = QuantisedScan(short)  # ranges trained on short vectors
    scan.add(wide)  # clipped by the 8-bit ranges: the bound must grow to cover them
    query = _unit(rng, 1)[0]
    rows, bound = scan.candidates(query, 5)
    everything = np.concatenate([short, wide]) @ query
    others = np.setdiff1d(np.arange(len(everything)), rows)
    assert everything[others].max() <= bound


def test_small_or_euclidean_indexes_scan_in_float32() -> None:
    rng = np.random.default_rng(6)
    small = ReferenceIndex(KEY)
    small.reset(np.arange(100), np.arange(100), _unit(rng, 100), counter=1)
    assert small._coarse is None
    euclidean = ReferenceIndex(IndexKey("model", "1", "euclidean", DIM))
    euclidean.reset(np.arange(30_000), np.arange(30_000), _unit(rng, 30_000), counter=1)
    assert euclidean._coarse is None

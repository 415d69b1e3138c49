"""Nearest-reference search for identification ("whose signature is this?").

Scores follow the model's head: for a ``cosine`` head the cosine similarity (inner product of
L2-normalised vectors), for a ``euclidean`` head minus the Euclidean distance; higher is always
closer. :class:`ExactIndex` scores every reference with numpy; above :data:`INDEX_THRESHOLD`
references :func:`build_index` switches to :class:`ApproximateIndex`, an HNSW graph (faiss-cpu),
whose cost grows roughly logarithmically with the store.

Product heads (a learned head on a pair of embeddings) define no metric on single embeddings, so
they cannot be indexed: identification then scores every reference with the head itself (exact,
linear in the store size); see :meth:`inkproof.store.SignatureStore.identify`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from inkproof.errors import InkproofError

Metric = Literal["cosine", "euclidean"]
IndexKind = Literal["exact", "approximate"]
METRICS: tuple[str, ...] = ("cosine", "euclidean")

#: From this many references on, ``build_index`` uses the approximate (HNSW) index.
INDEX_THRESHOLD = 20_000
#: HNSW settings: links per node, and candidate-list sizes while building and searching. These
#: give a recall close to 1 on signature embeddings; searching costs well under a millisecond.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 256


class IndexUnavailableError(InkproofError):
    """The approximate index needs faiss-cpu, which is not installed."""


@runtime_checkable
class EmbeddingIndex(Protocol):
    """Search over a fixed (N, D) array of embeddings; results name rows of that array."""

    kind: IndexKind
    metric: Metric

    def __len__(self) -> int: ...

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` rows closest to ``query`` (D,), best first, as (row, score)."""
        ...


def _check_metric(metric: str) -> Metric:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS} (product heads cannot be indexed), got {metric!r}")
    return "cosine" if metric == "cosine" else "euclidean"


def _as_matrix(embeddings: np.ndarray) -> np.ndarray:
    matrix = np.ascontiguousarray(embeddings, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected an (N, D) array of embeddings, got shape {matrix.shape}")
    return matrix


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _query(query: np.ndarray, dim: int) -> np.ndarray:
    vector = np.asarray(query, dtype=np.float32).reshape(-1)
    if vector.shape != (dim,):
        raise ValueError(f"expected a query of shape ({dim},), got {np.shape(query)}")
    return vector


class ExactIndex:
    """Brute force: every row is scored (fast for tens of thousands of rows)."""

    kind: IndexKind = "exact"

    def __init__(self, embeddings: np.ndarray, metric: str) -> None:
        self.metric = _check_metric(metric)
        matrix = _as_matrix(embeddings)
        self._matrix = _normalised(matrix) if self.metric == "cosine" else matrix
        self.dim = matrix.shape[1]

    def __len__(self) -> int:
        return len(self._matrix)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """The score of every row, in row order."""
        vector = _query(query, self.dim)
        if self.metric == "cosine":
            return self._matrix @ _normalised(vector)
        return -np.linalg.norm(self._matrix - vector, axis=1)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        k = min(int(k), len(self))
        if k <= 0:
            return []
        scores = self.scores(query)
        candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        # Best first; equal scores by row, so results are deterministic.
        order = candidates[np.lexsort((candidates, -scores[candidates]))]
        return [(int(row), float(scores[row])) for row in order]


def faiss_module() -> ModuleType:
    try:
        return importlib.import_module("faiss")
    except ImportError as exc:
        raise IndexUnavailableError("the approximate index needs faiss-cpu (pip install faiss-cpu)") from exc


def faiss_available() -> bool:
    try:
        faiss_module()
    except IndexUnavailableError:
        return False
    return True


class ApproximateIndex:
    """HNSW graph (faiss-cpu) over the embeddings: inner product of normalised vectors for cosine
    heads, L2 for euclidean heads. Safe to search from many threads at once."""

    kind: IndexKind = "approximate"

    def __init__(
        self,
        embeddings: np.ndarray,
        metric: str,
        *,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
    ) -> None:
        faiss = faiss_module()
        self.metric = _check_metric(metric)
        matrix = _as_matrix(embeddings)
        self.dim = matrix.shape[1]
        self._size = len(matrix)
        self._faiss = faiss
        self._ef_search = ef_search
        faiss_metric = faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2
        self._index = faiss.IndexHNSWFlat(self.dim, m, faiss_metric)
        self._index.hnsw.efConstruction = ef_construction
        if self._size:
            self._index.add(_normalised(matrix) if self.metric == "cosine" else matrix)

    def __len__(self) -> int:
        return self._size

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        k = min(int(k), len(self))
        if k <= 0:
            return []
        vector = _query(query, self.dim)
        if self.metric == "cosine":
            vector = _normalised(vector)
        # Per-call parameters: no shared state is changed, so concurrent searches are safe.
        params = self._faiss.SearchParametersHNSW(efSearch=max(self._ef_search, k))
        distances, rows = self._index.search(vector[None, :], k, params=params)
        results: list[tuple[int, float]] = []
        for row, distance in zip(rows[0], distances[0], strict=True):
            if row < 0:  # fewer than k rows reachable
                continue
            score = float(distance) if self.metric == "cosine" else -float(np.sqrt(max(float(distance), 0.0)))
            results.append((int(row), score))
        return results


def build_index(
    embeddings: np.ndarray,
    metric: str,
    force: IndexKind | None = None,
    *,
    threshold: int = INDEX_THRESHOLD,
) -> EmbeddingIndex:
    """The index for ``embeddings``: exact below ``threshold`` rows, approximate from there on
    (when faiss-cpu is installed; otherwise exact). ``force`` picks one regardless of size."""
    if force not in (None, "exact", "approximate"):
        raise ValueError(f"force must be None, 'exact' or 'approximate', got {force!r}")
    if force == "approximate" or (force is None and len(embeddings) >= threshold and faiss_available()):
        return ApproximateIndex(embeddings, metric)
    return ExactIndex(embeddings, metric)


__all__ = [
    "INDEX_THRESHOLD",
    "METRICS",
    "ApproximateIndex",
    "EmbeddingIndex",
    "ExactIndex",
    "IndexKind",
    "IndexUnavailableError",
    "Metric",
    "build_index",
    "faiss_available",
]

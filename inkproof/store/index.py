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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, Protocol, runtime_checkable

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


# --- snapshots of a store's embeddings, and ranking their owners ------------------------------------


@dataclass
class EmbeddingSnapshot:
    """Every stored embedding of one kind (references, document signatures) at one moment, in id
    order: row ``i`` is ``ids[i]``, owned by ``owners[i]`` (its writer, its document). Indexes over
    ``matrix`` are built on first use and kept with it."""

    key: tuple[Any, ...]
    ids: np.ndarray
    owners: np.ndarray
    matrix: np.ndarray
    indexes: dict[str, EmbeddingIndex] = field(default_factory=dict)


class SnapshotCache:
    """The latest :class:`EmbeddingSnapshot` of a table, shared by threads: it is read again only
    when its key (model, embeddings version, row count, highest id) changes or it is invalidated."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: EmbeddingSnapshot | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._snapshot = None

    def get(
        self, key: tuple[Any, ...], load: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]
    ) -> EmbeddingSnapshot:
        """The snapshot for ``key``; ``load`` returns (ids, owners, matrix) when it must be read."""
        with self._lock:
            if self._snapshot is not None and self._snapshot.key == key:
                return self._snapshot
            ids, owners, matrix = load()
            self._snapshot = EmbeddingSnapshot(key, ids, owners, matrix)
            return self._snapshot

    def index(
        self, snapshot: EmbeddingSnapshot, metric: str, *, threshold: int, force: IndexKind | None = None
    ) -> EmbeddingIndex:
        """The snapshot's index: approximate from ``threshold`` rows when faiss-cpu is installed."""
        kind: IndexKind
        if force is not None:
            kind = force
        elif len(snapshot.matrix) >= threshold and faiss_available():
            kind = "approximate"
        else:
            kind = "exact"
        with self._lock:
            index = snapshot.indexes.get(kind)
            if index is None:
                index = build_index(snapshot.matrix, metric, force=kind)
                snapshot.indexes[kind] = index
            return index


HEAD_CHUNK = 16384  # rows scored per call when a product head scores a whole snapshot


def best_row_per_owner(
    snapshot: EmbeddingSnapshot,
    vector: np.ndarray,
    top: int,
    *,
    index: EmbeddingIndex | None,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> list[int]:
    """Rows of the best-scoring row of each of the ``top`` best owners, best owner first.

    An owner's score is its best row's. With ``index`` the rows are ranked by it and the search
    widens until ``top`` owners are met (or every row is); without it ``score`` (a product head:
    queries, rows -> scores) scores every row, in slices so memory stays small in a large store.
    """
    n = len(snapshot.ids)
    best: dict[int, int] = {}  # owner id -> row of its best row, best owners first
    if index is None:
        scores = np.concatenate(
            [
                score(np.repeat(vector[None, :], len(block), axis=0), block)
                for block in np.array_split(snapshot.matrix, max(1, -(-n // HEAD_CHUNK)))
            ]
        )
        for row in np.lexsort((np.arange(n), -scores)):
            best.setdefault(int(snapshot.owners[row]), int(row))
            if len(best) == top:
                break
        return list(best.values())
    k = min(n, max(4 * top, 16))
    while True:
        best.clear()
        for row, _ in index.search(vector, k):
            best.setdefault(int(snapshot.owners[row]), row)
            if len(best) == top:
                break
        if len(best) == top or k >= n:
            return list(best.values())
        k = min(n, k * 4)


__all__ = [
    "HEAD_CHUNK",
    "INDEX_THRESHOLD",
    "METRICS",
    "ApproximateIndex",
    "EmbeddingIndex",
    "EmbeddingSnapshot",
    "ExactIndex",
    "IndexKind",
    "IndexUnavailableError",
    "Metric",
    "SnapshotCache",
    "best_row_per_owner",
    "build_index",
    "faiss_available",
]

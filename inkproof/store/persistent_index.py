"""The identification index over reference embeddings that survives restarts.

The embeddings stay in the database; this module keeps a copy of them (and, above
``exact_limit`` references, a faiss HNSW graph over them) in one ``.npz`` file, written
atomically (a sibling file renamed over the old one). Every enrollment and deletion appends a row
to the ``reference_changes`` table in the same transaction, numbered by a store-wide counter
(:func:`record_changes`). A process holding the index compares its counter with the database's
highest number on every search and applies only the rows after it (adds and deletes are
idempotent), so several service processes on one database stay consistent without rebuilding.
The file is rebuilt from the database when it is missing, unreadable, of another model or
embeddings version, or when its counter is ahead of the database or its rows disagree with the
table (rows written around the store, e.g. by a bulk import).

Deleted rows are masked rather than removed, so that row numbers stay those of the HNSW graph
(faiss' HNSW cannot remove points); the arrays are compacted (and the graph rebuilt) once a
quarter of the rows are dead. No pickle: arrays via ``np.savez`` and the graph via
``faiss.serialize_index``, loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.store.index import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    IndexKind,
    Metric,
    _check_metric,
    faiss_available,
    faiss_module,
)
from inkproof.store.quantised_scan import QuantisedScan

#: Below this many live references the index is exact (every row scored: at 100,000 x 128 about
#: 4 ms in float32 on one loaded core, half that with the 8-bit first pass); from here on, HNSW.
EXACT_LIMIT = 200_000
#: From this many rows on, an exact cosine search scans an 8-bit copy first
#: (:class:`~inkproof.store.quantised_scan.QuantisedScan`): same answer, about half the time.
QUANTISED_FROM = 20_000
#: Rows the 8-bit pass hands to the float32 rescoring: at least this many, and 4 per wanted row.
QUANTISED_CANDIDATES = 64
#: Compact the arrays (and rebuild the graph) when this share of the rows is deleted.
COMPACT_FRACTION = 0.25
#: Save the file after in-memory updates at most this often (a restart replays the change log
#: since the file's counter, so a late save loses nothing).
SAVE_INTERVAL_S = 30.0
FILE_FORMAT = 1
INDEX_DIR_ENV = "INKPROOF_INDEX_DIR"


@dataclass(frozen=True)
class IndexKey:
    """What the index was built from: changing any of it but ``counter`` means a full rebuild."""

    model_tag: str
    embeddings_version: str
    metric: str
    dim: int


@dataclass(frozen=True)
class IndexStatus:
    """Where the index came from, for logs and benchmarks."""

    kind: IndexKind
    references: int
    counter: int
    source: str  # "file", "file+changes", "database", "changes"
    seconds: float
    path: str | None


def index_path_for(database_url: Any, model_tag: str, folder: str | os.PathLike[str] | None) -> Path | None:
    """The index file of a store: beside a SQLite file, or in ``folder`` (else ``$INKPROOF_INDEX_DIR``)
    for any database; ``None`` (memory only) for an in-memory SQLite or a server without a folder."""
    tag = hashlib.sha256(model_tag.encode()).hexdigest()[:12]
    folder = folder or os.environ.get(INDEX_DIR_ENV) or None
    backend = database_url.get_backend_name()
    if folder is None and backend == "sqlite":
        name = database_url.database
        if not name or name == ":memory:":
            return None
        base = Path(name)
        return base.with_name(f"{base.name}.identify-{tag}.npz")
    if folder is None:
        return None
    where = hashlib.sha256(database_url.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    return Path(folder) / f"inkproof-{where}.identify-{tag}.npz"


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


class ReferenceIndex:
    """Live reference embeddings (row ``i``: reference ``ids[i]`` of writer ``owners[i]``) and the
    search over them. Thread-safe: searches share a lock with updates."""

    def __init__(self, key: IndexKey, *, exact_limit: int = EXACT_LIMIT) -> None:
        self.key = key
        self.metric: Metric = _check_metric(key.metric)
        self.exact_limit = exact_limit
        self.counter = 0
        self.ids = np.zeros(0, dtype=np.int64)
        self.owners = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, key.dim), dtype=np.float32)
        self.alive = np.zeros(0, dtype=bool)
        self._rows: dict[int, int] = {}
        self._graph: Any = None  # faiss.IndexHNSWFlat over ``matrix`` (dead rows included)
        self._coarse: QuantisedScan | None = None  # 8-bit copy of ``matrix`` (exact search only)
        self.lock = threading.RLock()
        self.dirty = 0  # changes applied since the last save
        self.saved_at = 0.0

    # --- contents ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def kind(self) -> IndexKind:
        return "approximate" if self._graph is not None else "exact"

    def _prepare(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1, self.key.dim)
        return _normalised(matrix) if self.metric == "cosine" else matrix

    def reset(self, ids: np.ndarray, owners: np.ndarray, matrix: np.ndarray, counter: int) -> None:
        """Replace every row (a full build from the database)."""
        with self.lock:
            order = np.argsort(ids, kind="stable")
            self.ids = np.asarray(ids, dtype=np.int64)[order]
            self.owners = np.asarray(owners, dtype=np.int64)[order]
            self.matrix = self._prepare(matrix)[order]
            self.alive = np.ones(len(self.ids), dtype=bool)
            self._rows = {int(i): row for row, i in enumerate(self.ids)}
            self.counter = int(counter)
            self._fit_graph()
            self.dirty += 1

    def _fit_graph(self) -> None:
        """Build the HNSW graph over every row when the live rows reach ``exact_limit``; below it,
        the 8-bit copy for the exact search once there are enough rows to gain from it."""
        self._graph = None
        if len(self) >= self.exact_limit and faiss_available():
            faiss = faiss_module()
            metric = faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2
            graph = faiss.IndexHNSWFlat(self.key.dim, HNSW_M, metric)
            graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            if len(self.matrix):
                graph.add(self.matrix)
            self._graph = graph
        self._fit_coarse()

    def _fit_coarse(self) -> None:
        wanted = self.metric == "cosine" and len(self) >= QUANTISED_FROM and faiss_available()
        self._coarse = QuantisedScan(self.matrix) if wanted and self._graph is None else None

    def _compact(self) -> None:
        keep = self.alive
        self.ids, self.owners, self.matrix = self.ids[keep], self.owners[keep], self.matrix[keep]
        self.alive = np.ones(len(self.ids), dtype=bool)
        self._rows = {int(i): row for row, i in enumerate(self.ids)}
        self._fit_graph()

    def apply(
        self,
        added: tuple[np.ndarray, np.ndarray, np.ndarray],
        deleted: Iterable[int],
        counter: int,
    ) -> None:
        """Add rows (ids, owners, embeddings) and delete ids; both are idempotent, so a change read
        twice (or already in a full build) does no harm."""
        with self.lock:
            for reference_id in deleted:
                row = self._rows.pop(int(reference_id), None)
                if row is not None:
                    self.alive[row] = False
            ids, owners, matrix = added
            fresh = [i for i, reference_id in enumerate(ids) if int(reference_id) not in self._rows]
            if fresh:
                start = len(self.ids)
                new = self._prepare(np.asarray(matrix)[fresh])
                self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)[fresh]])
                self.owners = np.concatenate([self.owners, np.asarray(owners, dtype=np.int64)[fresh]])
                self.matrix = np.concatenate([self.matrix, new])
                self.alive = np.concatenate([self.alive, np.ones(len(fresh), dtype=bool)])
                for offset, i in enumerate(fresh):
                    self._rows[int(ids[i])] = start + offset
                if self._graph is not None:
                    self._graph.add(new)
                if self._coarse is not None:
                    self._coarse.add(new)
                elif self._graph is None and len(self) >= QUANTISED_FROM:
                    self._fit_coarse()
            self.counter = max(self.counter, int(counter))
            dead = len(self.alive) - len(self._rows)
            wants_graph = len(self) >= self.exact_limit and faiss_available()
            if dead > COMPACT_FRACTION * max(1, len(self.alive)) or wants_graph != (self._graph is not None):
                self._compact()
            self.dirty += 1

    def ensure_kind(self) -> None:
        """Switch between exact and HNSW when ``exact_limit`` was changed."""
        with self.lock:
            wants_graph = len(self) >= self.exact_limit and faiss_available()
            if wants_graph != (self._graph is not None):
                self._compact()

    def live(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, owners, matrix) of the live rows."""
        with self.lock:
            keep = self.alive
            return self.ids[keep], self.owners[keep], self.matrix[keep]

    # --- search --------------------------------------------------------------------------

    def _search_rows(self, vector: np.ndarray, k: int) -> list[int]:
        """The ``k`` best live rows, best first (fewer when fewer are live)."""
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if self.metric == "cosine":
            query = _normalised(query)
        if self._graph is not None:
            faiss = faiss_module()
            # Dead rows are still in the graph: ask for as many more as there are dead rows.
            want = min(len(self.alive), k + (len(self.alive) - len(self)))
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, want))
            _, rows = self._graph.search(query, want, params=params)
            return [int(r) for r in rows[0] if r >= 0 and self.alive[r]][:k]
        if self._coarse is not None:
            proven = self._proven_rows(query[0], k)
            if proven is not None:
                return proven
        # einsum, not ``@``: a matrix-vector product through multi-threaded BLAS took 12 ms at
        # 100,000 x 128 on a loaded 2-core machine, einsum's single-threaded loop 2.7 ms.
        products = np.einsum("ij,j->i", self.matrix, query[0])
        if self.metric == "cosine":
            scores = products
        else:  # |m - q|^2 = |m|^2 - 2 m.q + |q|^2, without an (N, D) temporary
            squared = np.einsum("ij,ij->i", self.matrix, self.matrix) - 2.0 * products + float(query[0] @ query[0])
            scores = -np.sqrt(np.maximum(squared, 0.0))
        if len(self) < len(self.alive):
            scores = np.where(self.alive, scores, -np.inf)
        k = min(k, len(self))
        if k <= 0:
            return []
        n = len(scores)
        candidates = np.argpartition(scores, n - k)[n - k :] if k < n else np.arange(n)
        order = candidates[np.lexsort((candidates, -scores[candidates]))]
        return [int(r) for r in order if self.alive[r]][:k]

    def _proven_rows(self, query: np.ndarray, k: int) -> list[int] | None:
        """The full scan's ``k`` best live rows found through the 8-bit copy, or ``None`` when the
        error bound cannot prove them (the caller then scans everything)."""
        assert self._coarse is not None
        count = max(QUANTISED_CANDIDATES, 4 * k)
        if count >= len(self.alive) // 4:
            return None  # too many candidates to gain from the first pass
        rows, bound = self._coarse.candidates(query, count)
        rows = rows[self.alive[rows]]
        if len(rows) < k:
            return None
        # The same per-row float32 product as the full scan, so equal scores rank the same way.
        scores = np.einsum("ij,j->i", self.matrix[rows], query)
        order = np.lexsort((rows, -scores))[:k]
        if k and not scores[order[-1]] > bound:
            return None
        return [int(r) for r in rows[order]]

    def best_per_owner(self, vector: np.ndarray, top: int) -> list[tuple[int, int, np.ndarray]]:
        """(reference id, owner, embedding) of the best row of each of the ``top`` best owners,
        best first; the search widens until ``top`` owners are met or every row is seen."""
        with self.lock:
            n = len(self)
            if n == 0:
                return []
            k = min(n, max(4 * top, 16))
            while True:
                best: dict[int, int] = {}
                for row in self._search_rows(vector, k):
                    best.setdefault(int(self.owners[row]), row)
                    if len(best) == top:
                        break
                if len(best) == top or k >= n:
                    return [(int(self.ids[r]), owner, self.matrix[r].copy()) for owner, r in best.items()]
                k = min(n, k * 4)

    # --- file ----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically (a sibling file renamed over it).

        Only taking the arrays holds the lock: updates replace ``ids``, ``owners`` and ``matrix``
        with new arrays instead of writing into them, so searches go on while the file is written.
        """
        with self.lock:
            arrays: dict[str, np.ndarray] = {
                "ids": self.ids,
                "owners": self.owners,
                "matrix": self.matrix,
                "alive": self.alive.copy(),  # the one array deletes write into
            }
            if self._graph is not None:
                arrays["graph"] = faiss_module().serialize_index(self._graph)
            header = {"format": FILE_FORMAT, "counter": self.counter, **self.key.__dict__}
            arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
            changes, self.dirty = self.dirty, 0
            self.saved_at = time.monotonic()
        try:
            buffer = io.BytesIO()
            np.savez(buffer, allow_pickle=False, **arrays)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            # Owner-only, like a new SQLite store: embeddings are biometric templates.
            with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
                handle.write(buffer.getbuffer())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with self.lock:  # not saved: the changes still wait for the next save
                self.dirty += changes
            raise

    @classmethod
    def load(cls, path: Path, key: IndexKey, *, exact_limit: int = EXACT_LIMIT) -> ReferenceIndex | None:
        """The index saved at ``path`` if it is readable and was built for ``key``; else ``None``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                if (
                    header.get("format") != FILE_FORMAT
                    or IndexKey(header["model_tag"], header["embeddings_version"], header["metric"], int(header["dim"]))
                    != key
                ):
                    return None
                index = cls(key, exact_limit=exact_limit)
                index.ids = np.asarray(data["ids"], dtype=np.int64)
                index.owners = np.asarray(data["owners"], dtype=np.int64)
                index.matrix = np.ascontiguousarray(data["matrix"], dtype=np.float32)
                index.alive = np.asarray(data["alive"], dtype=bool)
                graph = data["graph"] if "graph" in data.files else None
            if index.matrix.shape != (len(index.ids), key.dim) or len(index.alive) != len(index.ids):
                return None
            index._rows = {int(i): row for row, i in enumerate(index.ids) if index.alive[row]}
            if graph is not None:
                if not faiss_available():
                    index._fit_graph()
                else:
                    index._graph = faiss_module().deserialize_index(np.asarray(graph, dtype=np.uint8))
            else:
                index._fit_coarse()  # not saved: built in a fraction of a second
            index.counter = int(header["counter"])
            index.saved_at = time.monotonic()
            return index
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, RuntimeError):
            return None  # missing, truncated or foreign: the caller rebuilds it from the database


def changed_ids(rows: Sequence[tuple[int, int, bool]]) -> tuple[list[int], list[int]]:
    """(added ids, deleted ids) of change rows ``(seq, reference id, added)`` in order: the last
    change of an id wins, so an id added then deleted is only deleted."""
    last: dict[int, bool] = {}
    for _seq, reference_id, added in sorted(rows):
        last[int(reference_id)] = bool(added)
    return [i for i, a in last.items() if a], [i for i, a in last.items() if not a]


__all__ = [
    "EXACT_LIMIT",
    "INDEX_DIR_ENV",
    "IndexKey",
    "IndexStatus",
    "ReferenceIndex",
    "changed_ids",
    "index_path_for",
]

"""Reference-set verification: a query is compared with K enrolled references and the scores fused.

A deployed verifier does not compare a questioned signature with one genuine signature but with the
K genuine signatures enrolled for the claimed writer, and fuses the K scores (``mean`` or ``max``).
:func:`reference_set_evaluation` measures how the error rate changes with K.

Protocol, for every repeat ``r`` (one ``np.random.default_rng([seed, r])``) and every writer, in
sorted order, with at least two genuine signatures:

1. shuffle the writer's genuine samples once; the first ``k`` of that order are the references for
   ``k`` (so the reference sets of one writer and repeat are nested across ``ks``, and a row for one
   ``k`` does not depend on which other ``ks`` are asked for);
2. draw ``random_per_writer`` genuine samples of OTHER writers without replacement (all of them
   when there are fewer);
3. for every ``k`` the writer supports (more than ``k`` genuine samples), the queries are

   * genuine: the writer's other genuine samples, except re-scans (``same_instance``, or the very
     same table row) of a chosen reference: a re-scan scores as a near-duplicate of its reference
     and would inflate the genuine scores;
   * skilled: all the writer's skilled forgeries;
   * random: the other writers' genuine samples drawn in step 2;

4. each query's fused score is the mean or max of its ``k`` reference scores.

All query x reference scores of one writer and repeat (every ``k`` at once) come from ONE batched
call of ``score``; a pair that no ``k`` uses (a reference with itself, a query with its re-scan) is
never scored. Fused scores are pooled over writers and repeats and the EERs use one GLOBAL threshold
over all writers (:func:`inkproof.evaluation.metrics.equal_error_rate`), as a deployed system has one
operating threshold for everybody; per-writer thresholds would look better than any deployment can
be. These EERs describe the test scores; they are not an operating threshold (see the honesty rule
in :mod:`inkproof.evaluation.metrics`).
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from inkproof.evaluation.metrics import equal_error_rate, labelled_scores

__all__ = ["FUSIONS", "ReferenceResult", "ReferenceSample", "reference_set_evaluation"]

#: Ways to fuse a query's K reference scores.
FUSIONS = ("mean", "max")
#: Default minimum of random-forgery queries per writer and repeat.
MIN_RANDOM_PER_WRITER = 5

IntArray = npt.NDArray[np.intp]
ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ReferenceSample:
    """One signature: its (claimed) writer, whether it is genuine, and its row in the embeddings."""

    writer: str
    genuine: bool  # False = skilled forgery of `writer`
    index: int  # row in the embeddings table


@dataclass(frozen=True)
class ReferenceResult:
    """Pooled EERs of fused scores at one ``k`` and fusion (NaN where a class is missing).

    ``eer`` uses the genuine queries against all forgery queries (skilled and random),
    ``eer_skilled`` / ``eer_random`` against one kind only. ``writers`` counts the writers with more
    than ``k`` genuine samples, the only ones evaluated at this ``k``.
    """

    k: int
    fusion: str
    eer: float
    eer_skilled: float
    eer_random: float
    n_genuine: int
    n_skilled: int
    n_random: int
    writers: int

    def to_dict(self) -> dict[str, str | int | float | None]:
        """JSON-ready dict: NaN (and infinities) become None."""
        out: dict[str, str | int | float | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[f.name] = value
        return out


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _rescan_map(same_instance: Collection[frozenset[int]], n_rows: int) -> dict[int, set[int]]:
    """Row -> rows that are re-scans of it (each set in ``same_instance`` is a group of re-scans)."""
    partners: dict[int, set[int]] = {}
    for group in same_instance:
        rows = [_check_int(row, "same_instance rows", 0) for row in group]
        for row in rows:
            if row >= n_rows:
                raise ValueError(f"same_instance names row {row}, but the embeddings have {n_rows} rows")
        for row in rows:
            partners.setdefault(row, set()).update(r for r in rows if r != row)
    return partners


@dataclass
class _Pool:
    """Fused scores of one (k, fusion), accumulated over writers and repeats."""

    genuine: list[np.ndarray]
    skilled: list[np.ndarray]
    random: list[np.ndarray]
    writers: int = 0


def reference_set_evaluation(
    samples: Sequence[ReferenceSample],
    embeddings: np.ndarray,
    score: ScoreFn,
    *,
    ks: Sequence[int] = (1, 3, 5, 10),
    fusions: Sequence[str] = FUSIONS,
    repeats: int = 5,
    seed: int = 0,
    random_per_writer: int | None = None,
    same_instance: Collection[frozenset[int]] = frozenset(),
) -> list[ReferenceResult]:
    """EERs of K-reference verification with fused scores, one row per supported ``k`` and fusion.

    ``score(references, queries)`` returns the row-wise scores of two ``(M, D)`` arrays (higher = same
    writer), references first as in the pair protocol; it is called at most once per writer and
    repeat (never with empty arrays). ``random_per_writer=None`` draws as many random
    queries as the writer has skilled forgeries, at least 5. A ``k`` that no writer supports gives
    no row. Rows come ordered by ``k`` then fusion, in the given orders. See the module docstring for
    the protocol. Raises ValueError for ``k < 1``, an unknown fusion, a sample index outside the
    embeddings, or a ``score`` result of the wrong shape or with non-finite values.
    """
    k_list = [_check_int(k, "k", 1) for k in ks]
    fusion_list = list(fusions)
    for fusion in fusion_list:
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {', '.join(FUSIONS)}")
    n_repeats = _check_int(repeats, "repeats", 1)
    n_random_fixed = None if random_per_writer is None else _check_int(random_per_writer, "random_per_writer", 0)
    table = np.asarray(embeddings)
    if table.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D (N, D) array, got shape {table.shape}")
    n_rows = table.shape[0]
    for i, sample in enumerate(samples):
        if isinstance(sample.index, bool) or not isinstance(sample.index, numbers.Integral):
            raise ValueError(f"samples[{i}].index must be an integer row, got {sample.index!r}")
        if not 0 <= int(sample.index) < n_rows:
            raise ValueError(f"samples[{i}].index = {sample.index} is outside the embeddings table of {n_rows} rows")
    rescans = _rescan_map(same_instance, n_rows)

    genuine_rows: dict[str, list[int]] = {}
    skilled_rows: dict[str, list[int]] = {}
    for sample in samples:
        genuine_rows.setdefault(sample.writer, [])
        skilled_rows.setdefault(sample.writer, [])
        (genuine_rows if sample.genuine else skilled_rows)[sample.writer].append(int(sample.index))
    writers = sorted(genuine_rows)
    for writer in writers:  # sorted rows: the draws do not depend on the order of `samples`
        genuine_rows[writer].sort()
        skilled_rows[writer].sort()
    # Genuine rows of all writers, writer by writer: the other writers' rows are everything outside
    # one contiguous block, so a random draw needs no per-writer copy of the pool.
    all_genuine = np.asarray([row for w in writers for row in genuine_rows[w]], dtype=np.intp)
    block_start: dict[str, int] = {}
    offset = 0
    for writer in writers:
        block_start[writer] = offset
        offset += len(genuine_rows[writer])

    pools = {(k, f): _Pool([], [], []) for k in k_list for f in fusion_list}
    for (k, _), acc in pools.items():
        acc.writers = sum(1 for w in writers if len(genuine_rows[w]) > k)
    for r in range(n_repeats):
        rng = np.random.default_rng([seed, r])
        for writer in writers:
            own = genuine_rows[writer]
            if len(own) < 2:
                continue  # no k >= 1 can be evaluated; draw nothing, so other writers' draws stay put
            perm = np.asarray(own, dtype=np.intp)[rng.permutation(len(own))]
            skilled = np.asarray(skilled_rows[writer], dtype=np.intp)
            wanted = n_random_fixed if n_random_fixed is not None else max(len(skilled), MIN_RANDOM_PER_WRITER)
            n_other = all_genuine.size - len(own)
            picks = rng.choice(n_other, size=min(wanted, n_other), replace=False)
            start = block_start[writer]
            random = all_genuine[np.where(picks < start, picks, picks + len(own))]
            supported = sorted({k for k in k_list if k < len(own)})
            if not supported:
                continue
            _score_writer(perm, skilled, random, supported, table, score, rescans, pools, fusion_list)

    results: list[ReferenceResult] = []
    for k in k_list:
        for fusion in fusion_list:
            acc = pools[(k, fusion)]
            if acc.writers > 0:
                results.append(_result(k, fusion, acc))
    return results


def _score_writer(
    perm: IntArray,
    skilled: IntArray,
    random: IntArray,
    supported: list[int],
    table: np.ndarray,
    score: ScoreFn,
    rescans: dict[int, set[int]],
    pools: dict[tuple[int, str], _Pool],
    fusions: list[str],
) -> None:
    """Score one writer and repeat with one ``score`` call and add the fused scores to ``pools``."""
    k_max = supported[-1]
    # Genuine sample at position j of `perm` is a query for k iff k <= limit_j: it is not a reference
    # (k <= j) and no reference is a re-scan of it (k <= position of its first re-scan).
    limits: list[int] = []
    first_position: dict[int, int] = {}
    for j, row in enumerate(perm.tolist()):
        if j:
            earlier = [first_position[x] for x in (row, *rescans.get(row, ())) if x in first_position]
            limits.append(min(earlier, default=j))
        first_position.setdefault(row, j)
    # Columns (references) each genuine query needs: the largest supported k it is a query for.
    gen_rows = perm[1:]
    gen_cols = np.asarray([_largest_at_most(supported, limit) for limit in limits], dtype=np.intp)
    query_rows = np.concatenate([gen_rows, skilled, random]).astype(np.intp)
    query_cols = np.concatenate([gen_cols, np.full(skilled.size + random.size, k_max, np.intp)])
    n_pairs = int(query_cols.sum())
    matrix = np.full((query_rows.size, k_max), np.nan)
    if n_pairs:
        first = np.repeat(query_rows, query_cols)
        starts = np.repeat(np.cumsum(query_cols) - query_cols, query_cols)
        column = np.arange(n_pairs) - starts
        values = np.asarray(score(table[perm[column]], table[first]), dtype=np.float64)
        if values.shape != (n_pairs,):
            raise ValueError(f"score returned shape {values.shape} for {n_pairs} pairs; expected ({n_pairs},)")
        if not np.isfinite(values).all():
            raise ValueError("score returned non-finite values")
        matrix[np.repeat(np.arange(query_rows.size), query_cols), column] = values

    n_gen, n_skilled = gen_rows.size, skilled.size
    limit_arr = np.asarray(limits, dtype=np.intp)
    for k in supported:
        gen_mask = limit_arr >= k
        parts = (
            matrix[:n_gen][gen_mask, :k],
            matrix[n_gen : n_gen + n_skilled, :k],
            matrix[n_gen + n_skilled :, :k],
        )
        for fusion in fusions:
            acc = pools[(k, fusion)]
            fused = [part.mean(axis=1) if fusion == "mean" else part.max(axis=1) for part in parts]
            acc.genuine.append(fused[0])
            acc.skilled.append(fused[1])
            acc.random.append(fused[2])


def _largest_at_most(ordered: list[int], limit: int) -> int:
    """The largest value of the ascending ``ordered`` that is ``<= limit`` (0 if none)."""
    position = bisect.bisect_right(ordered, limit)
    return ordered[position - 1] if position else 0


def _result(k: int, fusion: str, acc: _Pool) -> ReferenceResult:
    genuine = np.concatenate(acc.genuine)
    skilled = np.concatenate(acc.skilled)
    random = np.concatenate(acc.random)

    def eer(*forgeries: np.ndarray) -> float:
        return equal_error_rate(*labelled_scores(genuine, np.concatenate(forgeries))).eer

    return ReferenceResult(
        k=k,
        fusion=fusion,
        eer=eer(skilled, random),
        eer_skilled=eer(skilled),
        eer_random=eer(random),
        n_genuine=int(genuine.size),
        n_skilled=int(skilled.size),
        n_random=int(random.size),
        writers=acc.writers,
    )

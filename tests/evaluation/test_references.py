"""Tests of inkproof.evaluation.references (K-reference verification with fused scores)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from inkproof.evaluation.metrics import equal_error_rate
from inkproof.evaluation.references import ReferenceResult, ReferenceSample, reference_set_evaluation


def neg_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -np.linalg.norm(a - b, axis=1)


def clustered(
    writers: int = 20, genuine: int = 12, forged: int = 8, dim: int = 16, seed: int = 0
) -> tuple[list[ReferenceSample], np.ndarray]:
    """Writers far apart; genuine samples spread around the writer's centre; skilled forgeries
    shifted from the centre towards nowhere in particular (between the writer and the others)."""
    rng = np.random.default_rng(seed)
    samples: list[ReferenceSample] = []
    rows: list[np.ndarray] = []
    for w in range(writers):
        centre = rng.normal(0.0, 30.0, dim)
        shift = rng.normal(0.0, 1.0, dim)
        shift *= 3.0 / np.linalg.norm(shift)
        for _ in range(genuine):
            samples.append(ReferenceSample(f"w{w:02d}", True, len(rows)))
            rows.append(centre + rng.normal(0.0, 1.0, dim))
        for _ in range(forged):
            samples.append(ReferenceSample(f"w{w:02d}", False, len(rows)))
            rows.append(centre + shift + rng.normal(0.0, 1.0, dim))
    return samples, np.asarray(rows)


def grid(writers: int, genuine: int, forged: int) -> tuple[list[ReferenceSample], np.ndarray]:
    """Samples whose embedding's first coordinate is their own row (so a score fn can see the rows)."""
    samples: list[ReferenceSample] = []
    for w in range(writers):
        samples += [ReferenceSample(f"w{w}", True, len(samples) + i) for i in range(genuine)]
        samples += [ReferenceSample(f"w{w}", False, len(samples) + i) for i in range(forged)]
    rng = np.random.default_rng(123)
    embeddings = np.column_stack([np.arange(len(samples), dtype=np.float64), rng.normal(size=len(samples))])
    return samples, embeddings


class Recorder:
    """A score fn ``(references, queries)`` recording every call and every (query row, reference row)."""

    def __init__(self) -> None:
        self.calls = 0
        self.pairs: list[tuple[int, int]] = []  # (query row, reference row)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        assert a.shape == b.shape and a.ndim == 2
        self.calls += 1
        self.pairs += list(zip(b[:, 0].astype(int).tolist(), a[:, 0].astype(int).tolist(), strict=True))
        return -np.abs(a[:, 1] - b[:, 1])


def by_key(results: list[ReferenceResult]) -> dict[tuple[int, str], ReferenceResult]:
    return {(r.k, r.fusion): r for r in results}


# --------------------------------------------------------------------------------------------
# Behaviour on well-separated synthetic writers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_fusion_eer_falls_with_more_references(seed: int) -> None:
    samples, embeddings = clustered(seed=seed)
    results = by_key(reference_set_evaluation(samples, embeddings, neg_distance, ks=(1, 3, 5, 10), seed=seed))
    eers = [results[(k, "mean")].eer for k in (1, 3, 5, 10)]
    assert all(0.0 < e < 0.5 for e in eers)
    assert all(later <= earlier + 0.01 for earlier, later in itertools.pairwise(eers))
    assert eers[-1] < eers[0] - 0.03
    skilled = [results[(k, "mean")].eer_skilled for k in (1, 3, 5, 10)]
    assert skilled[-1] < skilled[0]
    for result in results.values():
        assert result.eer_random == 0.0  # other writers are far away
        assert result.writers == 20
        assert result.eer <= result.eer_skilled  # adding trivially rejected random forgeries helps


def test_k1_mean_and_max_agree_and_match_a_direct_computation() -> None:
    samples, embeddings = grid(writers=3, genuine=4, forged=2)
    recorder = Recorder()
    results = reference_set_evaluation(samples, embeddings, recorder, ks=(1,), repeats=1, random_per_writer=2)
    assert [(r.k, r.fusion) for r in results] == [(1, "mean"), (1, "max")]
    assert results[0].eer == results[1].eer and results[0].eer_skilled == results[1].eer_skilled
    # Rebuild the pooled scores from the recorded (query, reference) pairs: with k=1 each is one query.
    writer_of = {s.index: s.writer for s in samples}
    genuine_rows = {s.index for s in samples if s.genuine}
    labels, scores = [], []
    for query, ref in recorder.pairs:
        labels.append(int(query in genuine_rows and writer_of[query] == writer_of[ref]))
        scores.append(-abs(embeddings[query, 1] - embeddings[ref, 1]))
    assert sum(labels) == 9 and len(labels) == 9 + 6 + 6
    assert results[0].eer == equal_error_rate(labels, scores).eer


def test_mean_and_max_fuse_the_reference_scores() -> None:
    # Writer "a": genuine rows 0-2, forgery row 3. Genuine queries score 0.6 against every reference;
    # the forgery scores 0.9 against row 0 and 0.0 against rows 1 and 2. With k=2 mean fusion gives
    # the forgery 0.45 or 0.0 (< 0.6 always), max fusion 0.9 whenever row 0 is a reference.
    samples = [ReferenceSample("a", True, i) for i in range(3)] + [ReferenceSample("a", False, 3)]
    embeddings = np.arange(4.0)[:, None]

    def table_score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ref, query = a[:, 0], b[:, 0]  # references first
        return np.where(query == 3, np.where(ref == 0, 0.9, 0.0), 0.6)

    results = by_key(reference_set_evaluation(samples, embeddings, table_score, ks=(1, 2), repeats=12))
    assert results[(2, "mean")].eer == 0.0
    assert results[(2, "max")].eer > 0.2
    assert results[(2, "mean")].n_genuine == 12 and results[(2, "mean")].n_skilled == 12
    assert results[(1, "mean")] == ReferenceResult(**{**results[(1, "max")].__dict__, "fusion": "mean"})


# --------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------


def test_counts_follow_the_protocol_exactly() -> None:
    samples, embeddings = grid(writers=3, genuine=4, forged=2)
    results = reference_set_evaluation(samples, embeddings, Recorder(), ks=(1,), repeats=1, random_per_writer=2)
    for result in results:
        assert (result.n_genuine, result.n_skilled, result.n_random, result.writers) == (9, 6, 6, 3)

    twice = by_key(reference_set_evaluation(samples, embeddings, Recorder(), ks=(1, 3), repeats=2, random_per_writer=2))
    assert (twice[(1, "mean")].n_genuine, twice[(1, "mean")].n_skilled) == (2 * 9, 2 * 6)
    assert twice[(1, "mean")].n_random == 2 * 6
    assert (twice[(3, "max")].n_genuine, twice[(3, "max")].n_skilled) == (2 * 3, 2 * 6)


def test_default_random_queries_and_cap_at_the_pool() -> None:
    samples, embeddings = grid(writers=3, genuine=4, forged=2)
    # Default: max(skilled forgeries, 5) = 5 per writer; each writer's pool has 8 other genuine samples.
    default = reference_set_evaluation(samples, embeddings, Recorder(), ks=(1,), repeats=1)
    assert default[0].n_random == 3 * 5
    many = reference_set_evaluation(samples, embeddings, Recorder(), ks=(1,), repeats=1, random_per_writer=100)
    assert many[0].n_random == 3 * 8
    samples7, embeddings7 = grid(writers=3, genuine=10, forged=7)
    assert reference_set_evaluation(samples7, embeddings7, Recorder(), ks=(1,), repeats=1)[0].n_random == 3 * 7


def test_random_queries_are_other_writers_genuine_samples_without_repeats() -> None:
    samples, embeddings = grid(writers=4, genuine=5, forged=2)
    recorder = Recorder()
    reference_set_evaluation(samples, embeddings, recorder, ks=(1,), repeats=1, random_per_writer=6)
    writer_of = {s.index: s.writer for s in samples}
    genuine = {s.index for s in samples if s.genuine}
    assert recorder.calls == 4
    per_writer: dict[str, list[int]] = {}
    for query, ref in recorder.pairs:
        assert ref in genuine  # references are always genuine
        if writer_of[query] != writer_of[ref]:
            assert query in genuine
            per_writer.setdefault(writer_of[ref], []).append(query)
    assert sorted(per_writer) == ["w0", "w1", "w2", "w3"]
    for draws in per_writer.values():
        assert len(draws) == 6 and len(set(draws)) == 6


def test_writers_count_depends_on_k() -> None:
    samples = [ReferenceSample("a", True, i) for i in range(4)] + [ReferenceSample("b", True, i) for i in range(4, 10)]
    samples += [ReferenceSample("a", False, 10), ReferenceSample("b", False, 11)]
    embeddings = np.random.default_rng(0).normal(size=(12, 3))
    results = by_key(reference_set_evaluation(samples, embeddings, neg_distance, ks=(3, 4, 5), repeats=2))
    assert results[(3, "mean")].writers == 2
    assert results[(4, "mean")].writers == 1 and results[(4, "mean")].n_genuine == 2 * 2
    assert results[(5, "max")].writers == 1 and results[(5, "max")].n_skilled == 2 * 1


# --------------------------------------------------------------------------------------------
# Re-scans
# --------------------------------------------------------------------------------------------


def test_rescan_of_a_reference_is_never_scored() -> None:
    samples, embeddings = grid(writers=2, genuine=4, forged=2)
    # Rows 0/1 and 2/3 of writer w0 are re-scans of each other: identical embeddings (but the row id).
    embeddings[1, 1:] = embeddings[0, 1:]
    embeddings[3, 1:] = embeddings[2, 1:]
    same = {frozenset({0, 1}), frozenset({2, 3})}

    control = Recorder()
    reference_set_evaluation(samples, embeddings, control, ks=(1,), repeats=20)
    assert {0, 1} in [set(p) for p in control.pairs]  # without the exclusion the duplicate is scored

    recorder = Recorder()
    results = reference_set_evaluation(samples, embeddings, recorder, ks=(1, 2, 3), repeats=20, same_instance=same)
    scored = [set(p) for p in recorder.pairs]
    assert {0, 1} not in scored and {2, 3} not in scored
    assert all(len(p) == 2 for p in scored)  # nothing is scored against itself
    # k=1: whichever reference w0 gets, exactly one of its 3 other genuine samples is its re-scan.
    k1 = by_key(results)[(1, "mean")]
    assert k1.n_genuine == 20 * (2 + 3)
    # k=3: w0's single remaining sample is always a re-scan of one of the 3 references.
    assert by_key(results)[(3, "max")].n_genuine == 20 * (0 + 1)


def test_rescan_groups_and_repeated_rows_are_excluded() -> None:
    # Samples 0, 1 share table row 0; rows 1, 2 form a re-scan group given as a 2-set; only row 3 is free.
    samples = [ReferenceSample("a", True, row) for row in (0, 0, 1, 2, 3)]
    samples += [ReferenceSample("b", True, row) for row in (4, 5)] + [ReferenceSample("a", False, 6)]
    embeddings = np.column_stack([np.arange(7.0), np.linspace(0.0, 1.0, 7)])
    recorder = Recorder()
    reference_set_evaluation(samples, embeddings, recorder, ks=(1, 2), repeats=30, same_instance=[frozenset({1, 2})])
    scored = {tuple(sorted(p)) for p in recorder.pairs}
    assert (0, 0) not in scored and (1, 2) not in scored
    assert (0, 3) in scored and (1, 3) in scored


# --------------------------------------------------------------------------------------------
# Determinism, batching, skipped ks and errors
# --------------------------------------------------------------------------------------------


def test_same_seed_same_results_other_seed_differs() -> None:
    samples, embeddings = clustered(writers=8, seed=3)
    first = reference_set_evaluation(samples, embeddings, neg_distance, seed=7, repeats=3)
    second = reference_set_evaluation(samples, embeddings, neg_distance, seed=7, repeats=3)
    other = reference_set_evaluation(samples, embeddings, neg_distance, seed=8, repeats=3)
    assert first == second
    assert first != other
    # The order of `samples` does not matter (writers and rows are taken in sorted order).
    shuffled = [samples[i] for i in np.random.default_rng(0).permutation(len(samples))]
    assert reference_set_evaluation(shuffled, embeddings, neg_distance, seed=7, repeats=3) == first


def test_a_row_does_not_depend_on_the_other_ks() -> None:
    samples, embeddings = clustered(writers=6, seed=4)
    alone = reference_set_evaluation(samples, embeddings, neg_distance, ks=(3,), fusions=("max",))
    together = by_key(reference_set_evaluation(samples, embeddings, neg_distance, ks=(10, 1, 3)))
    assert alone == [together[(3, "max")]]


def test_score_is_called_once_per_writer_and_repeat() -> None:
    samples, embeddings = grid(writers=5, genuine=6, forged=3)
    # Writer "tiny" has a single genuine sample: no k can use it, so it is never scored.
    samples = [*samples, ReferenceSample("tiny", True, 0), ReferenceSample("tiny", False, 1)]
    recorder = Recorder()
    reference_set_evaluation(samples, embeddings, recorder, ks=(1, 3, 5), fusions=("mean", "max"), repeats=4)
    assert recorder.calls == 5 * 4


def test_rows_are_ordered_by_k_then_fusion_and_too_large_k_is_skipped() -> None:
    samples, embeddings = grid(writers=3, genuine=4, forged=2)
    results = reference_set_evaluation(
        samples, embeddings, Recorder(), ks=(3, 1, 4, 50), fusions=("max", "mean"), repeats=1
    )
    assert [(r.k, r.fusion) for r in results] == [(3, "max"), (3, "mean"), (1, "max"), (1, "mean")]
    assert reference_set_evaluation(samples, embeddings, Recorder(), ks=(4,), repeats=1) == []


def test_to_dict_is_json_ready() -> None:
    samples, embeddings = grid(writers=1, genuine=4, forged=2)  # one writer: no random forgeries
    (result,) = reference_set_evaluation(samples, embeddings, Recorder(), ks=(2,), fusions=("mean",))
    assert math.isnan(result.eer_random) and result.n_random == 0
    data = result.to_dict()
    assert data["eer_random"] is None and data["k"] == 2 and data["fusion"] == "mean"
    assert json.loads(json.dumps(data, allow_nan=False)) == data


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ks": (1, 0)}, "k must be"),
        ({"ks": (-2,)}, "k must be"),
        ({"ks": (1.5,)}, "k must be"),
        ({"fusions": ("mean", "median")}, "unknown fusion"),
        ({"repeats": 0}, "repeats"),
        ({"random_per_writer": -1}, "random_per_writer"),
        ({"same_instance": [frozenset({0, 99})]}, "same_instance"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    samples, embeddings = grid(writers=2, genuine=4, forged=2)
    recorder = Recorder()
    with pytest.raises(ValueError, match=message):
        reference_set_evaluation(samples, embeddings, recorder, **kwargs)  # type: ignore[arg-type]
    assert recorder.calls == 0  # arguments are checked before any scoring


def test_embeddings_that_do_not_match_the_samples_raise() -> None:
    samples, embeddings = grid(writers=2, genuine=4, forged=2)
    with pytest.raises(ValueError, match="outside the embeddings"):
        reference_set_evaluation(samples, embeddings[:-1], Recorder())
    with pytest.raises(ValueError, match="outside the embeddings"):
        reference_set_evaluation([*samples, ReferenceSample("w0", True, -1)], embeddings, Recorder())
    with pytest.raises(ValueError, match="2-D"):
        reference_set_evaluation(samples, embeddings[:, 0], Recorder())


def test_bad_score_output_raises() -> None:
    samples, embeddings = grid(writers=2, genuine=4, forged=2)
    with pytest.raises(ValueError, match="shape"):
        reference_set_evaluation(samples, embeddings, lambda a, b: np.zeros(len(a) + 1))
    with pytest.raises(ValueError, match="non-finite"):
        reference_set_evaluation(samples, embeddings, lambda a, b: np.full(len(a), np.nan))

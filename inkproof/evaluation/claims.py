"""Claims with K references: every scoring method of :mod:`inkproof.claims` measured per K, the
per-K choice and operating points calibrated on VALIDATION writers, and the cohort file.

Protocol (the draws of :func:`inkproof.evaluation.references.reference_set_evaluation`, so the
``mean`` rows equal its mean-fusion rows): for every repeat and writer, the first K of a shuffled
order of the writer's genuine signatures are the references; the queries are the writer's other
genuine signatures (never a re-scan of a reference), all its skilled forgeries, and as many
genuine signatures of other writers (random forgeries) as skilled ones. Scores of all writers are
pooled and every threshold is global, as a store applies it.

:func:`calibrate_claims` runs this on the validation writers of a model's split, chooses for each K
the method with the lowest pooled EER, records thresholds for every method and operating point, and
writes the cohort (genuine embeddings of TRAINING writers) beside the card as ``<card>.cohort.npy``.
Test writers are never looked at; :func:`evaluate_claims` reports them with the card's thresholds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.claims import (
    CLASSIFIERS,
    METHODS,
    OPERATING_POINTS,
    ClaimsCalibration,
    Cohort,
    cosine_matrix,
    fit_writer_model,
    flag_outliers,
    load_cohort,
    methods_for,
    parse_method,
    reference_cohort_stats,
    score_claim,
    settings_for,
)
from inkproof.evaluation.metrics import equal_error_rate, labelled_scores, threshold_at_far
from inkproof.evaluation.references import MIN_RANDOM_PER_WRITER, ReferenceSample

DEFAULT_KS = (1, 3, 5, 10)
COHORT_PER_WRITER = 6
#: The cohort beside a card ``<stem>.json`` (one per card: an fp32 and an int8 export embed differently).
COHORT_SUFFIX = ".cohort.npy"
#: Percentile of validation genuine references' consistency below which a reference is flagged.
OUTLIER_PERCENTILE = 1.0


@dataclass(frozen=True)
class ClaimScores:
    genuine: np.ndarray
    skilled: np.ndarray
    random: np.ndarray
    writers: int


@dataclass(frozen=True)
class ClaimMetrics:
    """One method at one K: pooled EERs and, per operating point, the threshold (from validation
    unless calibrated here), FRR and the FARs it gives on these scores."""

    k: int
    method: str
    eer: float
    eer_skilled: float
    eer_random: float
    points: dict[str, dict[str, float]]  # operating point -> threshold, frr, far_skilled, far_random
    n_genuine: int
    n_skilled: int
    n_random: int
    writers: int
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        return {
            "k": self.k,
            "method": self.method,
            "eer": clean(self.eer),
            "eer_skilled": clean(self.eer_skilled),
            "eer_random": clean(self.eer_random),
            "points": clean(self.points),
            "n_genuine": self.n_genuine,
            "n_skilled": self.n_skilled,
            "n_random": self.n_random,
            "writers": self.writers,
            "chosen": self.chosen,
        }


def build_cohort(
    samples: Sequence[ReferenceSample], embeddings: np.ndarray, *, per_writer: int, seed: int
) -> np.ndarray:
    """Up to ``per_writer`` genuine embeddings of each writer in ``samples``, drawn with ``seed``."""
    rows: dict[str, list[int]] = {}
    for sample in samples:
        if sample.genuine:
            rows.setdefault(sample.writer, []).append(sample.index)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for writer in sorted(rows):
        own = sorted(rows[writer])
        picks = rng.permutation(len(own))[:per_writer]
        chosen.extend(own[i] for i in sorted(picks))
    return np.asarray(embeddings[chosen], dtype=np.float32)


def claim_scores(
    samples: Sequence[ReferenceSample],
    embeddings: np.ndarray,
    cohort: Cohort | None,
    *,
    methods: Sequence[str] = METHODS,
    ks: Sequence[int] = DEFAULT_KS,
    repeats: int = 5,
    seed: int = 0,
    same_instance: Collection[frozenset[int]] = frozenset(),
    settings: dict[str, dict[str, float]] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[tuple[int, str], ClaimScores]:
    """Pooled genuine / skilled / random scores of every (K, method) the writers support."""
    table = np.asarray(embeddings, dtype=np.float64)
    rescans: dict[int, set[int]] = {}
    for group in same_instance:
        for row in group:
            rescans.setdefault(int(row), set()).update(int(r) for r in group if r != row)
    genuine_rows: dict[str, list[int]] = {}
    skilled_rows: dict[str, list[int]] = {}
    for sample in samples:
        genuine_rows.setdefault(sample.writer, [])
        skilled_rows.setdefault(sample.writer, [])
        (genuine_rows if sample.genuine else skilled_rows)[sample.writer].append(int(sample.index))
    writers = sorted(genuine_rows)
    for writer in writers:
        genuine_rows[writer].sort()
        skilled_rows[writer].sort()
    all_genuine = np.asarray([row for w in writers for row in genuine_rows[w]], dtype=np.intp)
    block: dict[str, int] = {}
    offset = 0
    for writer in writers:
        block[writer] = offset
        offset += len(genuine_rows[writer])
    # z-norm statistics of every row once (a row is a reference many times over).
    stats = reference_cohort_stats(table, cohort) if cohort is not None else None
    pools: dict[tuple[int, str], list[list[np.ndarray]]] = {}
    counts: dict[tuple[int, str], int] = {}
    for k in ks:
        for method in methods_for(k, methods):
            pools[(k, method)] = [[], [], []]
            counts[(k, method)] = sum(1 for w in writers if len(genuine_rows[w]) > k)
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        for writer in writers:
            own = genuine_rows[writer]
            if len(own) < 2:
                continue
            perm = np.asarray(own, dtype=np.intp)[rng.permutation(len(own))]
            skilled = np.asarray(skilled_rows[writer], dtype=np.intp)
            wanted = max(len(skilled), MIN_RANDOM_PER_WRITER)
            n_other = all_genuine.size - len(own)
            picks = rng.choice(n_other, size=min(wanted, n_other), replace=False)
            start = block[writer]
            random = all_genuine[np.where(picks < start, picks, picks + len(own))]
            for k in ks:
                if k >= len(own):
                    continue
                references = perm[:k]
                near = set(references.tolist())
                for ref in references.tolist():
                    near |= rescans.get(ref, set())
                genuine = np.asarray([row for row in perm[k:].tolist() if row not in near], dtype=np.intp)
                queries = np.concatenate([genuine, skilled, random]).astype(np.intp)
                ref_matrix = table[references]
                ref_stats = (stats[0][references], stats[1][references]) if stats is not None else None
                for method in methods_for(k, methods):
                    model = None
                    if method in CLASSIFIERS:
                        assert cohort is not None
                        model = fit_writer_model(method, ref_matrix, cohort, settings_for(settings, method))
                    result = score_claim(
                        method, table[queries], ref_matrix, cohort=cohort, model=model, reference_cohort=ref_stats
                    )
                    pool = pools[(k, method)]
                    pool[0].append(result.score[: genuine.size])
                    pool[1].append(result.score[genuine.size : genuine.size + skilled.size])
                    pool[2].append(result.score[genuine.size + skilled.size :])
        if log is not None:
            log(f"claims protocol: repeat {r + 1}/{repeats} done")

    def joined(part: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(part) if part else np.zeros(0)

    return {
        key: ClaimScores(joined(pool[0]), joined(pool[1]), joined(pool[2]), counts[key]) for key, pool in pools.items()
    }


def _eer(positive: np.ndarray, *negatives: np.ndarray) -> tuple[float, float]:
    negative = np.concatenate(negatives)
    if positive.size == 0 or negative.size == 0:
        return math.nan, math.nan
    result = equal_error_rate(*labelled_scores(positive, negative))
    return result.eer, result.threshold


def claim_metrics(k: int, method: str, scores: ClaimScores, thresholds: dict[str, float] | None = None) -> ClaimMetrics:
    """EERs and operating points; ``thresholds`` (from validation) are applied, else calibrated
    on ``scores`` (which must then be validation scores)."""
    eer, eer_threshold = _eer(scores.genuine, scores.skilled, scores.random)
    eer_skilled, _ = _eer(scores.genuine, scores.skilled)
    eer_random, _ = _eer(scores.genuine, scores.random)
    points: dict[str, dict[str, float]] = {}
    for point, target in OPERATING_POINTS.items():
        if thresholds is not None:
            threshold = float(thresholds[point])
        elif target is None:
            threshold = eer_threshold
        else:
            threshold = threshold_at_far(scores.skilled, target) if scores.skilled.size else math.nan
        points[point] = {
            "threshold": threshold,
            "frr": float(np.mean(scores.genuine < threshold)) if scores.genuine.size else math.nan,
            "far_skilled": float(np.mean(scores.skilled >= threshold)) if scores.skilled.size else math.nan,
            "far_random": float(np.mean(scores.random >= threshold)) if scores.random.size else math.nan,
        }
    return ClaimMetrics(
        k,
        method,
        eer,
        eer_skilled,
        eer_random,
        points,
        int(scores.genuine.size),
        int(scores.skilled.size),
        int(scores.random.size),
        scores.writers,
    )


def evaluate_claims(
    samples: Sequence[ReferenceSample],
    embeddings: np.ndarray,
    calibration: ClaimsCalibration,
    cohort: Cohort | None,
    *,
    ks: Sequence[int] | None = None,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    repeats: int = 5,
    same_instance: Collection[frozenset[int]] = frozenset(),
) -> list[ClaimMetrics]:
    """Every method at every K on held-out writers, at the thresholds the card calibrated on
    validation writers; ``chosen`` marks the card's choice for that K."""
    ks = tuple(ks or calibration.ks)
    scores = claim_scores(
        samples,
        embeddings,
        cohort,
        methods=methods,
        ks=ks,
        repeats=repeats,
        seed=seed,
        same_instance=same_instance,
        settings=calibration.settings,
    )
    rows = []
    for (k, method), pooled in scores.items():
        thresholds = calibration.thresholds.get(k, {}).get(method)
        if thresholds is None:
            continue
        row = claim_metrics(k, method, pooled, thresholds)
        rows.append(ClaimMetrics(**{**row.__dict__, "chosen": calibration.chosen.get(k) == method}))
    return rows


def _reference_sets(
    samples: Sequence[ReferenceSample], k: int, repeats: int, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """K-sets of genuine references per writer and repeat; the same with the last reference
    replaced by one of the writer's skilled forgeries, and by another writer's genuine signature."""
    genuine: dict[str, list[int]] = {}
    skilled: dict[str, list[int]] = {}
    for sample in samples:
        (genuine if sample.genuine else skilled).setdefault(sample.writer, []).append(sample.index)
    sets: list[np.ndarray] = []
    forged_sets: list[np.ndarray] = []
    mixups: list[np.ndarray] = []
    writers = sorted(genuine)
    for r in range(repeats):
        rng = np.random.default_rng([seed, r, 7])
        for writer in writers:
            own = sorted(genuine[writer])
            if len(own) < k:
                continue
            chosen = np.asarray(own)[rng.permutation(len(own))[:k]]
            sets.append(chosen)
            forged = sorted(skilled.get(writer, []))
            if forged:
                forged_sets.append(np.concatenate([chosen[: k - 1], [forged[int(rng.integers(len(forged)))]]]))
            other = [w for w in writers if w != writer]
            if other:
                stranger = sorted(genuine[other[int(rng.integers(len(other)))]])
                mixups.append(np.concatenate([chosen[: k - 1], [stranger[int(rng.integers(len(stranger)))]]]))
    return sets, forged_sets, mixups


def outlier_rates(
    samples: Sequence[ReferenceSample],
    embeddings: np.ndarray,
    threshold: float,
    *,
    k: int = 5,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """How often :func:`inkproof.claims.flag_outliers` flags something in a genuine K-set, and
    how often it flags a skilled forgery or another writer's signature put among K-1 genuine ones."""
    table = np.asarray(embeddings, dtype=np.float64)
    sets, forged_sets, mixups = _reference_sets(samples, k, repeats, seed)

    def last_flagged(groups: list[np.ndarray]) -> float:
        if not groups:
            return math.nan
        return float(np.mean([(k - 1) in flag_outliers(table[g], threshold).flagged for g in groups]))

    return {
        "k": k,
        "genuine_sets_with_a_flag": float(np.mean([bool(flag_outliers(table[g], threshold).flagged) for g in sets]))
        if sets
        else math.nan,
        "skilled_forgery_among_references_flagged": last_flagged(forged_sets),
        "other_writer_among_references_flagged": last_flagged(mixups),
        "sets": len(sets),
    }


def outlier_threshold(
    samples: Sequence[ReferenceSample], embeddings: np.ndarray, *, k: int = 5, repeats: int = 5, seed: int = 0
) -> tuple[float, dict[str, float]]:
    """The consistency threshold: the OUTLIER_PERCENTILE percentile of each genuine reference's
    mean score against the K-1 others, over K-sets of validation writers; with its rates there."""
    table = np.asarray(embeddings, dtype=np.float64)
    sets, _, _ = _reference_sets(samples, k, repeats, seed)
    values: list[float] = []
    for group in sets:
        sims = cosine_matrix(table[group], table[group])
        np.fill_diagonal(sims, np.nan)
        values.extend(np.nanmean(sims, axis=1).tolist())
    threshold = float(np.percentile(values, OUTLIER_PERCENTILE))
    rates = outlier_rates(samples, embeddings, threshold, k=k, repeats=repeats, seed=seed)
    return threshold, {"percentile": OUTLIER_PERCENTILE, **rates}


@dataclass(frozen=True)
class ClaimsCalibrationResult:
    card_path: Path
    calibration: ClaimsCalibration
    validation: tuple[ClaimMetrics, ...]


def calibrate_claims(
    model: str | Path,
    *,
    data: Sequence[str | Path] | None = None,
    split_file: str | Path | None = None,
    out: str | Path | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    methods: Sequence[str] = METHODS,
    repeats: int = 5,
    seed: int = 0,
    cohort_per_writer: int = COHORT_PER_WRITER,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> ClaimsCalibrationResult:
    """Cohort from the TRAINING writers, method and thresholds per K from the VALIDATION writers
    of the model's split; writes ``<card>.cohort.npy`` and the card (in place, or a copy in ``out``)."""
    import shutil

    from inkproof.artifact import ModelCard, card_path_for, sha256_file
    from inkproof.data.adapters import load_dataset
    from inkproof.data.records import combine_datasets
    from inkproof.data.splits import WriterSplit
    from inkproof.errors import SplitError
    from inkproof.evaluation.scoring import load_scorer
    from inkproof.evaluation.selection import writers_in

    card_path = card_path_for(model)
    card = ModelCard.load(card_path)
    sources = [str(d) for d in data] if data else list(card.training.get("data", []))
    if not sources:
        raise SplitError("the model card does not name its training data; pass --data")
    datasets = [load_dataset(source) for source in sources]
    dataset = datasets[0] if len(datasets) == 1 else combine_datasets(datasets)
    if split_file is not None:
        split = WriterSplit.load(split_file)
    elif "split" in card.training:
        split = WriterSplit.from_dict(card.training["split"])
    else:
        raise SplitError("the model card carries no split; pass --split-file")
    train = writers_in(dataset, split.train)
    validation = writers_in(dataset, split.validation)
    if not train or not validation:
        raise SplitError("the split names no training or no validation writers of this data")
    subset = dataset.subset([*train, *validation])
    paths = sorted({r.path for r in subset.records})
    row = {p: i for i, p in enumerate(paths)}
    log(f"embedding {len(paths)} signatures of {len(train)} training and {len(validation)} validation writers")
    scorer = load_scorer(card_path, device="cpu")
    embeddings = embed_files(scorer, paths, cache_dir)
    train_set, validation_set = set(train), set(validation)
    train_samples = [
        ReferenceSample(r.writer, r.is_genuine, row[r.path]) for r in subset.records if r.writer in train_set
    ]
    val_samples = [
        ReferenceSample(r.writer, r.is_genuine, row[r.path]) for r in subset.records if r.writer in validation_set
    ]
    cohort_matrix = build_cohort(train_samples, embeddings, per_writer=cohort_per_writer, seed=seed)
    target = Path(out) if out is not None else card_path.parent
    if target.suffix == ".json":
        target_card = target
        target = target.parent
    else:
        target_card = target / card_path.name
    target.mkdir(parents=True, exist_ok=True)
    if target.resolve() != card_path.parent.resolve():
        for name in card.files.values():
            if name != card.files.get("cohort"):
                shutil.copyfile(card_path.parent / name, target / name)
    cohort_file = target_card.stem + COHORT_SUFFIX
    cohort_path = target / cohort_file
    np.save(cohort_path, cohort_matrix, allow_pickle=False)
    cohort = load_cohort(cohort_path)
    same = {frozenset((row[a], row[b])) for a, b in subset.near_duplicates if a in row and b in row}
    log(f"scoring {len(methods)} methods at K = {', '.join(map(str, ks))} on the validation writers")
    scores = claim_scores(
        val_samples, embeddings, cohort, methods=methods, ks=ks, repeats=repeats, seed=seed, same_instance=same, log=log
    )
    metrics = {key: claim_metrics(key[0], key[1], value) for key, value in scores.items()}
    chosen: dict[int, str] = {}
    thresholds: dict[int, dict[str, dict[str, float]]] = {}
    for k in ks:
        rows = [m for (kk, _), m in metrics.items() if kk == k and math.isfinite(m.eer)]
        if not rows:
            continue
        # Lowest pooled EER; ties go to the simpler method (earlier in METHODS).
        best = min(rows, key=lambda m: (round(m.eer, 6), METHODS.index(m.method)))
        chosen[k] = best.method
        thresholds[k] = {m.method: {p: v["threshold"] for p, v in m.points.items()} for m in rows}
    outlier, outlier_record = outlier_threshold(val_samples, embeddings, seed=seed)
    validation_rows = tuple(
        ClaimMetrics(**{**m.__dict__, "chosen": chosen.get(m.k) == m.method}) for m in metrics.values()
    )
    calibration = ClaimsCalibration(
        chosen=chosen,
        thresholds=thresholds,
        cohort_file=cohort_file,
        cohort_sha256=cohort.sha256,
        outlier_threshold=outlier,
        settings={m: settings_for(None, m) for m in methods if m in CLASSIFIERS},
        record={
            "validation_writers": len(validation),
            "cohort": {"writers": len(train), "per_writer": cohort_per_writer, "size": len(cohort), "seed": seed},
            "repeats": repeats,
            "seed": seed,
            "data": [Path(source).name for source in sources],
            "criterion": "lowest pooled EER (genuine vs skilled + random) on validation writers, per K",
            "outliers": outlier_record,
            "validation": [m.to_dict() for m in validation_rows],
            "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        },
    )
    files = {**card.files, "cohort": cohort_file}
    digests = {k: v for k, v in card.sha256.items() if k != card.files.get("cohort")}
    digests[cohort_file] = sha256_file(cohort_path)
    updated = card.with_changes(files=files, sha256=digests, claims=calibration.to_dict())
    saved = updated.save(target_card)
    return ClaimsCalibrationResult(saved, calibration, validation_rows)


def embed_files(scorer: Any, paths: Sequence[Path], cache_dir: Path | None) -> np.ndarray:
    """Embeddings of image files with the model's own preprocessing (as evaluation embeds them)."""
    from inkproof.data.bank import build_image_bank

    bank = build_image_bank(paths, scorer.card.preprocess_config, cache_dir=cache_dir, description="signatures")
    parts = [scorer.embed(bank[i : i + 256].astype(np.float32) / 255.0) for i in range(0, len(bank), 256)]
    return np.concatenate(parts) if parts else np.zeros((0, scorer.card.embedding_dim), np.float32)


def method_label(method: str) -> str:
    """Readable name of a method for tables."""
    if method in CLASSIFIERS:
        return {"logreg": "writer logistic regression", "svm-linear": "writer linear SVM", "svm-rbf": "writer RBF SVM"}[
            method
        ]
    fusion, norm = parse_method(method)
    base = {"mean": "mean", "max": "max", "top3": "mean of top 3"}[fusion]
    return base if norm is None else f"{base}, {norm}"

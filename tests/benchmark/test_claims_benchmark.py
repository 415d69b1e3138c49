"""The claims part of the accuracy benchmark on the real test writers (bundled model, main split)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inkproof.artifact import ModelCard
from inkproof.benchmark.claims import claims_markdown, pooled_test_numbers, run_claims_benchmark
from inkproof.data.splits import WriterSplit
from inkproof.verifier import default_model_path


@pytest.mark.realdata
@pytest.mark.slow
def test_claims_benchmark_on_test_writers(shared_data: Path, tmp_path: Path) -> None:
    card = ModelCard.load(default_model_path())
    split = WriterSplit.from_dict(card.training["split"])
    # The cohort came from training writers, the choice from validation writers: none is a test writer.
    assert not set(split.test) & (set(split.train) | set(split.validation))
    record = run_claims_benchmark(shared_data, repeats=2, cache_dir=tmp_path / "cache", log=lambda _: None)
    assert [t["dataset"] for t in record["tests"]] == ["cedar", "bhsig-hindi"]
    for dataset in ("cedar", "bhsig-hindi"):
        chosen = pooled_test_numbers(record, dataset, 5)
        mean = next(
            r
            for t in record["tests"]
            if t["dataset"] == dataset
            for r in t["rows"]
            if r["k"] == 5 and r["method"] == "mean"
        )
        assert chosen is not None and chosen["method"] == "svm-rbf"
        # The writer's classifier beats the mean of 5 scores on writers nobody chose anything on.
        assert chosen["eer"] < mean["eer"]
        # Validation thresholds hold roughly on test writers: FAR on skilled forgeries near 5 %.
        assert chosen["points"]["far-skilled-5"]["far_skilled"] < 0.10
    assert "**writer RBF SVM**" in claims_markdown(record)

"""The second stage on signature boxes: fragments joined, candidates re-scored by a logistic model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inkproof.document.detector import FieldDetection
from inkproof.document.signature_filter import (
    FEATURES,
    SignatureFilter,
    candidate_features,
    fit_filter,
    merge_fragments,
)


def test_fragments_on_one_line_are_joined_and_stacked_signatures_are_not() -> None:
    left = FieldDetection("signature", (100, 500, 180, 540), 0.9)
    right = FieldDetection("signature", (195, 505, 260, 545), 0.95)  # 15 px gap, same line
    below = FieldDetection("signature", (100, 600, 260, 650), 0.97)  # the next signer, stacked
    merged = merge_fragments([left, right, below], gap=0.6, overlap=0.5)
    assert sorted(d.box for d in merged) == [(100, 500, 260, 545), (100, 600, 260, 650)]
    assert max(d.confidence for d in merged if d.box[1] == 500) == 0.95
    assert len(merge_fragments([left, right], gap=0.1, overlap=0.5)) == 2  # gap too wide for 0.1 x height


def test_features_see_logos_and_ink() -> None:
    gray = np.full((1000, 800), 255, dtype=np.uint8)
    gray[100:140, 100:300] = 0  # ink in the first box only
    ink = gray < 128
    boxes = [
        FieldDetection("signature", (100, 100, 300, 140), 0.9),
        FieldDetection("signature", (500, 800, 600, 850), 0.8),
    ]
    logo = [FieldDetection("logo", (90, 90, 310, 150), 0.9)]
    features = candidate_features(gray, ink, boxes, logo)
    assert features.shape == (2, len(FEATURES))
    column = {name: i for i, name in enumerate(FEATURES)}
    assert features[0, column["under_logo"]] == 1.0 and features[1, column["under_logo"]] == 0.0
    assert features[0, column["ink_inside"]] == 1.0 and features[1, column["ink_inside"]] == 0.0
    assert list(features[:, column["rank_on_page"]]) == [0.0, 1.0]


def test_the_filter_learns_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(FEATURES)))
    y = (x[:, 0] - 2 * x[:, 8] + 0.3 * rng.normal(size=400)) > 0
    fitted = fit_filter(x, y, l2=1.0, drop_below=0.1, merge_gap=0.5)
    accuracy = float(np.mean((fitted.probabilities(x) >= 0.5) == y))
    assert accuracy > 0.9
    path = fitted.save(tmp_path / "signature-filter.json")
    again = SignatureFilter.load(path)
    assert again == fitted
    assert np.allclose(again.probabilities(x), fitted.probabilities(x))
    with pytest.raises(ValueError, match="features"):
        SignatureFilter.from_dict({**fitted.to_dict(), "features": ["confidence"]})


def test_the_filter_rescoring_and_dropping_boxes() -> None:
    # A filter that believes only the ink inside a box: an empty box is dropped, an inked one kept.
    weights = tuple(10.0 if name == "ink_inside" else 0.0 for name in FEATURES)
    only_ink = SignatureFilter((0.0,) * len(FEATURES), (1.0,) * len(FEATURES), weights, -2.0, drop_below=0.5)
    gray = np.full((1000, 800), 255, dtype=np.uint8)
    gray[100:140, 100:300] = 0
    gray[500:520, 100:700] = 40  # a printed line elsewhere, so the page has an ink level to find
    found = [
        FieldDetection("signature", (100, 100, 300, 140), 0.6),
        FieldDetection("signature", (300, 800, 400, 850), 0.99),
        FieldDetection("logo", (0, 0, 50, 50), 0.7),
    ]
    kept = only_ink.apply(gray, found)
    assert [(d.label, d.box) for d in kept if d.label == "signature"] == [("signature", (100, 100, 300, 140))]
    assert next(d for d in kept if d.label == "signature").confidence > 0.99
    assert any(d.label == "logo" for d in kept)  # other classes pass unchanged

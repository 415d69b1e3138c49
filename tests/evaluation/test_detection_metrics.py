from __future__ import annotations

import math

import pytest

from inkproof.evaluation.detection import Detection, average_precision, box_iou, coco_average_precision


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_perfect_and_empty_detections() -> None:
    truth = {"p1": [("signature", (0, 0, 10, 10))], "p2": [("signature", (5, 5, 20, 20)), ("logo", (0, 0, 3, 3))]}
    perfect = [Detection("p1", "signature", (0, 0, 10, 10), 0.9), Detection("p2", "signature", (5, 5, 20, 20), 0.8)]
    assert average_precision(perfect, truth, "signature") == pytest.approx(1.0)
    assert average_precision([], truth, "signature") == 0.0
    assert math.isnan(average_precision(perfect, truth, "initials"))


def test_hand_worked_precision_recall() -> None:
    # Two ground-truth boxes; detections ranked: hit, miss (wrong page), hit.
    truth = {"a": [("signature", (0, 0, 10, 10))], "b": [("signature", (0, 0, 10, 10))]}
    detections = [
        Detection("a", "signature", (0, 0, 10, 10), 0.9),
        Detection("c", "signature", (0, 0, 10, 10), 0.8),
        Detection("b", "signature", (1, 0, 10, 10), 0.7),
    ]
    # Recall 0.5 at precision 1, recall 1.0 at precision 2/3: 51 points at 1.0, 50 at 2/3.
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101
    assert average_precision(detections, truth, "signature") == pytest.approx(expected)


def test_duplicates_count_as_false_positives_and_iou_range() -> None:
    truth = {"a": [("signature", (0, 0, 100, 100))]}
    detections = [
        Detection("a", "signature", (0, 0, 100, 100), 0.9),
        Detection("a", "signature", (0, 0, 100, 100), 0.8),
    ]
    assert average_precision(detections, truth, "signature") == pytest.approx(1.0)  # the duplicate comes after recall 1
    loose = [Detection("a", "signature", (0, 0, 100, 70), 0.9)]  # IoU 0.7
    scores = coco_average_precision(loose, truth, "signature")
    assert scores["ap50"] == pytest.approx(1.0)
    assert scores["ap75"] == 0.0
    assert scores["ap50_95"] == pytest.approx(5 / 10)  # thresholds 0.50 ... 0.70 pass

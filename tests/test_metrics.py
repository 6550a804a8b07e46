"""Metric functions on hand-computed cases, including the empty-mask conventions."""

import math

import numpy as np
import pytest

from benchmark.metrics import dice, false_negative_rate, iou, per_image_metrics, sensitivity, specificity
from benchmark.metrics.evaluate import score_images, upsample_probabilities


def masks(pred_rows, target_rows, shape=(4, 4)):
    pred, target = np.zeros(shape, bool), np.zeros(shape, bool)
    for r, c in pred_rows:
        pred[r, c] = True
    for r, c in target_rows:
        target[r, c] = True
    return pred, target


def test_hand_computed_overlap():
    # target: 4 pixels; prediction: 3 of them + 2 false positives -> tp 3, fp 2, fn 1, tn 10
    pred, target = masks([(0, 0), (0, 1), (1, 0), (3, 3), (3, 2)], [(0, 0), (0, 1), (1, 0), (1, 1)])
    assert dice(pred, target) == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))  # 6/9
    assert iou(pred, target) == pytest.approx(3 / 6)
    assert sensitivity(pred, target) == pytest.approx(3 / 4)
    assert specificity(pred, target) == pytest.approx(10 / 12)
    assert false_negative_rate(pred, target) == pytest.approx(1 / 4)


def test_perfect_and_disjoint():
    pred, target = masks([(1, 1)], [(1, 1)])
    assert dice(pred, target) == iou(pred, target) == sensitivity(pred, target) == 1.0
    pred, target = masks([(0, 0)], [(3, 3)])
    assert dice(pred, target) == iou(pred, target) == sensitivity(pred, target) == 0.0
    assert false_negative_rate(pred, target) == 1.0


def test_empty_mask_conventions():
    empty = np.zeros((3, 3), bool)
    full = np.ones((3, 3), bool)
    # both empty: a perfect negative
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0
    assert math.isnan(sensitivity(empty, empty)) and math.isnan(false_negative_rate(empty, empty))
    assert specificity(empty, empty) == 1.0
    # prediction on an empty ground truth
    assert dice(full, empty) == 0.0 and iou(full, empty) == 0.0
    assert specificity(full, empty) == 0.0
    # missed lesion
    assert dice(empty, full) == 0.0 and sensitivity(empty, full) == 0.0 and false_negative_rate(empty, full) == 1.0
    assert math.isnan(specificity(empty, full))


def test_per_image_metrics_matches_single_functions():
    rng = np.random.default_rng(0)
    pred, target = rng.random((2, 16, 16)) > 0.6
    row = per_image_metrics(pred, target)
    assert row["dice"] == pytest.approx(dice(pred, target))
    assert row["iou"] == pytest.approx(iou(pred, target))
    assert row["sensitivity"] == pytest.approx(sensitivity(pred, target))
    assert row["specificity"] == pytest.approx(specificity(pred, target))
    assert row["fnr"] == pytest.approx(false_negative_rate(pred, target))
    assert row["target_pixels"] == target.sum() and row["predicted_pixels"] == pred.sum()


def test_dice_iou_relation():
    rng = np.random.default_rng(1)
    for _ in range(20):
        pred, target = rng.random((2, 8, 8)) > 0.5
        d, j = dice(pred, target), iou(pred, target)
        assert d == pytest.approx(2 * j / (1 + j))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((2, 2), bool), np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="0/1"):
        dice(np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8))


def test_score_images_upsamples_to_native_resolution():
    probabilities = np.zeros((1, 4, 4), np.float32)
    probabilities[0, :2, :] = 1.0  # top half foreground
    target = np.zeros((8, 6), bool)
    target[:4] = True
    table = score_images(probabilities, ["a"], {"a": target}, threshold=0.5)
    assert table.loc[0, "image_id"] == "a"
    assert table.loc[0, "dice"] == pytest.approx(1.0)
    assert upsample_probabilities(probabilities[0], (8, 6)).shape == (8, 6)


def _assert_row(row, expected):
    """Compare a per_image_metrics row with hand-computed values; NaN must meet NaN."""
    assert row.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(row[key]), f"{key}: {row[key]} is not NaN"
        else:
            assert row[key] == pytest.approx(value), key


NAN = float("nan")


@pytest.mark.parametrize(
    "pred_pixels, target_pixels, expected",
    [
        # empty prediction, 3 lesion pixels of 16: tp 0, fp 0, fn 3, tn 13 -> a missed lesion
        (
            [],
            [(0, 0), (0, 1), (2, 2)],
            {
                "dice": 0.0,
                "iou": 0.0,
                "sensitivity": 0.0,
                "specificity": 1.0,
                "fnr": 1.0,
                "target_pixels": 3,
                "predicted_pixels": 0,
            },
        ),
        # empty truth, 2 predicted pixels of 16: tp 0, fp 2, fn 0, tn 14 -> recall undefined, specificity 14/16
        (
            [(1, 1), (3, 0)],
            [],
            {
                "dice": 0.0,
                "iou": 0.0,
                "sensitivity": NAN,
                "specificity": 14 / 16,
                "fnr": NAN,
                "target_pixels": 0,
                "predicted_pixels": 2,
            },
        ),
        # both empty: tp 0, fp 0, fn 0, tn 16 -> a perfect negative (Dice = IoU = 1), recall undefined
        (
            [],
            [],
            {
                "dice": 1.0,
                "iou": 1.0,
                "sensitivity": NAN,
                "specificity": 1.0,
                "fnr": NAN,
                "target_pixels": 0,
                "predicted_pixels": 0,
            },
        ),
    ],
    ids=["empty-prediction", "empty-truth", "both-empty"],
)
def test_per_image_metrics_on_empty_masks(pred_pixels, target_pixels, expected):
    """The pipeline's only metric path (evaluate.score_images) on the module's documented empty-mask conventions."""
    pred, target = masks(pred_pixels, target_pixels)
    _assert_row(per_image_metrics(pred, target), expected)
    # {0, 1} uint8 masks, as the prepared data stores them, give the same row
    _assert_row(per_image_metrics(pred.astype(np.uint8), target.astype(np.uint8)), expected)


def test_per_image_metrics_on_all_foreground_truth():
    """No negative pixel: specificity is undefined (NaN); a full prediction is otherwise perfect."""
    full = np.ones((4, 4), bool)
    _assert_row(
        per_image_metrics(full, full),
        {
            "dice": 1.0,
            "iou": 1.0,
            "sensitivity": 1.0,
            "specificity": NAN,
            "fnr": 0.0,
            "target_pixels": 16,
            "predicted_pixels": 16,
        },
    )

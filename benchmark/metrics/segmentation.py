"""Pixel-level segmentation metrics for one binary prediction against one binary ground truth.

Conventions for empty masks (applied identically to every method and table):

- Dice and IoU: when prediction and ground truth are both empty the image is a perfect
  negative and scores **1.0**; when exactly one is empty the score is 0.0.
- Sensitivity (recall) is undefined without positive ground-truth pixels and is **NaN** then;
  FNR = 1 - sensitivity inherits the NaN. Aggregations skip NaN (``numpy.nanmean``).
- Specificity is undefined without negative ground-truth pixels and is **NaN** then.

All functions accept arrays of any shape (usually ``(H, W)``) holding booleans or {0, 1};
they are computed at whatever resolution they are given (the suite evaluates at the image's
native resolution).
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("dice", "iou", "sensitivity", "specificity", "fnr")


def _as_bool(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    values = np.unique(mask)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"{name} must be boolean or hold only 0/1, got values {values[:5].tolist()}")
    return mask.astype(bool)


def confusion_counts(prediction: np.ndarray, target: np.ndarray) -> tuple[int, int, int, int]:
    """Pixel counts ``(tp, fp, fn, tn)``.

    Args:
        prediction: binary prediction, any shape.
        target: binary ground truth, same shape.
    """
    prediction = _as_bool(prediction, "prediction")
    target = _as_bool(target, "target")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from target shape {target.shape}")
    tp = int(np.count_nonzero(prediction & target))
    fp = int(np.count_nonzero(prediction & ~target))
    fn = int(np.count_nonzero(~prediction & target))
    tn = int(prediction.size - tp - fp - fn)
    return tp, fp, fn, tn


def dice(prediction: np.ndarray, target: np.ndarray) -> float:
    """Dice = 2|P∩G| / (|P| + |G|) in [0, 1]; 1.0 when both masks are empty."""
    tp, fp, fn, _ = confusion_counts(prediction, target)
    denominator = 2 * tp + fp + fn
    return 1.0 if denominator == 0 else 2 * tp / denominator


def iou(prediction: np.ndarray, target: np.ndarray) -> float:
    """IoU = |P∩G| / |P∪G| in [0, 1]; 1.0 when both masks are empty."""
    tp, fp, fn, _ = confusion_counts(prediction, target)
    union = tp + fp + fn
    return 1.0 if union == 0 else tp / union


def sensitivity(prediction: np.ndarray, target: np.ndarray) -> float:
    """TP / (TP + FN); NaN when the ground truth has no positive pixel."""
    tp, _, fn, _ = confusion_counts(prediction, target)
    return float("nan") if tp + fn == 0 else tp / (tp + fn)


def specificity(prediction: np.ndarray, target: np.ndarray) -> float:
    """TN / (TN + FP); NaN when the ground truth has no negative pixel."""
    _, fp, _, tn = confusion_counts(prediction, target)
    return float("nan") if tn + fp == 0 else tn / (tn + fp)


def false_negative_rate(prediction: np.ndarray, target: np.ndarray) -> float:
    """FNR = 1 - sensitivity = FN / (TP + FN); NaN when the ground truth is empty."""
    return 1.0 - sensitivity(prediction, target)


def per_image_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All metrics of :data:`METRIC_NAMES` plus pixel counts, from one confusion count.

    Returns:
        ``{"dice", "iou", "sensitivity", "specificity", "fnr", "target_pixels", "predicted_pixels"}``.
    """
    tp, fp, fn, tn = confusion_counts(prediction, target)
    positives, negatives = tp + fn, tn + fp
    recall = float("nan") if positives == 0 else tp / positives
    return {
        "dice": 1.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn),
        "iou": 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn),
        "sensitivity": recall,
        "specificity": float("nan") if negatives == 0 else tn / negatives,
        "fnr": 1.0 - recall,
        "target_pixels": positives,
        "predicted_pixels": tp + fp,
    }

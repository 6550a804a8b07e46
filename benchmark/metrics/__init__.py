"""Per-image segmentation metrics (pure numpy functions)."""

from benchmark.metrics.segmentation import (
    METRIC_NAMES,
    confusion_counts,
    dice,
    false_negative_rate,
    iou,
    per_image_metrics,
    sensitivity,
    specificity,
)

__all__ = [
    "METRIC_NAMES",
    "confusion_counts",
    "dice",
    "false_negative_rate",
    "iou",
    "per_image_metrics",
    "sensitivity",
    "specificity",
]

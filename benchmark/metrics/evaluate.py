"""Score probability maps against native-resolution ground truth, one row per image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from benchmark.metrics.lesions import lesion_detections
from benchmark.metrics.segmentation import per_image_metrics


def upsample_probabilities(probability: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one float map (h, w) to ``shape`` (H, W)."""
    if probability.shape == tuple(shape):
        return probability
    tensor = torch.from_numpy(np.ascontiguousarray(probability, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=tuple(shape), mode="bilinear", align_corners=False)[0, 0].numpy()


def score_images(
    probabilities: np.ndarray, ids: list[str], native_masks: dict[str, np.ndarray], threshold: float
) -> pd.DataFrame:
    """Per-image metrics at native resolution.

    Args:
        probabilities: float32 (N, S, S) foreground probabilities at training resolution.
        ids: the N image ids, in order.
        native_masks: id -> bool (H, W) ground truth at native resolution.
        threshold: foreground when probability >= threshold.

    Returns:
        One row per image: ``image_id`` and every metric of
        :func:`~benchmark.metrics.segmentation.per_image_metrics`.
    """
    return score_images_and_lesions(probabilities, ids, native_masks, threshold)[0]


def score_images_and_lesions(
    probabilities: np.ndarray,
    ids: list[str],
    native_masks: dict[str, np.ndarray],
    threshold: float,
    *,
    min_lesion_fraction: float = 0.0005,
    detection_iou: float = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`score_images` plus lesion-level detection on the same thresholded maps.

    Returns:
        ``(per_image, lesions)``: ``lesions`` has one row per ground-truth lesion (``image_id``,
        ``lesion``, ``area_px``, ``area_fraction``, ``best_iou``, ``detected``, ``any_overlap``;
        rules of :func:`~benchmark.metrics.lesions.lesion_detections`).
    """
    if len(probabilities) != len(ids):
        raise ValueError(f"{len(probabilities)} probability maps for {len(ids)} ids")
    rows, lesions = [], []
    for probability, key in zip(probabilities, ids):
        target = native_masks[key]
        prediction = upsample_probabilities(probability, target.shape) >= threshold
        rows.append({"image_id": key, **per_image_metrics(prediction, target)})
        for record in lesion_detections(
            prediction, target, min_area_fraction=min_lesion_fraction, iou_threshold=detection_iou
        ):
            lesions.append({"image_id": key, **record})
    columns = ["image_id", "lesion", "area_px", "area_fraction", "best_iou", "detected", "any_overlap"]
    return pd.DataFrame(rows), pd.DataFrame(lesions, columns=columns)

"""Score probability maps against native-resolution ground truth, one row per image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from benchmark.metrics.segmentation import per_image_metrics


def upsample_probabilities(probability: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one float map (h, w) to ``shape`` (H, W)."""
    if probability.shape == tuple(shape):
        return probability
    tensor = torch.from_numpy(np.ascontiguousarray(probability, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=tuple(shape), mode="bilinear", align_corners=False)[0, 0].numpy()


def score_images(probabilities: np.ndarray, ids: list[str], native_masks: dict[str, np.ndarray], threshold: float) -> pd.DataFrame:
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
    if len(probabilities) != len(ids):
        raise ValueError(f"{len(probabilities)} probability maps for {len(ids)} ids")
    rows = []
    for probability, key in zip(probabilities, ids):
        target = native_masks[key]
        prediction = upsample_probabilities(probability, target.shape) >= threshold
        rows.append({"image_id": key, **per_image_metrics(prediction, target)})
    return pd.DataFrame(rows)

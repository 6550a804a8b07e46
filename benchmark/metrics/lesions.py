"""Lesion-level detection (Table 3), by the rules of DATASETS.md "Lesion-level strata".

- A lesion is an 8-connected component of the ground truth at native resolution; components
  smaller than ``min_area_fraction`` of the image are ignored (annotation specks).
- Its best-overlapping predicted component is the 8-connected component of the prediction with
  the highest IoU against it; the lesion is *detected* when that IoU >= ``iou_threshold``
  (0.5, the primary rule). ``any_overlap`` (at least one predicted pixel on the lesion) is kept
  for the sensitivity analysis.
- Lesion FNR of a stratum = missed / all lesions in it (computed in the report, with a bootstrap
  CI over images and the stratum's n).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a bool ``(H, W)`` mask: ``(labels int32 (H, W), count)``, 0 = background."""
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=EIGHT_CONNECTED)
    return labels, int(count)


def lesion_detections(
    prediction: np.ndarray, target: np.ndarray, *, min_area_fraction: float = 0.0005, iou_threshold: float = 0.5
) -> list[dict]:
    """One record per ground-truth lesion of one image.

    Args:
        prediction, target: bool ``(H, W)`` masks of the same shape.
        min_area_fraction: lesions below this share of the image are ignored.
        iou_threshold: detection rule on the best-overlapping predicted component.

    Returns:
        ``[{"lesion": k (1-based, by decreasing area), "area_px", "area_fraction", "best_iou",
        "detected", "any_overlap"}]``; empty when the image holds no lesion.
    """
    prediction, target = np.asarray(prediction, dtype=bool), np.asarray(target, dtype=bool)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from target shape {target.shape}")
    true_labels, n_true = components(target)
    if n_true == 0:
        return []
    pred_labels, n_pred = components(prediction)
    true_areas = np.bincount(true_labels.ravel(), minlength=n_true + 1)
    pred_areas = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
    # joint histogram of (true component, predicted component) pixel counts
    joint = np.bincount(true_labels.ravel() * (n_pred + 1) + pred_labels.ravel(), minlength=(n_true + 1) * (n_pred + 1))
    joint = joint.reshape(n_true + 1, n_pred + 1)
    records = []
    for k in range(1, n_true + 1):
        area = int(true_areas[k])
        if area < min_area_fraction * target.size:
            continue
        overlap = joint[k, 1:].astype(float)
        union = area + pred_areas[1:] - overlap
        iou = overlap / np.maximum(union, 1)
        best = float(iou.max()) if n_pred else 0.0
        records.append(
            {
                "area_px": area,
                "area_fraction": area / target.size,
                "best_iou": best,
                "detected": best >= iou_threshold,
                "any_overlap": bool(overlap.sum() > 0),
            }
        )
    records.sort(key=lambda record: -record["area_px"])
    for index, record in enumerate(records, start=1):
        record["lesion"] = index
    return records

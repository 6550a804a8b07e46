"""Aggregate per-image tables into per-seed means and mean ± std over seeds.

Convention (DATASETS.md, "Statistics that hold up"): every metric is computed per image, then
averaged over the test images of one seed (NaN skipped: e.g. sensitivity of an empty ground
truth), and reported as mean ± sample standard deviation (ddof=1) of the per-seed means.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.metrics.segmentation import METRIC_NAMES


def per_seed_means(per_image: pd.DataFrame, metrics: tuple[str, ...] = METRIC_NAMES) -> pd.DataFrame:
    """One row per ``seed_index``: the mean of each metric over that seed's images (NaN skipped)."""
    return per_image.groupby("seed_index")[list(metrics)].mean().sort_index()


def mean_std(values: pd.Series | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def metrics_summary(per_image: pd.DataFrame, metrics: tuple[str, ...] = METRIC_NAMES) -> dict:
    """The ``metrics.json`` payload: per-seed means, then mean and std over seeds.

    Returns:
        ``{"per_seed": {"seed_0": {metric: value}}, "mean": {...}, "std": {...},
        "n_seeds": int, "n_images": int}``
    """
    seeds = per_seed_means(per_image, metrics)
    summary = {
        "per_seed": {
            f"seed_{int(index)}": {name: float(row[name]) for name in metrics} for index, row in seeds.iterrows()
        },
        "mean": {},
        "std": {},
        "n_seeds": int(len(seeds)),
        "n_images": int(per_image["image_id"].nunique()),
    }
    for name in metrics:
        summary["mean"][name], summary["std"][name] = mean_std(seeds[name])
    return summary

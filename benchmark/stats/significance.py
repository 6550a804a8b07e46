"""Paired tests, bootstrap confidence intervals and multiple-comparison correction.

The conventions of DATASETS.md ("Statistics that hold up"): with 3-5 seeds a test across seeds
can never reach p < 0.05, so methods are compared *per test image* on seed-averaged scores:

- :func:`paired_wilcoxon`: two-sided Wilcoxon signed-rank test on paired per-image scores
  (scipy's ``wilcoxon``, zero differences dropped, exact or normal approximation chosen by scipy);
- :func:`bootstrap_ci`: percentile bootstrap CI of a mean, resampling images, or whole clusters
  (video sequences) when ``groups`` is given, so near-duplicate frames do not narrow the interval;
- :func:`holm`: Holm's step-down adjustment of a family of p-values.

Every function is deterministic under its ``seed`` and checked against scipy or hand-computed
answers in ``tests/test_significance.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def paired_wilcoxon(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of ``a - b`` (paired, same images in the same order).

    Returns:
        ``(statistic, p_value)``; ``(nan, 1.0)`` when every difference is zero (no evidence).
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("paired samples contain NaN; drop the images whose score is undefined first")
    if not np.any(a != b):
        return float("nan"), 1.0
    result = wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def bootstrap_ci(
    values: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile bootstrap CI.

    Args:
        values: 1-d per-image values (e.g. paired Dice differences, or 0/1 detections).
        groups: optional cluster label per value; when given, whole clusters are resampled with
            replacement and the statistic is the mean over all values of the drawn clusters
            (cluster bootstrap). With one value per cluster it equals the plain bootstrap.
        n_resamples: bootstrap replicates.
        level: two-sided confidence level.
        seed: seed of the resampling generator.

    Returns:
        ``(mean, low, high)``; NaN triple for an empty input.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-d, got shape {values.shape}")
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    if groups is None:
        draws = rng.integers(0, values.size, size=(n_resamples, values.size))
        means = values[draws].mean(axis=1)
    else:
        groups = np.asarray(groups)
        if groups.shape != values.shape:
            raise ValueError(f"groups shape {groups.shape} differs from values shape {values.shape}")
        codes, index = np.unique(groups, return_inverse=True)
        sums = np.bincount(index, weights=values, minlength=codes.size)
        counts = np.bincount(index, minlength=codes.size).astype(float)
        draws = rng.integers(0, codes.size, size=(n_resamples, codes.size))
        means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(values.mean()), float(low), float(high)


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order (NaN entries stay NaN and are not counted).

    Sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    m = int(valid.sum())
    if m == 0:
        return adjusted
    order = np.argsort(p[valid], kind="mergesort")
    scaled = np.minimum(1.0, p[valid][order] * (m - np.arange(m)))
    stepped = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = stepped
    adjusted[valid] = out
    return adjusted


def compare_to_best_other(
    scores: pd.DataFrame, *, metric: str = "dice", groups: dict | None = None, n_resamples: int = 10_000, seed: int = 0
) -> pd.DataFrame:
    """Each method against the best *other* method of its dataset, per image (Table 2's tests).

    Args:
        scores: seed-averaged per-image scores, columns ``dataset, method, image_id, <metric>``.
        groups: optional dataset -> {image_id: cluster} for the cluster bootstrap.

    Returns:
        One row per dataset × method: ``opponent`` (the best other method by mean), ``mean_difference``
        (method − opponent), ``ci_low``/``ci_high`` (bootstrap), ``n_images``, ``p_value``
        (Wilcoxon) and ``p_holm`` (Holm over every row of the returned table).
    """
    rows = []
    for dataset, frame in scores.groupby("dataset", sort=False):
        wide = frame.pivot(index="image_id", columns="method", values=metric).dropna()
        ranking = wide.mean().sort_values(ascending=False)
        if len(ranking) < 2:
            continue
        cluster = None
        if groups and dataset in groups:
            cluster = np.asarray([groups[dataset][key] for key in wide.index])
        for method in wide.columns:
            opponent = next(name for name in ranking.index if name != method)
            difference = (wide[method] - wide[opponent]).to_numpy()
            mean, low, high = bootstrap_ci(difference, groups=cluster, n_resamples=n_resamples, seed=seed)
            _, p_value = paired_wilcoxon(wide[method].to_numpy(), wide[opponent].to_numpy())
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "opponent": opponent,
                    "mean_difference": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "n_images": len(wide),
                    "p_value": p_value,
                }
            )
    table = pd.DataFrame(rows)
    if len(table):
        table["p_holm"] = holm(table["p_value"].to_numpy())
    return table

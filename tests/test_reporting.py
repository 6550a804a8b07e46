"""Aggregation over seeds and Table 2 formatting on hand-made per-image tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.reporting.tables import seed_averaged_per_image, seed_summary, segmentation_table
from benchmark.stats.summary import mean_std, metrics_summary, per_seed_means


def per_image_table():
    rows = []
    scores = {"a": [[0.8, 0.6], [0.7, 0.5], [0.9, 0.7]], "b": [[0.5, 0.5], [0.4, 0.6], [0.6, 0.4]], "c": [[0.7, 0.7], [0.6, 0.6], [0.65, 0.65]]}
    for method, per_seed in scores.items():
        for seed_index, values in enumerate(per_seed):
            for image, value in enumerate(values):
                rows.append({"dataset": "d", "method": method, "seed_index": seed_index, "image_id": f"i{image}",
                             "dice": value, "iou": value / (2 - value), "sensitivity": np.nan if image else 1.0,
                             "specificity": 1.0, "fnr": np.nan if image else 0.0})
    return pd.DataFrame(rows)


def test_mean_std_matches_scipy():
    values = np.array([0.7, 0.6, 0.8, 0.75])
    mean, std = mean_std(values)
    assert mean == pytest.approx(np.mean(values))
    assert std == pytest.approx(stats.tstd(values))  # sample std, ddof = 1
    assert mean_std([0.5]) == (0.5, 0.0)
    assert all(np.isnan(mean_std([np.nan])))


def test_per_seed_means_skip_nan():
    table = per_image_table()
    seeds = per_seed_means(table[table["method"] == "a"])
    assert seeds["dice"].tolist() == pytest.approx([0.7, 0.6, 0.8])
    assert seeds["sensitivity"].tolist() == pytest.approx([1.0, 1.0, 1.0])  # NaN rows skipped


def test_metrics_summary_payload():
    summary = metrics_summary(per_image_table()[lambda t: t["method"] == "a"])
    assert summary["n_seeds"] == 3 and summary["n_images"] == 2
    assert summary["per_seed"]["seed_2"]["dice"] == pytest.approx(0.8)
    assert summary["mean"]["dice"] == pytest.approx(0.7)
    assert summary["std"]["dice"] == pytest.approx(0.1)


def test_table2_bold_best_underline_second():
    table = segmentation_table(seed_summary(per_image_table()), {"a": "Method A"})
    dice = table[("d", "Dice (%)")]
    assert dice["Method A"] == "<b>70.0 ± 10.0</b>"
    assert dice["c"] == "<u>65.0 ± 5.0</u>"
    assert dice["b"] == "50.0 ± 0.0"


def test_seed_averaged_per_image():
    averaged = seed_averaged_per_image(per_image_table())
    row = averaged[(averaged["method"] == "a") & (averaged["image_id"] == "i0")]
    assert row["dice"].item() == pytest.approx(0.8)

"""Known answers for the statistics of Tables 2-3 (scipy or hand-computed)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.stats.significance import bootstrap_ci, compare_to_best_other, holm, paired_wilcoxon


def test_wilcoxon_matches_scipy_exact_and_approximate():
    rng = np.random.default_rng(3)
    for n in (12, 120):  # exact distribution / normal approximation
        a = rng.uniform(0.5, 0.9, n)
        b = a - rng.normal(0.02, 0.05, n)
        expected = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
        statistic, p_value = paired_wilcoxon(a, b)
        assert statistic == pytest.approx(expected.statistic)
        assert p_value == pytest.approx(expected.pvalue)


def test_wilcoxon_hand_computed_small_case():
    # differences 1, 2, 3, -4: ranks 1, 2, 3, 4; W+ = 6, W- = 4 -> statistic min = 4;
    # exact two-sided p = 2 * P(W <= 4) over 2^4 sign patterns = 2 * 7/16
    statistic, p_value = paired_wilcoxon(np.array([1.0, 2.0, 3.0, -4.0]), np.zeros(4))
    assert statistic == 4.0
    assert p_value == pytest.approx(14 / 16)


def test_wilcoxon_identical_and_bad_input():
    assert paired_wilcoxon(np.ones(5), np.ones(5))[1] == 1.0
    with pytest.raises(ValueError, match="equal 1-d shapes"):
        paired_wilcoxon(np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        paired_wilcoxon(np.array([1.0, np.nan]), np.ones(2))


def test_holm_hand_computed():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    out = holm([0.01, np.nan, 0.02])  # NaN is not a hypothesis
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])
    assert np.isnan(out[1])


def test_bootstrap_ci_constant_and_against_scipy():
    assert bootstrap_ci(np.full(20, 0.3)) == pytest.approx((0.3, 0.3, 0.3))
    rng = np.random.default_rng(0)
    values = rng.normal(0.1, 0.2, 150)
    mean, low, high = bootstrap_ci(values, n_resamples=20_000, seed=1)
    reference = stats.bootstrap(
        (values,), np.mean, n_resamples=20_000, method="percentile", random_state=2
    ).confidence_interval
    assert mean == pytest.approx(values.mean())
    assert low == pytest.approx(reference.low, abs=0.005)
    assert high == pytest.approx(reference.high, abs=0.005)


def test_cluster_bootstrap_singletons_equal_plain_and_clusters_widen():
    rng = np.random.default_rng(4)
    values = rng.normal(0, 1, 60)
    plain = bootstrap_ci(values, seed=5)
    singletons = bootstrap_ci(values, groups=np.arange(60), seed=5)
    assert singletons == pytest.approx(plain)
    # 6 clusters of 10 identical values: the cluster CI must be wider than the naive one
    clustered = np.repeat(rng.normal(0, 1, 6), 10)
    naive = bootstrap_ci(clustered, seed=0)
    by_cluster = bootstrap_ci(clustered, groups=np.repeat(np.arange(6), 10), seed=0)
    assert by_cluster[2] - by_cluster[1] > 1.5 * (naive[2] - naive[1])


def test_compare_to_best_other():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.8, 40)
    rows = []
    for method, shift in (("a", 0.1), ("b", 0.0), ("c", -0.05)):
        rows += [
            {"dataset": "d", "method": method, "image_id": str(i), "dice": v + shift + rng.normal(0, 0.01)}
            for i, v in enumerate(base)
        ]
    table = compare_to_best_other(pd.DataFrame(rows), n_resamples=2000).set_index("method")
    assert table.loc["a", "opponent"] == "b" and table.loc["b", "opponent"] == "a" and table.loc["c", "opponent"] == "a"
    assert table.loc["a", "mean_difference"] == pytest.approx(0.1, abs=0.01)
    assert table.loc["a", "ci_low"] > 0 and table.loc["c", "ci_high"] < 0
    np.testing.assert_allclose(table["p_holm"], holm(table["p_value"].to_numpy()))
    assert (table["n_images"] == 40).all()

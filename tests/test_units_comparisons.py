"""The analysis unit and the unit-level comparisons: known answers from scipy, statsmodels and hand
computation, on fixed data; the unit of a real-layout CVC-ClinicDB copy."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from benchmark.stats.comparisons import (
    compare,
    finish_family,
    mde_80,
    min_attainable_p,
    mixed_effects,
    p_text,
    sign_flip_p,
    signed_rank_p,
    underpowered,
)
from benchmark.stats.significance import bootstrap_ci, holm
from benchmark.stats.units import Units, unit_means, units_from_attributes

# 4 units (sequences) of 2 or 3 frames; 2 seeds; runs "a" and "b"
UNITS = Units(
    "sequence", {"1": "s1", "2": "s1", "3": "s2", "4": "s2", "5": "s2", "6": "s3", "7": "s3", "8": "s4", "9": "s4"}
)
A = {0: [0.9, 0.7, 0.6, 0.5, 0.4, 0.8, 0.8, 0.3, 0.5], 1: [0.7, 0.7, 0.6, 0.7, 0.2, 0.6, 0.9, 0.5, 0.3]}
B = {0: [0.6, 0.6, 0.5, 0.5, 0.5, 0.7, 0.6, 0.4, 0.4], 1: [0.5, 0.6, 0.4, 0.6, 0.3, 0.5, 0.8, 0.3, 0.3]}


def per_image() -> pd.DataFrame:
    rows = []
    for run, values in (("a", A), ("b", B)):
        for seed, scores in values.items():
            rows += [
                {"method": run, "seed_index": seed, "image_id": str(i + 1), "dice": v} for i, v in enumerate(scores)
            ]
    return pd.DataFrame(rows)


def hand_unit_differences() -> np.ndarray:
    """Seed mean per image, then mean per unit, by hand."""
    a = (np.array(A[0]) + np.array(A[1])) / 2
    b = (np.array(B[0]) + np.array(B[1])) / 2
    d = a - b
    return np.array([d[0:2].mean(), d[2:5].mean(), d[5:7].mean(), d[7:9].mean()])


def test_unit_means_average_seeds_then_frames():
    wide = unit_means(per_image(), UNITS, "dice")
    assert list(wide.index) == ["s1", "s2", "s3", "s4"]
    np.testing.assert_allclose((wide["a"] - wide["b"]).to_numpy(), hand_unit_differences(), atol=1e-12)
    assert wide.loc["s2", "a"] == pytest.approx(np.mean([(0.6 + 0.6) / 2, (0.5 + 0.7) / 2, (0.4 + 0.2) / 2]))


def test_compare_matches_scipy_on_hand_aggregated_unit_means():
    record = compare(per_image(), "a", "b", UNITS, n_resamples=500)
    d = hand_unit_differences()
    assert record["unit"] == "sequence" and record["n_units"] == 4 and record["n_seeds"] == 2
    assert record["delta"] == pytest.approx(d.mean())
    assert record["p"] == pytest.approx(wilcoxon(d, method="exact").pvalue)  # exact: 4 positive units -> 2/16
    assert record["p"] == pytest.approx(0.125)
    assert record["min_attainable_p"] == pytest.approx(0.125)
    _, low, high = bootstrap_ci(d, n_resamples=500, seed=0)
    assert (record["ci_low"], record["ci_high"]) == pytest.approx((low, high))
    # seed spread: per-seed unit-mean differences, by hand
    per_seed = []
    for seed in (0, 1):
        diff = np.array(A[seed]) - np.array(B[seed])
        per_seed.append(np.mean([diff[0:2].mean(), diff[2:5].mean(), diff[5:7].mean(), diff[7:9].mean()]))
    assert record["seed_sd"] == pytest.approx(np.std(per_seed, ddof=1))


def test_image_unit_is_not_clustered():
    ids = {str(i + 1): str(i + 1) for i in range(9)}
    record = compare(per_image(), "a", "b", Units("image", ids), n_resamples=200)
    a = (np.array(A[0]) + np.array(A[1])) / 2
    b = (np.array(B[0]) + np.array(B[1])) / 2
    assert record["n_units"] == 9 and record["unit"] == "image"
    assert record["p"] == pytest.approx(sign_flip_p(a - b))  # tied differences (0.15 twice): the permutation test


def test_min_attainable_p_and_underpowered():
    assert min_attainable_p(5) == pytest.approx(0.0625) and underpowered(5)
    assert min_attainable_p(6) == pytest.approx(0.03125) and not underpowered(6)
    # it is what an exact signed-rank test gives when every unit points one way
    for n in (3, 5, 8):
        assert min_attainable_p(n) == pytest.approx(wilcoxon(np.arange(1, n + 1, dtype=float), method="exact").pvalue)
    row = {"n_units": 5, "unit": "sequence", "p_holm": 0.0625}
    assert p_text(row) == "underpowered (n = 5 sequences)"
    assert p_text({"n_units": 30, "unit": "sequence", "p_holm": 0.0123}) == "0.012"


def test_sign_flip_p_by_full_enumeration():
    assert sign_flip_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(
        2 / 8
    )  # only the all-same-sign patterns reach |mean| 2
    d = np.array([0.3, -0.1, 0.25, 0.05, 0.2, -0.15, 0.1, 0.4, -0.05, 0.12])
    hits = sum(abs(np.dot(signs, d)) >= abs(d.sum()) - 1e-12 for signs in itertools.product((1, -1), repeat=d.size))
    assert sign_flip_p(d) == pytest.approx(hits / 2**d.size)


def test_signed_rank_p_matches_scipy_and_handles_all_zero():
    d = np.array([0.05, -0.02, 0.07, 0.01, 0.03, 0.04])
    assert signed_rank_p(d) == pytest.approx(wilcoxon(d, method="exact").pvalue)
    big = np.random.default_rng(3).normal(
        0.01, 0.05, size=64
    )  # exact even beyond scipy's 50-unit switch to the normal approximation
    assert signed_rank_p(big) == pytest.approx(wilcoxon(big, method="exact").pvalue)
    tied = np.array([0.1, 0.1, -0.05, 0.2, 0.0])
    assert signed_rank_p(tied) == pytest.approx(sign_flip_p(tied))
    assert signed_rank_p(np.zeros(4)) == 1.0


def test_mde_80_against_statsmodels_and_normal_approximation():
    from statsmodels.stats.power import TTestPower

    rng = np.random.default_rng(0)
    d = rng.normal(0.01, 0.05, size=40)
    expected = TTestPower().solve_power(nobs=40, alpha=0.05, power=0.8) * d.std(ddof=1)
    assert mde_80(d) == pytest.approx(expected)
    big = rng.normal(0, 0.05, size=2000)
    assert mde_80(big) == pytest.approx((1.959964 + 0.841621) * big.std(ddof=1) / np.sqrt(2000), rel=0.01)
    assert np.isnan(mde_80(np.array([0.1, 0.2])))
    # the power at the MDE really is 80 %, by simulation of the paired t-test
    from scipy.stats import ttest_1samp

    n, sd = 20, 0.05
    spread = np.linspace(-1, 1, n)
    effect = mde_80(spread / spread.std(ddof=1) * sd)  # unit differences with sd exactly `sd`
    draws = np.random.default_rng(2).normal(effect, sd, size=(4000, n))
    power = np.mean(ttest_1samp(draws, 0, axis=1).pvalue < 0.05)
    assert power == pytest.approx(0.8, abs=0.03)


def test_holm_within_a_family():
    records = [
        compare(per_image(), "a", "b", UNITS, table="t", n_resamples=100),
        compare(per_image(), "b", "a", UNITS, table="t", n_resamples=100),
    ]
    frame = finish_family(records)
    assert list(frame.columns)[:4] == ["table", "run_a", "run_b", "metric"]
    np.testing.assert_allclose(frame["p_holm"], holm(frame["p"].to_numpy()))


def test_mixed_effects_equals_a_direct_statsmodels_fit():
    import statsmodels.formula.api as smf

    result = mixed_effects(per_image(), "a", "b", UNITS)
    frame = per_image().groupby(["method", "image_id"])["dice"].mean().reset_index()
    frame["unit"] = [UNITS.of_image[i] for i in frame["image_id"]]
    frame["is_a"] = (frame["method"] == "a").astype(float)
    direct = smf.mixedlm("dice ~ is_a", frame, groups=frame["unit"]).fit(reml=True)
    assert result["delta"] == pytest.approx(direct.fe_params["is_a"], rel=1e-6)
    assert result["p"] == pytest.approx(direct.pvalues["is_a"], rel=1e-4)
    assert result["n_units"] == 4 and result["n_images"] == 9
    a = (np.array(A[0]) + np.array(A[1])) / 2
    b = (np.array(B[0]) + np.array(B[1])) / 2
    assert result["delta"] == pytest.approx(
        (a - b).mean(), abs=1e-6
    )  # balanced pairs: the fixed effect is the mean difference


def test_mixed_effects_sentence_states_both_analyses_in_dice_points():
    from benchmark.reporting.claims import mixed_effects_sentence

    mixed = {
        "run_a": "a",
        "run_b": "b",
        "unit": "sequence",
        "n_units": 4,
        "n_images": 9,
        "delta": 0.0512,
        "ci_low": -0.0105,
        "ci_high": 0.113,
        "p": 0.1042,
        "converged": False,
        "unit_test": {"delta": 0.05, "p": 0.125},
        "agree": "agree: both not significant",
    }
    mixed["unit_test"]["p_holm"] = 0.25
    text = mixed_effects_sentence("synth_polyp", mixed, {"a": "A-net"})
    assert "A-net − b" in text and "4 sequences, 9 images" in text
    assert "+5.12 pp [-1.05, +11.30] (95 % Wald CI) (did not converge)" in text
    # one p per comparison: the unit-level test's Holm p, never the mixed model's nor the raw p
    assert (
        "unit-level test (the table above) gives +5.00 pp, underpowered (n = 4 sequences)." in text
    )  # 4 units cannot reach p < 0.05
    assert (
        text.endswith("Verdicts agree: both not significant.")
        and "0.1042" not in text
        and "p = 0.1" not in text
        and "0.125" not in text
    )
    row = pd.Series({"delta": 0.05, "n_units": 40, "unit": "sequence", "p": 0.125, "p_holm": 0.25})
    with_row = mixed_effects_sentence("synth_polyp", {**mixed, "n_units": 40}, row=row)
    assert "gives +5.00 pp, p (Holm) = 0.25." in with_row and with_row.endswith(
        "Verdicts agree: both not significant at α = 0.05, same sign."
    )
    image_unit = mixed_effects_sentence("kvasir", {**mixed, "unit": "image", "n_units": 9})
    assert "(random intercept per image, 9 images, one per unit: a paired model)" in image_unit


def test_units_from_attributes():
    grouped = pd.DataFrame({"id": ["1", "2", "3"], "group": ["7", "7", "8"]})
    assert units_from_attributes(grouped, "polyp") == Units("sequence", {"1": "7", "2": "7", "3": "8"})
    assert units_from_attributes(grouped, "fundus").name == "group"
    single = pd.DataFrame({"id": ["a", "b"], "group": ["a", "b"]})
    assert units_from_attributes(single, "polyp").name == "image"
    with pytest.raises(KeyError, match="rerun"):
        UNITS.labels(["99"])


def test_cvc_clinicdb_publisher_layout_clusters_by_sequence(tmp_path, monkeypatch):
    """A CVC-ClinicDB copy as published (no sidecar): the unit is the video sequence from the frame ranges."""
    from test_loader_cvc_clinicdb import FRAMES, make_cvc

    import benchmark.data
    from benchmark.data import DatasetSpec
    from benchmark.data.cvc_clinicdb import CVCClinicDB, cvc_sequence
    from benchmark.data.prepare import PrepareOptions, prepare_dataset
    from benchmark.data.prepared import PreparedDataset
    from benchmark.stats.units import dataset_units

    spec = DatasetSpec(
        loader=CVCClinicDB, description="CVC fixture", test_fraction=1 / 3, loader_options=(("n_frames", None),)
    )
    monkeypatch.setitem(benchmark.data.DATASETS, "cvc_fixture", spec)
    root = make_cvc(tmp_path / "cvc")
    options = PrepareOptions(
        image_size=16,
        val_fraction=0.2,
        split_seed=0,
        fundus_target="cup",
        fundus_crop_scale=2.0,
        min_lesion_fraction=0.0,
    )
    prepare_dataset("cvc_fixture", root, tmp_path / "prepared", tmp_path / "split.json", options, progress=False)
    units = dataset_units(PreparedDataset(tmp_path / "prepared", tmp_path / "split.json"))
    assert units.name == "sequence"
    assert units.of_image == {str(frame): str(cvc_sequence(frame)) for frame in FRAMES}
    assert len(set(units.of_image.values())) == 6

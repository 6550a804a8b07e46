"""Issue 20: Tables 4, 5, 7 and the generator report on hand-made result files and frames."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from benchmark.reporting import figures, studies, tables, verdicts45


def _write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def _table4_files(root, *, fundus_bench=False):
    speeds = {"diffaug": 60.0, "sdseg": 40.0, "medsegdiff_v2": 1.5}
    for dataset in ("d1", "d2"):
        for run, speed in speeds.items():
            _write(
                root / "results" / dataset / "runs" / run / "inference.json",
                {"test_images_per_second": {"seed_0": speed, "seed_1": speed}},
            )
            for seed in (0, 1):
                _write(
                    root / "models" / dataset / "runs" / run / f"seed_{seed}" / "run.json",
                    {"train_seconds": 100.0, "epochs": 4, "environment": {"hardware": "CPU test"}},
                )
        _write(
            root / "results" / dataset / "synthesize" / "summary.json",
            {
                "n_generated": 1000,
                "seconds": 50.0,
                "generate_s": 80.0,
                "validate_s": 20.0,
                "workers": 2,
                "acceptance_rate": 0.2,
            },
        )
    _write(
        root / "results" / "benchmarks" / "methods_d1.json",
        {
            "environment": {"hardware": "CPU bench"},
            "methods": {run: {"batch1_samples_per_second": 5.0, "train_seconds_per_epoch": 2.0} for run in speeds},
        },
    )
    if fundus_bench:
        _write(
            root / "results" / "benchmarks" / "methods_d2.json",
            {"environment": {"hardware": "CPU bench"}, "methods": {}},
        )
    return list(speeds)


def test_table4_ratios_one_throughput_and_no_wall_of_not_measured(tmp_path):
    runs = _table4_files(tmp_path)
    paper = {"sdseg": 1.5, "medsegdiff_v2": 40.0}
    table = tables.efficiency_table(tmp_path / "results", tmp_path / "models", ["d1", "d2"], runs, paper=paper)
    rows = table.set_index(["dataset", "method"])
    # the ratio the paper states, computed: DiffAug 60/s against SDSeg 40/s = 1.5×, against MedSegDiff 1.5/s = 40×
    assert (
        rows.loc[("d1", "sdseg"), "diffaug speed ÷ this (×)"] == "1.50"
        and rows.loc[("d1", "sdseg"), "paper (×)"] == "1.5"
    )
    assert (
        rows.loc[("d1", "medsegdiff_v2"), "diffaug speed ÷ this (×)"] == "40.00"
        and rows.loc[("d1", "medsegdiff_v2"), "ours ÷ paper"] == "1.000"
    )
    assert (
        rows.loc[("d1", "diffaug"), "training s / epoch"] == "25.0"
    )  # from run.json, on every dataset: no benchmark file needed
    # one throughput definition: generated samples over the stage's wall-clock seconds (1000 / 50), not over busy worker seconds (1000 / 100)
    generation = table[table["method"].str.startswith("DiffAug generation")]
    assert generation.iloc[0]["inference samples/s (wall clock), test split"].startswith("20.0 generated + validated")
    assert tables.stage_throughput({"n_generated": 1000, "seconds": 50.0}) == 20.0
    assert not table.isin(["not measured"]).any().any()
    _write(
        tmp_path / "results" / "d2" / "runs" / "extra" / "inference.json", {"test_images_per_second": {"seed_0": 9.0}}
    )  # no run.json
    partial = tables.efficiency_table(tmp_path / "results", tmp_path / "models", ["d2"], [*runs, "extra"], paper=paper)
    assert not partial.apply(lambda column: column.astype(str).str.contains("not measured")).any().any()
    # the benchmark figures only for the datasets measured, and one sentence for the rest
    bench = tables.benchmark_speed_table(tmp_path / "results", ["d1", "d2"], runs)
    assert set(bench["dataset"]) == {"d1"}
    sentence = tables.unmeasured_benchmarks(tmp_path / "results", ["d1", "d2"])
    assert "d2" in sentence and "benchmarks/methods.py" in sentence and "d1" not in sentence
    assert tables.unmeasured_benchmarks(tmp_path / "results", ["d1"]) == ""


def test_paper_speed_ratios_from_the_paper_module():
    ratios = tables.paper_speed_ratios()
    assert ratios["sdseg"] == pytest.approx(1.5, abs=0.01) and ratios["medsegdiff_v2"] == pytest.approx(40.3, abs=0.1)


def test_speed_goals_name_the_throughput(tmp_path):
    _write(
        tmp_path / "benchmarks" / "generation_d.json",
        {"loop": {"fraction_of_raw_bound": 0.5, "validated_images_per_second": 22.2, "steps": 5, "workers": 2}},
    )
    figure = tables.speed_goals_table(tmp_path, ["d"])["figure"].iloc[0]
    assert "22.2 generated + validated samples/s (wall clock)" in figure


def _quality_summary(accepted_fid=3.82, rejected_fid=2.66, n=29, accepted_n=10):
    def block(fid, n_available, share):
        return {
            "fid": fid,
            "fid_ci_low": fid - 0.4,
            "fid_ci_high": fid + 0.4,
            "kid_mean": 0.00106,
            "kid_std": 0.016,
            "lpips_mean": 0.2,
            "lpips_std": 0.05,
            "iou_mean": 0.75,
            "iou_std": 0.05,
            "n_available": n_available,
            "share": share,
        }

    return {
        "computed": True,
        "n_per_set": n,
        "theta": 0.7,
        "n_generated": 100,
        "acceptance_rate": 0.1,
        "fid_kid_features": "f",
        "lpips_features": "l",
        "sets": {"accepted": block(accepted_fid, accepted_n, 0.1), "rejected": block(rejected_fid, 90, 0.9)},
        "theta_sweep": [
            {"theta": 0.8, "acceptance_rate": 0.01, "n_accepted": 1, "mean_iou_accepted": 0.85},
            {"theta": 0.9, "acceptance_rate": 0.0, "n_accepted": 0, "mean_iou_accepted": float("nan")},
        ],
    }


def test_table5_contrast_kid_units_n_and_none_accepted():
    summaries = {"fundus": _quality_summary()}
    sweep = tables.theta_sweep_table(summaries)
    assert sweep["mean IoU of accepted (%)"].tolist() == ["85.0", "none accepted"]  # NaN -> words, percent
    quality = tables.quality_table(summaries, paper={}).set_index("metric")
    assert quality.loc["KID × 10³ ↓", "accepted"] == "1.06 ± 16.00 (n = 29)"  # one scale, two decimals
    assert "(n = 29)" in quality.loc["FID ↓", "accepted"] and quality.loc["FID ↓", "n per set"] == "29 (few samples)"
    assert quality.loc["validator IoU (%)", "accepted"] == "75.0 ± 5.0"
    contrasts = tables.quality_contrasts(summaries).set_index("metric")
    fid = contrasts.loc["FID"]
    sd = 0.8 / (2 * 1.959964)
    assert fid["delta"] == pytest.approx(3.82 - 2.66) and fid["ci_low"] == pytest.approx(
        1.16 - 1.959964 * np.hypot(sd, sd)
    )
    assert fid["wrong_way"] and fid["ci_low"] > 0 and fid["p"] < 0.05
    words = tables.quality_contrast_table(summaries).set_index("metric (lower is better)").loc["FID", "reading"]
    assert words.startswith("wrong way") and "CI excludes 0" in words
    verdict = " ".join(verdicts45.table5_verdict(summaries, paper=False))
    assert "wrong way" in verdict and "n = 29 per set — few samples" in verdict
    right = (
        tables.quality_contrasts({"x": _quality_summary(accepted_fid=2.0, rejected_fid=2.1, n=200)})
        .set_index("metric")
        .loc["FID"]
    )
    assert not right["wrong_way"] and right["ci_low"] < 0 < right["ci_high"]
    # an empty set reads as words
    empty = _quality_summary(accepted_n=0)
    empty["sets"]["accepted"]["fid"] = float("nan")
    assert tables.quality_table({"x": empty}, paper={}).set_index("metric").loc["FID ↓", "accepted"] == "none accepted"


def test_table5_paper_column():
    quality = tables.quality_table(
        {"x": _quality_summary()}, paper={"share of generations (%)": (78.3, 21.7)}
    ).set_index("metric")
    assert quality.loc["share of generations (%)", "paper (accepted / rejected)"] == "78.3 / 21.7"
    assert quality.loc["share of generations (%)", "accepted − paper (pp)"] == "-68.3"


def test_gallery_captions_fit():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    labels = np.zeros((12, 32, 32), dtype=np.uint8)
    labels[:, 8:20, 8:20] = 1
    table = pd.DataFrame(
        {"accepted": [True] * 6 + [False] * 6, "iou": np.linspace(0.3, 0.9, 12), "iou_union": np.linspace(0.3, 0.9, 12)}
    )
    figure = figures.accepted_rejected_gallery(images, labels, table, 6, title="x")
    assert figures.caption_overlaps(figure) == []
    assert "%" in figure.axes[0].title.get_text()  # IoU in percent, as the tables
    figures.plt.close(figure)


def _text_check(share, n_follow, pairs, auc, n_high, n_low):
    return {
        "contrasts": {
            "c": {
                "attribute": "a",
                "high_prompt": "h",
                "low_prompt": "l",
                "n_pairs": pairs,
                "n_follow": n_follow,
                "share_follow": share,
                "ci_low": 0.2,
                "ci_high": 0.4,
                "p_value": 1.0,
                "real_proxy": {"auc": auc, "n_high": n_high, "n_low": n_low},
            }
        }
    }


def test_text_check_two_sided_and_proxy_validity():
    # 5 of 60 pairs follow: one-sided "follows" p ~ 1, two-sided p ~ 1e-12 in the opposite direction
    rows = tables.text_check_rows({"d": _text_check(5 / 60, 5, 60, 0.51, 373, 47)})
    row = rows.iloc[0]
    assert row["p_two_sided"] < 1e-9 and row["direction"] == "opposite"
    assert row["auc_low"] < 0.5 < row["auc_high"] and not row["valid"]
    table = tables.text_check_table({"d": _text_check(5 / 60, 5, 60, 0.51, 373, 47)})
    assert table["verdict"].iloc[0].startswith("not valid") and "(opposite)" in table["p (binomial, two-sided)"].iloc[0]
    assert "p (binomial, one-sided)" not in table.columns
    valid = tables.text_check_table({"d": _text_check(5 / 60, 5, 60, 0.9, 100, 100)})
    assert valid["verdict"].iloc[0] == "opposite to the prompt"
    low, high = tables.auc_ci(0.7, 22, 146)
    assert 0.5 < low < 0.7 < high < 0.9
    lines = verdicts45.generator_verdict(
        {"d": _text_check(5 / 60, 5, 60, 0.51, 373, 47)}, {"d": {"first_loss": 2.0, "final_loss": 0.1, "n_steps": 400}}
    )
    assert "not valid" in lines[0] and "2 → 0.1 over 400 steps" in lines[0]


def test_generator_training_labels_and_loss_curve():
    frame = tables.generator_training_table(
        {"d": {"first_loss": 2.2207, "final_loss": 0.1495, "n_steps": 400, "train_seconds": 79.5}}
    )
    assert "first_loss" not in frame.columns and "loss, first 10 % of steps" in frame.columns
    log = pd.DataFrame(
        {
            "step": range(50),
            "loss": np.linspace(3, 0.2, 50),
            "noise": np.linspace(1, 0.1, 50),
            "preserve": np.linspace(2, 0.1, 50),
        }
    )
    figure = figures.loss_curve({"d": log})
    assert figure.axes[0].get_yscale() == "log" and len(figure.axes[0].lines) == 4
    figures.plt.close(figure)


def test_table7_plots_file_carries_the_table_ci(tmp_path, monkeypatch):
    """write_study_plots: same rows, same clustered bootstrap and resamples as the notebook's Table 7 (volume_curve at its default)."""
    from test_studies import IMAGE_UNITS, base, comparisons_of, write_run

    results = tmp_path / "results"
    for run, offset, n in [
        ("unet+noaug", -0.03, 0),
        ("unet", 0.0, 0),
        ("unet+diffaug_v50", 0.02, 20),
        ("unet+diffaug", 0.05, 40),
    ]:
        write_run(results, run, base(offset), n_synthetic=n)
    rows = studies.table7_runs("unet", "standard", [0.5, 1.0], 1.0)
    comparisons = comparisons_of(results, "table7", [(run, "unet") for run in rows.values() if run != "unet"])
    sections = {
        "train": SimpleNamespace(
            methods=list(rows.values()), config_of=lambda _: SimpleNamespace(augmentation="standard")
        ),
        "ablation": SimpleNamespace(runs=[], datasets=["d"]),
        "synthesize": SimpleNamespace(volumes=[0.5, 1.0], volume=1.0, theta=0.7),
        "quality": SimpleNamespace(thetas=[0.5]),
    }
    monkeypatch.setattr("benchmark.params.check_params", lambda path: sections)
    monkeypatch.setattr("benchmark.data.prepared.PreparedDataset", lambda *a, **k: None)
    monkeypatch.setattr("benchmark.stats.units.dataset_units", lambda dataset: IMAGE_UNITS)
    monkeypatch.setattr("benchmark.reporting.claims.load", lambda results_dir, dataset: comparisons)
    studies.write_study_plots(tmp_path / "plots", "params.yaml", results)
    written = pd.read_csv(tmp_path / "plots" / "dice_vs_volume.csv")
    table = studies.volume_curve(
        results, "d", rows, reference="unet", comparisons=comparisons, units=IMAGE_UNITS
    )  # the notebook's call
    assert written["dice_ci_low"].to_numpy() == pytest.approx(100 * table["dice_ci_low"].to_numpy(), abs=1e-4)
    assert written["dice_ci_high"].to_numpy() == pytest.approx(100 * table["dice_ci_high"].to_numpy(), abs=1e-4)
    assert written["dice"].to_numpy() == pytest.approx(
        100 * table["dice"].to_numpy(), abs=1e-4
    )  # percent, as the table
    assert (
        written["ci_method"].iloc[0].startswith("percentile bootstrap over images")
        and "10,000" in written["ci_method"].iloc[0]
    )


def _curve():
    return pd.DataFrame(
        {
            "label": [
                "no augmentation",
                "standard augmentation only",
                "DiffAug + 1× synthetic",
                "DiffAug + 3× synthetic",
            ],
            "run": ["unet+noaug", "unet", "unet+diffaug", "unet+diffaug_v300"],
            "dice": [0.60, 0.64, 0.58, 0.56],
            "delta": [-0.04, 0.0, -0.06, -0.08],
            "delta_ci_low": [-0.05, np.nan, -0.07, -0.09],
            "delta_ci_high": [-0.03, np.nan, -0.05, -0.07],
            "p_holm": [1e-3, np.nan, 1e-9, 1e-12],
            "n_units": [100, np.nan, 100, 100],
            "unit": ["sequence"] * 4,
        }
    )


def test_table7_verdict_and_paper_column():
    lines = verdicts45.table7_verdict(_curve())
    assert (
        lines[0].startswith("DiffAug + 1× synthetic: Δ Dice vs standard augmentation -6.0 [-7.0, -5.0] pp")
        and "a loss" in lines[0]
    )
    assert "paper (CVC-ClinicDB): +4.5 pp" in lines[0]  # 94.6 − 90.1 in the paper's Table 7
    assert 3 <= len(lines) <= 5
    curve = _curve().assign(
        n_real=40,
        n_synthetic=0,
        optimizer_steps=10,
        dice_std=0.01,
        iou=0.5,
        iou_std=0.01,
        dice_ci_low=0.5,
        dice_ci_high=0.7,
        iou_ci_low=0.4,
        iou_ci_high=0.6,
        mde_80=0.02,
        seed_sd=0.01,
        min_attainable_p=1e-6,
    )
    formatted = studies.format_volume_table(curve, "standard augmentation")
    assert formatted[studies.PAPER_STUDY_COLUMN].tolist() == ["88.3", "90.1", "94.6", "96.4"]
    assert formatted[studies.PAPER_DELTA_COLUMN].iloc[2] == "-36.6"
    assert (
        studies.format_volume_table(curve, "standard augmentation", paper=False)[studies.PAPER_STUDY_COLUMN]
        .eq("–")
        .all()
    )


def test_table4_verdict_reads_the_ratios(tmp_path):
    runs = _table4_files(tmp_path)
    lines = verdicts45.table4_verdict(tmp_path / "results", ["d1"], runs, paper={"sdseg": 1.5, "medsegdiff_v2": 40.0})
    assert "1.50× sdseg (paper 1.5×)" in lines[0] and "all reproduced" in lines[0]
    assert "20.0 samples/s (wall clock)" in lines[1]
    slow = verdicts45.table4_verdict(tmp_path / "results", ["d1"], runs, paper={"sdseg": 3.0})
    assert "none reproduced" in slow[0]


def test_table6_verdict():
    comparisons = pd.DataFrame(
        [
            {
                "table": "table6",
                "run_a": "diffaug+real",
                "run_b": "diffaug",
                "delta": -0.063,
                "ci_low": -0.075,
                "ci_high": -0.051,
                "p_holm": 1e-17,
                "n_units": 100,
                "unit": "sequence",
            }
        ]
    )
    lines = verdicts45.table6_verdict(
        comparisons, {"DiffAug (full)": "diffaug", "w/o synthetic data": "diffaug+real"}, "diffaug"
    )
    assert lines == [
        "w/o synthetic data: Δ Dice vs full -6.3 [-7.5, -5.1] pp, p (Holm) = 1e-17, n = 100 sequences: worse than full; "
        "paper (CVC-ClinicDB): -8.1 pp."
    ]


def test_as_percent():
    assert tables.as_percent(0.25) == 25.0


def test_table5_contrast_without_samples_says_why_instead_of_an_empty_table():
    not_computed = {"polyp": {**_quality_summary(), "computed": False}}
    table = tables.quality_contrast_table(not_computed)
    assert len(table) == 1 and table.loc[0, "dataset"] == "polyp"
    assert table.loc[0, "reading"].startswith("not tested: quality was not computed")
    missing = _quality_summary()
    missing["sets"] = {"accepted": {}, "rejected": missing["sets"]["rejected"]}
    table = tables.quality_contrast_table({"fundus": missing, "other": _quality_summary()})
    assert table[table["dataset"] == "fundus"]["reading"].tolist() == [
        "not tested: FID / KID / LPIPS missing for the accepted or the rejected set (too few samples)"
    ]
    assert (table["dataset"] == "other").sum() == 3 and "nan" not in table.to_string().lower()


def test_table5_contrast_html_is_a_sentence_when_nothing_was_tested():
    page = tables.quality_contrast_html({"polyp": {**_quality_summary(), "computed": False}})
    assert page.startswith("<p>") and "<table" not in page and "polyp: not tested" in page
    page = tables.quality_contrast_html({"fundus": _quality_summary()})
    assert "<table" in page and "wrong way" in page

"""The studies around Table 2 (augmentation matrix, Tables 6 and 7, θ sweep) on hand-made result files."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.methods.runs import (
    SyntheticSpec,
    augmentation_runs,
    budget_config,
    parse_run,
    parse_synthetic,
    run_config,
    run_display_name,
    theta_run,
    volume_run,
)
from benchmark.reporting import studies
from benchmark.stats.comparisons import compare, finish_family
from benchmark.stats.significance import holm
from benchmark.stats.units import Units

IMAGES = [f"i{k}" for k in range(8)]
IMAGE_UNITS = Units("image", {image: image for image in IMAGES})


def comparisons_of(root, table, pairs, units=IMAGE_UNITS):
    """comparisons.csv rows of one family, computed as compare@<dataset> does."""
    from benchmark.reporting.tables import load_per_image

    per_image = load_per_image(root, ["d"], sorted({run for pair in pairs for run in pair}))
    return finish_family(
        [compare(per_image, a, b, units, table=table, n_resamples=500, seed=k) for k, (a, b) in enumerate(pairs)]
    )


def write_run(root, run, dice_by_seed, *, n_synthetic=0, detected=(1, 0), iterative=None, steps=100):
    """results/d/runs/<run>/{per_image.csv, lesions.csv, inference.json} from per-seed per-image Dice."""
    folder = root / "d" / "runs" / run
    folder.mkdir(parents=True)
    rows, lesions = [], []
    for seed, values in enumerate(dice_by_seed):
        for image, value in zip(IMAGES, values):
            rows.append(
                {
                    "dataset": "d",
                    "method": run,
                    "seed_index": seed,
                    "seed": seed,
                    "image_id": image,
                    "dice": value,
                    "iou": value / (2 - value),
                    "sensitivity": value,
                    "specificity": 1.0,
                    "fnr": 1 - value,
                }
            )
        for lesion, hit in enumerate(detected):
            lesions.append(
                {
                    "dataset": "d",
                    "method": run,
                    "seed_index": seed,
                    "seed": seed,
                    "image_id": IMAGES[lesion],
                    "lesion": 0,
                    "area_px": 10,
                    "area_fraction": 0.01,
                    "best_iou": 0.6 * hit,
                    "detected": bool(hit),
                    "any_overlap": bool(hit),
                }
            )
    pd.DataFrame(rows).to_csv(folder / "per_image.csv", index=False)
    pd.DataFrame(lesions).to_csv(folder / "lesions.csv", index=False)
    record = {
        "test_images_per_second": {f"seed_{k}": 10.0 + k for k in range(len(dice_by_seed))},
        "threshold": 0.5,
        "selection": {},
        "training": {
            f"seed_{k}": {
                "n_train_real": 40,
                "n_train_synthetic": n_synthetic,
                "epochs": 3,
                "optimizer_steps": steps,
                "train_seconds": 1.0,
            }
            for k in range(len(dice_by_seed))
        },
    }
    if iterative:
        record["iterative"] = iterative
    (folder / "inference.json").write_text(json.dumps(record))


def base(offset):
    rng = np.random.default_rng(0)
    values = np.clip(0.6 + 0.1 * rng.standard_normal(len(IMAGES)), 0.05, 0.95)
    return [np.clip(values + offset + 0.01 * k, 0, 1) for k in range(3)]


def test_run_grammar_and_labels():
    assert parse_run("unet+diffaug_v200") == ("unet", "diffaug_v200")
    assert parse_synthetic("diffaug_v50_t90") == SyntheticSpec(volume=0.5, theta=0.9)
    assert parse_synthetic("diffaug_unvalidated") == SyntheticSpec(validated=False)
    assert parse_synthetic("diffaug_notext").folder("d") == "data/synthetic/d-notext"
    assert parse_synthetic("diffaug").folder("d") == "data/synthetic/d"
    assert parse_synthetic("standard") is None
    for bad, message in [
        ("unet+diffaug_x2", "unknown or repeated modifier 'x2'"),
        ("unet+diffaug_v200_v300", "repeated"),
        ("unet+diffaug_t100", "out of range"),
        ("unet+diffaug_unvalidated_t50", "drop the θ modifier"),
        ("unet+real_v200", "unknown training data"),
    ]:
        with pytest.raises(KeyError, match=message):
            parse_run(bad)
    assert run_display_name("unet+diffaug_v200") == "U-Net + real + DiffAug synthetic (2×)"
    assert run_display_name("unet+diffaug_t90") == "U-Net + real + DiffAug synthetic (θ 0.9)"
    assert run_display_name("unet+diffaug_notext").endswith("(w/o text guidance)")
    assert run_display_name("sdseg+standard").endswith("real data, standard augmentation")


def test_standard_switches_augmentation_on():
    from benchmark.methods import get_method

    config = get_method("sdseg").Config()
    assert config.augmentation == "none"
    assert run_config(config, "standard").augmentation == "standard"
    assert run_config(config, "diffaug_v200") is config


def test_run_names_of_the_studies():
    assert volume_run("unet", 1.0, 1.0) == "unet+diffaug"
    assert volume_run("unet", 0.5, 1.0) == "unet+diffaug_v50"
    assert volume_run("diffaug", 2.0, 1.0) == "diffaug+diffaug_v200"
    assert volume_run("diffaug", 1.0, 1.0) == "diffaug"
    assert theta_run("unet", 0.9, 0.7) == "unet+diffaug_t90" and theta_run("unet", 0.7, 0.7) == "unet+diffaug"
    assert augmentation_runs("unet", "standard") == {
        "none": "unet+noaug",
        "standard": "unet",
        "DiffAug": "unet+diffaug",
    }
    assert augmentation_runs("sdseg", "none") == {
        "none": "sdseg",
        "standard": "sdseg+standard",
        "DiffAug": "sdseg+diffaug",
    }
    assert augmentation_runs("diffaug", "none") == {
        "none": "diffaug+real",
        "standard": "diffaug+standard",
        "DiffAug": "diffaug",
    }
    rows = studies.table7_runs("unet", "standard", [2.0, 0.5, 1.0], 1.0)
    assert list(rows) == [
        "no augmentation",
        "standard augmentation only",
        "DiffAug + 0.5× synthetic",
        "DiffAug + 1× synthetic",
        "DiffAug + 2× synthetic",
    ]
    assert list(rows.values()) == ["unet+noaug", "unet", "unet+diffaug_v50", "unet+diffaug", "unet+diffaug_v200"]
    assert studies.table6_rows()["w/o synthetic data"] == "diffaug+real"
    with pytest.raises(ValueError, match="add them to ablation.runs"):
        studies.check_runs_exist(["unet", "unet+diffaug_v50"], {"unet"}, "Table 7")
    assert studies.missing_runs(["unet+diffaug_t90", "unet", "unet+diffaug_t50"], {"unet"}) == [
        "unet+diffaug_t90",
        "unet+diffaug_t50",
    ]
    assert studies.missing_runs(["unet"], {"unet", "sdseg"}) == []
    # Table 6 in the default: the notext / basic rows trimmed, the full run and w/o synthetic data required
    rows = studies.table6_rows()
    kept, trimmed = studies.split_optional_rows(
        rows,
        {"diffaug", "diffaug+real", "diffaug+diffaug_unvalidated"},
        required=("DiffAug (full)", "w/o synthetic data"),
    )
    assert list(kept.values()) == ["diffaug", "diffaug+diffaug_unvalidated", "diffaug+real"]
    assert list(trimmed.values()) == ["diffaug+diffaug_notext", "diffaug+diffaug_basic"]
    with pytest.raises(ValueError, match=r"needs the runs \['diffaug\+real'\].*add them to ablation.runs"):
        studies.split_optional_rows(rows, {"diffaug"}, required=("DiffAug (full)", "w/o synthetic data"))


def test_equal_step_budget():
    from benchmark.methods.unet import UNetConfig

    config = UNetConfig(epochs=15, batch_size=16)
    assert budget_config(config, 415, 415, "equal_steps") == config  # real only: unchanged
    more = budget_config(config, 415, 2490, "equal_steps")
    assert (more.epochs, more.epoch_size) == (15, 415)  # same epochs, each a draw of 415 samples
    assert budget_config(config, 415, 2490, "equal_epochs") == config
    with pytest.raises(ValueError, match="equal_steps or equal_epochs"):
        budget_config(config, 400, 800, "equal_time")


def test_run_summary_and_paired_comparisons_against_scipy(tmp_path):
    write_run(tmp_path, "unet", base(0.0))
    write_run(tmp_path, "unet+diffaug", base(0.05), n_synthetic=40, detected=(1, 1))
    write_run(tmp_path, "unet+noaug", base(-0.03))
    summary = studies.run_summary(tmp_path, "d", "unet+diffaug")
    seeds = [np.mean(v) for v in base(0.05)]
    assert summary["dice"] == pytest.approx(np.mean(seeds)) and summary["dice_std"] == pytest.approx(
        np.std(seeds, ddof=1)
    )
    assert summary["lesion_fnr"] == 0.0 and summary["n_synthetic"] == 40 and summary["n_real"] == 40
    assert studies.run_summary(tmp_path, "d", "unet")["lesion_fnr"] == pytest.approx(0.5)

    pairs = [("unet+diffaug", "unet"), ("unet+noaug", "unet")]
    table = studies.paired_comparisons(comparisons_of(tmp_path, "table7", pairs), "table7", pairs)
    a, b, c = (np.mean(base(o), axis=0) for o in (0.05, 0.0, -0.03))
    expected_p = [stats.wilcoxon(a - b).pvalue, stats.wilcoxon(c - b).pvalue]
    assert table["p"].tolist() == pytest.approx(expected_p)
    assert table["n_units"].tolist() == [8, 8] and table["unit"].tolist() == ["image", "image"]
    assert table["p_holm"].tolist() == pytest.approx(holm(expected_p).tolist())
    assert table["mean_difference"].tolist() == pytest.approx([np.mean(a - b), np.mean(c - b)])
    assert (table["ci_low"] <= table["mean_difference"]).all() and (table["mean_difference"] <= table["ci_high"]).all()


def test_volume_curve_matrix_and_ablation_tables(tmp_path):
    for run, offset, n in [
        ("unet+noaug", -0.03, 0),
        ("unet", 0.0, 0),
        ("unet+diffaug_v50", 0.02, 20),
        ("unet+diffaug", 0.05, 40),
    ]:
        write_run(tmp_path, run, base(offset), n_synthetic=n)
    rows = studies.table7_runs("unet", "standard", [0.5, 1.0], 1.0)
    pairs = [(run, "unet") for run in rows.values() if run != "unet"]
    curve = studies.volume_curve(
        tmp_path,
        "d",
        rows,
        reference="unet",
        comparisons=comparisons_of(tmp_path, "table7", pairs),
        units=IMAGE_UNITS,
        n_resamples=500,
    )
    assert curve["n_synthetic"].tolist() == [0, 0, 20, 40]
    assert curve.loc[1, "delta"] == 0.0 and np.isnan(curve.loc[1, "p_holm"])  # the reference row
    assert curve.loc[3, "delta"] == pytest.approx(0.05)
    assert (curve["dice_ci_low"] < curve["dice"]).all() and (curve["dice"] < curve["dice_ci_high"]).all()
    formatted = studies.format_volume_table(curve, "standard augmentation")
    assert formatted["synthetic images"].tolist() == ["0", "0", "20", "40"]

    axis = augmentation_runs("unet", "standard")
    matrix = studies.augmentation_matrix(
        tmp_path,
        "d",
        {"unet": axis},
        {"unet": "U-Net"},
        comparisons=comparisons_of(tmp_path, "augmentation", [(axis["DiffAug"], axis["standard"])]),
    )
    assert matrix.loc[0, "segmenter"] == "U-Net" and matrix.loc[0, "DiffAug − standard (pp)"] == "+5.0"
    assert matrix.loc[0, "n"] == "8 images"

    write_run(
        tmp_path,
        "diffaug",
        base(0.04),
        n_synthetic=40,
        iterative={
            f"seed_{k}": {
                "variant": "DDIM 10 steps",
                "dice": 0.6 + 0.01 * k,
                "iou": 0.45,
                "lesion_fnr": 0.25,
                "test_images_per_second": 2.0,
            }
            for k in range(3)
        },
    )
    write_run(tmp_path, "diffaug+real", base(-0.02))
    table = studies.ablation_table(
        tmp_path,
        "d",
        {"DiffAug (full)": "diffaug", "w/o synthetic data": "diffaug+real"},
        full="diffaug",
        iterative_label="w/o latent estimation",
        comparisons=comparisons_of(tmp_path, "table6", [("diffaug+real", "diffaug")]),
    )
    assert table["configuration"].tolist() == [
        "DiffAug (full)",
        "w/o latent estimation (DDIM 10 steps, same weights)",
        "w/o synthetic data",
    ]
    assert table.loc[1, "Dice (%)"] == "61.0 ± 1.0" and table.loc[1, "inference (images/s)"] == "2.0"
    assert table.loc[2, "Δ Dice (pp)"] == "-6.0" and table.loc[0, "Δ Dice (pp)"] == ""
    assert table.loc[0, "lesion FNR (%)"] == "50.0"


def test_tables_say_underpowered_where_the_units_cannot_reach_005(tmp_path):
    """Frames grouped into 5 sequences: however large the difference, no p-value is printed."""
    for run, offset in [("unet", 0.0), ("unet+diffaug", 0.2)]:
        write_run(tmp_path, run, base(offset))
    five = Units("sequence", {image: f"s{k % 5}" for k, image in enumerate(IMAGES)})
    eight = IMAGE_UNITS
    pairs = [("unet+diffaug", "unet")]
    axis = {**augmentation_runs("unet", "standard"), "none": None}
    for units, expected in ((five, "underpowered (n = 5 sequences)"), (eight, None)):
        matrix = studies.augmentation_matrix(
            tmp_path,
            "d",
            {"unet": axis},
            {"unet": "U-Net"},
            comparisons=comparisons_of(tmp_path, "augmentation", pairs, units),
        )
        cell = matrix.loc[0, "p (Holm)"]
        assert (
            cell == expected if expected else float(cell) == pytest.approx(2 / 2**8, rel=0.01)
        )  # exact: all 8 images one way


def test_accepted_subset_regates_and_ignores_the_gate(tmp_path):
    from benchmark.generators.loop import accepted_subset

    table = pd.DataFrame(
        {
            "order": range(6),
            "accepted": [True, False, True, True, False, True],
            "iou": [0.75, 0.3, 0.95, 0.72, 0.65, 0.91],
        }
    )
    table.to_csv(tmp_path / "manifest.csv", index=False)
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1) * np.ones((6, 2, 2, 3), np.uint8)
    np.savez(tmp_path / "samples.npz", images=images, labels=np.ones((6, 2, 2), np.uint8))
    assert accepted_subset(tmp_path, 0.5, 4, theta=0.9).ids == ("syn2", "syn5")
    assert accepted_subset(tmp_path, 0.75, 4, theta=0.6).ids == ("syn0", "syn2", "syn3")
    assert accepted_subset(tmp_path, 0.5, 4, validated=False).ids == ("syn0", "syn1")
    with pytest.raises(ValueError, match=r"holds 2 accepted \(θ = 0.9\)"):
        accepted_subset(tmp_path, 1.0, 4, theta=0.9)
    with pytest.raises(FileNotFoundError, match="synthesize stage"):
        accepted_subset(tmp_path / "missing", 1.0, 4)


def test_ablation_params_are_checked(tmp_path):
    import yaml

    from benchmark.config import ParamsError
    from benchmark.params import check_params

    content = yaml.safe_load(open("params.yaml"))
    content["ablation"]["runs"] = list(content["ablation"]["runs"]) + ["unet"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match="listed in both train.methods and ablation.runs"):
        check_params(str(path))
    content = yaml.safe_load(open("params.yaml"))
    content["ablation"]["datasets"] = ["kvasir_seg"]
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match="not in prepare.datasets"):
        check_params(str(path))
    content = yaml.safe_load(open("params.yaml"))
    content["ablation"]["synthetic_sets"] = ["basic"]
    content["ablation"]["runs"] = list(content["ablation"]["runs"]) + ["diffaug+diffaug_notext"]
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match="add it to ablation.synthetic_sets"):
        check_params(str(path))


def _scale_result(val_dice, test_dice, std=0.01, val_std=0.01):
    variants = [
        {
            "variant": f"steps_{n}",
            "width": 1.0,
            "generator_steps": n,
            "generator_train_seconds": n / 5,
            "final_loss": 0.1,
            "acceptance_rate": 0.1,
            "fid_accepted": 10.0,
            "kid_accepted": 0.01,
            "kid_std": 0.001,
            "text_checks": {"size": {"share_follow": 0.6, "ci_low": 0.5, "ci_high": 0.7, "real_proxy_auc": 0.8}},
            "unet_diffaug_validation_dice": v,
            "unet_diffaug_validation_dice_std": val_std,
            "unet_diffaug_test_dice": t,
            "unet_diffaug_test_dice_std": std,
        }
        for n, v, t in zip((400, 1600, 6400), val_dice, test_dice)
    ]
    return {
        "dataset": "synth_polyp",
        "variants": variants,
        "references": {
            "unet": {"test_dice": 0.60, "validation_dice": 0.62, "test_dice_std": 0.01},
            "oracle": {"test_dice": 0.66, "validation_dice": 0.67, "test_dice_std": 0.01},
        },
    }


def test_generator_scale_verdict_chooses_on_validation_and_reads_the_curve():
    # validation favours 1,600 steps while test favours 6,400: the choice follows validation
    result = _scale_result([0.60, 0.65, 0.62], [0.58, 0.59, 0.63])
    text = studies.generator_scale_verdict(result)
    assert text.startswith("Chosen on validation: steps_1600 (U-Net + DiffAug validation Dice 65.0 %).")
    assert "moved by -3.0 points" in text and "no rise beyond the seed spread" in text
    assert "above it: steps_6400" in text and "Oracle data at the same budget: 66.0 % (+6.0 points" in text
    rising = studies.generator_scale_verdict(_scale_result([0.60, 0.61, 0.65], [0.58, 0.59, 0.61]))
    assert "moved by +4.0 points" in rising and "still rising" in rising and "above it: steps_6400" in rising
    assert studies.generator_scale_verdict({"variants": []}) == ""
    # the seed spread that decides "still rising" is validation's: a huge test spread changes nothing
    assert "still rising" in studies.generator_scale_verdict(
        _scale_result([0.60, 0.61, 0.65], [0.58, 0.59, 0.61], std=0.5)
    )
    assert "no rise" in studies.generator_scale_verdict(
        _scale_result([0.60, 0.61, 0.65], [0.58, 0.59, 0.61], val_std=0.1)
    )
    unjudged = studies.generator_scale_verdict(_scale_result([0.60, 0.61, 0.65], [0.58, 0.59, 0.61], val_std=None))
    assert "moved by +4.0 points" in unjudged and "not judged" in unjudged and "still rising" not in unjudged
    table = studies.generator_scale_table(result)
    assert list(table["training data"])[-2:] == ["U-Net, real data only", "U-Net + oracle data 1×"]
    assert list(table["validation Dice (%)"])[:3] == ["60.0", "65.0", "62.0"]


def test_generator_scale_plot_draws_the_three_curves():
    from benchmark.reporting import figures

    figure = figures.generator_scale_plot(_scale_result([0.60, 0.65, 0.62], [0.58, 0.59, 0.63]))
    axes = figure.axes
    assert len(axes) == 3 and [line.get_ydata()[0] for line in axes[1].lines] == [10.0]
    assert len(axes[2].lines) == 4  # validation, test, U-Net alone, oracle

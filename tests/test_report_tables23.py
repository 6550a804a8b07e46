"""Issue 20: the defects of the rendered Table 2 / Table 3 reports, each on hand-made result frames and files."""

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from benchmark.reporting import claims, tables, verdicts
from benchmark.stats.comparisons import COLUMNS
from benchmark.stats.units import Units


def comparison(
    table="table2",
    run_a="unet",
    run_b="transunet",
    *,
    delta=0.02,
    p=0.2,
    p_holm=1.0,
    n_units=100,
    unit="sequence",
    metric="dice",
) -> dict:
    return {
        "table": table,
        "run_a": run_a,
        "run_b": run_b,
        "metric": metric,
        "unit": unit,
        "n_units": n_units,
        "n_seeds": 3,
        "delta": delta,
        "ci_low": delta - 0.02,
        "ci_high": delta + 0.02,
        "seed_sd": 0.01,
        "p": p,
        "p_holm": p_holm,
        "min_attainable_p": 2 / 2**n_units,
        "mde_80": 0.03,
    }


def per_image(seed_dice: dict[str, list[float]], dataset: str = "synth_polyp") -> pd.DataFrame:
    """Two images per seed, both scoring the seed's Dice (so per-seed means are exactly ``seed_dice``)."""
    rows = []
    for method, values in seed_dice.items():
        for seed_index, value in enumerate(values):
            for image in ("1", "2"):
                rows.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        "seed_index": seed_index,
                        "image_id": image,
                        "dice": value,
                        "iou": value / (2 - value),
                        "sensitivity": 0.9,
                        "specificity": 0.99,
                        "fnr": 0.1,
                    }
                )
    return pd.DataFrame(rows)


# --- Table 2 bolds only a best that its Holm-adjusted row calls significant -------------------------------------------


def test_bold_follows_the_holm_row_not_the_mean_nor_the_raw_p():
    summary = tables.seed_summary(per_image({"unet": [0.70, 0.69, 0.71], "transunet": [0.67, 0.67, 0.68]}))
    cases = [
        (comparison(p=0.2, p_holm=1.0), False),  # the case: U-Net vs TransUNet, Holm p = 1
        (comparison(p=0.004, p_holm=0.2), False),  # raw p significant, Holm not: no bold
        (comparison(p=0.001, p_holm=0.01), True),
        (comparison(p=0.03125, p_holm=0.03125, n_units=5), False),
    ]  # 5 units cannot reach p < 0.05: underpowered
    for row, bold in cases:
        best = tables.significant_best({"synth_polyp": pd.DataFrame([row])}, summary)
        table = tables.segmentation_table(summary, bold=best)
        assert table[("synth_polyp", "Dice (%)")]["unet"].startswith("<b>") is bold, row
        assert "<b>" not in "".join(table[("synth_polyp", "IoU (%)")])  # IoU is not tested: never bold


# --- one p per comparison, read from comparisons.csv -----------------------------------------------------------------


def test_every_table2_p_is_the_holm_p_of_its_row():
    frame = pd.DataFrame(
        [comparison("table2", "diffaug", "transunet", delta=-0.03, p=0.0016, p_holm=0.0096, n_units=200, unit="image")]
    )
    table = tables.significance_table({"synth_fundus": frame})
    assert [column for column in table.columns if column.startswith("p")] == [
        "p (Holm)"
    ]  # no second p for the same comparison
    assert table.loc[0, "p (Holm)"] == "0.0096"
    mixed = {
        "run_a": "diffaug",
        "run_b": "transunet",
        "unit": "image",
        "n_units": 200,
        "n_images": 200,
        "delta": -0.0294,
        "ci_low": -0.0523,
        "ci_high": -0.0066,
        "p": 0.012,
        "converged": True,
        "unit_test": {"delta": -0.03, "p": 0.0016, "n_units": 200},
        "agree": "stale",
    }
    sentence = claims.mixed_effects_sentence("synth_fundus", mixed, row=frame.iloc[0])
    assert "p (Holm) = 0.0096" in sentence
    assert "0.012" not in sentence and "0.0016" not in sentence  # neither the mixed model's p nor the raw p
    assert "agree: both significant" in sentence
    summary = tables.seed_summary(
        per_image({"diffaug": [0.77, 0.78, 0.78], "transunet": [0.80, 0.81, 0.80]}, "synth_fundus")
    )
    verdict = verdicts.table2_verdict(
        {
            "synth_fundus": pd.concat(
                [
                    frame,
                    pd.DataFrame(
                        [
                            comparison(
                                "table2",
                                "transunet",
                                "diffaug",
                                delta=0.03,
                                p=0.0016,
                                p_holm=0.0096,
                                n_units=200,
                                unit="image",
                            )
                        ]
                    ),
                ]
            )
        },
        summary,
        paper={"synth_fundus": ("paper (REFUGE2)", {"diffaug": 90.2, "transunet": 85.6})},
    )
    assert "0.0016" not in verdict and verdict.count("p (Holm) = 0.0096") == 2


def test_a_comparison_listed_in_several_tables_gets_one_p_everywhere():
    rows = [
        comparison("table2", "unet+diffaug", "unet", delta=-0.06, p=0.0037, p_holm=0.0037),
        comparison("augmentation", "unet+diffaug", "unet", delta=-0.061, p=0.0037, p_holm=0.011),
        comparison("table7", "unet+diffaug", "unet", delta=-0.059, p=0.0037, p_holm=0.025),
        comparison("table7", "unet+oracle", "unet", delta=0.01, p=0.2, p_holm=0.4),
    ]
    unified = claims.one_p_per_comparison(pd.DataFrame(rows, columns=list(COLUMNS)))
    repeated = unified[unified["run_a"] == "unet+diffaug"]
    assert repeated["p_holm"].tolist() == [0.025] * 3  # the largest, so no family gains a rejection
    assert repeated["delta"].tolist() == [-0.06] * 3 and repeated["ci_low"].nunique() == 1
    assert unified["table"].tolist() == ["table2", "augmentation", "table7", "table7"]
    assert unified.iloc[3]["p_holm"] == 0.4 and unified.iloc[3]["delta"] == 0.01  # listed once: unchanged
    other_metric = pd.DataFrame(
        [
            comparison("table3", "diffaug", "sdseg", p_holm=0.3, metric="lesion_sensitivity"),
            comparison("table3", "diffaug", "sdseg", p_holm=0.6, metric="lesion_sensitivity [flat]"),
        ]
    )
    assert claims.one_p_per_comparison(other_metric)["p_holm"].tolist() == [
        0.3,
        0.6,
    ]  # another metric is another comparison


def test_every_table3_p_is_the_holm_p_of_its_row():
    frame = pd.DataFrame(
        [comparison("table3", "diffaug", "sdseg", delta=-0.02, p=0.01, p_holm=0.4, metric="lesion_sensitivity [flat]")]
    )
    table = tables.lesion_comparison_table({"synth_polyp": frame})
    assert table.loc[0, "stratum"] == "flat" and table.loc[0, "p (Holm)"] == "0.4"
    assert table.loc[0, "Δ lesion FNR (pp)"] == "+2.0" and table.loc[0, "95 % CI (pp)"] == "[-4.0, +0.0]"
    assert [column for column in table.columns if column.startswith("p")] == ["p (Holm)"]


# --- collapsed seeds --------------------------------------------------------------------------------------------------


def test_a_collapsed_seed_is_flagged_with_median_and_iqr():
    summary = tables.seed_summary(
        per_image({"unet": [0.82, 0.54, 0.74], "transunet": [0.83, 0.80, 0.80]}, "synth_fundus")
    )
    dice = summary[summary["metric"] == "dice"].set_index("method")
    assert dice.loc["unet", "collapsed"] == [1] and dice.loc["transunet", "collapsed"] == []
    assert dice.loc["unet", "median"] == pytest.approx(0.74) and dice.loc["unet", "q1"] == pytest.approx(
        (0.54 + 0.74) / 2
    )
    table = tables.segmentation_table(summary)
    assert table[("synth_fundus", "Dice (%)")]["unet"].endswith(" †") and not table[("synth_fundus", "Dice (%)")][
        "transunet"
    ].endswith("†")
    assert table[("synth_fundus", "Dice median [IQR] (%)")]["unet"] == "74.0 [64.0, 78.0]"
    note = tables.seed_collapse_note(summary)
    assert (
        f"{100 * tables.COLLAPSE_MARGIN:.0f} Dice points below the method's median" in note
        and "synth_fundus unet seed 1" in note
    )
    # 14 points below the median is within the margin: not collapsed
    assert tables.collapsed_seeds(pd.Series([0.80, 0.66, 0.81])) == []


def test_per_seed_table_flags_the_collapsed_seed_and_names_pixel_fnr(tmp_path):
    folder = tmp_path / "synth_fundus" / "runs" / "unet"
    folder.mkdir(parents=True)
    seeds = {
        f"seed_{k}": {"dice": dice, "iou": dice / 2, "sensitivity": 0.9, "specificity": 0.99, "fnr": 0.1}
        for k, dice in enumerate([0.82, 0.535, 0.74])
    }
    (folder / "metrics.json").write_text(json.dumps({"per_seed": seeds}))
    per_seed = tables.per_seed_table(tmp_path, ["synth_fundus"], ["unet"])
    assert per_seed["collapsed"].tolist() == [False, True, False]
    shown = tables.format_per_seed_table(per_seed)
    assert "pixel FNR (%)" in shown.columns and "fnr" not in shown.columns and "FNR (%)" not in shown.columns
    assert shown["pixel FNR (%)"].iloc[0] == "10.0" and shown["Dice (%)"].iloc[1] == "53.5"  # percent, as every table
    flag = next(column for column in shown.columns if column.startswith("collapsed"))
    assert shown[flag].iloc[1] == "yes: -20.5 pp vs median 74.0" and shown[flag].iloc[0] == ""


# --- prose without raw Python --------------------------------------------------------------------------------------------


def test_test_image_counts_are_a_sentence_not_a_dict():
    frame = pd.concat(
        [
            per_image({"unet": [0.7]}, "synth_polyp"),
            per_image({"unet": [0.7]}, "synth_fundus").assign(image_id=lambda f: f["image_id"] + "f"),
        ]
    )
    text = tables.test_images_sentence(frame)
    assert text == "test images: synth_polyp 2, synth_fundus 2" and "{" not in text and "'" not in text


# --- Table 3: names, relative reduction near 0, paired per-stratum tests, units ----------------------------------------


class FakePrepared:
    def __init__(self, attributes, manifest):
        self.attributes, self.manifest = attributes, manifest


def lesion_frames(hits: dict[str, list[list[int]]]):
    """Lesions (one per image) and per-image specificity for images 1-4 (1, 2 flat; 4 small) in 2 sequences."""
    attributes = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4"],
            "split": ["test"] * 4,
            "flat": [True, True, False, False],
            "small": [False, False, False, True],
            "group": ["1", "1", "2", "2"],
        }
    )
    rows, spec = [], []
    for method, per_seed in hits.items():
        for seed_index, values in enumerate(per_seed):
            for image, hit in zip(["1", "2", "3", "4"], values):
                rows.append(
                    {
                        "dataset": "p",
                        "method": method,
                        "seed_index": seed_index,
                        "image_id": image,
                        "lesion": 1,
                        "detected": bool(hit),
                        "any_overlap": True,
                    }
                )
                spec.append(
                    {"dataset": "p", "method": method, "seed_index": seed_index, "image_id": image, "specificity": 1.0}
                )
    return (
        pd.DataFrame(rows),
        pd.DataFrame(spec),
        {"p": FakePrepared(attributes, {"target": "polyp", "modality": "polyp"})},
    )


def test_lesion_and_pixel_fnr_are_named_apart_and_relative_reduction_is_blank_near_zero():
    lesions, spec, prepared = lesion_frames({"unet": [[1, 1, 1, 1]] * 2, "ours": [[1, 0, 1, 1]] * 2})
    table = tables.lesion_detection_table(lesions, spec, prepared, reference="unet", n_resamples=200)
    # any overlap: the reference misses nothing (FNR 0 %), so no ratio; under the primary rule the same
    assert table["relative_fnr_reduction"].isna().all()
    shown = tables.format_lesion_table(table)
    rel = next(column for column in shown.columns if column.startswith("rel."))
    assert set(shown[rel]) == {"–"} and f"< {100 * tables.RELATIVE_FNR_MIN_REFERENCE:.0f} %" in rel
    assert "lesion FNR (%) [95 % CI]" in shown.columns and not any(column.startswith("FNR") for column in shown.columns)
    assert tables.relative_fnr_reduction(0.05, 0.019) != tables.relative_fnr_reduction(0.05, 0.019)  # below 2 %: NaN
    assert tables.relative_fnr_reduction(0.2, 0.4) == pytest.approx(0.5)
    lesions, spec, prepared = lesion_frames({"unet": [[1, 0, 1, 0]] * 2, "ours": [[1, 1, 1, 0]] * 2})
    table = tables.lesion_detection_table(lesions, spec, prepared, reference="unet", n_resamples=200).set_index(
        ["stratum", "run"]
    )
    assert table.loc[("all", "ours"), "relative_fnr_reduction"] == pytest.approx(0.5)  # 50 % → 25 %
    shown = tables.format_lesion_table(table.reset_index(), paper={"flat": ("paper Table 3", {"ours": 27.6})})
    paper_column = "lesion FNR (%), paper Table 3"
    assert shown.loc[(shown["stratum"] == "flat") & (shown["method"] == "ours"), paper_column].item() == "27.6"
    assert shown.loc[(shown["stratum"] == "all") & (shown["method"] == "ours"), paper_column].item() == "–"


def test_fnr_bars_are_in_percent():
    from benchmark.reporting.figures import fnr_bars

    lesions, spec, prepared = lesion_frames({"unet": [[1, 0, 1, 0]] * 2, "ours": [[1, 1, 1, 0]] * 2})
    table = tables.lesion_detection_table(lesions, spec, prepared, n_resamples=200)
    figure = fnr_bars(table)
    axis = figure.axes[0]
    assert "%" in axis.get_ylabel() and axis.get_ylabel().startswith("lesion FNR") and axis.get_ylim()[1] == 100
    heights = sorted(round(patch.get_height(), 6) for patch in axis.patches)
    assert heights == sorted(round(100 * value, 6) for value in table["fnr"])


def write_runs(root, dataset: str, scores: dict[str, dict]) -> None:
    """Per run: inference.json (validation Dice), per_image.csv (Dice per seed × image), lesions.csv (detected per seed × image)."""
    for run, record in scores.items():
        folder = root / dataset / "runs" / run
        folder.mkdir(parents=True)
        (folder / "inference.json").write_text(
            json.dumps({"selection": {"seed_0": {"validation_dice": record["val"]}}})
        )
        rows, lesions = [], []
        for seed_index in (0, 1):
            for image, (dice, hit) in enumerate(zip(record["dice"], record["hit"])):
                rows.append(
                    {
                        "dataset": dataset,
                        "method": run,
                        "seed_index": seed_index,
                        "image_id": str(image),
                        "dice": dice + 0.01 * seed_index,
                    }
                )
                lesions.append(
                    {
                        "dataset": dataset,
                        "method": run,
                        "seed_index": seed_index,
                        "image_id": str(image),
                        "lesion": 1,
                        "detected": bool(hit),
                        "any_overlap": True,
                    }
                )
        pd.DataFrame(rows).to_csv(folder / "per_image.csv", index=False)
        pd.DataFrame(lesions).to_csv(folder / "lesions.csv", index=False)


def test_table3_pairs_are_tested_within_every_stratum_at_the_unit(tmp_path):
    n = 12
    rng = np.random.default_rng(0)
    scores = {
        "unet": {"val": 0.7, "dice": rng.uniform(0.6, 0.8, n), "hit": [1] * n},
        "sdseg": {"val": 0.6, "dice": rng.uniform(0.5, 0.7, n), "hit": [1] * 6 + [0] * 6},
        "diffaug": {"val": 0.65, "dice": rng.uniform(0.5, 0.7, n), "hit": [1] * 6 + [1, 1, 1, 0, 0, 0]},
        "unet+diffaug": {"val": 0.68, "dice": rng.uniform(0.6, 0.8, n), "hit": [1] * n},
    }
    write_runs(tmp_path, "d", scores)
    # the augmentation and Table 7 families (U-Net + DiffAug − U-Net) come after Table 3
    train = SimpleNamespace(
        methods=("unet", "sdseg", "diffaug"),
        config_of=lambda m: SimpleNamespace(augmentation="standard" if m == "unet" else "none"),
    )
    sections = {
        "train": train,
        "ablation": SimpleNamespace(runs=("unet+diffaug",), datasets=("d",)),
        "synthesize": SimpleNamespace(volumes=(1.0,), volume=1.0, theta=0.7),
        "quality": SimpleNamespace(thetas=(0.7,)),
    }
    units = Units("sequence", {str(image): str(image // 2) for image in range(n)})  # 6 sequences of 2 images
    strata = {"flat": {str(image) for image in range(6, n)}, "empty": {"99"}}
    plain, _ = claims.build(tmp_path, "d", sections, units, n_resamples=200)
    both, _ = claims.build(tmp_path, "d", sections, units, strata=strata, n_resamples=200)
    assert tuple(both.columns) == COLUMNS
    table3 = both[both["table"] == "table3"]
    assert set(table3["metric"]) == {
        "lesion_sensitivity",
        "lesion_sensitivity [flat]",
    }  # a stratum without test lesions is left out
    flat = table3[table3["metric"] == "lesion_sensitivity [flat]"].set_index(["run_a", "run_b"])
    assert (
        flat.loc[("diffaug", "sdseg"), "delta"] == pytest.approx(0.5) and flat.loc[("diffaug", "sdseg"), "n_units"] == 3
    )
    assert flat.loc[("sdseg", "unet"), "delta"] == pytest.approx(-1.0) and flat.loc[
        ("sdseg", "unet"), "ci_high"
    ] == pytest.approx(-1.0)
    from benchmark.stats.significance import holm

    assert table3["p_holm"].to_numpy() == pytest.approx(
        holm(table3["p"].to_numpy())
    )  # one Holm family: the whole Table 3
    assert claims.stratum_of("lesion_sensitivity [flat]") == "flat" and claims.stratum_of("lesion_sensitivity") == "all"

    # the strata leave every other row as it was (their bootstrap seeds are their own)
    def others(frame):
        return frame[frame["table"] != "table3"].reset_index(drop=True)

    def all_rows(frame):
        rows = frame[(frame["table"] == "table3") & (frame["metric"] == "lesion_sensitivity")]
        return rows.drop(columns="p_holm").reset_index(drop=True)

    assert {"augmentation", "table7"} <= set(plain["table"])
    pd.testing.assert_frame_equal(others(plain), others(both))
    pd.testing.assert_frame_equal(all_rows(plain), all_rows(both))


# --- the verdicts ---------------------------------------------------------------------------------------------------------


class FakePaper:
    PAPER_ROWS = {
        "table2": {"unet": "U-Net", "diffaug": "DiffAug (Ours)"},
        "table3": {"sdseg": "SDSeg", "diffaug": "DiffAug"},
    }
    figures = {
        ("table2", "dice", "U-Net", "cvc_clinicdb"): 88.3,
        ("table2", "dice", "DiffAug (Ours)", "cvc_clinicdb"): 96.4,
        ("table3", "fnr", "SDSeg", "Flat Lesions"): 31.1,
        ("table3", "fnr", "DiffAug", "Flat Lesions"): 27.6,
    }

    def lookup(self, table, metric, row=None, dataset=None, column=None, group=None):
        return self.figures.get((table, metric, row, dataset if table == "table2" else group))


def test_paper_figures_are_labelled_with_the_paper_dataset():
    paper = verdicts.paper_dice(["synth_polyp", "mine"], ["unet", "diffaug", "transunet"], paper=FakePaper())
    assert paper == {
        "synth_polyp": ("paper (CVC-ClinicDB)", {"unet": 88.3, "diffaug": 96.4})
    }  # no figure for an unknown dataset
    assert verdicts.paper_lesion_fnr(["all", "flat"], ["sdseg", "diffaug"], paper=FakePaper()) == {
        "flat": ("paper Table 3", {"sdseg": 31.1, "diffaug": 27.6})
    }
    assert verdicts.paper_dice(["synth_polyp"], ["unet"], paper=False) == {}
    summary = tables.seed_summary(per_image({"unet": [0.70, 0.69, 0.71], "diffaug": [0.40, 0.30, 0.45]}))
    table = tables.segmentation_table(summary, paper=paper)
    assert table[("synth_polyp", "Dice (%), paper (CVC-ClinicDB)")].to_dict() == {"unet": "88.3", "diffaug": "96.4"}


def test_table2_verdict_states_best_significance_units_and_paper():
    summary = tables.seed_summary(
        per_image({"unet": [0.70, 0.69, 0.71], "transunet": [0.67, 0.67, 0.68], "diffaug": [0.40, 0.30, 0.45]})
    )
    rows = [
        comparison(p=0.2, p_holm=1.0),
        comparison(run_a="transunet", run_b="unet", delta=-0.02, p_holm=1.0),
        comparison(run_a="diffaug", run_b="unet", delta=-0.3, p=1e-30, p_holm=1.4e-29),
    ]
    paper = {"synth_polyp": ("paper (CVC-ClinicDB)", {"unet": 88.3, "diffaug": 96.4})}
    text = verdicts.table2_verdict({"synth_polyp": pd.DataFrame(rows)}, summary, {"unet": "U-Net"}, paper)
    lines = text.splitlines()
    assert 2 <= len(lines) <= 5 and "procedural stand-in" in lines[0] and "CVC-ClinicDB" in lines[0]
    assert (
        "highest mean Dice U-Net (70.0 %)" in lines[1]
        and "p (Holm) = 1, 100 sequences: not significantly better" in lines[1]
    )
    assert "The paper's best on CVC-ClinicDB is diffaug (96.4 %); here 38.3 %, rank 3 of 3" in lines[1]
    assert "-30.00 pp" in lines[1] and "p (Holm) = 1.4e-29" in lines[1] and "significantly worse" in lines[1]
    rows[0] = comparison(p=0.001, p_holm=0.004)
    text = verdicts.table2_verdict({"synth_polyp": pd.DataFrame(rows)}, summary)
    assert "significantly better (bold in Table 2)" in text and "No comparable paper figure" in text


def test_table3_verdict_states_lowest_fnr_and_the_papers_claim_per_stratum():
    lesions, spec, prepared = lesion_frames(
        {"unet": [[1, 1, 1, 0]] * 2, "sdseg": [[0, 0, 1, 0]] * 2, "diffaug": [[1, 0, 1, 0]] * 2}
    )
    table3 = tables.lesion_detection_table(lesions, spec, prepared, n_resamples=200)
    frame = pd.DataFrame(
        [
            comparison("table3", "sdseg", "unet", delta=-0.5, p=0.001, p_holm=0.003, metric="lesion_sensitivity"),
            comparison("table3", "diffaug", "unet", delta=-0.25, p=0.04, p_holm=0.08, metric="lesion_sensitivity"),
            comparison("table3", "diffaug", "sdseg", delta=0.25, p=0.3, p_holm=0.6, metric="lesion_sensitivity"),
            comparison(
                "table3",
                "diffaug",
                "sdseg",
                delta=0.5,
                p=0.3,
                p_holm=0.6,
                n_units=1,
                metric="lesion_sensitivity [flat]",
            ),
        ]
    )
    text = verdicts.table3_verdict(
        {"p": frame}, table3, paper={"flat": ("paper Table 3", {"sdseg": 31.1, "diffaug": 27.6})}
    )
    lines = text.splitlines()
    assert 3 <= len(lines) <= 5
    assert (
        "lowest lesion FNR unet (25.0 %)" in lines[1]
        and "1 of 2 methods have a significantly higher lesion FNR" in lines[1]
    )
    assert "not significantly best (no significant difference from diffaug, +25.00 pp" in lines[1]
    assert "flat: 50.0 % vs 100.0 %, Δ -50.00 pp [-52.00, -48.00], underpowered (n = 1 sequence)" in lines[2]
    assert "paper Table 3: 27.6 % vs 31.1 %" in lines[2]
    assert not math.isnan(table3["fnr"].sum())


@pytest.mark.parametrize(
    "name, call", [("table2_segmentation", "verdicts.table2_verdict("), ("table3_lesions", "verdicts.table3_verdict(")]
)
def test_each_report_opens_with_its_generated_verdict(name, call):
    """The first output after the set-up cell is the verdict, rendered by tested code (no typed numbers, no local test)."""
    from pathlib import Path

    notebook = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{name}.ipynb").read_text())
    code = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert call in code[3] and "from benchmark.reporting import claims, figures, tables, verdicts" in code[2]
    test_call = re.compile(
        r"\b(wilcoxon|paired_wilcoxon|signed_rank_p|sign_flip_p|bootstrap_ci|holm|compare|compare_to_best_other)\("
    )
    assert not any(test_call.search(source) for source in code)  # no notebook recomputes a test

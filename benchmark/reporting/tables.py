"""Table 1 (dataset statistics) and Table 2 (segmentation, mean ± std over seeds)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.prepared import PreparedDataset
from benchmark.stats.summary import mean_std, per_seed_means
from benchmark.utils.io import read_json

METRIC_LABELS = {"dice": "Dice", "iou": "IoU", "sensitivity": "Sensitivity", "specificity": "Specificity", "fnr": "FNR"}


# Real frames carry no millimetre scale: SUN-SEG's "small object" rule (DATASETS.md).
SMALL_AREA_FRACTION = 0.05


def _stratum_masks(attributes: pd.DataFrame, modality: str) -> dict[str, pd.Series]:
    """Boolean columns of the Table 3 strata that this dataset labels (exact on procedural data)."""
    truthy = lambda column: attributes[column].astype(str).str.lower().eq("true")  # noqa: E731
    strata = {}
    if "small" in attributes:
        strata["small (<5 mm)"] = truthy("small")
    elif modality == "polyp":
        area = attributes["target_area_fraction"]
        strata[f"small (area <{SMALL_AREA_FRACTION:.0%})"] = (area > 0) & (area < SMALL_AREA_FRACTION)
    if "flat" in attributes:
        strata["flat"] = truthy("flat")
    if "stratum" in attributes:
        strata["early glaucoma (vCDR 0.5-0.6)"] = attributes["stratum"].eq("early")
    elif "vcdr" in attributes:
        strata["early glaucoma (vCDR 0.5-0.6)"] = attributes["vcdr"].between(0.5, 0.6, inclusive="left")
    return strata


def dataset_table(prepared: dict[str, PreparedDataset]) -> pd.DataFrame:
    """Table 1: one row per dataset.

    Columns: target, images, train + val (the training pool), train / val / test sizes, images
    with a lesion, lesion count (8-connected components at native resolution), stratum sizes
    as "all (test)", native resolutions (W×H; smallest and largest by area when several), and
    the split protocol.
    """
    rows = []
    for name, dataset in prepared.items():
        attributes = dataset.attributes
        split = attributes["split"]
        test = split.eq("test")
        sizes = sorted(
            {(int(w), int(h)) for w, h in zip(attributes["native_width"], attributes["native_height"])},
            key=lambda s: (s[0] * s[1], s),
        )
        size_text = [f"{w}×{h}" for w, h in sizes]
        row = {
            "dataset": name,
            "target": dataset.manifest["target"],
            "images": len(attributes),
            "train + val": int(split.isin(["train", "val"]).sum()),
            "train": int(split.eq("train").sum()),
            "val": int(split.eq("val").sum()),
            "test": int(test.sum()),
            "with lesion": int((attributes["n_lesions"] > 0).sum()),
            "lesions": int(attributes["n_lesions"].sum()),
        }
        for stratum, mask in _stratum_masks(attributes, dataset.manifest["modality"]).items():
            row[stratum] = f"{int(mask.sum())} ({int((mask & test).sum())})"
        row["native size (W×H)"] = (
            size_text[0] if len(sizes) == 1 else f"{len(sizes)} sizes, {size_text[0]} … {size_text[-1]}"
        )
        row["split protocol"] = dataset.manifest.get("split_protocol", "")
        rows.append(row)
    table = pd.DataFrame(rows).set_index("dataset").fillna("–")
    last = ["native size (W×H)", "split protocol"]
    return table[[column for column in table.columns if column not in last] + last]


def run_folder(root: str | Path, dataset: str, run: str) -> Path:
    """Where ``train@<dataset>`` keeps a run: ``<root>/<dataset>/runs/<run>`` (root: results or models)."""
    return Path(root) / dataset / "runs" / run


def load_per_image(results_dir: str | Path, datasets: list[str], methods: list[str]) -> pd.DataFrame:
    """Concatenate ``results/<dataset>/runs/<run>/per_image.csv`` for the given names."""
    return _load_results_csv(results_dir, datasets, methods, "per_image.csv")


def _load_results_csv(results_dir: str | Path, datasets: list[str], methods: list[str], filename: str) -> pd.DataFrame:
    """Concatenate ``results/<dataset>/runs/<run>/<filename>`` (written by ``train@<dataset>``)."""
    frames = []
    for dataset in datasets:
        for method in methods:
            path = run_folder(results_dir, dataset, method) / filename
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing; run `dvc repro train@{dataset}`")
            frames.append(pd.read_csv(path, dtype={"image_id": str}))
    return pd.concat(frames, ignore_index=True)


#: A seed whose mean Dice lies more than this far (fraction: 0.15 = 15 Dice points) below its method's median
#: over seeds is flagged as collapsed in Table 2 and the per-seed table (:func:`seed_summary`).
COLLAPSE_MARGIN = 0.15


def collapsed_seeds(values: pd.Series, margin: float = COLLAPSE_MARGIN) -> list:
    """Index labels of the per-seed means lying more than ``margin`` below their median (NaN never flagged)."""
    values = values.dropna()
    if len(values) < 2:
        return []
    median = float(values.median())
    return [index for index, value in values.items() if value < median - margin]


def seed_summary(
    per_image: pd.DataFrame, metrics: tuple[str, ...] = ("dice", "iou"), margin: float = COLLAPSE_MARGIN
) -> pd.DataFrame:
    """Per dataset × method × metric over the per-seed means (fractions): mean and std (ddof = 1), median,
    first and third quartile (numpy's linear interpolation; with 3 seeds the IQR spans the midpoints of the
    outer pairs), ``n_seeds`` and ``collapsed``: the seed indices more than ``margin`` below the median
    (:func:`collapsed_seeds`)."""
    rows = []
    for (dataset, method), group in per_image.groupby(["dataset", "method"], sort=False):
        seeds = per_seed_means(group, metrics)
        for metric in metrics:
            mean, std = mean_std(seeds[metric])
            values = seeds[metric].dropna().to_numpy()
            q1, median, q3 = np.percentile(values, [25, 50, 75]) if values.size else (np.nan, np.nan, np.nan)
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "metric": metric,
                    "mean": mean,
                    "std": std,
                    "median": float(median),
                    "q1": float(q1),
                    "q3": float(q3),
                    "n_seeds": len(seeds),
                    "collapsed": [int(index) for index in collapsed_seeds(seeds[metric], margin)],
                }
            )
    return pd.DataFrame(rows)


def segmentation_table(
    summary: pd.DataFrame,
    display_names: dict[str, str] | None = None,
    bold: dict[str, str] | None = None,
    paper: dict[str, tuple[str, dict[str, float]]] | None = None,
) -> pd.DataFrame:
    """Table 2 as formatted strings in percent (HTML), per dataset: Dice "mean ± std" over seeds, Dice
    "median [IQR]" over seeds, IoU "mean ± std", and, where ``paper`` gives the dataset, the paper's Dice.

    A Dice cell is **bold** only for the method ``bold`` names (:func:`significant_best`: significantly
    better than the best other at the unit, Holm), never merely for the highest mean; IoU is not tested
    and never bold. A Dice cell gets "†" when a seed collapsed (``collapsed`` of :func:`seed_summary`:
    more than :data:`COLLAPSE_MARGIN` below the method's median).

    Args:
        summary: output of :func:`seed_summary`.
        display_names: method key -> label for the rows.
        bold: dataset -> method to bold (none when absent).
        paper: dataset -> (column label, e.g. "paper (CVC-ClinicDB)", {run: the paper's Dice in %});
            runs without a figure read "–".

    Returns:
        Rows = methods, columns = (dataset, column); cells are HTML strings.
    """
    display_names = display_names or {}
    paper = paper or {}
    table = {}
    for (dataset, metric), group in summary.groupby(["dataset", "metric"], sort=False):
        column, spread, published = {}, {}, {}
        for _, row in group.iterrows():
            name = display_names.get(row["method"], row["method"])
            text = f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f}"
            if metric == "dice":
                if (bold or {}).get(dataset) == row["method"]:
                    text = f"<b>{text}</b>"
                if len(row.get("collapsed", []) or []):
                    text += " †"
                spread[name] = f"{100 * row['median']:.1f} [{100 * row['q1']:.1f}, {100 * row['q3']:.1f}]"
                if dataset in paper:
                    value = paper[dataset][1].get(row["method"])
                    published[name] = "–" if value is None else f"{value:.1f}"
            column[name] = text
        label = METRIC_LABELS.get(metric, metric)
        table[(dataset, f"{label} (%)")] = column
        if metric == "dice":
            table[(dataset, f"{label} median [IQR] (%)")] = spread
            if dataset in paper:
                table[(dataset, f"{label} (%), {paper[dataset][0]}")] = published
    frame = pd.DataFrame(table)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    frame.index.name = "method"
    return frame


def seed_collapse_note(
    summary: pd.DataFrame, display_names: dict[str, str] | None = None, margin: float = COLLAPSE_MARGIN
) -> str:
    """Markdown caption line: the collapse rule (:data:`COLLAPSE_MARGIN`) and every flagged seed's Dice beside its method's median."""
    names = display_names or {}
    rule = (
        f"† a collapsed seed: its mean Dice lies more than {100 * margin:.0f} Dice points below the method's median over seeds "
        "(mean ± std then mix a failed run with working ones; read the median [IQR] and the per-seed table)."
    )
    flagged = summary[(summary["metric"] == "dice") & summary["collapsed"].map(len).gt(0)]
    if flagged.empty:
        return rule + " No seed is collapsed."
    return (
        rule
        + " Collapsed: "
        + "; ".join(
            f"{row['dataset']} {names.get(row['method'], row['method'])} seed {', '.join(map(str, row['collapsed']))} (median {100 * row['median']:.1f} %)"
            for _, row in flagged.iterrows()
        )
        + "."
    )


def per_seed_table(
    results_dir: str | Path, datasets: list[str], methods: list[str], margin: float = COLLAPSE_MARGIN
) -> pd.DataFrame:
    """Per-seed means from every ``metrics.json`` (long format, fractions): Dice, IoU and the pixel-level
    sensitivity, specificity and FNR (columns ``pixel_sensitivity``, ``specificity``, ``pixel_fnr``: per
    image over pixels, not Table 3's lesion FNR), ``dice_median`` (the run's median over seeds) and
    ``collapsed`` (Dice more than ``margin`` below that median, :func:`collapsed_seeds`)."""
    rows = []
    for dataset in datasets:
        for method in methods:
            payload = read_json(run_folder(results_dir, dataset, method) / "metrics.json")
            block = [
                {
                    "dataset": dataset,
                    "method": method,
                    "seed": seed,
                    "dice": values["dice"],
                    "iou": values["iou"],
                    "pixel_sensitivity": values["sensitivity"],
                    "specificity": values["specificity"],
                    "pixel_fnr": values["fnr"],
                }
                for seed, values in payload["per_seed"].items()
            ]
            dice = pd.Series([row["dice"] for row in block], dtype=float)
            flagged = set(collapsed_seeds(dice, margin))
            for index, row in enumerate(block):
                rows.append({**row, "dice_median": float(dice.median()), "collapsed": index in flagged})
    return pd.DataFrame(rows)


def format_per_seed_table(
    per_seed: pd.DataFrame, display_names: dict[str, str] | None = None, margin: float = COLLAPSE_MARGIN
) -> pd.DataFrame:
    """:func:`per_seed_table` in percent with labelled columns; "collapsed" names the Dice gap to the median."""
    names = display_names or {}
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    return pd.DataFrame(
        {
            "dataset": per_seed["dataset"],
            "method": per_seed["method"].map(lambda m: names.get(m, m)),
            "seed": per_seed["seed"],
            "Dice (%)": per_seed["dice"].map(pct),
            "IoU (%)": per_seed["iou"].map(pct),
            "pixel sensitivity (%)": per_seed["pixel_sensitivity"].map(pct),
            "specificity (%)": per_seed["specificity"].map(pct),
            "pixel FNR (%)": per_seed["pixel_fnr"].map(pct),
            f"collapsed (> {100 * margin:.0f} Dice points below the median)": [
                f"yes: {100 * (dice - median):+.1f} pp vs median {100 * median:.1f}" if flag else ""
                for dice, median, flag in zip(per_seed["dice"], per_seed["dice_median"], per_seed["collapsed"])
            ],
        }
    )


def test_images_sentence(per_image: pd.DataFrame) -> str:
    """ "test images: synth_polyp 300, synth_fundus 200" (per dataset, in order of appearance)."""
    counts = per_image.groupby("dataset", sort=False)["image_id"].nunique()
    return "test images: " + ", ".join(f"{dataset} {count}" for dataset, count in counts.items())


def seed_averaged_per_image(per_image: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """Per-image score averaged over seeds (the unit of the paired tests and box plots)."""
    return per_image.groupby(["dataset", "method", "image_id"], sort=False)[metric].mean().reset_index()


def assert_no_nan(frame: pd.DataFrame, what: str) -> None:
    """Fail loudly rather than render an empty cell."""
    numeric = frame.select_dtypes(include=[np.number])
    if numeric.isna().any().any():
        raise ValueError(f"{what} has missing values; a result file is incomplete")


def auc_ci(auc: float, n_high: int, n_low: int, z: float = 1.959964) -> tuple[float, float]:
    """Hanley & McNeil (1982) 95 % CI of an AUC from the point value and the two class sizes (only these are
    recorded in ``text_check.json``), clipped to [0, 1]."""
    if auc != auc or not n_high or not n_low:
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n_high - 1) * (q1 - auc**2) + (n_low - 1) * (q2 - auc**2)) / (n_high * n_low)
    half = z * np.sqrt(max(variance, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def text_check_rows(summaries: dict[str, dict]) -> pd.DataFrame:
    """The text checks as numbers: per dataset × contrast the share following the prompt with its Wilson CI, the
    exact two-sided binomial p against 1/2, the direction, the proxy's AUC on real images with its Hanley–McNeil
    CI (:func:`auc_ci`) and ``valid``: the proxy separates real images of the two kinds (the AUC's CI excludes 0.5)."""
    from scipy.stats import binomtest

    rows = []
    for dataset, summary in summaries.items():
        for name, result in summary["contrasts"].items():
            real = result["real_proxy"]
            n_follow = result.get("n_follow", round(result["share_follow"] * result["n_pairs"]))
            p = binomtest(int(n_follow), int(result["n_pairs"]), 0.5, alternative="two-sided").pvalue
            low, high = auc_ci(real["auc"], real.get("n_high", 0), real.get("n_low", 0))
            rows.append(
                {
                    "dataset": dataset,
                    "contrast": name,
                    "proxy": result["attribute"],
                    "high_prompt": result["high_prompt"],
                    "low_prompt": result["low_prompt"],
                    "pairs": int(result["n_pairs"]),
                    "share": result["share_follow"],
                    "ci_low": result["ci_low"],
                    "ci_high": result["ci_high"],
                    "p_two_sided": float(p),
                    "direction": "follows"
                    if result["share_follow"] > 0.5
                    else "opposite"
                    if result["share_follow"] < 0.5
                    else "none",
                    "auc": real["auc"],
                    "auc_low": low,
                    "auc_high": high,
                    "n_high": real.get("n_high"),
                    "n_low": real.get("n_low"),
                    "valid": bool(low > 0.5 or high < 0.5),
                }
            )
    return pd.DataFrame(rows)


def text_check_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """One row per dataset and prompt contrast from ``results/<dataset>/generator/text_check.json`` (percent).

    Columns: dataset, contrast, proxy (what is measured), prompts, pairs, follows (share of pairs whose proxy is
    larger under the "high" prompt, with its Wilson 95 % CI), the exact two-sided binomial p against 1/2 with the
    direction it points, the proxy's AUC on real images of the two kinds with its CI, and the verdict: "not
    valid" when the proxy does not separate real images (the AUC's CI contains 0.5; :func:`text_check_rows`).
    """
    rows = []
    for _, row in text_check_rows(summaries).iterrows():
        if not row["valid"]:
            verdict = "not valid: the proxy does not separate real images"
        elif row["p_two_sided"] < 0.05:
            verdict = "follows the prompt" if row["direction"] == "follows" else "opposite to the prompt"
        else:
            verdict = "no effect shown"
        rows.append(
            {
                "dataset": row["dataset"],
                "contrast": row["contrast"],
                "proxy": row["proxy"],
                "high prompt": row["high_prompt"],
                "low prompt": row["low_prompt"],
                "pairs": row["pairs"],
                "follows prompt (%)": f"{100 * row['share']:.1f} [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]",
                "p (binomial, two-sided)": f"{row['p_two_sided']:.2g} ({row['direction']})",
                "proxy AUC on real images (%)": "n/a"
                if row["auc"] != row["auc"]
                else f"{100 * row['auc']:.1f} [{100 * row['auc_low']:.1f}, {100 * row['auc_high']:.1f}] ({row['n_high']} vs {row['n_low']})",
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def as_percent(fraction: float) -> float:
    """A fraction as percent (the one unit of the reports)."""
    return 100.0 * fraction


GENERATOR_TRAIN_LABELS = {
    "backend": "backend",
    "first_loss": "loss, first 10 % of steps",
    "final_loss": "loss, last 10 % of steps",
    "n_distinct_prompts": "distinct prompts",
    "n_examples": "training examples",
    "n_steps": "optimizer steps",
    "prompt_variant": "prompts",
    "seed": "seed",
    "train_seconds": "training time (s)",
}


def generator_training_table(records: dict[str, dict]) -> pd.DataFrame:
    """The generator's ``train.json`` per dataset with readable labels (:data:`GENERATOR_TRAIN_LABELS`; an unknown key
    keeps its name with "_" as spaces); per-step loss lists are left to :func:`benchmark.reporting.figures.loss_curve`."""
    rows = []
    for dataset, record in records.items():
        row = {"dataset": dataset}
        for key, value in record.items():
            if isinstance(value, (list, dict)):
                continue
            label = GENERATOR_TRAIN_LABELS.get(key, key.replace("_", " "))
            row[label] = (
                f"{value:.4f}"
                if isinstance(value, float) and "loss" in key
                else f"{value:.0f}"
                if isinstance(value, float)
                else value
            )
        rows.append(row)
    return pd.DataFrame(rows)


def load_lesions(results_dir: str | Path, datasets: list[str], methods: list[str]) -> pd.DataFrame:
    """Concatenate ``results/<dataset>/runs/<run>/lesions.csv`` (one row per seed × lesion)."""
    return _load_results_csv(results_dir, datasets, methods, "lesions.csv")


def significance_table(
    comparisons: dict[str, pd.DataFrame], *, display_names: dict[str, str] | None = None
) -> pd.DataFrame:
    """Table 2's tests from ``comparisons.csv`` (family ``table2``): each method − the best other
    method by validation Dice, at the independent unit (seed-averaged per-image Dice averaged over
    each unit's images; Wilcoxon signed-rank over units; bootstrap CI over units; Holm over the
    dataset's rows). One p per comparison: only the Holm-adjusted p of the row is shown (the one every
    other place in the reports cites). Where the units cannot reach p < 0.05 at all, "underpowered (n = …)".

    Args:
        comparisons: dataset -> its ``comparisons.csv`` frame.
    """
    from benchmark.stats.comparisons import p_text

    display_names = display_names or {}
    name = lambda m: display_names.get(m, m)  # noqa: E731
    rows = []
    for dataset, frame in comparisons.items():
        for _, row in frame[frame["table"] == "table2"].iterrows():
            rows.append(
                {
                    "dataset": dataset,
                    "method": name(row["run_a"]),
                    "vs (best other on validation)": name(row["run_b"]),
                    "Δ Dice (pp)": f"{100 * row['delta']:+.2f}",
                    "95 % CI (pp)": f"[{100 * row['ci_low']:+.2f}, {100 * row['ci_high']:+.2f}]",
                    "n": f"{int(row['n_units'])} {row['unit']}s",
                    "seeds": int(row["n_seeds"]),
                    "seed sd of Δ (pp)": f"{100 * row['seed_sd']:.2f}",
                    "MDE 80 % (pp)": f"{100 * row['mde_80']:.1f}",
                    "p (Holm)": p_text(row),
                }
            )
    return pd.DataFrame(rows)


def significant_best(
    comparisons: dict[str, pd.DataFrame], summary: pd.DataFrame, alpha: float = 0.05
) -> dict[str, str]:
    """dataset -> the method to bold in Table 2: the best mean Dice, only when its ``table2`` row of
    ``comparisons.csv`` (vs the best other on validation) is positive with Holm p < ``alpha`` and the
    units can reach it (not underpowered). Never the raw p, never a test computed here."""
    from benchmark.stats.comparisons import underpowered

    best = {}
    for dataset, frame in comparisons.items():
        dice = summary[(summary["dataset"] == dataset) & (summary["metric"] == "dice")].sort_values(
            "mean", ascending=False
        )
        if not len(dice):
            continue
        top = dice["method"].iloc[0]
        row = frame[(frame["table"] == "table2") & (frame["run_a"] == top)]
        if (
            len(row)
            and row["delta"].iloc[0] > 0
            and row["p_holm"].iloc[0] < alpha
            and not underpowered(int(row["n_units"].iloc[0]))
        ):
            best[dataset] = top
    return best


def dataset_units(prepared: dict[str, PreparedDataset]) -> dict:
    """dataset -> its analysis unit (:class:`benchmark.stats.units.Units`: video sequence where the
    loader has groups, e.g. synth_polyp and CVC-ClinicDB in the publisher's layout; else image)."""
    from benchmark.stats.units import dataset_units as units_of

    return {name: units_of(dataset) for name, dataset in prepared.items()}


#: Below this reference lesion FNR (fraction) the relative FNR reduction is not computed ("–"): a ratio over
#: a handful of missed lesions swings by thousands of percent (1 % of 300 lesions = 3 misses).
RELATIVE_FNR_MIN_REFERENCE = 0.02


def relative_fnr_note(reference: str, floor: float = RELATIVE_FNR_MIN_REFERENCE) -> str:
    """The caption's statement of the relative-reduction rule, with its threshold."""
    return (
        f'reference for the relative lesion FNR reduction: {reference}, printed "–" where its lesion FNR is below {100 * floor:.0f} % '
        "(a ratio over a handful of missed lesions)"
    )


def relative_fnr_reduction(fnr: float, fnr_reference: float | None, floor: float = RELATIVE_FNR_MIN_REFERENCE) -> float:
    """(FNR_ref − FNR) / FNR_ref; NaN (printed "–") without a reference or when FNR_ref < ``floor``."""
    if fnr_reference is None or fnr_reference != fnr_reference or fnr_reference < floor:
        return float("nan")
    return (fnr_reference - fnr) / fnr_reference


def lesion_detection_table(
    lesions: pd.DataFrame,
    per_image: pd.DataFrame,
    prepared: dict[str, PreparedDataset],
    *,
    reference: str = "unet",
    rule: str = "detected",
    display_names: dict[str, str] | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 3: lesion-level detection per dataset × stratum × method (fractions).

    A lesion's detection is averaged over seeds (0..1); sensitivity = mean over the stratum's test
    lesions, lesion FNR = 1 - sensitivity, with a percentile bootstrap 95 % CI resampling analysis units
    (video sequences where the data has them, else images: the lesions of one unit stay together).
    Relative FNR reduction vs ``reference`` = (FNR_ref - FNR) / FNR_ref, NaN where FNR_ref <
    :data:`RELATIVE_FNR_MIN_REFERENCE` (:func:`relative_fnr_reduction`). Specificity = mean pixel
    specificity of the stratum's images. Strata as in Table 1 (exact attributes on procedural data);
    every dataset also gets "all". ``run`` keeps the run name, ``method`` its display name.

    Args:
        rule: "detected" (best component IoU >= evaluate.detection_iou, primary) or "any_overlap".
    """
    from benchmark.stats.significance import bootstrap_ci

    display_names = display_names or {}
    rows = []
    lesions = lesions.assign(hit=lesions[rule].astype(str).str.lower().eq("true").astype(float))
    for dataset, frame in lesions.groupby("dataset", sort=False):
        attributes = prepared[dataset].attributes.assign(id=lambda a: a["id"].astype(str)).set_index("id")
        strata = {"all": pd.Series(True, index=attributes.index)}
        strata.update(
            {
                name: mask.set_axis(attributes.index)
                for name, mask in _stratum_masks(
                    attributes.reset_index(), prepared[dataset].manifest["modality"]
                ).items()
            }
        )
        averaged = frame.groupby(["method", "image_id", "lesion"], sort=False)["hit"].mean().reset_index()
        averaged["image_id"] = averaged["image_id"].astype(str)
        units = dataset_units({dataset: prepared[dataset]})[dataset]
        averaged["unit"] = units.labels(averaged["image_id"])
        specificity = per_image[per_image["dataset"] == dataset].groupby(["method", "image_id"])["specificity"].mean()
        for stratum, mask in strata.items():
            members = set(mask[mask].index)
            fnr_reference = None
            block = []
            for method, group in averaged.groupby("method", sort=False):
                group = group[group["image_id"].isin(members)]
                if not len(group):
                    continue
                sensitivity, low, high = bootstrap_ci(
                    group["hit"].to_numpy(), groups=group["unit"].to_numpy(), n_resamples=n_resamples, seed=seed
                )
                spec = specificity.loc[method].reindex(sorted(members & set(specificity.loc[method].index))).mean()
                block.append(
                    {
                        "dataset": dataset,
                        "stratum": stratum,
                        "method": method,
                        "run": method,
                        "lesions": len(group),
                        "images": group["image_id"].nunique(),
                        "units": f"{group['unit'].nunique()} {units.name}s",
                        "sensitivity": sensitivity,
                        "sens_low": low,
                        "sens_high": high,
                        "fnr": 1 - sensitivity,
                        "fnr_low": 1 - high,
                        "fnr_high": 1 - low,
                        "specificity": spec,
                    }
                )
                if method == reference:
                    fnr_reference = 1 - sensitivity
            for row in block:
                row["relative_fnr_reduction"] = relative_fnr_reduction(row["fnr"], fnr_reference)
                row["method"] = display_names.get(row["method"], row["method"])
            rows += block
    return pd.DataFrame(rows)


def format_lesion_table(
    table: pd.DataFrame, paper: dict[str, tuple[str, dict[str, float]]] | None = None
) -> pd.DataFrame:
    """Percent strings for rendering :func:`lesion_detection_table`: lesion sensitivity, lesion FNR with its CI,
    relative lesion FNR reduction ("–" below :data:`RELATIVE_FNR_MIN_REFERENCE`), pixel specificity.

    Args:
        paper: stratum -> (column label, {run: the paper's lesion FNR in %}); adds that column beside lesion FNR.
    """
    pct = lambda v: "–" if v != v else f"{100 * v:.1f}"  # noqa: E731
    columns = {
        "dataset": table["dataset"],
        "stratum": table["stratum"],
        "method": table["method"],
        "n lesions (images; units)": [
            f"{n} ({m}; {u})" for n, m, u in zip(table["lesions"], table["images"], table["units"])
        ],
        "lesion sensitivity (%)": table["sensitivity"].map(pct),
        "lesion FNR (%) [95 % CI]": [
            f"{pct(f)} [{pct(lo)}, {pct(hi)}]" for f, lo, hi in zip(table["fnr"], table["fnr_low"], table["fnr_high"])
        ],
    }
    if paper:
        runs = table["run"] if "run" in table else table["method"]
        cells = []
        for stratum, run in zip(table["stratum"], runs):
            value = paper.get(stratum, ("", {}))[1].get(run)
            cells.append("–" if value is None else f"{value:.1f}")
        labels = sorted({label for label, _ in paper.values()})
        columns[f"lesion FNR (%), {' / '.join(labels)}"] = cells
    columns[f"rel. lesion FNR reduction vs U-Net (%) (– if its FNR < {100 * RELATIVE_FNR_MIN_REFERENCE:.0f} %)"] = (
        table["relative_fnr_reduction"].map(pct)
    )
    columns["pixel specificity (%)"] = table["specificity"].map(pct)
    return pd.DataFrame(columns)


def lesion_comparison_table(
    comparisons: dict[str, pd.DataFrame], *, display_names: dict[str, str] | None = None
) -> pd.DataFrame:
    """Table 3's paired tests from ``comparisons.csv`` (family ``table3``): lesion-level sensitivity of each
    method − the reference (and DiffAug − SDSeg), in percentage points, at the unit, over all lesions and
    within each stratum (``metric`` = ``lesion_sensitivity [<stratum>]``); Δ lesion FNR = −Δ sensitivity.
    One p per comparison: the row's Holm p (Holm over the whole table: every stratum and pair)."""
    from benchmark.reporting.claims import stratum_of
    from benchmark.stats.comparisons import p_text

    display_names = display_names or {}
    name = lambda m: display_names.get(m, m)  # noqa: E731
    rows = []
    for dataset, frame in comparisons.items():
        for _, row in frame[frame["table"] == "table3"].iterrows():
            rows.append(
                {
                    "dataset": dataset,
                    "stratum": stratum_of(row["metric"]),
                    "method": name(row["run_a"]),
                    "vs": name(row["run_b"]),
                    "Δ sensitivity (pp)": f"{100 * row['delta']:+.1f}",
                    "95 % CI (pp)": f"[{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}]",
                    "Δ lesion FNR (pp)": f"{-100 * row['delta']:+.1f}",
                    "n": f"{int(row['n_units'])} {row['unit']}s",
                    "MDE 80 % (pp)": "–" if row["mde_80"] != row["mde_80"] else f"{100 * row['mde_80']:.1f}",
                    "p (Holm)": p_text(row),
                }
            )
    return pd.DataFrame(rows)


def _read_optional(path: Path) -> dict | None:
    return read_json(path) if path.is_file() else None


# The paper's inference-speed claims that Table 4 checks (issue 20): DiffAug is 1.5× faster than SDSeg and 40× faster
# than MedSegDiff. Used only where benchmark.reporting.paper cannot give them (its Table 4 speeds: 12.5 / 8.36, 12.5 / 0.30, 12.5 / 0.31).
PAPER_SPEED_RATIOS = {"sdseg": 1.5, "medsegdiff_v1": 40.0, "medsegdiff_v2": 40.0}

# The one throughput definition of Tables 4 and the speed goals: samples over the wall-clock seconds of the stage
# (or timed loop) that produced them, every worker included.
THROUGHPUT_LABEL = "samples/s (wall clock)"


def paper_speed_ratios(paper=None) -> dict[str, float]:
    """run -> the paper's "DiffAug is N× faster than it" (Table 4: DiffAug (Segmentation)'s inference samples/s ÷ the
    method's). ``paper``: a mapping run -> ratio (used as is), or a module with ``lookup`` and ``PAPER_ROWS`` (default
    :mod:`benchmark.reporting.paper`); :data:`PAPER_SPEED_RATIOS` when neither gives the figures."""
    if isinstance(paper, dict):
        return dict(paper)
    if paper is None:
        try:
            from benchmark.reporting import paper as paper_module
        except ImportError:
            return dict(PAPER_SPEED_RATIOS)
        paper = paper_module
    try:
        rows = paper.PAPER_ROWS["table4"]
        ours = paper.lookup("table4", "inference_speed", row=rows["diffaug"])
        ratios = {}
        for run, label in rows.items():
            speed = paper.lookup("table4", "inference_speed", row=label)
            if run != "diffaug" and speed and ours:
                ratios[run] = ours / speed
        return ratios or dict(PAPER_SPEED_RATIOS)
    except (AttributeError, KeyError, ValueError):
        return dict(PAPER_SPEED_RATIOS)


def stage_throughput(summary: dict) -> float:
    """Generated + validated samples per wall-clock second of the synthesize stage (``synthesize/summary.json``:
    ``n_generated / seconds``; not the workers' summed busy time ``generate_s + validate_s``)."""
    return summary["n_generated"] / summary["seconds"]


def efficiency_table(
    results_dir: str | Path,
    models_dir: str | Path,
    datasets: list[str],
    runs: list[str],
    display_names: dict[str, str] | None = None,
    *,
    reference: str = "diffaug",
    paper=None,
) -> pd.DataFrame:
    """Table 4: training time, hardware and inference speed, every figure from a run's own files.

    Per dataset × run: training seconds per seed (mean ± std over seeds) and per epoch (``train_seconds / epochs``,
    both from ``models/.../seed_k/run.json``) and that run's hardware; inference samples/s (wall clock) on the
    test split as the evaluate stage measured it (``results/.../inference.json``, mean over seeds; the method's
    own batching); the speed ratio ``reference`` ÷ this method (the quantity comparable with the paper at CPU
    scale) and the paper's ratio beside it (:func:`paper_speed_ratios`). DiffAug's generation row: the
    autoencoder, generator and validator training seconds and the synthesize stage's generated + validated
    samples/s (wall clock, :func:`stage_throughput`). Batch-1 figures of ``benchmarks/methods.py`` are in
    :func:`benchmark_speed_table`; a cell whose file is absent reads "–".
    """
    results_dir, models_dir = Path(results_dir), Path(models_dir)
    display_names = display_names or {}
    ratios = paper_speed_ratios(paper)
    speed_column = f"inference {THROUGHPUT_LABEL}, test split"
    rows = []
    for dataset in datasets:
        speeds = {}
        for run in runs:
            inference = _read_optional(run_folder(results_dir, dataset, run) / "inference.json")
            if inference:
                speeds[run] = float(np.mean(list(inference["test_images_per_second"].values())))
        for run in runs:
            records = [read_json(path) for path in sorted(run_folder(models_dir, dataset, run).glob("seed_*/run.json"))]
            seconds = [record["train_seconds"] for record in records]
            per_epoch = [record["train_seconds"] / record["epochs"] for record in records if record.get("epochs")]
            mean, std = mean_std(seconds) if seconds else (float("nan"), float("nan"))
            hardware = sorted({record.get("environment", {}).get("hardware", "not recorded") for record in records})
            ratio = speeds[reference] / speeds[run] if reference in speeds and run in speeds else None
            claim = ratios.get(run)
            rows.append(
                {
                    "dataset": dataset,
                    "method": display_names.get(run, run),
                    "training s / seed": f"{mean:.0f} ± {std:.0f}" if seconds else "–",
                    "training s / epoch": f"{np.mean(per_epoch):.1f}" if per_epoch else "–",
                    "hardware": "; ".join(hardware) if hardware else "–",
                    speed_column: f"{speeds[run]:.1f}" if run in speeds else "–",
                    f"{display_names.get(reference, reference)} speed ÷ this (×)": f"{ratio:.2f}"
                    if ratio is not None
                    else "–",
                    "paper (×)": f"{claim:.1f}" if claim is not None else "–",
                    "ours ÷ paper": f"{ratio / claim:.3f}" if claim is not None and ratio is not None else "–",
                }
            )
        summary = _read_optional(results_dir / dataset / "synthesize" / "summary.json")
        parts = {
            name: _read_optional(results_dir / dataset / name / file)
            for name, file in (
                ("autoencoder", "reconstruction.json"),
                ("generator", "train.json"),
                ("validator", "metrics.json"),
            )
        }
        train_seconds = [part["train_seconds"] for part in parts.values() if part]
        if summary or train_seconds:
            rows.append(
                {
                    "dataset": dataset,
                    "method": "DiffAug generation (autoencoder + generator + validator; offline)",
                    "training s / seed": f"{sum(train_seconds):.0f}" if train_seconds else "–",
                    "training s / epoch": "–",
                    "hardware": "not recorded by these stages",
                    speed_column: f"{stage_throughput(summary):.1f} generated + validated (synthesize stage, {summary.get('workers', '?')} workers)"
                    if summary
                    else "–",
                    f"{display_names.get(reference, reference)} speed ÷ this (×)": "–",
                    "paper (×)": "–",
                    "ours ÷ paper": "–",
                }
            )
    return pd.DataFrame(rows)


def benchmark_speed_table(
    results_dir: str | Path, datasets: list[str], runs: list[str], display_names: dict[str, str] | None = None
) -> pd.DataFrame:
    """Batch-1 inference samples/s (wall clock) and training s/epoch of ``python benchmarks/methods.py``
    (``results/benchmarks/methods_<dataset>.json``), only for the datasets it measured; the generation and
    validator benchmarks' wall-clock samples/s beside them. See :func:`unmeasured_benchmarks` for the rest."""
    display_names = display_names or {}
    bench_dir = Path(results_dir) / "benchmarks"
    rows = []
    for dataset in datasets:
        bench = _read_optional(bench_dir / f"methods_{dataset}.json")
        if bench:
            for run in runs:
                measured = bench["methods"].get(run) if "+" not in run else None
                if measured:
                    rows.append(
                        {
                            "dataset": dataset,
                            "what": display_names.get(run, run),
                            f"benchmark {THROUGHPUT_LABEL}": f"{measured['batch1_samples_per_second']:.1f}",
                            "batch": 1,
                            "training s / epoch": f"{measured['train_seconds_per_epoch']:.1f}",
                            "hardware": bench["environment"]["hardware"],
                            "source": f"methods_{dataset}.json",
                        }
                    )
        generation = _read_optional(bench_dir / f"generation_{dataset}.json")
        if generation and "measured_loop" in generation:
            loop = generation["measured_loop"]
            rows.append(
                {
                    "dataset": dataset,
                    "what": f"DiffAug generate + validate loop ({loop['samples']} jobs, {loop['steps']} DDIM steps, {loop.get('workers')} workers)",
                    f"benchmark {THROUGHPUT_LABEL}": f"{loop['validated_images_per_second']:.1f} generated + validated",
                    "batch": generation.get("batch_size", "–"),
                    "training s / epoch": "–",
                    "hardware": generation["environment"]["hardware"],
                    "source": f"generation_{dataset}.json",
                }
            )
        validator = _read_optional(bench_dir / f"validator_{dataset}.json")
        if validator:
            rows.append(
                {
                    "dataset": dataset,
                    "what": "DiffAug validator: single-step vs 10-step DDIM",
                    "batch": validator.get("batch_size", "–"),
                    f"benchmark {THROUGHPUT_LABEL}": f"{validator['single_step_samples_per_second']:.1f} vs {validator['iterative_samples_per_second'].get('10', float('nan')):.1f}",
                    "training s / epoch": "–",
                    "hardware": validator["environment"]["hardware"],
                    "source": f"validator_{dataset}.json",
                }
            )
    return pd.DataFrame(rows)


def unmeasured_benchmarks(results_dir: str | Path, datasets: list[str]) -> str:
    """One sentence naming the datasets without ``results/benchmarks/methods_<dataset>.json`` and the script that
    produces it ("" when every dataset was measured)."""
    missing = [
        dataset for dataset in datasets if not (Path(results_dir) / "benchmarks" / f"methods_{dataset}.json").is_file()
    ]
    if not missing:
        return ""
    return (
        f"Batch-1 benchmark figures are shown only for the datasets measured; {', '.join(missing)} "
        f"{'has' if len(missing) == 1 else 'have'} none: `python benchmarks/methods.py --dataset <name>` produces them."
    )


def speed_goals_table(results_dir: str | Path, datasets: list[str]) -> pd.DataFrame:
    """Issue 8's speed goals against the benchmark scripts' measurements (``results/benchmarks/``).

    Rows: the validator's single-step speedup over N-step DDIM on the same network (goal: at least
    0.9·N, i.e. a denoiser call is the only per-step cost), from ``validator_<dataset>.json`` and, when
    measured, ``validator_paper_scale.json`` (the paper-size network, freshly initialised); the
    generate + validate loop's validated samples/s as a fraction of the raw batched-denoiser bound
    (goal: at least 0.8), from every ``generation_<dataset>*.json``: the synthesize stage's own loop
    (``loop``, when measured at the stage's steps) and the script's timed loop at its step count
    (``measured_loop``; its bound on the loop's own workers when recorded). Columns:
    ``measurement``, ``network``, ``figure``, ``goal``, ``met``, ``why`` (the fixed share of a
    single step or the loop's steps), ``source``. Empty when nothing was measured.
    """
    bench = Path(results_dir) / "benchmarks"
    rows = []

    def validator_rows(record: dict, network: str, source: str) -> None:
        fixed = record.get("time_per_image_ms", {}).get("fixed_share_of_single_step")
        for steps, speedup in sorted(record["speedup_single_over_iterative"].items(), key=lambda item: int(item[0])):
            rows.append(
                {
                    "measurement": f"validator: single-step vs {steps}-step DDIM",
                    "network": network,
                    "figure": f"{speedup:.2f}× faster",
                    "goal": f">= {0.9 * int(steps):.1f}×",
                    "met": "yes" if speedup >= 0.9 * int(steps) else "no",
                    "why": f"encoding + decoding: {100 * min(fixed, 1.0):.0f} % of a single step (fitted)"
                    if fixed is not None
                    else "–",
                    "source": source,
                }
            )

    def loop_row(loop: dict, network: str, what: str, source: str) -> None:
        # the stricter bound when measured: the denoiser passes alone on the loop's own worker processes
        strict = loop.get("fraction_of_raw_bound_same_workers")
        fraction = strict if strict is not None else loop.get("fraction_of_raw_bound")
        if fraction is None:  # the stage's loop in a file measured at other steps: no bound to compare with
            return
        bound = "same-workers" if strict is not None else "one-process"
        figure = f"{100 * fraction:.0f} % of the {bound} bound ({loop['validated_images_per_second']:.1f} generated + validated {THROUGHPUT_LABEL})"
        if strict is not None and loop.get("fraction_of_raw_bound") is not None:
            figure += f"; {100 * loop['fraction_of_raw_bound']:.0f} % of the one-process bound"
        rows.append(
            {
                "measurement": f"generate + validate loop vs raw denoiser bound ({what})",
                "network": network,
                "figure": figure,
                "goal": ">= 80 %",
                "met": "yes" if fraction >= 0.8 else "no",
                "why": f"{loop['steps']} DDIM steps, {loop.get('workers')} workers",
                "source": source,
            }
        )

    for dataset in datasets:
        validator = _read_optional(bench / f"validator_{dataset}.json")
        if validator:
            validator_rows(validator, f"{dataset} (trained)", f"validator_{dataset}.json")
        for path in sorted(bench.glob(f"generation_{dataset}*.json")):
            record = read_json(path)
            if "loop" in record:
                loop_row(record["loop"], dataset, "synthesize stage", path.name)
            if "measured_loop" in record:
                loop_row(
                    record["measured_loop"],
                    dataset,
                    f"timed loop, {record['measured_loop']['samples']} jobs",
                    path.name,
                )
    paper = _read_optional(bench / "validator_paper_scale.json")
    if paper:
        validator_rows(
            paper, f"paper size, {paper.get('image_size', '?')} px (freshly initialised)", "validator_paper_scale.json"
        )
    return pd.DataFrame(rows, columns=["measurement", "network", "figure", "goal", "met", "why", "source"])


FEW_SAMPLES = 50  # below this many images per set, FID / KID are flagged as resting on few samples


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def paper_quality(paper=None) -> dict[str, tuple[float | None, float | None]]:
    """Table 5's published accepted / rejected figures keyed by our metric label (FID, LPIPS, validator IoU in %,
    acceptance in %), from :mod:`benchmark.reporting.paper` (or ``paper``: such a mapping, or a module with
    ``lookup``); {} when unavailable."""
    if isinstance(paper, dict):
        return dict(paper)
    if paper is None:
        try:
            from benchmark.reporting import paper as paper_module
        except ImportError:
            return {}
        paper = paper_module
    spec = {
        "FID ↓": ("FID Score ↓", "fid", 1.0),
        "LPIPS to nearest real ↓": ("LPIPS ↓", "lpips", 1.0),
        "validator IoU (%)": ("Validation IoU", "validation_iou", 100.0),
        "share of generations (%)": ("Acceptance Rate", "acceptance_rate", 1.0),
    }
    out = {}
    try:
        for label, (row, metric, scale) in spec.items():
            values = [paper.lookup("table5", metric, row=row, column=column) for column in ("Accepted", "Rejected")]
            out[label] = tuple(None if v is None else scale * v for v in values)
    except (AttributeError, KeyError, ValueError):
        return {}
    return out


def quality_table(summaries: dict[str, dict], paper=None) -> pd.DataFrame:
    """Table 5 from ``results/<dataset>/quality/summary.json``: accepted vs rejected generations.

    One row per dataset × metric, columns "accepted" and "rejected" (strings with their interval), the n of
    each set beside FID and KID (flagged "few samples" below :data:`FEW_SAMPLES`), and the feature source.
    KID is printed × 10³ (mean ± std over subsets, two decimals), IoU and shares in percent; a set with no
    sample reads "none accepted" / "none rejected". "paper (accepted / rejected)": Table 5 of the paper
    (:func:`paper_quality`); "accepted − paper (pp)" only where comparable (IoU, acceptance; the paper's FID and
    LPIPS use Inception / AlexNet features, ours may not).
    """
    rows = []
    published_all = paper_quality(paper)
    for dataset, summary in summaries.items():
        if not summary.get("computed", True):
            rows.append(
                {
                    "dataset": dataset,
                    "metric": "all",
                    "accepted": "not computed",
                    "rejected": "not computed",
                    "n per set": "–",
                    "features / basis": summary["reason"],
                }
            )
            continue
        sets = summary["sets"]
        n = summary["n_per_set"]
        n_text = f"{n}" + (" (few samples)" if n < FEW_SAMPLES else "")
        cell = {
            "FID ↓": lambda s: f"{s['fid']:.3f} [{s['fid_ci_low']:.3f}, {s['fid_ci_high']:.3f}] (n = {n})",
            "KID × 10³ ↓": lambda s: f"{1e3 * s['kid_mean']:.2f} ± {1e3 * s['kid_std']:.2f} (n = {n})",
            "LPIPS to nearest real ↓": lambda s: f"{s['lpips_mean']:.3f} ± {s['lpips_std']:.3f}",
            "validator IoU (%)": lambda s: f"{100 * s['iou_mean']:.1f} ± {100 * s['iou_std']:.1f}",
            "share of generations (%)": lambda s: f"{100 * s['share']:.1f} ({s['n_available']})",
        }
        key = {
            "FID ↓": "fid",
            "KID × 10³ ↓": "kid_mean",
            "LPIPS to nearest real ↓": "lpips_mean",
            "validator IoU (%)": "iou_mean",
            "share of generations (%)": "share",
        }
        sources = {
            "FID ↓": summary["fid_kid_features"],
            "KID × 10³ ↓": summary["fid_kid_features"],
            "LPIPS to nearest real ↓": summary["lpips_features"],
            "validator IoU (%)": f"all generations (θ = {summary['theta']})",
            "share of generations (%)": f"{summary['n_generated']} generated",
        }
        for metric, render in cell.items():
            texts = {}
            for name in ("accepted", "rejected"):
                entry = sets.get(name) or {}
                texts[name] = (
                    f"none {name}"
                    if not entry.get("n_available", 1) or _missing(entry.get(key[metric]))
                    else render(entry)
                )
            published = published_all.get(metric)
            paper_text, delta_text = "–", "–"
            if published and published[0] is not None:
                paper_text = " / ".join("–" if v is None else f"{v:.3g}" for v in published)
                ours = (sets.get("accepted") or {}).get(key[metric])
                if metric in ("validator IoU (%)", "share of generations (%)") and not _missing(ours):
                    delta_text = f"{100 * ours - published[0]:+.1f}"
                elif metric in ("FID ↓", "LPIPS to nearest real ↓"):
                    delta_text = "not comparable (other features)"
            rows.append(
                {
                    "dataset": dataset,
                    "metric": metric,
                    **texts,
                    "n per set": n_text if metric in ("FID ↓", "KID × 10³ ↓", "LPIPS to nearest real ↓") else "–",
                    "features / basis": sources[metric],
                    "paper (accepted / rejected)": paper_text,
                    "accepted − paper (pp)": delta_text,
                }
            )
    return pd.DataFrame(rows)


# How the accepted − rejected contrast is tested from what quality@<dataset> records (no per-sample features are
# kept): each set's estimate is treated as normal with the spread recorded over its random equal-n subsets (FID:
# its 95 % range / 3.92; KID: its std over subsets), the two independent; LPIPS: Welch over the n per set images.
CONTRAST_RULE = (
    "accepted − rejected; 95 % CI and two-sided p from a normal approximation: FID's sd = its recorded 95 % subset "
    "range / 3.92, KID's sd = its std over subsets, the two sets independent; LPIPS: Welch over the n images per set. "
    "No per-sample features are recorded, so no permutation test is possible."
)


def quality_contrasts(summaries: dict[str, dict]) -> pd.DataFrame:
    """The accepted − rejected difference of FID, KID and LPIPS per dataset (:data:`CONTRAST_RULE`), fractions of
    the metric's own scale. Columns: dataset, metric, accepted, rejected, delta, ci_low, ci_high, p, n,
    wrong_way (the accepted set further from the real lesions than the rejected one: delta > 0, lower is better)."""
    from scipy import stats

    rows = []
    for dataset, summary in summaries.items():
        if not summary.get("computed", True):
            continue
        a, r, n = summary["sets"].get("accepted") or {}, summary["sets"].get("rejected") or {}, summary["n_per_set"]
        estimates = {
            "FID": lambda s: (s["fid"], (s["fid_ci_high"] - s["fid_ci_low"]) / (2 * 1.959964)),
            "KID": lambda s: (s["kid_mean"], s["kid_std"]),
            "LPIPS": lambda s: (s["lpips_mean"], s["lpips_std"] / np.sqrt(n)),
        }
        for metric, estimate in estimates.items():
            try:
                (va, sa), (vb, sb) = estimate(a), estimate(r)
            except (KeyError, TypeError):
                continue
            if any(_missing(v) for v in (va, sa, vb, sb)):
                continue
            delta, se = va - vb, float(np.hypot(sa, sb))
            p = float(2 * stats.norm.sf(abs(delta) / se)) if se > 0 else float("nan")
            rows.append(
                {
                    "dataset": dataset,
                    "metric": metric,
                    "accepted": va,
                    "rejected": vb,
                    "delta": delta,
                    "ci_low": delta - 1.959964 * se,
                    "ci_high": delta + 1.959964 * se,
                    "p": p,
                    "n": n,
                    "wrong_way": bool(delta > 0),
                }
            )
    return pd.DataFrame(
        rows, columns=["dataset", "metric", "accepted", "rejected", "delta", "ci_low", "ci_high", "p", "n", "wrong_way"]
    )


def quality_contrast_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """:func:`quality_contrasts` as strings (KID × 10³), with what each says in words."""
    frame = quality_contrasts(summaries)
    rows = []
    for _, row in frame.iterrows():
        scale, label = (1e3, "KID × 10³") if row["metric"] == "KID" else (1.0, row["metric"])
        excludes = row["ci_low"] > 0 or row["ci_high"] < 0
        if row["wrong_way"]:
            words = "wrong way: the accepted set is further from the real lesions" + (
                " (CI excludes 0)" if excludes else " (CI includes 0)"
            )
        else:
            words = "accepted closer to the real lesions" + (
                " (CI excludes 0)" if excludes else " (CI includes 0: not shown)"
            )
        rows.append(
            {
                "dataset": row["dataset"],
                "metric (lower is better)": label,
                "accepted − rejected": f"{scale * row['delta']:+.3f}",
                "95 % CI": f"[{scale * row['ci_low']:+.3f}, {scale * row['ci_high']:+.3f}]",
                "p (two-sided)": "–" if _missing(row["p"]) else f"{row['p']:.2g}",
                "n per set": f"{int(row['n'])}" + (" (few samples)" if row["n"] < FEW_SAMPLES else ""),
                "reading": words,
            }
        )
    tested = set(frame["dataset"])
    for dataset, summary in summaries.items():  # a dataset without a contrast says why, instead of an empty table
        if dataset not in tested:
            why = (
                "not tested: quality was not computed (no accepted or no rejected generations)"
                if not summary.get("computed", True)
                else "not tested: FID / KID / LPIPS missing for the accepted or the rejected set (too few samples)"
            )
            rows.append(
                {
                    "dataset": dataset,
                    "metric (lower is better)": "–",
                    "accepted − rejected": "–",
                    "95 % CI": "–",
                    "p (two-sided)": "–",
                    "n per set": "–",
                    "reading": why,
                }
            )
    return pd.DataFrame(rows)


def quality_contrast_html(summaries: dict[str, dict]) -> str:
    """What Table 5 shows for the contrast: :func:`quality_contrast_table` as HTML, or, when no dataset
    has a tested contrast, one sentence per dataset saying why (no table without numbers)."""
    table = quality_contrast_table(summaries)
    if table.empty or table["reading"].str.startswith("not tested").all():
        reasons = "; ".join(f"{row['dataset']}: {row['reading']}" for _, row in table.iterrows())
        return f"<p>{html.escape(reasons or 'not tested: no quality summary')}.</p>"
    return table.to_html(index=False)


def strata_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """Table 5's "what the gate selects": acceptance and gate IoU by lesion stratum, per dataset (percent).

    Reads ``strata`` of each quality summary (:func:`benchmark.quality.strata.acceptance_by_stratum`).
    """
    rows = []
    for dataset, summary in summaries.items():
        for row in summary.get("strata") or []:
            cell = lambda v: "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}"  # noqa: E731
            rows.append(
                {
                    "dataset": dataset,
                    "stratum kind": row["kind"],
                    "stratum": row["stratum"],
                    "generated": row["n"],
                    "accepted": row["n_accepted"],
                    "acceptance (%)": cell(row["acceptance_rate"]),
                    "gate IoU accepted (%)": cell(row["iou_accepted"]) if row["n_accepted"] else "none accepted",
                    "gate IoU rejected (%)": cell(row["iou_rejected"]),
                    "union IoU rejected (%)": cell(row.get("iou_union_rejected")),
                }
            )
    return pd.DataFrame(rows)


def gate_ceiling_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """Acceptance against its ceiling, per dataset (percent): the loop's acceptance on the new lesion, what a gate
    on the union label would have accepted from the same samples, and the share of real validation lesion images
    the validator itself segments above θ."""
    rows = []
    for dataset, summary in summaries.items():
        pct = lambda v: "not recorded" if v is None else f"{100 * v:.1f}"  # noqa: E731
        rows.append(
            {
                "dataset": dataset,
                "θ": summary.get("theta"),
                "acceptance, new-lesion gate (%)": pct(summary.get("acceptance_rate")),
                "acceptance a union-label gate would give (%)": pct(summary.get("acceptance_rate_union_gate")),
                "validator pass rate on real validation lesions (%)": pct(summary.get("validator_real_pass_rate")),
                "real lesion images": summary.get("validator_real_lesion_images"),
            }
        )
    return pd.DataFrame(rows)


def theta_sweep_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """Acceptance rate and mean IoU of the accepted at each θ of ``quality.thetas`` (long format, percent strings;
    "none accepted" where no generation passed θ)."""
    rows = []
    for dataset, summary in summaries.items():
        for entry in summary["theta_sweep"]:
            iou = entry.get("mean_iou_accepted")
            none = not entry["n_accepted"] or _missing(iou)
            rows.append(
                {
                    "dataset": dataset,
                    "θ": entry["theta"],
                    "acceptance rate (%)": f"{100 * entry['acceptance_rate']:.1f}",
                    "accepted": entry["n_accepted"],
                    "mean IoU of accepted (%)": "none accepted" if none else f"{100 * iou:.1f}",
                }
            )
    return pd.DataFrame(rows)


def inference_selection_table(
    results_dir: str | Path, datasets: list[str], runs: list[str], display_names: dict[str, str] | None = None
) -> pd.DataFrame:
    """The inference setting each seed used on the test split, chosen on validation
    (``results/<dataset>/<run>/inference.json``, key ``selection``), with the validation Dice of every variant."""
    display_names = display_names or {}
    rows = []
    for dataset in datasets:
        for run in runs:
            payload = read_json(run_folder(results_dir, dataset, run) / "inference.json")
            for seed, entry in payload.get("selection", {}).items():
                if len(entry["val_dice"]) < 2:
                    continue  # nothing to choose
                scores = ", ".join(f"{label}: {100 * value:.1f}" for label, value in entry["val_dice"].items())
                rows.append(
                    {
                        "dataset": dataset,
                        "method": display_names.get(run, run),
                        "seed": seed,
                        "selected": entry["selected"],
                        "validation Dice (%) per variant": scores,
                    }
                )
    return pd.DataFrame(rows)

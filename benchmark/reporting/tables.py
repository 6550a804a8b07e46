"""Table 1 (dataset statistics) and Table 2 (segmentation, mean ± std over seeds)."""

from __future__ import annotations

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
        sizes = sorted({(int(w), int(h)) for w, h in zip(attributes["native_width"], attributes["native_height"])}, key=lambda s: (s[0] * s[1], s))
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
        row["native size (W×H)"] = size_text[0] if len(sizes) == 1 else f"{len(sizes)} sizes, {size_text[0]} … {size_text[-1]}"
        row["split protocol"] = dataset.manifest.get("split_protocol", "")
        rows.append(row)
    table = pd.DataFrame(rows).set_index("dataset").fillna("–")
    last = ["native size (W×H)", "split protocol"]
    return table[[column for column in table.columns if column not in last] + last]


def load_per_image(results_dir: str | Path, datasets: list[str], methods: list[str]) -> pd.DataFrame:
    """Concatenate ``results/<dataset>/<method>/per_image.csv`` for the given names."""
    frames = []
    for dataset in datasets:
        for method in methods:
            path = Path(results_dir) / dataset / method / "per_image.csv"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing; run `dvc repro evaluate@{dataset}-{method}`")
            frames.append(pd.read_csv(path, dtype={"image_id": str}))
    return pd.concat(frames, ignore_index=True)


def seed_summary(per_image: pd.DataFrame, metrics: tuple[str, ...] = ("dice", "iou")) -> pd.DataFrame:
    """Mean and std over seeds of per-seed means, per dataset × method × metric (fractions)."""
    rows = []
    for (dataset, method), group in per_image.groupby(["dataset", "method"], sort=False):
        seeds = per_seed_means(group, metrics)
        for metric in metrics:
            mean, std = mean_std(seeds[metric])
            rows.append({"dataset": dataset, "method": method, "metric": metric, "mean": mean, "std": std, "n_seeds": len(seeds)})
    return pd.DataFrame(rows)


def segmentation_table(summary: pd.DataFrame, display_names: dict[str, str] | None = None) -> pd.DataFrame:
    """Table 2 as formatted strings "mean ± std" in percent; best **bold**, second underlined (HTML).

    Args:
        summary: output of :func:`seed_summary`.
        display_names: method key -> label for the rows.

    Returns:
        Rows = methods, columns = (dataset, metric); cells are HTML strings.
    """
    display_names = display_names or {}
    table = {}
    for (dataset, metric), group in summary.groupby(["dataset", "metric"], sort=False):
        ranking = group.sort_values("mean", ascending=False)["method"].tolist()
        column = {}
        for _, row in group.iterrows():
            text = f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f}"
            if len(ranking) > 1 and row["method"] == ranking[0]:
                text = f"<b>{text}</b>"
            elif len(ranking) > 2 and row["method"] == ranking[1]:
                text = f"<u>{text}</u>"
            column[display_names.get(row["method"], row["method"])] = text
        table[(dataset, f"{METRIC_LABELS.get(metric, metric)} (%)")] = column
    frame = pd.DataFrame(table)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    frame.index.name = "method"
    return frame


def per_seed_table(results_dir: str | Path, datasets: list[str], methods: list[str]) -> pd.DataFrame:
    """Per-seed mean Dice/IoU from every ``metrics.json`` (long format, fractions)."""
    rows = []
    for dataset in datasets:
        for method in methods:
            payload = read_json(Path(results_dir) / dataset / method / "metrics.json")
            for seed, values in payload["per_seed"].items():
                rows.append({"dataset": dataset, "method": method, "seed": seed, **{k: values[k] for k in ("dice", "iou", "sensitivity", "specificity", "fnr")}})
    return pd.DataFrame(rows)


def seed_averaged_per_image(per_image: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """Per-image score averaged over seeds (the unit of the paired tests and box plots)."""
    return per_image.groupby(["dataset", "method", "image_id"], sort=False)[metric].mean().reset_index()


def assert_no_nan(frame: pd.DataFrame, what: str) -> None:
    """Fail loudly rather than render an empty cell."""
    numeric = frame.select_dtypes(include=[np.number])
    if numeric.isna().any().any():
        raise ValueError(f"{what} has missing values; a result file is incomplete")


def text_check_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """One row per dataset and prompt contrast from ``results/<dataset>/generator/text_check.json``.

    Columns: dataset, contrast, proxy (what is measured), pairs, follows (share of pairs whose
    proxy is larger under the "high" prompt, with its Wilson 95 % CI), one-sided binomial p
    against 1/2, and the proxy's AUC on real images of the two kinds (proxy validity).
    """
    rows = []
    for dataset, summary in summaries.items():
        for name, result in summary["contrasts"].items():
            real = result["real_proxy"]
            rows.append({"dataset": dataset, "contrast": name, "proxy": result["attribute"],
                         "high prompt": result["high_prompt"], "low prompt": result["low_prompt"], "pairs": result["n_pairs"],
                         "follows prompt": f"{result['share_follow']:.2f} [{result['ci_low']:.2f}, {result['ci_high']:.2f}]",
                         "p (binomial, one-sided)": f"{result['p_value']:.2g}",
                         "proxy AUC on real images": "n/a" if real["auc"] != real["auc"] else f"{real['auc']:.2f} ({real['n_high']} vs {real['n_low']})"})  # fmt: skip
    return pd.DataFrame(rows)

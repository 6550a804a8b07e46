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


def seed_summary(per_image: pd.DataFrame, metrics: tuple[str, ...] = ("dice", "iou")) -> pd.DataFrame:
    """Mean and std over seeds of per-seed means, per dataset × method × metric (fractions)."""
    rows = []
    for (dataset, method), group in per_image.groupby(["dataset", "method"], sort=False):
        seeds = per_seed_means(group, metrics)
        for metric in metrics:
            mean, std = mean_std(seeds[metric])
            rows.append({"dataset": dataset, "method": method, "metric": metric, "mean": mean, "std": std, "n_seeds": len(seeds)})
    return pd.DataFrame(rows)


def segmentation_table(summary: pd.DataFrame, display_names: dict[str, str] | None = None, bold: dict[str, str] | None = None) -> pd.DataFrame:
    """Table 2 as formatted strings "mean ± std" in percent (HTML); a dataset's best Dice and IoU are
    **bold** only for the method ``bold`` names (:func:`significant_best`: significantly better
    than the best other at the unit), never merely for the highest mean.

    Args:
        summary: output of :func:`seed_summary`.
        display_names: method key -> label for the rows.
        bold: dataset -> method to bold (none when absent).

    Returns:
        Rows = methods, columns = (dataset, metric); cells are HTML strings.
    """
    display_names = display_names or {}
    table = {}
    for (dataset, metric), group in summary.groupby(["dataset", "metric"], sort=False):
        column = {}
        for _, row in group.iterrows():
            text = f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f}"
            if (bold or {}).get(dataset) == row["method"]:
                text = f"<b>{text}</b>"
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
            payload = read_json(run_folder(results_dir, dataset, method) / "metrics.json")
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


def load_lesions(results_dir: str | Path, datasets: list[str], methods: list[str]) -> pd.DataFrame:
    """Concatenate ``results/<dataset>/runs/<run>/lesions.csv`` (one row per seed × lesion)."""
    return _load_results_csv(results_dir, datasets, methods, "lesions.csv")


def significance_table(comparisons: dict[str, pd.DataFrame], *, display_names: dict[str, str] | None = None) -> pd.DataFrame:
    """Table 2's tests from ``comparisons.csv`` (family ``table2``): each method − the best other
    method by validation Dice, at the independent unit (seed-averaged per-image Dice averaged over
    each unit's images; Wilcoxon signed-rank over units; bootstrap CI over units; Holm over the
    dataset's rows). Where the units cannot reach p < 0.05 at all, "underpowered (n = …)".

    Args:
        comparisons: dataset -> its ``comparisons.csv`` frame.
    """
    from benchmark.stats.comparisons import p_text

    display_names = display_names or {}
    name = lambda m: display_names.get(m, m)  # noqa: E731
    rows = []
    for dataset, frame in comparisons.items():
        for _, row in frame[frame["table"] == "table2"].iterrows():
            rows.append({"dataset": dataset, "method": name(row["run_a"]), "vs (best other on validation)": name(row["run_b"]),
                         "Δ Dice (pp)": f"{100 * row['delta']:+.2f}", "95 % CI (pp)": f"[{100 * row['ci_low']:+.2f}, {100 * row['ci_high']:+.2f}]",
                         "n": f"{int(row['n_units'])} {row['unit']}s", "seeds": int(row["n_seeds"]), "seed sd of Δ (pp)": f"{100 * row['seed_sd']:.2f}",
                         "MDE 80 % (pp)": f"{100 * row['mde_80']:.1f}", "p (Wilcoxon)": p_text(row, column="p"), "p (Holm)": p_text(row)})  # fmt: skip
    return pd.DataFrame(rows)


def significant_best(comparisons: dict[str, pd.DataFrame], summary: pd.DataFrame, alpha: float = 0.05) -> dict[str, str]:
    """dataset -> the method to bold in Table 2: the best mean Dice, only when its ``table2`` row
    (vs the best other on validation) is positive with Holm p < ``alpha`` and the units can reach it."""
    from benchmark.stats.comparisons import underpowered

    best = {}
    for dataset, frame in comparisons.items():
        dice = summary[(summary["dataset"] == dataset) & (summary["metric"] == "dice")].sort_values("mean", ascending=False)
        if not len(dice):
            continue
        top = dice["method"].iloc[0]
        row = frame[(frame["table"] == "table2") & (frame["run_a"] == top)]
        if len(row) and row["delta"].iloc[0] > 0 and row["p_holm"].iloc[0] < alpha and not underpowered(int(row["n_units"].iloc[0])):
            best[dataset] = top
    return best


def dataset_units(prepared: dict[str, PreparedDataset]) -> dict:
    """dataset -> its analysis unit (:class:`benchmark.stats.units.Units`: video sequence where the
    loader has groups, e.g. synth_polyp and CVC-ClinicDB in the publisher's layout; else image)."""
    from benchmark.stats.units import dataset_units as units_of

    return {name: units_of(dataset) for name, dataset in prepared.items()}


def lesion_detection_table(lesions: pd.DataFrame, per_image: pd.DataFrame, prepared: dict[str, PreparedDataset], *,
                           reference: str = "unet", rule: str = "detected", display_names: dict[str, str] | None = None,
                           n_resamples: int = 10_000, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Table 3: lesion-level detection per dataset × stratum × method.

    A lesion's detection is averaged over seeds (0..1); sensitivity = mean over the stratum's test
    lesions, FNR = 1 - sensitivity, with a percentile bootstrap 95 % CI resampling analysis units
    (video sequences where the data has them, else images: the lesions of one unit stay together). Relative FNR reduction vs ``reference`` =
    (FNR_ref - FNR) / FNR_ref. Specificity = mean pixel specificity of the stratum's images.
    Strata as in Table 1 (exact attributes on procedural data); every dataset also gets "all".

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
        strata.update({name: mask.set_axis(attributes.index) for name, mask in _stratum_masks(attributes.reset_index(), prepared[dataset].manifest["modality"]).items()})
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
                sensitivity, low, high = bootstrap_ci(group["hit"].to_numpy(), groups=group["unit"].to_numpy(), n_resamples=n_resamples, seed=seed)
                spec = specificity.loc[method].reindex(sorted(members & set(specificity.loc[method].index))).mean()
                block.append({"dataset": dataset, "stratum": stratum, "method": method, "lesions": len(group),
                              "images": group["image_id"].nunique(), "units": f"{group['unit'].nunique()} {units.name}s", "sensitivity": sensitivity, "sens_low": low, "sens_high": high,
                              "fnr": 1 - sensitivity, "fnr_low": 1 - high, "fnr_high": 1 - low, "specificity": spec})  # fmt: skip
                if method == reference:
                    fnr_reference = 1 - sensitivity
            for row in block:
                row["relative_fnr_reduction"] = (fnr_reference - row["fnr"]) / fnr_reference if fnr_reference else float("nan")
                row["method"] = display_names.get(row["method"], row["method"])
            rows += block
    return pd.DataFrame(rows)


def format_lesion_table(table: pd.DataFrame) -> pd.DataFrame:
    """Percent strings for rendering :func:`lesion_detection_table`."""
    pct = lambda v: "–" if v != v else f"{100 * v:.1f}"  # noqa: E731
    return pd.DataFrame({
        "dataset": table["dataset"], "stratum": table["stratum"], "method": table["method"],
        "n lesions (images; units)": [f"{n} ({m}; {u})" for n, m, u in zip(table["lesions"], table["images"], table["units"])],
        "sensitivity (%)": table["sensitivity"].map(pct),
        "FNR (%) [95 % CI]": [f"{pct(f)} [{pct(lo)}, {pct(hi)}]" for f, lo, hi in zip(table["fnr"], table["fnr_low"], table["fnr_high"])],
        "rel. FNR reduction vs U-Net (%)": table["relative_fnr_reduction"].map(pct),
        "specificity (%)": table["specificity"].map(pct),
    })  # fmt: skip


def lesion_comparison_table(comparisons: dict[str, pd.DataFrame], *, display_names: dict[str, str] | None = None) -> pd.DataFrame:
    """Table 3's paired tests from ``comparisons.csv`` (family ``table3``): lesion-level sensitivity
    of each method − the reference (and DiffAug − SDSeg), in percentage points, at the unit."""
    from benchmark.stats.comparisons import p_text

    display_names = display_names or {}
    name = lambda m: display_names.get(m, m)  # noqa: E731
    rows = []
    for dataset, frame in comparisons.items():
        for _, row in frame[frame["table"] == "table3"].iterrows():
            rows.append({"dataset": dataset, "method": name(row["run_a"]), "vs": name(row["run_b"]),
                         "Δ sensitivity (pp)": f"{100 * row['delta']:+.1f}", "95 % CI (pp)": f"[{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}]",
                         "n": f"{int(row['n_units'])} {row['unit']}s", "MDE 80 % (pp)": f"{100 * row['mde_80']:.1f}", "p (Holm)": p_text(row)})  # fmt: skip
    return pd.DataFrame(rows)


def _read_optional(path: Path) -> dict | None:
    return read_json(path) if path.is_file() else None


def efficiency_table(results_dir: str | Path, models_dir: str | Path, datasets: list[str], runs: list[str],
                     display_names: dict[str, str] | None = None) -> pd.DataFrame:  # fmt: skip
    """Table 4: training time, hardware and inference speed, every figure from a run's own files.

    Per dataset × run: training seconds per seed (mean ± std over seeds, ``models/.../seed_k/run.json``)
    and that run's hardware; inference samples/s on the test split as the evaluate stage measured
    it (``results/.../inference.json``, mean over seeds; the method's own batching); from
    ``results/benchmarks/methods_<dataset>.json`` when the benchmark script has run: batch-1
    samples/s and training s/epoch. DiffAug's generation rows: the autoencoder, generator and
    validator training seconds (``results/<dataset>/{autoencoder,generator,validator}``), the
    generate + validate loop's samples/s (``synthesize/summary.json``), and the benchmark scripts'
    figures (``results/benchmarks/{generation,validator}_<dataset>.json``) with the hardware they recorded.
    Cells without a source file read "not measured".
    """
    results_dir, models_dir = Path(results_dir), Path(models_dir)
    display_names = display_names or {}
    missing = "not measured"
    rows = []
    for dataset in datasets:
        bench = _read_optional(results_dir / "benchmarks" / f"methods_{dataset}.json") or {"methods": {}}
        for run in runs:
            records = [read_json(path) for path in sorted(run_folder(models_dir, dataset, run).glob("seed_*/run.json"))]
            seconds = [record["train_seconds"] for record in records]
            mean, std = mean_std(seconds) if seconds else (float("nan"), float("nan"))
            hardware = sorted({record.get("environment", {}).get("hardware", "not recorded") for record in records})
            inference = _read_optional(run_folder(results_dir, dataset, run) / "inference.json")
            method = run.partition("+")[0]
            measured = bench["methods"].get(method, {}) if "+" not in run else {}
            rows.append({
                "dataset": dataset, "method": display_names.get(run, run),
                "training s / seed": f"{mean:.0f} ± {std:.0f}" if seconds else missing,
                "training s / epoch (benchmark)": f"{measured['train_seconds_per_epoch']:.1f}" if measured else missing,
                "hardware": "; ".join(hardware) if hardware else missing,
                "inference samples/s (test split)": f"{np.mean(list(inference['test_images_per_second'].values())):.1f}" if inference else missing,
                "samples/s at batch 1 (benchmark)": f"{measured['batch1_samples_per_second']:.1f}" if measured else missing,
            })  # fmt: skip
        summary = _read_optional(results_dir / dataset / "synthesize" / "summary.json")
        generation = _read_optional(results_dir / "benchmarks" / f"generation_{dataset}.json")
        validator = _read_optional(results_dir / "benchmarks" / f"validator_{dataset}.json")
        parts = {name: _read_optional(results_dir / dataset / name / file) for name, file in
                 (("autoencoder", "reconstruction.json"), ("generator", "train.json"), ("validator", "metrics.json"))}  # fmt: skip
        train_seconds = [part["train_seconds"] for part in parts.values() if part]
        rows.append({
            "dataset": dataset, "method": "DiffAug generation (autoencoder + generator + validator; offline)",
            "training s / seed": f"{sum(train_seconds):.0f}" if train_seconds else missing,
            "training s / epoch (benchmark)": "–",
            "hardware": generation["environment"]["hardware"] + " (benchmark)" if generation else "not recorded by these stages",
            "inference samples/s (test split)": (f"{summary['n_generated'] / (summary['generate_s'] + summary['validate_s']):.2f} generated + validated"
                                                 if summary else missing),
            "samples/s at batch 1 (benchmark)": f"{generation['samples_per_second']:.2f} (batch {generation['batch_size']})" if generation else missing,
        })  # fmt: skip
        if validator:
            rows.append({
                "dataset": dataset, "method": "DiffAug validator: single-step vs 10-step DDIM (benchmark)",
                "training s / seed": f"{parts['validator']['train_seconds']:.0f}" if parts["validator"] else missing,
                "training s / epoch (benchmark)": "–", "hardware": validator["environment"]["hardware"],
                "inference samples/s (test split)": f"{validator['single_step_samples_per_second']:.1f} vs "
                                                     f"{validator['iterative_samples_per_second'].get('10', float('nan')):.1f}",
                "samples/s at batch 1 (benchmark)": missing,
            })  # fmt: skip
    return pd.DataFrame(rows)


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
            rows.append({"measurement": f"validator: single-step vs {steps}-step DDIM", "network": network,
                         "figure": f"{speedup:.2f}× faster", "goal": f">= {0.9 * int(steps):.1f}×", "met": "yes" if speedup >= 0.9 * int(steps) else "no",
                         "why": f"encoding + decoding: {100 * min(fixed, 1.0):.0f} % of a single step (fitted)" if fixed is not None else "–",
                         "source": source})  # fmt: skip

    def loop_row(loop: dict, network: str, what: str, source: str) -> None:
        # the stricter bound when measured: the denoiser passes alone on the loop's own worker processes
        strict = loop.get("fraction_of_raw_bound_same_workers")
        fraction = strict if strict is not None else loop.get("fraction_of_raw_bound")
        if fraction is None:  # the stage's loop in a file measured at other steps: no bound to compare with
            return
        bound = "same-workers" if strict is not None else "one-process"
        figure = f"{100 * fraction:.0f} % of the {bound} bound ({loop['validated_images_per_second']:.1f} samples/s)"
        if strict is not None and loop.get("fraction_of_raw_bound") is not None:
            figure += f"; {100 * loop['fraction_of_raw_bound']:.0f} % of the one-process bound"
        rows.append({"measurement": f"generate + validate loop vs raw denoiser bound ({what})", "network": network, "figure": figure,
                     "goal": ">= 80 %", "met": "yes" if fraction >= 0.8 else "no",
                     "why": f"{loop['steps']} DDIM steps, {loop.get('workers')} workers", "source": source})  # fmt: skip

    for dataset in datasets:
        validator = _read_optional(bench / f"validator_{dataset}.json")
        if validator:
            validator_rows(validator, f"{dataset} (trained)", f"validator_{dataset}.json")
        for path in sorted(bench.glob(f"generation_{dataset}*.json")):
            record = read_json(path)
            if "loop" in record:
                loop_row(record["loop"], dataset, "synthesize stage", path.name)
            if "measured_loop" in record:
                loop_row(record["measured_loop"], dataset, f"timed loop, {record['measured_loop']['samples']} jobs", path.name)
    paper = _read_optional(bench / "validator_paper_scale.json")
    if paper:
        validator_rows(paper, f"paper size, {paper.get('image_size', '?')} px (freshly initialised)", "validator_paper_scale.json")
    return pd.DataFrame(rows, columns=["measurement", "network", "figure", "goal", "met", "why", "source"])


def quality_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """Table 5 from ``results/<dataset>/quality/summary.json``: accepted vs rejected generations.

    One row per dataset × metric, columns "accepted" and "rejected" (strings with their interval),
    plus the n and the feature source of each metric.
    """
    rows = []
    for dataset, summary in summaries.items():
        if not summary.get("computed", True):
            rows.append({"dataset": dataset, "metric": "all", "accepted": "not computed", "rejected": "not computed", "n per set": "–",
                         "features / basis": summary["reason"]})  # fmt: skip
            continue
        sets = summary["sets"]
        n = summary["n_per_set"]
        cell = {
            "FID ↓": lambda s: f"{s['fid']:.3g} [{s['fid_ci_low']:.3g}, {s['fid_ci_high']:.3g}]",
            "KID ↓": lambda s: f"{s['kid_mean']:.3g} ± {s['kid_std']:.3g}",
            "LPIPS to nearest real ↓": lambda s: f"{s['lpips_mean']:.3f} ± {s['lpips_std']:.3f}",
            "validator IoU": lambda s: f"{s['iou_mean']:.2f} ± {s['iou_std']:.2f}",
            "share of generations": lambda s: f"{100 * s['share']:.1f} % ({s['n_available']})",
        }
        sources = {"FID ↓": summary["fid_kid_features"], "KID ↓": summary["fid_kid_features"],
                   "LPIPS to nearest real ↓": summary["lpips_features"],
                   "validator IoU": f"all generations (θ = {summary['theta']})", "share of generations": f"{summary['n_generated']} generated"}  # fmt: skip
        for metric, render in cell.items():
            rows.append({"dataset": dataset, "metric": metric, "accepted": render(sets["accepted"]), "rejected": render(sets["rejected"]),
                         "n per set": n if metric in ("FID ↓", "KID ↓", "LPIPS to nearest real ↓") else "–", "features / basis": sources[metric]})  # fmt: skip
    return pd.DataFrame(rows)


def theta_sweep_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """Acceptance rate and mean IoU of the accepted at each θ of ``quality.thetas`` (long format)."""
    rows = []
    for dataset, summary in summaries.items():
        for entry in summary["theta_sweep"]:
            rows.append({"dataset": dataset, "θ": entry["theta"], "acceptance rate (%)": round(100 * entry["acceptance_rate"], 1),
                         "accepted": entry["n_accepted"], "mean IoU of accepted": round(entry["mean_iou_accepted"], 3)})  # fmt: skip
    return pd.DataFrame(rows)


def inference_selection_table(results_dir: str | Path, datasets: list[str], runs: list[str], display_names: dict[str, str] | None = None) -> pd.DataFrame:
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
                rows.append({"dataset": dataset, "method": display_names.get(run, run), "seed": seed, "selected": entry["selected"],
                             "validation Dice (%) per variant": scores})  # fmt: skip
    return pd.DataFrame(rows)

"""The studies around Table 2: the augmentation × architecture matrix, Table 6 (ablations),
Table 7 (synthetic volume) and the θ sweep's downstream Dice.

Every function reads the evaluate stage's files (``results/<dataset>/<run>/per_image.csv``,
``lesions.csv``, ``inference.json``, which carries each seed's training data sizes and budget);
nothing is typed in. Every paired difference is read from ``results/<dataset>/comparisons.csv``
(``compare@<dataset>``, :mod:`benchmark.reporting.claims`): computed at the independent unit (video
sequence, else image), Wilcoxon signed-rank over units, bootstrap CI over units, Holm within the
table; a comparison whose units cannot reach p < 0.05 reads "underpowered (n = … sequences)".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.reporting.tables import load_lesions, load_per_image, run_folder, seed_averaged_per_image
from benchmark.stats.comparisons import p_text
from benchmark.stats.significance import bootstrap_ci
from benchmark.stats.summary import mean_std, per_seed_means
from benchmark.stats.units import Units, unit_means
from benchmark.utils.io import read_json


def run_summary(results_dir: str | Path, dataset: str, run: str, *, per_image: pd.DataFrame | None = None) -> dict:
    """Mean ± std over seeds of Dice and IoU, lesion-level FNR (all lesions, seeds pooled) and the
    training data sizes of one run (fractions; ``n_synthetic``: mean over seeds).

    ``per_image``: the run's rows already loaded (:func:`load_per_image`, possibly with other runs).
    """
    per_image = load_per_image(results_dir, [dataset], [run]) if per_image is None else per_image[per_image["method"] == run]
    seeds = per_seed_means(per_image, ("dice", "iou"))
    lesions = load_lesions(results_dir, [dataset], [run])
    records = list(read_json(run_folder(results_dir, dataset, run) / "inference.json").get("training", {}).values())
    if not records:
        raise FileNotFoundError(f"{run_folder(results_dir, dataset, run)}/inference.json has no 'training' record; rerun `dvc repro train@{dataset}`")
    dice, dice_std = mean_std(seeds["dice"])
    iou, iou_std = mean_std(seeds["iou"])
    return {
        "run": run, "dice": dice, "dice_std": dice_std, "iou": iou, "iou_std": iou_std, "n_seeds": len(seeds),
        "lesion_fnr": float(1 - lesions["detected"].mean()) if len(lesions) else float("nan"), "n_lesions": int(len(lesions)),
        "n_real": int(records[0]["n_train_real"]), "n_synthetic": float(np.mean([r["n_train_synthetic"] for r in records])),
        "optimizer_steps": records[0].get("optimizer_steps"), "epochs": records[0].get("epochs"),
    }  # fmt: skip


def paired_comparisons(comparisons: pd.DataFrame, table: str, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """The ``table`` rows of ``comparisons.csv`` for ``pairs`` (``run`` − ``reference``), indexed by ``run``.

    Columns: ``reference``, ``mean_difference``, ``ci_low``, ``ci_high`` (fractions), ``unit``,
    ``n_units``, ``n_seeds``, ``seed_sd``, ``p``, ``p_holm``, ``min_attainable_p``, ``mde_80``.
    """
    from benchmark.reporting.claims import lookup

    rows = lookup(comparisons, table, pairs)
    return rows.rename(columns={"run_b": "reference", "delta": "mean_difference"}).rename_axis("run")


def _pm(mean: float, std: float) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _difference_columns(comparison: pd.Series | None) -> dict[str, str]:
    keys = ("Δ Dice (pp)", "95 % CI (pp)", "p (Holm)", "n", "MDE 80 % (pp)", "seed sd of Δ (pp)")
    if comparison is None:
        return dict.fromkeys(keys, "")
    n = int(comparison["n_units"])
    return dict(zip(keys, (f"{100 * comparison['mean_difference']:+.1f}",
                           f"[{100 * comparison['ci_low']:+.1f}, {100 * comparison['ci_high']:+.1f}]",
                           p_text(comparison), f"{n} {comparison['unit']}{'' if n == 1 else 's'}",
                           f"{100 * comparison['mde_80']:.1f}", f"{100 * comparison['seed_sd']:.1f}")))  # fmt: skip


def augmentation_matrix(results_dir: str | Path, dataset: str, axes: dict[str, dict[str, str]],
                        display_names: dict[str, str], *, comparisons: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """The augmentation × architecture matrix: Dice (mean ± std over seeds) of each segmenter
    with no / standard / DiffAug training data, and DiffAug − standard at the unit
    (``comparisons``: ``comparisons.csv``, family ``augmentation``).

    Args:
        axes: segmenter -> {"none": run, "standard": run, "DiffAug": run}
            (:func:`benchmark.methods.runs.augmentation_runs`); "standard" and "DiffAug" are
            required, a "none" of None is shown as "not run".
        display_names: segmenter -> row label.
    """
    pairs = [(levels["DiffAug"], levels["standard"]) for levels in axes.values()]
    per_image = load_per_image(results_dir, [dataset], list(dict.fromkeys(run for levels in axes.values() for run in levels.values() if run)))
    tests = paired_comparisons(comparisons, "augmentation", pairs)
    rows = []
    for method, levels in axes.items():
        row = {"segmenter": display_names.get(method, method)}
        for level, run in levels.items():
            if run is None:  # a level the params do not train (e.g. "none" for some baselines)
                row[f"{level} Dice (%)"] = "not run"
                continue
            summary = run_summary(results_dir, dataset, run, per_image=per_image)
            row[f"{level} Dice (%)"] = _pm(summary["dice"], summary["dice_std"])
        row.update({key.replace("Δ Dice", "DiffAug − standard"): value for key, value in _difference_columns(tests.loc[levels["DiffAug"]]).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def ablation_table(results_dir: str | Path, dataset: str, rows: dict[str, str], *, full: str, comparisons: pd.DataFrame,
                   iterative_label: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Table 6: each configuration's Dice, IoU (mean ± std over seeds), lesion-level FNR, the
    segmenter's test inference speed, the synthetic pairs it trained with, and the paired
    difference to the full configuration.

    Args:
        rows: label -> run (the first is the full configuration, ``full``).
        iterative_label: label of the "w/o latent estimation" row: the full run's own weights at
            N-step DDIM (``inference.json["iterative"]``, written by the evaluate stage); per-seed
            values only, so no per-image test.
    """
    pairs = [(run, full) for run in rows.values() if run != full]
    per_image = load_per_image(results_dir, [dataset], list(dict.fromkeys([full, *rows.values()])))  # read once
    tests = paired_comparisons(comparisons, "table6", pairs)
    table = []
    for label, run in rows.items():
        summary = run_summary(results_dir, dataset, run, per_image=per_image)
        speed = read_json(run_folder(results_dir, dataset, run) / "inference.json")["test_images_per_second"]
        table.append({"configuration": label, "Dice (%)": _pm(summary["dice"], summary["dice_std"]), "IoU (%)": _pm(summary["iou"], summary["iou_std"]),
                      "lesion FNR (%)": f"{100 * summary['lesion_fnr']:.1f}", "inference (images/s)": f"{np.mean(list(speed.values())):.1f}",
                      "synthetic pairs": f"{summary['n_synthetic']:.0f}", **_difference_columns(tests.loc[run] if run != full else None)})  # fmt: skip
        if label == next(iter(rows)) and iterative_label:
            record = read_json(run_folder(results_dir, dataset, full) / "inference.json").get("iterative")
            if not record:
                raise FileNotFoundError(f"{run_folder(results_dir, dataset, full)}/inference.json has no 'iterative' entry; rerun `dvc repro train@{dataset}`")
            seeds = pd.DataFrame(record.values())
            table.append({"configuration": f"{iterative_label} ({seeds['variant'].iloc[0]}, same weights)",
                          "Dice (%)": _pm(*mean_std(seeds["dice"])), "IoU (%)": _pm(*mean_std(seeds["iou"])),
                          "lesion FNR (%)": f"{100 * seeds['lesion_fnr'].mean():.1f}",
                          "inference (images/s)": f"{seeds['test_images_per_second'].mean():.1f}",
                          "synthetic pairs": f"{summary['n_synthetic']:.0f}",
                          **_difference_columns(None), "Δ Dice (pp)": f"{100 * (seeds['dice'].mean() - summary['dice']):+.1f}",
                          "95 % CI (pp)": "per-seed only"})  # fmt: skip
    return pd.DataFrame(table)


def volume_curve(results_dir: str | Path, dataset: str, runs: dict[str, str], *, reference: str, comparisons: pd.DataFrame,
                 units: Units, table: str = "table7", n_resamples: int = 10_000, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Table 7 (and the θ sweep's downstream Dice): one row per run in ``runs`` (label -> run).

    Columns: ``label``, ``run``, ``n_real``, ``n_synthetic`` (mean over seeds), ``optimizer_steps``,
    ``dice`` / ``iou`` (mean over seeds) with ``dice_std`` / ``iou_std``, ``dice_ci_low`` /
    ``dice_ci_high`` (bootstrap CI over units of the unit-mean Dice), the same for IoU, and the
    paired difference to ``reference`` from ``comparisons`` (family ``table``): ``delta``,
    ``delta_ci_low/high``, ``p_holm``, ``n_units``, ``unit``, ``min_attainable_p``, ``mde_80``,
    ``seed_sd``. Fractions throughout.
    """
    pairs = [(run, reference) for run in runs.values() if run != reference]
    per_image = load_per_image(results_dir, [dataset], list(dict.fromkeys([reference, *runs.values()])))  # read once
    tests = paired_comparisons(comparisons, table, pairs)
    rows = []
    for index, (label, run) in enumerate(runs.items()):
        summary = run_summary(results_dir, dataset, run, per_image=per_image)
        row = {"label": label, **{key: summary[key] for key in ("run", "n_real", "n_synthetic", "optimizer_steps", "dice", "dice_std", "iou", "iou_std")}}
        for metric in ("dice", "iou"):
            values = unit_means(per_image[per_image["method"] == run], units, metric)[run].dropna()
            _, low, high = bootstrap_ci(values.to_numpy(), n_resamples=n_resamples, seed=seed + index)
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
        test = tests.loc[run] if run in tests.index else None
        row.update({"delta": test["mean_difference"] if test is not None else 0.0})
        for key, column in (("delta_ci_low", "ci_low"), ("delta_ci_high", "ci_high"), ("p_holm", "p_holm"), ("n_units", "n_units"),
                            ("min_attainable_p", "min_attainable_p"), ("mde_80", "mde_80"), ("seed_sd", "seed_sd")):  # fmt: skip
            row[key] = test[column] if test is not None else np.nan
        row["unit"] = units.name
        rows.append(row)
    return pd.DataFrame(rows)


def format_volume_table(curve: pd.DataFrame, reference_label: str) -> pd.DataFrame:
    """Percent strings of :func:`volume_curve` for rendering."""
    return pd.DataFrame({
        "training configuration": curve["label"],
        "real images": curve["n_real"],
        "synthetic images": curve["n_synthetic"].map(lambda v: f"{v:.0f}"),
        "optimizer steps": curve["optimizer_steps"].map(lambda v: "not recorded" if pd.isna(v) else f"{int(v)}"),
        "Dice (%)": [f"{_pm(m, s)} [{100 * lo:.1f}, {100 * hi:.1f}]" for m, s, lo, hi in zip(curve["dice"], curve["dice_std"], curve["dice_ci_low"], curve["dice_ci_high"])],
        "IoU (%)": [f"{_pm(m, s)} [{100 * lo:.1f}, {100 * hi:.1f}]" for m, s, lo, hi in zip(curve["iou"], curve["iou_std"], curve["iou_ci_low"], curve["iou_ci_high"])],
        f"Δ Dice vs {reference_label} (pp)": ["" if np.isnan(lo) else f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                                              for d, lo, hi in zip(curve["delta"], curve["delta_ci_low"], curve["delta_ci_high"])],
        "p (Holm)": _p_cells(curve),
        "MDE 80 % (pp)": ["" if np.isnan(m) else f"{100 * m:.1f}" for m in curve["mde_80"]],
    })  # fmt: skip


def _p_cells(curve: pd.DataFrame) -> list[str]:
    """p (Holm) cells of a curve: blank for the reference row, "underpowered (n = …)" where the units cannot reach 0.05."""
    return ["" if np.isnan(row["n_units"]) else p_text(row) for _, row in curve.iterrows()]


def missing_runs(runs, available) -> list[str]:
    """The runs of ``runs`` (in order) that the params do not train (``available``: train.methods + ablation.runs)."""
    return [run for run in runs if run not in available]


def check_runs_exist(runs, available, where: str) -> None:
    """Fail with the fix when a study needs a run that the params do not train."""
    missing = missing_runs(runs, available)
    if missing:
        raise ValueError(f"{where} needs the runs {missing}, which neither train.methods nor ablation.runs lists; add them to ablation.runs")


def table6_rows(segmenter: str = "diffaug") -> dict[str, str]:
    """Table 6's configurations (label -> run) of DiffAug's segmenter; "w/o latent estimation"
    is the full run at N-step DDIM (see :func:`ablation_table`)."""
    from benchmark.methods.runs import run_name

    return {"DiffAug (full)": segmenter, "w/o text guidance": f"{segmenter}+diffaug_notext",
            "w/o validation loop": f"{segmenter}+diffaug_unvalidated", "w/o diverse prompts": f"{segmenter}+diffaug_basic",
            "w/o synthetic data": run_name(segmenter, "real")}  # fmt: skip


def table7_runs(segmenter: str, augmentation: str, volumes, default_volume: float) -> dict[str, str]:
    """Table 7's rows (label -> run): no augmentation, standard augmentation only, then DiffAug at
    each volume (× the real training set), in that order."""
    from benchmark.methods.runs import augmentation_runs, volume_run

    axis = augmentation_runs(segmenter, augmentation)
    rows = {"no augmentation": axis["none"], "standard augmentation only": axis["standard"]}
    for volume in sorted(volumes):
        rows[f"DiffAug + {volume:g}× synthetic"] = volume_run(segmenter, volume, default_volume)
    return rows


def theta_runs(segmenter: str, thetas, default_theta: float) -> dict[str, str]:
    """The θ sweep's downstream runs (label -> run), one per θ."""
    from benchmark.methods.runs import theta_run

    return {f"θ = {theta:g}": theta_run(segmenter, theta, default_theta) for theta in sorted(thetas)}


def study_plots(params_path: str | Path = "params.yaml", results_dir: str | Path = "results", *, n_resamples: int = 2000) -> dict[str, pd.DataFrame]:
    """The curves ``dvc plots show`` draws, per ablation dataset: ``volume_<dataset>`` (Dice against
    synthetic volume, Table 7) and ``theta_<dataset>`` (acceptance rate and downstream Dice against θ).
    Studies whose runs are not in the params are left out."""
    from benchmark.data.prepared import PreparedDataset
    from benchmark.params import check_params
    from benchmark.reporting import claims
    from benchmark.stats.units import dataset_units

    sections = check_params(str(params_path))
    train, ablation, synthesize = sections["train"], sections["ablation"], sections["synthesize"]
    quality = sections["quality"]
    available = set(train.methods) | set(ablation.runs)
    segmenter = "unet"
    augmentation = train.config_of(segmenter).augmentation
    curves = {}
    for dataset in ablation.datasets:
        units = dataset_units(PreparedDataset(Path("data/prepared") / dataset, Path("data/splits") / f"{dataset}.json"))
        comparisons = claims.load(results_dir, dataset)
        volume_rows = table7_runs(segmenter, augmentation, synthesize.volumes, synthesize.volume)
        if all(run in available for run in volume_rows.values()):
            curve = volume_curve(results_dir, dataset, volume_rows, reference=volume_rows["standard augmentation only"], comparisons=comparisons,
                                 units=units, n_resamples=n_resamples)  # fmt: skip
            curve["volume"] = [0.0, 0.0, *sorted(synthesize.volumes)]
            curves[f"volume_{dataset}"] = curve[["label", "volume", "n_synthetic", "dice", "dice_ci_low", "dice_ci_high", "iou"]]
        theta_rows = theta_runs(segmenter, quality.thetas, synthesize.theta)
        if all(run in available for run in theta_rows.values()):
            curve = volume_curve(results_dir, dataset, theta_rows, reference=theta_runs(segmenter, [synthesize.theta], synthesize.theta)[f"θ = {synthesize.theta:g}"],
                                 comparisons=comparisons, units=units, table="theta", n_resamples=n_resamples)  # fmt: skip
            curve["theta"] = sorted(quality.thetas)
            sweep = read_json(Path(results_dir) / dataset / "quality" / "summary.json").get("theta_sweep", [])
            rates = {round(row["theta"], 6): row["acceptance_rate"] for row in sweep}
            curve["acceptance_rate"] = [rates.get(round(theta, 6), np.nan) for theta in curve["theta"]]
            curves[f"theta_{dataset}"] = curve[["label", "theta", "acceptance_rate", "n_synthetic", "dice", "dice_ci_low", "dice_ci_high"]]
    return curves


def write_study_plots(out_dir: str | Path, params_path: str | Path = "params.yaml", results_dir: str | Path = "results") -> list[Path]:
    """``<out_dir>/dice_vs_volume.csv`` and ``dice_vs_theta.csv`` (every ablation dataset, a
    ``dataset`` column; header only when no study ran), written atomically; the files DVC plots."""
    from benchmark.utils.io import atomic_path

    curves = study_plots(params_path, results_dir)
    written = []
    for kind, columns in (("volume", ["dataset", "label", "volume", "n_synthetic", "dice", "dice_ci_low", "dice_ci_high", "iou"]),
                          ("theta", ["dataset", "label", "theta", "acceptance_rate", "n_synthetic", "dice", "dice_ci_low", "dice_ci_high"])):  # fmt: skip
        frames = [frame.assign(dataset=name.split("_", 1)[1]) for name, frame in curves.items() if name.startswith(kind + "_")]
        table = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
        path = Path(out_dir) / f"dice_vs_{kind}.csv"
        with atomic_path(path, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False, float_format="%.6f")
        written.append(path)
    return written


def synthetic_set_table(records: dict[str, dict]) -> pd.DataFrame:
    """How each synthetic set was made and gated, from the synthesize stages' ``summary.json``
    (label -> record): generator, prompts, guidance, generated, accepted, acceptance rate, mean IoU."""
    rows = []
    for label, record in records.items():
        generator = record.get("generator", {})
        rows.append({"set": label, "generator": generator.get("model", ""), "prompts": generator.get("prompt_variant", ""),
                     "guidance scale": generator.get("guidance_scale", ""), "generated": record["n_generated"], "accepted": record["n_accepted"],
                     "acceptance rate (%)": f"{100 * record['acceptance_rate']:.1f}",
                     "mean IoU accepted": "" if record["mean_iou_accepted"] is None else f"{record['mean_iou_accepted']:.3f}",
                     "mean IoU rejected": "" if record["mean_iou_rejected"] is None else f"{record['mean_iou_rejected']:.3f}",
                     "target reached": record["target_reached"]})  # fmt: skip
    return pd.DataFrame(rows)


def theta_dice_table(curve: pd.DataFrame) -> pd.DataFrame:
    """Percent strings of the θ sweep's downstream curve (:func:`volume_curve` plus ``acceptance_rate``)."""
    return pd.DataFrame({
        "θ": curve["label"],
        "acceptance rate (%)": [f"{100 * r:.1f}" for r in curve["acceptance_rate"]],
        "synthetic images used": curve["n_synthetic"].map(lambda v: f"{v:.0f}"),
        "Dice (%)": [f"{_pm(m, s)} [{100 * lo:.1f}, {100 * hi:.1f}]" for m, s, lo, hi in zip(curve["dice"], curve["dice_std"], curve["dice_ci_low"], curve["dice_ci_high"])],
        "Δ Dice vs loop θ (pp)": ["" if np.isnan(lo) else f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                                  for d, lo, hi in zip(curve["delta"], curve["delta_ci_low"], curve["delta_ci_high"])],
        "p (Holm)": _p_cells(curve),
    })  # fmt: skip

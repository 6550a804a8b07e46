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

from benchmark.reporting.tables import load_lesions, load_per_image, run_folder
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
    per_image = (
        load_per_image(results_dir, [dataset], [run]) if per_image is None else per_image[per_image["method"] == run]
    )
    seeds = per_seed_means(per_image, ("dice", "iou"))
    lesions = load_lesions(results_dir, [dataset], [run])
    records = list(read_json(run_folder(results_dir, dataset, run) / "inference.json").get("training", {}).values())
    if not records:
        raise FileNotFoundError(
            f"{run_folder(results_dir, dataset, run)}/inference.json has no 'training' record; rerun `dvc repro train@{dataset}`"
        )
    dice, dice_std = mean_std(seeds["dice"])
    iou, iou_std = mean_std(seeds["iou"])
    return {
        "run": run,
        "dice": dice,
        "dice_std": dice_std,
        "iou": iou,
        "iou_std": iou_std,
        "n_seeds": len(seeds),
        "lesion_fnr": float(1 - lesions["detected"].mean()) if len(lesions) else float("nan"),
        "n_lesions": int(len(lesions)),
        "n_real": int(records[0]["n_train_real"]),
        "n_synthetic": float(np.mean([r["n_train_synthetic"] for r in records])),
        "optimizer_steps": records[0].get("optimizer_steps"),
        "epochs": records[0].get("epochs"),
    }


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


PAPER_STUDY_COLUMN = "paper (CVC-ClinicDB) Dice (%)"
PAPER_DELTA_COLUMN = "ours − paper Dice (pp)"


def paper_dice(table: str, run: str | None, paper=None, *, row_label: str | None = None) -> float | None:
    """The paper's Dice (%) for ``run`` in ``table`` (``table6`` / ``table7``, both on CVC-ClinicDB), via
    :data:`benchmark.reporting.paper.PAPER_ROWS` (or ``row_label``, a paper row as printed); None where the paper has
    no such row, ``paper`` is False, or :mod:`benchmark.reporting.paper` is absent. ``paper``: that module or a mapping
    run -> Dice (%)."""
    if paper is False:
        return None
    if isinstance(paper, dict):
        return paper.get(run if row_label is None else row_label)
    if paper is None:
        try:
            from benchmark.reporting import paper as paper_module
        except ImportError:
            return None
        paper = paper_module
    label = row_label or paper.PAPER_ROWS.get(table, {}).get(run)
    if label is None:
        return None
    try:
        return paper.lookup(table, "dice", row=label, dataset="cvc_clinicdb")
    except (ValueError, KeyError):
        return None


def _paper_columns(
    table: str, run: str | None, ours: float, paper=None, row_label: str | None = None
) -> dict[str, str]:
    value = paper_dice(table, run, paper, row_label=row_label)
    if value is None:
        return {PAPER_STUDY_COLUMN: "–", PAPER_DELTA_COLUMN: "–"}
    return {PAPER_STUDY_COLUMN: f"{value:.1f}", PAPER_DELTA_COLUMN: f"{100 * ours - value:+.1f}"}


def _difference_columns(comparison: pd.Series | None) -> dict[str, str]:
    keys = ("Δ Dice (pp)", "95 % CI (pp)", "p (Holm)", "n", "MDE 80 % (pp)", "seed sd of Δ (pp)")
    if comparison is None:
        return dict.fromkeys(keys, "")
    n = int(comparison["n_units"])
    return dict(
        zip(
            keys,
            (
                f"{100 * comparison['mean_difference']:+.1f}",
                f"[{100 * comparison['ci_low']:+.1f}, {100 * comparison['ci_high']:+.1f}]",
                p_text(comparison),
                f"{n} {comparison['unit']}{'' if n == 1 else 's'}",
                f"{100 * comparison['mde_80']:.1f}",
                f"{100 * comparison['seed_sd']:.1f}",
            ),
        )
    )


def augmentation_matrix(
    results_dir: str | Path,
    dataset: str,
    axes: dict[str, dict[str, str]],
    display_names: dict[str, str],
    *,
    comparisons: pd.DataFrame,
) -> pd.DataFrame:
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
    per_image = load_per_image(
        results_dir, [dataset], list(dict.fromkeys(run for levels in axes.values() for run in levels.values() if run))
    )
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
        row.update(
            {
                key.replace("Δ Dice", "DiffAug − standard"): value
                for key, value in _difference_columns(tests.loc[levels["DiffAug"]]).items()
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def ablation_table(
    results_dir: str | Path,
    dataset: str,
    rows: dict[str, str],
    *,
    full: str,
    comparisons: pd.DataFrame,
    iterative_label: str | None = None,
    paper=None,
) -> pd.DataFrame:
    """Table 6: each configuration's Dice, IoU (mean ± std over seeds), lesion-level FNR, the
    segmenter's test inference speed, the synthetic pairs it trained with, and the paired
    difference to the full configuration.

    Args:
        rows: label -> run (the first is the full configuration, ``full``).
        iterative_label: label of the "w/o latent estimation" row: the full run's own weights at
            N-step DDIM (``inference.json["iterative"]``, written by the evaluate stage); per-seed
            values only, so no per-image test.
        paper: see :func:`paper_dice`; adds the paper's Dice of the same row (CVC-ClinicDB) and ours − paper.
    """
    pairs = [(run, full) for run in rows.values() if run != full]
    per_image = load_per_image(results_dir, [dataset], list(dict.fromkeys([full, *rows.values()])))  # read once
    tests = paired_comparisons(comparisons, "table6", pairs)
    table = []
    for label, run in rows.items():
        summary = run_summary(results_dir, dataset, run, per_image=per_image)
        speed = read_json(run_folder(results_dir, dataset, run) / "inference.json")["test_images_per_second"]
        table.append(
            {
                "configuration": label,
                "Dice (%)": _pm(summary["dice"], summary["dice_std"]),
                "IoU (%)": _pm(summary["iou"], summary["iou_std"]),
                "lesion FNR (%)": f"{100 * summary['lesion_fnr']:.1f}",
                "inference (images/s)": f"{np.mean(list(speed.values())):.1f}",
                "synthetic pairs": f"{summary['n_synthetic']:.0f}",
                **_difference_columns(tests.loc[run] if run != full else None),
                **_paper_columns("table6", run, summary["dice"], paper),
            }
        )
        if label == next(iter(rows)) and iterative_label:
            record = read_json(run_folder(results_dir, dataset, full) / "inference.json").get("iterative")
            if not record:
                raise FileNotFoundError(
                    f"{run_folder(results_dir, dataset, full)}/inference.json has no 'iterative' entry; rerun `dvc repro train@{dataset}`"
                )
            seeds = pd.DataFrame(record.values())
            table.append(
                {
                    "configuration": f"{iterative_label} ({seeds['variant'].iloc[0]}, same weights)",
                    "Dice (%)": _pm(*mean_std(seeds["dice"])),
                    "IoU (%)": _pm(*mean_std(seeds["iou"])),
                    "lesion FNR (%)": f"{100 * seeds['lesion_fnr'].mean():.1f}",
                    "inference (images/s)": f"{seeds['test_images_per_second'].mean():.1f}",
                    "synthetic pairs": f"{summary['n_synthetic']:.0f}",
                    **_difference_columns(None),
                    "Δ Dice (pp)": f"{100 * (seeds['dice'].mean() - summary['dice']):+.1f}",
                    "95 % CI (pp)": "per-seed only",
                    **_paper_columns("table6", None, seeds["dice"].mean(), paper, row_label="w/o Latent Estimation"),
                }
            )
    return pd.DataFrame(table)


def volume_curve(
    results_dir: str | Path,
    dataset: str,
    runs: dict[str, str],
    *,
    reference: str,
    comparisons: pd.DataFrame,
    units: Units,
    table: str = "table7",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
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
        row = {
            "label": label,
            **{
                key: summary[key]
                for key in ("run", "n_real", "n_synthetic", "optimizer_steps", "dice", "dice_std", "iou", "iou_std")
            },
        }
        for metric in ("dice", "iou"):
            values = unit_means(per_image[per_image["method"] == run], units, metric)[run].dropna()
            _, low, high = bootstrap_ci(values.to_numpy(), n_resamples=n_resamples, seed=seed + index)
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
        test = tests.loc[run] if run in tests.index else None
        row.update({"delta": test["mean_difference"] if test is not None else 0.0})
        for key, column in (
            ("delta_ci_low", "ci_low"),
            ("delta_ci_high", "ci_high"),
            ("p_holm", "p_holm"),
            ("n_units", "n_units"),
            ("min_attainable_p", "min_attainable_p"),
            ("mde_80", "mde_80"),
            ("seed_sd", "seed_sd"),
        ):
            row[key] = test[column] if test is not None else np.nan
        row["unit"] = units.name
        rows.append(row)
    return pd.DataFrame(rows)


def format_volume_table(curve: pd.DataFrame, reference_label: str, *, paper=None) -> pd.DataFrame:
    """Percent strings of :func:`volume_curve` for rendering, with the paper's Dice of the same row (CVC-ClinicDB,
    :func:`paper_dice`) and ours − paper where the paper has the row."""
    published = pd.DataFrame(
        [_paper_columns("table7", run, dice, paper) for run, dice in zip(curve["run"], curve["dice"])],
        columns=[PAPER_STUDY_COLUMN, PAPER_DELTA_COLUMN],
    )
    return pd.DataFrame(
        {
            "training configuration": curve["label"],
            "real images": curve["n_real"],
            "synthetic images": curve["n_synthetic"].map(lambda v: f"{v:.0f}"),
            "optimizer steps": curve["optimizer_steps"].map(lambda v: "not recorded" if pd.isna(v) else f"{int(v)}"),
            "Dice (%)": [
                f"{_pm(m, s)} [{100 * lo:.1f}, {100 * hi:.1f}]"
                for m, s, lo, hi in zip(curve["dice"], curve["dice_std"], curve["dice_ci_low"], curve["dice_ci_high"])
            ],
            "IoU (%)": [
                f"{_pm(m, s)} [{100 * lo:.1f}, {100 * hi:.1f}]"
                for m, s, lo, hi in zip(curve["iou"], curve["iou_std"], curve["iou_ci_low"], curve["iou_ci_high"])
            ],
            f"Δ Dice vs {reference_label} (pp)": [
                "" if np.isnan(lo) else f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                for d, lo, hi in zip(curve["delta"], curve["delta_ci_low"], curve["delta_ci_high"])
            ],
            "p (Holm)": _p_cells(curve),
            "MDE 80 % (pp)": ["" if np.isnan(m) else f"{100 * m:.1f}" for m in curve["mde_80"]],
            PAPER_STUDY_COLUMN: published[PAPER_STUDY_COLUMN].to_list(),
            PAPER_DELTA_COLUMN: published[PAPER_DELTA_COLUMN].to_list(),
        }
    )


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
        raise ValueError(
            f"{where} needs the runs {missing}, which neither train.methods nor ablation.runs lists; add them to ablation.runs"
        )


def split_optional_rows(rows: dict[str, str], available, required) -> tuple[dict[str, str], dict[str, str]]:
    """``rows`` (label -> run) split into those the params train and the optional ones they leave out.

    A row whose label is in ``required`` must be trained (else the fix is raised, as :func:`check_runs_exist`);
    the others may be trimmed from a profile (e.g. Table 6's ``notext`` / ``basic`` rows in the default).
    Returns ``(kept, trimmed)``, both in ``rows``' order.
    """
    check_runs_exist([rows[label] for label in required], available, "This table")
    kept = {label: run for label, run in rows.items() if run in available}
    return kept, {label: run for label, run in rows.items() if run not in available}


def table6_rows(segmenter: str = "diffaug") -> dict[str, str]:
    """Table 6's configurations (label -> run) of DiffAug's segmenter; "w/o latent estimation"
    is the full run at N-step DDIM (see :func:`ablation_table`)."""
    from benchmark.methods.runs import run_name

    return {
        "DiffAug (full)": segmenter,
        "w/o text guidance (sampled at guidance 1: no text)": f"{segmenter}+diffaug_notext",
        "w/o validation loop (first generated, accepted or not)": f"{segmenter}+diffaug_unvalidated",
        "w/o diverse prompts": f"{segmenter}+diffaug_basic",
        "w/o synthetic data": run_name(segmenter, "real"),
    }


def table7_runs(segmenter: str, augmentation: str, volumes, default_volume: float) -> dict[str, str]:
    """Table 7's rows (label -> run): no augmentation, standard augmentation only, then DiffAug at
    each volume (× the real training set), in that order."""
    from benchmark.methods.runs import augmentation_runs, volume_run

    axis = augmentation_runs(segmenter, augmentation)
    rows = {"no augmentation": axis["none"], "standard augmentation only": axis["standard"]}
    for volume in sorted(volumes):
        rows[f"DiffAug + {volume:g}× synthetic"] = volume_run(segmenter, volume, default_volume)
    return rows


#: Table 7's controls (beyond the paper): source -> row label
CONTROL_LABELS = {"copypaste": "copy-paste", "oracle": "oracle data", "shuffled": "DiffAug images, shuffled labels"}


def table7_control_runs(segmenter: str, volumes, default_volume: float, available) -> dict[str, str]:
    """Table 7's control rows (label -> run) that the params train (``available``), volume by volume:
    each control at each volume, then every synthetic source's run under the equal-epochs budget."""
    from benchmark.methods.runs import volume_run

    rows = {}
    for volume in sorted(volumes):
        for source, label in CONTROL_LABELS.items():
            rows[f"{label} + {volume:g}×"] = volume_run(segmenter, volume, default_volume, source)
    for volume in sorted(volumes):
        for source, label in {"diffaug": "DiffAug", **CONTROL_LABELS}.items():
            rows[f"{label} + {volume:g}×, equal epochs"] = volume_run(
                segmenter, volume, default_volume, source, epochs=True
            )
    return {label: run for label, run in rows.items() if run in available}


def control_verdict(curve: pd.DataFrame, volume: float = 1.0) -> str:
    """One sentence placing DiffAug between copy-paste and oracle data at ``volume``, from a Table 7
    curve (:func:`volume_curve` over the main and the control rows; Δ against standard augmentation).

    States whether oracle data raised Dice beyond its CI (else: this setting cannot detect an
    augmentation gain), and where DiffAug's Δ lies relative to copy-paste's and oracle's. Returns ""
    when the curve lacks the DiffAug or the copy-paste row at ``volume``.
    """
    by_label = curve.set_index("label")
    diffaug, copypaste = f"DiffAug + {volume:g}× synthetic", f"copy-paste + {volume:g}×"
    oracle, shuffled = f"oracle data + {volume:g}×", f"DiffAug images, shuffled labels + {volume:g}×"
    if diffaug not in by_label.index or copypaste not in by_label.index:
        return ""

    def delta(label: str) -> str:
        row = by_label.loc[label]
        return f"{100 * row['delta']:+.1f} pp [{100 * row['delta_ci_low']:+.1f}, {100 * row['delta_ci_high']:+.1f}]"

    n = by_label.loc[diffaug]
    unit = f"n = {int(n['n_units'])} {n['unit']}s" if not pd.isna(n["n_units"]) else ""
    parts = [
        f"At {volume:g}× (Δ Dice vs standard augmentation, 95 % CI over units, {unit}): DiffAug {delta(diffaug)}, "
        f"copy-paste {delta(copypaste)}"
    ]
    if oracle in by_label.index:
        parts[0] += f", oracle data {delta(oracle)}"
    if shuffled in by_label.index:
        parts[0] += f", shuffled labels {delta(shuffled)}"
    parts[0] += "."
    d, c = by_label.loc[diffaug, "delta"], by_label.loc[copypaste, "delta"]
    if oracle in by_label.index:
        o, o_low = by_label.loc[oracle, "delta"], by_label.loc[oracle, "delta_ci_low"]
        if not o_low > 0:
            parts.append(
                "Oracle data did not raise Dice beyond its CI: at this scale the benchmark cannot detect an augmentation gain, "
                "so DiffAug's difference says little about the method."
            )
        place = (
            "above oracle data"
            if d > o
            else "below copy-paste"
            if d < min(c, o)
            else "between copy-paste and oracle data"
            if c <= d <= o
            else "between oracle data and copy-paste"
        )
        parts.append(f"DiffAug lies {place} (point estimates).")
    else:
        parts.append(
            f"DiffAug lies {'above' if d > c else 'below'} copy-paste (point estimates); no oracle control on real data."
        )
    if shuffled in by_label.index and not by_label.loc[shuffled, "delta_ci_high"] < 0:
        parts.append(
            "Shuffled labels did not hurt beyond their CI: the negative control failed, treat the other rows with caution."
        )
    epochs = {
        name: f"{label}, equal epochs"
        for name, label in (("DiffAug", f"DiffAug + {volume:g}×"), ("copy-paste", copypaste), ("oracle data", oracle))
    }
    if all(label in by_label.index for label in epochs.values()):
        e = {name: by_label.loc[label, "delta"] for name, label in epochs.items()}
        place = (
            "above oracle data"
            if e["DiffAug"] > e["oracle data"]
            else "below copy-paste"
            if e["DiffAug"] < min(e["copy-paste"], e["oracle data"])
            else "between copy-paste and oracle data"
            if e["copy-paste"] <= e["DiffAug"] <= e["oracle data"]
            else "between oracle data and copy-paste"
        )
        parts.append(
            f"Under equal epochs (the paper's reading: more data, more optimizer steps): DiffAug {delta(epochs['DiffAug'])}, "
            f"copy-paste {delta(epochs['copy-paste'])}, oracle data {delta(epochs['oracle data'])}; DiffAug lies {place}. "
            "These gains mix the value of the data with the extra steps (standard augmentation keeps its own, fewer steps)."
        )
    return " ".join(parts)


def theta_runs(segmenter: str, thetas, default_theta: float) -> dict[str, str]:
    """The θ sweep's downstream runs (label -> run), one per θ."""
    from benchmark.methods.runs import theta_run

    return {f"θ = {theta:g}": theta_run(segmenter, theta, default_theta) for theta in sorted(thetas)}


PLOT_CI_METHOD = "percentile bootstrap over {unit}s of the unit-mean Dice, {n:,} resamples (as in the report's table)"


def study_plots(
    params_path: str | Path = "params.yaml", results_dir: str | Path = "results", *, n_resamples: int = 10_000
) -> dict[str, pd.DataFrame]:
    """The curves ``dvc plots show`` draws, per ablation dataset: ``volume_<dataset>`` (Dice against
    synthetic volume, Table 7) and ``theta_<dataset>`` (acceptance rate and downstream Dice against θ).
    Studies whose runs are not in the params are left out.

    Each curve is :func:`volume_curve` over the same rows in the same order and with the same resamples as the
    notebooks' tables (Table 7, Table 5's downstream Dice), so a row carries the same CI in the table and in the
    plots file (the clustered bootstrap over the dataset's independent units); fractions, as ``volume_curve``."""
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
            curve = volume_curve(
                results_dir,
                dataset,
                volume_rows,
                reference=volume_rows["standard augmentation only"],
                comparisons=comparisons,
                units=units,
                n_resamples=n_resamples,
            )
            curve["volume"] = [0.0, 0.0, *sorted(synthesize.volumes)]
            curve["ci_method"] = PLOT_CI_METHOD.format(unit=units.name, n=n_resamples)
            curves[f"volume_{dataset}"] = curve[
                ["label", "volume", "n_synthetic", "dice", "dice_ci_low", "dice_ci_high", "iou", "ci_method"]
            ]
        theta_rows = theta_runs(segmenter, quality.thetas, synthesize.theta)
        if all(run in available for run in theta_rows.values()):
            curve = volume_curve(
                results_dir,
                dataset,
                theta_rows,
                reference=theta_runs(segmenter, [synthesize.theta], synthesize.theta)[f"θ = {synthesize.theta:g}"],
                comparisons=comparisons,
                units=units,
                table="theta",
                n_resamples=n_resamples,
            )
            curve["theta"] = sorted(quality.thetas)
            sweep = read_json(Path(results_dir) / dataset / "quality" / "summary.json").get("theta_sweep", [])
            rates = {round(row["theta"], 6): row["acceptance_rate"] for row in sweep}
            curve["acceptance_rate"] = [rates.get(round(theta, 6), np.nan) for theta in curve["theta"]]
            curve["ci_method"] = PLOT_CI_METHOD.format(unit=units.name, n=n_resamples)
            curves[f"theta_{dataset}"] = curve[
                ["label", "theta", "acceptance_rate", "n_synthetic", "dice", "dice_ci_low", "dice_ci_high", "ci_method"]
            ]
    return curves


PERCENT_COLUMNS = ("dice", "dice_ci_low", "dice_ci_high", "iou", "acceptance_rate")


def write_study_plots(
    out_dir: str | Path,
    params_path: str | Path = "params.yaml",
    results_dir: str | Path = "results",
    *,
    n_resamples: int = 10_000,
) -> list[Path]:
    """``<out_dir>/dice_vs_volume.csv`` and ``dice_vs_theta.csv`` (every ablation dataset, a
    ``dataset`` column; header only when no study ran), written atomically; the files DVC plots.
    Dice, its CI (the tables' own, :func:`study_plots`), IoU and acceptance rate in percent, as in every table."""
    from benchmark.utils.io import atomic_path

    curves = study_plots(params_path, results_dir, n_resamples=n_resamples)
    written = []
    for kind, columns in (
        (
            "volume",
            ["dataset", "label", "volume", "n_synthetic", "dice", "dice_ci_low", "dice_ci_high", "iou", "ci_method"],
        ),
        (
            "theta",
            [
                "dataset",
                "label",
                "theta",
                "acceptance_rate",
                "n_synthetic",
                "dice",
                "dice_ci_low",
                "dice_ci_high",
                "ci_method",
            ],
        ),
    ):
        frames = [
            frame.assign(dataset=name.split("_", 1)[1]) for name, frame in curves.items() if name.startswith(kind + "_")
        ]
        table = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
        for column in PERCENT_COLUMNS:
            if column in table and len(table):
                table[column] = 100 * table[column].astype(float)
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
        rows.append(
            {
                "set": label,
                "generator": generator.get("model", ""),
                "prompts": generator.get("prompt_variant", ""),
                "guidance scale": generator.get("guidance_scale", ""),
                "generated": record["n_generated"],
                "accepted": record["n_accepted"],
                "acceptance rate (%)": f"{100 * record['acceptance_rate']:.1f}",
                "mean IoU accepted": ""
                if record["mean_iou_accepted"] is None
                else f"{record['mean_iou_accepted']:.3f}",
                "mean IoU rejected": ""
                if record["mean_iou_rejected"] is None
                else f"{record['mean_iou_rejected']:.3f}",
                "target reached": record["target_reached"],
            }
        )
    return pd.DataFrame(rows)


def theta_dice_table(curve: pd.DataFrame) -> pd.DataFrame:
    """Percent strings of the θ sweep's downstream curve (:func:`volume_curve` plus ``acceptance_rate``)."""
    return pd.DataFrame(
        {
            "θ": curve["label"],
            "acceptance rate (%)": [f"{100 * r:.1f}" for r in curve["acceptance_rate"]],
            "synthetic images used": curve["n_synthetic"].map(lambda v: f"{v:.0f}"),
            "Dice (%)": [
                f"{_pm(m, s)} [{100 * lo:.1f}, {100 * hi:.1f}]"
                for m, s, lo, hi in zip(curve["dice"], curve["dice_std"], curve["dice_ci_low"], curve["dice_ci_high"])
            ],
            "Δ Dice vs loop θ (pp)": [
                "" if np.isnan(lo) else f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                for d, lo, hi in zip(curve["delta"], curve["delta_ci_low"], curve["delta_ci_high"])
            ],
            "p (Holm)": _p_cells(curve),
        }
    )


def generator_scale_verdict(result: dict) -> str:
    """What the generator-scale curve says, in sentences, choosing on validation figures only.

    Names the variant with the highest U-Net + DiffAug validation Dice, whether validation Dice still rises
    from the second-largest to the largest length by more than the seed-to-seed spread of validation Dice
    (``unet_diffaug_validation_dice_std``; a result without it is not judged: the test spread is never used
    for a decision), and where each length's test Dice lies against the U-Net alone and the oracle control.
    Returns "" for a result without variants.
    """
    rows = [row for row in result.get("variants", []) if row.get("unet_diffaug_validation_dice") is not None]
    if not rows:
        return ""
    rows = sorted(rows, key=lambda row: (row.get("width", 1.0), row["generator_steps"]))
    best = max(rows, key=lambda row: row["unet_diffaug_validation_dice"])
    parts = [
        f"Chosen on validation: {best['variant']} (U-Net + DiffAug validation Dice {100 * best['unet_diffaug_validation_dice']:.1f} %)."
    ]
    plain = [row for row in rows if row.get("width", 1.0) == 1.0]
    if len(plain) >= 2:
        last, before = plain[-1], plain[-2]
        gain = last["unet_diffaug_validation_dice"] - before["unet_diffaug_validation_dice"]
        moved = (
            f"From {before['generator_steps']:,} to {last['generator_steps']:,} generator steps validation Dice moved by "
            f"{100 * gain:+.1f} points"
        )
        spreads = [row.get("unet_diffaug_validation_dice_std") for row in (before, last)]
        if None in spreads:
            parts.append(
                f"{moved}; the study recorded no validation seed spread, so whether that exceeds seed noise is not judged."
            )
        else:
            spread = max(spreads)
            verdict = (
                "still rising (a wider denoiser or more steps may help)."
                if gain > spread
                else "no rise beyond the seed spread."
            )
            parts.append(f"{moved} against a validation seed-to-seed spread of {100 * spread:.1f}: {verdict}")
    unet, oracle = (result.get("references") or {}).get("unet"), (result.get("references") or {}).get("oracle")
    if unet:
        above = [row["variant"] for row in rows if row["unet_diffaug_test_dice"] > unet["test_dice"]]
        parts.append(
            f"U-Net alone: test Dice {100 * unet['test_dice']:.1f} %; the lengths whose U-Net + DiffAug mean is above it: "
            + (", ".join(above) if above else "none")
            + " (means over seeds; no test here separates them)."
        )
    if oracle and unet:
        parts.append(
            f"Oracle data at the same budget: {100 * oracle['test_dice']:.1f} % "
            f"({100 * (oracle['test_dice'] - unet['test_dice']):+.1f} points over the U-Net alone)."
        )
    return " ".join(parts)


def generator_scale_table(result: dict) -> pd.DataFrame:
    """The generator-scale study (``benchmarks/generator_scale.py``) as a table: one row per generator
    variant, then the U-Net alone and the oracle control at the same budget (percent where a share)."""

    def pct(value):
        return "–" if value is None else f"{100 * value:.1f}"

    rows = []
    for row in result["variants"]:
        checks = "; ".join(
            f"{name} {100 * c['share_follow']:.0f} % [{100 * c['ci_low']:.0f}, {100 * c['ci_high']:.0f}]"
            + ("" if c["real_proxy_auc"] >= 0.6 else " (proxy not valid)")
            for name, c in row["text_checks"].items()
        )
        rows.append(
            {
                "training data": f"U-Net + DiffAug 1× ({row['variant']})",
                "generator steps": row["generator_steps"],
                "generator training (s)": f"{row['generator_train_seconds']:.0f}",
                "final loss": f"{row['final_loss']:.3f}",
                "acceptance (%)": pct(row["acceptance_rate"]),
                "FID accepted": "–" if row["fid_accepted"] is None else f"{row['fid_accepted']:.2f}",
                "KID accepted": "–"
                if row["kid_accepted"] is None
                else f"{row['kid_accepted']:.4f} ± {row['kid_std']:.4f}",
                "text checks (share following)": checks,
                "validation Dice (%)": pct(row["unet_diffaug_validation_dice"]),
                "test Dice (%)": f"{pct(row['unet_diffaug_test_dice'])} ± {pct(row['unet_diffaug_test_dice_std'])}",
            }
        )
    for label, key in (("U-Net, real data only", "unet"), ("U-Net + oracle data 1×", "oracle")):
        ref = result["references"].get(key)
        if ref:
            rows.append(
                {
                    "training data": label,
                    "generator steps": "",
                    "generator training (s)": "",
                    "final loss": "",
                    "acceptance (%)": "",
                    "FID accepted": "",
                    "KID accepted": "",
                    "text checks (share following)": "",
                    "validation Dice (%)": pct(ref["validation_dice"]),
                    "test Dice (%)": f"{pct(ref['test_dice'])} ± {pct(ref['test_dice_std'])}",
                }
            )
    return pd.DataFrame(rows)

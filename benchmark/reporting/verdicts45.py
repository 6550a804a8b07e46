"""The verdicts that open the reports of Tables 1, 4, 5, 6, 7 and the generator: 3–5 lines each, generated from
the recorded results and ``comparisons.csv`` (nothing typed in). Each function returns a list of sentences;
:func:`as_markdown` renders them as the report's opening lines.

The paper's figures come from :mod:`benchmark.reporting.paper` when it is importable (``paper=None``), or from a
``paper`` argument (a module with ``lookup`` / ``PAPER_ROWS``, or ``False`` for none). The paper's studies (Tables
6, 7) ran on CVC-ClinicDB, ours on the procedural ``synth_polyp``: those comparisons are labelled so.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.utils.io import read_json

PAPER_STUDY_LABEL = "paper (CVC-ClinicDB)"


def as_markdown(lines: list[str]) -> str:
    """The verdict as a Markdown block: a bold heading and one bullet per line."""
    return "**Verdict** (generated from the results)\n\n" + "\n".join(f"- {line}" for line in lines)


def _paper(paper):
    """The paper module, or None (``paper=False``, or the module absent)."""
    if paper is False:
        return None
    if paper is not None:
        return paper
    try:
        from benchmark.reporting import paper as module
    except ImportError:
        return None
    return module


def _lookup(paper, *args, **kwargs):
    module = _paper(paper)
    if module is None:
        return None
    try:
        return module.lookup(*args, **kwargs)
    except (ValueError, KeyError):
        return None


def _p(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2g}"


def _interval(delta: float, low: float, high: float, scale: float = 100.0, digits: int = 1) -> str:
    return f"{scale * delta:+.{digits}f} [{scale * low:+.{digits}f}, {scale * high:+.{digits}f}]"


# --------------------------------------------------------------------------------------------------- Table 4
def inference_speeds(results_dir: str | Path, dataset: str, runs: list[str]) -> dict[str, float]:
    """run -> test-split inference samples/s (wall clock, mean over seeds) from ``inference.json``; absent runs left out."""
    from benchmark.reporting.tables import run_folder

    speeds = {}
    for run in runs:
        path = run_folder(results_dir, dataset, run) / "inference.json"
        if path.is_file():
            speeds[run] = float(np.mean(list(read_json(path)["test_images_per_second"].values())))
    return speeds


def table4_verdict(
    results_dir: str | Path, datasets: list[str], runs: list[str], *, reference: str = "diffaug", paper=None
) -> list[str]:
    """Per dataset: DiffAug's inference speed ratio to each method the paper states a ratio for, against the paper's
    ratio (:func:`benchmark.reporting.tables.paper_speed_ratios`), and whether the ratio is reproduced (within a
    factor of 1.25); then the synthesize stage's generated + validated samples/s (wall clock)."""
    from benchmark.reporting.tables import paper_speed_ratios, stage_throughput

    ratios = paper_speed_ratios(None if paper is None else ({} if paper is False else paper))
    lines = []
    for dataset in datasets:
        speeds = inference_speeds(results_dir, dataset, runs)
        if reference not in speeds:
            lines.append(f"{dataset}: no inference speed recorded for {reference}; no ratio to check.")
            continue
        parts, reproduced = [], []
        for run, claim in ratios.items():
            if run in speeds:
                ours = speeds[reference] / speeds[run]
                parts.append(f"{ours:.2f}× {run} (paper {claim:.1f}×)")
                reproduced.append(claim / 1.25 <= ours <= claim * 1.25)
        if not parts:
            lines.append(
                f"{dataset}: {reference} infers {speeds[reference]:.1f} samples/s (wall clock); none of the paper's compared methods was run."
            )
            continue
        word = (
            "all reproduced"
            if all(reproduced)
            else "none reproduced"
            if not any(reproduced)
            else f"{sum(reproduced)} of {len(reproduced)} reproduced"
        )
        lines.append(
            f"{dataset}: {reference} infers {speeds[reference]:.1f} samples/s (wall clock, test split), i.e. "
            + ", ".join(parts)
            + f" — the paper's speed ratios: {word} (within a factor of 1.25)."
        )
        summary_path = Path(results_dir) / dataset / "synthesize" / "summary.json"
        if summary_path.is_file():
            summary = read_json(summary_path)
            lines.append(
                f"{dataset}: the synthesize stage generated and validated {stage_throughput(summary):.1f} samples/s (wall clock), "
                f"accepting {100 * summary['acceptance_rate']:.1f} % of {summary['n_generated']}."
            )
    return lines


# --------------------------------------------------------------------------------------------------- Table 5
def table5_verdict(summaries: dict[str, dict], *, paper=None) -> list[str]:
    """Acceptance against the paper's, then per dataset the accepted − rejected FID with its CI
    (:func:`benchmark.reporting.tables.quality_contrasts`), said in words when it goes the wrong way, with n."""
    from benchmark.reporting.tables import FEW_SAMPLES, quality_contrasts

    lines = []
    accepted = _lookup(paper, "table5", "acceptance_rate", row="Acceptance Rate", column="Accepted")
    rates = [
        f"{100 * s['acceptance_rate']:.1f} % of {s['n_generated']} on {d}"
        for d, s in summaries.items()
        if s.get("acceptance_rate") is not None
    ]
    if rates:
        lines.append(
            "The gate accepted " + ", ".join(rates) + (f" (paper: {accepted:.1f} %)." if accepted is not None else ".")
        )
    contrasts = quality_contrasts(summaries)
    for dataset, frame in contrasts.groupby("dataset", sort=False):
        fid = frame[frame["metric"] == "FID"]
        if not len(fid):
            continue
        row = fid.iloc[0]
        excludes = row["ci_low"] > 0 or row["ci_high"] < 0
        n = int(row["n"])
        few = " — few samples" if n < FEW_SAMPLES else ""
        if row["wrong_way"]:
            reading = "the wrong way: accepted samples are further from the real lesions than rejected ones" + (
                "" if excludes else " (CI includes 0)"
            )
        else:
            reading = "accepted closer to the real lesions" + (
                " (CI excludes 0)" if excludes else ", but the CI includes 0: no difference shown"
            )
        lines.append(
            f"{dataset}: FID accepted {row['accepted']:.3g} vs rejected {row['rejected']:.3g} (n = {n} per set{few}), "
            f"accepted − rejected {row['delta']:+.3g} [{row['ci_low']:+.3g}, {row['ci_high']:+.3g}], p = {_p(row['p'])}: {reading}."
        )
        wrong = frame[
            (frame["metric"] != "FID") & frame["wrong_way"] & ((frame["ci_low"] > 0) | (frame["ci_high"] < 0))
        ]
        if len(wrong):
            lines.append(
                f"{dataset}: {', '.join(wrong['metric'])} goes the wrong way beyond its CI (accepted further from the real lesions)."
            )
    return lines[:5]


# --------------------------------------------------------------------------------------------------- Table 7
def table7_verdict(
    curve: pd.DataFrame, *, paper=None, reference_label: str = "standard augmentation only"
) -> list[str]:
    """From a Table 7 curve (:func:`benchmark.reporting.studies.volume_curve`: label, run, dice, delta, delta_ci_low/high,
    p_holm, n_units, unit): each DiffAug volume's Δ Dice vs standard augmentation at the unit with CI and Holm p, the
    paper's Δ for the same row (CVC-ClinicDB), and the volume with the best Dice."""
    lines = []
    module = _paper(paper)
    rows = module.PAPER_ROWS.get("table7", {}) if module is not None else {}
    reference = curve[curve["label"] == reference_label]
    paper_reference = (
        _lookup(paper, "table7", "dice", row=rows.get(reference["run"].iloc[0])) if len(reference) and rows else None
    )
    volumes = curve[curve["label"].str.startswith("DiffAug + ") & curve["label"].str.endswith("synthetic")]
    for _, row in volumes.iterrows():
        if pd.isna(row["delta_ci_low"]):
            continue
        n = "" if pd.isna(row["n_units"]) else f", n = {int(row['n_units'])} {row['unit']}s"
        shown = "a gain" if row["delta_ci_low"] > 0 else "a loss" if row["delta_ci_high"] < 0 else "no difference shown"
        text = (
            f"{row['label']}: Δ Dice vs standard augmentation {_interval(row['delta'], row['delta_ci_low'], row['delta_ci_high'])} pp, "
            f"p (Holm) = {_p(row['p_holm'])}{n}: {shown}"
        )
        published = _lookup(paper, "table7", "dice", row=rows.get(row["run"])) if rows else None
        if published is not None and paper_reference is not None:
            text += f"; {PAPER_STUDY_LABEL}: {published - paper_reference:+.1f} pp"
        lines.append(text + ".")
    if len(volumes):
        best = volumes.loc[volumes["dice"].idxmax()]
        lines.append(
            f"Highest mean Dice among the volumes: {best['label']} ({100 * best['dice']:.1f} %); ours on synth_polyp, the paper's on CVC-ClinicDB."
        )
    return lines[:5]


# --------------------------------------------------------------------------------------------------- Table 6
def table6_verdict(comparisons: pd.DataFrame, rows: dict[str, str], full: str, *, paper=None) -> list[str]:
    """Each ablation row's Δ Dice vs the full configuration from ``comparisons.csv`` (family ``table6``), with CI,
    Holm p, and the paper's Δ for the same row (CVC-ClinicDB)."""
    module = _paper(paper)
    names = module.PAPER_ROWS.get("table6", {}) if module is not None else {}
    paper_full = _lookup(paper, "table6", "dice", row=names.get(full)) if names else None
    lines = []
    family = comparisons[(comparisons["table"] == "table6") & (comparisons["run_b"] == full)].set_index("run_a")
    for label, run in rows.items():
        if run == full or run not in family.index:
            continue
        row = family.loc[run]
        shown = (
            "better than full"
            if row["ci_low"] > 0
            else "worse than full"
            if row["ci_high"] < 0
            else "no difference shown"
        )
        text = (
            f"{label}: Δ Dice vs full {_interval(row['delta'], row['ci_low'], row['ci_high'])} pp, p (Holm) = {_p(row['p_holm'])}, "
            f"n = {int(row['n_units'])} {row['unit']}s: {shown}"
        )
        published = _lookup(paper, "table6", "dice", row=names.get(run)) if names else None
        if published is not None and paper_full is not None:
            text += f"; {PAPER_STUDY_LABEL}: {published - paper_full:+.1f} pp"
        lines.append(text + ".")
    return lines[:5]


# --------------------------------------------------------------------------------------------------- generator
def generator_verdict(text_checks: dict[str, dict], train_records: dict[str, dict]) -> list[str]:
    """Per dataset: the loss from the first to the last 10 % of steps, and each text check read two-sided, marked not
    valid where its proxy does not separate real images (:func:`benchmark.reporting.tables.text_check_rows`)."""
    from benchmark.reporting.tables import text_check_rows

    lines = []
    checks = text_check_rows(text_checks) if text_checks else pd.DataFrame()
    for dataset in dict.fromkeys([*train_records, *text_checks]):
        parts = []
        record = train_records.get(dataset)
        if record and "first_loss" in record and "final_loss" in record:
            parts.append(
                f"generator loss {record['first_loss']:.3g} → {record['final_loss']:.3g} over {record.get('n_steps', '?')} steps"
            )
        for _, row in checks[checks["dataset"] == dataset].iterrows() if len(checks) else []:
            if not row["valid"]:
                parts.append(
                    f"'{row['contrast']}' check not valid (proxy AUC on real images {100 * row['auc']:.0f} % "
                    f"[{100 * row['auc_low']:.0f}, {100 * row['auc_high']:.0f}] includes 50 %)"
                )
            elif row["p_two_sided"] < 0.05:
                word = "follows the prompt" if row["direction"] == "follows" else "goes against the prompt"
                parts.append(
                    f"'{row['contrast']}' {word} ({100 * row['share']:.0f} % of {row['pairs']} pairs, two-sided p = {_p(row['p_two_sided'])})"
                )
            else:
                parts.append(
                    f"'{row['contrast']}' shows no effect of the text ({100 * row['share']:.0f} % of {row['pairs']} pairs, "
                    f"two-sided p = {_p(row['p_two_sided'])})"
                )
        if parts:
            lines.append(f"{dataset}: " + "; ".join(parts) + ".")
    return lines[:5]


# --------------------------------------------------------------------------------------------------- Table 1
def table1_verdict(table: pd.DataFrame, *, paper=None) -> list[str]:
    """From :func:`benchmark.reporting.tables.dataset_table`: per dataset its size, test split and lesions, beside the
    paper's Table 1 where the dataset is one the paper reports."""
    lines = []
    for dataset, row in table.iterrows():
        text = f"{dataset}: {row['images']} images ({row['train']} train / {row['val']} val / {row['test']} test), {row['lesions']} lesions"
        published = _lookup(paper, "table1", "n_train", dataset=dataset)
        if published is not None:
            text += f"; paper: {published:.0f} images"
        lines.append(text + ".")
    return lines[:5]

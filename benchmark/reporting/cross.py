"""Cross-dataset generalisation (beyond the paper): which pairs, the summary table and its verdict.

Models trained on dataset A (``train@A``) are scored on the test split of every other dataset B of
the same modality (``cross@A``, :mod:`benchmark.stages.cross`): Kvasir-SEG -> CVC-ClinicDB, CVC-ClinicDB
-> Kvasir-SEG, any polyp dataset -> a user's polyp ``folder`` dataset. A model never sees B: B is only
predicted. Synthetic data is often said to help most out of domain; the table says whether it does here.

Pairs: every ordered (A, B), A != B, both in ``cross.datasets`` (empty: ``prepare.datasets``), same
``modality`` in ``data/prepared/<name>/manifest.json`` (:func:`cross_pairs`). Comparisons: each run of
``cross.runs`` trained with synthetic data (``<method>+diffaug``, DiffAug's bare ``diffaug``, a control)
minus the same method's real-only run (``<method>``, ``diffaug+real``) where both are listed
(:func:`comparison_pairs`), at B's independent unit (:mod:`benchmark.stats.units`) with
:func:`benchmark.stats.comparisons.compare`; Holm over the out-of-domain comparisons of one training
dataset. The in-domain rows (A -> A, from ``results/A/runs``) are the reference: their difference is
the row of ``results/A/comparisons.csv`` for the same pair where ``compare@A`` states it (one p per
comparison), else computed the same way (``p_holm`` = ``p``, a family of one).

``results/<A>/cross/summary.csv`` holds one row per (train, test, run): :data:`SUMMARY_COLUMNS`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

FOLDER = "cross"
SUMMARY = "summary.csv"
STATUS = "status.json"
#: bootstrap replicates of every CI (as ``compare@<dataset>``)
N_RESAMPLES = 10_000
#: the family name of the out-of-domain comparisons (the ``table`` of :func:`benchmark.stats.comparisons.compare`)
FAMILY = "cross"
#: the comparison columns of a summary row (those of :data:`benchmark.stats.comparisons.COLUMNS` it keeps)
DIFFERENCE_COLUMNS = ("delta", "ci_low", "ci_high", "seed_sd", "p", "p_holm", "min_attainable_p", "mde_80")
#: one row per (train, test, run); the difference columns are filled on the rows of runs with synthetic data
SUMMARY_COLUMNS = (
    "train",
    "test",
    "domain",  # "in" (test == train, the reference) or "out"
    "run",
    "n_seeds",
    "dice_mean",  # mean over seeds of the per-seed mean Dice (fractions)
    "dice_sd",  # sd over seeds (ddof 1)
    "unit",
    "n_units",
    "versus",  # the real-only run the difference is taken against
    *DIFFERENCE_COLUMNS,
)
NOT_RUN = "needs two prepared datasets of one modality in {key} (e.g. kvasir_seg and cvc_clinicdb, or a folder dataset)"


# --- which pairs --------------------------------------------------------------------------------------------
def participants(sections: dict) -> list[str]:
    """The datasets taking part, as training and test sets: ``cross.datasets``, or all of ``prepare.datasets``."""
    return list(sections["cross"].datasets) or list(sections["prepare"].datasets)


def read_modalities(datasets, prepared_dir: str | Path = "data/prepared") -> dict[str, str]:
    """dataset -> ``modality`` of its prepared ``manifest.json`` (the order of ``datasets``).

    Raises:
        FileNotFoundError: a dataset is not prepared (names the file and the stage to run).
    """
    from benchmark.utils.io import read_json

    out = {}
    for name in datasets:
        path = Path(prepared_dir) / name / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; run `dvc repro prepare@{name}` first")
        out[name] = str(read_json(path)["modality"])
    return out


def cross_pairs(modalities: dict[str, str]) -> list[tuple[str, str]]:
    """Every ordered (train, test) of two different datasets of the same modality, in listing order."""
    return [
        (train, test)
        for train in modalities
        for test in modalities
        if train != test and modalities[train] == modalities[test]
    ]


def targets_of(train: str, modalities: dict[str, str]) -> list[str]:
    """The test datasets of the models trained on ``train`` (empty when it has no partner, or takes no part)."""
    return [test for first, test in cross_pairs(modalities) if first == train]


def no_pairs_reason(modalities: dict[str, str], key: str = "prepare.datasets") -> str | None:
    """Why no cross-dataset pair exists (:data:`NOT_RUN` and what ``key`` holds), or None when one does."""
    if cross_pairs(modalities):
        return None
    held = ", ".join(f"{name} ({modality})" for name, modality in modalities.items()) or "nothing"
    return f"{NOT_RUN.format(key=key)}; {key} holds {held}"


def not_run_reason(params_path: str | Path = "params.yaml", prepared_dir: str | Path = "data/prepared") -> str | None:
    """Why the cross-dataset report cannot show anything with these params (no pair), or None."""
    from benchmark.config import load_section

    cross, prepare = load_section("cross", params_path), load_section("prepare", params_path)
    key = "cross.datasets" if cross.datasets else "prepare.datasets"
    datasets = list(cross.datasets) or list(prepare.datasets)
    return no_pairs_reason(read_modalities(datasets, prepared_dir), key)


def trained_runs(train: str, sections: dict) -> list[str]:
    """The runs ``train@<train>`` trains: ``train.methods``, plus ``ablation.runs`` on ``ablation.datasets``."""
    runs = list(sections["train"].methods)
    ablation = sections["ablation"]
    if train in ablation.datasets:
        runs += [run for run in ablation.runs if run not in runs]
    return runs


def comparison_pairs(runs) -> list[tuple[str, str]]:
    """(run with synthetic data, the same method's real-only run) for every such run of ``runs`` whose
    partner is also listed: ``unet+diffaug`` vs ``unet``, ``diffaug`` vs ``diffaug+real``."""
    from benchmark.methods.runs import parse_run, parse_synthetic, run_name

    runs = list(runs)
    pairs = []
    for run in runs:
        method, data = parse_run(run)
        real = run_name(method, "real")
        if parse_synthetic(data) is not None and real in runs:
            pairs.append((run, real))
    return pairs


# --- the summary (written by cross@<dataset>) ------------------------------------------------------------------
def run_rows(per_image: pd.DataFrame, train: str, test: str, units, runs) -> list[dict]:
    """One summary row per run of ``runs`` present in ``per_image`` (rows ``method, seed_index, image_id, dice``)."""
    from benchmark.stats.summary import mean_std

    rows = []
    for run in runs:
        own = per_image[per_image["method"] == run]
        if own.empty:
            continue
        per_seed = own.groupby("seed_index")["dice"].mean()
        mean, sd = mean_std(per_seed.to_numpy())
        rows.append(
            {
                "train": train,
                "test": test,
                "domain": "in" if test == train else "out",
                "run": run,
                "n_seeds": int(per_seed.size),
                "dice_mean": mean,
                "dice_sd": sd,
                "unit": units.name,
                "n_units": len(set(units.labels(own["image_id"].astype(str)))),
            }
        )
    return rows


def summarise(
    train: str,
    frames: dict[str, pd.DataFrame],
    units: dict,
    runs,
    *,
    in_domain: pd.DataFrame | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> pd.DataFrame:
    """The summary of the models trained on ``train``: :data:`SUMMARY_COLUMNS`, in-domain rows first.

    Args:
        train: the training dataset A.
        frames: test dataset -> per-image rows of every run (``method`` = run, ``seed_index``, ``image_id``,
            ``dice``): ``frames[train]`` is the in-domain reference (``results/A/runs``), the others the
            cross-dataset scores.
        units: test dataset -> its :class:`~benchmark.stats.units.Units`.
        runs: ``cross.runs`` (row order; comparisons from :func:`comparison_pairs`).
        in_domain: ``results/A/comparisons.csv``: the in-domain difference of a pair is its row there.
        n_resamples, seed: bootstrap settings (out-of-domain comparison k uses ``seed + k``).
    """
    from benchmark.stats.comparisons import compare, finish_family

    pairs = comparison_pairs(runs)
    tests = [train, *[test for test in frames if test != train]] if train in frames else list(frames)
    rows: list[dict] = []
    differences: dict[tuple[str, str], dict] = {}
    outside: list[tuple[str, dict]] = []
    index = 0
    for test in tests:
        frame = frames[test]
        rows += run_rows(frame, train, test, units[test], runs)
        present = set(frame["method"])
        for run_a, run_b in pairs:
            if not {run_a, run_b} <= present:
                continue
            if test == train:
                differences[(test, run_a)] = _in_domain_difference(frame, run_a, run_b, units[test], in_domain)
                continue
            record = compare(
                frame,
                run_a,
                run_b,
                units[test],
                metric="dice",
                table=FAMILY,
                n_resamples=n_resamples,
                seed=seed + index,
            )
            index += 1
            outside.append((test, record))
    if outside:  # one Holm family: every out-of-domain comparison of the models trained on ``train``
        family = finish_family([record for _, record in outside])
        for (test, _), record in zip(outside, family.to_dict("records")):
            differences[(test, record["run_a"])] = record
    for row in rows:
        record = differences.get((row["test"], row["run"]))
        row["versus"] = record["run_b"] if record else None
        for column in DIFFERENCE_COLUMNS:
            row[column] = float(record[column]) if record else math.nan
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _in_domain_difference(frame: pd.DataFrame, run_a: str, run_b: str, units, comparisons: pd.DataFrame | None) -> dict:
    """The in-domain reference: the pair's row of ``comparisons.csv`` (dice), else :func:`compare` with ``p_holm = p``."""
    from benchmark.stats.comparisons import compare

    if comparisons is not None and len(comparisons):
        rows = comparisons[
            (comparisons["run_a"] == run_a) & (comparisons["run_b"] == run_b) & (comparisons["metric"] == "dice")
        ]
        if len(rows):
            return rows.iloc[0].to_dict()
    record = compare(frame, run_a, run_b, units, metric="dice", table="in-domain", n_resamples=N_RESAMPLES)
    return {**record, "p_holm": record["p"]}


# --- the report --------------------------------------------------------------------------------------------------
def shown_trains(params_path: str | Path = "params.yaml", datasets=()) -> list[str]:
    """The training datasets a report shows: ``datasets``, else ``cross.datasets``, else ``prepare.datasets``."""
    from benchmark.config import load_section

    if datasets:
        return list(datasets)
    cross, prepare = load_section("cross", params_path), load_section("prepare", params_path)
    return list(cross.datasets) or list(prepare.datasets)


def load_summaries(results_dir: str | Path, trains) -> pd.DataFrame:
    """Every ``results/<train>/cross/summary.csv`` of ``trains``, concatenated (empty ones included).

    Raises:
        FileNotFoundError: a training dataset's summary is missing (names ``cross@<dataset>``).
    """
    frames = []
    for train in trains:
        path = Path(results_dir) / train / FOLDER / SUMMARY
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; run `dvc repro cross@{train}`")
        frames.append(pd.read_csv(path, dtype={"train": str, "test": str, "run": str, "versus": str}))
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SUMMARY_COLUMNS))


def _points(row, digits: int = 1) -> str:
    """ "+1.2 pp [−0.3, +2.6]" from a row's ``delta``, ``ci_low``, ``ci_high`` (fractions)."""
    scale = 100.0
    return (
        f"{scale * row['delta'] + 0.0:+.{digits}f} pp "
        f"[{scale * row['ci_low'] + 0.0:+.{digits}f}, {scale * row['ci_high'] + 0.0:+.{digits}f}]"
    )


def _units(row) -> str:
    n = int(row["n_units"])
    return f"n = {n} {row['unit']}{'' if n == 1 else 's'}"


def _evidence(row) -> str:
    """ "n = 7 images, p (Holm) = 0.031", or "underpowered (n = 3 sequences)" (which names n itself)."""
    from benchmark.reporting.claims import p_phrase
    from benchmark.stats.comparisons import underpowered

    return p_phrase(row) if underpowered(int(row["n_units"])) else f"{_units(row)}, {p_phrase(row)}"


def _has_difference(row) -> bool:
    return isinstance(row.get("versus"), str) and bool(row["versus"]) and np.isfinite(float(row["delta"]))


def cross_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The report's table: one row per (trained on, tested on, run); Dice in %, mean ± sd over seeds; the
    difference from the real-only run in Dice points with its 95 % CI over units, p (Holm; "underpowered
    (n = …)" where the units cannot reach p < 0.05) and the minimal detectable difference at 80 % power."""
    from benchmark.methods.runs import run_display_name
    from benchmark.stats.comparisons import p_text

    rows = []
    for _, row in summary.iterrows():
        difference = _has_difference(row)
        rows.append(
            {
                "trained on": row["train"],
                "tested on": f"{row['test']} ({'in' if row['domain'] == 'in' else 'out of'} domain)",
                "run": run_display_name(row["run"]),
                "seeds": int(row["n_seeds"]),
                "Dice % (mean ± sd over seeds)": f"{100 * row['dice_mean']:.1f} ± {100 * row['dice_sd']:.1f}",
                "units": _units(row).removeprefix("n = "),
                "Δ Dice vs real-only, pp [95 % CI]": f"{_points(row)} vs {run_display_name(row['versus'])}"
                if difference
                else "–",
                "p (Holm)": p_text(row) if difference else "–",
                "MDE (80 % power), pp": f"{100 * row['mde_80']:.1f}"
                if difference and np.isfinite(float(row["mde_80"]))
                else "–",
            }
        )
    return pd.DataFrame(rows)


def _label(run: str) -> tuple[str, str]:
    """(the method's display name, "+DiffAug" / "+copypaste" …) of a run with synthetic data."""
    from benchmark.methods import get_method
    from benchmark.methods.runs import parse_run, parse_synthetic

    method, data = parse_run(run)
    source = parse_synthetic(data).source
    return get_method(method).display_name, "+DiffAug" if source == "diffaug" else f"+{source}"


def _shown(row) -> str:
    from benchmark.reporting.verdicts import significant

    if not significant(row):
        return "no difference shown"
    return "a gain" if row["delta"] > 0 else "a loss"


def verdict(summary: pd.DataFrame) -> list[str]:
    """The report's opening lines, generated from the summary: per comparison, "+DiffAug changes out-of-domain
    Dice by X [CI] on B (n units); in domain by Y [CI]", then whether synthetic data helps most out of domain here."""
    from benchmark.reporting.verdicts import significant

    if summary.empty:
        return ["No cross-dataset pair was evaluated: " + NOT_RUN.format(key="prepare.datasets") + "."]
    compared = summary[[_has_difference(row) for _, row in summary.iterrows()]]
    outside = compared[compared["domain"] == "out"]
    if outside.empty:
        return [
            "Models were scored out of domain, but no run with synthetic data had its real-only partner in `cross.runs` "
            "on the same training dataset: no difference to report."
        ]
    lines, supported = [], []
    for _, row in outside.iterrows():
        method, added = _label(row["run"])
        reference = compared[
            (compared["domain"] == "in") & (compared["train"] == row["train"]) & (compared["run"] == row["run"])
        ]
        text = (
            f"{method} trained on {row['train']}: {added} changes out-of-domain Dice on {row['test']} by {_points(row)} "
            f"({_evidence(row)}): {_shown(row)}"
        )
        if len(reference):
            inside = reference.iloc[0]
            text += f"; in domain ({row['train']}) by {_points(inside)} ({_evidence(inside)}): {_shown(inside)}"
            if significant(row) and row["delta"] > 0 and row["delta"] > inside["delta"]:
                supported.append(f"{row['train']} → {row['test']}")
        lines.append(text + ".")
    if supported:
        lines.append(
            "Synthetic data helps more out of domain than in domain here for "
            + ", ".join(supported)
            + " (a significant out-of-domain gain larger than the in-domain difference; the two are measured on "
            "different test sets, so their contrast itself is not tested)."
        )
    else:
        lines.append(
            "Synthetic data does not help most out of domain here: no out-of-domain comparison shows a significant "
            "gain larger than the in-domain difference."
        )
    return lines

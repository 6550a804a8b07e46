"""Every difference a report states, computed once at the independent unit: ``comparisons.csv``.

``compare@<dataset>`` (:mod:`benchmark.stages.compare`) writes ``results/<dataset>/comparisons.csv``
(columns :data:`benchmark.stats.comparisons.COLUMNS`) and ``mixed_effects.json``; the notebooks only
read them (:func:`load`, :func:`lookup`). Families (the ``table`` column; Holm runs within one):

- ``table2``: each method of ``train.methods`` − the best *other* method, "best" by mean
  validation Dice over seeds (``inference.json``: ``selection.<seed>.validation_dice``), never test;
- ``table3``: lesion-level sensitivity (per image: share of its lesions detected) of each method −
  U-Net, and DiffAug − SDSeg (the paper's claim), over all lesions (``metric`` =
  ``lesion_sensitivity``) and within each lesion stratum the dataset labels (small polyps, flat
  lesions, early glaucoma: ``metric`` = ``lesion_sensitivity [<stratum>]``, :func:`lesion_metric`),
  one Holm family for the whole table;
- ``augmentation``: each segmenter's DiffAug-data run − its standard-augmentation run;
- ``table6``: each ablation of DiffAug's segmenter − the full configuration;
- ``table7``: each synthetic volume (and no augmentation) − standard augmentation only;
- ``theta``: each θ's downstream run − the default θ's.

Families whose runs the params do not train are left out. A pair that sits in several families
(U-Net + DiffAug − U-Net is in ``table2``, ``augmentation`` and ``table7``) is one comparison: every
row of it carries the first family's estimate, CI and p, and the largest of its Holm-adjusted
p-values (:func:`one_p_per_comparison`), so every report prints the same p for it. Raising a p
never adds a rejection, so each family's error control holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.stats.comparisons import COLUMNS, compare, finish_family, mixed_effects
from benchmark.stats.units import Units
from benchmark.utils.io import read_json

FILENAME = "comparisons.csv"
MIXED_FILENAME = "mixed_effects.json"
LESION_METRIC = "lesion_sensitivity"
ALL_LESIONS = "all"
STRATUM_SEED_OFFSET = 1_000_000  # bootstrap seeds of the per-stratum Table 3 rows


def lesion_metric(stratum: str | None = None) -> str:
    """The ``metric`` of a Table 3 row: ``lesion_sensitivity`` over all lesions, ``lesion_sensitivity [flat]`` within a stratum."""
    return LESION_METRIC if stratum in (None, ALL_LESIONS) else f"{LESION_METRIC} [{stratum}]"


def stratum_of(metric: str) -> str:
    """Inverse of :func:`lesion_metric`: the stratum a Table 3 row's ``metric`` names (``"all"`` for all lesions)."""
    if metric == LESION_METRIC:
        return ALL_LESIONS
    if not (metric.startswith(f"{LESION_METRIC} [") and metric.endswith("]")):
        raise ValueError(
            f"{metric!r} is not a Table 3 metric (expected {LESION_METRIC!r} or '{LESION_METRIC} [<stratum>]')"
        )
    return metric[len(LESION_METRIC) + 2 : -1]


def lesion_strata(prepared) -> dict[str, set[str]]:
    """stratum name -> image ids of a :class:`~benchmark.data.prepared.PreparedDataset` (Table 1 / 3's strata)."""
    from benchmark.reporting.tables import _stratum_masks

    attributes = prepared.attributes
    ids = attributes["id"].astype(str).to_numpy()
    return {
        name: set(ids[mask.to_numpy()])
        for name, mask in _stratum_masks(attributes, prepared.manifest["modality"]).items()
    }


def validation_dice(results_dir: str | Path, dataset: str, run: str) -> float:
    """Mean over seeds of a run's validation Dice at its chosen inference setting (``inference.json``)."""
    from benchmark.reporting.tables import run_folder

    path = run_folder(results_dir, dataset, run) / "inference.json"
    values = [entry.get("validation_dice") for entry in read_json(path).get("selection", {}).values()]
    if not values or any(value is None for value in values):
        raise ValueError(
            f"{path} records no validation Dice (selection.<seed>.validation_dice); rerun `dvc repro train@{dataset}`"
        )
    return float(np.mean(values))


def table2_opponents(results_dir: str | Path, dataset: str, methods: list[str]) -> dict[str, str]:
    """method -> the best other method of ``methods`` by mean validation Dice (ties: listed order)."""
    scores = {method: validation_dice(results_dir, dataset, method) for method in methods}
    ranking = sorted(methods, key=lambda method: -scores[method])
    return (
        {method: next(other for other in ranking if other != method) for method in methods} if len(methods) > 1 else {}
    )


#: the columns that name one comparison (the same test on the same data, whichever table lists it)
COMPARISON_KEY = ("run_a", "run_b", "metric", "unit")
#: what a repeated comparison copies from its first row (the estimate and its test)
SHARED_COLUMNS = ("n_units", "n_seeds", "delta", "ci_low", "ci_high", "seed_sd", "p", "min_attainable_p", "mde_80")


def one_p_per_comparison(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Make the rows of a comparison listed in several families agree: the first row's estimate, CI
    and p (:data:`SHARED_COLUMNS`), and the largest ``p_holm`` of them all. Row order and families
    are kept; a comparison listed once is unchanged."""
    if comparisons.empty:
        return comparisons
    out = comparisons.copy()
    shared = [column for column in SHARED_COLUMNS if column in out.columns]
    for _, group in out.groupby(list(COMPARISON_KEY), sort=False, dropna=False):
        if len(group) < 2:
            continue
        first = group.index[0]
        out.loc[group.index, shared] = out.loc[[first] * len(group), shared].to_numpy()
        out.loc[group.index, "p_holm"] = group["p_holm"].max()
    return out


def families(dataset: str, sections: dict) -> dict[str, list[tuple[str, str]]]:
    """The run pairs (A, B) of every family but ``table2`` that the params train on ``dataset``."""
    from benchmark.methods.runs import augmentation_runs, parse_run
    from benchmark.reporting import studies

    train, ablation, synthesize, quality = (
        sections["train"],
        sections["ablation"],
        sections["synthesize"],
        sections["quality"],
    )
    available = set(train.methods) | (set(ablation.runs) if dataset in ablation.datasets else set())
    have = lambda *runs: all(run in available for run in runs)  # noqa: E731
    out: dict[str, list[tuple[str, str]]] = {}
    methods = list(train.methods)
    reference = "unet" if "unet" in methods else None
    lesion_pairs = [(method, reference) for method in methods if reference and method != reference]
    if have("diffaug", "sdseg"):
        lesion_pairs.append(("diffaug", "sdseg"))
    out["table3"] = lesion_pairs
    if dataset not in ablation.datasets:
        return {name: pairs for name, pairs in out.items() if pairs}
    segmenters = list(dict.fromkeys(method for method, _ in map(parse_run, methods)))
    axes = [augmentation_runs(method, train.config_of(method).augmentation) for method in segmenters]
    out["augmentation"] = [
        (axis["DiffAug"], axis["standard"]) for axis in axes if have(axis["DiffAug"], axis["standard"])
    ]
    rows = studies.table6_rows("diffaug")
    out["table6"] = [
        (run, rows["DiffAug (full)"])
        for label, run in rows.items()
        if label != "DiffAug (full)" and have(run, rows["DiffAug (full)"])
    ]
    if "unet" in methods:
        rows = studies.table7_runs("unet", train.config_of("unet").augmentation, synthesize.volumes, synthesize.volume)
        standard = rows["standard augmentation only"]
        rows.update(
            studies.table7_control_runs("unet", synthesize.volumes, synthesize.volume, available)
        )  # one Holm family: the whole table
        out["table7"] = [(run, standard) for run in rows.values() if run != standard and have(run, standard)]
        rows = studies.theta_runs("unet", quality.thetas, synthesize.theta)
        default = studies.theta_runs("unet", [synthesize.theta], synthesize.theta)
        default_run = next(iter(default.values()))
        out["theta"] = [(run, default_run) for run in rows.values() if run != default_run and have(run, default_run)]
    return {name: pairs for name, pairs in out.items() if pairs}


def lesion_scores(lesions: pd.DataFrame) -> pd.DataFrame:
    """Per seed × image: the share of its lesions detected (column :data:`LESION_METRIC`), images without lesions dropped."""
    hit = lesions["detected"].astype(str).str.lower().eq("true").astype(float)
    frame = lesions.assign(**{LESION_METRIC: hit}).astype({"image_id": str})
    return frame.groupby(["method", "seed_index", "image_id"], as_index=False)[LESION_METRIC].mean()


def build(
    results_dir: str | Path,
    dataset: str,
    sections: dict,
    units: Units,
    *,
    strata: dict[str, set[str]] | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """All families of ``dataset``: the comparisons frame and Table 2's mixed-effects sensitivity analysis.

    Args:
        strata: stratum name -> image ids (:func:`lesion_strata`); Table 3's pairs are also compared
            within each stratum that holds test lesions (none: all lesions only).

    Returns:
        ``(comparisons, mixed)``: one row per claim (:data:`COLUMNS`), and the mixed model of
        DiffAug − its Table 2 opponent (``{}`` when Table 2 has no DiffAug row).
    """
    from benchmark.reporting.tables import load_lesions, load_per_image

    methods = list(sections["train"].methods)
    pairs = families(dataset, sections)
    opponents = table2_opponents(results_dir, dataset, methods)
    runs = list(dict.fromkeys([*methods, *(run for family in pairs.values() for pair in family for run in pair)]))
    per_image = load_per_image(results_dir, [dataset], runs)
    frames = []
    index = 0
    for table, family in [("table2", list(opponents.items())), *pairs.items()]:
        if table == "table3":
            scores, metric = (
                lesion_scores(load_lesions(results_dir, [dataset], sorted({run for pair in family for run in pair}))),
                LESION_METRIC,
            )
        else:
            scores, metric = per_image, "dice"
        records = []
        for run_a, run_b in family:
            records.append(
                compare(
                    scores, run_a, run_b, units, metric=metric, table=table, n_resamples=n_resamples, seed=seed + index
                )
            )
            index += 1
        if table == "table3":
            stratum_seed = (
                seed + STRATUM_SEED_OFFSET
            )  # own seeds: adding strata leaves every other row's bootstrap unchanged
            for stratum, members in (strata or {}).items():
                subset = scores[scores["image_id"].astype(str).isin(members)]
                if subset.empty:
                    continue
                for run_a, run_b in family:
                    record = compare(
                        subset,
                        run_a,
                        run_b,
                        units,
                        metric=metric,
                        table=table,
                        n_resamples=n_resamples,
                        seed=stratum_seed,
                    )
                    records.append({**record, "metric": lesion_metric(stratum)})
                    stratum_seed += 1
        frames.append(finish_family(records))
    comparisons = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    comparisons = one_p_per_comparison(comparisons)
    mixed = {}
    if "diffaug" in opponents:
        mixed = mixed_effects(per_image, "diffaug", opponents["diffaug"], units)
        row = comparisons[(comparisons["table"] == "table2") & (comparisons["run_a"] == "diffaug")].iloc[0]
        mixed["unit_test"] = {
            "delta": float(row["delta"]),
            "ci_low": float(row["ci_low"]),
            "ci_high": float(row["ci_high"]),
            "p": float(row["p"]),
            "p_holm": float(row["p_holm"]),
            "n_units": int(row["n_units"]),
        }
        mixed["agree"] = agreement(mixed, row)
    return comparisons, mixed


def agreement(mixed: dict, row: pd.Series, alpha: float = 0.05) -> str:
    """One sentence: do the unit-level test (its Holm p, the one p the reports print) and the mixed model
    (its 95 % CI excluding 0) reach the same verdict? States no p of its own: one p per comparison."""
    from benchmark.stats.comparisons import underpowered

    unit_verdict = (
        "underpowered"
        if underpowered(int(row["n_units"]))
        else ("significant" if row["p_holm"] < alpha else "not significant")
    )
    mixed_verdict = "significant" if (mixed["ci_low"] > 0 or mixed["ci_high"] < 0) else "not significant"
    same_sign = np.sign(mixed["delta"]) == np.sign(row["delta"])
    if unit_verdict == mixed_verdict and same_sign:
        return f"agree: both {unit_verdict} at α = {alpha}, same sign"
    return (
        f"disagree: unit-level test {unit_verdict} (p (Holm) = {row['p_holm']:.2g}), mixed model {mixed_verdict} (its 95 % CI "
        + ("excludes" if mixed_verdict == "significant" else "includes")
        + " 0)"
        + ("" if same_sign else ", opposite signs")
        + "; the unit-level test is the primary analysis"
    )


def p_phrase(row) -> str:
    """ "p (Holm) = 0.0096", or "underpowered (n = 5 sequences)" where the units cannot reach p < 0.05 (no p then)."""
    from benchmark.stats.comparisons import p_text, underpowered

    return p_text(row) if underpowered(int(row["n_units"])) else f"p (Holm) = {p_text(row)}"


def mixed_effects_sentence(
    dataset: str, mixed: dict, display_names: dict[str, str] | None = None, row: pd.Series | None = None
) -> str:
    """Markdown: the mixed model's difference (in Dice points, 95 % CI) beside the unit-level test's, and whether they agree.

    One p per comparison: the only p printed is the unit-level test's Holm p from ``comparisons.csv``
    (``row``, the ``table2`` row of the same pair; else ``mixed["unit_test"]["p_holm"]``); the mixed
    model is summarised by its estimate and CI, and the agreement is recomputed from ``row`` when given.
    """
    names = display_names or {}
    unit, test = mixed["unit"], mixed["unit_test"]
    if mixed["n_units"] == mixed["n_images"]:  # one image per unit: the random intercept pairs the two runs' images
        size = f"{mixed['n_images']} images, one per unit: a paired model"
    else:
        size = f"{mixed['n_units']} {unit}s, {mixed['n_images']} images"
    if row is not None:
        delta, p_cell, agree = float(row["delta"]), p_phrase(row), agreement(mixed, row)
    else:
        delta, agree = test["delta"], mixed["agree"]
        n_units = int(test.get("n_units", mixed["n_units"]))
        p_cell = p_phrase({"n_units": n_units, "unit": unit, "p_holm": test.get("p_holm", float("nan"))})
    return (
        f"**{dataset}, sensitivity analysis** ({names.get(mixed['run_a'], mixed['run_a'])} − {names.get(mixed['run_b'], mixed['run_b'])}): "
        f"linear mixed model (random intercept per {unit}, {size}) gives "
        f"{100 * mixed['delta']:+.2f} pp [{100 * mixed['ci_low']:+.2f}, {100 * mixed['ci_high']:+.2f}] (95 % Wald CI)"
        f"{'' if mixed['converged'] else ' (did not converge)'}; the unit-level test (the table above) gives {100 * delta:+.2f} pp, "
        f"{p_cell}. Verdicts {agree}."
    )


def load(results_dir: str | Path, dataset: str) -> pd.DataFrame:
    """``results/<dataset>/comparisons.csv`` (written by ``compare@<dataset>``)."""
    path = Path(results_dir) / dataset / FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `dvc repro compare@{dataset}`")
    return pd.read_csv(path)


def row_of(comparisons: pd.DataFrame, table: str, run_a: str, run_b: str) -> pd.Series:
    """The one row of ``table`` for ``run_a`` − ``run_b`` (all lesions for Table 3); a missing pair is an error naming the fix."""
    frame = comparisons[comparisons["table"] == table]
    if table == "table3":
        frame = frame[frame["metric"] == LESION_METRIC]
    return lookup(frame, table, [(run_a, run_b)]).reset_index().iloc[0]


def lookup(comparisons: pd.DataFrame, table: str, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """The rows of ``table`` for ``pairs`` (A, B), indexed by ``run_a``; a missing pair is an error naming the fix."""
    family = comparisons[comparisons["table"] == table].set_index(["run_a", "run_b"])
    missing = [pair for pair in pairs if pair not in family.index]
    if missing:
        raise KeyError(
            f"comparisons.csv has no '{table}' row for {missing[0][0]} − {missing[0][1]}; rerun `dvc repro compare@<dataset>`"
        )
    return family.loc[pairs].reset_index().set_index("run_a")

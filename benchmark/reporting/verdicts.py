"""The verdicts that open the Table 2 and Table 3 reports, generated from ``comparisons.csv``, never typed.

Each verdict names, per dataset, the best method, whether that is significant at the independent unit
(the Holm p of the row of ``results/<dataset>/comparisons.csv`` for that table and run pair: the one p
the reports print for it, :func:`benchmark.reporting.claims.p_phrase`), over how many units, and how it
compares with the paper's published figure (:mod:`benchmark.reporting.paper`) where one is comparable.

The procedural datasets are stand-ins: ``synth_polyp`` has CVC-ClinicDB's layout and ``synth_fundus``
REFUGE's, but neither is that data, so the paper's figure is set beside ours with a plain label
("paper (CVC-ClinicDB)") for orientation, never as a like-for-like comparison (:data:`STAND_INS`).
"""

from __future__ import annotations

import pandas as pd

from benchmark.reporting.claims import p_phrase
from benchmark.stats.comparisons import ALPHA, underpowered

#: our procedural dataset -> (the paper's dataset key, its name) it stands in for (layout only, not the data)
STAND_INS = {"synth_polyp": ("cvc_clinicdb", "CVC-ClinicDB"), "synth_fundus": ("refuge2", "REFUGE2")}
#: our dataset -> (the paper's dataset key in :mod:`benchmark.reporting.paper`, its printed name)
PAPER_DATASETS = {
    **STAND_INS,
    "cvc_clinicdb": ("cvc_clinicdb", "CVC-ClinicDB"),
    "kvasir_seg": ("kvasir_seg", "Kvasir-SEG"),
    "refuge": ("refuge2", "REFUGE2"),
    "refuge2": ("refuge2", "REFUGE2"),
}
#: our Table 3 stratum -> the paper's Table 3 group (same definition: diameter in mm, vCDR band)
PAPER_STRATA = {
    "small (<5 mm)": "Small Polyps (<5mm)",
    "flat": "Flat Lesions",
    "early glaucoma (vCDR 0.5-0.6)": "Early Glaucoma (CDR 0.5-0.6)",
}


def _paper_module(paper):
    """``paper`` itself (anything with ``lookup`` and ``PAPER_ROWS``), else :mod:`benchmark.reporting.paper` when it
    exists; ``False`` or a missing module: None (no paper figures)."""
    if paper is False:
        return None
    if paper is not None:
        return paper
    try:
        from benchmark.reporting import paper as module
    except ImportError:
        return None
    return module


def paper_label(dataset: str) -> str:
    """The column / sentence label of the paper's figure beside ``dataset``: "paper (CVC-ClinicDB)"."""
    return f"paper ({PAPER_DATASETS[dataset][1]})"


def paper_dice(datasets: list[str], runs: list[str], paper=None) -> dict[str, tuple[str, dict[str, float]]]:
    """dataset -> (label, {run: the paper's Table 2 Dice in %}) for :func:`table2_verdict` and
    :func:`~benchmark.reporting.tables.segmentation_table`; datasets the paper has no counterpart for are absent.

    Args:
        paper: a module or object with ``lookup(table, metric, row=, dataset=)`` and ``PAPER_ROWS``; default
            :mod:`benchmark.reporting.paper` when it exists; ``False``: none.
    """
    module = _paper_module(paper)
    if module is None:
        return {}
    rows = getattr(module, "PAPER_ROWS", {}).get("table2", {})
    out = {}
    for dataset in datasets:
        if dataset not in PAPER_DATASETS:
            continue
        key = PAPER_DATASETS[dataset][0]
        values = {run: module.lookup("table2", "dice", row=rows[run], dataset=key) for run in runs if run in rows}
        out[dataset] = (paper_label(dataset), {run: value for run, value in values.items() if value is not None})
    return out


def paper_lesion_fnr(strata: list[str], runs: list[str], paper=None) -> dict[str, tuple[str, dict[str, float]]]:
    """stratum -> ("paper Table 3", {run: the paper's lesion FNR in %}) for the strata the paper reports
    (:data:`PAPER_STRATA`); ``paper`` as in :func:`paper_dice`."""
    module = _paper_module(paper)
    if module is None:
        return {}
    rows = getattr(module, "PAPER_ROWS", {}).get("table3", {})
    out = {}
    for stratum in strata:
        if stratum not in PAPER_STRATA:
            continue
        values = {
            run: module.lookup("table3", "fnr", row=rows[run], group=PAPER_STRATA[stratum])
            for run in runs
            if run in rows
        }
        out[stratum] = ("paper Table 3", {run: value for run, value in values.items() if value is not None})
    return out


def significant(row, alpha: float = ALPHA) -> bool:
    """A comparison row is significant: its units can reach p < ``alpha`` and its Holm p is below it."""
    return not underpowered(int(row["n_units"]), alpha) and float(row["p_holm"]) < alpha


def _units(row) -> str:
    n = int(row["n_units"])
    return f"{n} {row['unit']}{'' if n == 1 else 's'}"


def _test(row, scale: float = 100.0, sign: float = 1.0, what: str = "pp") -> str:
    """ "+1.98 pp [−0.29, +4.14], p (Holm) = 0.42, 100 sequences" (``sign`` −1 turns Δ sensitivity into Δ FNR)."""
    low, high = sorted((sign * scale * row["ci_low"] + 0.0, sign * scale * row["ci_high"] + 0.0))  # + 0.0: no "-0.00"
    return f"{sign * scale * row['delta'] + 0.0:+.2f} {what} [{low:+.2f}, {high:+.2f}], {p_phrase(row)}, {_units(row)}"


def _row(frame: pd.DataFrame, table: str, run_a: str, run_b: str | None = None, metric: str | None = None):
    rows = frame[(frame["table"] == table) & (frame["run_a"] == run_a)]
    if run_b is not None:
        rows = rows[rows["run_b"] == run_b]
    if metric is not None:
        rows = rows[rows["metric"] == metric]
    return rows.iloc[0] if len(rows) else None


def _stand_in_note(datasets: list[str]) -> str:
    stand = [dataset for dataset in datasets if dataset in STAND_INS]
    if not stand:
        return ""
    return (
        " "
        + " and ".join(f"{dataset}" for dataset in stand)
        + (" is a procedural stand-in" if len(stand) == 1 else " are procedural stand-ins")
        + " with the layout of "
        + " / ".join(STAND_INS[dataset][1] for dataset in stand)
        + ", not that data: the paper's figures beside ours are orientation, not a replication test."
    )


def table2_verdict(
    comparisons: dict[str, pd.DataFrame],
    summary: pd.DataFrame,
    display_names: dict[str, str] | None = None,
    paper: dict[str, tuple[str, dict[str, float]]] | None = None,
    alpha: float = ALPHA,
) -> str:
    """Markdown, one line per dataset under a heading line: the best mean Dice, whether its ``table2`` row
    (vs the best other method on validation) is significant at the unit (Holm p, n units), and the paper's
    best method (from ``paper``, :func:`paper_dice`) with our figure and test for that method.

    Args:
        comparisons: dataset -> its ``comparisons.csv`` frame.
        summary: :func:`~benchmark.reporting.tables.seed_summary` output.
        paper: dataset -> (label, {run: the paper's Dice in %}); None or a dataset absent: "no paper figure".
    """
    names = display_names or {}
    name = lambda run: names.get(run, run)  # noqa: E731
    paper = paper or {}
    lines = [
        "**Verdict** (generated from `comparisons.csv`: every p is the Holm-adjusted unit-level p of the comparison's row)."
        + _stand_in_note(list(comparisons))
    ]
    for dataset, frame in comparisons.items():
        dice = summary[(summary["dataset"] == dataset) & (summary["metric"] == "dice")].set_index("method")["mean"]
        if dice.empty:
            continue
        top = dice.idxmax()
        row = _row(frame, "table2", top)
        text = f"- **{dataset}**: highest mean Dice {name(top)} ({100 * dice[top]:.1f} %)"
        if row is None:
            text += "; no Table 2 comparison in comparisons.csv (rerun `dvc repro compare@" + dataset + "`)."
        else:
            verdict = (
                "significantly better"
                if significant(row, alpha) and row["delta"] > 0
                else "underpowered: no test can reach p < 0.05"
                if underpowered(int(row["n_units"]), alpha)
                else "not significantly better"
            )
            text += f"; vs {name(row['run_b'])} (best other on validation) {_test(row)}: {verdict}"
            text += " (bold in Table 2)." if verdict == "significantly better" else ", so no method is bold."
        label, figures = paper.get(dataset, ("", {}))
        if figures:
            best = max(figures, key=figures.get)
            ours = dice.get(best)
            rank = int((dice > ours).sum()) + 1 if ours is not None else None
            text += f" The paper's best on {label.removeprefix('paper (').removesuffix(')')} is {name(best)} ({figures[best]:.1f} %)"
            if ours is None:
                text += "; not run here."
            else:
                text += f"; here {100 * ours:.1f} %, rank {rank} of {len(dice)}"
                against = _row(frame, "table2", best)
                if against is not None and best != top:
                    direction = (
                        "significantly worse"
                        if significant(against, alpha) and against["delta"] < 0
                        else ("significantly better" if significant(against, alpha) else "no significant difference")
                    )
                    text += f", vs {name(against['run_b'])} {_test(against)}: {direction}"
                text += "."
        else:
            text += " No comparable paper figure."
        lines.append(text)
    return "\n".join(lines)


def table3_verdict(
    comparisons: dict[str, pd.DataFrame],
    table3: pd.DataFrame,
    display_names: dict[str, str] | None = None,
    paper: dict[str, tuple[str, dict[str, float]]] | None = None,
    reference: str = "unet",
    claim: tuple[str, str] = ("diffaug", "sdseg"),
    alpha: float = ALPHA,
) -> str:
    """Markdown: per dataset, the method with the lowest lesion FNR over all lesions and whether that is
    significant at the unit against the reference (Holm p of the ``table3`` rows); then the paper's claim
    (``claim`` = DiffAug − SDSeg) per stratum: our lesion FNR of both, Δ lesion FNR with its CI and Holm p,
    and the paper's figures (``paper``, :func:`paper_lesion_fnr`).

    Args:
        table3: :func:`~benchmark.reporting.tables.lesion_detection_table` output (``run`` column: run names).
    """
    from benchmark.reporting.claims import lesion_metric

    names = display_names or {}
    name = lambda run: names.get(run, run)  # noqa: E731
    paper = paper or {}
    lines = [
        "**Verdict** (generated from `comparisons.csv`: Δ lesion FNR = −Δ lesion sensitivity at the unit; every p is the row's Holm p)."
        + _stand_in_note(list(comparisons))
    ]
    for dataset, frame in comparisons.items():
        rows = table3[(table3["dataset"] == dataset)]
        overall = rows[rows["stratum"] == "all"].set_index("run")["fnr"]
        if overall.empty:
            continue
        best = overall.idxmin()
        text = f"- **{dataset}**, all lesions: lowest lesion FNR {name(best)} ({100 * overall[best]:.1f} %)"
        others = frame[
            (frame["table"] == "table3") & (frame["run_b"] == reference) & (frame["metric"] == lesion_metric())
        ]
        if best == reference and others.empty:
            text += f"; no method is tested against {name(reference)} in comparisons.csv."
        elif best == reference:
            worse = sum(significant(row, alpha) and row["delta"] < 0 for _, row in others.iterrows())
            better = sum(significant(row, alpha) and row["delta"] > 0 for _, row in others.iterrows())
            n_units = _units(others.iloc[0]) if len(others) else "no units"
            unresolved = [
                f"{name(row['run_a'])}, {_test(row, sign=-1)}"
                for _, row in others.iterrows()
                if not significant(row, alpha)
            ]
            text += (
                f"; vs it, {worse} of {len(others)} methods have a significantly higher lesion FNR and {better} a lower one (Holm p < {alpha}, {n_units})"
                + (
                    ": significantly best."
                    if worse == len(others) and len(others)
                    else ": not significantly best (no significant difference from " + "; ".join(unresolved) + ")."
                )
            )
        else:
            row = _row(frame, "table3", best, reference, lesion_metric())
            if row is None:
                text += f"; no comparison with {name(reference)} in comparisons.csv."
            else:
                verdict = (
                    "significantly lower"
                    if significant(row, alpha) and row["delta"] > 0
                    else "not significantly different"
                )
                text += (
                    f"; vs {name(reference)} Δ lesion FNR {_test(row, sign=-1)}: {verdict}; not tested against the other methods "
                    f"(Table 3 tests each method against {name(reference)}, and {name(claim[0])} against {name(claim[1])})."
                )
        lines.append(text)
        a, b = claim
        parts = []
        for stratum in dict.fromkeys(rows["stratum"]):
            row = _row(frame, "table3", a, b, lesion_metric(stratum))
            fnr = rows[rows["stratum"] == stratum].set_index("run")["fnr"]
            if row is None or a not in fnr or b not in fnr:
                continue
            verdict = (
                ("lower" if row["delta"] > 0 else "higher") + " (significant)"
                if significant(row, alpha)
                else "no significant difference"
            )
            part = f"{stratum}: {100 * fnr[a]:.1f} % vs {100 * fnr[b]:.1f} %, Δ {_test(row, sign=-1)}, {verdict}"
            label, figures = paper.get(stratum, ("", {}))
            if a in figures and b in figures:
                part += f"; {label}: {figures[a]:.1f} % vs {figures[b]:.1f} %"
            parts.append(part)
        if parts:
            lines.append(
                f"- **{dataset}**, the paper's claim {name(a)} vs {name(b)} (lesion FNR): " + "; ".join(parts) + "."
            )
    return "\n".join(lines)

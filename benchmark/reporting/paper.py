"""The paper's published figures (Tables 1-7), typed once, and how a report sets its own numbers beside them.

``paper_figures.csv`` (next to this module, shipped as package data) holds one row per number printed
in Tables 1-7 of the DiffAug paper, with the table and row it comes from. Columns (:data:`COLUMNS`):

- ``table``: ``table1`` .. ``table7``;
- ``dataset``: the suite's dataset name (:data:`benchmark.data.DATASETS`, e.g. ``cvc_clinicdb``), empty
  where the table is not per dataset (Tables 3-5);
- ``group``: the paper's row group (Table 2's method type, Table 3's abnormality type), else empty;
- ``row``, ``column``: the paper's labels as printed, with citation markers (``[28]``), bold markup and
  LaTeX (``$2 \\times$`` -> ``2×``) dropped. Table 1's numeric columns are its second header row (the first
  is unreadable in the text version); its text column "Target" holds no number and is left out;
- ``metric``: a snake_case key (``dice``, ``fnr``, ``inference_speed``, ...); ``unit``: :data:`UNITS`,
  one per metric (:data:`METRIC_UNITS`);
- ``value``: the number as printed; ``sd``: the ``±`` spread printed with it, else empty;
- ``source``: the line of the row in the paper's text version (``shared/paper/diffaug-paper.md``);
- ``note``: why ``value`` is empty (unreadable in the text version), else empty.

A cell may print two numbers (Table 1's "488 (100%)": ``n_abnormal`` and ``abnormal_share``); cells the
paper prints without a number ("–", "N/A") have no row. :data:`LAYOUT` lists every table's cells, so
completeness is checkable (``tests/test_paper_figures.py``).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import pandas as pd

FILENAME = "paper_figures.csv"
COLUMNS = ["table", "dataset", "group", "row", "column", "metric", "value", "sd", "unit", "source", "note"]
#: the key of one figure: at most one CSV row per key
KEY = ["table", "dataset", "group", "row", "column", "metric"]
TABLES = tuple(f"table{number}" for number in range(1, 8))
UNITS = ("%", "ratio", "h", "samples/s", "")
#: metric -> its unit in the paper ("" for counts and unitless scores such as FID, LPIPS)
METRIC_UNITS = {
    "n_train": "",
    "n_abnormal": "",
    "abnormal_share": "%",
    "n_test": "",
    "n_real": "",
    "n_synthetic": "",
    "dice": "%",
    "iou": "%",
    "sensitivity": "%",
    "fnr": "%",
    "relative_fnr_reduction": "%",
    "specificity": "%",
    "training_time": "h",
    "n_gpus": "",
    "inference_speed": "samples/s",
    "fid": "",
    "lpips": "",
    "validation_iou": "ratio",
    "acceptance_rate": "%",
}
DASH = "–"


class Layout(NamedTuple):
    """One table as laid out in the paper.

    Attributes:
        rows: ``(dataset, group, row)`` per printed row, in the paper's order (Table 2: per dataset).
        columns: the numeric column labels, in order.
        metrics: label -> the metric key(s) of the number(s) in its cells; keyed by column label, or by
            row label where ``by_row`` (Table 5, whose rows are metrics).
        blank: ``(group, row, column)`` cells printed without a number ("–", "N/A").
        by_row: ``metrics`` is keyed by row label.
    """

    rows: tuple[tuple[str, str, str], ...]
    columns: tuple[str, ...]
    metrics: dict[str, tuple[str, ...]]
    blank: frozenset[tuple[str, str, str]] = frozenset()
    by_row: bool = False

    def cells(self) -> list[tuple[str, str, str, str, str]]:
        """Every expected figure as ``(dataset, group, row, column, metric)``, in the paper's order."""
        return [
            (dataset, group, row, column, metric)
            for dataset, group, row in self.rows
            for column in self.columns
            if (group, row, column) not in self.blank
            for metric in self.metrics[row if self.by_row else column]
        ]


_POLYP = ("cvc_clinicdb", "kvasir_seg", "refuge2")
_T2 = [("Traditional Augmentation", row) for row in ("U-Net", "U-Net (with Resnet50)", "TransUNet")]
_T2 += [
    ("Diffusion-based Methods", row)
    for row in ("MedSegDiff-V1", "MedSegDiff-V2", "Diff-Trans", "SDSeg", "DiffAug (Ours)")
]
_T3_GROUPS = ("Small Polyps (<5mm)", "Flat Lesions", "Early Glaucoma (CDR 0.5-0.6)")
_T5 = {
    "FID Score ↓": ("fid",),
    "LPIPS ↓": ("lpips",),
    "Validation IoU": ("validation_iou",),
    "Acceptance Rate": ("acceptance_rate",),
}
_T6 = (
    "DiffAug (Full)",
    "w/o Text Guidance",
    "w/o Validation Loop",
    "w/o Diverse Prompts",
    "w/o Latent Estimation",
    "w/o Synthetic Data",
)
_T7 = ("Baseline (no augmentation)", "Standard augmentation only*") + tuple(
    f"DiffAug + {v}× synthetic" for v in ("0.5", "1", "2", "3", "5")
)
_DICE_IOU = {"Dice (%)": ("dice",), "IoU (%)": ("iou",)}
_SPEED = "Inference Speed (samples/s)"

#: table -> its layout in the paper (see :class:`Layout`)
LAYOUT: dict[str, Layout] = {
    "table1": Layout(
        rows=tuple(zip(_POLYP, ("", "", ""), ("CVC-ClinicDB", "Kvasir-SEG", "REFUGE2"))),
        columns=("Total", "w/ Abnorm.", "Test"),
        metrics={"Total": ("n_train",), "w/ Abnorm.": ("n_abnormal", "abnormal_share"), "Test": ("n_test",)},
    ),
    "table2": Layout(
        rows=tuple((dataset, group, row) for dataset in _POLYP for group, row in _T2),
        columns=tuple(_DICE_IOU),
        metrics=_DICE_IOU,
    ),
    "table3": Layout(
        rows=tuple(("", group, row) for group in _T3_GROUPS for row in ("U-Net", "SDSeg", "DiffAug")),
        columns=("Sensitivity (%)", "FNR (%)", "Relative FNR Reduction (%)", "Specificity (%)"),
        metrics={
            "Sensitivity (%)": ("sensitivity",),
            "FNR (%)": ("fnr",),
            "Relative FNR Reduction (%)": ("relative_fnr_reduction",),
            "Specificity (%)": ("specificity",),
        },
        blank=frozenset((group, "U-Net", "Relative FNR Reduction (%)") for group in _T3_GROUPS),
    ),
    "table4": Layout(
        rows=tuple(
            ("", "", row)
            for row in (
                "MedSegDiff-V1",
                "MedSegDiff-V2",
                "Diff-UNet",
                "SDSeg",
                "DiffAug (Segmentation)",
                "DiffAug (Generation)*",
            )
        ),
        columns=("Training Time (hours)", "GPU Requirement", _SPEED),
        metrics={
            "Training Time (hours)": ("training_time",),
            "GPU Requirement": ("n_gpus",),
            _SPEED: ("inference_speed",),
        },
    ),
    "table5": Layout(
        rows=tuple(("", "", row) for row in _T5), columns=("Accepted", "Rejected"), metrics=_T5, by_row=True
    ),
    "table6": Layout(
        rows=tuple(("cvc_clinicdb", "", row) for row in _T6),
        columns=(*_DICE_IOU, "FNR (%)", _SPEED),
        metrics={**_DICE_IOU, "FNR (%)": ("fnr",), _SPEED: ("inference_speed",)},
        blank=frozenset({("", "w/o Validation Loop", _SPEED)}),
    ),
    "table7": Layout(
        rows=tuple(("cvc_clinicdb", "", row) for row in _T7),
        columns=("Real Images", "Synthetic Images", *_DICE_IOU),
        metrics={"Real Images": ("n_real",), "Synthetic Images": ("n_synthetic",), **_DICE_IOU},
    ),
}

#: table -> {run name (params.yaml ``train.methods`` / ``ablation.runs``) -> the paper's row label}.
#: Runs without a counterpart are absent (their "paper" cell reads "–"): ``unet+diffaug`` (U-Net on
#: DiffAug data; the paper's DiffAug rows are its own segmenter) and, in Table 4, ``difftrans``: Table 4
#: prints "Diff-UNet", Table 2 "Diff-Trans [9]", and the paper does not say they are one method.
#: Table 7 assumes the default synthetic volume 1× (``unet+diffaug``; ``_v<percent>`` otherwise).
PAPER_ROWS: dict[str, dict[str, str]] = {
    "table2": {
        "unet": "U-Net",
        "resnet50_unet": "U-Net (with Resnet50)",
        "transunet": "TransUNet",
        "medsegdiff_v1": "MedSegDiff-V1",
        "medsegdiff_v2": "MedSegDiff-V2",
        "difftrans": "Diff-Trans",
        "sdseg": "SDSeg",
        "diffaug": "DiffAug (Ours)",
    },
    "table3": {"unet": "U-Net", "sdseg": "SDSeg", "diffaug": "DiffAug"},
    "table4": {
        "medsegdiff_v1": "MedSegDiff-V1",
        "medsegdiff_v2": "MedSegDiff-V2",
        "sdseg": "SDSeg",
        "diffaug": "DiffAug (Segmentation)",
    },
    "table6": {
        "diffaug": "DiffAug (Full)",
        "diffaug+diffaug_notext": "w/o Text Guidance",
        "diffaug+diffaug_unvalidated": "w/o Validation Loop",
        "diffaug+diffaug_basic": "w/o Diverse Prompts",
        "diffaug+real": "w/o Synthetic Data",
    },
    "table7": {
        "unet+noaug": "Baseline (no augmentation)",
        "unet": "Standard augmentation only*",
        "unet+diffaug_v50": "DiffAug + 0.5× synthetic",
        "unet+diffaug": "DiffAug + 1× synthetic",
        "unet+diffaug_v200": "DiffAug + 2× synthetic",
        "unet+diffaug_v300": "DiffAug + 3× synthetic",
        "unet+diffaug_v500": "DiffAug + 5× synthetic",
    },
}


def _path() -> Path:
    return Path(str(resources.files("benchmark.reporting") / FILENAME))


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"{where}: {what} {text!r} is not a number; type it as printed (e.g. 96.4), or leave it empty with a note"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {what} {text!r} is not a finite number")
    return value


def load(path: str | Path | None = None) -> pd.DataFrame:
    """The published figures, one row per number: :data:`COLUMNS`, ``value`` and ``sd`` as floats (NaN
    where empty), ``source`` as int, the text columns as str ("" where empty).

    Args:
        path: a CSV in the layout of ``paper_figures.csv``; default the one shipped with the package.

    Raises:
        ValueError: naming the file and line of the first bad row (unknown table, metric or unit, a
            value that is not a number, an empty value without a note, a duplicated figure).
    """
    path = Path(path) if path is not None else _path()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    if list(frame.columns) != COLUMNS:
        raise ValueError(f"{path}: columns are {list(frame.columns)}; expected exactly {COLUMNS} (fix the header line)")
    values, sds, sources, seen = [], [], [], {}
    for index, record in enumerate(frame.itertuples(index=False)):
        where = f"{path}, line {index + 2}"
        if record.table not in TABLES:
            raise ValueError(f"{where}: table {record.table!r} is none of {', '.join(TABLES)}")
        if record.metric not in METRIC_UNITS:
            raise ValueError(
                f"{where}: metric {record.metric!r} is unknown; add it to paper.METRIC_UNITS with its unit"
            )
        if record.unit != METRIC_UNITS[record.metric]:
            raise ValueError(
                f"{where}: unit {record.unit!r} for {record.metric}; the paper's unit is {METRIC_UNITS[record.metric]!r}"
            )
        if record.value == "" and not record.note.strip():
            raise ValueError(
                f"{where}: empty value without a note; type the number as printed, or say in 'note' why it is unreadable"
            )
        values.append(_number(record.value, "value", where) if record.value != "" else math.nan)
        sds.append(_number(record.sd, "sd", where) if record.sd != "" else math.nan)
        if not record.source.isdigit():
            raise ValueError(f"{where}: source {record.source!r} is not a line number of the paper's text")
        sources.append(int(record.source))
        key = tuple(getattr(record, column) for column in KEY)
        if key in seen:
            raise ValueError(f"{where}: the same figure as line {seen[key]} ({', '.join(key)}); keep one of them")
        seen[key] = index + 2
    return frame.assign(value=values, sd=sds, source=sources)


def _check_label(figures: pd.DataFrame, table: str, field: str, label: str | None) -> None:
    if label is not None and label not in set(figures[field]):
        known = sorted(set(figures[field]))
        raise ValueError(f"{table} has no {field} {label!r}; its {field}s are {known}")


def lookup(
    table: str,
    metric: str,
    row: str | None = None,
    dataset: str | None = None,
    column: str | None = None,
    group: str | None = None,
    *,
    figures: pd.DataFrame | None = None,
) -> float | None:
    """The paper's figure (in its unit, :data:`METRIC_UNITS`), or None where the cell prints no number or is unreadable.

    Arguments left None do not filter; they must leave exactly one figure (Table 3 needs ``group``,
    Table 5 ``column``). Labels are the paper's (:data:`LAYOUT`; run names: :data:`PAPER_ROWS`).

    Raises:
        ValueError: an unknown table, metric or label (a typo must not read as "no figure"), or several matches.
    """
    if table not in LAYOUT:
        raise ValueError(f"unknown table {table!r}; one of {', '.join(TABLES)}")
    figures = (load() if figures is None else figures).query("table == @table")
    if metric not in set(figures["metric"]):
        raise ValueError(f"{table} prints no metric {metric!r}; its metrics are {sorted(set(figures['metric']))}")
    selected = figures[figures["metric"] == metric]
    for field, label in (("row", row), ("dataset", dataset), ("column", column), ("group", group)):
        _check_label(figures, table, field, label)
        if label is not None:
            selected = selected[selected[field] == label]
    if len(selected) > 1:
        options = selected[["dataset", "group", "row", "column"]].drop_duplicates().to_dict("records")
        raise ValueError(
            f"{len(selected)} figures of {table} match {metric!r}; pass row=, dataset=, column= or group= to pick one of {options}"
        )
    if selected.empty or math.isnan(selected["value"].iloc[0]):
        return None
    return float(selected["value"].iloc[0])


def _convert(value: float, unit: str, to: str) -> float:
    if unit == to:
        return value
    if (unit, to) == ("%", "ratio"):
        return value / 100
    if (unit, to) == ("ratio", "%"):
        return value * 100
    raise ValueError(
        f"cannot set a figure in {unit!r} beside one in {to!r}; pass our_unit= as the paper's unit ({unit!r}) or '%'/'ratio'"
    )


def beside(
    ours: pd.DataFrame,
    table: str,
    *,
    key_columns: dict[str, str],
    value_column: str,
    metric: str,
    dataset: str | None = None,
    column: str | None = None,
    group: str | None = None,
    our_unit: str = "%",
    rows: dict[str, str] | None = None,
    figures: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``ours`` with two columns added: "paper" (the paper's figure, in ``our_unit``) and "Δ vs paper"
    (``ours[value_column]`` − paper, in ``our_unit``); both read "–" where the paper has no comparable figure.

    Args:
        ours: a report table, one figure per row in ``value_column`` (float, NaN where not measured).
        table: ``table1`` .. ``table7``.
        key_columns: our column -> the paper field it identifies (``"row"``, ``"dataset"``, ``"group"``
            or ``"column"``), e.g. ``{"method": "row"}`` or ``{"method": "row", "dataset": "dataset"}``.
            Values under ``"row"`` are run names, translated by ``rows``; a paper row label passes as is.
            Without a ``"row"`` key, the other fields must pick the figure (Table 5: ``column``).
            A run without a paper row, or a dataset the table does not report, gets "–"; Tables 3-5,
            not per dataset, ignore the dataset.
        value_column: our column holding the figure; metric: the paper's metric key (:data:`METRIC_UNITS`).
        dataset, column, group: fixed paper fields for every row (when no key column gives them).
        our_unit: the unit of ``value_column`` ("%" and "ratio" convert into each other).
        rows: run name -> paper row label; default :data:`PAPER_ROWS` of ``table``.

    Returns:
        A copy of ``ours`` (same rows, same order) with "paper" and "Δ vs paper" (float, or "–").
    """
    figures = load() if figures is None else figures
    rows = PAPER_ROWS.get(table, {}) if rows is None else rows
    bad = {name: field for name, field in key_columns.items() if field not in ("row", "dataset", "group", "column")}
    missing = [name for name in [*key_columns, value_column] if name not in ours.columns]
    if bad or missing:
        raise ValueError(
            f"beside: key_columns must map our columns to 'row', 'dataset', 'group' or 'column' (bad: {bad}); "
            f"columns missing from the table: {missing} (it has {list(ours.columns)})"
        )
    table_rows = set(figures.loc[figures["table"] == table, "row"])
    table_datasets = set(figures.loc[figures["table"] == table, "dataset"])
    paper_unit = METRIC_UNITS.get(metric)
    papers, deltas = [], []
    for _, record in ours.iterrows():
        fields = {"dataset": dataset, "column": column, "group": group}
        fields.update({field: record[name] for name, field in key_columns.items()})
        name = fields.pop("row", None)
        label = None if name is None else name if name in table_rows else rows.get(name)
        if table_datasets == {""}:
            fields["dataset"] = None  # a table not per dataset (Tables 3-5) compares with any
        comparable = (name is None or label is not None) and fields["dataset"] in (None, *table_datasets)
        paper = (
            lookup(table, metric, row=label, figures=figures, **fields) if comparable else None
        )  # else: no such run or dataset in the paper
        value = float(record[value_column]) if pd.notna(record[value_column]) else math.nan
        if paper is None:
            papers.append(DASH)
            deltas.append(DASH)
            continue
        paper = _convert(paper, paper_unit, our_unit)
        papers.append(paper)
        deltas.append(DASH if math.isnan(value) else round(value - paper, 6))
    return ours.assign(**{"paper": papers, "Δ vs paper": deltas})


def _num(value: float, unit: str) -> str:
    return f"{value:.1f}" if unit == "%" else f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _fmt(value: float, unit: str) -> str:
    return f"{_num(value, unit)} {unit}" if unit not in ("", "ratio") else _num(value, unit)


def verdict_line(ours: float, paper: float | None, ci: tuple[float, float] | None = None, unit: str = "%") -> str:
    """One sentence comparing our figure with the paper's, both in ``unit``, e.g.
    "paper 96.4 %, here 70.1 % [68.2, 72.0]: below the paper".

    It agrees when the paper's figure lies inside our confidence interval ``ci`` (low, high);
    otherwise it is above or below. Without ``ci`` it says which side, and that no interval judges it.
    """
    if ci is not None and not ci[0] <= ci[1]:
        raise ValueError(f"ci {ci} is no interval: pass (low, high) with low <= high")
    here = "not measured" if ours is None or math.isnan(ours) else _fmt(ours, unit)
    if ci is not None and here != "not measured":
        here += f" [{_num(ci[0], unit)}, {_num(ci[1], unit)}]"
    if paper is None or math.isnan(paper):
        return f"the paper prints no figure, here {here}"
    start = f"paper {_fmt(paper, unit)}, here {here}"
    if here == "not measured":
        return start
    if ci is not None:
        side = (
            "agrees with the paper"
            if ci[0] <= paper <= ci[1]
            else "below the paper"
            if paper > ci[1]
            else "above the paper"
        )
        return f"{start}: {side}"
    side = "equal to the paper" if ours == paper else "below the paper" if ours < paper else "above the paper"
    return f"{start}: {side} (no interval to judge agreement)"

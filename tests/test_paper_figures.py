"""benchmark/reporting/paper_figures.csv and paper.py: the paper's Tables 1-7, typed once.

Completeness against paper.LAYOUT, types and units, hand-checked values, every value found in the
paper's text near its source line (where shared/paper/diffaug-paper.md is present), and lookup,
beside, verdict_line on hand-made frames."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from benchmark.reporting import paper

PAPER_TEXT = Path(__file__).resolve().parents[2] / "shared" / "paper" / "diffaug-paper.md"
NUMBER = re.compile(r"\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def figures():
    return paper.load()


@pytest.fixture(scope="module")
def raw():
    """The CSV's rows as typed (strings), so values compare with the paper's text as printed."""
    with paper._path().open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def paper_lines():
    if not PAPER_TEXT.is_file():
        pytest.skip(f"the paper's text version is not here ({PAPER_TEXT}); the CSV cannot be checked against it")
    return PAPER_TEXT.read_text(encoding="utf-8").splitlines()


# ---- completeness and types -------------------------------------------------------------------


@pytest.mark.parametrize("table", paper.TABLES)
def test_every_cell_of_the_layout_once_and_nothing_else(figures, table):
    typed = Counter(
        map(
            tuple,
            figures.loc[figures["table"] == table, ["dataset", "group", "row", "column", "metric"]].to_numpy().tolist(),
        )
    )
    expected = Counter(paper.LAYOUT[table].cells())
    assert set(typed) - set(expected) == set(), f"{table}: figures outside the layout"
    assert set(expected) - set(typed) == set(), f"{table}: cells of the layout not typed"
    assert all(count == 1 for count in typed.values()), (
        f"{table}: typed more than once: {[k for k, c in typed.items() if c > 1]}"
    )


def test_counts_per_table(figures):
    assert figures["table"].value_counts().to_dict() == {
        "table1": 12,
        "table2": 48,
        "table3": 33,
        "table4": 18,
        "table5": 8,
        "table6": 23,
        "table7": 28,
    }


def test_types_units_and_sources(figures):
    assert list(figures.columns) == paper.COLUMNS
    assert set(figures["table"]) == set(paper.TABLES)
    assert figures["value"].dtype == float and figures["sd"].dtype == float and figures["source"].dtype == int
    assert (figures["unit"] == figures["metric"].map(paper.METRIC_UNITS)).all()
    percent = figures[figures["unit"] == "%"]["value"].dropna()
    assert percent.between(0, 100).all()
    assert figures.loc[figures["unit"] == "ratio", "value"].between(0, 1).all()
    assert (figures["sd"].dropna() > 0).all()
    counts = figures[figures["metric"].str.startswith("n_")]["value"]
    assert (counts == counts.round()).all()
    assert set(figures["dataset"]) <= {"", "cvc_clinicdb", "kvasir_seg", "refuge2"}
    from benchmark.data import DATASETS

    assert {"cvc_clinicdb", "kvasir_seg", "refuge2"} <= set(DATASETS)
    # a source line lies inside its table's block, tables in order
    spans = figures.groupby("table")["source"].agg(["min", "max"])
    assert (spans["min"].shift(-1).dropna() > spans["max"].iloc[:-1]).all()
    assert (figures["value"].isna() == (figures["note"] != "")).all(), "a note exactly where a value is unreadable"


def test_hand_checked_values(figures):
    # the paper's text (line 233) and tables, read by hand
    for dataset, dice in {"cvc_clinicdb": 96.4, "kvasir_seg": 95.6, "refuge2": 90.2}.items():
        assert paper.lookup("table2", "dice", row="DiffAug (Ours)", dataset=dataset, figures=figures) == dice
    assert paper.lookup("table2", "iou", row="U-Net (with Resnet50)", dataset="kvasir_seg", figures=figures) == 81.5
    row = figures.query(
        "table == 'table2' and row == 'MedSegDiff-V2' and dataset == 'refuge2' and metric == 'iou'"
    ).iloc[0]
    assert (row["value"], row["sd"], row["group"], row["source"]) == (79.6, 1.0, "Diffusion-based Methods", 225)
    assert paper.lookup("table3", "fnr", row="DiffAug", group="Small Polyps (<5mm)", figures=figures) == 23.2
    assert paper.lookup("table3", "relative_fnr_reduction", row="SDSeg", group="Flat Lesions", figures=figures) == 19.2
    assert paper.lookup("table4", "inference_speed", row="DiffAug (Segmentation)", figures=figures) == 12.5
    assert paper.lookup("table5", "lpips", column="Rejected", figures=figures) == 0.512
    assert paper.lookup("table6", "fnr", row="w/o Synthetic Data", figures=figures) == 31.7
    assert paper.lookup("table7", "n_synthetic", row="DiffAug + 3× synthetic", figures=figures) == 1464
    assert paper.lookup("table1", "abnormal_share", row="REFUGE2", figures=figures) == 100


# ---- against the paper's text -------------------------------------------------------------------


def test_every_value_is_printed_near_its_source_line(raw, paper_lines):
    missing = []
    for line_number, record in enumerate(raw, start=2):
        source = int(record["source"])
        window = " ".join(paper_lines[max(source - 16, 0) : source + 15])
        printed = set(NUMBER.findall(window))
        for field in ("value", "sd"):
            if record[field] and record[field] not in printed:
                missing.append(
                    f"CSV line {line_number}: {field} {record[field]} not within ±15 lines of paper line {source}"
                )
    assert not missing, "\n".join(missing)


def _cell_numbers(line: str, labels: int) -> list[str]:
    """The numbers of a table line's cells after its ``labels`` label cells, in order."""
    return NUMBER.findall(" ".join(line.split("\t")[labels:]))


def test_each_source_line_prints_exactly_its_figures_in_order(raw, paper_lines):
    """Stricter than the ±15 window: a row's line holds its numbers (value, then sd) in the layout's order,
    and no others; Table 2's lines list all of a dataset's methods before the next dataset."""
    order = {
        table: {cell: index for index, cell in enumerate(layout.cells())} for table, layout in paper.LAYOUT.items()
    }
    by_line: dict[int, list[tuple[int, list[str]]]] = {}
    for record in raw:
        cell = tuple(record[key] for key in ("dataset", "group", "row", "column", "metric"))
        by_line.setdefault(int(record["source"]), []).append(
            (order[record["table"]][cell], [record["value"], record["sd"]])
        )
    for source, cells in by_line.items():
        typed = [number for _, numbers in sorted(cells) for number in numbers if number]
        line = paper_lines[source - 1]
        labels = (
            2
            if "\t" in line
            and line.split("\t")[0] in ("Traditional Augmentation", "Diffusion-based Methods")
            or re.match(r"^(\t|Small|Flat|Early)", line)
            else 1
        )
        assert _cell_numbers(line, labels) == typed, f"paper line {source}: {line!r}"


# ---- load: bad files --------------------------------------------------------------------------


def _write(tmp_path, edit):
    lines = paper._path().read_text(encoding="utf-8").splitlines()
    path = tmp_path / "figures.csv"
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    return path


def _on_line(number: int, old: str, new: str):
    """An edit replacing ``old`` by ``new`` on CSV line ``number`` (1 = the header)."""

    def edit(lines):
        assert old in lines[number - 1], f"fixture: {old!r} not on line {number}"
        return [*lines[: number - 1], lines[number - 1].replace(old, new, 1), *lines[number:]]

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_on_line(2, ",488,,,162,", ",4 88,,,162,"), "line 2: value '4 88' is not a number"),
        (_on_line(3, "table1,", "table9,"), "line 3: table 'table9'"),
        (_on_line(2, ",488,,,162,", ",,,,162,"), "line 2: empty value without a note"),
        (_on_line(4, ",%,", ",ratio,"), "line 4: unit 'ratio'"),
        (_on_line(5, "n_test", "n_tests"), "line 5: metric 'n_tests' is unknown"),
        (_on_line(30, ",224,", ",2x24,"), "line 30: source '2x24'"),
        (lambda lines: [*lines, lines[5]], ": the same figure as line 6"),
        (lambda lines: [lines[0].replace(",note", ""), *(line.rsplit(",", 1)[0] for line in lines[1:])], "columns are"),
    ],
)
def test_load_names_the_bad_line(tmp_path, edit, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        paper.load(_write(tmp_path, edit))


def test_an_unreadable_value_is_empty_with_a_note(tmp_path):
    figures = paper.load(_write(tmp_path, _on_line(2, ",488,,,162,", ",,,,162,unreadable in the text version")))
    assert math.isnan(figures["value"].iloc[0])
    assert paper.lookup("table1", "n_train", row="CVC-ClinicDB", figures=figures) is None


# ---- lookup, beside, verdict_line -------------------------------------------------------------


def test_lookup(figures):
    assert (
        paper.lookup("table6", "inference_speed", row="w/o Validation Loop", figures=figures) is None
    )  # printed "N/A"
    assert (
        paper.lookup("table3", "relative_fnr_reduction", row="U-Net", group="Flat Lesions", figures=figures) is None
    )  # printed "–"
    with pytest.raises(ValueError, match="pass row=, dataset=, column= or group="):
        paper.lookup("table2", "dice", row="SDSeg", figures=figures)
    with pytest.raises(ValueError, match="no metric 'fid'"):
        paper.lookup("table2", "fid", figures=figures)
    with pytest.raises(ValueError, match="no row 'unet'"):
        paper.lookup("table2", "dice", row="unet", dataset="kvasir_seg", figures=figures)
    with pytest.raises(ValueError, match="unknown table"):
        paper.lookup("table8", "dice")


def test_paper_rows_name_real_runs_and_rows(figures):
    import yaml

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    assert set(paper.PAPER_ROWS["table2"]) <= set(params["train"]["methods"])
    for table, rows in paper.PAPER_ROWS.items():
        assert set(rows.values()) <= {row for _, _, row in paper.LAYOUT[table].rows}, table


def test_beside(figures):
    ours = pd.DataFrame({"method": ["unet", "diffaug", "unet+diffaug", "sdseg"], "dice": [70.1, 80.0, 75.0, math.nan]})
    out = paper.beside(
        ours,
        "table2",
        key_columns={"method": "row"},
        value_column="dice",
        metric="dice",
        dataset="kvasir_seg",
        figures=figures,
    )
    assert list(out.columns) == ["method", "dice", "paper", "Δ vs paper"]
    assert out["paper"].tolist() == [86.7, 95.6, "–", 94.9]
    assert out["Δ vs paper"].tolist() == [pytest.approx(70.1 - 86.7), pytest.approx(80.0 - 95.6), "–", "–"]
    assert out["method"].tolist() == ours["method"].tolist() and "paper" not in ours  # a copy, same order

    long = pd.DataFrame(
        {
            "run": ["diffaug", "diffaug", "diffaug"],
            "dataset": ["cvc_clinicdb", "refuge2", "synth_polyp"],
            "iou": [0.9, 0.8, 0.7],
        }
    )
    out = paper.beside(
        long,
        "table2",
        key_columns={"run": "row", "dataset": "dataset"},
        value_column="iou",
        metric="iou",
        our_unit="ratio",
        figures=figures,
    )
    assert out["paper"].tolist() == [
        pytest.approx(0.932),
        pytest.approx(0.826),
        "–",
    ]  # the procedural dataset: no paper figure
    assert out["Δ vs paper"].tolist() == [pytest.approx(0.9 - 0.932), pytest.approx(0.8 - 0.826), "–"]

    lesions = pd.DataFrame({"method": ["U-Net", "diffaug"], "fnr": [40.0, 20.0]})  # a paper label passes as is
    out = paper.beside(
        lesions,
        "table3",
        key_columns={"method": "row"},
        value_column="fnr",
        metric="fnr",
        group="Flat Lesions",
        figures=figures,
    )
    assert out["Δ vs paper"].tolist() == [pytest.approx(1.5), pytest.approx(-7.6)]

    quality = pd.DataFrame(
        {"kind": ["Accepted", "Rejected"], "lpips": [0.3, 0.5]}
    )  # Table 5: rows are metrics, no row key
    out = paper.beside(
        quality,
        "table5",
        key_columns={"kind": "column"},
        value_column="lpips",
        metric="lpips",
        our_unit="",
        dataset="synth_polyp",
        figures=figures,
    )
    assert out["Δ vs paper"].tolist() == [pytest.approx(0.055), pytest.approx(-0.012)]

    with pytest.raises(ValueError, match="columns missing"):
        paper.beside(ours, "table2", key_columns={"name": "row"}, value_column="dice", metric="dice", figures=figures)
    with pytest.raises(ValueError, match="cannot set a figure"):
        paper.beside(
            ours,
            "table2",
            key_columns={"method": "row"},
            value_column="dice",
            metric="dice",
            dataset="refuge2",
            our_unit="s",
            figures=figures,
        )


def test_verdict_line():
    assert paper.verdict_line(70.1, 96.4, (68.2, 72.0)) == "paper 96.4 %, here 70.1 % [68.2, 72.0]: below the paper"
    assert (
        paper.verdict_line(96.0, 96.4, (95.1, 96.9)) == "paper 96.4 %, here 96.0 % [95.1, 96.9]: agrees with the paper"
    )
    assert paper.verdict_line(97.5, 96.4, (97.0, 98.0)).endswith(": above the paper")
    assert (
        paper.verdict_line(0.3, 0.245, None, unit="")
        == "paper 0.245, here 0.3: above the paper (no interval to judge agreement)"
    )
    assert (
        paper.verdict_line(3.1, 12.5, (2.9, 3.3), unit="samples/s")
        == "paper 12.5 samples/s, here 3.1 samples/s [2.9, 3.3]: below the paper"
    )
    assert paper.verdict_line(80.0, None, None) == "the paper prints no figure, here 80.0 %"
    assert paper.verdict_line(math.nan, 96.4, None) == "paper 96.4 %, here not measured"
    with pytest.raises(ValueError, match="no interval"):
        paper.verdict_line(70.0, 96.4, (72.0, 68.0))

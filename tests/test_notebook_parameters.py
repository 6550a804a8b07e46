"""Notebook parameters: literals in a tagged cell, validated in the next cell, no logic only in notebooks."""

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.config import ParamsError
from benchmark.reporting.notebook import NOTEBOOK_PARAMETERS, validate

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(NOTEBOOK_PARAMETERS))
def test_parameters_cell_holds_literals_and_is_validated(name):
    notebook = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    tree = ast.parse("".join(code[0]["source"]))
    namespace = {}
    for statement in tree.body:
        assert isinstance(statement, ast.Assign), "the parameters cell holds assignments only"
        namespace[statement.targets[0].id] = ast.literal_eval(statement.value)
    validate(namespace, name)  # the defaults themselves are valid
    assert f'validate(globals(), "{name}")' in "".join(code[1]["source"])
    for cell in code:
        assert not cell.get("outputs"), "source notebooks are committed without outputs"


def test_unknown_and_mistyped_parameters_are_rejected():
    with pytest.raises(ParamsError, match=r"unknown parameter\(s\) \['dataset'\]"):
        validate({"dataset": ["synth_polyp"], "In": [], "get_ipython": print}, "table2_segmentation")
    with pytest.raises(ParamsError, match="'gallery_samples' must be an integer"):
        validate({"gallery_samples": "six"}, "table1_datasets")
    assert validate({"datasets": ["synth_polyp"]}, "table1_datasets").datasets == ("synth_polyp",)


@pytest.mark.parametrize("name", sorted(NOTEBOOK_PARAMETERS))
def test_no_number_literals_outside_the_parameters_cell(name):
    """Every figure in a rendered table comes from results files through tested code: a notebook's
    code cells (other than the parameters cell) hold no numeric literal that could end up in a table."""
    notebook = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    for cell in code[1:]:
        source = "\n".join(line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith("%"))
        literals = [
            node.value
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float, complex))
            and not isinstance(node.value, bool)
        ]
        assert not literals, (
            f"notebooks/{name}.ipynb: numeric literal(s) {literals} in a code cell; move them to params or tested code"
        )


# --- numbers in prose and strings that restate params.yaml ---------------------------------------------

PARAMS_FILES = ("params.yaml", "params_paper.yaml")
# Words that tie a number to a configured value; a restated value must sit within WINDOW characters of one.
CONFIG_WORDS = re.compile(
    r"steps?\b|epochs?\b|seeds?\b|ensembl|samples?\b|resampl|bootstrap|θ|theta|volumes?\b|iou\b|threshold",
    re.IGNORECASE,
)
WINDOW = 20
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\d)")
# References, not values: "Table 2", "Fig. 3", "eq. 7", "eqs. 10–12", "Section 4".
REFERENCE = re.compile(
    r"(?:tables?|fig(?:ure)?s?\.?|eqs?\.|equations?|sections?|§)\s*(?:\d+\s*[–,-]\s*)?$", re.IGNORECASE
)
# Significance levels and p-values: "p < 0.05", "α = 0.01".
SIGNIFICANCE = re.compile(r"(?:\bp\s*[<=≤>]|α\s*[<=≤]?)\s*$")


def params_leaf_numbers() -> set[float]:
    """Every numeric leaf (lists included) of params.yaml and params_paper.yaml, except 0 and 1."""
    found: set[float] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, int | float) and not isinstance(value, bool) and value not in (0, 1):
            found.add(float(value))

    for name in PARAMS_FILES:
        walk(yaml.safe_load((ROOT / name).read_text()))
    return found


def _cell_texts(notebook: dict) -> list[tuple[int, str]]:
    """(cell index, text) of every markdown cell and every string constant of every code cell but the parameters cell."""
    texts, seen_code = [], 0
    for index, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            texts.append((index, source))
        elif cell["cell_type"] == "code":
            seen_code += 1
            if seen_code == 1:  # the parameters cell: literals belong there
                continue
            code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
            texts += [
                (index, node.value)
                for node in ast.walk(ast.parse(code))
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
            ]
    return texts


def restated_params_values(names=None) -> list[tuple[str, int, str]]:
    """(notebook, cell index, text around the number) for each number in a markdown cell or a code string
    that equals a params.yaml / params_paper.yaml leaf value and stands near a word such as steps, epochs,
    seeds, ensemble, θ or volume. Not flagged: 0 and 1, years, percentages ("95 %"), format specs
    ("{:.1%}", ".3f"), and references ("Table 2", "eq. 7")."""
    values = params_leaf_numbers()
    offending = []
    for name in sorted(names or NOTEBOOK_PARAMETERS):
        notebook = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        for index, text in _cell_texts(notebook):
            for match in NUMBER.finditer(text):
                number, start, end = float(match.group()), match.start(), match.end()
                if number not in values or (number.is_integer() and 1900 <= number <= 2100):
                    continue
                before = text[max(0, start - 12) : start]
                if re.match(r"\s*%", text[end:]) or REFERENCE.search(before) or SIGNIFICANCE.search(before):
                    continue
                if CONFIG_WORDS.search(text[max(0, start - WINDOW) : end + WINDOW]):
                    snippet = " ".join(text[max(0, start - WINDOW) : end + WINDOW].split())
                    offending.append((f"notebooks/{name}.ipynb", index, snippet))
    return offending


def test_the_restated_value_check_flags_only_configured_numbers(tmp_path, monkeypatch):
    """The checker itself, on a notebook written here: what it flags and what it lets through."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "params.yaml").write_text(
        "train:\n  steps: 10\n  ensemble: 5\n  theta: 0.7\n  gallery: 3\n  years: [2024]\n  flag: 1\n"
    )
    (tmp_path / "params_paper.yaml").write_text("train:\n  epochs: 300\n")
    cells = [
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": ['title = "10 DDIM steps"\n'],
        },  # parameters cell: allowed
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": ["Table 2 with 10 DDIM steps and a 5-sample ensemble (2024, eq. 7)."],
        },
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": ["The 95 % CI over 3 seeds; 1 step; trained 300 epochs at θ = 0.7."],
        },
        {
            "cell_type": "code",
            "metadata": {},
            "source": ['print(f"{value:.1%} after {steps} steps", "gate: IoU > 0.7")\n'],
        },
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": ["See Table 10 and 5 figures of the appendix. With 3 seeds, p < 0.7."],
        },
    ]
    (tmp_path / "notebooks" / "demo.ipynb").write_text(json.dumps({"cells": cells}))
    found = [(cell, snippet) for _, cell, snippet in restated_params_values(["demo"])]
    assert [cell for cell, _ in found] == [1, 1, 2, 2, 2, 3, 4], found
    assert found[-1][1].startswith(
        "the appendix. With 3 seeds"
    )  # the 3 next to "seeds": not Table 10, 5 figures or p < 0.7


def test_no_params_value_restated_in_markdown_or_strings():
    """Prose and strings must not restate a configured value: "10 DDIM steps" is wrong as soon as another
    params file (params_paper.yaml) is used. Fails until the notebooks take such figures from params."""
    offending = restated_params_values()
    assert not offending, "\n".join(f"{notebook} cell {cell}: …{text}…" for notebook, cell, text in offending)

"""Notebook parameters: literals in a tagged cell, validated in the next cell, no logic only in notebooks."""

import ast
import json
from pathlib import Path

import pytest

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
        literals = [node.value for node in ast.walk(ast.parse(source))
                    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex)) and not isinstance(node.value, bool)]  # fmt: skip
        assert not literals, f"notebooks/{name}.ipynb: numeric literal(s) {literals} in a code cell; move them to params or tested code"

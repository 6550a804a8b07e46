"""The reports' HTML reads offline: titled after the notebook's heading, no external script, code folded."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from benchmark.reporting.render import title_of, to_html

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=", re.IGNORECASE)


def _notebook():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("Some words first\n\n# Table 9 — a test report\n\nText."),
        nbformat.v4.new_code_cell(
            "secret_code_line = 1 + 1",
            outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)],
        ),
    ]
    return notebook


def test_the_page_is_titled_after_the_first_heading():
    assert title_of(_notebook()) == "Table 9 — a test report"
    assert title_of(nbformat.v4.new_notebook()) == "Report"
    assert "<title>Table 9 — a test report</title>" in to_html(_notebook())


def test_the_page_loads_no_script_from_the_network_and_folds_the_code():
    page = to_html(_notebook())
    assert not EXTERNAL_SCRIPT.search(page)
    for name in ("require.js", "MathJax", "mermaid", "cdn.jsdelivr", "cdnjs"):
        assert name.lower() not in page.lower(), name
    folded = page.split('<details class="report-code">', 1)
    assert (
        len(folded) == 2 and "secret_code_line" in folded[1].split("</details>", 1)[0]
    )  # the code sits inside the fold
    assert "Text." in page


@pytest.mark.parametrize("path", sorted((ROOT / "reports").glob("*.html")), ids=lambda path: path.name)
def test_committed_reports_are_offline_and_titled(path):
    page = path.read_text(encoding="utf-8")
    assert not EXTERNAL_SCRIPT.search(page), (
        f"{path.name} loads a script from the network; re-render with `make reports`"
    )
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1).strip()
    assert title and title != "Notebook", path.name


def test_a_study_switched_off_renders_a_titled_not_run_page(tmp_path):
    import yaml

    from benchmark.reporting.render import not_run_reason, render_not_run

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert not_run_reason("table7_volume", ROOT / "params.yaml") is None  # the default runs the studies
    params["ablation"]["datasets"] = []
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    reason = not_run_reason("table6_ablation", tmp_path / "params.yaml")
    assert (
        reason.startswith("ablation.datasets is empty")
        and not_run_reason("table2_segmentation", tmp_path / "params.yaml") is None
    )
    reports = tmp_path / "reports"
    reports.mkdir()
    written = render_not_run("table6_ablation", reason, notebooks_dir=ROOT / "notebooks", reports_dir=reports)
    assert [path.name for path in written] == ["table6_ablation.ipynb", "table6_ablation.html"]
    page = (reports / "table6_ablation.html").read_text(encoding="utf-8")
    assert (
        "<title>Table 6 — ablations of DiffAug</title>" in page
        and "Not run" in page
        and "ablation.datasets is empty" in page
    )
    assert nbformat.read(reports / "table6_ablation.ipynb", as_version=4).cells[0].cell_type == "markdown"
    assert sorted(path.name for path in reports.iterdir()) == [
        "table6_ablation.html",
        "table6_ablation.ipynb",
    ]  # no temp left

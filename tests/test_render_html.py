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

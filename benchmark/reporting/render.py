"""Execute a report notebook with papermill and export it to HTML, atomically."""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.utils.io import atomic_path

#: nbconvert template of the reports: JupyterLab's style, no script from a CDN, code folded away
TEMPLATE = Path(__file__).with_name("templates") / "offline.html.j2"
#: the repository's notebooks: a profile workspace (profiles/<name>/, its own cwd) renders the same ones
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def title_of(notebook) -> str:
    """The text of the notebook's first markdown heading (the page title), or "Report" if it has none."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.lstrip().startswith("#"):
                    return line.lstrip("# ").strip() or "Report"
    return "Report"


def to_html(notebook, exporter_class=None) -> str:
    """One self-contained, offline HTML page of an executed notebook (see :data:`TEMPLATE`).

    The page is titled after the first heading; it references no external script, so it reads the
    same without network access.
    """
    if exporter_class is None:
        from nbconvert import HTMLExporter as exporter_class
    notebook = notebook.copy()
    notebook.metadata = dict(notebook.metadata, title=title_of(notebook))
    exporter = exporter_class(
        template_name="lab", extra_template_paths=[str(TEMPLATE.parent)], template_file=TEMPLATE.name
    )
    body, _ = exporter.from_notebook_node(notebook)
    return body


def render_notebook(
    name: str,
    parameters: dict,
    *,
    notebooks_dir: Path = NOTEBOOKS,
    reports_dir: Path = Path("reports"),
    html: bool = True,
    timeout_s: int = 600,
    progress: bool = True,
) -> list[Path]:
    """Run ``notebooks/<name>.ipynb`` into ``reports/<name>.ipynb`` (+ ``.html``).

    The notebook runs in the current directory (the repository root, or a profile's workspace
    ``profiles/<name>/``), so it reads the same relative paths as the stages. Outputs appear only when execution succeeded; a failing
    cell raises ``papermill.PapermillExecutionError`` naming the cell.

    Returns:
        The written paths.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    source = notebooks_dir / f"{name}.ipynb"
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist; report.notebooks lists {name!r}")
    written = []
    environment = dict(os.environ)
    os.environ.pop("MPLBACKEND", None)  # let the kernel use its inline backend for figures
    try:
        with atomic_path(reports_dir / f"{name}.ipynb", suffix=".ipynb") as executed:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=parameters,
                kernel_name="python3",
                cwd=os.getcwd(),
                progress_bar=progress,
                execution_timeout=timeout_s,
                report_mode=False,
            )
            notebook = nbformat.read(executed, as_version=4)
        written.append(reports_dir / f"{name}.ipynb")
    finally:
        os.environ.clear()
        os.environ.update(environment)
    if html:
        body = to_html(notebook, HTMLExporter)
        with atomic_path(reports_dir / f"{name}.html", suffix=".html") as tmp:
            tmp.write_text(body, encoding="utf-8")
        written.append(reports_dir / f"{name}.html")
    return written


#: notebooks that show a study of ``ablation.datasets`` (what they need, in words)
STUDY_NOTEBOOKS = {"table6_ablation": "Table 6's ablation runs", "table7_volume": "Table 7's volume runs"}


def not_run_reason(name: str, params_path: str | Path = "params.yaml") -> str | None:
    """Why report ``name`` cannot show anything with these params (its study is switched off), or None."""
    if name == "cross_dataset":  # needs two prepared datasets of one modality (read from data/prepared)
        from benchmark.reporting.cross import not_run_reason as cross_not_run_reason

        return cross_not_run_reason(params_path)
    if name not in STUDY_NOTEBOOKS:
        return None
    from benchmark.config import load_section

    if load_section("ablation", params_path).datasets:
        return None
    return (
        f"ablation.datasets is empty in {params_path}, so {STUDY_NOTEBOOKS[name]} were not trained; "
        "list a dataset there to run them (params_paper.yaml: cvc_clinicdb)"
    )


def render_not_run(
    name: str,
    reason: str,
    *,
    notebooks_dir: Path = NOTEBOOKS,
    reports_dir: Path = Path("reports"),
    html: bool = True,
) -> list[Path]:
    """Write ``reports/<name>.ipynb`` (+ ``.html``) saying the report was not run and why, titled like the
    notebook; the report stage calls it instead of executing a notebook whose study is switched off."""
    import nbformat

    source = nbformat.read(notebooks_dir / f"{name}.ipynb", as_version=4)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {title_of(source)}\n\n**Not run**: {reason}.")]
    written = []
    with atomic_path(reports_dir / f"{name}.ipynb", suffix=".ipynb") as tmp:
        nbformat.write(notebook, str(tmp))
    written.append(reports_dir / f"{name}.ipynb")
    if html:
        with atomic_path(reports_dir / f"{name}.html", suffix=".html") as tmp:
            tmp.write_text(to_html(notebook), encoding="utf-8")
        written.append(reports_dir / f"{name}.html")
    return written

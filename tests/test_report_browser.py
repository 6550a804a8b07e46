"""The HTML reports in a real browser: headless Chromium, network off, opened from file://.

Every page must load without a console error, a failed request or a link to a missing file. The
browser is Debian's ``chromium`` (``make browser`` installs it); where it is absent and cannot be
installed, every test here is skipped with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.reporting.browser import Browser, PageReport, find_chromium
from benchmark.reporting.index import REPORTS

ROOT = Path(__file__).resolve().parents[1]
REPORTS_DIR = ROOT / "reports"
PAGES = sorted(path for path in REPORTS_DIR.glob("*.html") if path.name != "index.html")


@pytest.fixture(scope="module")
def chromium() -> str:
    """The path of a headless-capable Chromium; tries ``make browser`` once, else skips the module."""
    if path := find_chromium():
        return path
    if shutil.which("make") is None:
        pytest.skip("headless Chromium is not installed and there is no `make` to run `make browser`")
    try:
        made = subprocess.run(["make", "browser"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        last = ((made.stdout + made.stderr).strip().splitlines() or [f"exit status {made.returncode}"])[-1]
    except subprocess.TimeoutExpired:
        last = "timed out after 300 s"
    if path := find_chromium():
        return path
    pytest.skip(f"headless Chromium is not installed and `make browser` could not install it: {last}")


pytestmark = pytest.mark.usefixtures("chromium")


@pytest.fixture(scope="module")
def browser(chromium):
    with Browser(chromium) as browser:
        yield browser


def problems(page: PageReport) -> list[str]:
    """Everything wrong with a loaded page, one line each (empty: the page is fine)."""
    return (
        [f"console error: {error}" for error in page.console_errors]
        + [f"failed request: {request}" for request in page.failed_requests]
        + [f"broken link: {link}" for link in page.broken_links]
    )


# --- the driver sees each kind of failure (hand-made pages) ---------------------------------------


def _page(browser: Browser, folder: Path, body: str) -> PageReport:
    path = folder / "page.html"
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>t</title></head><body>{body}</body></html>"
    )
    return browser.open(path.as_uri(), timeout_s=20)


def test_a_script_from_the_network_is_a_failed_request(browser, tmp_path):
    page = _page(browser, tmp_path, '<script src="https://cdn.jsdelivr.net/npm/x.js"></script>')
    assert [request for request in page.failed_requests if request.startswith("https://cdn.jsdelivr.net/npm/x.js: ")], (
        page
    )
    assert "ERR_PROXY_CONNECTION_FAILED" in page.failed_requests[0]  # refused by the browser's dead proxy, not by luck


def test_console_error_is_seen(browser, tmp_path):
    page = _page(browser, tmp_path, '<script>console.error("x")</script>')
    assert page.console_errors == ["console.error: x"] and not page.failed_requests


def test_uncaught_exception_is_a_console_error(browser, tmp_path):
    page = _page(browser, tmp_path, '<script>throw new Error("y")</script>')
    assert len(page.console_errors) == 1 and "Error: y" in page.console_errors[0]


def test_link_to_a_missing_file_is_broken(browser, tmp_path):
    page = _page(browser, tmp_path, '<a href="missing.html">gone</a>')
    assert page.broken_links == [(tmp_path / "missing.html").as_uri()]


def test_clean_page_passes_and_external_links_are_listed_apart(browser, tmp_path):
    (tmp_path / "other.html").write_text("<p>other</p>")
    page = _page(
        browser,
        tmp_path,
        '<p id="top">fine</p><a href="other.html">other</a><a href="#top">top</a>'
        '<a href="mailto:a@example.org">mail</a><a href="https://example.org/x">away</a>',
    )
    assert problems(page) == []
    assert page.external_links == ["https://example.org/x"] and len(page.links) == 4


def test_a_page_rendered_with_the_reports_template_loads_cleanly(browser, tmp_path):
    import nbformat

    from benchmark.reporting.render import to_html

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Table 9 — a test report\n\n$x^2$ and [a section](#Table-9-—-a-test-report)."),
        nbformat.v4.new_code_cell(
            "1 + 1", outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
        ),
    ]
    (tmp_path / "report.html").write_text(to_html(notebook), encoding="utf-8")
    page = browser.open((tmp_path / "report.html").as_uri(), timeout_s=30)
    assert problems(page) == [], "\n".join(problems(page))


# --- the committed reports -------------------------------------------------------------------------


def test_index_loads_cleanly_and_links_every_report(browser, tmp_path):
    if not (REPORTS_DIR / "index.html").exists():
        pytest.skip("reports/index.html has not been written (the report stage writes it)")
    page = browser.open((REPORTS_DIR / "index.html").as_uri(), timeout_s=30)
    screenshot = page.screenshot(tmp_path / "index.png")
    print(f"screenshot of the index: {screenshot}")
    data = screenshot.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n")
    if issues := problems(page):
        pytest.fail("reports/index.html in headless Chromium, network off:\n  " + "\n  ".join(issues), pytrace=False)
    linked = {Path(link.split("#")[0]).name for link in page.links if link.startswith("file:")}
    missing = [name for name in REPORTS if (REPORTS_DIR / f"{name}.html").exists() and f"{name}.html" not in linked]
    assert not missing, f"reports/index.html does not link {missing}"


@pytest.mark.parametrize("path", PAGES, ids=lambda path: path.name)
def test_report_loads_offline_without_errors(browser, path):
    page = browser.open(path.as_uri(), timeout_s=30)
    if issues := problems(page):
        pytest.fail(f"reports/{path.name} in headless Chromium, network off:\n  " + "\n  ".join(issues), pytrace=False)

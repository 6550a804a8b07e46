"""Reruns of the reports from a fresh clone: they stop at once, naming what is missing and how to fix it.

A fresh clone carries results/ and reports/ but not data/prepared, data/synthetic or models/; without
this check `make reports` (`dvc repro report`) would retrain the whole pipeline first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.reporting.inputs import HOW_TO_FIX, NEEDS, ReportInputsMissing, missing_inputs, require_inputs

ROOT = Path(__file__).resolve().parents[1]


def test_missing_inputs_name_each_absent_folder_per_notebook_and_dataset(tmp_path):
    (tmp_path / "data" / "prepared" / "a").mkdir(parents=True)
    assert missing_inputs(["table2_segmentation"], ["a"], tmp_path) == []
    assert missing_inputs(["table2_segmentation"], ["a", "b"], tmp_path) == ["data/prepared/b"]
    assert missing_inputs(["table5_quality", "table4_efficiency"], ["a"], tmp_path) == [
        "data/synthetic/a",
        "models/a/runs",
    ]
    assert missing_inputs(["table6_ablation", "generator"], ["a", "b"], tmp_path) == []  # results/ only
    with pytest.raises(ReportInputsMissing, match="make repro"):
        require_inputs(["table1_datasets"], ["b"], tmp_path)
    with pytest.raises(KeyError, match="NEEDS"):
        missing_inputs(["table9"], ["a"], tmp_path)


def test_every_report_notebook_declares_what_it_reads():
    notebooks = {path.stem for path in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks == set(NEEDS)


def _fresh_clone(tmp_path: Path) -> Path:
    """What a fresh clone of this working tree would hold: the files git tracks or would track (not ignored)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout of the repository (and git) to list its files")
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
        .stdout.decode()
        .split("\0")
    )
    clone = tmp_path / "clone"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not in the clone either
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    subprocess.run(["git", "init", "--quiet", str(clone)], check=True, timeout=60)  # dvc needs a scm root
    return clone


def test_make_reports_on_a_fresh_clone_stops_at_once_with_the_fix(tmp_path):
    clone = _fresh_clone(tmp_path)
    venv = Path(sys.prefix)
    if shutil.which("make") is None or not (venv / ".installed-stamp").exists():
        pytest.skip("needs make and the Makefile's virtualenv (make env) to call `make reports` with it")
    start = time.monotonic()
    # -o: use this environment as it is (never reinstall the clone into it)
    done = subprocess.run(
        ["make", "-o", str(venv / ".installed-stamp"), "reports", f"VENV={venv}"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.monotonic() - start
    assert done.returncode != 0, done.stdout[-2000:]
    assert HOW_TO_FIX in done.stderr and "data/prepared/synth_polyp" in done.stderr
    assert elapsed < 60  # stopped before any stage ran
    written = [
        path
        for folder in ("models", "data/procedural", "data/prepared")
        for path in (clone / folder).rglob("*")
        if path.is_file() and path.name != ".gitignore"
    ]
    assert written == []  # no stage ran


def test_the_readme_papermill_rerun_on_a_fresh_clone_fails_with_the_same_message(tmp_path):
    clone = _fresh_clone(tmp_path)
    papermill = Path(sys.executable).parent / "papermill"
    if not papermill.exists():
        pytest.skip("papermill is not installed in this environment")
    environment = dict(os.environ, PYTHONPATH=str(clone))  # the kernel imports the clone's package
    done = subprocess.run(
        [
            str(papermill),
            "notebooks/table2_segmentation.ipynb",
            str(tmp_path / "out.ipynb"),
            "-y",
            "datasets: [synth_polyp]",
        ],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert done.returncode != 0
    assert "ReportInputsMissing" in done.stdout + done.stderr and "make repro" in done.stdout + done.stderr

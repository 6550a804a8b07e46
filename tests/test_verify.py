"""``python -m benchmark.verify``: exact match, differences within seed noise, differences beyond it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark import verify

ROOT = Path(__file__).resolve().parents[1]


def write_run(root: Path, dataset: str, run: str, seed_dice: list[np.ndarray]) -> None:
    """``results/<dataset>/runs/<run>/per_image.csv`` and ``lesions.csv`` with one row per seed x image."""
    folder = root / "results" / dataset / "runs" / run
    folder.mkdir(parents=True, exist_ok=True)
    rows, lesions = [], []
    for index, dice in enumerate(seed_dice):
        for image, value in enumerate(dice):
            rows.append(
                {
                    "dataset": dataset,
                    "method": run,
                    "seed_index": index,
                    "seed": 100 + index,
                    "image_id": f"{image:03d}",
                    "dice": round(float(value), 6),
                    "iou": round(float(value / (2 - value)), 6),
                }
            )
            lesions.append(
                {
                    "dataset": dataset,
                    "method": run,
                    "seed_index": index,
                    "image_id": f"{image:03d}",
                    "lesion": 1,
                    "best_iou": round(float(value / (2 - value)), 6),
                    "detected": bool(value > 0.6),
                }
            )
    pd.DataFrame(rows).to_csv(folder / "per_image.csv", index=False, float_format="%.6f")
    pd.DataFrame(lesions).to_csv(folder / "lesions.csv", index=False, float_format="%.6f")


def seeds(means: list[float], n_images: int = 40, spread: float = 0.1, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(-spread, spread, n_images)
    return [np.clip(mean + base + rng.normal(0, 0.01, n_images), 0, 1) for mean in means]


@pytest.fixture
def reference(tmp_path) -> Path:
    root = tmp_path / "reference"
    write_run(root, "toy", "unet", seeds([0.70, 0.72, 0.68]))
    write_run(root, "toy", "unet+diffaug", seeds([0.66, 0.69, 0.67], seed=1))
    return root


def rerun_copy(reference: Path, tmp_path: Path) -> Path:
    root = tmp_path / "rerun"
    shutil.copytree(reference, root)
    return root


def test_identical_results_are_an_exact_match(reference, tmp_path):
    report = verify.verify(reference, rerun_copy(reference, tmp_path))
    assert [c.status for c in report.runs] == ["exact", "exact"]
    assert not report.failed
    assert "exact match" in verify.format_report(report)


def test_other_seeds_of_the_same_science_are_within_seed_noise(reference, tmp_path):
    rerun = rerun_copy(reference, tmp_path)
    write_run(rerun, "toy", "unet", seeds([0.71, 0.69, 0.70]))  # other bits, the same mean and spread
    report = verify.verify(reference, rerun)
    changed = next(c for c in report.runs if c.run == "unet")
    assert changed.status == "differs"
    assert changed.verdict == "within seed noise"
    assert not report.failed
    assert changed.n_units == 40 and changed.unit.startswith("image")
    assert changed.ci_low < changed.delta_dice < changed.ci_high or np.isclose(changed.ci_low, changed.ci_high)


def test_a_shift_far_beyond_seed_noise_fails(reference, tmp_path):
    rerun = rerun_copy(reference, tmp_path)
    write_run(rerun, "toy", "unet", seeds([0.50, 0.51, 0.49]))  # 20 points lower, seed sd 1 point
    report = verify.verify(reference, rerun)
    changed = next(c for c in report.runs if c.run == "unet")
    assert changed.verdict == "EXCEEDS seed noise"
    assert report.failed
    assert changed.delta_dice == pytest.approx(-0.20, abs=0.01)


def test_welch_p_is_scipys_and_holm_adjusts_over_differing_runs(reference, tmp_path):
    rerun = rerun_copy(reference, tmp_path)
    write_run(rerun, "toy", "unet", seeds([0.69, 0.66, 0.67]))
    write_run(rerun, "toy", "unet+diffaug", seeds([0.64, 0.63, 0.65], seed=1))
    report = verify.verify(reference, rerun, alpha=0.05)
    for comparison in report.runs:
        a = (
            pd.read_csv(reference / "results/toy/runs" / comparison.run / "per_image.csv")
            .groupby("seed_index")["dice"]
            .mean()
        )
        b = (
            pd.read_csv(rerun / "results/toy/runs" / comparison.run / "per_image.csv")
            .groupby("seed_index")["dice"]
            .mean()
        )
        assert comparison.welch_p == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    p = sorted(c.welch_p for c in report.runs)
    assert sorted(c.p_holm for c in report.runs) == pytest.approx([min(1, 2 * p[0]), min(1, max(2 * p[0], p[1]))])


def test_units_cluster_the_ci(reference, tmp_path):
    rerun = rerun_copy(reference, tmp_path)
    write_run(rerun, "toy", "unet", seeds([0.71, 0.69, 0.70]))
    a = pd.read_csv(reference / "results/toy/runs/unet/per_image.csv", dtype={"image_id": str})
    b = pd.read_csv(rerun / "results/toy/runs/unet/per_image.csv", dtype={"image_id": str})
    units = {f"{i:03d}": f"seq{i // 8}" for i in range(40)}  # 5 sequences of 8 frames
    mean, low, high, n_units = verify.unit_difference_ci(a, b, "dice", units)
    assert n_units == 5
    per_image = (b.groupby("image_id")["dice"].mean() - a.groupby("image_id")["dice"].mean()).to_numpy()
    assert mean == pytest.approx(per_image.mean())
    assert low <= mean <= high


def test_runs_on_one_side_only_are_listed_not_failed(reference, tmp_path):
    rerun = rerun_copy(reference, tmp_path)
    shutil.rmtree(rerun / "results/toy/runs/unet+diffaug")
    write_run(rerun, "toy", "sdseg", seeds([0.5, 0.5, 0.5]))
    report = verify.verify(reference, rerun)
    assert {c.run: c.status for c in report.runs} == {
        "sdseg": "rerun only",
        "unet": "exact",
        "unet+diffaug": "reference only",
    }
    assert not report.failed


def test_lock_data_outputs_are_compared_by_md5(tmp_path):
    lock = (
        "schema: '2.0'\nstages:\n  procedural:\n    cmd: x\n    outs:\n    - path: data/procedural/a\n      md5: {a}\n"
        "  train:\n    cmd: y\n    outs:\n    - path: models/a/runs\n      md5: {m}\n"
    )
    (tmp_path / "ref").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "ref/dvc.lock").write_text(lock.format(a="1.dir", m="2.dir"))
    (tmp_path / "new/dvc.lock").write_text(lock.format(a="3.dir", m="4.dir"))
    frame = verify.compare_locks(tmp_path / "ref/dvc.lock", tmp_path / "new/dvc.lock")
    assert frame.to_dict(orient="records") == [{"stage": "procedural", "path": "data/procedural/a", "identical": False}]


def test_dvc_dir_md5_is_dvcs_own(tmp_path):
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem

    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(b"\x89PNG\r\n")
    (folder / "sub" / "b.csv").write_text("id,x\r\n1,2\n")
    fs = LocalFileSystem()
    _, _, obj = build(HashFileDB(fs, str(tmp_path / "odb")), str(folder), fs, "md5", dry_run=True)
    assert verify.dvc_dir_md5(folder) == obj.hash_info.value


def test_the_default_procedural_data_match_the_committed_dvc_lock(tmp_path):
    """A fresh generation of the default's procedural datasets has the md5 the committed dvc.lock records (the
    stage's one output folder, data/procedural, holding synth_polyp and synth_fundus)."""
    result = verify.check_procedural(ROOT / "params.yaml", ROOT / "dvc.lock", tmp_path)
    assert set(result) == {"procedural"}
    assert sorted(path.name for path in (tmp_path / "procedural").iterdir()) == ["synth_fundus", "synth_polyp"]
    for dataset, (committed, fresh) in result.items():
        assert committed == fresh, f"{dataset}: dvc.lock {committed}, fresh generation {fresh}"


def test_command_line_exit_codes_and_git_reference(reference, tmp_path):
    rerun = rerun_copy(reference, tmp_path)
    git = ["git", "-C", str(rerun), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "results"], check=True)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "benchmark.verify", "--root", str(rerun), *args],
            cwd=rerun,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    assert run().returncode == 0  # the working copy against HEAD
    write_run(rerun, "toy", "unet", seeds([0.71, 0.69, 0.70]))
    within = run("--json", str(tmp_path / "v.json"))
    assert within.returncode == 0 and "within seed noise" in within.stdout
    assert (tmp_path / "v.json").is_file()
    write_run(rerun, "toy", "unet", seeds([0.40, 0.41, 0.39]))
    beyond = run()
    assert beyond.returncode == 1 and "EXCEEDS seed noise" in beyond.stdout
    assert run("--reference", str(reference)).returncode == 1  # another clone's folder as the reference
    missing = run("--reference", "no-such-revision")
    assert missing.returncode == 2 and "neither a folder nor a git revision" in missing.stderr


def test_identical_results_with_other_data_md5_are_named_apart(reference, tmp_path):
    """E.g. .npz containers from another Python version: the arrays and every result are the same, the md5 is not."""
    rerun = rerun_copy(reference, tmp_path)
    lock = (
        "schema: '2.0'\nstages:\n  prepare@toy:\n    cmd: x\n    outs:\n    - path: data/prepared/toy\n      md5: {}\n"
    )
    (reference / "dvc.lock").write_text(lock.format("1.dir"))
    (rerun / "dvc.lock").write_text(lock.format("2.dir"))
    text = verify.format_report(verify.verify(reference, rerun))
    assert "differs: data/prepared/toy" in text
    assert "results byte-identical; some data outputs have another md5" in text
    assert not verify.verify(reference, rerun).failed

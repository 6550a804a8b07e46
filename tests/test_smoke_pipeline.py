"""End to end: the real DVC pipeline on a shrunken copy of params.yaml, in a temporary repository.

Runs `dvc repro` (procedural data -> prepare -> generation -> train and evaluate 3 seeds ->
unit-level comparisons -> cross-dataset scores -> papermill reports) on the two procedural datasets,
a CVC-ClinicDB copy in the publisher's layout (612 tiny frames, 29 sequences: the grouped real-layout
dataset the studies of Tables 2, 5, 6 and 7 run on here) and a dataset of one's own in the `folder`
layout (images/ + masks/, attributes.csv with groups and flat labels), then exports a validated
synthetic set, and checks every report's content, the comparisons
at the independent unit, `dvc metrics show`, that a second `dvc repro` does nothing, that a seed
retrained from scratch or killed midway and resumed from its checkpoint ends with the same
per-image metrics, and that `dvc exp run -S` changes one key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CVC_FOLDER = "data/raw/CVC-ClinicDB"
OWN_FOLDER = "data/raw/my_polyps"


def make_own_folder(root: Path, n: int = 30, size: int = 48) -> None:
    """A dataset of one's own: images/*.png + masks/*.png (0/255), attributes.csv with group and flat."""
    import numpy as np
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    rows = ["id,group,flat"]
    for i in range(n):
        cy, cx = rng.uniform(0.3 * size, 0.7 * size, 2)
        radius = rng.uniform(0.1, 0.2) * size
        lesion = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        image = rng.normal(110, 10, (size, size, 3)) + lesion[..., None] * np.array([70, 15, 0])
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "images" / f"case{i:02d}.png")
        Image.fromarray((lesion * 255).astype(np.uint8)).save(root / "masks" / f"case{i:02d}.png")
        rows.append(f"case{i:02d},patient{i // 3},{'true' if i % 4 == 0 else 'false'}")
    (root / "attributes.csv").write_text("\n".join(rows) + "\n")


def shrink(params: dict) -> dict:
    """The committed params with every size cut to seconds of work (same keys, same stages)."""
    params = json.loads(json.dumps(params))
    params["procedural"]["synth_polyp"].update(
        n_images=40, height=96, width=128, px_per_mm=2.0, test_sequences=6, test_frames=2
    )
    params["prepare"]["datasets"]["cvc_clinicdb"] = CVC_FOLDER
    params["prepare"]["datasets"]["my_polyps"] = OWN_FOLDER  # the folder loader, named in prepare.folders
    params["prepare"]["folders"] = {"my_polyps": {"modality": "polyp"}}
    params["procedural"]["synth_fundus"].update(n_train=8, n_validation=8, n_test=8, size=128)
    params["prepare"]["image_size"] = 32
    params["prepare"]["val_fraction"] = 0.2
    params["autoencoder"].update(block_out_channels=[8, 16], steps=6, batch_size=4, warmup_steps=1, checkpoint_every=3)
    params["generator"].update(steps=2)
    params["generator"]["latent"].update(max_length=16, batch_size=8)
    params["generator"]["latent"]["denoiser"].update(
        block_out_channels=[8, 16], steps=4, batch_size=4, warmup_steps=1, checkpoint_every=2
    )
    params["generator_check"].update(n_pairs=4, gallery_backgrounds=1, gallery_seeds=1)
    params["synthesize"].update(volumes=[0.5, 1.0], volume=0.5, n_variants=2, batch_size=8, top_up_rounds=2)
    params["quality"].update(thetas=[0.5, 0.7])
    # a 2-epoch validator passes few real lesions: the up-front ceiling check (tests/test_synthesize_precheck.py)
    # would stop the tiny run, which checks the pipeline's mechanics, not the gate's strength
    params["synthesize"]["min_validator_pass_rate"] = 0.0
    # every registered method is covered by the contract tests; the smoke run keeps one of each
    # family (supervised, pixel mask diffusion, latent) plus the augmentation axis
    params["train"]["threads"] = 1  # CI runs two test workers on two cores (so one training worker)
    params["validator"]["epochs"] = 2
    params["train"]["methods"] = ["unet", "medsegdiff_v1", "diffaug", "unet+diffaug"]
    # the studies on one dataset: Table 6 (every row), Table 7 (two volumes), the θ sweep (two θ)
    # and the U-Net's augmentation axis
    params["ablation"].update(
        datasets=["cvc_clinicdb"],
        synthetic_sets=["notext", "basic"],
        runs=[
            "unet+noaug",
            "unet+diffaug_v100",
            "unet+diffaug_t50",
            "diffaug+diffaug_notext",
            "diffaug+diffaug_unvalidated",
            "diffaug+diffaug_basic",
            "diffaug+real",
            "unet+copypaste",
            "unet+shuffled",
            "unet+diffaug_epochs",
            "unet+copypaste_epochs",
        ],
    )
    params["train"]["unet"].update(channels=[8, 16, 32], num_res_units=1, epochs=2, batch_size=8)
    params["train"]["medsegdiff_v1"].update(
        condition_channels=[8, 16],
        denoiser_channels=[8, 16],
        image_size=32,
        epochs=2,
        batch_size=8,
        inference_steps=2,
        ensemble_size=2,
        validation_steps=1,
    )
    params["train"].setdefault("diffaug", {}).update(
        vision_channels=8,
        vision_blocks=1,
        fused_channels=4,
        denoiser_channels=[8, 16],
        epochs=2,
        batch_size=8,
        augmentation="none",
    )
    return params


def run(command: list[str], cwd: Path) -> str:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("smoke")
    shutil.copy(ROOT / "dvc.yaml", work / "dvc.yaml")
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    # the stages' code deps (benchmark/...) must exist in the workspace, as in a clone
    shutil.copytree(ROOT / "benchmark", work / "benchmark", ignore=shutil.ignore_patterns("__pycache__"))
    params = shrink(yaml.safe_load((ROOT / "params.yaml").read_text()))
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / ".gitignore").write_text("__pycache__/\n")
    from test_loader_cvc_clinicdb import make_cvc

    make_cvc(work / CVC_FOLDER, frames=range(1, 613))  # the publisher's layout: Original/ + Ground Truth/, 1..612.tif
    make_own_folder(work / OWN_FOLDER)
    run(["git", "init", "-q"], work)
    run(["git", "config", "user.email", "smoke@test"], work)
    run(["git", "config", "user.name", "smoke"], work)
    run([str(BIN / "dvc"), "init", "-q"], work)
    run([str(BIN / "dvc"), "config", "core.analytics", "false"], work)
    # as in a clone: DVC ignores the bytecode caches Python writes beside the code deps (without
    # PYTHONDONTWRITEBYTECODE they would change benchmark/<family> between two repros)
    shutil.copy(ROOT / ".dvcignore", work / ".dvcignore")
    run([str(BIN / "dvc"), "repro"], work)
    return work


class _Tables(HTMLParser):
    """Every <table> of an HTML fragment as a list of rows (lists of cell texts)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def report_tables(path: Path) -> list[list[list[str]]]:
    """The HTML tables an executed notebook displays; fails on any error output anywhere in it."""
    notebook = json.loads(path.read_text())
    tables = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (
                f"{path.name} cell {index}: {output.get('ename')}: {output.get('evalue')}"
            )
            if output["output_type"] == "stream" and output["name"] == "stderr":
                text = "".join(output["text"])
                assert "Traceback" not in text and "Error" not in text, (
                    f"{path.name} cell {index} wrote to stderr: {text[:500]}"
                )
            html = "".join(output.get("data", {}).get("text/html", []))
            if "<table" in html:
                parser = _Tables()
                parser.feed(html)
                tables += parser.tables
    return tables


#: report -> the least number of tables it must display (each with a header and rows holding numbers)
REPORT_TABLES = {
    "table1_datasets": 1,
    "table2_segmentation": 4,
    "table3_lesions": 3,
    "table4_efficiency": 1,
    "table5_quality": 5,
    "table6_ablation": 2,
    "table7_volume": 2,
    "generator": 1,
    "cross_dataset": 1,  # synth_polyp <-> cvc_clinicdb: two polyp datasets
}


def test_every_report_holds_tables_with_numbers_and_no_error(workspace):
    for name, least in REPORT_TABLES.items():
        assert (workspace / "reports" / f"{name}.html").is_file()
        tables = report_tables(workspace / "reports" / f"{name}.ipynb")
        assert len(tables) >= least, f"{name}: {len(tables)} tables, expected at least {least}"
        for table in tables:
            body = table[1:]
            assert body, f"{name}: a table without rows: {table}"
            assert any(re.search(r"\d", cell) for row in body for cell in row), (
                f"{name}: a table without numbers: {table[:3]}"
            )
        html = (workspace / "reports" / f"{name}.html").read_text()
        assert "Traceback" not in html


def test_reports_hold_the_expected_rows(workspace):
    table2 = (workspace / "reports" / "table2_segmentation.html").read_text()
    assert (
        "U-Net" in table2 and "±" in table2 and "p (Holm)" in table2 and "MedSegDiff-V1 (re-implementation)" in table2
    )
    assert (
        "best other on validation" in table2
        and "sensitivity analysis" in table2
        and "random intercept per sequence" in table2
    )
    table3 = (workspace / "reports" / "table3_lesions.html").read_text()
    assert (
        "lesion FNR (%)" in table3
        and "early glaucoma" in table3
        and "flat" in table3
        and "Δ sensitivity (pp)" in table3
    )
    assert (
        "Verdict" in table3 and "Δ lesion FNR (pp)" in table3 and "Verdict" in table2 and "pixel FNR (%)" in table2
    )  # issue 20
    assert "Augmentation × architecture" in table2 and "DiffAug − standard (pp)" in table2
    table6 = (workspace / "reports" / "table6_ablation.html").read_text()
    for row in (
        "DiffAug (full)",
        "w/o text guidance",
        "w/o validation loop",
        "w/o diverse prompts",
        "w/o latent estimation",
        "w/o synthetic data",
    ):
        assert row in table6
    assert "cvc_clinicdb" in table6
    table7 = (workspace / "reports" / "table7_volume.html").read_text()
    assert "DiffAug + 0.5× synthetic" in table7 and "DiffAug + 1× synthetic" in table7 and "image/png" in table7
    assert "sequences" in table7  # the differences are tested over CVC-ClinicDB's video sequences
    # the controls (real data: copy-paste and shuffled labels, no oracle), their verdict, and the other budget
    assert (
        "copy-paste + 0.5×" in table7
        and "shuffled labels + 0.5×" in table7
        and "DiffAug + 0.5×, equal epochs" in table7
    )
    assert "copy-paste" in table7 and "no oracle control on real data" in table7
    controls = json.loads((workspace / "results" / "cvc_clinicdb" / "controls" / "summary.json").read_text())
    assert controls["copypaste"]["count"] == controls["copypaste"]["wanted"] > 0 and "oracle" not in controls
    steps = {
        run: next(
            iter(
                json.loads((workspace / "results" / "cvc_clinicdb" / "runs" / run / "inference.json").read_text())[
                    "training"
                ].values()
            )
        )
        for run in ("unet+diffaug", "unet+diffaug_epochs", "unet+copypaste", "unet+copypaste_epochs")
    }
    # equal epochs: more steps wherever the run has synthetic data. Copy-paste always has; the smoke run's tiny
    # generator may get no sample past the new-lesion gate (it accepted none on CI's machine), and then the
    # DiffAug run trains on real data alone under either budget
    assert steps["unet+copypaste"]["n_train_synthetic"] > 0
    for run in ("unet+diffaug", "unet+copypaste"):
        more = steps[f"{run}_epochs"]["optimizer_steps"] > steps[run]["optimizer_steps"]
        assert more == (steps[run]["n_train_synthetic"] > 0), (run, steps[run], steps[f"{run}_epochs"])
    assert "Downstream Dice at each θ" in (workspace / "reports" / "table5_quality.html").read_text()
    volume = pd.read_csv(workspace / "reports" / "plots" / "dice_vs_volume.csv")
    assert (
        volume["volume"].tolist() == [0.0, 0.0, 0.5, 1.0] and volume["dice"].between(0, 100).all()
    )  # percent, as the tables
    assert pd.read_csv(workspace / "reports" / "plots" / "dice_vs_theta.csv")["theta"].tolist() == [0.5, 0.7]
    table1 = (workspace / "reports" / "table1_datasets.html").read_text()
    assert "synth_polyp" in table1 and "synth_fundus" in table1 and "cvc_clinicdb" in table1 and "image/png" in table1
    assert "separate test world" in table1


def test_own_folder_dataset_runs_through_every_stage(workspace):
    """The folder loader's dataset: prepared with its groups and flat labels, trained, compared by group, reported."""
    manifest = json.loads((workspace / "data" / "prepared" / "my_polyps" / "manifest.json").read_text())
    assert manifest["loader"] == "FolderDataset" and manifest["modality"] == "polyp"
    attributes = pd.read_csv(workspace / "data" / "prepared" / "my_polyps" / "attributes.csv")
    sides = attributes.groupby("group")["split"].nunique()
    assert (sides == 1).all() and attributes["flat"].any()  # a patient on one side of the split only
    for run in ("unet", "diffaug", "unet+diffaug"):
        assert (workspace / "results" / "my_polyps" / "runs" / run / "per_image.csv").is_file()
    comparisons = pd.read_csv(workspace / "results" / "my_polyps" / "comparisons.csv")
    assert (comparisons["unit"] == "sequence").all()  # the group column is the unit (patients here)
    assert "my_polyps" in (workspace / "reports" / "table2_segmentation.html").read_text()


def test_cross_dataset_table_covers_every_polyp_pair(workspace):
    summary = pd.read_csv(workspace / "results" / "cvc_clinicdb" / "cross" / "summary.csv")
    assert {"synth_polyp", "my_polyps"} <= set(summary["test"])
    assert "synth_fundus" not in set(summary["test"])
    assert "my_polyps" in (workspace / "reports" / "cross_dataset.html").read_text()


def test_export_writes_exactly_the_accepted_set(workspace, tmp_path):
    out = tmp_path / "export"
    run(
        [
            sys.executable,
            "-m",
            "benchmark.export",
            "--dataset",
            "cvc_clinicdb",
            "--out",
            str(out),
            "--include-rejected",
        ],
        workspace,
    )
    table = pd.read_csv(workspace / "data" / "synthetic" / "cvc_clinicdb" / "manifest.csv")
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(list((out / "images").glob("*.png"))) == int(table["accepted"].sum())
    assert len(manifest) == len(table) and manifest["accepted"].sum() == table["accepted"].sum()
    assert "θ" in (out / "datasheet.md").read_text() or "theta" in (out / "datasheet.md").read_text()


def test_comparisons_run_over_the_independent_unit(workspace):
    """Video sequences on the grouped datasets (the procedural test world, CVC-ClinicDB's frame ranges), images on fundus."""
    from benchmark.stats.comparisons import COLUMNS

    split = json.loads((workspace / "data" / "splits" / "synth_polyp.json").read_text())
    assert len(split["test"]) == 12  # the test world: 6 sequences x 2 frames
    expected = {"synth_polyp": ("sequence", 6), "cvc_clinicdb": ("sequence", None), "synth_fundus": ("image", 8)}
    for dataset, (unit, n_units) in expected.items():
        comparisons = pd.read_csv(workspace / "results" / dataset / "comparisons.csv")
        assert tuple(comparisons.columns) == COLUMNS
        assert (comparisons["unit"] == unit).all(), dataset
        if n_units:
            assert (comparisons.loc[comparisons["table"] == "table2", "n_units"] == n_units).all(), dataset
        assert {"table2", "table3"} <= set(comparisons["table"])
    cvc = pd.read_csv(workspace / "results" / "cvc_clinicdb" / "comparisons.csv")
    assert {"augmentation", "table6", "table7", "theta"} <= set(cvc["table"])
    assert {"unet+copypaste", "unet+shuffled", "unet+diffaug_epochs"} <= set(cvc.loc[cvc["table"] == "table7", "run_a"])
    assert cvc["n_units"].between(3, 29).all()  # whole sequences of the 29 in the test split
    assert json.loads((workspace / "results" / "cvc_clinicdb" / "mixed_effects.json").read_text())["unit"] == "sequence"


def test_per_image_results_cover_every_seed_and_test_image(workspace):
    for dataset in ("synth_polyp", "synth_fundus"):
        per_image = pd.read_csv(
            workspace / "results" / dataset / "runs" / "unet" / "per_image.csv", dtype={"image_id": str}
        )
        split = json.loads((workspace / "data" / "splits" / f"{dataset}.json").read_text())
        assert per_image["seed_index"].nunique() == 3
        assert sorted(per_image.groupby("seed_index")["image_id"].apply(sorted).iloc[0]) == sorted(split["test"])
        assert per_image["dice"].between(0, 1).all()
        assert not set(split["test"]) & set(split["train"]) and not set(split["test"]) & set(split["val"])
        assert per_image["seed"].nunique() == 3
        lesions = pd.read_csv(
            workspace / "results" / dataset / "runs" / "unet" / "lesions.csv", dtype={"image_id": str}
        )
        assert set(lesions["image_id"]) == set(split["test"]) and lesions["seed_index"].nunique() == 3


def test_metrics_show_lists_per_seed_dice(workspace):
    shown = json.loads(run([str(BIN / "dvc"), "metrics", "show", "--json"], workspace))
    flat = json.dumps(shown)
    for index in range(3):
        assert f"seed_{index}" in flat
    assert '"dice"' in flat


def test_second_repro_is_a_no_op(workspace):
    output = run([str(BIN / "dvc"), "repro"], workspace)
    assert "Running stage" not in output, output
    assert "up to date" in output.lower()


def _per_image(workspace: Path, run: str) -> pd.DataFrame:
    return pd.read_csv(workspace / "results" / "synth_polyp" / "runs" / run / "per_image.csv", dtype={"image_id": str})


def test_a_seed_retrained_from_scratch_gives_identical_metrics(workspace):
    """Determinism on CPU: the same params give the same per-image metrics in two runs."""
    reference = _per_image(workspace, "unet")
    shutil.rmtree(workspace / "models" / "synth_polyp" / "runs" / "unet" / "seed_1")
    output = run([str(BIN / "dvc"), "repro", "train@synth_polyp"], workspace)
    assert "synth_polyp/unet seed 1: trained" in output and "synth_polyp/unet seed 0: up to date" in output
    pd.testing.assert_frame_equal(_per_image(workspace, "unet"), reference)


def test_training_killed_midway_resumes_to_identical_metrics(workspace):
    """Kill `dvc repro` while a seed has a checkpoint but no model yet; the rerun resumes that seed from
    its checkpoint (fewer optimizer steps than a whole run) to the same metrics, and nothing
    half-written is ever read as a finished model."""
    names = ("unet", "unet+diffaug")
    references = {name: _per_image(workspace, name) for name in names}
    runs_dir = workspace / "models" / "synth_polyp" / "runs"
    whole = {name: json.loads((runs_dir / name / "seed_0" / "run.json").read_text()) for name in names}
    for name in names:
        assert (
            whole[name]["optimizer_steps_this_call"] == whole[name]["optimizer_steps"]
            and not whole[name]["checkpoint_at_start"]
        )
        for seed_dir in sorted((runs_dir / name).glob("seed_*")):
            shutil.rmtree(seed_dir)
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    process = subprocess.Popen(
        [str(BIN / "dvc"), "repro", "train@synth_polyp"],
        cwd=workspace,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    interrupted = None
    deadline = time.monotonic() + 300
    while interrupted is None and process.poll() is None and time.monotonic() < deadline:
        for seed_dir in sorted(runs_dir.glob("*/seed_*")):
            if (seed_dir / "checkpoint.pt").is_file() and not (seed_dir / "model").exists():
                interrupted = seed_dir  # trained at least one epoch, not finished
                break
        else:
            time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert interrupted is not None, "the stage finished before it could be killed midway"
    for seed_dir in runs_dir.glob("*/seed_*"):  # a model folder only ever appears complete
        if (seed_dir / "model").exists():
            assert (seed_dir / "model" / "config.json").is_file()
    output = run([str(BIN / "dvc"), "repro", "train@synth_polyp"], workspace)
    assert "trained" in output
    record = json.loads((interrupted / "run.json").read_text())
    assert record["checkpoint_at_start"], f"{interrupted}: the rerun found no checkpoint"
    assert 0 < record["optimizer_steps_this_call"] < record["optimizer_steps"], (
        f"{interrupted} took {record['optimizer_steps_this_call']} of {record['optimizer_steps']} steps: it did not resume from its checkpoint"
    )
    for name, reference in references.items():
        pd.testing.assert_frame_equal(_per_image(workspace, name), reference)


def test_exp_run_set_param(workspace):
    run(["git", "add", "-A"], workspace)
    run(["git", "commit", "-qm", "smoke baseline"], workspace)
    output = run([str(BIN / "dvc"), "exp", "run", "-S", "train.unet.epochs=1"], workspace)
    assert "Running stage 'train@synth_polyp'" in output and "Running stage 'compare@synth_polyp'" in output
    assert "Running stage 'procedural'" not in output and "Running stage 'prepare@" not in output
    shown = run([str(BIN / "dvc"), "exp", "show", "--json"], workspace)
    assert "train.unet.epochs" in shown or '"epochs": 1' in shown


def test_iterative_scoring_only_for_the_methods_own_run(workspace):
    """Table 6's "w/o latent estimation" row reads N-step DDIM scores of DiffAug's own run; runs of the
    same segmenter on other data (Table 6's ablations) are scored single-step only."""
    runs = workspace / "results" / "cvc_clinicdb" / "runs"
    assert "iterative" in json.loads((runs / "diffaug" / "inference.json").read_text())
    assert "iterative" not in json.loads((runs / "diffaug+diffaug_notext" / "inference.json").read_text())

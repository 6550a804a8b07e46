"""``python -m benchmark.export``: the accepted synthetic set as a plain folder of PNGs, a manifest and a datasheet.

The fixture runs the real synthesize stage (``benchmark.stages.synthesize.main``, one in-process worker) on a tiny
prepared polyp dataset, with a stand-in generator (paints the mask white) and validator (finds every other
painted lesion), so the folder it exports is exactly what the pipeline writes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from prepared_fixtures import write_prepared

from benchmark import export as exporter
from benchmark.data.base import DatasetError

DATASET = "tiny_polyp"
PARAMS = """\
train:
  threads: 1
synthesize:
  theta: 0.7
  volume: 0.5
  volumes: [0.5, 1.0]
  n_variants: 3
  top_up: false
  batch_size: 8
  workers: 1
"""


def _paint(jobs):
    images = jobs.backgrounds.copy()
    images[jobs.masks.astype(bool)] = 255
    return images


def _find_every_other(images):
    probabilities = (images[..., 0] == 255).astype(np.float32)
    probabilities[1::2] = 0
    return probabilities


def _stand_in_batch(jobs):
    from benchmark.generators.loop import generate_and_segment

    return generate_and_segment(_paint, _find_every_other, jobs)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    from benchmark.stages import synthesize

    root = tmp_path_factory.mktemp("export")
    # no lesion-free twins: backgrounds keep their own polyp, so a training label (own ∪ new) differs from
    # the inpainted region and the export must not mix them up
    write_prepared(root / "data" / "prepared", "polyp", n=24, twins=False)
    (root / "data" / "splits").mkdir()
    shutil.move(root / "data" / "prepared" / f"{DATASET}.json", root / "data" / "splits" / f"{DATASET}.json")
    (root / "params.yaml").write_text(PARAMS)
    for folder in ("generator", "validator"):
        (root / "models" / DATASET / folder / "model").mkdir(parents=True)
    validator = {"dice": 0.81, "iou": 0.7, "n_images": 6, "pass_rate": 0.5, "n_lesion_images": 6, "theta": 0.7}
    (root / "results" / DATASET / "validator").mkdir(parents=True)
    (root / "results" / DATASET / "validator" / "metrics.json").write_text(json.dumps(validator))
    with pytest.MonkeyPatch.context() as patch, contextlib.chdir(root):
        patch.setattr(synthesize, "_load_models", lambda settings: None)
        patch.setattr(synthesize, "_generate_and_segment", _stand_in_batch)
        patch.setattr(sys, "argv", ["synthesize", "--dataset", DATASET, "--no-progress"])
        synthesize.main()
    table = pd.read_csv(root / "data" / "synthetic" / DATASET / "manifest.csv")
    assert table["accepted"].any() and not table["accepted"].all()  # the fixture exercises both
    with np.load(root / "data" / "synthetic" / DATASET / "samples.npz") as archive:
        assert (archive["labels"] != archive["masks"]).any()
    return root


@pytest.fixture
def inside(workspace, monkeypatch) -> Path:
    monkeypatch.chdir(workspace)
    return workspace


def _source(root: Path) -> tuple[pd.DataFrame, dict]:
    folder = root / "data" / "synthetic" / DATASET
    with np.load(folder / "samples.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    return pd.read_csv(folder / "manifest.csv", dtype={"background_id": str, "donor_id": str}), arrays


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_exports_exactly_the_accepted_set_and_flags_rejected_ones_apart(inside, tmp_path):
    table, _ = _source(inside)
    accepted = {f"syn{order}" for order in table.loc[table["accepted"], "order"]}
    out = exporter.export(DATASET, tmp_path / "set")
    rows = pd.read_csv(out / "manifest.csv")
    assert set(rows["sample_id"]) == accepted and len(rows) == len(accepted) and rows["accepted"].all()
    for folder in ("images", "masks", "inpainted"):
        assert {path.stem for path in (out / folder).glob("*.png")} == accepted
    assert not (out / "rejected").exists()

    everything = exporter.export(DATASET, tmp_path / "all", include_rejected=True)
    rows = pd.read_csv(everything / "manifest.csv")
    assert set(rows["sample_id"]) == {f"syn{order}" for order in table["order"]}
    rejected = set(rows.loc[~rows["accepted"], "sample_id"])
    assert rejected == set(rows["sample_id"]) - accepted and rejected
    assert {path.stem for path in (everything / "images").glob("*.png")} == accepted  # images/: accepted only
    assert {path.stem for path in (everything / "rejected" / "images").glob("*.png")} == rejected
    assert all(path.startswith("rejected/") for path in rows.loc[~rows["accepted"], "image"])


def test_pixels_equal_the_stored_arrays(inside, tmp_path):
    _, arrays = _source(inside)
    out = exporter.export(DATASET, tmp_path / "set", include_rejected=True)
    rows = pd.read_csv(out / "manifest.csv")
    for row in rows.itertuples():
        image, mask, painted = (_png(out / path) for path in (row.image, row.mask, row.inpainted))
        assert image.dtype == mask.dtype == np.uint8 and image.shape == arrays["images"][row.order].shape
        np.testing.assert_array_equal(image, arrays["images"][row.order])
        np.testing.assert_array_equal(mask, arrays["labels"][row.order] * 255)  # the training label, 0 / 255
        np.testing.assert_array_equal(painted, arrays["masks"][row.order] * 255)
        assert set(np.unique(mask)) <= {0, 255}


def test_manifest_carries_the_provenance_both_ious_and_the_training_subset(inside, tmp_path):
    from benchmark.generators.loop import accepted_subset

    table, _ = _source(inside)
    out = exporter.export(DATASET, tmp_path / "set")
    rows = pd.read_csv(out / "manifest.csv", dtype={"background_id": str, "donor_id": str})
    required = {"sample_id", "image", "mask", "prompt", "donor_id", "background_id", "seed", "iou", "iou_union"}
    assert required | {"accepted", "in_training_subset", "stratum_size", "stratum_type"} <= set(rows.columns)
    source = table.set_index("order").loc[rows["order"]].reset_index()
    for column in ("iou", "iou_union", "prompt", "donor_id", "background_id", "seed"):
        assert rows[column].tolist() == source[column].tolist(), column
    # the subset the train stage takes at synthesize.volume (0.5 x 12 real training images)
    trained = accepted_subset(inside / "data" / "synthetic" / DATASET, 0.5, 12, strict=False).ids
    assert set(rows.loc[rows["in_training_subset"], "sample_id"]) == set(trained)
    assert 0 < len(trained) < len(rows)  # the fixture has more accepted samples than the subset


def test_datasheet_states_theta_counts_strata_validator_and_command(inside, tmp_path):
    from benchmark.quality.strata import strata

    table, _ = _source(inside)
    out = exporter.export(DATASET, tmp_path / "set")
    text = (out / "datasheet.md").read_text()
    n_accepted, n_generated = int(table["accepted"].sum()), len(table)
    assert "\n- θ = 0.7: a sample is accepted when" in text  # the gate's θ, as recorded by the synthesize stage
    assert f"{n_accepted} of {n_generated} generated" in text
    sizes = strata(table)["size"]
    for stratum, count in sizes.value_counts().items():
        accepted = int(table["accepted"][sizes.eq(stratum).to_numpy()].sum())
        assert f"| size | {stratum} | {count} | {accepted} |" in text
    assert "validation Dice 0.8100" in text and "only at this size" in text
    assert "inherits the source dataset's terms" in text
    assert f"python -m benchmark.export --dataset {DATASET} --out {tmp_path / 'set'}" in text
    # θ changed in params after synthesis: the datasheet keeps the θ the set was gated at and says so
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.replace("theta: 0.7", "theta: 0.8"))
    text = (exporter.export(DATASET, tmp_path / "later", params_path=str(params)) / "datasheet.md").read_text()
    assert "\n- θ = 0.7: a sample is accepted when" in text and "now sets synthesize.theta = 0.8" in text


def test_a_failing_export_leaves_no_partial_folder(inside, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporter, "datasheet", broken)  # fails after every PNG is written
    with pytest.raises(RuntimeError, match="disk full"):
        exporter.export(DATASET, tmp_path / "set")
    assert list(tmp_path.iterdir()) == []  # neither --out nor its temporary sibling


def test_refuses_a_non_empty_folder_without_force_and_force_replaces_only_an_export(inside, tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty; pass --force"):
        exporter.export(DATASET, out)
    with pytest.raises(DatasetError, match="holds no previous export"):
        exporter.export(DATASET, out, force=True)
    assert (out / "notes.txt").read_text() == "mine"

    previous = exporter.export(DATASET, tmp_path / "previous", include_rejected=True)
    with pytest.raises(DatasetError, match="not empty; pass --force"):
        exporter.export(DATASET, previous)
    exporter.export(DATASET, previous, force=True)
    assert not (previous / "rejected").exists() and pd.read_csv(previous / "manifest.csv")["accepted"].all()


def test_errors_name_the_missing_folder_and_the_fix(inside, tmp_path):
    with pytest.raises(DatasetError, match=r"data/synthetic/other/manifest.csv is missing.*dvc repro synthesize@other"):
        exporter.export("other", tmp_path / "set")
    with pytest.raises(DatasetError, match=r"unknown synthetic set 'typo'; known sets: main, basic, notext"):
        exporter.export(DATASET, tmp_path / "set", synthetic_set="typo")
    with pytest.raises(DatasetError, match=r"dvc repro ablation_synthesize@tiny_polyp-notext"):
        exporter.export(DATASET, tmp_path / "set", synthetic_set="notext")
    assert list(tmp_path.iterdir()) == []


def test_no_accepted_sample_is_an_error_unless_rejected_ones_are_asked_for(workspace, tmp_path, monkeypatch):
    root = tmp_path / "root"
    shutil.copytree(workspace, root)
    manifest = root / "data" / "synthetic" / DATASET / "manifest.csv"
    pd.read_csv(manifest).assign(accepted=False).to_csv(manifest, index=False)
    monkeypatch.chdir(root)
    with pytest.raises(DatasetError, match=r"holds no accepted sample.*--include-rejected"):
        exporter.export(DATASET, tmp_path / "set")
    assert not (tmp_path / "set").exists()
    out = exporter.export(DATASET, tmp_path / "set", include_rejected=True)
    assert not pd.read_csv(out / "manifest.csv")["accepted"].any()


def test_command_line_writes_the_folder_and_reports_errors_in_one_line(inside, tmp_path, monkeypatch, capsys):
    from benchmark.stages import common

    monkeypatch.setattr(sys, "argv", ["export", "--dataset", DATASET, "--out", str(tmp_path / "set"), "--no-progress"])
    common.run(exporter.main)
    assert "accepted samples" in capsys.readouterr().out and (tmp_path / "set" / "datasheet.md").is_file()
    monkeypatch.setattr(sys, "argv", ["export", "--dataset", DATASET, "--out", str(tmp_path / "set")])
    with pytest.raises(SystemExit) as stopped:
        common.run(exporter.main)
    assert stopped.value.code == 1 and "error: --out" in capsys.readouterr().err

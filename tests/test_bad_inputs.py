"""A corpus of broken inputs: datasets, params, notebook parameters, checkpoints, results, writes.

Each case breaks one thing and checks that the error names the file or key and says what to do,
and, where something is written, that nothing half-written is left behind. The cases are small and
independent; more specific checks of each loader and trainer live beside their code's tests.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from benchmark.config import ParamsError, load_section
from benchmark.data.base import DatasetError

# Every test here is one bad-input case, counted when it passes (tests/conftest.py) by the last test.
pytestmark = pytest.mark.bad_input_case

ROOT = Path(__file__).resolve().parents[1]


def committed_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def write_params(tmp_path: Path, content) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def edited(change) -> dict:
    content = committed_params()
    change(content)
    return content


# --- params.yaml ---------------------------------------------------------------------------------

PARAMS_CASES = {
    "unknown section": (
        lambda c: c.update(trian={"n_seeds": 3}),
        "train",
        r"unknown key 'trian'.*did you mean 'train'",
    ),
    "typo in a method key": (
        lambda c: c["train"]["unet"].update(epoch=3),
        "train",
        r"train\.unet\.epoch.*did you mean 'epochs'",
    ),
    "wrong type": (
        lambda c: c["train"].update(n_seeds="three"),
        "train",
        r"'train\.n_seeds' must be an integer, got 'three'",
    ),
    "wrong type in a list": (
        lambda c: c["train"]["unet"].update(channels=[16, "x"]),
        "train",
        r"train\.unet\.channels",
    ),
    "value out of range": (
        lambda c: c["synthesize"].update(theta=1.5),
        "synthesize",
        r"theta must be in \[0, 1\), got 1\.5",
    ),
    "volume above the generated maximum": (
        lambda c: c["synthesize"].update(volume=9.0),
        "synthesize",
        r"volume 9\.0 must be .* max\(volumes\)",
    ),
    "unknown method in a run": (
        lambda c: c["train"].update(methods=["unet", "unett"]),
        "train",
        r"unknown method 'unett'",
    ),
    "unknown data modifier in a run": (
        lambda c: c["ablation"].update(runs=["unet+diffaug_x2"]),
        "ablation",
        r"'unet\+diffaug_x2'.*modifier 'x2'; use v<volume %>",
    ),
    "unknown dataset": (
        lambda c: c["prepare"]["datasets"].update(kvasir="data/raw/kvasir"),
        "prepare",
        r"unknown dataset 'kvasir'; known:",
    ),
    "unknown option of a folder dataset": (
        lambda c: c["prepare"].update(
            datasets={**c["prepare"]["datasets"], "mine": "data/raw/mine"},
            folders={"mine": {"modality": "polyp", "treshold": 100}},
        ),
        "prepare",
        r"unknown key 'prepare\.folders\.mine\.treshold'",
    ),
    "folder dataset missing from prepare.datasets": (
        lambda c: c["prepare"].update(folders={"mine": {"modality": "polyp"}}),
        "prepare",
        r"folders lists 'mine', which datasets does not; add 'mine: <its folder>' under prepare\.datasets",
    ),
    "backend without its weights folder": (
        lambda c: c["generator"].update(backend="sdxl_inpainting"),
        "generator",
        r"pretrained_path",
    ),
    "ablation set not generated": (
        lambda c: c["ablation"].update(
            synthetic_sets=["basic"], runs=[*c["ablation"]["runs"], "diffaug+diffaug_notext"]
        ),
        "ablation",
        r"needs the synthetic set 'notext'; add it to ablation\.synthetic_sets",
    ),
}


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_params_errors_name_the_key(case, tmp_path):
    change, section, message = PARAMS_CASES[case]
    path = write_params(tmp_path, edited(change))
    with pytest.raises(ParamsError, match=message):
        load_section(section, path)


@pytest.mark.parametrize(
    "case, content, message",
    [
        ("missing", None, r"absent\.yaml.*not found"),
        ("malformed", "train:\n  n_seeds: [3\n", r"params\.yaml is not valid YAML"),
        ("not a mapping", "- a\n- b\n", r"params\.yaml must hold a mapping of sections, got list"),
    ],
)
def test_params_file_missing_malformed_or_not_a_mapping(case, content, message, tmp_path):
    path = tmp_path / "absent.yaml" if content is None else write_params(tmp_path, content)
    with pytest.raises(ParamsError, match=message):
        load_section("train", path)


@pytest.mark.parametrize(
    "case, change, message",
    [
        (
            "ablation dataset not prepared",
            lambda c: c["ablation"].update(datasets=["kvasir_seg"]),
            r"ablation\.datasets lists \['kvasir_seg'\], not in prepare\.datasets",
        ),
        (
            "run in both lists",
            lambda c: c["ablation"].update(runs=[*c["ablation"]["runs"], "unet"]),
            r"\['unet'\] are listed in both train\.methods and ablation\.runs",
        ),
    ],
)
def test_rules_across_sections(case, change, message, tmp_path):
    from benchmark.params import check_params

    with pytest.raises(ParamsError, match=message):
        check_params(str(write_params(tmp_path, edited(change))))


# --- datasets ------------------------------------------------------------------------------------


def cvc_folder(root: Path, frames=(1, 2)) -> Path:
    """A CVC-ClinicDB-layout folder of PNGs: ``Original/<n>.png`` + ``Ground Truth/<n>.png``."""
    for folder in ("Original", "Ground Truth"):
        (root / folder).mkdir(parents=True)
    for frame in frames:
        Image.fromarray(np.full((24, 32, 3), 40 * frame, np.uint8)).save(root / "Original" / f"{frame}.png")
        label = np.zeros((24, 32), np.uint8)
        label[5:15, 8:20] = 255
        Image.fromarray(label).save(root / "Ground Truth" / f"{frame}.png")
    return root


def loader(root: Path):
    from benchmark.data.cvc_clinicdb import CVCClinicDB

    return CVCClinicDB(root, n_frames=None)


def test_dataset_folder_missing(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere.*does not exist"):
        loader(tmp_path / "nowhere")


def test_dataset_folder_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty has no 'Original/' and 'Ground Truth/'"):
        loader(tmp_path / "empty").records()


def test_dataset_without_images(tmp_path):
    for folder in ("Original", "Ground Truth"):
        (tmp_path / "cvc" / folder).mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"Original holds no image files"):
        loader(tmp_path / "cvc").records()


def test_unreadable_image_is_named(tmp_path):
    root = cvc_folder(tmp_path / "cvc")
    path = root / "Original" / "2.png"
    path.write_bytes(path.read_bytes()[:40])
    data = loader(root)
    with pytest.raises(DatasetError, match=r"Original/2\.png"):
        data.read_image(data.records()[1])


def test_mask_of_another_size_is_named(tmp_path):
    from benchmark.data.base import check_same_size

    root = cvc_folder(tmp_path / "cvc")
    Image.fromarray(np.zeros((20, 32), np.uint8) + 255).save(root / "Ground Truth" / "2.png")
    data = loader(root)
    record = data.records()[1]
    with pytest.raises(DatasetError, match=r"Ground Truth/2\.png is 32x20 but .*Original/2\.png is 32x24"):
        check_same_size(data.read_image(record), data.read_label(record), record)


def test_mask_with_unexpected_values_is_named(tmp_path):
    root = cvc_folder(tmp_path / "cvc")
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(root / "Ground Truth" / "1.png")
    data = loader(root)
    with pytest.raises(DatasetError, match=r"Ground Truth/1\.png holds no polyp"):
        data.read_label(data.records()[0])


def test_image_without_mask_is_named(tmp_path):
    root = cvc_folder(tmp_path / "cvc")
    (root / "Ground Truth" / "2.png").unlink()
    with pytest.raises(DatasetError, match=r"without a mask in .*Ground Truth, e\.g\. .*Original/2\.png"):
        loader(root).records()


def test_prepare_of_a_listed_but_missing_dataset_writes_nothing(tmp_path, monkeypatch):
    import subprocess
    import sys

    content = committed_params()
    content["prepare"]["datasets"] = {"synth_polyp": str(tmp_path / "not_there")}
    path = write_params(tmp_path, content)
    monkeypatch.chdir(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "benchmark.stages.prepare", "--dataset", "synth_polyp", "--params", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert "not_there" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "prepared" / "synth_polyp").exists()


# --- notebook parameters -------------------------------------------------------------------------


def test_notebook_parameter_that_does_not_exist():
    from benchmark.reporting.notebook import validate

    with pytest.raises(
        ParamsError, match=r"table7_volume\.ipynb: unknown parameter\(s\) \['volumes'\]; parameters are"
    ):
        validate({"volumes": [1, 2]}, "table7_volume")


def test_notebook_parameter_of_the_wrong_type():
    from benchmark.reporting.notebook import validate

    with pytest.raises(ParamsError, match=r"'n_resamples' must be an integer"):
        validate({"n_resamples": "many"}, "table3_lesions")


def test_report_lists_a_notebook_that_does_not_exist(tmp_path):
    from benchmark.reporting.render import render_notebook

    with pytest.raises(FileNotFoundError, match=r"nope\.ipynb does not exist; report\.notebooks lists 'nope'"):
        render_notebook("nope", {}, notebooks_dir=tmp_path, reports_dir=tmp_path / "reports")
    assert not (tmp_path / "reports" / "nope.ipynb").exists()


# --- checkpoints and results ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_unet(tmp_path_factory, tiny_splits):
    from benchmark.methods import get_method

    cls = get_method("unet")
    method = cls(cls.smoke_config())
    folder = tmp_path_factory.mktemp("unet")
    method.fit(tiny_splits["train"], tiny_splits["val"], seed=1, out_dir=folder / "run", progress=False)
    method.save(folder / "model")
    return folder / "model"


def test_checkpoint_from_another_method(saved_unet):
    from benchmark.methods import get_method

    with pytest.raises(ValueError, match=r"holds a 'unet' model, not 'transunet'"):
        get_method("transunet").load(saved_unet)


def test_checkpoint_folder_without_its_config(saved_unet, tmp_path):
    import shutil

    from benchmark.methods import get_method

    broken = tmp_path / "model"
    shutil.copytree(saved_unet, broken)
    (broken / "config.json").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"config\.json is missing; the model folder is incomplete, rerun `dvc repro`"
    ):
        get_method("unet").load(broken)


def test_checkpoint_folder_without_its_weights(saved_unet, tmp_path):
    import shutil

    from benchmark.methods import get_method

    broken = tmp_path / "model"
    shutil.copytree(saved_unet, broken)
    for weights in broken.glob("*.pt"):
        weights.unlink()
    with pytest.raises(FileNotFoundError, match=r"is missing; the model folder is incomplete, rerun `dvc repro`"):
        get_method("unet").load(broken)


@pytest.mark.parametrize(
    "method", ["unet", "medsegdiff_v1"]
)  # the U-Net's truncation makes torch raise OSError (EINVAL)
def test_truncated_checkpoint_names_the_file_and_the_fix(method, tmp_path, tiny_splits):
    """A weights file cut short (disk full, interrupted copy) is named, with the folder to delete."""
    from benchmark.methods import get_method
    from benchmark.utils.io import CorruptFileError

    cls = get_method(method)
    instance = cls(cls.smoke_config())
    instance.fit(tiny_splits["train"], tiny_splits["val"], seed=1, out_dir=tmp_path / "run", progress=False)
    instance.save(tmp_path / "model")
    path = tmp_path / "model" / "model.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        CorruptFileError, match=r"model\.pt cannot be read .*truncated or not a torch checkpoint; delete its folder"
    ):
        cls.load(tmp_path / "model")


def test_weights_file_that_is_not_a_torch_file(tmp_path):
    from benchmark.utils.io import CorruptFileError, load_torch_file

    path = tmp_path / "network.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(CorruptFileError, match=r"network\.pt cannot be read"):
        load_torch_file(path)


def test_corrupt_results_file_is_named(tmp_path):
    from benchmark.utils.io import read_json

    (tmp_path / "metrics.json").write_text('{"dice": ')
    with pytest.raises(ValueError, match=r"metrics\.json is not valid JSON .*delete it and rerun `dvc repro`"):
        read_json(tmp_path / "metrics.json")
    with pytest.raises(FileNotFoundError, match=r"absent\.json does not exist; run the stage that writes it"):
        read_json(tmp_path / "absent.json")


def test_synthetic_set_missing_names_the_stage(tmp_path):
    from benchmark.generators.loop import accepted_subset

    with pytest.raises(FileNotFoundError, match=r"manifest\.csv is missing; run the synthesize stage"):
        accepted_subset(tmp_path / "data" / "synthetic" / "synth_polyp", 1.0, 10)


def test_results_of_a_run_that_was_not_evaluated(tmp_path):
    from benchmark.reporting.tables import load_per_image

    with pytest.raises(FileNotFoundError, match=r"per_image\.csv is missing; run `dvc repro train@synth_polyp`"):
        load_per_image(tmp_path, ["synth_polyp"], ["unet"])


def test_nan_loss_stops_training_with_the_fix(tiny_splits, tmp_path):
    import dataclasses

    from benchmark.data.prepared import SegmentationData
    from benchmark.methods import get_method

    cls = get_method("unet")
    config = dataclasses.replace(cls.smoke_config(), learning_rate=1e30)
    train = tiny_splits["train"]
    with pytest.raises(FloatingPointError, match=r"lower the learning rate"):
        cls(config).fit(
            SegmentationData(train.ids, train.images, train.masks),
            tiny_splits["val"],
            seed=1,
            out_dir=tmp_path,
            progress=False,
        )


# --- writes: a full disk leaves nothing half-written ----------------------------------------------


def fail_on_write(monkeypatch):
    """Simulate a full disk: every os.replace (the final rename of an atomic write) raises ENOSPC
    after the content was written to the temporary path."""

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)


def test_disk_full_on_a_results_file(tmp_path, monkeypatch):
    from benchmark.utils.io import write_json

    target = tmp_path / "results" / "metrics.json"
    write_json(target, {"dice": 0.5})
    fail_on_write(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        write_json(target, {"dice": 0.9})
    assert json.loads(target.read_text()) == {"dice": 0.5}  # the old file is intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]  # no temporary file left


def test_disk_full_on_a_model_folder(tmp_path, monkeypatch):
    from benchmark.utils.io import atomic_dir

    target = tmp_path / "models" / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights.pt").write_bytes(b"old")
    fail_on_write(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        with atomic_dir(target) as tmp:
            (tmp / "weights.pt").write_bytes(b"new")
    assert (target / "weights.pt").read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]


def test_disk_full_while_writing_the_content(tmp_path):
    from benchmark.utils.io import atomic_path

    target = tmp_path / "per_image.csv"
    with pytest.raises(OSError, match="No space left"):
        with atomic_path(target, suffix=".csv") as tmp:
            tmp.write_text("dataset,method\n")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.exists() and not list(tmp_path.iterdir())


def test_the_corpus_has_at_least_25_cases(request, bad_input_cases_passed):
    """At least 25 bad-input cases of this module RAN and PASSED before this test, in this process.

    Counted by tests/conftest.py (every passed call of an item marked ``bad_input_case``, which
    ``pytestmark`` gives each test here), so a case that is deleted, skipped, deselected or fails
    no longer counts. Needs the module in one process: plain pytest or ``--dist loadfile`` (make test).
    """
    cases = [
        item.nodeid
        for item in request.session.items
        if item.get_closest_marker("bad_input_case") and item is not request.node
    ]
    passed = [nodeid for nodeid in cases if nodeid in bad_input_cases_passed]
    missing = sorted(set(cases) - set(passed))
    assert len(passed) >= 25, (
        f"only {len(passed)} bad-input cases ran and passed before this test; not run or not passed: {missing} "
        "(run the whole module in one process: plain pytest or -n N --dist loadfile)"
    )

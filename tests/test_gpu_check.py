"""benchmarks/gpu_check.sh: the CPU fallback end to end (``--device cpu --tiny``), its refusal without a dataset,
the paper-scale params it derives (SDXL found or not), and Table 4's readiness table from a hand-made json."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
METHODS = {"diffaug", "sdseg", "unet", "resnet50_unet", "transunet", "difftrans", "medsegdiff_v1", "medsegdiff_v2"}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        [str(SCRIPT), *arguments], capture_output=True, text=True, env=environment, cwd=ROOT, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The CPU fallback on the procedural synth_polyp (an empty --raw-dir), written outside the repository."""
    folder = tmp_path_factory.mktemp("gpu_check")
    (folder / "raw").mkdir()
    output = folder / "results" / "benchmarks" / "gpu_cpu.json"
    repository = {path: path.stat().st_mtime_ns for path in _repository_outputs()}
    result = _check(
        "--device", "cpu", "--tiny", "--threads", "1", "--raw-dir", str(folder / "raw"), "--output", str(output)
    )
    assert {path: path.stat().st_mtime_ns for path in _repository_outputs()} == repository  # nothing written there
    return result, output


def _repository_outputs() -> list[Path]:
    """The repository's own pipeline folders and benchmark files, which the check must leave alone."""
    folders = [ROOT / "data" / "prepared", ROOT / "data" / "splits", ROOT / "models", ROOT / "results"]
    return [path for folder in folders if folder.is_dir() for path in [folder, *folder.iterdir()]]


def test_tiny_cpu_check_writes_every_rate(tiny_run):
    result, output = tiny_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads(output.read_text())
    assert record["completed"] and record["device"]["kind"] == "cpu" and record["device"]["torch"]
    profile = record["profile"]
    assert profile["dataset"] == "synth_polyp" and profile["image_size"] == 32 and profile["tiny"]
    assert profile["n_seeds"] == 1 and profile["n_train"] > 0 and "latent backend" in profile["shortened"]["generator"]
    assert set(record["methods"]) == METHODS
    for name, entry in record["methods"].items():
        assert entry["status"] == "ok", (name, entry)
        assert entry["train_samples_per_second"] > 0 and entry["inference_images_per_second"] > 0, name
        assert entry["optimizer_steps"] >= profile["steps"] and entry["test_images"] > 0
    assert record["methods"]["diffaug"]["run"] == "diffaug+real"  # no synthetic set is made: same network, real split
    loop = record["generate_validate"]
    assert loop["status"] == "ok" and loop["samples"] == profile["loop_jobs"] == 8 and loop["samples_per_second"] > 0
    assert 0 <= loop["acceptance_rate"] <= 1
    assert all(stage["status"] == "ok" and stage["wall_seconds"] > 0 for stage in record["stages"].values())
    assert {"procedural", "prepare@synth_polyp", "train", "generate+validate"} <= set(record["stages"])
    assert record["total_wall_seconds"] > 0 and "[gpu-check" in result.stdout  # a progress line per stage


def test_readiness_table_reads_the_check(tiny_run):
    from benchmark.reporting import readiness

    _, output = tiny_run
    table = readiness.readiness_table(output.parents[1])
    assert len(table) == len(METHODS) + 1 and (table["status"] == "ok").all()
    assert table["what"].iloc[0].startswith("DiffAug")  # in the order they were timed, DiffAug's segmenter first
    assert table["what"].iloc[-1].startswith("DiffAug generate + validate loop (latent backend, 8 samples")
    assert "every stage finished" in readiness.readiness_notes(output.parents[1])


@pytest.mark.parametrize("arguments", [["--real-only"], ["--dataset", "cvc_clinicdb"]])
def test_no_dataset_exits_with_the_folders_looked_at(tmp_path, arguments):
    result = _check(
        "--device", "cpu", "--tiny", "--raw-dir", str(tmp_path), "--output", str(tmp_path / "x.json"), *arguments
    )
    assert result.returncode == 2
    assert "no dataset the registry can load was found" in result.stderr
    assert str(tmp_path / "CVC-ClinicDB") in result.stderr and "not there" in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_budget_stops_the_workspace_side_and_keeps_what_finished(tmp_path):
    gpu_check = _script("gpu_check")
    progress = tmp_path / "progress.json"
    fake = (
        "import json, sys, time; json.dump({'stages': {'prepare@d': {'status': 'ok'}, 'train': {'status': 'running'}},"
        " 'methods': {'unet': {'status': 'ok'}, 'sdseg': {'status': 'running'}}}, open(sys.argv[1], 'w')); time.sleep(60)"
    )
    record, seconds = gpu_check.run_workspace(
        [sys.executable, "-c", fake, str(progress)], tmp_path, dict(os.environ), 3.0, progress
    )
    assert seconds < 30 and record["stages"]["prepare@d"]["status"] == "ok"
    assert (
        record["stages"]["train"]["status"]
        == record["methods"]["sdseg"]["status"]
        == ("aborted: the check's budget of 3 s ran out")
    )
    assert record["methods"]["unet"]["status"] == "ok"


def _paper_args(**changes) -> argparse.Namespace:
    return argparse.Namespace(
        **{"tiny": False, "device": "cuda", "steps": 200, "sdxl_path": None, "threads": 4, **changes}
    )


def test_paper_params_are_valid_and_fall_back_to_the_latent_backend(tmp_path):
    from benchmark.params import check_params

    gpu_check = _script("gpu_check")
    base = yaml.safe_load((ROOT / "params_paper.yaml").read_text())
    missing = tmp_path / "no-sdxl"
    params, notes = gpu_check.derive_params(base, _paper_args(sdxl_path=str(missing)), "synth_polyp", None)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    sections = check_params(str(path))  # every key the stages read, valid
    assert sections["prepare"].image_size == 256 and list(sections["prepare"].datasets) == ["synth_polyp"]
    assert sections["generator"].backend == "latent" and sections["autoencoder"].pretrained_path is None
    assert notes["generator"] == f"latent backend at 256 px, SDXL weights not found at {missing}"
    assert set(sections["train"].methods) == METHODS and sections["train"].n_seeds == 1
    assert sections["train"].config_of("medsegdiff_v1").inference_steps == 10  # sampling cut, and said so
    assert "(profile: 100 x 5)" in notes["medsegdiff_v1 inference"]
    assert sections["train"].config_of("diffaug").denoiser_channels == (320, 640, 1280, 1280)  # paper-size networks
    assert sections["ablation"].runs == () and sections["evaluate"].inference_steps == ()

    sdxl = tmp_path / "sdxl"
    (sdxl / "vae").mkdir(parents=True)
    (sdxl / "model_index.json").write_text("{}")
    params, notes = gpu_check.derive_params(base, _paper_args(sdxl_path=str(sdxl)), "cvc_clinicdb", "/data/CVC")
    assert (
        params["generator"]["backend"] == "sdxl_inpainting" and params["generator"]["sdxl_inpainting"]["steps"] == 200
    )
    assert (
        params["autoencoder"]["pretrained_path"] == str((sdxl / "vae").resolve())
        and "pretrained VAE" in notes["autoencoder"]
    )
    assert params["prepare"]["datasets"] == {"cvc_clinicdb": "/data/CVC"}


def test_trainer_length_and_device_slug():
    workers, gpu_check = _script("gpu_check_workers"), _script("gpu_check")
    assert workers.length_for(200, 415, 16) == {"epochs": 8, "epoch_size": None}  # 26 steps an epoch: 208 steps
    assert workers.length_for(4, 680, 8) == {"epochs": 1, "epoch_size": 32}  # an epoch longer than the steps: cut
    assert gpu_check.slug("NVIDIA H100 80GB HBM3") == "nvidia_h100_80gb_hbm3"


def _hand_made(folder: Path) -> Path:
    record = {
        "device": {
            "kind": "cuda",
            "name": "NVIDIA H100 80GB HBM3",
            "torch": "2.14.1",
            "cuda": "13.0",
            "memory_gib": 79.2,
        },
        "profile": {
            "image_size": 256,
            "steps": 200,
            "n_seeds": 1,
            "dataset": "cvc_clinicdb",
            "tiny": False,
            "budget_seconds": 540,
            "base_params": "params_paper.yaml",
            "shortened": {"generator": "latent backend at 256 px, SDXL weights not found at /m/sdxl"},
        },
        "methods": {
            "unet": {
                "status": "ok",
                "train_samples_per_second": 812.34,
                "inference_images_per_second": 2450.0,
                "inference_setting": "one forward pass",
            },
            "medsegdiff_v1": {"status": "failed: OutOfMemoryError: CUDA out of memory"},
        },
        "generate_validate": {
            "status": "ok",
            "samples_per_second": 21.456,
            "acceptance_rate": 0.25,
            "backend": "latent",
            "samples": 64,
            "sampling": "50 DDIM steps, guidance 7.5",
        },
        "stages": {"train": {"status": "ok"}, "validator@cvc_clinicdb": {"status": "aborted: budget"}},
        "total_wall_seconds": 512.4,
    }
    path = folder / "benchmarks" / "gpu_nvidia_h100_80gb_hbm3.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    return path


def test_readiness_table_from_a_hand_made_json(tmp_path):
    from benchmark.reporting import readiness

    _hand_made(tmp_path)
    table = readiness.readiness_table(tmp_path)
    assert list(table.columns) == list(readiness.COLUMNS) and len(table) == 3  # two methods and the loop
    table = table.set_index("what")
    unet = table.loc["U-Net"]
    assert (
        unet["training samples/s"] == "812.3"
        and unet["inference samples/s (wall clock)"] == "2450.0 (one forward pass)"
    )
    assert unet["device"] == "NVIDIA H100 80GB HBM3 (torch 2.14.1, CUDA 13.0, 79.2 GiB)"
    assert (
        unet["setting"] == "256 px, 200 steps, 1 seed, cvc_clinicdb"
        and unet["source"] == "gpu_nvidia_h100_80gb_hbm3.json"
    )
    failed = table.loc[table.index.str.startswith("MedSegDiff-V1")].iloc[0]
    assert failed["training samples/s"] == "–" and "out of memory" in failed["status"]
    loop = table.loc[table.index.str.startswith("DiffAug generate + validate loop")].iloc[0]
    assert loop["inference samples/s (wall clock)"] == "21.46 generated + validated, 25% accepted"
    assert "64 samples, 50 DDIM steps" in loop.name
    notes = readiness.readiness_notes(tmp_path)
    assert "512 s of the 540 s budget" in notes and "not finished: validator@cvc_clinicdb" in notes
    assert "SDXL weights not found at /m/sdxl" in notes


def test_readiness_without_a_check_says_how_to_run_it(tmp_path):
    from benchmark.reporting import readiness

    assert readiness.readiness_table(tmp_path).empty
    assert (
        "benchmarks/gpu_check.sh" in readiness.readiness_notes(tmp_path)
        and "No GPU readiness check" in readiness.NOT_RUN
    )

"""Run-folder bookkeeping shared by the persisted training stages."""

import numpy as np

from benchmark.stages import common


def test_fingerprint_changes_with_payload_arrays_and_code():
    base = common.fingerprint({"a": 1}, [np.zeros(3)], ("benchmark/stages/common.py",))
    assert base == common.fingerprint({"a": 1}, [np.zeros(3)], ("benchmark/stages/common.py",))
    assert base != common.fingerprint({"a": 2}, [np.zeros(3)], ("benchmark/stages/common.py",))
    assert base != common.fingerprint({"a": 1}, [np.ones(3)], ("benchmark/stages/common.py",))
    assert base != common.fingerprint({"a": 1}, [np.zeros(3)], ("benchmark/stages/train.py",))


def test_reuse_or_reset_skips_finished_resumes_unfinished_and_clears_stale(tmp_path):
    run = tmp_path / "run"
    assert common.reuse_or_reset(run, "k1", done="model") is False  # fresh
    (run / "checkpoint.pt").write_text("partial")
    assert common.reuse_or_reset(run, "k1", done="model") is False  # same key, unfinished: keep the checkpoint
    assert (run / "checkpoint.pt").is_file()
    (run / "model").mkdir()
    assert common.reuse_or_reset(run, "k1", done="model") is True  # finished
    assert common.reuse_or_reset(run, "k2", done="model") is False  # other inputs: cleared
    assert not (run / "checkpoint.pt").exists() and (run / "fingerprint.txt").read_text().strip() == "k2"


def test_non_main_ranks_do_not_touch_the_folder(tmp_path, monkeypatch):
    run = tmp_path / "run"
    common.reuse_or_reset(run, "k1", done="model")
    (run / "checkpoint.pt").write_text("x")
    monkeypatch.setenv("RANK", "1")
    assert common.reuse_or_reset(run, "k1", done="model") is False
    assert (run / "checkpoint.pt").is_file()


def test_code_closure_follows_imports_but_not_registries():
    files = common.code_closure("benchmark.methods.unet")
    assert "benchmark/methods/unet.py" in files and "benchmark/methods/supervised.py" in files
    assert "benchmark/data/augment.py" in files  # imported by the shared trainer
    assert "benchmark/methods/__init__.py" not in files  # the registry: adding a method must not retrain U-Net
    assert not any("generators" in f for f in files)

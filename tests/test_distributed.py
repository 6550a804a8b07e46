"""Data-parallel training on CPU: two gloo processes (torch.distributed.run, the launcher behind
``accelerate launch``) take the same step as one process with the same global batch."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "inpainting_step.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: list[str], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command + [str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out / "weights.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    single = _run([sys.executable, str(SCRIPT)], tmp / "single")
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(SCRIPT),
    ]
    double = _run(launcher, tmp / "double")
    return single, double, tmp


def test_two_processes_really_ran_and_hold_identical_weights(runs):
    single, double, tmp = runs
    assert single["world"] == 1 and double["world"] == 2
    digests = [(tmp / "double" / f"digest_rank{rank}.txt").read_text() for rank in (0, 1)]
    assert digests[0] == digests[1]


def test_two_processes_match_one_process_with_the_same_global_batch(runs):
    single, double, _ = runs
    # the all-reduced gradient equals the global-batch gradient (up to summation order)
    torch.testing.assert_close(double["gradients"], single["gradients"], atol=1e-6, rtol=1e-4)
    # Adam's first update is lr * g / (|g| + eps): equal wherever |g| is well above eps; where
    # |g| ~ eps rounding noise decides, so those elements are excluded.
    moved = single["gradients"].abs() > 1e-5
    assert moved.float().mean() > 0.5
    torch.testing.assert_close(double["weights"][moved], single["weights"][moved], atol=1e-6, rtol=1e-5)

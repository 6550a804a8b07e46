"""The pinned CPU code path (benchmark/numerics.py): same bits under every simulated CPU level.

The cross-level tests run ``tests/scripts/numerics_workload.py`` (a few procedural frames of each
dataset, two training steps of the default's U-Net and of a small diffusers denoiser) in fresh
processes, since NumPy and torch read their CPU level once, at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import numerics

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "tests" / "scripts" / "numerics_workload.py"
EXPECTED = json.loads((ROOT / "tests" / "expected" / "numerics_workload.json").read_text())
HAS_AVX2 = numerics.is_x86_64() and numerics.TORCH_LEVEL_FLAGS <= numerics.cpu_flags()
needs_avx2 = pytest.mark.skipif(not HAS_AVX2, reason="the pinned level is x86-64 with AVX2; this machine has neither")

#: what a machine without AVX2 / AVX-512 would give NumPy and torch (SSE4 level), and a user's own settings
LOWER_LEVEL = {
    "NPY_DISABLE_CPU_FEATURES": numerics.NUMPY_ABOVE_BASELINE,
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
}
PINNED_KEYS = set(numerics.NUMPY_ENVIRONMENT) | set(numerics.TORCH_ENVIRONMENT) | {numerics.SWITCH}


def _workload(tmp_path: Path, name: str, extra: dict[str, str]) -> dict:
    environment = {key: value for key, value in os.environ.items() if key not in PINNED_KEYS}
    environment.update(extra)
    out = tmp_path / f"{name}.json"
    subprocess.run([sys.executable, str(WORKLOAD), str(out)], check=True, cwd=ROOT, env=environment, timeout=600)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("numerics")
    return {
        "pinned": _workload(folder, "pinned", {}),
        "pinned_lower": _workload(folder, "pinned_lower", LOWER_LEVEL),
        "native": _workload(folder, "native", {numerics.SWITCH: "native"}),
        "native_lower": _workload(folder, "native_lower", {numerics.SWITCH: "native", **LOWER_LEVEL}),
    }


@needs_avx2
def test_pinned_bits_do_not_depend_on_the_cpu_level_the_environment_asks_for(runs):
    # the process that starts with a lower machine's settings runs the pinned path all the same
    assert runs["pinned_lower"]["procedural"] == runs["pinned"]["procedural"]
    assert runs["pinned_lower"]["training"] == runs["pinned"]["training"]
    assert runs["pinned"]["numerics"]["torch_cpu_capability"] == "AVX2"
    assert set(runs["pinned"]["numerics"]["numpy_dispatch"].values()) == {"baseline(X86_V2)"}


@needs_avx2
def test_the_simulated_levels_really_change_the_bits_without_pinning(runs):
    # the control: without the pins, the lower level takes another torch path (so the test above can fail)
    assert runs["native_lower"]["numerics"]["torch_cpu_capability"] == "DEFAULT"
    assert runs["native_lower"]["training"] != runs["native"]["training"]
    assert runs["native_lower"]["training"] != runs["pinned"]["training"]
    # NumPy's lower level is its baseline, the level it is pinned to
    assert runs["native_lower"]["procedural"] == runs["pinned"]["procedural"]


@needs_avx2
def test_pinned_bits_match_the_committed_ones_recorded_on_another_cpu(runs):
    """The committed hashes were recorded on an AVX-512 machine; every AVX2 machine must give them."""
    assert runs["pinned"]["numerics"]["level"] == EXPECTED["level"]
    assert runs["pinned"]["procedural"] == EXPECTED["procedural"]
    assert runs["pinned"]["training"] == EXPECTED["training"]


def test_this_test_process_runs_pinned():
    """conftest imports benchmark first, so the tests run the pipeline's code path."""
    import numpy  # noqa: F401
    import torch

    described = numerics.describe()
    assert described["mode"] == "pinned"
    if numerics.is_x86_64():
        assert set(numerics.numpy_dispatch().values()) == {"baseline(X86_V2)"}
        assert os.environ["NPY_DISABLE_CPU_FEATURES"] == numerics.NUMPY_ABOVE_BASELINE
    if HAS_AVX2:
        assert torch.backends.cpu.get_cpu_capability() == "AVX2"
        assert described["level"] == "pinned:numpy-X86_V2+torch-x86-64-v3"


def test_pinned_environment_by_machine():
    avx2 = numerics.TORCH_LEVEL_FLAGS | {"sse4_2", "avx512f"}
    assert numerics.pinned_environment(avx2, "x86_64") == {**numerics.NUMPY_ENVIRONMENT, **numerics.TORCH_ENVIRONMENT}
    # an x86-64 CPU without AVX2: ATen would crash on an avx2 request, so only NumPy is pinned
    assert numerics.pinned_environment(frozenset({"sse4_2", "avx"}), "x86_64") == numerics.NUMPY_ENVIRONMENT
    assert numerics.pinned_environment(avx2, "aarch64") == {}
    assert numerics.level("pinned", frozenset({"sse4_2"})).endswith("torch-native-no-avx2")
    assert numerics.level("native", avx2).startswith("native:")


def test_a_typo_in_the_switch_is_an_error_that_names_the_choices(monkeypatch):
    monkeypatch.setenv(numerics.SWITCH, "nativ")
    with pytest.raises(ValueError, match="'native'"):
        numerics.mode()


def test_cpu_flags_reads_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert numerics.cpu_flags(str(cpuinfo)) == {"fpu", "sse4_2", "avx", "avx2", "fma"}
    assert numerics.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_the_numeric_path_enters_every_fingerprint(monkeypatch):
    from benchmark.stages.common import fingerprint

    pinned = fingerprint({"a": 1})
    monkeypatch.setattr(numerics, "level", lambda *args: "native:x86_64")
    assert fingerprint({"a": 1}) != pinned


def test_a_stage_started_without_the_hash_seed_reexecutes_with_it(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execv", lambda executable, argv: calls.append(argv))
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "benchmark.stages.train", "--dataset", "x"])
    numerics.fix_hash_seed()
    assert calls == [[sys.executable, "-m", "benchmark.stages.train", "--dataset", "x"]]
    assert os.environ["PYTHONHASHSEED"] == "0"
    # already set, or not a stage (tests, notebooks, workers): never re-executed
    numerics.fix_hash_seed()
    monkeypatch.delenv("PYTHONHASHSEED")
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "pytest"])
    numerics.fix_hash_seed()
    assert len(calls) == 1


def test_a_real_stage_started_without_the_hash_seed_runs_with_it(tmp_path):
    """Every interpreter start appends its PYTHONHASHSEED (via a sitecustomize on PYTHONPATH): a stage run
    without it starts twice, the second time with 0; a plain script is never re-executed."""
    (tmp_path / "sitecustomize.py").write_text(
        "import os\nwith open(os.environ['SEED_LOG'], 'a') as log:\n    log.write(os.environ.get('PYTHONHASHSEED', '-') + '\\n')\n"
    )
    log = tmp_path / "seeds.txt"
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
    environment.update(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", SEED_LOG=str(log))
    subprocess.run(
        [sys.executable, "-m", "benchmark.stages.procedural", "--help"],
        check=True,
        capture_output=True,
        cwd=ROOT,
        env=environment,
    )
    assert log.read_text().split() == ["-", "0"]
    log.unlink()
    subprocess.run([sys.executable, "-c", "import benchmark.stages"], check=True, cwd=ROOT, env=environment)
    assert log.read_text().split() == ["-"]


@pytest.mark.parametrize("inherited", [False, True])
def test_an_early_numpy_is_named_only_when_its_level_was_not_inherited(inherited):
    """A papermill kernel imports NumPy before the notebook imports ``benchmark``; it inherits the
    pinned environment from the report stage, so no warning; a plain process that imports NumPy first
    is warned about."""
    environment = {key: value for key, value in os.environ.items() if key not in PINNED_KEYS}
    if inherited:
        environment.update(numerics.NUMPY_ENVIRONMENT)
    script = "import warnings; warnings.simplefilter('always'); import numpy; import benchmark; print(benchmark.numerics.describe())"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert ("numpy was imported before the benchmark package" in done.stderr) is not inherited

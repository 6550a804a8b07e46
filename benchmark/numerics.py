"""One numeric code path on every x86-64 machine: the CPU-dispatch pins behind bit-identical reruns.

NumPy, PyTorch (ATen), oneDNN, MKL and OpenBLAS pick their vectorised kernels at run time from
the CPU's feature level. Kernels of different widths round and sum in different orders, so the
same code and seeds give other bits on an AVX-512 machine than on an AVX2 one (measured: 69 of
the first 40 synth_polyp frames' files differ between NumPy's AVX-512 and its baseline path).
:func:`pin` fixes every one of those choices to a level that does not depend on the machine:

=================  ==============================  ============================================
library            pinned to                       variable
=================  ==============================  ============================================
NumPy              its baseline ``X86_V2``         ``NPY_DISABLE_CPU_FEATURES`` (all dispatch
                   (SSE4.2: every x86-64 machine   targets above the baseline)
                   NumPy 2.4 runs on)
PyTorch ATen       ``avx2`` kernels                ``ATEN_CPU_CAPABILITY``
oneDNN             at most ``AVX2``                ``ONEDNN_MAX_CPU_ISA``
MKL (torch GEMM)   the ``AVX2`` branch, strict     ``MKL_CBWR=AVX2,STRICT``
OpenBLAS (NumPy,   ``Haswell`` kernels, 1 thread   ``OPENBLAS_CORETYPE``, ``OPENBLAS_NUM_THREADS``
SciPy)
torch threads      ``train.threads`` (params)      set by every stage (``stages.common``)
=================  ==============================  ============================================

Why two levels: NumPy's baseline costs nothing measurable here (12 synth_polyp frames 1.10 s as
the machine is, 1.13 s pinned), but PyTorch at its baseline (``default`` kernels, oneDNN SSE4.1)
made a U-Net training step 2.2x slower (97 ms -> 214 ms at 1 thread, 64 px, batch 16), far over
the 15 % the default's time budget allows; at AVX2 (x86-64-v3, every Intel CPU since 2013 and
AMD since 2015) it costs 3 % (``benchmarks/numerics.py`` prints these figures). So the torch
pins are applied only where the CPU has AVX2 and FMA; on an older x86-64 CPU (and on aarch64, or
a GPU) the torch side runs at the machine's own level, bit identity with the committed results
cannot hold, and ``python -m benchmark.verify`` is the check (README, "Reproducibility").

What remains free: the number of torch threads is a parameter (``train.threads``; different
counts give different bits), GPU kernels (cuDNN) are not pinned, and oneDNN's blocking may in
principle follow the cache sizes of the machine (none seen here).

:func:`pin` runs when the package is imported (``benchmark/__init__.py``), before NumPy or torch
load in any stage (``python -m benchmark.stages.*``, so under ``dvc repro`` too), worker process
(inherits the environment), papermill kernel (inherits it) and test (``tests/conftest.py``
imports ``benchmark`` first). Set ``BENCHMARK_NUMERICS=native`` to run at the machine's own level
(faster on AVX-512, other bits).
"""

from __future__ import annotations

import os
import platform
import sys
import warnings

#: environment switch: "pinned" (default) or "native" (leave every library at the machine's level)
SWITCH = "BENCHMARK_NUMERICS"
MODES = ("pinned", "native")
#: the level the torch side is pinned to, and the CPU flags it needs (/proc/cpuinfo names)
TORCH_LEVEL = "x86-64-v3"
TORCH_LEVEL_FLAGS = frozenset({"avx", "avx2", "fma", "f16c", "bmi1", "bmi2"})
#: NumPy 2.4's dispatch targets above its x86-64 baseline (X86_V2); features a machine lacks are ignored
NUMPY_ABOVE_BASELINE = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"

NUMPY_ENVIRONMENT = {"NPY_DISABLE_CPU_FEATURES": NUMPY_ABOVE_BASELINE}
TORCH_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2,STRICT",
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENBLAS_NUM_THREADS": "1",
}

#: what :func:`pin` did in this process (see :func:`describe`)
_STATE: dict = {}


def is_x86_64(machine: str | None = None) -> bool:
    return (machine or platform.machine()).lower() in ("x86_64", "amd64")


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags of the first processor in ``/proc/cpuinfo`` (empty where unreadable)."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def pinned_environment(flags: frozenset[str], machine: str | None = None) -> dict[str, str]:
    """The variables :func:`pin` sets on a machine with these CPU ``flags`` (pure; for tests).

    Nothing off x86-64; NumPy's baseline on every x86-64 machine; the torch side at AVX2 only
    where the CPU has it (an AVX2 request on a CPU without AVX2 would crash ATen).
    """
    if not is_x86_64(machine):
        return {}
    environment = dict(NUMPY_ENVIRONMENT)
    if TORCH_LEVEL_FLAGS <= flags:
        environment.update(TORCH_ENVIRONMENT)
    return environment


def mode() -> str:
    """``BENCHMARK_NUMERICS`` ("pinned" unless set); a typo is an error that names the choices."""
    value = os.environ.get(SWITCH, "pinned").strip().lower() or "pinned"
    if value not in MODES:
        raise ValueError(
            f"{SWITCH}={value!r} is not one of {MODES}: unset it (pinned, the default) or set it to 'native'"
        )
    return value


def pin() -> dict:
    """Set the pinned environment in ``os.environ`` (child processes inherit it); return what was done.

    Must run before NumPy and torch are imported (NumPy reads its variable at import, ATen at its
    first kernel). Values already in the environment are overwritten, since another value would
    give other bits; a library that was imported too early is named in a warning.
    """
    chosen = mode()
    flags = cpu_flags() if is_x86_64() else frozenset()
    environment = pinned_environment(flags) if chosen == "pinned" else {}
    overridden = {
        key: os.environ[key] for key, value in environment.items() if key in os.environ and os.environ[key] != value
    }
    # a library imported early still runs pinned when the process inherited the pinned value (a papermill
    # kernel, a worker): only a variable that was missing or different before this call makes it late
    late = [
        name
        for name in ("numpy", "torch")
        if name in sys.modules
        and any(key in environment and os.environ.get(key) != environment[key] for key in _READ_AT_IMPORT[name])
    ]
    os.environ.update(environment)
    if late:
        names = ", ".join(late)
        message = f"{names} was imported before the benchmark package, so its CPU level may not be pinned"
        warnings.warn(
            f"benchmark.numerics: {message} (import benchmark first; see benchmark/numerics.py)", stacklevel=2
        )
    _STATE.clear()
    _STATE.update(
        mode=chosen, level=level(chosen, flags), environment=environment, overridden=overridden, imported_too_late=late
    )
    return dict(_STATE)


_READ_AT_IMPORT = {"numpy": ("NPY_DISABLE_CPU_FEATURES",), "torch": ("ATEN_CPU_CAPABILITY",)}


def level(chosen: str | None = None, flags: frozenset[str] | None = None) -> str:
    """A short name of the numeric code path, part of every fingerprint and ``run.json``.

    ``pinned:numpy-X86_V2+torch-x86-64-v3`` on every AVX2 machine; ``pinned:numpy-X86_V2+torch-native-<cpu>``
    on an x86-64 CPU without AVX2; ``native:<machine>`` when pinning is switched off.
    """
    chosen = chosen or mode()
    if flags is None:
        flags = cpu_flags() if is_x86_64() else frozenset()
    if chosen == "native" or not is_x86_64():
        return f"{chosen}:{platform.machine()}"
    torch_part = TORCH_LEVEL if TORCH_LEVEL_FLAGS <= flags else "native-no-avx2"
    return f"pinned:numpy-X86_V2+torch-{torch_part}"


def describe() -> dict:
    """What this process actually runs: the mode and level, the pinned variables, and (for the
    libraries already imported) NumPy's current ``sin`` loop and torch's CPU capability."""
    record = dict(_STATE) if _STATE else {"mode": mode(), "level": level()}
    if "numpy" in sys.modules:
        record["numpy_dispatch"] = numpy_dispatch()
    if "torch" in sys.modules:
        import torch

        record["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return record


def numpy_dispatch(functions: str = "^(sin|cos|exp|log|add|multiply|sqrt)$") -> dict[str, str]:
    """NumPy's current target per (function, float64 loop), e.g. ``{"sin": "baseline(X86_V2)"}``."""
    from numpy.lib.introspect import opt_func_info

    info = opt_func_info(func_name=functions, signature="float64")
    return {
        name: loops[signature]["current"] for name, loops in sorted(info.items()) for signature in sorted(loops)[:1]
    }


#: Python's string-hash seed of every stage process (set/dict order of strings); the Makefile exports
#: it too, and :func:`fix_hash_seed` re-executes a stage started without it (``dvc repro`` run directly)
HASH_SEED = "0"


def fix_hash_seed() -> None:
    """Re-execute this process with ``PYTHONHASHSEED=0`` if it is a stage (``python -m benchmark.stages.<name>``)
    started without it. Called by ``benchmark/stages/__init__.py``, before the stage imports anything heavy;
    a library import of ``benchmark.stages`` (tests, notebooks, worker processes) is never re-executed."""
    argv = list(getattr(sys, "orig_argv", []))
    is_stage = len(argv) >= 3 and argv[1] == "-m" and argv[2].startswith("benchmark.stages.")
    if is_stage and os.environ.get("PYTHONHASHSEED") != HASH_SEED and mode() == "pinned":
        os.environ["PYTHONHASHSEED"] = HASH_SEED
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, *argv[1:]])

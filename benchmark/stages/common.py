"""What every stage does first: offline mode, thread count, argument parsing, clear failures."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

try:  # the process start time, for the profile (imports included)
    import psutil as _psutil

    _PROCESS_STARTED = _psutil.Process().create_time()
except Exception:  # noqa: BLE001 - psutil is optional
    _PROCESS_STARTED = time.time()

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DVC_NO_ANALYTICS": "1",
    "MPLBACKEND": "Agg",
}


def set_offline() -> None:
    """Never reach a model hub: fail at once instead of retrying for a minute."""
    for key, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def set_threads(threads: int) -> None:
    """Fix torch's intra-op threads (results are reproducible for a fixed count)."""
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with the ``--params`` option every stage takes."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    result.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return result


def dataset_parser(description: str) -> argparse.ArgumentParser:
    """Parser of the per-dataset stages: ``--dataset``, a key of ``prepare.datasets``."""
    result = parser(description)
    result.add_argument("--dataset", required=True, help="a key of prepare.datasets")
    return result


def dataset_method_parser(description: str) -> argparse.ArgumentParser:
    """Parser of the per-(dataset, method) stages: ``--dataset`` and ``--method`` registry keys."""
    result = parser(description)
    result.add_argument("--dataset", required=True, help="a key of prepare.datasets")
    result.add_argument("--method", required=True, help="a key of train.methods")
    return result


def run(main: Callable[[], None]) -> None:
    """Run a stage; turn expected errors into one clear line and exit status 1."""
    from benchmark.config import ParamsError
    from benchmark.data.base import DatasetError
    from benchmark.utils.io import CorruptFileError

    set_offline()
    expected: tuple[type[BaseException], ...] = (
        ParamsError,
        DatasetError,
        FileNotFoundError,
        FloatingPointError,
        CorruptFileError,
    )
    try:
        from papermill.exceptions import PapermillExecutionError

        expected += (PapermillExecutionError,)
    except ImportError:
        pass
    started = time.perf_counter()
    try:
        main()
    except expected as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    if os.environ.get(PROFILE_ENVIRONMENT):
        write_profile(os.environ[PROFILE_ENVIRONMENT], time.perf_counter() - started)


#: set to a folder to make every stage append its wall time, CPU time and peak memory there
#: (``benchmarks/profile_repro.py`` does this around a whole ``dvc repro``)
PROFILE_ENVIRONMENT = "BENCHMARK_PROFILE_DIR"


def write_profile(folder: str, main_seconds: float) -> None:
    """One JSON line per stage process: argv, wall seconds of ``main`` and of the whole process
    (imports included), user + system CPU seconds (children included) and peak resident memory (MiB)."""
    import json
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    record = {
        "argv": sys.argv[1:],
        "module": sys.modules["__main__"].__spec__.name
        if getattr(sys.modules["__main__"], "__spec__", None)
        else sys.argv[0],
        "main_seconds": round(main_seconds, 3),
        "process_seconds": round(time.time() - _PROCESS_STARTED, 3),
        "cpu_seconds": round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3),
        "peak_rss_mib": round(max(own.ru_maxrss, children.ru_maxrss) / 1024, 1),  # Linux: KiB
        "finished": time.time(),
    }
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "stages.jsonl"), "a") as stream:  # one short append per process
        stream.write(json.dumps(record) + "\n")


def is_main_process() -> bool:
    """False in the non-zero ranks of a ``torchrun`` / ``accelerate launch`` job (they only train)."""
    return int(os.environ.get("RANK", "0")) == 0


def fingerprint(payload: dict, arrays=(), code: tuple[str, ...] = ()) -> str:
    """SHA-256 over a JSON payload (config, seed, ...), the numeric code path (:func:`benchmark.numerics.level`),
    array bytes and the source files under ``code``.

    ``code`` entries are paths relative to the repository root (files or folders of ``*.py``).
    """
    import hashlib
    import json
    from pathlib import Path

    from benchmark import numerics

    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    digest.update(numerics.level().encode())  # another CPU code path gives other bits: not the same model
    for array in arrays:
        digest.update(array.tobytes())
    root = Path(__file__).resolve().parents[2]
    for entry in code:
        path = root / entry
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(source.read_bytes())
    return digest.hexdigest()


def reuse_or_reset(directory, key: str, *, done: str) -> bool:
    """Decide what to do with a persisted run folder before (re)running it.

    Returns True when ``directory/done`` exists and ``directory/fingerprint.txt`` holds ``key``
    (finished with the same inputs: skip). Otherwise a folder written for another key is
    deleted (its checkpoint must not be resumed), the key is recorded, and False is returned;
    a folder with the same key but unfinished is kept, so training resumes from its checkpoint.
    """
    import shutil
    import time
    from pathlib import Path

    directory = Path(directory)
    marker = directory / "fingerprint.txt"
    if not is_main_process():  # rank 0 resets; the others wait until it has recorded the key
        deadline = time.monotonic() + 300
        while not (marker.is_file() and marker.read_text().strip() == key) and time.monotonic() < deadline:
            time.sleep(0.5)
        return (directory / done).exists()
    same = marker.is_file() and marker.read_text().strip() == key
    if same and (directory / done).exists():
        return True
    if directory.exists() and not same:
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker.write_text(key + "\n")
    return False


_NOT_FOLLOWED = {"benchmark.params", "benchmark.methods", "benchmark.data", "benchmark.generators", "benchmark.stages"}


def code_closure(*modules: str) -> tuple[str, ...]:
    """Source files (repository-relative) of ``modules`` and every ``benchmark.*`` module they
    import, transitively, including imports inside functions (read with ``ast``, nothing executed).

    Used in fingerprints, so that a model is retrained when code it runs changes and only then
    (adding another method does not invalidate this one). Registries (the ``__init__`` of the
    method, data and generator families) and the params schema are not followed: they name code,
    they do not run it for the model.
    """
    import ast
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    seen: dict[str, str] = {}
    stack = list(modules)
    while stack:
        name = stack.pop()
        if name in seen or not name.startswith("benchmark.") or name in _NOT_FOLLOWED:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, AttributeError, ValueError):  # "pkg.module.function": not a module
            continue
        if spec is None or spec.origin is None:
            continue
        seen[name] = spec.origin
        tree = ast.parse(Path(spec.origin).read_text())
        package = name if spec.origin.endswith("__init__.py") else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                stack.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                stack.append(base)
                stack.extend(f"{base}.{alias.name}" for alias in node.names)  # submodules imported by name
    return tuple(sorted(str(Path(origin).relative_to(root)) for origin in seen.values()))

"""What every stage does first: offline mode, thread count, argument parsing, clear failures."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

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

    set_offline()
    expected: tuple[type[BaseException], ...] = (ParamsError, DatasetError, FileNotFoundError, FloatingPointError)
    try:
        from papermill.exceptions import PapermillExecutionError

        expected += (PapermillExecutionError,)
    except ImportError:
        pass
    try:
        main()
    except expected as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)

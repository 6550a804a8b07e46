"""Atomic file output: write to a temporary path beside the target, then rename.

A stage that is killed midway therefore never leaves a half-written file that a later stage
could read as complete. ``os.replace`` is atomic on POSIX when source and target share a
file system, which holds because the temporary path is in the target's directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path; on success rename it onto ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched.

    Example:
        >>> with atomic_path("results/x.csv") as tmp:
        ...     frame.to_csv(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``target`` as a whole.

    Any previous ``target`` is removed only after the new content is complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as indented JSON with sorted keys, atomically."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, naming the file in the error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run the stage that writes it (see dvc.yaml)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it and rerun `dvc repro`") from error


class CorruptFileError(ValueError):
    """A file exists but cannot be read (truncated, overwritten, another format); the message names it and the fix."""


def load_torch_file(path: str | os.PathLike, *, weights_only: bool = True) -> Any:
    """``torch.load`` on CPU, naming the file and the fix when it is missing, truncated or not a torch file."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the model folder is incomplete, rerun `dvc repro`")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except PermissionError:
        raise
    except (
        RuntimeError,
        EOFError,
        OSError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        ValueError,
    ) as error:  # OSError: some truncations (EINVAL)
        raise CorruptFileError(
            f"{path} cannot be read ({type(error).__name__}: {str(error).splitlines()[0][:120]}): the file is truncated or "
            f"not a torch checkpoint; delete its folder ({path.parent}) and rerun `dvc repro`"
        ) from error


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")

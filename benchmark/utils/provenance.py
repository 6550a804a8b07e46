"""Environment records written next to every model and result: what produced this file."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata

from benchmark import numerics


def git_revision() -> str | None:
    """The current commit SHA (with ``-dirty`` when the work tree has changes), or None."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def hardware_name() -> str:
    """ "CPU (N threads): <model>" or the CUDA device name."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU: {torch.cuda.get_device_name(0)}"
        threads = torch.get_num_threads()
    except ImportError:
        threads = os.cpu_count()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    return f"CPU ({threads} threads, {os.cpu_count()} cores): {model}"


def environment_record() -> dict:
    """Versions, platform, hardware and the pinned CPU code path (:mod:`benchmark.numerics`) as a JSON-ready dict."""
    versions = {}
    for package in ("torch", "numpy", "monai", "diffusers", "dvc", "diffaug-benchmark"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hardware": hardware_name(),
        "versions": versions,
        "numerics": numerics.describe(),
    }

"""Shared fixtures: a tiny learnable segmentation problem and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import benchmark  # noqa: F401, I001 - first: pins NumPy's and torch's CPU code paths before they load (benchmark/numerics.py)
from benchmark.data.prepared import SegmentationData

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def blobs(n: int, size: int, seed: int) -> SegmentationData:
    """Images with one bright disc on a textured background; the mask is the disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(size * 0.25, size * 0.75, 2)
        radius = rng.uniform(size * 0.1, size * 0.25)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        background = rng.normal(90, 20, (size, size, 3))
        background[disc] += np.array([110, 40, 20])
        images[i] = background.clip(0, 255).astype(np.uint8)
        masks[i] = disc
    return SegmentationData(tuple(f"img{seed}_{i}" for i in range(n)), images, masks)


@pytest.fixture(scope="session")
def tiny_splits() -> dict[str, SegmentationData]:
    return {"train": blobs(24, 32, 0), "val": blobs(8, 32, 1), "test": blobs(8, 32, 2)}


# --- counting the bad-input cases that ran (tests/test_bad_inputs.py) -----------------------------

_BAD_INPUT_CASES_PASSED: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bad_input_case: one case of the broken-input corpus, counted when it passes")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Record the node id of every bad-input case whose test body ran and passed (in this process)."""
    report = yield
    if report.when == "call" and report.passed and item.get_closest_marker("bad_input_case"):
        _BAD_INPUT_CASES_PASSED.add(item.nodeid)
    return report


@pytest.fixture(scope="session")
def bad_input_cases_passed() -> set[str]:
    """Node ids of the bad-input cases that have passed so far in this process."""
    return _BAD_INPUT_CASES_PASSED

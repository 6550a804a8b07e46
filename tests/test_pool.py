"""Parallel workers: results and errors come back as from a plain call; the generation loop gives the
same accepted set with workers as without."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.generators.jobs import Jobs
from benchmark.generators.loop import generate_and_segment, run_loop
from benchmark.utils.pool import WorkerPool, split_threads

_STATE: dict = {}


def _remember(value):
    _STATE["value"] = value


def _job(x):
    import torch

    return x * _STATE["value"], torch.get_num_threads()


def _failing_job(x):
    raise ValueError(f"bad input {x}")


@pytest.mark.parametrize("workers", [1, 2])
def test_pool_runs_jobs_with_the_initializer_and_thread_count(workers):
    with WorkerPool(workers, 1, initializer=_remember, initargs=(3,)) as pool:
        results = [pool.submit(_job, x).result() for x in range(4)]
    assert results == [(0, 1), (3, 1), (6, 1), (9, 1)]


@pytest.mark.parametrize("workers", [1, 2])
def test_pool_hands_back_a_workers_error(workers):
    with WorkerPool(workers, 1) as pool:
        future = pool.submit(_failing_job, 7)
        with pytest.raises(ValueError, match="bad input 7"):
            future.result()


def test_split_threads_never_gives_more_processes_than_cores():
    assert split_threads(2, 2) == (2, 1)
    assert split_threads(1, 2) == (1, 1)
    assert split_threads(8, 3) == (3, 2)
    assert split_threads(2, 1) == (1, 2)
    with pytest.raises(ValueError):
        WorkerPool(0, 1)


def _jobs(n: int, size: int = 4) -> list[Jobs]:
    rng = np.random.default_rng(0)
    batches = []
    for start in range(0, n, 3):
        count = min(3, n - start)
        labels = (rng.random((count, size, size)) > 0.5).astype(np.uint8)
        table = pd.DataFrame({"job": np.arange(start, start + count), "seed": np.arange(start, start + count)})
        batches.append(Jobs(table, np.zeros((count, size, size, 3), np.uint8), labels, labels, np.ones_like(labels)))
    return batches


def _fake_generate(jobs: Jobs) -> np.ndarray:
    """Channel 0 carries the intended label, channel 1 the sampling seed."""
    images = np.zeros((len(jobs), 4, 4, 3), np.uint8)
    images[..., 0] = jobs.labels * 255
    images[..., 1] = np.asarray(jobs.table["seed"])[:, None, None]
    return images


def _fake_segment(images: np.ndarray) -> np.ndarray:
    """A validator that finds the label for even seeds and its complement for odd ones."""
    label = images[..., 0].astype(np.float32) / 255
    even = (images[:, 0, 0, 1] % 2 == 0)[:, None, None]
    return np.where(even, label, 1 - label)


def _fake_batch(jobs: Jobs):
    return generate_and_segment(_fake_generate, _fake_segment, jobs)


@pytest.mark.parametrize("workers", [1, 2])
def test_loop_with_workers_accepts_the_same_samples_as_the_serial_loop(workers):
    serial = run_loop(_fake_generate, _fake_segment, iter(_jobs(20)), target=5, theta=0.5, progress=False)
    with WorkerPool(workers, 1) as pool:
        parallel = run_loop(
            None,
            None,
            iter(_jobs(20)),
            target=5,
            theta=0.5,
            progress=False,
            submit=lambda jobs: pool.submit(_fake_batch, jobs),
            lookahead=4,
        )
    # even seeds are accepted; 5 accepted needs seeds 0..8, i.e. the first 3 batches (9 jobs)
    for table in (serial[0], parallel[0]):
        assert table["seed"].tolist() == list(range(9))
        assert table["accepted"].tolist() == [seed % 2 == 0 for seed in range(9)]
        assert table["order"].tolist() == list(range(9))
    pd.testing.assert_frame_equal(serial[0], parallel[0])
    for left, right in zip(serial[1:4], parallel[1:4]):
        np.testing.assert_array_equal(left, right)
    assert parallel[4]["generate_s"] >= 0 and parallel[4]["validate_s"] >= 0

"""Independent jobs in worker processes, each with a fixed number of torch threads.

On a small CPU machine most of this suite's work is many small, independent computations
(a seed of a run, a batch of the generation loop) whose tensors are too small for two threads to
help much: two one-thread processes do nearly twice the work of one two-thread process (measured:
Diff-Trans 50 s per seed at one thread, 52 s at two). :class:`WorkerPool` runs such jobs in
``workers`` spawned processes of ``threads`` threads each; with ``workers == 1`` it runs them in
the calling process (no pickling, plain tracebacks). Results do not depend on the number of
workers: each job carries its own seed and runs on a fixed thread count.

    with WorkerPool(workers=2, threads=1, initializer=load_models, initargs=(path,)) as pool:
        future = pool.submit(job, arguments)
        result = future.result()
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any


def _initialize(threads: int, initializer: Callable | None, initargs: tuple) -> None:
    from benchmark.stages.common import set_offline, set_threads

    set_offline()
    set_threads(threads)
    if initializer is not None:
        initializer(*initargs)


class _InProcess:
    """The executor interface, running each job at submission in this process."""

    def submit(self, function: Callable, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(error, KeyboardInterrupt):
                raise
            future.set_exception(error)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


class WorkerPool:
    """A process pool of ``workers`` processes with ``threads`` torch threads each.

    Args:
        workers: processes (>= 1); 1 runs every job in the calling process.
        threads: torch intra-op threads per worker (the calling process's count when ``workers == 1``).
        initializer, initargs: run once in each worker (e.g. load a model into a module global);
            with ``workers == 1``, once in this process.
    """

    def __init__(self, workers: int, threads: int, *, initializer: Callable | None = None, initargs: tuple = ()):
        if workers < 1 or threads < 1:
            raise ValueError(f"workers and threads must be >= 1, got {workers} and {threads}")
        self.workers, self.threads = int(workers), int(threads)
        if self.workers == 1:
            _initialize(self.threads, initializer, initargs)
            self._executor: Any = _InProcess()
        else:  # spawn: a fork of a process that already ran torch ops can deadlock in OpenMP
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_initialize,
                initargs=(self.threads, initializer, initargs),
            )

    def submit(self, function: Callable, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Schedule ``function(*args, **kwargs)`` (module-level, picklable arguments)."""
        return self._executor.submit(function, *args, **kwargs)

    def imap_unordered(self, function: Callable, arguments: list[tuple]) -> Iterator[Any]:
        """``function(*args)`` for each tuple of ``arguments``, yielded as each finishes (in order,
        lazily, when ``workers == 1``); the first error is raised and the remaining jobs are cancelled."""
        if isinstance(self._executor, _InProcess):
            for args in arguments:
                yield function(*args)
            return
        futures = [self._executor.submit(function, *args) for args in arguments]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def split_threads(threads: int, workers: int) -> tuple[int, int]:
    """``(workers, threads per worker)`` for ``threads`` cores shared by up to ``workers`` processes:
    never more processes than cores, at least one thread each."""
    workers = max(1, min(int(workers), int(threads)))
    return workers, max(1, int(threads) // workers)

"""Tile runners: compute a job's prediction tiles on local threads or a Dask cluster, one ``finish`` call each.

Every runner hands each finished tile to ``finish(t, prediction)`` in the calling thread, which alone
writes the work directory and the output, so they are written alike whatever the scheduler; the
methods' kernels do not depend on the number of PyTorch threads, so a tile's pixels do not depend on
the runner either (``docs/reliability.md``, "Reproducibility").

* :func:`run_tiles_adaptive` -- local threads, as many tiles at once as fit the memory limit, or an
  error when not even one does (:mod:`dcstsf.engine.memory`);
* :func:`run_tiles_local` -- local threads, a fixed number of tiles at once, PyTorch's threads shared
  out among them;
* :func:`run_tiles_distributed` -- a ``dask.distributed`` client, a bounded number of tiles in flight.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from dcstsf.engine import memory
from dcstsf.engine.cluster import local_scheduler
from dcstsf.engine.job import FusionJob

__all__ = [
    "Finish",
    "compute_tile_local",
    "default_parallel",
    "measure_tile_alone",
    "run_tiles_adaptive",
    "run_tiles_distributed",
    "run_tiles_local",
    "torch_threads_per_tile",
]

#: Called with each finished tile and its prediction, in the calling thread.
Finish = Callable[[tuple[int, int], np.ndarray], None]


def default_parallel(parallel_tiles: int | None) -> int:
    """Tiles at once on local threads: as asked, else 2 where there are 2 cores or more.

    Two tiles keep both cores busy where one tile's padding, upsampling and element-wise steps would
    not, at the cost of a second tile in memory (``docs/results.md``).
    """
    if parallel_tiles is not None:
        return int(parallel_tiles)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


@contextmanager
def torch_threads_per_tile(parallel: int) -> Iterator[None]:
    """Share the cores among ``parallel`` tile threads (PyTorch's intra-op pool is process-wide)."""
    import torch

    before = torch.get_num_threads()
    per_tile = max(1, (os.cpu_count() or 1) // max(1, parallel))
    if parallel > 1 and per_tile < before:
        torch.set_num_threads(per_tile)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compute_tile_local(job: FusionJob, t: tuple[int, int]) -> np.ndarray:
    """Tile ``t``'s prediction, computed in the calling thread (window reads and ``apply`` alike)."""
    import dask

    # All of a tile's tasks (window reads, apply) run in this thread; tiles run in parallel threads.
    (arr,) = dask.compute(job.predictions[t], scheduler=local_scheduler("synchronous"))
    memory.trim_heap()
    return arr


def measure_tile_alone(job: FusionJob, t: tuple[int, int], finish: Finish) -> int:
    """Compute tile ``t`` alone on every core, finish it, and return the resident memory it added at its peak."""
    arr, peak = memory.peak_while(lambda: compute_tile_local(job, t))
    finish(t, arr)
    return peak


def run_tiles_adaptive(
    job: FusionJob,
    todo: list[tuple[int, int]],
    parallel: int,
    finish: Finish,
    *,
    budget: memory.MemoryBudget | None,
) -> tuple[int, int | None]:
    """Run the tiles locally within ``budget``: the first tile alone while its memory is measured, then as
    many at once (up to ``parallel``) as fit the limit (:func:`dcstsf.engine.memory.tiles_at_once`).

    Returns ``(tiles at once, tile peak)``; the peak is ``None`` when nothing was measured (no budget, or
    no resident memory to read on this platform).

    Raises
    ------
    DcstsfInputError
        Not even one tile at a time fits the limit; the measured tiles are finished (saved) first.
    """
    if budget is None or not todo or memory.rss_bytes() is None:
        run_tiles_local(job, todo, parallel, finish)
        return parallel, None
    chosen, peak, measured = memory.tiles_at_once(
        parallel, budget=budget, plan=job.plan, tiles=todo,
        measure_alone=lambda i: measure_tile_alone(job, todo[i], finish),
    )
    run_tiles_local(job, todo[measured:], chosen, finish)
    return chosen, peak


def run_tiles_local(job: FusionJob, todo: list[tuple[int, int]], parallel: int, finish: Finish) -> None:
    """Compute ``todo`` with ``parallel`` tiles at once on local threads."""
    if parallel <= 1:
        # One tile at a time runs in the calling thread, like the fit and the first tile before it. A
        # second thread starts a second OpenMP team beside the calling thread's idle one, and libgomp,
        # managing more threads than cores, stops spinning between the model's many short parallel
        # regions: the model then runs on about one core (docs/design.md).
        for t in todo:
            finish(t, compute_tile_local(job, t))
        return
    # Results come back through a queue, not futures: a finished future would keep its tile alive
    # while the next one computes.
    results: queue.Queue[tuple[tuple[int, int], np.ndarray | None, BaseException | None]] = queue.Queue()
    upcoming = iter(todo)
    running = 0

    def work(t: tuple[int, int]) -> None:
        try:
            results.put((t, compute_tile_local(job, t), None))
        except BaseException as exc:  # re-raised in the calling thread
            results.put((t, None, exc))

    def submit_next() -> None:
        nonlocal running
        t = next(upcoming, None)
        if t is not None:
            ex.submit(work, t)
            running += 1

    with torch_threads_per_tile(parallel):
        ex = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dcstsf-tile")
        try:
            for _ in range(parallel):
                submit_next()
            while running:
                t, arr, exc = results.get()
                running -= 1
                if exc is not None:
                    raise exc
                assert arr is not None
                # Start the next tile before saving this one: saving overlaps computing.
                submit_next()
                finish(t, arr)
                del arr
        except BaseException:
            # Do not wait for tiles still computing (Ctrl-C should stop now); their results are not saved.
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown(wait=True)


def run_tiles_distributed(job: FusionJob, todo: list[tuple[int, int]], client: Any, finish: Finish) -> None:
    """Compute ``todo`` on a ``dask.distributed`` client, each finished tile back to this process."""
    from distributed import as_completed

    # Keep the workers busy with one tile in reserve each, never the whole scene in flight.
    nthreads = max(1, sum(client.nthreads().values()))
    limit = nthreads + 1
    pending = list(todo)
    futures: dict[Any, tuple[int, int]] = {}

    def submit() -> Any:
        t = pending.pop(0)
        fut = client.compute(job.predictions[t])
        futures[fut] = t
        return fut

    ac = as_completed([submit() for _ in range(min(limit, len(pending)))])
    try:
        for fut in ac:
            t = futures.pop(fut)
            arr = fut.result()
            fut.release()
            if pending:
                ac.add(submit())
            finish(t, arr)
    finally:
        for fut in futures:
            fut.cancel()

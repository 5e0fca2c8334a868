"""Dask schedulers for batch runs: a ``dask.distributed`` client when asked for, local schedulers otherwise.

The default runs tiles on threads in the calling process; ``workers=N`` starts a
``dask.distributed.LocalCluster`` of N single-threaded worker processes; ``scheduler="tcp://host:8786"``
connects to a running scheduler (its workers must see the input paths). Nothing imports
``dask.distributed`` without a cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from dcstsf.errors import DcstsfInputError

__all__ = ["client", "local_scheduler"]


@contextmanager
def client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A distributed Client (LocalCluster or external scheduler), or ``None`` for the threaded scheduler."""
    if workers is not None and scheduler is not None:
        raise DcstsfInputError("give either workers= (a local cluster) or scheduler= (an address), not both")
    if workers is None and scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise DcstsfInputError("workers=/scheduler= need dask.distributed: pip install distributed") from exc
    if scheduler is not None:
        try:
            c = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise DcstsfInputError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start one with `dask scheduler` and "
                "workers with `dask worker ADDRESS`, or use workers=N for a local cluster"
            ) from exc
        try:
            yield c
        finally:
            c.close()
        return
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise DcstsfInputError(f"workers must be a positive integer, got {workers!r}")
    cluster = LocalCluster(
        n_workers=int(workers), threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    )
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def local_scheduler(kind: str) -> Callable[..., Any]:
    """Dask's ``"threads"`` or ``"synchronous"`` scheduler, as the function itself.

    Dask resolves a scheduler given by name by importing ``dask.distributed`` to look for a client, which
    costs a noticeable part of a small run; a function is used as given. Local batch runs want the local
    scheduler even when the caller has a global Client: ``workers``/``scheduler`` choose the cluster.
    """
    import dask.local
    import dask.threaded

    return dask.threaded.get if kind == "threads" else dask.local.get_sync

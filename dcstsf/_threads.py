"""Fixed thread counts for computations whose last bits must not depend on the machine.

A multi-threaded BLAS or torch CPU kernel splits its sums by thread count, so a scene fit, a scene
adaptation or a training run gives other last bits under another ``OMP_NUM_THREADS`` or on a machine with
more cores; training and adaptation amplify them. Inside :func:`fixed_threads` the counts are the caller's
choice, whatever the environment says.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["check_thread_count", "fixed_threads"]

# The counts are process-wide and each block restores what it found: two blocks of different threads that
# overlapped would restore in the wrong order and could leave the process on one thread for good. Blocks
# therefore run one at a time (nested blocks of one thread are fine).
_LOCK = threading.RLock()


def check_thread_count(name: str, n: object) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``n`` is a positive whole number of threads."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive whole number of threads, got {n!r}")


@contextmanager
def fixed_threads(*, blas: int | None = None, torch_threads: int | None = None) -> Iterator[None]:
    """Limit NumPy's BLAS to ``blas`` threads and torch's CPU kernels to ``torch_threads`` for the block.

    ``None`` leaves that count as it is. Both are process-wide settings, restored on exit; other threads
    of the process running meanwhile get the same counts (slower, never different results), and another
    thread's block waits for this one to end, so work this block waits on must not open one.
    """
    for name, n in (("blas", blas), ("torch_threads", torch_threads)):
        if n is not None:
            check_thread_count(name, n)
    import torch
    from threadpoolctl import threadpool_limits

    with _LOCK, threadpool_limits(limits=blas, user_api="blas"):
        before = torch.get_num_threads()
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        try:
            yield
        finally:
            if torch_threads is not None:
                torch.set_num_threads(before)

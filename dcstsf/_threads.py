"""Fixed thread counts for computations whose last bits must not depend on the machine.

A multi-threaded BLAS or torch CPU kernel splits its sums by thread count, so a scene fit, a scene
adaptation or a training run gives other last bits under another ``OMP_NUM_THREADS`` or on a machine with
more cores; training and adaptation amplify them. Inside :func:`fixed_threads` the counts are the caller's
choice, whatever the environment says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fixed_threads"]


@contextmanager
def fixed_threads(*, blas: int | None = None, torch_threads: int | None = None) -> Iterator[None]:
    """Limit NumPy's BLAS to ``blas`` threads and torch's CPU kernels to ``torch_threads`` for the block.

    ``None`` leaves that count as it is. Both are process-wide settings, restored on exit; other threads
    of the process running meanwhile get the same counts (slower, never different results).
    """
    for name, n in (("blas", blas), ("torch_threads", torch_threads)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"{name} must be a positive whole number of threads, got {n!r}")
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    with threadpool_limits(limits=blas, user_api="blas"):
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        try:
            yield
        finally:
            if torch_threads is not None:
                torch.set_num_threads(before)

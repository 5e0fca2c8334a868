"""The memory rule of batch runs: how many tiles run at once within a memory limit.

The first tile runs alone on every core while a thread samples the resident memory; the other tiles
then run as many at once (up to the number asked for) as fit
``base + writer + n * TILE_MEMORY_HEADROOM * tile_peak <= limit``, where ``base`` is the resident memory
after that tile (heap trimmed) and ``writer`` what the output writer holds. A borderline first reading is
checked by a second tile, also alone, and the mean of the two decides (:data:`SECOND_READING_BELOW`).
The peak is measured rather than declared per method: it depends on the window, the bands, the thread
count and the allocator, and a declared number would go stale with every change to a method.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

__all__ = [
    "SECOND_READING_BELOW",
    "TILE_MEMORY_HEADROOM",
    "PeakRss",
    "default_memory_limit",
    "parallel_for_memory",
    "rss_bytes",
    "tiles_at_once",
    "trim_heap",
]

logger = logging.getLogger(__name__)

#: Headroom on the first tile's measured peak for each tile of a run with several at once. The first
#: tile's peak also holds what stays allocated after it (kernels, caches, first-use buffers), which later
#: tiles do not add again; the rest is what a tile alone does not show (freed memory that glibc keeps in
#: each tile thread's arena between trims). The factor covers the tiles at once of every shipped method
#: with margin (``docs/results.md``, "Engine measurements").
TILE_MEMORY_HEADROOM = 1.15

#: A first-tile reading that misses the limit for more tiles at once, but would fit if it were this
#: fraction of what it is, is checked by a second reading (the next tile, also alone) and the two are
#: averaged. The same window does not read the same peak twice (allocator state, the sampling
#: interval), and a single high reading would run a whole scene one tile at a time. The mean, not the
#: minimum, because the rule has no room for an estimate biased low.
SECOND_READING_BELOW = 0.8

_MALLOC_TRIM: Any = None


def default_memory_limit() -> int:
    """The memory a batch run aims to stay within by default: 1/8 of the RAM, at least 3 GiB."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 0
    return max(3 * 2**30, ram // 8)


def rss_bytes() -> int | None:
    """This process's resident memory (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def trim_heap() -> None:
    """Return freed heap memory to the OS (glibc keeps freed mid-sized blocks of every thread's arena,
    so a long run's RSS would creep up tile after tile). No-op elsewhere."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


class PeakRss(threading.Thread):
    """Samples the resident memory every 10 ms until stopped; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        super().__init__(name="dcstsf-rss", daemon=True)
        self.stop = threading.Event()
        self.peak = rss_bytes() or 0

    def run(self) -> None:
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes() or 0)


def peak_while(compute: Callable[[], Any]) -> tuple[Any, int]:
    """``compute()`` and the resident memory it added at its peak (the heap trimmed before)."""
    trim_heap()
    before = rss_bytes() or 0
    sampler = PeakRss()
    sampler.start()
    try:
        result = compute()
    finally:
        sampler.stop.set()
        sampler.join()
    return result, max(0, sampler.peak - before)


def parallel_for_memory(parallel: int, *, limit: int, base: int, tile_peak: int, writer: int) -> int:
    """The most tiles at once (at most ``parallel``, at least 1) whose memory fits ``limit``."""
    per_tile = max(1, int(tile_peak * TILE_MEMORY_HEADROOM))
    return max(1, min(parallel, (limit - base - writer) // per_tile))


def _base_bytes() -> int:
    """The resident memory between tiles: after trimming the heap."""
    trim_heap()
    return rss_bytes() or 0


def tiles_at_once(
    parallel: int, *, limit: int, writer: int, tiles: int, measure_alone: Callable[[int], int]
) -> tuple[int, int, int]:
    """How many of ``tiles`` tiles to compute at once (at most ``parallel``) to stay within ``limit`` bytes.

    ``measure_alone(i)`` computes the ``i``-th tile alone and returns the resident memory it added at its
    peak; ``writer`` is what the output writer holds besides. The first tile is measured; a borderline
    reading is averaged with the second tile's when more than two tiles remain.

    Returns
    -------
    tuple
        ``(tiles at once, tile peak in bytes, tiles measured alone)``.
    """
    fits = partial(parallel_for_memory, parallel, limit=limit, writer=writer)
    peak, base = measure_alone(0), _base_bytes()
    chosen, measured = fits(base=base, tile_peak=peak), 1
    if chosen < parallel and tiles > 2 and fits(base=base, tile_peak=int(peak * SECOND_READING_BELOW)) > chosen:
        # A borderline reading: one more tile alone, and the mean of the two decides.
        peak = (peak + measure_alone(1)) // 2
        chosen, measured = fits(base=_base_bytes(), tile_peak=peak), 2
    if chosen < parallel:
        logger.info(
            "a tile adds %.2f GiB at its peak; computing %d tile(s) at once to stay within %.2f GiB "
            "(memory_limit)", peak / 2**30, chosen, limit / 2**30,
        )
    return chosen, peak, measured

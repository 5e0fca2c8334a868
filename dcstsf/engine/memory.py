"""The memory rule of batch runs: hold a memory limit, or refuse the run with the limit and tile size that fit.

A limit (given or the default) is held the same way in every local run:

* **Before any tile**, what one tile certainly holds (its input windows and its output, float32) is
  added to the resident memory and to what the output writer holds; a limit below that sum is refused
  at once (:func:`check_tile_floor`).
* **The first tile** runs alone on every core while a thread samples the resident memory. The other
  tiles then run as many at once (up to the number asked for) as fit
  ``base + writer + n * TILE_MEMORY_HEADROOM * tile_peak <= limit``, where ``base`` is the resident
  memory after that tile (heap trimmed) and ``writer`` what the output writer holds. When not even one
  tile fits, the run stops with an error naming the measured need, the smallest limit that holds it and
  a tile size that fits the limit given (:func:`tiles_at_once`); the tiles already finished stay saved,
  so a run with a larger limit resumes them.
* A borderline first reading is checked by a second tile, also alone, and the mean of the two decides
  (:data:`SECOND_READING_BELOW`).

The peak is measured rather than declared per method: it depends on the window, the bands, the thread
count and the allocator, and a declared number would go stale with every change to a method.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dcstsf.engine.plan import TilePlan
from dcstsf.errors import DcstsfInputError

__all__ = [
    "SECOND_READING_BELOW",
    "TILE_MEMORY_HEADROOM",
    "MemoryBudget",
    "PeakRss",
    "check_tile_floor",
    "chunk_to_fit",
    "default_memory_limit",
    "limit_error",
    "parallel_for_memory",
    "peak_while",
    "rss_bytes",
    "tile_floor_bytes",
    "tiles_at_once",
    "trim_heap",
]

logger = logging.getLogger(__name__)

#: Headroom on the first tile's measured peak for each tile of a run. The first tile's peak also holds
#: what stays allocated after it (kernels, caches, first-use buffers), which later tiles do not add
#: again; the rest is what a tile alone does not show (freed memory that glibc keeps in each tile
#: thread's arena between trims). The factor covers the tiles at once of every shipped method with
#: margin (``docs/results.md``, "Engine measurements").
TILE_MEMORY_HEADROOM = 1.15

#: A first-tile reading that misses the limit for more tiles at once (or for one), but would fit if it
#: were this fraction of what it is, is checked by a second reading (the next tile, also alone) and the
#: two are averaged. The same window does not read the same peak twice (allocator state, the sampling
#: interval), and a single high reading would run a whole scene one tile at a time, or refuse it. The
#: mean, not the minimum, because the rule has no room for an estimate biased low.
SECOND_READING_BELOW = 0.8

#: Suggested limits are rounded up to tenths of a GiB, so they can be typed as printed.
_LIMIT_STEP = 2**30 / 10

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


@dataclass(frozen=True)
class MemoryBudget:
    """A run's memory limit and what its output writer holds beside the tiles.

    Attributes
    ----------
    limit
        Bytes of resident memory the run stays within.
    writer_fixed
        What the writer holds whatever the tile size (GDAL's block cache).
    writer_per_pixel
        What it holds per pixel of a tile (a finished tile waiting to be written: ``n_bands * 4``).
    step
        Tile sizes are multiples of this; a suggested ``chunk`` is one.
    default
        The limit is the default (:func:`default_memory_limit`), not one the caller gave: messages say so.
    """

    limit: int
    writer_fixed: int = 0
    writer_per_pixel: int = 0
    step: int = 1
    default: bool = False

    def writer(self, chunk: int) -> int:
        """What the writer holds beside tiles of ``chunk`` pixels."""
        return self.writer_fixed + self.writer_per_pixel * chunk * chunk


def parallel_for_memory(parallel: int, *, limit: int, base: int, tile_peak: int, writer: int) -> int:
    """The most tiles at once (at most ``parallel``) whose memory fits ``limit``; 0 when not even one does.

    One tile fits when its measured peak does; several need :data:`TILE_MEMORY_HEADROOM` each, for the
    freed memory each tile thread's arena keeps (one tile at a time runs in the calling thread).
    """
    room = limit - base - writer
    if room < tile_peak:
        return 0
    per_tile = max(1, int(tile_peak * TILE_MEMORY_HEADROOM))
    return max(1, min(parallel, room // per_tile))


def _base_bytes() -> int:
    """The resident memory between tiles: after trimming the heap."""
    trim_heap()
    return rss_bytes() or 0


def _window_area(plan: TilePlan, t: tuple[int, int]) -> int:
    wy0, wy1, wx0, wx1 = plan.window(*t)
    return (wy1 - wy0) * (wx1 - wx0)


def tile_floor_bytes(plan: TilePlan, t: tuple[int, int], *, n_hs: int, n_ms: int) -> int:
    """What tile ``t`` holds for certain while it is computed: its three input windows and its output, float32."""
    ey0, ey1, ex0, ex1 = plan.extended(*t)
    window = _window_area(plan, t)
    return 4 * (n_hs * (ey1 - ey0) * (ex1 - ex0) + n_hs * window // plan.ratio**2 + 2 * n_ms * window)


def _tile_need(budget: MemoryBudget, plan: TilePlan, chunk: int, *, base: int, tile_bytes: float, area: int) -> float:
    """The memory of one tile at a time with tiles of ``chunk`` pixels, if a tile whose window covers ``area``
    pixels takes ``tile_bytes`` and a tile's memory grows with its window's area (an interior window: the
    tile grown by the halo and the blend on both sides, clipped to the image)."""
    grow = 2 * (plan.halo + plan.blend)
    window = min(plan.height, chunk + grow) * min(plan.width, chunk + grow)
    return base + budget.writer(chunk) + tile_bytes * window / max(1, area)


def chunk_to_fit(budget: MemoryBudget, plan: TilePlan, *, base: int, tile_bytes: float, area: int) -> int:
    """The largest tile size below the plan's (a multiple of ``budget.step``) whose tiles fit the limit one
    at a time, if a tile whose window covers ``area`` pixels takes ``tile_bytes`` (with any headroom); 0
    when none does."""
    for chunk in range((plan.chunk - 1) // budget.step * budget.step, 0, -budget.step):
        if _tile_need(budget, plan, chunk, base=base, tile_bytes=tile_bytes, area=area) <= budget.limit:
            return chunk
    return 0


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def _round_up(n: float) -> str:
    """``n`` bytes rounded up to the next tenth of a GiB, as ``--memory-limit`` takes it."""
    tenths = int(-(-n // _LIMIT_STEP))
    return f"{tenths / 10:.1f}GiB"


def limit_error(
    budget: MemoryBudget, plan: TilePlan, *, base: int, tile_bytes: int, area: int, measured: bool
) -> DcstsfInputError:
    """The error for a limit that cannot hold one tile at a time.

    ``tile_bytes`` is what a tile whose window covers ``area`` pixels added at its peak (``measured``) or
    holds for certain (:func:`tile_floor_bytes`); ``base`` is the resident memory beside it.
    """
    limit = _gib(budget.limit)
    given = (
        f"the default memory limit, {limit} (1/8 of the RAM, at least 3 GiB; CLI --memory-limit),"
        if budget.default else f"memory_limit={limit} (CLI --memory-limit)"
    )
    writer = budget.writer(plan.chunk)
    if measured:
        # The suggestions keep the headroom: the same tile does not read the same peak twice.
        per_tile = tile_bytes * TILE_MEMORY_HEADROOM
        what = (
            f"this process holds {_gib(base)}, the output writer {_gib(writer)}, and one tile added "
            f"{_gib(tile_bytes)} at its peak: one tile at a time needs {_gib(base + writer + tile_bytes)}"
        )
        suggest = _round_up(base + writer + per_tile)
        larger = (
            f"Pass memory_limit={suggest} or more (CLI --memory-limit {suggest}: {TILE_MEMORY_HEADROOM}x the "
            "tile's reading, which varies from run to run; the finished tiles are kept and resumed)"
        )
    else:
        per_tile = tile_bytes
        need = base + writer + per_tile
        what = (
            f"this process holds {_gib(base)}, the output writer {_gib(writer)}, and a tile's input windows and "
            f"output alone take {_gib(tile_bytes)}: {_gib(need)} before the method's own working memory"
        )
        suggest = _round_up(need)
        larger = f"Pass memory_limit={suggest} at least (CLI --memory-limit {suggest})"
    chunk = chunk_to_fit(budget, plan, base=base, tile_bytes=per_tile, area=area)
    if chunk:
        fits = "fits" if measured else "may fit (the first tile's measured memory then decides)"
        smaller = f"or smaller tiles: chunk={chunk} (CLI --chunk {chunk}) {fits} within {limit}"
    else:
        smallest = _tile_need(budget, plan, budget.step, base=base, tile_bytes=per_tile, area=area)
        smaller = (
            f"no tile size fits within {limit} (with the smallest tiles, {budget.step} px, a run needs about "
            f"{_gib(smallest)})"
        )
    return DcstsfInputError(
        f"{given} is too small for tiles of {plan.chunk} px: {what}. {larger}; {smaller}"
    )


def check_tile_floor(budget: MemoryBudget, plan: TilePlan, tiles: Sequence[tuple[int, int]], *, n_hs: int,
                     n_ms: int) -> None:
    """Refuse, before any tile runs, a limit below what the largest of ``tiles`` holds for certain
    (:func:`tile_floor_bytes`) beside the resident memory and the writer.

    A plan of one or a few large tiles would otherwise go over the limit on its first tile, before the
    measurement could stop it.
    """
    if not tiles:
        return
    largest = max(tiles, key=lambda t: _window_area(plan, t))
    floor = tile_floor_bytes(plan, largest, n_hs=n_hs, n_ms=n_ms)
    base = _base_bytes()
    if base + budget.writer(plan.chunk) + floor > budget.limit:
        raise limit_error(budget, plan, base=base, tile_bytes=floor, area=_window_area(plan, largest), measured=False)


def tiles_at_once(
    parallel: int,
    *,
    budget: MemoryBudget,
    plan: TilePlan,
    tiles: Sequence[tuple[int, int]],
    measure_alone: Callable[[int], int],
) -> tuple[int, int, int]:
    """How many of ``tiles`` to compute at once (at most ``parallel``) to stay within ``budget``.

    ``measure_alone(i)`` computes ``tiles[i]`` alone and returns the resident memory it added at its peak.
    The first tile is measured; a borderline reading is averaged with the second tile's when more than two
    tiles remain.

    Returns
    -------
    tuple
        ``(tiles at once, tile peak in bytes, tiles measured alone)``.

    Raises
    ------
    DcstsfInputError
        Not even one tile at a time fits the limit (:func:`limit_error`); the measured tiles are finished.
    """
    writer = budget.writer(plan.chunk)

    def fits(base: int, peak: int) -> int:
        return parallel_for_memory(parallel, limit=budget.limit, base=base, tile_peak=peak, writer=writer)

    peak, base = measure_alone(0), _base_bytes()
    chosen, measured = fits(base, peak), 1
    if chosen < parallel and len(tiles) > 2 and fits(base, int(peak * SECOND_READING_BELOW)) > chosen:
        # A borderline reading: one more tile alone, and the mean of the two decides.
        peak = (peak + measure_alone(1)) // 2
        base = _base_bytes()
        chosen, measured = fits(base, peak), 2
    if chosen < 1:
        area = sum(_window_area(plan, t) for t in tiles[:measured]) // measured
        raise limit_error(budget, plan, base=base, tile_bytes=peak, area=area, measured=True)
    if chosen < parallel:
        logger.info(
            "a tile adds %.2f GiB at its peak; computing %d tile(s) at once to stay within %.2f GiB "
            "(memory_limit)", peak / 2**30, chosen, budget.limit / 2**30,
        )
    return chosen, peak, measured

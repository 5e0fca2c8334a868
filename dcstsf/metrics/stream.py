"""Running a function on every tile of Dask arrays, a few tiles at a time (memory-bounded streaming).

Each tile's windows are read from arrays chunked on the grid's chunk edges
(:meth:`~dcstsf.metrics.tiles.TileGrid.chunk_bounds`, see :func:`aligned`) and handed to the tile
function as NumPy arrays; tiles are computed in groups of ``parallel`` with Dask's threaded scheduler,
so memory holds ``parallel`` tiles' windows and temporaries, whatever the image size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf._arrays import is_dask
from dcstsf.metrics.tiles import Tile, TileGrid

__all__ = ["TileInput", "aligned", "parallel_tiles", "run_tiles"]


@dataclass(frozen=True)
class TileInput:
    """An array read tile by tile: ``(band, y, x)`` or ``(y, x)``, on a grid ``scale`` times coarser than
    the tiles' (``scale`` = the resolution ratio for a coarse HS cube)."""

    array: Any
    scale: int = 1

    def window(self, tile: Tile) -> Any:
        """The tile's window of the array (lazy for Dask)."""
        y0, y1, x0, x1 = (v // self.scale for v in tile.window)
        lead = (slice(None),) * (self.array.ndim - 2)
        return self.array[(*lead, slice(y0, y1), slice(x0, x1))]


def aligned(a: Any, grid: TileGrid, *, scale: int = 1) -> Any:
    """``a`` (NumPy or Dask, ``(band, y, x)`` or ``(y, x)``) as a Dask array chunked on the grid's chunk edges.

    NumPy arrays are wrapped without a copy (their chunks are views); Dask arrays are rechunked, which
    costs nothing when they were opened with these chunks (:func:`dcstsf.io.open_raster` ``chunks=``).
    """
    import dask.array as da

    spatial = (grid.chunks(0, scale=scale), grid.chunks(1, scale=scale))
    chunks = ((a.shape[0],), *spatial) if a.ndim == 3 else spatial
    if is_dask(a):
        return a if a.chunks == chunks else a.rechunk(chunks)
    # name=False: no hashing of the data (a whole cube) to name the array.
    return da.from_array(np.asarray(a), chunks=chunks, name=False)


def parallel_tiles(per_tile_bytes: int, *, memory_limit: int | None = None, resident: int = 0) -> int:
    """How many tiles to compute at once: as many as cores, fewer when ``memory_limit`` (default: the
    engine's default limit, :func:`dcstsf.engine.memory.default_memory_limit`) would not hold them next to
    ``resident`` bytes."""
    from dcstsf.engine.memory import default_memory_limit

    limit = default_memory_limit() if memory_limit is None else int(memory_limit)
    fits = (limit - resident) // max(1, per_tile_bytes)
    return int(max(1, min(os.cpu_count() or 1, fits)))


def run_tiles(
    fn: Callable[..., Any],
    tiles: Sequence[Tile],
    inputs: Sequence[TileInput | None],
    *,
    parallel: int = 1,
    progress: bool = False,
    desc: str = "tiles",
) -> Iterator[tuple[Tile, Any]]:
    """``(tile, fn(tile, *windows))`` for every tile, in order; ``None`` inputs are passed as ``None``.

    Tiles run ``parallel`` at a time in Dask's threaded scheduler (reading their windows' chunks and
    calling ``fn`` are tasks of the same graph); each group's results are yielded before the next group
    is read.
    """
    import dask
    from tqdm.auto import tqdm

    with tqdm(total=len(tiles), desc=desc, unit="tile", disable=not progress) as bar:
        for start in range(0, len(tiles), parallel):
            group = list(tiles[start:start + parallel])
            tasks = [
                dask.delayed(fn, pure=True)(t, *[None if i is None else i.window(t) for i in inputs]) for t in group
            ]
            results = dask.compute(*tasks, scheduler="threads", num_workers=parallel)
            yield from zip(group, results)
            bar.update(len(group))

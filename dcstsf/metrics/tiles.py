"""Tiles of a streaming evaluation: cores, halo'd windows, chunk edges and what each tile owns.

The image is cut into tiles of ``chunk x chunk`` pixels (the last row and column may be smaller). For
a tile:

* its **core** is the part of the image it scores: every pixel belongs to exactly one core;
* its **window** is the core grown by ``halo`` pixels on every side (clipped to the image): what it
  reads. Neighbourhood statistics (SSIM's 11x11 window, a blur) of a core pixel then see the same
  pixels as in the whole image, and where the window stops at the image edge, the same edge.

Blocks (UIQI, Q2n, QNR) are anchored at an origin and never straddle two tiles in the sums: a block
belongs to the tile whose core holds its first pixel (:func:`owned_range`), which needs ``block - 1``
pixels of halo after the core unless the tile edges fall on block edges.

Windows are read as Dask arrays chunked on :meth:`TileGrid.chunk_bounds`: the strips of width
``2 * halo`` around tile edges are chunks of their own, shared by the neighbours, so every pixel is
read once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Region", "Tile", "TileGrid", "grown", "owned_range", "region_slices", "shifted"]

#: ``(y0, y1, x0, x1)``, half-open, in image pixels.
Region = tuple[int, int, int, int]


def region_slices(region: Region, origin: tuple[int, int] = (0, 0)) -> tuple[slice, slice]:
    """``region`` as (row, column) slices of an array whose first pixel is image pixel ``origin``."""
    y0, y1, x0, x1 = region
    oy, ox = origin
    return slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox)


def grown(inner: tuple[slice, slice], by: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Slices ``inner`` of an array of ``shape`` grown by ``by`` on every side, clipped to the array.

    A neighbourhood computation (a blur, SSIM's window) of ``inner``'s pixels needs only this part of a
    tile's window: the window reaches the halo past the core, or stops at the image edge.
    """
    return (slice(max(0, inner[0].start - by), min(shape[0], inner[0].stop + by)),
            slice(max(0, inner[1].start - by), min(shape[1], inner[1].stop + by)))


def shifted(inner: tuple[slice, slice], outer: tuple[slice, slice]) -> tuple[slice, slice]:
    """``inner`` (slices of an array) as slices of its part ``outer``."""
    return (slice(inner[0].start - outer[0].start, inner[0].stop - outer[0].start),
            slice(inner[1].start - outer[1].start, inner[1].stop - outer[1].start))


def owned_range(lo: int, hi: int, *, origin: int, size: int, count: int) -> tuple[int, int]:
    """Indices ``[first, last)`` of the blocks of ``size`` anchored at ``origin`` (``count`` of them) whose
    first pixel lies in ``[lo, hi)``."""
    first = max(0, -(-(lo - origin) // size))
    last = min(count, -(-(hi - origin) // size))
    return first, max(first, last)


@dataclass(frozen=True)
class Tile:
    """One tile: the ``core`` it scores and the ``window`` it reads (image pixels)."""

    core: Region
    window: Region

    @property
    def origin(self) -> tuple[int, int]:
        """Image pixel of the window's first pixel."""
        return self.window[0], self.window[2]

    @property
    def core_in_window(self) -> tuple[slice, slice]:
        """The core as slices of the window."""
        return region_slices(self.core, self.origin)

    @property
    def window_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the window."""
        return self.window[1] - self.window[0], self.window[3] - self.window[2]


@dataclass(frozen=True)
class TileGrid:
    """``height x width`` cut into tiles of ``chunk`` pixels whose windows reach ``halo`` pixels further."""

    height: int
    width: int
    chunk: int
    halo: int

    def _span(self, t: int, n: int, grow: int) -> tuple[int, int]:
        lo, hi = t * self.chunk, min(n, (t + 1) * self.chunk)
        return max(0, lo - grow), min(n, hi + grow)

    @property
    def shape(self) -> tuple[int, int]:
        """Tile rows and columns."""
        return math.ceil(self.height / self.chunk), math.ceil(self.width / self.chunk)

    def tiles(self) -> list[Tile]:
        """Every tile, row-major."""
        ny, nx = self.shape
        out = []
        for ty in range(ny):
            for tx in range(nx):
                core = (*self._span(ty, self.height, 0), *self._span(tx, self.width, 0))
                window = (*self._span(ty, self.height, self.halo), *self._span(tx, self.width, self.halo))
                out.append(Tile(core, window))
        return out

    def chunk_bounds(self, axis: int) -> list[int]:
        """Chunk edges along ``axis`` (0: rows, 1: columns) such that every window is a union of chunks."""
        n = self.height if axis == 0 else self.width
        edges = {0, n}
        for k in range(1, math.ceil(n / self.chunk)):
            b = k * self.chunk
            edges.update((min(n, max(0, b - self.halo)), min(n, max(0, b + self.halo))))
        return sorted(edges)

    def chunks(self, axis: int, *, scale: int = 1) -> tuple[int, ...]:
        """Chunk sizes along ``axis``; ``scale`` > 1 gives those of a grid ``scale`` times coarser (the edges
        must be multiples of it)."""
        b = self.chunk_bounds(axis)
        return tuple((hi - lo) // scale for lo, hi in zip(b[:-1], b[1:]) if hi > lo)

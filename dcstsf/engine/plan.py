"""Tile geometry: how the fine (output) grid is cut into tiles, and the input chunks that follow the cut.

A :class:`TilePlan` cuts the fine grid into tiles of ``chunk`` x ``chunk`` pixels (a multiple of the
ratio; the last row/column of tiles may be smaller). For tile ``T``:

* its **core** is the part of the output it owns;
* its **extended region** is the core grown by ``blend`` pixels on every side (clipped to the image):
  the pixels it predicts;
* its **window** is the extended region grown by the method's ``halo`` (clipped to the image): the
  input the method sees. Clipping at the image edge gives the method the true image edge, exactly as in
  whole-image processing, so with a halo at least the method's receptive field every predicted pixel
  equals the whole-image result.

Prediction tiles are blended into the output with normalised "distance to the extended edge" weights:
inside the ``2 * blend`` wide band around a tile boundary the two neighbours cross-fade linearly; elsewhere
one tile has weight 1. With ``blend = 0`` (the default) the extended region is the core, each pixel comes
from exactly one tile and blending is a copy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dcstsf.engine.inputs import FusionInputs
from dcstsf.errors import DcstsfInputError
from dcstsf.methods.base import Method
from dcstsf.scene_stats import round_up_to_ratio

__all__ = ["DEFAULT_CHUNK", "Region", "TilePlan", "balanced_chunk", "make_plan", "round_down", "window_chunks"]

#: Default output tile size in fine pixels (rounded down to a multiple of the ratio).
DEFAULT_CHUNK = 512

Region = tuple[int, int, int, int]  # y0, y1, x0, x1 on the fine grid


@dataclass(frozen=True)
class TilePlan:
    """How the fine grid ``height x width`` is cut into tiles.

    ``chunk``, ``halo`` and ``blend`` are multiples of ``ratio`` and ``height``/``width`` are too, so every
    window edge falls on an HS pixel edge.
    """

    height: int
    width: int
    ratio: int
    chunk: int
    halo: int
    blend: int = 0

    @property
    def ny(self) -> int:
        """Tile rows."""
        return math.ceil(self.height / self.chunk)

    @property
    def nx(self) -> int:
        """Tile columns."""
        return math.ceil(self.width / self.chunk)

    def tiles(self) -> list[tuple[int, int]]:
        """All tile indices, row-major."""
        return [(ty, tx) for ty in range(self.ny) for tx in range(self.nx)]

    def _span(self, t: int, n: int, grow: int) -> tuple[int, int]:
        lo, hi = t * self.chunk, min(n, (t + 1) * self.chunk)
        return max(0, lo - grow), min(n, hi + grow)

    def core(self, ty: int, tx: int) -> Region:
        """The output pixels tile ``(ty, tx)`` owns."""
        return (*self._span(ty, self.height, 0), *self._span(tx, self.width, 0))

    def extended(self, ty: int, tx: int) -> Region:
        """The pixels tile ``(ty, tx)`` predicts (core + blend)."""
        return (*self._span(ty, self.height, self.blend), *self._span(tx, self.width, self.blend))

    def window(self, ty: int, tx: int) -> Region:
        """The fine-grid input window of tile ``(ty, tx)`` (extended + halo)."""
        g = self.blend + self.halo
        return (*self._span(ty, self.height, g), *self._span(tx, self.width, g))

    def chunk_bounds(self, axis: int) -> list[int]:
        """Chunk edges along ``axis`` (0: y, 1: x) such that every window is a union of whole chunks.

        Reading inputs in these chunks means a tile reads exactly its window: the strips of width
        ``2 * (halo + blend)`` around tile boundaries are their own chunks, shared by the two neighbours.
        """
        n = self.height if axis == 0 else self.width
        g = self.halo + self.blend
        edges = {0, n}
        for k in range(1, math.ceil(n / self.chunk)):
            b = k * self.chunk
            edges.update((min(n, max(0, b - g)), min(n, max(0, b + g))))
        return sorted(edges)

    def _weights_1d(self, t: int, n: int, lo: int, hi: int, ntiles: int) -> np.ndarray:
        """Blend weights of tile ``t`` over ``[lo, hi)`` along one axis (they sum to 1 over tiles)."""
        y = np.arange(lo, hi, dtype=np.float64) + 0.5

        def u(s: int) -> np.ndarray:
            e0, e1 = self._span(s, n, self.blend)
            d_lo = y - e0 if e0 > 0 else np.full_like(y, np.inf)
            d_hi = e1 - y if e1 < n else np.full_like(y, np.inf)
            d = np.minimum(d_lo, d_hi)
            return np.where((y > e0) & (y < e1), np.minimum(d, 1e9), 0.0)

        first = max(0, (lo - self.blend) // self.chunk - 1)
        last = min(ntiles - 1, (hi + self.blend) // self.chunk + 1)
        total = sum(u(s) for s in range(first, last + 1))
        return u(t) / total

    def weights(self, ty: int, tx: int, region: Region) -> tuple[np.ndarray, np.ndarray]:
        """Separable blend weights ``(wy, wx)`` of tile ``(ty, tx)`` over ``region``."""
        y0, y1, x0, x1 = region
        return (
            self._weights_1d(ty, self.height, y0, y1, self.ny),
            self._weights_1d(tx, self.width, x0, x1, self.nx),
        )

    def overlapping(self, region: Region) -> Iterator[tuple[int, int]]:
        """Tiles whose extended region intersects ``region``."""
        y0, y1, x0, x1 = region
        b, c = self.blend, self.chunk
        for ty in range(max(0, (y0 - b) // c), min(self.ny, (y1 - 1 + b) // c + 1)):
            for tx in range(max(0, (x0 - b) // c), min(self.nx, (x1 - 1 + b) // c + 1)):
                ey0, ey1, ex0, ex1 = self.extended(ty, tx)
                if ey0 < y1 and ey1 > y0 and ex0 < x1 and ex1 > x0:
                    yield ty, tx

    def describe(self) -> dict[str, int]:
        """JSON-friendly summary."""
        return {
            "height": self.height,
            "width": self.width,
            "ratio": self.ratio,
            "chunk": self.chunk,
            "halo": self.halo,
            "blend": self.blend,
            "tiles_y": self.ny,
            "tiles_x": self.nx,
        }


def round_down(pixels: int, step: int) -> int:
    """The largest multiple of ``step`` that is <= ``pixels``, at least ``step``."""
    return max(step, (int(pixels) // step) * step)


def window_chunks(bounds: Sequence[int], *, size: int, offset: int = 0, divisor: int = 1) -> tuple[int, ...]:
    """Chunk sizes along one axis of an array of ``size`` pixels whose chunk edges fall on ``bounds``.

    ``bounds`` are fine-grid edges (:meth:`TilePlan.chunk_bounds`); ``divisor`` takes them to the coarse
    grid (the ratio, for the HS) and ``offset`` is where the output's first pixel lies in the array (an
    input larger than the output keeps its outer parts as chunks of their own).
    """
    edges = sorted({0, size, *(offset + b // divisor for b in bounds)})
    return tuple(b - a for a, b in zip(edges[:-1], edges[1:]) if b > a)


def balanced_chunk(chunk: int, sizes: Sequence[int], step: int) -> int:
    """The tile size for at most ``chunk`` pixels: a multiple of ``step``, as small as keeps the number of
    tiles along every axis, so the last row and column are not slivers.

    E.g. 1023 px in tiles of at most 480 (step 48): 3 tiles of 384, 384 and 255 px instead of 480, 480
    and 63. A sliver costs nearly a whole halo for few pixels, and the last, lone tile of a run leaves a
    core idle; balanced tiles keep the time per pixel of small scenes close to that of large ones.
    """
    c = round_down(chunk, step)
    need = max(-(-n // -(-n // c)) for n in sizes)  # the widest tile when each axis keeps its tile count
    return min(c, round_up_to_ratio(need, step))


def make_plan(
    inputs: FusionInputs,
    method: Method,
    *,
    chunk: int = DEFAULT_CHUNK,
    blend: int = 0,
    halo: int | None = None,
    step: int | None = None,
    balance: bool = False,
) -> TilePlan:
    """The tile plan for validated inputs.

    Halo and blend are rounded up to multiples of the ratio; the tile size is ``chunk`` rounded down to a
    multiple of ``step`` (default: the ratio; it must be a multiple of it) or, with ``balance``, the
    smallest such multiple that keeps the tile count (:func:`balanced_chunk`: batch runs, where the tile
    size is an internal choice; :func:`dcstsf.engine.fuse` keeps the Dask chunks the user asked for).
    """
    r = inputs.ratio
    if not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise DcstsfInputError(f"chunk must be a positive number of pixels, got {chunk!r}")
    if not isinstance(blend, (int, np.integer)) or blend < 0:
        raise DcstsfInputError(f"blend must be a non-negative number of pixels, got {blend!r}")
    if halo is not None and (not isinstance(halo, (int, np.integer)) or halo < 0):
        raise DcstsfInputError(f"halo must be a non-negative number of pixels, got {halo!r}")
    # Tiles, halos and blend zones start on HS pixel edges, so every window is whole coarse pixels.
    s = r if step is None else int(step)
    if s < 1 or s % r:
        raise ValueError(f"step must be a positive multiple of the ratio {r}, got {step!r}")
    H, W = inputs.ms_t1.sizes["y"], inputs.ms_t1.sizes["x"]
    c = balanced_chunk(int(chunk), (H, W), s) if balance else round_down(chunk, s)
    declared = int(method.halo(inputs.model))
    h = round_up_to_ratio(declared if halo is None else int(halo), r)
    b = round_up_to_ratio(int(blend), r)
    return TilePlan(height=H, width=W, ratio=r, chunk=c, halo=h, blend=b)

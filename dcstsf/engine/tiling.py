"""Tile geometry, per-tile fusion and overlap blending.

A :class:`TilePlan` cuts the fine (output) grid into tiles of ``chunk`` x ``chunk`` pixels (a multiple of
the ratio; the last row/column of tiles may be smaller). For tile ``T``:

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf.methods.base import Fitted, Method
from dcstsf.operators import ObservationModel

__all__ = ["TileContext", "TilePlan", "compose", "predict_tile"]

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


@dataclass(frozen=True, eq=False)
class TileContext:
    """Everything a tile needs besides its windows: shared by all tiles (one graph key).

    ``fill_*`` are the per-band scene means used to fill nodata before ``apply`` (scene-wide, so a pixel
    next to nodata gets the same input in every tiling). ``mask_bands`` are the HS bands whose NaN marks a
    coarse pixel as nodata (good bands that are not entirely empty in the scene).
    """

    method: Method
    model: ObservationModel
    fitted: Fitted
    fill_hs: np.ndarray
    fill_ms1: np.ndarray
    fill_ms2: np.ndarray
    mask_bands: np.ndarray


def _filled(a: np.ndarray, fill: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    nan = np.isnan(a)
    if not nan.any():
        return np.ascontiguousarray(a)
    return np.where(nan, fill.astype(np.float32)[:, None, None], a).astype(np.float32)


def nodata_mask(ctx: TileContext, hs: np.ndarray, ms1: np.ndarray, ms2: np.ndarray) -> np.ndarray:
    """Fine-grid nodata: any MS band NaN at either date, or HS NaN (mask bands) at the covering pixel."""
    r = ctx.model.ratio
    bad = np.isnan(ms1).any(axis=0) | np.isnan(ms2).any(axis=0)
    hs_bad = np.isnan(hs[ctx.mask_bands]).any(axis=0) if ctx.mask_bands.size else np.zeros(hs.shape[1:], bool)
    if hs_bad.any():
        bad |= np.repeat(np.repeat(hs_bad, r, axis=0), r, axis=1)
    return bad


def predict_tile(
    ctx: TileContext,
    hs: np.ndarray,
    ms1: np.ndarray,
    ms2: np.ndarray,
    *,
    window: Region,
    extended: Region,
) -> np.ndarray:
    """Fuse one window and return the prediction over ``extended`` (NaN where the inputs are nodata)."""
    wy0, wy1, wx0, wx1 = window
    ey0, ey1, ex0, ex1 = extended
    n_hs = ctx.model.n_hs
    inner = (slice(ey0 - wy0, ey1 - wy0), slice(ex0 - wx0, ex1 - wx0))
    bad = nodata_mask(ctx, hs, ms1, ms2)[inner]
    if bad.all():
        # Nothing valid to predict: skip the method (the result would be masked anyway).
        return np.full((n_hs, ey1 - ey0, ex1 - ex0), np.nan, dtype=np.float32)
    out = ctx.method.apply_region(
        _filled(hs, ctx.fill_hs),
        _filled(ms1, ctx.fill_ms1),
        _filled(ms2, ctx.fill_ms2),
        model=ctx.model,
        fitted=ctx.fitted,
        region=inner,
    )
    expected = (n_hs, ey1 - ey0, ex1 - ex0)
    if tuple(np.shape(out)) != expected:
        raise RuntimeError(
            f"method {ctx.method.name!r} returned shape {tuple(np.shape(out))} for a region of shape {expected}; "
            "Method.apply must return (n_hs, H, W) on the fine grid of the window and Method.apply_region "
            "the requested region of it"
        )
    # no copy when the method already returned a C-contiguous float32 region
    res = np.ascontiguousarray(out, dtype=np.float32)
    if bad.any():
        res[:, bad] = np.nan
    return res


def compose(
    plan: TilePlan,
    region: Region,
    get_prediction: Callable[[int, int], Any],
    *,
    n_bands: int,
) -> np.ndarray:
    """The output over ``region`` from the prediction tiles (``get_prediction(ty, tx)`` -> extended array)."""
    y0, y1, x0, x1 = region
    out = np.zeros((n_bands, y1 - y0, x1 - x0), dtype=np.float32)
    for ty, tx in plan.overlapping(region):
        ey0, ey1, ex0, ex1 = plan.extended(ty, tx)
        iy0, iy1, ix0, ix1 = max(y0, ey0), min(y1, ey1), max(x0, ex0), min(x1, ex1)
        sub = np.asarray(get_prediction(ty, tx)[:, iy0 - ey0 : iy1 - ey0, ix0 - ex0 : ix1 - ex0])
        dst = (slice(None), slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
        if plan.blend == 0:
            out[dst] = sub
        else:
            wy, wx = plan.weights(ty, tx, (iy0, iy1, ix0, ix1))
            out[dst] += sub * (wy[:, None] * wx[None, :]).astype(np.float32)
    return out

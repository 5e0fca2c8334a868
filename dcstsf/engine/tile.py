"""One tile: fill nodata, apply the method to the tile's window, mask nodata; and the overlap blend.

The nodata policy lives here, for the engine and for :func:`dcstsf.methods.fuse_arrays` alike. Nodata is
NaN (+/-Inf is turned into NaN first). Before ``apply`` NaN is filled with the per-band scene mean,
estimated once from a regular subsample of the whole scene (:func:`dcstsf.scene_stats.scene_fill_values`): a scene-wide
constant, so a pixel next to nodata gets the same input in every tiling. Afterwards the output is NaN at
every fine pixel where any MS band is NaN at t1 or t2, or where the covering HS pixel is NaN in a mask
band (a sensor band not flagged bad and not empty in the whole scene). A tile that is entirely nodata
skips the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf.engine.plan import Region, TilePlan
from dcstsf.errors import MethodOutputError
from dcstsf.methods.base import Fitted, Method, fit_scene
from dcstsf.nodata import impossible_to_nan
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import scene_fill_values

__all__ = [
    "TileContext",
    "compose",
    "filled",
    "fuse_whole_image",
    "mask_nodata",
    "nodata_mask",
    "predict_tile",
    "tile_context",
]


@dataclass(frozen=True, eq=False)
class TileContext:
    """Everything a tile needs besides its windows: shared by all tiles (one graph key).

    ``fill_*`` are the per-band scene means used to fill nodata before ``apply`` (scene-wide, so a pixel
    next to nodata gets the same input in every tiling). ``mask_bands`` are the HS bands whose NaN marks a
    coarse pixel as nodata (good bands that are not entirely empty in the scene); ``empty_bands`` flags the
    HS bands with no data anywhere in the scene, which the output holds as NaN.
    """

    method: Method
    model: ObservationModel
    fitted: Fitted
    fill_hs: np.ndarray
    fill_ms1: np.ndarray
    fill_ms2: np.ndarray
    mask_bands: np.ndarray
    empty_bands: np.ndarray


def tile_context(
    method: Method, model: ObservationModel, fitted: Fitted, hs: Any, ms1: Any, ms2: Any, *,
    hs_fill: np.ndarray | None = None,
) -> TileContext:
    """The context the tiles of a scene share: the fill values and mask bands of the whole-scene arrays
    ``hs``, ``ms1``, ``ms2`` (NumPy or Dask, NaN for nodata) with the method and its fitted state.
    ``hs_fill``: HS's fill values when already read (:attr:`dcstsf.engine.FusionInputs.hs_fill`)."""
    if hs_fill is None:
        fill_hs, fill_ms1, fill_ms2 = scene_fill_values([hs, ms1, ms2])
    else:
        fill_hs = np.asarray(hs_fill, dtype=np.float64)
        fill_ms1, fill_ms2 = scene_fill_values([ms1, ms2])
    empty_hs = ~np.isfinite(fill_hs)
    good = np.asarray(model.hs_sensor.good, bool) & ~empty_hs
    if not good.any():
        good = ~empty_hs
    return TileContext(
        method=method,
        model=model,
        fitted=fitted,
        fill_hs=np.nan_to_num(fill_hs).astype(np.float32),
        fill_ms1=np.nan_to_num(fill_ms1).astype(np.float32),
        fill_ms2=np.nan_to_num(fill_ms2).astype(np.float32),
        mask_bands=np.flatnonzero(good),
        empty_bands=empty_hs,
    )


def filled(a: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``a`` (float32) with NaN replaced by the scene-wide per-band ``fill`` (:attr:`TileContext.fill_hs`, ...)."""
    a = np.asarray(a, dtype=np.float32)
    nan = np.isnan(a)
    if not nan.any():
        return np.ascontiguousarray(a)
    return np.where(nan, fill.astype(np.float32)[:, None, None], a).astype(np.float32)


def mask_nodata(ctx: TileContext, out: np.ndarray, bad: np.ndarray) -> None:
    """Write NaN into ``out`` where the inputs are nodata: every band at the fine pixels ``bad`` (from
    :func:`nodata_mask`), and the HS bands with no data in the scene, where the prediction is only the fill
    value. ``out`` is C-contiguous ``(k * n_hs, h, w)``: ``k`` stacked ``n_hs``-band blocks (the prediction,
    its standard deviation) are masked alike."""
    if bad.any():
        out[:, bad] = np.nan
    if ctx.empty_bands.any():
        out.reshape(-1, ctx.model.n_hs, *out.shape[1:])[:, ctx.empty_bands] = np.nan


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
        filled(hs, ctx.fill_hs),
        filled(ms1, ctx.fill_ms1),
        filled(ms2, ctx.fill_ms2),
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
    # one float64 sum is non-finite when any value is (a finite overflow only leads to the exact check), and
    # needs no tile-sized temporary on the engine's hot path
    if not np.isfinite(res.sum(dtype=np.float64)):
        # the inputs were filled, so a NaN or Inf at a valid pixel is the method's failure: a whole output of
        # NaN with a successful exit would look like a result
        broken = int((~np.isfinite(res[:, ~bad])).sum())
        if broken:
            raise MethodOutputError(
                f"method {ctx.method.name!r} returned {broken} non-finite values at valid pixels of the window "
                f"rows {ey0}:{ey1}, columns {ex0}:{ex1} (fine grid); nothing is written for this tile. This is a "
                "failure of the method, not of the inputs: another --method fuses these inputs, and the finished "
                "tiles of a batch run are kept"
            )
    mask_nodata(ctx, res, bad)
    return res


def fuse_whole_image(
    method: Method, hs: np.ndarray, ms1: np.ndarray, ms2: np.ndarray, *, model: ObservationModel
) -> np.ndarray:
    """Fuse in-memory arrays as one tile that is the whole image: the engine's path without tiling.

    +/-Inf and values no reflectance takes become NaN (:func:`dcstsf.nodata.impossible_to_nan`), ``fit``
    sees the float32 arrays, and nodata is filled and masked as in every
    engine tile (:func:`tile_context`, :func:`predict_tile`), so the result equals an untiled engine run.
    """
    arrays = [impossible_to_nan(np.asarray(a, dtype=np.float32), label=name)
              for a, name in ((hs, "HS(t1)"), (ms1, "MS(t1)"), (ms2, "MS(t2)"))]
    fitted = fit_scene(method, *arrays, model=model)
    ctx = tile_context(method, model, fitted, *arrays)
    h, w = arrays[1].shape[1:]
    return predict_tile(ctx, *arrays, window=(0, h, 0, w), extended=(0, h, 0, w))


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

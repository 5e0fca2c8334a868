"""One tile's prediction and standard deviation, with the engine's nodata policy.

The tile's window is filled and masked as in :func:`dcstsf.engine.tile.predict_tile`. The method and the
reference member predict the region the tile keeps grown by the state's margin; the local measures are
computed there and cut back to the region, where they are exact (the margin covers the MS blur and the
local root mean square, and the halo covers the member's receptive field), so a tiled standard deviation
equals the whole-image one as the prediction does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dcstsf.engine.plan import Region
from dcstsf.engine.tile import TileContext, filled, mask_nodata, nodata_mask
from dcstsf.uncertainty.calibration import standard_deviation
from dcstsf.uncertainty.measures import Measures, local_rms, ms_change, ms_residual
from dcstsf.uncertainty.scene import UncertaintyState

if TYPE_CHECKING:
    from dcstsf.engine.job import FusionJob

__all__ = ["predict_tile_with_sd", "tile_measures", "whole_image_measures"]


def _checked(out: np.ndarray, who: str, expected: tuple[int, int, int]) -> np.ndarray:
    if tuple(np.shape(out)) != expected:
        raise RuntimeError(
            f"{who} returned shape {tuple(np.shape(out))} for a region of shape {expected}; Method.apply_region "
            "must return (n_hs, H, W) for the requested fine-grid region"
        )
    return np.asarray(out, dtype=np.float32)


def tile_measures(
    ctx: TileContext, state: UncertaintyState, hs: np.ndarray, ms1: np.ndarray, ms2: np.ndarray, *,
    window: Region, extended: Region,
) -> tuple[np.ndarray, Measures, np.ndarray]:
    """The prediction over ``extended``, the :class:`~dcstsf.uncertainty.measures.Measures` there and the
    nodata mask ``(h, w)`` (``True`` = nodata); the prediction is not masked."""
    wy0, wy1, wx0, wx1 = window
    ey0, ey1, ex0, ex1 = extended
    m = state.margin
    # the kept region grown by the margin, inside the window
    gy0, gy1 = max(ey0 - m, wy0), min(ey1 + m, wy1)
    gx0, gx1 = max(ex0 - m, wx0), min(ex1 + m, wx1)
    grown = (slice(gy0 - wy0, gy1 - wy0), slice(gx0 - wx0, gx1 - wx0))
    keep = (slice(None), slice(ey0 - gy0, ey1 - gy0), slice(ex0 - gx0, ex1 - gx0))
    bad = nodata_mask(ctx, hs, ms1, ms2)[ey0 - wy0 : ey1 - wy0, ex0 - wx0 : ex1 - wx0]
    arrays = (filled(hs, ctx.fill_hs), filled(ms1, ctx.fill_ms1), filled(ms2, ctx.fill_ms2))
    shape = (ctx.model.n_hs, gy1 - gy0, gx1 - gx0)
    pred = _checked(ctx.method.apply_region(*arrays, model=ctx.model, fitted=ctx.fitted, region=grown),
                    f"method {ctx.method.name!r}", shape)
    ref = _checked(state.member.apply_region(*arrays, model=ctx.model, fitted=state.member_fitted, region=grown),
                   f"uncertainty member {state.member.name!r}", shape)
    sigma = state.calibration.sigma_px
    member = local_rms(pred - ref, sigma)[keep]
    ms1_g, ms2_g = (a[(slice(None), *grown)] for a in arrays[1:])
    residual = ms_residual(pred, ms2_g, model=ctx.model, sigma=sigma)[keep]
    change = ms_change(ms1_g, ms2_g, sigma=sigma)[keep]
    measures = Measures(band=state.band_sd, residual=np.tensordot(state.mapping, residual, axes=1), member=member,
                        change=np.tensordot(state.mapping, change, axes=1))
    return np.ascontiguousarray(pred[keep]), measures, bad


def predict_tile_with_sd(
    ctx: TileContext, state: UncertaintyState, hs: np.ndarray, ms1: np.ndarray, ms2: np.ndarray, *,
    window: Region, extended: Region,
) -> np.ndarray:
    """``(2 n_hs, h, w)`` over ``extended``: the prediction, then its standard deviation; NaN in both where
    the inputs are nodata."""
    ey0, ey1, ex0, ex1 = extended
    n = ctx.model.n_hs
    bad = nodata_mask(ctx, hs, ms1, ms2)[ey0 - window[0] : ey1 - window[0], ex0 - window[2] : ex1 - window[2]]
    if bad.all():
        return np.full((2 * n, ey1 - ey0, ex1 - ex0), np.nan, dtype=np.float32)
    pred, measures, bad = tile_measures(ctx, state, hs, ms1, ms2, window=window, extended=extended)
    sd = standard_deviation(measures, state.entry, floor=state.calibration.floor)
    out = np.concatenate([pred, sd])
    mask_nodata(ctx, out, bad)
    return out


def whole_image_measures(job: FusionJob) -> tuple[np.ndarray, Measures, np.ndarray]:
    """:func:`tile_measures` of a job prepared with ``uncertainty=True``, on the whole image as one tile
    (the untiled engine path): the prediction, the measures and the nodata mask, in memory.

    For calibration and checks: the standard deviation of ``dcstsf.fuse(..., uncertainty=True)`` is
    :func:`~dcstsf.uncertainty.calibration.standard_deviation` of these measures, NaN where the mask is set.
    """
    from dcstsf.nodata import impossible_to_nan

    if job.uncertainty is None:
        raise ValueError("the job was prepared without uncertainty; use prepare(..., uncertainty=True)")
    arrays = [impossible_to_nan(np.asarray(a.values, dtype=np.float32), label=name) for a, name in
              ((job.inputs.hs_t1, 'HS(t1)'), (job.inputs.ms_t1, 'MS(t1)'), (job.inputs.ms_t2, 'MS(t2)'))]
    h, w = arrays[1].shape[1:]
    whole = (0, h, 0, w)
    return tile_measures(job.context, job.uncertainty, *arrays, window=whole, extended=whole)

"""The lazy scene fusion: :func:`fuse` builds a Dask graph of tiles, nothing is computed until asked.

Steps (see the package docstring for the reasons):

1. :func:`~dcstsf.engine.validate_inputs` checks grids, CRS, ratio and bands;
2. scene-level state is computed once, eagerly and small: the method's ``fit`` (typically a strided
   sample of coarse pixels) and per-band scene means used to fill nodata (:func:`~dcstsf.engine.prepare`);
3. one Dask task per tile fuses the tile's window (extended by the halo) and returns the tile's
   prediction; the output chunks are these predictions (``blend = 0``) or their cross-faded blend.

With ``uncertainty=True`` each task returns the prediction and its standard deviation stacked along the
bands (:mod:`dcstsf.uncertainty`), and :func:`fuse` splits them into the two arrays of a
:class:`~dcstsf.uncertainty.FusionResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from dcstsf.engine.job import FusionJob, prepare
from dcstsf.engine.plan import DEFAULT_CHUNK, Region, TilePlan
from dcstsf.engine.tile import compose
from dcstsf.methods import Method
from dcstsf.operators import ObservationModel
from dcstsf.sensors import Sensor

if TYPE_CHECKING:
    from dcstsf.uncertainty import FusionResult

__all__ = ["assemble", "core_blocks_to_array", "fuse"]


def _compose_task(plan: TilePlan, region: Region, n_bands: int, preds: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    return compose(plan, region, lambda ty, tx: preds[(ty, tx)], n_bands=n_bands)


def core_blocks_to_array(plan: TilePlan, n_bands: int, block: Callable[[int, int, Region], Any]) -> Any:
    """One Dask array from one delayed ``(n_bands, core)`` block per tile: ``block(ty, tx, core_region)``."""
    import dask.array as da

    meta = np.empty((0, 0, 0), dtype=np.float32)
    rows = []
    for ty in range(plan.ny):
        row = []
        for tx in range(plan.nx):
            region = plan.core(ty, tx)
            y0, y1, x0, x1 = region
            d = block(ty, tx, region)
            row.append(da.from_delayed(d, shape=(n_bands, y1 - y0, x1 - x0), dtype=np.float32, meta=meta))
        rows.append(row)
    return da.block(rows)


def assemble(job: FusionJob) -> Any:
    """The output as one Dask array with chunks ``(band: all, y: chunk, x: chunk)`` (``2 n_hs`` bands, the
    prediction then its standard deviation, for a job prepared with ``uncertainty=True``)."""
    import dask

    plan = job.plan
    n = job.n_bands * (2 if job.uncertainty is not None else 1)

    def block(ty: int, tx: int, region: Region) -> Any:
        if plan.blend == 0:
            return job.predictions[(ty, tx)]
        preds = {t: job.predictions[t] for t in plan.overlapping(region)}
        return dask.delayed(_compose_task, pure=True)(plan, region, n, preds, dask_key_name=f"{job.name}-blend-{ty}-{tx}")

    return core_blocks_to_array(plan, n, block)


def fuse(
    hs_t1: xr.DataArray,
    ms_t1: xr.DataArray,
    ms_t2: xr.DataArray,
    *,
    method: str | Method = "dcstsf",
    hs_sensor: str | Sensor | None = None,
    ms_sensor: str | Sensor | None = None,
    ms_bands: Sequence[str] | str | None = None,
    ratio: int | None = None,
    ms_sensor_t2: str | Sensor | None = None,
    chunk: int = DEFAULT_CHUNK,
    blend: int = 0,
    halo: int | None = None,
    align: str = "strict",
    model: ObservationModel | None = None,
    physics: str = "estimated",
    checks: bool = True,
    uncertainty: bool = False,
) -> xr.DataArray | FusionResult:
    """Predict fine HS(t2) from coarse HS(t1) and fine MS(t1), MS(t2), lazily, tile by tile.

    Parameters
    ----------
    hs_t1
        Coarse hyperspectral image at t1, dims ``(band, y, x)``, NumPy- or Dask-backed, reflectance in
        [0, 1], NaN for nodata.
    ms_t1, ms_t2
        Fine multispectral images at t1 and t2 on one grid, aligned with the HS grid at an integer ratio.
    method
        A registered method name (``dcstsf.methods.available_methods()``) or a
        :class:`~dcstsf.methods.Method` instance.
    hs_sensor, ms_sensor, ms_bands, ratio, align, model
        See :func:`dcstsf.engine.validate_inputs` (defaults: AHSI for 166 bands or a sensor from the
        ``wavelength`` coordinate; Sentinel-2A; band names from the MS ``band`` coordinate; ratio from the
        pixel sizes; strict grid checks).
    ms_sensor_t2
        The MS sensor of MS(t2) when another spacecraft took it (e.g. ``"sentinel-2b"``; default: MS(t2)'s
        ``sensor`` attribute). MS(t2) is adjusted band by band to MS(t1)'s responses
        (:func:`dcstsf.engine.dates.adjust_ms_t2`).
    chunk
        Output tile size in fine pixels, rounded down to a multiple of the ratio. Peak memory grows with
        ``chunk**2 x n_hs`` per tile computed in parallel.
    blend
        Extra overlap (fine pixels, rounded up to a multiple of the ratio) over which neighbouring tiles
        are cross-faded linearly. Not needed for registered methods, whose declared halo covers their
        receptive field (tiles then equal the whole-image result); use it for a method whose receptive
        field exceeds its declared halo, where it hides the seams.
    halo
        Override the method's declared halo (fine pixels).
    physics
        ``"estimated"`` (default): every method (bicubic aside, which uses no physics) fuses with the HS
        point-spread function, the HS-to-MS sub-pixel shift and the spectral responses estimated from
        HS(t1) and MS(t1) (:func:`dcstsf.diagnosis.diagnose_scene`); ``"tables"``: with the sensor tables'.
        The estimate is recorded in the ``scene_diagnosis`` attribute either way.
    checks
        Check before fusing that the inputs agree with each other (plausible reflectance values, MS band
        labels, MS dates in order, no unapplied offset): an input that cannot be right raises
        :class:`~dcstsf.errors.DcstsfInputError`, a doubtful one warns. ``False`` skips the checks.
    uncertainty
        Also return the per-pixel, per-band standard deviation of the prediction (:mod:`dcstsf.uncertainty`:
        the method's disagreement with a reference ensemble member, the MS(t2) reproduction error, the MS
        change and the band's unexplained variance, calibrated on simulated cases). Each tile then also runs the member,
        which costs about one more fusion, and reads a wider halo.

    Returns
    -------
    xarray.DataArray
        Lazy (Dask) ``(band, y, x)`` float32 on the (cropped) MS grid, chunks ``(n_hs, chunk, chunk)``;
        HS band names with ``wavelength``/``fwhm`` (nm) coordinates; CRS and transform via rioxarray;
        NaN where any input is nodata; attrs ``method``, ``method_identity``, ``weights_sha256`` (when the
        method has weights), ``dcstsf_version``, ``inputs``, ``ratio``, sensors, ``halo``, ``chunk``, ``blend``,
        ``physics`` and ``scene_diagnosis`` (the estimate, JSON).
    dcstsf.uncertainty.FusionResult
        With ``uncertainty=True``: the named tuple ``(prediction, sd)`` of two such lazy DataArrays on the
        same grid, bands, CRS and chunks (``pred, sd = fuse(..., uncertainty=True)``). ``sd`` is named
        ``reflectance_sd``, NaN where the prediction is, and its attrs add ``quantity`` and the
        ``uncertainty_*`` entries naming the calibration. The prediction equals the one without uncertainty
        (to float rounding); its ``halo`` attribute is the wider halo the tiles read.

    Notes
    -----
    Only the scene-level state is computed here: the method's ``fit`` (a small strided sample for the
    shipped methods) and the per-band scene means used to fill nodata (one pass over the inputs). No output
    pixel is computed until the result is computed, written or plotted.
    """
    job = prepare(
        hs_t1, ms_t1, ms_t2, method=method, hs_sensor=hs_sensor, ms_sensor=ms_sensor, ms_bands=ms_bands,
        ms_sensor_t2=ms_sensor_t2,
        ratio=ratio, chunk=chunk, blend=blend, halo=halo, align=align, model=model, physics=physics, checks=checks,
        uncertainty=uncertainty,
    )
    if not uncertainty:
        return job.to_dataarray(assemble(job))
    from dcstsf.uncertainty import FusionResult

    both, n = assemble(job), job.n_bands
    sd = job.to_dataarray(both[n:]).rename("reflectance_sd")
    sd.attrs.update(job.uncertainty.attrs())
    return FusionResult(job.to_dataarray(both[:n]), sd)

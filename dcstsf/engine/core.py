"""The lazy scene fusion: :func:`fuse` builds a Dask graph of tiles, nothing is computed until asked.

Steps (see the package docstring for the reasons):

1. :func:`~dcstsf.engine.grids.validate_inputs` checks grids, CRS, ratio and bands;
2. scene-level state is computed once, eagerly and small: the method's ``fit`` (typically a strided
   sample of coarse pixels) and per-band scene means used to fill nodata;
3. one Dask task per tile fuses the tile's window (extended by the halo) and returns the tile's
   prediction; the output chunks are these predictions (``blend = 0``) or their cross-faded blend.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from dcstsf.engine.grids import FusionInputs, validate_inputs
from dcstsf.engine.tiling import Region, TileContext, TilePlan, compose, predict_tile
from dcstsf.errors import DcstsfInputError
from dcstsf.methods import Method, get_method
from dcstsf.nodata import inf_to_nan
from dcstsf.operators import ObservationModel
from dcstsf.sensors import Sensor

__all__ = ["DEFAULT_CHUNK", "FusionJob", "fuse", "make_plan", "prepare"]

#: Default output tile size in fine pixels (rounded down to a multiple of the ratio).
DEFAULT_CHUNK = 512


def _version() -> str:
    from dcstsf import __version__

    return __version__


def _is_dask(a: Any) -> bool:
    return type(a).__module__.startswith("dask")


def _band_means(arrays: Sequence[Any], *, max_pixels: int = 100_000) -> list[np.ndarray]:
    """Per-band NaN-mean of each array (NaN for all-NaN bands) over a regular subsample.

    The values only fill nodata before ``apply``; what matters is that they are one scene-wide constant
    (so every tiling fills alike), not their last digit. Dask inputs are reduced in one pass.
    """
    import dask
    import dask.array as da

    def sample(a: Any) -> Any:
        stride = max(1, math.ceil(math.sqrt(a.shape[1] * a.shape[2] / max_pixels)))
        return a[:, stride // 2 :: stride, stride // 2 :: stride]

    lazy = [da.nanmean(sample(a), axis=(1, 2), dtype=np.float64) if _is_dask(a) else None for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" for all-NaN bands
        computed = iter(dask.compute(*[x for x in lazy if x is not None]) if any(x is not None for x in lazy) else ())
        out = []
        for a, lz in zip(arrays, lazy):
            if lz is not None:
                m = next(computed)
            else:
                s = np.asarray(sample(a))
                m = np.nanmean(s.reshape(s.shape[0], -1), axis=1, dtype=np.float64)
            out.append(np.asarray(m, dtype=np.float64))
    return out


def _hash_fitted(fitted: Any) -> str:
    """A stable SHA-256 of a fitted state (arrays by content)."""
    h = hashlib.sha256()

    def feed(obj: Any) -> None:
        if isinstance(obj, dict):
            for k in sorted(obj, key=str):
                h.update(str(k).encode())
                feed(obj[k])
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                feed(v)
        elif isinstance(obj, np.ndarray) or np.isscalar(obj):
            arr = np.ascontiguousarray(np.asarray(obj))
            h.update(str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
        else:
            try:
                import torch

                if isinstance(obj, torch.Tensor):
                    feed(obj.detach().cpu().numpy())
                    return
            except ImportError:  # torch is a dependency; guard keeps the hash usable without it
                pass
            h.update(repr(obj).encode())

    feed(fitted)
    return h.hexdigest()


@dataclass(eq=False)
class FusionJob:
    """A prepared fusion: validated inputs, fitted state, tile plan and one Dask task per tile.

    ``predictions[(ty, tx)]`` is a ``dask.delayed`` object computing tile ``(ty, tx)``'s prediction over
    ``plan.extended(ty, tx)``. :func:`fuse` assembles them into a DataArray; :func:`dcstsf.engine.run_batch`
    computes them one by one and writes them to its work directory.
    """

    inputs: FusionInputs
    method: Method
    model: ObservationModel
    context: TileContext
    plan: TilePlan
    predictions: dict[tuple[int, int], Any]
    band_coords: dict[str, Any]
    spatial_coords: dict[str, Any]
    attrs: dict[str, Any]
    fitted_sha256: str
    name: str

    @property
    def n_bands(self) -> int:
        """Output bands."""
        return self.model.n_hs

    def to_dataarray(self, data: Any) -> xr.DataArray:
        """Wrap fine-grid output data ``(n_hs, H, W)`` with the output coordinates, CRS and attrs."""
        out = xr.DataArray(data, dims=("band", "y", "x"), coords={**self.band_coords, **self.spatial_coords},
                           attrs=dict(self.attrs), name="reflectance")
        if self.inputs.transform is not None:
            if self.inputs.crs is not None:
                out = out.rio.write_crs(self.inputs.crs)
            out = out.rio.write_transform(self.inputs.transform)
        out = out.rio.write_nodata(np.nan, encoded=False) if "x" in out.coords else out
        out.attrs["_FillValue"] = np.float32(np.nan)
        return out


def _input_description(da: xr.DataArray, name: str) -> dict[str, Any]:
    src = da.encoding.get("source") or da.attrs.get("source")
    return {"name": name, "source": str(src) if src else None, "shape": [int(s) for s in da.shape]}


def _band_coords(hs: xr.DataArray, model: ObservationModel) -> dict[str, Any]:
    """Output band coordinates: the HS input's names/wavelength/fwhm/bbl, else the sensor's."""
    sensor = model.hs_sensor
    names = [str(v) for v in hs["band"].values] if "band" in hs.coords else list(sensor.band_names)
    if len(set(names)) != len(names):
        names = list(sensor.band_names)
    coords: dict[str, Any] = {"band": np.array(names, dtype=object)}
    for key, fallback in (("wavelength", sensor.centers_nm), ("fwhm", sensor.fwhm_nm)):
        if key in hs.coords and hs[key].dims == ("band",):
            vals = np.asarray(hs[key].values, dtype=np.float64)
        else:
            vals = np.asarray(fallback, dtype=np.float64)
        coords[key] = ("band", vals, {"units": "nm"})
    if "bbl" in hs.coords and hs["bbl"].dims == ("band",):
        coords["bbl"] = ("band", np.asarray(hs["bbl"].values))
    return coords


def _dask_input(a: Any, chunks: tuple[tuple[int, ...], ...], label: str, token: str) -> Any:
    """``a`` as a Dask array in ``chunks`` (a no-op rechunk for Dask inputs already chunked so)."""
    import dask.array as da

    if _is_dask(a):
        return a.rechunk(chunks)
    # NumPy input: one graph key holds the array, the window-aligned chunks are views of it.
    return da.from_array(np.asarray(a, dtype=np.float32), chunks=chunks, name=f"dcstsf-input-{label}-{token}")


def _bounds_to_chunks(bounds: list[int]) -> tuple[int, ...]:
    return tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]) if b > a)


def _round_up(pixels: int, ratio: int) -> int:
    return -(-int(pixels) // ratio) * ratio


def _round_down(pixels: int, step: int) -> int:
    """The largest multiple of ``step`` that is <= ``pixels``, at least ``step``."""
    return max(step, (int(pixels) // step) * step)


def balanced_chunk(chunk: int, sizes: Sequence[int], step: int) -> int:
    """The tile size for at most ``chunk`` pixels: a multiple of ``step``, as small as keeps the number of
    tiles along every axis, so the last row and column are not slivers.

    E.g. 1023 px in tiles of at most 480 (step 48): 3 tiles of 384, 384 and 255 px instead of 480, 480
    and 63. A sliver costs nearly a whole halo for few pixels, and the last, lone tile of a run leaves a
    core idle; balanced tiles keep the time per pixel of small scenes close to that of large ones.
    """
    c = _round_down(chunk, step)
    need = max(-(-n // -(-n // c)) for n in sizes)  # the widest tile when each axis keeps its tile count
    return min(c, _round_up(need, step))


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
    size is an internal choice; :func:`fuse` keeps the Dask chunks the user asked for).
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
    c = balanced_chunk(int(chunk), (H, W), s) if balance else _round_down(chunk, s)
    declared = int(method.halo(inputs.model))
    h = _round_up(declared if halo is None else int(halo), r)
    b = _round_up(int(blend), r)
    return TilePlan(height=H, width=W, ratio=r, chunk=c, halo=h, blend=b)


def prepare(
    hs_t1: xr.DataArray,
    ms_t1: xr.DataArray,
    ms_t2: xr.DataArray,
    *,
    method: str | Method = "dcstsf",
    hs_sensor: str | Sensor | None = None,
    ms_sensor: str | Sensor | None = None,
    ms_bands: Sequence[str] | str | None = None,
    ratio: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    blend: int = 0,
    halo: int | None = None,
    align: str = "strict",
    model: ObservationModel | None = None,
    inputs: FusionInputs | None = None,
    step: int | None = None,
    balance: bool = False,
    fit_inputs: FusionInputs | None = None,
) -> FusionJob:
    """Validate, fit and build the per-tile tasks (the work behind :func:`fuse` and ``run_batch``).

    ``step``, ``balance``: the tile size, see :func:`make_plan`. ``fit_inputs``: the same data in other
    chunks to estimate the scene-level state from (``Method.fit`` and the fill values read every chunk
    once; the file's own blocks read faster than the tile-aligned chunks the tiles use).
    """
    m = get_method(method)
    if inputs is None:
        inputs = validate_inputs(
            hs_t1, ms_t1, ms_t2, hs_sensor=hs_sensor, ms_sensor=ms_sensor, ms_bands=ms_bands, ratio=ratio,
            align=align, model=model,
        )
    mdl = inputs.model
    r = inputs.ratio
    plan = make_plan(inputs, m, chunk=chunk, blend=blend, halo=halo, step=step, balance=balance)
    c, h, b = plan.chunk, plan.halo, plan.blend

    hs_a, ms1_a, ms2_a = (inf_to_nan(a) for a in (inputs.hs_t1.data, inputs.ms_t1.data, inputs.ms_t2.data))
    fit_arrays = (hs_a, ms1_a, ms2_a)
    if fit_inputs is not None:
        fit_arrays = tuple(inf_to_nan(x.data) for x in (fit_inputs.hs_t1, fit_inputs.ms_t1, fit_inputs.ms_t2))
        if [a.shape for a in fit_arrays] != [hs_a.shape, ms1_a.shape, ms2_a.shape]:
            raise ValueError("fit_inputs must hold the same arrays as the inputs (other chunks only)")
    fitted = m.fit(*fit_arrays, model=mdl)
    fill_hs, fill_ms1, fill_ms2 = _band_means(list(fit_arrays))
    empty_hs = ~np.isfinite(fill_hs)
    good = np.asarray(mdl.hs_sensor.good, bool) & ~empty_hs
    if not good.any():
        good = ~empty_hs
    ctx = TileContext(
        method=m,
        model=mdl,
        fitted=fitted,
        fill_hs=np.nan_to_num(fill_hs).astype(np.float32),
        fill_ms1=np.nan_to_num(fill_ms1).astype(np.float32),
        fill_ms2=np.nan_to_num(fill_ms2).astype(np.float32),
        mask_bands=np.flatnonzero(good),
    )
    fitted_sha = _hash_fitted(fitted)

    token = uuid.uuid4().hex[:12]
    yb, xb = plan.chunk_bounds(0), plan.chunk_bounds(1)
    fine_chunks = ((mdl.n_ms,), _bounds_to_chunks(yb), _bounds_to_chunks(xb))
    coarse_chunks = ((mdl.n_hs,), _bounds_to_chunks([v // r for v in yb]), _bounds_to_chunks([v // r for v in xb]))
    # Chunk edges on the window edges (a no-op for batch runs, which read the files so): every tile's
    # window is then a union of whole chunks, and its task takes those chunks by key.
    inputs_d = (
        _dask_input(hs_a, coarse_chunks, "hs", token),
        _dask_input(ms1_a, fine_chunks, "ms1", token),
        _dask_input(ms2_a, fine_chunks, "ms2", token),
    )
    name = f"dcstsf-{m.name}-{token}"
    predictions = _tile_tasks(name, ctx, plan, inputs_d)

    spatial = {k: inputs.ms_t1[k] for k in ("y", "x") if k in inputs.ms_t1.coords}
    ident = {str(k): v for k, v in m.identity().items()}
    attrs: dict[str, Any] = {
        "method": m.name,
        "method_identity": json.dumps(ident, sort_keys=True, default=str),
        "dcstsf_version": _version(),
        "hs_sensor": mdl.hs_sensor.name,
        "ms_sensor": mdl.ms_sensor.name,
        "ms_bands": ",".join(mdl.ms_sensor.band_names),
        "ratio": int(r),
        "halo": int(h),
        "chunk": int(c),
        "blend": int(b),
        "fitted_sha256": fitted_sha,
        "inputs": json.dumps(
            [
                _input_description(hs_t1, "hs_t1"),
                _input_description(ms_t1, "ms_t1"),
                _input_description(ms_t2, "ms_t2"),
            ]
        ),
        "processing": "; ".join(inputs.notes) if inputs.notes else "none",
    }
    if "weights_sha256" in ident:
        attrs["weights_sha256"] = str(ident["weights_sha256"])
    return FusionJob(
        inputs=inputs,
        method=m,
        model=mdl,
        context=ctx,
        plan=plan,
        predictions=predictions,
        band_coords=_band_coords(inputs.hs_t1, mdl),
        spatial_coords=spatial,
        attrs=attrs,
        fitted_sha256=fitted_sha,
        name=name,
    )


def _predict_blocks(
    ctx: TileContext,
    hs: list[list[np.ndarray]],
    ms1: list[list[np.ndarray]],
    ms2: list[list[np.ndarray]],
    *,
    window: Region,
    extended: Region,
) -> np.ndarray:
    """:func:`predict_tile` on a window given as rows of chunks of each input."""

    def joined(blocks: list[list[np.ndarray]]) -> np.ndarray:
        return blocks[0][0] if len(blocks) == 1 and len(blocks[0]) == 1 else np.block(blocks)

    return predict_tile(ctx, joined(hs), joined(ms1), joined(ms2), window=window, extended=extended)


def _tile_tasks(
    name: str, ctx: TileContext, plan: TilePlan, inputs: tuple[Any, Any, Any]
) -> dict[tuple[int, int], Any]:
    """One ``Delayed`` per tile, reading its window's chunks of ``inputs`` (HS, MS(t1), MS(t2)) by key.

    The inputs are chunked on the plan's chunk bounds (coarse ones for the HS). Written as one graph
    layer rather than a ``dask.delayed`` call per tile on sliced arrays: slicing three Dask arrays per tile
    and unpacking them as arguments took 3.2 s for the 169 tiles of a 6000^2 scene, and unpacking
    imports ``dask.distributed`` (0.6 s) even when no cluster is used.
    """
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    yb, xb = plan.chunk_bounds(0), plan.chunk_bounds(1)
    y_at, x_at = {v: i for i, v in enumerate(yb)}, {v: i for i, v in enumerate(xb)}
    keys = [a.__dask_keys__()[0] for a in inputs]  # [y chunk][x chunk], one band chunk
    ctx_key = f"{name}-context"
    layer: dict[Any, Any] = {ctx_key: ctx}
    for ty, tx in plan.tiles():
        wy0, wy1, wx0, wx1 = plan.window(ty, tx)
        rows, cols = slice(y_at[wy0], y_at[wy1]), slice(x_at[wx0], x_at[wx1])
        blocks = [[list(row[cols]) for row in k[rows]] for k in keys]
        task = partial(_predict_blocks, window=(wy0, wy1, wx0, wx1), extended=plan.extended(ty, tx))
        layer[f"{name}-predict-{ty}-{tx}"] = (task, ctx_key, *blocks)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=list(inputs))
    return {t: Delayed(f"{name}-predict-{t[0]}-{t[1]}", graph, layer=name) for t in plan.tiles()}


def _compose_task(plan: TilePlan, region: Region, n_bands: int, preds: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    return compose(plan, region, lambda ty, tx: preds[(ty, tx)], n_bands=n_bands)


def _assemble(job: FusionJob) -> Any:
    """The output as one Dask array with chunks ``(band: all, y: chunk, x: chunk)``."""
    import dask
    import dask.array as da

    plan, n = job.plan, job.n_bands
    meta = np.empty((0, 0, 0), dtype=np.float32)
    rows = []
    for ty in range(plan.ny):
        row = []
        for tx in range(plan.nx):
            y0, y1, x0, x1 = plan.core(ty, tx)
            if plan.blend == 0:
                d = job.predictions[(ty, tx)]
            else:
                region = (y0, y1, x0, x1)
                preds = {t: job.predictions[t] for t in plan.overlapping(region)}
                d = dask.delayed(_compose_task, pure=True)(
                    plan, region, n, preds, dask_key_name=f"{job.name}-blend-{ty}-{tx}"
                )
            row.append(da.from_delayed(d, shape=(n, y1 - y0, x1 - x0), dtype=np.float32, meta=meta))
        rows.append(row)
    return da.block(rows)


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
    chunk: int = DEFAULT_CHUNK,
    blend: int = 0,
    halo: int | None = None,
    align: str = "strict",
    model: ObservationModel | None = None,
) -> xr.DataArray:
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

    Returns
    -------
    xarray.DataArray
        Lazy (Dask) ``(band, y, x)`` float32 on the (cropped) MS grid, chunks ``(n_hs, chunk, chunk)``;
        HS band names with ``wavelength``/``fwhm`` (nm) coordinates; CRS and transform via rioxarray;
        NaN where any input is nodata; attrs ``method``, ``method_identity``, ``weights_sha256`` (when the
        method has weights), ``dcstsf_version``, ``inputs``, ``ratio``, sensors, ``halo``, ``chunk``, ``blend``.

    Notes
    -----
    Only the scene-level state is computed here: the method's ``fit`` (a small strided sample for the
    shipped methods) and the per-band scene means used to fill nodata (one pass over the inputs). No output
    pixel is computed until the result is computed, written or plotted.
    """
    job = prepare(
        hs_t1, ms_t1, ms_t2, method=method, hs_sensor=hs_sensor, ms_sensor=ms_sensor, ms_bands=ms_bands,
        ratio=ratio, chunk=chunk, blend=blend, halo=halo, align=align, model=model,
    )
    return job.to_dataarray(_assemble(job))

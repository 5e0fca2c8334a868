"""A prepared fusion: validated inputs, the scene-level state computed once, and one Dask task per tile.

:func:`prepare` does the eager, small part of a fusion: it validates the inputs, runs the method's
``fit`` (typically a strided sample of coarse pixels) and estimates the nodata fill values, then builds
one Dask task per tile. :func:`dcstsf.engine.fuse` assembles the tasks into a lazy DataArray;
:func:`dcstsf.engine.run_batch` computes them one by one and writes them to its work directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from dcstsf._arrays import is_dask
from dcstsf.diagnosis import DiagnosisOptions, SceneDiagnosis
from dcstsf.engine.acquisition import acquisition_time
from dcstsf.engine.inputs import FusionInputs, validate_inputs
from dcstsf.engine.physics import SettledInputs, settle_inputs
from dcstsf.engine.plan import DEFAULT_CHUNK, Region, TilePlan, make_plan, window_chunks
from dcstsf.engine.sources import input_description, input_label
from dcstsf.engine.tile import TileContext, predict_tile, tile_context
from dcstsf.methods import Method, fit_scene, get_method
from dcstsf.nodata import impossible_to_nan
from dcstsf.operators import ObservationModel
from dcstsf.sensors import Sensor

if TYPE_CHECKING:
    from dcstsf.uncertainty import Calibration, UncertaintyState

__all__ = ["FusionJob", "fitted_sha256", "prepare"]

log = logging.getLogger(__name__)


def _version() -> str:
    from dcstsf import __version__

    return __version__


def fitted_sha256(fitted: Any) -> str:
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
    ``plan.extended(ty, tx)``. :func:`dcstsf.engine.fuse` assembles them into a DataArray;
    :func:`dcstsf.engine.run_batch` computes them one by one and writes them to its work directory.
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
    diagnosis: SceneDiagnosis | None = None
    #: the scene-level state of the standard deviation (``prepare(..., uncertainty=True)``), else ``None``:
    #: then each task computes ``(2 n_hs, ...)``, the prediction and its standard deviation
    uncertainty: UncertaintyState | None = None

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


def _band_coords(hs: xr.DataArray, model: ObservationModel, empty_bands: np.ndarray) -> dict[str, Any]:
    """Output band coordinates: the HS input's names/wavelength/fwhm/bbl, else the sensor's; the bands that
    hold no data in the scene (``empty_bands``, NaN in the output) are bad in ``bbl``."""
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
    if np.any(empty_bands):
        given = np.asarray(coords["bbl"][1], dtype=float) > 0 if "bbl" in coords else np.ones(model.n_hs, bool)
        coords["bbl"] = ("band", (given & ~np.asarray(empty_bands, bool)).astype(np.int8))
    return coords


def _dask_input(a: Any, chunks: tuple[tuple[int, ...], ...], label: str, token: str) -> Any:
    """``a`` as a Dask array in ``chunks`` (a no-op rechunk for Dask inputs already chunked so)."""
    import dask.array as da

    if is_dask(a):
        return a.rechunk(chunks)
    # NumPy input: one graph key holds the array, the window-aligned chunks are views of it.
    return da.from_array(np.asarray(a, dtype=np.float32), chunks=chunks, name=f"dcstsf-input-{label}-{token}")


def _joined(blocks: list[list[np.ndarray]]) -> np.ndarray:
    """A window from its rows of chunks (the chunk itself when there is only one: no copy)."""
    return blocks[0][0] if len(blocks) == 1 and len(blocks[0]) == 1 else np.block(blocks)


def _predict_blocks(
    ctx: TileContext,
    hs: list[list[np.ndarray]],
    ms1: list[list[np.ndarray]],
    ms2: list[list[np.ndarray]],
    *,
    window: Region,
    extended: Region,
) -> np.ndarray:
    """:func:`~dcstsf.engine.tile.predict_tile` on a window given as rows of chunks of each input."""
    return predict_tile(ctx, _joined(hs), _joined(ms1), _joined(ms2), window=window, extended=extended)


def _predict_blocks_sd(
    ctx: TileContext,
    state: UncertaintyState,
    hs: list[list[np.ndarray]],
    ms1: list[list[np.ndarray]],
    ms2: list[list[np.ndarray]],
    *,
    window: Region,
    extended: Region,
) -> np.ndarray:
    """:func:`dcstsf.uncertainty.predict_tile_with_sd` on a window given as rows of chunks of each input."""
    from dcstsf.uncertainty.tile import predict_tile_with_sd

    return predict_tile_with_sd(ctx, state, _joined(hs), _joined(ms1), _joined(ms2), window=window, extended=extended)


def _tile_tasks(
    name: str, ctx: TileContext, plan: TilePlan, inputs: tuple[Any, Any, Any], *,
    uncertainty: UncertaintyState | None = None,
) -> dict[tuple[int, int], Any]:
    """One ``Delayed`` per tile, reading its window's chunks of ``inputs`` (HS, MS(t1), MS(t2)) by key.

    The inputs are chunked on the plan's chunk bounds (coarse ones for the HS). Written as one graph
    layer rather than a ``dask.delayed`` call per tile on sliced arrays: slicing three Dask arrays per
    tile costs time that grows with the tile count, and unpacking Dask arrays as ``delayed`` arguments
    imports ``dask.distributed`` even when no cluster is used. With ``uncertainty`` (an
    :class:`~dcstsf.uncertainty.UncertaintyState`, one more graph key) each task returns the prediction and
    its standard deviation stacked along the bands.
    """
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    yb, xb = plan.chunk_bounds(0), plan.chunk_bounds(1)
    y_at, x_at = {v: i for i, v in enumerate(yb)}, {v: i for i, v in enumerate(xb)}
    keys = [a.__dask_keys__()[0] for a in inputs]  # [y chunk][x chunk], one band chunk
    ctx_key = f"{name}-context"
    layer: dict[Any, Any] = {ctx_key: ctx}
    shared: tuple[str, ...] = (ctx_key,)
    predict: Any = _predict_blocks
    if uncertainty is not None:
        layer[f"{name}-uncertainty"] = uncertainty
        shared, predict = (ctx_key, f"{name}-uncertainty"), _predict_blocks_sd
    for ty, tx in plan.tiles():
        wy0, wy1, wx0, wx1 = plan.window(ty, tx)
        rows, cols = slice(y_at[wy0], y_at[wy1]), slice(x_at[wx0], x_at[wx1])
        blocks = [[list(row[cols]) for row in k[rows]] for k in keys]
        task = partial(predict, window=(wy0, wy1, wx0, wx1), extended=plan.extended(ty, tx))
        layer[f"{name}-predict-{ty}-{tx}"] = (task, *shared, *blocks)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=list(inputs))
    return {t: Delayed(f"{name}-predict-{t[0]}-{t[1]}", graph, layer=name) for t in plan.tiles()}


def _decisions(method: Method, model: ObservationModel, plan: TilePlan, ident: dict[str, Any]) -> str:
    """One line of what the run inferred or chose: sensors, MS bands in use, method and weights, tiles."""
    weights = getattr(method, "weights_source", None)
    sha = ident.get("weights_sha256")
    with_weights = f", weights {weights or 'in memory'}" + (f" (sha256 {str(sha)[:12]})" if sha else "")
    return (
        f"HS {model.hs_sensor.name} ({model.n_hs} bands), MS {model.ms_sensor.name} bands "
        f"{','.join(model.ms_sensor.band_names)}, ratio {model.ratio}; method {method.name}"
        f"{with_weights if method.name == 'dcstsf' else ''}; {len(plan.tiles())} tiles, halo {plan.halo} px"
    )


#: Attributes of a prepared HS(t1) (:mod:`dcstsf.preparation`) copied into the output.
_PREPARATION_ATTRS = ("coregistration", "footprint", "preparation")


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
    ms_sensor_t2: str | Sensor | None = None,
    chunk: int = DEFAULT_CHUNK,
    blend: int = 0,
    halo: int | None = None,
    align: str = "strict",
    model: ObservationModel | None = None,
    inputs: FusionInputs | None = None,
    step: int | None = None,
    balance: bool = False,
    fit_inputs: FusionInputs | None = None,
    physics: str = "estimated",
    checks: bool = True,
    settled: SettledInputs | None = None,
    uncertainty: bool | Calibration = False,
) -> FusionJob:
    """Validate, diagnose, fit and build the per-tile tasks (the work behind :func:`dcstsf.engine.fuse` and
    ``run_batch``).

    ``inputs``: already validated inputs (skips :func:`~dcstsf.engine.validate_inputs`). ``step``,
    ``balance``: the tile size, see :func:`~dcstsf.engine.make_plan`. ``fit_inputs``: the same data in
    other chunks to estimate the scene-level state from (``Method.fit`` and the fill values read every
    chunk once; the file's own blocks read faster than the tile-aligned chunks the tiles use).
    ``physics``, ``checks``: see :class:`~dcstsf.diagnosis.DiagnosisOptions`. ``settled``: the result of
    :func:`~dcstsf.engine.physics.settle_inputs` for these inputs, when already computed. ``uncertainty``:
    each task also computes the prediction's standard deviation (:mod:`dcstsf.uncertainty`; the halo grows
    by what it needs), with the shipped calibration or the given
    :class:`~dcstsf.uncertainty.Calibration`.
    """
    m = get_method(method)
    if inputs is None:
        inputs = validate_inputs(
            hs_t1, ms_t1, ms_t2, hs_sensor=hs_sensor, ms_sensor=ms_sensor, ms_bands=ms_bands, ratio=ratio,
            align=align, model=model, ms_sensor_t2=ms_sensor_t2,
        )
    settled = settle_inputs(
        inputs, method=m, options=DiagnosisOptions(physics=physics, checks=checks), fit_inputs=fit_inputs,
        settled=settled,
    )
    inputs, fit_inputs = settled.inputs, settled.fit_inputs
    mdl = inputs.model
    r = inputs.ratio
    if uncertainty:
        from dcstsf.uncertainty import Calibration, load_calibration, reference_member, uncertainty_halo

        calibration = uncertainty if isinstance(uncertainty, Calibration) else load_calibration()
        member = reference_member(m, mdl)
        halo = uncertainty_halo(m, member, mdl, calibration=calibration, halo=halo)
    plan = make_plan(inputs, m, chunk=chunk, blend=blend, halo=halo, step=step, balance=balance)
    c, h, b = plan.chunk, plan.halo, plan.blend

    # the value checks above saw the values as they are; the fit and the tiles see what no reflectance can
    # take (a hot pixel the checks' sample missed) as nodata
    def cleaned(fi: FusionInputs) -> tuple[Any, ...]:
        return tuple(impossible_to_nan(a.data, label=input_label(a, name))
                     for a, name in ((fi.hs_t1, "HS(t1)"), (fi.ms_t1, "MS(t1)"), (fi.ms_t2, "MS(t2)")))

    hs_a, ms1_a, ms2_a = fit_arrays = cleaned(inputs)
    if fit_inputs is not None:
        fit_arrays = cleaned(fit_inputs)
        if [a.shape for a in fit_arrays] != [hs_a.shape, ms1_a.shape, ms2_a.shape]:
            raise ValueError("fit_inputs must hold the same arrays as the inputs (other chunks only)")
    fitted = fit_scene(m, *fit_arrays, model=mdl)
    ctx = tile_context(m, mdl, fitted, *fit_arrays, hs_fill=inputs.hs_fill)
    fitted_sha = fitted_sha256(fitted)
    state = None
    if uncertainty:
        from dcstsf.uncertainty import uncertainty_state

        state = uncertainty_state(m, member, mdl, *fit_arrays, calibration=calibration)

    token = uuid.uuid4().hex[:12]
    yb, xb = plan.chunk_bounds(0), plan.chunk_bounds(1)
    H, W = plan.height, plan.width
    fine_chunks = ((mdl.n_ms,), window_chunks(yb, size=H), window_chunks(xb, size=W))
    coarse_chunks = (
        (mdl.n_hs,), window_chunks(yb, size=H // r, divisor=r), window_chunks(xb, size=W // r, divisor=r)
    )
    # Chunk edges on the window edges (a no-op for batch runs, which read the files so): every tile's
    # window is then a union of whole chunks, and its task takes those chunks by key.
    inputs_d = (
        _dask_input(hs_a, coarse_chunks, "hs", token),
        _dask_input(ms1_a, fine_chunks, "ms1", token),
        _dask_input(ms2_a, fine_chunks, "ms2", token),
    )
    name = f"dcstsf-{m.name}-{token}"
    predictions = _tile_tasks(name, ctx, plan, inputs_d, uncertainty=state)

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
                input_description(hs_t1, "hs_t1"),
                input_description(ms_t1, "ms_t1"),
                input_description(ms_t2, "ms_t2"),
            ]
        ),
        "processing": "; ".join(inputs.notes) if inputs.notes else "none",
        **settled.diagnosis.to_attrs(),
    }
    if "weights_sha256" in ident:
        attrs["weights_sha256"] = str(ident["weights_sha256"])
    # the prediction shows the surface at MS(t2)'s date; HS(t1)'s is kept for the record
    for key, source in (("acquisition_time", inputs.ms_t2), ("t1_acquisition_time", inputs.hs_t1)):
        when = acquisition_time(source)
        if when is not None:
            attrs[key] = when.isoformat().replace("+00:00", "Z")
    # what the preparation of delivered products did to the inputs travels with the output (the report reads
    # the co-registration field from it)
    for key in _PREPARATION_ATTRS:
        if key in inputs.hs_t1.attrs:
            attrs[key] = inputs.hs_t1.attrs[key]
    log.info("%s", _decisions(m, mdl, plan, ident))
    return FusionJob(
        inputs=inputs,
        method=m,
        model=mdl,
        context=ctx,
        plan=plan,
        predictions=predictions,
        band_coords=_band_coords(inputs.hs_t1, mdl, ctx.empty_bands),
        spatial_coords=spatial,
        attrs=attrs,
        fitted_sha256=fitted_sha,
        name=name,
        diagnosis=settled.diagnosis,
        uncertainty=state,
    )

"""Input validation for scene fusion: three cubes checked and brought onto consistent grids.

The rules (pixel-corner convention of ``docs/design.md``):

* all three inputs share one CRS (or none of them has one: then they are plain pixel grids);
* MS(t1) and MS(t2) lie on the identical grid (shape and transform);
* the HS grid is aligned with the MS grid at an integer ratio ``r``: HS pixel size = ``r`` x MS pixel size
  (within 1e-6 relative) and every HS pixel corner falls on an MS pixel corner;
* the output covers the part of the HS footprint that lies inside the MS grid, in whole coarse pixels.
  An MS scene larger than the HS footprint (the usual case: a Sentinel-2 tile around a ZY-1 02D scene)
  is cropped to it; HS pixels outside the MS grid are dropped with a warning.

Anything else is a :class:`~dcstsf.errors.DcstsfInputError` naming the inputs, the numbers and the fix,
unless ``align="reproject"`` is given (:func:`dcstsf.engine.grids.reproject`). Sensors and band names
are resolved by :mod:`dcstsf.engine.bands`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dcstsf.engine.acquisition import check_acquisition_times
from dcstsf.engine.bands import check_band_counts, mark_empty_hs_bands, observation_model, select_named_ms_bands
from dcstsf.engine.grids import (
    CORNER_TOL,
    REPROJECT_FIX,
    AlignedGrids,
    as_integer,
    crs_of,
    grid_gsd_m,
    ratio_from_grids,
    reproject,
    resolution_text,
    same_grid,
    transform_of,
)
from dcstsf.engine.sources import input_label
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import scene_fill_values
from dcstsf.sensors import Sensor

__all__ = ["ALIGN_MODES", "FusionInputs", "validate_inputs"]

#: ``align=`` values understood by :func:`validate_inputs`.
ALIGN_MODES = ("strict", "reproject")


@dataclass(frozen=True)
class FusionInputs:
    """Inputs checked and brought onto consistent grids by :func:`validate_inputs`.

    Attributes
    ----------
    hs_t1, ms_t1, ms_t2
        DataArrays ``(band, y, x)``; the HS grid covers exactly ``ratio`` x ``ratio`` MS pixels per pixel.
    model
        The observation model (sensors, chosen MS bands, ratio).
    ratio
        Integer ratio of HS to MS pixel size.
    crs
        The common CRS (``None`` for plain pixel grids).
    transform
        The fine (output) grid's affine transform, ``None`` when the inputs carry no coordinates.
    ms_offset, hs_offset
        ``(row, col)`` of the output's first pixel in the original MS arrays and of the first used HS
        pixel in the original HS array (non-zero when inputs were cropped; ``None`` after reprojection).
    notes
        What was done to the inputs (cropping, reprojection), for the output's attrs.
    hs_fill
        HS(t1)'s per-band mean on the engine's regular subsample (:func:`dcstsf.scene_stats.scene_fill_values`,
        NaN for a band without data): read once here, it tells the empty bands and fills the tiles' nodata.
    """

    hs_t1: xr.DataArray
    ms_t1: xr.DataArray
    ms_t2: xr.DataArray
    model: ObservationModel
    ratio: int
    crs: Any
    transform: Any
    ms_offset: tuple[int, int] | None = (0, 0)
    hs_offset: tuple[int, int] | None = (0, 0)
    notes: tuple[str, ...] = field(default_factory=tuple)
    hs_fill: np.ndarray | None = None


def _as_cube(da: Any, name: str) -> xr.DataArray:
    """``da`` as a non-empty float32 ``(band, y, x)`` DataArray, or an error saying how to get one."""
    if not isinstance(da, xr.DataArray):
        raise DcstsfInputError(
            f"{name} must be an xarray.DataArray with dims (band, y, x), got {type(da).__name__}; "
            "open files with dcstsf.io.open_raster or wrap arrays with xarray.DataArray(a, dims=('band', 'y', 'x'))"
        )
    if da.ndim != 3 or set(da.dims) != {"band", "y", "x"}:
        raise DcstsfInputError(
            f"{input_label(da, name)} has dims {tuple(da.dims)}; expected (band, y, x): rename the dimensions, "
            "e.g. da.rename({'wavelength': 'band'})"
        )
    da = da.transpose("band", "y", "x")
    if da.sizes["y"] == 0 or da.sizes["x"] == 0 or da.sizes["band"] == 0:
        raise DcstsfInputError(f"{input_label(da, name)} is empty (shape {da.shape})")
    if da.dtype != np.float32:
        # Reflectance is float32 everywhere in the engine; integers would silently lose the scale.
        if not np.issubdtype(da.dtype, np.floating):
            raise DcstsfInputError(
                f"{input_label(da, name)} holds {da.dtype} values; the engine expects float reflectance in [0, 1] "
                "with NaN for nodata: open files with dcstsf.io.open_raster (it applies the scale"
                + (", as rioxarray.open_rasterio(..., mask_and_scale=True) does with the scale_factor "
                   f"{da.attrs['scale_factor']} this array carries" if "scale_factor" in da.attrs else "")
                + "), or convert with (da * scale).astype('float32')"
            )
        da = da.astype(np.float32)
    return da


def _check_order(hs: xr.DataArray, ms1: xr.DataArray, ms2: xr.DataArray) -> None:
    """The hyperspectral cube comes first: an MS input with more bands than HS(t1) means a swapped order.

    Checked before the grids, whose errors would otherwise describe the symptom (MS(t1) and MS(t2) on
    different grids) instead of the cause.
    """
    counts = {"HS(t1)": hs.sizes["band"], "MS(t1)": ms1.sizes["band"], "MS(t2)": ms2.sizes["band"]}
    most = max(counts, key=lambda k: counts[k])
    if most == "HS(t1)" or counts[most] == counts["HS(t1)"]:
        return
    labels = {"HS(t1)": input_label(hs, "HS(t1)"), "MS(t1)": input_label(ms1, "MS(t1)"),
              "MS(t2)": input_label(ms2, "MS(t2)")}
    raise DcstsfInputError(
        f"{labels['HS(t1)']} has {counts['HS(t1)']} bands but {labels[most]} has {counts[most]}: the inputs look "
        "out of order. The hyperspectral cube comes first: HS_T1 MS_T1 MS_T2 (hs_t1=, ms_t1=, ms_t2=), with "
        "MS_T1 the multispectral image of HS(t1)'s date"
    )


def _check_crs(hs: xr.DataArray, ms1: xr.DataArray, ms2: xr.DataArray, *, align: str) -> None:
    """Every input has a CRS or none has; with ``align="strict"`` they are one CRS."""
    crss = {"HS(t1)": crs_of(hs), "MS(t1)": crs_of(ms1), "MS(t2)": crs_of(ms2)}
    labels = {"HS(t1)": input_label(hs, "HS(t1)"), "MS(t1)": input_label(ms1, "MS(t1)"),
              "MS(t2)": input_label(ms2, "MS(t2)")}
    with_crs = {k: v for k, v in crss.items() if v is not None}
    if with_crs and len(with_crs) < 3:
        missing = [labels[k] for k, v in crss.items() if v is None]
        have = ", ".join(f"{labels[k]} {v}" for k, v in with_crs.items())
        raise DcstsfInputError(
            f"{' and '.join(missing)} carr{'ies' if len(missing) == 1 else 'y'} no CRS but {have}; georeference "
            "every input (da.rio.write_crs(...), or fix the file) so the grids can be compared"
        )
    distinct = {str(v) for v in with_crs.values()}
    if len(distinct) > 1 and align != "reproject":
        raise DcstsfInputError(
            "the inputs are in different CRSs ("
            + ", ".join(f"{labels[k]}: {v}" for k, v in with_crs.items())
            + f"); reproject them to one CRS (rioxarray: da.rio.reproject('EPSG:...')) or {REPROJECT_FIX}"
        )


def _align_strict(hs: xr.DataArray, ms1: xr.DataArray, ms2: xr.DataArray, *, ratio: int | None) -> AlignedGrids:
    """Check the grids as they are and crop them to the common footprint in whole coarse pixels."""
    notes: list[str] = []
    hs_t, m1_t, m2_t = transform_of(hs, "HS(t1)"), transform_of(ms1, "MS(t1)"), transform_of(ms2, "MS(t2)")
    if ms1.shape[1:] != ms2.shape[1:]:
        raise DcstsfInputError(
            f"{input_label(ms1, 'MS(t1)')} is {ms1.sizes['y']} x {ms1.sizes['x']} pixels but "
            f"{input_label(ms2, 'MS(t2)')} is {ms2.sizes['y']} x {ms2.sizes['x']}; both dates must share one grid: "
            f"resample MS(t2) onto MS(t1) (rioxarray: ms_t2.rio.reproject_match(ms_t1)) or {REPROJECT_FIX}"
        )
    if (m1_t is None) != (m2_t is None) or (m1_t is not None and not same_grid(m1_t, m2_t)):
        raise DcstsfInputError(
            f"{input_label(ms1, 'MS(t1)')} and {input_label(ms2, 'MS(t2)')} are on different grids (transforms "
            f"{m1_t} vs {m2_t}); both dates must share one grid: resample MS(t2) onto MS(t1) or {REPROJECT_FIX}"
        )
    if (hs_t is None) != (m1_t is None):
        raise DcstsfInputError(
            "HS(t1) and MS(t1) must both carry x/y coordinates or both be plain pixel grids; "
            "give both coordinates (open files with dcstsf.io.open_raster) or drop them from both"
        )
    H, W = ms1.sizes["y"], ms1.sizes["x"]
    hc, wc = hs.sizes["y"], hs.sizes["x"]
    if hs_t is None:
        # Plain pixel grids: top-left corners coincide by convention, the ratio comes from the shapes.
        if ratio is None:
            ry, rx = H / hc, W / wc
            iy, ix = as_integer(ry, tol=1e-9), as_integer(rx, tol=1e-9)
            if iy is None or ix is None or iy != ix:
                raise DcstsfInputError(
                    f"HS(t1) is {hc} x {wc} and MS(t1) {H} x {W} pixels: not one integer ratio ({ry:.4g} x "
                    f"{rx:.4g}) and the inputs have no coordinates to tell; pass ratio= or crop the MS to "
                    "ratio x the HS size"
                )
            ratio = iy
        r = int(ratio)
        oy = ox = 0
    else:
        r_grid = ratio_from_grids(hs_t, m1_t, hs, ms1)
        if ratio is not None and int(ratio) != r_grid:
            raise DcstsfInputError(
                f"ratio={ratio} was given but the grids ({input_label(hs, 'HS(t1)')} pixel size "
                f"{resolution_text(hs_t)}, {input_label(ms1, 'MS(t1)')} {resolution_text(m1_t)}) give {r_grid}; "
                "drop ratio= (CLI --ratio) or fix the pixel sizes"
            )
        r = r_grid
        fy, fx = (hs_t.f - m1_t.f) / m1_t.e, (hs_t.c - m1_t.c) / m1_t.a
        iy_, ix_ = as_integer(fy, tol=CORNER_TOL), as_integer(fx, tol=CORNER_TOL)
        if iy_ is None or ix_ is None:
            raise DcstsfInputError(
                f"{input_label(hs, 'HS(t1)')} pixel corners do not coincide with {input_label(ms1, 'MS(t1)')} "
                f"pixel corners: the HS origin ({hs_t.c:.6f}, {hs_t.f:.6f}) is {fx:.4g} x {fy:.4g} MS pixels from "
                f"the MS origin ({m1_t.c:.6f}, {m1_t.f:.6f}); snap the grids (resample HS(t1) onto a grid whose corners "
                f"lie on MS pixel corners) or {REPROJECT_FIX}, which does that"
            )
        oy, ox = iy_, ix_
    # Coarse pixels whose r x r block lies inside the MS grid.
    i0 = math.ceil(-oy / r) if oy < 0 else 0
    j0 = math.ceil(-ox / r) if ox < 0 else 0
    i1 = min(hc, (H - oy) // r)
    j1 = min(wc, (W - ox) // r)
    if i1 <= i0 or j1 <= j0:
        raise DcstsfInputError(
            f"the {input_label(hs, 'HS(t1)')} footprint ({hc} x {wc} pixels at offset {oy}, {ox} MS pixels) does "
            f"not cover one whole HS pixel of the {input_label(ms1, 'MS(t1)')} grid ({H} x {W}); check that the "
            "inputs show the same place"
        )
    if (i0, j0, i1, j1) != (0, 0, hc, wc):
        lost = hc * wc - (i1 - i0) * (j1 - j0)
        warnings.warn(
            f"{lost} HS(t1) pixels lie outside the MS grid and are dropped (output covers HS rows {i0}:{i1}, "
            f"columns {j0}:{j1})",
            stacklevel=4,  # the public entry (fuse, run_batch) that led here
        )
        notes.append(f"HS(t1) cropped to rows {i0}:{i1}, columns {j0}:{j1} (outside the MS grid)")
        hs = hs.isel(y=slice(i0, i1), x=slice(j0, j1))
    my0, mx0 = oy + i0 * r, ox + j0 * r
    my1, mx1 = oy + i1 * r, ox + j1 * r
    if (my0, mx0, my1, mx1) != (0, 0, H, W):
        notes.append(f"MS cropped to the HS footprint: rows {my0}:{my1}, columns {mx0}:{mx1}")
        ms1 = ms1.isel(y=slice(my0, my1), x=slice(mx0, mx1))
        ms2 = ms2.isel(y=slice(my0, my1), x=slice(mx0, mx1))
    if m1_t is not None:
        # One set of coordinates for both dates: they agree within float noise (checked above).
        ms2 = ms2.assign_coords(x=ms1["x"], y=ms1["y"])
    return AlignedGrids(hs, ms1, ms2, r, ms_offset=(my0, mx0), hs_offset=(i0, j0), notes=tuple(notes))


def validate_inputs(
    hs_t1: xr.DataArray,
    ms_t1: xr.DataArray,
    ms_t2: xr.DataArray,
    *,
    hs_sensor: str | Sensor | None = None,
    ms_sensor: str | Sensor | None = None,
    ms_bands: Sequence[str] | str | None = None,
    ratio: int | None = None,
    align: str = "strict",
    model: ObservationModel | None = None,
    ms_sensor_t2: str | Sensor | None = None,
    hs_fill: np.ndarray | None = None,
) -> FusionInputs:
    """Check the three inputs and bring them onto consistent grids.

    Parameters
    ----------
    hs_t1, ms_t1, ms_t2
        DataArrays with dims ``(band, y, x)`` (any order of those three), NumPy- or Dask-backed, float
        reflectance with NaN for nodata. Georeferenced through rioxarray (``.rio.crs``, x/y coordinates),
        or without x/y coordinates as plain pixel grids whose top-left corners coincide.
    hs_sensor
        HS sensor name or :class:`~dcstsf.sensors.Sensor`. Default: ``"zy1-02d-ahsi"`` for 166 bands;
        otherwise a registered sensor whose band centres match the ``wavelength`` coordinate within 5 nm,
        else a sensor built from the ``wavelength``/``fwhm``/``bbl`` coordinates.
    ms_sensor
        MS sensor of MS(t1), which the model uses (default: MS(t1)'s ``sensor`` attribute when it names a
        registered sensor, as the product readers set it, else ``"sentinel-2a"``).
    ms_sensor_t2
        MS sensor of MS(t2) when another spacecraft took it (default: MS(t2)'s ``sensor`` attribute); MS(t2)
        is then adjusted band by band to MS(t1)'s responses (:func:`dcstsf.engine.dates.adjust_ms_t2`).
    ms_bands
        MS band names in the data's band order (list or ``"B02,B03,B04,B08"``). Default: the MS
        ``band`` coordinate (``B2``/``B02`` style names are both understood). When the data names its
        bands, fewer names select those bands, in the order given (a 10-band stack fused with the four
        10 m bands; :func:`dcstsf.engine.bands.select_named_ms_bands`).
    ratio
        HS/MS pixel-size ratio; inferred from the grids (or from the shapes for pixel grids) when omitted,
        and checked against them when given.
    align
        ``"strict"`` (default): misaligned grids are errors. ``"reproject"``: resample MS(t2) onto the
        MS(t1) grid (bilinear) and HS(t1) onto the aligned coarse grid (average) with rioxarray, in memory.
    model
        A ready observation model; overrides ``hs_sensor``/``ms_sensor``/``ms_bands`` (band counts and the
        ratio are still checked against the data). HS bands with no data anywhere in the scene are flagged
        bad in the model either way, with a warning (:func:`dcstsf.engine.bands.mark_empty_hs_bands`).
    hs_fill
        :attr:`FusionInputs.hs_fill` of these same inputs when already read (inputs re-opened with other
        chunks); read from the data otherwise.

    Returns
    -------
    FusionInputs

    Raises
    ------
    DcstsfInputError
        CRS mismatch, MS(t1)/MS(t2) grids differ, non-integer ratio, misaligned pixel corners, no overlap,
        band counts that do not match the sensors, unknown sensor or band names.
    """
    if align not in ALIGN_MODES:
        raise DcstsfInputError(f"align={align!r} is not one of {ALIGN_MODES}")
    hs = _as_cube(hs_t1, "HS(t1)")
    ms1 = _as_cube(ms_t1, "MS(t1)")
    ms2 = _as_cube(ms_t2, "MS(t2)")
    if ratio is not None and (not isinstance(ratio, (int, np.integer)) or ratio < 1):
        raise DcstsfInputError(f"ratio must be a positive integer, got {ratio!r}")
    _check_order(hs, ms1, ms2)
    _check_crs(hs, ms1, ms2, align=align)
    if align == "reproject":
        grids = reproject(hs, ms1, ms2, ratio=ratio)
    else:
        grids = _align_strict(hs, ms1, ms2, ratio=ratio)
    hs, ms1, ms2, r = grids.hs_t1, grids.ms_t1, grids.ms_t2, grids.ratio

    check_acquisition_times(hs, ms1, ms2)
    crs = crs_of(ms1)
    transform = transform_of(ms1, "MS(t1)") if "x" in ms1.coords else None
    if model is None:
        ms1, ms2 = select_named_ms_bands(ms1, ms2, ms_bands)
        model = observation_model(
            hs, ms1, ms2, ratio=r, ms_grid_gsd_m=grid_gsd_m(crs, transform),
            hs_sensor=hs_sensor, ms_sensor=ms_sensor, ms_bands=ms_bands,
        )
    elif model.ratio != r:
        raise DcstsfInputError(f"the given model has ratio {model.ratio} but the grids give {r}")
    check_band_counts(hs, ms1, ms2, model)
    if hs_fill is None:  # one read of the engine's subsample of HS(t1), shared with the tiles' fill values
        hs_fill = scene_fill_values([hs.data])[0]
    model, empty_note = mark_empty_hs_bands(model, hs_fill, label=input_label(hs, "HS(t1)"))
    from dcstsf.engine.dates import adjust_ms_t2

    return adjust_ms_t2(FusionInputs(
        hs_t1=hs,
        ms_t1=ms1,
        ms_t2=ms2,
        model=model,
        ratio=r,
        crs=crs,
        transform=transform,
        ms_offset=grids.ms_offset,
        hs_offset=grids.hs_offset,
        notes=(*grids.notes, *([empty_note] if empty_note else [])),
        hs_fill=np.asarray(hs_fill, dtype=np.float64),
    ), ms_sensor_t2=ms_sensor_t2)

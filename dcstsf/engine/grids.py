"""Input validation for scene fusion: grids, CRS, integer ratio, band sets and sensors.

The rules (pixel-corner convention of ``docs/CONVENTIONS-for-helpers.md``):

* all three inputs share one CRS (or none of them has one: then they are plain pixel grids);
* MS(t1) and MS(t2) lie on the identical grid (shape and transform);
* the HS grid is aligned with the MS grid at an integer ratio ``r``: HS pixel size = ``r`` x MS pixel size
  (within 1e-6 relative) and every HS pixel corner falls on an MS pixel corner;
* the output covers the part of the HS footprint that lies inside the MS grid, in whole coarse pixels.
  An MS scene larger than the HS footprint (the usual case: a Sentinel-2 tile around a ZY-1 02D scene)
  is cropped to it; HS pixels outside the MS grid are dropped with a warning.

Anything else is a :class:`~dcstsf.errors.DcstsfInputError` naming the inputs, the numbers and the fix,
unless ``align="reproject"`` is given: then MS(t2) is resampled onto the MS(t1) grid (bilinear) and HS(t1)
onto the coarse grid aligned with MS(t1) (pixel-area average), with rioxarray. Reprojection runs in
memory (rioxarray loads the data), so for scenes larger than memory warp the inputs beforehand, e.g.
``gdalwarp -t_srs EPSG:32650 -tr 10 10 -tap`` for the MS and ``-tr 30 30 -tap`` for the HS.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dcstsf import sensors as _sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.sensors import Sensor

__all__ = ["ALIGN_MODES", "FusionInputs", "validate_inputs"]

#: ``align=`` values understood by :func:`validate_inputs`.
ALIGN_MODES = ("strict", "reproject")
#: Default HS sensor for a 166-band cube (the ZY-1 02D AHSI the project targets).
_DEFAULT_HS_BY_COUNT = {166: "zy1-02d-ahsi"}
#: Default MS sensor when none is given.
DEFAULT_MS_SENSOR = "sentinel-2a"
# Pixel sizes must give an integer ratio within this relative tolerance.
_RATIO_RTOL = 1e-6
# Pixel corners must coincide within this fraction of an MS pixel (float noise in coordinates).
_CORNER_TOL = 1e-4
# The fix for every misalignment, in both spellings (Python and command line).
_REPROJECT = "pass align='reproject' (CLI --align reproject)"
# Registered sensors match wavelength coordinates when every centre is within this many nm.
_WAVELENGTH_MATCH_NM = 5.0
_S2_NAME = re.compile(r"^B0*(\d{1,2})(A?)$", re.IGNORECASE)
_GENERIC_NAME = re.compile(r"^(band_?)?\d+$", re.IGNORECASE)


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


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _label(da: xr.DataArray, name: str) -> str:
    """``HS(t1)`` plus the file it came from, when known."""
    src = da.encoding.get("source") or da.attrs.get("source")
    return f"{name} ({src})" if src else name


def _as_cube(da: Any, name: str) -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise DcstsfInputError(
            f"{name} must be an xarray.DataArray with dims (band, y, x), got {type(da).__name__}; "
            "open files with dcstsf.io.open_raster or wrap arrays with xarray.DataArray(a, dims=('band', 'y', 'x'))"
        )
    if da.ndim != 3 or set(da.dims) != {"band", "y", "x"}:
        raise DcstsfInputError(
            f"{_label(da, name)} has dims {tuple(da.dims)}; expected (band, y, x): rename the dimensions, "
            "e.g. da.rename({'wavelength': 'band'})"
        )
    da = da.transpose("band", "y", "x")
    if da.sizes["y"] == 0 or da.sizes["x"] == 0 or da.sizes["band"] == 0:
        raise DcstsfInputError(f"{_label(da, name)} is empty (shape {da.shape})")
    if da.dtype != np.float32:
        # Reflectance is float32 everywhere in the engine; integers would silently lose the scale.
        if not np.issubdtype(da.dtype, np.floating):
            raise DcstsfInputError(
                f"{_label(da, name)} holds {da.dtype} values; the engine expects float reflectance in [0, 1] "
                "with NaN for nodata: open files with dcstsf.io.open_raster (it applies the scale), or "
                "convert with (da * scale).astype('float32')"
            )
        da = da.astype(np.float32)
    return da


def _crs(da: xr.DataArray) -> Any:
    try:
        return da.rio.crs
    except Exception:  # rioxarray raises on arrays without spatial dims/coords
        return None


def _transform(da: xr.DataArray, name: str) -> Any:
    """The affine transform from coordinates (or stored GeoTransform); ``None`` without coordinates."""
    if "x" not in da.coords or "y" not in da.coords:
        return None
    try:
        return da.rio.transform(recalc=True)
    except Exception as exc:  # single-pixel axes without a stored transform
        raise DcstsfInputError(
            f"{_label(da, name)}: cannot derive the pixel grid from its x/y coordinates ({exc}); write the "
            "transform with da.rio.write_transform(...) or drop the x/y coordinates to use a plain pixel grid"
        ) from exc


def _fmt_res(t: Any) -> str:
    return f"{abs(t.a):g} x {abs(t.e):g}"


def _integer(value: float, *, tol: float) -> int | None:
    n = round(value)
    return int(n) if abs(value - n) <= tol else None


def _ratio_from_grids(hs_t: Any, ms_t: Any, hs: xr.DataArray, ms: xr.DataArray) -> int:
    for t, da_, nm in ((hs_t, hs, "HS(t1)"), (ms_t, ms, "MS(t1)")):
        if abs(t.b) > 1e-12 * abs(t.a) or abs(t.d) > 1e-12 * abs(t.e):
            raise DcstsfInputError(
                f"{_label(da_, nm)} has a rotated/sheared grid ({t}); warp it to a north-up grid first "
                f"(gdalwarp) or {_REPROJECT}"
            )
    if np.sign(hs_t.a) != np.sign(ms_t.a) or np.sign(hs_t.e) != np.sign(ms_t.e):
        raise DcstsfInputError(
            f"{_label(hs, 'HS(t1)')} and {_label(ms, 'MS(t1)')} have opposite axis orientations "
            f"(pixel sizes {hs_t.a:g}, {hs_t.e:g} vs {ms_t.a:g}, {ms_t.e:g}); flip one with "
            f"da.isel(y=slice(None, None, -1)) or {_REPROJECT}"
        )
    rx, ry = hs_t.a / ms_t.a, hs_t.e / ms_t.e
    ix, iy = _integer(rx, tol=_RATIO_RTOL * abs(rx)), _integer(ry, tol=_RATIO_RTOL * abs(ry))
    if ix is None or iy is None or ix != iy or ix < 1:
        raise DcstsfInputError(
            f"{_label(hs, 'HS(t1)')} pixel size {_fmt_res(hs_t)} and MS pixel size {_fmt_res(ms_t)} give a ratio "
            f"of {rx:.6g} x {ry:.6g}, not one integer; resample so the MS pixel size "
            "divides the HS pixel size (e.g. gdalwarp -tr 10 10 -tap for the MS and -tr 30 30 -tap for the HS) or "
            f"{_REPROJECT}"
        )
    return ix


def _same_grid(t1: Any, t2: Any) -> bool:
    res = max(abs(t1.a), abs(t1.e))
    return (
        all(abs(p - q) <= _RATIO_RTOL * res for p, q in ((t1.a, t2.a), (t1.b, t2.b), (t1.d, t2.d), (t1.e, t2.e)))
        and abs(t1.c - t2.c) <= _CORNER_TOL * res
        and abs(t1.f - t2.f) <= _CORNER_TOL * res
    )


# --------------------------------------------------------------------------------------------------
# sensors and bands
# --------------------------------------------------------------------------------------------------


def _band_names(da: xr.DataArray) -> list[str] | None:
    """Meaningful band names, or ``None`` when the coordinate is missing or only numbers/``band_<i>``."""
    if "band" not in da.coords:
        return None
    names = [str(v) for v in np.asarray(da["band"].values).ravel()]
    if all(_GENERIC_NAME.match(n) for n in names):
        return None
    return names


def _normalise_ms_name(name: str) -> str:
    """``B2``/``b02``/``B8a`` -> ``B02``/``B02``/``B8A`` (Sentinel-2 style names)."""
    m = _S2_NAME.match(name.strip())
    if not m:
        return name.strip()
    # Sentinel-2 pads plain numbers (B02) but not the narrow NIR band (B8A)
    return f"B{int(m.group(1))}A" if m.group(2) else f"B{int(m.group(1)):02d}"


def _coord(da: xr.DataArray, key: str) -> np.ndarray | None:
    if key in da.coords and da[key].dims == ("band",):
        vals = np.asarray(da[key].values, dtype=np.float64)
        return vals if np.all(np.isfinite(vals)) else None
    return None


def _resolve_hs_sensor(hs: xr.DataArray, hs_sensor: str | Sensor | None) -> Sensor:
    n = hs.sizes["band"]
    label = _label(hs, "HS(t1)")
    if hs_sensor is not None:
        sensor = _sensors.get(hs_sensor)
        if sensor.n_bands != n:
            raise DcstsfInputError(
                f"{label} has {n} bands but the HS sensor {sensor.name!r} has {sensor.n_bands}; pass the sensor "
                "that recorded the cube (hs_sensor=..., CLI --hs-sensor; see dcstsf.sensors.available()) or "
                "build one with dcstsf.sensors.from_wavelengths"
            )
        return sensor
    wl = _coord(hs, "wavelength")
    candidates = []
    for name in _sensors.available():
        s = _sensors.get(name)
        if s.n_bands == n:
            candidates.append(s)
    if wl is not None:
        for s in candidates:
            if np.max(np.abs(s.centers_nm - wl)) <= _WAVELENGTH_MATCH_NM:
                return s
        fwhm = _coord(hs, "fwhm")
        names = [str(v) for v in hs["band"].values] if "band" in hs.coords else None
        if names is not None and len(set(names)) != len(names):
            names = None
        good = None
        if "bbl" in hs.coords:
            good = np.asarray(hs["bbl"].values, dtype=float) > 0
        try:
            return _sensors.from_wavelengths(wl, fwhm, name="hs-from-wavelengths", band_names=names, good=good)
        except DcstsfInputError as exc:
            raise DcstsfInputError(f"{label}: cannot build an HS sensor from its wavelength coordinates: {exc}") from exc
    if n in _DEFAULT_HS_BY_COUNT:
        return _sensors.get(_DEFAULT_HS_BY_COUNT[n])
    if len(candidates) == 1:
        return candidates[0]
    raise DcstsfInputError(
        f"{label} has {n} bands and no wavelength coordinates, so its sensor is unknown; pass hs_sensor=NAME "
        f"(CLI --hs-sensor; available: {', '.join(_sensors.available())}) or give the cube a 'wavelength' "
        "coordinate (nm)"
    )


def _resolve_ms(
    ms1: xr.DataArray, ms2: xr.DataArray, ms_sensor: str | Sensor | None, ms_bands: Sequence[str] | str | None
) -> tuple[Sensor, list[str]]:
    sensor = _sensors.get(ms_sensor if ms_sensor is not None else DEFAULT_MS_SENSOR)
    n1, n2 = ms1.sizes["band"], ms2.sizes["band"]
    if n1 != n2:
        raise DcstsfInputError(
            f"{_label(ms1, 'MS(t1)')} has {n1} bands but {_label(ms2, 'MS(t2)')} has {n2}; give both dates the "
            "same bands in the same order"
        )
    names1, names2 = _band_names(ms1), _band_names(ms2)
    known = set(sensor.band_names)
    norm1 = [_normalise_ms_name(b) for b in names1] if names1 else None
    norm2 = [_normalise_ms_name(b) for b in names2] if names2 else None
    if norm1 and norm2 and all(b in known for b in norm1 + norm2) and norm1 != norm2:
        raise DcstsfInputError(
            f"MS(t1) bands {norm1} and MS(t2) bands {norm2} differ; give both dates the same bands in the same order"
        )
    from_coords = next((nm for nm in (norm1, norm2) if nm and all(b in known for b in nm)), None)
    if ms_bands is not None:
        bands = [b.strip() for b in ms_bands.split(",")] if isinstance(ms_bands, str) else [str(b) for b in ms_bands]
        bands = [_normalise_ms_name(b) for b in bands if b]
        unknown = [b for b in bands if b not in known]
        if unknown:
            raise DcstsfInputError(
                f"MS band(s) {unknown} are not bands of {sensor.name!r}; its bands are {list(sensor.band_names)}"
            )
        if len(bands) != n1:
            raise DcstsfInputError(
                f"{len(bands)} MS bands were declared ({', '.join(bands)}) but {_label(ms1, 'MS(t1)')} has {n1}; "
                "list one name per band, in the file's band order (CLI --ms-bands B02,B03,B04,B08)"
            )
        if from_coords is not None and from_coords != bands:
            raise DcstsfInputError(
                f"ms_bands={bands} disagrees with the MS band names in the data {from_coords}; drop ms_bands "
                "(they are read from the data) or fix the band order"
            )
        return sensor, bands
    if from_coords is not None:
        return sensor, from_coords
    shown = names1 or [f"band_{i + 1}" for i in range(n1)]
    raise DcstsfInputError(
        f"the MS bands of {_label(ms1, 'MS(t1)')} ({', '.join(shown)}) are not {sensor.name} band names, so the "
        f"spectral response is unknown; pass ms_bands=[...] (CLI --ms-bands, e.g. B02,B03,B04,B08) in the file's "
        "band order, and ms_sensor= if it is not Sentinel-2"
    )


def _nominal_gsd_m(ms: xr.DataArray) -> float | None:
    """The MS grid's nominal pixel size from the ``ms_grid_gsd_m`` attribute, if any.

    Wald-protocol cases (``dcstsf simulate``) keep the real scene's grid (e.g. 30 m EnMAP pixels) while
    standing for a 10 m Sentinel-2 grid; the simulator records the nominal size so that the MS blur
    used in fusion is the one used to simulate.
    """
    value = ms.attrs.get("ms_grid_gsd_m")
    try:
        return float(value) if value is not None and float(value) > 0 else None
    except (TypeError, ValueError):
        return None


def _grid_gsd_m(crs: Any, transform: Any) -> float | None:
    """The fine grid's pixel size in metres (projected CRS in metres only)."""
    if crs is None or transform is None:
        return None
    try:
        if not crs.is_projected:
            return None
        unit, factor = crs.linear_units_factor
    except Exception:  # CRS without linear units (engineering, unknown)
        return None
    if str(unit).lower() not in ("metre", "meter", "m") and factor != 1.0:
        return None
    return float(abs(transform.a)) * float(factor)


# --------------------------------------------------------------------------------------------------
# reprojection
# --------------------------------------------------------------------------------------------------


def _reproject(
    hs: xr.DataArray, ms1: xr.DataArray, ms2: xr.DataArray, *, ratio: int | None
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, int, list[str]]:
    """MS(t2) onto the MS(t1) grid (bilinear), HS onto the aligned coarse grid (average)."""
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.warp import calculate_default_transform

    notes: list[str] = []
    crs = _crs(ms1)
    for da_, nm in ((hs, "HS(t1)"), (ms1, "MS(t1)"), (ms2, "MS(t2)")):
        if _crs(da_) is None:
            raise DcstsfInputError(
                f"align='reproject' needs georeferenced inputs, but {_label(da_, nm)} has no CRS; write one "
                "with da.rio.write_crs(...)"
            )
    ms_t = _transform(ms1, "MS(t1)")
    t2 = _transform(ms2, "MS(t2)")
    if _crs(ms2) != crs or ms2.shape[1:] != ms1.shape[1:] or not _same_grid(ms_t, t2):
        ms2 = ms2.rio.write_nodata(np.nan, encoded=False).rio.reproject_match(ms1, resampling=Resampling.bilinear)
        ms2 = ms2.assign_coords(x=ms1["x"], y=ms1["y"])
        notes.append("MS(t2) reprojected onto the MS(t1) grid (bilinear)")
    if ratio is None:
        hs_t = _transform(hs, "HS(t1)")
        left, bottom, right, top = hs.rio.bounds()
        dst_t, _, _ = calculate_default_transform(
            _crs(hs), crs, hs.sizes["x"], hs.sizes["y"], left=left, bottom=bottom, right=right, top=top
        )
        hs_res = abs(dst_t.a) if _crs(hs) != crs else abs(hs_t.a)
        ratio = max(1, int(round(hs_res / abs(ms_t.a))))
    hc, wc = ms1.sizes["y"] // ratio, ms1.sizes["x"] // ratio
    if hc == 0 or wc == 0:
        raise DcstsfInputError(f"the MS grid ({ms1.sizes['y']} x {ms1.sizes['x']}) is smaller than one HS pixel")
    coarse_t = Affine(ms_t.a * ratio, 0.0, ms_t.c, 0.0, ms_t.e * ratio, ms_t.f)
    hs_t = _transform(hs, "HS(t1)")
    if _crs(hs) != crs or hs.shape[1:] != (hc, wc) or not _same_grid(hs_t, coarse_t):
        hs = hs.rio.write_nodata(np.nan, encoded=False).rio.reproject(
            crs, shape=(hc, wc), transform=coarse_t, resampling=Resampling.average, nodata=np.nan
        )
        notes.append(f"HS(t1) reprojected onto the coarse grid aligned with MS(t1) at ratio {ratio} (average)")
    ms1 = ms1.isel(y=slice(0, hc * ratio), x=slice(0, wc * ratio))
    ms2 = ms2.isel(y=slice(0, hc * ratio), x=slice(0, wc * ratio))
    return hs, ms1, ms2, int(ratio), notes


# --------------------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------------------


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
        MS sensor (default ``"sentinel-2a"``).
    ms_bands
        MS band names in the data's band order (list or ``"B02,B03,B04,B08"``). Default: the MS
        ``band`` coordinate (``B2``/``B02`` style names are both understood).
    ratio
        HS/MS pixel-size ratio; inferred from the grids (or from the shapes for pixel grids) when omitted,
        and checked against them when given.
    align
        ``"strict"`` (default): misaligned grids are errors. ``"reproject"``: resample MS(t2) onto the
        MS(t1) grid (bilinear) and HS(t1) onto the aligned coarse grid (average) with rioxarray, in memory.
    model
        A ready observation model; overrides ``hs_sensor``/``ms_sensor``/``ms_bands`` (band counts and the
        ratio are still checked against the data).

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

    crss = {"HS(t1)": _crs(hs), "MS(t1)": _crs(ms1), "MS(t2)": _crs(ms2)}
    labels = {"HS(t1)": _label(hs, "HS(t1)"), "MS(t1)": _label(ms1, "MS(t1)"), "MS(t2)": _label(ms2, "MS(t2)")}
    with_crs = {k: v for k, v in crss.items() if v is not None}
    if with_crs and len(with_crs) < 3:
        missing = [labels[k] for k, v in crss.items() if v is None]
        have = ", ".join(f"{labels[k]} {v}" for k, v in with_crs.items())
        raise DcstsfInputError(
            f"{' and '.join(missing)} carr{'ies' if len(missing) == 1 else 'y'} no CRS but {have}; georeference "
            "every input (da.rio.write_crs(...), or fix the file) so the grids can be compared"
        )
    notes: list[str] = []
    ms_offset: tuple[int, int] | None = (0, 0)
    hs_offset: tuple[int, int] | None = (0, 0)
    distinct = {str(v) for v in with_crs.values()}
    if len(distinct) > 1 and align != "reproject":
        raise DcstsfInputError(
            "the inputs are in different CRSs ("
            + ", ".join(f"{labels[k]}: {v}" for k, v in with_crs.items())
            + f"); reproject them to one CRS (gdalwarp -t_srs ...) or {_REPROJECT}"
        )

    if align == "reproject":
        hs, ms1, ms2, r, notes = _reproject(hs, ms1, ms2, ratio=ratio)
        ms_offset = hs_offset = None
    else:
        hs_t, m1_t, m2_t = _transform(hs, "HS(t1)"), _transform(ms1, "MS(t1)"), _transform(ms2, "MS(t2)")
        if ms1.shape[1:] != ms2.shape[1:]:
            raise DcstsfInputError(
                f"{_label(ms1, 'MS(t1)')} is {ms1.sizes['y']} x {ms1.sizes['x']} pixels but {_label(ms2, 'MS(t2)')} "
                f"is {ms2.sizes['y']} x {ms2.sizes['x']}; both dates must share one grid: resample MS(t2) onto "
                f"MS(t1) (gdalwarp with the same -te/-tr) or {_REPROJECT}"
            )
        if (m1_t is None) != (m2_t is None) or (m1_t is not None and not _same_grid(m1_t, m2_t)):
            raise DcstsfInputError(
                f"{_label(ms1, 'MS(t1)')} and {_label(ms2, 'MS(t2)')} are on different grids (transforms {m1_t} "
                f"vs {m2_t}); both dates must share one grid: resample MS(t2) onto MS(t1) or {_REPROJECT}"
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
                iy, ix = _integer(ry, tol=1e-9), _integer(rx, tol=1e-9)
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
            r_grid = _ratio_from_grids(hs_t, m1_t, hs, ms1)
            if ratio is not None and int(ratio) != r_grid:
                raise DcstsfInputError(
                    f"ratio={ratio} was given but the grids ({_label(hs, 'HS(t1)')} pixel size {_fmt_res(hs_t)}, "
                    f"{_label(ms1, 'MS(t1)')} {_fmt_res(m1_t)}) give {r_grid}; drop ratio= (CLI --ratio) or fix the "
                    "pixel sizes"
                )
            r = r_grid
            fy, fx = (hs_t.f - m1_t.f) / m1_t.e, (hs_t.c - m1_t.c) / m1_t.a
            iy_, ix_ = _integer(fy, tol=_CORNER_TOL), _integer(fx, tol=_CORNER_TOL)
            if iy_ is None or ix_ is None:
                raise DcstsfInputError(
                    f"{_label(hs, 'HS(t1)')} pixel corners do not coincide with {_label(ms1, 'MS(t1)')} pixel "
                    f"corners: the HS origin ({hs_t.c:.6f}, {hs_t.f:.6f}) is {fx:.4g} x {fy:.4g} MS pixels from the "
                    f"MS origin ({m1_t.c:.6f}, {m1_t.f:.6f}); snap the grids (gdalwarp -tap) or {_REPROJECT}"
                )
            oy, ox = iy_, ix_
        # Coarse pixels whose r x r block lies inside the MS grid.
        i0 = math.ceil(-oy / r) if oy < 0 else 0
        j0 = math.ceil(-ox / r) if ox < 0 else 0
        i1 = min(hc, (H - oy) // r)
        j1 = min(wc, (W - ox) // r)
        if i1 <= i0 or j1 <= j0:
            raise DcstsfInputError(
                f"the {_label(hs, 'HS(t1)')} footprint ({hc} x {wc} pixels at offset {oy}, {ox} MS pixels) does not "
                f"cover one whole HS pixel of the {_label(ms1, 'MS(t1)')} grid ({H} x {W}); check that the inputs "
                "show the same place"
            )
        if (i0, j0, i1, j1) != (0, 0, hc, wc):
            lost = hc * wc - (i1 - i0) * (j1 - j0)
            warnings.warn(
                f"{lost} HS(t1) pixels lie outside the MS grid and are dropped (output covers HS rows {i0}:{i1}, "
                f"columns {j0}:{j1})",
                stacklevel=3,
            )
            notes.append(f"HS(t1) cropped to rows {i0}:{i1}, columns {j0}:{j1} (outside the MS grid)")
            hs = hs.isel(y=slice(i0, i1), x=slice(j0, j1))
        my0, mx0 = oy + i0 * r, ox + j0 * r
        my1, mx1 = oy + i1 * r, ox + j1 * r
        if (my0, mx0, my1, mx1) != (0, 0, H, W):
            notes.append(f"MS cropped to the HS footprint: rows {my0}:{my1}, columns {mx0}:{mx1}")
            ms1 = ms1.isel(y=slice(my0, my1), x=slice(mx0, mx1))
            ms2 = ms2.isel(y=slice(my0, my1), x=slice(mx0, mx1))
        ms_offset, hs_offset = (my0, mx0), (i0, j0)
        if m1_t is not None:
            # One set of coordinates for both dates: they agree within float noise (checked above).
            ms2 = ms2.assign_coords(x=ms1["x"], y=ms1["y"])

    crs = _crs(ms1)
    transform = _transform(ms1, "MS(t1)") if "x" in ms1.coords else None
    if model is None:
        hs_s = _resolve_hs_sensor(hs, hs_sensor)
        ms_s, bands = _resolve_ms(ms1, ms2, ms_sensor, ms_bands)
        gsd = _nominal_gsd_m(ms1) or _grid_gsd_m(crs, transform)
        try:
            model = ObservationModel.from_sensors(hs_s, ms_s, ms_bands=bands, ratio=r, ms_grid_gsd_m=gsd)
        except DcstsfInputError as exc:
            raise DcstsfInputError(f"cannot build the observation model for these inputs: {exc}") from exc
    else:
        if model.ratio != r:
            raise DcstsfInputError(f"the given model has ratio {model.ratio} but the grids give {r}")
    if hs.sizes["band"] != model.n_hs:
        raise DcstsfInputError(
            f"{_label(hs, 'HS(t1)')} has {hs.sizes['band']} bands but the HS sensor {model.hs_sensor.name!r} has "
            f"{model.n_hs}; pass the matching hs_sensor"
        )
    for da_, nm in ((ms1, "MS(t1)"), (ms2, "MS(t2)")):
        if da_.sizes["band"] != model.n_ms:
            raise DcstsfInputError(
                f"{_label(da_, nm)} has {da_.sizes['band']} bands but {model.n_ms} MS bands are modelled "
                f"({', '.join(model.ms_sensor.band_names)}); pass ms_bands matching the file"
            )
    return FusionInputs(
        hs_t1=hs,
        ms_t1=ms1,
        ms_t2=ms2,
        model=model,
        ratio=r,
        crs=crs,
        transform=transform,
        ms_offset=ms_offset,
        hs_offset=hs_offset,
        notes=tuple(notes),
    )

"""Raster input and output for dcstsf.

Everything the engine reads becomes a float32 :class:`xarray.DataArray` with dims ``(band, y, x)``,
reflectance in [0, 1], NaN for nodata, the CRS and transform on the ``.rio`` accessor, and band metadata
as coordinates:

* ``band`` -- band names (strings: ``"B02"``, ``"band_1"``, ...);
* ``wavelength`` / ``fwhm`` -- band centre and full width at half maximum in nm, when the file says;
* ``bbl`` -- the ENVI bad-band list (1 good, 0 bad), when the file says.

Readers: :func:`open_raster` (GeoTIFF/COG and anything else GDAL reads, Zarr, NetCDF) and
:func:`read_envi` (a small pure-NumPy ENVI reader). Writer: :func:`write_raster` (GeoTIFF/COG, Zarr,
NetCDF), atomic and able to stream Dask-backed arrays chunk by chunk.

Reflectance scaling is never assumed: it comes from the caller (``scale=``/``offset=``), from the file's
per-band GDAL scales/offsets, from metadata (ENVI ``data gain values``, ``reflectance scale factor``, CF
``scale_factor``/``add_offset``) or from Sentinel-2 L2A metadata (``BOA_QUANTIFICATION_VALUE`` and,
from processing baseline 04.00, ``BOA_ADD_OFFSET``). Integer data with no scale anywhere is an error.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import threading
from collections.abc import Hashable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor used on every result)
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.nodata import inf_to_nan

__all__ = [
    "PREDICTORS",
    "RASTER_SUFFIXES",
    "cog_codec_options",
    "gtiff_codec_options",
    "open_raster",
    "parse_envi_header",
    "read_envi",
    "remove_stale_temporaries",
    "write_raster",
]

#: File name endings :func:`write_raster` understands, and the format each one selects.
RASTER_SUFFIXES: dict[str, str] = {
    ".tif": "GTiff",
    ".tiff": "GTiff",
    ".zarr": "Zarr",
    ".nc": "NetCDF",
}

# Reflectance that looks like this in a float file is almost certainly unscaled digital numbers:
# real surface reflectance rarely exceeds 1 even over snow or specular roofs.
_REFLECTANCE_SANITY_LIMIT = 1.5
# A wavelength list may restart at a detector boundary (EnMAP VNIR->SWIR, AVIRIS's four spectrometers);
# more restarts than this means the list is shuffled or reversed.
_MAX_DETECTOR_SEGMENTS = 4
_SAMPLE_WINDOW = 64
_UNIT_FACTORS_NM = {
    "nanometers": 1.0,
    "nanometer": 1.0,
    "nanometres": 1.0,
    "nanometre": 1.0,
    "nm": 1.0,
    "micrometers": 1000.0,
    "micrometer": 1000.0,
    "micrometres": 1000.0,
    "micrometre": 1000.0,
    "microns": 1000.0,
    "micron": 1000.0,
    "um": 1000.0,
    "\u00b5m": 1000.0,
    "\u03bcm": 1000.0,
}
# GDAL's ENVI driver (and EnMAP-Box) label bands "band 12 (452.1 Nanometers)"; such labels carry no
# name, so they become "band_12" and the wavelength they embed is a last-resort source.
_AUTO_DESCRIPTION = re.compile(r"^\s*band\s*(\d+)\s*(?:\(\s*([-+0-9.eE]+)\s*([^)]*)\))?\s*$", re.IGNORECASE)
# GDAL's ENVI driver describes bands by wavelength only ("399.369995 Nanometers").
_WAVELENGTH_DESCRIPTION = re.compile(
    r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(nanomet(?:er|re)s?|nm|micromet(?:er|re)s?|microns?|um|\u00b5m)\s*$",
    re.IGNORECASE,
)
# Metadata keys consumed while decoding; they are not copied to ``attrs`` because the values they
# describe have already been applied (copying them would make a later write scale twice).
_CONSUMED_KEYS = {
    "area_or_point",
    "scale_factor",
    "add_offset",
    "scale",
    "offset",
    "scales",
    "offsets",
    "data_gain_values",
    "data_offset_values",
    "reflectance_scale_factor",
    "data_ignore_value",
    "_fillvalue",
    "missing_value",
    "nodata",
    "boa_quantification_value",
    "boa_add_offset",
    "wavelength",
    "wavelength_units",
    "fwhm",
    "bbl",
    "long_name",
    "units",
    "grid_mapping",
    "coordinates",
}
_ENVI_DTYPES = {
    1: "u1",
    2: "i2",
    3: "i4",
    4: "f4",
    5: "f8",
    12: "u2",
    13: "u4",
    14: "i8",
    15: "u8",
}


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------


def _err(path: str | os.PathLike[str] | None, problem: str, fix: str) -> DcstsfInputError:
    where = f"{path}: " if path is not None else ""
    return DcstsfInputError(f"{where}{problem}. {fix[:1].upper()}{fix[1:]}")


def _norm_key(key: Any) -> str:
    return re.sub(r"[\s_]+", "_", str(key).strip().lower())


def _norm_tags(tags: Mapping[Any, Any]) -> dict[str, Any]:
    return {_norm_key(k): v for k, v in tags.items()}


def _parse_number_list(value: Any) -> list[float] | None:
    """``"{1, 2, 3}"``, ``"1,2,3"``, a sequence or a scalar -> list of floats (None if not numeric)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().strip("{}[]()").strip()
        if not text:
            return None
        parts = [p for p in re.split(r"[,\s]+", text) if p]
    elif isinstance(value, (list, tuple, np.ndarray)):
        parts = list(np.ravel(value))
    else:
        parts = [value]
    try:
        return [float(p) for p in parts]
    except (TypeError, ValueError):
        return None


def _as_float(value: Any) -> float | None:
    vals = _parse_number_list(value)
    if vals is None or len(vals) != 1:
        return None
    return vals[0]


def _per_band(value: float | Sequence[float] | np.ndarray, n: int, what: str, path: Any) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.size == 1:
        return np.full(n, float(arr[0]))
    if arr.size != n:
        raise _err(path, f"{what} has {arr.size} values but the raster has {n} bands", f"give one {what} or {n}")
    return arr


def _unit_factor(units: Any, values: np.ndarray) -> float:
    """Factor converting wavelengths in ``units`` to nm; unknown units are guessed from the magnitude."""
    key = str(units).strip().lower() if units is not None else ""
    if key in _UNIT_FACTORS_NM:
        return _UNIT_FACTORS_NM[key]
    # No (or unknown) units: no optical sensor has band centres below 100 nm, so small numbers are um.
    finite = values[np.isfinite(values)]
    return 1000.0 if finite.size and float(np.max(finite)) < 100.0 else 1.0


def _is_integer_dtype(dtype: Any) -> bool:
    return bool(np.issubdtype(np.dtype(dtype), np.integer))


#: TIFF predictors by name (GDAL ``PREDICTOR`` 1, 2, 3) and their names in GDAL's COG driver.
PREDICTORS = {"none": 1, "horizontal": 2, "float": 3}
_COG_PREDICTORS = {2: "STANDARD", 3: "FLOATING_POINT"}
_PREDICTED_CODECS = ("deflate", "zstd", "lzw", "lzma")


def gtiff_codec_options(
    compress: str | None,
    *,
    level: int | None = None,
    predictor: str | None = None,
    dtype: Any = np.float32,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """GDAL GeoTIFF creation options (``compress``, ``predictor``, ``zstd_level``/``zlevel``) for a codec.

    ``predictor=None`` chooses ``"horizontal"`` for integer data (neighbouring counts differ little) and
    ``"none"`` for floating point: on reflectance the floating-point predictor makes ZSTD files about 7 %
    smaller but doubles the CPU time of writing them (``docs/design.md``). ZSTD defaults to level 1.
    """
    if not compress or str(compress).lower() == "none":
        if predictor not in (None, "none"):
            raise _err(path, f"predictor={predictor!r} needs a codec", "pass compress='zstd' (or 'deflate') with it")
        return {}
    codec = str(compress).lower()
    integer = _is_integer_dtype(dtype)
    opts: dict[str, Any] = {"compress": codec}
    if codec in _PREDICTED_CODECS:
        name = predictor if predictor is not None else ("horizontal" if integer else "none")
        if name not in PREDICTORS:
            raise _err(path, f"unknown predictor {predictor!r}", f"use one of {', '.join(PREDICTORS)}")
        if name == "float" and integer:
            raise _err(
                path, "the float predictor needs floating-point output", "use predictor='horizontal' for integers"
            )
        if PREDICTORS[name] != 1:
            opts["predictor"] = PREDICTORS[name]
    elif predictor not in (None, "none"):
        raise _err(path, f"compress={compress!r} takes no predictor", f"use one of {', '.join(_PREDICTED_CODECS)}")
    if codec == "zstd":
        opts["zstd_level"] = 1 if level is None else int(level)
    elif codec == "deflate" and level is not None:
        opts["zlevel"] = int(level)
    return opts


def cog_codec_options(gtiff_options: dict[str, Any]) -> dict[str, Any]:
    """The same codec as :func:`gtiff_codec_options` in GDAL's COG driver terms."""
    opts: dict[str, Any] = {}
    if "compress" in gtiff_options:
        opts["compress"] = gtiff_options["compress"]
    if gtiff_options.get("predictor") in _COG_PREDICTORS:
        opts["predictor"] = _COG_PREDICTORS[gtiff_options["predictor"]]
    level = gtiff_options.get("zstd_level", gtiff_options.get("zlevel"))
    if level is not None:
        opts["level"] = level
    return opts


def _sample_slices(height: int, width: int) -> list[tuple[slice, slice]]:
    """Up to 3 x 3 small windows spread over the image: a cheap look at typical values."""
    wy, wx = min(_SAMPLE_WINDOW, height), min(_SAMPLE_WINDOW, width)
    ys = sorted({0, max(0, (height - wy) // 2), height - wy})
    xs = sorted({0, max(0, (width - wx) // 2), width - wx})
    return [(slice(y, y + wy), slice(x, x + wx)) for y in ys for x in xs]


def _sample_band_indices(count: int) -> list[int]:
    return sorted({0, count // 4, count // 2, (3 * count) // 4, count - 1})


def _check_looks_like_reflectance(sample: np.ndarray, nodata: np.ndarray | None, path: Any) -> None:
    """Raise when float data without scale information looks like scaled integers (e.g. DN x 10^4)."""
    vals = np.asarray(sample, dtype=np.float64)
    if nodata is not None:
        nd = np.asarray(nodata, dtype=np.float64).reshape((-1,) + (1,) * (vals.ndim - 1))
        nd = np.broadcast_to(nd, vals.shape) if nd.shape[0] == vals.shape[0] else np.full(vals.shape, np.nan)
        vals = np.where(vals == nd, np.nan, vals)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return
    median = float(np.median(np.abs(vals)))
    if median > _REFLECTANCE_SANITY_LIMIT:
        raise _err(
            path,
            f"float data with no scale information, but typical values are about {median:.4g} "
            f"(reflectance is expected in [0, 1]); it looks like scaled integers",
            "Pass the reflectance scale explicitly: scale=... (CLI --scale), e.g. the inverse of the product's "
            "quantification value",
        )


# --------------------------------------------------------------------------------------------------
# band metadata
# --------------------------------------------------------------------------------------------------


@dataclass
class _BandInfo:
    names: list[str]
    wavelength: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    bbl: np.ndarray | None = None


def _collect_per_band(
    key: str, band_tags: list[dict[str, Any]], set_tags: list[dict[str, Any]], n: int, path: Any
) -> tuple[np.ndarray | None, str | None]:
    """Find ``key`` per band (band tags) or as a list (dataset/ENVI tags); returns values and a source."""
    per_band = [bt.get(key) for bt in band_tags]
    present = [v for v in per_band if v not in (None, "")]
    if present:
        if len(present) != n:
            raise _err(
                path,
                f"band metadata '{key}' is given for {len(present)} of {n} bands",
                f"give '{key}' for every band or for none",
            )
        vals = [_as_float(v) for v in per_band]
        if any(v is None for v in vals):
            raise _err(path, f"band metadata '{key}' is not numeric: {per_band[:3]}...", f"fix the '{key}' values")
        return np.asarray(vals, dtype=np.float64), "band"
    for tags in set_tags:
        if key in tags:
            vals = _parse_number_list(tags[key])
            if vals is None:
                raise _err(path, f"metadata '{key}' is not a list of numbers", f"fix the '{key}' entry")
            if len(vals) != n:
                raise _err(
                    path,
                    f"metadata '{key}' lists {len(vals)} values for {n} bands",
                    f"make '{key}' list exactly one value per band",
                )
            return np.asarray(vals, dtype=np.float64), "dataset"
    return None, None


def _band_info(
    *,
    n: int,
    descriptions: Sequence[str | None],
    band_tags: list[dict[str, Any]],
    set_tags: list[dict[str, Any]],
    path: Any,
) -> _BandInfo:
    """Band names, wavelengths, FWHM and bad-band list from GDAL-style metadata."""
    names: list[str] = []
    desc_wl: list[float | None] = []
    desc_units: list[str] = []
    for i, desc in enumerate(descriptions):
        text = (desc or "").strip()
        m = _AUTO_DESCRIPTION.match(text)
        mw = _WAVELENGTH_DESCRIPTION.match(text)
        if mw:
            names.append(f"band_{i + 1}")
            desc_wl.append(float(mw.group(1)))
            desc_units.append(mw.group(2))
        elif not text or m:
            names.append(f"band_{i + 1}")
            desc_wl.append(float(m.group(2)) if m and m.group(2) else None)
            desc_units.append(m.group(3).strip() if m and m.group(3) else "")
        else:
            names.append(text)
            desc_wl.append(None)
            desc_units.append("")
    if len(set(names)) != len(names):
        # Duplicate descriptions cannot serve as an index; fall back to positional names.
        names = [f"band_{i + 1}" for i in range(n)]

    wl, wl_src = _collect_per_band("wavelength", band_tags, set_tags, n, path)
    fwhm, _ = _collect_per_band("fwhm", band_tags, set_tags, n, path)
    bbl, _ = _collect_per_band("bbl", band_tags, set_tags, n, path)
    units: Any = None
    if wl_src == "band":
        units = next((bt.get("wavelength_units") for bt in band_tags if bt.get("wavelength_units")), None)
    if units is None:
        units = next((t.get("wavelength_units") for t in set_tags if t.get("wavelength_units")), None)
    if wl is None and all(w is not None for w in desc_wl) and n > 0:
        wl = np.asarray(desc_wl, dtype=np.float64)
        units = desc_units[0] or units
    if wl is not None:
        factor = _unit_factor(units, wl)
        wl = wl * factor
        if fwhm is not None:
            fwhm = fwhm * factor
        _check_wavelengths(wl, path)
    return _BandInfo(names=names, wavelength=wl, fwhm=fwhm, bbl=bbl)


def _check_wavelengths(wl: np.ndarray, path: Any) -> None:
    """Wavelengths must be finite, positive and increase within each detector segment."""
    if not np.all(np.isfinite(wl)) or np.any(wl <= 0):
        raise _err(path, "band wavelengths contain non-positive or non-numeric values", "fix the wavelength metadata")
    steps = np.diff(wl)
    if np.any(steps == 0):
        i = int(np.flatnonzero(steps == 0)[0])
        raise _err(
            path,
            f"bands {i + 1} and {i + 2} have the same wavelength {wl[i]:g} nm",
            "fix the wavelength metadata (each band needs its own centre wavelength)",
        )
    restarts = np.flatnonzero(steps < 0)
    if restarts.size >= _MAX_DETECTOR_SEGMENTS:
        i = int(restarts[0])
        raise _err(
            path,
            f"band wavelengths are out of order ({restarts.size} decreases, first at band {i + 1} -> {i + 2}: "
            f"{wl[i]:g} -> {wl[i + 1]:g} nm); wavelengths must increase, restarting at most "
            f"{_MAX_DETECTOR_SEGMENTS - 1} times at detector boundaries",
            "reorder the bands by wavelength (or fix the wavelength metadata)",
        )


def _band_coords(info: _BandInfo, path: Any) -> dict[str, Any]:
    coords: dict[str, Any] = {"band": np.array(info.names, dtype=object)}
    if info.wavelength is not None:
        coords["wavelength"] = ("band", info.wavelength.astype(np.float64), {"units": "nm"})
    if info.fwhm is not None:
        coords["fwhm"] = ("band", info.fwhm.astype(np.float64), {"units": "nm"})
    if info.bbl is not None:
        coords["bbl"] = ("band", (info.bbl > 0).astype(np.int8))
    return coords


# --------------------------------------------------------------------------------------------------
# scale / offset / nodata resolution
# --------------------------------------------------------------------------------------------------


def _processing_baseline(tags: list[dict[str, Any]]) -> float | None:
    for t in tags:
        for key in ("processing_baseline", "s2:processing_baseline"):
            if key in t:
                m = re.search(r"(\d+(?:\.\d+)?)", str(t[key]))
                if m:
                    text = m.group(1)
                    # "N0400" style identifiers carry no dot: 0400 -> 4.00
                    return float(text) if "." in text else int(text) / 100.0
    return None


def _s2_add_offsets(
    names: Sequence[str], band_tags: list[dict[str, Any]], set_tags: list[dict[str, Any]]
) -> np.ndarray | None:
    """BOA_ADD_OFFSET in DN per band: band tag, ``BOA_ADD_OFFSET_<band>`` or one dataset-wide value."""
    n = len(names)
    per_band = [_as_float(bt.get("boa_add_offset")) for bt in band_tags]
    if n and all(v is not None for v in per_band):
        return np.asarray(per_band, dtype=np.float64)
    out: list[float | None] = []
    for name in names:
        stripped = re.sub(r"^b0*", "b", str(name).strip().lower())
        found = None
        for t in set_tags:
            for key in (f"boa_add_offset_{str(name).lower()}", f"boa_add_offset_{stripped}"):
                if key in t:
                    found = _as_float(t[key])
                    break
            if found is not None:
                break
        out.append(found)
    if n and all(v is not None for v in out):
        return np.asarray(out, dtype=np.float64)
    for t in set_tags:
        if "boa_add_offset" in t and _as_float(t["boa_add_offset"]) is not None:
            return np.full(n, _as_float(t["boa_add_offset"]), dtype=np.float64)
    return None


def _metadata_scale_offset(
    n: int, band_tags: list[dict[str, Any]], set_tags: list[dict[str, Any]], path: Any
) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """Scale/offset from ENVI-style or CF-style metadata keys (not Sentinel-2)."""
    for scale_key, offset_key in (("data_gain_values", "data_offset_values"),):
        gains, _ = _collect_per_band(scale_key, band_tags, set_tags, n, path)
        offs, _ = _collect_per_band(offset_key, band_tags, set_tags, n, path)
        if gains is not None or offs is not None:
            return gains, offs, f"metadata '{scale_key}'"
    for t in set_tags:
        if "reflectance_scale_factor" in t:
            f = _as_float(t["reflectance_scale_factor"])
            if f is None or f == 0:
                raise _err(path, "metadata 'reflectance scale factor' is not a non-zero number", "fix the header")
            return np.full(n, 1.0 / f), None, "metadata 'reflectance scale factor'"
    for scale_key, offset_key in (("scale_factor", "add_offset"), ("scale", "offset")):
        sc, _ = _collect_per_band(scale_key, band_tags, [], n, path)
        of, _ = _collect_per_band(offset_key, band_tags, [], n, path)
        if sc is None and of is None:
            for t in set_tags:
                if scale_key in t or offset_key in t:
                    s_val = _parse_number_list(t.get(scale_key)) if scale_key in t else None
                    o_val = _parse_number_list(t.get(offset_key)) if offset_key in t else None
                    sc = _per_band(s_val, n, scale_key, path) if s_val else None
                    of = _per_band(o_val, n, offset_key, path) if o_val else None
                    break
        if sc is not None or of is not None:
            return sc, of, f"metadata '{scale_key}'"
    return None, None, None


@dataclass
class _Decoding:
    scale: np.ndarray
    offset: np.ndarray
    nodata: np.ndarray | None
    check_values: bool


def _resolve_decoding(
    *,
    path: Any,
    names: Sequence[str],
    raw_dtype: Any,
    scale: float | Sequence[float] | None,
    offset: float | Sequence[float] | None,
    nodata: float | None,
    file_scales: Sequence[float] | None,
    file_offsets: Sequence[float] | None,
    file_nodata: Sequence[float | None] | None,
    band_tags: list[dict[str, Any]],
    set_tags: list[dict[str, Any]],
) -> _Decoding:
    """Pick scale, offset and nodata per band, in the documented order of precedence."""
    n = len(names)
    sc: np.ndarray | None = None
    of: np.ndarray | None = None
    if scale is not None:
        sc = _per_band(scale, n, "scale", path)
    if offset is not None:
        of = _per_band(offset, n, "offset", path)

    # GDAL per-band scale/offset (rasterio reports 1/0 when unset)
    fs = np.asarray(file_scales, dtype=np.float64) if file_scales is not None else None
    fo = np.asarray(file_offsets, dtype=np.float64) if file_offsets is not None else None
    file_has = (fs is not None and np.any(fs != 1.0)) or (fo is not None and np.any(fo != 0.0))
    if file_has:
        if sc is None:
            sc = fs if fs is not None else np.ones(n)
        if of is None:
            of = fo if fo is not None else np.zeros(n)

    if sc is None or of is None:
        msc, mof, msrc = _metadata_scale_offset(n, band_tags, set_tags, path)
        if msrc is not None:
            if sc is None and msc is not None:
                sc = msc
            if of is None and mof is not None:
                of = mof
            if sc is None and mof is not None:
                sc = np.ones(n)

    s2_nodata = False
    quant = next(
        (_as_float(t["boa_quantification_value"]) for t in set_tags if "boa_quantification_value" in t), None
    )
    adds = _s2_add_offsets(names, band_tags, set_tags)
    baseline = _processing_baseline(set_tags)
    if quant is not None or adds is not None:
        s2_nodata = True
        if sc is None and quant is not None:
            if quant == 0:
                raise _err(path, "BOA_QUANTIFICATION_VALUE is 0", "fix the product metadata or pass scale=")
            sc = np.full(n, 1.0 / quant)
        if of is None:
            if baseline is not None and baseline < 4.0:
                # Before baseline 04.00 L2A had no radiometric offset, whatever else the metadata says.
                of = np.zeros(n)
            elif adds is not None:
                if sc is None:
                    raise _err(
                        path,
                        "Sentinel-2 BOA_ADD_OFFSET is given but no quantification value",
                        "pass scale= (CLI --scale), the inverse of BOA_QUANTIFICATION_VALUE",
                    )
                # reflectance = (DN + BOA_ADD_OFFSET) / Q = DN * scale + BOA_ADD_OFFSET * scale
                of = adds * sc
            elif baseline is not None and baseline >= 4.0:
                raise _err(
                    path,
                    f"Sentinel-2 L2A processing baseline {baseline:.2f} (>= 04.00) shifts DNs by BOA_ADD_OFFSET, "
                    "but the file carries no BOA_ADD_OFFSET",
                    "pass offset= (CLI --offset) in reflectance units, i.e. BOA_ADD_OFFSET / "
                    "BOA_QUANTIFICATION_VALUE from the product's MTD_MSIL2A.xml",
                )

    integer = _is_integer_dtype(raw_dtype)
    check_values = False
    if sc is None:
        if integer:
            raise _err(
                path,
                f"integer data ({np.dtype(raw_dtype).name}) with no reflectance scale in the file "
                "(no band scales, gain or scale-factor metadata)",
                "Pass the scale that turns the stored numbers into reflectance: scale=... (CLI --scale), "
                "e.g. the inverse of the product's quantification value",
            )
        sc = np.ones(n)
        check_values = scale is None and offset is None
    if of is None:
        of = np.zeros(n)

    nd: np.ndarray | None
    if nodata is not None:
        nd = np.full(n, float(nodata))
    elif file_nodata is not None and any(v is not None for v in file_nodata):
        nd = np.asarray([np.nan if v is None else float(v) for v in file_nodata], dtype=np.float64)
    else:
        ignore = next((_as_float(t["data_ignore_value"]) for t in set_tags if "data_ignore_value" in t), None)
        if ignore is not None:
            nd = np.full(n, ignore)
        elif s2_nodata and integer:
            # Sentinel-2 L2A: "DN = 0 remains the NO_DATA value" (ESA product specification).
            nd = np.zeros(n)
        else:
            nd = None
    return _Decoding(scale=sc, offset=of, nodata=nd, check_values=check_values)


def _decode(raw: xr.DataArray, dec: _Decoding) -> xr.DataArray:
    """DN -> float32 reflectance with nodata -> NaN; lazy when ``raw`` is Dask-backed.

    +/-Inf in float files is nodata too: a single Inf would otherwise spread through every blur and
    scene mean downstream.
    """
    out = raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.floating):
        out = out.copy(data=inf_to_nan(out.data))  # no copy of a block without Inf
    if dec.nodata is not None and np.any(np.isfinite(dec.nodata)):
        nd = xr.DataArray(dec.nodata.astype(np.float32), dims="band")
        out = out.where(out != nd)
    if np.any(dec.scale != 1.0) or np.any(dec.offset != 0.0):
        sc = xr.DataArray(dec.scale.astype(np.float32), dims="band")
        of = xr.DataArray(dec.offset.astype(np.float32), dims="band")
        out = out * sc + of
    return out


def _clean_attrs(*tag_sets: Mapping[Any, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for tags in tag_sets:
        for key, value in tags.items():
            nk = _norm_key(key)
            if nk in _CONSUMED_KEYS or nk.startswith("boa_") or nk.startswith("derived_subdataset"):
                continue
            attrs[str(key)] = value
    return attrs


# --------------------------------------------------------------------------------------------------
# open_raster
# --------------------------------------------------------------------------------------------------


def _normalise_chunks(chunks: Any, shape: tuple[int, int, int], block: tuple[int, int]) -> Any:
    """Dask chunks with the band axis in one chunk (band is a core dimension of every method)."""
    if chunks is None:
        return None
    if chunks is True or chunks == "auto":
        from dask.array.core import normalize_chunks

        norm = normalize_chunks((-1, "auto", "auto"), shape=shape, dtype=np.float32, previous_chunks=(shape[0], *block))
        return dict(zip(("band", "y", "x"), norm))
    if isinstance(chunks, int):
        return {"band": -1, "y": chunks, "x": chunks}
    if isinstance(chunks, Mapping):
        out = dict(chunks)
        out.setdefault("band", -1)
        return out
    return chunks


def _check_path(path: Path) -> None:
    if not path.exists():
        raise _err(path, "file not found", "check the path (and the working directory)")
    if path.is_file() and path.stat().st_size == 0:
        raise _err(path, "the file is empty (0 bytes)", "re-download or re-export it")
    if path.is_dir() and not any(path.iterdir()):
        raise _err(path, "the directory is empty, not a Zarr store", "point to a complete .zarr store")


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or (
        path.is_dir() and any((path / m).exists() for m in ("zarr.json", ".zgroup", ".zarray", ".zmetadata"))
    )


def open_raster(
    path: str | os.PathLike[str],
    *,
    chunks: int | Mapping[str, int] | bool | str | None = None,
    scale: float | Sequence[float] | None = None,
    offset: float | Sequence[float] | None = None,
    nodata: float | None = None,
    band_dim: str = "band",
    variable: str | None = None,
    require_crs: bool = False,
) -> xr.DataArray:
    """Open a raster as a float32 reflectance DataArray ``(band, y, x)``.

    Parameters
    ----------
    path
        GeoTIFF/COG (or any other GDAL raster, e.g. ENVI ``.img``), a Zarr store (directory or ``.zarr``),
        a NetCDF file (``.nc``) or an ENVI header (``.hdr``, read with :func:`read_envi`).
    chunks
        ``None`` loads the data into memory; an int, a dict or ``True``/``"auto"`` returns a lazy
        Dask-backed array. The band axis is always one chunk unless the dict says otherwise.
    scale, offset
        Reflectance = stored value * scale + offset, per band or for all bands. They override whatever the
        file says. When omitted they come from, in order: the file's GDAL band scales/offsets; metadata
        keys (ENVI ``data gain values``/``data offset values``, ``reflectance scale factor``, CF
        ``scale_factor``/``add_offset``, ``scale``/``offset``); Sentinel-2 L2A metadata
        (``BOA_QUANTIFICATION_VALUE``, and ``BOA_ADD_OFFSET`` which is applied only when present and the
        ``PROCESSING_BASELINE``, if given, is 04.00 or later).
    nodata
        Stored value meaning "no data" (overrides the file's); such pixels become NaN, as do +/-Inf in
        float files.
    band_dim
        Name of the band dimension in Zarr/NetCDF inputs (renamed to ``band``).
    variable
        Data variable to read from a Zarr/NetCDF store holding several.
    require_crs
        Raise if the raster carries no CRS.

    Returns
    -------
    xarray.DataArray
        float32, dims ``(band, y, x)``, band names in ``band``, ``wavelength``/``fwhm`` (nm) and ``bbl``
        coordinates when the file provides them, CRS/transform on ``.rio``, NaN for nodata, dataset
        metadata in ``attrs``.

    Raises
    ------
    DcstsfInputError
        Missing, empty, truncated or unreadable file; integer data without scale information; float data
        that looks like unscaled integers; no CRS with ``require_crs``; wavelengths out of order.
    """
    p = Path(path).expanduser()
    _check_path(p)
    if p.suffix.lower() == ".hdr":
        da = read_envi(p, scale=scale, offset=offset, nodata=nodata)
        if require_crs and da.rio.crs is None:
            raise _err(p, "the raster has no CRS", "use a georeferenced file (ENVI 'map info' is not read)")
        if chunks is not None:
            da = da.chunk(_normalise_chunks(chunks, da.shape, (da.sizes["y"], da.sizes["x"])))
        return da
    if _is_zarr(p) or p.suffix.lower() in (".nc", ".nc4", ".netcdf", ".h5", ".hdf5"):
        da = _open_xarray(
            p,
            chunks=chunks,
            scale=scale,
            offset=offset,
            nodata=nodata,
            band_dim=band_dim,
            variable=variable,
            engine="zarr" if _is_zarr(p) else "h5netcdf",
        )
    else:
        da = _open_gdal(p, chunks=chunks, scale=scale, offset=offset, nodata=nodata)
    if require_crs and da.rio.crs is None:
        raise _err(
            p,
            "the raster has no CRS (coordinate reference system)",
            "georeference it first, e.g. gdal_translate -a_srs EPSG:<code> -a_ullr ..., or assign one with "
            "rioxarray's .rio.write_crs",
        )
    return da


class _GdalPixels:
    """Window reads of a GDAL raster for NumPy or Dask (``dask.array.from_array``).

    Every read error -- a damaged or truncated block met only when a tile is computed, possibly hours
    into a run -- becomes a :class:`DcstsfInputError` naming the file, instead of GDAL's bare
    "Read failed". Each thread keeps its own open dataset (GDAL handles are not thread-safe).
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype, self.ndim = path, shape, np.dtype(dtype), 3
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to distributed workers without the (unpicklable) open handles.
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        (b0, b1, bs), (y0, y1, ys), (x0, x1, xs) = (k.indices(n) for k, n in zip(key, self.shape))
        if len(range(b0, b1, bs)) == 0 or y1 <= y0 or x1 <= x0:
            return np.empty((len(range(b0, b1, bs)), max(0, y1 - y0), max(0, x1 - x0)), dtype=self.dtype)
        try:
            src = getattr(self._local, "src", None)
            if src is None or src.closed:
                src = self._local.src = rasterio.open(self.path)
            bands = [i + 1 for i in range(b0, b1, bs)]
            out = src.read(bands, window=Window(x0, y0, x1 - x0, y1 - y0))
        except Exception as exc:  # GDAL reports damaged blocks as RasterioIOError, CPLE_* or OSError
            raise _err(
                self.path,
                f"reading the pixels failed in rows {y0}:{y1}, columns {x0}:{x1} (the file is damaged or "
                f"truncated; {type(exc).__name__}: {exc})",
                "re-download or re-export it",
            ) from exc
        return out[:, :: ys, :: xs] if ys != 1 or xs != 1 else out

    def close(self) -> None:
        """Close this thread's handle (the others close when the object is garbage-collected)."""
        src = getattr(self._local, "src", None)
        if src is not None:
            src.close()
            self._local.src = None


def _open_gdal(
    p: Path,
    *,
    chunks: Any,
    scale: float | Sequence[float] | None,
    offset: float | Sequence[float] | None,
    nodata: float | None,
) -> xr.DataArray:
    import rasterio
    import rasterio.errors
    from rasterio.windows import Window

    try:
        with rasterio.open(p) as src:
            n, h, w = src.count, src.height, src.width
            if n == 0 or h == 0 or w == 0:
                raise _err(p, f"the raster has no pixels ({n} bands, {h} x {w})", "check the file")
            ds_tags = _norm_tags(src.tags())
            envi_tags = _norm_tags(src.tags(ns="ENVI")) if "ENVI" in (src.tag_namespaces() or []) else {}
            band_tags = [_norm_tags(src.tags(i + 1)) for i in range(n)]
            descriptions = list(src.descriptions)
            raw_dtype = np.dtype(src.dtypes[0])
            file_scales, file_offsets = list(src.scales), list(src.offsets)
            file_nodata = list(src.nodatavals)
            crs = src.crs
            block = src.block_shapes[0]
            # GDAL's ENVI driver repeats band labels as "Band_<i>" tags and puts the file layout (samples,
            # interleave, ...) in the ENVI domain: keep only the descriptive items.
            raw_attrs = {k: v for k, v in src.tags().items() if not re.fullmatch(r"band_\d+", k, re.IGNORECASE)}
            keep = ("description", "sensor_type", "acquisition_time")
            raw_attrs.update({k: v for k, v in envi_tags.items() if k in keep})
            # A truncated file often opens fine (the header is intact) and fails on the last block.
            src.read(n, window=Window(w - 1, h - 1, 1, 1))
            src.read(1, window=Window(0, 0, 1, 1))
            set_tags = [envi_tags, ds_tags]
            info = _band_info(n=n, descriptions=descriptions, band_tags=band_tags, set_tags=set_tags, path=p)
            dec = _resolve_decoding(
                path=p,
                names=info.names,
                raw_dtype=raw_dtype,
                scale=scale,
                offset=offset,
                nodata=nodata,
                file_scales=file_scales,
                file_offsets=file_offsets,
                file_nodata=file_nodata,
                band_tags=band_tags,
                set_tags=set_tags,
            )
            if dec.check_values:
                idx = _sample_band_indices(n)
                bands = [i + 1 for i in idx]
                if src.overviews(1):
                    # The smallest overview is the cheapest complete look at the image.
                    ov = src.overviews(1)[-1]
                    sample = src.read(bands, out_shape=(len(bands), max(1, h // ov), max(1, w // ov)))
                else:
                    parts = [src.read(bands, window=Window.from_slices(ys, xs)) for ys, xs in _sample_slices(h, w)]
                    sample = np.concatenate([a.reshape(len(bands), -1) for a in parts], axis=1)
                _check_looks_like_reflectance(sample, dec.nodata[idx] if dec.nodata is not None else None, p)
    except DcstsfInputError:
        raise
    except (rasterio.errors.RasterioError, OSError, ValueError) as exc:
        raise _err(
            p,
            f"not a readable raster or the file is truncated/corrupt ({type(exc).__name__}: {exc})",
            "check that it is a complete GeoTIFF/COG (re-download or re-export it), or give a .zarr/.nc path",
        ) from exc

    try:
        # Without chunks rioxarray only reads the coordinates here; the pixels come from _GdalPixels.
        raw = rioxarray.open_rasterio(p, masked=False, mask_and_scale=False)
    except Exception as exc:  # rioxarray wraps GDAL errors in several exception types
        raise _err(p, f"cannot be opened as a raster ({type(exc).__name__}: {exc})", "check the file") from exc
    if isinstance(raw, list):
        raise _err(p, "the file holds several subdatasets", "open one subdataset (e.g. NETCDF:file.nc:var)")
    pixels = _GdalPixels(p, (n, h, w), raw_dtype)
    if chunks is None:
        try:
            data: Any = pixels[:, :, :]
        finally:
            pixels.close()
    else:
        import dask.array as dsa
        from dask.base import tokenize

        norm = _normalise_chunks(chunks, (n, h, w), (int(block[0]), int(block[1])))
        if isinstance(norm, Mapping):
            axes = {"band": 0, "y": 1, "x": 2}
            norm = tuple(norm.get(k, -1) for k in axes)
        st = p.stat()
        name = f"dcstsf-read-{tokenize(str(p.resolve()), st.st_size, st.st_mtime_ns, norm)}"
        data = dsa.from_array(pixels, chunks=norm, name=name, meta=np.empty((0, 0, 0), dtype=raw_dtype))
    out = _decode(xr.DataArray(data, dims=("band", "y", "x")), dec)
    return _finish(
        out.data,
        y=raw["y"].values,
        x=raw["x"].values,
        info=info,
        crs=crs,
        transform=raw.rio.transform(),
        attrs=_clean_attrs(raw_attrs),
        name=None,
        path=p,
    )


def _finish(
    data: Any,
    *,
    y: np.ndarray,
    x: np.ndarray,
    info: _BandInfo,
    crs: Any,
    transform: Any,
    attrs: dict[str, Any],
    name: Hashable | None,
    path: Any,
) -> xr.DataArray:
    coords = _band_coords(info, path)
    coords["y"] = ("y", np.asarray(y, dtype=np.float64))
    coords["x"] = ("x", np.asarray(x, dtype=np.float64))
    da = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, attrs=attrs, name=name)
    if crs is not None:
        da = da.rio.write_crs(crs)
    if transform is not None:
        da = da.rio.write_transform(transform)
    da.rio.write_nodata(np.nan, encoded=False, inplace=True)
    return da


def _zarr_consolidated(p: Path) -> bool:
    """Whether a store has consolidated metadata (asking xarray to guess warns on every open)."""
    if (p / ".zmetadata").is_file():
        return True
    meta = p / "zarr.json"
    if meta.is_file():
        import json

        try:
            return json.loads(meta.read_text()).get("consolidated_metadata") is not None
        except (OSError, ValueError):
            return False
    return False


def _open_xarray(
    p: Path,
    *,
    chunks: Any,
    scale: float | Sequence[float] | None,
    offset: float | Sequence[float] | None,
    nodata: float | None,
    band_dim: str,
    variable: str | None,
    engine: str,
) -> xr.DataArray:
    kwargs: dict[str, Any] = {"mask_and_scale": False, "decode_coords": "all", "engine": engine}
    if engine == "zarr":
        kwargs["consolidated"] = _zarr_consolidated(p)
    try:
        ds = xr.open_dataset(p, chunks=None, **kwargs)
    except Exception as exc:  # zarr/h5py raise a zoo of types for a damaged or foreign file
        kind = "Zarr store" if engine == "zarr" else "NetCDF file"
        raise _err(
            p,
            f"not a readable {kind} ({type(exc).__name__}: {exc})",
            "check the file is complete (re-download or re-export it)",
        ) from exc

    candidates = [k for k, v in ds.data_vars.items() if v.ndim >= 2]
    if variable is not None:
        if variable not in ds.data_vars:
            raise _err(p, f"no variable {variable!r}", f"choose one of {list(ds.data_vars)}")
        var = ds[variable]
    elif len(candidates) == 1:
        var = ds[candidates[0]]
    else:
        raise _err(
            p,
            f"holds {len(candidates)} raster variables {candidates}",
            "say which one with variable=... (CLI --variable)",
        )

    rename = {}
    for ydim, xdim in (("y", "x"), ("lat", "lon"), ("latitude", "longitude")):
        if ydim in var.dims and xdim in var.dims:
            rename = {ydim: "y", xdim: "x"} if ydim != "y" else {}
            break
    else:
        raise _err(p, f"variable {var.name!r} has dims {var.dims}, no y/x pair", "name the spatial dims y and x")
    var = var.rename(rename)
    if var.ndim == 2:
        var = var.expand_dims("band")
    others = [d for d in var.dims if d not in ("y", "x")]
    if len(others) != 1:
        raise _err(p, f"variable {var.name!r} has dims {var.dims}", "give a (band, y, x) cube")
    bdim = band_dim if band_dim in var.dims else others[0]
    var = var.transpose(bdim, "y", "x")
    n = var.sizes[bdim]

    coord_tags: dict[str, Any] = {}
    descriptions: list[str | None] = [None] * n
    wl_units: Any = None
    if bdim in var.coords:
        vals = var[bdim].values
        if vals.dtype.kind in "OUST":
            descriptions = [str(v) for v in vals]
        elif vals.dtype.kind == "f" and _norm_key(bdim) in ("wavelength", "wavelengths", "lambda"):
            coord_tags["wavelength"] = list(vals)
            wl_units = var[bdim].attrs.get("units")
    for cname, coord in var.coords.items():
        key = _norm_key(cname)
        if coord.dims == (bdim,) and key in ("wavelength", "fwhm", "bbl"):
            coord_tags[key] = list(np.asarray(coord.values, dtype=np.float64))
            if key == "wavelength":
                wl_units = coord.attrs.get("units", wl_units)
    if wl_units is not None:
        coord_tags["wavelength_units"] = wl_units
    var_attrs = _norm_tags(var.attrs)
    ds_attrs = _norm_tags(ds.attrs)
    set_tags = [coord_tags, var_attrs, ds_attrs]
    info = _band_info(n=n, descriptions=descriptions, band_tags=[{} for _ in range(n)], set_tags=set_tags, path=p)

    fill = next((var.attrs[k] for k in ("_FillValue", "missing_value", "nodata") if k in var.attrs), None)
    if fill is None:
        fill = var.encoding.get("_FillValue")
    dec = _resolve_decoding(
        path=p,
        names=info.names,
        raw_dtype=var.dtype,
        scale=scale,
        offset=offset,
        nodata=nodata,
        file_scales=None,
        file_offsets=None,
        file_nodata=[None if fill is None else float(fill)] * n,
        band_tags=[{} for _ in range(n)],
        set_tags=set_tags,
    )
    h, w = var.sizes["y"], var.sizes["x"]
    try:
        if dec.check_values:
            idx = _sample_band_indices(n)
            parts = [var.isel({bdim: idx, "y": ys, "x": xs}).values for ys, xs in _sample_slices(h, w)]
            sample = np.concatenate([a.reshape(len(idx), -1) for a in parts], axis=1)
            _check_looks_like_reflectance(sample, dec.nodata[idx] if dec.nodata is not None else None, p)
        crs = var.rio.crs
        transform = var.rio.transform() if h > 1 and w > 1 else None
        y, x = var["y"].values, var["x"].values
        if chunks is not None:
            block = (min(h, 512), min(w, 512))
            enc_chunks = var.encoding.get("preferred_chunks") or {}
            if enc_chunks:
                block = (int(enc_chunks.get("y", block[0])), int(enc_chunks.get("x", block[1])))
            norm = _normalise_chunks(chunks, (n, h, w), block)
            if isinstance(norm, Mapping) and "band" in norm:
                norm = {**{k: v for k, v in norm.items() if k != "band"}, bdim: norm["band"]}
            var = var.chunk(norm)
        raw = xr.DataArray(var.data, dims=("band", "y", "x"))
        out = _decode(raw, dec)
        data = out.data if chunks is not None else out.values
    except DcstsfInputError:
        raise
    except Exception as exc:  # damaged chunks surface as codec / key errors
        raise _err(p, f"reading the data failed ({type(exc).__name__}: {exc})", "re-download or re-export it") from exc
    attrs = _clean_attrs(ds.attrs, var.attrs)
    return _finish(data, y=y, x=x, info=info, crs=crs, transform=transform, attrs=attrs, name=var.name, path=p)


# --------------------------------------------------------------------------------------------------
# write_raster
# --------------------------------------------------------------------------------------------------


def _output_format(path: Path, driver: str | None, cog: bool) -> str:
    if driver is not None:
        key = driver.strip().lower()
        table = {"gtiff": "GTiff", "geotiff": "GTiff", "cog": "COG", "zarr": "Zarr", "netcdf": "NetCDF", "nc": "NetCDF"}
        if key not in table:
            raise _err(path, f"unknown driver {driver!r}", f"use one of {sorted(set(table.values()))}")
        fmt = table[key]
    else:
        suffix = path.suffix.lower()
        if suffix not in RASTER_SUFFIXES:
            raise _err(
                path,
                f"unknown output format for suffix {suffix!r}",
                f"use one of {sorted(RASTER_SUFFIXES)} (or pass driver=)",
            )
        fmt = RASTER_SUFFIXES[suffix]
    if cog:
        if fmt not in ("GTiff", "COG"):
            raise _err(path, "cog=True only applies to GeoTIFF output", "use a .tif path or drop cog=True")
        fmt = "COG"
    return fmt


def _prepare_for_write(da: xr.DataArray, path: Path) -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise _err(path, f"write_raster needs an xarray.DataArray, got {type(da).__name__}", "pass a DataArray")
    if da.ndim == 2:
        da = da.expand_dims(band=["band_1"])
    if da.ndim != 3 or "y" not in da.dims or "x" not in da.dims:
        raise _err(path, f"the array has dims {da.dims}", "give dims (band, y, x)")
    bdim = next(d for d in da.dims if d not in ("y", "x"))
    da = da.transpose(bdim, "y", "x")
    if bdim != "band":
        da = da.rename({bdim: "band"})
    if "band" in da.coords:
        names = [str(v) for v in da["band"].values]
        if da["band"].dtype.kind not in "OUST":
            names = [f"band_{v}" for v in names]
    else:
        names = [f"band_{i + 1}" for i in range(da.sizes["band"])]
    if len(set(names)) != len(names):
        raise _err(path, "band names are not unique", "give every band its own name")
    # .chunk() makes per-band coordinates lazy too; load these few numbers once, up front.
    small = {
        k: ("band", np.asarray(da[k].values))
        for k in ("wavelength", "fwhm", "bbl")
        if k in da.coords and da[k].dims == ("band",)
    }
    return da.assign_coords(band=np.array(names, dtype=object), **small)


def _band_meta(da: xr.DataArray) -> dict[str, np.ndarray]:
    meta = {}
    for key in ("wavelength", "fwhm", "bbl"):
        if key in da.coords and da[key].dims == ("band",):
            meta[key] = np.asarray(da[key].values)
    return meta


def _tag_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in np.ravel(value))
    return str(value)


def _dataset_tags(da: xr.DataArray) -> dict[str, Any]:
    skip = {"_fillvalue", "long_name", "scale_factor", "add_offset", "scales", "offsets", "grid_mapping", "units"}
    return {str(k): _tag_value(v) for k, v in da.attrs.items() if _norm_key(k) not in skip}


def _encode(
    da: xr.DataArray, *, dtype: np.dtype, nodata: float, scale: np.ndarray | None, offset: np.ndarray | None, path: Path
) -> tuple[xr.DataArray, float]:
    """Reflectance -> stored values (float passes through; integers need a scale)."""
    if _is_integer_dtype(dtype):
        if scale is None:
            raise _err(
                path,
                f"writing {dtype.name} needs a scale (stored = (reflectance - offset) / scale)",
                "pass scale=... (and optionally offset=), or write float32",
            )
        info = np.iinfo(dtype)
        nd = float(info.min if nodata is None or not np.isfinite(nodata) else nodata)
        lo, hi = float(info.min), float(info.max)
        sc = xr.DataArray(scale.astype(np.float64), dims="band")
        of = xr.DataArray((offset if offset is not None else np.zeros_like(scale)).astype(np.float64), dims="band")
        scaled = ((da.astype(np.float64) - of) / sc).round()
        # Keep the nodata value out of the valid range so real pixels never read back as nodata.
        if nd == lo:
            lo += 1
        elif nd == hi:
            hi -= 1
        enc = scaled.clip(lo, hi).fillna(nd).astype(dtype)
        return enc, nd
    if scale is not None or offset is not None:
        sc = xr.DataArray(scale.astype(np.float64), dims="band") if scale is not None else 1.0
        of = xr.DataArray(offset.astype(np.float64), dims="band") if offset is not None else 0.0
        da = (da - of) / sc
    nd = float(nodata) if nodata is not None else float("nan")
    return da.astype(dtype).fillna(nd) if np.isfinite(nd) else da.astype(dtype), nd


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete temporaries of ``path`` left by killed writers; returns what was removed.

    Writers put their data in ``.<name>.partial-<pid>`` (and COG/Zarr variants ``...partial-<pid>.gtiff``,
    ``.<name>.old-<pid>``) next to ``path`` and rename it into place when complete. A writer killed with
    SIGKILL (or by a power cut) cannot clean up, and the next run has another pid, so without this each
    kill would leave a file as large as the output behind. Temporaries of live processes are kept.
    """
    p = Path(path).expanduser()
    removed: list[Path] = []
    if not p.parent.is_dir():
        return removed
    pattern = re.compile(rf"^\.{re.escape(p.name)}\.(?:partial|old)-(\d+)(?:\..*)?$")
    for q in p.parent.iterdir():
        m = pattern.match(q.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            _remove(q)
            removed.append(q)
    return removed


def write_raster(
    da: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    driver: str | None = None,
    cog: bool = False,
    compress: str | None = "deflate",
    predictor: str | None = None,
    blocksize: int = 256,
    dtype: Any = None,
    nodata: float = float("nan"),
    scale: float | Sequence[float] | None = None,
    offset: float | Sequence[float] | None = None,
    progress: bool = False,
) -> Path:
    """Write a ``(band, y, x)`` DataArray atomically to GeoTIFF/COG, Zarr or NetCDF.

    The format follows the suffix: ``.tif``/``.tiff`` -> tiled, compressed GeoTIFF (a Cloud-Optimised
    GeoTIFF with internal overviews when ``cog=True``), ``.zarr`` -> Zarr store, ``.nc`` -> NetCDF-4.
    CRS and transform, band names (GeoTIFF band descriptions), per-band ``wavelength``/``fwhm``/``bbl``
    and the array's ``attrs`` (e.g. ``method``, ``dcstsf_version``) are written with the data.

    The data go to a temporary ``.<name>.partial-<pid>`` next to ``path`` and are renamed into place
    only when complete, so ``path`` never holds a partial result; on any error the temporary is removed
    and the error re-raised. Dask-backed arrays are streamed chunk by chunk (never loaded whole).

    Parameters
    ----------
    da
        Reflectance cube, dims ``(band, y, x)`` (a 2-D ``(y, x)`` array is written as one band).
    path
        Output path.
    overwrite
        Replace an existing ``path``; otherwise an existing path is an error.
    driver
        Force a format: ``"GTiff"``, ``"COG"``, ``"Zarr"`` or ``"NetCDF"``.
    cog
        Write a Cloud-Optimised GeoTIFF (``.tif`` only).
    compress
        GeoTIFF/NetCDF compression (``"deflate"``, ``"lzw"``, ``"zstd"``, ... or ``None``).
    predictor
        GeoTIFF predictor: ``"none"``, ``"horizontal"`` or ``"float"``; by default horizontal for integer
        ``dtype`` and none for float (:func:`gtiff_codec_options`).
    blocksize
        GeoTIFF tile size and Zarr/NetCDF chunk size in pixels (a multiple of 16).
    dtype
        Stored data type, float32 by default. Integer types need ``scale`` (stored = (value - offset) / scale),
        which is recorded as the file's band scales/offsets so :func:`open_raster` reads reflectance back.
    nodata
        Stored nodata value (NaN for float output; the type's minimum for integer output by default).
    scale, offset
        See ``dtype``; per band or one value.
    progress
        Show a Dask progress bar while computing a Dask-backed array.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    p = Path(path).expanduser()
    fmt = _output_format(p, driver, cog)
    if p.exists() and not overwrite:
        raise _err(
            p, "the output already exists", "pass overwrite=True (CLI --overwrite) to replace it, or choose another path"
        )
    if not p.parent.exists():
        raise _err(p, f"the output directory {p.parent} does not exist", "create it first")
    if blocksize <= 0 or blocksize % 16:
        raise _err(p, f"blocksize={blocksize} is not a positive multiple of 16", "use e.g. 256 or 512")
    da = _prepare_for_write(da, p)
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(np.float32)
    n = da.sizes["band"]
    sc = _per_band(scale, n, "scale", p) if scale is not None else None
    of = _per_band(offset, n, "offset", p) if offset is not None else None

    tmp = p.with_name(f".{p.name}.partial-{os.getpid()}")
    _remove(tmp)
    remove_stale_temporaries(p)
    progress_ctx: Any = nullcontext()
    if progress and da.chunks is not None:
        from dask.diagnostics import ProgressBar

        progress_ctx = ProgressBar()
    try:
        with progress_ctx:
            if fmt in ("GTiff", "COG"):
                codec = gtiff_codec_options(compress, predictor=predictor, dtype=out_dtype, path=p)
                _write_gtiff(
                    da, tmp, cog=fmt == "COG", codec=codec, blocksize=blocksize, dtype=out_dtype, nodata=nodata,
                    scale=sc, offset=of,
                )
            else:
                _write_xarray(
                    da, tmp, fmt=fmt, compress=compress, blocksize=blocksize, dtype=out_dtype,
                    nodata=nodata, scale=sc, offset=of,
                )
        if p.is_dir() and not p.is_symlink():
            # os.replace cannot replace a non-empty directory: move the old store aside first.
            old = p.with_name(f".{p.name}.old-{os.getpid()}")
            _remove(old)
            os.replace(p, old)
            try:
                os.replace(tmp, p)
            except BaseException:
                os.replace(old, p)  # put the old store back: a failed overwrite must not lose it
                raise
            _remove(old)
        else:
            os.replace(tmp, p)
    except BaseException:
        _remove(tmp)
        _remove(Path(str(tmp) + ".aux.xml"))
        raise
    return p


def _write_gtiff(
    da: xr.DataArray,
    tmp: Path,
    *,
    cog: bool,
    codec: dict[str, Any],
    blocksize: int,
    dtype: np.dtype,
    nodata: float,
    scale: np.ndarray | None,
    offset: np.ndarray | None,
) -> None:
    import rasterio
    import rasterio.shutil

    names = [str(v) for v in da["band"].values]
    meta = _band_meta(da)
    crs = da.rio.crs
    transform = da.rio.transform()
    enc, nd = _encode(da, dtype=dtype, nodata=nodata, scale=scale, offset=offset, path=tmp)
    h, w = da.sizes["y"], da.sizes["x"]
    bx = min(blocksize, max(16, math.ceil(w / 16) * 16))
    by = min(blocksize, max(16, math.ceil(h / 16) * 16))
    clean = xr.DataArray(enc.data, dims=("band", "y", "x"), coords={"y": da["y"].values, "x": da["x"].values})
    if crs is not None:
        clean = clean.rio.write_crs(crs)
    clean = clean.rio.write_transform(transform)
    clean.attrs["long_name"] = tuple(names)
    clean.rio.write_nodata(nd, encoded=False, inplace=True)
    band_tags = []
    for i in range(len(names)):
        tags_i: dict[str, Any] = {}
        if "wavelength" in meta:
            tags_i["wavelength"] = repr(float(meta["wavelength"][i]))
            tags_i["wavelength_units"] = "Nanometers"
        if "fwhm" in meta:
            tags_i["fwhm"] = repr(float(meta["fwhm"][i]))
        if "bbl" in meta:
            tags_i["bbl"] = str(int(meta["bbl"][i]))
        band_tags.append(tags_i)
    tags: dict[str, Any] = {**_dataset_tags(da), "band_tags": band_tags}
    if _is_integer_dtype(dtype):
        assert scale is not None
        tags["scales"] = tuple(float(s) for s in scale)
        tags["offsets"] = tuple(float(o) for o in (offset if offset is not None else np.zeros(len(names))))
    # Band-interleaved, like the batch writer and the HS products themselves (EnMAP L2A, AHSI): a window
    # of a pixel-interleaved cube decodes every band of every block it meets, and a reader that wants a
    # few bands pays for all of them.
    profile: dict[str, Any] = {"tiled": True, "blockxsize": bx, "blockysize": by, "interleave": "band", **codec}
    target = tmp if not cog else tmp.with_name(tmp.name + ".gtiff")
    try:
        if clean.chunks is not None:
            # Tile-aligned chunks: every GeoTIFF tile is then written exactly once.
            ych = max(1, round(max(clean.chunks[1]) / by)) * by
            xch = max(1, round(max(clean.chunks[2]) / bx)) * bx
            clean = clean.chunk({"band": -1, "y": ych, "x": xch})
            clean.rio.to_raster(target, driver="GTiff", dtype=dtype.name, tags=tags, lock=threading.Lock(), **profile)
        else:
            clean.rio.to_raster(target, driver="GTiff", dtype=dtype.name, tags=tags, windowed=True, **profile)
        if cog:
            opts: dict[str, Any] = {
                "blocksize": blocksize, "overview_resampling": "average", "resampling": "average",
                **cog_codec_options(codec),
            }
            rasterio.shutil.copy(target, tmp, driver="COG", **opts)
    finally:
        if cog:
            _remove(target)
            _remove(Path(str(target) + ".aux.xml"))
    with rasterio.open(tmp) as check:
        if check.count != len(names):
            raise DcstsfInputError(f"{tmp}: wrote {check.count} bands instead of {len(names)}")


def _write_xarray(
    da: xr.DataArray,
    tmp: Path,
    *,
    fmt: str,
    compress: str | None,
    blocksize: int,
    dtype: np.dtype,
    nodata: float,
    scale: np.ndarray | None,
    offset: np.ndarray | None,
) -> None:
    meta = _band_meta(da)
    crs = da.rio.crs
    transform = da.rio.transform()
    enc, nd = _encode(da, dtype=dtype, nodata=nodata, scale=scale, offset=offset, path=tmp)
    name = str(da.name) if da.name is not None else "reflectance"
    coords: dict[str, Any] = {"band": da["band"].values.astype(object), "y": da["y"].values, "x": da["x"].values}
    for key, vals in meta.items():
        coords[key] = ("band", vals, {"units": "nm"} if key != "bbl" else {})
    clean = xr.DataArray(enc.data, dims=("band", "y", "x"), coords=coords, name=name)
    if crs is not None:
        clean = clean.rio.write_crs(crs)
    clean = clean.rio.write_transform(transform)
    ds = clean.to_dataset()
    ds.attrs = _dataset_tags(da)
    var_attrs: dict[str, Any] = {}
    if _is_integer_dtype(dtype):
        assert scale is not None
        # CF decoding applies one scalar scale_factor; per-band scales go to the per-band form readers
        # recognise (data gain/offset values).
        if np.all(scale == scale[0]) and (offset is None or np.all(offset == offset[0])):
            var_attrs["scale_factor"] = float(scale[0])
            var_attrs["add_offset"] = float(offset[0]) if offset is not None else 0.0
        else:
            var_attrs["data_gain_values"] = [float(s) for s in scale]
            offs = offset if offset is not None else np.zeros_like(scale)
            var_attrs["data_offset_values"] = [float(o) for o in offs]
    ds[name].attrs.update(var_attrs)
    h, w = da.sizes["y"], da.sizes["x"]
    if clean.chunks is None:
        chunk_shape = (da.sizes["band"], min(blocksize, h), min(blocksize, w))
    else:
        chunk_shape = (da.sizes["band"], max(clean.chunks[1]), max(clean.chunks[2]))
        ds = ds.chunk({"band": -1, "y": chunk_shape[1], "x": chunk_shape[2]})
    encoding: dict[str, Any] = {name: {"dtype": dtype, "_FillValue": nd}}
    if "spatial_ref" in ds.coords:
        encoding[name]["grid_mapping"] = "spatial_ref"
    if fmt == "Zarr":
        encoding[name]["chunks"] = chunk_shape
        ds.to_zarr(tmp, mode="w", encoding=encoding, consolidated=False, zarr_format=3, compute=True)
    else:
        encoding[name]["chunksizes"] = chunk_shape
        if compress:
            encoding[name]["zlib"] = True
            encoding[name]["complevel"] = 4
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding, compute=True)


# --------------------------------------------------------------------------------------------------
# ENVI
# --------------------------------------------------------------------------------------------------


def _envi_scalar(text: str) -> Any:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def parse_envi_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse an ENVI ``.hdr`` file.

    Keys are lower-cased with single spaces (``"wavelength units"``, ``"reflectance scale factor"``).
    Brace lists become lists of numbers when every item is numeric (``wavelength``, ``fwhm``, ``bbl``,
    ``data gain values``, ...) and lists of strings otherwise (``band names``); ``description`` stays one
    string; other values become int, float or str.

    Raises
    ------
    DcstsfInputError
        If the file is missing or does not start with ``ENVI``.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise _err(p, "ENVI header not found", "give the .hdr file (or the data file next to it)")
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.lstrip().startswith("ENVI"):
        raise _err(p, "not an ENVI header (the first line is not 'ENVI')", "give the .hdr file of an ENVI image")
    out: dict[str, Any] = {}
    body = text.lstrip()[4:]
    pos = 0
    pattern = re.compile(r"^[ \t]*([^=\n]+?)[ \t]*=[ \t]*", re.MULTILINE)
    while True:
        m = pattern.search(body, pos)
        if not m:
            break
        key = re.sub(r"\s+", " ", m.group(1).strip().lower())
        start = m.end()
        if body[start : start + 1] == "{":
            end = body.find("}", start)
            if end < 0:
                raise _err(p, f"header field '{key}' opens '{{' but never closes it", "repair the header")
            raw = body[start + 1 : end]
            pos = end + 1
            if key == "description":
                out[key] = " ".join(raw.split())
                continue
            items = [s.strip() for s in raw.split(",")]
            items = [s for s in items if s != ""]
            try:
                nums = [float(s) for s in items]
                is_int = [re.fullmatch(r"[-+]?\d+", s) is not None for s in items]
                out[key] = [int(v) if i else v for v, i in zip(nums, is_int)]
            except ValueError:
                out[key] = items
        else:
            end = body.find("\n", start)
            end = len(body) if end < 0 else end
            out[key] = _envi_scalar(body[start:end])
            pos = end
    return out


def _envi_pair(path: Path) -> tuple[Path, Path]:
    """(header, data file) for either of the two."""
    if path.suffix.lower() == ".hdr":
        hdr = path
        stem = path.with_suffix("")
        candidates = [stem] + [stem.with_suffix(s) for s in (".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".bin")]
        # "x.img.hdr" style
        candidates.insert(0, Path(str(path)[: -len(".hdr")]))
        data = next((c for c in candidates if c.is_file() and c.suffix.lower() != ".hdr"), None)
        if data is None:
            raise _err(hdr, "no ENVI data file next to the header", "keep the .img/.dat file beside the .hdr")
        return hdr, data
    for hdr in (Path(str(path) + ".hdr"), path.with_suffix(".hdr")):
        if hdr.is_file():
            return hdr, path
    raise _err(path, "no ENVI header (.hdr) next to the data file", "keep the .hdr file beside the image")


def read_envi(
    path: str | os.PathLike[str],
    *,
    scale: float | Sequence[float] | None = None,
    offset: float | Sequence[float] | None = None,
    nodata: float | None = None,
) -> xr.DataArray:
    """Read an ENVI image (``.hdr`` + binary data) into a float32 reflectance DataArray ``(band, y, x)``.

    Supports BSQ/BIL/BIP, both byte orders and ``header offset``. ``reflectance scale factor`` (reflectance =
    value / factor) or ``data gain values``/``data offset values`` are applied; ``data ignore value`` becomes
    NaN. Band names come from ``band names`` (else ``band_<i>``), and ``wavelength``/``fwhm`` (converted to
    nm) and ``bbl`` become coordinates. ``map info`` is not decoded: the result has no CRS and pixel
    coordinates (``x = 0.5, 1.5, ...``; ``y`` likewise, increasing downwards); the raw ``map info`` string is
    kept in ``attrs`` when present.

    Parameters
    ----------
    path
        The ``.hdr`` file or the data file next to it.
    scale, offset, nodata
        Override the header, as in :func:`open_raster`.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise _err(p, "file not found", "check the path")
    hdr_path, data_path = _envi_pair(p)
    hdr = parse_envi_header(hdr_path)
    try:
        ns, nl, nb = int(hdr["samples"]), int(hdr["lines"]), int(hdr["bands"])
        code = int(hdr["data type"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _err(
            hdr_path,
            f"header lacks or garbles a required field ({exc})",
            "the header needs samples, lines, bands and data type",
        ) from exc
    if min(ns, nl, nb) < 1:
        raise _err(
            hdr_path, f"the header gives {ns} samples, {nl} lines, {nb} bands", "fix the header (all must be >= 1)"
        )
    if code not in _ENVI_DTYPES:
        raise _err(hdr_path, f"ENVI data type {code} (complex or unknown) is not supported", "convert to a real type")
    try:
        byte_order, header_offset = int(hdr.get("byte order", 0)), int(hdr.get("header offset", 0))
    except (TypeError, ValueError) as exc:
        raise _err(hdr_path, f"'byte order' or 'header offset' is not an integer ({exc})", "fix the header") from exc
    if byte_order not in (0, 1) or header_offset < 0:
        raise _err(
            hdr_path,
            f"'byte order = {byte_order}' or 'header offset = {header_offset}' is invalid",
            "fix the header (byte order 0 or 1, header offset >= 0)",
        )
    order = "<" if byte_order == 0 else ">"
    dtype = np.dtype(order + _ENVI_DTYPES[code])
    interleave = str(hdr.get("interleave", "bsq")).strip().lower()
    shapes = {"bsq": (nb, nl, ns), "bil": (nl, nb, ns), "bip": (nl, ns, nb)}
    if interleave not in shapes:
        raise _err(hdr_path, f"unknown interleave {interleave!r}", "use bsq, bil or bip")
    need = header_offset + nb * nl * ns * dtype.itemsize
    size = data_path.stat().st_size
    if size == 0:
        raise _err(data_path, "the data file is empty (0 bytes)", "re-download it")
    if size < need:
        raise _err(data_path, f"the data file is truncated ({size} bytes, the header needs {need})", "re-download it")
    mm = np.memmap(data_path, dtype=dtype, mode="r", offset=header_offset, shape=shapes[interleave])
    to_band_first = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (2, 0, 1)}[interleave]
    cube = mm.transpose(to_band_first)

    tags = {_norm_key(k): v for k, v in hdr.items()}
    names = hdr.get("band names")
    descriptions: list[str | None] = [None] * nb
    if isinstance(names, list) and len(names) == nb:
        descriptions = [str(s) for s in names]
    empty: list[dict[str, Any]] = [{} for _ in range(nb)]
    info = _band_info(n=nb, descriptions=descriptions, band_tags=empty, set_tags=[tags], path=hdr_path)
    dec = _resolve_decoding(
        path=hdr_path,
        names=info.names,
        raw_dtype=dtype,
        scale=scale,
        offset=offset,
        nodata=nodata,
        file_scales=None,
        file_offsets=None,
        file_nodata=None,
        band_tags=[{} for _ in range(nb)],
        set_tags=[tags],
    )
    if dec.check_values:
        idx = _sample_band_indices(nb)
        parts = [np.asarray(cube[idx][:, ys, xs]) for ys, xs in _sample_slices(nl, ns)]
        sample = np.concatenate([a.reshape(len(idx), -1) for a in parts], axis=1)
        _check_looks_like_reflectance(sample, dec.nodata[idx] if dec.nodata is not None else None, hdr_path)
    raw = xr.DataArray(np.ascontiguousarray(cube), dims=("band", "y", "x"))
    out = _decode(raw, dec)
    del mm
    attrs: dict[str, Any] = {}
    for key in ("description", "sensor type", "map info", "coordinate system string", "acquisition time"):
        if key in hdr:
            attrs[key.replace(" ", "_")] = str(hdr[key])
    return _finish(
        out.values,
        y=np.arange(nl) + 0.5,
        x=np.arange(ns) + 0.5,
        info=info,
        crs=None,
        transform=None,
        attrs=attrs,
        name=None,
        path=hdr_path,
    )

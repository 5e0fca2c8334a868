"""Metadata of stored rasters: tag normalisation, numbers in tags, and the band information.

Every reader hands its tags to these functions in the same shape: per-band tags (GDAL band metadata) and
dataset-wide tag sets (ENVI header, GDAL dataset metadata, NetCDF/Zarr attributes), keys normalised by
:func:`norm_tags`. From them :func:`band_info` derives band names, centre wavelengths and FWHM in nm
and the ENVI bad-band list, which :func:`band_coords` turns into the ``band`` coordinates of a result.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf.io.errors import input_error
from dcstsf.units import nm_per_wavelength_unit

__all__ = [
    "MAX_DETECTOR_SEGMENTS",
    "BandInfo",
    "as_float",
    "band_coords",
    "band_info",
    "check_wavelengths",
    "collect_per_band",
    "is_integer_dtype",
    "norm_key",
    "norm_tags",
    "parse_number_list",
    "per_band",
]

#: A wavelength list may restart at a detector boundary (EnMAP VNIR->SWIR, AVIRIS's four spectrometers);
#: more restarts than this means the list is shuffled or reversed.
MAX_DETECTOR_SEGMENTS = 4
# GDAL's ENVI driver (and EnMAP-Box) label bands "band 12 (452.1 Nanometers)"; such labels carry no
# name, so they become "band_12" and the wavelength they embed is a last-resort source.
_AUTO_DESCRIPTION = re.compile(r"^\s*band\s*(\d+)\s*(?:\(\s*([-+0-9.eE]+)\s*([^)]*)\))?\s*$", re.IGNORECASE)
# GDAL's ENVI driver describes bands by wavelength only ("399.369995 Nanometers").
_WAVELENGTH_DESCRIPTION = re.compile(
    r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(nanomet(?:er|re)s?|nm|micromet(?:er|re)s?|microns?|um|\u00b5m)\s*$",
    re.IGNORECASE,
)


def norm_key(key: Any) -> str:
    """A tag key in the one spelling every lookup uses: lower case, runs of spaces/underscores as ``_``."""
    return re.sub(r"[\s_]+", "_", str(key).strip().lower())


def norm_tags(tags: Mapping[Any, Any]) -> dict[str, Any]:
    """``tags`` with every key through :func:`norm_key`."""
    return {norm_key(k): v for k, v in tags.items()}


def parse_number_list(value: Any) -> list[float] | None:
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


def as_float(value: Any) -> float | None:
    """One number from a tag value, or None when it is not exactly one number."""
    vals = parse_number_list(value)
    if vals is None or len(vals) != 1:
        return None
    return vals[0]


def per_band(value: float | Sequence[float] | np.ndarray, n: int, *, what: str, path: Any) -> np.ndarray:
    """One value per band (float64) from one value for all bands or exactly ``n`` values."""
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.size == 1:
        return np.full(n, float(arr[0]))
    if arr.size != n:
        raise input_error(path, f"{what} has {arr.size} values but the raster has {n} bands", f"give one {what} or {n}")
    return arr


def is_integer_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` stores integers (which then need a reflectance scale)."""
    return bool(np.issubdtype(np.dtype(dtype), np.integer))


@dataclass
class BandInfo:
    """Band names, and wavelength/FWHM (nm) and bad-band list when the file gives them."""

    names: list[str]
    wavelength: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    bbl: np.ndarray | None = None


def collect_per_band(
    key: str, band_tags: list[dict[str, Any]], set_tags: list[dict[str, Any]], n: int, *, path: Any
) -> tuple[np.ndarray | None, str | None]:
    """Find ``key`` per band (band tags) or as a list (dataset/ENVI tags); returns values and a source.

    The source is ``"band"`` or ``"dataset"`` (None when the key is nowhere), ``"single"`` when the
    dataset tags hold one value for several bands (then no values are returned).
    """
    per_band_values = [bt.get(key) for bt in band_tags]
    present = [v for v in per_band_values if v not in (None, "")]
    if present:
        if len(present) != n:
            raise input_error(
                path,
                f"band metadata '{key}' is given for {len(present)} of {n} bands",
                f"give '{key}' for every band or for none",
            )
        vals = [as_float(v) for v in per_band_values]
        if any(v is None for v in vals):
            raise input_error(
                path, f"band metadata '{key}' is not numeric: {per_band_values[:3]}...", f"fix the '{key}' values"
            )
        return np.asarray(vals, dtype=np.float64), "band"
    for tags in set_tags:
        if key in tags:
            vals = parse_number_list(tags[key])
            if vals is None:
                raise input_error(path, f"metadata '{key}' is not a list of numbers", f"fix the '{key}' entry")
            if len(vals) == 1 and n > 1:
                return None, "single"  # band_info warns: see _warn_single_values
            if len(vals) != n:
                raise input_error(
                    path,
                    f"metadata '{key}' lists {len(vals)} values for {n} bands",
                    f"make '{key}' list exactly one value per band",
                )
            return np.asarray(vals, dtype=np.float64), "dataset"
    return None, None


def _warn_single_values(keys: list[str], n: int, *, path: Any) -> None:
    """Warn that file-level ``keys`` hold one value for ``n`` bands and are ignored.

    rioxarray's ``to_raster`` copies band 1's tags to the file and drops the others: one value for every
    band is what is left of per-band metadata, never a valid list, so it is ignored rather than read.
    """
    listed = ", ".join(f"'{k}'" for k in keys)
    warnings.warn(
        f"{path}: metadata {listed} {'holds' if len(keys) == 1 else 'hold'} one value for {n} bands, as a raster "
        "written by rioxarray's to_raster keeps of per-band metadata (band 1's); ignored, so the bands have "
        f"no {listed}. Write the file with dcstsf.io.write_raster (or the CLI), or give the sensor "
        "(CLI --hs-sensor), to keep the band wavelengths",
        UserWarning,
        stacklevel=3,
    )


def band_info(
    *,
    n: int,
    descriptions: Sequence[str | None],
    band_tags: list[dict[str, Any]],
    set_tags: list[dict[str, Any]],
    path: Any,
) -> BandInfo:
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

    wl, wl_src = collect_per_band("wavelength", band_tags, set_tags, n, path=path)
    fwhm, fwhm_src = collect_per_band("fwhm", band_tags, set_tags, n, path=path)
    bbl, bbl_src = collect_per_band("bbl", band_tags, set_tags, n, path=path)
    single = [k for k, src in (("wavelength", wl_src), ("fwhm", fwhm_src), ("bbl", bbl_src)) if src == "single"]
    if single:
        _warn_single_values(single, n, path=path)
    units: Any = None
    if wl_src == "band":
        units = next((bt.get("wavelength_units") for bt in band_tags if bt.get("wavelength_units")), None)
    if units is None:
        units = next((t.get("wavelength_units") for t in set_tags if t.get("wavelength_units")), None)
    if wl is None and all(w is not None for w in desc_wl) and n > 0:
        wl = np.asarray(desc_wl, dtype=np.float64)
        units = desc_units[0] or units
    if wl is not None:
        factor = nm_per_wavelength_unit(units, wl, source=str(path))
        wl = wl * factor
        if fwhm is not None:
            fwhm = fwhm * factor
        check_wavelengths(wl, path=path)
    return BandInfo(names=names, wavelength=wl, fwhm=fwhm, bbl=bbl)


def check_wavelengths(wl: np.ndarray, *, path: Any) -> None:
    """Wavelengths must be finite, positive and increase within each detector segment."""
    if not np.all(np.isfinite(wl)) or np.any(wl <= 0):
        raise input_error(
            path, "band wavelengths contain non-positive or non-numeric values", "fix the wavelength metadata"
        )
    steps = np.diff(wl)
    if np.any(steps == 0):
        i = int(np.flatnonzero(steps == 0)[0])
        raise input_error(
            path,
            f"bands {i + 1} and {i + 2} have the same wavelength {wl[i]:g} nm",
            "fix the wavelength metadata (each band needs its own centre wavelength)",
        )
    restarts = np.flatnonzero(steps < 0)
    if restarts.size >= MAX_DETECTOR_SEGMENTS:
        i = int(restarts[0])
        raise input_error(
            path,
            f"band wavelengths are out of order ({restarts.size} decreases, first at band {i + 1} -> {i + 2}: "
            f"{wl[i]:g} -> {wl[i + 1]:g} nm); wavelengths must increase, restarting at most "
            f"{MAX_DETECTOR_SEGMENTS - 1} times at detector boundaries",
            "reorder the bands by wavelength (or fix the wavelength metadata)",
        )


def band_coords(info: BandInfo) -> dict[str, Any]:
    """The per-band coordinates of a result: ``band``, and ``wavelength``/``fwhm`` (nm) and ``bbl`` if known."""
    coords: dict[str, Any] = {"band": np.array(info.names, dtype=object)}
    if info.wavelength is not None:
        coords["wavelength"] = ("band", info.wavelength.astype(np.float64), {"units": "nm"})
    if info.fwhm is not None:
        coords["fwhm"] = ("band", info.fwhm.astype(np.float64), {"units": "nm"})
    if info.bbl is not None:
        coords["bbl"] = ("band", (info.bbl > 0).astype(np.int8))
    return coords

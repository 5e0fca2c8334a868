"""Encoding reflectance for writing, whatever the format: stored values, nodata and dataset tags.

Float output stores reflectance as it is (NaN for nodata unless another value is given). Integer output
stores ``round((reflectance - offset) / scale)`` clipped to the type's range, with nodata kept outside
the valid range so that no real pixel reads back as nodata; the writer records ``scale``/``offset`` in
the file so :func:`dcstsf.io.open_raster` reads reflectance back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dcstsf.io.errors import input_error
from dcstsf.io.metadata import is_integer_dtype, norm_key
from dcstsf.units import nm_per_wavelength_unit

__all__ = [
    "PER_BAND_KEYS",
    "attrs_tags",
    "band_metadata",
    "dataset_tags",
    "encode_block",
    "encode_reflectance",
    "integer_limits",
    "tag_value",
]

#: Per-band coordinates written with the data (GeoTIFF band tags, store coordinates).
PER_BAND_KEYS = ("wavelength", "fwhm", "bbl")
# Attributes that describe the stored encoding or the variable, not the dataset: never dataset tags.
_NOT_DATASET_TAGS = frozenset(
    {"_fillvalue", "long_name", "scale_factor", "add_offset", "scales", "offsets", "grid_mapping", "units"}
)


def band_metadata(da: xr.DataArray) -> dict[str, np.ndarray]:
    """The per-band ``wavelength``/``fwhm``/``bbl`` coordinates of ``da`` that it has, wavelength and FWHM in
    nm (files label them so): a ``wavelength`` coordinate in micrometres, by its ``units`` attribute or its
    magnitude, is converted."""
    meta = {}
    for key in PER_BAND_KEYS:
        if key in da.coords and da[key].dims == ("band",):
            meta[key] = np.asarray(da[key].values)
    if "wavelength" in meta and meta["wavelength"].dtype.kind in "fiu":
        factor = nm_per_wavelength_unit(da["wavelength"].attrs.get("units"), meta["wavelength"],
                                        source=f"the wavelength coordinate of {da.name or 'the array written'}")
        if factor != 1.0:
            meta["wavelength"] = meta["wavelength"] * factor
            if "fwhm" in meta:
                meta["fwhm"] = np.asarray(meta["fwhm"], dtype=np.float64) * factor
    return meta


def tag_value(value: Any) -> Any:
    """An attribute value as a file tag: numbers and strings as they are, booleans as 0/1, sequences as
    ``"a, b, c"``, anything else as its ``str``."""
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in np.ravel(value))
    return str(value)


def attrs_tags(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    """Dataset tags of an attribute mapping (e.g. ``method``, ``dcstsf_version``), encoding keys left out."""
    return {str(k): tag_value(v) for k, v in attrs.items() if norm_key(k) not in _NOT_DATASET_TAGS}


def dataset_tags(da: xr.DataArray) -> dict[str, Any]:
    """The dataset tags of ``da``'s attributes (:func:`attrs_tags`)."""
    return attrs_tags(da.attrs)


def encode_block(
    arr: np.ndarray, *, dtype: np.dtype, scale: np.ndarray | None, offset: np.ndarray | None
) -> np.ndarray:
    """One in-memory ``(band, y, x)`` block as stored: the NumPy form of :func:`encode_reflectance`.

    Float ``dtype``: the values as they are (NaN stays NaN). Integer ``dtype``: ``round((arr - offset) /
    scale)`` clipped to the valid range, the type's minimum for NaN (``scale`` is required).
    """
    if not is_integer_dtype(dtype):
        return arr.astype(dtype, copy=False)
    assert scale is not None
    nd, lo, hi = integer_limits(dtype, None)
    of = np.zeros_like(scale) if offset is None else offset
    v = np.rint((arr - of[:, None, None]) / scale[:, None, None])
    np.clip(v, lo, hi, out=v)
    v[np.isnan(arr)] = nd
    return v.astype(dtype)


def integer_limits(dtype: np.dtype, nodata: float | None) -> tuple[float, float, float]:
    """``(nodata, low, high)`` of integer output: nodata (the type's minimum unless a finite value is
    given) and the valid range of stored values, which leaves the nodata value out when it is at an end."""
    info = np.iinfo(dtype)
    nd = float(info.min if nodata is None or not np.isfinite(nodata) else nodata)
    lo, hi = float(info.min), float(info.max)
    if nd == lo:
        lo += 1
    elif nd == hi:
        hi -= 1
    return nd, lo, hi


def encode_reflectance(
    da: xr.DataArray,
    *,
    dtype: np.dtype,
    nodata: float,
    scale: np.ndarray | None,
    offset: np.ndarray | None,
    path: Path,
) -> tuple[xr.DataArray, float]:
    """Reflectance -> stored values and the stored nodata value; lazy when ``da`` is Dask-backed.

    Float ``dtype``: ``(reflectance - offset) / scale`` when either is given, NaN replaced by a finite
    ``nodata``. Integer ``dtype``: needs ``scale`` (per band); see the module docstring.

    Raises
    ------
    DcstsfInputError
        Integer ``dtype`` without ``scale`` (``path`` names the output).
    """
    if is_integer_dtype(dtype):
        if scale is None:
            raise input_error(
                path,
                f"writing {dtype.name} needs a scale (stored = (reflectance - offset) / scale)",
                "pass scale=... (and optionally offset=), or write float32",
            )
        nd, lo, hi = integer_limits(dtype, nodata)
        sc = xr.DataArray(scale.astype(np.float64), dims="band")
        of = xr.DataArray((offset if offset is not None else np.zeros_like(scale)).astype(np.float64), dims="band")
        scaled = ((da.astype(np.float64) - of) / sc).round()
        enc = scaled.clip(lo, hi).fillna(nd).astype(dtype)
        return enc, nd
    if scale is not None or offset is not None:
        sc = xr.DataArray(scale.astype(np.float64), dims="band") if scale is not None else 1.0
        of = xr.DataArray(offset.astype(np.float64), dims="band") if offset is not None else 0.0
        da = (da - of) / sc
    nd = float(nodata) if nodata is not None else float("nan")
    return da.astype(dtype).fillna(nd) if np.isfinite(nd) else da.astype(dtype), nd

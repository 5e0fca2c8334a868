"""Zarr stores and NetCDF files through xarray: reading one raster variable, and writing one.

A store holds one ``(band, y, x)`` variable (or several, then the caller names one); its spatial
dimensions are ``y``/``x``, ``lat``/``lon`` or ``latitude``/``longitude``, the third dimension holds
the bands, and per-band ``wavelength``/``fwhm``/``bbl`` coordinates and CF or ENVI-style attributes give
the band information and the reflectance scale, exactly as the tags of a GeoTIFF do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.io.chunks import normalise_chunks
from dcstsf.io.decoding import StoredBands, decode_raster, resolve_decoding, sample_slices
from dcstsf.io.encoding import band_metadata, dataset_tags, encode_reflectance
from dcstsf.io.errors import input_error
from dcstsf.io.metadata import is_integer_dtype, norm_key, norm_tags

__all__ = ["STORE_SUFFIXES", "ZARR_METADATA", "is_zarr", "open_store", "write_store"]

#: File name endings read as NetCDF/HDF5 (through h5netcdf); Zarr stores are recognised by :func:`is_zarr`.
STORE_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5", ".hdf5")
#: The files that make a directory a Zarr store (v3, v2 group, v2 array, consolidated).
ZARR_METADATA = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")
# NetCDF chunks are zlib-compressed at this level when a codec is asked for.
_NETCDF_COMPLEVEL = 4


def is_zarr(path: Path) -> bool:
    """Whether ``path`` is a Zarr store (by its ``.zarr`` suffix or its metadata files)."""
    return path.suffix.lower() == ".zarr" or (path.is_dir() and any((path / m).exists() for m in ZARR_METADATA))


def _zarr_consolidated(p: Path) -> bool:
    """Whether a store has consolidated metadata (asking xarray to guess warns on every open)."""
    if (p / ".zmetadata").is_file():
        return True
    meta = p / "zarr.json"
    if meta.is_file():
        try:
            return json.loads(meta.read_text()).get("consolidated_metadata") is not None
        except (OSError, ValueError):
            return False
    return False


def _raster_variable(ds: xr.Dataset, p: Path, variable: str | None) -> xr.DataArray:
    """The one raster variable of ``ds`` (or the one named)."""
    candidates = [k for k, v in ds.data_vars.items() if v.ndim >= 2]
    if variable is not None:
        if variable not in ds.data_vars:
            raise input_error(p, f"no variable {variable!r}", f"choose one of {list(ds.data_vars)}")
        return ds[variable]
    if len(candidates) == 1:
        return ds[candidates[0]]
    raise input_error(
        p,
        f"holds {len(candidates)} raster variables {candidates}",
        "name it with dcstsf.open_raster(path, variable=...) in Python; the command line reads files with "
        "one raster variable, so save that variable alone (e.g. xarray: ds[name].to_netcdf(...))",
    )


def _band_first(var: xr.DataArray, p: Path, band_dim: str) -> tuple[xr.DataArray, str]:
    """``var`` with dims ``(<band>, y, x)`` (spatial dims renamed to y/x) and the name of its band dim."""
    rename = {}
    for ydim, xdim in (("y", "x"), ("lat", "lon"), ("latitude", "longitude")):
        if ydim in var.dims and xdim in var.dims:
            rename = {ydim: "y", xdim: "x"} if ydim != "y" else {}
            break
    else:
        raise input_error(p, f"variable {var.name!r} has dims {var.dims}, no y/x pair", "name the spatial dims y and x")
    var = var.rename(rename)
    if var.ndim == 2:
        var = var.expand_dims("band")
    others = [d for d in var.dims if d not in ("y", "x")]
    if len(others) != 1:
        raise input_error(p, f"variable {var.name!r} has dims {var.dims}", "give a (band, y, x) cube")
    bdim = band_dim if band_dim in var.dims else others[0]
    return var.transpose(bdim, "y", "x"), bdim


def _coordinate_tags(var: xr.DataArray, bdim: str, n: int) -> tuple[dict[str, Any], list[str | None]]:
    """Band metadata held in coordinates, as tags, and band descriptions from a string band coordinate."""
    coord_tags: dict[str, Any] = {}
    descriptions: list[str | None] = [None] * n
    wl_units: Any = None
    if bdim in var.coords:
        vals = var[bdim].values
        if vals.dtype.kind in "OUST":
            descriptions = [str(v) for v in vals]
        elif vals.dtype.kind == "f" and norm_key(bdim) in ("wavelength", "wavelengths", "lambda"):
            coord_tags["wavelength"] = list(vals)
            wl_units = var[bdim].attrs.get("units")
    for cname, coord in var.coords.items():
        key = norm_key(cname)
        if coord.dims == (bdim,) and key in ("wavelength", "fwhm", "bbl"):
            coord_tags[key] = list(np.asarray(coord.values, dtype=np.float64))
            if key == "wavelength":
                wl_units = coord.attrs.get("units", wl_units)
    if wl_units is not None:
        coord_tags["wavelength_units"] = wl_units
    return coord_tags, descriptions


def open_store(
    path: Path,
    *,
    chunks: Any,
    scale: float | Sequence[float] | None,
    offset: float | Sequence[float] | None,
    nodata: float | None,
    band_dim: str,
    variable: str | None,
) -> xr.DataArray:
    """Open a Zarr store or NetCDF file as float32 reflectance; see :func:`dcstsf.io.open_raster`."""
    engine = "zarr" if is_zarr(path) else "h5netcdf"
    kwargs: dict[str, Any] = {"mask_and_scale": False, "decode_coords": "all", "engine": engine}
    if engine == "zarr":
        kwargs["consolidated"] = _zarr_consolidated(path)
    try:
        ds = xr.open_dataset(path, chunks=None, **kwargs)
    except Exception as exc:  # zarr/h5py raise a zoo of types for a damaged or foreign file
        kind = "Zarr store" if engine == "zarr" else "NetCDF file"
        raise input_error(
            path,
            f"not a readable {kind} ({type(exc).__name__}: {exc})",
            "check the file is complete (re-download or re-export it)",
        ) from exc

    var, bdim = _band_first(_raster_variable(ds, path, variable), path, band_dim)
    n = var.sizes[bdim]
    coord_tags, descriptions = _coordinate_tags(var, bdim, n)
    fill = next((var.attrs[k] for k in ("_FillValue", "missing_value", "nodata") if k in var.attrs), None)
    if fill is None:
        fill = var.encoding.get("_FillValue")
    stored = StoredBands(
        path=path,
        count=n,
        dtype=var.dtype,
        descriptions=descriptions,
        band_tags=[{} for _ in range(n)],
        set_tags=[coord_tags, norm_tags(var.attrs), norm_tags(ds.attrs)],
        nodata=[None if fill is None else float(fill)] * n,
    )
    h, w = var.sizes["y"], var.sizes["x"]

    def sample(idx: list[int]) -> np.ndarray:
        try:
            parts = [var.isel({bdim: idx, "y": ys, "x": xs}).values for ys, xs in sample_slices(h, w)]
        except Exception as exc:  # damaged chunks surface as codec / key errors
            raise _read_failed(path, exc) from exc
        return np.concatenate([a.reshape(len(idx), -1) for a in parts], axis=1)

    dec = resolve_decoding(stored, scale=scale, offset=offset, nodata=nodata, sample=sample)
    try:
        crs = var.rio.crs
        transform = var.rio.transform() if h > 1 and w > 1 else None
        y, x = var["y"].values, var["x"].values
        if chunks is not None:
            block = (min(h, 512), min(w, 512))
            enc_chunks = var.encoding.get("preferred_chunks") or {}
            if enc_chunks:
                block = (int(enc_chunks.get("y", block[0])), int(enc_chunks.get("x", block[1])))
            norm = normalise_chunks(chunks, (n, h, w), block)
            if isinstance(norm, Mapping) and "band" in norm:
                norm = {**{k: v for k, v in norm.items() if k != "band"}, bdim: norm["band"]}
            var = var.chunk(norm)
        raw = var.data  # read here unless chunked
    except DcstsfInputError:
        raise
    except Exception as exc:  # damaged chunks surface as codec / key errors
        raise _read_failed(path, exc) from exc
    return decode_raster(
        raw, dec, y=y, x=x, crs=crs, transform=transform, attrs=[ds.attrs, var.attrs], name=var.name
    )


def _read_failed(p: Path, exc: Exception) -> DcstsfInputError:
    return input_error(p, f"reading the data failed ({type(exc).__name__}: {exc})", "re-download or re-export it")


def write_store(
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
    """Write a prepared ``(band, y, x)`` reflectance DataArray to a Zarr store or NetCDF-4 file ``tmp``.

    ``fmt`` is ``"Zarr"`` or ``"NetCDF"``; the other options are those of :func:`dcstsf.io.write_raster`,
    per band. Integer output records its scale as CF ``scale_factor``/``add_offset`` when one value holds
    for every band, else as ENVI-style ``data_gain_values``/``data_offset_values``. Dask-backed arrays are
    written chunk by chunk.
    """
    meta = band_metadata(da)
    crs = da.rio.crs
    transform = da.rio.transform()
    enc, nd = encode_reflectance(da, dtype=dtype, nodata=nodata, scale=scale, offset=offset, path=tmp)
    name = str(da.name) if da.name is not None else "reflectance"
    coords: dict[str, Any] = {"band": da["band"].values.astype(object), "y": da["y"].values, "x": da["x"].values}
    for key, vals in meta.items():
        coords[key] = ("band", vals, {"units": "nm"} if key != "bbl" else {})
    clean = xr.DataArray(enc.data, dims=("band", "y", "x"), coords=coords, name=name)
    if crs is not None:
        clean = clean.rio.write_crs(crs)
    clean = clean.rio.write_transform(transform)
    ds = clean.to_dataset()
    ds.attrs = dataset_tags(da)
    var_attrs: dict[str, Any] = {}
    if is_integer_dtype(dtype):
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
            encoding[name]["complevel"] = _NETCDF_COMPLEVEL
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding, compute=True)

"""Opening any supported raster as float32 reflectance: :func:`open_raster` picks the reader by path."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import xarray as xr

from dcstsf.io.chunks import normalise_chunks
from dcstsf.io.envi import read_envi
from dcstsf.io.errors import input_error
from dcstsf.io.gdal import open_gdal
from dcstsf.io.stores import STORE_SUFFIXES, is_zarr, open_store

__all__ = ["check_path", "open_raster"]


def check_path(path: Path) -> None:
    """Raise unless ``path`` exists and is a non-empty file or a non-empty directory."""
    if not path.exists():
        raise input_error(path, "file not found", "check the path (and the working directory)")
    if path.is_file() and path.stat().st_size == 0:
        raise input_error(path, "the file is empty (0 bytes)", "re-download or re-export it")
    if path.is_dir() and not any(path.iterdir()):
        raise input_error(path, "the directory is empty, not a Zarr store", "point to a complete .zarr store")


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
        a NetCDF file (``.nc``) or an ENVI header (``.hdr``, read with :func:`dcstsf.io.read_envi`).
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
    check_path(p)
    if p.suffix.lower() == ".hdr":
        da = read_envi(p, scale=scale, offset=offset, nodata=nodata)
        if require_crs and da.rio.crs is None:
            raise input_error(p, "the raster has no CRS", "use a georeferenced file (ENVI 'map info' is not read)")
        if chunks is not None:
            da = da.chunk(normalise_chunks(chunks, da.shape, (da.sizes["y"], da.sizes["x"])))
        da.encoding["source"] = str(p)
        return da
    if is_zarr(p) or p.suffix.lower() in STORE_SUFFIXES:
        da = open_store(
            p, chunks=chunks, scale=scale, offset=offset, nodata=nodata, band_dim=band_dim, variable=variable
        )
    else:
        da = open_gdal(p, chunks=chunks, scale=scale, offset=offset, nodata=nodata)
    if require_crs and da.rio.crs is None:
        raise input_error(
            p,
            "the raster has no CRS (coordinate reference system)",
            "georeference it first: assign a CRS and transform with rioxarray's .rio.write_crs and "
            ".rio.write_transform, and save it with dcstsf.write_raster",
        )
    # The file this array was read from: how errors and the output's provenance name it (a "source" tag
    # in the file's metadata names where the data came from originally, not this file).
    da.encoding["source"] = str(p)
    return da

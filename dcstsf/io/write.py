"""Writing a reflectance DataArray atomically: :func:`write_raster` picks the format and the writer.

The data go to a temporary next to the output (:func:`dcstsf._files.partial_path`) and are renamed into
place only when complete, so the output path never holds a partial result; on any error the temporary is
removed and the error re-raised. :func:`write_geotiff` and :func:`write_store` are looked up here at each
write, so a test can replace one of them to simulate a failing disk.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dcstsf._files import (
    NEARLY_FULL_BYTES,
    DiskFullError,
    disk_full_error,
    free_bytes,
    old_path,
    partial_path,
    remove_path,
    remove_stale_temporaries,
    replace_durably,
    sync_directory,
    sync_path,
)
from dcstsf.io.codecs import gtiff_codec_options
from dcstsf.io.errors import input_error
from dcstsf.io.geotiff import TILE_ALIGN, write_geotiff
from dcstsf.io.metadata import per_band
from dcstsf.io.stores import ZARR_METADATA, write_store

__all__ = ["RASTER_SUFFIXES", "check_output_path", "output_target", "write_raster"]

#: File name endings :func:`write_raster` understands, and the format each one selects.
RASTER_SUFFIXES: dict[str, str] = {
    ".tif": "GTiff",
    ".tiff": "GTiff",
    ".zarr": "Zarr",
    ".nc": "NetCDF",
}
_DRIVERS = {"gtiff": "GTiff", "geotiff": "GTiff", "cog": "COG", "zarr": "Zarr", "netcdf": "NetCDF", "nc": "NetCDF"}
# Suffix of the tiled GeoTIFF a COG is converted from (a temporary beside the output, like the output's).
_COG_SOURCE_SUFFIX = ".gtiff"


def output_target(path: Path) -> Path:
    """The file an output path names: a link's target (replacing the link itself would leave the file it
    points to stale), else the path itself."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _output_format(path: Path, driver: str | None, cog: bool) -> str:
    if driver is not None:
        key = driver.strip().lower()
        if key not in _DRIVERS:
            raise input_error(path, f"unknown driver {driver!r}", f"use one of {sorted(set(_DRIVERS.values()))}")
        fmt = _DRIVERS[key]
    else:
        suffix = path.suffix.lower()
        if suffix not in RASTER_SUFFIXES:
            raise input_error(
                path,
                f"unknown output format for suffix {suffix!r}",
                f"use one of {sorted(RASTER_SUFFIXES)} (or pass driver=)",
            )
        fmt = RASTER_SUFFIXES[suffix]
    if cog:
        if fmt not in ("GTiff", "COG"):
            raise input_error(path, "cog=True only applies to GeoTIFF output", "use a .tif path or drop cog=True")
        fmt = "COG"
    return fmt


def check_output_path(
    path: Path, *, fmt: str, overwrite: bool, inputs: Sequence[str | os.PathLike[str]] = ()
) -> None:
    """Refuse an output path whose writing would destroy something the user has.

    An output that is one of the ``inputs`` (also through a link) is refused even with ``overwrite``: the
    run would replace the data it reads. A GeoTIFF or NetCDF output is one file, so a directory of that
    name is refused, and so is a directory that is not a Zarr store for Zarr output: ``overwrite``
    replaces an earlier output, never a folder of other files.

    Raises
    ------
    DcstsfInputError
        One of the cases above, an existing output without ``overwrite``, or a missing output directory.
    """
    for i, src in enumerate(inputs):
        s = Path(src).expanduser()
        same = s.exists() and path.exists() and os.path.samefile(s, path)
        if same or os.path.realpath(s) == os.path.realpath(path):
            raise input_error(
                path,
                f"the output is also input {i + 1} ({s}); writing it would destroy that input",
                "choose another output path",
            )
    if path.is_dir():
        if fmt != "Zarr":
            raise input_error(
                path,
                f"the output is an existing directory, but a {fmt} output is one file; nothing was deleted",
                "choose another output name",
            )
        if any(path.iterdir()) and not any((path / m).exists() for m in ZARR_METADATA):
            raise input_error(
                path,
                "the output is an existing directory that is not a Zarr store; nothing was deleted",
                "choose another output name, or empty the directory yourself",
            )
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise input_error(
            path,
            "the output already exists",
            "pass overwrite=True (CLI --overwrite) to replace it, or choose another path",
        )
    if not path.parent.exists():
        raise input_error(path, f"the output directory {path.parent} does not exist", "create it first")


def _prepare_for_write(da: xr.DataArray, path: Path) -> xr.DataArray:
    """``da`` as ``(band, y, x)`` with unique string band names and its per-band coordinates loaded."""
    if not isinstance(da, xr.DataArray):
        raise input_error(path, f"write_raster needs an xarray.DataArray, got {type(da).__name__}", "pass a DataArray")
    if da.ndim == 2:
        da = da.expand_dims(band=["band_1"])
    if da.ndim != 3 or "y" not in da.dims or "x" not in da.dims:
        raise input_error(path, f"the array has dims {da.dims}", "give dims (band, y, x)")
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
        raise input_error(path, "band names are not unique", "give every band its own name")
    # .chunk() makes per-band coordinates lazy too; load these few numbers once, up front.
    small = {
        k: ("band", np.asarray(da[k].values))
        for k in ("wavelength", "fwhm", "bbl")
        if k in da.coords and da[k].dims == ("band",)
    }
    return da.assign_coords(band=np.array(names, dtype=object), **small)


def _replace(tmp: Path, p: Path) -> None:
    """Rename the finished temporary ``tmp`` to ``p``, replacing what is there."""
    if p.is_dir() and not p.is_symlink():
        # os.replace cannot replace a non-empty directory: move the old store aside first.
        sync_path(tmp)
        old = old_path(p)
        remove_path(old)
        os.replace(p, old)
        try:
            os.replace(tmp, p)
        except BaseException:
            os.replace(old, p)  # put the old store back: a failed overwrite must not lose it
            raise
        sync_directory(p.parent)
        remove_path(old)
    else:
        replace_durably(tmp, p)


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
    and the error re-raised. Temporaries that killed writers left next to ``path`` are removed first.
    Dask-backed arrays are streamed chunk by chunk (never loaded whole).

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
        ``dtype`` and none for float (:func:`dcstsf.io.gtiff_codec_options`).
    blocksize
        GeoTIFF tile size and Zarr/NetCDF chunk size in pixels (a multiple of 16).
    dtype
        Stored data type, float32 by default. Integer types need ``scale`` (stored = (value - offset) / scale),
        which is recorded as the file's band scales/offsets so :func:`dcstsf.io.open_raster` reads reflectance
        back.
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

    Raises
    ------
    DcstsfInputError
        An existing output without ``overwrite``, a missing output directory, an unknown format, driver or
        codec option, a bad ``blocksize``, an array that is not ``(band, y, x)`` with unique band names,
        or integer ``dtype`` without ``scale``.
    """
    p = output_target(Path(path).expanduser())
    fmt = _output_format(p, driver, cog)
    check_output_path(p, fmt=fmt, overwrite=overwrite)
    if blocksize <= 0 or blocksize % TILE_ALIGN:
        raise input_error(p, f"blocksize={blocksize} is not a positive multiple of 16", "use e.g. 256 or 512")
    da = _prepare_for_write(da, p)
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(np.float32)
    n = da.sizes["band"]
    sc = per_band(scale, n, what="scale", path=p) if scale is not None else None
    of = per_band(offset, n, what="offset", path=p) if offset is not None else None

    tmp = partial_path(p)
    remove_path(tmp)
    remove_stale_temporaries(p)
    progress_ctx: Any = nullcontext()
    if progress and da.chunks is not None:
        from dask.diagnostics import ProgressBar

        # Progress is for the person watching, on stderr: stdout carries only results (e.g. for pipes).
        progress_ctx = ProgressBar(out=sys.stderr)
    try:
        with progress_ctx:
            if fmt in ("GTiff", "COG"):
                codec = gtiff_codec_options(compress, predictor=predictor, dtype=out_dtype, path=p)
                write_geotiff(
                    da,
                    tmp,
                    intermediate=partial_path(p, _COG_SOURCE_SUFFIX) if fmt == "COG" else None,
                    codec=codec,
                    blocksize=blocksize,
                    dtype=out_dtype,
                    nodata=nodata,
                    scale=sc,
                    offset=of,
                    output=p,
                )
            else:
                write_store(
                    da,
                    tmp,
                    fmt=fmt,
                    compress=compress,
                    blocksize=blocksize,
                    dtype=out_dtype,
                    nodata=nodata,
                    scale=sc,
                    offset=of,
                )
        _replace(tmp, p)
    except BaseException as exc:
        remove_path(tmp)
        remove_path(Path(str(tmp) + ".aux.xml"))
        full = _disk_full(p, exc)
        if full is not None:
            raise full from exc
        raise
    return p


def _disk_full(path: Path, exc: BaseException) -> OSError | None:
    """A clear error when ``exc`` happened because the file system of ``path`` is full, else ``None``.

    The store libraries report a full disk in their own words (HDF5: "file write failed ... errno = 28"),
    or as a plain short write.
    """
    if isinstance(exc, DiskFullError):
        return None  # already said
    free = free_bytes(path.parent)
    said = isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space left" in str(exc)
    if said or (free is not None and free < NEARLY_FULL_BYTES and isinstance(exc, (OSError, RuntimeError))):
        return disk_full_error(path.parent, str(path), then="the output was not put in place")
    return None

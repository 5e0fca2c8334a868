"""Writing GeoTIFF and Cloud-Optimised GeoTIFF: the file layout, tags and COG conversion.

The pieces are public so that every GeoTIFF writer makes the same file: :func:`creation_options`
(tiles of :func:`tile_shape`, band interleave, codec), :func:`band_tags` (wavelength/FWHM/bad-band
tags as :func:`dcstsf.io.open_raster` reads them), :func:`gtiff_tags` (dataset tags, band tags and the
band scales/offsets of integer output, in rioxarray's ``tags=`` form), :func:`stored_scales_offsets`
and :func:`convert_to_cog`. :func:`write_geotiff` writes a whole DataArray with them.
"""

from __future__ import annotations

import errno
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from dcstsf._files import NEARLY_FULL_BYTES, disk_full_error, free_bytes, remove_path
from dcstsf.errors import DcstsfInputError
from dcstsf.io.codecs import cog_codec_options
from dcstsf.io.encoding import band_metadata, dataset_tags, encode_reflectance
from dcstsf.io.metadata import is_integer_dtype

__all__ = [
    "TILE_ALIGN",
    "WAVELENGTH_UNITS",
    "band_tags",
    "cog_options",
    "convert_to_cog",
    "creation_options",
    "verify_geotiff",
    "write_failed",
    "gtiff_tags",
    "stored_scales_offsets",
    "tile_shape",
    "write_geotiff",
]

#: GeoTIFF tile sides are multiples of this many pixels (a TIFF requirement).
TILE_ALIGN = 16
#: The wavelength unit written in band tags (GDAL's ENVI spelling, which readers recognise).
WAVELENGTH_UNITS = "Nanometers"


def tile_shape(height: int, width: int, *, blocksize: int) -> tuple[int, int]:
    """``(rows, columns)`` of the tiles: ``blocksize``, or the image side rounded up to 16 when smaller."""
    bx = min(blocksize, max(TILE_ALIGN, math.ceil(width / TILE_ALIGN) * TILE_ALIGN))
    by = min(blocksize, max(TILE_ALIGN, math.ceil(height / TILE_ALIGN) * TILE_ALIGN))
    return by, bx


def creation_options(height: int, width: int, *, blocksize: int, codec: Mapping[str, Any]) -> dict[str, Any]:
    """GDAL GTiff creation options: tiled, band-interleaved, the codec of :func:`dcstsf.io.gtiff_codec_options`.

    Band-interleaved, like the HS products themselves (EnMAP L2A, AHSI): a window of a pixel-interleaved
    cube decodes every band of every block it meets, and a reader that wants a few bands pays for all.
    """
    by, bx = tile_shape(height, width, blocksize=blocksize)
    return {
        "tiled": True, "blockxsize": bx, "blockysize": by, "interleave": "band",
        # BigTIFF only when the file may pass 4 GiB: a compressed file's final size is unknown when it starts.
        "bigtiff": "IF_SAFER", "num_threads": "ALL_CPUS", **codec,
    }


def band_tags(metadata: Mapping[str, np.ndarray], count: int) -> list[dict[str, str]]:
    """Per-band tags from per-band ``wavelength``/``fwhm`` (nm) and ``bbl`` arrays (those present).

    Numbers are written with ``repr`` so they read back exactly.
    """
    out = []
    for i in range(count):
        tags_i: dict[str, str] = {}
        if "wavelength" in metadata:
            tags_i["wavelength"] = repr(float(metadata["wavelength"][i]))
            tags_i["wavelength_units"] = WAVELENGTH_UNITS
        if "fwhm" in metadata:
            tags_i["fwhm"] = repr(float(metadata["fwhm"][i]))
        if "bbl" in metadata:
            tags_i["bbl"] = str(int(metadata["bbl"][i]))
        out.append(tags_i)
    return out


def stored_scales_offsets(
    *, dtype: np.dtype, scale: np.ndarray | None, offset: np.ndarray | None, count: int
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The GDAL band scales and offsets recorded with integer output (None for float output).

    Integer output needs ``scale`` (see :func:`dcstsf.io.encoding.encode_reflectance`); a missing
    ``offset`` is 0.
    """
    if not is_integer_dtype(dtype):
        return None
    assert scale is not None
    offsets = offset if offset is not None else np.zeros(count)
    return tuple(float(s) for s in scale), tuple(float(o) for o in offsets)


def gtiff_tags(
    da: xr.DataArray, *, dtype: np.dtype, scale: np.ndarray | None, offset: np.ndarray | None
) -> dict[str, Any]:
    """All tags of a GeoTIFF of ``da`` in rioxarray's ``to_raster(tags=...)`` form.

    Dataset tags from ``da.attrs`` (:func:`dcstsf.io.encoding.dataset_tags`), ``band_tags`` from its
    per-band coordinates (:func:`band_tags`) and, for integer output, ``scales``/``offsets``.
    """
    count = da.sizes["band"]
    tags: dict[str, Any] = {**dataset_tags(da), "band_tags": band_tags(band_metadata(da), count)}
    recorded = stored_scales_offsets(dtype=dtype, scale=scale, offset=offset, count=count)
    if recorded is not None:
        tags["scales"], tags["offsets"] = recorded
    return tags


def cog_options(*, blocksize: int, codec: Mapping[str, Any]) -> dict[str, Any]:
    """GDAL COG driver options: ``blocksize`` tiles, averaged overviews, the same codec as the GeoTIFF."""
    return {
        "blocksize": blocksize,
        "overview_resampling": "average",
        "resampling": "average",
        "bigtiff": "IF_SAFER",
        **cog_codec_options(dict(codec)),
    }


def convert_to_cog(source: Path, target: Path, *, blocksize: int, codec: Mapping[str, Any], output: Path) -> None:
    """Copy the tiled GeoTIFF ``source`` to a Cloud-Optimised GeoTIFF ``target`` (with overviews).

    Both files are checked with :func:`verify_geotiff`; ``output`` is the final path errors name.
    """
    import rasterio.errors
    import rasterio.shutil

    verify_geotiff(source, output=output)
    try:
        rasterio.shutil.copy(source, target, driver="COG", **cog_options(blocksize=blocksize, codec=codec))
    except rasterio.errors.RasterioError as exc:
        raise write_failed(output, target, str(exc)) from exc
    verify_geotiff(target, output=output)


def write_failed(output: Path, written: Path, detail: str) -> OSError:
    """The error of a GeoTIFF that was not completely stored, saying whether the disk is full."""
    free = free_bytes(written)
    if free is not None and free < NEARLY_FULL_BYTES:
        return disk_full_error(written, str(output), then="the output was not put in place")
    return OSError(
        errno.EIO,
        f"writing {output} failed: GDAL did not store the whole file ({detail}); the disk may be full, a "
        "file-size limit reached or the device failing. The output was not put in place",
    )


def verify_geotiff(path: Path, *, output: Path) -> None:
    """Check that the GeoTIFF ``path`` was stored completely: its directory reads and every block of every
    band has data inside the file.

    GDAL reports a write that fails while it flushes its block cache (a full disk, a file-size limit) on
    the standard error stream only, after every write call has returned; the file is then missing its
    directory or some blocks. Reading the block table costs a small part of writing the file.

    Raises
    ------
    OSError
        The file is incomplete (``errno.ENOSPC`` when its file system is full); ``output`` names the
        final output in the message.
    """
    import rasterio
    import rasterio.errors

    try:
        size = path.stat().st_size
        with rasterio.open(path) as ds:
            by, bx = ds.block_shapes[0]
            rows, cols = -(-ds.height // by), -(-ds.width // bx)
            for band in range(1, ds.count + 1):
                for i in range(rows):
                    for j in range(cols):
                        offset = ds.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=band)
                        nbytes = ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=band)
                        if not offset or not nbytes or int(offset) + int(nbytes) > size or int(nbytes) == 0:
                            raise write_failed(output, path, f"block ({i}, {j}) of band {band} is missing")
    except (OSError, rasterio.errors.RasterioError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EIO):
            raise
        raise write_failed(output, path, str(exc)) from exc


def write_geotiff(
    da: xr.DataArray,
    path: Path,
    *,
    intermediate: Path | None,
    codec: dict[str, Any],
    blocksize: int,
    dtype: np.dtype,
    nodata: float,
    scale: np.ndarray | None,
    offset: np.ndarray | None,
    output: Path | None = None,
) -> None:
    """Write a prepared ``(band, y, x)`` reflectance DataArray to the GeoTIFF ``path``.

    ``output`` is the final path that error messages name (``path`` is usually its temporary).

    With ``intermediate`` the data go there as a tiled GeoTIFF first and ``path`` becomes a COG of it
    (:func:`convert_to_cog`); the intermediate file is removed whatever happens. Band names become band
    descriptions; the other options are those of :func:`dcstsf.io.write_raster`, per band. A Dask-backed
    array is written chunk by chunk, its chunks aligned with the tiles so every tile is written once.
    """
    import rasterio

    names = [str(v) for v in da["band"].values]
    crs = da.rio.crs
    transform = da.rio.transform()
    enc, nd = encode_reflectance(da, dtype=dtype, nodata=nodata, scale=scale, offset=offset, path=path)
    profile = creation_options(da.sizes["y"], da.sizes["x"], blocksize=blocksize, codec=codec)
    by, bx = profile["blockysize"], profile["blockxsize"]
    clean = xr.DataArray(enc.data, dims=("band", "y", "x"), coords={"y": da["y"].values, "x": da["x"].values})
    if crs is not None:
        clean = clean.rio.write_crs(crs)
    clean = clean.rio.write_transform(transform)
    clean.attrs["long_name"] = tuple(names)
    clean.rio.write_nodata(nd, encoded=False, inplace=True)
    tags = gtiff_tags(da, dtype=dtype, scale=scale, offset=offset)
    target = path if intermediate is None else intermediate
    try:
        if clean.chunks is not None:
            ych = max(1, round(max(clean.chunks[1]) / by)) * by
            xch = max(1, round(max(clean.chunks[2]) / bx)) * bx
            clean = clean.chunk({"band": -1, "y": ych, "x": xch})
            clean.rio.to_raster(target, driver="GTiff", dtype=dtype.name, tags=tags, lock=threading.Lock(), **profile)
        else:
            clean.rio.to_raster(target, driver="GTiff", dtype=dtype.name, tags=tags, windowed=True, **profile)
        if intermediate is not None:
            convert_to_cog(intermediate, path, blocksize=blocksize, codec=codec, output=output or path)
        else:
            verify_geotiff(path, output=output or path)
    finally:
        if intermediate is not None:
            remove_path(intermediate)
            remove_path(Path(str(intermediate) + ".aux.xml"))
    with rasterio.open(path) as check:
        if check.count != len(names):
            raise DcstsfInputError(f"{path}: wrote {check.count} bands instead of {len(names)}")

"""Reading GeoTIFF/COG and any other raster GDAL opens (through rasterio), eagerly or as Dask arrays."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.io.chunks import normalise_chunks
from dcstsf.io.decoding import StoredBands, decode_raster, resolve_decoding, sample_slices
from dcstsf.io.errors import input_error
from dcstsf.io.metadata import norm_tags

__all__ = ["open_gdal"]

# ENVI-domain items worth keeping in ``attrs``; the rest of that domain describes the file layout.
_KEPT_ENVI_ITEMS = ("description", "sensor_type", "acquisition_time")


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
            raise input_error(
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


def open_gdal(
    path: Path,
    *,
    chunks: Any,
    scale: float | Sequence[float] | None,
    offset: float | Sequence[float] | None,
    nodata: float | None,
) -> xr.DataArray:
    """Open a raster GDAL reads as float32 reflectance; see :func:`dcstsf.io.open_raster` for the options.

    The metadata, a pixel at each end (a truncated file often opens fine and fails on its last block)
    and, for float data without scale information, a sample of values are read here; the pixels are read
    now (``chunks=None``) or tile by tile through Dask.
    """
    import rasterio
    import rasterio.errors
    from rasterio.windows import Window

    try:
        with rasterio.open(path) as src:
            n, h, w = src.count, src.height, src.width
            if n == 0 or h == 0 or w == 0:
                raise input_error(path, f"the raster has no pixels ({n} bands, {h} x {w})", "check the file")
            ds_tags = norm_tags(src.tags())
            envi_tags = norm_tags(src.tags(ns="ENVI")) if "ENVI" in (src.tag_namespaces() or []) else {}
            band_tags = [norm_tags(src.tags(i + 1)) for i in range(n)]
            raw_dtype = np.dtype(src.dtypes[0])
            crs = src.crs
            block = src.block_shapes[0]
            # GDAL's ENVI driver repeats band labels as "Band_<i>" tags and puts the file layout (samples,
            # interleave, ...) in the ENVI domain: keep only the descriptive items.
            raw_attrs = {k: v for k, v in src.tags().items() if not re.fullmatch(r"band_\d+", k, re.IGNORECASE)}
            raw_attrs.update({k: v for k, v in envi_tags.items() if k in _KEPT_ENVI_ITEMS})
            # A truncated file often opens fine (the header is intact) and fails on the last block.
            src.read(n, window=Window(w - 1, h - 1, 1, 1))
            src.read(1, window=Window(0, 0, 1, 1))
            stored = StoredBands(
                path=path,
                count=n,
                dtype=raw_dtype,
                descriptions=list(src.descriptions),
                band_tags=band_tags,
                set_tags=[envi_tags, ds_tags],
                scales=list(src.scales),
                offsets=list(src.offsets),
                nodata=list(src.nodatavals),
            )

            def sample(idx: list[int]) -> np.ndarray:
                bands = [i + 1 for i in idx]
                if src.overviews(1):
                    # The smallest overview is the cheapest complete look at the image.
                    ov = src.overviews(1)[-1]
                    return src.read(bands, out_shape=(len(bands), max(1, h // ov), max(1, w // ov)))
                parts = [src.read(bands, window=Window.from_slices(ys, xs)) for ys, xs in sample_slices(h, w)]
                return np.concatenate([a.reshape(len(bands), -1) for a in parts], axis=1)

            dec = resolve_decoding(stored, scale=scale, offset=offset, nodata=nodata, sample=sample)
    except DcstsfInputError:
        raise
    except (rasterio.errors.RasterioError, OSError, ValueError) as exc:
        raise input_error(
            path,
            f"not a readable raster or the file is truncated/corrupt ({type(exc).__name__}: {exc})",
            "check that it is a complete GeoTIFF/COG (re-download or re-export it), or give a .zarr/.nc path",
        ) from exc

    try:
        # Without chunks rioxarray only reads the coordinates here; the pixels come from _GdalPixels.
        raw = rioxarray.open_rasterio(path, masked=False, mask_and_scale=False)
    except Exception as exc:  # rioxarray wraps GDAL errors in several exception types
        problem = f"cannot be opened as a raster ({type(exc).__name__}: {exc})"
        raise input_error(path, problem, "check the file") from exc
    if isinstance(raw, list):
        raise input_error(path, "the file holds several subdatasets", "open one subdataset (e.g. NETCDF:file.nc:var)")
    pixels = _GdalPixels(path, (n, h, w), raw_dtype)
    if chunks is None:
        try:
            data: Any = pixels[:, :, :]
        finally:
            pixels.close()
    else:
        import dask.array as dsa
        from dask.base import tokenize

        norm = normalise_chunks(chunks, (n, h, w), (int(block[0]), int(block[1])))
        if isinstance(norm, Mapping):
            axes = {"band": 0, "y": 1, "x": 2}
            norm = tuple(norm.get(k, -1) for k in axes)
        st = path.stat()
        name = f"dcstsf-read-{tokenize(str(path.resolve()), st.st_size, st.st_mtime_ns, norm)}"
        data = dsa.from_array(pixels, chunks=norm, name=name, meta=np.empty((0, 0, 0), dtype=raw_dtype))
    return decode_raster(
        data,
        dec,
        y=raw["y"].values,
        x=raw["x"].values,
        crs=crs,
        transform=raw.rio.transform(),
        attrs=[raw_attrs],
        name=None,
    )

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

Modules: conventions -- :mod:`~dcstsf.io.metadata` (tags, band information), :mod:`~dcstsf.io.decoding`
(stored values -> reflectance, the one path of every reader), :mod:`~dcstsf.io.encoding` (reflectance ->
stored values), :mod:`~dcstsf.io.codecs` (GeoTIFF compression); readers -- :mod:`~dcstsf.io.read`
(:func:`open_raster`), :mod:`~dcstsf.io.gdal`, :mod:`~dcstsf.io.stores` (Zarr/NetCDF, both ways),
:mod:`~dcstsf.io.envi`; writers -- :mod:`~dcstsf.io.write` (:func:`write_raster`),
:mod:`~dcstsf.io.geotiff`. Atomic temporaries follow :mod:`dcstsf._files`.
"""

from __future__ import annotations

from dcstsf._files import remove_stale_temporaries
from dcstsf.io.codecs import PREDICTORS, cog_codec_options, gtiff_codec_options
from dcstsf.io.envi import parse_envi_header, read_envi
from dcstsf.io.read import open_raster
from dcstsf.io.write import RASTER_SUFFIXES, check_output_path, output_target, write_raster

__all__ = [
    "PREDICTORS",
    "RASTER_SUFFIXES",
    "check_output_path",
    "cog_codec_options",
    "gtiff_codec_options",
    "open_raster",
    "output_target",
    "parse_envi_header",
    "read_envi",
    "remove_stale_temporaries",
    "write_raster",
]

"""Bringing an input onto a prepared grid: a window when it already lies on it, else a lazy reprojection.

Resampling methods, and why:

* **HS onto the coarse grid: pixel-area average** (:data:`HS_DOWNSAMPLING`) when the HS pixels are no larger
  than the coarse pixels. Each coarse pixel is the mean of the HS pixels it covers, weighted by the area
  they share (GDAL's ``average``): what a sensor with that pixel integrates, so an HS product resampled by
  its user to 15 m comes back to the block means of 30 m pixels, and a grid shifted by a fraction of a
  pixel mixes neighbours by the area each contributes. Interpolating kernels (bilinear, cubic) would
  instead sample the HS at points and alias the detail of finer pixels. HS pixels larger than the coarse
  pixels (an unusual product) are interpolated bilinearly (:data:`HS_UPSAMPLING`): averaging would copy
  each source pixel onto a block.
* **MS(t2) onto MS(t1)'s grid: bilinear** (:data:`MS_RESAMPLING`), only when MS(t2) lies on another grid (a
  tile of another UTM zone; tiles of one zone share the 10 m lattice and are cut, not resampled). The two
  grids have the same pixel size, so there is nothing to average; bilinear shifts nothing and stays within
  the range of the neighbours (cubic kernels overshoot at edges), as in :func:`dcstsf.engine.grids.reproject`.

Nodata never leaks: a target pixel to which a source pixel without data (NaN in every band: a masked
cloud, outside the swath) contributes with any weight is NaN itself, so cloud edges are not averaged into
clear pixels. The reprojection is odc-geo's (GDAL's warper through rasterio, one task per chunk: lazy).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords, xr_reproject

from dcstsf.preparation.grid import same_lattice

__all__ = ["HS_DOWNSAMPLING", "HS_UPSAMPLING", "MS_RESAMPLING", "hs_resampling", "onto_grid"]

#: Resampling of the HS cube onto the coarse grid when its pixels are no larger than the coarse pixels.
HS_DOWNSAMPLING = "average"
#: Resampling of the HS cube onto the coarse grid when its pixels are larger.
HS_UPSAMPLING = "bilinear"
#: Resampling of MS(t2) onto MS(t1)'s grid when the two grids differ.
MS_RESAMPLING = "bilinear"
# A target pixel keeps its value only when this fraction of its source weight comes from pixels with data.
_FULL = 1.0 - 1e-6


def hs_resampling(src: GeoBox, dst: GeoBox) -> str:
    """:data:`HS_DOWNSAMPLING` unless ``src``'s pixels are larger than ``dst``'s (area, same units)."""
    src_area = abs(src.affine.determinant)
    if src.crs != dst.crs:
        # The source pixel's area in the target CRS: the reprojected extent over the pixel count.
        ext = src.extent.to_crs(dst.crs)
        src_area = ext.area / (src.shape[0] * src.shape[1])
    return HS_DOWNSAMPLING if src_area <= abs(dst.affine.determinant) * (1 + 1e-6) else HS_UPSAMPLING


def _on_box(da: xr.DataArray, box: GeoBox) -> xr.DataArray:
    """``da`` with the exact coordinates, CRS and transform of ``box`` (its shape already ``box``'s)."""
    coords = xr_coords(box)
    out = da.assign_coords(y=np.asarray(coords["y"].values, np.float64), x=np.asarray(coords["x"].values, np.float64))
    out = out.drop_vars([c for c in out.coords if c == "spatial_ref"])
    out = out.rio.write_crs(box.crs.to_wkt()).rio.write_transform(box.affine)
    out.rio.write_nodata(np.nan, encoded=False, inplace=True)
    return out


def onto_grid(da: xr.DataArray, src: GeoBox, dst: GeoBox, *, resampling: str) -> tuple[xr.DataArray, str | None]:
    """``da`` (``(band, y, x)`` on ``src``) on ``dst``, lazily, and the resampling used (None for a window).

    When ``dst``'s pixels are ``src``'s pixels (same CRS and pixel size, corners on corners), ``da`` is cut
    to ``dst``'s window and nothing is resampled; otherwise it is reprojected with ``resampling`` and a target
    pixel is NaN wherever a source pixel without data contributes to it. Band coordinates and ``attrs``
    are kept.
    """
    at = same_lattice(dst, src)
    if at is not None:
        row, col = at
        h, w = dst.shape
        if row >= 0 and col >= 0 and row + h <= src.shape[0] and col + w <= src.shape[1]:
            cut = da.isel(y=slice(row, row + h), x=slice(col, col + w))
            return _on_box(cut, dst), None
    source = _on_box(da, src)
    out = xr_reproject(source, dst, resampling=resampling, dst_nodata=np.nan).astype(np.float32)
    # Where the source has no data: a 0/1 layer resampled alike gives each target pixel's share of weight
    # that comes from pixels with data; anything short of all of it is nodata.
    valid = source.notnull().any("band").astype(np.float32)
    share = xr_reproject(valid, dst, resampling=resampling, dst_nodata=np.nan)
    out = out.where(share.data[None] >= _FULL)
    out = _on_box(out.transpose("band", "y", "x"), dst)
    # Variables, not DataArrays: a coordinate DataArray carries the source's scalar coordinates, spatial_ref
    # (its CRS and transform) among them, which would replace the target grid's.
    band_coords = {k: v.variable for k, v in da.coords.items() if v.dims == ("band",)}
    out = out.assign_coords(band_coords)
    out.attrs = dict(da.attrs)
    out.encoding.update({k: v for k, v in da.encoding.items() if k == "source"})
    return out.astype(np.float32), resampling

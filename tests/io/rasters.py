"""Small rasters for the io tests: GeoTIFFs written with rasterio directly, and a reflectance cube."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import xarray as xr
from rasterio.transform import from_origin

__all__ = ["CRS", "TRANSFORM", "WAVELENGTHS", "assert_same_raster", "make_tif", "reflectance_cube"]

CRS = "EPSG:32633"
TRANSFORM = from_origin(366975.0, 5808045.0, 30.0, 30.0)
WAVELENGTHS = np.array([450.0, 550.0, 650.0, 850.0])


def make_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = CRS,
    transform: Any = TRANSFORM,
    scales: list[float] | None = None,
    offsets: list[float] | None = None,
    nodata: float | None = None,
    band_tags: list[dict[str, Any]] | None = None,
    tags: dict[str, Any] | None = None,
    descriptions: list[str] | None = None,
) -> Path:
    """A small GeoTIFF written directly with rasterio (independent of write_raster)."""
    n, h, w = data.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": n,
        "dtype": data.dtype.name,
        "transform": transform,
    }
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if scales is not None:
            dst.scales = scales
        if offsets is not None:
            dst.offsets = offsets
        if tags:
            dst.update_tags(**tags)
        for i, bt in enumerate(band_tags or []):
            dst.update_tags(i + 1, **bt)
        for i, d in enumerate(descriptions or []):
            dst.set_band_description(i + 1, d)
    return path


def reflectance_cube(n: int = 4, h: int = 20, w: int = 24, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    data = rng.uniform(0.0, 0.6, size=(n, h, w)).astype(np.float32)
    data[0, 0, 0] = np.nan
    da = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": np.array([f"B{i + 2:02d}" for i in range(n)], dtype=object),
            "wavelength": ("band", WAVELENGTHS[:n]),
            "fwhm": ("band", np.full(n, 20.0)),
            "bbl": ("band", np.ones(n, dtype=np.int8)),
            "y": TRANSFORM.f - 30.0 * (np.arange(h) + 0.5),
            "x": TRANSFORM.c + 30.0 * (np.arange(w) + 0.5),
        },
        attrs={"method": "unit-test", "dcstsf_version": "0.1.0"},
    )
    return da.rio.write_crs(CRS).rio.write_transform(TRANSFORM)


def assert_same_raster(a: xr.DataArray, b: xr.DataArray, *, atol: float = 0.0) -> None:
    assert a.dims == ("band", "y", "x") and a.dtype == np.float32
    np.testing.assert_allclose(a.values, b.values, atol=atol, equal_nan=True)
    assert list(a["band"].values) == list(b["band"].values)
    np.testing.assert_allclose(a["wavelength"].values, b["wavelength"].values)
    np.testing.assert_allclose(a["fwhm"].values, b["fwhm"].values)
    assert a.rio.crs == b.rio.crs
    assert a.rio.transform().almost_equals(b.rio.transform())

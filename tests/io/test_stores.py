"""Zarr stores and NetCDF files: lazy reads and foreign CF-encoded files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dcstsf.io import open_raster, write_raster
from tests.io.rasters import assert_same_raster, reflectance_cube


def test_netcdf_and_zarr_lazy_open(tmp_path: Path) -> None:
    da = reflectance_cube(h=40, w=40)
    for suffix in (".zarr", ".nc"):
        out = write_raster(da, tmp_path / f"l{suffix}", blocksize=16)
        lazy = open_raster(out, chunks=16)
        assert lazy.chunks is not None
        assert_same_raster(lazy.compute(), da)


def test_foreign_netcdf_with_cf_scale(tmp_path: Path) -> None:
    dn = np.full((2, 3, 3), 1500, dtype=np.int16)
    ds = xr.Dataset(
        {"refl": (("wavelength", "y", "x"), dn, {"scale_factor": 1e-4, "add_offset": 0.0, "_FillValue": -1})},
        coords={
            "wavelength": ("wavelength", [0.45, 0.55], {"units": "micrometers"}),
            "y": [2.5, 1.5, 0.5],
            "x": [0.5, 1.5, 2.5],
        },
    )
    p = tmp_path / "cf.nc"
    ds.to_netcdf(p, engine="h5netcdf")
    da = open_raster(p, band_dim="wavelength")
    np.testing.assert_allclose(da.values, 0.15, rtol=1e-6)
    np.testing.assert_allclose(da["wavelength"].values, [450.0, 550.0])


def test_several_raster_variables_name_the_way_to_choose_one(tmp_path: Path) -> None:
    import xarray as xr

    from dcstsf.errors import DcstsfInputError
    from dcstsf.io import open_raster

    cube = np.zeros((2, 4, 5), np.float32)
    ds = xr.Dataset({name: (("band", "y", "x"), cube) for name in ("a", "b")})
    path = tmp_path / "two.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(DcstsfInputError) as info:
        open_raster(path)
    msg = str(info.value)
    assert "2 raster variables" in msg and "variable=" in msg and "--variable" not in msg
    assert open_raster(path, variable="b").shape == (2, 4, 5)

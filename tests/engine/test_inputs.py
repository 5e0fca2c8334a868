"""Input validation: grid, CRS and band errors that name the problem, cropping, pixel grids, reprojection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xarray as xr

from dcstsf.engine import fuse, validate_inputs
from dcstsf.errors import DcstsfInputError
from dcstsf.methods import fuse_arrays
from tests.engine.cases import HS_SENSOR, MS_BANDS, N_HS, X0, Y0, engine_model


def _shift(da: xr.DataArray, dx: float = 0.0, dy: float = 0.0) -> xr.DataArray:
    out = da.assign_coords(x=da["x"] + dx, y=da["y"] + dy)
    return out.rio.write_transform(out.rio.transform(recalc=True))


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda c: (c.hs_t1.rio.write_crs("EPSG:32650"), c.ms_t1, c.ms_t2), ["different CRS", "reproject"]),
        (lambda c: (c.hs_t1.drop_vars("spatial_ref"), c.ms_t1, c.ms_t2), ["no CRS", "write_crs"]),
        (lambda c: (_shift(c.hs_t1, dx=5.0), c.ms_t1, c.ms_t2), ["corners do not coincide", "0.5"]),
        (lambda c: (c.hs_t1, c.ms_t1, _shift(c.ms_t2, dy=10.0)), ["different grids", "MS(t2)"]),
        (lambda c: (c.hs_t1, c.ms_t1, c.ms_t2.isel(x=slice(0, 100))), ["MS(t2)", "share one grid", "100"]),
        (lambda c: (c.hs_t1.isel(band=slice(0, 20)), c.ms_t1, c.ms_t2), ["20 bands", "24"]),
        (lambda c: (c.hs_t1, c.ms_t1.isel(band=slice(0, 5)), c.ms_t2), ["5 bands", "6"]),
        (lambda c: (c.ms_t1, c.hs_t1, c.ms_t2), ["HS(t1) has 6 bands", "MS(t1) has 24", "out of order",
                                                 "HS_T1 MS_T1 MS_T2"]),
        (lambda c: (c.ms_t1, c.ms_t2, c.hs_t1), ["MS(t2) has 24", "out of order"]),
    ],
)
def test_grid_and_band_errors_are_clear(case: Any, mutate: Any, words: list[str]) -> None:
    hs, ms1, ms2 = mutate(case)
    with pytest.raises(DcstsfInputError) as info:
        validate_inputs(hs, ms1, ms2, hs_sensor=HS_SENSOR)
    for w in words:
        assert w in str(info.value), str(info.value)


def test_non_integer_ratio_is_an_error(case: Any) -> None:
    hs = case.hs_t1
    x = X0 + 25.0 * (np.arange(hs.sizes["x"]) + 0.5)
    y = Y0 - 25.0 * (np.arange(hs.sizes["y"]) + 0.5)
    hs = hs.assign_coords(x=x, y=y)
    hs = hs.rio.write_transform(hs.rio.transform(recalc=True))
    with pytest.raises(DcstsfInputError, match=r"25 x 25 and MS pixel size 10 x 10 give a ratio of 2.5"):
        validate_inputs(hs, case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)


def test_larger_ms_scene_is_cropped_to_the_hs_footprint(case: Any) -> None:
    hs = case.hs_t1.isel(y=slice(2, 20), x=slice(3, 30))  # HS covers a part of the MS grid
    out = fuse(hs, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21)
    assert out.shape == (N_HS, 54, 81)
    np.testing.assert_array_equal(out["x"].values, case.ms_t1["x"].values[9:90])
    assert out.rio.transform().c == pytest.approx(X0 + 90.0)
    assert "MS cropped" in out.attrs["processing"]
    ms = case.ms_t1.isel(y=slice(6, 60), x=slice(9, 90))
    ref = fuse_arrays(hs.values, ms.values, case.ms_t2.values[:, 6:60, 9:90], method="bicubic", model=engine_model())
    np.testing.assert_allclose(out.values, ref, atol=1e-4)


def test_hs_pixels_outside_the_ms_grid_are_dropped_with_a_warning(case: Any) -> None:
    ms1, ms2 = (a.isel(y=slice(0, 61), x=slice(3, 111)) for a in (case.ms_t1, case.ms_t2))
    with pytest.warns(UserWarning, match="outside the MS grid"):
        out = fuse(case.hs_t1, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21)
    assert out.shape == (N_HS, 60, 108)  # whole HS pixels only: row 60 of the MS is dropped too
    ref = fuse_arrays(case.hs_t1.values[:, :20, 1:], ms1.values[:, :60], ms2.values[:, :60], method="bicubic",
                      model=engine_model())
    np.testing.assert_allclose(out.values, ref, atol=1e-4)


def test_pixel_grids_without_coordinates(case: Any) -> None:
    hs, ms1, ms2 = (xr.DataArray(a, dims=("band", "y", "x")) for a in case.arrays())
    ms1 = ms1.assign_coords(band=MS_BANDS)
    out = fuse(hs, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR, chunk=33)
    assert out.shape == (N_HS, 90, 111) and "x" not in out.coords
    np.testing.assert_allclose(
        out.values, fuse_arrays(*case.arrays(), method="bicubic", model=engine_model()), atol=1e-4
    )


def test_align_reproject_resamples_misaligned_inputs(case: Any) -> None:
    ms2 = _shift(case.ms_t2, dx=5.0)
    with pytest.raises(DcstsfInputError, match="reproject"):
        fuse(case.hs_t1, case.ms_t1, ms2, method="bicubic", hs_sensor=HS_SENSOR)
    out = fuse(case.hs_t1, case.ms_t1, ms2, method="bicubic", hs_sensor=HS_SENSOR, align="reproject", chunk=33)
    assert out.rio.transform() == case.ms_t1.rio.transform()
    assert "MS(t2) reprojected" in out.attrs["processing"]
    hs = _shift(case.hs_t1, dx=12.0)
    out = fuse(hs, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, align="reproject", chunk=33)
    assert "HS(t1) reprojected" in out.attrs["processing"] and out.rio.transform() == case.ms_t1.rio.transform()
    assert np.isfinite(out.values[:, :, 3:-3]).all()


def test_errors_name_the_array_passed_not_a_source_tag(case: Any, tmp_path: Any) -> None:
    """A ``source`` attribute is metadata about where the data came from; errors name what was passed."""
    from dcstsf.io import open_raster, write_raster

    hs = case.hs_t1.assign_attrs(source="/archive/original_scene.tif").rio.write_crs("EPSG:32650")
    with pytest.raises(DcstsfInputError) as info:
        validate_inputs(hs, case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)
    assert "original_scene" not in str(info.value) and "HS(t1)" in str(info.value)
    # An array read from a file is named by that file.
    path = write_raster(hs, tmp_path / "hs_read.tif")
    with pytest.raises(DcstsfInputError) as info:
        validate_inputs(open_raster(path), case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)
    assert "hs_read.tif" in str(info.value) and "original_scene" not in str(info.value)


def test_integer_arrays_are_refused_with_the_way_to_scale_them(case: Any) -> None:
    dn = (case.ms_t1 / 1e-4).round().astype(np.uint16)
    with pytest.raises(DcstsfInputError, match=r"MS\(t1\) holds uint16 values; the engine expects float reflectance"):
        validate_inputs(case.hs_t1, dn, case.ms_t2)
    # as rioxarray.open_rasterio leaves a scaled file by default: the scale in attrs, the values not scaled
    with pytest.raises(DcstsfInputError, match=r"mask_and_scale=True\) does with the scale_factor 0.0001"):
        validate_inputs(case.hs_t1, dn.assign_attrs(scale_factor=1e-4), case.ms_t2)

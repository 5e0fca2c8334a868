"""Decoding refuses a scale for float files that already hold reflectance, and names the right fix for others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from tests.io.rasters import make_tif


def _reflectance(nb: int = 4, ny: int = 96, nx: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.01, 0.6, size=(nb, ny, nx)).astype(np.float32)


@pytest.mark.parametrize("overviews", [False, True])
def test_scale_for_float_reflectance_is_an_error(tmp_path: Path, overviews: bool) -> None:
    """``--scale 0.0001 --offset -0.1`` on float reflectance turned every pixel into about -0.1."""
    path = make_tif(tmp_path / "refl.tif", _reflectance())
    if overviews:  # the sample then comes from the smallest overview
        with rasterio.open(path, "r+") as dst:
            dst.build_overviews([2, 4], Resampling.nearest)
    with pytest.raises(DcstsfInputError) as exc:
        open_raster(path, scale=1e-4, offset=-0.1)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: ") and "already look like reflectance" in msg
    assert "a scale of 0.0001 and an offset of -0.1" in msg and "Drop the option" in msg
    assert "--scale/--hs-scale/--ms-scale" in msg and "hs_scale=" in msg
    with pytest.raises(DcstsfInputError, match="already look like reflectance"):
        open_raster(path, scale=1e-4, chunks=32)


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".nc"])
def test_every_reader_refuses_a_scale_for_float_reflectance(tmp_path: Path, suffix: str) -> None:
    from dcstsf.io import write_raster
    from tests.scenes import synthetic_scene

    path = write_raster(synthetic_scene(ny=40, nx=40, nb=5), tmp_path / f"cube{suffix}")
    with pytest.raises(DcstsfInputError, match="already look like reflectance") as exc:
        open_raster(path, scale=1e-4)
    assert str(exc.value).startswith(f"{path}: ") and "--offset" not in str(exc.value)


def test_declared_nodata_is_left_out_of_the_sample(tmp_path: Path) -> None:
    data = _reflectance()
    data[:, :60, :] = -9999.0
    path = make_tif(tmp_path / "refl_nd.tif", data, nodata=-9999.0)
    with pytest.raises(DcstsfInputError, match="already look like reflectance"):
        open_raster(path, scale=1e-4)


def test_int16_digital_numbers_with_a_scale_still_work(tmp_path: Path) -> None:
    dn = np.round(_reflectance() * 10000 + 1000).astype(np.int16)
    path = make_tif(tmp_path / "dn.tif", dn)
    da = open_raster(path, scale=1e-4, offset=-0.1)
    np.testing.assert_allclose(da.values, dn * np.float32(1e-4) - np.float32(0.1), atol=1e-6)


def test_digital_numbers_stored_as_floats_with_a_scale_still_work(tmp_path: Path) -> None:
    dn = np.round(_reflectance() * 10000).astype(np.float32)
    dn[:, :10, :] = 0.0  # zero fill says nothing either way
    path = make_tif(tmp_path / "dn_float.tif", dn)
    np.testing.assert_allclose(open_raster(path, scale=1e-4).values, dn * np.float32(1e-4), rtol=1e-6)


def test_a_file_with_its_own_scale_may_be_overridden(tmp_path: Path) -> None:
    values = np.full((1, 20, 20), 0.5, dtype=np.float32)
    path = make_tif(tmp_path / "scaled.tif", values, scales=[2.0])
    np.testing.assert_allclose(open_raster(path, scale=0.5).values, 0.25)


def test_offset_alone_or_a_unit_scale_is_accepted(tmp_path: Path) -> None:
    """A float file of Sentinel-2 DNs / 10 000 lacking BOA_ADD_OFFSET needs just the offset: the values
    cannot tell, so an offset alone is not refused (nor a scale of 1, which changes nothing)."""
    data = _reflectance() + np.float32(0.1)
    path = make_tif(tmp_path / "shifted.tif", data)
    np.testing.assert_allclose(open_raster(path, offset=-0.1).values, data - np.float32(0.1), atol=1e-6)
    np.testing.assert_allclose(open_raster(path, scale=1.0).values, data)


def test_float_with_fill_over_the_sampled_windows_suggests_nodata_not_a_scale(tmp_path: Path) -> None:
    """Corners of undeclared -9999 made the median look like scaled integers and the error suggest a scale."""
    data = _reflectance(ny=200, nx=200)
    yy, xx = np.mgrid[:200, :200]
    data[:, np.hypot(yy - 100, xx - 100) > 60] = -9999.0  # a round footprint in a fill frame
    path = make_tif(tmp_path / "framed.tif", data)
    with pytest.raises(DcstsfInputError) as exc:
        open_raster(path)
    msg = str(exc.value)
    assert "undeclared fill value" in msg and "nodata=-9999" in msg and "--ms-nodata -9999" in msg
    assert "pass no scale" in msg
    da = open_raster(path, nodata=-9999)
    assert np.isnan(da.values[0, 0, 0]) and 0.0 < np.nanmax(da.values) < 1.0


def test_float_percent_reflectance_suggests_a_hundredth(tmp_path: Path) -> None:
    path = make_tif(tmp_path / "percent.tif", _reflectance() * 100)
    with pytest.raises(DcstsfInputError, match="percent reflectance") as exc:
        open_raster(path)
    assert "scale=0.01" in str(exc.value) and "0.0001" not in str(exc.value)


def test_non_finite_offset_suggests_no_particular_value(tmp_path: Path) -> None:
    path = make_tif(tmp_path / "dn.tif", np.full((1, 4, 4), 1000, dtype=np.int16))
    with pytest.raises(DcstsfInputError, match="offset") as exc:
        open_raster(path, scale=1e-4, offset=float("nan"))
    assert "-0.1" not in str(exc.value)

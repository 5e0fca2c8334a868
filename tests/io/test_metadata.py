"""Band information from tags: names, wavelengths and FWHM in nm, bad-band lists, wavelength order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from tests.io.rasters import WAVELENGTHS, make_tif


def test_float_with_nodata_and_wavelength_tags(tmp_path: Path) -> None:
    data = np.full((3, 4, 4), 0.25, dtype=np.float32)
    data[1, 2, 2] = -9999.0
    band_tags = [
        {"wavelength": str(w / 1000), "fwhm": "0.01", "wavelength_units": "Micrometers", "bbl": "1"}
        for w in WAVELENGTHS[:3]
    ]
    p = make_tif(tmp_path / "f.tif", data, nodata=-9999.0, band_tags=band_tags, descriptions=["B02", "B03", "B04"])
    da = open_raster(p)
    assert np.isnan(da.values[1, 2, 2]) and np.nanmax(da.values) == pytest.approx(0.25)
    assert list(da["band"].values) == ["B02", "B03", "B04"]
    np.testing.assert_allclose(da["wavelength"].values, WAVELENGTHS[:3])
    np.testing.assert_allclose(da["fwhm"].values, 10.0)
    assert list(da["bbl"].values) == [1, 1, 1]


def test_gdal_auto_descriptions_give_names_and_wavelengths(tmp_path: Path) -> None:
    data = np.full((2, 2, 2), 0.1, dtype=np.float32)
    p = make_tif(tmp_path / "d.tif", data, descriptions=["band 1 (418.24 Nanometers)", "band 2 (423.9 Nanometers)"])
    da = open_raster(p)
    assert list(da["band"].values) == ["band_1", "band_2"]
    np.testing.assert_allclose(da["wavelength"].values, [418.24, 423.9])


def test_wavelengths_out_of_order(tmp_path: Path) -> None:
    data = np.full((6, 2, 2), 0.2, dtype=np.float32)
    rev = [{"wavelength": str(w)} for w in (900, 800, 700, 600, 500, 400)]
    p = make_tif(tmp_path / "rev.tif", data, band_tags=rev)
    with pytest.raises(DcstsfInputError, match="out of order") as exc:
        open_raster(p)
    assert str(p) in str(exc.value)
    # One restart at a detector boundary (EnMAP VNIR -> SWIR overlap) is legitimate.
    overlap = [{"wavelength": str(w)} for w in (900, 950, 1000, 910, 1100, 1200)]
    open_raster(make_tif(tmp_path / "ok.tif", data, band_tags=overlap))
    dup = [{"wavelength": str(w)} for w in (400, 500, 500, 600, 700, 800)]
    with pytest.raises(DcstsfInputError, match="same wavelength"):
        open_raster(make_tif(tmp_path / "dup.tif", data, band_tags=dup))


def test_one_file_level_value_for_many_bands_is_ignored_with_a_warning(tmp_path: Path) -> None:
    # what rioxarray's to_raster leaves of per-band metadata: band 1's tags on the whole file
    data = np.full((4, 2, 2), 0.2, dtype=np.float32)
    p = make_tif(tmp_path / "rx.tif", data, tags={"wavelength": "450.0", "fwhm": "8.5", "wavelength_units": "nm"})
    with pytest.warns(UserWarning, match=r"rx.tif: metadata 'wavelength', 'fwhm' hold one value for 4 bands"):
        da = open_raster(p)
    assert "wavelength" not in da.coords and "fwhm" not in da.coords
    # a list of the wrong length is still an error, and one band with one value is fine
    bad = make_tif(tmp_path / "two.tif", data, tags={"wavelength": "450,550"})
    with pytest.raises(DcstsfInputError, match="lists 2 values for 4 bands"):
        open_raster(bad)
    one = open_raster(make_tif(tmp_path / "one.tif", data[:1], tags={"wavelength": "450.0"}))
    np.testing.assert_allclose(one["wavelength"].values, [450.0])

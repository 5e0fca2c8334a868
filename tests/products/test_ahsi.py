"""ZY-1 02D AHSI reader: reflectance cubes and VNIR/SWIR pairs written here, and L1 data refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcstsf import sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.products.ahsi import AhsiOptions, read_ahsi
from tests.io.rasters import TRANSFORM, make_tif

AHSI = sensors.get("zy1-02d-ahsi")
N_VNIR = 76  # bands 1-76 VNIR, 77-166 SWIR (the registered table)
H = W = 8
L1_NAME = "ZY1E_AHSI_E108.96_N34.68_20200203_002068_L1A0000083728"


def _reflectance(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.01, 0.6, size=(n, H, W)).astype(np.float32)


def _wl_tags(centres: np.ndarray, fwhm: np.ndarray) -> list[dict[str, str]]:
    return [{"wavelength": repr(float(c)), "wavelength_units": "Nanometers", "fwhm": repr(float(f))}
            for c, f in zip(centres, fwhm)]


def test_166_band_cube_without_wavelengths_gets_the_registered_table(tmp_path: Path) -> None:
    data = _reflectance(166, 0)
    data[:, 0, 0] = -9999.0
    path = make_tif(tmp_path / "ahsi_refl.tif", data, nodata=-9999.0)
    da = read_ahsi(path)
    assert da.chunks is not None and da.dtype == np.float32
    expected = np.where(data == -9999.0, np.nan, data)
    np.testing.assert_array_equal(da.values, expected)
    assert list(da["band"].values) == list(AHSI.band_names)
    np.testing.assert_array_equal(da["wavelength"].values, AHSI.centers_nm)
    np.testing.assert_array_equal(da["fwhm"].values, AHSI.fwhm_nm)
    assert da.attrs["sensor"] == "zy1-02d-ahsi" and da.attrs["masked_fraction"] == 0.0
    assert da.attrs["product_path"] == str(path)
    assert da.rio.transform() == TRANSFORM


def test_vnir_swir_pair_merged(tmp_path: Path) -> None:
    vn_wl, sw_wl = AHSI.centers_nm[:N_VNIR] + 0.4, AHSI.centers_nm[N_VNIR:] - 0.3  # within 5 nm of the table
    vn_fw, sw_fw = AHSI.fwhm_nm[:N_VNIR], AHSI.fwhm_nm[N_VNIR:]
    # integers x 10000 with a declared band scale, as reflectance products store them
    vn = np.rint(_reflectance(N_VNIR, 1) * 10000).astype(np.int16)
    sw = np.rint(_reflectance(166 - N_VNIR, 2) * 10000).astype(np.int16)
    vpath = make_tif(tmp_path / "scene_vnir_refl.tif", vn, scales=[1e-4] * N_VNIR, band_tags=_wl_tags(vn_wl, vn_fw))
    spath = make_tif(tmp_path / "scene_swir_refl.tif", sw, scales=[1e-4] * (166 - N_VNIR),
                     band_tags=_wl_tags(sw_wl, sw_fw))
    da = read_ahsi(vpath, swir=spath)
    expected = np.concatenate([vn, sw]).astype(np.float64) * 1e-4
    np.testing.assert_allclose(da.values, expected, rtol=1e-6)  # float32 of int x 1e-4
    assert list(da["band"].values) == list(AHSI.band_names)
    np.testing.assert_allclose(da["wavelength"].values, np.concatenate([vn_wl, sw_wl]))
    assert da.chunks is not None and len(da.chunks[0]) == 1
    by_wl = read_ahsi(vpath, swir=spath, options=AhsiOptions(order="wavelength", chunks=None))
    order = np.argsort(np.concatenate([vn_wl, sw_wl]), kind="stable")
    assert np.all(np.diff(by_wl["wavelength"].values) > 0)
    np.testing.assert_allclose(by_wl.values, expected[order], rtol=1e-6)
    assert list(by_wl["band"].values) == [AHSI.band_names[i] for i in order]
    with pytest.raises(DcstsfInputError, match="Swap them") as err:
        read_ahsi(spath, swir=vpath)
    assert spath.name in str(err.value)


def test_pair_without_wavelengths_and_scale_option(tmp_path: Path) -> None:
    vn = np.rint(_reflectance(N_VNIR, 3) * 10000).astype(np.int16)
    sw = np.rint(_reflectance(166 - N_VNIR, 4) * 10000).astype(np.int16)
    vpath, spath = make_tif(tmp_path / "v.tif", vn), make_tif(tmp_path / "s.tif", sw)
    with pytest.raises(DcstsfInputError, match="scale=") as err:
        read_ahsi(vpath, swir=spath)
    assert "AHSI" in str(err.value) and vpath.name in str(err.value)
    da = read_ahsi(vpath, swir=spath, options=AhsiOptions(scale=1e-4, chunks=None))
    np.testing.assert_allclose(da.values, np.concatenate([vn, sw]) * 1e-4, rtol=1e-6)
    np.testing.assert_array_equal(da["wavelength"].values, AHSI.centers_nm)


def test_vnir_swir_grid_mismatch(tmp_path: Path) -> None:
    vpath = make_tif(tmp_path / "v.tif", _reflectance(N_VNIR, 5))
    small = make_tif(tmp_path / "s.tif", _reflectance(166 - N_VNIR, 6)[:, :7, :])
    with pytest.raises(DcstsfInputError, match="VNIR file is 8 x 8 pixels but the SWIR file 7 x 8") as err:
        read_ahsi(vpath, swir=small)
    assert small.name in str(err.value) and "must share one grid" in str(err.value)
    other = make_tif(tmp_path / "s2.tif", _reflectance(166 - N_VNIR, 6), crs="EPSG:32650")
    with pytest.raises(DcstsfInputError, match="CRS"):
        read_ahsi(vpath, swir=other)


def test_wrong_band_count_without_wavelengths(tmp_path: Path) -> None:
    path = make_tif(tmp_path / "cube.tif", _reflectance(100, 7))
    with pytest.raises(DcstsfInputError, match="100 bands and no band wavelengths") as err:
        read_ahsi(path)
    assert path.name in str(err.value) and "wavelength" in str(err.value)


def test_l1_delivery_names_refused(tmp_path: Path) -> None:
    vn = make_tif(tmp_path / f"{L1_NAME}_VN.tiff", np.ones((N_VNIR, H, W), np.uint16) * 900)
    with pytest.raises(DcstsfInputError, match="AHSI L1 data") as err:
        read_ahsi(vn)
    assert vn.name in str(err.value) and "atmospheric correction" in str(err.value)
    folder = tmp_path / L1_NAME  # the unpacked delivery
    folder.mkdir()
    with pytest.raises(DcstsfInputError, match="AHSI L1 data"):
        read_ahsi(folder)
    derived = make_tif(tmp_path / f"{L1_NAME}_refl.tif", _reflectance(166, 10))  # a user's product: by content
    da = read_ahsi(derived)
    assert da.sizes["band"] == 166
    assert da.attrs["acquisition_time"] == "2020-02-03"  # the day in the product's name


def test_l1_folder_with_radcal_refused(tmp_path: Path) -> None:
    sw = make_tif(tmp_path / "scene_SW.tif", np.ones((166 - N_VNIR, H, W), np.uint16) * 900)
    (tmp_path / "ZY1E_AHSI_SWIR_RadCal.raw").write_text("0.01,0.0\n" * (166 - N_VNIR))
    with pytest.raises(DcstsfInputError, match="RadCal.raw lies beside it"):
        read_ahsi(sw)


def test_radiance_values_refused(tmp_path: Path) -> None:
    # digital numbers with a band scale that makes radiance-like values (W m-2 sr-1 um-1, ~50-150)
    dn = np.random.default_rng(8).integers(5000, 15000, size=(166, H, W), dtype=np.int16)
    path = make_tif(tmp_path / "calibrated.tif", dn, scales=[0.01] * 166)
    with pytest.raises(DcstsfInputError, match="typical values are about") as err:
        read_ahsi(path)
    assert "AHSI L1 data" in str(err.value) and path.name in str(err.value) and "AhsiOptions(scale=" in str(err.value)


def test_radiance_units_refused(tmp_path: Path) -> None:
    path = make_tif(tmp_path / "rad.tif", _reflectance(166, 9), tags={"radiance_units": "W/(m2*sr*um)"})
    with pytest.raises(DcstsfInputError, match="metadata gives radiance_units"):
        read_ahsi(path)

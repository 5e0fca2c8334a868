"""PRISMA L2D reader: HDF5 files written here with h5py to the documented layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from affine import Affine

from dcstsf.errors import DcstsfInputError
from dcstsf.products.prisma import PrismaOptions, prisma_processing_level, read_prisma_l2d

ROWS, COLS = 7, 6
UL_E, UL_N = 500015.0, 4999985.0
# Stored in decreasing wavelength order, with one band that holds no data (centre 0), as delivered.
VNIR_CW = np.array([1005.0, 980.0, 950.0, 0.0, 700.0, 650.0, 550.0, 450.0])
VNIR_FWHM = np.array([12.0, 12.0, 11.0, 0.0, 10.0, 10.0, 9.0, 9.0])
SWIR_CW = np.array([2450.0, 2200.0, 0.0, 1650.0, 1200.0, 990.0, 960.0])
SWIR_FWHM = np.array([10.0, 10.0, 0.0, 11.0, 12.0, 13.0, 13.0])
SCALE = {"Vnir": (0.0, 0.9), "Swir": (-0.01, 0.75)}
ERROR_CODES = (1, 2, 4)


def make_he5(path: Path, *, level: str = "L2D", vnir_rows: int = ROWS, drop: str | None = None,
             short_list: bool = False) -> dict:
    """A PRISMA .he5 file: VNIR/SWIR cubes (rows, bands, cols), error matrices and the file attributes."""
    rng = np.random.default_rng(3)
    cubes, errs = {}, {}
    with h5py.File(path, "w") as f:
        fields = f.create_group(f"HDFEOS/SWATHS/PRS_{level}_HCO/Data Fields")
        for det, cw, fw in (("Vnir", VNIR_CW, VNIR_FWHM), ("Swir", SWIR_CW, SWIR_FWHM)):
            rows = vnir_rows if det == "Vnir" else ROWS
            cube = rng.integers(1000, 60000, size=(rows, cw.size, COLS), dtype=np.uint16)
            cube[0, :, 0] = 0  # outside the footprint: 0 in every band of both detectors
            cube[:, cw == 0, :] = 0
            err = np.zeros(cube.shape, np.uint8)
            err[1, 1, 2] = 1
            err[2, 4, 3] = 2
            err[3, 0, 1] = 4
            err[4, 2, 4] = 8  # not one of the documented codes
            err[5, int(np.flatnonzero(cw == 0)[0]), 5] = 1  # in a dropped band: ignored
            cubes[det], errs[det] = cube, err
            if drop != f"{det}_Cube":
                fields.create_dataset(f"{det.upper()}_Cube", data=cube, chunks=(4, cw.size, COLS))
            fields.create_dataset(f"{det.upper()}_PIXEL_L2_ERR_MATRIX", data=err)
            f.attrs[f"List_Cw_{det}"] = cw[:-1] if short_list and det == "Swir" else cw
            f.attrs[f"List_Fwhm_{det}"] = fw
            f.attrs[f"List_Cw_{det}_Flags"] = (cw > 0).astype(np.int8)
            lo, hi = SCALE[det]
            f.attrs[f"L2Scale{det}Min"] = lo
            if drop != f"L2Scale{det}Max":
                f.attrs[f"L2Scale{det}Max"] = hi
        f.attrs["Epsg_Code"] = np.int32(32632)
        f.attrs["Product_ULcorner_easting"] = UL_E
        f.attrs["Product_ULcorner_northing"] = UL_N
        f.attrs["Product_LRcorner_easting"] = UL_E + (COLS - 1) * 30.0
        f.attrs["Product_LRcorner_northing"] = UL_N - (ROWS - 1) * 30.0
    return dict(path=path, cubes=cubes, errs=errs)


def expected(prod: dict, *, overlap: str = "swir", codes: tuple[int, ...] = ERROR_CODES):
    """Reflectance by the documented formula, band by band, in wavelength order; and the flagged pixels."""
    bands, wls, errs, names = [], [], [], []
    swir_min = SWIR_CW[SWIR_CW > 0].min()
    vnir_max = VNIR_CW.max()
    for det, cw in (("Vnir", VNIR_CW), ("Swir", SWIR_CW)):
        lo, hi = SCALE[det]
        for k, c in enumerate(cw):
            if c == 0:
                continue
            if overlap == "swir" and det == "Vnir" and c >= swir_min:
                continue
            if overlap == "vnir" and det == "Swir" and c <= vnir_max:
                continue
            dn = prod["cubes"][det][:, k, :].astype(np.float64)
            bands.append(lo + dn * (hi - lo) / 65535.0)
            wls.append(c)
            errs.append(prod["errs"][det][:, k, :])
            names.append(f"{det.upper()}_{k + 1}")
    order = np.argsort(wls)
    refl = np.stack(bands)[order]
    err = np.stack(errs)[order]
    stored_zero = np.stack([prod["cubes"][d][:, k, :] for d, cw in (("Vnir", VNIR_CW), ("Swir", SWIR_CW))
                            for k in range(cw.size)]) == 0
    refl[:, stored_zero.all(axis=0)] = np.nan
    bad = np.isin(err, codes)
    refl[bad] = np.nan
    return refl, np.array(wls)[order], [names[i] for i in order], bad.any(axis=0)


@pytest.fixture(scope="module")
def he5(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_he5(tmp_path_factory.mktemp("prisma") / "PRS_L2D_STD_20200523102029_20200523102033_0001.he5")


def test_reads_reflectance_in_wavelength_order(he5: dict) -> None:
    da = read_prisma_l2d(he5["path"])
    assert da.chunks is not None and da.dtype == np.float32 and da.dims == ("band", "y", "x")
    refl, wl, names, flagged = expected(he5)
    got = da.values.astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(refl))
    # float32 result of Min + DN x (Max - Min) / 65535: within float32 resolution of values below 1
    np.testing.assert_allclose(got, refl, rtol=0, atol=2e-7, equal_nan=True)
    np.testing.assert_array_equal(da["wavelength"].values, wl)
    assert list(da["band"].values) == names
    assert np.all(np.diff(da["wavelength"].values) > 0)
    assert np.isnan(got[:, 0, 0]).all()  # footprint nodata
    assert da.attrs["masked_fraction"] == pytest.approx(flagged.mean()) and flagged.sum() >= 2
    assert da.attrs["sensor"] == "prisma" and da.attrs["processing_level"] == "L2D"
    assert da.attrs["product_path"] == str(he5["path"])
    assert da.attrs["acquisition_time"] == "2020-05-23T10:20:29Z"  # the start in the product's name


def test_geocoding(he5: dict) -> None:
    da = read_prisma_l2d(he5["path"])
    assert da.rio.crs.to_epsg() == 32632
    assert da.rio.transform() == Affine(30.0, 0.0, UL_E - 15.0, 0.0, -30.0, UL_N + 15.0)
    np.testing.assert_array_equal(da["x"].values, UL_E + 30.0 * np.arange(COLS))
    np.testing.assert_array_equal(da["y"].values, UL_N - 30.0 * np.arange(ROWS))


def test_corner_mismatch_warns(tmp_path: Path) -> None:
    path = make_he5(tmp_path / "PRS_L2D_STD_x.he5")["path"]
    with h5py.File(path, "r+") as f:
        f.attrs["Product_LRcorner_easting"] = UL_E + (COLS + 1) * 30.0  # two pixels further east
    with pytest.warns(UserWarning, match=r"\+60.0 m / \+0.0 m away") as rec:
        da = read_prisma_l2d(path)
    assert path.name in str(rec[0].message)
    assert da.rio.transform().c == UL_E - 15.0  # the grid follows the upper-left corner


@pytest.mark.parametrize("overlap", ["vnir", "both"])
def test_overlap_choices(he5: dict, overlap: str) -> None:
    da = read_prisma_l2d(he5["path"], options=PrismaOptions(overlap=overlap, chunks=None))
    refl, wl, names, _ = expected(he5, overlap=overlap)
    assert da.chunks is None
    np.testing.assert_allclose(da.values, refl, rtol=0, atol=2e-7, equal_nan=True)
    assert list(da["band"].values) == names
    assert da.sizes["band"] == (13 if overlap == "both" else 11)


def test_error_matrix_can_be_ignored(he5: dict) -> None:
    da = read_prisma_l2d(he5["path"], options=PrismaOptions(error_codes=()))
    refl, *_ = expected(he5, codes=())
    np.testing.assert_allclose(da.values, refl, rtol=0, atol=2e-7, equal_nan=True)
    assert da.attrs["masked_fraction"] == 0.0 and da.attrs["error_codes"] == "none"
    only_invalid = read_prisma_l2d(he5["path"], options=PrismaOptions(error_codes=(1,)))
    assert np.isnan(only_invalid.values).sum() == np.isnan(expected(he5, codes=(1,))[0]).sum()


@pytest.mark.parametrize(("level", "words"), [("L1", "top-of-atmosphere radiance"), ("L2B", "surface radiance"),
                                              ("L2C", "not map-projected")])
def test_other_levels_refused(tmp_path: Path, level: str, words: str) -> None:
    path = tmp_path / f"PRS_{level}_STD_20200523102029_20200523102033_0001.he5"
    make_he5(path, level=level)
    assert prisma_processing_level(path) == level
    with pytest.raises(DcstsfInputError, match=f"PRISMA {level} product") as err:
        read_prisma_l2d(path)
    assert words in str(err.value) and path.name in str(err.value) and "Order the L2D product" in str(err.value)


def test_vnir_swir_size_mismatch(tmp_path: Path) -> None:
    path = make_he5(tmp_path / "PRS_L2D_STD_x.he5", vnir_rows=ROWS - 1)["path"]
    with pytest.raises(DcstsfInputError, match="VNIR cube is 6 x 6 pixels but the SWIR cube 7 x 6") as err:
        read_prisma_l2d(path)
    assert path.name in str(err.value)


def test_band_list_mismatch(tmp_path: Path) -> None:
    path = make_he5(tmp_path / "PRS_L2D_STD_x.he5", short_list=True)["path"]
    with pytest.raises(DcstsfInputError, match="SWIR_Cube holds 7 bands but List_Cw_Swir lists 6"):
        read_prisma_l2d(path)


def test_missing_scale_attribute(tmp_path: Path) -> None:
    path = make_he5(tmp_path / "PRS_L2D_STD_x.he5", drop="L2ScaleSwirMax")["path"]
    with pytest.raises(DcstsfInputError, match="'L2ScaleSwirMax' is missing") as err:
        read_prisma_l2d(path)
    assert path.name in str(err.value)


def test_missing_cube(tmp_path: Path) -> None:
    path = make_he5(tmp_path / "PRS_L2D_STD_x.he5", drop="Swir_Cube")["path"]
    with pytest.raises(DcstsfInputError, match="SWIR_Cube is missing"):
        read_prisma_l2d(path)


def test_not_prisma(tmp_path: Path) -> None:
    junk = tmp_path / "PRS_L2D_STD_x.he5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(DcstsfInputError, match="not a readable HDF5 file"):
        read_prisma_l2d(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(DcstsfInputError, match="not a PRISMA product"):
        read_prisma_l2d(other)
    with pytest.raises(DcstsfInputError, match="file not found"):
        read_prisma_l2d(tmp_path / "missing.he5")

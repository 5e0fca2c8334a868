"""Inputs off the prepared grid: the HS brought to the snapped 30 m grid by pixel-area average, MS(t2) from
another grid by bilinear interpolation; expected values computed here from the known cubes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasterio.transform import from_origin

from dcstsf.preparation import PrepareOptions, prepare_products
from dcstsf.preparation.footprint import PartialFootprintWarning
from tests.io.rasters import make_tif
from tests.preparation.scenes import ORIGIN, block_mean, fine_cube, ms_reflectance, write_ahsi, write_safe

BANDS = ("B02", "B03", "B04", "B08")
NO_COREG = PrepareOptions(ms_bands=BANDS, coregister=False)
AHSI_NAME = "ZY1E_AHSI_E13.00_N45.10_20230701_reflectance.tif"


@pytest.fixture(scope="module")
def fine5(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A known cube on a 5 m grid (120 x 120 px) and a Sentinel-2A product of it (60 x 60 px at 10 m)."""
    root = tmp_path_factory.mktemp("fine5")
    f5, wl, fwhm = fine_cube(20, factor=6)
    ms = ms_reflectance(block_mean(f5, 2).astype(np.float32), sensor="sentinel-2a", bands=BANDS)
    safe = write_safe(root, ms, spacecraft="Sentinel-2A", scl=np.full((30, 30), 4, np.uint8)).safe
    return {"f5": f5, "wl": wl, "fwhm": fwhm, "safe": safe, "ms": ms, "root": root}


def test_finer_hs_pixels_become_block_means_of_the_fine_cube(fine5: dict) -> None:
    # An AHSI reflectance cube resampled by its user to 15 m: 3 x 3 means of the 5 m cube, its corner 20 m
    # (two MS pixels) from the tile's. AHSI's nominal 30 m GSD gives ratio 3 on the 10 m grid.
    f5 = fine5["f5"]
    k = (f5.shape[1] - 4) // 3
    hs15 = block_mean(f5[:, 4 : 4 + 3 * k, 4 : 4 + 3 * k], 3)
    path = write_ahsi(fine5["root"] / AHSI_NAME, hs15, fine5["wl"], fine5["fwhm"],
                      transform=from_origin(ORIGIN[0] + 20, ORIGIN[1] - 20, 15.0, 15.0))
    with pytest.warns(PartialFootprintWarning):
        p = prepare_products(path, fine5["safe"], fine5["safe"], options=NO_COREG)
    assert p.ratio == 3 and "nominal GSD of zy1-02d-ahsi 30 m" in p.grid.ratio_from
    t = p.hs_t1.rio.transform()
    assert (t.a, t.e, t.c, t.f) == (30.0, -30.0, ORIGIN[0] + 20, ORIGIN[1] - 20)
    n = p.hs_t1.sizes["y"]
    assert n == p.hs_t1.sizes["x"] == (59 - 2) // 3
    assert p.ms_t1.sizes["y"] == 3 * n and p.grid.ms_window == (2, 2)
    # the prepared HS pixel (i, j) is the mean of the 6 x 6 block of 5 m pixels it covers
    expected = block_mean(f5[:, 4 : 4 + 6 * n, 4 : 4 + 6 * n], 6)
    np.testing.assert_allclose(p.hs_t1.values, expected, rtol=0, atol=2e-6, equal_nan=True)
    assert "average" in json.loads(p.hs_t1.attrs["preparation"])["hs_resampling"]


def test_subpixel_offset_mixes_neighbours_by_shared_area(fine5: dict) -> None:
    # 30 m HS pixels whose corners lie 23 m from the tile's: the nearest MS corner is at 20 m, so the
    # coarse lattice starts at 50 m (the first whole pixel inside) and each coarse pixel shares 3 m with one
    # HS pixel and 27 m with the next, along each axis.
    native = fine5["f5"][:, ::6, ::6][:, :16, :16].astype(np.float64)
    path = write_ahsi(fine5["root"] / AHSI_NAME.replace(".tif", "_shifted.tif"), native, fine5["wl"], fine5["fwhm"],
                      transform=from_origin(ORIGIN[0] + 23, ORIGIN[1] - 23, 30.0, 30.0))
    with pytest.warns(PartialFootprintWarning):
        p = prepare_products(path, fine5["safe"], fine5["safe"], options=NO_COREG)
    t = p.hs_t1.rio.transform()
    assert (t.c, t.f) == (ORIGIN[0] + 50, ORIGIN[1] - 50)
    n = p.hs_t1.sizes["x"]
    assert n == (50 - 5) // 3 == p.hs_t1.sizes["y"]
    w = np.array([0.1, 0.9])
    expected = sum(
        w[a] * w[b] * native[:, a : a + n, b : b + n] for a in range(2) for b in range(2)
    )
    np.testing.assert_allclose(p.hs_t1.values, expected, rtol=0, atol=2e-6, equal_nan=True)


def test_ms_t2_on_another_grid_is_interpolated_bilinearly(fine5: dict) -> None:
    # MS(t2) as a plain GeoTIFF whose grid lies 5 m east of the tile's: each MS(t1) pixel centre falls
    # halfway between two MS(t2) centres, so bilinear interpolation gives their mean.
    rng = np.random.default_rng(4)
    m2 = rng.uniform(0.05, 0.4, (4, 60, 60)).astype(np.float32)
    tif = make_tif(fine5["root"] / "ms_t2_other_grid.tif", m2, transform=from_origin(ORIGIN[0] + 5, ORIGIN[1], 10, 10),
                   descriptions=list(BANDS), tags={"sensor": "sentinel-2b"})
    hs = fine5["f5"][:, ::6, ::6][:, :19, :19]
    path = write_ahsi(fine5["root"] / AHSI_NAME.replace(".tif", "_aligned.tif"), hs, fine5["wl"], fine5["fwhm"],
                      transform=from_origin(ORIGIN[0], ORIGIN[1], 30.0, 30.0))
    with pytest.warns(PartialFootprintWarning):
        p = prepare_products(path, fine5["safe"], tif, options=NO_COREG)
    row, col = p.grid.ms_window
    assert (row, col) == (0, 3)  # the first coarse pixel wholly inside MS(t2), whose west edge is at 5 m
    h, w = p.ms_t2.shape[1:]
    expected = 0.5 * (m2[:, row : row + h, col - 1 : col - 1 + w] + m2[:, row : row + h, col : col + w])
    np.testing.assert_allclose(p.ms_t2.values, expected, rtol=0, atol=1e-6)
    assert p.ms_t2.attrs["sensor"] == "sentinel-2b"
    assert "bilinear" in json.loads(p.ms_t2.attrs["preparation"])["ms_t2_resampling"]
    assert list(p.ms_t2["band"].values) == list(BANDS)

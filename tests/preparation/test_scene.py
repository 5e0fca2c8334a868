"""Preparation of an EnMAP L2A product and two Sentinel-2 L2A products of a known scene: values against the
fine cube they were made from, masks, footprint, and the errors for products that cannot be prepared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dcstsf.errors import DcstsfInputError
from dcstsf.preparation import PartialFootprintWarning, PrepareOptions, prepare_products
from dcstsf.products.scl import DEFAULT_MASKED_CLASSES
from tests.preparation.scenes import ORIGIN, S2_10, Scene, block_mean, make_scene, tile_transform, write_enmap

NO_COREG = PrepareOptions(coregister=False)
# EnMAP stores reflectance x 10000 as integers and Sentinel-2 as DN with QUANTIFICATION_VALUE 10000: half a
# step of 1e-4 (plus float32 rounding of values below 1)
QUANT_TOL = 5e-5 + 1e-7


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_scene(tmp_path_factory.mktemp("scene"))


def _prepare(scene: Scene, options: PrepareOptions = NO_COREG, hs: Path | None = None) -> object:
    with pytest.warns(PartialFootprintWarning):
        return prepare_products(hs or scene.enmap, scene.ms1.safe, scene.ms2.safe, options=options)


def _scl_mask(scl: np.ndarray, window: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """SCL classes masked by default, on the 10 m grid (each 20 m class covers 2 x 2 pixels), in the window."""
    m = np.repeat(np.repeat(np.isin(scl, DEFAULT_MASKED_CLASSES), 2, axis=0), 2, axis=1)
    r, c = window
    return m[r : r + shape[0], c : c + shape[1]]


def test_hs_on_the_lattice_is_the_block_mean_of_the_fine_cube(scene: Scene) -> None:
    p = _prepare(scene)
    r0, c0 = scene.hs_origin
    h, w = scene.hs.shape[1:]
    assert p.ratio == 3 and p.grid.ms_window == (r0, c0)
    assert tuple(p.hs_t1.rio.transform())[:6] == (30.0, 0.0, ORIGIN[0] + 10 * c0, 0.0, -30.0, ORIGIN[1] - 10 * r0)
    assert p.hs_t1.shape == (224, h, w) and p.ms_t1.shape == (10, 3 * h, 3 * w) == p.ms_t2.shape
    assert "HS(t1) already on the snapped coarse grid: cut, not resampled" in p.notes
    assert p.hs_t1.chunks is not None and p.ms_t1.chunks is not None  # lazy
    expected = block_mean(scene.fine[:, r0 : r0 + 3 * h, c0 : c0 + 3 * w], 3)
    expected[:, scene.hs_cloud] = np.nan
    np.testing.assert_allclose(p.hs_t1.values, expected, rtol=0, atol=QUANT_TOL, equal_nan=True)
    # MS: the window of the tile, 10 m bands as written (20 m bands went through the reader's bilinear step)
    window = (slice(r0, r0 + 3 * h), slice(c0, c0 + 3 * w))
    for ms, product in ((p.ms_t1, scene.ms1), (p.ms_t2, scene.ms2)):
        assert list(ms["band"].values) == list(S2_10)
        masked = _scl_mask(product.scl, (r0, c0), (3 * h, 3 * w))
        for band in ("B02", "B08"):
            want = np.where(masked, np.nan, product.reflectance[band][window])
            np.testing.assert_allclose(ms.sel(band=band).values, want, rtol=0, atol=QUANT_TOL, equal_nan=True)
    assert p.ms_t1.attrs["sensor"] == "sentinel-2a" and p.ms_t2.attrs["sensor"] == "sentinel-2b"
    assert p.hs_t1.attrs["sensor"] == "enmap"


def test_masks_become_nodata_in_both_dates(scene: Scene) -> None:
    r0, c0 = scene.hs_origin
    shape = (3 * scene.hs.shape[1], 3 * scene.hs.shape[2])
    m1 = _scl_mask(scene.ms1.scl, (r0, c0), shape)
    m2 = _scl_mask(scene.ms2.scl, (r0, c0), shape)
    assert m1.any() and m2.any() and not (m1 & m2).any()
    p = _prepare(scene)
    for ms, mask in ((p.ms_t1, m1), (p.ms_t2, m2)):
        nan = np.isnan(ms.values)
        np.testing.assert_array_equal(nan.all(axis=0), mask)
        np.testing.assert_array_equal(nan.any(axis=0), mask)
        assert ms.attrs["masked_fraction"] == pytest.approx(mask.mean(), abs=1e-6)
    # the reader's fraction is over the whole tile
    assert p.ms_t1.attrs["product_masked_fraction"] == pytest.approx(np.isin(scene.ms1.scl, DEFAULT_MASKED_CLASSES).mean())
    hs_nan = np.isnan(p.hs_t1.values)
    good = np.asarray(p.hs_t1["bbl"].values) > 0
    np.testing.assert_array_equal(hs_nan[good].all(axis=0), scene.hs_cloud)
    assert p.hs_t1.attrs["masked_fraction"] == pytest.approx(scene.hs_cloud.mean(), abs=1e-6)
    assert p.masked_fraction["ms_t2"] == pytest.approx(m2.mean(), abs=1e-6)
    # the union: either date's masked pixels are nodata at both
    u = _prepare(scene, PrepareOptions(coregister=False, union_masks=True))
    for ms in (u.ms_t1, u.ms_t2):
        np.testing.assert_array_equal(np.isnan(ms.values).all(axis=0), m1 | m2)


def test_partial_footprint_is_said_with_fraction_and_bounds(scene: Scene, tmp_path: Path) -> None:
    with pytest.warns(PartialFootprintWarning, match=r"cover 73\.5% of the MS\(t1\) grid and 100\.0% of the HS scene: "
                      r"bounds \(400030\.0, 4998470\.0, 401470\.0, 4999910\.0\)"):
        p = prepare_products(scene.enmap, scene.ms1.safe, scene.ms2.safe, options=NO_COREG)
    record = json.loads(p.hs_t1.attrs["footprint"])
    assert record["ms_covered_fraction"] == pytest.approx((144 / 168) ** 2, abs=1e-6)
    assert record["bounds"] == [400030.0, 4998470.0, 401470.0, 4999910.0] and record["crs"] == "EPSG:32633"
    assert json.loads(p.ms_t2.attrs["footprint"]) == record
    # an HS scene reaching beyond the tile's top and right edges: only the overlap is kept, in whole HS pixels
    hs = write_enmap(tmp_path / "beyond", scene.hs, scene.wl, scene.fwhm, transform=tile_transform(120, -15, 30.0))
    with pytest.warns(PartialFootprintWarning, match=r"and 29\.9% of the HS scene"):
        q = prepare_products(hs, scene.ms1.safe, scene.ms2.safe, options=NO_COREG)
    assert q.hs_t1.shape[1:] == (43, 16) and q.grid.ms_window == (0, 120)
    got = q.hs_t1.values[100]
    np.testing.assert_allclose(got, scene.hs[100, 5:48, 0:16], rtol=0, atol=QUANT_TOL)


def test_products_that_do_not_overlap_name_the_files(scene: Scene, tmp_path: Path) -> None:
    far = write_enmap(tmp_path / "far", scene.hs, scene.wl, scene.fwhm, transform=tile_transform(10000, 0, 30.0))
    with pytest.raises(DcstsfInputError, match="do not overlap") as err:
        prepare_products(far, scene.ms1.safe, scene.ms2.safe, options=NO_COREG)
    text = str(err.value)
    assert str(far) in text and str(scene.ms1.safe) in text and str(scene.ms2.safe) in text
    # touching edges: less than one whole HS pixel in common
    edge = write_enmap(tmp_path / "edge", scene.hs, scene.wl, scene.fwhm, transform=tile_transform(167, 0, 30.0))
    with pytest.raises(DcstsfInputError, match=r"do not overlap by one whole HS pixel \(3 x 3 MS pixels\)"):
        prepare_products(edge, scene.ms1.safe, scene.ms2.safe, options=NO_COREG)


def test_incomplete_safe_products_are_refused(scene: Scene, tmp_path: Path) -> None:
    safe = tmp_path / scene.ms2.safe.name
    shutil.copytree(scene.ms2.safe, safe)
    band = safe / scene.ms2.file("B11").relative_to(scene.ms2.safe)
    band.unlink()
    with pytest.raises(DcstsfInputError, match=r"B11_20m\.jp2: the raster of band B11 is missing") as err:
        prepare_products(scene.enmap, scene.ms1.safe, safe, options=NO_COREG)
    assert "leave B11 out" in str(err.value)
    (safe / "MTD_MSIL2A.xml").unlink()
    with pytest.raises(DcstsfInputError, match=r"\.SAFE: no MTD_MSIL2A\.xml in this folder.*unzipped \.SAFE folder"):
        prepare_products(scene.enmap, scene.ms1.safe, safe, options=NO_COREG)

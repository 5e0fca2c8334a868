"""Tests for dcstsf.datasets: the real scenes in the shared data folder and the bundled sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dcstsf import datasets
from dcstsf.errors import DcstsfInputError


@pytest.fixture(scope="module")
def shared() -> Path:
    try:
        return datasets.shared_data_dir()
    except DcstsfInputError as exc:
        pytest.skip(f"shared data folder not available: {exc}")


def _need(shared: Path, sub: str) -> None:
    if not (shared / sub).exists():
        pytest.skip(f"{shared / sub} not available")


@pytest.fixture(scope="module")
def block(shared: Path) -> xr.DataArray:
    _need(shared, "enmap_potsdam/tiles")
    return datasets.load_enmap_potsdam_block(drop_bad_bands=False)


def test_shared_data_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DCSTSF_SHARED_DATA", str(tmp_path))
    assert datasets.shared_data_dir() == tmp_path
    monkeypatch.setenv("DCSTSF_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DcstsfInputError, match="DCSTSF_SHARED_DATA"):
        datasets.shared_data_dir()


def test_enmap_block(block: xr.DataArray) -> None:
    assert block.dims == ("band", "y", "x") and block.shape == (224, 128, 64)
    assert block.dtype == np.float32
    assert block.rio.crs.to_epsg() == 32633
    t = block.rio.transform()
    assert (t.a, t.e, t.c, t.f) == (30.0, -30.0, 366975.0, 5808045.0)
    assert block["band"].values[0] == "B001" and block["band"].values[-1] == "B224"
    wl = block["wavelength"].values
    assert wl[0] == pytest.approx(418.24) and wl[-1] == pytest.approx(2445.53)
    bad = block["bbl"].values == 0
    assert bad.sum() == 6
    assert np.isnan(block.values[bad]).all()  # the bad bands are all nodata
    good = block.values[~bad]
    assert not np.isnan(good).any()  # the 8 tiles cover the block without gaps
    assert -0.1 < good.min() and good.max() < 1.0 and 0.02 < np.median(good) < 0.5


def test_enmap_block_of_other_tiles_equals_the_tiles_joined(shared: Path) -> None:
    _need(shared, "enmap_potsdam/tiles")
    tiles = {(t.attrs["tile_col"], t.attrs["tile_row"]): t for t in datasets.load_enmap_potsdam_tiles()}
    for name, offsets in datasets.ENMAP_HELD_OUT_BLOCKS.items():
        assert not set(offsets) & set(datasets.ENMAP_BLOCK_TILES), name  # outside the bundled sample
        block = datasets.load_enmap_potsdam_block(tiles=offsets)
        cols = sorted({c for c, _ in offsets})
        rows = sorted({r for _, r in offsets})
        joined = xr.concat([xr.concat([tiles[(c, r)] for c in cols], dim="x") for r in rows], dim="y")
        np.testing.assert_array_equal(block.values, joined.values)
        np.testing.assert_array_equal(block["x"].values, joined["x"].values)
        np.testing.assert_array_equal(block["y"].values, joined["y"].values)
        assert (block.attrs["block_parent_col"], block.attrs["block_parent_row"]) == (cols[0], rows[0])


def test_enmap_block_with_gaps_or_missing_tiles_is_a_clear_error(shared: Path) -> None:
    _need(shared, "enmap_potsdam/tiles")
    with pytest.raises(DcstsfInputError, match="leave gaps in the block"):
        datasets.load_enmap_potsdam_block(tiles=[(160, 64), (192, 96)])
    with pytest.raises(DcstsfInputError, match=r"enmap_potsdam_tile_1_1\.tif'\] are missing"):
        datasets.load_enmap_potsdam_block(tiles=[(160, 64), (1, 1)])
    with pytest.raises(DcstsfInputError, match="tiles is empty"):
        datasets.load_enmap_potsdam_block(tiles=[])


def test_enmap_block_drops_bad_bands(shared: Path, block: xr.DataArray) -> None:
    dropped = datasets.load_enmap_potsdam_block()
    assert dropped.shape == (218, 128, 64) and (dropped["bbl"].values == 1).all()
    np.testing.assert_array_equal(dropped.values, block.sel(band=dropped["band"]).values)


def test_enmap_block_matches_tiles(shared: Path, block: xr.DataArray) -> None:
    tiles = datasets.load_enmap_potsdam_tiles(drop_bad_bands=False)
    assert len(tiles) == 18
    assert all(t.shape == (224, 32, 32) and t.rio.crs.to_epsg() == 32633 for t in tiles)
    by_offset = {(t.attrs["tile_col"], t.attrs["tile_row"]): t for t in tiles}
    t = by_offset[(192, 128)]
    r0, c0 = 128 - 64, 192 - 160
    np.testing.assert_array_equal(block.values[:, r0 : r0 + 32, c0 : c0 + 32], t.values)
    assert datasets.load_enmap_potsdam_tiles()[0].sizes["band"] == 218


def test_bundled_sample_equals_block(block: xr.DataArray) -> None:
    sample = datasets.load_bundled_sample(drop_bad_bands=False)
    assert sample.shape == block.shape and sample.rio.crs == block.rio.crs
    assert sample.rio.transform() == block.rio.transform()
    assert list(sample["band"].values) == list(block["band"].values)
    np.testing.assert_allclose(sample["wavelength"].values, block["wavelength"].values)
    np.testing.assert_array_equal(sample["bbl"].values, block["bbl"].values)
    # int16 storage with the L2A scale: equal to half a quantisation step
    np.testing.assert_allclose(sample.values, block.values, atol=0.5e-4 + 1e-7, equal_nan=True)


def test_bundled_sample_without_shared_data() -> None:
    path = datasets.bundled_sample_path()
    assert path.is_file() and path.stat().st_size < 5 * 1024 * 1024
    sample = datasets.load_bundled_sample()
    assert sample.shape == (218, 128, 64) and sample.rio.crs.to_epsg() == 32633
    assert not np.isnan(sample.values).any()


def test_jasper_ridge(shared: Path) -> None:
    _need(shared, "jasper_ridge_aviris")
    da = datasets.load_jasper_ridge()
    assert da.shape == (198, 100, 100) and da.dtype == np.float32
    assert da.rio.crs is None and "evaluation only" in da.attrs["usage"]
    assert da["wavelength"].values[0] == pytest.approx(399.37, abs=0.01)
    assert da["wavelength"].values[-1] == pytest.approx(2457.24, abs=0.01)
    assert "fwhm" in da.coords and "bbl" in da.coords
    assert -0.1 < float(da.min()) and float(da.max()) < 1.0


def test_paris(shared: Path) -> None:
    _need(shared, "paris_hyperion_ali")
    hs, ms = datasets.load_paris()
    assert hs.shape == (128, 72, 72) and ms.shape == (9, 72, 72)
    assert hs["band"].values[0] == "B8" and hs["band"].values[-1] == "B219"
    assert hs["wavelength"].values[0] == pytest.approx(426.82, abs=0.05)
    assert hs["wavelength"].values[-1] == pytest.approx(2345.11, abs=0.05)
    assert np.all(np.diff(hs["wavelength"].values) > 0)
    assert "radiance" in hs.attrs["values_note"] and "evaluation only" in ms.attrs["usage"]
    assert 0 < float(hs.max()) < 2 and 0 < float(ms.max()) < 2


def test_evaluation_scenes(shared: Path) -> None:
    _need(shared, "jasper_ridge_aviris")
    _need(shared, "paris_hyperion_ali")
    scenes = datasets.load_evaluation_scenes()
    assert list(scenes) == ["jasper_ridge_aviris", "paris_hyperion"]
    xr.testing.assert_identical(scenes["jasper_ridge_aviris"], datasets.load_jasper_ridge())
    hs, _ = datasets.load_paris()
    paris = scenes["paris_hyperion"]
    np.testing.assert_array_equal(paris.values, hs.values / np.nanmax(hs.values))
    assert float(paris.max()) == 1.0 and "evaluation only" in paris.attrs["usage"]
    np.testing.assert_array_equal(paris["wavelength"].values, hs["wavelength"].values)


def test_lake_tahoe(shared: Path) -> None:
    _need(shared, "lake_tahoe_s2")
    da = datasets.load_lake_tahoe_s2()
    assert da.shape == (10, 100, 80)
    assert list(da["band"].values) == ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
    assert "presumed" in da.attrs["band_note"] and "evaluation only" in da.attrs["usage"]
    assert 0 <= float(da.min()) and float(da.max()) < 1


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError, match="not found"):
        datasets.load_enmap_potsdam_block(tmp_path)
    with pytest.raises(DcstsfInputError, match="not found"):
        datasets.load_jasper_ridge(tmp_path)

"""GeoTIFF and COG files: layout, codec, band descriptions and tags."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio

from dcstsf.io import open_raster, write_raster
from dcstsf.io.geotiff import creation_options, gtiff_tags, tile_shape
from tests.io.rasters import assert_same_raster, reflectance_cube


def test_geotiff_layout_and_band_metadata(tmp_path: Path) -> None:
    out = write_raster(reflectance_cube(h=40, w=40), tmp_path / "t.tif", blocksize=16)
    with rasterio.open(out) as src:
        assert src.profile["tiled"] and src.block_shapes[0] == (16, 16)
        assert src.compression is not None and src.compression.name == "deflate"
        assert src.descriptions == ("B02", "B03", "B04", "B05")
        assert float(src.tags(1)["wavelength"]) == 450.0
        assert src.tags()["method"] == "unit-test"


def test_geotiff_is_band_interleaved_with_the_predictor_asked_for(tmp_path: Path) -> None:
    da = reflectance_cube(h=40, w=40)
    plain = write_raster(da, tmp_path / "plain.tif", compress="zstd")
    with rasterio.open(plain) as src:
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["INTERLEAVE"] == "BAND" and structure["COMPRESSION"] == "ZSTD"
        assert structure.get("PREDICTOR", "1") == "1"  # float output: no predictor by default
    floated = write_raster(da, tmp_path / "float.tif", compress="zstd", predictor="float")
    with rasterio.open(floated) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
    assert_same_raster(open_raster(floated), da)
    counts = write_raster(da, tmp_path / "int.tif", dtype="int16", scale=1e-4)
    with rasterio.open(counts) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"  # integers: horizontal by default


def test_cog_output(tmp_path: Path) -> None:
    da = reflectance_cube(h=300, w=300)
    out = write_raster(da, tmp_path / "c.tif", cog=True)
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.overviews(1)
    assert_same_raster(open_raster(out), da)
    assert sorted(os.listdir(tmp_path)) == ["c.tif"]


def test_tiles_are_the_blocksize_or_the_image_side_rounded_up_to_16() -> None:
    assert tile_shape(1000, 1000, blocksize=256) == (256, 256)
    assert tile_shape(20, 40, blocksize=256) == (32, 48)
    assert tile_shape(5, 300, blocksize=256) == (16, 256)
    options = creation_options(20, 300, blocksize=256, codec={"compress": "zstd", "zstd_level": 1})
    assert options == {
        "tiled": True, "blockxsize": 256, "blockysize": 32, "interleave": "band", "bigtiff": "IF_SAFER",
        "num_threads": "ALL_CPUS", "compress": "zstd", "zstd_level": 1,
    }


def test_tags_carry_band_metadata_attrs_and_integer_scales() -> None:
    da = reflectance_cube()
    tags = gtiff_tags(da, dtype=np.dtype("int16"), scale=np.full(4, 1e-4), offset=None)
    assert tags["band_tags"][0] == {"wavelength": "450.0", "wavelength_units": "Nanometers", "fwhm": "20.0", "bbl": "1"}
    assert tags["scales"] == (1e-4,) * 4 and tags["offsets"] == (0.0,) * 4
    assert tags["method"] == "unit-test"
    floats = gtiff_tags(da, dtype=np.dtype("float32"), scale=None, offset=None)
    assert "scales" not in floats and "offsets" not in floats

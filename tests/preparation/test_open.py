"""open_product recognises each product by its layout and gives the reader's result; anything else gets an
error listing the accepted forms."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from dcstsf.errors import DcstsfInputError
from dcstsf.products import (
    ProductOptions,
    is_product,
    open_product,
    product_kind,
    read_ahsi,
    read_enmap_l2a,
    read_prisma_l2d,
    read_sentinel2_l2a,
    read_sentinel2_stac,
)
from tests.io.rasters import make_tif
from tests.preparation.scenes import fine_cube, ms_reflectance, tile_transform, write_enmap, write_safe
from tests.products.test_prisma import make_he5
from tests.products.test_stac import write_item

BANDS = ("B02", "B03", "B04", "B08")


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("products")
    fine, wl, fwhm = fine_cube(8)
    scl = np.full((12, 12), 4, np.uint8)
    safe = write_safe(root / "s2", ms_reflectance(fine, sensor="sentinel-2a", bands=BANDS), spacecraft="Sentinel-2A",
                      scl=scl).safe
    enmap = write_enmap(root / "enmap", fine[:, :6, :6], wl, fwhm, transform=tile_transform(0, 0, 30.0))
    item, _ = write_item(root / "stac", layout="es", properties={
        "platform": "sentinel-2a", "s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True})
    he5 = make_he5(root / "PRS_L2D_STD_20230701101010_20230701101014_0001.he5")["path"]
    ahsi = root / "ahsi"
    ahsi.mkdir()
    refl = np.random.default_rng(0).uniform(0.02, 0.5, (4, 6, 6)).astype(np.float32)
    for part, wls in (("VN", [450.0, 550.0]), ("SW", [1600.0, 2200.0])):
        tags = [{"wavelength": str(w), "wavelength_units": "Nanometers", "fwhm": "10"} for w in wls]
        sl = slice(0, 2) if part == "VN" else slice(2, 4)
        make_tif(ahsi / f"ZY1E_AHSI_E13.00_N45.10_20230701_reflectance_{part}.tif", refl[sl], band_tags=tags)
    plain = make_tif(root / "cube.tif", refl)
    # a user's own file that merely mentions the sensor is read as a plain raster, as dcstsf fuse always did
    named = make_tif(root / "ahsi_t1.tif", refl)
    return {"safe": safe, "enmap": enmap, "stac": item, "prisma": he5, "ahsi": ahsi, "plain": plain, "named": named,
            "root": root}


def test_each_layout_is_recognised(products: dict[str, Path]) -> None:
    kinds = {
        products["safe"]: "sentinel2-safe",
        products["safe"] / "MTD_MSIL2A.xml": "sentinel2-safe",
        products["safe"].parent: "sentinel2-safe",  # a folder holding one .SAFE
        products["stac"]: "sentinel2-stac",
        products["enmap"]: "enmap",
        next(products["enmap"].glob("*-METADATA.XML")): "enmap",
        products["prisma"]: "prisma",
        products["ahsi"]: "ahsi",
        next(products["ahsi"].glob("*_VN.tif")): "ahsi",
    }
    for path, kind in kinds.items():
        assert product_kind(path) == kind, path
        assert is_product(path)
    for path in (products["plain"], products["named"], products["root"] / "missing.SAFE", products["root"]):
        assert product_kind(path) is None and not is_product(path)


def test_dispatch_gives_the_readers_result(products: dict[str, Path]) -> None:
    opts = ProductOptions(ms_bands=BANDS, chunks=None)
    pairs = [
        (open_product(products["safe"], role="ms", options=opts),
         read_sentinel2_l2a(products["safe"], bands=BANDS, chunks=None)),
        (open_product(products["stac"], role="ms", options=opts),
         read_sentinel2_stac(products["stac"], bands=BANDS, chunks=None)),
        (open_product(products["enmap"], options=opts), read_enmap_l2a(products["enmap"])),
        (open_product(products["prisma"], options=opts), read_prisma_l2d(products["prisma"])),
    ]
    vn = next(products["ahsi"].glob("*_VN.tif"))
    sw = next(products["ahsi"].glob("*_SW.tif"))
    merged = read_ahsi(vn, swir=sw)
    pairs += [(open_product(products["ahsi"], options=opts), merged), (open_product(sw, options=opts), merged)]
    for got, want in pairs:
        np.testing.assert_array_equal(got.values, want.values)
        np.testing.assert_array_equal(got["wavelength"].values, want["wavelength"].values)
        assert got.attrs["sensor"] == want.attrs["sensor"]
        assert got.encoding["source"]
    assert merged.sizes["band"] == 4


def test_product_in_the_wrong_role(products: dict[str, Path]) -> None:
    with pytest.raises(DcstsfInputError, match=r"\.SAFE: a Sentinel-2 L2A \.SAFE product was given as the "
                                               r"hyperspectral input.*Give it as a multispectral input"):
        open_product(products["safe"], role="hs")
    with pytest.raises(DcstsfInputError, match=r"an EnMAP product was given as a multispectral input.*HS_PRODUCT"):
        open_product(products["enmap"], role="ms")


def test_anything_else_lists_the_accepted_forms(products: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError) as err:
        open_product(products["plain"], role="hs")
    text = str(err.value)
    assert str(products["plain"]) in text
    for form in ("EnMAP L2A product folder", "PRISMA L2D .he5", "AHSI"):
        assert form in text
    with pytest.raises(DcstsfInputError, match=r"Sentinel-2 L2A \.SAFE folder.*STAC item"):
        open_product(tmp_path, role="ms")
    packed = tmp_path / "S2A_MSIL2A_20230701.zip"
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("x.txt", "x")
    with pytest.raises(DcstsfInputError, match=r"\.zip: a packed download\. Unpack it"):
        open_product(packed, role="ms")
    with pytest.raises(DcstsfInputError, match=r"nowhere\.SAFE: not found"):
        open_product(tmp_path / "nowhere.SAFE", role="ms")

"""EnMAP L2A reader: products built here to the documented layout from a real EnMAP tile, and the tiles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from dcstsf import datasets
from dcstsf.errors import DcstsfInputError
from dcstsf.products.enmap import EnmapOptions, enmap_processing_level, read_enmap_l2a
from tests.io.rasters import make_tif


def _tile_path() -> Path:
    try:
        return datasets.shared_data_dir() / "enmap_potsdam" / "tiles" / "enmap_potsdam_tile_160_64.tif"
    except DcstsfInputError:
        return Path("shared data folder not available")


TILE = _tile_path()
BASE = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"
NODATA = -32768

pytestmark = pytest.mark.skipif(not TILE.is_file(), reason="shared EnMAP tiles not available")


def _tile() -> tuple[np.ndarray, np.ndarray, np.ndarray, object, object]:
    """Stored values (int16), band centres and FWHM, CRS and transform of the real Potsdam tile."""
    with rasterio.open(TILE) as src:
        stored = src.read().astype(np.int16)  # integral floats in the file
        wl = np.array([float(src.tags(i + 1)["wavelength"]) for i in range(src.count)])
        fwhm = np.array([float(src.tags(i + 1)["fwhm"]) for i in range(src.count)])
        return stored, wl, fwhm, src.crs, src.transform


def _gains_offsets(n: int) -> tuple[np.ndarray, np.ndarray]:
    # Different per band, so that a reader applying one band's gain to another fails.
    k = np.arange(n)
    return 1e-4 * (1.0 + 0.5 * (k % 3)), 0.002 * (k % 2)


def _xml(level: str, wl: np.ndarray, fwhm: np.ndarray, gains: np.ndarray, offsets: np.ndarray, *,
         empty: set[int], image_name: str, band_table: bool = True) -> str:
    bands = "".join(
        f'<bandID number="{i + 1}"><wavelengthCenterOfBand>{float(wl[i])!r}</wavelengthCenterOfBand>'
        f"<FWHMOfBand>{float(fwhm[i])!r}</FWHMOfBand><GainOfBand>{float(gains[i])!r}</GainOfBand>"
        f"<OffsetOfBand>{float(offsets[i])!r}</OffsetOfBand></bandID>"
        for i in range(wl.size)
    )
    stats = "".join(
        f'<bandID number="{i + 1}"><wavelength>{float(wl[i])!r}</wavelength>'
        + ("<mean>-1000000</mean><stdDeviation>0</stdDeviation>" if i in empty else
           "<mean>812.5</mean><stdDeviation>301.2</stdDeviation>")
        + "</bandID>"
        for i in range(wl.size)
    )
    char = f"<bandCharacterisation>{bands}</bandCharacterisation>" if band_table else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<level_X>'
        f"<metadata><schema><processingLevel>{level}</processingLevel></schema></metadata>"
        f"<base><level>{level}</level></base>"
        f"<specific><code>{level}</code>{char}</specific>"
        f"<product><image><merge><name>{image_name}</name></merge></image>"
        f"<bandStatistics>{stats}</bandStatistics></product></level_X>"
    )


def _masks(h: int, w: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    cloud = (rng.random((h, w)) < 0.10).astype(np.uint8)
    shadow = (rng.random((h, w)) < 0.05).astype(np.uint8)
    haze = (rng.random((h, w)) < 0.05).astype(np.uint8)
    snow = np.zeros((h, w), np.uint8)
    cirrus = rng.choice(np.array([0, 1, 2, 3, 255], np.uint8), size=(h, w), p=[0.85, 0.03, 0.03, 0.03, 0.06])
    return {"CLOUD": cloud, "CLOUDSHADOW": shadow, "HAZE": haze, "SNOW": snow, "CIRRUS": cirrus}


def make_product(root: Path, *, level: str = "L2A", fmt: str = "TIF", band_table: bool = True) -> dict:
    """An unpacked EnMAP product folder: METADATA.XML, SPECTRAL_IMAGE and the quality masks."""
    stored, wl, fwhm, crs, transform = _tile()
    n, h, w = stored.shape
    gains, offsets = _gains_offsets(n)
    empty = set(np.flatnonzero((stored == NODATA).all(axis=(1, 2))).tolist())
    base = BASE.replace("L2A", level)
    root.mkdir(parents=True, exist_ok=True)
    image = root / f"{base}-SPECTRAL_IMAGE.{fmt}"
    if fmt == "TIF":
        make_tif(image, stored, crs=crs.to_string(), transform=transform, nodata=NODATA)
    else:
        profile = dict(driver="ENVI", width=w, height=h, count=n, dtype="int16", crs=crs, transform=transform,
                       nodata=NODATA, interleave={"BSQ": "band", "BIL": "line"}[fmt])
        with rasterio.open(image, "w", **profile) as dst:
            dst.write(stored)
    xml = root / f"{base}-METADATA.XML"
    xml.write_text(_xml(level, wl, fwhm, gains, offsets, empty=empty, image_name=image.name, band_table=band_table))
    masks = _masks(h, w)
    for name, values in masks.items():
        make_tif(root / f"{base}-QL_QUALITY_{name}.TIF", values[None], crs=crs.to_string(), transform=transform)
    return dict(root=root, xml=xml, image=image, stored=stored, wl=wl, fwhm=fwhm, gains=gains, offsets=offsets,
                masks=masks, empty=empty, crs=crs, transform=transform)


def expected_reflectance(prod: dict, masks: tuple[str, ...] = ("CLOUD", "CLOUDSHADOW", "HAZE", "SNOW", "CIRRUS"))\
        -> tuple[np.ndarray, np.ndarray]:
    """Reflectance by the documented formula and the flagged pixels, computed from the stored integers."""
    stored = prod["stored"].astype(np.float64)
    refl = stored * prod["gains"][:, None, None] + prod["offsets"][:, None, None]
    refl[prod["stored"] == NODATA] = np.nan
    m = prod["masks"]
    flags = np.zeros(stored.shape[1:], bool)
    for name in masks:
        flags |= np.isin(m[name], (1, 2, 3)) if name == "CIRRUS" else m[name] == 1
    refl[:, flags] = np.nan
    return refl, flags


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_product(tmp_path_factory.mktemp("enmap") / "product")


def test_reads_product_folder_as_masked_reflectance(product: dict) -> None:
    da = read_enmap_l2a(product["root"])
    assert da.chunks is not None, "lazy by default"
    assert da.dtype == np.float32 and da.dims == ("band", "y", "x")
    expected, flags = expected_reflectance(product)
    got = da.values.astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    # float32 output of stored x gain + offset: relative error below float32 resolution (~6e-8) plus rounding
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert da.attrs["masked_fraction"] == pytest.approx(flags.mean())
    assert 0.1 < da.attrs["masked_fraction"] < 0.5
    assert da.attrs["sensor"] == "enmap" and da.attrs["processing_level"] == "L2A"
    assert da.attrs["product_path"] == str(product["root"])
    assert da.attrs["acquisition_time"] == "2022-07-24T10:45:26Z"  # the datatake's start, from the file names
    assert da.rio.crs == product["crs"] and da.rio.transform() == product["transform"]
    np.testing.assert_array_equal(da["wavelength"].values, product["wl"])
    np.testing.assert_array_equal(da["fwhm"].values, product["fwhm"])
    assert list(da["band"].values[:2]) == ["B001", "B002"]  # the registered "enmap" sensor's names
    bad = np.flatnonzero(da["bbl"].values == 0)
    assert set(bad.tolist()) == product["empty"] and len(bad) == 6


def test_xml_and_image_paths_read_the_same(product: dict) -> None:
    a = read_enmap_l2a(product["xml"], options=EnmapOptions(chunks=None))
    b = read_enmap_l2a(product["image"], options=EnmapOptions(chunks=None))
    assert a.chunks is None
    np.testing.assert_array_equal(a.values, b.values)
    assert enmap_processing_level(product["xml"]) == "L2A"
    assert enmap_processing_level(product["root"]) == "L2A"


@pytest.mark.parametrize("fmt", ["BSQ", "BIL"])
def test_envi_spectral_image(tmp_path: Path, fmt: str) -> None:
    prod = make_product(tmp_path / "p", fmt=fmt)
    da = read_enmap_l2a(prod["root"], options=EnmapOptions(chunks=None))
    expected, _ = expected_reflectance(prod)
    np.testing.assert_allclose(da.values, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert da.rio.crs == prod["crs"]


def test_chosen_masks_only(product: dict) -> None:
    none = read_enmap_l2a(product["root"], options=EnmapOptions(masks=(), chunks=None))
    assert none.attrs["masked_fraction"] == 0.0 and none.attrs["quality_masks"] == "none"
    expected, _ = expected_reflectance(product, masks=())
    np.testing.assert_allclose(none.values, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    cloud = read_enmap_l2a(product["root"], options=EnmapOptions(masks=("cloud",), chunks=None))
    expected, flags = expected_reflectance(product, masks=("CLOUD",))
    assert np.array_equal(np.isnan(cloud.values), np.isnan(expected))
    assert cloud.attrs["masked_fraction"] == pytest.approx(flags.mean())
    # cirrus 255 is the mask's nodata, not a cirrus class
    cirrus = read_enmap_l2a(product["root"], options=EnmapOptions(masks=("cirrus",), chunks=None))
    assert cirrus.attrs["masked_fraction"] == pytest.approx(np.isin(product["masks"]["CIRRUS"], (1, 2, 3)).mean())


@pytest.mark.parametrize(("level", "words"), [("L1B", "radiance in sensor geometry"), ("L1C", "orthorectified"),
                                              ("L0", "raw")])
def test_other_levels_refused(tmp_path: Path, level: str, words: str) -> None:
    prod = make_product(tmp_path / "p", level=level)
    with pytest.raises(DcstsfInputError, match=f"EnMAP {level} product") as err:
        read_enmap_l2a(prod["root"])
    assert words in str(err.value) and prod["xml"].name in str(err.value) and "L2A product" in str(err.value)
    assert enmap_processing_level(prod["xml"]) == level


def test_missing_xml(tmp_path: Path) -> None:
    prod = make_product(tmp_path / "p")
    prod["xml"].unlink()
    with pytest.raises(DcstsfInputError, match="METADATA.XML of .* is missing") as err:
        read_enmap_l2a(prod["image"])
    assert prod["xml"].name in str(err.value)


def test_missing_image(tmp_path: Path) -> None:
    prod = make_product(tmp_path / "p")
    prod["image"].unlink()
    with pytest.raises(DcstsfInputError, match="spectral image of this product is missing") as err:
        read_enmap_l2a(prod["root"])
    assert prod["image"].name in str(err.value) and "unpack the complete product" in str(err.value).lower()


def test_xml_without_band_characterisation(tmp_path: Path) -> None:
    prod = make_product(tmp_path / "p", band_table=False)
    with pytest.raises(DcstsfInputError, match="no band characterisation") as err:
        read_enmap_l2a(prod["root"])
    assert prod["xml"].name in str(err.value)


def test_band_count_mismatch(tmp_path: Path) -> None:
    prod = make_product(tmp_path / "p")
    text = prod["xml"].read_text()
    cut = text.index('<bandID number="224">')
    prod["xml"].write_text(text[:cut] + text[text.index("</bandID>", cut) + len("</bandID>"):])
    with pytest.raises(DcstsfInputError, match="224 bands but .* describes 223"):
        read_enmap_l2a(prod["root"])


def test_missing_mask(tmp_path: Path) -> None:
    prod = make_product(tmp_path / "p")
    (prod["root"] / f"{BASE}-QL_QUALITY_HAZE.TIF").unlink()
    with pytest.raises(DcstsfInputError, match="haze quality mask is missing") as err:
        read_enmap_l2a(prod["root"])
    assert "EnmapOptions(masks=" in str(err.value) and "QL_QUALITY_HAZE" in str(err.value)
    da = read_enmap_l2a(prod["root"], options=EnmapOptions(masks=("cloud", "cloudshadow", "snow", "cirrus")))
    assert da.attrs["masked_fraction"] > 0


def test_not_a_product(tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError, match="no \\*-METADATA.XML"):
        read_enmap_l2a(tmp_path)
    with pytest.raises(DcstsfInputError, match="file not found"):
        read_enmap_l2a(tmp_path / "nothing")
    with pytest.raises(DcstsfInputError, match="unknown EnMAP quality mask"):
        read_enmap_l2a(make_product(tmp_path / "p")["root"], options=EnmapOptions(masks=("clouds",)))


def test_real_tile_needs_a_level_then_reads_as_stored() -> None:
    with pytest.raises(DcstsfInputError, match="EnmapOptions\\(level='L2A'\\)") as err:
        read_enmap_l2a(TILE)
    assert TILE.name in str(err.value)
    da = read_enmap_l2a(TILE, options=EnmapOptions(level="L2A"))
    with rasterio.open(TILE) as src:
        raw = src.read().astype(np.float64)
        scale = np.array(src.scales)
    expected = np.where(raw == NODATA, np.nan, raw * scale[:, None, None])
    np.testing.assert_allclose(da.values, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert da.attrs["sensor"] == "enmap" and da.attrs["masked_fraction"] == 0.0
    assert da["band"].values[0] == "B001" and da.sizes["band"] == 224
    # real Potsdam L2A reflectance: visible bands of an urban scene lie within (0, 0.7)
    vis = da.sel(band=(da["wavelength"] > 450) & (da["wavelength"] < 700)).values
    assert 0.0 < np.nanmin(vis) and np.nanmax(vis) < 0.7


def test_real_tile_named_as_l1b_is_refused(tmp_path: Path) -> None:
    named = tmp_path / f"{BASE.replace('L2A', 'L1B')}-SPECTRAL_IMAGE_VNIR.TIF"
    shutil.copy(TILE, named)
    with pytest.raises(DcstsfInputError, match="EnMAP L1B product"):
        read_enmap_l2a(named, options=EnmapOptions(level="L2A"))

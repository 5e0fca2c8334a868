"""Sentinel-2 L2A .SAFE reader: a small product written to the documented layout, values checked from
the digital numbers by ESA's formula, reflectance = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from dcstsf import sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.products.scl import SclOptions
from dcstsf.products.sentinel2 import DEFAULT_BANDS, read_sentinel2_l2a

CRS = "EPSG:32633"
# Upper-left corner of the tile; the 10, 20 and 60 m grids share it.
ORIGIN = (399960.0, 5000040.0)
SIZE_10M = 24  # 10 m pixels each side: 12 at 20 m, 4 at 60 m
TILE, STAMP = "T33UUP", "20230701T100031"
GRANULE = "L2A_T33UUP_A041904_20230701T100500"
RES = {
    "B02": 10,
    "B03": 10,
    "B04": 10,
    "B08": 10,
    "B05": 20,
    "B06": 20,
    "B07": 20,
    "B8A": 20,
    "B11": 20,
    "B12": 20,
    "B01": 60,
    "B09": 60,
    "SCL": 20,
}
# Spectral_Information bandId -> physicalBand and RESOLUTION, as MTD_MSIL2A.xml lists them.
PHYSICAL = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
PHYSICAL_RES = [60, 10, 10, 10, 20, 20, 20, 10, 20, 60, 60, 20, 20]
QUANT = 10000.0
# Per-band offsets, distinct so that the band_id -> band mapping is checked (ESA's products use -1000).
OFFSETS = {name: -1000.0 - 10.0 * i for i, name in enumerate(PHYSICAL)}

MTD = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:{root} xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
    <n1:General_Info>
        <Product_Info>
            <PRODUCT_URI>{name}.SAFE</PRODUCT_URI>
            <PROCESSING_LEVEL>{level}</PROCESSING_LEVEL>
            <PRODUCT_TYPE>{product_type}</PRODUCT_TYPE>
            <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
            <Datatake datatakeIdentifier="G{unit}_20230701T100031_041904_N{baseline}">
                <SPACECRAFT_NAME>{spacecraft}</SPACECRAFT_NAME>
                <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
            </Datatake>
            <Product_Organisation>
                <Granule_List>
                    <Granule granuleIdentifier="{unit}_OPER_MSI_L2A_TL_2APS_T33UUP" imageFormat="JPEG2000">
{image_files}
                    </Granule>
                </Granule_List>
            </Product_Organisation>
        </Product_Info>
        <Product_Image_Characteristics>
            <Special_Values>
                <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
                <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>
            </Special_Values>
            <QUANTIFICATION_VALUES_LIST>
                <BOA_QUANTIFICATION_VALUE unit="none">{quant:g}</BOA_QUANTIFICATION_VALUE>
            </QUANTIFICATION_VALUES_LIST>
{offsets}
            <Spectral_Information_List>
{spectral}
            </Spectral_Information_List>
        </Product_Image_Characteristics>
    </n1:General_Info>
</n1:{root}>
"""


@dataclass
class Product:
    """A written .SAFE folder and the digital numbers in it."""

    safe: Path
    dn: dict[str, np.ndarray] = field(default_factory=dict)

    def file(self, band: str) -> Path:
        res = RES[band]
        return self.safe / "GRANULE" / GRANULE / "IMG_DATA" / f"R{res}m" / f"{TILE}_{STAMP}_{band}_{res}m.jp2"


def write_jp2(path: Path, data: np.ndarray, res: int) -> None:
    """A lossless JPEG 2000 raster on the tile grid at ``res`` metres."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="JP2OpenJPEG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=CRS,
        transform=from_origin(*ORIGIN, res, res),
        QUALITY=100,
        REVERSIBLE="YES",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def mtd_text(
    *,
    baseline: str,
    spacecraft: str,
    files: list[str],
    offsets: bool,
    product_type: str = "S2MSI2A",
    level: str = "Level-2A",
    root: str = "Level-2A_User_Product",
) -> str:
    """MTD_MSIL2A.xml with the fields the reader looks up, in their places of the real file."""
    unit = "S2" + spacecraft[-1]
    offset_xml = ""
    if offsets:
        rows = "\n".join(
            f'                <BOA_ADD_OFFSET band_id="{i}">{OFFSETS[p]:g}</BOA_ADD_OFFSET>'
            for i, p in enumerate(PHYSICAL)
        )
        offset_xml = f"            <BOA_ADD_OFFSET_VALUES_LIST>\n{rows}\n            </BOA_ADD_OFFSET_VALUES_LIST>"
    spectral = "\n".join(
        f'                <Spectral_Information bandId="{i}" physicalBand="{p}"><RESOLUTION>{r}</RESOLUTION>'
        "</Spectral_Information>"
        for i, (p, r) in enumerate(zip(PHYSICAL, PHYSICAL_RES))
    )
    image_files = "\n".join(f"                        <IMAGE_FILE>{f}</IMAGE_FILE>" for f in files)
    return MTD.format(
        root=root,
        name=f"{unit}_MSIL2A_{STAMP}_N{baseline.replace('.', '')}_R122_{TILE}",
        level=level,
        product_type=product_type,
        baseline=baseline,
        unit=unit,
        spacecraft=spacecraft,
        image_files=image_files,
        quant=QUANT,
        offsets=offset_xml,
        spectral=spectral,
    )


def expected(dn: np.ndarray, band: str, *, baseline_04: bool) -> np.ndarray:
    """ESA's formula, NaN for DN 0 (no data)."""
    add = OFFSETS["B" + str(int(band[1:])) if band != "B8A" else "B8A"] if baseline_04 else 0.0
    out = (dn.astype(np.float64) + add) / QUANT
    return np.where(dn == 0, np.nan, out)


def make_product(
    root: Path,
    *,
    baseline: str = "05.10",
    spacecraft: str = "Sentinel-2B",
    seed: int = 0,
    scl: np.ndarray | None = None,
    bands: tuple[str, ...] = (*DEFAULT_BANDS, "B01", "B09"),
) -> Product:
    unit = "S2" + spacecraft[-1]
    safe = root / f"{unit}_MSIL2A_{STAMP}_N{baseline.replace('.', '')}_R122_{TILE}_20230701T150000.SAFE"
    product = Product(safe)
    rng = np.random.default_rng(seed)
    files = []
    for band in (*bands, "SCL"):
        n = SIZE_10M * 10 // RES[band]
        if band == "SCL":
            data = np.full((n, n), 4, np.uint8) if scl is None else scl.astype(np.uint8)
        else:
            data = rng.integers(1200, 9000, (n, n)).astype(np.uint16)
            data[-1, -1] = 0  # a no-data pixel in every band
        product.dn[band] = data
        write_jp2(product.file(band), data, RES[band])
        files.append(product.file(band).relative_to(safe).with_suffix("").as_posix())
    baseline_04 = float(baseline) >= 4.0
    text = mtd_text(baseline=baseline, spacecraft=spacecraft, files=files, offsets=baseline_04)
    (safe / "MTD_MSIL2A.xml").write_text(text, encoding="utf-8")
    return product


def bilinear_2x(coarse: np.ndarray) -> np.ndarray:
    """Interior values of a 2x bilinear upsampling with pixel centres aligned: each 10 m centre lies 5 m
    (a quarter of a 20 m pixel) from its nearest 20 m centre, so the weights are 3/4 and 1/4 per axis."""
    c = coarse.astype(np.float64)
    n = c.shape[0]
    out = np.full((2 * n, 2 * n), np.nan)
    for i in range(2 * n):
        for j in range(2 * n):
            ci, cj = (i - 0.5) / 2.0, (j - 0.5) / 2.0  # fine centre in coarse pixel-index units
            i0, j0 = int(np.floor(ci)), int(np.floor(cj))
            if i0 < 0 or j0 < 0 or i0 + 1 >= n or j0 + 1 >= n:
                continue
            fi, fj = ci - i0, cj - j0
            out[i, j] = (
                (1 - fi) * (1 - fj) * c[i0, j0]
                + (1 - fi) * fj * c[i0, j0 + 1]
                + fi * (1 - fj) * c[i0 + 1, j0]
                + fi * fj * c[i0 + 1, j0 + 1]
            )
    return out


@pytest.fixture(scope="module")
def s2b(tmp_path_factory: pytest.TempPathFactory) -> Product:
    return make_product(tmp_path_factory.mktemp("s2b"), baseline="05.10", spacecraft="Sentinel-2B")


@pytest.fixture(scope="module")
def s2a_old(tmp_path_factory: pytest.TempPathFactory) -> Product:
    return make_product(tmp_path_factory.mktemp("s2a"), baseline="02.14", spacecraft="Sentinel-2A", seed=1)


def test_baseline_0400_and_later_applies_boa_add_offset(s2b: Product) -> None:
    cube = read_sentinel2_l2a(s2b.safe, scl=None)
    assert cube.dtype == np.float32 and cube.dims == ("band", "y", "x")
    for band in ("B02", "B03", "B04", "B08"):
        np.testing.assert_allclose(
            cube.sel(band=band).values, expected(s2b.dn[band], band, baseline_04=True), rtol=0, atol=1e-6
        )
    assert cube.attrs["processing_baseline"] == "05.10"


def test_baseline_before_0400_has_no_offset(s2a_old: Product) -> None:
    cube = read_sentinel2_l2a(s2a_old.safe, bands=["B02", "B08"], scl=None, chunks=None)
    assert isinstance(cube.data, np.ndarray)
    for band in ("B02", "B08"):
        np.testing.assert_allclose(
            cube.sel(band=band).values, expected(s2a_old.dn[band], band, baseline_04=False), rtol=0, atol=1e-6
        )


def test_spacecraft_picks_the_sensor(s2b: Product, s2a_old: Product) -> None:
    b = read_sentinel2_l2a(s2b.safe, scl=None)
    a = read_sentinel2_l2a(s2a_old.safe, scl=None)
    assert (b.attrs["sensor"], b.attrs["spacecraft"]) == ("sentinel-2b", "Sentinel-2B")
    assert (a.attrs["sensor"], a.attrs["spacecraft"]) == ("sentinel-2a", "Sentinel-2A")
    for cube, name in ((a, "sentinel-2a"), (b, "sentinel-2b")):
        ref = sensors.get(name).select(list(DEFAULT_BANDS))
        np.testing.assert_array_equal(cube["wavelength"].values, ref.centers_nm)
        np.testing.assert_array_equal(cube["fwhm"].values, ref.fwhm_nm)
    # The two units' band centres differ (B12: about 2202 vs 2186 nm), so each date gets its own.
    assert abs(float(a["wavelength"].sel(band="B12")) - float(b["wavelength"].sel(band="B12"))) > 10
    assert b.attrs["product_path"] == str(s2b.safe.resolve())
    assert b.rio.crs.to_epsg() == 32633


def test_acquisition_time_from_the_metadata(tmp_path: Path) -> None:
    product = make_product(tmp_path)
    assert "acquisition_time" not in read_sentinel2_l2a(product.safe, scl=None).attrs  # not in the file
    mtd = product.safe / "MTD_MSIL2A.xml"
    mtd.write_text(mtd.read_text().replace(
        "<PRODUCT_URI>", "<PRODUCT_START_TIME>2023-07-01T10:00:31.024Z</PRODUCT_START_TIME>\n            <PRODUCT_URI>"))
    assert read_sentinel2_l2a(product.safe, scl=None).attrs["acquisition_time"] == "2023-07-01T10:00:31.024Z"


def test_20m_bands_lie_on_the_10m_grid_with_shared_corners(s2b: Product) -> None:
    cube = read_sentinel2_l2a(s2b.safe, bands=["B05", "B02", "B12", "B01"], scl=None)
    assert cube.sizes["y"] == cube.sizes["x"] == SIZE_10M
    assert tuple(cube.rio.transform())[:6] == (10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])
    with rasterio.open(s2b.file("B05")) as src20, rasterio.open(s2b.file("B02")) as src10:
        assert cube.rio.bounds() == tuple(src20.bounds) == tuple(src10.bounds)
    # 20 m -> 10 m: bilinear, checked at interior pixels away from the no-data corner pixel
    for band in ("B05", "B12"):
        refl20 = expected(s2b.dn[band], band, baseline_04=True)
        want = bilinear_2x(refl20)
        got = cube.sel(band=band).values
        inner = np.isfinite(want)
        inner[-3:, :] = inner[:, -3:] = False
        assert inner.sum() > 300
        np.testing.assert_allclose(got[inner], want[inner], rtol=0, atol=2e-6)
    # 60 m -> 10 m keeps the grid too
    assert np.isfinite(cube.sel(band="B01").values[:18, :18]).all()


def test_band_order_follows_the_caller(s2b: Product) -> None:
    cube = read_sentinel2_l2a(s2b.safe, bands=["B8A", "b2", "B5"], scl=None)
    assert list(cube["band"].values) == ["B8A", "B02", "B05"]
    np.testing.assert_allclose(cube.sel(band="B02").values, expected(s2b.dn["B02"], "B02", baseline_04=True), atol=1e-6)
    ref = sensors.get("sentinel-2b").select(["B8A", "B02", "B05"])
    np.testing.assert_array_equal(cube["wavelength"].values, ref.centers_nm)


def test_metadata_file_path_reads_the_same_product(s2b: Product) -> None:
    a = read_sentinel2_l2a(s2b.safe, bands=["B03"], scl=None)
    b = read_sentinel2_l2a(s2b.safe / "MTD_MSIL2A.xml", bands=["B03"], scl=None)
    np.testing.assert_array_equal(a.values, b.values)
    assert hasattr(a.data, "dask")


def test_scl_classes_become_nodata_in_every_band(tmp_path: Path) -> None:
    scl = np.full((12, 12), 4, np.uint8)
    scl[2, 3] = 9  # cloud, high probability
    scl[5, 5] = 3  # cloud shadow
    scl[7, 1] = 11  # snow
    scl[8, 8] = 6  # water: kept
    scl[0, 11] = 10  # thin cirrus
    product = make_product(tmp_path, scl=scl, bands=DEFAULT_BANDS)
    cube = read_sentinel2_l2a(product.safe)
    masked20 = np.isin(scl, [0, 1, 3, 8, 9, 10, 11])
    masked10 = np.repeat(np.repeat(masked20, 2, axis=0), 2, axis=1)
    values = cube.values
    assert np.isnan(values[:, masked10]).all()
    nodata = np.zeros((SIZE_10M, SIZE_10M), bool)
    nodata[-2:, -2:] = True  # the DN-0 pixel of the 20 m bands covers a 2 x 2 block
    assert np.isfinite(values[:, ~masked10 & ~nodata]).all()
    assert cube.attrs["masked_fraction"] == pytest.approx(4 * 4 / SIZE_10M**2)
    # only high-probability clouds
    clouds = read_sentinel2_l2a(product.safe, scl=SclOptions.from_names(["cloud_high_proba"]))
    assert clouds.attrs["masked_fraction"] == pytest.approx(4 / SIZE_10M**2)
    assert np.isnan(clouds.values[:, 4:6, 6:8]).all() and np.isfinite(clouds.values[:, 10:12, 10:12]).all()


def test_masked_20m_values_do_not_leak_into_clear_neighbours(tmp_path: Path) -> None:
    scl = np.full((12, 12), 4, np.uint8)
    scl[4, 4] = 9
    product = make_product(tmp_path, scl=scl, bands=("B02", "B05"))
    dn = np.full((12, 12), 2000, np.uint16)
    dn[4, 4] = 9000  # a bright cloud
    write_jp2(product.file("B05"), dn, 20)
    cube = read_sentinel2_l2a(product.safe, bands=["B05"])
    got = cube.sel(band="B05").values
    clear = np.isfinite(got)
    assert clear.sum() == SIZE_10M**2 - 4
    np.testing.assert_allclose(got[clear], (2000 + OFFSETS["B5"]) / QUANT, atol=1e-6)


def test_missing_band_file_names_the_file(tmp_path: Path) -> None:
    product = make_product(tmp_path, bands=DEFAULT_BANDS)
    product.file("B11").unlink()
    with pytest.raises(DcstsfInputError, match=r"B11_20m\.jp2.*missing.*download the product again"):
        read_sentinel2_l2a(product.safe)
    # leaving it out works
    assert read_sentinel2_l2a(product.safe, bands=["B02", "B12"]).sizes["band"] == 2


def test_safe_without_metadata_is_refused(tmp_path: Path) -> None:
    product = make_product(tmp_path, bands=("B02",))
    (product.safe / "MTD_MSIL2A.xml").unlink()
    with pytest.raises(DcstsfInputError, match=r"\.SAFE: no MTD_MSIL2A\.xml.*unzipped \.SAFE folder"):
        read_sentinel2_l2a(product.safe, bands=["B02"])


def test_level_1c_is_refused(tmp_path: Path) -> None:
    product = make_product(tmp_path, bands=("B02",))
    l1c = tmp_path / "S2B_MSIL1C_20230701T100031_N0509_R122_T33UUP_20230701T120000.SAFE"
    shutil.copytree(product.safe, l1c)
    (l1c / "MTD_MSIL2A.xml").rename(l1c / "MTD_MSIL1C.xml")
    with pytest.raises(DcstsfInputError, match=r"MSIL1C.*Level-1C.*top-of-atmosphere.*Sen2Cor"):
        read_sentinel2_l2a(l1c, bands=["B02"])
    # a metadata file that says Level-1C
    (product.safe / "MTD_MSIL2A.xml").write_text(
        mtd_text(
            baseline="05.09",
            spacecraft="Sentinel-2B",
            files=[],
            offsets=True,
            product_type="S2MSI1C",
            level="Level-1C",
            root="Level-1C_User_Product",
        ),
        encoding="utf-8",
    )
    with pytest.raises(DcstsfInputError, match=r"MTD_MSIL2A\.xml: this is a Sentinel-2 Level-1C product.*S2MSI2A"):
        read_sentinel2_l2a(product.safe, bands=["B02"])


def test_unknown_band_name_is_refused(s2b: Product) -> None:
    with pytest.raises(DcstsfInputError, match=r"\.SAFE: unknown Sentinel-2 L2A band name\(s\) \['B13'\].*B8A"):
        read_sentinel2_l2a(s2b.safe, bands=["B02", "B13"])
    with pytest.raises(DcstsfInputError, match=r"more than once"):
        read_sentinel2_l2a(s2b.safe, bands=["B02", "B2"])


def test_sentinel_2c_responses_are_not_shipped(tmp_path: Path) -> None:
    if "sentinel-2c" in sensors.available():
        pytest.skip("Sentinel-2C responses are registered")
    product = make_product(tmp_path, spacecraft="Sentinel-2C", bands=("B02", "B03"))
    with pytest.raises(DcstsfInputError, match=r"MTD_MSIL2A\.xml: .*Sentinel-2C.*does not ship.*sensor='sentinel-2a'"):
        read_sentinel2_l2a(product.safe, bands=["B02"])
    cube = read_sentinel2_l2a(product.safe, bands=["B02", "B03"], sensor="sentinel-2b", scl=None)
    assert cube.attrs["sensor"] == "sentinel-2b" and cube.attrs["spacecraft"] == "Sentinel-2C"


def test_incomplete_metadata_for_baseline_0400(tmp_path: Path) -> None:
    product = make_product(tmp_path, bands=("B02",))
    mtd = product.safe / "MTD_MSIL2A.xml"
    text = mtd.read_text(encoding="utf-8")
    mtd.write_text(text.replace('<BOA_ADD_OFFSET band_id="1">-1010</BOA_ADD_OFFSET>', ""), encoding="utf-8")
    with pytest.raises(
        DcstsfInputError, match=r"MTD_MSIL2A\.xml: processing baseline 05\.10.*no BOA_ADD_OFFSET for B02"
    ):
        read_sentinel2_l2a(product.safe, bands=["B02"])

"""Sentinel-2 L2A STAC items (Earth Search and Planetary Computer layouts) with local COG hrefs; values
checked from the digital numbers by each catalogue's documented convention."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.transform import from_origin

from dcstsf import sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.products.stac import read_sentinel2_stac
from tests.products.test_sentinel2 import CRS, OFFSETS, ORIGIN, QUANT, SIZE_10M, mtd_text
from tests.products.test_sentinel2 import RES as SAFE_RES

# the bands a STAC item carries: the SAFE layout's without the 60 m atmospheric bands
RES = {band: res for band, res in SAFE_RES.items() if band not in ("B01", "B09")}
ES_KEYS = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B08": "nir",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B8A": "nir08",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}
EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def write_cog(path: Path, data: np.ndarray, res: int) -> list[float]:
    transform = from_origin(*ORIGIN, res, res)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=CRS,
        transform=transform,
        nodata=0,
        BLOCKSIZE=16,
    ) as dst:
        dst.write(data, 1)
    return list(transform)[:6]


def geometry() -> dict:
    """The footprint in lon/lat, as catalogues give it (odc-stac loads only items that overlap the grid)."""
    gb = GeoBox((SIZE_10M, SIZE_10M), from_origin(*ORIGIN, 10, 10), CRS)
    return gb.extent.to_crs("EPSG:4326").json


def write_item(
    folder: Path,
    *,
    layout: str,
    properties: dict,
    scl: np.ndarray | None = None,
    seed: int = 0,
    offset: float | None = -0.1,
    with_metadata: bool = True,
) -> tuple[Path, dict[str, np.ndarray]]:
    """An item JSON with relative hrefs to COGs beside it; Earth Search ("es") or Planetary Computer ("pc")."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dn: dict[str, np.ndarray] = {}
    assets: dict[str, dict] = {}
    for band, res in RES.items():
        n = SIZE_10M * 10 // res
        if band == "SCL":
            data = np.full((n, n), 4, np.uint8) if scl is None else scl.astype(np.uint8)
        else:
            data = rng.integers(1200, 9000, (n, n)).astype(np.uint16)
            data[0, 0] = 0
        dn[band] = data
        key = ES_KEYS[band] if layout == "es" else band
        transform = write_cog(folder / f"{band}.tif", data, res)
        asset = {
            "href": f"./{band}.tif",
            "type": COG,
            "roles": ["data"],
            "proj:shape": [n, n],
            "proj:transform": transform,
        }
        if layout == "es":
            rb = {"nodata": 0, "data_type": data.dtype.name, "spatial_resolution": res}
            if band != "SCL":
                rb.update({"bits_per_sample": 15, "scale": 0.0001})
                if offset is not None:
                    rb["offset"] = offset
            asset["raster:bands"] = [rb]
        assets[key] = asset
    if layout == "pc" and with_metadata:
        (folder / "MTD_MSIL2A.xml").write_text(
            mtd_text(
                baseline=properties["s2:processing_baseline"],
                spacecraft=properties["platform"],
                files=[],
                offsets=float(properties["s2:processing_baseline"]) >= 4.0,
            ),
            encoding="utf-8",
        )
        assets["product-metadata"] = {"href": "./MTD_MSIL2A.xml", "type": "application/xml", "roles": ["metadata"]}
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": EXTENSIONS,
        "id": f"S2_T33UUP_20230701_{layout}",
        "collection": "sentinel-2-l2a",
        "geometry": geometry(),
        "bbox": list(
            GeoBox((SIZE_10M, SIZE_10M), from_origin(*ORIGIN, 10, 10), CRS).extent.to_crs("EPSG:4326").boundingbox
        ),
        "properties": {
            "datetime": "2023-07-01T10:00:31Z",
            "proj:epsg": 32633,
            "s2:product_type": "S2MSI2A",
            **properties,
        },
        "links": [],
        "assets": assets,
    }
    path = folder / "item.json"
    path.write_text(json.dumps(item), encoding="utf-8")
    return path, dn


def refl(dn: np.ndarray, scale: float, offset: float) -> np.ndarray:
    return np.where(dn == 0, np.nan, dn.astype(np.float64) * scale + offset)


@pytest.mark.parametrize(("applied", "offset"), [(False, -0.1), (True, 0.0)])
def test_earth_search_offset_follows_the_flag(tmp_path: Path, applied: bool, offset: float) -> None:
    props = {"platform": "sentinel-2b", "s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": applied}
    path, dn = write_item(tmp_path, layout="es", properties=props)
    cube = read_sentinel2_stac(path, scl=None)
    assert list(cube["band"].values) == ["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12"]
    for band in ("B02", "B08"):
        np.testing.assert_allclose(cube.sel(band=band).values, refl(dn[band], 1e-4, offset), atol=1e-6)
    assert cube.attrs["sensor"] == "sentinel-2b" and cube.attrs["processing_baseline"] == "05.09"
    assert cube.attrs["product_path"] == str(path)
    # the caller's override wins over the item's flag
    other = read_sentinel2_stac(path, bands=["B02"], scl=None, boa_offset_applied=not applied)
    np.testing.assert_allclose(other.values[0], refl(dn["B02"], 1e-4, -0.1 - offset), atol=1e-6)


def test_earth_search_before_baseline_0400_has_no_offset(tmp_path: Path) -> None:
    props = {"platform": "sentinel-2a", "s2:processing_baseline": "02.14", "earthsearch:boa_offset_applied": False}
    path, dn = write_item(tmp_path, layout="es", properties=props, offset=0.0)
    cube = read_sentinel2_stac(path, bands=["B04"], scl=None)
    np.testing.assert_allclose(cube.values[0], refl(dn["B04"], 1e-4, 0.0), atol=1e-6)
    assert cube.attrs["sensor"] == "sentinel-2a"
    np.testing.assert_array_equal(cube["wavelength"].values, sensors.get("sentinel-2a").select(["B04"]).centers_nm)


def test_planetary_computer_scale_from_product_metadata(tmp_path: Path) -> None:
    props = {"platform": "Sentinel-2A", "s2:processing_baseline": "05.09"}
    path, dn = write_item(tmp_path, layout="pc", properties=props)
    cube = read_sentinel2_stac(path, bands=["B8A", "B03"], scl=None)
    assert list(cube["band"].values) == ["B8A", "B03"]
    np.testing.assert_allclose(
        cube.sel(band="B03").values, refl(dn["B03"], 1 / QUANT, OFFSETS["B3"] / QUANT), atol=1e-6
    )
    # B8A (20 m) on the 10 m grid: a 20 m pixel's four 10 m pixels straddle its centre, bilinear weights 3/4, 1/4
    c = (dn["B8A"].astype(np.float64) + OFFSETS["B8A"]) / QUANT
    got = cube.sel(band="B8A").values
    want = 0.5625 * c[5, 5] + 0.1875 * (c[5, 6] + c[6, 5]) + 0.0625 * c[6, 6]  # 10 m pixel (11, 11)
    assert got[11, 11] == pytest.approx(want, abs=2e-6)
    assert tuple(cube.rio.transform())[:6] == (10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])
    assert cube.attrs["sensor"] == "sentinel-2a" and cube.attrs["spacecraft"] == "Sentinel-2A"


def test_scl_asset_masks_every_band(tmp_path: Path) -> None:
    scl = np.full((12, 12), 4, np.uint8)
    scl[3, 3] = 8
    scl[6, 2] = 3
    scl[9, 9] = 6
    props = {"platform": "sentinel-2b", "s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True}
    path, _ = write_item(tmp_path, layout="es", properties=props, scl=scl)
    cube = read_sentinel2_stac(pystac.Item.from_file(str(path)))
    values = cube.values
    assert np.isnan(values[:, 6:8, 6:8]).all() and np.isnan(values[:, 12:14, 4:6]).all()
    assert np.isfinite(values[:, 18:20, 18:20]).all()  # water is kept
    assert cube.attrs["masked_fraction"] == pytest.approx(8 / SIZE_10M**2)
    assert hasattr(cube.data, "dask")


def test_level_1c_item_is_refused(tmp_path: Path) -> None:
    props = {"platform": "sentinel-2b", "s2:processing_baseline": "05.09", "s2:product_type": "S2MSI1C"}
    path, _ = write_item(tmp_path, layout="es", properties=props)
    with pytest.raises(DcstsfInputError, match=r"item\.json: a Sentinel-2 Level-1C item.*top-of-atmosphere"):
        read_sentinel2_stac(path)


def test_missing_asset_file_and_unknown_band(tmp_path: Path) -> None:
    props = {"platform": "sentinel-2b", "s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True}
    path, _ = write_item(tmp_path, layout="es", properties=props)
    with pytest.raises(DcstsfInputError, match=r"item\.json: unknown Sentinel-2 L2A band name\(s\) \['B10'\]"):
        read_sentinel2_stac(path, bands=["B10"])
    (tmp_path / "B11.tif").unlink()
    with pytest.raises(DcstsfInputError, match=r"B11\.tif: the file of asset 'swir16' \(B11\) is missing"):
        read_sentinel2_stac(path)
    data = json.loads(path.read_text())
    del data["assets"]["scl"]
    path.write_text(json.dumps(data))
    with pytest.raises(DcstsfInputError, match=r"no asset for the SCL.*scl=None"):
        read_sentinel2_stac(path, bands=["B02"])


def test_pc_item_without_product_metadata_has_no_scale(tmp_path: Path) -> None:
    props = {"platform": "Sentinel-2B", "s2:processing_baseline": "05.09"}
    path, _ = write_item(tmp_path, layout="pc", properties=props, with_metadata=False)
    with pytest.raises(DcstsfInputError, match=r"no raster:bands scale.*product-metadata"):
        read_sentinel2_stac(path, bands=["B02"], scl=None)

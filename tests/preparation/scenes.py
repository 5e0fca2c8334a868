"""Products built to the real layouts from a known fine cube, for the preparation tests.

The fine cube is the bundled EnMAP sample (real Potsdam spectra, EnMAP's 224 bands, the six bands the
processor leaves empty NaN) upsampled three times onto a 10 m grid: a known scene at the MS resolution. From it:

* Sentinel-2 L2A ``.SAFE`` products (``MTD_MSIL2A.xml``, JP2 rasters at 10 and 20 m, SCL), written with the
  builders of ``tests/products/test_sentinel2.py``: reflectance = the fine cube seen through the spacecraft's
  spectral responses (20 m bands: 2 x 2 block means), stored as ESA's digital numbers;
* an EnMAP L2A product folder (``METADATA.XML`` from ``tests/products/test_enmap.py``'s builder, spectral
  image, quality masks): 30 m pixels that are the 3 x 3 block means of the fine cube, stored as int16
  with gain 1e-4;
* AHSI-style reflectance GeoTIFFs (float32, band wavelengths in the tags) on any grid.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.transform import from_origin
from scipy.ndimage import zoom

from dcstsf import datasets, sensors
from dcstsf.sensors import SENTINEL2_DEFAULT_BANDS
from tests.io.rasters import make_tif
from tests.products.test_enmap import _xml as enmap_xml
from tests.products.test_sentinel2 import GRANULE, OFFSETS, ORIGIN, QUANT, RES, STAMP, TILE, mtd_text, write_jp2

__all__ = [
    "CRS",
    "Scene",
    "ORIGIN",
    "S2_10",
    "SafeProduct",
    "block_mean",
    "fine_cube",
    "make_scene",
    "ms_reflectance",
    "write_ahsi",
    "write_enmap",
    "write_safe",
]

CRS = "EPSG:32633"
S2_10 = SENTINEL2_DEFAULT_BANDS
ENMAP_BASE = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"
ENMAP_GAIN = 1e-4


@functools.lru_cache(maxsize=1)
def _sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = datasets.load_bundled_sample(drop_bad_bands=False)
    return (np.asarray(s.values, np.float32), np.asarray(s["wavelength"].values, np.float64),
            np.asarray(s["fwhm"].values, np.float64))


def fine_cube(size: int = 56, factor: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The known fine cube ``(224, size factor, size factor)``: the sample's top-left ``size`` x ``size`` pixels
    upsampled linearly; and the band centres and FWHM (nm)."""
    cube, wl, fwhm = _sample()
    cube = cube[:, :size, :size]
    # Band by band: interpolating along the band axis too would spread the empty bands' NaN to neighbours.
    fine = np.stack([zoom(b, factor, order=1, grid_mode=True, mode="nearest") for b in cube]).astype(np.float32)
    return fine, wl, fwhm


def block_mean(cube: np.ndarray, k: int) -> np.ndarray:
    """Means over non-overlapping ``k`` x ``k`` blocks (float64), of a cube whose sides are multiples of ``k``."""
    n, h, w = cube.shape
    return cube.astype(np.float64).reshape(n, h // k, k, w // k, k).mean(axis=(2, 4))


def ms_reflectance(fine: np.ndarray, *, sensor: str, bands: tuple[str, ...] = S2_10) -> dict[str, np.ndarray]:
    """The fine cube seen by a Sentinel-2 unit: band -> reflectance at the band's native resolution."""
    ms = sensors.get(sensor).select(list(bands))
    srf = sensors.spectral_response_matrix(sensors.get("enmap"), ms)
    n, h, w = fine.shape
    # The empty (NaN) bands have no weight in any Sentinel-2 response.
    seen = (srf @ np.nan_to_num(fine.reshape(n, -1).astype(np.float64))).reshape(len(bands), h, w)
    out = {}
    for k, band in enumerate(bands):
        step = RES[band] // 10
        out[band] = seen[k] if step == 1 else block_mean(seen[k][None], step)[0]
    return out


def _physical(band: str) -> str:
    return "B8A" if band == "B8A" else f"B{int(band[1:])}"


@dataclass
class SafeProduct:
    """A written ``.SAFE`` folder, its reflectance (at native resolution) and SCL."""

    safe: Path
    reflectance: dict[str, np.ndarray]
    scl: np.ndarray

    def file(self, band: str) -> Path:
        res = RES[band]
        return self.safe / "GRANULE" / GRANULE / "IMG_DATA" / f"R{res}m" / f"{TILE}_{STAMP}_{band}_{res}m.jp2"


def write_safe(root: Path, reflectance: dict[str, np.ndarray], *, spacecraft: str, scl: np.ndarray,
               baseline: str = "05.10", name: str = "") -> SafeProduct:
    """A Level-2A ``.SAFE`` folder on the tile grid at ``ORIGIN``: DN = reflectance x 10000 - BOA_ADD_OFFSET."""
    unit = "S2" + spacecraft[-1]
    safe = root / f"{unit}_MSIL2A_{STAMP}_N{baseline.replace('.', '')}_R122_{TILE}_{name or '20230701T150000'}.SAFE"
    product = SafeProduct(safe, reflectance, scl)
    files = []
    for band, refl in (*reflectance.items(), ("SCL", scl)):
        if band == "SCL":
            data = refl.astype(np.uint8)
        else:
            data = np.rint(refl * QUANT - OFFSETS[_physical(band)]).astype(np.uint16)
        write_jp2(product.file(band), data, RES[band])
        files.append(product.file(band).relative_to(safe).with_suffix("").as_posix())
    text = mtd_text(baseline=baseline, spacecraft=spacecraft, files=files, offsets=float(baseline) >= 4.0)
    (safe / "MTD_MSIL2A.xml").write_text(text, encoding="utf-8")
    return product


def tile_transform(col: float = 0.0, row: float = 0.0, res: float = 10.0) -> Affine:
    """The transform of a grid of ``res`` m pixels whose origin lies ``(col, row)`` 10 m pixels from the
    tile's top-left corner."""
    return from_origin(ORIGIN[0] + 10.0 * col, ORIGIN[1] - 10.0 * row, res, res)


def write_enmap(root: Path, reflectance: np.ndarray, wl: np.ndarray, fwhm: np.ndarray, *, transform: Affine,
                cloud: np.ndarray | None = None) -> Path:
    """An unpacked EnMAP L2A product folder: int16 spectral image (gain 1e-4), METADATA.XML, quality masks."""
    root.mkdir(parents=True, exist_ok=True)
    n, h, w = reflectance.shape
    stored = np.where(np.isnan(reflectance), -32768, np.rint(np.nan_to_num(reflectance) / ENMAP_GAIN)).astype(np.int16)
    empty = set(np.flatnonzero(np.isnan(reflectance).all(axis=(1, 2))).tolist())
    image = root / f"{ENMAP_BASE}-SPECTRAL_IMAGE.TIF"
    make_tif(image, stored, crs=CRS, transform=transform, nodata=-32768)
    xml = enmap_xml("L2A", wl, fwhm, np.full(n, ENMAP_GAIN), np.zeros(n), empty=empty, image_name=image.name)
    (root / f"{ENMAP_BASE}-METADATA.XML").write_text(xml)
    masks = {name: np.zeros((h, w), np.uint8) for name in ("CLOUD", "CLOUDSHADOW", "HAZE", "SNOW", "CIRRUS")}
    if cloud is not None:
        masks["CLOUD"] = cloud.astype(np.uint8)
    for name, values in masks.items():
        make_tif(root / f"{ENMAP_BASE}-QL_QUALITY_{name}.TIF", values[None], crs=CRS, transform=transform)
    return root


def write_ahsi(path: Path, reflectance: np.ndarray, wl: np.ndarray, fwhm: np.ndarray, *, transform: Affine) -> Path:
    """A float32 reflectance GeoTIFF with band wavelengths, named as an AHSI scene."""
    tags = [{"wavelength": repr(float(c)), "wavelength_units": "Nanometers", "fwhm": repr(float(f))}
            for c, f in zip(wl, fwhm, strict=True)]
    return make_tif(path, reflectance.astype(np.float32), crs=CRS, transform=transform, band_tags=tags)


@dataclass
class Scene:
    """Products of one place: EnMAP at t1, Sentinel-2A at t1, Sentinel-2B at t2, and the truth they came from.

    ``hs_origin`` is the HS grid's top-left corner in 10 m pixels of the tile, ``hs`` the HS reflectance
    written (block means of ``fine`` there), ``ms1``/``ms2`` the Sentinel-2 products.
    """

    fine: np.ndarray
    fine_t2: np.ndarray
    wl: np.ndarray
    fwhm: np.ndarray
    hs: np.ndarray
    hs_origin: tuple[int, int]
    enmap: Path
    ms1: SafeProduct
    ms2: SafeProduct
    hs_cloud: np.ndarray


def make_scene(root: Path, *, hs_origin: tuple[int, int] = (13, 7), hs_shape: tuple[int, int] = (48, 48),
               label_shift: tuple[float, float] = (0.0, 0.0), size: int = 56) -> Scene:
    """Write the three products of a scene into ``root``.

    The tile is ``3 size`` 10 m pixels each side. The HS covers ``hs_shape`` 30 m pixels from ``hs_origin``
    (row, col, in 10 m pixels); ``label_shift`` (metres, east and south) moves the HS georeference away
    from where its pixels truly lie: a geolocation error the co-registration has to find. MS(t2) sees the
    scene 10 % brighter in a field; each date has clouds in its SCL, and the HS a cloud in its CLOUD mask.
    """
    fine, wl, fwhm = fine_cube(size)
    fine_t2 = fine.copy()
    n = fine.shape[1]
    fine_t2[:, n // 3 : n // 2, n // 4 : n // 2] *= 1.1
    scl1 = np.full((n // 2, n // 2), 4, np.uint8)
    scl1[10:13, 20:24] = 9  # cloud, high probability
    scl2 = np.full((n // 2, n // 2), 4, np.uint8)
    scl2[40:42, 30:33] = 3  # cloud shadow
    ms1 = write_safe(root / "t1", ms_reflectance(fine, sensor="sentinel-2a"), spacecraft="Sentinel-2A", scl=scl1)
    ms2 = write_safe(root / "t2", ms_reflectance(fine_t2, sensor="sentinel-2b"), spacecraft="Sentinel-2B", scl=scl2)
    r0, c0 = hs_origin
    h, w = hs_shape
    hs = block_mean(fine[:, r0 : r0 + 3 * h, c0 : c0 + 3 * w], 3)
    cloud = np.zeros((h, w), bool)
    cloud[20:22, 5:8] = True
    transform = from_origin(ORIGIN[0] + 10.0 * c0 + label_shift[0], ORIGIN[1] - 10.0 * r0 - label_shift[1], 30.0, 30.0)
    enmap = write_enmap(root / "enmap", hs, wl, fwhm, transform=transform, cloud=cloud)
    return Scene(fine, fine_t2, wl, fwhm, hs, hs_origin, enmap, ms1, ms2, cloud)

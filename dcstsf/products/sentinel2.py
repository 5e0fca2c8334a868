"""Sentinel-2 L2A products (``.SAFE`` folders) as reflectance cubes on the 10 m grid.

A Level-2A ``.SAFE`` folder holds ``MTD_MSIL2A.xml`` at its top level and the band rasters as JPEG 2000
files under ``GRANULE/<granule>/IMG_DATA/R10m|R20m|R60m/<tile>_<sensing time>_<band>_<res>m.jp2``;
the metadata lists each of them (without the ``.jp2`` suffix) as an ``IMAGE_FILE`` of its ``Granule``.
What is read from ``MTD_MSIL2A.xml`` (``Level-2A_User_Product/General_Info``):

* ``Product_Info/PRODUCT_TYPE`` (``S2MSI2A``) and ``PROCESSING_LEVEL`` (``Level-2A``): a Level-1C
  product (``S2MSI1C``, ``MTD_MSIL1C.xml``) is top-of-atmosphere reflectance and is refused;
* ``Product_Info/PROCESSING_BASELINE`` and ``Product_Info/Datatake/SPACECRAFT_NAME``
  (``Sentinel-2A``/``-2B``/``-2C``): the spacecraft picks the spectral responses of the registry sensor
  ``sentinel-2a``/``-2b``/``-2c``, so each date of a pair gets its own;
* ``Product_Image_Characteristics/QUANTIFICATION_VALUES_LIST/BOA_QUANTIFICATION_VALUE`` and, from
  processing baseline 04.00 on, ``BOA_ADD_OFFSET_VALUES_LIST/BOA_ADD_OFFSET`` per ``band_id``, whose band
  the ``Spectral_Information_List`` names (``bandId``/``physicalBand``). Reflectance is
  ``(DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE`` with DN 0 as no data (ESA, baseline 04.00);
  before 04.00 there is no offset. The arithmetic is :mod:`dcstsf.io.decoding`'s, as for every reader.

Grid and resampling. The output lies on the product's 10 m grid (the R10m rasters; a 20 m or 60 m
raster's pixel corners coincide with every second or sixth 10 m corner, so the grid is the same one
whichever band defines it). 20 m and 60 m bands are resampled onto it **bilinearly** (odc-geo, lazily):

* bilinear is a convex combination of the four nearest 20 m pixels, symmetric about each 20 m pixel
  (weights 3/4 and 1/4 in each direction, since 10 m centres sit 5 m either side of a 20 m centre), so it
  shifts nothing and never leaves the range of its neighbours: no negative reflectance next to a bright
  roof, as cubic interpolation gives;
* nearest neighbour would copy each 20 m value onto 2 x 2 pixels; the staircase it draws is not an image
  the observation model can produce (:mod:`dcstsf.operators` models a 20 m band on the 10 m grid as the
  band's Gaussian PSF widened by 2, a smooth blur), so a fusion method would read its steps as detail;
* masked pixels (SCL classes, no data) are set to NaN on the 20 m grid *before* resampling, and the
  interpolation leaves NaN neighbours out, so cloud values do not leak into clear pixels next to a cloud.

The Scene Classification (SCL) mask is :mod:`dcstsf.products.scl`'s (nearest neighbour onto 10 m).
Results are lazy (Dask) unless ``chunks=None``.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords, xr_reproject

from dcstsf import sensors as _sensors
from dcstsf.io.decoding import Decoding, StoredBands, resolve_decoding
from dcstsf.io.errors import input_error
from dcstsf.io.read import open_raster
from dcstsf.products.scl import DEFAULT_SCL, SclOptions, apply_mask, scl_mask, scl_on_grid
from dcstsf.sensors import SENTINEL2_DEFAULT_BANDS, Sensor
from dcstsf.sensors.names import canonical_ms_name

__all__ = [
    "BAND_RESAMPLING",
    "DEFAULT_BANDS",
    "DEFAULT_CHUNKS",
    "GRID_RESOLUTION_M",
    "L2A_BANDS",
    "L2AMetadata",
    "NativeBand",
    "assemble_l2a",
    "band_decoding",
    "check_level",
    "parse_l2a_metadata",
    "read_sentinel2_l2a",
    "select_bands",
    "sensor_for_spacecraft",
]

#: The default weights' band set: the 10 m bands, then the 20 m bands (resampled onto the 10 m grid).
DEFAULT_BANDS: tuple[str, ...] = SENTINEL2_DEFAULT_BANDS
#: Bands of an L2A product (the cirrus band B10 is not part of Level-2A).
L2A_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
#: Pixel size of the output grid, metres.
GRID_RESOLUTION_M = 10.0
#: Resampling of 20 m and 60 m bands onto the 10 m grid (see the module docstring for why).
BAND_RESAMPLING = "bilinear"
#: Dask chunk size (pixels of the 10 m grid, each side) of a lazy result.
DEFAULT_CHUNKS = 1024
# The order of band_id 0-12 in MTD_MSIL2A.xml's per-band lists, as its Spectral_Information_List
# (bandId/physicalBand) gives it; used only for a metadata file without that list.
_BAND_ID_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_L2A_METADATA = "MTD_MSIL2A.xml"
_L1C_METADATA = "MTD_MSIL1C.xml"
_L2A_FIX = (
    "use the Level-2A product of the same acquisition (product type S2MSI2A, 'MSIL2A' in its name) or process "
    "this one to Level-2A with ESA's Sen2Cor; fusion needs surface (bottom-of-atmosphere) reflectance"
)


@dataclass(frozen=True)
class L2AMetadata:
    """What ``MTD_MSIL2A.xml`` says about decoding and provenance.

    Attributes
    ----------
    source
        The metadata file (or href) named in error messages.
    root
        Local name of the XML root element (``Level-2A_User_Product``).
    product_type, processing_level, processing_baseline, spacecraft
        ``PRODUCT_TYPE``, ``PROCESSING_LEVEL``, ``PROCESSING_BASELINE``, ``SPACECRAFT_NAME`` (None if absent).
    quantification
        ``BOA_QUANTIFICATION_VALUE`` (None if absent).
    add_offsets
        ``BOA_ADD_OFFSET`` in digital numbers by band name (empty before baseline 04.00).
    image_files
        The ``IMAGE_FILE`` entries, paths relative to the ``.SAFE`` folder.
    start_time
        ``PRODUCT_START_TIME``, the acquisition's start (ISO 8601; None if absent).
    """

    source: str
    root: str
    product_type: str | None
    processing_level: str | None
    processing_baseline: str | None
    spacecraft: str | None
    quantification: float | None
    add_offsets: Mapping[str, float]
    image_files: tuple[str, ...]
    start_time: str | None = None

    @property
    def baseline(self) -> float | None:
        """The processing baseline as a number (``"05.10"`` -> 5.1), None when absent or unreadable."""
        if self.processing_baseline is None:
            return None
        m = re.search(r"\d+(?:\.\d+)?", self.processing_baseline)
        return float(m.group(0)) if m else None


@dataclass(frozen=True)
class NativeBand:
    """One band at its native resolution: 2-D reflectance (NumPy or Dask, NaN nodata) on ``grid``."""

    name: str
    data: Any
    grid: GeoBox


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _first_text(root: ET.Element, name: str) -> str | None:
    for el in root.iter():
        if _local(el.tag) == name and el.text is not None and el.text.strip():
            return el.text.strip()
    return None


def _number(text: str | None, *, what: str, source: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise input_error(source, f"{what} is not a number ({text!r})", "download the product again") from None


def parse_l2a_metadata(xml: bytes, *, source: str | os.PathLike[str]) -> L2AMetadata:
    """Read the fields of a Sentinel-2 product metadata file (``MTD_MSIL2A.xml``) that decoding needs.

    Raises
    ------
    DcstsfInputError
        When the file is not XML.
    """
    src = str(source)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise input_error(src, f"not a readable XML file ({exc})", "download the product again") from exc
    band_ids: dict[str, str] = {}
    for el in root.iter():
        if _local(el.tag) == "Spectral_Information" and el.get("bandId") is not None and el.get("physicalBand"):
            band_ids[str(el.get("bandId"))] = canonical_ms_name(el.get("physicalBand"))
    offsets: dict[str, float] = {}
    for el in root.iter():
        if _local(el.tag) != "BOA_ADD_OFFSET":
            continue
        band_id = el.get("band_id")
        if band_id is None or el.text is None:
            continue
        if band_id in band_ids:
            name = band_ids[band_id]
        elif band_id.isdigit() and int(band_id) < len(_BAND_ID_ORDER):
            name = _BAND_ID_ORDER[int(band_id)]
        else:
            raise input_error(src, f"BOA_ADD_OFFSET band_id {band_id!r} names no band", "download the product again")
        value = _number(el.text.strip(), what=f"BOA_ADD_OFFSET of band_id {band_id}", source=src)
        if value is not None:
            offsets[name] = value
    files = []
    for el in root.iter():
        if _local(el.tag) == "IMAGE_FILE" and el.text and el.text.strip():
            files.append(el.text.strip())
    return L2AMetadata(
        source=src,
        root=_local(root.tag),
        product_type=_first_text(root, "PRODUCT_TYPE"),
        processing_level=_first_text(root, "PROCESSING_LEVEL"),
        processing_baseline=_first_text(root, "PROCESSING_BASELINE"),
        spacecraft=_first_text(root, "SPACECRAFT_NAME"),
        start_time=_first_text(root, "PRODUCT_START_TIME"),
        quantification=_number(
            _first_text(root, "BOA_QUANTIFICATION_VALUE"), what="BOA_QUANTIFICATION_VALUE", source=src
        ),
        add_offsets=offsets,
        image_files=tuple(files),
    )


def check_level(meta: L2AMetadata) -> None:
    """Raise unless the metadata describe a Level-2A (surface reflectance) product."""
    kind = (meta.product_type or "").upper()
    level = (meta.processing_level or "").upper().replace(" ", "")
    if "1C" in kind or "1C" in level or "LEVEL-1C" in meta.root.upper():
        raise input_error(
            meta.source,
            f"this is a Sentinel-2 Level-1C product (PRODUCT_TYPE {meta.product_type or '?'}): top-of-atmosphere "
            "reflectance, not the Level-2A surface reflectance the fusion needs",
            _L2A_FIX,
        )
    if not (kind.startswith("S2MSI2A") or level == "LEVEL-2A" or "LEVEL-2A" in meta.root.upper()):
        raise input_error(
            meta.source,
            f"not a Sentinel-2 Level-2A product (PRODUCT_TYPE {meta.product_type!r}, PROCESSING_LEVEL "
            f"{meta.processing_level!r})",
            _L2A_FIX,
        )


def select_bands(bands: Sequence[str], *, source: str | os.PathLike[str]) -> list[str]:
    """Canonical band names (``B2`` -> ``B02``, ``b8a`` -> ``B8A``) in the caller's order; clear errors for
    unknown or repeated names."""
    if isinstance(bands, str):
        bands = [bands]
    names = [canonical_ms_name(b) for b in bands]
    unknown = [b for b, n in zip(bands, names, strict=True) if n not in L2A_BANDS]
    if unknown or not names:
        raise input_error(
            source,
            f"unknown Sentinel-2 L2A band name(s) {unknown}" if unknown else "no band was asked for",
            f"choose bands among {', '.join(L2A_BANDS)} (bands=[...], in the order wanted; the default is "
            f"{', '.join(DEFAULT_BANDS)})",
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise input_error(source, f"band(s) {repeated} asked for more than once", "name each band once in bands=[...]")
    return names


def sensor_for_spacecraft(
    spacecraft: str | None, *, sensor: str | Sensor | None, source: str | os.PathLike[str]
) -> Sensor:
    """The registry sensor of a Sentinel-2 unit (``"Sentinel-2B"``/``"sentinel-2b"`` -> ``sentinel-2b``),
    or the caller's ``sensor``, which overrides the metadata.

    Raises
    ------
    DcstsfInputError
        When the spacecraft is missing or not a Sentinel-2 unit, or when its spectral responses are not
        shipped (Sentinel-2C: no registry package provides ESA's responses of that unit).
    """
    if sensor is not None:
        return _sensors.get(sensor)
    m = re.fullmatch(r"sentinel-?2([a-z])", (spacecraft or "").strip().lower())
    if m is None:
        raise input_error(
            source,
            f"the spacecraft {spacecraft!r} is not a Sentinel-2 unit (Sentinel-2A, -2B or -2C)",
            "pass the sensor whose spectral responses apply: sensor='sentinel-2a' or 'sentinel-2b' (CLI --ms-sensor)",
        )
    name = f"sentinel-2{m.group(1)}"
    if name not in _sensors.available():
        raise input_error(
            source,
            f"the product was recorded by {spacecraft}, whose spectral responses dcstsf does not ship (no package "
            f"on the registry provides ESA's {spacecraft} responses)",
            "pass the registered sensor whose responses should stand in for them, knowing that band centres "
            "differ by a few nm between units: sensor='sentinel-2a' or 'sentinel-2b' (CLI --ms-sensor), or a "
            "dcstsf.sensors.Sensor built from the responses you have",
        )
    return _sensors.get(name)


def _no_sample(idx: list[int]) -> np.ndarray:
    # Integer data with a quantification value never needs a look at its values.
    return np.empty((len(idx), 0))


def band_decoding(meta: L2AMetadata, band: str, path: str | os.PathLike[str]) -> Decoding:
    """Scale, offset and nodata of ``band`` from the product metadata, by :mod:`dcstsf.io.decoding`'s rules.

    Raises
    ------
    DcstsfInputError
        No quantification value, or a baseline of 04.00 or later without the band's ``BOA_ADD_OFFSET``.
    """
    if meta.quantification is None or meta.quantification <= 0:
        raise input_error(
            meta.source,
            "the metadata has no positive BOA_QUANTIFICATION_VALUE, so digital numbers cannot be turned into "
            "reflectance",
            "download the product again (the metadata file is incomplete)",
        )
    add = meta.add_offsets.get(band)
    baseline = meta.baseline
    if baseline is not None and baseline >= 4.0 and add is None:
        raise input_error(
            meta.source,
            f"processing baseline {meta.processing_baseline} (04.00 or later) shifts digital numbers by "
            f"BOA_ADD_OFFSET, but the metadata has no BOA_ADD_OFFSET for {band}",
            "download the product again (the metadata file is incomplete)",
        )
    set_tags: dict[str, Any] = {"boa_quantification_value": meta.quantification}
    if meta.processing_baseline is not None:
        set_tags["processing_baseline"] = meta.processing_baseline
    stored = StoredBands(
        path=path,
        count=1,
        dtype=np.dtype(np.uint16),
        descriptions=[band],
        band_tags=[{} if add is None else {"boa_add_offset": add}],
        set_tags=[set_tags],
    )
    return resolve_decoding(stored, scale=None, offset=None, nodata=None, sample=_no_sample)


def _same_grid(a: GeoBox, b: GeoBox) -> bool:
    tol = 1e-6 * max(abs(a.affine.a), 1.0)
    return a.shape == b.shape and a.crs == b.crs and a.affine.almost_equals(b.affine, precision=tol)


def _fine_grid(grid: GeoBox, *, name: str, source: str) -> GeoBox:
    """The 10 m grid whose pixel corners include every corner of ``grid``."""
    res = abs(grid.affine.a)
    factor = res / GRID_RESOLUTION_M
    k = round(factor)
    if k < 1 or not math.isclose(factor, k, rel_tol=1e-6) or abs(abs(grid.affine.e) - res) > 1e-6 * res:
        raise input_error(
            source,
            f"{name} lies on a {res:g} x {abs(grid.affine.e):g} m grid, not a square grid of a multiple of "
            f"{GRID_RESOLUTION_M:g} m",
            "use the product as delivered (R10m/R20m/R60m rasters), not a resampled copy",
        )
    if k == 1:
        return grid
    return GeoBox((grid.shape.y * k, grid.shape.x * k), grid.affine * Affine.scale(1.0 / k), grid.crs)


def _target_grid(bands: Sequence[NativeBand], scl: NativeBand | None, *, source: str) -> GeoBox:
    candidates = [(b.name, _fine_grid(b.grid, name=f"band {b.name}", source=source)) for b in bands]
    if scl is not None:
        candidates.append(("SCL", _fine_grid(scl.grid, name="the SCL", source=source)))
    # A band stored at 10 m defines the grid when there is one; the others must agree with it.
    native = [(b.name, b.grid) for b in bands if math.isclose(abs(b.grid.affine.a), GRID_RESOLUTION_M)]
    ref_name, ref = native[0] if native else candidates[0]
    for name, grid in candidates:
        if not _same_grid(grid, ref):
            raise input_error(
                source,
                f"{name} and {ref_name} are not on one tile grid ({grid.affine} vs {ref.affine}, shapes "
                f"{tuple(grid.shape)} vs {tuple(ref.shape)})",
                "use the rasters of one product as delivered",
            )
    return ref


def _stack(layers: Sequence[Any], chunks: int | None) -> Any:
    """The 2-D layers as one ``(band, y, x)`` float32 array: Dask in ``chunks`` (band in one chunk) when
    any layer is lazy or ``chunks`` is given, else NumPy."""
    if chunks is None and not any(hasattr(a, "dask") for a in layers):
        return np.stack([np.asarray(a, dtype=np.float32) for a in layers])
    import dask.array as dsa

    stacked = dsa.stack([dsa.asarray(a).astype(np.float32) for a in layers])
    return stacked if chunks is None else stacked.rechunk((-1, chunks, chunks))


def _resample(data: Any, src: GeoBox, dst: GeoBox) -> Any:
    """``data`` (2-D float, NaN nodata, on ``src``) on ``dst`` by :data:`BAND_RESAMPLING`; lazy for Dask."""
    da = xr.DataArray(data, dims=("y", "x"), coords=xr_coords(src))
    return xr_reproject(da, dst, resampling=BAND_RESAMPLING, dst_nodata=np.nan).data


def assemble_l2a(
    bands: Sequence[NativeBand],
    *,
    scl: NativeBand | None,
    scl_options: SclOptions | None,
    sensor: Sensor,
    attrs: Mapping[str, Any],
    chunks: int | None,
    source: str,
) -> xr.DataArray:
    """Bands at their native resolutions -> the ``(band, y, x)`` reflectance cube on the 10 m grid.

    Bands coarser than 10 m are masked on their own grid when the SCL shares it, then resampled
    (:data:`BAND_RESAMPLING`); every band is then masked with the SCL on the 10 m grid (nearest
    neighbour), and ``wavelength``/``fwhm`` come from ``sensor``. ``attrs`` gain ``sensor`` and
    ``masked_fraction``.
    """
    grid = _target_grid(bands, scl if scl_options is not None else None, source=source)
    mask_native = None
    if scl is not None and scl_options is not None:
        mask_native = scl_mask(xr.DataArray(scl.data, dims=("y", "x")), scl_options)
    layers = []
    for band in bands:
        data = band.data
        if not _same_grid(band.grid, grid):
            if mask_native is not None and scl is not None and _same_grid(band.grid, scl.grid):
                # Masked pixels leave the interpolation: a cloud's values must not leak into clear neighbours.
                data = xr.DataArray(data, dims=("y", "x")).where(~mask_native).data
            data = _resample(data, band.grid, grid)
        layers.append(data)
    names = [b.name for b in bands]
    chosen = sensor.select(names)
    coords = xr_coords(grid)
    cube = xr.DataArray(
        _stack(layers, chunks),
        dims=("band", "y", "x"),
        coords={
            "band": np.array(names, dtype=object),
            "wavelength": ("band", chosen.centers_nm.astype(np.float64), {"units": "nm"}),
            "fwhm": ("band", chosen.fwhm_nm.astype(np.float64), {"units": "nm"}),
            "y": ("y", np.asarray(coords["y"].values, dtype=np.float64)),
            "x": ("x", np.asarray(coords["x"].values, dtype=np.float64)),
        },
    )
    fraction = 0.0
    classes = "none (SCL not applied)"
    if scl is not None and scl_options is not None:
        mask10 = scl_mask(scl_on_grid(xr.DataArray(scl.data, dims=("y", "x")), scl.grid, grid), scl_options)
        cube, fraction = apply_mask(cube, mask10)
        classes = scl_options.describe()
    cube.name = None
    cube.attrs = {
        **dict(attrs),
        "sensor": sensor.name,
        "masked_fraction": fraction,
        "scl_masked_classes": classes,
        "band_resampling": f"{BAND_RESAMPLING} (bands coarser than {GRID_RESOLUTION_M:g} m); SCL: nearest",
    }
    cube = cube.rio.write_crs(grid.crs.to_wkt()).rio.write_transform(grid.affine)
    cube.rio.write_nodata(np.nan, encoded=False, inplace=True)
    cube.encoding["source"] = source
    return cube


def _locate(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The ``.SAFE`` folder and its ``MTD_MSIL2A.xml`` from either of them."""
    p = Path(path).expanduser()
    if not p.exists():
        raise input_error(
            p, "not found", f"pass the unzipped .SAFE folder of a Sentinel-2 L2A product or its {_L2A_METADATA}"
        )
    if p.is_file():
        if p.name.upper() == _L1C_METADATA.upper():
            raise input_error(p, "this is the metadata of a Level-1C product (top-of-atmosphere reflectance)", _L2A_FIX)
        if p.suffix.lower() == ".zip":
            raise input_error(p, "a zipped product", "unzip it and pass the .SAFE folder it holds")
        if p.name.upper() != _L2A_METADATA.upper():
            raise input_error(
                p,
                f"not a Sentinel-2 L2A product: expected a .SAFE folder or its {_L2A_METADATA}",
                f"pass the unzipped .SAFE folder (it holds {_L2A_METADATA} at its top level)",
            )
        return p.parent, p
    mtd = next((c for c in p.iterdir() if c.name.upper() == _L2A_METADATA.upper()), None)
    if mtd is not None:
        return p, mtd
    if any(c.name.upper() == _L1C_METADATA.upper() for c in p.iterdir()):
        raise input_error(
            p, f"a Level-1C product ({_L1C_METADATA}): top-of-atmosphere reflectance, not surface reflectance", _L2A_FIX
        )
    inner = [c for c in p.iterdir() if c.is_dir() and c.suffix.upper() == ".SAFE"]
    if len(inner) == 1:
        return _locate(inner[0])
    raise input_error(
        p,
        f"no {_L2A_METADATA} in this folder, so it is not a complete Sentinel-2 L2A .SAFE product",
        f"pass the unzipped .SAFE folder, which holds {_L2A_METADATA} at its top level (download the product "
        "again if the file is missing)",
    )


def _band_file(safe: Path, meta: L2AMetadata, band: str) -> Path:
    """The finest-resolution JPEG 2000 raster of ``band``: from the metadata's ``IMAGE_FILE`` list, else
    found in ``GRANULE/*/IMG_DATA/R<res>m``."""
    fix = "the download or unzip is incomplete: download the product again, or " + (
        "pass scl=None to read without the cloud mask" if band == "SCL" else f"leave {band} out of bands=[...]"
    )
    pattern = re.compile(rf"(?:^|/)IMG_DATA/R(\d+)m/[^/]*_{band}_(\d+)m(?:\.jp2)?$", re.IGNORECASE)
    listed = sorted((int(m.group(1)), entry) for entry in meta.image_files if (m := pattern.search(entry)))
    if listed:
        _, entry = listed[0]
        f = safe / (entry if entry.lower().endswith(".jp2") else f"{entry}.jp2")
        if not f.is_file():
            raise input_error(
                f,
                f"the raster of band {band} is missing ({_L2A_METADATA} lists it)",
                fix,
            )
        return f
    found = sorted(
        (int(m.group(1)), f)
        for f in safe.glob(f"GRANULE/*/IMG_DATA/R*m/*_{band}_*m.jp2")
        if (m := pattern.search(f.relative_to(safe).as_posix()))
    )
    if not found:
        raise input_error(
            safe / "GRANULE",
            f"no raster of band {band} (GRANULE/<granule>/IMG_DATA/R10m, R20m or R60m/*_{band}_<res>m.jp2)",
            fix,
        )
    finest = [f for res, f in found if res == found[0][0]]
    if len(finest) > 1:
        raise input_error(
            safe,
            f"several granules hold band {band} ({', '.join(str(f.relative_to(safe)) for f in finest)})",
            "pass a single-tile product (the SAFE compact format delivered since 2016)",
        )
    return finest[0]


def _grid_of(da: xr.DataArray) -> GeoBox:
    return GeoBox((da.sizes["y"], da.sizes["x"]), da.rio.transform(), da.rio.crs)


def _read_scl(path: Path, chunks: int | None) -> NativeBand:
    import rioxarray

    try:
        raw = rioxarray.open_rasterio(path, chunks=None if chunks is None else {"y": chunks, "x": chunks})
        data = raw.data[0] if chunks is not None else np.asarray(raw.values[0])
        grid = _grid_of(raw)
    except Exception as exc:  # rioxarray wraps GDAL errors in several exception types
        raise input_error(path, f"cannot be read ({type(exc).__name__}: {exc})", "download the product again") from exc
    return NativeBand("SCL", data, grid)


def read_sentinel2_l2a(
    path: str | os.PathLike[str],
    *,
    bands: Sequence[str] = DEFAULT_BANDS,
    scl: SclOptions | None = DEFAULT_SCL,
    sensor: str | Sensor | None = None,
    chunks: int | None = DEFAULT_CHUNKS,
) -> xr.DataArray:
    """Read a Sentinel-2 L2A ``.SAFE`` product as a float32 reflectance cube on its 10 m grid.

    Parameters
    ----------
    path
        The unzipped ``.SAFE`` folder, its ``MTD_MSIL2A.xml``, or a folder holding one ``.SAFE`` folder.
    bands
        Band names in the order wanted (``B2`` and ``B02`` are one band); default :data:`DEFAULT_BANDS`.
    scl
        Which Scene Classification classes become NaN (:class:`~dcstsf.products.scl.SclOptions`);
        None reads no SCL and masks nothing.
    sensor
        Registry name or :class:`~dcstsf.sensors.Sensor` overriding the one ``SPACECRAFT_NAME`` picks.
    chunks
        Dask chunk size on the 10 m grid; None reads everything into memory.

    Returns
    -------
    xarray.DataArray
        float32 ``(band, y, x)`` reflectance, NaN for no data and masked pixels, ``wavelength``/``fwhm``
        (nm) of the spacecraft's bands, CRS and transform of the 10 m grid on ``.rio``, and ``attrs``
        ``sensor`` (registry name), ``spacecraft``, ``processing_baseline``, ``product_path`` and
        ``masked_fraction`` (fraction of pixels the SCL classes set to NaN).

    Raises
    ------
    DcstsfInputError
        A folder without ``MTD_MSIL2A.xml``, a Level-1C product, an unknown band name, a missing band
        raster, incomplete metadata, or a spacecraft whose responses are not shipped (Sentinel-2C).
    """
    safe, mtd = _locate(path)
    meta = parse_l2a_metadata(mtd.read_bytes(), source=mtd)
    check_level(meta)
    names = select_bands(bands, source=safe)
    chosen = sensor_for_spacecraft(meta.spacecraft, sensor=sensor, source=mtd)
    natives = []
    for name in names:
        f = _band_file(safe, meta, name)
        dec = band_decoding(meta, name, f)
        da = open_raster(
            f, chunks=chunks, scale=float(dec.scale[0]), offset=float(dec.offset[0]), nodata=float(dec.nodata[0])
        )
        natives.append(NativeBand(name, da.data[0], _grid_of(da)))
    scl_band = _read_scl(_band_file(safe, meta, "SCL"), chunks) if scl is not None else None
    attrs = {
        "spacecraft": meta.spacecraft or "",
        "processing_baseline": meta.processing_baseline or "unknown",
        "product_path": str(safe.resolve()),
        **({"acquisition_time": meta.start_time} if meta.start_time else {}),
    }
    return assemble_l2a(
        natives, scl=scl_band, scl_options=scl, sensor=chosen, attrs=attrs, chunks=chunks, source=str(safe)
    )

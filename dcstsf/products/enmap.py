"""EnMAP Level-2A products: surface reflectance, band table from ``METADATA.XML``, quality masks as NaN.

An EnMAP L2A product, as delivered by DLR, is a folder of files sharing one base name, e.g.
``ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z``:

* ``<base>-METADATA.XML`` -- root ``level_X``; the processing level in ``metadata/schema/processingLevel``,
  ``base/level`` and ``specific/code``; one ``specific/bandCharacterisation/bandID`` per band with
  ``wavelengthCenterOfBand``, ``FWHMOfBand`` (nm), ``GainOfBand`` and ``OffsetOfBand`` (reflectance =
  stored value x gain + offset; gain 0.0001 in delivered L2A products); ``product/image/merge/name`` names
  the spectral image; ``product/bandStatistics/bandID`` holds ``mean`` and ``stdDeviation``, where
  ``stdDeviation`` 0 with ``mean`` -1000000 marks a band filled with nodata;
* ``<base>-SPECTRAL_IMAGE.<ext>`` -- the reflectance cube in the user's chosen format: GeoTIFF (``.TIF``,
  ``.GEOTIFF``, ``_COG.TIF``), ENVI (``.BSQ``/``.BIL``/``.BIP`` with ``.HDR``) or JPEG2000, bands in
  wavelength order (VNIR and SWIR merged);
* ``<base>-QL_QUALITY_<NAME>.TIF`` -- single-band masks on the image grid: ``CLOUD``, ``CLOUDSHADOW``,
  ``HAZE``, ``SNOW`` (0 none, 1 flagged) and ``CIRRUS`` (0 none, 1 thin, 2 medium, 3 thick; 255 no data),
  and ``CLASSES`` (1 land, 2 water, 3 background), ``TESTFLAGS``, ``QL_PIXELMASK`` (defective pixels).

Sources: the EnMAP-Box importers ``importenmapl1balgorithm.py``/``importenmapl2aalgorithm.py`` (XML paths,
image file names and extensions, bad-band rule) and ``tileenmapl2aalgorithm.py`` (mask files and their
nodata values); the EnPT L2A writer ``metadata_mapgeo.py`` (level fields, ``product/image/merge/name``,
``level_X`` root); the mask value tables of the HySpecNet-11k dataset description (EnMAP L2A tiles);
DLR's EnMAP L2A STAC items (``enmap:nodata`` -32768).

Not used: ``QL_QUALITY_CLASSES`` (background pixels are already nodata in the spectral image, and the
meaning of its value 0 differs between the descriptions found), ``QL_QUALITY_TESTFLAGS`` and
``QL_PIXELMASK`` (their encoding could not be looked up). Zipped products must be unpacked first.

Levels other than L2A are refused with an error that names the level: L0 is not distributed, L1B is
top-of-atmosphere radiance in sensor geometry and L1C is orthorectified top-of-atmosphere radiance,
neither of which is reflectance.

A bare spectral image without ``METADATA.XML`` (e.g. an EnMAP-Box export such as the Potsdam tiles: a
GeoTIFF with per-band wavelength/FWHM/bad-band tags and band scales) is read through
:func:`dcstsf.io.open_raster`; its level comes from a DLR file name or, failing that, must be stated by the
caller (``EnmapOptions(level="L2A")``).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dcstsf import sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from dcstsf.io.errors import input_error

__all__ = [
    "ENMAP_IMAGE_SUFFIXES",
    "ENMAP_QUALITY_MASKS",
    "EnmapOptions",
    "QualityMask",
    "enmap_processing_level",
    "read_enmap_l2a",
]

#: Spectral image file endings of a delivered product, in the order they are looked for (EnMAP-Box).
ENMAP_IMAGE_SUFFIXES = (".TIF", ".GEOTIFF", ".BSQ", ".BIL", ".BIP", ".JP2", "_COG.TIF", "_COG.tiff")
#: Quality mask file endings looked for beside the image.
_MASK_SUFFIXES = (".TIF", ".GEOTIFF", ".BSQ", ".BIL", ".BIP", ".JP2")
#: Why each level other than L2A cannot be fused.
_LEVEL_REASONS = {
    "L0": "raw instrument data, not distributed to users",
    "L1B": "top-of-atmosphere radiance in sensor geometry, not surface reflectance",
    "L1C": "orthorectified top-of-atmosphere radiance, not surface reflectance",
}
_LEVEL_IN_NAME = re.compile(r"ENMAP\d*-_*(L0|L1B|L1C|L2A)\b", re.IGNORECASE)
# the datatake's start in a product name: ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_...
_TIME_IN_NAME = re.compile(r"ENMAP\d*-_*L\w+-DT\d+_(\d{8}T\d{6})Z", re.IGNORECASE)


def _time_from_name(path: Path) -> str | None:
    """The acquisition start (ISO 8601, UTC) that an EnMAP product name gives, else None."""
    m = _TIME_IN_NAME.search(path.name)
    if m is None:
        return None
    t = m.group(1)
    return f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[9:11]}:{t[11:13]}:{t[13:15]}Z"
# bandStatistics of a band the processor filled with nodata (EnMAP-Box issues #267, #974).
_EMPTY_BAND_MEAN = -1000000.0
# DLR's EnMAP L2A STAC items give enmap:nodata = -32768, used when the image file declares no nodata.
_L2A_NODATA = -32768.0
_WAVELENGTH_MATCH_NM = 5.0


@dataclass(frozen=True)
class QualityMask:
    """One quality mask file of an L2A product: its file name part and the values that flag a pixel."""

    name: str
    file_part: str
    flagged: tuple[int, ...]


#: The quality masks that can become nodata, by the name used in :attr:`EnmapOptions.masks`.
ENMAP_QUALITY_MASKS: Mapping[str, QualityMask] = {
    "cloud": QualityMask("cloud", "QL_QUALITY_CLOUD", (1,)),
    "cloudshadow": QualityMask("cloudshadow", "QL_QUALITY_CLOUDSHADOW", (1,)),
    "haze": QualityMask("haze", "QL_QUALITY_HAZE", (1,)),
    "snow": QualityMask("snow", "QL_QUALITY_SNOW", (1,)),
    "cirrus": QualityMask("cirrus", "QL_QUALITY_CIRRUS", (1, 2, 3)),
}


@dataclass(frozen=True)
class EnmapOptions:
    """How :func:`read_enmap_l2a` reads a product.

    Attributes
    ----------
    masks
        Quality masks whose flagged pixels become NaN in every band (names of :data:`ENMAP_QUALITY_MASKS`);
        each must exist in the product. ``()`` reads without masking.
    chunks
        Dask chunks (``"auto"``, an int, a dict); ``None`` reads into memory.
    level
        Processing level of a bare spectral image whose level neither a ``METADATA.XML`` nor its file
        name gives. Only ``"L2A"`` is accepted; ignored for complete products.
    """

    masks: tuple[str, ...] = ("cloud", "cloudshadow", "haze", "snow", "cirrus")
    chunks: int | Mapping[str, int] | bool | str | None = "auto"
    level: str | None = None


@dataclass(frozen=True)
class _Metadata:
    """What ``METADATA.XML`` says about the product and its bands."""

    xml: Path
    level: str | None
    numbers: list[int]
    wavelength: np.ndarray
    fwhm: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    bbl: np.ndarray | None
    image_name: str | None


def _text(root: ET.Element, path: str) -> str | None:
    node = root.find(path)
    if node is None or node.text is None or not node.text.strip():
        return None
    return node.text.strip()


def _numbers(root: ET.Element, path: str, xml: Path, what: str) -> np.ndarray:
    values = []
    for node in root.findall(path):
        try:
            values.append(float((node.text or "").strip()))
        except ValueError as exc:
            raise input_error(
                xml, f"'{what}' holds {node.text!r}, not a number", "re-download the product (the XML is damaged)"
            ) from exc
    return np.asarray(values, dtype=np.float64)


def _parse_metadata(xml: Path) -> _Metadata:
    """Level, band table and image name of ``<base>-METADATA.XML``."""
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as exc:
        raise input_error(xml, f"not a readable XML file ({exc})", "re-download or unpack the product again") from exc
    level = next(
        (t.upper() for t in (_text(root, p) for p in ("metadata/schema/processingLevel", "base/level", "specific/code"))
         if t and re.fullmatch(r"L\w{1,2}", t)),
        None,
    )
    bands = root.findall("specific/bandCharacterisation/bandID")
    if not bands:
        raise input_error(
            xml,
            "the XML has no band characterisation (specific/bandCharacterisation/bandID), so band centres, "
            "widths and gains are unknown",
            "use the METADATA.XML delivered with the product (re-download it); a bare spectral image can be read "
            "with dcstsf.io.open_raster if it carries its own wavelengths and scales",
        )
    base = "specific/bandCharacterisation/bandID/"
    fields = {k: _numbers(root, base + k, xml, k) for k in ("wavelengthCenterOfBand", "FWHMOfBand", "GainOfBand",
                                                            "OffsetOfBand")}
    missing = [k for k, v in fields.items() if v.size != len(bands)]
    if missing:
        raise input_error(
            xml,
            f"the band characterisation lists {len(bands)} bands but {', '.join(missing)} for "
            f"{', '.join(str(fields[k].size) for k in missing)}",
            "re-download the product (every bandID needs wavelengthCenterOfBand, FWHMOfBand, GainOfBand and "
            "OffsetOfBand)",
        )
    numbers = [int(b.get("number", i + 1)) for i, b in enumerate(bands)]
    bbl = None
    means = _numbers(root, "product/bandStatistics/bandID/mean", xml, "mean")
    stds = _numbers(root, "product/bandStatistics/bandID/stdDeviation", xml, "stdDeviation")
    if means.size == len(bands) and stds.size == len(bands):
        bbl = np.where((stds == 0) & (means == _EMPTY_BAND_MEAN), 0, 1).astype(np.int8)
    return _Metadata(
        xml=xml,
        level=level,
        numbers=numbers,
        wavelength=fields["wavelengthCenterOfBand"],
        fwhm=fields["FWHMOfBand"],
        gain=fields["GainOfBand"],
        offset=fields["OffsetOfBand"],
        bbl=bbl,
        image_name=_text(root, "product/image/merge/name"),
    )


def _level_from_name(path: Path) -> str | None:
    m = _LEVEL_IN_NAME.search(path.name)
    return m.group(1).upper() if m else None


def _check_level(level: str | None, where: Path) -> str:
    if level is None:
        raise input_error(
            where,
            "the processing level is given neither in METADATA.XML (metadata/schema/processingLevel, base/level) "
            "nor in the file name",
            "use the METADATA.XML delivered with the product",
        )
    if level != "L2A":
        reason = _LEVEL_REASONS.get(level, "not the surface-reflectance level")
        raise input_error(
            where,
            f"this is an EnMAP {level} product ({reason}); dcstsf fuses surface reflectance only",
            "order or download the L2A product of the same data take from the EnMAP data portal",
        )
    return level


def _base_name(path: Path) -> str:
    """The product base name of one of its files (everything before ``-METADATA``, ``-SPECTRAL_IMAGE``...)."""
    return re.split(r"-(?:METADATA|SPECTRAL_IMAGE|QL_)", path.name, maxsplit=1, flags=re.IGNORECASE)[0]


def _find_file(folder: Path, base: str, part: str, suffixes: Sequence[str]) -> Path | None:
    """``<folder>/<base>-<part><suffix>`` for the first suffix that exists (any letter case)."""
    by_lower = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    for suffix in suffixes:
        hit = by_lower.get(f"{base}-{part}{suffix}".lower())
        if hit is not None:
            return hit
    return None


def _find_xml(path: Path) -> Path | None:
    """The product's ``METADATA.XML`` for a folder, the XML itself or one of the product's files."""
    if path.is_dir():
        xmls = sorted(p for p in path.iterdir() if p.is_file() and p.name.upper().endswith("METADATA.XML"))
        if not xmls:
            raise input_error(
                path,
                "no *-METADATA.XML in this folder, so it is not an unpacked EnMAP product",
                "give the folder of an unpacked EnMAP L2A product (unzip the download first) or its METADATA.XML",
            )
        if len(xmls) > 1:
            raise input_error(
                path,
                f"the folder holds {len(xmls)} METADATA.XML files ({', '.join(p.name for p in xmls[:3])}...)",
                "give the METADATA.XML of the product to read",
            )
        return xmls[0]
    if path.name.upper().endswith("METADATA.XML"):
        return path
    candidate = _find_file(path.parent, _base_name(path), "METADATA", (".XML",))
    return candidate


def _image_path(meta: _Metadata) -> Path:
    folder = meta.xml.parent
    base = _base_name(meta.xml)
    if meta.image_name:
        named = folder / meta.image_name
        if named.is_file():
            return named
    found = _find_file(folder, base, "SPECTRAL_IMAGE", ENMAP_IMAGE_SUFFIXES)
    if found is None:
        expected = meta.image_name or f"{base}-SPECTRAL_IMAGE.TIF"
        raise input_error(
            folder / expected,
            "the spectral image of this product is missing (looked for "
            f"{base}-SPECTRAL_IMAGE with {', '.join(ENMAP_IMAGE_SUFFIXES)})",
            "unpack the complete product into this folder (the XML alone holds no pixels)",
        )
    if found.suffix.upper() in (".BSQ", ".BIL", ".BIP") and not any(
        found.with_suffix(s).is_file() for s in (".HDR", ".hdr")
    ):
        raise input_error(found, "the ENVI image has no .HDR header beside it", "unpack the complete product")
    return found


def _image_layout(image: Path) -> tuple[int, bool]:
    """Band count of the spectral image and whether it declares a nodata value."""
    import rasterio

    try:
        with rasterio.open(image) as src:
            return src.count, any(v is not None for v in src.nodatavals)
    except Exception as exc:  # rasterio wraps GDAL errors in several types
        raise input_error(image, f"cannot be opened as a raster ({type(exc).__name__}: {exc})", "re-download it") from exc


def _quality_flags(
    meta: _Metadata, names: Sequence[str], shape: tuple[int, int], transform: Any
) -> tuple[np.ndarray | None, list[str]]:
    """The union of the requested masks' flagged pixels (``(y, x)`` bool) and the mask files used."""
    import rasterio

    unknown = [n for n in names if n not in ENMAP_QUALITY_MASKS]
    if unknown:
        raise DcstsfInputError(
            f"unknown EnMAP quality mask(s) {unknown}; choose from {sorted(ENMAP_QUALITY_MASKS)} "
            "(EnmapOptions(masks=...))"
        )
    folder, base = meta.xml.parent, _base_name(meta.xml)
    flags: np.ndarray | None = None
    used = []
    for name in names:
        spec = ENMAP_QUALITY_MASKS[name]
        path = _find_file(folder, base, spec.file_part, _MASK_SUFFIXES)
        if path is None:
            raise input_error(
                folder / f"{base}-{spec.file_part}.TIF",
                f"the {name} quality mask is missing from the product",
                "unpack the complete product, or read without this mask: "
                f"EnmapOptions(masks={tuple(n for n in names if n != name)!r})",
            )
        with rasterio.open(path) as src:
            values = src.read(1)
            mask_transform = src.transform
        if values.shape != shape:
            raise input_error(
                path,
                f"the mask is {values.shape[0]} x {values.shape[1]} pixels but the spectral image is "
                f"{shape[0]} x {shape[1]}",
                "use the mask files delivered with this product",
            )
        if transform is not None and not mask_transform.almost_equals(transform):
            raise input_error(path, "the mask is not on the spectral image's grid", "use the product's own masks")
        hit = np.isin(values, spec.flagged)
        flags = hit if flags is None else flags | hit
        used.append(path.name)
    return flags, used


def _registry_names(wavelength: np.ndarray) -> list[str] | None:
    """The registered EnMAP band names when the band centres match its table within 5 nm."""
    enmap = sensors.get("enmap")
    if wavelength.size == enmap.n_bands and np.max(np.abs(enmap.centers_nm - wavelength)) <= _WAVELENGTH_MATCH_NM:
        return list(enmap.band_names)
    return None


def _finish(
    da: xr.DataArray, *, product: Path, level: str, flags: np.ndarray | None, masks: list[str],
    named: Sequence[Path] = (),
) -> xr.DataArray:
    """The masked reflectance with the product's attributes; the acquisition time from the first of
    ``named`` and ``product`` whose name gives it (the folder may have been renamed, the files not)."""
    masked_fraction = 0.0
    if flags is not None:
        masked_fraction = float(np.mean(flags))
        da = da.where(~xr.DataArray(flags, dims=("y", "x")))
    da.attrs.update(
        sensor="enmap",
        product_path=str(product),
        processing_level=level,
        masked_fraction=masked_fraction,
        quality_masks=", ".join(masks) if masks else "none",
    )
    when = next((t for t in map(_time_from_name, (*named, product)) if t is not None), None)
    if when is not None:
        da.attrs["acquisition_time"] = when
    return da


def _read_bare_image(path: Path, opts: EnmapOptions) -> xr.DataArray:
    level = _level_from_name(path) or (opts.level.upper() if opts.level else None)
    if level is None:
        raise input_error(
            path,
            "this spectral image has no METADATA.XML beside it and its name does not give the processing level, "
            "so it is unknown whether it holds L2A reflectance or L1B/L1C radiance",
            "keep the product's METADATA.XML beside the image, or, if it is EnMAP L2A surface reflectance, "
            "say so: read_enmap_l2a(path, options=EnmapOptions(level='L2A'))",
        )
    _check_level(level, path)
    if _level_from_name(path) is not None:
        # A file named by DLR carries its band table, gains and nodata in the product's XML, not in itself.
        raise input_error(
            path.parent / f"{_base_name(path)}-METADATA.XML",
            f"the METADATA.XML of {path.name} is missing, so band centres, gains and offsets are unknown",
            "unpack the complete product so that the XML lies beside the spectral image",
        )
    da = open_raster(path, chunks=opts.chunks)
    if "wavelength" not in da.coords:
        raise input_error(
            path,
            "the image carries no band wavelengths and no METADATA.XML is beside it",
            "keep the product's METADATA.XML beside the image",
        )
    names = _registry_names(np.asarray(da["wavelength"].values, dtype=np.float64))
    if names is not None:
        da = da.assign_coords(band=np.array(names, dtype=object))
    return _finish(da, product=path, level=level, flags=None, masks=[])


def enmap_processing_level(path: str | os.PathLike[str]) -> str:
    """The processing level (``"L0"``, ``"L1B"``, ``"L1C"``, ``"L2A"``) of an EnMAP product or one of its files.

    Read from ``METADATA.XML`` when the product has one, else from the DLR file name.

    Raises
    ------
    DcstsfInputError
        When neither gives a level.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise input_error(p, "file not found", "check the path")
    xml = _find_xml(p)
    level = _parse_metadata(xml).level if xml is not None else None
    level = level or _level_from_name(xml or p)
    if level is None:
        raise input_error(p, "the EnMAP processing level is stated neither in a METADATA.XML nor in the file name",
                          "give the product folder or its METADATA.XML")
    return level


def read_enmap_l2a(path: str | os.PathLike[str], *, options: EnmapOptions | None = None) -> xr.DataArray:
    """Read an EnMAP L2A product as float32 surface reflectance ``(band, y, x)``.

    Parameters
    ----------
    path
        The unpacked product folder, its ``*-METADATA.XML``, its ``*-SPECTRAL_IMAGE`` file, or a bare
        spectral image without XML (see the module docstring).
    options
        Masks, chunks and the level of a bare image (:class:`EnmapOptions`).

    Returns
    -------
    xarray.DataArray
        Reflectance = stored value x ``GainOfBand`` + ``OffsetOfBand``, NaN for nodata and for pixels flagged
        by the chosen quality masks; CRS and transform on ``.rio``; band names ``B001``... (the registered
        ``"enmap"`` sensor's) when the centres match its table, else ``band_<number>``; coordinates
        ``wavelength``/``fwhm`` (nm) and ``bbl`` (0 for bands the processor filled with nodata); attributes
        ``sensor="enmap"``, ``product_path``, ``processing_level="L2A"``, ``masked_fraction`` (the fraction of
        the image's pixels flagged by the chosen masks) and ``quality_masks`` (the mask files applied). Lazy
        (Dask) unless ``options.chunks`` is None.

    Raises
    ------
    DcstsfInputError
        Not an EnMAP product, a level other than L2A (the message names it), an XML without band
        characterisation, a missing spectral image or mask, band counts or grids that do not match.
    """
    opts = options or EnmapOptions()
    p = Path(path).expanduser()
    if not p.exists():
        raise input_error(p, "file not found", "check the path (and unzip the product first)")
    xml = _find_xml(p)
    if xml is None:
        return _read_bare_image(p, opts)
    meta = _parse_metadata(xml)
    level = _check_level(meta.level or _level_from_name(xml), xml)
    image = p if p.is_file() and p != xml else _image_path(meta)
    n, has_nodata = _image_layout(image)
    if n != meta.wavelength.size:
        raise input_error(
            image,
            f"the spectral image has {n} bands but {xml.name} describes {meta.wavelength.size}",
            "use the spectral image and METADATA.XML of the same product",
        )
    nodata = None if has_nodata else _L2A_NODATA
    da = open_raster(image, chunks=opts.chunks, scale=meta.gain, offset=meta.offset, nodata=nodata)
    names = _registry_names(meta.wavelength) or [f"band_{k}" for k in meta.numbers]
    coords: dict[str, Any] = {
        "band": np.array(names, dtype=object),
        "wavelength": ("band", meta.wavelength, {"units": "nm"}),
        "fwhm": ("band", meta.fwhm, {"units": "nm"}),
    }
    if meta.bbl is not None:
        coords["bbl"] = ("band", meta.bbl)
    da = da.assign_coords(coords)
    transform = da.rio.transform() if da.rio.crs is not None else None
    flags, used = _quality_flags(meta, opts.masks, (da.sizes["y"], da.sizes["x"]), transform)
    return _finish(da, product=p, level=level, flags=flags, masks=used, named=(xml, image))

"""One entry for every delivered product: recognise its layout, check its role, and call its reader.

:func:`open_product` looks at what it is given, not at what the user says it is:

======================  ==============================================================================
Sentinel-2 L2A (MS)     a ``.SAFE`` folder, a folder holding ``MTD_MSIL2A.xml`` (or ``MTD_MSIL1C.xml``,
                        which the reader refuses with the reason), that metadata file itself, or a folder
                        holding exactly one ``.SAFE`` folder
Sentinel-2 L2A (MS)     a STAC item: a ``.json`` file holding one GeoJSON ``Feature`` with ``stac_version``
EnMAP L2A (HS)          a folder holding a ``*-METADATA.XML``, that file, or a file named as DLR names the
                        product's files (``ENMAP01-____L2A-...-SPECTRAL_IMAGE.TIF``)
PRISMA L2D (HS)         an HDF-EOS5 file (``.he5``; ``PRS_L2D_*.he5`` as delivered)
ZY-1 02D AHSI (HS)      a folder holding ``<name>_VN.<ext>`` and ``<name>_SW.<ext>`` reflectance files, one
                        of those files (its partner is found beside it), or a file named as the provider
                        names scenes (``ZY1E_AHSI_...``, ``GF5B_AHSI_...``); L1 deliveries are refused by
                        the reader. Any other reflectance cube is a plain raster (``dcstsf.io.open_raster``)
======================  ==============================================================================

The readers are :func:`~dcstsf.products.sentinel2.read_sentinel2_l2a`,
:func:`~dcstsf.products.stac.read_sentinel2_stac`, :func:`~dcstsf.products.enmap.read_enmap_l2a`,
:func:`~dcstsf.products.prisma.read_prisma_l2d` and :func:`~dcstsf.products.ahsi.read_ahsi`; what each returns
is described there. Zipped downloads are not opened: unpack them first (the error says so).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.io.errors import input_error
from dcstsf.products.ahsi import AhsiOptions, read_ahsi
from dcstsf.products.enmap import EnmapOptions, read_enmap_l2a
from dcstsf.products.prisma import PrismaOptions, read_prisma_l2d
from dcstsf.products.scl import DEFAULT_SCL, SclOptions
from dcstsf.products.sentinel2 import DEFAULT_BANDS, DEFAULT_CHUNKS, read_sentinel2_l2a
from dcstsf.products.stac import read_sentinel2_stac
from dcstsf.sensors import Sensor

__all__ = [
    "ACCEPTED_FORMS",
    "PRODUCT_KINDS",
    "ProductOptions",
    "is_product",
    "open_product",
    "product_kind",
]

#: Product kinds :func:`product_kind` returns, and the role (``"hs"`` or ``"ms"``) each can play.
PRODUCT_KINDS: dict[str, str] = {
    "sentinel2-safe": "ms",
    "sentinel2-stac": "ms",
    "enmap": "hs",
    "prisma": "hs",
    "ahsi": "hs",
}
#: What :func:`open_product` accepts, by role, as the error messages list it.
ACCEPTED_FORMS: dict[str, tuple[str, ...]] = {
    "ms": (
        "a Sentinel-2 L2A .SAFE folder (unzipped) or its MTD_MSIL2A.xml",
        "a Sentinel-2 L2A STAC item saved as .json (Earth Search or Planetary Computer, assets local or remote)",
    ),
    "hs": (
        "an EnMAP L2A product folder (unzipped) or its *-METADATA.XML",
        "a PRISMA L2D .he5 file",
        "ZY-1 02D AHSI surface reflectance: a folder with <name>_VN and <name>_SW files, one of them, or a cube "
        "named as delivered (ZY1E_AHSI_...)",
    ),
}
_ROLE_NAMES = {"hs": "the hyperspectral input (HS_PRODUCT, hs_t1)", "ms": "a multispectral input (MS1/MS2_PRODUCT)"}
_KIND_NAMES = {
    "sentinel2-safe": "a Sentinel-2 L2A .SAFE product",
    "sentinel2-stac": "a Sentinel-2 L2A STAC item",
    "enmap": "an EnMAP product",
    "prisma": "a PRISMA product",
    "ahsi": "a ZY-1 02D AHSI product",
}
_S2_METADATA = ("MTD_MSIL2A.XML", "MTD_MSIL1C.XML")
_ENMAP_NAME = re.compile(r"^ENMAP\d*-", re.IGNORECASE)
# The provider's scene names: ZY1E_AHSI_E108.96_N34.68_20200203_002068_L1A0000083728 (GF5/GF5B alike).
_AHSI_NAME = re.compile(r"^(?:ZY1[A-Z]?|GF5[A-Z]?)_AHSI_", re.IGNORECASE)
_AHSI_PART = re.compile(r"^(?P<stem>.+)_(?P<part>VN|SW)\.(?P<ext>geotiff|tiff?)$", re.IGNORECASE)
_ZIPS = (".zip", ".tar", ".tgz", ".gz")
_Opts = TypeVar("_Opts", EnmapOptions, PrismaOptions, AhsiOptions)


@dataclass(frozen=True)
class ProductOptions:
    """How :func:`open_product` reads a product; each reader takes the fields that apply to it.

    Attributes
    ----------
    ms_bands
        Sentinel-2 bands to read, in this order (default: the shipped weights' ten bands).
    scl
        Sentinel-2 Scene Classification classes that become NaN (None: no SCL mask).
    ms_sensor
        Registry sensor overriding the Sentinel-2 spacecraft the metadata name (e.g. for Sentinel-2C, whose
        responses are not shipped).
    chunks
        Dask chunk size in pixels; None reads into memory.
    boa_offset_applied
        For STAC items: overrides the item's ``earthsearch:boa_offset_applied``.
    enmap, prisma, ahsi
        The options of the hyperspectral readers (their ``chunks`` are replaced by ``chunks``).
    """

    ms_bands: Sequence[str] = DEFAULT_BANDS
    scl: SclOptions | None = DEFAULT_SCL
    ms_sensor: str | Sensor | None = None
    chunks: int | None = DEFAULT_CHUNKS
    boa_offset_applied: bool | None = None
    enmap: EnmapOptions = field(default_factory=EnmapOptions)
    prisma: PrismaOptions = field(default_factory=PrismaOptions)
    ahsi: AhsiOptions = field(default_factory=AhsiOptions)


def _is_stac_item(path: Path) -> bool:
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with path.open("rb") as f:
            doc = json.loads(f.read(4 * 2**20))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("type") == "Feature" and "stac_version" in doc


def _names(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _ahsi_pair(folder: Path) -> tuple[Path, Path] | None:
    """The ``<name>_VN`` and ``<name>_SW`` files of one AHSI delivery in ``folder``."""
    parts: dict[str, dict[str, Path]] = {}
    for p in _names(folder):
        m = _AHSI_PART.match(p.name)
        if m and p.is_file():
            parts.setdefault(m.group("stem"), {})[m.group("part").upper()] = p
    pairs = [(v["VN"], v["SW"]) for v in parts.values() if "VN" in v and "SW" in v]
    return pairs[0] if len(pairs) == 1 else None


def product_kind(path: str | os.PathLike[str]) -> str | None:
    """The kind of product at ``path`` (a key of :data:`PRODUCT_KINDS`), or None for anything else.

    Only the layout is looked at (names, and the head of a ``.json`` file); nothing is validated.
    """
    p = Path(path).expanduser()
    if not p.exists():
        return None
    name = p.name.upper()
    if p.is_dir():
        entries = _names(p)
        upper = {c.name.upper() for c in entries}
        if name.endswith(".SAFE") or upper & set(_S2_METADATA):
            return "sentinel2-safe"
        if any(u.endswith("METADATA.XML") for u in upper):
            return "enmap"
        if len([c for c in entries if c.is_dir() and c.name.upper().endswith(".SAFE")]) == 1:
            return "sentinel2-safe"
        if _ahsi_pair(p) is not None:
            return "ahsi"
        return None
    if name in _S2_METADATA:
        return "sentinel2-safe"
    if _is_stac_item(p):
        return "sentinel2-stac"
    if name.endswith("METADATA.XML") or _ENMAP_NAME.match(p.name):
        return "enmap"
    if p.suffix.lower() == ".he5":
        return "prisma"
    if _AHSI_NAME.match(p.name) or _AHSI_PART.match(p.name):
        return "ahsi"
    return None


def is_product(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has the layout of a product :func:`open_product` reads (see the module docstring)."""
    return product_kind(path) is not None


def _accepted(role: str) -> str:
    return "; ".join(ACCEPTED_FORMS[role])


def _unknown(p: Path, role: str) -> DcstsfInputError:
    if not p.exists():
        return input_error(p, "not found", f"check the path; {_ROLE_NAMES[role]} is one of: {_accepted(role)}")
    if p.is_file() and (p.suffix.lower() in _ZIPS or p.name.lower().endswith(".tar.gz")):
        return input_error(p, "a packed download", "unpack it and give the product folder or file it holds")
    return input_error(
        p,
        f"not a product dcstsf recognises as {_ROLE_NAMES[role]}",
        f"give {_accepted(role)}; a GeoTIFF, Zarr or NetCDF raster already holding reflectance is read with "
        "dcstsf.io.open_raster (and dcstsf fuse reads it as it is)",
    )


def _read_ahsi(p: Path, options: ProductOptions) -> xr.DataArray:
    opts = _with_chunks(options.ahsi, options.chunks)
    if p.is_dir():
        pair = _ahsi_pair(p)
        if pair is None:
            raise _unknown(p, "hs")
        return read_ahsi(pair[0], swir=pair[1], options=opts)
    m = _AHSI_PART.match(p.name)
    if m:
        partner = next(
            (c for c in _names(p.parent)
             if (pm := _AHSI_PART.match(c.name)) and pm.group("stem") == m.group("stem")
             and pm.group("part").upper() != m.group("part").upper()),
            None,
        )
        if partner is not None:
            vnir, swir = (p, partner) if m.group("part").upper() == "VN" else (partner, p)
            return read_ahsi(vnir, swir=swir, options=opts)
    return read_ahsi(p, options=opts)


def _with_chunks(opts: _Opts, chunks: int | None) -> _Opts:
    return replace(opts, chunks=chunks)


def open_product(
    path: str | os.PathLike[str],
    *,
    role: Literal["hs", "ms"] = "hs",
    options: ProductOptions | None = None,
) -> xr.DataArray:
    """Read a delivered product as a float32 reflectance cube ``(band, y, x)`` by its layout.

    Parameters
    ----------
    path
        A product in one of the forms of the module docstring.
    role
        ``"hs"`` for the hyperspectral input, ``"ms"`` for a multispectral one; a product of the other kind
        is refused with an error saying where it belongs.
    options
        What to read (Sentinel-2 bands, SCL classes, sensor, chunks, the hyperspectral readers' options).

    Returns
    -------
    xarray.DataArray
        The reader's result: NaN for nodata and masked pixels, CRS on ``.rio``, ``wavelength``/``fwhm``
        coordinates and the attributes ``sensor``, ``product_path`` and ``masked_fraction``;
        ``encoding["source"]`` names ``path``.

    Raises
    ------
    DcstsfInputError
        Anything that is not a recognised product (the message lists the accepted forms), a product given in
        the wrong role, and whatever the reader refuses (missing files, wrong level, ...).
    """
    if role not in ACCEPTED_FORMS:
        raise DcstsfInputError(f"role must be 'hs' or 'ms', got {role!r}")
    opts = options or ProductOptions()
    p = Path(path).expanduser()
    kind = product_kind(p)
    if kind is None:
        raise _unknown(p, role)
    if PRODUCT_KINDS[kind] != role:
        other = "hs" if role == "ms" else "ms"
        raise input_error(
            p,
            f"{_KIND_NAMES[kind]} was given as {_ROLE_NAMES[role]}",
            f"give it as {_ROLE_NAMES[other]}; {_ROLE_NAMES[role]} is one of: {_accepted(role)}",
        )
    if kind == "sentinel2-safe":
        da = read_sentinel2_l2a(p, bands=opts.ms_bands, scl=opts.scl, sensor=opts.ms_sensor, chunks=opts.chunks)
    elif kind == "sentinel2-stac":
        da = read_sentinel2_stac(
            p, bands=opts.ms_bands, scl=opts.scl, sensor=opts.ms_sensor, chunks=opts.chunks,
            boa_offset_applied=opts.boa_offset_applied,
        )
    elif kind == "enmap":
        da = read_enmap_l2a(p, options=_with_chunks(opts.enmap, opts.chunks))
    elif kind == "prisma":
        da = read_prisma_l2d(p, options=_with_chunks(opts.prisma, opts.chunks))
    else:
        da = _read_ahsi(p, opts)
    da.encoding["source"] = str(p)
    da.attrs.setdefault("product_kind", kind)
    return da

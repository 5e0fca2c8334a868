"""Sentinel-2 L2A cloud-optimised GeoTIFFs described by a STAC item, as reflectance cubes on the 10 m grid.

The item (a JSON file, a URL or a :class:`pystac.Item`) is parsed by ``pystac`` and its assets are read
by ``odc-stac`` at their native grids (local paths, ``http(s)://`` or any other href GDAL opens; a
Planetary Computer item must be signed first, e.g. with the ``planetary-computer`` package). Two
catalogues' layouts of the ``sentinel-2-l2a`` collection are understood:

* **Earth Search** (Element 84): assets ``coastal``, ``blue``, ``green``, ``red``, ``rededge1``-``3``,
  ``nir``, ``nir08``, ``nir09``, ``swir16``, ``swir22`` and ``scl``; each band asset's ``raster:bands``
  gives ``scale`` and ``offset``; the item gives ``s2:processing_baseline``, ``platform`` and
  ``earthsearch:boa_offset_applied``. That flag true means the catalogue already added
  ``BOA_ADD_OFFSET`` to the pixels (Element 84: "New scenes being generated now have the
  BOA_ADD_OFFSET applied", cirrus-earth-search#21), and the maintainers call the flag, not the
  ``raster:bands`` offset, "the truth" (earth-search#9): with the flag true the offset is not applied
  again. Users have reported items whose flag is wrong (earth-search#66, #71, cirrus-earth-search#33);
  ``boa_offset_applied=`` overrides the item's flag for such items.
* **Planetary Computer** (Microsoft): assets ``B01``-``B12``, ``B8A`` and ``SCL`` with no
  ``raster:bands`` scale; the pixels are ESA's digital numbers, so scale and offset come from the
  ``product-metadata`` asset (the product's ``MTD_MSIL2A.xml``) as for a ``.SAFE`` folder.

In both, no offset is applied before processing baseline 04.00 (ESA introduced it with 04.00), DN 0 is no
data, and the arithmetic is :mod:`dcstsf.io.decoding`'s. Grid, resampling and SCL masking are those of
:mod:`dcstsf.products.sentinel2` (:func:`~dcstsf.products.sentinel2.assemble_l2a`).
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

from dcstsf.io.decoding import Decoding, StoredBands, decode_raster, resolve_decoding
from dcstsf.io.errors import input_error
from dcstsf.products.scl import DEFAULT_SCL, SclOptions
from dcstsf.products.sentinel2 import (
    DEFAULT_BANDS,
    DEFAULT_CHUNKS,
    L2AMetadata,
    NativeBand,
    assemble_l2a,
    band_decoding,
    check_level,
    parse_l2a_metadata,
    select_bands,
    sensor_for_spacecraft,
)
from dcstsf.sensors import Sensor

__all__ = ["EARTH_SEARCH_ASSETS", "PLANETARY_COMPUTER_ASSETS", "read_sentinel2_stac"]

#: Band -> asset key of Earth Search's ``sentinel-2-l2a`` items.
EARTH_SEARCH_ASSETS: Mapping[str, str] = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B09": "nir09",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}
#: Band -> asset key of Planetary Computer's ``sentinel-2-l2a`` items (the band names themselves).
PLANETARY_COMPUTER_ASSETS: Mapping[str, str] = {b: b for b in EARTH_SEARCH_ASSETS}
_PRODUCT_METADATA = "product-metadata"
_FIX_ITEM = (
    "use an item of the sentinel-2-l2a collection of Earth Search or Planetary Computer, or read the .SAFE "
    "product with dcstsf.products.sentinel2.read_sentinel2_l2a"
)


def _is_url(text: str) -> bool:
    # One-letter schemes are Windows drive letters, not URLs.
    scheme = urllib.parse.urlparse(text).scheme
    return len(scheme) > 1 and scheme != "file"


def _local_path(href: str) -> Path | None:
    parsed = urllib.parse.urlparse(href)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    return None if _is_url(href) else Path(href)


def _open_item(item: str | os.PathLike[str] | pystac.Item) -> tuple[pystac.Item, str]:
    """The item with absolute asset hrefs (a copy: the caller's item is left as it is), and its label."""
    if isinstance(item, pystac.Item):
        it = item.clone()
        label = it.get_self_href() or it.id
    else:
        label = str(item)
        local = _local_path(label)
        if local is not None and not local.is_file():
            raise input_error(label, "not found", "pass the path of the STAC item's JSON file (or its URL)")
        try:
            it = pystac.Item.from_file(label)
        except Exception as exc:  # pystac raises JSON, type and I/O errors of several kinds
            raise input_error(
                label,
                f"not a readable STAC item ({type(exc).__name__}: {exc})",
                "pass one item (a GeoJSON Feature) as saved from the catalogue, not a search result or collection",
            ) from exc
    try:
        it.make_asset_hrefs_absolute()
    except Exception as exc:  # relative hrefs without a self link
        raise input_error(
            label,
            f"the item's asset hrefs are relative and the item has no location to resolve them from ({exc})",
            "read the item from its JSON file (dcstsf resolves relative hrefs against it) or make the hrefs absolute",
        ) from exc
    return it, label


def _check_level(it: pystac.Item, label: str) -> None:
    product_type = str(it.properties.get("s2:product_type") or "")
    collection = str(it.collection_id or "")
    if "1C" in product_type.upper() or "l1c" in collection.lower():
        raise input_error(
            label,
            f"a Sentinel-2 Level-1C item (collection {collection or '?'}, s2:product_type {product_type or '?'}): "
            "top-of-atmosphere reflectance, not the Level-2A surface reflectance the fusion needs",
            "use the item of the same acquisition from the sentinel-2-l2a collection",
        )


def _asset_key(it: pystac.Item, band: str, label: str) -> str:
    keys = list(dict.fromkeys((PLANETARY_COMPUTER_ASSETS[band], EARTH_SEARCH_ASSETS[band])))
    for key in keys:
        if key in it.assets:
            return key
    what = "the SCL" if band == "SCL" else f"band {band}"
    skip = "pass scl=None to read without the cloud mask" if band == "SCL" else f"leave {band} out of bands=[...]"
    raise input_error(
        label,
        f"the item has no asset for {what} (looked for {' or '.join(repr(k) for k in keys)}; its assets are "
        f"{sorted(it.assets)})",
        f"{skip}, or {_FIX_ITEM}",
    )


def _read_bytes(href: str) -> bytes:
    local = _local_path(href)
    try:
        if local is not None:
            return local.read_bytes()
        with urllib.request.urlopen(href, timeout=60) as response:  # noqa: S310 (the item names the href)
            return bytes(response.read())
    except OSError as exc:
        raise input_error(
            href,
            f"the product metadata (MTD_MSIL2A.xml) cannot be read ({type(exc).__name__}: {exc})",
            "check the href (a Planetary Computer item must be signed) or download the file and point the "
            "item's product-metadata asset at it",
        ) from exc


def _baseline_number(text: Any) -> float | None:
    try:
        return float(str(text))
    except (TypeError, ValueError):
        return None


def _no_sample(idx: list[int]) -> np.ndarray:
    return np.empty((len(idx), 0))


def _raster_bands_decoding(
    it: pystac.Item, asset: pystac.Asset, band: str, href: str, *, applied: bool | None, label: str
) -> Decoding:
    """Scale/offset from the asset's ``raster:bands``, by the catalogue's and ESA's rules (module docstring)."""
    rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
    scale = float(rb["scale"])
    baseline_text = it.properties.get("s2:processing_baseline")
    baseline = _baseline_number(baseline_text)
    offset = float(rb.get("offset") or 0.0)
    if baseline is not None and baseline < 4.0:
        offset = 0.0  # ESA introduced BOA_ADD_OFFSET with baseline 04.00
    elif applied is True:
        offset = 0.0  # the catalogue already added BOA_ADD_OFFSET to the pixels
    elif baseline is None and applied is None and offset != 0.0:
        raise input_error(
            label,
            f"asset {band} declares an offset of {offset:g} but the item gives neither s2:processing_baseline nor "
            "earthsearch:boa_offset_applied, so whether the pixels still carry BOA_ADD_OFFSET is unknown",
            "pass boa_offset_applied=True if the pixels are already offset-corrected, False to apply the offset",
        )
    elif baseline is not None and "offset" not in rb and applied is not True:
        raise input_error(
            label,
            f"processing baseline {baseline_text} (04.00 or later) but asset {band}'s raster:bands gives no offset",
            "pass boa_offset_applied=True if the pixels are already offset-corrected; otherwise " + _FIX_ITEM,
        )
    nodata = rb.get("nodata", 0)  # ESA: DN 0 is no data
    stored = StoredBands(
        path=href,
        count=1,
        dtype=np.dtype(str(rb.get("data_type", "uint16"))),
        descriptions=[band],
        band_tags=[{}],
        set_tags=[{}],
        scales=[scale],
        offsets=[offset],
        nodata=[None if nodata is None else float(nodata)],
    )
    return resolve_decoding(stored, scale=None, offset=None, nodata=None, sample=_no_sample)


def _native_geobox(parsed: Any, key: str, href: str) -> GeoBox:
    """The asset's own grid: from its projection metadata, else from the file's header."""
    for (name, _), source in parsed.bands.items():
        if name == key and source.geobox is not None:
            return source.geobox
    import rasterio

    try:
        with rasterio.open(href) as src:
            return GeoBox((src.height, src.width), src.transform, src.crs)
    except Exception as exc:  # GDAL reports unreadable files in several exception types
        raise input_error(href, f"cannot be opened ({type(exc).__name__}: {exc})", "check the asset href") from exc


def _load_native(it: pystac.Item, keys: Sequence[str], chunks: int | None) -> dict[str, tuple[Any, GeoBox]]:
    """Stored values of the assets ``keys`` on their native grids (lazy unless ``chunks`` is None)."""
    import odc.stac

    parsed = odc.stac.parse_item(it)
    grids = {k: _native_geobox(parsed, k, it.assets[k].get_absolute_href() or "") for k in keys}
    groups: dict[GeoBox, list[str]] = {}
    for key, grid in grids.items():
        groups.setdefault(grid, []).append(key)
    out: dict[str, tuple[Any, GeoBox]] = {}
    for grid, group in groups.items():
        ds = odc.stac.load(
            [it], bands=group, geobox=grid, chunks=None if chunks is None else {"x": chunks, "y": chunks}
        )
        for key in group:
            out[key] = (ds[key].isel(time=0).data, grid)
    return out


def read_sentinel2_stac(
    item: str | os.PathLike[str] | pystac.Item,
    *,
    bands: Sequence[str] = DEFAULT_BANDS,
    scl: SclOptions | None = DEFAULT_SCL,
    sensor: str | Sensor | None = None,
    chunks: int | None = DEFAULT_CHUNKS,
    boa_offset_applied: bool | None = None,
) -> xr.DataArray:
    """Read the Sentinel-2 L2A COGs of a STAC item as a float32 reflectance cube on the 10 m grid.

    Parameters
    ----------
    item
        The item's JSON file or URL, or a :class:`pystac.Item`; asset hrefs may be local or remote.
    bands, scl, sensor, chunks
        As for :func:`~dcstsf.products.sentinel2.read_sentinel2_l2a`; the sensor comes from the item's
        ``platform`` (``sentinel-2a``/``Sentinel-2A``) unless given.
    boa_offset_applied
        Overrides the item's ``earthsearch:boa_offset_applied``: True when the pixels already are
        offset-corrected, False to apply the offset of baseline 04.00 and later.

    Returns
    -------
    xarray.DataArray
        As :func:`~dcstsf.products.sentinel2.read_sentinel2_l2a`; ``product_path`` is the item's file or URL
        (its id for an item held only in memory).

    Raises
    ------
    DcstsfInputError
        Unreadable item, Level-1C item, unknown band, missing asset or local file, no reflectance scale
        anywhere, or a spacecraft whose responses are not shipped (Sentinel-2C).
    """
    it, label = _open_item(item)
    _check_level(it, label)
    names = select_bands(bands, source=label)
    keys = {name: _asset_key(it, name, label) for name in names}
    if scl is not None:
        keys["SCL"] = _asset_key(it, "SCL", label)
    hrefs = {name: it.assets[key].get_absolute_href() or "" for name, key in keys.items()}
    for name, href in hrefs.items():
        local = _local_path(href)
        if local is not None and not local.is_file():
            raise input_error(
                local,
                f"the file of asset {keys[name]!r} ({name}) is missing",
                f"download it next to the item (hrefs resolve against {label}), or leave {name} out of bands=[...]",
            )
    meta: L2AMetadata | None = None
    if _PRODUCT_METADATA in it.assets:
        meta_href = it.assets[_PRODUCT_METADATA].get_absolute_href() or ""
        needs_meta = any("scale" not in (it.assets[keys[n]].extra_fields.get("raster:bands") or [{}])[0] for n in names)
        if needs_meta or not it.properties.get("platform"):
            meta = parse_l2a_metadata(_read_bytes(meta_href), source=meta_href)
            check_level(meta)
    applied = it.properties.get("earthsearch:boa_offset_applied") if boa_offset_applied is None else boa_offset_applied
    decodings = {}
    for name in names:
        asset = it.assets[keys[name]]
        rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
        if "scale" in rb:
            dec = _raster_bands_decoding(it, asset, name, hrefs[name], applied=applied, label=label)
        elif meta is not None:
            dec = band_decoding(meta, name, hrefs[name])
            if boa_offset_applied is True:
                dec = replace(dec, offset=np.zeros_like(dec.offset))
        else:
            raise input_error(
                label,
                f"asset {keys[name]!r} ({name}) has no raster:bands scale and the item has no "
                f"{_PRODUCT_METADATA} asset (MTD_MSIL2A.xml): the reflectance scale of its digital numbers is unknown",
                _FIX_ITEM,
            )
        decodings[name] = dec
    spacecraft = it.properties.get("platform") or (meta.spacecraft if meta is not None else None)
    chosen = sensor_for_spacecraft(spacecraft, sensor=sensor, source=label)
    native = _load_native(it, list(dict.fromkeys(keys.values())), chunks)
    natives = []
    for name in names:
        raw, grid = native[keys[name]]
        coords = xr_coords(grid)
        refl = decode_raster(
            raw[None],
            decodings[name],
            y=coords["y"].values,
            x=coords["x"].values,
            crs=None,
            transform=None,
            attrs=[],
            name=None,
        )
        natives.append(NativeBand(name, refl.data[0], grid))
    scl_band = None
    if scl is not None:
        raw, grid = native[keys["SCL"]]
        scl_band = NativeBand("SCL", raw, grid)
    baseline = it.properties.get("s2:processing_baseline") or (meta.processing_baseline if meta else None)
    when = it.properties.get("datetime") or (meta.start_time if meta is not None else None)
    attrs = {
        "spacecraft": str(spacecraft),
        "processing_baseline": str(baseline) if baseline is not None else "unknown",
        "product_path": label,
        **({"acquisition_time": str(when)} if when else {}),
    }
    return assemble_l2a(natives, scl=scl_band, scl_options=scl, sensor=chosen, attrs=attrs, chunks=chunks, source=label)

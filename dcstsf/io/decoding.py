"""Decoding stored values into reflectance: the one path every reader takes.

A reader describes what it found (:class:`StoredBands`: data type, band descriptions, tags, the file's
band scales/offsets/nodata) and how to look at a few stored values; :func:`resolve_decoding` derives the
band information and picks scale, offset and nodata per band; :func:`decode_raster` turns the stored
array (NumPy or Dask) into the float32 reflectance DataArray every reader returns.

Reflectance scaling is never assumed. It comes, in order of precedence, from the caller
(``scale=``/``offset=``), the file's per-band GDAL scales/offsets, metadata (ENVI ``data gain values``,
``reflectance scale factor``, CF ``scale_factor``/``add_offset``) or Sentinel-2 L2A metadata
(``BOA_QUANTIFICATION_VALUE`` and, from processing baseline 04.00, ``BOA_ADD_OFFSET``). Integer data
with no scale anywhere is an error; float data with no scale must look like reflectance, and a scale the
caller gives for float data with no scale of its own must not be applied to values that already are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor used on every result)
import xarray as xr

from dcstsf.io.errors import input_error
from dcstsf.io.metadata import (
    BandInfo,
    as_float,
    band_coords,
    band_info,
    collect_per_band,
    is_integer_dtype,
    norm_key,
    parse_number_list,
    per_band,
)
from dcstsf.nodata import inf_to_nan

__all__ = [
    "CONSUMED_KEYS",
    "REFLECTANCE_SANITY_LIMIT",
    "Decoding",
    "StoredBands",
    "check_looks_like_reflectance",
    "check_scale_is_needed",
    "clean_attrs",
    "decode_raster",
    "resolve_decoding",
    "sample_band_indices",
    "sample_slices",
]

#: Reflectance that looks like this in a float file is almost certainly unscaled digital numbers:
#: real surface reflectance rarely exceeds 1 even over snow or specular roofs.
REFLECTANCE_SANITY_LIMIT = 1.5
#: Lowest plausible surface reflectance: atmospheric correction leaves dark water and shadow slightly
#: negative (a few hundredths), not lower.
REFLECTANCE_LOW_LIMIT = -0.05
_SAMPLE_WINDOW = 64
#: Keys whose presence means the file declares its own scale or offset (then a caller's scale overrides it).
_SCALE_KEYS = frozenset(
    {
        "data_gain_values",
        "data_offset_values",
        "reflectance_scale_factor",
        "scale_factor",
        "add_offset",
        "scale",
        "offset",
        "boa_quantification_value",
    }
)
#: Metadata keys consumed while decoding; they are not copied to ``attrs`` because the values they
#: describe have already been applied (copying them would make a later write scale twice).
CONSUMED_KEYS = frozenset(
    {
        "area_or_point",
        "scale_factor",
        "add_offset",
        "scale",
        "offset",
        "scales",
        "offsets",
        "data_gain_values",
        "data_offset_values",
        "reflectance_scale_factor",
        "data_ignore_value",
        "_fillvalue",
        "missing_value",
        "nodata",
        "boa_quantification_value",
        "boa_add_offset",
        "wavelength",
        "wavelength_units",
        "fwhm",
        "bbl",
        "long_name",
        "units",
        "grid_mapping",
        "coordinates",
    }
)


@dataclass(frozen=True)
class StoredBands:
    """What a reader found about the stored bands, before any decoding.

    Attributes
    ----------
    path
        The file named in error messages.
    count
        Number of bands.
    dtype
        Stored data type.
    descriptions
        One description (or None) per band: a band name, or a GDAL/ENVI label embedding a wavelength.
    band_tags
        Per-band tags, keys normalised (:func:`dcstsf.io.metadata.norm_tags`).
    set_tags
        Dataset-wide tag sets, keys normalised, the first one that has a key wins.
    scales, offsets
        The file's per-band GDAL scales/offsets (1/0 when unset), None when the format has none.
    nodata
        The file's per-band nodata values (None where unset), None when the format has none.
    """

    path: Any
    count: int
    dtype: np.dtype
    descriptions: Sequence[str | None]
    band_tags: list[dict[str, Any]]
    set_tags: list[dict[str, Any]]
    scales: Sequence[float] | None = None
    offsets: Sequence[float] | None = None
    nodata: Sequence[float | None] | None = None


@dataclass(frozen=True)
class Decoding:
    """How stored values become reflectance: ``value * scale + offset`` per band, ``nodata`` -> NaN."""

    info: BandInfo
    scale: np.ndarray
    offset: np.ndarray
    nodata: np.ndarray | None


def _processing_baseline(tags: list[dict[str, Any]]) -> float | None:
    for t in tags:
        for key in ("processing_baseline", "s2:processing_baseline"):
            if key in t:
                m = re.search(r"(\d+(?:\.\d+)?)", str(t[key]))
                if m:
                    text = m.group(1)
                    # "N0400" style identifiers carry no dot: 0400 -> 4.00
                    return float(text) if "." in text else int(text) / 100.0
    return None


def _s2_add_offsets(
    names: Sequence[str], band_tags: list[dict[str, Any]], set_tags: list[dict[str, Any]]
) -> np.ndarray | None:
    """BOA_ADD_OFFSET in DN per band: band tag, ``BOA_ADD_OFFSET_<band>`` or one dataset-wide value."""
    n = len(names)
    in_band_tags = [as_float(bt.get("boa_add_offset")) for bt in band_tags]
    if n and all(v is not None for v in in_band_tags):
        return np.asarray(in_band_tags, dtype=np.float64)
    out: list[float | None] = []
    for name in names:
        stripped = re.sub(r"^b0*", "b", str(name).strip().lower())
        found = None
        for t in set_tags:
            for key in (f"boa_add_offset_{str(name).lower()}", f"boa_add_offset_{stripped}"):
                if key in t:
                    found = as_float(t[key])
                    break
            if found is not None:
                break
        out.append(found)
    if n and all(v is not None for v in out):
        return np.asarray(out, dtype=np.float64)
    for t in set_tags:
        if "boa_add_offset" in t and as_float(t["boa_add_offset"]) is not None:
            return np.full(n, as_float(t["boa_add_offset"]), dtype=np.float64)
    return None


def _metadata_scale_offset(
    n: int, band_tags: list[dict[str, Any]], set_tags: list[dict[str, Any]], path: Any
) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """Scale/offset from ENVI-style or CF-style metadata keys (not Sentinel-2)."""
    for scale_key, offset_key in (("data_gain_values", "data_offset_values"),):
        gains, _ = collect_per_band(scale_key, band_tags, set_tags, n, path=path)
        offs, _ = collect_per_band(offset_key, band_tags, set_tags, n, path=path)
        if gains is not None or offs is not None:
            return gains, offs, f"metadata '{scale_key}'"
    for t in set_tags:
        if "reflectance_scale_factor" in t:
            f = as_float(t["reflectance_scale_factor"])
            if f is None or f == 0:
                raise input_error(
                    path, "metadata 'reflectance scale factor' is not a non-zero number", "fix the header"
                )
            return np.full(n, 1.0 / f), None, "metadata 'reflectance scale factor'"
    for scale_key, offset_key in (("scale_factor", "add_offset"), ("scale", "offset")):
        sc, _ = collect_per_band(scale_key, band_tags, [], n, path=path)
        of, _ = collect_per_band(offset_key, band_tags, [], n, path=path)
        if sc is None and of is None:
            for t in set_tags:
                if scale_key in t or offset_key in t:
                    s_val = parse_number_list(t.get(scale_key)) if scale_key in t else None
                    o_val = parse_number_list(t.get(offset_key)) if offset_key in t else None
                    sc = per_band(s_val, n, what=scale_key, path=path) if s_val else None
                    of = per_band(o_val, n, what=offset_key, path=path) if o_val else None
                    break
        if sc is not None or of is not None:
            return sc, of, f"metadata '{scale_key}'"
    return None, None, None


def _scale_offset_nodata(
    stored: StoredBands,
    names: Sequence[str],
    *,
    scale: float | Sequence[float] | None,
    offset: float | Sequence[float] | None,
    nodata: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """Scale, offset and nodata per band in the documented order of precedence, and whether the values
    must be checked to look like reflectance (float data with no scale anywhere)."""
    path, band_tags, set_tags = stored.path, stored.band_tags, stored.set_tags
    n = len(names)
    sc: np.ndarray | None = None
    of: np.ndarray | None = None
    if scale is not None:
        sc = per_band(scale, n, what="scale", path=path)
        if not (np.all(np.isfinite(sc)) and np.all(sc > 0)):
            # Zero maps every pixel to the offset, a negative scale inverts the image: neither encodes
            # reflectance, and reading with it would give wrong values without an error.
            raise input_error(
                path,
                f"the scale {scale!r} is not a positive finite number per band",
                "pass the reflectance per stored unit that the product documents (CLI --scale)",
            )
    if offset is not None:
        of = per_band(offset, n, what="offset", path=path)
        if not np.all(np.isfinite(of)):
            raise input_error(
                path, f"the offset {offset!r} is not finite", "pass a finite offset in reflectance units, or none"
            )

    # GDAL per-band scale/offset (rasterio reports 1/0 when unset)
    fs = np.asarray(stored.scales, dtype=np.float64) if stored.scales is not None else None
    fo = np.asarray(stored.offsets, dtype=np.float64) if stored.offsets is not None else None
    file_has = (fs is not None and np.any(fs != 1.0)) or (fo is not None and np.any(fo != 0.0))
    if file_has:
        if sc is None:
            sc = fs if fs is not None else np.ones(n)
        if of is None:
            of = fo if fo is not None else np.zeros(n)

    if sc is None or of is None:
        msc, mof, msrc = _metadata_scale_offset(n, band_tags, set_tags, path)
        if msrc is not None:
            if sc is None and msc is not None:
                sc = msc
            if of is None and mof is not None:
                of = mof
            if sc is None and mof is not None:
                sc = np.ones(n)

    s2_nodata = False
    quant = next((as_float(t["boa_quantification_value"]) for t in set_tags if "boa_quantification_value" in t), None)
    adds = _s2_add_offsets(names, band_tags, set_tags)
    baseline = _processing_baseline(set_tags)
    if quant is not None or adds is not None:
        s2_nodata = True
        if sc is None and quant is not None:
            if quant == 0:
                raise input_error(path, "BOA_QUANTIFICATION_VALUE is 0", "fix the product metadata or pass scale=")
            sc = np.full(n, 1.0 / quant)
        if of is None:
            if baseline is not None and baseline < 4.0:
                # Before baseline 04.00 L2A had no radiometric offset, whatever else the metadata says.
                of = np.zeros(n)
            elif adds is not None:
                if sc is None:
                    raise input_error(
                        path,
                        "Sentinel-2 BOA_ADD_OFFSET is given but no quantification value",
                        "pass scale= (CLI --scale), the inverse of BOA_QUANTIFICATION_VALUE",
                    )
                # reflectance = (DN + BOA_ADD_OFFSET) / Q = DN * scale + BOA_ADD_OFFSET * scale
                of = adds * sc
            elif baseline is not None and baseline >= 4.0:
                raise input_error(
                    path,
                    f"Sentinel-2 L2A processing baseline {baseline:.2f} (>= 04.00) shifts DNs by BOA_ADD_OFFSET, "
                    "but the file carries no BOA_ADD_OFFSET",
                    "pass offset= (CLI --offset) in reflectance units, i.e. BOA_ADD_OFFSET / "
                    "BOA_QUANTIFICATION_VALUE from the product's MTD_MSIL2A.xml",
                )

    integer = is_integer_dtype(stored.dtype)
    check_values = False
    if sc is None:
        if integer:
            raise input_error(
                path,
                f"integer data ({np.dtype(stored.dtype).name}) with no reflectance scale in the file "
                "(no band scales, gain or scale-factor metadata)",
                "Pass the scale that turns the stored numbers into reflectance: scale=... (CLI --scale), "
                "e.g. the inverse of the product's quantification value",
            )
        sc = np.ones(n)
        check_values = scale is None and offset is None
    if of is None:
        of = np.zeros(n)

    nd: np.ndarray | None
    if nodata is not None:
        nd = np.full(n, float(nodata))
    elif stored.nodata is not None and any(v is not None for v in stored.nodata):
        nd = np.asarray([np.nan if v is None else float(v) for v in stored.nodata], dtype=np.float64)
    else:
        ignore = next((as_float(t["data_ignore_value"]) for t in set_tags if "data_ignore_value" in t), None)
        if ignore is not None:
            nd = np.full(n, ignore)
        elif s2_nodata and integer:
            # Sentinel-2 L2A: "DN = 0 remains the NO_DATA value" (ESA product specification).
            nd = np.zeros(n)
        else:
            nd = None
    return sc, of, nd, check_values


def sample_slices(height: int, width: int) -> list[tuple[slice, slice]]:
    """Up to 3 x 3 small windows spread over the image: a cheap look at typical values."""
    wy, wx = min(_SAMPLE_WINDOW, height), min(_SAMPLE_WINDOW, width)
    ys = sorted({0, max(0, (height - wy) // 2), height - wy})
    xs = sorted({0, max(0, (width - wx) // 2), width - wx})
    return [(slice(y, y + wy), slice(x, x + wx)) for y in ys for x in xs]


def sample_band_indices(count: int) -> list[int]:
    """The (0-based) bands a plausibility check looks at: first, quartiles and last."""
    return sorted({0, count // 4, count // 2, (3 * count) // 4, count - 1})


def _valid_values(sample: np.ndarray, nodata: np.ndarray | None) -> np.ndarray:
    """The finite values of ``sample`` (``(bands, ...)``) that are not the bands' nodata value, flattened."""
    vals = np.asarray(sample, dtype=np.float64)
    if nodata is not None:
        nd = np.asarray(nodata, dtype=np.float64).reshape((-1,) + (1,) * (vals.ndim - 1))
        nd = np.broadcast_to(nd, vals.shape) if nd.shape[0] == vals.shape[0] else np.full(vals.shape, np.nan)
        vals = np.where(vals == nd, np.nan, vals)
    return vals[np.isfinite(vals)]


def _number(value: float) -> str:
    """``value`` as the shortest text that reads back to the same float32 (``-9999``, ``-0.9999``)."""
    text = str(np.float32(value))
    return text[:-2] if text.endswith(".0") else text


def check_looks_like_reflectance(sample: np.ndarray, nodata: np.ndarray | None, *, path: Any) -> None:
    """Raise when float data without scale information does not look like reflectance.

    Typical (median) magnitudes above :data:`REFLECTANCE_SANITY_LIMIT` mean one of these, and the message
    says which one the values show: one repeated value covering most of the sample while the other values
    look like reflectance (an undeclared fill value such as -9999: declare nodata, a scale would be wrong),
    values up to about 100 (percent reflectance: scale 0.01) or larger numbers (scaled integers: the
    product's scale). A sample that is one value throughout may be either a fill value or scaled integers,
    and the message names both fixes.
    """
    vals = _valid_values(sample, nodata)
    if vals.size == 0:
        return
    median = float(np.median(np.abs(vals)))
    if median <= REFLECTANCE_SANITY_LIMIT:
        return
    big = vals[np.abs(vals) > REFLECTANCE_SANITY_LIMIT]
    uniq, counts = np.unique(big, return_counts=True)
    fill = float(uniq[np.argmax(counts)])
    rest = vals[vals != fill]
    declare = f"nodata={_number(fill)} (CLI --hs-nodata {_number(fill)} or --ms-nodata {_number(fill)})"
    if rest.size == 0:
        raise input_error(
            path,
            f"float data with no scale information, and all {vals.size} sampled values are {_number(fill)}: "
            "an undeclared fill value or scaled integers",
            f"If {_number(fill)} marks missing data declare it: {declare}; if the file stores scaled integers "
            "pass the product's reflectance scale: scale=... (CLI --scale, --hs-scale or --ms-scale)",
        )
    if counts.max() >= 0.5 * big.size and np.median(np.abs(rest)) <= REFLECTANCE_SANITY_LIMIT:
        raise input_error(
            path,
            f"float data with no nodata value, where {_number(fill)} fills {np.mean(vals == fill):.0%} of "
            f"{vals.size} sampled values and the others look like reflectance (median {np.median(rest):.3g}); "
            "it is an undeclared fill value, not scaled data",
            f"Declare it as nodata: {declare}, and pass no scale",
        )
    if float(np.percentile(np.abs(vals), 99)) <= 150.0:
        raise input_error(
            path,
            f"float data with no scale information, but typical values are about {median:.4g} and the 99th "
            "percentile is at most 150 (reflectance is expected in [0, 1]); it looks like percent reflectance "
            "(0-100), or radiance, which cannot be fused",
            "For percent reflectance pass scale=0.01 (CLI --scale, --hs-scale or --ms-scale 0.01); convert "
            "radiance to surface reflectance first",
        )
    raise input_error(
        path,
        f"float data with no scale information, but typical values are about {median:.4g} "
        f"(reflectance is expected in [0, 1]); it looks like scaled integers",
        "Pass the reflectance scale explicitly: scale=... (CLI --scale, --hs-scale or --ms-scale), the inverse "
        "of the product's quantification value, e.g. 0.0001 for reflectance stored x 10 000",
    )


def _declares_scale(stored: StoredBands) -> bool:
    """Whether the file carries a scale or offset of its own: GDAL band scales/offsets or metadata keys."""
    if stored.scales is not None and any(v != 1.0 for v in stored.scales):
        return True
    if stored.offsets is not None and any(v != 0.0 for v in stored.offsets):
        return True
    return any(k in _SCALE_KEYS or str(k).startswith("boa_") for t in (*stored.band_tags, *stored.set_tags) for k in t)


def _given(value: float | Sequence[float]) -> str:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.size == 1 or np.all(arr == arr[0]):
        return f"{arr[0]:g}"
    return f"{arr[0]:g}, {arr[1]:g}, ... per band"


def check_scale_is_needed(
    sample: np.ndarray,
    nodata: np.ndarray | None,
    *,
    path: Any,
    scale: float | Sequence[float],
    offset: float | Sequence[float] | None,
) -> None:
    """Raise when a caller's ``scale`` would be applied to float values that already are reflectance.

    Called for float files that declare no scale of their own. The values already look like reflectance
    when the 1st and 99th percentiles of the sampled non-zero values lie in [-0.05, 1.5]: integers stored
    as floats (the case a scale is for) reach the hundreds or thousands. Zeros are left out because both
    reflectance and digital numbers have them, e.g. as fill; fewer than 10 other values decide nothing.
    """
    vals = _valid_values(sample, nodata)
    vals = vals[vals != 0.0]
    if vals.size < 10:
        return
    p1, p99 = (float(v) for v in np.percentile(vals, [1.0, 99.0]))
    if p1 < REFLECTANCE_LOW_LIMIT or p99 > REFLECTANCE_SANITY_LIMIT:
        return
    sc = float(np.atleast_1d(np.asarray(scale, dtype=np.float64))[0])
    of = 0.0 if offset is None else float(np.atleast_1d(np.asarray(offset, dtype=np.float64))[0])
    given = f"a scale of {_given(scale)}" + ("" if offset is None else f" and an offset of {_given(offset)}")
    keep_offset = (
        ""
        if offset is None
        else " Keep only the offset if these reflectances are known to lack one (e.g. Sentinel-2 L2A digital "
        "numbers of processing baseline 04.00 or later divided by 10 000 without BOA_ADD_OFFSET)."
    )
    raise input_error(
        path,
        f"the file stores floats that already look like reflectance (1st-99th percentile {p1:.3g} to {p99:.3g} "
        f"in {vals.size} sampled values) and declares no scale, yet {given} was given: it would turn them into "
        f"{p1 * sc + of:.6g} to {p99 * sc + of:.6g}",
        "Drop the option: no --scale/--hs-scale/--ms-scale (Python scale=, hs_scale=, ms_scale=)"
        + ("" if offset is None else " and no --offset/--hs-offset/--ms-offset (offset=, hs_offset=, ms_offset=)")
        + f" for this file; float files with no scale of their own are read as reflectance as they are.{keep_offset}",
    )


def resolve_decoding(
    stored: StoredBands,
    *,
    scale: float | Sequence[float] | None,
    offset: float | Sequence[float] | None,
    nodata: float | None,
    sample: Callable[[list[int]], np.ndarray],
) -> Decoding:
    """Band information, and scale/offset/nodata per band, for the stored bands a reader found.

    Parameters
    ----------
    stored
        What the reader found.
    scale, offset, nodata
        The caller's overrides (see :func:`dcstsf.io.open_raster`).
    sample
        Returns stored values of the given (0-based) bands, shape ``(bands, ...)``; called only for float
        data without scale information, whose typical values must then look like reflectance, or which
        must not look like reflectance already when the caller gives a scale.

    Raises
    ------
    DcstsfInputError
        Bad band metadata, integer data without a scale, Sentinel-2 metadata that cannot be decoded
        safely, float data that looks like scaled integers or an undeclared fill value, or a caller's
        scale for float data that already looks like reflectance.
    """
    info = band_info(
        n=stored.count,
        descriptions=stored.descriptions,
        band_tags=stored.band_tags,
        set_tags=stored.set_tags,
        path=stored.path,
    )
    sc, of, nd, check_values = _scale_offset_nodata(stored, info.names, scale=scale, offset=offset, nodata=nodata)
    if check_values:
        idx = sample_band_indices(stored.count)
        check_looks_like_reflectance(sample(idx), nd[idx] if nd is not None else None, path=stored.path)
    elif (
        scale is not None
        and np.any(sc != 1.0)
        and not is_integer_dtype(stored.dtype)
        and not _declares_scale(stored)
    ):
        # A caller's scale for a float file with none of its own: right for integers stored as floats,
        # but applied to reflectance it gives values near the offset without any error.
        idx = sample_band_indices(stored.count)
        check_scale_is_needed(
            sample(idx), nd[idx] if nd is not None else None, path=stored.path, scale=scale, offset=offset
        )
    return Decoding(info=info, scale=sc, offset=of, nodata=nd)


def _decode(raw: xr.DataArray, dec: Decoding) -> xr.DataArray:
    """DN -> float32 reflectance with nodata -> NaN; lazy when ``raw`` is Dask-backed.

    +/-Inf in float files is nodata too: a single Inf would otherwise spread through every blur and
    scene mean downstream.
    """
    out = raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.floating):
        out = out.copy(data=inf_to_nan(out.data))  # no copy of a block without Inf
    if dec.nodata is not None and np.any(np.isfinite(dec.nodata)):
        nd = xr.DataArray(dec.nodata.astype(np.float32), dims="band")
        out = out.where(out != nd)
    if np.any(dec.scale != 1.0) or np.any(dec.offset != 0.0):
        sc = xr.DataArray(dec.scale.astype(np.float32), dims="band")
        of = xr.DataArray(dec.offset.astype(np.float32), dims="band")
        out = out * sc + of
    return out


def clean_attrs(*tag_sets: Mapping[Any, Any]) -> dict[str, Any]:
    """The tags a result carries in ``attrs``: all but those decoding consumed (:data:`CONSUMED_KEYS`)."""
    attrs: dict[str, Any] = {}
    for tags in tag_sets:
        for key, value in tags.items():
            nk = norm_key(key)
            if nk in CONSUMED_KEYS or nk.startswith("boa_") or nk.startswith("derived_subdataset"):
                continue
            attrs[str(key)] = value
    return attrs


def decode_raster(
    raw: Any,
    decoding: Decoding,
    *,
    y: np.ndarray,
    x: np.ndarray,
    crs: Any,
    transform: Any,
    attrs: Sequence[Mapping[Any, Any]],
    name: Hashable | None,
) -> xr.DataArray:
    """The reflectance DataArray of stored values ``raw`` (NumPy or Dask, ``(band, y, x)``).

    float32, nodata and +/-Inf as NaN, band coordinates from ``decoding.info``, ``y``/``x`` coordinates,
    CRS and transform on ``.rio`` (when given), the tag sets ``attrs`` less the keys decoding consumed.
    Lazy when ``raw`` is a Dask array.
    """
    data = _decode(xr.DataArray(raw, dims=("band", "y", "x")), decoding).data
    coords = band_coords(decoding.info)
    coords["y"] = ("y", np.asarray(y, dtype=np.float64))
    coords["x"] = ("x", np.asarray(x, dtype=np.float64))
    da = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, attrs=clean_attrs(*attrs), name=name)
    if crs is not None:
        da = da.rio.write_crs(crs)
    if transform is not None:
        da = da.rio.write_transform(transform)
    da.rio.write_nodata(np.nan, encoded=False, inplace=True)
    return da

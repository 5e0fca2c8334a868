"""ENVI images (``.hdr`` header + raw binary data): a small pure-NumPy reader and the header parser."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dcstsf.io.decoding import StoredBands, decode_raster, resolve_decoding, sample_slices
from dcstsf.io.errors import input_error
from dcstsf.io.metadata import norm_key

__all__ = ["ENVI_DTYPES", "parse_envi_header", "read_envi"]

#: ENVI ``data type`` codes of the real types this reader supports, as NumPy type codes (no byte order).
ENVI_DTYPES = {
    1: "u1",
    2: "i2",
    3: "i4",
    4: "f4",
    5: "f8",
    12: "u2",
    13: "u4",
    14: "i8",
    15: "u8",
}
_DATA_SUFFIXES = (".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".bin")
# Header fields kept in ``attrs`` (spaces as underscores); ``map info`` is kept but not decoded.
_KEPT_FIELDS = ("description", "sensor type", "map info", "coordinate system string", "acquisition time")


def _envi_scalar(text: str) -> Any:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def parse_envi_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse an ENVI ``.hdr`` file.

    Keys are lower-cased with single spaces (``"wavelength units"``, ``"reflectance scale factor"``).
    Brace lists become lists of numbers when every item is numeric (``wavelength``, ``fwhm``, ``bbl``,
    ``data gain values``, ...) and lists of strings otherwise (``band names``); ``description`` stays one
    string; other values become int, float or str.

    Raises
    ------
    DcstsfInputError
        If the file is missing or does not start with ``ENVI``.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise input_error(p, "ENVI header not found", "give the .hdr file (or the data file next to it)")
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.lstrip().startswith("ENVI"):
        raise input_error(
            p, "not an ENVI header (the first line is not 'ENVI')", "give the .hdr file of an ENVI image"
        )
    out: dict[str, Any] = {}
    body = text.lstrip()[4:]
    pos = 0
    pattern = re.compile(r"^[ \t]*([^=\n]+?)[ \t]*=[ \t]*", re.MULTILINE)
    while True:
        m = pattern.search(body, pos)
        if not m:
            break
        key = re.sub(r"\s+", " ", m.group(1).strip().lower())
        start = m.end()
        if body[start : start + 1] == "{":
            end = body.find("}", start)
            if end < 0:
                raise input_error(p, f"header field '{key}' opens '{{' but never closes it", "repair the header")
            raw = body[start + 1 : end]
            pos = end + 1
            if key == "description":
                out[key] = " ".join(raw.split())
                continue
            items = [s.strip() for s in raw.split(",")]
            items = [s for s in items if s != ""]
            try:
                nums = [float(s) for s in items]
                is_int = [re.fullmatch(r"[-+]?\d+", s) is not None for s in items]
                out[key] = [int(v) if i else v for v, i in zip(nums, is_int)]
            except ValueError:
                out[key] = items
        else:
            end = body.find("\n", start)
            end = len(body) if end < 0 else end
            out[key] = _envi_scalar(body[start:end])
            pos = end
    return out


def _envi_pair(path: Path) -> tuple[Path, Path]:
    """(header, data file) for either of the two."""
    if path.suffix.lower() == ".hdr":
        hdr = path
        stem = path.with_suffix("")
        candidates = [stem] + [stem.with_suffix(s) for s in _DATA_SUFFIXES]
        # "x.img.hdr" style
        candidates.insert(0, Path(str(path)[: -len(".hdr")]))
        data = next((c for c in candidates if c.is_file() and c.suffix.lower() != ".hdr"), None)
        if data is None:
            raise input_error(hdr, "no ENVI data file next to the header", "keep the .img/.dat file beside the .hdr")
        return hdr, data
    for hdr in (Path(str(path) + ".hdr"), path.with_suffix(".hdr")):
        if hdr.is_file():
            return hdr, path
    raise input_error(path, "no ENVI header (.hdr) next to the data file", "keep the .hdr file beside the image")


def _layout(hdr: dict[str, Any], hdr_path: Path) -> tuple[int, int, int, np.dtype, str, int]:
    """``(bands, lines, samples, dtype, interleave, header offset)`` from a parsed header, checked."""
    try:
        ns, nl, nb = int(hdr["samples"]), int(hdr["lines"]), int(hdr["bands"])
        code = int(hdr["data type"])
    except (KeyError, TypeError, ValueError) as exc:
        raise input_error(
            hdr_path,
            f"header lacks or garbles a required field ({exc})",
            "the header needs samples, lines, bands and data type",
        ) from exc
    if min(ns, nl, nb) < 1:
        raise input_error(
            hdr_path, f"the header gives {ns} samples, {nl} lines, {nb} bands", "fix the header (all must be >= 1)"
        )
    if code not in ENVI_DTYPES:
        raise input_error(
            hdr_path, f"ENVI data type {code} (complex or unknown) is not supported", "convert to a real type"
        )
    try:
        byte_order, header_offset = int(hdr.get("byte order", 0)), int(hdr.get("header offset", 0))
    except (TypeError, ValueError) as exc:
        raise input_error(
            hdr_path, f"'byte order' or 'header offset' is not an integer ({exc})", "fix the header"
        ) from exc
    if byte_order not in (0, 1) or header_offset < 0:
        raise input_error(
            hdr_path,
            f"'byte order = {byte_order}' or 'header offset = {header_offset}' is invalid",
            "fix the header (byte order 0 or 1, header offset >= 0)",
        )
    order = "<" if byte_order == 0 else ">"
    dtype = np.dtype(order + ENVI_DTYPES[code])
    interleave = str(hdr.get("interleave", "bsq")).strip().lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise input_error(hdr_path, f"unknown interleave {interleave!r}", "use bsq, bil or bip")
    return nb, nl, ns, dtype, interleave, header_offset


def read_envi(
    path: str | os.PathLike[str],
    *,
    scale: float | Sequence[float] | None = None,
    offset: float | Sequence[float] | None = None,
    nodata: float | None = None,
) -> xr.DataArray:
    """Read an ENVI image (``.hdr`` + binary data) into a float32 reflectance DataArray ``(band, y, x)``.

    Supports BSQ/BIL/BIP, both byte orders and ``header offset``. ``reflectance scale factor`` (reflectance =
    value / factor) or ``data gain values``/``data offset values`` are applied; ``data ignore value`` becomes
    NaN. Band names come from ``band names`` (else ``band_<i>``), and ``wavelength``/``fwhm`` (converted to
    nm) and ``bbl`` become coordinates. ``map info`` is not decoded: the result has no CRS and pixel
    coordinates (``x = 0.5, 1.5, ...``; ``y`` likewise, increasing downwards); the raw ``map info`` string is
    kept in ``attrs`` when present.

    Parameters
    ----------
    path
        The ``.hdr`` file or the data file next to it.
    scale, offset, nodata
        Override the header, as in :func:`dcstsf.io.open_raster`.

    Raises
    ------
    DcstsfInputError
        Missing header or data file, a header lacking or garbling a required field, a data file shorter
        than the header says, or metadata that cannot be decoded (as :func:`dcstsf.io.open_raster`).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise input_error(p, "file not found", "check the path")
    hdr_path, data_path = _envi_pair(p)
    hdr = parse_envi_header(hdr_path)
    nb, nl, ns, dtype, interleave, header_offset = _layout(hdr, hdr_path)
    shapes = {"bsq": (nb, nl, ns), "bil": (nl, nb, ns), "bip": (nl, ns, nb)}
    need = header_offset + nb * nl * ns * dtype.itemsize
    size = data_path.stat().st_size
    if size == 0:
        raise input_error(data_path, "the data file is empty (0 bytes)", "re-download it")
    if size < need:
        raise input_error(
            data_path, f"the data file is truncated ({size} bytes, the header needs {need})", "re-download it"
        )
    mm = np.memmap(data_path, dtype=dtype, mode="r", offset=header_offset, shape=shapes[interleave])
    to_band_first = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (2, 0, 1)}[interleave]
    cube = mm.transpose(to_band_first)

    names = hdr.get("band names")
    descriptions: list[str | None] = [None] * nb
    if isinstance(names, list) and len(names) == nb:
        descriptions = [str(s) for s in names]
    stored = StoredBands(
        path=hdr_path,
        count=nb,
        dtype=dtype,
        descriptions=descriptions,
        band_tags=[{} for _ in range(nb)],
        set_tags=[{norm_key(k): v for k, v in hdr.items()}],
    )

    def sample(idx: list[int]) -> np.ndarray:
        parts = [np.asarray(cube[idx][:, ys, xs]) for ys, xs in sample_slices(nl, ns)]
        return np.concatenate([a.reshape(len(idx), -1) for a in parts], axis=1)

    dec = resolve_decoding(stored, scale=scale, offset=offset, nodata=nodata, sample=sample)
    raw = np.ascontiguousarray(cube)
    attrs = {key.replace(" ", "_"): str(hdr[key]) for key in _KEPT_FIELDS if key in hdr}
    return decode_raster(
        raw,
        dec,
        y=np.arange(nl) + 0.5,
        x=np.arange(ns) + 0.5,
        crs=None,
        transform=None,
        attrs=[attrs],
        name=None,
    )

"""ZY-1 02D (ZY1E) AHSI hyperspectral images: surface reflectance cubes, VNIR + SWIR merged; L1 refused.

What is known of the delivered product comes from public code that reads it, not from a CRESDA
specification (none could be found): an L1 delivery is a ``tar.gz`` named like
``ZY1E_AHSI_E108.96_N34.68_20200203_002068_L1A0000083728`` (GF5/GF5B AHSI deliveries use the same pattern
with ``_L1...``) holding ``<name>.xml`` metadata, the VNIR and SWIR images as separate GeoTIFFs
``<name>_VN.geotiff``/``<name>_SW.geotiff`` (also seen as ``.tiff``/``.tif``) georeferenced by RPCs,
``*_VNIR_RadCal.raw``/``*_SWIR_RadCal.raw`` (per band gain and offset turning stored digital numbers into
radiance) and ``*_Spectralresponse.raw`` (per band centre and width). That is L1: digital numbers of
at-sensor radiance, not reflectance. No public description of a delivered AHSI surface-reflectance
(L2) product was found, and the fields of ``<name>.xml`` could not be looked up, so neither is read.

Accepted, therefore, is surface reflectance the user has produced (e.g. by atmospheric correction of the
L1 images) in one of these forms:

* one reflectance cube (GeoTIFF/COG, or ENVI ``.hdr`` + data, or anything :func:`dcstsf.io.open_raster`
  reads) with 166 bands, or with band wavelengths in its metadata;
* a VNIR file and a SWIR file (``read_ahsi(vnir, swir=...)``) on the same grid, merged into one cube.

Band centres and widths come from the file's metadata; without them a cube of 76 (VNIR), 90 (SWIR) or 166
(both) bands gets the table of the registered sensor ``"zy1-02d-ahsi"`` (bands 1-76 VNIR, 77-166 SWIR).
Scale and nodata come from the file's metadata or from :class:`AhsiOptions`.

L1 is refused with a clear error when it can be recognised: an L1 product name (``..._L1A<digits>``,
``..._L1<digits>``), the ``_VN``/``_SW`` file names with ``RadCal.raw`` calibration files beside them,
metadata giving radiance units, or values that are not reflectance (typical values above 1.5, which
radiance in W m-2 sr-1 um-1 has). A radiance file that is already scaled into the 0-1.5 range and names
neither its level nor its units cannot be told apart from reflectance.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from dcstsf import sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from dcstsf.io.decoding import REFLECTANCE_SANITY_LIMIT
from dcstsf.io.errors import input_error

__all__ = ["AHSI_SENSOR", "AhsiOptions", "read_ahsi"]

# the acquisition day in a product name: ZY1E_AHSI_E108.96_N34.68_20200203_002068_L1A0000083728
_DATE_IN_NAME = re.compile(r"AHSI_[EW][\d.]+_[NS][\d.]+_(\d{8})_")

#: The registered sensor whose band table names and places AHSI bands.
AHSI_SENSOR = "zy1-02d-ahsi"
# An L1 delivery as named by the provider: "<name>_L1A0000083728" (ZY1E) or "<name>_L10000403537" (GF5B),
# the archive or one of its images. Files a user derived from it (other suffixes) are judged by content.
_L1_NAME = re.compile(r"_L1[AB]?\d{6,}(?:_(?:VN|SW))?(?:\.(?:geotiff|tiff?|tar\.gz|tgz))?$", re.IGNORECASE)
_L1_PART = re.compile(r"_(VN|SW)\.(geotiff|tiff?)$", re.IGNORECASE)
_RADIANCE_UNITS = re.compile(r"radiance|W\s*/|W\s*m|µW|uW", re.IGNORECASE)
_WAVELENGTH_MATCH_NM = 5.0
_SAMPLE = 64


@dataclass(frozen=True)
class AhsiOptions:
    """How :func:`read_ahsi` reads reflectance files.

    Attributes
    ----------
    order
        Band order of a merged VNIR + SWIR cube: ``"sensor"`` keeps VNIR then SWIR (the registered
        ``"zy1-02d-ahsi"`` order, which the shipped weights expect); ``"wavelength"`` sorts all bands by
        centre wavelength, interleaving the 1010-1030 nm overlap.
    scale, offset, nodata
        Reflectance = stored value x scale + offset, and the stored nodata value, for files that do not
        declare them (as in :func:`dcstsf.io.open_raster`).
    chunks
        Dask chunks (``"auto"``, an int, a dict); ``None`` reads into memory.
    """

    order: Literal["sensor", "wavelength"] = "sensor"
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None
    chunks: int | Mapping[str, int] | bool | str | None = "auto"


def _l1_error(path: Path, why: str) -> DcstsfInputError:
    return input_error(
        path,
        f"this is AHSI L1 data ({why}): digital numbers of at-sensor radiance, not surface reflectance, and "
        "fusing it would give wrong results",
        "convert it to surface reflectance first (radiometric calibration with the RadCal gains and offsets, "
        "then atmospheric correction) and give the reflectance file(s)",
    )


def _refuse_l1_names(path: Path) -> None:
    folder = path if path.is_dir() else path.parent
    if _L1_NAME.search(path.name):
        raise _l1_error(path, "the name is an L1 delivery name, e.g. ZY1E_AHSI_..._L1A0000083728")
    radcal = sorted(folder.glob("*RadCal*.raw")) if folder.is_dir() else []
    if radcal and (path.is_dir() or _L1_PART.search(path.name)):
        raise _l1_error(path, f"the L1 calibration file {radcal[0].name} lies beside it")
    if path.is_dir():
        raise input_error(
            path,
            "a folder is not an AHSI reflectance file",
            "give the reflectance cube, or the VNIR file and swir= the SWIR file: read_ahsi(vnir, swir=swir)",
        )


def _refuse_radiance(da: xr.DataArray, path: Path) -> None:
    """Metadata naming radiance units, or typical values far above reflectance, mean L1."""
    for key, value in da.attrs.items():
        k = str(key).lower()
        if "unit" in k and "wavelength" not in k and _RADIANCE_UNITS.search(str(value)):
            raise _l1_error(path, f"its metadata gives {key} = {value!r}")
    ys, xs = slice(0, min(_SAMPLE, da.sizes["y"])), slice(0, min(_SAMPLE, da.sizes["x"]))
    idx = sorted({0, da.sizes["band"] // 2, da.sizes["band"] - 1})
    sample = np.asarray(da.isel(band=idx, y=ys, x=xs).values, dtype=np.float64)
    finite = sample[np.isfinite(sample)]
    if finite.size and float(np.median(np.abs(finite))) > REFLECTANCE_SANITY_LIMIT:
        raise input_error(
            path,
            f"typical values are about {float(np.median(finite)):.4g}, while reflectance lies in [0, 1]: this looks "
            "like AHSI L1 data (radiance or unscaled digital numbers), which cannot be fused, or like reflectance "
            "in another unit",
            "convert L1 data to surface reflectance first (radiometric calibration, then atmospheric correction); "
            "for percent reflectance pass AhsiOptions(scale=0.01), for reflectance x 10000 AhsiOptions(scale=1e-4)",
        )


def _open_part(path: Path, opts: AhsiOptions) -> xr.DataArray:
    _refuse_l1_names(path)
    try:
        da = open_raster(path, chunks=opts.chunks, scale=opts.scale, offset=opts.offset, nodata=opts.nodata)
    except DcstsfInputError as exc:
        raise DcstsfInputError(
            f"{exc} (AHSI: dcstsf reads surface reflectance only; L1 digital numbers must be calibrated and "
            "atmospherically corrected first)"
        ) from exc
    _refuse_radiance(da, path)
    return da


def _table() -> tuple[sensors.Sensor, int]:
    """The registered AHSI sensor and its number of VNIR bands (where the centres restart)."""
    ahsi = sensors.get(AHSI_SENSOR)
    restart = np.flatnonzero(np.diff(ahsi.centers_nm) < 0)
    return ahsi, int(restart[0]) + 1 if restart.size else ahsi.n_bands


def _band_table(da: xr.DataArray, path: Path, part: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Band names, centres and widths (nm) of one file: its own metadata, else the registered table."""
    ahsi, n_vnir = _table()
    ranges = {"vnir": slice(0, n_vnir), "swir": slice(n_vnir, ahsi.n_bands), "all": slice(0, ahsi.n_bands)}
    n = da.sizes["band"]
    parts = [part] if part != "any" else [k for k in ("all", "vnir", "swir") if len(range(ahsi.n_bands)[ranges[k]]) == n]
    if "wavelength" in da.coords:
        wl = np.asarray(da["wavelength"].values, dtype=np.float64)
        fwhm = np.asarray(da["fwhm"].values, dtype=np.float64) if "fwhm" in da.coords else None
        for k in parts:
            sel = ranges[k]
            centres = ahsi.centers_nm[sel]
            if centres.size == n and np.max(np.abs(centres - wl)) <= _WAVELENGTH_MATCH_NM:
                return list(ahsi.band_names[sel]), wl, fwhm
        prefix = "" if part in ("any", "all") else f"{part.upper()}_"
        return [f"{prefix}{b}" for b in np.asarray(da["band"].values).astype(str)], wl, fwhm
    for k in parts:
        sel = ranges[k]
        if len(range(ahsi.n_bands)[sel]) == n:
            return list(ahsi.band_names[sel]), ahsi.centers_nm[sel], ahsi.fwhm_nm[sel]
    expected = {"vnir": n_vnir, "swir": ahsi.n_bands - n_vnir, "all": ahsi.n_bands}
    want = expected[part] if part in expected else f"{ahsi.n_bands}, {n_vnir} or {ahsi.n_bands - n_vnir}"
    raise input_error(
        path,
        f"the file has {n} bands and no band wavelengths, and AHSI {part if part != 'any' else 'files'} have {want}",
        "add the band centre wavelengths (nm) to the file's metadata (ENVI 'wavelength' or GDAL band 'wavelength' "
        "tags), or give the complete VNIR/SWIR cube",
    )


def _with_bands(da: xr.DataArray, names: list[str], wl: np.ndarray, fwhm: np.ndarray | None) -> xr.DataArray:
    coords: dict[str, Any] = {"band": np.array(names, dtype=object), "wavelength": ("band", wl, {"units": "nm"})}
    if fwhm is not None:
        coords["fwhm"] = ("band", fwhm, {"units": "nm"})
    return da.drop_vars([c for c in ("fwhm",) if c in da.coords and fwhm is None]).assign_coords(coords)


def _check_same_grid(vnir: xr.DataArray, swir: xr.DataArray, vpath: Path, spath: Path) -> None:
    vshape, sshape = (vnir.sizes["y"], vnir.sizes["x"]), (swir.sizes["y"], swir.sizes["x"])
    problem = None
    if vshape != sshape:
        problem = f"the VNIR file is {vshape[0]} x {vshape[1]} pixels but the SWIR file {sshape[0]} x {sshape[1]}"
    elif vnir.rio.crs != swir.rio.crs:
        problem = f"the VNIR file's CRS ({vnir.rio.crs}) differs from the SWIR file's ({swir.rio.crs})"
    elif not vnir.rio.transform().almost_equals(swir.rio.transform()):
        problem = "the VNIR and SWIR files are not on the same grid (their transforms differ)"
    if problem:
        raise input_error(
            spath,
            f"{problem}; VNIR ({vpath.name}) and SWIR must share one grid to be merged",
            "resample one onto the other's grid (same CRS, transform and size) before reading them together",
        )


def _level(path: Path) -> str:
    m = re.search(r"_(L2[A-Z]?)(?:\d|_|\b)", path.name, re.IGNORECASE)
    return m.group(1).upper() if m else "reflectance (level not stated in the file)"


def read_ahsi(
    path: str | os.PathLike[str],
    *,
    swir: str | os.PathLike[str] | None = None,
    options: AhsiOptions | None = None,
) -> xr.DataArray:
    """Read ZY-1 02D AHSI surface reflectance as float32 ``(band, y, x)``; refuse L1 data.

    Parameters
    ----------
    path
        The reflectance cube, or the VNIR reflectance file when ``swir`` is given.
    swir
        The SWIR reflectance file on the same grid as ``path``; the two are merged.
    options
        Band order, scale/offset/nodata of files that lack them, chunks (:class:`AhsiOptions`).

    Returns
    -------
    xarray.DataArray
        Reflectance with NaN for nodata; CRS and transform on ``.rio`` when the files have them; band names
        ``B001``... of the registered ``"zy1-02d-ahsi"`` sensor when the centres match its table within 5 nm
        (else the file's names, prefixed ``VNIR_``/``SWIR_`` when merged); ``wavelength``/``fwhm`` (nm);
        attributes ``sensor="zy1-02d-ahsi"``, ``product_path``, ``processing_level`` (the file name's L2 level,
        else ``"reflectance (level not stated in the file)"``), ``masked_fraction`` 0.0 (no quality masks are
        read) and ``quality_masks="none"``. Lazy (Dask) unless ``options.chunks`` is None.

    Raises
    ------
    DcstsfInputError
        L1 data (see the module docstring), a file without wavelengths whose band count is not AHSI's, VNIR
        and SWIR files on different grids or swapped, or anything :func:`dcstsf.io.open_raster` refuses.
    """
    opts = options or AhsiOptions()
    if opts.order not in ("sensor", "wavelength"):
        raise DcstsfInputError(f"AhsiOptions(order={opts.order!r}): choose 'sensor' or 'wavelength'")
    p = Path(path).expanduser()
    if not p.exists():
        raise input_error(p, "file not found", "check the path")
    if swir is None:
        da = _open_part(p, opts)
        da = _with_bands(da, *_band_table(da, p, "any"))
        product = str(p)
    else:
        sp = Path(swir).expanduser()
        if not sp.exists():
            raise input_error(sp, "SWIR file not found", "check the path given as swir=")
        vnir_da, swir_da = _open_part(p, opts), _open_part(sp, opts)
        _check_same_grid(vnir_da, swir_da, p, sp)
        vnir_da = _with_bands(vnir_da, *_band_table(vnir_da, p, "vnir"))
        swir_da = _with_bands(swir_da, *_band_table(swir_da, sp, "swir"))
        if float(np.median(vnir_da["wavelength"].values)) > float(np.median(swir_da["wavelength"].values)):
            raise input_error(
                p,
                f"the file given as VNIR ({p.name}) lies at longer wavelengths than the one given as SWIR ({sp.name})",
                "swap them: read_ahsi(vnir_file, swir=swir_file)",
            )
        swir_da = swir_da.assign_coords(y=vnir_da["y"], x=vnir_da["x"])
        da = xr.concat([vnir_da, swir_da], dim="band", join="override", combine_attrs="drop_conflicts")
        if opts.chunks is not None:
            da = da.chunk({"band": -1})
        product = f"{p}, {sp}"
    if len(set(str(b) for b in da["band"].values)) != da.sizes["band"]:
        raise input_error(p, "band names repeat after merging VNIR and SWIR", "give files with distinct band names")
    if opts.order == "wavelength":
        da = da.isel(band=np.argsort(np.asarray(da["wavelength"].values), kind="stable"))
    da.attrs.update(
        sensor=AHSI_SENSOR,
        product_path=product,
        processing_level=_level(p),
        masked_fraction=0.0,
        quality_masks="none",
    )
    m = _DATE_IN_NAME.search(p.name)
    if m is not None:  # the day only: the names carry no time of day
        d = m.group(1)
        da.attrs["acquisition_time"] = f"{d[:4]}-{d[4:6]}-{d[6:8]}"
    return da

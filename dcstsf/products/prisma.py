"""PRISMA Level-2D products (``PRS_L2D_*.he5``): geocoded surface reflectance from the VNIR and SWIR cubes.

A PRISMA product is one HDF-EOS5 file. In an L2D file:

* ``HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/VNIR_Cube`` and ``.../SWIR_Cube`` -- uint16 cubes stored
  ``(rows, bands, columns)``; ``VNIR_PIXEL_L2_ERR_MATRIX`` and ``SWIR_PIXEL_L2_ERR_MATRIX`` -- per-voxel
  error codes on the same layout (0 valid, 1 invalid pixel from L1, 2 negative value after atmospheric
  correction, 4 saturated value after atmospheric correction);
* file attributes ``List_Cw_Vnir``/``List_Fwhm_Vnir``/``List_Cw_Vnir_Flags`` (and ``..._Swir``): band centre,
  FWHM (nm) and a present flag per stored band, in stored order; a centre of 0 (or flag 0) marks a band
  that holds no data;
* ``L2ScaleVnirMin``/``L2ScaleVnirMax`` (and ``Swir``): reflectance = Min + DN x (Max - Min) / 65535;
* ``Epsg_Code`` and ``Product_ULcorner_easting``/``_northing``, ``Product_LRcorner_easting``/``_northing``:
  the UTM grid, corner coordinates at pixel centres, 30 m pixels;
* pixels whose stored values are 0 in every band lie outside the image footprint (nodata).

Sources: the EnMAP-Box importer ``importprismal2dalgorithm.py`` (dataset paths, the ``(rows, bands,
columns)`` read with ``transpose(1, 0, 2)``, zero-wavelength bands, footprint rule, error codes, EPSG and
corners at pixel centres with 30 m pixels) and ``importprismal1algorithm.py`` (h5py read); PRISMA readers
on GitHub for the L2 scale formula and the ``*_Flags`` attributes; prismaread (R) for the level meanings:
L1 is top-of-atmosphere radiance, L2B surface radiance, L2C surface reflectance in instrument geometry
(not map-projected), L2D map-projected surface reflectance. One third-party reader takes the first cube
axis as easting; this module follows the EnMAP-Box layout (first axis = rows).

VNIR (about 400-1010 nm) and SWIR (about 920-2500 nm) overlap; :attr:`PrismaOptions.overlap` chooses which
detector's bands to keep there. The merged bands are in wavelength order. PRISMA is not a registered
sensor: build one for the engine with ``dcstsf.sensors.from_wavelengths(da.wavelength, da.fwhm,
name="prisma")``. The PAN cube and the geolocation/angle fields are not read.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.io.chunks import normalise_chunks
from dcstsf.io.decoding import StoredBands, decode_raster, resolve_decoding
from dcstsf.io.errors import input_error

__all__ = ["PRISMA_DN_MAX", "PRISMA_GSD_M", "PrismaOptions", "prisma_processing_level", "read_prisma_l2d"]

# the acquisition's start in a product name: PRS_L2D_STD_20200523102029_20200523102033_0001.he5
_TIME_IN_NAME = re.compile(r"PRS_L\w+?_\w+?_(\d{14})_\d{14}")

#: Stored values run 0..65535 over the L2 scale range [Min, Max].
PRISMA_DN_MAX = 65535.0
#: Pixel size of the VNIR/SWIR cubes of L2D products (m).
PRISMA_GSD_M = 30.0
_SWATHS = "HDFEOS/SWATHS"
_DETECTORS = ("Vnir", "Swir")
_LEVEL_REASONS = {
    "L1": "top-of-atmosphere radiance, not surface reflectance",
    "L2B": "surface radiance, not reflectance",
    "L2C": "surface reflectance in instrument geometry, not map-projected (no CRS or grid)",
}
_LEVEL_IN_NAME = re.compile(r"PRS_(L1|L2[BCD])_", re.IGNORECASE)
_ROW_BLOCK = 256


@dataclass(frozen=True)
class PrismaOptions:
    """How :func:`read_prisma_l2d` reads a product.

    Attributes
    ----------
    overlap
        Bands kept where VNIR and SWIR overlap: ``"swir"`` drops VNIR bands centred at or beyond the first
        SWIR band (the VNIR detector's response falls off there), ``"vnir"`` drops SWIR bands centred at or
        below the last VNIR band, ``"both"`` keeps all.
    error_codes
        Error-matrix codes whose voxels become NaN (1 invalid L1 pixel, 2 negative after atmospheric
        correction, 4 saturated after atmospheric correction); ``()`` ignores the error matrices.
    chunks
        Dask chunks (``"auto"``, an int, a dict); ``None`` reads into memory.
    """

    overlap: Literal["swir", "vnir", "both"] = "swir"
    error_codes: tuple[int, ...] = (1, 2, 4)
    chunks: int | Mapping[str, int] | bool | str | None = "auto"


class _H5Cube:
    """Window reads of a ``(rows, bands, columns)`` HDF5 dataset as ``(bands, rows, columns)`` arrays.

    Each read opens the file (HDF5 handles cannot be shared across threads or pickled to workers) and
    raises :class:`DcstsfInputError` naming the file when the data cannot be read.
    """

    def __init__(self, path: Path, dataset: str, shape: tuple[int, int, int], dtype: np.dtype) -> None:
        rows, bands, cols = shape
        self.path, self.dataset, self.dtype, self.ndim = path, dataset, np.dtype(dtype), 3
        self.shape = (bands, rows, cols)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        import h5py

        b, y, x = (k if isinstance(k, slice) else slice(k, k + 1) for k in key)
        try:
            with h5py.File(self.path, "r") as f:
                out = f[self.dataset][y, b, x]
        except (OSError, KeyError, ValueError) as exc:
            raise input_error(
                self.path,
                f"reading {self.dataset} failed ({type(exc).__name__}: {exc}); the file is damaged or truncated",
                "re-download the product",
            ) from exc
        return np.ascontiguousarray(np.transpose(out, (1, 0, 2)))


@dataclass(frozen=True)
class _Detector:
    """One detector's stored cube and the bands kept from it."""

    name: str
    cube: str
    errors: str
    kept: np.ndarray
    wavelength: np.ndarray
    fwhm: np.ndarray
    scale_min: float
    scale_max: float


def _attr(f: Any, key: str, path: Path) -> Any:
    if key not in f.attrs:
        raise input_error(
            path,
            f"the file attribute {key!r} is missing",
            "use the .he5 file as delivered by ASI (re-download it); the L2D product carries this attribute",
        )
    value = f.attrs[key]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value


def _number_list(f: Any, key: str, path: Path) -> np.ndarray:
    value = _attr(f, key, path)
    if isinstance(value, str):
        parts = [p for p in re.split(r"[\s,]+", value.strip()) if p]
        try:
            return np.asarray([float(p) for p in parts], dtype=np.float64)
        except ValueError as exc:
            raise input_error(path, f"attribute {key!r} is not a list of numbers", "re-download the product") from exc
    return np.asarray(value, dtype=np.float64).ravel()


def _scalar(f: Any, key: str, path: Path) -> float:
    values = _number_list(f, key, path)
    if values.size != 1 or not np.isfinite(values[0]):
        raise input_error(path, f"attribute {key!r} is not one finite number", "re-download the product")
    return float(values[0])


def _level(f: Any, path: Path) -> str | None:
    swaths = list(f[_SWATHS].keys()) if _SWATHS in f else []
    for name in swaths:
        m = re.fullmatch(r"PRS_(L1|L2[BCD])_HCO", name)
        if m:
            return m.group(1).upper()
    m = _LEVEL_IN_NAME.search(path.name)
    return m.group(1).upper() if m else None


def _check_level(level: str | None, path: Path) -> None:
    if level is None:
        raise input_error(
            path,
            f"not a PRISMA product: no {_SWATHS}/PRS_<level>_HCO group and no PRS_<level>_ file name",
            "give a PRISMA L2D .he5 file as delivered by ASI",
        )
    if level != "L2D":
        raise input_error(
            path,
            f"this is a PRISMA {level} product ({_LEVEL_REASONS.get(level, 'not L2D')}); dcstsf fuses "
            "map-projected surface reflectance only",
            "order the L2D product (geocoded surface reflectance) of the same acquisition from the ASI PRISMA portal",
        )


def prisma_processing_level(path: str | os.PathLike[str]) -> str:
    """The processing level (``"L1"``, ``"L2B"``, ``"L2C"``, ``"L2D"``) of a PRISMA ``.he5`` file.

    Read from the file's ``HDFEOS/SWATHS/PRS_<level>_HCO`` group, else from its name.
    """
    p = Path(path).expanduser()
    with _open(p) as f:
        level = _level(f, p)
    if level is None:
        raise input_error(p, "no PRISMA processing level in the file or its name", "give a PRISMA .he5 file")
    return level


def _open(path: Path) -> Any:
    import h5py

    if not path.is_file():
        raise input_error(path, "file not found", "check the path (and unzip the download first)")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise input_error(path, f"not a readable HDF5 file ({exc})", "re-download the .he5 product") from exc


def _detector(f: Any, path: Path, name: str) -> tuple[_Detector, tuple[int, int, int], np.dtype]:
    upper = name.upper()
    data = f"{_SWATHS}/PRS_L2D_HCO/Data Fields/{upper}_Cube"
    errors = f"{_SWATHS}/PRS_L2D_HCO/Data Fields/{upper}_PIXEL_L2_ERR_MATRIX"
    if data not in f:
        raise input_error(path, f"the dataset {data} is missing", "re-download the product (the file is incomplete)")
    ds = f[data]
    if ds.ndim != 3:
        raise input_error(path, f"{data} has {ds.ndim} dimensions, not 3 (rows, bands, columns)", "re-download it")
    cw = _number_list(f, f"List_Cw_{name}", path)
    fwhm = _number_list(f, f"List_Fwhm_{name}", path)
    if cw.size != ds.shape[1] or fwhm.size != ds.shape[1]:
        raise input_error(
            path,
            f"{data} holds {ds.shape[1]} bands but List_Cw_{name} lists {cw.size} centres and List_Fwhm_{name} "
            f"{fwhm.size} widths",
            "re-download the product (cube and band lists must match)",
        )
    present = cw > 0
    flag_key = f"List_Cw_{name}_Flags"
    if flag_key in f.attrs:
        flags = _number_list(f, flag_key, path)
        if flags.size == cw.size:
            present &= flags == 1
    lo, hi = _scalar(f, f"L2Scale{name}Min", path), _scalar(f, f"L2Scale{name}Max", path)
    if not hi > lo:
        raise input_error(
            path,
            f"L2Scale{name}Max ({hi:g}) is not above L2Scale{name}Min ({lo:g}), so stored values cannot be "
            "turned into reflectance",
            "re-download the product",
        )
    kept = np.flatnonzero(present)
    det = _Detector(
        name=upper,
        cube=data,
        errors=errors if errors in f else "",
        kept=kept,
        wavelength=cw[kept],
        fwhm=fwhm[kept],
        scale_min=lo,
        scale_max=hi,
    )
    return det, tuple(int(s) for s in ds.shape), ds.dtype


def _select_overlap(vnir: _Detector, swir: _Detector, overlap: str) -> tuple[_Detector, _Detector]:
    if overlap == "both":
        return vnir, swir
    if overlap not in ("swir", "vnir"):
        raise DcstsfInputError(f"PrismaOptions(overlap={overlap!r}): choose 'swir', 'vnir' or 'both'")
    if overlap == "swir":
        keep = vnir.wavelength < swir.wavelength.min()
        return _subset(vnir, keep), swir
    keep = swir.wavelength > vnir.wavelength.max()
    return vnir, _subset(swir, keep)


def _subset(det: _Detector, keep: np.ndarray) -> _Detector:
    return _Detector(
        name=det.name, cube=det.cube, errors=det.errors, kept=det.kept[keep], wavelength=det.wavelength[keep],
        fwhm=det.fwhm[keep], scale_min=det.scale_min, scale_max=det.scale_max,
    )


def _grid(f: Any, path: Path, rows: int, cols: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """CRS, affine transform and pixel-centre coordinates from ``Epsg_Code`` and the corner attributes."""
    from affine import Affine
    from rasterio.crs import CRS

    epsg = int(_scalar(f, "Epsg_Code", path))
    try:
        crs = CRS.from_epsg(epsg)
    except Exception as exc:  # rasterio raises CRSError
        raise input_error(path, f"Epsg_Code {epsg} is not a known EPSG code", "re-download the product") from exc
    ul_e, ul_n = _scalar(f, "Product_ULcorner_easting", path), _scalar(f, "Product_ULcorner_northing", path)
    lr_e, lr_n = _scalar(f, "Product_LRcorner_easting", path), _scalar(f, "Product_LRcorner_northing", path)
    res = PRISMA_GSD_M
    # Corners are pixel centres: the upper-left pixel's outer corner lies half a pixel further out.
    transform = Affine(res, 0.0, ul_e - res / 2, 0.0, -res, ul_n + res / 2)
    off_e, off_n = lr_e - (ul_e + (cols - 1) * res), lr_n - (ul_n - (rows - 1) * res)
    if max(abs(off_e), abs(off_n)) > res / 2:
        warnings.warn(
            f"{path}: the lower-right corner ({lr_e:.1f}, {lr_n:.1f}) is {off_e:+.1f} m / {off_n:+.1f} m away from "
            f"where a {res:g} m grid of {rows} x {cols} pixels starting at the upper-left corner puts it; the grid "
            "follows the upper-left corner. Check the geolocation before fusing.",
            stacklevel=3,
        )
    x = ul_e + np.arange(cols) * res
    y = ul_n - np.arange(rows) * res
    return crs, transform, y, x


def _lazy(path: Path, dataset: str, shape: tuple[int, int, int], dtype: np.dtype, chunks: Any) -> Any:
    import dask.array as dsa
    from dask.base import tokenize

    pixels = _H5Cube(path, dataset, shape, dtype)
    if chunks is None:
        return pixels[:, :, :]
    norm = normalise_chunks(chunks, pixels.shape, (min(shape[0], _ROW_BLOCK), shape[2]))
    if isinstance(norm, Mapping):
        norm = tuple(norm.get(k, -1) for k in ("band", "y", "x"))
    st = path.stat()
    name = f"dcstsf-prisma-{tokenize(str(path.resolve()), dataset, st.st_size, st.st_mtime_ns, norm)}"
    return dsa.from_array(pixels, chunks=norm, name=name, meta=np.empty((0, 0, 0), dtype=dtype))


def _take_bands(arr: Any, index: np.ndarray) -> Any:
    return arr[index] if isinstance(arr, np.ndarray) else arr[index.tolist()]


def _flagged_pixels(path: Path, dets: Sequence[_Detector], codes: Sequence[int], rows: int) -> np.ndarray | None:
    """Pixels where any kept band's error code is one of ``codes`` (read in row blocks)."""
    import h5py

    if not codes:
        return None
    out: np.ndarray | None = None
    with h5py.File(path, "r") as f:
        for det in dets:
            if not det.errors or det.kept.size == 0:
                continue
            ds = f[det.errors]
            part = np.zeros((rows, ds.shape[2]), dtype=bool)
            for r0 in range(0, rows, _ROW_BLOCK):
                block = ds[r0 : r0 + _ROW_BLOCK][:, det.kept, :]
                part[r0 : r0 + _ROW_BLOCK] = np.isin(block, codes).any(axis=1)
            out = part if out is None else out | part
    return out


def read_prisma_l2d(path: str | os.PathLike[str], *, options: PrismaOptions | None = None) -> xr.DataArray:
    """Read a PRISMA L2D ``.he5`` product as float32 surface reflectance ``(band, y, x)``.

    Parameters
    ----------
    path
        The ``PRS_L2D_*.he5`` file (unzipped).
    options
        Overlap handling, error-matrix codes and chunks (:class:`PrismaOptions`).

    Returns
    -------
    xarray.DataArray
        Reflectance = ``L2Scale<det>Min`` + DN x (Max - Min) / 65535 per detector; bands without a centre
        wavelength dropped, VNIR and SWIR merged in wavelength order (band names ``VNIR_<i>``/``SWIR_<i>``,
        the 1-based stored band number); NaN outside the footprint (all stored values 0) and where the error
        matrix holds one of ``options.error_codes``; CRS (``Epsg_Code``) and transform on ``.rio``;
        ``wavelength``/``fwhm`` (nm); attributes ``sensor="prisma"``, ``product_path``,
        ``processing_level="L2D"``, ``masked_fraction`` (the fraction of pixels with at least one voxel
        flagged by the chosen error codes) and ``error_codes``. Lazy (Dask) unless ``options.chunks`` is
        None; the error matrices are read once to compute ``masked_fraction``.

    Raises
    ------
    DcstsfInputError
        Not a PRISMA file, a level other than L2D (the message names it and why it cannot be fused), missing
        datasets or attributes, VNIR and SWIR cubes of different size, band lists that do not match the cubes.
    """
    opts = options or PrismaOptions()
    p = Path(path).expanduser()
    with _open(p) as f:
        _check_level(_level(f, p), p)
        vnir, vshape, vdtype = _detector(f, p, "Vnir")
        swir, sshape, sdtype = _detector(f, p, "Swir")
        if (vshape[0], vshape[2]) != (sshape[0], sshape[2]):
            raise input_error(
                p,
                f"the VNIR cube is {vshape[0]} x {vshape[2]} pixels but the SWIR cube {sshape[0]} x {sshape[2]}; "
                "the L2D cubes share one grid",
                "re-download the product (the file is inconsistent)",
            )
        if vnir.kept.size == 0 or swir.kept.size == 0:
            raise input_error(p, "VNIR or SWIR has no band with a centre wavelength", "re-download the product")
        vnir, swir = _select_overlap(vnir, swir, opts.overlap)
        rows, cols = vshape[0], vshape[2]
        crs, transform, y, x = _grid(f, p, rows, cols)

    parts, err_parts = [], []
    for det, shape, dtype in ((vnir, vshape, vdtype), (swir, sshape, sdtype)):
        cube = _lazy(p, det.cube, shape, dtype, opts.chunks)
        parts.append(_take_bands(cube, det.kept))
        if opts.error_codes and det.errors:
            err = _lazy(p, det.errors, shape, np.dtype(np.uint8), opts.chunks)
            err_parts.append(_take_bands(err, det.kept))
    dets = (vnir, swir)
    wavelength = np.concatenate([d.wavelength for d in dets])
    fwhm = np.concatenate([d.fwhm for d in dets])
    names = [f"{d.name}_{int(k) + 1}" for d in dets for k in d.kept]
    sc = np.concatenate([np.full(d.kept.size, (d.scale_max - d.scale_min) / PRISMA_DN_MAX) for d in dets])
    of = np.concatenate([np.full(d.kept.size, d.scale_min) for d in dets])
    order = np.argsort(wavelength, kind="stable")

    lazy = opts.chunks is not None
    if lazy:
        import dask.array as dsa

        raw = dsa.concatenate(parts, axis=0)[order.tolist()].rechunk({0: -1})
    else:
        raw = np.concatenate(parts, axis=0)[order]
    stored = StoredBands(
        path=p,
        count=int(order.size),
        dtype=np.dtype(vdtype),
        descriptions=[names[i] for i in order],
        band_tags=[
            {"wavelength": wavelength[i], "wavelength_units": "Nanometers", "fwhm": fwhm[i]} for i in order
        ],
        set_tags=[{}],
    )

    def sample(idx: list[int]) -> np.ndarray:
        return np.asarray(raw[idx, : min(rows, 64), : min(cols, 64)]).reshape(len(idx), -1)

    dec = resolve_decoding(stored, scale=sc[order], offset=of[order], nodata=None, sample=sample)
    da = decode_raster(raw, dec, y=y, x=x, crs=crs, transform=transform, attrs=[{}], name=None)
    # Outside the footprint every band stores 0 (EnMAP-Box importer): nodata, not reflectance Min.
    outside = xr.DataArray(raw, dims=("band", "y", "x")) == 0
    keep = ~outside.all("band")
    if err_parts:
        err = dsa.concatenate(err_parts, axis=0)[order.tolist()] if lazy else np.concatenate(err_parts, 0)[order]
        keep = keep & ~xr.DataArray(err, dims=("band", "y", "x")).isin(list(opts.error_codes))
    da = da.where(keep)
    flagged = _flagged_pixels(p, dets, opts.error_codes, rows)
    da.attrs.update(
        sensor="prisma",
        product_path=str(p),
        processing_level="L2D",
        masked_fraction=float(np.mean(flagged)) if flagged is not None else 0.0,
        error_codes=", ".join(str(c) for c in opts.error_codes) if opts.error_codes else "none",
    )
    m = _TIME_IN_NAME.search(p.name)
    if m is not None:
        t = m.group(1)
        da.attrs["acquisition_time"] = f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}Z"
    return da

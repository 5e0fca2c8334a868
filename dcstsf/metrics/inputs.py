"""Metric inputs: unwrapping cubes and masks, argument checks, the border crop and the validity map."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dcstsf._arrays import is_dask, is_xarray
from dcstsf.errors import DcstsfInputError

__all__ = [
    "CubeLike",
    "Cubes",
    "MaskLike",
    "check_block",
    "check_border",
    "check_data_range",
    "check_exponent",
    "check_h_over_l",
    "materialize",
    "numpy_cube",
    "prepare",
    "unwrap",
    "unwrap_mask",
]

#: Anything accepted as a cube: numpy.ndarray, dask.array.Array or xarray.DataArray (band, y, x).
CubeLike = Any
#: Anything accepted as a mask: boolean (y, x) numpy/dask array or DataArray, True = valid.
MaskLike = Any


def unwrap(x: CubeLike, name: str) -> Any:
    """Return a 3-D numpy or dask array (band, y, x) from any accepted input."""
    if is_xarray(x):
        dims = tuple(str(d) for d in x.dims)
        wanted = ("band", "y", "x") if x.ndim == 3 else ("y", "x")
        if set(dims) != set(wanted):
            raise DcstsfInputError(
                f"{name}: DataArray has dims {dims}, expected {wanted}. Fix: rename the dims "
                f"(e.g. da.rename({{'wavelength': 'band'}})) so that they are {wanted}."
            )
        x = x.transpose(*wanted).data
    if not is_dask(x):
        x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise DcstsfInputError(
            f"{name}: expected a (band, y, x) cube or a (y, x) image, got shape {tuple(x.shape)}."
        )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DcstsfInputError(f"{name}: expected real numbers, got dtype {x.dtype}.")
    return x


def unwrap_mask(mask: MaskLike, shape_yx: tuple[int, int]) -> NDArray[np.bool_]:
    """A boolean NumPy ``(y, x)`` mask of the images' uncropped shape, from any accepted mask."""
    if is_xarray(mask):
        mask = mask.data
    if is_dask(mask):
        # A (y, x) mask is small next to the cube; computing it keeps the code paths simple.
        mask = mask.compute()
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise DcstsfInputError(
            f"mask: expected a boolean (y, x) array (True = valid pixel), got dtype {m.dtype}. "
            "Fix: pass mask.astype(bool) after making sure True marks the pixels to keep."
        )
    if m.shape != tuple(shape_yx):
        raise DcstsfInputError(
            f"mask: shape {m.shape} does not match the images' (y, x) shape {tuple(shape_yx)}; the mask is "
            "given before the border crop."
        )
    return m


def check_border(border: int, ny: int, nx: int) -> int:
    """``border`` as an int, or an error when it is not a count of pixels or crops the whole image."""
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
        raise DcstsfInputError(f"border must be a non-negative integer number of pixels, got {border!r}.")
    if ny - 2 * border < 1 or nx - 2 * border < 1:
        raise DcstsfInputError(
            f"border={border} crops away the whole {ny}x{nx} image; use a border smaller than "
            f"{(min(ny, nx) + 1) // 2}."
        )
    return int(border)


def check_data_range(data_range: float) -> float:
    """``data_range`` as a positive finite float."""
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.integer, np.floating)):
        raise DcstsfInputError(f"data_range must be a positive number, got {data_range!r}.")
    dr = float(data_range)
    if not (math.isfinite(dr) and dr > 0):
        raise DcstsfInputError(
            f"data_range must be a positive finite number (1.0 for reflectance in [0, 1]), got {data_range!r}."
        )
    return dr


def check_h_over_l(h_over_l: float) -> float:
    """ERGAS's ``h/l`` (fine pixel size / coarse pixel size) as a float in (0, 1].

    A value above 1 is almost certainly the resolution ratio r = l/h; it is refused with the inverse to
    pass, because using it as is would inflate ERGAS by r squared.
    """
    if isinstance(h_over_l, bool) or not isinstance(h_over_l, (int, float, np.integer, np.floating)):
        raise DcstsfInputError(f"h_over_l must be a number h/l in (0, 1], got {h_over_l!r}.")
    hl = float(h_over_l)
    if not math.isfinite(hl) or hl <= 0:
        raise DcstsfInputError(
            f"h_over_l must be h/l = fine pixel size / coarse pixel size, a number in (0, 1], got {h_over_l!r}."
        )
    if hl > 1:
        raise DcstsfInputError(
            f"h_over_l={h_over_l!r} is > 1. ERGAS uses h/l = fine pixel size / coarse pixel size (Wald 2002), "
            f"e.g. 1/3 for 10 m fused vs 30 m hyperspectral input. If {h_over_l!r} is the coarse/fine resolution "
            f"ratio, pass h_over_l=1/{h_over_l!r} (= {1.0 / hl:.6g}) instead; passing it as is would inflate "
            f"ERGAS by {hl * hl:.6g}x."
        )
    return hl


def check_block(block: int, name: str = "block") -> int:
    """A block side (pixels) as an int >= 2."""
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 2:
        raise DcstsfInputError(f"{name} must be an integer >= 2 (pixels per block side), got {block!r}.")
    return int(block)


def check_exponent(value: float, name: str) -> float:
    """A positive exponent as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise DcstsfInputError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class Cubes:
    """Cropped inputs, still in their own dtype (float64 conversion happens chunk/band-wise)."""

    pred: Any  # (band, y, x) numpy or dask
    ref: Any
    valid: Any  # (y, x) bool, numpy or dask
    lazy: bool


def prepare(pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None, border: int) -> Cubes:
    """Unwrap, check and crop ``pred`` and ``ref``, and build their validity map.

    A pixel is valid when the mask allows it and every band of both cubes is finite there. When either
    cube is a Dask array both become Dask arrays with the same chunks.
    """
    p = unwrap(pred, "pred")
    r = unwrap(ref, "ref")
    if tuple(p.shape) != tuple(r.shape):
        raise DcstsfInputError(
            f"pred and ref must have the same (band, y, x) shape, got {tuple(p.shape)} and {tuple(r.shape)}."
        )
    _, ny, nx = p.shape
    b = check_border(border, ny, nx)
    m = None if mask is None else unwrap_mask(mask, (ny, nx))
    lazy = is_dask(p) or is_dask(r)
    if lazy:
        import dask.array as da

        # Give both cubes (and the mask) the same chunks so that the reductions stay chunk-aligned.
        if is_dask(p) and is_dask(r):
            r = r.rechunk(p.chunks)
        elif is_dask(p):
            r = da.from_array(r, chunks=p.chunks)
        else:
            p = da.from_array(p, chunks=r.chunks)
    if b:
        p = p[:, b:-b, b:-b]
        r = r[:, b:-b, b:-b]
        if m is not None:
            m = m[b:-b, b:-b]
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    if not np.issubdtype(r.dtype, np.floating):
        r = r.astype(np.float64)
    if lazy:
        import dask.array as da

        valid = da.isfinite(p).all(axis=0) & da.isfinite(r).all(axis=0)
        if m is not None:
            valid = valid & da.from_array(m, chunks=p.chunks[1:])
    else:
        valid = np.isfinite(p).all(axis=0) & np.isfinite(r).all(axis=0)
        if m is not None:
            valid &= m
    return Cubes(pred=p, ref=r, valid=valid, lazy=lazy)


def materialize(c: Cubes) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.bool_]]:
    """NumPy copies of the cropped cubes and of the validity map (computes Dask inputs)."""
    if c.lazy:
        import dask

        p, r, v = dask.compute(c.pred, c.ref, c.valid)
        return np.asarray(p), np.asarray(r), np.asarray(v)
    return c.pred, c.ref, c.valid


def numpy_cube(x: CubeLike, name: str) -> NDArray[Any]:
    """A NumPy ``(band, y, x)`` cube from any accepted input (Dask inputs are computed)."""
    a = unwrap(x, name)
    if is_dask(a):
        a = a.compute()
    return np.asarray(a)

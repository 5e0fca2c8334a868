"""+/-Inf, and values no reflectance can take, as nodata: one implementation for NumPy and Dask arrays.

A float file (or a user's array) may hold +/-Inf where it means "no data". One Inf would otherwise
spread through every blur and every scene mean, so both the decoding of files (:mod:`dcstsf.io`) and the
engine's entry point (:func:`dcstsf.engine.prepare`) turn it into NaN, the nodata value of every other
step. The usual block holds no Inf at all: it is returned as it is, without a copy, so the check costs
one read of the block and no allocation the size of the block.

The fusion also treats as nodata the finite values outside :data:`IMPOSSIBLE_REFLECTANCE`
(:func:`impossible_to_nan`): saturation codes, hot pixels, a fill value the file does not declare. The
scene's value checks (:mod:`dcstsf.diagnosis.values`) see the values as they are and stop a run whose
values are not reflectance; they read a sample, so a few such pixels can pass them, and one of them would
otherwise turn every output pixel within the method's reach into garbage.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dcstsf._arrays import is_dask

__all__ = ["IMPOSSIBLE_REFLECTANCE", "has_inf", "impossible_to_nan", "inf_to_nan"]

#: Reflectance never lies outside this range: below, over-corrected noise ends near -0.1; above, the
#: brightest targets (snow, glint, cloud tops) stay below about 1.6. Beyond it a value is a code or a fault.
IMPOSSIBLE_REFLECTANCE = (-1.0, 2.5)


def has_inf(a: np.ndarray) -> bool:
    """True if the float array ``a`` holds +Inf or -Inf (NaN does not count)."""
    if not np.issubdtype(a.dtype, np.floating):
        return False
    # One (y, x) plane at a time, so the boolean scratch array stays small (a few hundred kB for an
    # engine tile) instead of one byte per value of the whole block.
    if a.ndim < 3:
        return bool(np.isinf(a).any())
    # Indexing, not reshape: a reshape of a non-contiguous view would copy the whole block.
    return any(bool(np.isinf(a[lead]).any()) for lead in np.ndindex(*a.shape[:-2]))


def inf_to_nan(a: Any) -> Any:
    """``a`` with +/-Inf replaced by NaN; NumPy or Dask (lazy, one task per block).

    A block without Inf is returned unchanged (the same object, not a copy); integer arrays, which
    cannot hold Inf, are returned as they are.
    """
    if is_dask(a):
        if not np.issubdtype(a.dtype, np.floating):
            return a
        return a.map_blocks(inf_to_nan, dtype=a.dtype)
    a = np.asarray(a)
    if not has_inf(a):
        return a
    return np.where(np.isinf(a), np.asarray(np.nan, dtype=a.dtype), a)


def _outside(a: np.ndarray) -> tuple[bool, bool]:
    """Whether ``a`` holds values outside :data:`IMPOSSIBLE_REFLECTANCE` other than NaN (+/-Inf included), and
    whether any of them is finite."""
    lo, hi = IMPOSSIBLE_REFLECTANCE
    planes = [a] if a.ndim < 3 else [a[lead] for lead in np.ndindex(*a.shape[:-2])]
    found = finite = False
    for plane in planes:  # one plane at a time: a small scratch array, as in has_inf
        outside = ~((plane >= lo) & (plane <= hi))
        if outside.any():
            found = found or bool((outside & ~np.isnan(plane)).any())
            finite = finite or bool((outside & np.isfinite(plane)).any())
    return found, finite


def impossible_to_nan(a: Any, *, label: str | None = None) -> Any:
    """``a`` with +/-Inf and every value outside :data:`IMPOSSIBLE_REFLECTANCE` replaced by NaN; NumPy or
    Dask (lazy, one task per block). A block that holds none is returned unchanged (no copy).

    When a block holds finite values outside the range and ``label`` is given (e.g. ``"MS(t2) (s2.tif)"``),
    a warning names it: the fused output is NaN where they were.
    """
    if is_dask(a):
        if not np.issubdtype(a.dtype, np.floating):
            return a
        return a.map_blocks(impossible_to_nan, dtype=a.dtype, label=label)
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        return a
    found, finite = _outside(a)
    if not found:
        return a
    lo, hi = IMPOSSIBLE_REFLECTANCE
    if label is not None and finite:  # +/-Inf is a nodata marker like NaN: no news
        warnings.warn(
            f"{label} holds values outside [{lo:g}, {hi:g}], which no reflectance takes (saturation codes, hot "
            "pixels, an undeclared fill value); they are treated as nodata, so the output is NaN there. Declare "
            "the fill value as nodata (CLI --hs-nodata/--ms-nodata) if it is one",
            UserWarning,
            stacklevel=2,
        )
    with np.errstate(invalid="ignore"):
        keep = (a >= lo) & (a <= hi)
    return np.where(keep | np.isnan(a), a, np.asarray(np.nan, dtype=a.dtype))

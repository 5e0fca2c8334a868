"""+/-Inf as nodata: one implementation for NumPy and Dask arrays, used by the readers and the engine.

A float file (or a user's array) may hold +/-Inf where it means "no data". One Inf would otherwise
spread through every blur and every scene mean, so both the decoding of files (:mod:`dcstsf.io`) and the
engine's entry point (:func:`dcstsf.engine.prepare`) turn it into NaN, the nodata value of every other
step. The usual block holds no Inf at all: it is returned as it is, without a copy, so the check costs
one read of the block and no allocation the size of the block.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["has_inf", "inf_to_nan"]


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
    if type(a).__module__.startswith("dask"):
        if not np.issubdtype(a.dtype, np.floating):
            return a
        return a.map_blocks(inf_to_nan, dtype=a.dtype)
    a = np.asarray(a)
    if not has_inf(a):
        return a
    return np.where(np.isinf(a), np.asarray(np.nan, dtype=a.dtype), a)

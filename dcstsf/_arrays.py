"""Array-kind checks shared by every module: one home for "is this a Dask array?"."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["is_dask", "is_xarray"]


def is_dask(x: Any) -> bool:
    """``True`` for a ``dask.array.Array``.

    Only looks for Dask if it is already imported: an object cannot be a Dask array otherwise, and
    importing Dask costs time for pure-NumPy users.
    """
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def is_xarray(x: Any) -> bool:
    """``True`` for an ``xarray.DataArray`` (without importing xarray when it is not loaded)."""
    xr = sys.modules.get("xarray")
    return xr is not None and isinstance(x, xr.DataArray)

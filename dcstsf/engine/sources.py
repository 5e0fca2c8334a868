"""Where each input came from: its label in error messages and its entry in the output's provenance."""

from __future__ import annotations

from typing import Any

import xarray as xr

__all__ = ["input_description", "input_label", "input_source"]


def input_source(da: xr.DataArray) -> str | None:
    """The file ``da`` was read from (``encoding["source"]``, set by :func:`dcstsf.io.open_raster`), when known.

    A ``source`` attribute is not used: it is file metadata and may name the scene the data were made
    from, not the array the caller passed.
    """
    src = da.encoding.get("source")
    return str(src) if src else None


def input_label(da: xr.DataArray, name: str) -> str:
    """``HS(t1)`` plus the file it came from, when known: how error messages name an input."""
    src = input_source(da)
    return f"{name} ({src})" if src else name


def input_description(da: xr.DataArray, name: str) -> dict[str, Any]:
    """The input's entry in the output's ``inputs`` attribute: name, source file and shape."""
    return {"name": name, "source": input_source(da), "shape": [int(s) for s in da.shape]}

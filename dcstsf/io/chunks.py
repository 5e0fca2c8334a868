"""Dask chunks of lazily read rasters: the band axis in one chunk, the rest as asked or automatic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["normalise_chunks"]


def normalise_chunks(chunks: Any, shape: tuple[int, int, int], block: tuple[int, int]) -> Any:
    """Dask chunks with the band axis in one chunk (band is a core dimension of every method).

    ``chunks`` is None (read into memory: returned as is), ``True``/``"auto"`` (automatic sizes that are
    multiples of the file's storage ``block`` (rows, columns)), an int (square chunks) or a mapping of
    dimension names (``band`` defaults to one chunk); anything else is passed on unchanged.
    """
    if chunks is None:
        return None
    if chunks is True or chunks == "auto":
        from dask.array.core import normalize_chunks

        norm = normalize_chunks((-1, "auto", "auto"), shape=shape, dtype=np.float32, previous_chunks=(shape[0], *block))
        return dict(zip(("band", "y", "x"), norm))
    if isinstance(chunks, int):
        return {"band": -1, "y": chunks, "x": chunks}
    if isinstance(chunks, Mapping):
        out = dict(chunks)
        out.setdefault("band", -1)
        return out
    return chunks

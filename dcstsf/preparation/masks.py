"""Masks of the prepared inputs: the readers' masks as NaN, their union across the MS dates, masked fractions.

The product readers already set masked pixels to NaN in every band: Sentinel-2 SCL classes
(:mod:`dcstsf.products.scl`), EnMAP quality masks, PRISMA error codes. What is left here:

* with ``union_masks`` a pixel without data at one MS date becomes NaN at the other too
  (:func:`union_ms_masks`); the fused output is NaN there either way (the engine's nodata policy), the
  union only keeps both dates' statistics on the same pixels;
* the masked fraction of each prepared input over the prepared grid (:func:`masked_fractions`): the
  fraction of pixels without data in the input's reference band, computed for the three inputs in one pass.
  The reference band is MS's first band and the good HS band nearest the middle of the cube: the masks
  set every band to NaN, so one band counts them, without reading the whole cube for a number.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["masked_fractions", "reference_band", "union_ms_masks"]


def union_ms_masks(ms_t1: xr.DataArray, ms_t2: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Both dates NaN wherever either has no data in every band (lazily); attrs and coordinates kept."""
    # Plain arrays: both dates share the grid, and their coordinates may differ by float noise.
    nodata = (ms_t1.isnull().all("band").data | ms_t2.isnull().all("band").data)[None]
    out = []
    for da in (ms_t1, ms_t2):
        masked = da.where(~nodata)
        masked.attrs = dict(da.attrs)
        masked.encoding.update(da.encoding)
        out.append(masked.astype(np.float32))
    return out[0], out[1]


def reference_band(da: xr.DataArray, *, role: str) -> int:
    """Index of the band whose NaN pixels count as masked: MS's first, the good HS band nearest the middle."""
    if role != "hs":
        return 0
    n = da.sizes["band"]
    good = np.ones(n, bool)
    if "bbl" in da.coords and da["bbl"].dims == ("band",):
        good = np.asarray(da["bbl"].values, dtype=float) > 0
    candidates = np.flatnonzero(good) if good.any() else np.arange(n)
    return int(candidates[np.argmin(np.abs(candidates - (n - 1) / 2))])


def masked_fractions(arrays: dict[str, xr.DataArray]) -> dict[str, tuple[float, str]]:
    """Fraction of each array's pixels that are NaN in its :func:`reference_band`, and that band's name.

    ``arrays`` maps ``"hs_t1"``, ``"ms_t1"``, ``"ms_t2"`` to the prepared inputs; the fractions are computed
    together (one Dask computation).
    """
    import dask

    lazy = {}
    names = {}
    for key, da in arrays.items():
        k = reference_band(da, role="hs" if key.startswith("hs") else "ms")
        band = da.isel(band=k)
        names[key] = str(band["band"].values) if "band" in band.coords else str(k)
        lazy[key] = band.isnull().mean()
    values = dask.compute(*(v.data if hasattr(v.data, "dask") else v for v in lazy.values()))
    return {key: (float(np.asarray(v)), names[key]) for key, v in zip(lazy, values, strict=True)}

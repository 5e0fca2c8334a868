"""Per-band sums over the valid pixels, in one pass: chunk-wise for Dask, slab-wise for NumPy.

PSNR, RMSE, SAM, ERGAS and CC are all functions of a few per-band sums (count, SSE, sums of ``p``,
``r``, ``p^2``, ``r^2``, ``pr``, min/max) and of per-image SAM sums. Dask inputs build them from
``dask.array`` reductions evaluated in a single ``dask.compute``, so the cube is never held in memory
at once; NumPy inputs accumulate them over slabs of rows, which bounds the float64 temporaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from dcstsf.metrics.inputs import Cubes

__all__ = ["SLAB_ELEMENTS", "band_stats", "finalize_stats", "merge_stats", "numpy_stats", "row_slabs", "spectral_angles"]

#: Elements per band-slab in the NumPy path: bounds the float64 temporaries (~8 MB each) for big cubes and
#: for every tile of a streaming evaluation (several tiles run at once).
SLAB_ELEMENTS: int = 1_000_000
_MIN_KEYS = ("min_p", "min_r")
_MAX_KEYS = ("max_p", "max_r")


def row_slabs(nb: int, ny: int, nx: int) -> Iterator[slice]:
    """Slices of rows of a ``(nb, ny, nx)`` cube, each holding at most about :data:`SLAB_ELEMENTS` values."""
    rows = max(1, SLAB_ELEMENTS // max(1, nb * nx))
    for y0 in range(0, ny, rows):
        yield slice(y0, y0 + rows)


def spectral_angles(p: Any, r: Any, v: Any, xp: Any) -> tuple[Any, Any, Any]:
    """Per-pixel angle (degrees), SAM validity and ``u - w`` (unit spectra difference).

    ``p`` and ``r`` are already zeroed where invalid.  The angle is ``arccos(<u, w>)`` for the unit
    spectra ``u = p/|p|``, ``w = r/|r|``, evaluated as ``2 atan2(|u - w|, |u + w|)``: the same angle, but
    free of arccos's NaN for a |cos| rounded above 1 (what clipping guards against) and of its loss of
    half the digits near 0 (arccos(clip(cos)) reports ~1e-7 degrees for identical spectra).
    """
    npp = (p * p).sum(axis=0)
    nrr = (r * r).sum(axis=0)
    # Zero-norm spectra have no direction: excluded rather than given an arbitrary angle (an epsilon in
    # the denominator would score them 90 degrees) or NaN (which would poison the image mean).
    sv = v & (npp > 0) & (nrr > 0)
    inv_p = xp.where(sv, 1.0 / xp.sqrt(xp.where(sv, npp, 1.0)), 0.0)
    inv_r = xp.where(sv, 1.0 / xp.sqrt(xp.where(sv, nrr, 1.0)), 0.0)
    u = p * inv_p
    w = r * inv_r
    e = u - w
    s = u + w
    ang = xp.degrees(2.0 * xp.arctan2(xp.sqrt((e * e).sum(axis=0)), xp.sqrt((s * s).sum(axis=0))))
    return ang, sv, e


def _partial_stats(pred: Any, ref: Any, v: Any, xp: Any, moments: bool, angles: bool) -> dict[str, Any]:
    """Per-band sums over the valid pixels of one block of rows (NumPy) or of the whole cube (Dask)."""
    p = xp.where(v, pred.astype(np.float64), 0.0)
    r = xp.where(v, ref.astype(np.float64), 0.0)
    d = p - r
    ax = (1, 2)
    out: dict[str, Any] = {"n": v.sum(), "sse": (d * d).sum(axis=ax), "sum_r": r.sum(axis=ax)}
    if moments:
        out["sum_p"] = p.sum(axis=ax)
        out["sum_pp"] = (p * p).sum(axis=ax)
        out["sum_rr"] = (r * r).sum(axis=ax)
        out["sum_pr"] = (p * r).sum(axis=ax)
        # Exact min/max tell constant bands apart from rounding noise in the one-pass variance.
        out["min_p"] = xp.where(v, p, np.inf).min(axis=ax)
        out["max_p"] = xp.where(v, p, -np.inf).max(axis=ax)
        out["min_r"] = xp.where(v, r, np.inf).min(axis=ax)
        out["max_r"] = xp.where(v, r, -np.inf).max(axis=ax)
    if angles:
        ang, sv, e = spectral_angles(p, r, v, xp)
        out["sam_sum"] = xp.where(sv, ang, 0.0).sum()
        out["sam_n"] = sv.sum()
        out["contrib"] = (e * e).sum(axis=ax)
    return out


def merge_stats(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """``total`` with the partial sums ``part`` of another set of pixels added in (min/max combined)."""
    for k, val in part.items():
        if k not in total:
            total[k] = val
        elif k in _MIN_KEYS:
            total[k] = np.minimum(total[k], val)
        elif k in _MAX_KEYS:
            total[k] = np.maximum(total[k], val)
        else:
            total[k] = total[k] + val
    return total


def numpy_stats(
    pred: Any, ref: Any, valid: Any, *, moments: bool = False, angles: bool = False
) -> dict[str, Any]:
    """Partial per-band sums of NumPy cubes over their valid pixels, accumulated over slabs of rows.

    The result is not yet finalised (:func:`finalize_stats`): partial sums of several parts of an image
    (tiles of a streaming evaluation) are added with :func:`merge_stats`.
    """
    nb, ny, nx = pred.shape
    if ny == 0 or nx == 0:
        return _empty_stats(nb, moments, angles)
    out: dict[str, Any] = {}
    for sl in row_slabs(nb, ny, nx):
        merge_stats(out, _partial_stats(pred[:, sl], ref[:, sl], valid[sl], np, moments, angles))
    return out


def _empty_stats(nb: int, moments: bool, angles: bool) -> dict[str, Any]:
    """The sums of no pixel: merging them changes nothing."""
    zeros = np.zeros(nb)
    out: dict[str, Any] = {"n": 0, "sse": zeros, "sum_r": zeros}
    if moments:
        out.update(sum_p=zeros, sum_pp=zeros, sum_rr=zeros, sum_pr=zeros, min_p=np.full(nb, np.inf),
                   max_p=np.full(nb, -np.inf), min_r=np.full(nb, np.inf), max_r=np.full(nb, -np.inf))
    if angles:
        out.update(sam_sum=0.0, sam_n=0, contrib=zeros)
    return out


def finalize_stats(out: dict[str, Any]) -> dict[str, Any]:
    """Merged partial sums as float64 arrays, the pixel counts as ints (what the ``*_from_stats`` take)."""
    res = {k: np.asarray(val, dtype=np.float64) for k, val in out.items()}
    res["n"] = int(out["n"])
    if "sam_n" in out:
        res["sam_n"] = int(out["sam_n"])
    return res


def band_stats(c: Cubes, *, moments: bool = False, angles: bool = False) -> dict[str, Any]:
    """Per-band sums over valid pixels (and SAM sums) in one pass.

    Always: ``n`` (valid pixels), ``sse``, ``sum_r``. With ``moments``: ``sum_p``, ``sum_pp``,
    ``sum_rr``, ``sum_pr`` and the per-band ``min_p``/``max_p``/``min_r``/``max_r``. With ``angles``:
    ``sam_sum``, ``sam_n`` (SAM-valid pixels) and ``contrib`` (per-band SAM contribution sums).
    """
    if c.lazy:
        import dask
        import dask.array as da

        (out,) = dask.compute(_partial_stats(c.pred, c.ref, c.valid, da, moments, angles))
    else:
        out = numpy_stats(c.pred, c.ref, c.valid, moments=moments, angles=angles)
    return finalize_stats(out)

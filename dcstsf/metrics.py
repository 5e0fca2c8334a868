"""Quality metrics for fused hyperspectral cubes ``(band, y, x)``.

Every metric of the project is defined once, here; ``docs/metrics.md`` gives the same formulas with the
reasons behind each convention.  Shared conventions:

* **Inputs** are NumPy arrays, Dask arrays or xarray DataArrays with dims ``(band, y, x)`` (a 2-D
  ``(y, x)`` array is taken as one band).  Values are reflectance in [0, 1], so ``data_range`` defaults
  to 1.0.  Computation is in float64 whatever the input dtype.
* **Validity** is decided per pixel, for the whole spectrum: a pixel is valid when ``mask`` (boolean
  ``(y, x)``, True = valid) is True there *and* every band of both ``pred`` and ``ref`` is finite.  A
  NaN (nodata) in one band therefore removes the pixel from every band, so all bands are scored on the
  same pixels.
* **border**: this many pixels are cropped from each side (of the images and of the mask) before
  anything else; :func:`evaluate` records the crop.
* **Backends**: PSNR, RMSE, SAM, ERGAS and CC are computed chunk-wise when an input is a Dask array
  (per-band sums are accumulated with dask reductions and computed in a single ``dask.compute``), so the
  cube is never held in memory at once; the result equals the NumPy path to rounding.  SSIM, UIQI, Q2n
  and the QNR family need spatial neighbourhoods and are computed in NumPy (Dask inputs are
  materialised).
* No metric returns NaN because of a few bad pixels; NaN (with a ``RuntimeWarning``) is returned only
  when no valid pixel (or block) is left.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from dcstsf.errors import DcstsfInputError

__all__ = [
    "PSNR_CAP_DB",
    "cc",
    "cc_per_band",
    "d_lambda",
    "d_s",
    "ergas",
    "evaluate",
    "psnr",
    "psnr_per_band",
    "q2n",
    "qnr",
    "rmse",
    "rmse_per_band",
    "sam",
    "sam_map",
    "ssim",
    "uiqi",
]

#: Upper bound of the per-band PSNR (dB).  A band reproduced exactly has MSE 0 and PSNR +inf, which would
#: make the band mean +inf; capping keeps the mean finite and meaningful.
PSNR_CAP_DB: float = 100.0

# SSIM constants of Wang et al. (2004): 11x11 Gaussian window, sigma 1.5.
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # half width of the 11x11 window
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03

#: Anything accepted as a cube: numpy.ndarray, dask.array.Array or xarray.DataArray (band, y, x).
CubeLike = Any
#: Anything accepted as a mask: boolean (y, x) numpy/dask array or DataArray, True = valid.
MaskLike = Any


# --------------------------------------------------------------------------------------------- inputs
def _is_dask(x: Any) -> bool:
    # Only look for dask if it is already imported: an object cannot be a dask array otherwise, and
    # importing dask costs time for pure-NumPy users.
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def _is_xarray(x: Any) -> bool:
    xr = sys.modules.get("xarray")
    return xr is not None and isinstance(x, xr.DataArray)


def _unwrap(x: CubeLike, name: str) -> Any:
    """Return a 3-D numpy or dask array (band, y, x) from any accepted input."""
    if _is_xarray(x):
        dims = tuple(str(d) for d in x.dims)
        wanted = ("band", "y", "x") if x.ndim == 3 else ("y", "x")
        if set(dims) != set(wanted):
            raise DcstsfInputError(
                f"{name}: DataArray has dims {dims}, expected {wanted}. Fix: rename the dims "
                f"(e.g. da.rename({{'wavelength': 'band'}})) so that they are {wanted}."
            )
        x = x.transpose(*wanted).data
    if not _is_dask(x):
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


def _unwrap_mask(mask: MaskLike, shape_yx: tuple[int, int]) -> NDArray[np.bool_]:
    if _is_xarray(mask):
        mask = mask.data
    if _is_dask(mask):
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


def _check_border(border: int, ny: int, nx: int) -> int:
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
        raise DcstsfInputError(f"border must be a non-negative integer number of pixels, got {border!r}.")
    if ny - 2 * border < 1 or nx - 2 * border < 1:
        raise DcstsfInputError(
            f"border={border} crops away the whole {ny}x{nx} image; use a border smaller than "
            f"{(min(ny, nx) + 1) // 2}."
        )
    return int(border)


def _check_data_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.integer, np.floating)):
        raise DcstsfInputError(f"data_range must be a positive number, got {data_range!r}.")
    dr = float(data_range)
    if not (math.isfinite(dr) and dr > 0):
        raise DcstsfInputError(
            f"data_range must be a positive finite number (1.0 for reflectance in [0, 1]), got {data_range!r}."
        )
    return dr


def _check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
        raise DcstsfInputError(f"ratio must be a number h/l in (0, 1], got {ratio!r}.")
    r = float(ratio)
    if not math.isfinite(r) or r <= 0:
        raise DcstsfInputError(
            f"ratio must be h/l = fine pixel size / coarse pixel size, a number in (0, 1], got {ratio!r}."
        )
    if r > 1:
        raise DcstsfInputError(
            f"ratio={ratio!r} is > 1. ERGAS's ratio is h/l = fine pixel size / coarse pixel size (Wald 2002), "
            f"e.g. 1/3 for 10 m fused vs 30 m hyperspectral input. If {ratio!r} is the coarse/fine resolution "
            f"factor, pass ratio=1/{ratio!r} (= {1.0 / r:.6g}) instead; passing it as is would inflate ERGAS "
            f"by {r * r:.6g}x."
        )
    return r


def _check_block(block: int, name: str = "block") -> int:
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 2:
        raise DcstsfInputError(f"{name} must be an integer >= 2 (pixels per block side), got {block!r}.")
    return int(block)


def _warn(message: str) -> None:
    # Attribute the warning to the first caller outside this module, whatever the call depth.
    level = 2
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
        level += 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


@dataclass(frozen=True)
class _Cubes:
    """Cropped inputs, still in their own dtype (float64 conversion happens chunk/band-wise)."""

    pred: Any  # (band, y, x) numpy or dask
    ref: Any
    valid: Any  # (y, x) bool, numpy or dask
    lazy: bool


def _prepare(pred: CubeLike, ref: CubeLike, mask: MaskLike | None, border: int) -> _Cubes:
    p = _unwrap(pred, "pred")
    r = _unwrap(ref, "ref")
    if tuple(p.shape) != tuple(r.shape):
        raise DcstsfInputError(
            f"pred and ref must have the same (band, y, x) shape, got {tuple(p.shape)} and {tuple(r.shape)}."
        )
    _, ny, nx = p.shape
    b = _check_border(border, ny, nx)
    m = None if mask is None else _unwrap_mask(mask, (ny, nx))
    lazy = _is_dask(p) or _is_dask(r)
    if lazy:
        import dask.array as da

        # Give both cubes (and the mask) the same chunks so that the reductions stay chunk-aligned.
        if _is_dask(p) and _is_dask(r):
            r = r.rechunk(p.chunks)
        elif _is_dask(p):
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
    return _Cubes(pred=p, ref=r, valid=valid, lazy=lazy)


def _materialize(c: _Cubes) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.bool_]]:
    """NumPy copies of the cropped cubes and of the validity map (computes Dask inputs)."""
    if c.lazy:
        import dask

        p, r, v = dask.compute(c.pred, c.ref, c.valid)
        return np.asarray(p), np.asarray(r), np.asarray(v)
    return c.pred, c.ref, c.valid


# ------------------------------------------------------------------------------ chunk-wise statistics
def _spectral_angles(p: Any, r: Any, v: Any, xp: Any) -> tuple[Any, Any, Any]:
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


# Elements per band-slab in the NumPy path: bounds the float64 temporaries (~32 MB each) for big cubes.
_SLAB_ELEMENTS = 4_000_000
_MIN_KEYS = ("min_p", "min_r")
_MAX_KEYS = ("max_p", "max_r")


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
        ang, sv, e = _spectral_angles(p, r, v, xp)
        out["sam_sum"] = xp.where(sv, ang, 0.0).sum()
        out["sam_n"] = sv.sum()
        out["contrib"] = (e * e).sum(axis=ax)
    return out


def _band_stats(c: _Cubes, *, moments: bool = False, angles: bool = False) -> dict[str, Any]:
    """Per-band sums over valid pixels (and SAM sums) in one pass: one ``dask.compute`` for Dask inputs,
    a loop over slabs of rows for NumPy inputs (same sums, bounded temporaries)."""
    if c.lazy:
        import dask
        import dask.array as da

        (out,) = dask.compute(_partial_stats(c.pred, c.ref, c.valid, da, moments, angles))
    else:
        nb, ny, nx = c.pred.shape
        rows = max(1, _SLAB_ELEMENTS // max(1, nb * nx))
        out = {}
        for y0 in range(0, ny, rows):
            sl = slice(y0, y0 + rows)
            part = _partial_stats(c.pred[:, sl], c.ref[:, sl], c.valid[sl], np, moments, angles)
            for k, val in part.items():
                if k not in out:
                    out[k] = val
                elif k in _MIN_KEYS:
                    out[k] = np.minimum(out[k], val)
                elif k in _MAX_KEYS:
                    out[k] = np.maximum(out[k], val)
                else:
                    out[k] = out[k] + val
    res = {k: np.asarray(val, dtype=np.float64) for k, val in out.items()}
    res["n"] = int(out["n"])
    if "sam_n" in out:
        res["sam_n"] = int(out["sam_n"])
    return res


def _no_valid(n: int, what: str) -> bool:
    if n == 0:
        _warn(f"{what}: no valid pixel (all masked, NaN, or cropped); returning NaN.")
        return True
    return False


def _psnr_bands(st: dict[str, Any], data_range: float) -> NDArray[np.float64]:
    nb = st["sse"].shape[0]
    if _no_valid(st["n"], "psnr"):
        return np.full(nb, np.nan)
    mse = st["sse"] / st["n"]
    with np.errstate(divide="ignore"):
        val = 10.0 * np.log10(data_range**2 / mse)
    return np.minimum(val, PSNR_CAP_DB)


def _rmse_bands(st: dict[str, Any]) -> NDArray[np.float64]:
    if _no_valid(st["n"], "rmse"):
        return np.full(st["sse"].shape[0], np.nan)
    return np.sqrt(st["sse"] / st["n"])


def _rmse_global(st: dict[str, Any]) -> float:
    if _no_valid(st["n"], "rmse"):
        return math.nan
    return float(math.sqrt(st["sse"].sum() / (st["n"] * st["sse"].shape[0])))


def _ergas_value(st: dict[str, Any], ratio: float) -> float:
    if _no_valid(st["n"], "ergas"):
        return math.nan
    rmse_b = np.sqrt(st["sse"] / st["n"])
    mu_b = st["sum_r"] / st["n"]
    if np.any(mu_b == 0):
        _warn(f"ergas: the reference mean is 0 in band(s) {np.flatnonzero(mu_b == 0).tolist()}; "
              "ERGAS is undefined, returning NaN.")
        return math.nan
    return float(100.0 * ratio * math.sqrt(float(np.mean((rmse_b / mu_b) ** 2))))


def _cc_bands(st: dict[str, Any]) -> NDArray[np.float64]:
    nb = st["sse"].shape[0]
    if _no_valid(st["n"], "cc"):
        return np.full(nb, np.nan)
    n = st["n"]
    mp = st["sum_p"] / n
    mr = st["sum_r"] / n
    cov = st["sum_pr"] / n - mp * mr
    vp = np.maximum(st["sum_pp"] / n - mp * mp, 0.0)
    vr = np.maximum(st["sum_rr"] / n - mr * mr, 0.0)
    const = (st["min_p"] == st["max_p"]) | (st["min_r"] == st["max_r"]) | (vp * vr == 0)
    den = np.sqrt(np.where(const, 1.0, vp * vr))
    return np.where(const, np.nan, np.clip(cov / den, -1.0, 1.0))


def _band_mean(values: NDArray[np.float64], what: str, *, warn_all: bool = True) -> float:
    """Mean over the bands where the metric is defined (warn_all=False when the cause was already reported)."""
    finite = np.isfinite(values)
    if not finite.any():
        if warn_all:
            _warn(f"{what}: undefined in every band (constant bands); returning NaN.")
        return math.nan
    if not finite.all():
        _warn(f"{what}: undefined in band(s) {np.flatnonzero(~finite).tolist()} (constant band); "
              "averaging over the other bands.")
    return float(values[finite].mean())


def _sam_value(st: dict[str, Any]) -> float:
    if st["sam_n"] == 0:
        _warn("sam: no valid pixel with non-zero spectra in both images; returning NaN.")
        return math.nan
    return float(st["sam_sum"] / st["sam_n"])


def _sam_contribution(st: dict[str, Any]) -> NDArray[np.float64]:
    if st["sam_n"] == 0:
        return np.full(st["contrib"].shape[0], np.nan)
    return st["contrib"] / st["sam_n"]


# ------------------------------------------------------------------------------------ public metrics
def psnr_per_band(
    pred: CubeLike, ref: CubeLike, *, data_range: float = 1.0, mask: MaskLike | None = None, border: int = 0
) -> NDArray[np.float64]:
    """Per-band peak signal-to-noise ratio in dB.

    ``PSNR_b = min(10 log10(data_range**2 / MSE_b), 100)`` with ``MSE_b`` the mean squared error of band
    ``b`` over the valid pixels.  ``data_range`` is the span of the data (1.0 for reflectance in [0, 1]),
    not the observed max of the image.  An exactly reproduced band (MSE 0) gets the cap
    :data:`PSNR_CAP_DB` = 100 dB instead of +inf.

    Parameters
    ----------
    pred, ref : array-like (band, y, x)
        Fused and reference cubes (NumPy, Dask or xarray).
    data_range : float
        Peak-to-peak range of the data.
    mask : bool array (y, x), optional
        True = valid pixel.  Pixels with a non-finite value in any band are invalid as well.
    border : int
        Pixels cropped from each side before computing.

    Returns
    -------
    numpy.ndarray of shape (band,)
        PSNR in dB (NaN with a warning if no pixel is valid).
    """
    dr = _check_data_range(data_range)
    return _psnr_bands(_band_stats(_prepare(pred, ref, mask, border)), dr)


def psnr(
    pred: CubeLike, ref: CubeLike, *, data_range: float = 1.0, mask: MaskLike | None = None, border: int = 0
) -> float:
    """Band-mean PSNR in dB: the mean over bands of :func:`psnr_per_band` (each capped at 100 dB).

    Averaging per-band PSNR (rather than one PSNR of the global MSE) weights every band equally whatever
    its brightness.  See :func:`psnr_per_band` for the parameters.
    """
    return float(np.mean(psnr_per_band(pred, ref, data_range=data_range, mask=mask, border=border)))


def rmse_per_band(
    pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0
) -> NDArray[np.float64]:
    """Per-band root-mean-square error over valid pixels, in data units (reflectance).

    ``RMSE_b = sqrt(mean_{valid pixels}(pred_b - ref_b)**2)``.  Masks, NaN and ``border`` as in
    :func:`psnr_per_band`.
    """
    return _rmse_bands(_band_stats(_prepare(pred, ref, mask, border)))


def rmse(pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0) -> float:
    """Global RMSE over all valid values (every band of every valid pixel), in data units.

    ``RMSE = sqrt(sum_b SSE_b / (B * N_valid))``, i.e. the quadratic mean of :func:`rmse_per_band`.
    """
    return _rmse_global(_band_stats(_prepare(pred, ref, mask, border)))


def sam_map(pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0) -> NDArray[np.float64]:
    """Per-pixel spectral angle in degrees, NaN where undefined.

    ``angle = degrees(arccos(<p, r> / (|p| |r|)))``, evaluated in the stable form
    ``2 atan2(|u - w|, |u + w|)`` on the unit spectra (never NaN, exact 0 for identical spectra).  NaN
    marks pixels that are masked, hold a non-finite value in either spectrum, or whose spectrum has zero
    norm in either image.

    Returns
    -------
    numpy.ndarray of shape (y, x) (after the border crop)
    """
    c = _prepare(pred, ref, mask, border)

    def angle_map(pc: Any, rc: Any, vc: Any, xp: Any) -> Any:
        p = xp.where(vc, pc.astype(np.float64), 0.0)
        r = xp.where(vc, rc.astype(np.float64), 0.0)
        ang, sv, _ = _spectral_angles(p, r, vc, xp)
        return xp.where(sv, ang, np.nan)

    if c.lazy:
        import dask.array as da

        return np.asarray(angle_map(c.pred, c.ref, c.valid, da).compute())
    nb, ny, nx = c.pred.shape
    rows = max(1, _SLAB_ELEMENTS // max(1, nb * nx))
    out = np.empty((ny, nx))
    for y0 in range(0, ny, rows):
        sl = slice(y0, y0 + rows)
        out[sl] = angle_map(c.pred[:, sl], c.ref[:, sl], c.valid[sl], np)
    return out


def sam(pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0) -> float:
    """Spectral angle mapper: mean spectral angle in **degrees** over valid pixels.

    Pixels excluded from the mean: masked, non-finite value in either spectrum, zero-norm spectrum in
    either image (its direction is undefined).  So a few such pixels never turn the whole result into NaN;
    if no pixel is left the result is NaN with a ``RuntimeWarning``.  The angle is computed as in
    :func:`sam_map` (equivalent to ``arccos`` of the cosine clipped to [-1, 1], without its rounding
    problems).  Dask inputs are reduced chunk-wise.
    """
    return _sam_value(_band_stats(_prepare(pred, ref, mask, border), angles=True))


def ergas(
    pred: CubeLike, ref: CubeLike, *, ratio: float, mask: MaskLike | None = None, border: int = 0
) -> float:
    """ERGAS (Wald 2002), image-wise.

    ``ERGAS = 100 * ratio * sqrt(mean_b (RMSE_b / mu_b)**2)`` with ``RMSE_b`` the band RMSE and ``mu_b``
    the mean of the **reference** band, both over valid pixels.

    Parameters
    ----------
    ratio : float
        ``h / l`` = fine pixel size / coarse pixel size, in (0, 1]: 1/3 for a 10 m product fused from
        30 m hyperspectral data.  Passing the resolution factor (3) instead raises
        :class:`~dcstsf.errors.DcstsfInputError` (it would inflate ERGAS ninefold).

    Returns
    -------
    float
        Dimensionless (percent-like); 0 is perfect.  NaN with a warning if a reference band mean is 0 or
        no pixel is valid.
    """
    rt = _check_ratio(ratio)
    return _ergas_value(_band_stats(_prepare(pred, ref, mask, border)), rt)


def cc_per_band(
    pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0
) -> NDArray[np.float64]:
    """Per-band Pearson correlation over valid pixels (NaN for a band constant in either image)."""
    return _cc_bands(_band_stats(_prepare(pred, ref, mask, border), moments=True))


def cc(pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0) -> float:
    """Cross-correlation: mean over bands of the Pearson correlation between ``pred_b`` and ``ref_b``.

    Bands constant in either image (correlation undefined) are left out of the mean with a warning.
    """
    st = _band_stats(_prepare(pred, ref, mask, border), moments=True)
    return _band_mean(_cc_bands(st), "cc", warn_all=st["n"] > 0)


# ----------------------------------------------------------------------------------------------- SSIM
def _ssim_bands(
    p: NDArray[Any], r: NDArray[Any], v: NDArray[np.bool_], data_range: float
) -> NDArray[np.float64]:
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    size = 2 * _SSIM_RADIUS + 1
    # A pixel counts only if its whole 11x11 window lies inside the image and on valid data; outside the
    # image is treated as invalid (cval=1), as Wang's 'valid' filtering does.
    touched = ndimage.maximum_filter((~v).astype(np.uint8), size=size, mode="constant", cval=1)
    ok = touched == 0
    nb = p.shape[0]
    if not ok.any():
        _warn(f"ssim: no pixel has a fully valid {size}x{size} window; returning NaN.")
        return np.full(nb, np.nan)
    # truncate chosen so that the kernel radius is exactly 5 (11x11 window).
    trunc = (_SSIM_RADIUS + 0.25) / _SSIM_SIGMA

    def filt(a: NDArray[np.float64]) -> NDArray[np.float64]:
        return ndimage.gaussian_filter(a, sigma=_SSIM_SIGMA, truncate=trunc, mode="reflect")

    out = np.empty(nb)
    for b in range(nb):
        # NaN would spread through the filter; invalid pixels are zeroed and their windows dropped above.
        x = np.where(v, p[b], 0.0).astype(np.float64)
        y = np.where(v, r[b], 0.0).astype(np.float64)
        mx, my = filt(x), filt(y)
        sxx = filt(x * x) - mx * mx
        syy = filt(y * y) - my * my
        sxy = filt(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        out[b] = s[ok].mean()
    return out


def ssim(
    pred: CubeLike, ref: CubeLike, *, data_range: float = 1.0, mask: MaskLike | None = None, border: int = 0
) -> float:
    """Band-mean structural similarity (Wang et al. 2004).

    Per band, the SSIM map ``((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    uses Gaussian-weighted local statistics (11x11 window, sigma 1.5, population covariances),
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L = data_range``.  The map is averaged over pixels whose
    whole window lies inside the image and touches no invalid (masked/NaN) pixel -- the same pixels as
    scikit-image's ``structural_similarity(gaussian_weights=True)`` without a mask; then averaged over bands.

    Computed in NumPy (SciPy filters), band by band; Dask inputs are materialised.
    """
    dr = _check_data_range(data_range)
    p, r, v = _materialize(_prepare(pred, ref, mask, border))
    return _band_mean(_ssim_bands(p, r, v, dr), "ssim", warn_all=False)


# ------------------------------------------------------------------------------------- UIQI / Q2n
def _q_combine(mean_prod: Any, mean_sq_sum: Any, cov: Any, var_sum: Any) -> Any:
    """Q = [2 cov / var_sum] * [2 mean_prod / mean_sq_sum], an undefined (0/0) factor taken as 1.

    0/0 occurs only when both blocks are constant (structure factor) or both have zero mean (luminance
    factor); the two blocks then agree on that aspect, hence 1.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lum = np.where(mean_sq_sum > 0, 2.0 * mean_prod / np.where(mean_sq_sum > 0, mean_sq_sum, 1.0), 1.0)
        struct = np.where(var_sum > 0, 2.0 * cov / np.where(var_sum > 0, var_sum, 1.0), 1.0)
    return lum * struct


def _block_grid(ny: int, nx: int, block: int) -> tuple[int, int, int, int]:
    by, bx = min(block, ny), min(block, nx)
    return by, bx, ny // by, nx // bx


def _block_row(a: NDArray[Any], i: int, by: int, bx: int, nbx: int) -> NDArray[Any]:
    """Blocks of block row i: (..., y, x) -> (nbx, ..., by*bx).  Works one block row at a time so that
    the reshaped copy stays small."""
    sl = a[..., i * by:(i + 1) * by, : nbx * bx]
    lead = sl.shape[:-2]
    sl = sl.reshape(*lead, by, nbx, bx)
    sl = np.moveaxis(sl, -2, 0)  # (nbx, ..., by, bx)
    return sl.reshape(nbx, *lead, by * bx)


def _center(xb: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Block means and centred values; constant blocks get exactly zero deviations (no rounding noise)."""
    mean = xb.mean(axis=-1)
    xc = xb - mean[..., None]
    const = xb.max(axis=-1) == xb.min(axis=-1)
    xc[const] = 0.0
    return mean, xc


def _uiqi_sums(p: NDArray[Any], r: NDArray[Any], v: NDArray[np.bool_], block: int) -> tuple[float, int]:
    """Sum of block Q over valid blocks and bands, and their count."""
    _, ny, nx = p.shape
    by, bx, nby, nbx = _block_grid(ny, nx, block)
    total, count = 0.0, 0
    for i in range(nby):
        vb = _block_row(v, i, by, bx, nbx).all(axis=-1)  # (nbx,)
        if not vb.any():
            continue
        # Only blocks free of invalid pixels are kept, so no NaN reaches the statistics.
        xb = _block_row(p, i, by, bx, nbx)[vb].astype(np.float64)  # (nblk, band, P)
        yb = _block_row(r, i, by, bx, nbx)[vb].astype(np.float64)
        mx, xc = _center(xb)
        my, yc = _center(yb)
        q = _q_combine(mx * my, mx * mx + my * my, (xc * yc).mean(-1), (xc * xc).mean(-1) + (yc * yc).mean(-1))
        total += float(q.sum())
        count += int(q.size)
    return total, count


def uiqi(
    pred: CubeLike, ref: CubeLike, *, block: int = 32, mask: MaskLike | None = None, border: int = 0
) -> float:
    """Universal image quality index Q (Wang & Bovik 2002), block- and band-averaged.

    ``Q = 4 s_xy mu_x mu_y / ((s_x^2 + s_y^2)(mu_x^2 + mu_y^2))`` per block and band, averaged over all
    (block, band) pairs.  Blocks: non-overlapping ``block x block`` tiles from the top-left corner (the
    block is clipped to the image size if the image is smaller); incomplete tiles at the right/bottom edge
    are dropped, and so are blocks containing any invalid pixel.  Degenerate blocks: when both blocks are
    constant the structure factor ``2 s_xy / (s_x^2 + s_y^2)`` is 1, when both means are 0 the luminance
    factor is 1 (e.g. two identical constant blocks score 1).  Range [-1, 1], 1 is perfect.

    Computed in NumPy; Dask inputs are materialised.
    """
    blk = _check_block(block)
    p, r, v = _materialize(_prepare(pred, ref, mask, border))
    total, count = _uiqi_sums(p, r, v, blk)
    if count == 0:
        _warn(f"uiqi: no complete {blk}x{blk} block free of invalid pixels; returning NaN.")
        return math.nan
    return total / count


def _cd_conj(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cayley-Dickson conjugate along the last axis: keep the real part, negate the rest."""
    y = np.array(x, dtype=np.float64, copy=True)
    y[..., 1:] *= -1.0
    return y


def _cd_mult(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Reference Cayley-Dickson product along the last axis (length a power of two).

    ``(a, b)(c, d) = (a c - d* b, d a + b c*)`` (the convention giving complex numbers, Hamilton's
    quaternions and the octonions).  Used to validate :func:`_cd_sign_table`.
    """
    n = x.shape[-1]
    if n == 1:
        return x * y
    h = n // 2
    a, b = x[..., :h], x[..., h:]
    c, d = y[..., :h], y[..., h:]
    return np.concatenate([_cd_mult(a, c) - _cd_mult(_cd_conj(d), b), _cd_mult(d, a) + _cd_mult(b, _cd_conj(c))], -1)


def _cd_sign_table(dim: int) -> NDArray[np.float64]:
    """S with ``e_i e_j = S[i, j] e_(i XOR j)`` for the product of :func:`_cd_mult`, dim a power of two.

    Built by the doubling rule on basis elements (g = conjugation signs of the half algebra)::

        [[S,        S^T       ],
         [S * g,   -S^T * g   ]]
    """
    s = np.ones((1, 1))
    while s.shape[0] < dim:
        h = s.shape[0]
        g = -np.ones(h)
        g[0] = 1.0
        s = np.block([[s, s.T], [s * g[None, :], -s.T * g[None, :]]])
    return s


def _q2n_sums(p: NDArray[Any], r: NDArray[Any], v: NDArray[np.bool_], block: int) -> tuple[float, int]:
    nbands, ny, nx = p.shape
    dim = 1 << (nbands - 1).bit_length()  # next power of two; the padded components are zero
    sign = _cd_sign_table(dim)
    k_idx = np.arange(dim)[:, None]
    i_idx = np.arange(dim)[None, :]
    j_idx = i_idx ^ k_idx  # for output component k: pairs (i, i XOR k)
    gsign = sign[np.broadcast_to(i_idx, (dim, dim)), j_idx]  # (k, i)
    conj = np.ones(dim)
    conj[1:] = -1.0
    by, bx, nby, nbx = _block_grid(ny, nx, block)
    total, count = 0.0, 0
    for i in range(nby):
        vb = _block_row(v, i, by, bx, nbx).all(axis=-1)
        if not vb.any():
            continue
        z = np.zeros((int(vb.sum()), dim, by * bx))
        w = np.zeros_like(z)
        z[:, :nbands] = _block_row(p, i, by, bx, nbx)[vb]
        w[:, :nbands] = _block_row(r, i, by, bx, nbx)[vb]
        mz, zc = _center(z)  # (nblk, dim), (nblk, dim, P)
        mw, wc = _center(w)
        npx = z.shape[-1]
        # Hypercomplex covariance E[(z - zbar)(w - wbar)*]: the product is bilinear, so it is a signed sum
        # of the cross-moment matrix M[i, j] = E[zc_i (wc*)_j] along the XOR pattern of the basis products.
        m = np.matmul(zc, np.swapaxes(wc * conj[None, :, None], 1, 2)) / npx  # (nblk, dim, dim)
        cov = (m[:, np.broadcast_to(i_idx, (dim, dim)), j_idx] * gsign[None]).sum(-1)  # (nblk, dim)
        var_sum = (zc * zc).sum(axis=(1, 2)) / npx + (wc * wc).sum(axis=(1, 2)) / npx
        nz = np.linalg.norm(mz, axis=-1)
        nw = np.linalg.norm(mw, axis=-1)
        q = _q_combine(nz * nw, nz * nz + nw * nw, np.linalg.norm(cov, axis=-1), var_sum)
        total += float(q.sum())
        count += int(q.size)
    return total, count


def q2n(
    pred: CubeLike, ref: CubeLike, *, block: int = 32, mask: MaskLike | None = None, border: int = 0
) -> float:
    """Hypercomplex quality index Q2^n (Garzelli & Nencini 2009), block-averaged.

    Each pixel spectrum is a hypercomplex number ``z`` with ``2^n`` components (bands, zero-padded to the
    next power of two; Cayley-Dickson algebra, ``(a, b)(c, d) = (ac - d* b, da + b c*)``).  Per block,
    with ``z`` from ``pred`` and ``w`` from ``ref``::

        Q2n = 4 |s_zw| |zbar| |wbar| / ((s_z^2 + s_w^2)(|zbar|^2 + |wbar|^2))
        s_zw = E[(z - zbar)(w - wbar)*],   s_z^2 = E|z - zbar|^2

    averaged over the same blocks as :func:`uiqi` (non-overlapping, top-left anchored, incomplete edge
    tiles and blocks with invalid pixels dropped, same degenerate-block rules).  For one band it equals
    ``|UIQI|`` block by block.  1 is perfect, 0 the worst; the value is at most 1 for up to 8 bands
    (composition algebras: complex numbers, quaternions, octonions).  From 16 components on the norm is no
    longer multiplicative and a block can in principle score slightly above 1 (the Toolbox shares this).

    The Pansharpening Toolbox's ``q2n`` additionally normalises each band of each block by the fused
    image's block mean and standard deviation and pads the image to a block multiple, so its values
    differ from these.  Its recursive product differs from ours only by signs of output components, so
    ``|s_zw|`` is the same.  Cost is O(4^n) per pixel (n = log2 of padded bands); computed in NumPy,
    Dask inputs are materialised.
    """
    blk = _check_block(block)
    p, r, v = _materialize(_prepare(pred, ref, mask, border))
    total, count = _q2n_sums(p, r, v, blk)
    if count == 0:
        _warn(f"q2n: no complete {blk}x{blk} block free of invalid pixels; returning NaN.")
        return math.nan
    return total / count


# --------------------------------------------------------------------------------- QNR (no reference)
def _q_matrix(x: NDArray[Any], y: NDArray[Any], v: NDArray[np.bool_], block: int) -> NDArray[np.float64]:
    """UIQI of every band of x against every band of y, averaged over valid blocks: (Lx, Ly)."""
    lx, ny, nx = x.shape
    ly = y.shape[0]
    by, bx, nby, nbx = _block_grid(ny, nx, block)
    total = np.zeros((lx, ly))
    count = 0
    for i in range(nby):
        vb = _block_row(v, i, by, bx, nbx).all(axis=-1)
        if not vb.any():
            continue
        xb = _block_row(x, i, by, bx, nbx)[vb].astype(np.float64)  # (nblk, lx, P)
        yb = _block_row(y, i, by, bx, nbx)[vb].astype(np.float64)
        mx, xc = _center(xb)
        my, yc = _center(yb)
        npx = xb.shape[-1]
        cov = np.matmul(xc, np.swapaxes(yc, 1, 2)) / npx  # (nblk, lx, ly)
        vx = (xc * xc).mean(-1)
        vy = (yc * yc).mean(-1)
        q = _q_combine(
            mx[:, :, None] * my[:, None, :],
            mx[:, :, None] ** 2 + my[:, None, :] ** 2,
            cov,
            vx[:, :, None] + vy[:, None, :],
        )
        total += q.sum(axis=0)
        count += q.shape[0]
    if count == 0:
        return np.full((lx, ly), np.nan)
    return total / count


def _scale_pair(hi: NDArray[Any], lo: NDArray[Any], hi_name: str, lo_name: str) -> float:
    _, ny, nx = hi.shape
    _, my, mx = lo.shape
    ry, rx = ny / my, nx / mx
    if not math.isclose(ry, rx, rel_tol=1e-9) or ry < 1:
        raise DcstsfInputError(
            f"{hi_name} {ny}x{nx} and {lo_name} {my}x{mx} must differ by one scale factor >= 1 in y and x "
            f"(got {ry:.6g} and {rx:.6g}); crop both to the same footprint."
        )
    return ry


def _lowres_block(block: int, scale: float, block_lowres: int | None) -> int:
    if block_lowres is not None:
        return _check_block(block_lowres, "block_lowres")
    # Same ground footprint at both scales (block / scale, at least 2 pixels).
    return max(2, int(round(block / scale)))


def _valid_of(*cubes: NDArray[Any]) -> NDArray[np.bool_]:
    v = np.isfinite(cubes[0]).all(axis=0)
    for c in cubes[1:]:
        v &= np.isfinite(c).all(axis=0)
    return v


def _numpy_cube(x: CubeLike, name: str) -> NDArray[Any]:
    a = _unwrap(x, name)
    if _is_dask(a):
        a = a.compute()
    return np.asarray(a)


def _check_exponent(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise DcstsfInputError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


def d_lambda(
    fused: CubeLike, hs_lowres: CubeLike, *, p: float = 1, block: int = 32, block_lowres: int | None = None
) -> float:
    """Spectral distortion index D_lambda of QNR (Alparone et al. 2008).

    ``D_lambda = ( 1/(L(L-1)) sum_{l != r} |Q(F_l, F_r) - Q(H_l, H_r)|^p )^(1/p)``

    where ``F`` is the fused cube, ``H`` the low-resolution hyperspectral input, ``L`` the number of bands
    and ``Q`` the block-averaged UIQI (as in :func:`uiqi`) between two bands of the same image.  The
    inter-band similarities of the fused product should equal those of the original data; 0 is ideal.

    Parameters
    ----------
    fused : (L, H, W) array-like
    hs_lowres : (L, h, w) array-like
        Same footprint; ``H/h == W/w`` (the scale factor, e.g. 3).
    p : float
        Exponent (1 in Alparone et al.).
    block : int
        UIQI block side on the fused grid.
    block_lowres : int, optional
        UIQI block side on the low-resolution grid.  Default: ``max(2, round(block / scale))``, i.e. the
        same ground footprint (exactly so when ``block`` is a multiple of the scale factor).

    Notes
    -----
    Pixels with a non-finite value in any band are dropped with their blocks, per image.  Computed in
    NumPy (Dask inputs are materialised); cost O(L^2) per pixel.
    """
    pe = _check_exponent(p, "p")
    blk = _check_block(block)
    f = _numpy_cube(fused, "fused")
    h = _numpy_cube(hs_lowres, "hs_lowres")
    if f.shape[0] != h.shape[0]:
        raise DcstsfInputError(f"fused has {f.shape[0]} bands but hs_lowres has {h.shape[0]}; they must match.")
    if f.shape[0] < 2:
        raise DcstsfInputError("d_lambda needs at least 2 bands (it compares band pairs).")
    scale = _scale_pair(f, h, "fused", "hs_lowres")
    blo = _lowres_block(blk, scale, block_lowres)
    qf = _q_matrix(f, f, _valid_of(f), blk)
    ql = _q_matrix(h, h, _valid_of(h), blo)
    if np.isnan(qf).all() or np.isnan(ql).all():
        _warn("d_lambda: no complete block free of invalid pixels; returning NaN.")
        return math.nan
    off = ~np.eye(f.shape[0], dtype=bool)
    return float(np.mean(np.abs(qf - ql)[off] ** pe) ** (1.0 / pe))


def d_s(
    fused: CubeLike,
    hs_lowres: CubeLike,
    ms: CubeLike,
    ms_lowres: CubeLike,
    *,
    q: float = 1,
    block: int = 32,
    block_lowres: int | None = None,
) -> float:
    """Spatial distortion index D_s of QNR (Alparone et al. 2008), generalised to K high-res bands.

    ``D_s = ( 1/(L K) sum_l sum_k |Q(F_l, M_k) - Q(H_l, M~_k)|^q )^(1/q)``

    ``F`` fused (L bands, fine grid), ``H`` hyperspectral input (coarse grid), ``M`` the multispectral
    (or panchromatic, K = 1, Alparone's original case) image on the fine grid and ``M~`` the same image
    degraded to the coarse grid (sensor MTF + decimation, e.g. by the Wald-protocol simulator).  The
    fused-vs-MS similarities should equal the ones observed at the coarse scale; 0 is ideal.

    Parameters
    ----------
    fused : (L, H, W);  hs_lowres : (L, h, w);  ms : (K, H, W);  ms_lowres : (K, h, w)
    q : float
        Exponent (1 in Alparone et al.).
    block, block_lowres : int
        As in :func:`d_lambda`.
    """
    qe = _check_exponent(q, "q")
    blk = _check_block(block)
    f = _numpy_cube(fused, "fused")
    h = _numpy_cube(hs_lowres, "hs_lowres")
    m = _numpy_cube(ms, "ms")
    ml = _numpy_cube(ms_lowres, "ms_lowres")
    if f.shape[0] != h.shape[0]:
        raise DcstsfInputError(f"fused has {f.shape[0]} bands but hs_lowres has {h.shape[0]}; they must match.")
    if m.shape[0] != ml.shape[0]:
        raise DcstsfInputError(f"ms has {m.shape[0]} bands but ms_lowres has {ml.shape[0]}; they must match.")
    if m.shape[1:] != f.shape[1:]:
        raise DcstsfInputError(f"ms grid {m.shape[1:]} differs from the fused grid {f.shape[1:]}.")
    if ml.shape[1:] != h.shape[1:]:
        raise DcstsfInputError(f"ms_lowres grid {ml.shape[1:]} differs from the hs_lowres grid {h.shape[1:]}.")
    scale = _scale_pair(f, h, "fused", "hs_lowres")
    blo = _lowres_block(blk, scale, block_lowres)
    qh = _q_matrix(f, m, _valid_of(f, m), blk)
    ql = _q_matrix(h, ml, _valid_of(h, ml), blo)
    if np.isnan(qh).all() or np.isnan(ql).all():
        _warn("d_s: no complete block free of invalid pixels; returning NaN.")
        return math.nan
    return float(np.mean(np.abs(qh - ql) ** qe) ** (1.0 / qe))


def qnr(
    fused: CubeLike,
    hs_lowres: CubeLike,
    ms: CubeLike,
    ms_lowres: CubeLike,
    *,
    alpha: float = 1,
    beta: float = 1,
    p: float = 1,
    q: float = 1,
    block: int = 32,
    block_lowres: int | None = None,
) -> float:
    """Quality with no reference, ``QNR = (1 - D_lambda)^alpha (1 - D_s)^beta`` (Alparone et al. 2008).

    Each ``1 - D`` is clamped at 0 (a D above 1 is possible with anti-correlated blocks), so QNR is in
    [0, 1]; 1 is ideal.  See :func:`d_lambda` and :func:`d_s` for the arguments.
    """
    a = _check_exponent(alpha, "alpha")
    b = _check_exponent(beta, "beta")
    dl = d_lambda(fused, hs_lowres, p=p, block=block, block_lowres=block_lowres)
    ds = d_s(fused, hs_lowres, ms, ms_lowres, q=q, block=block, block_lowres=block_lowres)
    return float(max(0.0, 1.0 - dl) ** a * max(0.0, 1.0 - ds) ** b)


# ------------------------------------------------------------------------------------------- evaluate
def evaluate(
    pred: CubeLike,
    ref: CubeLike,
    *,
    ratio: float,
    data_range: float = 1.0,
    mask: MaskLike | None = None,
    border: int = 0,
    block: int = 32,
    include_q2n: bool = True,
) -> dict[str, Any]:
    """All full-reference metrics at once, with the conventions used (JSON-serialisable).

    Returns
    -------
    dict
        ``{"global": {"psnr", "sam_deg", "ergas", "ssim", "cc", "rmse", "uiqi", "q2n"?},
        "per_band": {"psnr", "rmse", "sam_contribution", "cc", "ssim"},
        "conventions": {"ratio_h_over_l", "data_range", "border", "valid_pixels", "sam_valid_pixels",
        "sam_units", "psnr_cap_db", "uiqi_block", "ssim_window"}}``.

        ``per_band["sam_contribution"][b]`` is the mean over SAM-valid pixels of ``(p_b/|p| - r_b/|r|)^2``
        (unit-normalised spectra).  Summed over bands it equals the mean of ``2 (1 - cos angle)``, so it
        shows which bands drive the spectral angle (dimensionless).

    PSNR, RMSE, SAM, ERGAS and CC come from one chunk-wise pass (one ``dask.compute`` for Dask inputs);
    SSIM, UIQI and Q2n are then computed in NumPy on the materialised cubes.  ``include_q2n=False`` skips
    Q2n, whose cost grows with the square of the (padded) band count.
    """
    rt = _check_ratio(ratio)
    dr = _check_data_range(data_range)
    blk = _check_block(block)
    c = _prepare(pred, ref, mask, border)
    st = _band_stats(c, moments=True, angles=True)
    psnr_b = _psnr_bands(st, dr)
    rmse_b = _rmse_bands(st)
    cc_b = _cc_bands(st)
    p, r, v = _materialize(c)
    ssim_b = _ssim_bands(p, r, v, dr)
    total, count = _uiqi_sums(p, r, v, blk)
    if count == 0:
        _warn(f"uiqi: no complete {blk}x{blk} block free of invalid pixels; returning NaN.")
    glob: dict[str, float] = {
        "psnr": float(np.mean(psnr_b)),
        "sam_deg": _sam_value(st),
        "ergas": _ergas_value(st, rt),
        "ssim": _band_mean(ssim_b, "ssim", warn_all=False),
        "cc": _band_mean(cc_b, "cc", warn_all=st["n"] > 0),
        "rmse": _rmse_global(st),
        "uiqi": total / count if count else math.nan,
    }
    if include_q2n:
        qt, qc = _q2n_sums(p, r, v, blk)
        if qc == 0:
            _warn(f"q2n: no complete {blk}x{blk} block free of invalid pixels; returning NaN.")
        glob["q2n"] = qt / qc if qc else math.nan
    return {
        "global": glob,
        "per_band": {
            "psnr": psnr_b.tolist(),
            "rmse": rmse_b.tolist(),
            "sam_contribution": _sam_contribution(st).tolist(),
            "cc": cc_b.tolist(),
            "ssim": ssim_b.tolist(),
        },
        "conventions": {
            "ratio_h_over_l": rt,
            "data_range": dr,
            "border": int(border),
            "valid_pixels": st["n"],
            "sam_valid_pixels": st["sam_n"],
            "sam_units": "degrees",
            "psnr_cap_db": PSNR_CAP_DB,
            "uiqi_block": blk,
            "ssim_window": "gaussian 11x11 sigma 1.5, K1=0.01 K2=0.03",
        },
    }

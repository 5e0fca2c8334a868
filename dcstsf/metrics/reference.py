"""Full-reference pixel metrics: PSNR, RMSE, SAM, ERGAS and CC, from per-band sums over valid pixels.

Each public metric prepares its inputs (:mod:`dcstsf.metrics.inputs`), takes one pass of per-band
sums (:mod:`dcstsf.metrics.band_stats`; chunk-wise for Dask inputs) and reduces them with the
``*_from_stats`` functions below, which :func:`dcstsf.metrics.evaluate` shares.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dcstsf.metrics.band_stats import band_stats, row_slabs, spectral_angles
from dcstsf.metrics.inputs import CubeLike, MaskLike, check_data_range, check_h_over_l, prepare
from dcstsf.metrics.undefined import band_mean, no_valid, warn_undefined

__all__ = [
    "PSNR_CAP_DB",
    "cc",
    "cc_bands_from_stats",
    "cc_per_band",
    "ergas",
    "ergas_from_stats",
    "psnr",
    "psnr_bands_from_stats",
    "psnr_per_band",
    "rmse",
    "rmse_bands_from_stats",
    "rmse_from_stats",
    "rmse_per_band",
    "sam",
    "sam_contribution_from_stats",
    "sam_from_stats",
    "sam_map",
]

#: Upper bound of the per-band PSNR (dB).  A band reproduced exactly has MSE 0 and PSNR +inf, which would
#: make the band mean +inf; capping keeps the mean finite and meaningful.
PSNR_CAP_DB: float = 100.0


# ------------------------------------------------------------------------- reductions of band sums
def psnr_bands_from_stats(st: dict[str, Any], data_range: float) -> NDArray[np.float64]:
    """Per-band PSNR (dB, capped at :data:`PSNR_CAP_DB`) from :func:`~dcstsf.metrics.band_stats.band_stats`."""
    nb = st["sse"].shape[0]
    if no_valid(st["n"], "psnr"):
        return np.full(nb, np.nan)
    mse = st["sse"] / st["n"]
    with np.errstate(divide="ignore"):
        val = 10.0 * np.log10(data_range**2 / mse)
    return np.minimum(val, PSNR_CAP_DB)


def rmse_bands_from_stats(st: dict[str, Any]) -> NDArray[np.float64]:
    """Per-band RMSE from band sums."""
    if no_valid(st["n"], "rmse"):
        return np.full(st["sse"].shape[0], np.nan)
    return np.sqrt(st["sse"] / st["n"])


def rmse_from_stats(st: dict[str, Any]) -> float:
    """Global RMSE (over every band of every valid pixel) from band sums."""
    if no_valid(st["n"], "rmse"):
        return math.nan
    return float(math.sqrt(st["sse"].sum() / (st["n"] * st["sse"].shape[0])))


def ergas_from_stats(st: dict[str, Any], h_over_l: float) -> float:
    """ERGAS from band sums, ``h_over_l`` already checked."""
    if no_valid(st["n"], "ergas"):
        return math.nan
    rmse_b = np.sqrt(st["sse"] / st["n"])
    mu_b = st["sum_r"] / st["n"]
    if np.any(mu_b == 0):
        warn_undefined(f"ergas: the reference mean is 0 in band(s) {np.flatnonzero(mu_b == 0).tolist()}; "
                       "ERGAS is undefined, returning NaN.")
        return math.nan
    return float(100.0 * h_over_l * math.sqrt(float(np.mean((rmse_b / mu_b) ** 2))))


def cc_bands_from_stats(st: dict[str, Any]) -> NDArray[np.float64]:
    """Per-band Pearson correlation from band sums with ``moments`` (NaN for constant bands)."""
    nb = st["sse"].shape[0]
    if no_valid(st["n"], "cc"):
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


def sam_from_stats(st: dict[str, Any]) -> float:
    """Mean spectral angle (degrees) from band sums with ``angles``."""
    if st["sam_n"] == 0:
        warn_undefined("sam: no valid pixel with non-zero spectra in both images; returning NaN.")
        return math.nan
    return float(st["sam_sum"] / st["sam_n"])


def sam_contribution_from_stats(st: dict[str, Any]) -> NDArray[np.float64]:
    """Per-band SAM contribution (mean of the squared unit-spectra difference) from band sums."""
    if st["sam_n"] == 0:
        return np.full(st["contrib"].shape[0], np.nan)
    return st["contrib"] / st["sam_n"]


# ---------------------------------------------------------------------------------- public metrics
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
    dr = check_data_range(data_range)
    return psnr_bands_from_stats(band_stats(prepare(pred, ref, mask=mask, border=border)), dr)


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
    return rmse_bands_from_stats(band_stats(prepare(pred, ref, mask=mask, border=border)))


def rmse(pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0) -> float:
    """Global RMSE over all valid values (every band of every valid pixel), in data units.

    ``RMSE = sqrt(sum_b SSE_b / (B * N_valid))``, i.e. the quadratic mean of :func:`rmse_per_band`.
    """
    return rmse_from_stats(band_stats(prepare(pred, ref, mask=mask, border=border)))


def _angle_map(pc: Any, rc: Any, vc: Any, xp: Any) -> Any:
    """Spectral angles of one slab (NumPy) or of the whole cube (Dask), NaN where undefined."""
    p = xp.where(vc, pc.astype(np.float64), 0.0)
    r = xp.where(vc, rc.astype(np.float64), 0.0)
    ang, sv, _ = spectral_angles(p, r, vc, xp)
    return xp.where(sv, ang, np.nan)


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
    c = prepare(pred, ref, mask=mask, border=border)
    if c.lazy:
        import dask.array as da

        return np.asarray(_angle_map(c.pred, c.ref, c.valid, da).compute())
    nb, ny, nx = c.pred.shape
    out = np.empty((ny, nx))
    for sl in row_slabs(nb, ny, nx):
        out[sl] = _angle_map(c.pred[:, sl], c.ref[:, sl], c.valid[sl], np)
    return out


def sam(pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0) -> float:
    """Spectral angle mapper: mean spectral angle in **degrees** over valid pixels.

    Pixels excluded from the mean: masked, non-finite value in either spectrum, zero-norm spectrum in
    either image (its direction is undefined).  So a few such pixels never turn the whole result into NaN;
    if no pixel is left the result is NaN with a ``RuntimeWarning``.  The angle is computed as in
    :func:`sam_map` (equivalent to ``arccos`` of the cosine clipped to [-1, 1], without its rounding
    problems).  Dask inputs are reduced chunk-wise.
    """
    return sam_from_stats(band_stats(prepare(pred, ref, mask=mask, border=border), angles=True))


def ergas(
    pred: CubeLike, ref: CubeLike, *, h_over_l: float, mask: MaskLike | None = None, border: int = 0
) -> float:
    """ERGAS (Wald 2002), image-wise.

    ``ERGAS = 100 * (h/l) * sqrt(mean_b (RMSE_b / mu_b)**2)`` with ``RMSE_b`` the band RMSE and ``mu_b``
    the mean of the **reference** band, both over valid pixels.

    Parameters
    ----------
    h_over_l : float
        ``h / l`` = fine pixel size / coarse pixel size, in (0, 1]: 1/3 for a 10 m product fused from
        30 m hyperspectral data, i.e. ``1 / ratio``.  Passing the resolution ratio (3) instead raises
        :class:`~dcstsf.errors.DcstsfInputError` (it would inflate ERGAS ninefold).

    Returns
    -------
    float
        Dimensionless (percent-like); 0 is perfect.  NaN with a warning if a reference band mean is 0 or
        no pixel is valid.
    """
    hl = check_h_over_l(h_over_l)
    return ergas_from_stats(band_stats(prepare(pred, ref, mask=mask, border=border)), hl)


def cc_per_band(
    pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0
) -> NDArray[np.float64]:
    """Per-band Pearson correlation over valid pixels (NaN for a band constant in either image)."""
    return cc_bands_from_stats(band_stats(prepare(pred, ref, mask=mask, border=border), moments=True))


def cc(pred: CubeLike, ref: CubeLike, *, mask: MaskLike | None = None, border: int = 0) -> float:
    """Cross-correlation: mean over bands of the Pearson correlation between ``pred_b`` and ``ref_b``.

    Bands constant in either image (correlation undefined) are left out of the mean with a warning.
    """
    st = band_stats(prepare(pred, ref, mask=mask, border=border), moments=True)
    return band_mean(cc_bands_from_stats(st), "cc", warn_all=st["n"] > 0)

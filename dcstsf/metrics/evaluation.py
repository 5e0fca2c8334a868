"""All full-reference metrics at once (:func:`evaluate`), with the conventions used, as a JSON-ready dict.

One chunk-wise pass of band sums gives PSNR, RMSE, SAM, ERGAS and CC (one ``dask.compute`` for Dask
inputs); the cubes are then materialised once for SSIM, UIQI and Q2n.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dcstsf.metrics.band_stats import band_stats
from dcstsf.metrics.inputs import (
    CubeLike,
    MaskLike,
    check_block,
    check_data_range,
    check_h_over_l,
    materialize,
    prepare,
)
from dcstsf.metrics.reference import (
    PSNR_CAP_DB,
    cc_bands_from_stats,
    ergas_from_stats,
    psnr_bands_from_stats,
    rmse_bands_from_stats,
    rmse_from_stats,
    sam_contribution_from_stats,
    sam_from_stats,
)
from dcstsf.metrics.undefined import band_mean, warn_undefined
from dcstsf.metrics.windowed import q2n_sums, ssim_bands, uiqi_sums

__all__ = ["evaluate"]


def evaluate(
    pred: CubeLike,
    ref: CubeLike,
    *,
    h_over_l: float,
    data_range: float = 1.0,
    mask: MaskLike | None = None,
    border: int = 0,
    block: int = 32,
    include_q2n: bool = True,
) -> dict[str, Any]:
    """All full-reference metrics at once, with the conventions used (JSON-serialisable).

    Parameters
    ----------
    pred, ref : array-like (band, y, x)
        Fused and reference cubes (NumPy, Dask or xarray).
    h_over_l : float
        ERGAS's fine pixel size / coarse pixel size, in (0, 1] (``1 / ratio``; see
        :func:`~dcstsf.metrics.ergas`).
    data_range, mask, border
        As in :func:`~dcstsf.metrics.psnr_per_band`.
    block : int
        UIQI and Q2n block side (pixels).
    include_q2n : bool
        ``False`` skips Q2n, whose cost grows with the square of the (padded) band count.

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
    """
    hl = check_h_over_l(h_over_l)
    dr = check_data_range(data_range)
    blk = check_block(block)
    c = prepare(pred, ref, mask=mask, border=border)
    st = band_stats(c, moments=True, angles=True)
    psnr_b = psnr_bands_from_stats(st, dr)
    rmse_b = rmse_bands_from_stats(st)
    cc_b = cc_bands_from_stats(st)
    p, r, v = materialize(c)
    ssim_b = ssim_bands(p, r, v, dr)
    total, count = uiqi_sums(p, r, v, blk)
    if count == 0:
        warn_undefined(f"uiqi: no complete {blk}x{blk} block free of invalid pixels; returning NaN.")
    glob: dict[str, float] = {
        "psnr": float(np.mean(psnr_b)),
        "sam_deg": sam_from_stats(st),
        "ergas": ergas_from_stats(st, hl),
        "ssim": band_mean(ssim_b, "ssim", warn_all=False),
        "cc": band_mean(cc_b, "cc", warn_all=st["n"] > 0),
        "rmse": rmse_from_stats(st),
        "uiqi": total / count if count else math.nan,
    }
    if include_q2n:
        qt, qc = q2n_sums(p, r, v, blk)
        if qc == 0:
            warn_undefined(f"q2n: no complete {blk}x{blk} block free of invalid pixels; returning NaN.")
        glob["q2n"] = qt / qc if qc else math.nan
    return {
        "global": glob,
        "per_band": {
            "psnr": psnr_b.tolist(),
            "rmse": rmse_b.tolist(),
            "sam_contribution": sam_contribution_from_stats(st).tolist(),
            "cc": cc_b.tolist(),
            "ssim": ssim_b.tolist(),
        },
        "conventions": {
            "ratio_h_over_l": hl,
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

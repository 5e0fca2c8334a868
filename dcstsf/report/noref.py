"""No-reference quality of a fused HS(t2) prediction: does it reproduce what the sensors observed?

On real scenes there is no fine HS(t2) truth. What there is: the observations themselves and the
observation model ``HS = D B_hs X``, ``MS = B_ms R X`` of :mod:`dcstsf.operators`. A good prediction
``F`` of the fine HS(t2) scene, degraded back through that model, should reproduce them:

``ms_t2_reproduction``
    ``B_ms R F`` against the observed MS(t2), same fine grid, same date: the most direct check (spectral
    *and* spatial, within the MS bands). PSNR, SAM, ERGAS-like, RMSE, CC, SSIM.
``hs_t1_reproduction_unchanged``
    ``D B_hs F`` against the observed HS(t1), on the coarse grid, **only on coarse pixels that did not
    change** between the dates. HS(t1) is at t1 and ``F`` at t2, so elsewhere a difference is expected
    and means nothing. A coarse pixel counts as unchanged when the relative change of its block-mean MS
    spectrum, ``|MS2 - MS1| / |MS1|`` (Euclidean norms over the MS bands, ``r x r`` block means, which
    also averages the sensor noise down), is below ``change_threshold``. Checks the full HS spectrum
    (all bands, not only what the MS bands see).
``qnr``
    The classical QNR indices (Alparone et al. 2008, :func:`dcstsf.metrics.d_lambda`,
    :func:`~dcstsf.metrics.d_s`) with HS(t1) as the low-resolution reference and MS(t2) as the
    high-resolution image. Caveats, measured on simulated cases: ``D_lambda`` compares the prediction's
    inter-band similarities with those of HS(t1), so it rewards predicting *no change* (``bicubic`` scores
    about 0 by construction, the t2 truth does not). For ``D_s`` the coarse-scale pair must be of one
    date, so it is HS(t1) with MS(t1) degraded to the HS grid (``ObservationModel.ms_to_coarse``), and
    the fine-scale pair is ``F`` with MS(t2). Pairing HS(t1) with degraded MS(t2) instead (mixing dates
    within the coarse pair) scores the truth worse than bicubic; the same-date pairing ranks them
    correctly. ``QNR = (1 - D_lambda)(1 - D_s)`` (alpha = beta = 1, each factor clamped at 0).

The truth itself (when known) is not perfect on these checks (sensor noise, the model's approximations
and, for QNR, the temporal change); the report therefore also shows the truth's scores as the reference
level.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from dcstsf import metrics as _metrics
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel, decimate

__all__ = [
    "DEFAULT_CHANGE_THRESHOLD",
    "MIN_UNCHANGED_PIXELS",
    "NO_REFERENCE_DEFINITIONS",
    "no_reference_quality",
    "qnr_block",
    "unchanged_pixels",
]

#: Relative MS change (block means, Euclidean norm over bands) below which a coarse pixel is unchanged.
#: 3 %: above the noise floor of block-averaged Sentinel-2-like data (about 1 % at 40 dB SNR, divided by
#: the ratio), below seasonal or land-cover change.
DEFAULT_CHANGE_THRESHOLD: float = 0.03
#: Fewer unchanged coarse pixels than this and the HS(t1) reproduction is not computed (NaN, with a note).
MIN_UNCHANGED_PIXELS: int = 16
# QNR block side on the fine grid when the image is large enough (Alparone et al. use 32).
_QNR_BLOCK_MAX = 32

#: One-line definitions shown in the reports and stored in ``metrics.json``.
NO_REFERENCE_DEFINITIONS: dict[str, str] = {
    "ms_t2_reproduction": (
        "The prediction F degraded by the MS sensor model (B_ms R F: MS spectral responses, then MS blur) "
        "against the observed MS(t2) on the fine grid. PSNR/RMSE/SAM/CC/SSIM as for the full-reference "
        "metrics; ERGAS with h/l = 1 (same grid). Same date, so a perfect prediction is limited only by MS "
        "noise."
    ),
    "hs_t1_reproduction_unchanged": (
        "The prediction degraded by the HS sensor model (D B_hs F: HS blur, then r x r block mean) against "
        "the observed HS(t1) on the coarse grid, only over coarse pixels whose block-mean MS spectrum "
        "changed by less than the threshold between t1 and t2 (|MS2 - MS1| / |MS1|, Euclidean norms over "
        "the MS bands). HS(t1) shows t1; elsewhere differences are expected. ERGAS with h/l = 1."
    ),
    "d_lambda": (
        "QNR spectral distortion (Alparone et al. 2008): mean |Q(F_l, F_m) - Q(H_l, H_m)| over band pairs, "
        "Q = block UIQI, H = HS(t1). 0 is ideal. Caveat: H is at t1, so D_lambda rewards predicting no "
        "change (bicubic scores about 0 by construction)."
    ),
    "d_s": (
        "QNR spatial distortion: mean |Q(F_l, M2_k) - Q(H_l, M1~_k)| over HS bands l and MS bands k, with "
        "M2 = MS(t2) on the fine grid and M1~ = MS(t1) taken to the HS grid (same date as H). 0 is ideal."
    ),
    "qnr": "QNR = (1 - D_lambda)(1 - D_s), each factor clamped at 0; 1 is ideal. Inherits both caveats.",
}


def _as_array(x: Any, name: str) -> np.ndarray:
    """(band, y, x) float32 NumPy array from a NumPy array, Dask array or DataArray."""
    import xarray as xr

    if isinstance(x, xr.DataArray):
        if set(x.dims) != {"band", "y", "x"}:
            raise DcstsfInputError(f"{name}: DataArray has dims {tuple(x.dims)}, expected ('band', 'y', 'x')")
        x = x.transpose("band", "y", "x").data
    if hasattr(x, "compute") and not isinstance(x, np.ndarray):
        x = x.compute()
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 3:
        raise DcstsfInputError(f"{name}: expected a (band, y, x) cube, got shape {a.shape}")
    return a


def qnr_block(height: int, width: int, ratio: int) -> int:
    """QNR block side on the fine grid: up to 32 pixels, a multiple of ``ratio``, at least two blocks
    across the shorter side when the image allows (so that small test scenes still have several blocks)."""
    b = min(_QNR_BLOCK_MAX, max(2 * ratio, min(height, width) // 2))
    return max(2 * ratio, (b // ratio) * ratio)


def unchanged_pixels(
    ms_t1: Any, ms_t2: Any, *, ratio: int, threshold: float = DEFAULT_CHANGE_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Coarse pixels whose MS spectrum barely changed between the dates.

    Returns ``(unchanged, relative_change)``, both on the coarse grid ``(H/r, W/r)``:
    ``relative_change = |D MS2 - D MS1| / |D MS1|`` with ``D`` the ``r x r`` block mean and ``|.|`` the
    Euclidean norm over the MS bands (NaN where undefined), ``unchanged = relative_change < threshold``.
    """
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise DcstsfInputError(f"change threshold must be a positive number (e.g. 0.03 for 3 %), got {threshold!r}")
    m1 = torch.from_numpy(_as_array(ms_t1, "ms_t1").astype(np.float64))
    m2 = torch.from_numpy(_as_array(ms_t2, "ms_t2").astype(np.float64))
    c1 = decimate(m1, ratio).numpy()
    c2 = decimate(m2, ratio).numpy()
    num = np.sqrt(np.sum((c2 - c1) ** 2, axis=0))
    den = np.sqrt(np.sum(c1 * c1, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(den > 0, num / den, np.nan)
    unchanged = np.isfinite(rel) & (rel < threshold)
    return unchanged, rel


def _full_set(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None, *, ssim: bool) -> dict[str, float]:
    """PSNR, SAM, ERGAS (h/l = 1), RMSE, CC (and SSIM) of two cubes on the same grid."""
    out = {
        "psnr": _metrics.psnr(pred, ref, mask=mask),
        "sam_deg": _metrics.sam(pred, ref, mask=mask),
        "ergas": _metrics.ergas(pred, ref, h_over_l=1.0, mask=mask),
        "rmse": _metrics.rmse(pred, ref, mask=mask),
        "cc": _metrics.cc(pred, ref, mask=mask),
    }
    if ssim:
        out["ssim"] = _metrics.ssim(pred, ref, mask=mask)
    return {k: float(v) for k, v in out.items()}


def no_reference_quality(
    pred: Any,
    hs_t1: Any,
    ms_t1: Any,
    ms_t2: Any,
    *,
    model: ObservationModel,
    mask: np.ndarray | None = None,
    change_threshold: float = DEFAULT_CHANGE_THRESHOLD,
    block: int | None = None,
    unchanged: np.ndarray | None = None,
) -> dict[str, Any]:
    """No-reference quality of a prediction ``pred`` (fine HS(t2)) against the observed inputs.

    Parameters
    ----------
    pred : (n_hs, H, W)
        The prediction on the fine grid (NumPy, Dask or DataArray; NaN = nodata).
    hs_t1 : (n_hs, H/r, W/r);  ms_t1, ms_t2 : (n_ms, H, W)
        The observed inputs, on the grids the prediction was made from (see
        :func:`dcstsf.engine.validate_inputs`, which crops them to the common footprint).
    model
        The observation model used to degrade ``pred`` (sensors, MS bands, ratio).
    mask
        Optional boolean ``(H, W)``, True = valid; used by the two reproduction checks (a coarse pixel
        needs all its fine pixels valid). QNR uses every block free of NaN.
    change_threshold
        See :func:`unchanged_pixels`.
    block
        QNR block side on the fine grid (default :func:`qnr_block`); the coarse grid uses ``block / r``.
    unchanged
        Precomputed :func:`unchanged_pixels` result (saves recomputing it for several predictions).

    Returns
    -------
    dict
        ``{"ms_t2_reproduction": {psnr, sam_deg, ergas, rmse, cc, ssim},
        "hs_t1_reproduction_unchanged": {psnr, sam_deg, ergas, rmse, cc, pixels, fraction,
        change_threshold}, "qnr": {d_lambda, d_s, qnr, block, block_lowres}}`` (JSON-serialisable).
        See the module docstring and :data:`NO_REFERENCE_DEFINITIONS`.
    """
    r = int(model.ratio)
    f = _as_array(pred, "pred")
    h = _as_array(hs_t1, "hs_t1")
    m1 = _as_array(ms_t1, "ms_t1")
    m2 = _as_array(ms_t2, "ms_t2")
    nb, ny, nx = f.shape
    if nb != model.n_hs or h.shape[0] != model.n_hs:
        raise DcstsfInputError(
            f"the prediction has {nb} bands and HS(t1) {h.shape[0]}, but the HS sensor {model.hs_sensor.name} "
            f"has {model.n_hs}; give the observation model the inputs were fused with"
        )
    if m1.shape[0] != model.n_ms or m2.shape[0] != model.n_ms:
        raise DcstsfInputError(
            f"MS(t1)/MS(t2) have {m1.shape[0]}/{m2.shape[0]} bands but the model declares {model.n_ms} "
            f"({', '.join(model.ms_sensor.band_names)})"
        )
    if m1.shape[1:] != (ny, nx) or m2.shape[1:] != (ny, nx) or h.shape[1:] != (ny // r, nx // r) or ny % r or nx % r:
        raise DcstsfInputError(
            f"grids do not match: prediction {ny}x{nx}, MS(t1) {m1.shape[1]}x{m1.shape[2]}, MS(t2) "
            f"{m2.shape[1]}x{m2.shape[2]}, HS(t1) {h.shape[1]}x{h.shape[2]} at ratio {r}; the MS grids must equal "
            "the prediction's and the HS grid must be ratio times coarser"
        )
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (ny, nx):
            raise DcstsfInputError(f"mask is {mask.shape[0]}x{mask.shape[1]} but the prediction is {ny}x{nx}")

    ft = torch.from_numpy(f)
    with torch.no_grad():
        ms_hat = model.degrade_ms(ft).numpy()
        hs_hat = model.degrade_hs(ft).numpy()
        ms1_low = model.ms_to_coarse(torch.from_numpy(m1)).numpy()

    ms_rep = _full_set(ms_hat, m2, mask, ssim=True)

    if unchanged is None:
        unchanged, _ = unchanged_pixels(m1, m2, ratio=r, threshold=change_threshold)
    use = np.asarray(unchanged, dtype=bool).copy()
    if mask is not None:
        use &= mask.reshape(ny // r, r, nx // r, r).all(axis=(1, 3))
    n_use = int(use.sum())
    hs_rep: dict[str, Any]
    if n_use >= MIN_UNCHANGED_PIXELS:
        hs_rep = _full_set(hs_hat, h, use, ssim=False)
    else:
        hs_rep = {k: math.nan for k in ("psnr", "sam_deg", "ergas", "rmse", "cc")}
        hs_rep["note"] = (
            f"only {n_use} unchanged coarse pixels (fewer than {MIN_UNCHANGED_PIXELS}); not computed. "
            "Raise the change threshold to use more pixels"
        )
    hs_rep.update({"pixels": n_use, "fraction": n_use / use.size, "change_threshold": float(change_threshold)})

    blk = qnr_block(ny, nx, r) if block is None else int(block)
    blo = max(2, blk // r)
    dl = _metrics.d_lambda(f, h, block=blk, block_lowres=blo)
    ds = _metrics.d_s(f, h, m2, ms1_low, block=blk, block_lowres=blo)
    q = max(0.0, 1.0 - dl) * max(0.0, 1.0 - ds) if math.isfinite(dl) and math.isfinite(ds) else math.nan
    return {
        "ms_t2_reproduction": ms_rep,
        "hs_t1_reproduction_unchanged": hs_rep,
        "qnr": {"d_lambda": float(dl), "d_s": float(ds), "qnr": float(q), "block": blk, "block_lowres": blo},
    }

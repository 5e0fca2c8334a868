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

Every check is a sum over pixels or blocks, so a prediction is checked tile by tile
(:func:`no_reference_tile`, :func:`inputs_tile`, added up and finished by :func:`finish_no_reference`);
:func:`no_reference_quality` is the same computation on one tile holding the whole image. Bands given
as ``bands`` (the sensor's good bands in a report) are the only ones checked and used in QNR.

The truth itself (when known) is not perfect on these checks (sensor noise, the model's approximations
and, for QNR, the temporal change); the report therefore also shows the truth's scores as the reference
level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dcstsf.errors import DcstsfInputError
from dcstsf.metrics import band_stats as _bs
from dcstsf.metrics.noref import q_matrix_grid_sums, qnr_from_q_matrices
from dcstsf.metrics.partials import BlockGrid, owned_blocks
from dcstsf.metrics.reference import (
    cc_bands_from_stats,
    ergas_from_stats,
    psnr_bands_from_stats,
    rmse_from_stats,
    sam_from_stats,
)
from dcstsf.metrics.tiles import grown, shifted
from dcstsf.metrics.undefined import band_mean
from dcstsf.metrics.windowed import ssim_sums
from dcstsf.operators import ObservationModel, Psf, blur, blur_radius, decimate

__all__ = [
    "DEFAULT_CHANGE_THRESHOLD",
    "MIN_UNCHANGED_PIXELS",
    "NO_REFERENCE_DEFINITIONS",
    "InputSums",
    "NoReferenceGrids",
    "NoReferenceSums",
    "NoReferenceTile",
    "check_change_threshold",
    "coarse_change",
    "finish_no_reference",
    "inputs_tile",
    "no_reference_halo",
    "no_reference_quality",
    "no_reference_tile",
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
# SSIM's half window.
_SSIM_RADIUS = 5

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


def coarse_change(ms_t1: np.ndarray, ms_t2: np.ndarray, ratio: int) -> np.ndarray:
    """``|D MS2 - D MS1| / |D MS1|`` per coarse pixel (``D`` the ``r x r`` block mean, Euclidean norms over
    the MS bands; NaN where undefined) of two fine MS cubes whose sides are multiples of ``ratio``."""
    c1 = decimate(torch.from_numpy(np.asarray(ms_t1, np.float64)), ratio).numpy()
    c2 = decimate(torch.from_numpy(np.asarray(ms_t2, np.float64)), ratio).numpy()
    num = np.sqrt(np.sum((c2 - c1) ** 2, axis=0))
    den = np.sqrt(np.sum(c1 * c1, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def check_change_threshold(threshold: float) -> float:
    """``threshold`` as a float, or an error when it is not a positive number."""
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise DcstsfInputError(f"change threshold must be a positive number (e.g. 0.03 for 3 %), got {threshold!r}")
    return float(threshold)


def unchanged_pixels(
    ms_t1: Any, ms_t2: Any, *, ratio: int, threshold: float = DEFAULT_CHANGE_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Coarse pixels whose MS spectrum barely changed between the dates.

    Returns ``(unchanged, relative_change)``, both on the coarse grid ``(H/r, W/r)``:
    ``relative_change = |D MS2 - D MS1| / |D MS1|`` with ``D`` the ``r x r`` block mean and ``|.|`` the
    Euclidean norm over the MS bands (NaN where undefined), ``unchanged = relative_change < threshold``.
    """
    t = check_change_threshold(threshold)
    rel = coarse_change(_as_array(ms_t1, "ms_t1"), _as_array(ms_t2, "ms_t2"), ratio)
    unchanged = np.isfinite(rel) & (rel < t)
    return unchanged, rel


# ------------------------------------------------------------------------------------ tile-wise sums
@dataclass(frozen=True)
class NoReferenceGrids:
    """The fixed geometry of the no-reference checks of one image.

    Attributes
    ----------
    ratio
        Coarse/fine resolution ratio.
    qnr_fine, qnr_coarse
        QNR blocks on the fine grid (``block`` fine pixels) and on the coarse grid (``block / ratio``).
    bands
        Indices of the HS bands checked (the others are left out of every check and of QNR).
    """

    ratio: int
    qnr_fine: BlockGrid
    qnr_coarse: BlockGrid
    bands: np.ndarray

    @classmethod
    def of(cls, height: int, width: int, ratio: int, bands: np.ndarray, block: int | None = None) -> NoReferenceGrids:
        """The grids of an image of ``height x width`` fine pixels (``block``: QNR block, default
        :func:`qnr_block`)."""
        blk = qnr_block(height, width, ratio) if block is None else int(block)
        blo = max(2, blk // ratio)
        return cls(ratio, BlockGrid.of(height, width, blk), BlockGrid.of(height // ratio, width // ratio, blo),
                   np.asarray(bands))


def no_reference_halo(model: ObservationModel, grids: NoReferenceGrids) -> int:
    """Fine pixels a tile needs around its core for every no-reference check: the MS blur and SSIM's
    window, the HS blur (to whole coarse pixels), and the QNR blocks that start in the core."""
    r = grids.ratio

    def up(n: int) -> int:
        return -(-n // r) * r

    return max(
        blur_radius(model.ms_sigma) + _SSIM_RADIUS,
        up(blur_radius(model.hs_psf)),
        grids.qnr_fine.by - 1,
        up(grids.qnr_coarse.by * r - r + blur_radius(model.ms_to_coarse_psf)),
    )


@dataclass
class NoReferenceSums:
    """Sums of the no-reference checks of one prediction over a part of the image."""

    ms: dict[str, Any]
    ms_ssim_sum: np.ndarray
    ms_ssim_n: int
    hs: dict[str, Any]
    hs_used: int
    hs_pixels: int
    qf: np.ndarray
    qf_n: int
    qh: np.ndarray
    qh_n: int

    def merge(self, o: NoReferenceSums) -> NoReferenceSums:
        """The sums of both parts."""
        return NoReferenceSums(
            ms=_bs.merge_stats(dict(self.ms), o.ms), ms_ssim_sum=self.ms_ssim_sum + o.ms_ssim_sum,
            ms_ssim_n=self.ms_ssim_n + o.ms_ssim_n, hs=_bs.merge_stats(dict(self.hs), o.hs),
            hs_used=self.hs_used + o.hs_used, hs_pixels=self.hs_pixels + o.hs_pixels,
            qf=self.qf + o.qf, qf_n=self.qf_n + o.qf_n, qh=self.qh + o.qh, qh_n=self.qh_n + o.qh_n,
        )


@dataclass
class InputSums:
    """QNR's coarse-scale Q matrices (from the inputs alone) over a part of the image."""

    ql: np.ndarray
    ql_n: int
    qm: np.ndarray
    qm_n: int

    def merge(self, o: InputSums) -> InputSums:
        """The sums of both parts."""
        return InputSums(self.ql + o.ql, self.ql_n + o.ql_n, self.qm + o.qm, self.qm_n + o.qm_n)


@dataclass(frozen=True)
class NoReferenceTile:
    """One tile's sums and the degraded prediction on its core (for the error maps).

    ``ms_hat`` is ``B_ms R F`` ``(n_ms, h, w)`` on the core, ``hs_hat`` is ``D B_hs F`` ``(bands, h/r, w/r)``
    of the checked bands on the core's coarse pixels.
    """

    sums: NoReferenceSums
    ms_hat: np.ndarray
    hs_hat: np.ndarray


def _core(core: tuple[int, int, int, int], origin: tuple[int, int], scale: int = 1) -> tuple[slice, slice]:
    y0, y1, x0, x1 = core
    oy, ox = origin
    return slice((y0 - oy) // scale, (y1 - oy) // scale), slice((x0 - ox) // scale, (x1 - ox) // scale)


def _finite(*cubes: np.ndarray) -> np.ndarray:
    v = np.isfinite(cubes[0]).all(axis=0)
    for c in cubes[1:]:
        v &= np.isfinite(c).all(axis=0)
    return v


def _q_sums(x: np.ndarray, y: np.ndarray, v: np.ndarray, core: tuple[int, int, int, int], origin: tuple[int, int],
            grid: BlockGrid) -> tuple[np.ndarray, int]:
    own = owned_blocks(core, origin, grid)
    if own is None:
        return np.zeros((x.shape[0], y.shape[0])), 0
    return q_matrix_grid_sums(x[:, own[0], own[1]], y[:, own[0], own[1]], v[own], grid.by, grid.bx)


def _up(n: int, r: int) -> int:
    return -(-n // r) * r


def _coarse(sl: tuple[slice, slice], r: int) -> tuple[slice, slice]:
    return slice(sl[0].start // r, sl[0].stop // r), slice(sl[1].start // r, sl[1].stop // r)


def no_reference_tile(
    f: np.ndarray,
    h1: np.ndarray,
    m2: np.ndarray,
    *,
    model: ObservationModel,
    grids: NoReferenceGrids,
    core: tuple[int, int, int, int],
    origin: tuple[int, int],
    mask: np.ndarray | None,
    unchanged: np.ndarray,
) -> NoReferenceTile:
    """The no-reference sums of one tile of a prediction.

    ``f`` ``(n_hs, h, w)``, ``m2`` ``(n_ms, h, w)``, ``mask`` ``(h, w)`` (True = valid) are the tile's window
    on the fine grid, ``h1`` ``(n_hs, h/r, w/r)`` and ``unchanged`` ``(h/r, w/r)`` on the coarse grid; the
    window starts at fine pixel ``origin`` (a multiple of the ratio) and reaches
    :func:`no_reference_halo` pixels past ``core`` where the image goes on. The degradations are computed
    on the part of the window the core's checks need (their blur and SSIM's window around the core).
    """
    r, bands = grids.ratio, grids.bands
    fc = _core(core, origin)
    cc = _core(core, origin, r)
    shape = f.shape[1:]
    # B_ms R F on the core, its blur and SSIM's half window
    sub = grown(fc, blur_radius(model.ms_sigma) + _SSIM_RADIUS, shape)
    fs = f[:, sub[0], sub[1]]
    # A band the MS responses do not use (a bad band) must not bring its NaN into B_ms R F.
    unused = ~np.any(model.srf != 0, axis=0)
    if unused.any():
        fs = np.where(unused[:, None, None], np.float32(0), fs)
    # D B_hs F on the core's coarse pixels (whole coarse pixels of blur around them)
    sub_h = grown(fc, _up(blur_radius(model.hs_psf), r), shape)
    with torch.no_grad():
        ms_hat = model.degrade_ms(torch.from_numpy(np.ascontiguousarray(fs, np.float32))).numpy()
        # model.degrade_hs with each checked band's own PSF
        psf = Psf(np.asarray(model.hs_sigma)[bands], model.hs_shift)
        fh = np.ascontiguousarray(f[bands][:, sub_h[0], sub_h[1]], np.float32)
        hs_hat = decimate(blur(torch.from_numpy(fh), psf), r).numpy()
    m2s = m2[:, sub[0], sub[1]]
    v_ms = _finite(ms_hat, m2s)
    if mask is not None:
        v_ms &= mask[sub]
    fcs = shifted(fc, sub)
    ms = _bs.numpy_stats(ms_hat[:, fcs[0], fcs[1]], m2s[:, fcs[0], fcs[1]], v_ms[fcs], moments=True, angles=True)
    ssim_sum, ssim_n = ssim_sums(ms_hat, m2s, v_ms, 1.0, core=fcs)

    use = np.asarray(unchanged, bool)[cc]
    if mask is not None:
        mc = mask[fc]
        use = use & mc.reshape(mc.shape[0] // r, r, mc.shape[1] // r, r).all(axis=(1, 3))
    h1b = h1[bands][:, cc[0], cc[1]]
    hcs = _coarse(shifted(fc, sub_h), r)
    hs_core = hs_hat[:, hcs[0], hcs[1]]
    hs = _bs.numpy_stats(hs_core, h1b, use & _finite(hs_core, h1b), moments=True, angles=True)
    fb = f[bands]
    qf, qf_n = _q_sums(fb, fb, _finite(fb), core, origin, grids.qnr_fine)
    qh, qh_n = _q_sums(fb, m2, _finite(fb, m2), core, origin, grids.qnr_fine)
    sums = NoReferenceSums(ms=ms, ms_ssim_sum=ssim_sum, ms_ssim_n=ssim_n, hs=hs, hs_used=int(use.sum()),
                           hs_pixels=int(use.size), qf=qf, qf_n=qf_n, qh=qh, qh_n=qh_n)
    return NoReferenceTile(sums, ms_hat[:, fcs[0], fcs[1]], hs_core)


def inputs_tile(
    h1: np.ndarray,
    m1: np.ndarray,
    *,
    model: ObservationModel,
    grids: NoReferenceGrids,
    core: tuple[int, int, int, int],
    origin: tuple[int, int],
) -> InputSums:
    """QNR's coarse-scale sums of one tile: Q(H, H) and Q(H, M1~) over the coarse blocks starting in its core
    (``h1`` coarse and ``m1`` fine windows as in :func:`no_reference_tile`)."""
    r = grids.ratio
    h1b = h1[grids.bands]
    y0, y1, x0, x1 = core
    ccore = (y0 // r, -(-y1 // r), x0 // r, -(-x1 // r))
    corigin = (origin[0] // r, origin[1] // r)
    own = owned_blocks(ccore, corigin, grids.qnr_coarse)
    if own is None:
        return InputSums(np.zeros((h1b.shape[0], h1b.shape[0])), 0, np.zeros((h1b.shape[0], m1.shape[0])), 0)
    ql, ql_n = q_matrix_grid_sums(h1b[:, own[0], own[1]], h1b[:, own[0], own[1]], _finite(h1b)[own],
                                  grids.qnr_coarse.by, grids.qnr_coarse.bx)
    # M1~ on the owned blocks only: their fine pixels and whole coarse pixels of blur around them
    fine = (slice(own[0].start * r, own[0].stop * r), slice(own[1].start * r, own[1].stop * r))
    sub = grown(fine, _up(blur_radius(model.ms_to_coarse_psf), r), m1.shape[1:])
    with torch.no_grad():
        ml = model.ms_to_coarse(torch.from_numpy(np.ascontiguousarray(m1[:, sub[0], sub[1]], np.float32))).numpy()
    mo = _coarse(shifted(fine, sub), r)
    mlo, ho = ml[:, mo[0], mo[1]], h1b[:, own[0], own[1]]
    qm, qm_n = q_matrix_grid_sums(ho, mlo, _finite(ho, mlo), grids.qnr_coarse.by, grids.qnr_coarse.bx)
    return InputSums(ql, ql_n, qm, qm_n)


def _full_set(stats: dict[str, Any], ssim: float | None) -> dict[str, float]:
    """PSNR, SAM, ERGAS (h/l = 1), RMSE, CC (and SSIM) from merged band sums."""
    st = _bs.finalize_stats(stats)
    out = {
        "psnr": float(np.mean(psnr_bands_from_stats(st, 1.0))),
        "sam_deg": sam_from_stats(st),
        "ergas": ergas_from_stats(st, 1.0),
        "rmse": rmse_from_stats(st),
        "cc": band_mean(cc_bands_from_stats(st), "cc", warn_all=st["n"] > 0),
    }
    if ssim is not None:
        out["ssim"] = ssim
    return {k: float(v) for k, v in out.items()}


def finish_no_reference(
    sums: NoReferenceSums, inputs: InputSums, *, grids: NoReferenceGrids, change_threshold: float
) -> dict[str, Any]:
    """The no-reference result (as :func:`no_reference_quality` returns it) from the sums over the image."""
    n_ms = sums.ms_ssim_sum.shape[0]
    ssim_b = sums.ms_ssim_sum / sums.ms_ssim_n if sums.ms_ssim_n else np.full(n_ms, np.nan)
    ms_rep: dict[str, Any] = _full_set(sums.ms, band_mean(ssim_b, "ssim", warn_all=False))
    ms_st = _bs.finalize_stats(sums.ms)
    ms_rep["rmse_per_band"] = (np.sqrt(ms_st["sse"] / ms_st["n"]) if ms_st["n"] else np.full(n_ms, np.nan)).tolist()
    hs_rep: dict[str, Any]
    if sums.hs_used >= MIN_UNCHANGED_PIXELS:
        hs_rep = _full_set(sums.hs, None)
    else:
        hs_rep = {k: math.nan for k in ("psnr", "sam_deg", "ergas", "rmse", "cc")}
        hs_rep["note"] = (
            f"only {sums.hs_used} unchanged coarse pixels (fewer than {MIN_UNCHANGED_PIXELS}); not computed. "
            "Raise the change threshold to use more pixels"
        )
    hs_rep.update({"pixels": sums.hs_used, "fraction": sums.hs_used / max(1, sums.hs_pixels),
                   "change_threshold": float(change_threshold)})

    def avg(total: np.ndarray, n: int) -> np.ndarray:
        return total / n if n else np.full(total.shape, np.nan)

    dl, ds, q = qnr_from_q_matrices(avg(sums.qf, sums.qf_n), avg(inputs.ql, inputs.ql_n),
                                    avg(sums.qh, sums.qh_n), avg(inputs.qm, inputs.qm_n))
    return {
        "ms_t2_reproduction": ms_rep,
        "hs_t1_reproduction_unchanged": hs_rep,
        "qnr": {"d_lambda": float(dl), "d_s": float(ds), "qnr": float(q), "block": grids.qnr_fine.by,
                "block_lowres": grids.qnr_coarse.by},
    }


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
    bands: Sequence[int] | np.ndarray | None = None,
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
    bands
        Indices of the HS bands to check (default: all); the others are left out of the HS(t1) check and
        of QNR (the MS(t2) check always uses the whole spectrum through the MS responses).

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
    if unchanged is None:
        unchanged, _ = unchanged_pixels(m1, m2, ratio=r, threshold=change_threshold)
    idx = np.arange(nb) if bands is None else np.asarray(bands, dtype=np.intp)
    grids = NoReferenceGrids.of(ny, nx, r, idx, block)
    whole = (0, ny, 0, nx)
    tile = no_reference_tile(f, h, m2, model=model, grids=grids, core=whole, origin=(0, 0), mask=mask,
                             unchanged=unchanged)
    coarse = inputs_tile(h, m1, model=model, grids=grids, core=whole, origin=(0, 0))
    return finish_no_reference(tile.sums, coarse, grids=grids, change_threshold=change_threshold)

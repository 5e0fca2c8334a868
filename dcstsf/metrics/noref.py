"""No-reference quality of the QNR family (Alparone et al. 2008): D_lambda, D_s and QNR.

``Q`` below is the block-averaged UIQI (:mod:`dcstsf.metrics.blocks`) between two single-band images.
The fine and coarse grids differ by the resolution ratio ``ratio = H/h`` (3 for 10 m from 30 m); the
coarse-grid blocks default to the same ground footprint as the fine-grid ones.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dcstsf.errors import DcstsfInputError
from dcstsf.metrics.blocks import batched_cross, block_grid, block_row, center, q_combine
from dcstsf.metrics.inputs import CubeLike, check_block, check_exponent, numpy_cube
from dcstsf.metrics.undefined import warn_undefined

__all__ = ["d_lambda", "d_s", "q_matrix_grid_sums", "qnr", "qnr_from_q_matrices"]


def q_matrix_grid_sums(
    x: NDArray[Any], y: NDArray[Any], v: NDArray[np.bool_], by: int, bx: int
) -> tuple[NDArray[np.float64], int]:
    """Sum over the whole ``by x bx`` blocks of the arrays (anchored at their corner) free of invalid pixels
    of the UIQI of every band of x against every band of y, ``(Lx, Ly)``, and the number of blocks."""
    lx, ny, nx = x.shape
    ly = y.shape[0]
    nby, nbx = ny // by, nx // bx
    total = np.zeros((lx, ly))
    count = 0
    for i in range(nby):
        vb = block_row(v, i, by, bx, nbx).all(axis=-1)
        if not vb.any():
            continue
        xb = block_row(x, i, by, bx, nbx)[vb].astype(np.float64)  # (nblk, lx, P)
        yb = block_row(y, i, by, bx, nbx)[vb].astype(np.float64)
        mx, xc = center(xb)
        my, yc = center(yb)
        npx = xb.shape[-1]
        cov = batched_cross(xc, yc) / npx  # (nblk, lx, ly)
        vx = (xc * xc).mean(-1)
        vy = (yc * yc).mean(-1)
        q = q_combine(
            mx[:, :, None] * my[:, None, :],
            mx[:, :, None] ** 2 + my[:, None, :] ** 2,
            cov,
            vx[:, :, None] + vy[:, None, :],
        )
        total += q.sum(axis=0)
        count += q.shape[0]
    return total, count


def _q_matrix(x: NDArray[Any], y: NDArray[Any], v: NDArray[np.bool_], block: int) -> NDArray[np.float64]:
    """UIQI of every band of x against every band of y, averaged over valid blocks: (Lx, Ly)."""
    _, ny, nx = x.shape
    by, bx, _, _ = block_grid(ny, nx, block)
    total, count = q_matrix_grid_sums(x, y, v, by, bx)
    if count == 0:
        return np.full((x.shape[0], y.shape[0]), np.nan)
    return total / count


def qnr_from_q_matrices(
    qf: NDArray[np.float64], ql: NDArray[np.float64], qh: NDArray[np.float64], qm: NDArray[np.float64],
    *, p: float = 1, q: float = 1,
) -> tuple[float, float, float]:
    """``(D_lambda, D_s, QNR)`` (alpha = beta = 1) from block-averaged Q matrices: ``qf`` = Q(F, F) and
    ``ql`` = Q(H, H) for D_lambda, ``qh`` = Q(F, M) and ``qm`` = Q(H, M~) for D_s (NaN where no block)."""
    off = ~np.eye(qf.shape[0], dtype=bool)
    dl = math.nan if np.isnan(qf).all() or np.isnan(ql).all() else float(
        np.mean(np.abs(qf - ql)[off] ** p) ** (1.0 / p))
    ds = math.nan if np.isnan(qh).all() or np.isnan(qm).all() else float(np.mean(np.abs(qh - qm) ** q) ** (1.0 / q))
    qnr_v = max(0.0, 1.0 - dl) * max(0.0, 1.0 - ds) if math.isfinite(dl) and math.isfinite(ds) else math.nan
    return dl, ds, qnr_v


def _resolution_ratio(hi: NDArray[Any], lo: NDArray[Any], hi_name: str, lo_name: str) -> float:
    """``ratio = H/h``, the same in y and x and >= 1, or an error naming both grids."""
    _, ny, nx = hi.shape
    _, my, mx = lo.shape
    ry, rx = ny / my, nx / mx
    if not math.isclose(ry, rx, rel_tol=1e-9) or ry < 1:
        raise DcstsfInputError(
            f"{hi_name} {ny}x{nx} and {lo_name} {my}x{mx} must differ by one resolution ratio >= 1 in y and x "
            f"(got {ry:.6g} and {rx:.6g}); crop both to the same footprint."
        )
    return ry


def _lowres_block(block: int, ratio: float, block_lowres: int | None) -> int:
    if block_lowres is not None:
        return check_block(block_lowres, "block_lowres")
    # Same ground footprint at both scales (block / ratio, at least 2 pixels).
    return max(2, int(round(block / ratio)))


def _valid_of(*cubes: NDArray[Any]) -> NDArray[np.bool_]:
    v = np.isfinite(cubes[0]).all(axis=0)
    for c in cubes[1:]:
        v &= np.isfinite(c).all(axis=0)
    return v


def d_lambda(
    fused: CubeLike, hs_lowres: CubeLike, *, p: float = 1, block: int = 32, block_lowres: int | None = None
) -> float:
    """Spectral distortion index D_lambda of QNR (Alparone et al. 2008).

    ``D_lambda = ( 1/(L(L-1)) sum_{l != r} |Q(F_l, F_r) - Q(H_l, H_r)|^p )^(1/p)``

    where ``F`` is the fused cube, ``H`` the low-resolution hyperspectral input, ``L`` the number of bands
    and ``Q`` the block-averaged UIQI (as in :func:`~dcstsf.metrics.uiqi`) between two bands of the same
    image.  The inter-band similarities of the fused product should equal those of the original data; 0
    is ideal.

    Parameters
    ----------
    fused : (L, H, W) array-like
    hs_lowres : (L, h, w) array-like
        Same footprint; ``H/h == W/w`` (the resolution ratio, e.g. 3).
    p : float
        Exponent (1 in Alparone et al.).
    block : int
        UIQI block side on the fused grid.
    block_lowres : int, optional
        UIQI block side on the low-resolution grid.  Default: ``max(2, round(block / ratio))``, i.e. the
        same ground footprint (exactly so when ``block`` is a multiple of the ratio).

    Notes
    -----
    Pixels with a non-finite value in any band are dropped with their blocks, per image.  Computed in
    NumPy (Dask inputs are materialised); cost O(L^2) per pixel.
    """
    pe = check_exponent(p, "p")
    blk = check_block(block)
    f = numpy_cube(fused, "fused")
    h = numpy_cube(hs_lowres, "hs_lowres")
    if f.shape[0] != h.shape[0]:
        raise DcstsfInputError(f"fused has {f.shape[0]} bands but hs_lowres has {h.shape[0]}; they must match.")
    if f.shape[0] < 2:
        raise DcstsfInputError("d_lambda needs at least 2 bands (it compares band pairs).")
    ratio = _resolution_ratio(f, h, "fused", "hs_lowres")
    blo = _lowres_block(blk, ratio, block_lowres)
    qf = _q_matrix(f, f, _valid_of(f), blk)
    ql = _q_matrix(h, h, _valid_of(h), blo)
    if np.isnan(qf).all() or np.isnan(ql).all():
        warn_undefined("d_lambda: no complete block free of invalid pixels; returning NaN.")
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
    qe = check_exponent(q, "q")
    blk = check_block(block)
    f = numpy_cube(fused, "fused")
    h = numpy_cube(hs_lowres, "hs_lowres")
    m = numpy_cube(ms, "ms")
    ml = numpy_cube(ms_lowres, "ms_lowres")
    if f.shape[0] != h.shape[0]:
        raise DcstsfInputError(f"fused has {f.shape[0]} bands but hs_lowres has {h.shape[0]}; they must match.")
    if m.shape[0] != ml.shape[0]:
        raise DcstsfInputError(f"ms has {m.shape[0]} bands but ms_lowres has {ml.shape[0]}; they must match.")
    if m.shape[1:] != f.shape[1:]:
        raise DcstsfInputError(f"ms grid {m.shape[1:]} differs from the fused grid {f.shape[1:]}.")
    if ml.shape[1:] != h.shape[1:]:
        raise DcstsfInputError(f"ms_lowres grid {ml.shape[1:]} differs from the hs_lowres grid {h.shape[1:]}.")
    ratio = _resolution_ratio(f, h, "fused", "hs_lowres")
    blo = _lowres_block(blk, ratio, block_lowres)
    qh = _q_matrix(f, m, _valid_of(f, m), blk)
    ql = _q_matrix(h, ml, _valid_of(h, ml), blo)
    if np.isnan(qh).all() or np.isnan(ql).all():
        warn_undefined("d_s: no complete block free of invalid pixels; returning NaN.")
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
    a = check_exponent(alpha, "alpha")
    b = check_exponent(beta, "beta")
    dl = d_lambda(fused, hs_lowres, p=p, block=block, block_lowres=block_lowres)
    ds = d_s(fused, hs_lowres, ms, ms_lowres, q=q, block=block, block_lowres=block_lowres)
    return float(max(0.0, 1.0 - dl) ** a * max(0.0, 1.0 - ds) ** b)

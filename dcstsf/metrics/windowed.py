"""Windowed and block metrics: SSIM (Gaussian window), UIQI and its hypercomplex extension Q2^n.

These need spatial neighbourhoods. The public functions compute them in NumPy (Dask inputs are
materialised); the ``*_sums`` functions give the partial sums of one tile of an image, which
:func:`dcstsf.metrics.evaluate` adds up tile by tile for Dask inputs (:mod:`dcstsf.metrics.tiles`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from dcstsf.metrics.blocks import batched_cross, block_grid, block_row, center, q_combine
from dcstsf.metrics.hypercomplex import sign_table
from dcstsf.metrics.inputs import CubeLike, MaskLike, check_block, check_data_range, materialize, prepare
from dcstsf.metrics.undefined import band_mean, warn_undefined

__all__ = [
    "SSIM_HALO",
    "q2n",
    "q2n_grid_sums",
    "q2n_sums",
    "ssim",
    "ssim_bands",
    "ssim_sums",
    "uiqi",
    "uiqi_grid_sums",
    "uiqi_sums",
]

# SSIM constants of Wang et al. (2004): 11x11 Gaussian window, sigma 1.5.
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # half width of the 11x11 window
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


# ----------------------------------------------------------------------------------------------- SSIM
#: Pixels a tile needs around the pixels it scores for SSIM (the half width of the window).
SSIM_HALO = _SSIM_RADIUS


def ssim_sums(
    p: NDArray[Any],
    r: NDArray[Any],
    v: NDArray[np.bool_],
    data_range: float,
    *,
    core: tuple[slice, slice] | None = None,
) -> tuple[NDArray[np.float64], int]:
    """Per-band sums of the SSIM map over the scored pixels of ``core``, and their number.

    A pixel is scored when its whole 11x11 window lies inside the array and on valid data (``v``).
    Outside the array counts as invalid, as Wang's 'valid' filtering does. A tile of a larger image
    passes its window grown by :data:`SSIM_HALO` pixels where it has neighbours, and ``core`` (the
    pixels it owns): a core pixel's window then lies inside the tile's window, so its SSIM equals the
    whole image's, and where the window stops at the image edge the edge rule is the whole image's too.
    """
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    size = 2 * _SSIM_RADIUS + 1
    core = core if core is not None else (slice(None), slice(None))
    touched = ndimage.maximum_filter((~v).astype(np.uint8), size=size, mode="constant", cval=1)
    ok = (touched == 0)[core]
    nb = p.shape[0]
    count = int(ok.sum())
    sums = np.zeros(nb)
    if count == 0:
        return sums, 0
    # truncate chosen so that the kernel radius is exactly 5 (11x11 window).
    trunc = (_SSIM_RADIUS + 0.25) / _SSIM_SIGMA

    def filt(a: NDArray[np.float64]) -> NDArray[np.float64]:
        return ndimage.gaussian_filter(a, sigma=_SSIM_SIGMA, truncate=trunc, mode="reflect")[core]

    for b in range(nb):
        # NaN would spread through the filter; invalid pixels are zeroed and their windows dropped above.
        x = np.where(v, p[b], 0.0).astype(np.float64)
        y = np.where(v, r[b], 0.0).astype(np.float64)
        mx, my = filt(x), filt(y)
        sxx = filt(x * x) - mx * mx
        syy = filt(y * y) - my * my
        sxy = filt(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        sums[b] = s[ok].sum()
    return sums, count


def ssim_bands(
    p: NDArray[Any], r: NDArray[Any], v: NDArray[np.bool_], data_range: float
) -> NDArray[np.float64]:
    """Per-band SSIM of cropped NumPy cubes ``p``, ``r`` over the pixels whose window is valid in ``v``."""
    sums, count = ssim_sums(p, r, v, data_range)
    if count == 0:
        warn_undefined(f"ssim: no pixel has a fully valid {2 * _SSIM_RADIUS + 1}x{2 * _SSIM_RADIUS + 1} window; "
                       "returning NaN.")
        return np.full(p.shape[0], np.nan)
    return sums / count


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
    dr = check_data_range(data_range)
    p, r, v = materialize(prepare(pred, ref, mask=mask, border=border))
    return band_mean(ssim_bands(p, r, v, dr), "ssim", warn_all=False)


# ----------------------------------------------------------------------------------------------- UIQI
def uiqi_grid_sums(
    p: NDArray[Any], r: NDArray[Any], v: NDArray[np.bool_], by: int, bx: int
) -> tuple[float, int]:
    """Sum of block Q over the whole ``by x bx`` blocks of the arrays (anchored at their corner) that are
    free of invalid pixels, over bands, and their count."""
    _, ny, nx = p.shape
    nby, nbx = ny // by, nx // bx
    total, count = 0.0, 0
    for i in range(nby):
        vb = block_row(v, i, by, bx, nbx).all(axis=-1)  # (nbx,)
        if not vb.any():
            continue
        # Only blocks free of invalid pixels are kept, so no NaN reaches the statistics.
        xb = block_row(p, i, by, bx, nbx)[vb].astype(np.float64)  # (nblk, band, P)
        yb = block_row(r, i, by, bx, nbx)[vb].astype(np.float64)
        mx, xc = center(xb)
        my, yc = center(yb)
        q = q_combine(mx * my, mx * mx + my * my, (xc * yc).mean(-1), (xc * xc).mean(-1) + (yc * yc).mean(-1))
        total += float(q.sum())
        count += int(q.size)
    return total, count


def uiqi_sums(p: NDArray[Any], r: NDArray[Any], v: NDArray[np.bool_], block: int) -> tuple[float, int]:
    """Sum of block Q over valid blocks and bands, and their count."""
    _, ny, nx = p.shape
    by, bx, _, _ = block_grid(ny, nx, block)
    return uiqi_grid_sums(p, r, v, by, bx)


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
    blk = check_block(block)
    p, r, v = materialize(prepare(pred, ref, mask=mask, border=border))
    total, count = uiqi_sums(p, r, v, blk)
    if count == 0:
        warn_undefined(f"uiqi: no complete {blk}x{blk} block free of invalid pixels; returning NaN.")
        return math.nan
    return total / count


# ------------------------------------------------------------------------------------------------ Q2n
def q2n_grid_sums(
    p: NDArray[Any], r: NDArray[Any], v: NDArray[np.bool_], by: int, bx: int
) -> tuple[float, int]:
    """Sum of block Q2^n over the whole ``by x bx`` blocks of the arrays (anchored at their corner) that are
    free of invalid pixels, and their count."""
    nbands, ny, nx = p.shape
    dim = 1 << (nbands - 1).bit_length()  # next power of two; the padded components are zero
    sign = sign_table(dim)
    k_idx = np.arange(dim)[:, None]
    i_idx = np.arange(dim)[None, :]
    j_idx = i_idx ^ k_idx  # for output component k: pairs (i, i XOR k)
    gsign = sign[np.broadcast_to(i_idx, (dim, dim)), j_idx]  # (k, i)
    conj = np.ones(dim)
    conj[1:] = -1.0
    nby, nbx = ny // by, nx // bx
    total, count = 0.0, 0
    for i in range(nby):
        vb = block_row(v, i, by, bx, nbx).all(axis=-1)
        if not vb.any():
            continue
        z = np.zeros((int(vb.sum()), dim, by * bx))
        w = np.zeros_like(z)
        z[:, :nbands] = block_row(p, i, by, bx, nbx)[vb]
        w[:, :nbands] = block_row(r, i, by, bx, nbx)[vb]
        mz, zc = center(z)  # (nblk, dim), (nblk, dim, P)
        mw, wc = center(w)
        npx = z.shape[-1]
        # Hypercomplex covariance E[(z - zbar)(w - wbar)*]: the product is bilinear, so it is a signed sum
        # of the cross-moment matrix M[i, j] = E[zc_i (wc*)_j] along the XOR pattern of the basis products.
        m = batched_cross(zc, wc * conj[None, :, None]) / npx  # (nblk, dim, dim)
        cov = (m[:, np.broadcast_to(i_idx, (dim, dim)), j_idx] * gsign[None]).sum(-1)  # (nblk, dim)
        var_sum = (zc * zc).sum(axis=(1, 2)) / npx + (wc * wc).sum(axis=(1, 2)) / npx
        nz = np.linalg.norm(mz, axis=-1)
        nw = np.linalg.norm(mw, axis=-1)
        q = q_combine(nz * nw, nz * nz + nw * nw, np.linalg.norm(cov, axis=-1), var_sum)
        total += float(q.sum())
        count += int(q.size)
    return total, count


def q2n_sums(p: NDArray[Any], r: NDArray[Any], v: NDArray[np.bool_], block: int) -> tuple[float, int]:
    """Sum of block Q2^n over valid blocks, and their count."""
    _, ny, nx = p.shape
    by, bx, _, _ = block_grid(ny, nx, block)
    return q2n_grid_sums(p, r, v, by, bx)


def q2n(
    pred: CubeLike, ref: CubeLike, *, block: int = 32, mask: MaskLike | None = None, border: int = 0
) -> float:
    """Hypercomplex quality index Q2^n (Garzelli & Nencini 2009), block-averaged.

    Each pixel spectrum is a hypercomplex number ``z`` with ``2^n`` components (bands, zero-padded to the
    next power of two; Cayley-Dickson algebra, ``(a, b)(c, d) = (ac - d* b, da + b c*)``, see
    :mod:`dcstsf.metrics.hypercomplex`).  Per block, with ``z`` from ``pred`` and ``w`` from ``ref``::

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
    blk = check_block(block)
    p, r, v = materialize(prepare(pred, ref, mask=mask, border=border))
    total, count = q2n_sums(p, r, v, blk)
    if count == 0:
        warn_undefined(f"q2n: no complete {blk}x{blk} block free of invalid pixels; returning NaN.")
        return math.nan
    return total / count

"""Block statistics shared by UIQI, Q2n and the QNR family: tiling, centring and the Q formula.

Blocks are non-overlapping tiles anchored at the top-left corner (clipped to the image when it is
smaller); incomplete tiles at the right and bottom edges are dropped. Work goes one block row at a time
so that the reshaped copies stay small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["batched_cross", "block_grid", "block_row", "center", "q_combine"]


def q_combine(mean_prod: Any, mean_sq_sum: Any, cov: Any, var_sum: Any) -> Any:
    """Q = [2 cov / var_sum] * [2 mean_prod / mean_sq_sum], an undefined (0/0) factor taken as 1.

    0/0 occurs only when both blocks are constant (structure factor) or both have zero mean (luminance
    factor); the two blocks then agree on that aspect, hence 1.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lum = np.where(mean_sq_sum > 0, 2.0 * mean_prod / np.where(mean_sq_sum > 0, mean_sq_sum, 1.0), 1.0)
        struct = np.where(var_sum > 0, 2.0 * cov / np.where(var_sum > 0, var_sum, 1.0), 1.0)
    return lum * struct


def batched_cross(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``a @ b^T`` block by block: ``(n, i, P) x (n, j, P) -> (n, i, j)``.

    Through ``torch.bmm``: NumPy's stacked ``matmul`` of these shapes ran at a twentieth of the speed of
    the BLAS batched product, and it is the whole cost of Q2n and of QNR's band-pair matrices.
    """
    import torch

    ta = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
    tb = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64))
    return torch.bmm(ta, tb.transpose(1, 2)).numpy()


def block_grid(ny: int, nx: int, block: int) -> tuple[int, int, int, int]:
    """Block height and width (clipped to the image) and the number of whole blocks along y and x."""
    by, bx = min(block, ny), min(block, nx)
    return by, bx, ny // by, nx // bx


def block_row(a: NDArray[Any], i: int, by: int, bx: int, nbx: int) -> NDArray[Any]:
    """Blocks of block row ``i``: ``(..., y, x) -> (nbx, ..., by*bx)``."""
    sl = a[..., i * by:(i + 1) * by, : nbx * bx]
    lead = sl.shape[:-2]
    sl = sl.reshape(*lead, by, nbx, bx)
    sl = np.moveaxis(sl, -2, 0)  # (nbx, ..., by, bx)
    return sl.reshape(nbx, *lead, by * bx)


def center(xb: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Block means and centred values; constant blocks get exactly zero deviations (no rounding noise)."""
    mean = xb.mean(axis=-1)
    xc = xb - mean[..., None]
    const = xb.max(axis=-1) == xb.min(axis=-1)
    xc[const] = 0.0
    return mean, xc

"""Full-reference metrics as sums over parts of an image: one tile's sums, their merge and the result.

Every full-reference metric of :func:`dcstsf.metrics.evaluate` is a function of sums over pixels,
windows or blocks: per-band sums (:mod:`~dcstsf.metrics.band_stats`) for PSNR, RMSE, SAM, ERGAS and CC;
the per-band sum of the SSIM map and the number of scored pixels; the sums of block UIQI and Q2n and
the number of blocks. :func:`full_reference_tile` gives them for one tile (its core, with the window
around it), :meth:`FullReferenceSums.merge` adds two parts and :func:`finish_full_reference` turns
the total into the result. The whole image is one tile whose core is everything, so the in-memory and
the streaming evaluations run the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dcstsf.metrics.band_stats import finalize_stats, merge_stats, numpy_stats
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
from dcstsf.metrics.tiles import grown, owned_range, shifted
from dcstsf.metrics.undefined import band_mean, warn_undefined
from dcstsf.metrics.windowed import SSIM_HALO, q2n_grid_sums, ssim_sums, uiqi_grid_sums

__all__ = ["BlockGrid", "FullReferenceSums", "finish_full_reference", "full_reference_tile", "owned_blocks"]

SSIM_WINDOW = "gaussian 11x11 sigma 1.5, K1=0.01 K2=0.03"


@dataclass(frozen=True)
class BlockGrid:
    """Whole blocks of ``by x bx`` pixels anchored at image pixel ``origin``: ``nby x nbx`` of them."""

    by: int
    bx: int
    nby: int
    nbx: int
    origin: tuple[int, int] = (0, 0)

    @classmethod
    def of(cls, ny: int, nx: int, block: int, origin: tuple[int, int] = (0, 0)) -> BlockGrid:
        """The blocks of a ``ny x nx`` image starting at ``origin`` (the block clipped to a smaller image)."""
        by, bx = min(block, ny), min(block, nx)
        return cls(by, bx, ny // by, nx // bx, origin)


def owned_blocks(
    core: tuple[int, int, int, int], window_origin: tuple[int, int], grid: BlockGrid
) -> tuple[slice, slice] | None:
    """Window slices covering the whole blocks of ``grid`` whose first pixel lies in ``core`` (image
    pixels), ``None`` when there is none. The window must reach ``block - 1`` pixels past the core."""
    y0, y1, x0, x1 = core
    iy0, iy1 = owned_range(y0, y1, origin=grid.origin[0], size=grid.by, count=grid.nby)
    ix0, ix1 = owned_range(x0, x1, origin=grid.origin[1], size=grid.bx, count=grid.nbx)
    if iy1 <= iy0 or ix1 <= ix0:
        return None
    oy, ox = window_origin
    top, left = grid.origin[0] + iy0 * grid.by - oy, grid.origin[1] + ix0 * grid.bx - ox
    return slice(top, top + (iy1 - iy0) * grid.by), slice(left, left + (ix1 - ix0) * grid.bx)


@dataclass
class FullReferenceSums:
    """The sums every full-reference metric is computed from, over a part of the image."""

    stats: dict[str, Any]
    ssim_sum: NDArray[np.float64]
    ssim_n: int = 0
    uiqi_total: float = 0.0
    uiqi_count: int = 0
    q2n_total: float = 0.0
    q2n_count: int = 0

    def merge(self, other: FullReferenceSums) -> FullReferenceSums:
        """The sums of both parts."""
        return FullReferenceSums(
            stats=merge_stats(dict(self.stats), other.stats),
            ssim_sum=self.ssim_sum + other.ssim_sum,
            ssim_n=self.ssim_n + other.ssim_n,
            uiqi_total=self.uiqi_total + other.uiqi_total,
            uiqi_count=self.uiqi_count + other.uiqi_count,
            q2n_total=self.q2n_total + other.q2n_total,
            q2n_count=self.q2n_count + other.q2n_count,
        )


def full_reference_tile(
    p: NDArray[Any],
    r: NDArray[Any],
    v: NDArray[np.bool_],
    *,
    core: tuple[int, int, int, int],
    origin: tuple[int, int],
    blocks: BlockGrid,
    data_range: float,
    include_q2n: bool = True,
) -> FullReferenceSums:
    """The full-reference sums of one tile.

    Parameters
    ----------
    p, r, v
        The tile's window of the prediction, the reference and the validity (False outside the scored
        image, e.g. in a cropped border).
    core
        The pixels this tile scores, image pixels ``(y0, y1, x0, x1)``.
    origin
        Image pixel of the window's first pixel.
    blocks
        The UIQI/Q2n blocks of the whole image.
    data_range
        As in :func:`~dcstsf.metrics.ssim`.
    """
    y0, y1, x0, x1 = core
    cs = (slice(y0 - origin[0], y1 - origin[0]), slice(x0 - origin[1], x1 - origin[1]))
    stats = numpy_stats(p[:, cs[0], cs[1]], r[:, cs[0], cs[1]], v[cs], moments=True, angles=True)
    # SSIM of the core needs the core and SSIM's half window around it, not the whole window
    sub = grown(cs, SSIM_HALO, v.shape)
    ssim_sum, ssim_n = ssim_sums(p[:, sub[0], sub[1]], r[:, sub[0], sub[1]], v[sub], data_range, core=shifted(cs, sub))
    out = FullReferenceSums(stats=stats, ssim_sum=ssim_sum, ssim_n=ssim_n)
    own = owned_blocks(core, origin, blocks)
    if own is not None:
        pb, rb, vb = p[:, own[0], own[1]], r[:, own[0], own[1]], v[own]
        out.uiqi_total, out.uiqi_count = uiqi_grid_sums(pb, rb, vb, blocks.by, blocks.bx)
        if include_q2n:
            out.q2n_total, out.q2n_count = q2n_grid_sums(pb, rb, vb, blocks.by, blocks.bx)
    return out


def finish_full_reference(
    sums: FullReferenceSums,
    *,
    h_over_l: float,
    data_range: float,
    border: int,
    block: int,
    include_q2n: bool = True,
) -> dict[str, Any]:
    """The result of :func:`dcstsf.metrics.evaluate` from the sums over the whole image."""
    st = finalize_stats(sums.stats)
    nb = st["sse"].shape[0]
    psnr_b = psnr_bands_from_stats(st, data_range)
    rmse_b = rmse_bands_from_stats(st)
    cc_b = cc_bands_from_stats(st)
    if sums.ssim_n == 0:
        warn_undefined("ssim: no pixel has a fully valid 11x11 window; returning NaN.")
        ssim_b = np.full(nb, np.nan)
    else:
        ssim_b = sums.ssim_sum / sums.ssim_n
    if sums.uiqi_count == 0:
        warn_undefined(f"uiqi: no complete {block}x{block} block free of invalid pixels; returning NaN.")
    glob: dict[str, float] = {
        "psnr": float(np.mean(psnr_b)),
        "sam_deg": sam_from_stats(st),
        "ergas": ergas_from_stats(st, h_over_l),
        "ssim": band_mean(ssim_b, "ssim", warn_all=False),
        "cc": band_mean(cc_b, "cc", warn_all=st["n"] > 0),
        "rmse": rmse_from_stats(st),
        "uiqi": sums.uiqi_total / sums.uiqi_count if sums.uiqi_count else math.nan,
    }
    if include_q2n:
        if sums.q2n_count == 0:
            warn_undefined(f"q2n: no complete {block}x{block} block free of invalid pixels; returning NaN.")
        glob["q2n"] = sums.q2n_total / sums.q2n_count if sums.q2n_count else math.nan
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
            "ratio_h_over_l": h_over_l,
            "data_range": data_range,
            "border": int(border),
            "valid_pixels": st["n"],
            "sam_valid_pixels": st["sam_n"],
            "sam_units": "degrees",
            "psnr_cap_db": PSNR_CAP_DB,
            "uiqi_block": block,
            "ssim_window": SSIM_WINDOW,
        },
    }

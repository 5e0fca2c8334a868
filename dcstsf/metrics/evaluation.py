"""All full-reference metrics at once (:func:`evaluate`), with the conventions used, as a JSON-ready dict.

NumPy inputs are scored as one tile covering the whole image. Dask inputs are streamed: the image is
cut into tiles (:mod:`dcstsf.metrics.tiles`) whose windows are read and scored a few at a time
(:mod:`dcstsf.metrics.stream`), and the per-tile sums (:mod:`dcstsf.metrics.partials`) are added up,
so no cube is ever held in memory whole. Both paths compute the same sums; they differ by the order of
the additions only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dcstsf._arrays import is_dask
from dcstsf.errors import DcstsfInputError
from dcstsf.metrics.inputs import (
    CubeLike,
    MaskLike,
    check_block,
    check_border,
    check_data_range,
    check_h_over_l,
    prepare,
    unwrap,
    unwrap_mask,
)
from dcstsf.metrics.partials import BlockGrid, FullReferenceSums, finish_full_reference, full_reference_tile
from dcstsf.metrics.stream import TileInput, aligned, parallel_tiles, run_tiles
from dcstsf.metrics.tiles import Tile, TileGrid
from dcstsf.metrics.windowed import SSIM_HALO

__all__ = ["TILE_WINDOW_BYTES", "band_selection", "evaluate", "streaming_chunk"]

#: Float32 bytes of one cube's window in a streamed tile: sets the tile size from the band count.
TILE_WINDOW_BYTES: int = 48 * 2**20
# Float64 temporaries of one tile beyond its windows (slabs of band sums, SSIM maps, Q2n blocks).
_TILE_TEMPORARIES = 200 * 2**20


def streaming_chunk(n_bands: int, *, halo: int, multiple: int = 1, window_bytes: int | None = None) -> int:
    """Tile side such that one cube's float32 window ``(chunk + 2 halo)^2 x n_bands`` holds about
    ``window_bytes`` (default :data:`TILE_WINDOW_BYTES`), a multiple of ``multiple`` (and at least one)."""
    wb = TILE_WINDOW_BYTES if window_bytes is None else window_bytes
    side = int(math.sqrt(wb / (4 * max(1, n_bands))))
    return max(multiple, ((side - 2 * halo) // multiple) * multiple)


def band_selection(bands: Sequence[bool] | Sequence[int] | NDArray[Any] | None, n_bands: int) -> NDArray[np.intp]:
    """Indices of the bands to score from a boolean mask of length ``n_bands``, a list of indices or ``None``
    (all bands)."""
    if bands is None:
        return np.arange(n_bands)
    b = np.asarray(bands)
    if b.dtype == np.bool_:
        if b.shape != (n_bands,):
            raise DcstsfInputError(f"bands: a boolean mask needs one value per band ({n_bands}), got shape {b.shape}")
        idx = np.flatnonzero(b)
    elif np.issubdtype(b.dtype, np.integer) and b.ndim == 1:
        idx = np.unique(b)
        if idx.size and (idx[0] < 0 or idx[-1] >= n_bands):
            raise DcstsfInputError(f"bands: indices must lie in 0..{n_bands - 1}, got {b.tolist()}")
    else:
        raise DcstsfInputError(f"bands must be a boolean mask or a list of band indices, got {bands!r}")
    if idx.size == 0:
        raise DcstsfInputError("bands: no band left to score; keep at least one band")
    return idx


def _expand(values: list[float], idx: NDArray[np.intp], n_bands: int) -> list[float]:
    """Per-band values of the scored bands ``idx`` placed in a list of ``n_bands`` (NaN elsewhere)."""
    out = np.full(n_bands, np.nan)
    out[idx] = values
    return out.tolist()


def _stream(
    p: Any, r: Any, m: NDArray[np.bool_] | None, *, block: int, data_range: float, include_q2n: bool
) -> FullReferenceSums:
    """The full-reference sums of Dask cubes, tile by tile."""
    nb, ny, nx = p.shape
    blocks = BlockGrid.of(ny, nx, block)
    # Tile edges on block edges need no halo for the blocks, only SSIM's.
    halo = SSIM_HALO
    chunk = streaming_chunk(nb, halo=halo, multiple=math.lcm(blocks.by, blocks.bx))
    grid = TileGrid(ny, nx, chunk, halo)
    window_px = (chunk + 2 * halo) ** 2
    parallel = parallel_tiles(window_px * nb * 4 * 4 + _TILE_TEMPORARIES)
    inputs = [TileInput(aligned(p, grid)), TileInput(aligned(r, grid)),
              None if m is None else TileInput(aligned(m, grid))]

    def score(tile: Tile, pw: NDArray[Any], rw: NDArray[Any], mw: NDArray[np.bool_] | None) -> FullReferenceSums:
        v = np.isfinite(pw).all(axis=0) & np.isfinite(rw).all(axis=0)
        if mw is not None:
            v &= mw
        return full_reference_tile(pw, rw, v, core=tile.core, origin=tile.origin, blocks=blocks,
                                   data_range=data_range, include_q2n=include_q2n)

    total: FullReferenceSums | None = None
    for _, part in run_tiles(score, grid.tiles(), inputs, parallel=parallel):
        total = part if total is None else total.merge(part)
    assert total is not None  # a grid has at least one tile
    return total


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
    bands: Sequence[bool] | Sequence[int] | NDArray[Any] | None = None,
) -> dict[str, Any]:
    """All full-reference metrics at once, with the conventions used (JSON-serialisable).

    Parameters
    ----------
    pred, ref : array-like (band, y, x)
        Fused and reference cubes (NumPy, Dask or xarray). Dask inputs are streamed tile by tile (no cube
        is held in memory whole); the result equals the NumPy path to rounding.
    h_over_l : float
        ERGAS's fine pixel size / coarse pixel size, in (0, 1] (``1 / ratio``; see
        :func:`~dcstsf.metrics.ergas`).
    data_range, mask, border
        As in :func:`~dcstsf.metrics.psnr_per_band`.
    block : int
        UIQI and Q2n block side (pixels).
    include_q2n : bool
        ``False`` skips Q2n, whose cost grows with the square of the (padded) band count.
    bands : bool mask or indices, optional
        The bands to score (e.g. a sensor's good bands, leaving out water-vapour absorption). The others
        are left out of every metric, of the validity test and of Q2n's hypercomplex numbers; their
        per-band values are NaN. Default: every band.

    Returns
    -------
    dict
        ``{"global": {"psnr", "sam_deg", "ergas", "ssim", "cc", "rmse", "uiqi", "q2n"?},
        "per_band": {"psnr", "rmse", "sam_contribution", "cc", "ssim"},
        "conventions": {"ratio_h_over_l", "data_range", "border", "valid_pixels", "sam_valid_pixels",
        "sam_units", "psnr_cap_db", "uiqi_block", "ssim_window", "bands_scored", "bands_excluded"}}``.

        ``per_band["sam_contribution"][b]`` is the mean over SAM-valid pixels of ``(p_b/|p| - r_b/|r|)^2``
        (unit-normalised spectra).  Summed over bands it equals the mean of ``2 (1 - cos angle)``, so it
        shows which bands drive the spectral angle (dimensionless).
    """
    hl = check_h_over_l(h_over_l)
    dr = check_data_range(data_range)
    blk = check_block(block)
    p, r = unwrap(pred, "pred"), unwrap(ref, "ref")
    nb_all = p.shape[0]
    idx = band_selection(bands, nb_all)
    if idx.size < nb_all:
        p, r = p[idx], r[idx]
    if is_dask(p) or is_dask(r):
        if tuple(p.shape) != tuple(r.shape):
            raise DcstsfInputError(
                f"pred and ref must have the same (band, y, x) shape, got {tuple(p.shape)} and {tuple(r.shape)}."
            )
        _, ny, nx = p.shape
        b = check_border(border, ny, nx)
        m = None if mask is None else unwrap_mask(mask, (ny, nx))
        crop = (slice(None), slice(b, ny - b), slice(b, nx - b))
        sums = _stream(p[crop], r[crop], None if m is None else m[crop[1:]], block=blk, data_range=dr,
                       include_q2n=include_q2n)
    else:
        c = prepare(p, r, mask=mask, border=border)
        _, ny, nx = c.pred.shape
        sums = full_reference_tile(c.pred, c.ref, c.valid, core=(0, ny, 0, nx), origin=(0, 0),
                                   blocks=BlockGrid.of(ny, nx, blk), data_range=dr, include_q2n=include_q2n)
    res = finish_full_reference(sums, h_over_l=hl, data_range=dr, border=border, block=blk, include_q2n=include_q2n)
    res["per_band"] = {k: _expand(v, idx, nb_all) for k, v in res["per_band"].items()}
    res["conventions"]["bands_scored"] = int(idx.size)
    res["conventions"]["bands_excluded"] = np.setdiff1d(np.arange(nb_all), idx).tolist()
    return res

"""Resampling the HS cube by a displacement field, on its own coarse grid.

The corrected cube at coarse pixel ``p = (row, col)`` is the input cube read at ``p - u(p)``, where ``u`` is
the displacement field (:class:`~dcstsf.coregistration.field.DisplacementField`): the HS cube shows what the
MS grid places at ``p`` at its own position ``p - u(p)``. The field is defined on the output (MS) grid, so
no inversion is needed. Positions are pixel-index coordinates (pixel ``i``'s centre is ``i``).

Kernels:

- ``"bilinear"``: 2 x 2 taps;
- ``"cubic"``: Keys' cubic convolution with ``a = -0.5`` (4 x 4 taps);
- ``"spline"``: quintic B-spline interpolation (``scipy.ndimage``: a recursive prefilter per band, then
  6 x 6 taps), the closest of the three to a pure shift: a texture of 8-50-pixel waves read 0.3/0.7 px
  off comes out within 0.1 % of its peak (Keys: 0.6 %, bilinear: 6 %; ``tests/coregistration/test_warp.py``).
  The default, and what the tie points' sub-pixel re-reads use.

Nodata. An output pixel is NaN when a tap with a nonzero weight is NaN in that band (for the spline: any of
its 6 x 6 taps, and nodata is first filled with the nearest valid value, since the prefilter reaches
every pixel of the band), and in every band when its source position lies outside the input's footprint
(more than half a pixel beyond the centre of an edge pixel). Inside the footprint, taps beyond the edge
read replicated (``"bilinear"``, ``"cubic"``) or mirrored (``"spline"``) edge pixels. A zero field returns
the input unchanged, NaN included.

Laziness. :func:`warp_cube` works on blocks of bands: a Dask-backed input stays lazy (one task per band
chunk, each holding its chunk's whole image plane), a NumPy input is processed ``band_chunk`` bands at a
time so the gathered taps never hold more than a chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from dcstsf._arrays import is_dask, is_xarray
from dcstsf.errors import DcstsfInputError

if TYPE_CHECKING:
    from dcstsf.coregistration.field import DisplacementField

__all__ = ["KEYS_A", "SPLINE_ORDER", "Resampler", "sample", "warp_array", "warp_cube"]

#: Keys' cubic convolution parameter of the ``"cubic"`` kernel.
KEYS_A = -0.5
#: Order of the ``"spline"`` kernel's B-spline.
SPLINE_ORDER = 5
#: Bands resampled at once by the NumPy path (bounds the memory of the gathered taps).
DEFAULT_BAND_CHUNK = 16


def _keys_weights(t: np.ndarray) -> np.ndarray:
    """Keys' weights ``(4, ...)`` of the samples at offsets -1, 0, 1, 2 for fractional positions ``t`` in [0, 1)."""
    a = KEYS_A

    def near(x: np.ndarray) -> np.ndarray:  # |x| <= 1
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0

    def far(x: np.ndarray) -> np.ndarray:  # 1 < |x| < 2
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a

    return np.stack([far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)])


def _fill_nearest(band: np.ndarray, nan: np.ndarray) -> np.ndarray:
    """``band`` with each NaN replaced by the nearest valid value (all-NaN bands become 0)."""
    if nan.all():
        return np.zeros_like(band)
    idx = ndimage.distance_transform_edt(nan, return_distances=False, return_indices=True)
    return band[tuple(idx)]


def _spline_nodata(nan: np.ndarray) -> tuple[np.ndarray, ...]:
    """Where a quintic-spline read is nodata, indexed by ``floor`` of the position: ``(nan, nan spread along
    rows, along columns, along both)``, for positions whole along both axes, along columns only, along rows
    only, or along neither. The taps of a position ``p`` are ``floor(p) - 2 .. floor(p) + 3``."""
    half = (SPLINE_ORDER - 1) // 2
    shift = (SPLINE_ORDER + 1) // 2 - half  # a centred even-sized filter covers i - 3 .. i + 2

    def spread(m: np.ndarray, axis: int) -> np.ndarray:
        return ndimage.maximum_filter1d(m, size=SPLINE_ORDER + 1, axis=axis, origin=-shift, mode="mirror")

    rows, cols = spread(nan, 0), spread(nan, 1)
    return nan, rows, cols, spread(rows, 1)


class Resampler:
    """Reads a cube ``(nb, H, W)`` at fractional positions, with one kernel (see the module notes).

    The spline's prefilter runs once, here; every :meth:`__call__` then only interpolates.
    """

    def __init__(self, cube: np.ndarray, *, resampling: str = "cubic") -> None:
        if resampling not in ("bilinear", "cubic", "spline"):
            raise DcstsfInputError(f"resampling must be 'bilinear', 'cubic' or 'spline', got {resampling!r}")
        cube = np.asarray(cube)
        if cube.ndim != 3:
            raise DcstsfInputError(f"expected a cube (band, y, x), got shape {cube.shape}")
        self.resampling = resampling
        self.shape = cube.shape
        self.dtype = np.float64 if cube.dtype == np.float64 else np.float32
        self._cube = cube
        self._coef: list[np.ndarray] = []
        self._nan: list[tuple[np.ndarray, ...] | None] = []
        if resampling == "spline":
            for band in cube:
                band = np.asarray(band, dtype=np.float64)
                nan = ~np.isfinite(band)
                self._nan.append(_spline_nodata(nan) if nan.any() else None)
                if nan.any():
                    band = _fill_nearest(band, nan)
                self._coef.append(ndimage.spline_filter(band, order=SPLINE_ORDER, mode="mirror"))

    def __call__(self, rows: Any, cols: Any) -> np.ndarray:
        """``(nb, *shape)``: the cube at positions ``rows``, ``cols`` (broadcast), NaN outside the footprint."""
        _, h, w = self.shape
        r, c = np.broadcast_arrays(np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64))
        out_shape = r.shape
        r, c = r.reshape(-1), c.reshape(-1)
        finite = np.isfinite(r) & np.isfinite(c)
        inside = finite & (r >= -0.5) & (r <= h - 0.5) & (c >= -0.5) & (c <= w - 0.5)
        r = np.where(finite, np.clip(r, -0.5, h - 0.5), 0.0)
        c = np.where(finite, np.clip(c, -0.5, w - 0.5), 0.0)
        acc = self._spline(r, c) if self.resampling == "spline" else self._taps(r, c)
        acc[:, ~inside] = np.nan
        return acc.astype(self.dtype, copy=False).reshape(self.shape[0], *out_shape)

    def _spline(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        out = np.empty((self.shape[0], r.size))
        fr = np.clip(np.floor(r).astype(np.int64), 0, self.shape[1] - 1)
        fc = np.clip(np.floor(c).astype(np.int64), 0, self.shape[2] - 1)
        # at a whole-pixel position along an axis the spline reproduces the sample: no other tap counts there
        whole_r, whole_c = r == np.floor(r), c == np.floor(c)
        which = np.where(whole_r, np.where(whole_c, 0, 2), np.where(whole_c, 1, 3))
        for b, (coef, nan) in enumerate(zip(self._coef, self._nan, strict=True)):
            out[b] = ndimage.map_coordinates(coef, [r, c], order=SPLINE_ORDER, mode="mirror", prefilter=False)
            if nan is not None:
                bad = np.choose(which, [m[fr, fc] for m in nan])
                out[b, bad] = np.nan
        return out

    def _taps(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        nb, h, w = self.shape
        r0, c0 = np.floor(r), np.floor(c)
        tr, tc = r - r0, c - c0
        if self.resampling == "bilinear":
            offsets = np.array([0, 1])
            wr, wc = np.stack([1.0 - tr, tr]), np.stack([1.0 - tc, tc])
        else:
            offsets = np.array([-1, 0, 1, 2])
            wr, wc = _keys_weights(tr), _keys_weights(tc)
        rows_i = np.clip(r0.astype(np.int64)[None, :] + offsets[:, None], 0, h - 1)
        cols_i = np.clip(c0.astype(np.int64)[None, :] + offsets[:, None], 0, w - 1)
        flat = self._cube.reshape(nb, -1)
        acc = np.zeros((nb, r.size))
        bad = np.zeros((nb, r.size), dtype=bool)
        for i in range(offsets.size):
            for j in range(offsets.size):
                vals = flat[:, rows_i[i] * w + cols_i[j]].astype(np.float64, copy=False)
                wt = wr[i] * wc[j]
                nan = ~np.isfinite(vals)
                if nan.any():
                    # a NaN tap counts only where its weight is nonzero: at whole-pixel positions the cubic
                    # kernel has zero-weight taps, which must not spread nodata
                    bad |= nan & (wt != 0.0)
                    vals = np.where(nan, 0.0, vals)
                acc += vals * wt
        acc[bad] = np.nan
        return acc


def sample(cube: np.ndarray, rows: Any, cols: Any, *, resampling: str = "cubic") -> np.ndarray:
    """``cube`` ``(nb, H, W)`` read at fractional positions ``rows``, ``cols`` (one-off :class:`Resampler`)."""
    return Resampler(cube, resampling=resampling)(rows, cols)


def _source_positions(field: DisplacementField, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel reads the input: ``p - u(p)``."""
    rows, cols = np.meshgrid(np.arange(shape[0], dtype=np.float64), np.arange(shape[1], dtype=np.float64), indexing="ij")
    u = field(rows, cols)
    return rows - u[0], cols - u[1]


def warp_array(
    cube: np.ndarray, field: DisplacementField, *, resampling: str = "spline", band_chunk: int = DEFAULT_BAND_CHUNK
) -> np.ndarray:
    """Resample a NumPy cube ``(nb, H, W)`` by ``field`` (see the module notes), ``band_chunk`` bands at a time."""
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise DcstsfInputError(f"expected a cube (band, y, x), got shape {cube.shape}")
    if tuple(cube.shape[-2:]) != tuple(field.shape):
        raise DcstsfInputError(
            f"the cube is {cube.shape[1]}x{cube.shape[2]} pixels but the displacement field was fitted on a "
            f"{field.shape[0]}x{field.shape[1]} grid; warp the cube the field was estimated for"
        )
    src_r, src_c = _source_positions(field, cube.shape[-2:])
    dtype = np.float64 if cube.dtype == np.float64 else np.float32
    out = np.empty(cube.shape, dtype=dtype)
    step = max(1, int(band_chunk))
    for b0 in range(0, cube.shape[0], step):
        out[b0 : b0 + step] = Resampler(cube[b0 : b0 + step], resampling=resampling)(src_r, src_c)
    return out


def _warp_dask(data: Any, field: DisplacementField, *, resampling: str, band_chunk: int) -> Any:
    """The lazy warp: one task per band chunk, each with the whole image plane (the field reaches anywhere)."""
    import dask.array as da

    band_chunks = data.chunks[0] if band_chunk <= 0 else band_chunk
    data = data.rechunk({0: band_chunks, 1: -1, 2: -1})
    dtype = np.float64 if data.dtype == np.float64 else np.float32

    def block(x: np.ndarray) -> np.ndarray:
        # the source positions are recomputed per block: cheap next to the resampling, and the graph stays small
        return warp_array(x, field, resampling=resampling, band_chunk=x.shape[0])

    return da.map_blocks(block, data, dtype=dtype, meta=np.empty((0, 0, 0), dtype=dtype))


def warp_cube(
    cube: Any, field: DisplacementField, *, resampling: str = "spline", band_chunk: int = DEFAULT_BAND_CHUNK
) -> Any:
    """Resample an HS cube by a displacement field, keeping its coarse grid.

    Parameters
    ----------
    cube
        ``(band, y, x)``: an ``xarray.DataArray`` (NumPy- or Dask-backed), a Dask array or a NumPy array.
    field
        The displacement field, in coarse pixels of this grid.
    resampling
        ``"spline"`` (quintic B-spline), ``"cubic"`` (Keys, ``a = -0.5``) or ``"bilinear"``.
    band_chunk
        Bands per block (NumPy) or per task (Dask; ``0`` keeps the input's band chunks).

    Returns
    -------
    The same kind of object as ``cube``, float32 (float64 kept): a DataArray keeps its dims, coordinates,
    attributes and CRS/transform; a Dask-backed one stays lazy.
    """
    if is_xarray(cube):
        if tuple(cube.dims) != ("band", "y", "x"):
            cube = cube.transpose("band", "y", "x")
        data = cube.data
        out = (
            _warp_dask(data, field, resampling=resampling, band_chunk=band_chunk)
            if is_dask(data)
            else warp_array(np.asarray(data), field, resampling=resampling, band_chunk=band_chunk)
        )
        return cube.copy(data=out)
    if is_dask(cube):
        return _warp_dask(cube, field, resampling=resampling, band_chunk=band_chunk)
    return warp_array(np.asarray(cube), field, resampling=resampling, band_chunk=band_chunk)

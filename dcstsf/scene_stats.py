"""Per-scene estimation shared by the methods and the model: matched coarse samples, regression maps.

Everything here works on whole scenes (NumPy or Dask) and returns small NumPy arrays: it is what a
method's ``fit`` computes once, before tiling.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel, decimated_blur_matrix

__all__ = [
    "SceneSamples",
    "apply_spectral_map",
    "fill_nodata",
    "fit_spectral_map",
    "round_up_to_ratio",
    "scene_samples",
]


def round_up_to_ratio(pixels: float, ratio: int) -> int:
    """Smallest multiple of ``ratio`` that is >= ``pixels``."""
    return int(math.ceil(pixels / ratio)) * ratio


class SceneSamples:
    """Matched coarse-resolution samples of a scene, for per-scene estimation in ``fit``.

    Attributes
    ----------
    hs : (N, n_hs) HS(t1) coarse pixel spectra.
    ms1, ms2 : (N, n_ms) MS(t1), MS(t2) taken to the HS resolution with the HS spatial response.
    """

    def __init__(self, hs: np.ndarray, ms1: np.ndarray, ms2: np.ndarray) -> None:
        self.hs, self.ms1, self.ms2 = hs, ms1, ms2

    def __len__(self) -> int:
        return self.hs.shape[0]


def fill_nodata(a: np.ndarray) -> np.ndarray:
    """Fill NaN with per-band means so the blur does not spread them (they are dropped afterwards)."""
    if not np.isnan(a).any():
        return a
    mean = np.nanmean(a.reshape(a.shape[0], -1), axis=1)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    return np.where(np.isnan(a), mean[:, None, None], a).astype(np.float32)


def _samples_meeting(centres: np.ndarray, lo: int, hi: int, *, n: int, model: ObservationModel) -> slice:
    """The samples (positions in the sorted coarse indices ``centres``) whose ``ms_to_coarse`` footprint meets
    fine pixels ``[lo, hi)`` of an axis of ``n``, read off the operator's own matrix."""
    weights = decimated_blur_matrix(n, model.ratio, model.ms_to_coarse_sigma, centres)[:, lo:hi]
    hit = np.flatnonzero(weights.getnnz(axis=1))
    return slice(int(hit[0]), int(hit[-1]) + 1) if hit.size else slice(0, 0)


def _ms_samples_part(
    block: np.ndarray, oy: int, ox: int, *, model: ObservationModel, rows: np.ndarray, cols: np.ndarray,
    shape: tuple[int, int],
) -> tuple[slice, slice, np.ndarray]:
    """One chunk's contribution to the sampled ``ms_to_coarse`` values of the samples whose footprint it meets."""
    h, w = block.shape[-2:]
    ry = _samples_meeting(rows, oy, oy + h, n=shape[0], model=model)
    rx = _samples_meeting(cols, ox, ox + w, n=shape[1], model=model)
    if ry.stop == ry.start or rx.stop == rx.start:
        return slice(0, 0), slice(0, 0), np.zeros((block.shape[0], 0, 0))
    return ry, rx, model.ms_to_coarse_at(block, rows[ry], cols[rx], origin=(oy, ox), shape=shape)


def _ms_samples(ms: Any, rows: np.ndarray, cols: np.ndarray, *, model: ObservationModel) -> Any:
    """``ms_to_coarse(ms)[:, rows][:, :, cols]`` (float64), NumPy, or a Dask delayed summing chunk parts."""
    if not _is_dask(ms):
        return model.ms_to_coarse_at(np.asarray(ms), rows, cols)
    import dask
    import dask.array as da

    shape = (ms.shape[-2], ms.shape[-1])

    arr = da.asarray(ms).rechunk({0: -1})
    oys = np.concatenate([[0], np.cumsum(arr.chunks[1])[:-1]])
    oxs = np.concatenate([[0], np.cumsum(arr.chunks[2])[:-1]])
    blocks = arr.to_delayed()[0]
    part = dask.delayed(_ms_samples_part, pure=True)
    parts = [
        part(blocks[i][j], int(oys[i]), int(oxs[j]), model=model, rows=rows, cols=cols, shape=shape)
        for i in range(len(oys))
        for j in range(len(oxs))
    ]

    def total(*pieces: tuple[slice, slice, np.ndarray]) -> np.ndarray:
        out = np.zeros((arr.shape[0], rows.size, cols.size))
        for ry, rx, vals in pieces:
            out[:, ry, rx] += vals
        return out

    return dask.delayed(total, pure=True)(*parts)


def scene_samples(
    hs_t1: Any,
    ms_t1: Any,
    ms_t2: Any,
    *,
    model: ObservationModel,
    max_pixels: int = 60_000,
) -> SceneSamples:
    """Matched coarse pixels of the whole scene, subsampled on a regular stride to ``max_pixels``.

    MS values are :meth:`~dcstsf.operators.ObservationModel.ms_to_coarse` evaluated at the sampled coarse
    pixels only (:meth:`~dcstsf.operators.ObservationModel.ms_to_coarse_at`): a few taps per sample
    instead of blurring every fine pixel. Works on NumPy and Dask arrays (Dask: every chunk is read once
    and contributes to the samples whose footprint it meets; only those small sums are kept). Pixels with
    NaN in any input, or in the footprint of an MS sample, are dropped.
    """
    n_hs, hc, wc = hs_t1.shape
    stride = max(1, int(math.ceil(math.sqrt(hc * wc / max_pixels))))
    rows = np.arange(stride // 2, hc, stride)
    cols = np.arange(stride // 2, wc, stride)
    sl = (slice(None), slice(stride // 2, None, stride), slice(stride // 2, None, stride))
    if _is_dask(hs_t1) or _is_dask(ms_t1) or _is_dask(ms_t2):
        import dask
        import dask.array as da

        hs_s, m1_s, m2_s = dask.compute(
            da.asarray(hs_t1)[sl],
            _ms_samples(ms_t1, rows, cols, model=model),
            _ms_samples(ms_t2, rows, cols, model=model),
        )
    else:
        hs_s = np.asarray(hs_t1)[sl]
        m1_s = _ms_samples(ms_t1, rows, cols, model=model)
        m2_s = _ms_samples(ms_t2, rows, cols, model=model)
    hs_s = np.asarray(hs_s, np.float64).reshape(n_hs, -1).T
    m1_s = np.asarray(m1_s, np.float64).reshape(m1_s.shape[0], -1).T
    m2_s = np.asarray(m2_s, np.float64).reshape(m2_s.shape[0], -1).T
    keep = np.isfinite(hs_s[:, model.hs_sensor.good]).all(1) & np.isfinite(m1_s).all(1) & np.isfinite(m2_s).all(1)
    if keep.sum() < 4 * (model.n_ms + 1):
        raise DcstsfInputError(
            f"only {int(keep.sum())} valid coarse pixels in the scene; the inputs are mostly nodata or too "
            "small to estimate the per-scene spectral map (need at least "
            f"{4 * (model.n_ms + 1)})"
        )
    hs_s = np.nan_to_num(hs_s[keep])
    return SceneSamples(hs_s, m1_s[keep], m2_s[keep])


def _is_dask(a: Any) -> bool:
    return type(a).__module__.startswith("dask")


def fit_spectral_map(ms: np.ndarray, hs: np.ndarray, *, ridge: float = 1e-4) -> np.ndarray:
    """Least-squares affine map from MS to HS spectra: ``hs ~ [ms, 1] @ T``, ``T`` is ``(n_ms+1, n_hs)``.

    Ridge-regularised relative to the MS variance so it stays stable on near-collinear bands.
    """
    a = np.concatenate([ms, np.ones((ms.shape[0], 1))], axis=1)
    gram = a.T @ a
    reg = ridge * np.trace(gram[:-1, :-1]) / max(ms.shape[1], 1)
    gram[np.arange(ms.shape[1]), np.arange(ms.shape[1])] += reg
    return np.linalg.solve(gram, a.T @ hs)


def apply_spectral_map(t: np.ndarray, ms: np.ndarray) -> np.ndarray:
    """``(n_ms, H, W)`` MS cube through an affine map from :func:`fit_spectral_map`."""
    return (np.einsum("mb,mhw->bhw", t[:-1], ms) + t[-1][:, None, None]).astype(np.float32)



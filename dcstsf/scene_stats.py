"""Per-scene estimation shared by the methods and the model: matched coarse samples, regression maps.

Everything here works on whole scenes (NumPy or Dask) and returns small NumPy arrays: it is what a
method's ``fit`` computes once, before tiling.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel, blur, blur_radius

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


def _ms_to_coarse_numpy(ms: np.ndarray, model: ObservationModel) -> np.ndarray:
    with torch.no_grad():
        return model.ms_to_coarse(torch.as_tensor(np.ascontiguousarray(ms, dtype=np.float32))).numpy()


def fill_nodata(a: np.ndarray) -> np.ndarray:
    """Fill NaN with per-band means so the blur does not spread them (they are dropped afterwards)."""
    if not np.isnan(a).any():
        return a
    mean = np.nanmean(a.reshape(a.shape[0], -1), axis=1)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    return np.where(np.isnan(a), mean[:, None, None], a).astype(np.float32)


def scene_samples(
    hs_t1: Any,
    ms_t1: Any,
    ms_t2: Any,
    *,
    model: ObservationModel,
    max_pixels: int = 60_000,
) -> SceneSamples:
    """Matched coarse pixels of the whole scene, subsampled on a regular stride to ``max_pixels``.

    Works on NumPy and Dask arrays (Dask: the MS blur runs chunk-wise with ``map_overlap`` and only
    the strided samples are computed). Pixels with NaN in any input are dropped.
    """
    r = model.ratio
    n_hs, hc, wc = hs_t1.shape
    stride = max(1, int(math.ceil(math.sqrt(hc * wc / max_pixels))))
    sl = (slice(None), slice(stride // 2, None, stride), slice(stride // 2, None, stride))
    if _is_dask(hs_t1) or _is_dask(ms_t1) or _is_dask(ms_t2):
        import dask
        import dask.array as da

        depth = round_up_to_ratio(blur_radius(model.hs_sigma), r)

        def coarse(ms: Any) -> Any:
            arr = da.asarray(ms)
            arr = arr.rechunk({0: -1, 1: _ratio_chunks(arr.chunks[1], r), 2: _ratio_chunks(arr.chunks[2], r)})
            # map_overlap needs every chunk at least `depth` deep: an axis with a thinner chunk (a narrow
            # strip) becomes one chunk, which needs no overlap at all
            depths = {0: 0}
            for axis in (1, 2):
                if min(arr.chunks[axis]) < depth:
                    arr = arr.rechunk({axis: -1})
                    depths[axis] = 0
                else:
                    depths[axis] = depth
            sigma = np.full(arr.shape[0], float(np.median(model.hs_sigma)))

            def block(b: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    out = blur(torch.as_tensor(fill_nodata(b.astype(np.float32))), sigma)
                    out = out.numpy()
                out[np.isnan(b)] = np.nan
                return out

            blurred = arr.map_overlap(block, depth=depths, boundary="none",
                                      dtype=np.float32)
            return da.coarsen(np.mean, blurred, {1: r, 2: r})

        hs_s, m1_s, m2_s = dask.compute(da.asarray(hs_t1)[sl], coarse(ms_t1)[sl], coarse(ms_t2)[sl])
    else:
        hs_s = np.asarray(hs_t1)[sl]
        m1_s = _ms_to_coarse_numpy(fill_nodata(np.asarray(ms_t1, np.float32)), model)[sl]
        m2_s = _ms_to_coarse_numpy(fill_nodata(np.asarray(ms_t2, np.float32)), model)[sl]
        nan1 = np.isnan(np.asarray(ms_t1)).reshape(ms_t1.shape[0], hc, r, wc, r).any(axis=(0, 2, 4))
        nan2 = np.isnan(np.asarray(ms_t2)).reshape(ms_t2.shape[0], hc, r, wc, r).any(axis=(0, 2, 4))
        bad = (nan1 | nan2)[sl[1:]]
        m1_s = np.where(bad[None], np.nan, m1_s)
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


def _ratio_chunks(chunks: tuple[int, ...], r: int) -> tuple[int, ...]:
    """Chunk sizes that are multiples of ``r`` (the last may be whatever remains)."""
    total = sum(chunks)
    size = max(r, round_up_to_ratio(max(chunks), r))
    out = [size] * (total // size)
    if total % size:
        out.append(total % size)
    return tuple(out)


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



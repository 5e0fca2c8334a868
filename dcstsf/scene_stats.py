"""Per-scene estimation shared by the methods and the model: matched coarse samples, regression maps.

Everything here works on whole scenes (NumPy or Dask) and returns small NumPy arrays: it is what a
method's ``fit`` computes once, before tiling.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from dcstsf._arrays import is_dask
from dcstsf.errors import DcstsfInputError
from dcstsf.nodata import impossible_to_nan
from dcstsf.operators import ObservationModel, decimated_blur_matrix
from dcstsf.sensors.names import band_runs

__all__ = [
    "DEGENERATE_SPREAD",
    "SceneSamples",
    "apply_spectral_map",
    "degenerate_ms_bands",
    "expected_ms_spread",
    "fill_nodata",
    "fit_spectral_map",
    "round_up_to_ratio",
    "scene_fill_values",
    "scene_samples",
    "select_ms_bands",
    "usable_ms_bands",
]

#: An MS band whose spatial spread over the scene, at either date, is below this fraction of the spread
#: HS(t1) predicts for it is degenerate: it carries no spatial information (a fill value, a missing band).
#: The bar is low on purpose: a real change can make a band far more uniform (a flooded scene in the near
#: infrared) and such a band must keep its information; only a band with practically no spread is dropped.
DEGENERATE_SPREAD = 0.01


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


def _samples_meeting(
    centres: np.ndarray, lo: int, hi: int, *, n: int, model: ObservationModel, axis: int
) -> slice:
    """The samples (positions in the sorted coarse indices ``centres``) whose ``ms_to_coarse`` footprint meets
    fine pixels ``[lo, hi)`` of axis ``axis`` (0: rows, 1: columns) of ``n`` pixels, read off the operator's
    own matrix."""
    shift = model.hs_shift[axis]
    weights = decimated_blur_matrix(n, model.ratio, model.ms_to_coarse_sigma, centres, shift=shift)[:, lo:hi]
    hit = np.flatnonzero(weights.getnnz(axis=1))
    return slice(int(hit[0]), int(hit[-1]) + 1) if hit.size else slice(0, 0)


def _ms_samples_part(
    block: np.ndarray, oy: int, ox: int, *, model: ObservationModel, rows: np.ndarray, cols: np.ndarray,
    shape: tuple[int, int],
) -> tuple[slice, slice, np.ndarray]:
    """One chunk's contribution to the sampled ``ms_to_coarse`` values of the samples whose footprint it meets."""
    h, w = block.shape[-2:]
    ry = _samples_meeting(rows, oy, oy + h, n=shape[0], model=model, axis=0)
    rx = _samples_meeting(cols, ox, ox + w, n=shape[1], model=model, axis=1)
    if ry.stop == ry.start or rx.stop == rx.start:
        return slice(0, 0), slice(0, 0), np.zeros((block.shape[0], 0, 0))
    return ry, rx, model.ms_to_coarse_at(block, rows[ry], cols[rx], origin=(oy, ox), shape=shape)


def _ms_samples(ms: Any, rows: np.ndarray, cols: np.ndarray, *, model: ObservationModel) -> Any:
    """``ms_to_coarse(ms)[:, rows][:, :, cols]`` (float64), NumPy, or a Dask delayed summing chunk parts."""
    if not is_dask(ms):
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
    if is_dask(hs_t1) or is_dask(ms_t1) or is_dask(ms_t2):
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
    good = np.asarray(model.hs_sensor.good, bool)
    keep = np.isfinite(hs_s[:, good]).all(1) & np.isfinite(m1_s).all(1) & np.isfinite(m2_s).all(1)
    if keep.sum() < 4 * (model.n_ms + 1):
        empty = good & ~np.isfinite(hs_s).any(axis=0)
        if empty.any():
            shown = band_runs(model.hs_sensor.band_names, model.hs_sensor.centers_nm, np.flatnonzero(empty))
            raise DcstsfInputError(
                f"HS(t1) bands {shown} hold no data at any sampled pixel but the HS sensor "
                f"{model.hs_sensor.name!r} counts them as good bands, so no pixel is complete; fuse through "
                "dcstsf.fuse (it flags such bands bad), or flag them bad in the sensor (its 'good' array)"
            )
        raise DcstsfInputError(
            f"only {int(keep.sum())} valid coarse pixels in the scene; the inputs are mostly nodata or too "
            "small to estimate the per-scene spectral map (need at least "
            f"{4 * (model.n_ms + 1)})"
        )
    hs_s = np.nan_to_num(hs_s[keep])
    return SceneSamples(hs_s, m1_s[keep], m2_s[keep])


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


def expected_ms_spread(samples: SceneSamples, *, model: ObservationModel) -> np.ndarray:
    """Per MS band, the spatial spread HS(t1) predicts for it: the standard deviation of ``R HS(t1)``
    over the coarse samples, ``(n_ms,)`` float64 (the MS samples are on the same coarse grid)."""
    return (samples.hs.astype(np.float64) @ model.srf.astype(np.float64).T).std(axis=0)


def degenerate_ms_bands(
    samples: SceneSamples, *, model: ObservationModel, tolerance: float = DEGENERATE_SPREAD
) -> tuple[np.ndarray, np.ndarray]:
    """Which MS bands are flat over the scene at t1 and at t2: two ``(n_ms,)`` boolean arrays.

    A band is flat at a date when the standard deviation of its coarse samples is below ``tolerance``
    times :func:`expected_ms_spread`: all-zero, constant (any value) and near-constant bands alike. The
    reference is the band's own expected spread, not a fixed number, so dark, low-contrast bands (blue,
    shortwave infrared over water) are judged against what they should show. A band HS(t1) predicts to be
    flat too is consistent with it and never degenerate.
    """
    expected = expected_ms_spread(samples, model=model)
    flat1 = samples.ms1.astype(np.float64).std(axis=0) < tolerance * expected
    flat2 = samples.ms2.astype(np.float64).std(axis=0) < tolerance * expected
    return flat1, flat2


def usable_ms_bands(samples: SceneSamples, *, model: ObservationModel, method: str) -> np.ndarray:
    """The MS bands a method can fuse with, ``(n_ms,)`` boolean; warns naming each degenerate band.

    A band flat at both dates carries no spatial information; a band flat at one date only is not a
    land-surface change either (no change makes a whole band uniform: it is a fill value or a band
    missing from one product), so its change between the dates is unknown. Either way the band is
    ignored at *both* dates and the method fuses with the others, which are intact: the result stays
    trustworthy, so this is a :class:`UserWarning`, not an error. Refusing would discard a usable result
    for one bad band; using the band at the date where it looks fine would make its flat date read as a
    scene-wide change. Only when no band is left is there nothing to fuse with: :class:`DcstsfInputError`.
    """
    flat1, flat2 = degenerate_ms_bands(samples, model=model)
    bad = flat1 | flat2
    if not bad.any():
        return ~bad
    names = model.ms_sensor.band_names
    when = {(True, True): "at t1 and t2", (True, False): "at t1 only", (False, True): "at t2 only"}
    listed = ", ".join(f"{names[i]} ({when[bool(flat1[i]), bool(flat2[i])]})" for i in np.flatnonzero(bad))
    if bad.all():
        raise DcstsfInputError(
            f"{method}: every MS band is constant or nearly constant over the scene at one date or both: "
            f"{listed}; the MS images carry no spatial information to fuse with. Check that MS(t1) and MS(t2) "
            "are the right files and bands (not fill values), or use method 'bicubic' for HS(t1) interpolated alone"
        )
    warnings.warn(
        f"{method}: MS band(s) constant or nearly constant over the scene (all zero, a fill value or a "
        f"missing band): {listed}. They carry no spatial information and are ignored at both dates; the "
        f"fusion uses the other {int((~bad).sum())} bands. Check the MS inputs.",
        UserWarning,
        stacklevel=3,
    )
    return ~bad


def select_ms_bands(model: ObservationModel, bands: np.ndarray) -> ObservationModel:
    """The observation model with only the MS bands ``bands`` (indices, in order): same HS side and grid."""
    idx = [int(i) for i in bands]
    return dataclasses.replace(
        model,
        ms_sensor=model.ms_sensor.select([model.ms_sensor.band_names[i] for i in idx]),
        srf=model.srf[idx],
        ms_sigma=np.asarray(model.ms_sigma)[idx],
    )


def scene_fill_values(arrays: Sequence[Any], *, max_pixels: int = 100_000) -> list[np.ndarray]:
    """Per-band NaN-mean of each array (NaN for bands with no data) over a regular subsample; +/-Inf and
    values no reflectance takes are nodata, as in the fusion (only the subsample is converted).

    The values only fill nodata before ``apply``; what matters is that they are one scene-wide constant
    (so every tiling fills alike), not their last digit. Dask inputs are reduced in one pass.
    """

    def sample(a: Any) -> Any:
        stride = max(1, math.ceil(math.sqrt(a.shape[1] * a.shape[2] / max_pixels)))
        return impossible_to_nan(a[:, stride // 2 :: stride, stride // 2 :: stride])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" for all-NaN bands
        from_dask: dict[int, Any] = {}
        if any(is_dask(a) for a in arrays):
            import dask
            import dask.array as da

            lazy = {i: da.nanmean(sample(a), axis=(1, 2), dtype=np.float64) for i, a in enumerate(arrays) if is_dask(a)}
            from_dask = dict(zip(lazy, dask.compute(*lazy.values())))
        out = []
        for i, a in enumerate(arrays):
            if i in from_dask:
                m = from_dask[i]
            else:
                s = np.asarray(sample(a))
                m = np.nanmean(s.reshape(s.shape[0], -1), axis=1, dtype=np.float64)
            out.append(np.asarray(m, dtype=np.float64))
    return out

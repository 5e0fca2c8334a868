"""The per-pixel measures the standard deviation is built from, each computable on one window.

Four measures, each in reflectance units and one value per HS band and fine pixel:

- **band unexplained** (:func:`unexplained_band_sd`): per HS band, the standard deviation of what the
  scene's affine MS -> HS map leaves unexplained in HS(t1), on the coarse samples of the whole scene. A
  band the MS bands explain poorly (between their responses, in the water-vapour bands) is predicted
  worse. Scene-level: computed once, like a method's ``fit``.
- **MS(t2) residual** (:func:`ms_residual`): how far the prediction seen through the MS sensor,
  ``B_ms R HS(t2)``, is from the observed MS(t2), as a local root mean square, taken to the HS bands by
  :func:`band_mapping`.
- **member disagreement** (:func:`local_rms` of the difference between the prediction and a reference
  ensemble member, :mod:`dcstsf.uncertainty.members`).
- **MS change** (:func:`ms_change`): the local RMS of ``MS(t2) - MS(t1)``, taken to the HS bands by
  :func:`band_mapping`: what HS(t1) does not show has to come from the MS images alone.

:func:`band_mapping` takes any per-MS-band quantity to the HS bands: linear interpolation in wavelength
between the centroids of the MS spectral responses (the rows of ``R``), constant beyond the first and
the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dcstsf.operators import ObservationModel, blur, blur_radius, spectral
from dcstsf.scene_stats import fit_spectral_map, scene_samples

__all__ = [
    "Measures",
    "band_mapping",
    "local_rms",
    "local_rms_radius",
    "ms_change",
    "ms_residual",
    "unexplained_band_sd",
]


@dataclass(frozen=True)
class Measures:
    """The four measures over one region: ``band`` ``(n_hs,)``; ``residual``, ``member`` and ``change``
    ``(n_hs, h, w)``; all reflectance (see the module docstring)."""

    band: np.ndarray
    residual: np.ndarray
    member: np.ndarray
    change: np.ndarray


def band_mapping(model: ObservationModel) -> np.ndarray:
    """``(n_hs, n_ms)`` weights taking a per-MS-band quantity to the HS bands.

    Each HS band gets the linear interpolation, in wavelength, between the two MS bands whose response
    centroids (``R`` row-weighted mean of the HS band centres) enclose its centre; HS bands below the first
    or beyond the last centroid take that MS band's value. Rows sum to 1.
    """
    srf = np.asarray(model.srf, dtype=np.float64)
    wl = np.asarray(model.hs_sensor.centers_nm, dtype=np.float64)
    weight = srf.sum(axis=1)
    centroids = (srf @ wl) / np.where(weight > 0, weight, 1.0)
    order = np.argsort(centroids, kind="stable")
    c = centroids[order]
    out = np.zeros((wl.size, c.size))
    if c.size == 1:
        out[:, order[0]] = 1.0
        return out
    hi = np.clip(np.searchsorted(c, wl), 1, c.size - 1)
    lo = hi - 1
    t = np.clip((wl - c[lo]) / np.maximum(c[hi] - c[lo], 1e-9), 0.0, 1.0)
    rows = np.arange(wl.size)
    np.add.at(out, (rows, order[lo]), 1.0 - t)
    np.add.at(out, (rows, order[hi]), t)
    return out


def local_rms_radius(sigma: float) -> int:
    """How far (pixels) :func:`local_rms` with ``sigma`` reads beyond the pixel it writes."""
    return blur_radius(float(sigma))


def local_rms(x: np.ndarray | torch.Tensor, sigma: float) -> np.ndarray:
    """``sqrt(G_sigma * x^2)`` per band of ``(n, h, w)``: a Gaussian-weighted local root mean square.

    The Gaussian is the operators' (truncated at 3 sigma, edges replicated), so the value at a pixel
    depends on the pixels within :func:`local_rms_radius` only.
    """
    t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)) if isinstance(x, np.ndarray) else x.float()
    sq = blur((t * t)[None], float(sigma))[0]
    return torch.sqrt(torch.clamp(sq, min=0.0)).numpy()


def ms_residual(pred: np.ndarray, ms_t2: np.ndarray, *, model: ObservationModel, sigma: float) -> np.ndarray:
    """Local RMS of ``B_ms R pred - ms_t2``, per MS band, ``(n_ms, h, w)``.

    ``pred`` ``(n_hs, h, w)`` and ``ms_t2`` ``(n_ms, h, w)`` cover the same fine pixels; the values are
    exact at pixels farther than ``blur_radius(model.ms_sigma) + local_rms_radius(sigma)`` from a cut edge.
    """
    x = torch.from_numpy(np.ascontiguousarray(pred, dtype=np.float32))[None]
    seen = blur(spectral(x, model.srf_tensor(x)), model.ms_sigma)[0]
    return local_rms(seen - torch.from_numpy(np.ascontiguousarray(ms_t2, dtype=np.float32)), sigma)


def ms_change(ms_t1: np.ndarray, ms_t2: np.ndarray, *, sigma: float) -> np.ndarray:
    """Local RMS of ``ms_t2 - ms_t1`` per MS band, ``(n_ms, h, w)`` (exact farther than
    ``local_rms_radius(sigma)`` from a cut edge)."""
    return local_rms(np.asarray(ms_t2, dtype=np.float32) - np.asarray(ms_t1, dtype=np.float32), sigma)


def unexplained_band_sd(hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel,
                        max_pixels: int = 60_000) -> np.ndarray:
    """Per HS band, the standard deviation of HS(t1) minus its affine prediction from MS(t1), ``(n_hs,)``.

    Both on the coarse samples of :func:`dcstsf.scene_stats.scene_samples` (a regular subset of the whole
    scene, NumPy or Dask, nodata dropped), so every tiling sees the same values. An HS band that is nodata
    throughout (a water-vapour band some products leave empty) gets ``0``.
    """
    samples = scene_samples(hs_t1, ms_t1, ms_t2, model=model, max_pixels=max_pixels)
    ms = samples.ms1.astype(np.float64)
    hs = samples.hs.astype(np.float64)
    t = fit_spectral_map(ms, hs)
    resid = hs - (ms @ t[:-1] + t[-1])
    return resid.std(axis=0)

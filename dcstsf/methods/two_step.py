"""``two-step``: regression-based HS-MS sharpening at t1, then a similar-pixel-weighted temporal update.

Step 1 (sharpening, a regression-injection GLP scheme, Aiazzi et al. 2006; Selva et al. 2015): a
per-scene affine map ``T`` from MS to HS spectra is fitted on the whole scene at the HS resolution
(``HS ~ T [MS, 1]``), and the sharpened t1 cube is

    X1 = T MS1 + U,    U = upsample(HS1 - DB(T MS1)),

i.e. the MS-synthesised HS cube carries the fine spatial detail and the part of HS(t1) that the MS bands
cannot explain is added back at the coarse resolution (bicubic). ``DB`` is the foundation's
:meth:`~dcstsf.operators.ObservationModel.ms_to_coarse`, the same path :func:`~dcstsf.methods.base.scene_samples`
uses to fit ``T``, so the regression is applied at the scale it was learned at.

Step 2 (temporal update, STARFM/FSDAF-style, Gao et al. 2006; Zhu et al. 2016): the MS change
``MS2 - MS1`` is averaged over the *similar pixels* of a ``(2w+1)^2`` fine window (pixels within
``2 sigma_b / m`` of the centre in every MS band at *both* dates, weighted by spectral and spatial
distance), mapped onto the HS bands with the linear part of ``T``, and added:

    X2 = X1 + T_lin W(MS2 - MS1).

All scene statistics (``T``, the per-band thresholds) are computed once in :meth:`TwoStep.fit`.
Everything in :meth:`TwoStep.apply` has a finite receptive field, so tiled fusion equals whole-image
fusion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dcstsf.methods.base import (
    Fitted,
    RegionMethod,
    SceneSamples,
    fit_spectral_map,
    round_up_to_ratio,
    scene_samples,
)
from dcstsf.operators import ObservationModel, blur_radius, upsample, upsample_region
from dcstsf.scene_stats import select_ms_bands, usable_ms_bands

__all__ = [
    "TwoStep",
    "fine_band_std",
    "fit_two_step",
    "regression_residual",
    "regression_sharpen",
    "similar_pixel_mean",
    "two_step_reach",
    "usable_band_inputs",
    "usable_band_samples",
]

#: Fine pixels sampled (on a regular stride) for the per-band scene standard deviations.
_STD_SAMPLES = 250_000


def two_step_reach(model: ObservationModel, window_radius: int) -> int:
    """Receptive field (fine pixels, not rounded) of :func:`regression_sharpen` + the change update.

    The sharpened cube's coarse residual at coarse pixel ``I`` reads MS(t1) within the blur radius of
    :meth:`ObservationModel.ms_to_coarse` (the median HS PSF) around its ``r x r`` block; bicubic
    interpolation at a fine pixel reads the coarse pixels up to two blocks away, whose far edge is at
    most ``3 r - 1`` fine pixels off. The change branch reads ``window_radius`` pixels around.
    """
    r = model.ratio
    rho_coarse = blur_radius(model.ms_to_coarse_psf)
    return max(3 * r - 1 + rho_coarse, int(window_radius))


def fine_band_std(ms: Any, *, max_pixels: int = _STD_SAMPLES) -> np.ndarray:
    """Per-band standard deviation of a fine cube ``(band, y, x)`` (NumPy or Dask, NaN = nodata).

    Computed on a regular stride so it is cheap and deterministic on any scene size.
    """
    _, h, w = ms.shape
    stride = max(1, int(math.ceil(math.sqrt(h * w / max_pixels))))
    sub = np.asarray(ms[:, stride // 2 :: stride, stride // 2 :: stride], dtype=np.float64)
    std = np.nanstd(sub.reshape(sub.shape[0], -1), axis=1)
    return np.where(np.isfinite(std), std, 0.0)


def fit_two_step(
    samples: SceneSamples,
    ms_t1: Any,
    ms_t2: Any,
    *,
    ridge: float,
    n_classes: int,
) -> Fitted:
    """Scene state of ``two-step``: the MS->HS map and the similar-pixel thresholds for both dates.

    The threshold ``2 sigma_b / m`` (``m`` = ``n_classes``) is STARFM's rule for "spectrally similar".
    A floor of ``1e-6`` keeps a constant band from dividing by zero (every pixel is then similar in it).
    """
    t = fit_spectral_map(samples.ms1, samples.hs, ridge=ridge)
    thr1 = np.maximum(2.0 * fine_band_std(ms_t1) / n_classes, 1e-6)
    thr2 = np.maximum(2.0 * fine_band_std(ms_t2) / n_classes, 1e-6)
    return {
        "spectral_map": t.astype(np.float32),
        "threshold_t1": thr1.astype(np.float32),
        "threshold_t2": thr2.astype(np.float32),
    }


def usable_band_samples(
    samples: SceneSamples, ms_t1: Any, ms_t2: Any, *, model: ObservationModel, method: str
) -> tuple[SceneSamples, Any, Any, np.ndarray | None]:
    """The scene's samples and MS cubes without its degenerate MS bands (:func:`~dcstsf.scene_stats.usable_ms_bands`).

    Returns ``(samples, ms_t1, ms_t2, bands)`` with ``bands`` the indices of the bands kept, or ``None``
    (and the inputs untouched) when every band is usable. ``two-step`` and ``variational`` work with any
    set of MS bands, so a band that carries no information is simply left out: the regression, the
    similarity thresholds and the MS data terms are those of a sensor without it.
    """
    usable = usable_ms_bands(samples, model=model, method=method)
    if usable.all():
        return samples, ms_t1, ms_t2, None
    bands = np.flatnonzero(usable)
    kept = SceneSamples(samples.hs, samples.ms1[:, bands], samples.ms2[:, bands])
    return kept, ms_t1[bands], ms_t2[bands], bands


def usable_band_inputs(
    ms_t1: np.ndarray, ms_t2: np.ndarray, *, model: ObservationModel, fitted: Fitted
) -> tuple[np.ndarray, np.ndarray, ObservationModel]:
    """A window's MS cubes and the observation model restricted to the bands ``fit`` kept (``"ms_bands"``)."""
    if "ms_bands" not in fitted:
        return ms_t1, ms_t2, model
    bands = np.asarray(fitted["ms_bands"])
    return np.asarray(ms_t1)[bands], np.asarray(ms_t2)[bands], select_ms_bands(model, bands)


def _map(t: torch.Tensor, ms: torch.Tensor, *, offset: bool = True) -> torch.Tensor:
    """``T [ms, 1]`` (or ``T_lin ms`` without the offset) for an ``(n_ms, H, W)`` cube."""
    out = torch.einsum("mb,mhw->bhw", t[:-1], ms)
    return out + t[-1][:, None, None] if offset else out


def regression_residual(
    hs: torch.Tensor, ms: torch.Tensor, t: torch.Tensor, *, model: ObservationModel
) -> torch.Tensor:
    """``HS - DB(T [MS, 1])`` on the coarse grid: what the MS bands cannot explain.

    ``DB`` blurs every band alike and keeps constants, so ``DB(T [MS, 1]) = T [DB(MS), 1]``: computed
    from the few MS bands, not from the ``n_hs``-band synthetic cube.
    """
    return hs - _map(t, model.ms_to_coarse(ms))


def regression_sharpen(
    hs: torch.Tensor,
    ms: torch.Tensor,
    t: torch.Tensor,
    *,
    model: ObservationModel,
    region: tuple[int, int, int, int] | None = None,
) -> torch.Tensor:
    """``X = T MS + upsample(HS - DB(T MS))``: regression-injection sharpening of a coarse HS window
    (residual from :func:`regression_residual`). With ``region = (y0, y1, x0, x1)`` (fine grid) only
    that part of ``X`` is computed.
    """
    residual = regression_residual(hs, ms, t, model=model)
    if region is None:
        return _map(t, ms) + upsample(residual, model.ratio)
    y0, y1, x0, x1 = region
    out = upsample_region(residual, model.ratio, region)
    out += _map(t, ms[:, y0:y1, x0:x1])
    return out


def similar_pixel_mean(
    values: torch.Tensor,
    features: torch.Tensor,
    thresholds: torch.Tensor,
    *,
    radius: int,
) -> torch.Tensor:
    """Average ``values`` ``(C, H, W)`` over the similar pixels of a ``(2 radius + 1)^2`` window.

    Neighbour ``q`` of pixel ``p`` is similar when ``|f_b(q) - f_b(p)| <= thresholds_b`` for every
    feature band ``b`` (STARFM's rule; the centre is always similar). Its weight is
    ``1 / ((1 + S) (1 + d / radius))`` with ``S`` the mean threshold-normalised spectral difference
    (in [0, 1]) and ``d`` the Euclidean distance in pixels, the STARFM/FSDAF combination of spectral
    and spatial distance (``1 +`` keeps the centre's weight finite). Edges are replicated.
    """
    if radius <= 0:
        return values
    _, h, w = features.shape
    pad = (radius, radius, radius, radius)
    fp = F.pad(features[None], pad, mode="replicate")[0]
    vp = F.pad(values[None], pad, mode="replicate")[0]
    inv_thr = (1.0 / thresholds)[:, None, None]
    num = torch.zeros_like(values)
    den = torch.zeros((h, w), dtype=values.dtype)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            sl = (slice(None), slice(radius + dy, radius + dy + h), slice(radius + dx, radius + dx + w))
            diff = (fp[sl] - features).abs() * inv_thr
            similar = (diff <= 1.0).all(dim=0)
            spectral_distance = diff.mean(dim=0)
            spatial_distance = 1.0 + math.hypot(dy, dx) / radius
            weight = similar.to(values.dtype) / ((1.0 + spectral_distance) * spatial_distance)
            num += weight * vp[sl]
            den += weight
    return num / den


class TwoStep(RegionMethod):
    """Regression-injection sharpening of HS(t1) with MS(t1), then a similar-pixel temporal update.

    Parameters
    ----------
    window_radius
        Half-size ``w`` (fine pixels) of the similar-pixel window (``(2w+1)^2`` pixels).
    n_classes
        STARFM's expected number of land-cover classes ``m``; similarity threshold ``2 sigma_b / m``.
    ridge
        Relative ridge of the MS->HS regression (see :func:`~dcstsf.methods.base.fit_spectral_map`).
    """

    name = "two-step"
    description = "regression-injection sharpening of HS(t1), then the MS change spread over similar pixels"
    reference = (
        "Aiazzi et al., PE&RS 72(5), 2006 (GLP); Selva et al., IEEE JSTARS 8(6), 2015; "
        "Gao et al., IEEE TGRS 44(8), 2006 (STARFM); Zhu et al., RSE 172, 2016 (FSDAF)"
    )

    def __init__(self, *, window_radius: int = 2, n_classes: int = 4, ridge: float = 1e-4) -> None:
        self.window_radius = int(window_radius)
        self.n_classes = int(n_classes)
        self.ridge = float(ridge)

    def identity(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "window_radius": self.window_radius,
            "n_classes": self.n_classes,
            "ridge": self.ridge,
        }

    def halo(self, model: ObservationModel) -> int:
        return round_up_to_ratio(two_step_reach(model, self.window_radius), model.ratio)

    def fit(self, hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel) -> Fitted:
        samples = scene_samples(hs_t1, ms_t1, ms_t2, model=model)
        samples, ms_t1, ms_t2, bands = usable_band_samples(samples, ms_t1, ms_t2, model=model, method=self.name)
        fitted = fit_two_step(samples, ms_t1, ms_t2, ridge=self.ridge, n_classes=self.n_classes)
        if bands is not None:
            fitted["ms_bands"] = bands
        return fitted

    def apply_region(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
        region: tuple[slice, slice],
    ) -> np.ndarray:
        """Only ``region``'s ``n_hs`` bands are computed: the halo is read through the MS bands only."""
        with torch.no_grad():
            x1, dx = self.estimate(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted, region=region)
            x1 += dx
            return x1.numpy()

    def estimate(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
        region: tuple[slice, slice] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The sharpened t1 cube ``X1`` and the predicted change ``T_lin W(MS2 - MS1)`` (tensors),
        on the whole window or on ``region`` (two slices of the fine grid)."""
        ms_t1, ms_t2, model = usable_band_inputs(ms_t1, ms_t2, model=model, fitted=fitted)
        hs = torch.as_tensor(np.ascontiguousarray(hs_t1, np.float32))
        ms1 = torch.as_tensor(np.ascontiguousarray(ms_t1, np.float32))
        ms2 = torch.as_tensor(np.ascontiguousarray(ms_t2, np.float32))
        t = torch.as_tensor(np.asarray(fitted["spectral_map"], np.float32))
        h, w = ms1.shape[-2:]
        ys, xs = region if region is not None else (slice(0, h), slice(0, w))
        y0, y1, _ = ys.indices(h)
        x0, x1_, _ = xs.indices(w)
        x1 = regression_sharpen(hs, ms1, t, model=model, region=(y0, y1, x0, x1_))
        dms = self.ms_change(ms1, ms2, fitted=fitted, region=(y0, y1, x0, x1_))
        return x1, _map(t, dms, offset=False)

    def ms_change(
        self,
        ms1: torch.Tensor,
        ms2: torch.Tensor,
        *,
        fitted: Fitted,
        region: tuple[int, int, int, int],
    ) -> torch.Tensor:
        """``W(MS2 - MS1)`` on ``region = (y0, y1, x0, x1)``: the MS change over similar pixels.

        Similarity at both dates: a pixel shares its neighbours' change only if they looked alike before
        *and* after, so change edges (fine in MS(t2)) are not smeared across. Computed on the region
        grown by the window radius (clipped: the image edge is replicated).
        """
        y0, y1, x0, x1 = region
        h, w = ms1.shape[-2:]
        rad = self.window_radius
        gy0, gy1, gx0, gx1 = max(y0 - rad, 0), min(y1 + rad, h), max(x0 - rad, 0), min(x1 + rad, w)
        grow = (slice(None), slice(gy0, gy1), slice(gx0, gx1))
        features = torch.cat([ms1[grow], ms2[grow]])
        thresholds = torch.as_tensor(
            np.concatenate([fitted["threshold_t1"], fitted["threshold_t2"]]).astype(np.float32)
        )
        dms = similar_pixel_mean(ms2[grow] - ms1[grow], features, thresholds, radius=rad)
        return dms[:, y0 - gy0 : y1 - gy0, x0 - gx0 : x1 - gx0]

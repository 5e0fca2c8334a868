"""Noise-aware MS consistency: DC-STSF's last steps towards MS(t2), gained by the scene's own MS noise.

The network's consistency steps move its HS(t2) estimate towards what MS(t2) observes with a gain learned
in training. How much of an MS residual is worth following depends on the scene: where the estimate
misses detail, the residual is signal; where the estimate is good, it is mostly MS noise. These steps let
the scene decide. Each adds the prior-weighted pseudo-inverse of the MS(t2) residual ``r`` (as the
consistency steps do) times a local Wiener gain shared by the MS bands,

``t = max(0, 1 - 1/q)``,   ``q = mean_b( mean_window(r_b^2) / noise_b^2 )``,

so a residual at the noise level is left alone and a residual well above it is followed. The bands share
the gain so that the correction does not bend spectra band by band.

The MS noise of each band is estimated once per scene (:func:`estimate_ms_noise`) from the difference
MS(t2) - MS(t1): the scene's textures cancel in it and changes are sparse, so the robust (median absolute)
response of a Laplacian to it measures the noise of the two dates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["MAX_STEPS", "MsNoiseOptions", "estimate_ms_noise", "noise_gain", "noise_step_reach"]

#: Most noise-aware steps: each widens every tile's halo by the MS blur radius plus half the window.
MAX_STEPS = 8

#: 3 x 3 Laplacian: zero response to planes, sum of squared taps 36.
_LAPLACIAN = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
#: The standard deviation of a Gaussian from its median absolute value.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class MsNoiseOptions:
    """DC-STSF's noise-aware MS consistency (``DCSTSF(ms_noise=...)``, CLI ``--ms-noise-steps``).

    Parameters
    ----------
    steps
        Corrections after the network's consistency steps; 0 switches them off.
    window
        Side (fine pixels, odd) of the neighbourhood over which the residual's energy is compared with
        the noise.
    """

    steps: int = 2
    window: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.steps <= MAX_STEPS or self.window < 1 or self.window % 2 == 0 or self.window > 31:
            raise ValueError(
                f"noise-aware MS consistency: steps must be 0 to {MAX_STEPS} and window an odd number of fine "
                f"pixels from 1 to 31, got steps={self.steps} and window={self.window}"
            )


def estimate_ms_noise(ms_t1: Sequence[np.ndarray], ms_t2: Sequence[np.ndarray]) -> np.ndarray:
    """The MS noise standard deviation of each band, ``(n_ms,)``, from windows of the two dates.

    ``ms_t1[i]``, ``ms_t2[i]``: matching ``(n_ms, h, w)`` windows of MS(t1) and MS(t2), free of nodata. With
    independent noise of equal level at both dates the difference has twice the variance of one date.
    Returns ``inf`` for every band when no window is at least 3 x 3 (then the steps change nothing).
    """
    responses: list[np.ndarray] = []
    for a, b in zip(ms_t1, ms_t2, strict=True):
        d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
        if d.ndim != 3 or min(d.shape[1:]) < 3:
            continue
        h, w = d.shape[1:]
        resp = sum(_LAPLACIAN[i, j] * d[:, i:h - 2 + i, j:w - 2 + j] for i in range(3) for j in range(3))
        responses.append(np.abs(resp).reshape(d.shape[0], -1))
    if not responses:
        n = len(ms_t1[0]) if len(ms_t1) else 0
        return np.full(n, np.inf)
    resp = np.concatenate(responses, axis=1)
    resp = np.where(np.isfinite(resp), resp, np.nan)
    return _MAD_TO_SIGMA * np.nanmedian(resp, axis=1) / math.sqrt(float((_LAPLACIAN**2).sum())) / math.sqrt(2.0)


def noise_gain(residual: torch.Tensor, noise_var: torch.Tensor, *, window: int) -> torch.Tensor:
    """The shared local Wiener gain ``(B, 1, H, W)`` of an MS residual ``(B, n_ms, H, W)``.

    ``noise_var`` ``(n_ms,)`` is in the residual's units. A zero noise variance (noise-free MS) gives the
    full gain wherever the residual is not zero.
    """
    energy = F.avg_pool2d(residual * residual, window, stride=1, padding=window // 2, count_include_pad=False)
    tiny = torch.finfo(residual.dtype).tiny
    q = (energy / noise_var.clamp_min(tiny)[None, :, None, None]).mean(dim=1, keepdim=True)
    return (1.0 - 1.0 / q.clamp_min(tiny)).clamp(0.0, 1.0)


def noise_step_reach(*, window: int, ms_reach: int) -> int:
    """Fine pixels one noise-aware step reads beyond the pixel it writes: the MS blur of the prediction
    and half the energy window."""
    return ms_reach + window // 2

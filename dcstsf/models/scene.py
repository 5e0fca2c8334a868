"""Per-scene state of the DC-STSF model: normalisation, spectral subspace and regression maps.

Computed once per scene in ``fit`` (never per tile), from matched coarse samples
(:func:`dcstsf.methods.scene_samples`). This is where the model's generalisation comes from: the
network's learned units only ever see inputs normalised by these scene statistics and only produce
residual corrections in the scene's own spectral subspace.

Symbols (all NumPy float32):

``mu`` (n_hs,), ``scale`` ()
    HS normalisation: ``x_n = (x - mu) / scale`` (one scale for all bands so noisy low-signal bands
    are not inflated).
``basis`` (n_hs, p)
    Top ``p`` principal directions of the normalised HS(t1) coarse spectra: ``x_n ~ basis @ c``.
``ms_mu``, ``ms_sigma`` (n_ms,)
    MS normalisation, per band, from MS(t1); ``ms_sigma`` is floored at :data:`MS_SIGMA_FLOOR` times the
    spread HS(t1) predicts for the band (:func:`~dcstsf.scene_stats.expected_ms_spread`).
``ms_map`` (n_ms + 1, p)
    Ridge least-squares map from normalised MS (plus a constant) to HS coefficients ``c``,
    fitted on coarse samples: the per-scene MS -> HS regression.
``ms_offset`` (n_ms,), ``ms_forward`` (n_ms, p)
    The MS observation in coefficient space: ``ms_n = ms_offset + B_ms(ms_forward @ c)``
    (the spectral operator R applied to ``mu + scale * basis @ c``, normalised).
``ms_pinv`` (p, n_ms)
    Prior-weighted pseudo-inverse of ``ms_forward``, ``L A^T (A L A^T + lam I)^-1`` with ``L`` the PCA
    variances: the most probable coefficient change (Gaussian prior) that explains an MS residual
    (the final consistency step). Unweighted, weak noise directions would absorb MS residuals.
``ms_trust`` (n_ms,)
    How far the network follows each MS band's residual (the MS projections of SSJE, the consistency
    steps): 1 for a band whose spatial spread at t1 is what HS(t1) predicts for it, falling to 0 for a
    band whose spread is a fraction (or a multiple) of it (:func:`ms_trust`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import SceneSamples, expected_ms_spread, fit_spectral_map

__all__ = [
    "MS_SIGMA_FLOOR", "MS_TRUST_RATIOS", "OPTIONAL_SCENE_KEYS", "SCENE_KEYS", "fit_scene_state", "ms_trust",
    "state_to_tensors",
]

SCENE_KEYS = (
    "mu", "scale", "basis", "ms_mu", "ms_sigma", "ms_map", "ms_offset", "ms_forward", "ms_pinv", "ms_trust",
)
#: Scene quantities that only some configurations read: ``ms_noise`` (n_ms,), the MS noise standard
#: deviation in the units of the normalised MS (the noise-aware steps, :mod:`dcstsf.models.ms_noise`).
OPTIONAL_SCENE_KEYS = ("ms_noise",)

#: Floor of an MS band's normalisation ``ms_sigma``, relative to the spread HS(t1) predicts for the band.
#: ``ms_offset`` and ``ms_forward`` divide the HS-predicted band by ``ms_sigma``: a band that shows much
#: less spatial spread than HS(t1) says it has (a low-contrast, miscalibrated or nearly flat band) would
#: otherwise make every MS residual of that band huge, and the learned units and the consistency step
#: would turn it into values far outside reflectance. On consistent inputs the band's own spread is
#: close to the predicted one, well above the floor, which then changes nothing.
MS_SIGMA_FLOOR = 0.5

#: Spread ratios (the band's spread at t1 over the spread HS(t1) predicts for it, or its inverse, whichever
#: is smaller) below which an MS band's residuals are not followed at all, and from which they are followed
#: in full. Consistent inputs give ratios near 1 (0.9 to 1.1 on real and simulated scenes, the HS blur and
#: MS responses estimated or off by a few per cent); a band with a tenth or ten times its expected contrast
#: is miscalibrated or not the band it is named, and following its residual corrupts every HS band.
MS_TRUST_RATIOS = (0.3, 0.6)


def ms_trust(samples: SceneSamples, *, model: ObservationModel, expected: np.ndarray | None = None) -> np.ndarray:
    """Per MS band, the weight ``(n_ms,)`` in [0, 1] of its residuals (see :data:`MS_TRUST_RATIOS`).

    Judged at t1, the date of HS(t1): at t2 a real change may lower or raise a band's spread. ``expected``:
    :func:`~dcstsf.scene_stats.expected_ms_spread` of the samples, when the caller has it already.
    """
    if expected is None:
        expected = expected_ms_spread(samples, model=model)
    spread = samples.ms1.astype(np.float64).std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.minimum(spread / expected, expected / spread)
    low, full = MS_TRUST_RATIOS
    # a band HS(t1) predicts flat and that is flat agrees with it: full trust
    ratio = np.where((expected <= 0) & (spread <= 0), 1.0, np.nan_to_num(ratio, nan=0.0))
    return np.clip((ratio - low) / (full - low), 0.0, 1.0)


def fit_scene_state(
    samples: SceneSamples,
    *,
    model: ObservationModel,
    rank: int,
    ridge: float = 1e-3,
) -> dict[str, np.ndarray]:
    """Scene statistics from matched coarse samples (see the module docstring for each symbol)."""
    hs = samples.hs.astype(np.float64)
    ms = samples.ms1.astype(np.float64)
    mu = hs.mean(axis=0)
    centred = hs - mu
    scale = float(np.sqrt((centred**2).mean()) + 1e-6)
    # eigen-decomposition of the band covariance: (n_hs x n_hs), cheap whatever the pixel count
    cov = (centred / scale).T @ (centred / scale) / max(len(hs) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    p = min(rank, hs.shape[1], len(hs))
    basis = np.zeros((hs.shape[1], rank))
    basis[:, :p] = evecs[:, order[:p]]
    # a deterministic sign per direction (eigh's signs are arbitrary): largest |entry| positive
    signs = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(rank)])
    basis *= np.where(signs == 0, 1.0, signs)[None, :]
    ms_mu = ms.mean(axis=0)
    expected = expected_ms_spread(samples, model=model)  # the floor of ms_sigma and the bands' trust
    ms_sigma = np.maximum(ms.std(axis=0), MS_SIGMA_FLOOR * expected) + 1e-4
    ms_n = (ms - ms_mu) / ms_sigma
    coeff = (centred / scale) @ basis
    ms_map = fit_spectral_map(ms_n, coeff, ridge=ridge)
    srf = model.srf.astype(np.float64)
    ms_offset = (srf @ mu - ms_mu) / ms_sigma
    ms_forward = (scale * (srf @ basis)) / ms_sigma[:, None]
    prior = np.zeros(rank)
    prior[:p] = np.clip(evals[order[:p]], 0.0, None)
    weighted = ms_forward * prior[None, :]
    gram = weighted @ ms_forward.T
    lam = ridge * np.trace(gram) / gram.shape[0] + 1e-9
    ms_pinv = weighted.T @ np.linalg.inv(gram + lam * np.eye(gram.shape[0]))
    out = {
        "mu": mu,
        "scale": np.asarray(scale),
        "basis": basis,
        "ms_mu": ms_mu,
        "ms_sigma": ms_sigma,
        "ms_map": ms_map,
        "ms_offset": ms_offset,
        "ms_forward": ms_forward,
        "ms_pinv": ms_pinv,
        "ms_trust": ms_trust(samples, model=model, expected=expected),
    }
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def state_to_tensors(state: dict[str, Any], *, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The scene state as float32 tensors (:data:`SCENE_KEYS`, and :data:`OPTIONAL_SCENE_KEYS` where present)."""
    keys = [*SCENE_KEYS, *(k for k in OPTIONAL_SCENE_KEYS if k in state)]
    return {k: torch.as_tensor(np.asarray(state[k]), dtype=torch.float32, device=device) for k in keys}

"""``variational``: an integrated MAP model of both dates (Shen, Meng & Zhang, IEEE TGRS 2016), solved
tile-exactly with a fixed number of preconditioned Nesterov steps.

Unknowns: the fine HS cubes ``X1`` (t1) and ``X2`` (t2). Energy (``A = D B_hs`` and ``M = B_ms R`` are
:meth:`~dcstsf.operators.ObservationModel.degrade_hs` and
:meth:`~dcstsf.operators.ObservationModel.degrade_ms`)::

    E(X1, X2) = w_h/2 ||HS1 - A X1||^2 + mu/2 ||MS1 - M X1||^2 + lam/2 ||MS2 - M X2||^2
              + gam/2 ||(X2 - X1) - dX||^2 + tau/2 ||grad (X2 - X1)||^2

``dX = T_lin W(MS2 - MS1)`` is the ``two-step`` change prediction (the MS change mapped to HS bands by
the scene regression and spread over similar pixels): the temporal term ties the change to what the MS
images say, the last term asks the change to be spatially smooth. Both cubes live in the
``k``-dimensional principal subspace of the scene's HS(t1) spectra, ``Xi = mean + E Ai`` (HySure-style:
the corrections the MS terms push in are natural spectra instead of SRF-shaped bumps, the noise outside
the subspace is dropped, and there are ``k`` not ``n_hs`` unknowns per pixel and date).

Solver: ``n`` Nesterov steps from the ``two-step`` estimate with a fixed step ``1/L`` and a fixed
pixel-wise ``2k x 2k`` preconditioner ``P`` (the inverse of the energy's Hessian for spatially constant
perturbations). ``P`` and ``L`` (a bound from the operators' norms) are computed once in
:meth:`Variational.fit`. No inner product over the window enters the iteration (conjugate gradients
would compute ``<r, r> / <p, A p>`` over the whole window, making every pixel depend on the window's
extent), so each step widens the receptive field by the operators' reach only and a window padded by
:meth:`Variational.halo` reproduces the whole-image result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dcstsf.errors import DcstsfInputError
from dcstsf.methods.base import Fitted, RegionMethod, round_up_to_ratio, scene_samples
from dcstsf.methods.two_step import (
    TwoStep,
    fit_two_step,
    regression_residual,
    two_step_reach,
    usable_band_inputs,
    usable_band_samples,
)
from dcstsf.operators import (
    ObservationModel,
    Psf,
    blur,
    blur_adjoint,
    blur_radius,
    decimate,
    decimate_adjoint,
    upsample,
)
from dcstsf.scene_stats import select_ms_bands
from dcstsf.windows import ShrinkingWindow

__all__ = ["Variational", "iteration_reach"]

#: Length of the 1-D grid the blur norms are computed on. The replicated edges make the norm slightly
#: larger than 1, the more so the shorter the grid; real windows are longer than this.
_NORM_GRID = 32
#: Margin on the bound of the largest eigenvalue (float32 round-off).
_STEP_SAFETY = 1.02
#: HS bands per block in the HS data term (bounds the memory of a window to a few k-band images).
_BAND_BLOCK = 16


def iteration_reach(model: ObservationModel) -> int:
    """Fine pixels one gradient step looks beyond a pixel.

    ``A^T A`` reads ``X`` through the HS blur, the ``r x r`` block and the blur again
    (``2 rho_hs + r - 1``); ``M^T M`` through the MS blur twice (``2 rho_ms``); the smoothness term one
    pixel.
    """
    rho_hs = blur_radius(model.hs_psf)
    rho_ms = blur_radius(model.ms_sigma)
    return max(2 * rho_hs + model.ratio - 1, 2 * rho_ms, 1)


def _blur_norm_sq(psf: np.ndarray | Psf) -> float:
    """Squared operator norm of :func:`~dcstsf.operators.blur` (widest over bands), edges included.

    The 2-D blur is separable, so its norm is the product of the 1-D norms along y and x (equal without a
    shift), each computed exactly from the operator's matrix on a short grid.
    """
    n = _NORM_GRID
    sigmas, shift = (psf.sigma, psf.shift) if isinstance(psf, Psf) else (psf, (0.0, 0.0))
    along_y = torch.eye(n, dtype=torch.float64).reshape(n, 1, n, 1)
    along_x = torch.eye(n, dtype=torch.float64).reshape(n, 1, 1, n)
    norm2 = 0.0
    for s in np.unique(np.asarray(sigmas, dtype=float)):
        ny = np.linalg.svd(blur(along_y, Psf(float(s), (shift[0], 0.0))).reshape(n, n).numpy(), compute_uv=False)[0]
        nx = np.linalg.svd(blur(along_x, Psf(float(s), (0.0, shift[1]))).reshape(n, n).numpy(), compute_uv=False)[0]
        norm2 = max(norm2, float(ny) * float(nx))
    return norm2**2


def _neg_laplacian(u: torch.Tensor) -> torch.Tensor:
    """Gradient of ``1/2 sum (u_p - u_q)^2`` over 4-neighbour pairs inside the window (Neumann edges)."""
    up = F.pad(u[None], (1, 1, 1, 1), mode="replicate")[0]
    return 4.0 * u - up[:, :-2, 1:-1] - up[:, 2:, 1:-1] - up[:, 1:-1, :-2] - up[:, 1:-1, 2:]


class Variational(RegionMethod):
    """Integrated MAP fusion of both dates, fixed-iteration preconditioned Nesterov in a PCA subspace.

    Parameters
    ----------
    iterations
        Number of Nesterov steps ``n`` (the halo grows by :func:`iteration_reach` per step).
    n_components
        Dimension ``k`` of the HS subspace (PCA of the scene's HS(t1) spectra).
    hs_weight, ms1_weight, ms2_weight
        ``w_h``, ``mu``, ``lam``: weights of the HS(t1), MS(t1), MS(t2) data terms (squared residuals
        summed over coarse resp. fine pixels).
    change_weight
        ``gam``: weight of the change prior ``||(X2 - X1) - dX||^2``.
    smooth_weight
        ``tau``: weight of the spatial smoothness of the change.
    damping
        Tikhonov damping of the preconditioner, relative to its largest eigenvalue (keeps subspace
        directions the MS bands barely see from amplifying noise).
    window_radius, n_classes, ridge
        Options of the ``two-step`` estimate used as initialisation and change prior.
    """

    name = "variational"
    description = "integrated MAP model of both dates, fixed-step preconditioned Nesterov from two-step"
    reference = (
        "Shen, Meng & Zhang, IEEE TGRS 54(12), 2016; Simoes et al., IEEE TGRS 53(6), 2015 (HySure subspace)"
    )

    def __init__(
        self,
        *,
        iterations: int = 5,
        n_components: int = 10,
        hs_weight: float = 0.3,
        ms1_weight: float = 1.0,
        ms2_weight: float = 1.0,
        change_weight: float = 1.0,
        smooth_weight: float = 0.01,
        damping: float = 0.005,
        window_radius: int = 2,
        n_classes: int = 4,
        ridge: float = 1e-4,
    ) -> None:
        if change_weight <= 0 or iterations < 0 or n_components < 1:
            raise DcstsfInputError(
                f"variational: need change_weight > 0, iterations >= 0 and n_components >= 1, got "
                f"{change_weight}, {iterations}, {n_components}"
            )
        self.iterations = int(iterations)
        self.n_components = int(n_components)
        self.hs_weight = float(hs_weight)
        self.ms1_weight = float(ms1_weight)
        self.ms2_weight = float(ms2_weight)
        self.change_weight = float(change_weight)
        self.smooth_weight = float(smooth_weight)
        self.damping = float(damping)
        self.init = TwoStep(window_radius=window_radius, n_classes=n_classes, ridge=ridge)

    def identity(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "init"}
        out.update(self.init.identity())
        out["method"] = self.name
        return out

    def _reach(self, model: ObservationModel) -> int:
        return two_step_reach(model, self.init.window_radius) + self.iterations * iteration_reach(model)

    def halo(self, model: ObservationModel) -> int:
        return round_up_to_ratio(self._reach(model), model.ratio)

    # ------------------------------------------------------------------ fit

    def fit(self, hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel) -> Fitted:
        samples = scene_samples(hs_t1, ms_t1, ms_t2, model=model)
        # a degenerate MS band leaves the energy altogether (its data terms would pull every spectrum
        # towards a flat image), and the preconditioner and step are those of the bands kept
        samples, ms_t1, ms_t2, bands = usable_band_samples(samples, ms_t1, ms_t2, model=model, method=self.name)
        if bands is not None:
            model = select_ms_bands(model, bands)
        fitted = fit_two_step(samples, ms_t1, ms_t2, ridge=self.init.ridge, n_classes=self.init.n_classes)
        k = int(min(self.n_components, model.n_hs, len(samples) - 1))
        mean = samples.hs.mean(axis=0)
        centred = samples.hs - mean
        # principal directions of the scene's spectra, from the small n_hs x n_hs scatter matrix (their
        # signs do not matter: only the subspace enters the energy)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        basis = vectors[:, ::-1][:, :k]
        precond = self._preconditioner(basis, model)
        fitted["mean"] = mean.astype(np.float32)
        fitted["basis"] = basis.astype(np.float32)
        fitted["preconditioner"] = precond.astype(np.float32)
        fitted["step"] = self._step(model)
        if bands is not None:
            fitted["ms_bands"] = bands
        return fitted

    def _preconditioner(self, basis: np.ndarray, model: ObservationModel) -> np.ndarray:
        """Inverse of the ``2k x 2k`` Hessian for spatially constant perturbations, damped.

        For a constant image the blurs and the block mean are the identity and ``D^T D = I / r^2``, so
        the HS term contributes ``w_h / r^2`` and the MS terms ``E^T R^T R E``.
        """
        k = basis.shape[1]
        eye = np.eye(k)
        re = model.srf.astype(np.float64) @ basis
        gram = re.T @ re
        g = self.change_weight
        h11 = self.hs_weight / model.ratio**2 * eye + self.ms1_weight * gram + g * eye
        h22 = self.ms2_weight * gram + g * eye
        hess = np.block([[h11, -g * eye], [-g * eye, h22]])
        hess += self.damping * np.linalg.eigvalsh(hess).max() * np.eye(2 * k)
        return np.linalg.inv(hess)

    def _step(self, model: ObservationModel) -> float:
        """Step ``1 / L`` with ``L`` a bound on the largest eigenvalue of ``P H``.

        Every data term is bounded by its value for constant images times the squared norm of its blur
        (``H_data <= c^2 H0_data``), the smoothness term by ``8 tau / gam`` times the change term
        (``||grad u||^2 <= 8 ||u||^2``), so ``H <= max(c^2, 1 + 8 tau / gam) H0`` and
        ``P H <= max(c^2, 1 + 8 tau / gam)`` since ``P = (H0 + damping)^-1``.
        """
        c2 = max(_blur_norm_sq(model.hs_psf), _blur_norm_sq(model.ms_sigma))
        return 1.0 / (_STEP_SAFETY * max(c2, 1.0 + 8.0 * self.smooth_weight / self.change_weight))

    # ------------------------------------------------------------------ apply

    def _direction(
        self,
        a: torch.Tensor,
        e: torch.Tensor,
        p: torch.Tensor,
        data: tuple[torch.Tensor, ...],
        *,
        model: ObservationModel,
    ) -> torch.Tensor:
        """Preconditioned gradient ``P grad E`` at subspace coordinates ``a = (a1, a2)`` ``(2k, H, W)``.

        ``data`` is ``(mean, hs, ms, prior)``: the subspace origin ``(n_hs,)``, HS(t1), MS(t1) and
        MS(t2) stacked ``(2, n_ms, H, W)``, and the change prior's coordinates ``E^T dX``.

        The fine ``n_hs``-band cubes are never formed whole: ``M X = B_ms (R mean + (R E) A)`` and its
        adjoint go through the ``n_ms`` MS bands, and the HS term (a blur per HS band) runs over blocks
        of :data:`_BAND_BLOCK` bands. Same gradient, a fraction of the memory.
        """
        mean, hs, ms, prior = data
        k = e.shape[1]
        a2 = a.reshape(2, k, *a.shape[1:])
        srf = model.srf_tensor(a)
        re = srf @ e  # (n_ms, k)
        weights = torch.tensor([self.ms1_weight, self.ms2_weight], dtype=a.dtype)[:, None, None, None]
        ms_pred = blur((srf @ mean)[None, :, None, None] + torch.einsum("mk,tkhw->tmhw", re, a2), model.ms_sigma)
        grad = torch.einsum("mk,tmhw->tkhw", re, blur_adjoint(weights * (ms_pred - ms), model.ms_sigma))
        for b0 in range(0, e.shape[0], _BAND_BLOCK):
            band = slice(b0, b0 + _BAND_BLOCK)
            sigma = Psf(np.asarray(model.hs_sigma)[band], model.hs_shift)
            x1 = mean[band, None, None] + torch.einsum("bk,khw->bhw", e[band], a2[0])
            r_hs = decimate(blur(x1, sigma), model.ratio) - hs[band]
            g_hs = blur_adjoint(decimate_adjoint(r_hs, model.ratio), sigma)
            grad[0] += self.hs_weight * torch.einsum("bk,bhw->khw", e[band], g_hs)
        grad = grad.reshape(a.shape)
        change = a[k:] - a[:k]
        coupling = self.change_weight * (change - prior)
        if self.smooth_weight:
            coupling = coupling + self.smooth_weight * _neg_laplacian(change)
        grad[:k] -= coupling
        grad[k:] += coupling
        return torch.einsum("jk,khw->jhw", p, grad)

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
        """Iterate on the whole window in the subspace; expand to ``n_hs`` bands on ``region`` only."""
        ms_t1, ms_t2, model = usable_band_inputs(ms_t1, ms_t2, model=model, fitted=fitted)
        with torch.no_grad():
            e = torch.as_tensor(np.asarray(fitted["basis"], np.float32))
            mean = torch.as_tensor(np.asarray(fitted["mean"], np.float32))
            p = torch.as_tensor(np.asarray(fitted["preconditioner"], np.float32))
            t = torch.as_tensor(np.asarray(fitted["spectral_map"], np.float32))
            k = e.shape[1]
            step = float(fitted["step"])
            hs = torch.as_tensor(np.ascontiguousarray(hs_t1, np.float32))
            ms = torch.as_tensor(np.ascontiguousarray(np.stack([ms_t1, ms_t2]), np.float32))
            h, w = ms.shape[-2:]
            # the two-step estimate and change prior, projected on the subspace term by term (all maps
            # are linear per pixel and bicubic upsampling acts band by band, so E^T commutes with them)
            te = t[:-1] @ e  # (n_ms, k)
            residual = regression_residual(hs, ms[0], t, model=model)
            a1 = (
                torch.einsum("mk,mhw->khw", te, ms[0])
                + (e.T @ (t[-1] - mean))[:, None, None]
                + upsample(torch.einsum("bk,bhw->khw", e, residual), model.ratio)
            )
            dms = self.init.ms_change(ms[0], ms[1], fitted=fitted, region=(0, h, 0, w))
            prior_full = torch.einsum("mk,mhw->khw", te, dms)
            # each step reads `iteration_reach` pixels around: later steps run on a shrinking window
            step_reach = iteration_reach(model)
            win = ShrinkingWindow((h, w), region, model.ratio, self._reach(model))
            (a1,) = win.narrow(self.iterations * step_reach, a1)
            prior = win.fine(prior_full)
            a = torch.cat([a1, a1 + prior])
            y = a.clone()
            for it in range(self.iterations):
                data = (mean, win.coarse(hs), win.fine(ms), win.fine(prior_full))
                a_new = y - step * self._direction(y, e, p, data, model=model)
                y = a_new + (it / (it + 3.0)) * (a_new - a)
                a, y = win.narrow((self.iterations - it - 1) * step_reach, a_new, y)
            cy0, cy1, cx0, cx1 = win.crop_now()
            a2 = a[k:, cy0:cy1, cx0:cx1]
            x2 = torch.einsum("bk,khw->bhw", e, a2)
            x2 += mean[:, None, None]
            return x2.numpy()

"""The DC-STSF network: SSJE (unrolled alternating projection with SEU and ECU) cascaded into TVE (SFTN).

Paper (Meng et al., IEEE TGRS 63, 2025) gives the structure; the layers and the coefficient-space
formulation are ours (``docs/design.md`` says which is which). Everything runs in the scene's own
spectral subspace (``dcstsf.models.scene``): a fine HS cube is ``x = mu + scale * (basis @ c + perp)``
with ``c`` the ``p`` coefficients per pixel and ``perp`` the upsampled out-of-subspace remainder of
HS(t1). Because the HS blur is band-independent, ``D B_hs`` acts on ``c`` channel by channel, and the MS
observation is ``ms_offset + B_ms(ms_forward @ c)``: every projection below is the foundation's
operator, applied to ``p`` channels instead of ``n_hs``.

SSJE, stage ``k`` of ``K`` (starting from the regression + residual-injection estimate):

- **SEU** (spatial enhancement unit), projection onto the fine MS(t1) observation:
  ``c += alpha_k * T r_ms + SEU_k([c, r_ms, ms1])`` with ``r_ms = ms1 - M(c)`` and ``T`` the scene's
  MS -> HS regression map.
- **ECU** (error correction unit), projection onto the coarse HS(t1) observation:
  ``c += beta_k * U r_hs + ECU_k([U r_hs, c])`` with ``r_hs = c_hs - D B c`` and ``U`` bicubic upsampling.

TVE:

- **SFTN** (spectral fine-tuning network) reads ``[c1, ms1, ms2, ms2 - ms1, |ms2 - ms1|]`` and gives a
  per-pixel gate ``g`` and a correction ``delta``:
  ``c2 = T ms2 + g * (c1 - T ms1) + delta``. With ``g = 1, delta = 0`` this is the linear temporal update
  ``c1 + T (ms2 - ms1)``; under abrupt change the difference image lets ``g`` fall towards 0, so the
  t1-specific residual of a vanished land cover is not carried into t2.
- **Consistency**: a few steps ``c2 += gamma_j * P (ms2 - M(c2))`` with ``P`` the ridge pseudo-inverse,
  pulling the MS-space projection of HS(t2) towards the observed MS(t2).

All learned units are zero-initialised in their last layer, so the untrained network is the
classical physics-only iteration and learning only adds residual corrections.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import nn

from dcstsf.operators import blur, blur_radius, decimate, upsample

__all__ = ["DCSTSFConfig", "DCSTSFNet", "ConvUnit"]


@dataclass(frozen=True)
class DCSTSFConfig:
    """Architecture hyper-parameters (stored in every checkpoint)."""

    n_ms: int
    rank: int = 16
    stages: int = 3
    hidden: int = 32
    layers: int = 2
    consistency_steps: int = 2
    use_sftn: bool = True
    use_difference: bool = True
    #: SEU/ECU learned corrections (False: the physics-only SSJE; SFTN is governed by ``use_sftn``)
    learned_units: bool = True
    #: ablation knob: feed zeros instead of the difference image to a network trained with it
    zero_difference: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


class ConvUnit(nn.Module):
    """``layers`` 3x3 convolutions (GELU) and a zero-initialised 1x1 output: a residual corrector.

    Edge pixels are replicated (as in the operators), so a window's interior does not depend on
    where the window was cut. Receptive field: ``layers`` pixels.
    """

    def __init__(self, c_in: int, c_out: int, *, hidden: int, layers: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c = c_in
        for _ in range(layers):
            mods += [nn.Conv2d(c, hidden, 3, padding=1, padding_mode="replicate"), nn.GELU()]
            c = hidden
        self.body = nn.Sequential(*mods)
        self.head = nn.Conv2d(c, c_out, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.head(self.body(x))


def _map(mat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel linear map ``(out, in) @ (B, in, H, W)``."""
    return torch.einsum("oi,bihw->bohw", mat, x)


def _affine(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel affine map with ``t`` of shape ``(in + 1, out)`` (last row = constant)."""
    return _map(t[:-1].T, x) + t[-1][None, :, None, None]


class DCSTSFNet(nn.Module):
    """DC-STSF: SSJE (K stages of SEU + ECU) cascaded into TVE (SFTN + MS(t2) consistency)."""

    def __init__(self, config: DCSTSFConfig) -> None:
        super().__init__()
        self.config = config
        p, m, h, nl = config.rank, config.n_ms, config.hidden, config.layers
        self.seu = nn.ModuleList(ConvUnit(p + 2 * m, p, hidden=h, layers=nl) for _ in range(config.stages))
        self.ecu = nn.ModuleList(ConvUnit(2 * p, p, hidden=h, layers=nl) for _ in range(config.stages))
        sftn_in = p + 2 * m + (2 * m if config.use_difference else 0)
        self.sftn = ConvUnit(sftn_in, p + 1, hidden=h, layers=nl)
        self.alpha = nn.Parameter(torch.ones(config.stages))
        self.beta = nn.Parameter(torch.ones(config.stages))
        self.gamma = nn.Parameter(torch.full((config.consistency_steps,), 0.5))

    def receptive_field(self, *, ratio: int, hs_sigma: float, ms_sigma: np.ndarray) -> int:
        """A bound on the receptive field in fine pixels (before rounding to the ratio).

        Each ``D B`` then upsampling reaches ``blur radius + 4 ratio`` (block mean plus bicubic support,
        rounded up); each MS projection reaches the widest MS blur radius; each unit ``layers``.
        """
        cfg = self.config
        rb_hs, rb_ms = blur_radius(hs_sigma), blur_radius(ms_sigma)
        hs_proj = rb_hs + 4 * ratio
        units = cfg.layers if cfg.learned_units else 0
        total = hs_proj  # initial estimate
        total += cfg.stages * (rb_ms + units + hs_proj + units)
        total += cfg.layers if cfg.use_sftn else 0
        total += cfg.consistency_steps * rb_ms
        return max(total, 4 * ratio)  # the perp upsampling

    def forward(
        self,
        hs_t1: torch.Tensor,
        ms_t1: torch.Tensor,
        ms_t2: torch.Tensor,
        state: dict[str, torch.Tensor],
        *,
        ratio: int,
        hs_sigma: float,
        ms_sigma: np.ndarray,
    ) -> dict[str, torch.Tensor]:
        """Fuse a batch: ``hs_t1`` ``(B, n_hs, h, w)``, ``ms_t*`` ``(B, n_ms, h*r, w*r)``, reflectance.

        Returns ``{"hs_t2": ..., "hs_t1": ...}``, fine-grid reflectance ``(B, n_hs, h*r, w*r)``.
        """
        cfg = self.config
        mu = state["mu"][None, :, None, None]
        scale = state["scale"]
        basis = state["basis"]
        t_map = state["ms_map"]
        t_lin = t_map[:-1].T  # (p, n_ms)

        def dc(c: torch.Tensor) -> torch.Tensor:
            return decimate(blur(c, hs_sigma), ratio)

        def ms_model(c: torch.Tensor) -> torch.Tensor:
            return state["ms_offset"][None, :, None, None] + blur(_map(state["ms_forward"], c), ms_sigma)

        hs_n = (hs_t1 - mu) / scale
        c_hs = _map(basis.T, hs_n)
        perp = hs_n - _map(basis, c_hs)
        ms1 = (ms_t1 - state["ms_mu"][None, :, None, None]) / state["ms_sigma"][None, :, None, None]
        ms2 = (ms_t2 - state["ms_mu"][None, :, None, None]) / state["ms_sigma"][None, :, None, None]

        # --- SSJE: spatial-spectral joint enhancement ---------------------------------------------
        reg1 = _affine(t_map, ms1)
        c = reg1 + upsample(c_hs - dc(reg1), ratio)
        for k in range(cfg.stages):
            r_ms = ms1 - ms_model(c)
            c = c + self.alpha[k] * _map(t_lin, r_ms)
            if cfg.learned_units:
                c = c + self.seu[k](torch.cat([c, r_ms, ms1], dim=1))
            u = upsample(c_hs - dc(c), ratio)
            c = c + self.beta[k] * u
            if cfg.learned_units:
                c = c + self.ecu[k](torch.cat([u, c], dim=1))
        c1 = c
        perp_up = upsample(perp, ratio)

        # --- TVE: temporal variation estimation ----------------------------------------------------
        resid1 = c1 - reg1
        reg2 = _affine(t_map, ms2)
        if cfg.use_sftn:
            feats = [c1, ms1, ms2]
            if cfg.use_difference:
                diff = ms2 - ms1
                if cfg.zero_difference:
                    diff = torch.zeros_like(diff)
                feats += [diff, diff.abs()]
            out = self.sftn(torch.cat(feats, dim=1))
            gate = torch.sigmoid(out[:, :1] + 4.0)
            c2 = reg2 + gate * resid1 + out[:, 1:]
            perp2 = gate * perp_up
        else:
            c2 = reg2 + resid1
            perp2 = perp_up
        for j in range(cfg.consistency_steps):
            c2 = c2 + self.gamma[j] * _map(state["ms_pinv"], ms2 - ms_model(c2))

        def expand(coef: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
            return mu + scale * (_map(basis, coef) + rest)

        return {"hs_t2": expand(c2, perp2), "hs_t1": expand(c1, perp_up)}

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def flatten_batch(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B*H*W, C)`` (for spectral losses)."""
    return rearrange(x, "b c h w -> (b h w) c")

"""The DC-STSF network: SSJE (unrolled alternating projection with SEU and ECU) cascaded into TVE (SFTN).

Paper (Meng et al., IEEE TGRS 63, 2025) gives the structure; the layers and the coefficient-space
formulation are ours (``docs/design.md`` says which is which). Everything runs in the scene's own
spectral subspace (``dcstsf.models.scene``): a fine HS cube is ``x = mu + scale * basis @ c`` with
``c`` the ``p`` coefficients per pixel (with ``keep_remainder``, plus ``perp``, the upsampled
out-of-subspace remainder of HS(t1): mostly HS noise, dropped by default). Because the HS blur is
band-independent, ``D B_hs`` acts on ``c`` channel by channel, and the MS observation is
``ms_offset + B_ms(ms_forward @ c)``: every projection below is the foundation's operator, applied to
``p`` channels instead of ``n_hs``.

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
- **Noise-aware consistency** (ours, ``ms_noise_steps``, no parameters): further steps
  ``c2 += P (t * (ms2 - M(c2)))`` with a local gain ``t`` from the scene's MS noise
  (:mod:`dcstsf.models.ms_noise`): a residual at the noise level is left alone, a larger one followed.

All learned units are zero-initialised in their last layer, so the untrained network is the
classical physics-only iteration and learning only adds residual corrections.

**Where the learned units live** (``DCSTSFConfig.unit_space``, ours, not the paper's):

- ``"sensor"``: every learned unit reads only quantities with a fixed,
  sensor-defined meaning (normalised MS bands, MS-space projections of the coefficients and residuals,
  basis-invariant norms) and writes MS-space corrections that the scene's own operators (``T`` or the
  prior-weighted pseudo-inverse ``P``) map into the scene subspace, plus scalar per-pixel gains:

  - SEU: ``e = SEU_k([M(c), r_ms, ms1])``, ``c += T e``;
  - ECU: ``[g, e] = ECU_k([A u, |u|, M(c), ms1])``, ``c += g * u + P e`` (``A`` = ``ms_forward``);
  - SFTN: ``[gate, e] = SFTN([A c1, |c1 - reg1|, ms1, ms2, d, |d|])``, ``c2 = reg2 + gate * resid1 + T e``.

  The scene's PCA coefficients mean different things in every scene (the basis is fitted per scene),
  so a unit that reads or writes them can learn the training scene's basis. This variant was built to
  remove that dependence; the shipped 4-band weights use it (the library validation chose it there,
  ``docs/results.md``).
- ``"coefficient"`` (default, the shipped 10-band weights): the units read and write the coefficients
  directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import nn

from dcstsf.models.local_map import LocalMapOptions, local_map_correction, local_map_corrections, local_map_reach
from dcstsf.models.ms_noise import MsNoiseOptions, noise_gain, noise_step_reach
from dcstsf.operators import Psf, blur, blur_radius, decimate, upsample, upsample_halo, upsample_region
from dcstsf.windows import ShrinkingWindow

__all__ = [
    "PHYSICS_STEP_SIZES",
    "UNIT_SPACES",
    "UNIT_STRIP_ELEMENTS",
    "ConvUnit",
    "DCSTSFConfig",
    "DCSTSFNet",
    "physics_only_network",
]

UNIT_SPACES = ("sensor", "coefficient")
#: The unrolled iteration's step sizes at their physics values, where every network starts: SSJE's
#: ``alpha`` and ``beta`` (full projection steps) and the consistency steps' ``gamma``.
PHYSICS_STEP_SIZES = {"alpha": 1.0, "beta": 1.0, "gamma": 0.5}
#: HS bands upsampled at a time when the output is expanded in place (inference).
_EXPAND_BLOCK = 32
#: Elements of one hidden activation of a learned unit evaluated at a time in inference (row strips):
#: 4 M float32 = 16 MB, against 51 MB for a 630^2 window with 32 hidden channels.
UNIT_STRIP_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class DCSTSFConfig:
    """Architecture hyper-parameters (stored in every checkpoint)."""

    n_ms: int
    rank: int = 16
    #: SSJE stages. One by default: the physics-only network (the untrained default, fused when no
    #: weights apply) scores higher with one stage than with three on real spectra and library scenes,
    #: since every further MS projection adds the regression's correction to spectral directions the MS
    #: bands barely see (``docs/results.md``, "SSJE with one stage"). Training configs and checkpoints
    #: state their own (the shipped weights unroll three)
    stages: int = 1
    hidden: int = 32
    layers: int = 2
    consistency_steps: int = 2
    use_sftn: bool = True
    use_difference: bool = True
    #: SEU/ECU learned corrections (False: the physics-only SSJE; SFTN is governed by ``use_sftn``)
    learned_units: bool = True
    #: ablation knob: feed zeros instead of the difference image to a network trained with it
    zero_difference: bool = False
    #: "coefficient": units read/write the scene's subspace coefficients (the shipped weights);
    #: "sensor": they read/write MS-space quantities mapped by the scene's operators (see module docs)
    unit_space: str = "coefficient"
    #: TVE's MS -> HS map: 0 the scene's global map; ``> 0`` the map corrected per coarse pixel on a window
    #: of this half-width (coarse pixels) of the scene itself (:mod:`dcstsf.models.local_map`)
    local_map_radius: int = 0
    #: shrinkage of the windowed map towards the global one
    local_map_ridge: float = 0.1
    #: add the upsampled out-of-subspace remainder of HS(t1) to the output. Off by default: the remainder
    #: is mostly HS(t1) noise (the subspace holds the scene's spectra), which upsampling only smooths,
    #: and the library validation scores the network higher without it (``docs/results.md``)
    keep_remainder: bool = False
    #: noise-aware MS consistency steps after the consistency steps (:mod:`dcstsf.models.ms_noise`); they
    #: read the scene's MS noise (``ms_noise`` in the scene state, set by ``DCSTSF.fit``). No parameters
    #: of their own: training leaves them off and the method sets them for fusion
    ms_noise_steps: int = 0
    #: side (fine pixels, odd) of the window over which an MS residual is compared with the noise
    ms_noise_window: int = 5

    def __post_init__(self) -> None:
        if self.unit_space not in UNIT_SPACES:
            raise ValueError(f"unit_space must be one of {UNIT_SPACES}, got {self.unit_space!r}")
        LocalMapOptions(self.local_map_radius, self.local_map_ridge)  # checks the values
        MsNoiseOptions(self.ms_noise_steps, self.ms_noise_window)  # checks the values

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
        self.layers, self.hidden = layers, hidden
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        # The 1x1 head as a per-pixel matrix product: oneDNN's 1x1 convolution splits its work by the
        # number of threads and rounds differently with each split, which would make a tile's result
        # depend on how many tiles run at once.
        h = self.body(x)
        return _map(self.head.weight[:, :, 0, 0], h) + self.head.bias[None, :, None, None]

    def forward_parts(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """The unit on ``torch.cat(parts, dim=1)``; in inference, row strip by row strip.

        A tile's hidden activations are the largest tensors of the network (``hidden`` channels on the
        whole working window, with a padded copy per layer). Output rows ``[a, b)`` depend only on input
        rows ``[a - layers, b + layers)``, and the replicate padding of a strip cut from inside the window
        only reaches the ``layers`` rows that are dropped again, so the strips give the whole-window result
        while the activations of one strip only are alive. Training keeps the single call (autograd).
        """
        h, w = parts[0].shape[-2:]
        rows = max(4 * self.layers, UNIT_STRIP_ELEMENTS // max(1, self.hidden * w))
        if torch.is_grad_enabled() or rows >= h:
            return self(torch.cat(parts, dim=1))
        out = parts[0].new_empty((parts[0].shape[0], self.head.out_channels, h, w))
        for a in range(0, h, rows):
            b = min(h, a + rows)
            a0, b0 = max(0, a - self.layers), min(h, b + self.layers)
            strip = self(torch.cat([p[..., a0:b0, :] for p in parts], dim=1))
            out[..., a:b, :] = strip[..., a - a0 : b - a0, :]
        return out


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
        diff_in = 2 * m if config.use_difference else 0
        if config.unit_space == "sensor":
            seu_io, ecu_io = (3 * m, m), (3 * m + 1, m + 1)
            sftn_io = (3 * m + 1 + diff_in, m + 1)
        else:
            seu_io, ecu_io = (p + 2 * m, p), (2 * p, p)
            sftn_io = (p + 2 * m + diff_in, p + 1)
        self.seu = nn.ModuleList(ConvUnit(*seu_io, hidden=h, layers=nl) for _ in range(config.stages))
        self.ecu = nn.ModuleList(ConvUnit(*ecu_io, hidden=h, layers=nl) for _ in range(config.stages))
        self.sftn = ConvUnit(*sftn_io, hidden=h, layers=nl)
        self.alpha = nn.Parameter(torch.empty(config.stages))
        self.beta = nn.Parameter(torch.empty(config.stages))
        self.gamma = nn.Parameter(torch.empty(config.consistency_steps))
        self.reset_step_sizes(tuple(PHYSICS_STEP_SIZES))

    def reset_step_sizes(self, names: tuple[str, ...]) -> None:
        """Set the step sizes ``names`` (keys of :data:`PHYSICS_STEP_SIZES`) to their physics values."""
        with torch.no_grad():
            for name in names:
                getattr(self, name).fill_(PHYSICS_STEP_SIZES[name])

    def reaches(self, *, ratio: int, hs_sigma: float | Psf, ms_sigma: np.ndarray) -> dict[str, int]:
        """How far (fine pixels) each kind of step of the unrolled graph reads beyond the pixel it writes.

        One ``U D B`` projection (``"hs_projection"``: blur, block mean, bicubic upsampling) reaches
        ``rb_hs + 3 ratio - 1`` fine pixels: a fine pixel of coarse block ``q`` reads coarse pixels
        ``q-2 .. q+2`` (bicubic, pixel-centre aligned), whose blocks extend ``3 ratio - 1`` pixels from it
        at most, plus the blur radius. Each MS projection (``"ms_projection"``) reaches the widest MS blur
        radius; each learned unit ``layers`` pixels (0 when the units are off).
        """
        cfg = self.config
        upsample_reach = upsample_halo(ratio) + ratio - 1  # bicubic support from anywhere in a block
        units = cfg.layers if cfg.learned_units else 0
        rb_ms = blur_radius(ms_sigma)
        return {
            "hs_projection": blur_radius(hs_sigma) + upsample_reach,
            "ms_projection": rb_ms,
            "unit": units,
            # the sensor-space ECU also reads the blurred MS prediction M(c)
            "ecu_ms": rb_ms if (cfg.learned_units and cfg.unit_space == "sensor") else 0,
            "sftn": cfg.layers if cfg.use_sftn else 0,
            "upsample": upsample_reach,
            "ms_noise": noise_step_reach(window=cfg.ms_noise_window, ms_reach=rb_ms),
            "local_map": (local_map_reach(radius=cfg.local_map_radius, ratio=ratio,
                                          degradation_reach=blur_radius(hs_sigma) + ratio)
                          if cfg.local_map_radius > 0 else 0),
        }

    def receptive_field(self, *, ratio: int, hs_sigma: float | Psf, ms_sigma: np.ndarray) -> int:
        """A bound on the receptive field in fine pixels (before rounding to the ratio).

        The sum of :meth:`reaches` over the unrolled graph: the initial estimate (one HS projection),
        per stage an MS projection, the SEU, an HS projection and the ECU, then the SFTN and the
        consistency steps (one MS projection each). Tests check tiles against whole images with random,
        non-zero units.
        """
        total, _ = self._reach_schedule(ratio=ratio, hs_sigma=hs_sigma, ms_sigma=ms_sigma)
        return total

    def _reach_schedule(self, *, ratio: int, hs_sigma: float | Psf, ms_sigma: np.ndarray) -> tuple[int, dict[str, int]]:
        """``(receptive field, reaches)``; :meth:`forward` walks the same sum step by step."""
        cfg = self.config
        r = self.reaches(ratio=ratio, hs_sigma=hs_sigma, ms_sigma=ms_sigma)
        stage = r["ms_projection"] + r["unit"] + r["hs_projection"] + r["ecu_ms"] + r["unit"]
        tve = r["sftn"] + cfg.consistency_steps * r["ms_projection"] + cfg.ms_noise_steps * r["ms_noise"]
        total = r["hs_projection"] + cfg.stages * stage + tve
        # the remainder's upsampling; the windowed map, read from the inputs where TVE starts
        return max(total, r["upsample"] if cfg.keep_remainder else 0, tve + r["local_map"]), r

    def forward(
        self,
        hs_t1: torch.Tensor,
        ms_t1: torch.Tensor,
        ms_t2: torch.Tensor,
        state: dict[str, torch.Tensor],
        *,
        ratio: int,
        hs_sigma: float | Psf,
        ms_sigma: np.ndarray,
        crop: tuple[slice, slice] | None = None,
        outputs: tuple[str, ...] = ("hs_t2", "hs_t1"),
    ) -> dict[str, torch.Tensor]:
        """Fuse a batch: ``hs_t1`` ``(B, n_hs, h, w)``, ``ms_t*`` ``(B, n_ms, h*r, w*r)``, reflectance.

        Returns the requested ``outputs`` among ``"hs_t2"`` and ``"hs_t1"`` (the latent SSJE result):
        fine-grid reflectance ``(B, n_hs, h*r, w*r)``, or only the fine-grid region ``crop`` (two slices
        with non-negative starts and stops). All the work in coefficient space runs on the whole window;
        the expansion to ``n_hs`` bands, which dominates time and memory, runs on ``crop`` only and gives
        exactly the same values there.
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

        sensor_units = cfg.unit_space == "sensor"
        fwd, pinv = state["ms_forward"], state["ms_pinv"]

        def norm(x: torch.Tensor) -> torch.Tensor:  # basis-invariant (the basis is orthonormal)
            return x.norm(dim=1, keepdim=True)

        hs_n = (hs_t1 - mu) / scale
        c_hs_full = _map(basis.T, hs_n)
        perp = hs_n - _map(basis, c_hs_full) if cfg.keep_remainder else None
        del hs_n  # a whole-window HS cube: not needed beyond the projection
        ms1_full = (ms_t1 - state["ms_mu"][None, :, None, None]) / state["ms_sigma"][None, :, None, None]
        ms2_full = (ms_t2 - state["ms_mu"][None, :, None, None]) / state["ms_sigma"][None, :, None, None]
        reach, rs = self._reach_schedule(ratio=ratio, hs_sigma=hs_sigma, ms_sigma=ms_sigma)
        local = None
        if cfg.local_map_radius > 0:  # from the inputs alone, on the caller's whole window
            local = local_map_corrections(c_hs_full, dc(ms1_full), t_map, radius=cfg.local_map_radius,
                                          ridge=cfg.local_map_ridge)
        win = ShrinkingWindow(tuple(ms_t1.shape[-2:]), crop, ratio, reach)
        remaining = reach

        def step(consumed: int, *tensors: torch.Tensor) -> list[torch.Tensor]:
            """A step reaching ``consumed`` pixels is done: drop what can no longer reach the crop."""
            nonlocal remaining
            remaining -= consumed
            return win.narrow(remaining, *tensors)

        # --- SSJE: spatial-spectral joint enhancement ---------------------------------------------
        reg1_full = _affine(t_map, ms1_full)
        (c,) = step(rs["hs_projection"], reg1_full + upsample(c_hs_full - dc(reg1_full), ratio))
        del reg1_full  # recomputed on the (smaller) TVE window below rather than kept through SSJE
        trust = state["ms_trust"][None, :, None, None]
        for k in range(cfg.stages):
            predicted = ms_model(c)
            r_ms = (win.fine(ms1_full) - predicted) * trust
            c = c + self.alpha[k] * _map(t_lin, r_ms)
            c, r_ms, predicted = step(rs["ms_projection"], c, r_ms, predicted)
            ms1 = win.fine(ms1_full)
            if cfg.learned_units and sensor_units:
                c = c + _map(t_lin, self.seu[k].forward_parts([predicted, r_ms, ms1]))
            elif cfg.learned_units:
                c = c + self.seu[k].forward_parts([c, r_ms, ms1])
            (c,) = step(rs["unit"], c)
            u = upsample(win.coarse(c_hs_full) - dc(c), ratio)
            c, u = step(rs["hs_projection"], c, u)
            if cfg.learned_units and sensor_units:
                out = self.ecu[k].forward_parts([_map(fwd, u), norm(u), ms_model(c), win.fine(ms1_full)])
                c = c + (self.beta[k] + out[:, :1]) * u + _map(pinv, out[:, 1:])
            else:
                c = c + self.beta[k] * u
                if cfg.learned_units:
                    c = c + self.ecu[k].forward_parts([u, c])
            (c,) = step(rs["ecu_ms"] + rs["unit"], c)
        c1 = c

        # --- TVE: temporal variation estimation ----------------------------------------------------
        ms1, ms2 = win.fine(ms1_full), win.fine(ms2_full)
        reg1, reg2 = _affine(t_map, ms1), _affine(t_map, ms2)
        if local is not None:
            region = win.current()
            reg1 = reg1 + local_map_correction(local, ms1, ratio=ratio, region=region)
            reg2 = reg2 + local_map_correction(local, ms2, ratio=ratio, region=region)
            del local
        resid1 = c1 - reg1
        del reg1
        if cfg.use_sftn:
            feats = [_map(fwd, c1), norm(resid1)] if sensor_units else [c1]
            feats += [ms1, ms2]
            if cfg.use_difference:
                diff = ms2 - ms1
                if cfg.zero_difference:
                    diff = torch.zeros_like(diff)
                feats += [diff, diff.abs()]
                del diff
            out = self.sftn.forward_parts(feats)
            # The logistic written out: torch.sigmoid's vectorised and scalar paths round differently, and
            # which elements take which path follows the thread count.
            gate2: torch.Tensor | None = 1.0 / (1.0 + torch.exp(-(out[:, :1] + 4.0)))
            delta = _map(t_lin, out[:, 1:]) if sensor_units else out[:, 1:]
            c2 = reg2 + gate2 * resid1 + delta
            del feats, out, delta  # the unit's inputs and output: dead before the n_hs-band expansion
        else:
            gate2 = None
            c2 = reg2 + resid1
        del resid1, reg2
        def tve_step(
            consumed: int, c2: torch.Tensor, c1: torch.Tensor, gate2: torch.Tensor | None
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
            """:func:`step` on TVE's tensors: the SSJE result is wanted on the crop too, so ``c1`` (and the
            gate, when there is one) stay on the same window as ``c2``."""
            c2, c1, *gate = step(consumed, c2, c1, *([gate2] if gate2 is not None else []))
            return c2, c1, (gate[0] if gate else None)

        def ms2_residual(c: torch.Tensor) -> torch.Tensor:
            """The MS(t2) residual of ``c``, each band weighted by the trust the scene gives it."""
            return (win.fine(ms2_full) - ms_model(c)) * trust

        c2, c1, gate2 = tve_step(rs["sftn"], c2, c1, gate2)
        for j in range(cfg.consistency_steps):
            c2 = c2 + self.gamma[j] * _map(state["ms_pinv"], ms2_residual(c2))
            c2, c1, gate2 = tve_step(rs["ms_projection"], c2, c1, gate2)
        if cfg.ms_noise_steps > 0:
            if "ms_noise" not in state:
                raise ValueError(
                    "ms_noise_steps > 0 needs the scene's MS noise ('ms_noise' in the scene state); fit the scene "
                    "with DCSTSF.fit, or set ms_noise_steps=0"
                )
            noise_var = state["ms_noise"] ** 2
            for _ in range(cfg.ms_noise_steps):
                resid2 = ms2_residual(c2)
                c2 = c2 + _map(state["ms_pinv"], noise_gain(resid2, noise_var, window=cfg.ms_noise_window) * resid2)
                del resid2
                c2, c1, gate2 = tve_step(rs["ms_noise"], c2, c1, gate2)

        y0, y1, x0, x1 = win.region
        crop_region = win.region
        cy0, cy1, cx0, cx1 = win.crop_now()

        def expand(coef: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
            """``mu + scale * (basis @ c + gate * perp)`` on the crop (``perp`` only with ``keep_remainder``)."""
            coef = coef[..., cy0:cy1, cx0:cx1]
            gate = gate[..., cy0:cy1, cx0:cx1] if gate is not None else None
            if perp is None:
                if torch.is_grad_enabled():
                    return mu + scale * _map(basis, coef)
                return _map(basis, coef).mul_(scale).add_(mu)  # one n_hs-band buffer
            if torch.is_grad_enabled():  # training: out-of-place, autograd-safe
                perp_crop = upsample_region(perp, ratio, crop_region)
                rest = perp_crop if gate is None else gate * perp_crop
                return mu + scale * (_map(basis, coef) + rest)
            # inference: one n_hs-band buffer, updated in place (halves the peak memory of a tile)
            # the upsampled remainder, written band block by band block into the output buffer (a
            # whole-cube upsampling would hold a second n_hs-band cube, with margins, at the peak)
            b = coef.shape[0]
            out = coef.new_empty((b, perp.shape[1], y1 - y0, x1 - x0))
            for b0 in range(0, perp.shape[1], _EXPAND_BLOCK):
                bands = slice(b0, b0 + _EXPAND_BLOCK)
                out[:, bands] = upsample_region(perp[:, bands], ratio, crop_region)
            if gate is not None:
                out.mul_(gate)
            n = out.shape[1]
            flat = out.view(b, n, -1)
            flat.baddbmm_(basis.expand(b, -1, -1), coef.reshape(b, coef.shape[1], -1))
            return out.mul_(scale).add_(mu)

        result: dict[str, torch.Tensor] = {}
        if "hs_t2" in outputs:
            result["hs_t2"] = expand(c2, gate2)
        if "hs_t1" in outputs:
            result["hs_t1"] = expand(c1, None)
        return result

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


#: Seed of the hidden layers of :func:`physics_only_network`.
PHYSICS_ONLY_SEED = 0


def physics_only_network(config: DCSTSFConfig) -> DCSTSFNet:
    """The untrained network of ``config`` (learned units at their zero initialisation), in eval mode.

    Its output is the physics-only iteration whatever the hidden layers hold (behind zero output layers),
    but scene adaptation trains from them: they are drawn from a fixed seed, so an adapted network is the
    same in every run and process. The caller's global random stream is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PHYSICS_ONLY_SEED)
        return DCSTSFNet(config).eval()


def flatten_batch(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B*H*W, C)`` (for spectral losses)."""
    return rearrange(x, "b c h w -> (b h w) c")

"""Physical observation operators, one implementation each, used by the simulator, the model and
the baselines alike.

Longer than most modules on purpose: every operator sits next to its adjoint, and the adjoint tests
and the methods rely on the pair staying together.

Conventions (see ``docs/design.md``):

- Cubes are ``(..., band, y, x)`` torch tensors (any leading batch dims), reflectance in [0, 1].
- **Pixel corners.** Coarse pixel ``(i, j)`` covers exactly the fine pixels
  ``[i*r:(i+1)*r, j*r:(j+1)*r]``; the grids share their top-left corner.
- **Decimation** ``D`` is the block mean over those ``r x r`` fine pixels (the detector integrates over
  its footprint); its adjoint spreads each coarse value evenly, ``D^T y = repeat(y) / r^2``.
- **Blur** ``B`` is a per-band Gaussian PSF (separable, truncated at 3 sigma, edge pixels replicated).
  For the HS sensor the Gaussian is matched so that *Gaussian x box* has the sensor's MTF at the coarse
  Nyquist frequency; for MS bands on the fine grid the Gaussian alone carries the band's MTF, widened by
  ``band GSD / grid GSD`` (20 m Sentinel-2 bands resampled to 10 m are blurrier).
- **Spectral operator** ``R`` (``n_ms x n_hs``, rows sum to 1) from :mod:`dcstsf.sensors`.
- Observation model: ``HS_coarse = D B_hs X`` and ``MS = B_ms R X``.

Adjoints of the blur use ``torch.func.vjp`` so they are exact for the padded convolution (and
differentiable); decimation and spectral adjoints are closed-form.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dcstsf import sensors as _sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.sensors import Sensor

__all__ = [
    "ObservationModel",
    "Psf",
    "blur",
    "blur_adjoint",
    "blur_radius",
    "decimate",
    "decimate_adjoint",
    "decimated_blur_matrix",
    "gaussian_kernels",
    "hs_psf_sigma",
    "observe_hs",
    "observe_ms",
    "spectral",
    "spectral_adjoint",
    "upsample",
    "upsample_halo",
    "upsample_region",
]

#: Gaussian kernels are truncated at this many standard deviations (the receptive field is finite,
#: which is what makes tiled fusion exactly equal to whole-image fusion).
TRUNCATE = 3.0
#: Below this std-dev (pixels) a Gaussian is numerically the identity and is skipped.
MIN_SIGMA = 0.05


@dataclass(frozen=True)
class Psf:
    """A separable Gaussian point-spread function, optionally displaced by a sub-pixel shift.

    ``sigma`` is the std-dev in pixels, a scalar or one per band. ``shift`` is ``(dy, dx)`` in pixels:
    the footprint of an output pixel is centred ``shift`` away from the pixel (positive: down, right).
    A displaced kernel is the Gaussian convolved with linear interpolation by ``shift``, so its centroid is
    exactly ``shift`` even for a Gaussian far narrower than a pixel, and a zero shift gives the plain
    Gaussian bit for bit. Every operator that takes ``sigmas`` also takes a :class:`Psf`.
    """

    sigma: float | np.ndarray
    shift: tuple[float, float] = (0.0, 0.0)


SigmaLike = float | Sequence[float] | np.ndarray | Psf


def _split_psf(psf: SigmaLike) -> tuple[Any, tuple[float, float]]:
    """``(sigma, (dy, dx))`` of a :class:`Psf` or a plain sigma (no shift)."""
    if isinstance(psf, Psf):
        return psf.sigma, (float(psf.shift[0]), float(psf.shift[1]))
    return psf, (0.0, 0.0)


def blur_radius(sigma: SigmaLike) -> int:
    """Kernel radius in pixels for the widest of ``sigma`` (0 when no blur), a shift included."""
    sig, shift = _split_psf(sigma)
    s = float(np.max(np.asarray(sig, dtype=float))) if np.size(sig) else 0.0
    base = int(math.ceil(TRUNCATE * s)) if s >= MIN_SIGMA else 0
    return base + int(math.ceil(max(abs(shift[0]), abs(shift[1]))))


def gaussian_kernels(
    sigmas: np.ndarray, *, shift: float = 0.0, dtype: torch.dtype = torch.float32, radius: int | None = None
) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels ``(n, 2*radius+1)``, all padded to the widest radius.

    A band with ``sigma < MIN_SIGMA`` gets the identity kernel. ``shift`` (pixels) displaces every kernel
    by linear interpolation (see :class:`Psf`); ``radius`` pads to a larger common radius.
    """
    sig = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    base = blur_radius(sig)
    whole = int(math.floor(shift))
    frac = float(shift) - whole
    need = base + int(math.ceil(abs(float(shift))))
    radius = need if radius is None else max(int(radius), need)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.zeros((sig.size, t.size))
    for i, s in enumerate(sig):
        for offset, weight in ((whole, 1.0 - frac), (whole + 1, frac)):
            if weight == 0.0:
                continue
            u = t - offset
            if s >= MIN_SIGMA:
                r_i = int(math.ceil(TRUNCATE * s))
                g = np.where(np.abs(u) <= r_i, np.exp(-0.5 * (u / s) ** 2), 0.0)
            else:
                g = (u == 0).astype(float)
            k[i] += weight * g / g.sum()
    return torch.as_tensor(k, dtype=dtype)


def decimated_blur_matrix(n: int, ratio: int, sigma: float, coarse: np.ndarray, *, shift: float = 0.0) -> Any:
    """``decimate(blur(.))`` along one axis of ``n`` fine pixels, restricted to the coarse pixels ``coarse``.

    A ``scipy.sparse`` CSR matrix ``(len(coarse), n)``: row ``k`` holds the weights of the fine pixels that
    make coarse pixel ``coarse[k]`` (Gaussian ``sigma`` displaced by ``shift`` from :func:`gaussian_kernels`,
    then the block mean; replicated edges fold onto the border pixel, as in :func:`blur`). The blur is
    separable, so ``W_y @ image @ W_x.T`` is ``decimate(blur(image))`` at the chosen coarse pixels: a
    per-scene sample costs a few taps per sample instead of blurring every fine pixel
    (``ObservationModel.ms_to_coarse_at``).
    """
    from scipy import sparse

    kern = gaussian_kernels(np.array([sigma], dtype=np.float64), shift=shift, dtype=torch.float64)[0].numpy()
    rad = (kern.size - 1) // 2
    coarse = np.asarray(coarse, dtype=np.int64).reshape(-1)
    # fine pixel i*r + q reads fine pixel i*r + q + t with weight kern[t + rad]; the block mean divides by r
    q = np.arange(ratio)[:, None]
    t = np.arange(-rad, rad + 1)[None, :]
    offsets = (q + t).reshape(-1)
    weights = np.broadcast_to(kern[None, :] / ratio, (ratio, kern.size)).reshape(-1)
    cols = np.clip(coarse[:, None] * ratio + offsets[None, :], 0, n - 1)
    rows = np.broadcast_to(np.arange(coarse.size)[:, None], cols.shape)
    vals = np.broadcast_to(weights[None, :], cols.shape)
    # duplicates (clamped edge taps) are summed by the COO -> CSR conversion
    return sparse.coo_matrix((vals.ravel(), (rows.ravel(), cols.ravel())), shape=(coarse.size, n)).tocsr()


def _flatten(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    if x.ndim < 3:
        raise DcstsfInputError(f"expected a cube (..., band, y, x), got shape {tuple(x.shape)}")
    lead = tuple(x.shape[:-3])
    return x.reshape(-1, *x.shape[-3:]), lead


def _blur_kernels(x: torch.Tensor, sigmas: SigmaLike) -> tuple[int, torch.Tensor, torch.Tensor]:
    """``(radius, kernels along y, kernels along x)`` (each ``(C, 2 radius + 1)``) of the per-band blur of
    ``x``: shared by :func:`blur` and :func:`blur_adjoint` so the two always use the same operator. Without
    a shift both axes get the same tensor."""
    sig_like, (dy, dx) = _split_psf(sigmas)
    sig = np.broadcast_to(np.asarray(sig_like, dtype=float), (x.shape[-3],))
    radius = blur_radius(Psf(sig, (dy, dx)))
    if radius == 0:
        empty = x.new_empty((0,))
        return 0, empty, empty
    if dy == 0.0 and dx == 0.0:
        k = gaussian_kernels(sig, dtype=x.dtype).to(x.device)
        return radius, k, k
    ky = gaussian_kernels(sig, shift=dy, dtype=x.dtype, radius=radius).to(x.device)
    kx = gaussian_kernels(sig, shift=dx, dtype=x.dtype, radius=radius).to(x.device)
    return radius, ky, kx


def _depthwise_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` laid out for a per-band (grouped) convolution: channels-last on the CPU when the band count is
    not a multiple of 16.

    oneDNN runs such a convolution on channel blocks of 16, padded, and converting a padded result back
    took 25-125 ms to *set up* for every new image shape (10 MS bands: 1.8 of the 30 CPU s of a 1023^2
    DC-STSF run, whose windows shrink step by step). Channels-last needs no padding: the same values,
    no per-shape cost, about 6 % more time per call once set up (docs/design.md).
    """
    if x.device.type == "cpu" and x.shape[1] % 16:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def blur(x: torch.Tensor, sigmas: SigmaLike) -> torch.Tensor:
    """Per-band Gaussian blur of ``x`` (``(..., C, H, W)``); ``sigmas`` in pixels, scalar or length C, or a
    :class:`Psf` (a displaced Gaussian)."""
    xf, lead = _flatten(x)
    c = xf.shape[1]
    radius, ky, kx = _blur_kernels(xf, sigmas)
    if radius == 0:
        return x
    xp = _depthwise_layout(F.pad(xf, (radius, radius, radius, radius), mode="replicate"))
    out = F.conv2d(xp, ky[:, None, :, None], groups=c)
    out = F.conv2d(out, kx[:, None, None, :], groups=c).contiguous()
    return out.reshape(*lead, *out.shape[-3:])


def blur_adjoint(y: torch.Tensor, sigmas: SigmaLike) -> torch.Tensor:
    """Exact adjoint of :func:`blur` (including its replicated edges).

    The two passes of :func:`blur` transposed, in reverse order, on the padded grid, then the adjoint of
    the replicate padding: each padded border row and column is summed onto the edge pixel it copies.
    Written out rather than taken from autograd (``torch.func.vjp``), which would also run the forward
    blur and keep its padded intermediates: the variational solver calls this on whole windows every
    iteration.
    """
    yf, lead = _flatten(y)
    c = yf.shape[1]
    radius, ky, kx = _blur_kernels(yf, sigmas)
    if radius == 0:
        return y
    z = F.conv_transpose2d(_depthwise_layout(yf), kx[:, None, None, :], groups=c)
    z = F.conv_transpose2d(z, ky[:, None, :, None], groups=c).contiguous()
    out = _replicate_pad_adjoint(z, radius)
    return out.reshape(*lead, *out.shape[-3:])


def _replicate_pad_adjoint(z: torch.Tensor, radius: int) -> torch.Tensor:
    """Adjoint of ``F.pad(x, (radius,) * 4, mode="replicate")`` for a padded ``z``: rows, then columns."""
    return _fold_replicated_edges(_fold_replicated_edges(z, radius, dim=-2), radius, dim=-1)


def _fold_replicated_edges(z: torch.Tensor, radius: int, *, dim: int) -> torch.Tensor:
    """Along ``dim``: the unpadded part of ``z``, with each padded border summed onto the edge it copies."""
    n = z.shape[dim] - 2 * radius
    out = z.narrow(dim, radius, n).clone()
    out.narrow(dim, 0, 1).add_(z.narrow(dim, 0, radius).sum(dim=dim, keepdim=True))
    out.narrow(dim, n - 1, 1).add_(z.narrow(dim, radius + n, radius).sum(dim=dim, keepdim=True))
    return out


def decimate(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """Block mean over ``ratio x ratio`` fine pixels (pixel corners coincide)."""
    xf, lead = _flatten(x)
    h, w = xf.shape[-2:]
    if h % ratio or w % ratio:
        raise DcstsfInputError(
            f"fine grid {h}x{w} is not a multiple of the ratio {ratio}; crop or pad the fine images so "
            "each coarse pixel covers exactly ratio x ratio fine pixels"
        )
    out = F.avg_pool2d(xf, kernel_size=ratio, stride=ratio)
    return out.reshape(*lead, *out.shape[-3:])


def decimate_adjoint(y: torch.Tensor, ratio: int) -> torch.Tensor:
    """Adjoint of :func:`decimate`: each coarse value spread evenly over its block (``/ ratio**2``)."""
    scaled = y / float(ratio * ratio)  # on the coarse grid: one fine-grid copy below, not three
    *lead, h, w = scaled.shape
    blocks = scaled[..., :, None, :, None].expand(*lead, h, ratio, w, ratio)
    return blocks.reshape(*lead, h * ratio, w * ratio)


#: Keys' cubic convolution parameter, as in PyTorch's ``mode="bicubic"``.
CUBIC_A = -0.75


def _cubic_weights(t: float) -> tuple[float, float, float, float]:
    """Keys' cubic convolution weights of the samples at offsets -1, 0, 1, 2 for a position ``t`` in [0, 1)."""
    a = CUBIC_A

    def near(x: float) -> float:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: float) -> float:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def _phases(ratio: int) -> list[tuple[int, tuple[float, ...]]]:
    """Per fine phase ``p`` (fine pixel ``ratio i + p``): the first coarse tap relative to ``i`` and the taps'
    weights. Pixel centres aligned (``align_corners=False``): the source position is ``i + (p + 0.5) / ratio - 0.5``.
    """
    out = []
    for p in range(ratio):
        src = (p + 0.5) / ratio - 0.5
        f = math.floor(src)
        out.append((f - 1, _cubic_weights(src - f)))
    return out


def _upsample_axis(x: torch.Tensor, ratio: int, dim: int, lo: int, hi: int) -> torch.Tensor:
    """Fine samples ``lo:hi`` of the bicubic interpolation of ``x`` (4-D) along ``dim`` (2 = y, 3 = x).

    Separable, exact cubic convolution with clamped edges (what ``F.interpolate`` computes, to rounding):
    4 taps per fine sample and axis instead of 16 per output pixel, and only the requested range.
    """
    n = x.shape[dim]
    i0, i1 = lo // ratio, -(-hi // ratio)  # coarse blocks holding the range
    m = i1 - i0
    # the coarse samples the taps read (two before i0, two after i1 - 1), edges clamped
    if i0 - 2 >= 0 and i1 + 2 <= n:
        src = x.narrow(dim, i0 - 2, m + 4)
    else:
        idx = torch.arange(i0 - 2, i1 + 2, device=x.device).clamp_(0, n - 1)
        src = x.index_select(dim, idx)
    phases = _phases(ratio)

    def tap(k: int) -> torch.Tensor:  # coarse samples i0 + k - 2 .. i1 + k - 3
        return src.narrow(dim, k + 2, m)

    if torch.is_grad_enabled() and x.requires_grad:  # autograd-safe (training)
        parts = [sum(w * tap(first + j) for j, w in enumerate(ws) if w != 0.0) for first, ws in phases]
        out = torch.stack(parts, dim=dim + 1)
    else:  # inference: write every phase into its strided slot of one buffer
        shape = list(x.shape)
        shape[dim : dim + 1] = [m, ratio]
        out = x.new_empty(shape)
        for p, (first, ws) in enumerate(phases):
            slot = out.select(dim + 1, p)
            started = False
            for j, w in enumerate(ws):
                if w == 0.0:
                    continue
                if started:
                    slot.add_(tap(first + j), alpha=w)
                else:
                    torch.mul(tap(first + j), w, out=slot)
                    started = True
    out = out.flatten(dim, dim + 1)
    return out.narrow(dim, lo - i0 * ratio, hi - lo)


def _bicubic_region(y: torch.Tensor, ratio: int, region: tuple[int, int, int, int]) -> torch.Tensor:
    yf, lead = _flatten(y)
    y0, y1, x0, x1 = region
    out = _upsample_axis(_upsample_axis(yf, ratio, 3, x0, x1), ratio, 2, y0, y1)
    return out.reshape(*lead, *out.shape[-3:])


def upsample(y: torch.Tensor, ratio: int, *, mode: str = "bicubic") -> torch.Tensor:
    """Interpolate a coarse cube onto the fine grid (pixel-centre aligned, ``align_corners=False``).

    Not an adjoint: the initial estimate of HS on the fine grid and the ``bicubic`` baseline.
    Edges are clamped (replicated border pixels). ``"bicubic"`` is Keys' cubic convolution
    (``a = -0.75``), the values of ``F.interpolate(mode="bicubic")``, computed separably (x, then y):
    two 1-D passes instead of a 2-D kernel, and source positions in float64 where PyTorch's kernel uses
    float32 (which puts its values off by up to ~1e-5 relative).
    """
    if mode == "bicubic":
        h, w = y.shape[-2:]
        return _bicubic_region(y, ratio, (0, h * ratio, 0, w * ratio))
    yf, lead = _flatten(y)
    if mode == "nearest":
        out = yf.repeat_interleave(ratio, dim=-2).repeat_interleave(ratio, dim=-1)
    else:
        out = F.interpolate(yf, scale_factor=ratio, mode=mode, align_corners=False)
    return out.reshape(*lead, *out.shape[-3:])


def upsample_halo(ratio: int) -> int:
    """Fine pixels of context :func:`upsample` needs beyond a window (bicubic: 2 coarse pixels)."""
    return 2 * ratio


def upsample_region(coarse: torch.Tensor, ratio: int, region: tuple[int, int, int, int]) -> torch.Tensor:
    """``upsample(coarse, ratio)[..., y0:y1, x0:x1]`` computed for the region only.

    ``region = (y0, y1, x0, x1)`` on the fine grid. Each fine pixel reads two coarse pixels on each side
    (clamped at the image edge), so the result equals the crop of the whole upsampling exactly, at the
    cost of the region.
    """
    return _bicubic_region(coarse, ratio, region)


def spectral(x: torch.Tensor, srf: torch.Tensor) -> torch.Tensor:
    """Apply the spectral operator: ``(n_ms, n_hs) @ (..., n_hs, H, W)``."""
    return torch.einsum("mb,...bhw->...mhw", srf.to(x.dtype), x)


def spectral_adjoint(y: torch.Tensor, srf: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`spectral`: ``R^T y``."""
    return torch.einsum("mb,...mhw->...bhw", srf.to(y.dtype), y)


def hs_psf_sigma(hs_sensor: Sensor, ratio: int) -> np.ndarray:
    """Per-band Gaussian std-dev (fine pixels) for the HS sensor's blur before block-mean decimation.

    The HS system MTF at the coarse Nyquist frequency (``f = 0.5/ratio`` cycles per fine pixel) is the
    product of the block mean's MTF, ``1 / (ratio * sin(pi / (2 ratio)))``, and the Gaussian's.
    The Gaussian takes what remains; when the box alone is already blurrier than the sensor, no blur.
    """
    box = 1.0 / (ratio * math.sin(math.pi / (2 * ratio))) if ratio > 1 else 1.0
    gauss = np.clip(hs_sensor.mtf_nyquist / box, 1e-6, 1.0)
    sigma_coarse = np.sqrt(-2.0 * np.log(gauss)) / np.pi
    return sigma_coarse * ratio


@dataclass(frozen=True, eq=False)
class ObservationModel:
    """How the fine HS truth ``X`` is seen by both sensors: ``HS = D B_hs X``, ``MS = B_ms R X``.

    Build it with :meth:`from_sensors`. ``srf`` is ``R`` (``n_ms x n_hs``), ``hs_sigma`` the per-HS-band
    and ``ms_sigma`` the per-MS-band Gaussian std-devs in fine pixels. ``hs_shift`` is the displacement of
    the HS footprints from their nominal place on the MS grid, ``(dy, dx)`` fine pixels (positive: down,
    right). :mod:`dcstsf.diagnosis` estimates the HS blur, the shift and ``srf`` from a scene; ``physics``
    says whether the values are the sensor tables' (``"tables"``) or estimated (``"estimated"``).
    """

    hs_sensor: Sensor
    ms_sensor: Sensor
    ratio: int
    srf: np.ndarray
    hs_sigma: np.ndarray
    ms_sigma: np.ndarray
    #: pixel size the fine grid stands for (sets the MS blur widths)
    ms_grid_gsd_m: float = 10.0
    hs_shift: tuple[float, float] = (0.0, 0.0)
    physics: str = "tables"

    @classmethod
    def from_sensors(
        cls,
        hs_sensor: Sensor | str,
        ms_sensor: Sensor | str,
        *,
        ms_bands: Sequence[str] | None = None,
        ratio: int = 3,
        ms_grid_gsd_m: float | None = None,
        use_bad_bands: bool = False,
    ) -> ObservationModel:
        """Build the model from sensors, the chosen MS bands and the integer ratio.

        ``ms_grid_gsd_m`` is the fine grid's pixel size (default: the finest GSD among ``ms_bands``).
        """
        if not isinstance(ratio, (int, np.integer)) or ratio < 1:
            raise DcstsfInputError(f"ratio must be a positive integer, got {ratio!r}")
        hs = _sensors.get(hs_sensor)
        ms_full = _sensors.get(ms_sensor)
        ms = ms_full.select(list(ms_bands)) if ms_bands is not None else ms_full
        grid = float(ms_grid_gsd_m) if ms_grid_gsd_m is not None else float(ms.gsd_m.min())
        srf = _sensors.spectral_response_matrix(hs, ms, use_bad_bands=use_bad_bands)
        return cls(
            hs_sensor=hs,
            ms_sensor=ms,
            ratio=int(ratio),
            srf=srf.astype(np.float32),
            hs_sigma=hs_psf_sigma(hs, int(ratio)),
            ms_sigma=ms.gaussian_psf_sigma(grid_gsd_m=grid),
            ms_grid_gsd_m=grid,
        )

    @property
    def n_hs(self) -> int:
        """Number of HS bands."""
        return self.hs_sensor.n_bands

    @property
    def n_ms(self) -> int:
        """Number of MS bands."""
        return self.ms_sensor.n_bands

    @property
    def hs_psf(self) -> Psf:
        """The HS blur before decimation: per-HS-band Gaussians displaced by :attr:`hs_shift`."""
        return Psf(np.asarray(self.hs_sigma), self.hs_shift)

    @property
    def ms_to_coarse_psf(self) -> Psf:
        """The blur :meth:`ms_to_coarse` applies to every band before decimation: the median HS std-dev,
        displaced like the HS."""
        return Psf(self.ms_to_coarse_sigma, self.hs_shift)

    @property
    def halo(self) -> int:
        """Receptive field of one application of the HS or MS operator, fine pixels."""
        return max(blur_radius(self.hs_psf), blur_radius(self.ms_sigma))

    def srf_tensor(self, like: torch.Tensor) -> torch.Tensor:
        """``R`` as a tensor matching ``like``'s dtype and device."""
        return torch.as_tensor(self.srf, dtype=like.dtype, device=like.device)

    def degrade_hs(self, x: torch.Tensor) -> torch.Tensor:
        """``D B_hs X``: the coarse HS observation of a fine cube."""
        return decimate(blur(x, self.hs_psf), self.ratio)

    def degrade_hs_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``B_hs^T D^T y``."""
        return blur_adjoint(decimate_adjoint(y, self.ratio), self.hs_psf)

    def degrade_ms(self, x: torch.Tensor) -> torch.Tensor:
        """``B_ms R X``: the MS observation of a fine HS cube."""
        return blur(spectral(x, self.srf_tensor(x)), self.ms_sigma)

    def degrade_ms_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``R^T B_ms^T y``."""
        return spectral_adjoint(blur_adjoint(y, self.ms_sigma), self.srf_tensor(y))

    def ms_to_coarse(self, ms: torch.Tensor) -> torch.Tensor:
        """MS images taken to the HS resolution with the HS spatial response.

        ``D B_hs`` applied to MS; the MS bands are already blurred by ``B_ms``, so this is the standard
        Wald-protocol approximation of what the MS sensor would see at the HS resolution. (Taking each MS
        band's own blur out, ``sqrt(sigma_hs^2 - sigma_ms^2)``, is closer to the physics but fused about
        1 dB worse with every method on the demo case, whose physics is exactly the tables'.)
        """
        return decimate(blur(ms, self.ms_to_coarse_psf), self.ratio)

    @property
    def ms_to_coarse_sigma(self) -> float:
        """The median HS Gaussian std-dev (fine pixels): what :meth:`ms_to_coarse` blurs every MS band with."""
        return float(np.median(self.hs_sigma))

    def ms_to_coarse_at(
        self, ms: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, origin: tuple[int, int] = (0, 0),
        shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """:meth:`ms_to_coarse` at the coarse pixels ``rows x cols`` only, as float64 ``(n_ms, len(rows), len(cols))``.

        ``ms`` is ``(n_ms, h, w)``, the part at fine offset ``origin`` of an image of fine ``shape``
        (default: ``ms`` is the whole image). A part gives its contribution to each sample: summed over
        parts that cover the image, it equals the whole image's value (the operator is linear), which
        lets a chunked array be sampled chunk by chunk. NaN in a sample's footprint makes it NaN.
        """
        oy, ox = origin
        h, w = ms.shape[-2:]
        H, W = (h, w) if shape is None else shape
        dy, dx = self.hs_shift
        sigma = self.ms_to_coarse_sigma
        wy = decimated_blur_matrix(H, self.ratio, sigma, rows, shift=dy)[:, oy : oy + h]
        wx = decimated_blur_matrix(W, self.ratio, sigma, cols, shift=dx)[:, ox : ox + w]
        # Only the fine rows and columns some footprint covers (about 60 % of each axis at the fit's
        # sample stride) are converted to float64 and multiplied: the same nonzeros in the same order,
        # so the same sums, from about a third of the memory traffic of converting the whole part.
        used_y, used_x = np.flatnonzero(wy.getnnz(axis=0)), np.flatnonzero(wx.getnnz(axis=0))
        wy, wx = wy[:, used_y], wx[:, used_x]
        h, w = used_y.size, used_x.size
        nb = ms.shape[0]
        a = np.asarray(np.asarray(ms)[:, used_y[:, None], used_x[None, :]], dtype=np.float64)
        # rows: (ny, h) @ (h, nb * w); then columns: (nx, w) @ (w, nb * ny)
        by_rows = wy @ a.transpose(1, 0, 2).reshape(h, nb * w)
        by_rows = by_rows.reshape(len(rows), nb, w).transpose(2, 1, 0).reshape(w, nb * len(rows))
        out = wx @ by_rows  # (nx, nb * ny)
        return np.ascontiguousarray(out.reshape(len(cols), nb, len(rows)).transpose(1, 2, 0))

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (for checkpoints and output attrs)."""
        return {
            "hs_sensor": self.hs_sensor.name,
            "ms_sensor": self.ms_sensor.name,
            "ms_bands": list(self.ms_sensor.band_names),
            "ratio": self.ratio,
            "n_hs": self.n_hs,
            "ms_grid_gsd_m": self.ms_grid_gsd_m,
            "physics": self.physics,
            "hs_psf_sigma": round(float(np.median(self.hs_sigma)), 6),
            "hs_shift": [round(float(v), 6) for v in self.hs_shift],
            "srf_sha256": hashlib.sha256(np.ascontiguousarray(self.srf, np.float32).tobytes()).hexdigest(),
        }


def _to_tensor(cube: Any) -> tuple[torch.Tensor, Any]:
    """A float tensor view of a NumPy array or DataArray (returns the DataArray for re-wrapping)."""
    import xarray as xr

    if isinstance(cube, xr.DataArray):
        return torch.as_tensor(np.asarray(cube.transpose(..., "band", "y", "x").values)), cube
    if isinstance(cube, torch.Tensor):
        return cube, None
    return torch.as_tensor(np.asarray(cube)), None


def observe_hs(model: ObservationModel, cube: Any) -> Any:
    """``D B_hs X`` for a NumPy array or an xarray DataArray ``(band, y, x)``.

    A DataArray comes back on the coarse grid: ``x``/``y`` are the block-centre coordinates, other
    coordinates and attrs (CRS included) are kept.
    """
    t, da = _to_tensor(cube)
    with torch.no_grad():
        out = model.degrade_hs(t)
    if da is None:
        return out if isinstance(cube, torch.Tensor) else out.numpy()
    r = model.ratio
    coords = {
        "y": da["y"].values.reshape(-1, r).mean(axis=1),
        "x": da["x"].values.reshape(-1, r).mean(axis=1),
    }
    res = da.isel(y=slice(0, out.shape[-2]), x=slice(0, out.shape[-1])).copy(data=out.numpy())
    return res.assign_coords(coords)


def observe_ms(model: ObservationModel, cube: Any) -> Any:
    """``B_ms R X`` for a NumPy array or an xarray DataArray ``(band, y, x)`` on the fine grid.

    A DataArray comes back with MS band names and their ``wavelength``/``fwhm`` coordinates.
    """
    t, da = _to_tensor(cube)
    with torch.no_grad():
        out = model.degrade_ms(t)
    if da is None:
        return out if isinstance(cube, torch.Tensor) else out.numpy()
    import xarray as xr

    ms = model.ms_sensor
    spatial = {k: v for k, v in da.coords.items() if "band" not in v.dims}
    res = xr.DataArray(out.numpy(), dims=("band", "y", "x"), coords=spatial, attrs=dict(da.attrs))
    return res.assign_coords(
        band=list(ms.band_names), wavelength=("band", ms.centers_nm), fwhm=("band", ms.fwhm_nm)
    )

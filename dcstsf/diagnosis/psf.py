"""The HS point-spread function of a scene: one Gaussian width and a sub-pixel shift, fitted to the data.

Physics (see :mod:`dcstsf.operators`): ``HS = D B_hs X`` with ``B_hs`` a Gaussian of std-dev ``sigma``
displaced by ``shift``, and ``MS_b = B_ms_b R_b X``. Variances of blurs in sequence add, so

    ``R_b HS  ~  D B(Psf(sigma_rel_b, shift)) MS_b``,  ``sigma_rel_b^2 = max(sigma^2 - ms_sigma_b^2, 0)``,

(:func:`relative_sigmas`, which applies the rule to the variances of the operators' sampled kernels), and
``(sigma, shift)`` are found by making the right-hand side match the left over a few windows of the
scene, band by band, after a per-band affine fit: a gain and offset between the products' calibrations
must not bias the blur. The fit's quality per band is the relative residual ``RMS / std`` of the MS side,
``sqrt(1 - rho^2)`` with ``rho`` the correlation of the two sides; the search minimises the sum over bands
of its square. Samples within a border of each window edge are dropped, so that no sample reads a
replicated edge pixel.

Search. The displaced kernel of :func:`dcstsf.operators.gaussian_kernels` is the Gaussian moved by linear
interpolation between whole-pixel offsets, so at a given width the prediction is *bilinear* in the
fractional part of the shift: a weighted sum of four images, each the blurred MS block-averaged with its
grid moved by a whole number of pixels (a "phase"). One blur per width therefore gives the prediction at
every shift, and the misfit anywhere in a 2 x 2 pixel box of shifts follows from a 9 x 9 Gram matrix of
phases per band. The search scans every whole-pixel shift once (at the middle width: a symmetric blur
does not move a footprint's centre), then, for a geometric grid of widths and finally in a bounded scalar
minimisation (:func:`scipy.optimize.minimize_scalar`) between the best grid width's neighbours, refines
the shift inside the box by nested scans down to ``shift_tol``. :func:`psf_residual` and
:func:`matched_samples` compute the prediction with the operators themselves (``blur`` then ``decimate``);
the tests check that the two agree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import optimize

from dcstsf.errors import DcstsfInputError
from dcstsf.operators import TRUNCATE, ObservationModel, Psf, blur, decimate, gaussian_kernels

__all__ = [
    "MatchedSamples",
    "PsfEstimate",
    "PsfOptions",
    "estimate_psf",
    "kernel_variance",
    "matched_samples",
    "max_shift",
    "psf_residual",
    "relative_sigmas",
]


@dataclass(frozen=True)
class PsfOptions:
    """Search ranges and sampling of :func:`estimate_psf`.

    Parameters
    ----------
    sigma_range
        Smallest and largest HS Gaussian std-dev searched, fine pixels.
    max_shift
        Largest ``|dy|`` and ``|dx|`` searched, fine pixels; ``None``: the ratio, one coarse pixel either
        way (products are normally co-registered well within half of one).
    border
        Coarse pixels dropped at each window edge; ``None``: enough that no sample depends on a padded
        (replicated) edge pixel of the widest kernel searched, the largest shift and the MS blur. Fewer
        would bias the width toward the edge's artificial flatness.
    grid_size
        Widths of the coarse grid (geometric over ``sigma_range``); the scalar refinement then searches
        between the best width's neighbours.
    sigma_tol
        Absolute tolerance of the refined width, fine pixels.
    shift_step
        Spacing of the first fractional-shift scan inside the 2 x 2 pixel box around the best whole-pixel
        shift, fine pixels; each following scan is ten times finer around the previous best.
    shift_tol
        Spacing of the last scan: the shift's resolution, fine pixels.
    min_pixels
        Fewest coarse samples (over all windows, after the border) the estimate accepts.
    """

    sigma_range: tuple[float, float] = (0.3, 3.0)
    max_shift: float | None = None
    border: int | None = None
    grid_size: int = 8
    sigma_tol: float = 0.005
    shift_step: float = 0.1
    shift_tol: float = 0.001
    min_pixels: int = 100


@dataclass(frozen=True)
class PsfEstimate:
    """The fitted HS point-spread function and how well it explains each MS band.

    Attributes
    ----------
    sigma
        HS Gaussian std-dev, fine pixels (the meaning of ``ObservationModel.hs_sigma``).
    shift
        ``(dy, dx)`` fine pixels, positive down/right (``ObservationModel.hs_shift``).
    relative_sigma
        ``(n_ms,)`` per MS band, the std-dev that takes it to the HS resolution in the fit (the methods
        blur every MS band with the HS ``sigma`` instead: ``ObservationModel.ms_to_coarse``).
    gain, offset
        ``(n_ms,)`` per-band affine map ``MS_coarse ~ gain * (R HS) + offset``, where ``MS_coarse`` is the MS
        band taken to the HS grid with this PSF and ``R HS`` the HS window through the spectral response.
    residual
        ``(n_ms,)`` relative residual per band: RMS of ``MS_coarse - gain * R HS - offset`` over the std-dev
        of ``MS_coarse`` on the samples (NaN for a band constant over them).
    n_pixels
        Coarse samples used (all windows, inside the border).
    border
        Coarse pixels dropped at each window edge.
    """

    sigma: float
    shift: tuple[float, float]
    relative_sigma: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    residual: np.ndarray
    n_pixels: int
    border: int = 0


@dataclass(frozen=True)
class MatchedSamples:
    """Coarse samples where HS and the MS taken to the HS grid meet, pooled over the windows.

    Attributes
    ----------
    hs
        ``(N, n_hs)`` HS spectra, float64.
    ms
        ``(N, n_ms)`` MS bands through ``D B(Psf(relative_sigma, shift))``, float64.
    window, row, col
        ``(N,)`` the window each sample comes from and its coarse row and column in that window.
    """

    hs: np.ndarray
    ms: np.ndarray
    window: np.ndarray
    row: np.ndarray
    col: np.ndarray

    def __len__(self) -> int:
        return int(self.hs.shape[0])


#: Widths (fine pixels) of the table that inverts the discrete kernels' variance; beyond its end the
#: continuous rule is exact to the table's last step.
_VARIANCE_GRID = np.arange(0.0, 8.0 + 1e-9, 0.002)


@functools.lru_cache(maxsize=1)
def _variance_table() -> np.ndarray:
    """Variance (pixels^2) of the operators' Gaussian kernel at each width of :data:`_VARIANCE_GRID`:
    sampled, truncated at ``TRUNCATE`` sigma and normalised, as :func:`~dcstsf.operators.gaussian_kernels`
    builds it. Increasing in the width (checked by the tests)."""
    kern = gaussian_kernels(_VARIANCE_GRID, dtype=torch.float64).numpy()
    t = np.arange(kern.shape[1], dtype=np.float64) - (kern.shape[1] - 1) // 2
    return kern @ t**2


def kernel_variance(sigma: float | np.ndarray) -> np.ndarray:
    """Variance of the operators' (sampled, truncated) Gaussian kernel of std-dev ``sigma`` pixels.

    Equal to ``sigma**2`` for ``sigma`` near 1 and above (to 1 %); below, sampling makes it smaller (0.24
    instead of 0.27 at 0.52, the width of a 10 m Sentinel-2 band on a 10 m grid).
    """
    s = np.asarray(sigma, dtype=np.float64)
    return np.where(s < _VARIANCE_GRID[-1], np.interp(s, _VARIANCE_GRID, _variance_table()), s**2)


def _width_of_variance(var: np.ndarray) -> np.ndarray:
    """The kernel width whose :func:`kernel_variance` is ``var`` (0 for none)."""
    table = _variance_table()
    v = np.asarray(var, dtype=np.float64)
    # the table is flat (to 1e-12) below about 0.15 px, where every width is the identity kernel
    lo = int(np.searchsorted(table, 1e-12))
    return np.where(v <= 0.0, 0.0, np.where(v < table[-1], np.interp(v, table[lo:], _VARIANCE_GRID[lo:]), np.sqrt(v)))


def relative_sigmas(sigma: float, model: ObservationModel) -> np.ndarray:
    """Per MS band, the width of the blur that takes MS band ``b`` (already blurred by its own sensor,
    ``ms_sigma_b``) to an HS Gaussian of std-dev ``sigma``, ``(n_ms,)`` fine pixels.

    Variances of blurs in sequence add, so this is ``sqrt(max(sigma^2 - ms_sigma_b^2, 0))``, applied to the
    variances of the operators' sampled kernels rather than to the continuous ones: the two differ only
    for widths below about one pixel, where the continuous rule would bias the fitted ``sigma`` upward (by
    7 % for a true 0.7 px seen with 10 m Sentinel-2 bands, in a case simulated with the operators).
    """
    ms_var = kernel_variance(np.asarray(model.ms_sigma, dtype=np.float64))
    return _width_of_variance(np.maximum(kernel_variance(float(sigma)) - ms_var, 0.0))


def max_shift(options: PsfOptions, model: ObservationModel) -> float:
    """The largest ``|dy|`` and ``|dx|`` (fine pixels) the search scans: ``options.max_shift``, else the ratio."""
    return float(model.ratio if options.max_shift is None else options.max_shift)


def _border(options: PsfOptions, model: ObservationModel, sigma_max: float, shift_max: float) -> int:
    """Coarse pixels to drop so no sample reads a replicated edge pixel (see :attr:`PsfOptions.border`)."""
    if options.border is not None:
        if options.border < 0:
            raise DcstsfInputError(f"PsfOptions(border={options.border}): the border must be >= 0 coarse pixels")
        return int(options.border)
    ms_reach = int(math.ceil(TRUNCATE * float(np.max(model.ms_sigma))))
    # a sample reads the widest relative blur moved by up to the largest whole-pixel shift, on MS pixels
    # that their own sensor blur took from up to ``ms_reach`` further (replicated at a scene edge)
    reach = int(math.ceil(TRUNCATE * sigma_max)) + int(math.ceil(shift_max)) + ms_reach
    return int(math.ceil(reach / model.ratio))


def _check_windows(
    hs: Sequence[np.ndarray], ms: Sequence[np.ndarray], model: ObservationModel
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The windows as float64 arrays, after checking their count, shapes and values."""
    if len(hs) != len(ms) or len(hs) == 0:
        raise DcstsfInputError(
            f"got {len(hs)} HS and {len(ms)} MS windows; give the same positive number of each (window k of MS "
            "covers the same area as window k of HS)"
        )
    r = model.ratio
    out_hs, out_ms = [], []
    for k, (h, m) in enumerate(zip(hs, ms)):
        h = np.asarray(h, dtype=np.float64)
        m = np.asarray(m, dtype=np.float64)
        if h.ndim != 3 or h.shape[0] != model.n_hs:
            raise DcstsfInputError(
                f"HS window {k} has shape {h.shape}; expected ({model.n_hs}, rows, cols) for the "
                f"{model.n_hs} bands of {model.hs_sensor.name}"
            )
        want = (model.n_ms, h.shape[1] * r, h.shape[2] * r)
        if m.shape != want:
            raise DcstsfInputError(
                f"MS window {k} has shape {m.shape}; expected {want}: the {model.n_ms} MS bands over the same "
                f"area as HS window {k} at ratio {r} (pixel corners coinciding)"
            )
        for name, a in (("HS", h), ("MS", m)):
            if not np.isfinite(a).all():
                raise DcstsfInputError(
                    f"{name} window {k} holds NaN or infinite values; choose windows free of nodata "
                    "(dcstsf.diagnosis.windows.scene_windows does)"
                )
        out_hs.append(h)
        out_ms.append(m)
    return out_hs, out_ms


def _srf(srf: np.ndarray | None, model: ObservationModel) -> np.ndarray:
    out = np.asarray(model.srf if srf is None else srf, dtype=np.float64)
    if out.shape != (model.n_ms, model.n_hs):
        raise DcstsfInputError(
            f"spectral response of shape {out.shape}; expected ({model.n_ms}, {model.n_hs}) (MS bands x HS bands)"
        )
    return out


def _too_few(n: int, border: int, options: PsfOptions) -> DcstsfInputError:
    return DcstsfInputError(
        f"only {n} coarse pixels remain inside a border of {border} pixels, fewer than the {options.min_pixels} the "
        "PSF estimate needs; give larger windows, or a smaller border (PsfOptions(border=...), which lets edge "
        "padding bias the estimate)"
    )


def matched_samples(
    hs: Sequence[np.ndarray],
    ms: Sequence[np.ndarray],
    *,
    model: ObservationModel,
    sigma: float,
    shift: tuple[float, float],
    border: int,
) -> MatchedSamples:
    """HS and MS at the coarse pixels inside ``border`` of every window, MS taken to the HS grid with the
    operators (``decimate(blur(MS, Psf(relative_sigma, shift)))``).

    Parameters
    ----------
    hs, ms
        Matching windows, ``(n_hs, h, w)`` and ``(n_ms, h*r, w*r)``.
    model
        The observation model (MS blur, ratio).
    sigma, shift
        The HS Gaussian std-dev and ``(dy, dx)``, fine pixels.
    border
        Coarse pixels dropped at each window edge.
    """
    hs_w, ms_w = _check_windows(hs, ms, model)
    psf = Psf(relative_sigmas(sigma, model), (float(shift[0]), float(shift[1])))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for k, (h, m) in enumerate(zip(hs_w, ms_w)):
        nr, nc = h.shape[1] - 2 * border, h.shape[2] - 2 * border
        if nr <= 0 or nc <= 0:
            continue
        with torch.no_grad():
            # float32 as in the search (the CPU convolution is far slower in float64)
            coarse = decimate(blur(torch.from_numpy(m.astype(np.float32)), psf), model.ratio).numpy()
        inner = (slice(None), slice(border, border + nr), slice(border, border + nc))
        coarse = coarse.astype(np.float64)
        rows, cols = np.meshgrid(np.arange(border, border + nr), np.arange(border, border + nc), indexing="ij")
        parts.append((
            h[inner].reshape(model.n_hs, -1).T,
            coarse[inner].reshape(model.n_ms, -1).T,
            np.full(nr * nc, k),
            rows.ravel(),
            cols.ravel(),
        ))
    if not parts:
        return MatchedSamples(np.zeros((0, model.n_hs)), np.zeros((0, model.n_ms)), *(np.zeros(0, int),) * 3)
    return MatchedSamples(*(np.concatenate([p[i] for p in parts]) for i in range(5)))


def _affine(ms: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per band (columns), ``ms ~ gain * target + offset`` by least squares: ``(gain, offset, residual)``
    with the residual relative to the std-dev of ``ms`` (NaN for a constant band)."""
    mc = ms - ms.mean(axis=0)
    tc = target - target.mean(axis=0)
    var_t = np.maximum((tc**2).sum(axis=0), 1e-300)
    gain = (mc * tc).sum(axis=0) / var_t
    offset = ms.mean(axis=0) - gain * target.mean(axis=0)
    res = ms - gain * target - offset
    spread = ms.std(axis=0)
    # a band without spread has no relative residual (NaN), not an arbitrary huge or zero one
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(spread > 0, np.sqrt((res**2).mean(axis=0)) / spread, np.nan)
    return gain, offset, rel


def psf_residual(
    hs: Sequence[np.ndarray],
    ms: Sequence[np.ndarray],
    *,
    model: ObservationModel,
    sigma: float,
    shift: tuple[float, float],
    srf: np.ndarray | None = None,
    options: PsfOptions = PsfOptions(),
) -> np.ndarray:
    """Per-band relative residual ``(n_ms,)`` of ``R HS`` against the MS taken to the HS grid at the given
    physics, after the per-band affine fit (:attr:`PsfEstimate.residual`).

    Parameters
    ----------
    hs, ms
        Matching windows, ``(n_hs, h, w)`` and ``(n_ms, h*r, w*r)``.
    model
        The observation model; ``srf`` replaces its spectral response when given.
    sigma, shift
        HS Gaussian std-dev and ``(dy, dx)``, fine pixels.
    options
        Sets the border (the same default as :func:`estimate_psf`, so residuals compare).
    """
    r_mat = _srf(srf, model)
    border = _border(options, model, options.sigma_range[1], max_shift(options, model))
    samples = matched_samples(hs, ms, model=model, sigma=sigma, shift=shift, border=border)
    if len(samples) < max(options.min_pixels, 3):
        raise _too_few(len(samples), border, options)
    return _affine(samples.ms, samples.hs @ r_mat.T)[2]


class _Search:
    """The search's data: centred ``R HS`` samples per band, and the MS windows ready to blur at any width."""

    def __init__(
        self, hs: list[np.ndarray], ms: list[np.ndarray], *, model: ObservationModel, srf: np.ndarray, border: int,
        pad: int,
    ) -> None:
        self.model = model
        r = model.ratio
        targets, self.groups = [], []
        # windows of one shape are blurred together (one batched call per width)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for k, h in enumerate(hs):
            if h.shape[1] > 2 * border and h.shape[2] > 2 * border:
                by_shape.setdefault(h.shape[1:], []).append(k)
        for shape, ks in by_shape.items():
            nr, nc = shape[0] - 2 * border, shape[1] - 2 * border
            for k in ks:
                t = np.einsum("mb,bhw->mhw", srf, hs[k][:, border : border + nr, border : border + nc])
                targets.append(t.reshape(model.n_ms, -1))
            # float32: the CPU convolution is an order of magnitude faster than in float64, and its
            # rounding (1e-7) is far below any residual that decides the fit
            stack = torch.from_numpy(np.stack([ms[k] for k in ks]).astype(np.float32))
            # Replicated by ``pad`` fine pixels so that every phase offset reads inside the array: blurring the
            # padded image and reading it ``s`` pixels away equals the operator's displaced kernel with its
            # own replicated edges (both clamp the same indices), so even a zero border stays exact.
            stack = F.pad(stack, (pad, pad, pad, pad), mode="replicate")
            self.groups.append((stack, border * r + pad, nr, nc))
        target = np.concatenate(targets, axis=1) if targets else np.zeros((model.n_ms, 0))
        self.n = target.shape[1]
        self.target = target - target.mean(axis=1, keepdims=True) if self.n else target
        self.target_var = np.maximum((self.target**2).sum(axis=1), 1e-300)

    def boxed(self, sigma: float) -> list[torch.Tensor]:
        """Per window group, the MS blurred to HS width ``sigma`` and block-averaged at every fine offset:
        element ``[..., y, x]`` is the mean of the ``r x r`` block whose top-left fine pixel is ``(y, x)``,
        i.e. what ``decimate`` gives for a grid starting there."""
        rel = relative_sigmas(sigma, self.model)
        r = self.model.ratio
        out = []
        with torch.no_grad():
            for stack, _, _, _ in self.groups:
                b = blur(stack, rel)
                # the block sum at every offset, one axis at a time (r - 1 shifted additions per axis)
                w = b.shape[-1] - r + 1
                bx = b[..., 0:w] + b[..., 1 : 1 + w] if r > 1 else b.clone()
                for q in range(2, r):
                    bx += b[..., q : q + w]
                h = b.shape[-2] - r + 1
                by = bx[..., 0:h, :] + bx[..., 1 : 1 + h, :] if r > 1 else bx
                for q in range(2, r):
                    by += bx[..., q : q + h, :]
                out.append(by.mul_(1.0 / (r * r)))
        return out

    def phases(self, boxed: list[torch.Tensor], first: tuple[int, int], count: int) -> np.ndarray:
        """``(n_ms, count**2, N)`` float64, centred per band: the blurred MS decimated with its grid moved by
        each whole-pixel offset ``(first[0] + a, first[1] + b)``, ``a, b < count`` (row-major), i.e. the
        prediction at that integer shift, at the samples."""
        r = self.model.ratio
        n_ms = self.model.n_ms
        p = np.empty((n_ms, count * count, self.n))
        n0 = 0
        for box, (_, start, nr, nc) in zip(boxed, self.groups):
            y0, x0 = start + first[0], start + first[1]
            region = box[:, :, y0 : y0 + (nr - 1) * r + count, x0 : x0 + (nc - 1) * r + count]
            # (k, n_ms, nr, nc, count, count) as a view: block i's rows i*r + a, columns j*r + b
            blocks = region.unfold(2, count, r).unfold(3, count, r)
            n1 = n0 + blocks.shape[0] * nr * nc
            p[:, :, n0:n1] = blocks.permute(1, 4, 5, 0, 2, 3).reshape(n_ms, count * count, -1).numpy()
            n0 = n1
        p -= p.mean(axis=-1, keepdims=True)
        return p

    def misfit(self, cov: np.ndarray, var: np.ndarray) -> np.ndarray:
        """Sum over bands of the squared relative residual ``1 - rho^2`` (``cov``/``var`` ``(n_ms, ...)``);
        an anti-correlated band counts as unexplained."""
        rho2 = np.maximum(cov, 0.0) ** 2 / (np.maximum(var, 1e-300) * self.target_var.reshape((-1,) + (1,) * (cov.ndim - 1)))
        return (1.0 - np.minimum(rho2, 1.0)).sum(axis=0)


def _bilinear(dy: np.ndarray, dx: np.ndarray, cy: int, cx: int) -> np.ndarray:
    """``(len(dy), 9)`` weights of the 3 x 3 whole-pixel phases ``(cy-1..cy+1) x (cx-1..cx+1)`` (row-major)
    that give the displaced kernel at shifts ``(dy, dx)`` inside that box (linear interpolation per axis)."""

    def axis(d: np.ndarray, c: int) -> np.ndarray:
        u = np.clip(np.asarray(d, dtype=np.float64) - (c - 1), 0.0, 2.0)  # position in [0, 2]
        w = np.zeros((u.size, 3))
        left = np.minimum(np.floor(u).astype(int), 1)
        frac = u - left
        rows = np.arange(u.size)
        w[rows, left] = 1.0 - frac
        w[rows, left + 1] = frac
        return w

    wy, wx = axis(dy, cy), axis(dx, cx)
    return (wy[:, :, None] * wx[:, None, :]).reshape(-1, 9)


def _box_misfit(
    search: _Search, gram: np.ndarray, cross: np.ndarray, centre: tuple[int, int], dy: np.ndarray, dx: np.ndarray
) -> np.ndarray:
    """The misfit at shifts ``(dy, dx)`` inside the box around ``centre``, from the phases' Gram matrices
    ``(n_ms, 9, 9)`` and their covariances with ``R HS`` ``(n_ms, 9)``."""
    w = _bilinear(dy, dx, *centre)
    var = np.einsum("sk,mkl,sl->ms", w, gram, w)
    return search.misfit(cross @ w.T, var)


def _profile(
    search: _Search, sigma: float, *, centre: tuple[int, int] | None, limit: float, options: PsfOptions
) -> tuple[float, tuple[float, float], tuple[int, int]]:
    """The best shift at width ``sigma``: ``(misfit, (dy, dx), whole-pixel centre)``.

    Without ``centre`` every whole-pixel shift within ``limit`` is scanned first; the fraction is then
    refined inside the 2 x 2 pixel box around the centre (scans from ``shift_step`` down to ``shift_tol``),
    moving the box when the best shift lies on its edge.
    """
    boxed = search.boxed(sigma)
    whole = int(math.ceil(limit))
    if centre is None:
        offsets = [(oy, ox) for oy in range(-whole, whole + 1) for ox in range(-whole, whole + 1)]
        p = search.phases(boxed, (-whole, -whole), 2 * whole + 1)
        cov = np.matmul(p, search.target[:, :, None])[..., 0]
        var = (p * p).sum(axis=-1)
        centre = offsets[int(np.argmin(search.misfit(cov, var)))]
    lo_c = -whole + 1 if whole >= 1 else 0
    hi_c = whole - 1 if whole >= 1 else 0
    cy, cx = (int(np.clip(c, lo_c, hi_c)) for c in centre)
    for _ in range(2 * whole + 2):
        p = search.phases(boxed, (cy - 1, cx - 1), 3)
        # the prediction at any shift in the box is w @ phases, so its variance and its covariance with
        # R HS follow from these two small arrays
        gram = np.matmul(p, p.transpose(0, 2, 1))
        cross = np.matmul(p, search.target[:, :, None])[..., 0]
        misfit = functools.partial(_box_misfit, search, gram, cross, (cy, cx))
        lo_y, hi_y = max(cy - 1, -limit), min(cy + 1, limit)
        lo_x, hi_x = max(cx - 1, -limit), min(cx + 1, limit)
        # nested scans, each ten times finer around the previous best: vectorised, and exact to the
        # last spacing whatever the kinks of the misfit at whole-pixel shifts
        step, dy, dx, half = options.shift_step, float(cy), float(cx), 1.0
        value = np.inf
        while True:
            gy = np.unique(np.clip(np.arange(dy - half, dy + half + 1e-9, step), lo_y, hi_y))
            gx = np.unique(np.clip(np.arange(dx - half, dx + half + 1e-9, step), lo_x, hi_x))
            yy, xx = (g.ravel() for g in np.meshgrid(gy, gx, indexing="ij"))
            values = misfit(yy, xx)
            best = int(np.argmin(values))
            dy, dx, value = float(yy[best]), float(xx[best]), float(values[best])
            if step <= options.shift_tol:
                break
            half, step = step, step / 10.0
        # on the box edge (and not at the search limit): move the box there and look again
        ny = cy + (1 if dy >= cy + 1 - 1e-9 else -1 if dy <= cy - 1 + 1e-9 else 0)
        nx = cx + (1 if dx >= cx + 1 - 1e-9 else -1 if dx <= cx - 1 + 1e-9 else 0)
        ny, nx = int(np.clip(ny, lo_c, hi_c)), int(np.clip(nx, lo_c, hi_c))
        if (ny, nx) == (cy, cx):
            break
        cy, cx = ny, nx
    return value, (dy, dx), (cy, cx)


def estimate_psf(
    hs: Sequence[np.ndarray],
    ms: Sequence[np.ndarray],
    *,
    model: ObservationModel,
    srf: np.ndarray | None = None,
    options: PsfOptions = PsfOptions(),
) -> PsfEstimate:
    """Fit the HS Gaussian width and sub-pixel shift to matching HS and MS windows.

    Minimises, over ``(sigma, dy, dx)``, the sum over MS bands of the squared relative residual of
    ``D B(Psf(sigma_rel_b, shift)) MS_b`` against ``R_b HS`` after a per-band affine fit, on the coarse
    pixels inside a border of every window (see the module docstring for the search).

    Parameters
    ----------
    hs
        HS windows, each ``(n_hs, h, w)`` on the coarse grid, free of NaN.
    ms
        MS windows over the same areas, each ``(n_ms, h*r, w*r)`` (pixel corners coinciding).
    model
        The observation model: ratio, MS blur (``ms_sigma``) and, unless ``srf`` is given, the spectral
        response.
    srf
        ``(n_ms, n_hs)`` spectral response to use instead of ``model.srf``.
    options
        :class:`PsfOptions`.

    Raises
    ------
    DcstsfInputError
        Mismatched windows, NaN, or too few pixels inside the border.
    """
    hs_w, ms_w = _check_windows(hs, ms, model)
    r_mat = _srf(srf, model)
    lo, hi = (float(v) for v in options.sigma_range)
    if not 0.0 < lo < hi:
        raise DcstsfInputError(f"PsfOptions(sigma_range={options.sigma_range}): give 0 < smallest < largest (fine px)")
    limit = max_shift(options, model)
    if limit < 0:
        raise DcstsfInputError(f"PsfOptions(max_shift={options.max_shift}): the largest shift must be >= 0 fine px")
    border = _border(options, model, hi, limit)
    # phases are read up to one pixel beyond the largest whole-pixel shift
    search = _Search(hs_w, ms_w, model=model, srf=r_mat, border=border, pad=int(math.ceil(limit)) + 1)
    if search.n < max(options.min_pixels, 3):
        raise _too_few(search.n, border, options)

    grid = np.geomspace(lo, hi, max(int(options.grid_size), 2))
    # The whole-pixel scan once, at the grid's middle width: a symmetric blur does not move a footprint's
    # centre, so the best whole-pixel shift hardly depends on the width (and each profile moves its box
    # when the best fraction lies on the box's edge).
    middle = float(np.sqrt(lo * hi))
    centre = _profile(search, middle, centre=None, limit=limit, options=options)[2]
    found = [_profile(search, float(s), centre=centre, limit=limit, options=options) for s in grid]
    i = int(np.argmin([f[0] for f in found]))
    centre = found[i][2]
    cache: dict[float, tuple[float, tuple[float, float], tuple[int, int]]] = {float(grid[i]): found[i]}

    def profile(s: float) -> float:
        if s not in cache:
            cache[s] = _profile(search, s, centre=centre, limit=limit, options=options)
        return cache[s][0]

    a, b = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, grid.size - 1)])
    optimize.minimize_scalar(profile, bounds=(a, b), method="bounded", options={"xatol": options.sigma_tol})
    sigma = min(cache, key=lambda s: cache[s][0])
    shift = cache[sigma][1]

    samples = matched_samples(hs_w, ms_w, model=model, sigma=sigma, shift=shift, border=border)
    gain, offset, residual = _affine(samples.ms, samples.hs @ r_mat.T)
    return PsfEstimate(
        sigma=float(sigma),
        shift=(float(shift[0]), float(shift[1])),
        relative_sigma=relative_sigmas(sigma, model),
        gain=gain,
        offset=offset,
        residual=residual,
        n_pixels=len(samples),
        border=border,
    )

"""Tie points: local shifts between two co-located multi-band images, by sub-pixel phase correlation.

The two images are on the same coarse grid: the *reference* ``A`` (the MS bands taken to the HS grid) and
the *target* ``T`` (the HS cube seen through the MS spectral responses, ``R HS``). The model is
``T(q) = A(q + u)``: the target shows at ``q`` what the reference shows at ``q + u`` (the displacement
field's convention, :mod:`dcstsf.coregistration.field`).

One tie point (:func:`match_tie_point`) follows AROSICS (Scheffler et al., Remote Sensing 9(7) 676, 2017)
for the whole-pixel part, with our own multi-band and sub-pixel steps:

1. the reference window ``a`` (``window x window``, MS bands) at the tie point and the target window ``b``
   moved by the current whole-pixel guess ``o`` of ``u``;
2. each band standardised over the window (zero mean, unit variance: calibration gains and offsets between
   the products do not matter), nodata set to 0, tapered (Tukey, a quarter of the window in cosine flank
   on each side) against the edge discontinuity of the FFT's periodic extension;
3. the cross-power spectra summed over bands and divided by their magnitude plus its mean over the
   frequencies: a phase correlation whose whitening sharpens the peak, regularised so that frequencies
   where the windows hold little signal (beyond the HS blur's reach) do not weigh as much as the rest
   (full whitening left two to four times larger errors on the simulated EnMAP cases of the tests); the
   surface's peak is the whole-pixel shift, within the search range;
4. when that shift is not zero the target window is moved by it and the step repeated (at most
   ``max_iterations``), so the final windows overlap fully;
5. sub-pixel: the band-limited (DFT) interpolation of the correlation surface, evaluated on a 1/20-pixel
   grid within one pixel of the whole-pixel peak (the matrix-multiply DFT of Guizar-Sicairos et al., Opt.
   Lett. 33(2) 156, 2008), then a parabola through the best grid point and its neighbours;
6. that estimate is biased: toward zero by the taper and by nodata (the same in both windows), toward whole
   pixels by the texture near the Nyquist frequency ("pixel locking"); but not at zero shift, where the
   surface is symmetric. So the target window is read again at the current estimate (quintic spline,
   :class:`~dcstsf.coregistration.warp.Resampler`) and the residual shift measured there corrects the
   estimate (secant steps), until the correction is below :data:`SUBPIXEL_TOL`.

Quality, recorded per tie point: ``peak_ratio``, the surface's peak over its highest value more than two
pixels away, in the last round (a unique match gives several; noise or a repeated pattern about 1), and
``correlation``, the mean over bands of the correlation of ``a`` with the target read at the measured shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from dcstsf.coregistration.warp import Resampler

__all__ = [
    "STATUSES",
    "Match",
    "TiePoints",
    "match_tie_point",
    "phase_correlation",
    "tie_point_grid",
    "window_correlation",
]

#: Tie-point states: measured and passed (``"candidate"`` until the field is fitted, then ``"kept"`` or
#: ``"outlier"``), or rejected before the fit.
STATUSES = ("kept", "outlier", "candidate", "low_quality", "out_of_range", "no_match", "nodata")
#: Sub-pixel grid step of the refinement, pixels.
SUBPIXEL_STEP = 0.05
#: Re-reads of the target window at the sub-pixel estimate (step 6), and the residual that ends them, pixels.
SUBPIXEL_ITERATIONS = 8
SUBPIXEL_TOL = 0.001
#: Regularisation of the phase correlation's whitening, relative to the mean cross-power magnitude.
_WHITENING = 1.0
#: Pixels around the peak excluded when looking for the second-highest value of the surface.
PEAK_EXCLUSION = 2


def _tukey(n: int, alpha: float = 0.5) -> np.ndarray:
    """A Tukey (tapered cosine) window of ``n`` samples with cosine flanks over ``alpha`` of it."""
    x = (np.arange(n) + 0.5) / n
    w = np.ones(n)
    edge = alpha / 2.0
    lo, hi = x < edge, x > 1.0 - edge
    w[lo] = 0.5 * (1.0 - np.cos(np.pi * x[lo] / edge))
    w[hi] = 0.5 * (1.0 - np.cos(np.pi * (1.0 - x[hi]) / edge))
    return w


def _standardise(win: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band: zero mean and unit variance over ``valid`` pixels, 0 elsewhere; and whether each band has texture."""
    n = max(int(valid.sum()), 1)
    x = np.where(valid[None], win, 0.0)
    mean = x.sum(axis=(1, 2)) / n
    x = np.where(valid[None], x - mean[:, None, None], 0.0)
    std = np.sqrt((x**2).sum(axis=(1, 2)) / n)
    textured = std > 1e-6 * np.maximum(np.abs(mean), 1e-3)
    x = np.where(textured[:, None, None], x / np.where(textured, std, 1.0)[:, None, None], 0.0)
    return x, textured


@dataclass(frozen=True)
class Match:
    """The phase correlation of one window pair.

    ``shift`` ``(dy, dx)`` is the displacement ``t`` of ``b`` against ``a`` (``b(x) = a(x - t)``): whole
    pixels from the peak (``whole``), refined to sub-pixel when asked. ``peak_ratio`` is the quality.
    """

    shift: tuple[float, float]
    whole: tuple[int, int]
    peak_ratio: float


def phase_correlation(a: np.ndarray, b: np.ndarray, *, search: float, subpixel: bool = True) -> Match | None:
    """Phase correlation of two windows ``(nb, h, w)`` (NaN = nodata), the peak sought within ``search`` pixels.

    ``None`` when no band has texture in both windows.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    _, h, w = a.shape
    valid = np.all(np.isfinite(a), axis=0) & np.all(np.isfinite(b), axis=0)
    sa, ta = _standardise(np.nan_to_num(a), valid)
    sb, tb = _standardise(np.nan_to_num(b), valid)
    use = ta & tb
    if not use.any():
        return None
    taper = _tukey(h)[:, None] * _tukey(w)[None, :]
    fa = np.fft.fft2(sa[use] * taper)
    fb = np.fft.fft2(sb[use] * taper)
    cross = np.sum(np.conj(fa) * fb, axis=0)
    mag = np.abs(cross)
    norm = cross / (mag + _WHITENING * float(mag.mean()) + 1e-300)
    surface = np.real(np.fft.ifft2(norm))
    # signed lags of the surface's samples (index k stands for k, or k - n beyond the middle)
    ly = np.fft.fftfreq(h, 1.0 / h)
    lx = np.fft.fftfreq(w, 1.0 / w)
    reach = min(float(search), h / 2 - 1, w / 2 - 1)
    allowed = (np.abs(ly)[:, None] <= reach) & (np.abs(lx)[None, :] <= reach)
    iy, ix = np.unravel_index(int(np.argmax(np.where(allowed, surface, -np.inf))), surface.shape)
    peak = float(surface[iy, ix])
    ty, tx = int(ly[iy]), int(lx[ix])
    # the highest value away from the peak (circular distance), for the peak ratio
    dy = np.minimum(np.abs(ly - ty), h - np.abs(ly - ty))[:, None]
    dx = np.minimum(np.abs(lx - tx), w - np.abs(lx - tx))[None, :]
    away = (dy > PEAK_EXCLUSION) | (dx > PEAK_EXCLUSION)
    second = float(surface[away].max()) if away.any() else 0.0
    ratio = peak / second if second > 0 else math.inf
    shift = _refine(norm, (ty, tx)) if subpixel else (float(ty), float(tx))
    return Match(shift=shift, whole=(ty, tx), peak_ratio=float(ratio))


def _refine(norm: np.ndarray, whole: tuple[int, int]) -> tuple[float, float]:
    """Sub-pixel peak of the DFT-interpolated surface of the normalised cross-power ``norm`` near ``whole``."""
    h, w = norm.shape
    steps = np.arange(-1.0, 1.0 + 1e-9, SUBPIXEL_STEP)
    sy, sx = whole[0] + steps, whole[1] + steps
    fy, fx = np.fft.fftfreq(h), np.fft.fftfreq(w)
    # surface(s) = Re sum_f norm(f) exp(2 pi i f s) / (h w), separably over the two axes
    ey = np.exp(2j * np.pi * sy[:, None] * fy[None, :])
    ex = np.exp(2j * np.pi * fx[:, None] * sx[None, :])
    grid = np.real(ey @ norm @ ex)
    k, m = np.unravel_index(int(np.argmax(grid)), grid.shape)

    def vertex(lo: float, mid: float, hi: float) -> float:
        den = lo - 2.0 * mid + hi
        return 0.0 if den >= 0 else float(np.clip(0.5 * (lo - hi) / den, -0.5, 0.5))

    oy = vertex(grid[k - 1, m], grid[k, m], grid[k + 1, m]) if 0 < k < steps.size - 1 else 0.0
    ox = vertex(grid[k, m - 1], grid[k, m], grid[k, m + 1]) if 0 < m < steps.size - 1 else 0.0
    return float(sy[k] + oy * SUBPIXEL_STEP), float(sx[m] + ox * SUBPIXEL_STEP)


def window_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over bands of the correlation of two windows ``(nb, h, w)``; NaN when no band has texture in both."""
    valid = np.all(np.isfinite(a), axis=0) & np.all(np.isfinite(b), axis=0)
    if valid.sum() < 4:
        return math.nan
    xa, xb = a[:, valid].astype(np.float64), b[:, valid].astype(np.float64)
    xa = xa - xa.mean(axis=1, keepdims=True)
    xb = xb - xb.mean(axis=1, keepdims=True)
    den = np.sqrt((xa**2).sum(axis=1) * (xb**2).sum(axis=1))
    ok = den > 0
    if not ok.any():
        return math.nan
    return float(np.mean((xa * xb).sum(axis=1)[ok] / den[ok]))


def _window(img: np.ndarray, r0: int, c0: int, size: int) -> np.ndarray:
    """``img[:, r0:r0+size, c0:c0+size]`` as float64, NaN where the window leaves the image."""
    nb, h, w = img.shape
    out = np.full((nb, size, size), np.nan)
    ys, ye = max(r0, 0), min(r0 + size, h)
    xs, xe = max(c0, 0), min(c0 + size, w)
    if ys < ye and xs < xe:
        out[:, ys - r0 : ye - r0, xs - c0 : xe - c0] = img[:, ys:ye, xs:xe]
    return out


@dataclass(frozen=True)
class TiePoints:
    """Tie points and what became of them (arrays of one entry per tie point).

    Attributes
    ----------
    row, col
        Window centres on the coarse grid (pixel-index coordinates: pixel ``i``'s centre is ``i``).
    shift
        ``(n, 2)`` measured displacement ``(dy, dx)``, coarse pixels (NaN when not measured).
    peak_ratio, correlation, valid_fraction
        Quality of the match (NaN when not measured) and the fraction of the window with data.
    source
        Which MS date the point compares HS(t1) with: ``"ms_t1"`` or ``"ms_t2"``.
    status
        One of :data:`STATUSES`.
    residual
        ``(n, 2)`` measured minus fitted displacement (NaN for points not measured).
    """

    row: np.ndarray
    col: np.ndarray
    shift: np.ndarray
    peak_ratio: np.ndarray
    correlation: np.ndarray
    valid_fraction: np.ndarray
    source: np.ndarray
    status: np.ndarray
    residual: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def __len__(self) -> int:
        return int(self.row.size)

    @classmethod
    def concatenate(cls, parts: list[TiePoints]) -> TiePoints:
        """The tie points of several sets, in order."""

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        def residual(p: TiePoints) -> np.ndarray:
            return p.residual.reshape(-1, 2) if p.residual.size else np.full((len(p), 2), np.nan)

        return cls(
            row=cat("row"), col=cat("col"), shift=np.concatenate([p.shift.reshape(-1, 2) for p in parts]),
            peak_ratio=cat("peak_ratio"), correlation=cat("correlation"), valid_fraction=cat("valid_fraction"),
            source=cat("source"), status=cat("status"), residual=np.concatenate([residual(p) for p in parts]),
        )

    def with_fit(self, fitted: np.ndarray, inlier: np.ndarray) -> TiePoints:
        """The candidates marked ``"kept"`` or ``"outlier"``, and the residuals from ``fitted`` ``(n, 2)``."""
        status = self.status.copy()
        cand = status == "candidate"
        status[cand & inlier] = "kept"
        status[cand & ~inlier] = "outlier"
        return replace(self, status=status, residual=self.shift - fitted)

    def counts(self) -> dict[str, int]:
        """How many tie points are in each state."""
        return {s: int(np.sum(self.status == s)) for s in STATUSES if np.any(self.status == s)}


def tie_point_grid(shape: tuple[int, int], *, window: int, spacing: int, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners ``(rows, cols)`` of the tie-point windows: a regular grid of ``spacing``, centred,
    with ``margin`` pixels kept free along each edge (room for the whole-pixel shift)."""

    def axis(n: int) -> np.ndarray:
        free = n - 2 * margin - window
        if free < 0:
            return np.zeros(0, dtype=np.int64)
        count = free // spacing + 1
        start = margin + (free - (count - 1) * spacing) // 2
        return start + spacing * np.arange(count, dtype=np.int64)

    r, c = np.meshgrid(axis(shape[0]), axis(shape[1]), indexing="ij")
    return r.reshape(-1), c.reshape(-1)


def _refine_tie_point(
    a: np.ndarray, target: Resampler, corner: tuple[int, int], u: tuple[float, float], peak_ratio: float, frac: float
) -> tuple[tuple[float, float] | None, float, float, float]:
    """Step 6 of the module notes: read the target window again at the current sub-pixel estimate and
    correct the estimate by the residual shift measured there, until the correction is below
    :data:`SUBPIXEL_TOL`.

    The measured residual is the true one times a gain below 1 (the taper and the nodata mask, the same in
    both windows, pull the peak toward zero: 0.9 for the taper, 0.3 with a tenth of a window masked), so
    from the second round on each axis takes a secant step, the residual divided by the gain measured
    between the last two rounds (kept within [0.2, 1.5]).
    """
    size = a.shape[-1]
    r0, c0 = corner
    base_r = np.arange(r0, r0 + size, dtype=np.float64)[:, None]
    base_c = np.arange(c0, c0 + size, dtype=np.float64)[None, :]
    est = np.asarray(u, dtype=np.float64)
    prev_est: np.ndarray | None = None
    prev_res = np.zeros(2)
    for _ in range(SUBPIXEL_ITERATIONS):
        b = target(base_r - est[0], base_c - est[1])
        m = phase_correlation(a, b, search=1.0)
        if m is None:
            return None, math.nan, math.nan, frac
        peak_ratio = m.peak_ratio
        # b(x) = T(c + x - u) = a(x - (u - u_true)): the residual t = gain * (u - u_true)
        res = np.asarray(m.shift)
        step = res.copy()
        if prev_est is not None:
            du, dr = est - prev_est, res - prev_res
            ok = (np.abs(du) > 1e-6) & (np.abs(dr) > 1e-9)
            gain = np.clip(np.where(ok, dr / np.where(ok, du, 1.0), 1.0), 0.2, 1.5)
            step = res / gain
        prev_est, prev_res = est, res
        est = est - step
        if np.max(np.abs(step)) < SUBPIXEL_TOL:
            break
    corr = window_correlation(a, target(base_r - est[0], base_c - est[1]))
    return (float(est[0]), float(est[1])), peak_ratio, corr, frac


def match_tie_point(
    reference: np.ndarray,
    target: np.ndarray,
    *,
    reader: Resampler,
    corner: tuple[int, int],
    window: int,
    guess: tuple[int, int],
    search: float,
    max_iterations: int,
    min_valid_fraction: float,
) -> tuple[tuple[float, float] | None, float, float, float]:
    """One tie point: ``(shift, peak_ratio, correlation, valid_fraction)``, ``shift`` ``(dy, dx)`` of the
    model ``T(q) = A(q + u)`` at the window centre, ``None`` when the window has too little data or the
    whole-pixel search does not settle (see the module notes). ``reader`` reads ``target`` at sub-pixel
    positions (a spline :class:`~dcstsf.coregistration.warp.Resampler` of it)."""
    r0, c0 = corner
    a = _window(reference, r0, c0, window)
    oy, ox = int(guess[0]), int(guess[1])
    frac = 0.0
    for _ in range(max_iterations):
        b = _window(target, r0 - oy, c0 - ox, window)
        valid = np.all(np.isfinite(a), axis=0) & np.all(np.isfinite(b), axis=0)
        frac = float(valid.mean())
        if frac < min_valid_fraction:
            return None, math.nan, math.nan, frac
        m = phase_correlation(a, b, search=search)
        if m is None:
            return None, math.nan, math.nan, frac
        if m.whole == (0, 0):
            # b(x) = T(c - o + x) = a(x + u - o), so the measured t = o - u
            return _refine_tie_point(a, reader, corner, (oy - m.shift[0], ox - m.shift[1]), m.peak_ratio, frac)
        oy, ox = oy - m.whole[0], ox - m.whole[1]
    return None, math.nan, math.nan, frac

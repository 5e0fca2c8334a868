"""Each MS band's spectral response (its row of ``R``), re-estimated from the scene where the data ask for it.

With the HS point-spread function known (:mod:`dcstsf.diagnosis.psf`), an MS band taken to the HS grid is
a weighted sum of the HS bands: ``MS_coarse_b ~ HS w + offset``, ``w = gain * r`` with ``r`` the row (sum 1;
the gain and offset are the per-band affine map between the products' calibrations). The row is fitted
HySure-style (Simoes et al., "A convex formulation for hyperspectral image superresolution via
subspace-based regularization", IEEE TGRS 2015) by regularised least squares over the HS bands the
tabulated row covers, widened by ``widen`` bands each side (a displaced response can move there, none can
reach further), never over bad HS bands:

    ``min_{w >= 0} ||y - A w||^2 + a_t ||w - g p||^2 + a_s ||D2 (w - g p)||^2``

``y`` and ``A`` are the centred MS band and HS bands on the fit pixels (the offset is free), ``D2`` takes
second differences along the bands, ``p`` is the prior row and ``g`` its gain; both weights are fractions of
the mean diagonal of ``A^T A``, so they do not depend on the reflectance scale. Adjacent HS bands are
nearly collinear, so the data leave most directions of ``w`` undetermined and the prior fills them. The
prior is the **table row displaced in wavelength** by the shift (within ``widen`` band spacings) that best
explains the MS band, found first by a one-parameter search: a response off by 10-15 nm (another unit of
the sensor, an ageing filter) is then recovered in shape, where a pull toward the undisplaced table
smears it over the support. Without a displacement the prior is the table row itself.

The HS spectra are first projected on their signal subspace (HySime: Bioucas-Dias and Nascimento,
"Hyperspectral subspace identification", IEEE TGRS 2008, as HySure does). Without it the fit is an
errors-in-variables regression: a row spread over more HS bands averages their independent noise down, so
a wrong, smeared row predicts the MS band better than the true one, on held-out pixels too (by up to a
third of the residual at an HS SNR of 35 dB). The per-band noise comes from regressing each HS band on all
the others (Roger and Arnold, "Reliably estimating the noise in AVIRIS hyperspectral images", IJRS 1996);
a direction is kept where the scene's power along it exceeds twice the noise's.

**Trust rule.** The rows are fitted on half of the coarse pixels (a checkerboard of ``block`` x ``block``
blocks) and tested on the other half, the table row with its own affine map fitted on the same half. A
band keeps its table row unless the estimated row

- lowers the held-out relative residual by at least ``min_improvement`` (5 %). With the data following the
  tables, the estimate's held-out gain stayed at or below 3.1 % (the largest band, in each of a dozen
  cases simulated from the bundled EnMAP sample at SNR 35/40 dB with HS blurs of 0.7-2 px): the noise
  left in the signal subspace still lets a free row average a little. The margin is well above that,
  and a displacement that matters moves the residual far more (19-91 % for 12-15 nm in the red, red edge
  and SWIR);
- does so in significantly more than half of the held-out blocks: a sign test, ``z`` (3) standard errors
  above a fair coin. Blocks, not pixels, are the units (residuals are correlated over a pixel or two); a
  sign test rather than a t-test because a scene's spectral contrast, and with it the improvement, often
  sits in a few blocks whose squared residuals dominate a mean;
- and has enough pixels per half (``min_pixels``) and a band that varies over the scene
  (``min_texture``).

A band whose response error does not matter for the scene (a displacement along a flat stretch of its
spectra) keeps its table row: the data cannot tell, and the table is the better-founded guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

from dcstsf.diagnosis.psf import PsfEstimate, matched_samples
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel

__all__ = [
    "ResponseEstimate",
    "ResponseOptions",
    "displaced_row",
    "estimate_response",
    "response_support",
    "signal_subspace",
]


@dataclass(frozen=True)
class ResponseOptions:
    """Support, regularisation and trust rule of :func:`estimate_response`.

    Parameters
    ----------
    widen
        HS bands added on each side of the tabulated row's support; the prior's displacement is searched
        within this many band spacings either way.
    support_threshold
        An HS band is in the tabulated support when its weight exceeds this fraction of the row's largest.
    toward_table
        Weight of the pull toward the (displaced) table row, relative to the mean diagonal of ``A^T A``.
    smoothness
        Weight of the second-difference penalty on the deviation from that row, same scale.
    block
        Side of the checkerboard blocks that split fit and held-out pixels, coarse pixels (wider than the
        blur's reach, so the halves share little through it).
    min_improvement
        Smallest relative decrease of the held-out residual that replaces a table row.
    z
        Standard errors above one half that the share of improved held-out blocks must reach (sign test).
    min_pixels
        Fewest held-out pixels (and fit pixels) for a row to be estimated (at least ``2 k + 2`` for ``k``
        HS bands in the support in any case).
    min_texture
        Smallest coefficient of variation (std / |mean|) of the MS band over the samples: a band this flat
        says nothing about its response.
    """

    widen: int = 3
    support_threshold: float = 1e-3
    toward_table: float = 1e-2
    smoothness: float = 1e-3
    block: int = 4
    min_improvement: float = 0.05
    z: float = 3.0
    min_pixels: int = 400
    min_texture: float = 0.01


@dataclass(frozen=True)
class ResponseEstimate:
    """Per-band spectral responses, estimated where the held-out test trusts them.

    Attributes
    ----------
    srf
        ``(n_ms, n_hs)``: estimated rows where :attr:`trusted`, tabulated rows elsewhere; rows sum to 1.
    trusted
        ``(n_ms,)`` whether the band's row was replaced by its estimate.
    held_out_tables, held_out_estimated
        ``(n_ms,)`` relative residual (RMS / std of the MS band) on the held-out pixels with the table row
        and with the estimated row, each with its affine map fitted on the fit half; NaN when not estimated.
    reasons
        Per band, why it kept its table row or was replaced.
    estimated
        ``(n_ms, n_hs)`` the estimated rows whether trusted or not (table rows where none was fitted),
        for diagnostics.
    displacement_nm
        ``(n_ms,)`` the wavelength shift of the table row used as the prior (positive: toward longer
        wavelengths), 0 where none was fitted.
    """

    srf: np.ndarray
    trusted: np.ndarray
    held_out_tables: np.ndarray
    held_out_estimated: np.ndarray
    reasons: tuple[str, ...]
    estimated: np.ndarray | None = None
    displacement_nm: np.ndarray | None = None


def response_support(row: np.ndarray, good: np.ndarray, *, options: ResponseOptions = ResponseOptions()) -> np.ndarray:
    """Indices of the HS bands a row may use: its tabulated support widened by ``options.widen`` bands each
    side, without bad bands (``good`` False)."""
    row = np.asarray(row, dtype=np.float64)
    on = np.flatnonzero(row > options.support_threshold * max(float(row.max()), 0.0))
    if on.size == 0:
        return on
    lo = max(int(on[0]) - options.widen, 0)
    hi = min(int(on[-1]) + options.widen, row.size - 1)
    idx = np.arange(lo, hi + 1)
    return idx[np.asarray(good, bool)[idx]]


def signal_subspace(hs: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, int]:
    """HS samples ``(N, n_hs)`` projected on their signal subspace (HySime), and the subspace's dimension.

    Only the good bands are used and changed; bad bands pass through. With too few samples to estimate
    the noise (``N <= 2 * good bands``) the samples come back unchanged, with dimension 0.
    """
    x = np.asarray(hs, dtype=np.float64)[:, good]
    n, g = x.shape
    if g < 2 or n <= 2 * g:
        return np.asarray(hs, dtype=np.float64), 0
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / n
    ridge = 1e-10 * float(np.trace(cov)) / g
    precision = linalg.inv(cov + ridge * np.eye(g))
    # residual variance of each band regressed on the g - 1 others, unbiased for the fitted coefficients
    noise = np.maximum(1.0 / np.diag(precision), 0.0) * n / (n - g)
    _, vectors = linalg.eigh(cov - np.diag(noise))
    vectors = vectors[:, ::-1]
    power = np.einsum("gk,gh,hk->k", vectors, cov, vectors)
    noise_power = (vectors**2 * noise[:, None]).sum(axis=0)
    keep = vectors[:, power > 2.0 * noise_power]
    out = np.asarray(hs, dtype=np.float64).copy()
    out[:, good] = mean + (xc @ keep) @ keep.T
    return out, int(keep.shape[1])


def _second_difference(k: int) -> np.ndarray:
    d = np.zeros((max(k - 2, 0), k))
    for i in range(k - 2):
        d[i, i : i + 3] = (1.0, -2.0, 1.0)
    return d


def displaced_row(row: np.ndarray, centres_nm: np.ndarray, shift_nm: float) -> np.ndarray:
    """A row of ``R`` over some HS bands moved by ``shift_nm`` in wavelength (positive: toward longer
    wavelengths), by linear interpolation between the bands' centres, renormalised to sum 1.

    Band centres need not be sorted (two-detector sensors overlap); the row is zero beyond its bands.
    """
    order = np.argsort(centres_nm, kind="stable")
    c, r = np.asarray(centres_nm, np.float64)[order], np.asarray(row, np.float64)[order]
    out = np.empty_like(r)
    out[order] = np.interp(c - float(shift_nm), c, r, left=0.0, right=0.0)
    total = float(out.sum())
    return out / total if total > 0 else np.asarray(row, np.float64) / max(float(np.sum(row)), 1e-300)


def _best_displacement(
    y: np.ndarray, a: np.ndarray, row: np.ndarray, centres_nm: np.ndarray, options: ResponseOptions
) -> tuple[float, np.ndarray]:
    """The wavelength shift of the table row that best explains ``y ~ gain * a row + offset`` (least squares
    over a grid of shifts), and the shifted row. The grid spans ``widen`` band spacings either way."""
    spacing = float(np.median(np.diff(np.sort(centres_nm)))) if centres_nm.size > 1 else 0.0
    if spacing <= 0.0 or options.widen == 0:
        return 0.0, row / row.sum()
    reach = options.widen * spacing
    shifts = np.linspace(-reach, reach, 8 * options.widen * 2 + 1)
    rows = np.stack([displaced_row(row, centres_nm, d) for d in shifts])
    pred = a @ rows.T  # (N, n_shifts)
    pc = pred - pred.mean(axis=0)
    yc = y - y.mean()
    # squared correlation; an anti-correlated row explains nothing
    rho2 = np.maximum(pc.T @ yc, 0.0) ** 2 / np.maximum((pc**2).sum(axis=0) * float(yc @ yc), 1e-300)
    best = int(np.argmax(rho2))
    return float(shifts[best]), rows[best]


def _fit_row(y: np.ndarray, a: np.ndarray, prior: np.ndarray, options: ResponseOptions) -> np.ndarray:
    """Nonnegative ``w`` minimising ``||y - a w||^2 + a_t ||w - prior||^2 + a_s ||D2 (w - prior)||^2``
    (``y``, ``a`` centred). Solved as an NNLS problem on the Cholesky factor of the normal matrix (size
    ``k``, not ``N``)."""
    k = a.shape[1]
    gram = a.T @ a
    scale = max(float(np.trace(gram)) / k, 1e-300)
    d2 = _second_difference(k)
    smooth = d2.T @ d2
    normal = gram + options.toward_table * scale * np.eye(k) + options.smoothness * scale * smooth
    rhs = a.T @ y + options.toward_table * scale * prior + options.smoothness * scale * (smooth @ prior)
    upper = linalg.cholesky(normal, lower=False)
    # ||U w - U^-T rhs||^2 = w^T N w - 2 rhs^T w + const
    target = linalg.solve_triangular(upper, rhs, trans="T", lower=False)
    w, _ = optimize.nnls(upper, target)
    return w


def _affine_fit(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """``y ~ gain * x + offset`` by least squares."""
    xc = x - x.mean()
    gain = float((xc * (y - y.mean())).sum() / max(float((xc**2).sum()), 1e-300))
    return gain, float(y.mean() - gain * x.mean())


def _relative(res: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(res**2)) / max(float(y.std()), 1e-300))


def estimate_response(
    hs: Sequence[np.ndarray],
    ms: Sequence[np.ndarray],
    *,
    model: ObservationModel,
    psf: PsfEstimate,
    options: ResponseOptions = ResponseOptions(),
) -> ResponseEstimate:
    """Re-estimate each MS band's spectral response and keep it where held-out pixels confirm it.

    Parameters
    ----------
    hs
        HS windows, each ``(n_hs, h, w)`` on the coarse grid, free of NaN.
    ms
        MS windows over the same areas, each ``(n_ms, h*r, w*r)``.
    model
        The observation model; ``model.srf`` is the table, ``model.hs_sensor.good`` the usable HS bands.
    psf
        The HS point-spread function (:func:`dcstsf.diagnosis.psf.estimate_psf`): it takes the MS to the
        HS grid, on the same samples (its border).
    options
        :class:`ResponseOptions`.
    """
    if options.block < 1 or options.widen < 0:
        raise DcstsfInputError(
            f"ResponseOptions(block={options.block}, widen={options.widen}): give block >= 1 and widen >= 0"
        )
    samples = matched_samples(hs, ms, model=model, sigma=psf.sigma, shift=psf.shift, border=psf.border)
    table = np.asarray(model.srf, dtype=np.float64)
    good = np.asarray(model.hs_sensor.good, bool)
    # all pixels (the projection does not see the MS, so the held-out test stays fair)
    hs_signal, dimension = signal_subspace(samples.hs, good)
    n_ms = model.n_ms
    cell_r, cell_c = samples.row // options.block, samples.col // options.block
    test = (cell_r + cell_c) % 2 == 1
    fit = ~test
    # a paired-test unit: one block of one window
    unit = np.unique(np.stack([samples.window, cell_r, cell_c], axis=1), axis=0, return_inverse=True)[1].ravel()

    srf = table.copy()
    estimated = table.copy()
    trusted = np.zeros(n_ms, bool)
    held_tab = np.full(n_ms, np.nan)
    held_est = np.full(n_ms, np.nan)
    displacement = np.zeros(n_ms)
    centres = np.asarray(model.hs_sensor.centers_nm, dtype=np.float64)
    reasons: list[str] = []
    for b in range(n_ms):
        y = samples.ms[:, b]
        support = response_support(table[b], good, options=options)
        n_fit, n_test = int(fit.sum()), int(test.sum())
        need = max(options.min_pixels, 2 * support.size + 2)
        if min(n_fit, n_test) < need:
            reasons.append(f"table: {min(n_fit, n_test)} pixels per half, fewer than {need}")
            continue
        if dimension == 0:
            # without the subspace the fit would trade the true row for one that averages HS noise
            reasons.append(f"table: {len(samples)} pixels are too few to tell the HS signal from its noise")
            continue
        texture = float(y.std() / max(abs(float(y.mean())), 1e-12))
        if texture < options.min_texture:
            reasons.append(f"table: band too flat (variation {texture:.3g} < {options.min_texture})")
            continue
        if support.size < 2:
            reasons.append("table: fewer than two usable HS bands under the response")
            continue
        a = hs_signal[:, support]
        tab_row = table[b, support]
        # the table row, with its affine map fitted on the fit half
        g_tab, o_tab = _affine_fit(y[fit], a[fit] @ tab_row)
        res_tab = y[test] - (g_tab * (a[test] @ tab_row) + o_tab)
        # the estimated row: the table row displaced in wavelength as the prior, then regularised NNLS on
        # the centred fit half; its offset from the means
        shift_nm, prior_row = _best_displacement(y[fit], a[fit], tab_row, centres[support], options)
        displacement[b] = shift_nm
        g_prior, _ = _affine_fit(y[fit], a[fit] @ prior_row)
        a_mean, y_mean = a[fit].mean(axis=0), float(y[fit].mean())
        w = _fit_row(y[fit] - y_mean, a[fit] - a_mean, g_prior * prior_row, options)
        total = float(w.sum())
        held_tab[b] = _relative(res_tab, y[test])
        if not np.isfinite(total) or total <= 0.0:
            reasons.append("table: the fit gave no positive response")
            continue
        res_est = y[test] - (a[test] @ w + (y_mean - float(a_mean @ w)))
        held_est[b] = _relative(res_est, y[test])
        row = np.zeros(model.n_hs)
        row[support] = w / total
        estimated[b] = row
        # paired comparison per held-out block: does the estimate lower the block's squared residual?
        units = unit[test]
        diff = np.bincount(units, weights=res_tab**2 - res_est**2)[np.bincount(units) > 0]
        gain_rel = 1.0 - held_est[b] / held_tab[b] if held_tab[b] > 0 else 0.0
        # sign test: the share of blocks that improve, in standard errors of a fair coin
        z_value = float((np.sum(diff > 0) - 0.5 * diff.size) / (0.5 * np.sqrt(diff.size))) if diff.size else 0.0
        if gain_rel < options.min_improvement:
            reasons.append(
                f"table: held-out residual {held_tab[b]:.4f} -> {held_est[b]:.4f} "
                f"({100 * gain_rel:+.1f} %, needs {100 * options.min_improvement:.0f} %)"
            )
        elif z_value < options.z:
            reasons.append(
                f"table: held-out gain {100 * gain_rel:.1f} % in too few blocks ({z_value:.1f} standard errors above "
                f"half, needs {options.z:g})"
            )
        else:
            trusted[b] = True
            srf[b] = row
            reasons.append(
                f"estimated: held-out residual {held_tab[b]:.4f} -> {held_est[b]:.4f} "
                f"({100 * gain_rel:.1f} %, better in {z_value:.1f} standard errors above half the blocks)"
            )
    return ResponseEstimate(
        srf=srf,
        trusted=trusted,
        held_out_tables=held_tab,
        held_out_estimated=held_est,
        reasons=tuple(reasons),
        estimated=estimated,
        displacement_nm=displacement,
    )

"""Do the inputs agree with each other? Band labels, date order and radiometric offset, from the fit.

HS(t1) and MS(t1) show the same date: seen through the spectral responses and the relative blur, HS(t1)
must explain MS(t1) band by band. Three user mistakes break that in ways the values alone do not show:

- **mislabelled or reordered MS bands**: a band explained far better by another band's response;
- **MS(t1) and MS(t2) swapped**: HS(t1) explains MS(t2) markedly better than MS(t1);
- **an unapplied offset** (Sentinel-2 L2A DNs of processing baseline 04.00 or later scaled without
  their ``BOA_ADD_OFFSET``): every MS band reads about the same amount above what HS(t1) predicts.

Every check compares coarse MS pixels (the MS windows taken to the HS resolution with the fitted blur)
with ``R HS(t1)``. Residuals are *relative*: the RMS of the residual of a per-band affine fit divided by
the band's spread, ``sqrt(1 - corr^2)``, so they do not depend on calibration gains and read the same
on dark and bright bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dcstsf.diagnosis.windows import SceneWindows, stack_pixels
from dcstsf.operators import ObservationModel, blur_radius

__all__ = [
    "BandOrderFinding",
    "CoarsePairs",
    "OFFSET_ERROR",
    "OFFSET_WARNING",
    "SWAP_ERROR_RATIO",
    "SWAP_WARNING_RATIO",
    "band_order_finding",
    "coarse_pairs",
    "offset_finding",
    "relative_residuals",
    "swap_finding",
]

#: A mislabelling is reported when the best relabelling lowers the summed relative residual of the
#: bands it moves by at least this factor, and some moved band is explained poorly as labelled.
RELABEL_GAIN = 2.0
#: A band is explained poorly when its relative residual exceeds this (correlation below about 0.87).
POOR_BAND = 0.5
#: MS(t1) and MS(t2) are swapped when MS(t2)'s mean relative residual against HS(t1) is below this
#: fraction of MS(t1)'s (an error), or below the warning fraction (a warning).
SWAP_ERROR_RATIO = 0.6
SWAP_WARNING_RATIO = 0.8
#: Below this mean relative residual of MS(t1), the pair already agrees too well for a swap to be read.
SWAP_FLOOR = 0.08
#: Reflectance offset of MS against what HS(t1) predicts, common to most bands: an error above
#: OFFSET_ERROR (the 0.1 of Sentinel-2's BOA_ADD_OFFSET is far above), a warning above OFFSET_WARNING.
OFFSET_ERROR = 0.05
OFFSET_WARNING = 0.025


@dataclass(frozen=True)
class CoarsePairs:
    """Matched coarse pixels of the diagnosis windows: HS(t1) spectra, ``R HS(t1)`` (``predicted``, the MS
    bands HS(t1) predicts), and MS(t1), MS(t2) at the HS resolution, each ``(bands, n_pixels)`` float64
    (window borders dropped)."""

    hs: np.ndarray
    predicted: np.ndarray
    ms1: np.ndarray
    ms2: np.ndarray


def coarse_pairs(windows: SceneWindows, *, model: ObservationModel) -> CoarsePairs:
    """The windows' MS images taken to the HS resolution with ``model`` (its relative blur and shift).

    Border pixels whose footprint reaches past the window (replicated edges) are dropped.
    """
    r = model.ratio
    border = int(np.ceil(blur_radius(model.ms_to_coarse_psf) / r)) + 1
    hs_parts, m1_parts, m2_parts = [], [], []
    for hs, m1, m2 in zip(windows.hs, windows.ms1, windows.ms2, strict=True):
        h, w = hs.shape[1:]
        if h <= 2 * border or w <= 2 * border:
            continue
        inner = (slice(None), slice(border, h - border), slice(border, w - border))
        with torch.no_grad():
            c1 = model.ms_to_coarse(torch.from_numpy(m1)).numpy()
            c2 = model.ms_to_coarse(torch.from_numpy(m2)).numpy()
        hs_parts.append(hs[inner])
        m1_parts.append(c1[inner])
        m2_parts.append(c2[inner])
    if not hs_parts:
        empty = np.zeros((0, 0))
        return CoarsePairs(empty, empty, empty, empty)
    hs = stack_pixels(hs_parts)
    return CoarsePairs(hs, model.srf.astype(np.float64) @ hs, stack_pixels(m1_parts), stack_pixels(m2_parts))


def relative_residuals(observed: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``(n_observed, n_predicted)`` relative residuals ``sqrt(1 - corr^2)`` of every observed band against
    every predicted band (the RMS residual of the affine fit over the band's spread)."""
    o = observed - observed.mean(axis=1, keepdims=True)
    p = predicted - predicted.mean(axis=1, keepdims=True)
    on = np.sqrt((o**2).sum(axis=1)) + 1e-12
    pn = np.sqrt((p**2).sum(axis=1)) + 1e-12
    corr = (o @ p.T) / on[:, None] / pn[None, :]
    return np.sqrt(np.clip(1.0 - corr**2, 0.0, 1.0))


@dataclass(frozen=True)
class BandOrderFinding:
    """What the band-label check found.

    ``residual`` holds each band's relative residual as labelled; ``suggested`` the labels in the file's
    band order that fit best (``None`` when the labels fit); ``message`` says it for the user.
    """

    residual: np.ndarray
    suggested: tuple[str, ...] | None
    poor: tuple[str, ...]
    message: str


def band_order_finding(pairs: CoarsePairs, *, model: ObservationModel, label: str) -> BandOrderFinding:
    """Check MS(t1)'s band labels against HS(t1): the relabelling (a permutation of the declared bands)
    that explains MS(t1) best, and whether it is markedly better than the labels given.

    ``label`` names the MS(t1) input in the message.
    """
    from scipy.optimize import linear_sum_assignment

    names = tuple(model.ms_sensor.band_names)
    cost = relative_residuals(pairs.ms1, pairs.predicted)
    given = np.diag(cost).copy()
    rows, cols = linear_sum_assignment(cost)
    best = cols[np.argsort(rows)]
    moved = np.flatnonzero(best != np.arange(len(names)))
    poor = tuple(names[i] for i in np.flatnonzero(given > POOR_BAND))
    if moved.size and given[moved].max() > POOR_BAND and given[moved].sum() >= RELABEL_GAIN * cost[moved, best[moved]].sum():
        suggested = tuple(names[j] for j in best)
        detail = ", ".join(
            f"band {i + 1} labelled {names[i]} fits {names[best[i]]} (residual {given[i]:.2f} -> {cost[i, best[i]]:.2f})"
            for i in moved
        )
        message = (
            f"{label}: the MS band labels do not match what HS(t1) shows: {detail}. The bands look stacked in "
            f"another order; if the file holds them as {','.join(suggested)}, pass --ms-bands "
            f"{','.join(suggested)} (ms_bands=[...]) or restack the file in the order given"
        )
        return BandOrderFinding(given, suggested, poor, message)
    if poor:
        message = (
            f"{label}: HS(t1) explains MS band(s) {', '.join(poor)} poorly (relative residual "
            f"{', '.join(f'{given[names.index(b)]:.2f}' for b in poor)}); check the band labels, the sensor and "
            "that MS(t1) and HS(t1) show the same date"
        )
        return BandOrderFinding(given, None, poor, message)
    return BandOrderFinding(given, None, (), "")


def swap_finding(
    residual_t1: np.ndarray, residual_t2: np.ndarray, *, labels: Sequence[str]
) -> tuple[str, str]:
    """``(severity, message)``: whether HS(t1) explains MS(t2) markedly better than MS(t1).

    ``residual_t1``/``residual_t2`` are per-band relative residuals of MS(t1) and MS(t2) against HS(t1);
    ``labels`` names MS(t1) and MS(t2). Severity is ``"error"``, ``"warning"`` or ``"ok"``.
    """
    m1, m2 = float(np.mean(residual_t1)), float(np.mean(residual_t2))
    if m1 < SWAP_FLOOR:
        return "ok", ""
    ratio = m2 / m1
    text = (
        f"HS(t1) is explained by {labels[1]} (mean relative residual {m2:.3f}) better than by {labels[0]} "
        f"({m1:.3f}), though HS(t1) and MS(t1) should show the same date"
    )
    if ratio < SWAP_ERROR_RATIO:
        return "error", (
            f"{text}: MS(t1) and MS(t2) look swapped. Pass the MS image of the HS date as MS_T1 and the later one "
            "as MS_T2 (ms_t1=, ms_t2=); --no-checks (checks=False) skips this check"
        )
    if ratio < SWAP_WARNING_RATIO:
        return "warning", f"{text}: check that MS(t1) and MS(t2) are given in date order"
    return "ok", ""


def offset_finding(
    pairs: CoarsePairs, *, model: ObservationModel, labels: Sequence[str], date: int = 1
) -> tuple[str, str, float]:
    """``(severity, message, offset)``: a reflectance offset of MS(t1) (``date=1``) or MS(t2) (``date=2``)
    against ``R HS(t1)``, common to most bands.

    The offset of a band is the difference of the means (robust to noise in either input, unlike an
    affine fit's intercept); the scene's offset is the median over bands, counted only when at least
    80 % of the bands agree in sign. At t2 a real change (snow, a flood) can move every band the same
    way, so an offset there is only ever a warning. ``labels`` names MS(t1) and MS(t2).
    """
    ms = pairs.ms1 if date == 1 else pairs.ms2
    per_band = ms.mean(axis=1) - pairs.predicted.mean(axis=1)
    offset = float(np.median(per_band))
    agree = float(np.mean(np.sign(per_band) == np.sign(offset))) if offset else 0.0
    if agree < 0.8 or abs(offset) < OFFSET_WARNING:
        return "ok", "", offset
    text = (
        f"{labels[date - 1]} reads {offset:+.3f} reflectance {'above' if offset > 0 else 'below'} what HS(t1) predicts, "
        f"in {agree:.0%} of its bands"
    )
    if offset > 0:
        fix = (
            f"Sentinel-2 L2A products of processing baseline 04.00 or later store reflectance + 0.1: pass "
            f"--ms-offset {-round(offset, 2):g} (ms_offset=) with --ms-scale, or check the HS scale and offset"
        )
    else:
        fix = "check the scale and offset of both inputs (--ms-offset, --hs-offset)"
    if abs(offset) >= OFFSET_ERROR and date == 1:
        return "error", f"{text}. {fix}; --no-checks (checks=False) skips this check", offset
    return "warning", f"{text}; {fix}", offset

"""Calibration of a per-pixel uncertainty: how often the true error lies within k predicted standard deviations.

For every scored band of every valid pixel, ``z = |prediction - truth| / sd``. A calibrated Gaussian
uncertainty has ``P(z <= k) = erf(k / sqrt(2))``: 68.3 % within 1 sd, 95.4 % within 2. The counts of
``z`` are kept in an exact histogram whose bin edges include every ``k`` of :data:`K_GRID`, so the
observed coverage at each ``k`` is exact (no sampling), overall and, at 1 and 2 sd, per band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["K_GRID", "CalibrationSums", "calibration_tile", "finish_calibration", "gaussian_coverage"]

#: The multiples of the predicted standard deviation at which coverage is reported.
K_GRID: np.ndarray = np.round(np.arange(0.5, 3.0 + 1e-9, 0.1), 10)
# Histogram edges of z: steps of 0.05 up to 3 (K_GRID lies on them), then everything above.
_EDGES = np.round(np.arange(0.0, 3.0 + 1e-9, 0.05), 10)


def gaussian_coverage(k: np.ndarray | float) -> np.ndarray:
    """``P(|X| <= k sigma)`` for a Gaussian ``X``: the coverage a calibrated uncertainty gives."""
    return np.vectorize(lambda v: math.erf(v / math.sqrt(2.0)))(np.asarray(k, dtype=float))


@dataclass
class CalibrationSums:
    """Counts of ``z = |error| / sd`` over a part of the image.

    ``hist[i]`` counts ``_EDGES[i-1] < z <= _EDGES[i]`` (``hist[0]``: ``z <= 0``; the last: above 3);
    ``within1``/``within2``/``n`` are per band.
    """

    hist: np.ndarray
    within1: np.ndarray
    within2: np.ndarray
    n: np.ndarray

    def merge(self, o: CalibrationSums) -> CalibrationSums:
        """The counts of both parts."""
        return CalibrationSums(self.hist + o.hist, self.within1 + o.within1, self.within2 + o.within2, self.n + o.n)


def calibration_tile(err: np.ndarray, sd: np.ndarray, valid: np.ndarray) -> CalibrationSums:
    """Counts for ``err`` ``(bands, h, w)`` = prediction - truth and ``sd`` ``(bands or 1, h, w)`` over the
    pixels where ``valid`` and the standard deviation is finite and not negative."""
    nb = err.shape[0]
    sdb = np.broadcast_to(sd, err.shape)
    ok = valid[None] & np.isfinite(sdb) & (sdb >= 0) & np.isfinite(err)
    e = np.abs(err.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        # sd = 0 covers only an exact prediction
        z = np.where(sdb > 0, e / np.where(sdb > 0, sdb, 1.0), np.where(e == 0, 0.0, np.inf))
    zv = z[ok]
    hist = np.bincount(np.searchsorted(_EDGES, zv, side="left"), minlength=_EDGES.size + 1)
    within1 = ((z <= 1.0) & ok).reshape(nb, -1).sum(axis=1)
    within2 = ((z <= 2.0) & ok).reshape(nb, -1).sum(axis=1)
    return CalibrationSums(hist.astype(np.int64), within1.astype(np.int64), within2.astype(np.int64),
                           ok.reshape(nb, -1).sum(axis=1).astype(np.int64))


def finish_calibration(sums: CalibrationSums, n_bands: int, bands: np.ndarray) -> dict[str, Any]:
    """Coverage fractions: overall at 1 and 2 sd and on :data:`K_GRID`, per band at 1 and 2 sd (``n_bands``
    long, NaN for the bands not scored), with the Gaussian expectation."""
    total = int(sums.hist.sum())
    cum = np.cumsum(sums.hist)

    def within(k: float) -> float:
        i = int(np.searchsorted(_EDGES, k, side="left"))
        return float(cum[i] / total) if total else math.nan

    per1 = np.full(n_bands, np.nan)
    per2 = np.full(n_bands, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        per1[bands] = np.where(sums.n > 0, sums.within1 / np.maximum(sums.n, 1), np.nan)
        per2[bands] = np.where(sums.n > 0, sums.within2 / np.maximum(sums.n, 1), np.nan)
    return {
        "values": total,
        "within_1sd": within(1.0),
        "within_2sd": within(2.0),
        "expected_within_1sd": float(gaussian_coverage(1.0)),
        "expected_within_2sd": float(gaussian_coverage(2.0)),
        "k": K_GRID.tolist(),
        "observed": [within(float(k)) for k in K_GRID],
        "expected": gaussian_coverage(K_GRID).tolist(),
        "per_band_within_1sd": per1.tolist(),
        "per_band_within_2sd": per2.tolist(),
    }

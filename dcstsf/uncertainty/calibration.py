"""The calibrated map from the measures to a standard deviation, its data file and its fit.

The standard deviation of the prediction at HS band ``b`` and fine pixel ``p`` is

    ``sd = exp(log_scale) * (band_b + f)^e_band * (residual_bp + f)^e_residual * (member_bp + f)^e_member
    * (change_bp + f)^e_change``

with the measures of :mod:`dcstsf.uncertainty.measures` and a floor ``f`` (reflectance) that keeps a zero
measure from making the standard deviation zero. The five numbers of each method are fitted on
simulated cases of training-eligible data (``experiments/uncertainty_calibration.py``): the exponents and a
first scale by Gaussian maximum likelihood of the true errors, then ``log_scale`` moved so that 68.27 % of
the calibration errors lie within one standard deviation (the errors have heavier tails than a Gaussian, so
the likelihood's scale alone covers more). The result is the package data file
``dcstsf/data/uncertainty_calibration.json``, with the cases and the script that produced it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dcstsf.errors import DcstsfInputError
from dcstsf.uncertainty.measures import Measures

__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_KEY",
    "ONE_SIGMA",
    "Calibration",
    "CalibrationEntry",
    "coverage",
    "fit_entry",
    "fit_log_model",
    "load_calibration",
    "log_model_sd",
    "standard_deviation",
]

#: The shipped calibration, in the package's data folder.
CALIBRATION_FILE = "uncertainty_calibration.json"
#: Entry used for a method the calibration does not name (fitted on every calibrated method's cases).
DEFAULT_KEY = "default"
#: Fraction of a Gaussian within one standard deviation: what the scale is set to cover.
ONE_SIGMA = math.erf(1 / math.sqrt(2))


@dataclass(frozen=True)
class CalibrationEntry:
    """The five numbers of one method: ``sd = exp(log_scale) * prod((measure + floor) ** exponent)``."""

    log_scale: float
    band_exponent: float
    residual_exponent: float
    member_exponent: float
    change_exponent: float

    @property
    def theta(self) -> np.ndarray:
        """``[log_scale, band, residual, member, change exponents]`` (:func:`log_model_sd`'s order)."""
        return np.array([self.log_scale, self.band_exponent, self.residual_exponent, self.member_exponent,
                         self.change_exponent])

    def to_dict(self) -> dict[str, float]:
        """JSON-friendly dict."""
        return {
            "log_scale": self.log_scale,
            "band_exponent": self.band_exponent,
            "residual_exponent": self.residual_exponent,
            "member_exponent": self.member_exponent,
            "change_exponent": self.change_exponent,
        }


@dataclass(frozen=True)
class Calibration:
    """A calibration file: one :class:`CalibrationEntry` per method key, the floor and smoothing width the
    measures were computed with, and the file's provenance.

    ``sigma_px`` is the Gaussian width (fine pixels) of the local root mean squares; ``floor`` the
    reflectance added to every measure. ``sha256`` and ``source`` identify the file in output attributes.
    """

    entries: dict[str, CalibrationEntry]
    floor: float
    sigma_px: float
    source: str = ""
    sha256: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    def entry(self, key: str) -> tuple[str, CalibrationEntry]:
        """``(key used, entry)``: the entry named ``key``, else the :data:`DEFAULT_KEY` one."""
        if key in self.entries:
            return key, self.entries[key]
        return DEFAULT_KEY, self.entries[DEFAULT_KEY]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document :func:`load_calibration` reads."""
        return {
            "model": "sd = exp(log_scale) * (band + floor)^band_exponent * (residual + floor)^residual_exponent "
                     "* (member + floor)^member_exponent * (change + floor)^change_exponent",
            "floor": self.floor,
            "sigma_px": self.sigma_px,
            "entries": {k: v.to_dict() for k, v in sorted(self.entries.items())},
            "provenance": self.provenance,
        }


def _default_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("dcstsf.data") / CALIBRATION_FILE))


def load_calibration(path: str | os.PathLike[str] | None = None) -> Calibration:
    """Read a calibration file (default: the shipped one).

    Raises
    ------
    DcstsfInputError
        A missing or malformed file.
    """
    p = Path(path).expanduser() if path is not None else _default_path()
    try:
        raw = p.read_bytes()
        doc = json.loads(raw)
        entries = {str(k): CalibrationEntry(**{n: float(x) for n, x in v.items()}) for k, v in doc["entries"].items()}
        floor, sigma = float(doc["floor"]), float(doc["sigma_px"])
    except FileNotFoundError:
        raise DcstsfInputError(
            f"{p}: uncertainty calibration file not found; reinstall dcstsf, or rebuild it with "
            "experiments/uncertainty_calibration.py"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DcstsfInputError(
            f"{p}: not an uncertainty calibration file ({exc}); use one written by "
            "experiments/uncertainty_calibration.py"
        ) from None
    if DEFAULT_KEY not in entries:
        raise DcstsfInputError(f"{p}: the calibration has no {DEFAULT_KEY!r} entry; rebuild it with "
                               "experiments/uncertainty_calibration.py")
    return Calibration(entries=entries, floor=floor, sigma_px=sigma, source=p.name,
                       sha256=hashlib.sha256(raw).hexdigest(), provenance=dict(doc.get("provenance", {})))


def standard_deviation(measures: Measures, entry: CalibrationEntry, *, floor: float) -> np.ndarray:
    """``(n_hs, h, w)`` float32 standard deviation from the measures of one region."""
    band = np.asarray(measures.band, dtype=np.float64)[:, None, None]
    sd = log_model_sd(entry.theta, [band, measures.residual, measures.member, measures.change], floor=floor)
    return np.broadcast_to(sd, np.shape(measures.residual)).astype(np.float32)


def coverage(errors: np.ndarray, sd: np.ndarray, k: float) -> float:
    """Fraction of the finite ``errors`` with ``|error| <= k * sd`` (NaN when there are none)."""
    e, s = np.asarray(errors, dtype=np.float64), np.asarray(sd, dtype=np.float64)
    ok = np.isfinite(e) & np.isfinite(s)
    return float(np.mean(np.abs(e[ok]) <= k * s[ok])) if ok.any() else float("nan")


def fit_log_model(measures: Sequence[np.ndarray], errors: np.ndarray, *, floor: float) -> tuple[np.ndarray, float]:
    """Gaussian maximum likelihood of ``log sd = theta_0 + sum_k theta_k log(measure_k + floor)``.

    ``measures`` are 1-D arrays of equal length (each measure at every sample's band and pixel) and
    ``errors`` the true errors there. Returns ``theta`` (the constant first) and the mean negative
    log-likelihood per sample at the maximum (without the constant ``log sqrt(2 pi)``).
    """
    from scipy.optimize import minimize

    e2 = np.asarray(errors, dtype=np.float64) ** 2
    x = np.column_stack([np.ones_like(e2), *(np.log(np.asarray(m, dtype=np.float64) + floor) for m in measures)])
    if x.shape[0] != e2.shape[0] or not np.isfinite(x).all() or not np.isfinite(e2).all():
        raise ValueError("fit_log_model needs finite samples of equal length")

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_sd = x @ theta
        w = e2 * np.exp(-2.0 * log_sd)
        return float(np.mean(log_sd + 0.5 * w)), (x * (1.0 - w)[:, None]).mean(axis=0)

    # start from equal exponents summing to one and the scale that matches the mean square error
    start = np.full(x.shape[1], 1.0 / max(1, len(measures)))
    start[0] = 0.5 * math.log(float(e2.mean())) - float((x[:, 1:] @ start[1:]).mean())
    res = minimize(nll, start, jac=True, method="L-BFGS-B")
    return np.asarray(res.x, dtype=np.float64), float(res.fun)


def log_model_sd(theta: np.ndarray, measures: Sequence[np.ndarray], *, floor: float) -> np.ndarray:
    """The standard deviation :func:`fit_log_model`'s ``theta`` gives for ``measures``."""
    log_sd = np.full(np.shape(measures[0]), float(theta[0]))
    for t, m in zip(theta[1:], measures):
        log_sd = log_sd + float(t) * np.log(np.asarray(m, dtype=np.float64) + floor)
    return np.exp(log_sd)


def fit_entry(band: np.ndarray, residual: np.ndarray, member: np.ndarray, change: np.ndarray, errors: np.ndarray, *,
              floor: float) -> tuple[CalibrationEntry, dict[str, float]]:
    """Fit one entry on pooled samples (1-D arrays of equal length: each measure at the sample's band and
    pixel, and the true error there).

    The exponents and a first scale by :func:`fit_log_model`; then ``log_scale`` moves so that
    :data:`ONE_SIGMA` of the samples lie within one standard deviation. Returns the entry and what the fit
    found: the maximum-likelihood ``log_scale``, the mean negative log-likelihood and the sample count.
    """
    measures = [band, residual, member, change]
    theta, nll = fit_log_model(measures, errors, floor=floor)
    ml_scale = float(theta[0])
    z = np.abs(np.asarray(errors, dtype=np.float64)) / log_model_sd(theta, measures, floor=floor)
    theta[0] += math.log(float(np.quantile(z, ONE_SIGMA)))
    entry = CalibrationEntry(log_scale=float(theta[0]), band_exponent=float(theta[1]),
                             residual_exponent=float(theta[2]), member_exponent=float(theta[3]),
                             change_exponent=float(theta[4]))
    return entry, {"ml_log_scale": ml_scale, "nll": nll, "samples": int(np.size(errors))}

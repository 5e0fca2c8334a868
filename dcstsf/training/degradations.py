"""Randomised sensor physics for pre-training: each simulated case gets its own HS blur, shift and response.

A network trained under one fixed degradation learns that degradation. Real scenes differ from the
sensor tables: the HS point-spread function is wider or narrower, the HS footprints are displaced from
the MS grid by a sub-pixel amount, and the MS spectral responses differ from the tabulated ones (band
centres drift by a few nm between units and over the mission, calibration gains by a few percent).

:func:`random_physics` draws, per case, a **true** observation model that simulates the case and the
**told** model the network fuses it with. The told model is what inference gives the network with
``physics="estimated"`` (:mod:`dcstsf.diagnosis`): the HS blur width and the shift, which the diagnosis
estimates well, are the true ones; the spectral responses stay the tables' (the diagnosis keeps the
table's response unless a re-estimate wins on held-out data), so the network learns to tolerate a
response that is slightly off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel

__all__ = ["DegradationRanges", "random_physics", "perturb_response"]


@dataclass(frozen=True)
class DegradationRanges:
    """Ranges of the per-case physics (each drawn uniformly).

    Parameters
    ----------
    psf_scale
        ``(low, high)`` factor on the tables' HS Gaussian width (one factor for every band).
    shift_coarse
        Largest HS-to-MS shift on each axis, in coarse (HS) pixels.
    response_shift_nm
        Largest shift of each MS band's spectral response along the wavelength axis, nm.
    response_gain
        Largest relative gain error of each MS band (``0.03``: up to +/-3 %).
    """

    psf_scale: tuple[float, float] = (0.7, 1.6)
    shift_coarse: float = 0.5
    response_shift_nm: float = 4.0
    response_gain: float = 0.03

    def __post_init__(self) -> None:
        low, high = self.psf_scale
        if not 0 < low <= high:
            raise DcstsfInputError(f"psf_scale must be a (low, high) range of positive factors, got {self.psf_scale}")
        if self.shift_coarse < 0 or self.response_shift_nm < 0 or not 0 <= self.response_gain < 1:
            raise DcstsfInputError(
                "shift_coarse and response_shift_nm must be >= 0 and response_gain in [0, 1); got "
                f"{self.shift_coarse}, {self.response_shift_nm}, {self.response_gain}"
            )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> DegradationRanges | None:
        """The ranges of a training config's ``data.degradations`` section (``None``/empty: off)."""
        if not cfg:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise DcstsfInputError(f"data.degradations: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        values = dict(cfg)
        if "psf_scale" in values:
            values["psf_scale"] = tuple(float(v) for v in values["psf_scale"])
        return cls(**values)


def perturb_response(
    srf: np.ndarray, centers_nm: np.ndarray, *, shifts_nm: np.ndarray, gains: np.ndarray
) -> np.ndarray:
    """Response rows ``(n_ms, n_hs)`` moved by ``shifts_nm`` along the HS band centres and scaled by ``gains``.

    A row shifted by ``d`` nm weighs HS band ``i`` by the old row's value at ``centers_nm[i] - d``
    (linear interpolation over the band centres), renormalised to the old row's sum, so a band's response
    keeps its integral and only its position moves; the gain then scales it.
    """
    out = np.empty_like(srf, dtype=np.float64)
    centers = np.asarray(centers_nm, dtype=np.float64)
    for k, row in enumerate(np.asarray(srf, dtype=np.float64)):
        moved = np.interp(centers - shifts_nm[k], centers, row, left=0.0, right=0.0)
        total = moved.sum()
        out[k] = (moved * (row.sum() / total) if total > 0 else row) * gains[k]
    return out.astype(np.float32)


def random_physics(
    model: ObservationModel, rng: np.random.Generator, ranges: DegradationRanges
) -> tuple[ObservationModel, ObservationModel]:
    """``(true, told)``: the model that simulates a case and the one the network is given.

    ``true`` has the HS blur scaled by a factor from ``ranges.psf_scale``, a shift within
    ``ranges.shift_coarse`` coarse pixels on each axis and perturbed responses (:func:`perturb_response`);
    ``told`` has the same blur and shift with the tables' responses, recorded as ``physics="estimated"``.
    """
    factor = float(rng.uniform(*ranges.psf_scale))
    shift = tuple(float(v) for v in rng.uniform(-ranges.shift_coarse, ranges.shift_coarse, 2) * model.ratio)
    n_ms = model.n_ms
    srf = perturb_response(
        model.srf, model.hs_sensor.centers_nm,
        shifts_nm=rng.uniform(-ranges.response_shift_nm, ranges.response_shift_nm, n_ms),
        gains=1.0 + rng.uniform(-ranges.response_gain, ranges.response_gain, n_ms),
    )
    told = dataclasses.replace(
        model, hs_sigma=np.asarray(model.hs_sigma) * factor, hs_shift=(shift[0], shift[1]), physics="estimated"
    )
    true = dataclasses.replace(told, srf=srf, physics="tables")
    return true, told

"""The scene-level state of the uncertainty, computed once before any tile, like a method's ``fit``.

:class:`UncertaintyState` holds the reference member and its fitted state, the per-band unexplained
standard deviation of the scene, the MS -> HS band mapping and the calibration entry of the method. The
tiles need a wider halo than the prediction alone: the member's receptive field, and beyond the region
they keep, the MS blur and the local root mean square (:func:`uncertainty_halo`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf.methods import Method
from dcstsf.methods.base import Fitted, fit_scene
from dcstsf.operators import ObservationModel, blur_radius
from dcstsf.scene_stats import round_up_to_ratio
from dcstsf.uncertainty.calibration import Calibration, CalibrationEntry
from dcstsf.uncertainty.measures import band_mapping, local_rms_radius, unexplained_band_sd
from dcstsf.uncertainty.members import calibration_key, member_description

__all__ = ["UncertaintyState", "uncertainty_halo", "uncertainty_margin", "uncertainty_state"]


@dataclass(frozen=True, eq=False)
class UncertaintyState:
    """Everything the tiles of one scene share to compute the standard deviation.

    ``member``/``member_fitted``: the reference ensemble member and its scene state; ``band_sd`` ``(n_hs,)``:
    the unexplained standard deviation per band; ``mapping`` ``(n_hs, n_ms)``: :func:`band_mapping`;
    ``margin``: fine pixels predicted beyond the region a tile keeps, so that the local measures are exact
    there; ``key``/``entry``: the calibration entry used.
    """

    member: Method
    member_fitted: Fitted
    band_sd: np.ndarray
    mapping: np.ndarray
    margin: int
    calibration: Calibration
    key: str
    entry: CalibrationEntry
    member_name: str = ""

    def attrs(self) -> dict[str, Any]:
        """Attributes of the standard-deviation output: what it is and which calibration made it."""
        return {
            "quantity": "standard deviation of the predicted reflectance (per band and pixel)",
            "uncertainty_model": (
                "exp(log_scale) * (band_unexplained + floor)^a * (ms_t2_residual + floor)^b "
                "* (member_disagreement + floor)^c * (ms_change + floor)^d"
            ),
            "uncertainty_member": self.member_name or self.member.name,
            "uncertainty_calibration": self.calibration.source,
            "uncertainty_calibration_sha256": self.calibration.sha256,
            "uncertainty_calibration_entry": self.key,
            "uncertainty_parameters": json.dumps(self.entry.to_dict(), sort_keys=True),
        }


def uncertainty_margin(model: ObservationModel, calibration: Calibration) -> int:
    """Fine pixels beyond a kept region on which the prediction and the MS images are needed: the MS blur
    of the residual and the local root mean squares, rounded up to the ratio."""
    reach = blur_radius(model.ms_sigma) + local_rms_radius(calibration.sigma_px)
    return round_up_to_ratio(reach, model.ratio)


def uncertainty_halo(method: Method, member: Method, model: ObservationModel, *, calibration: Calibration,
                     halo: int | None = None) -> int:
    """The tile halo for prediction and standard deviation: the widest of the method's (or the given
    ``halo``) and the member's receptive field, plus :func:`uncertainty_margin`."""
    own = int(method.halo(model)) if halo is None else int(halo)
    return max(own, int(member.halo(model))) + uncertainty_margin(model, calibration)


def uncertainty_state(method: Method, member: Method, model: ObservationModel, hs_t1: Any, ms_t1: Any, ms_t2: Any,
                      *, calibration: Calibration) -> UncertaintyState:
    """Fit the member and measure the per-band unexplained standard deviation on the whole scene (NumPy or
    Dask arrays, NaN for nodata, the arrays the method was fitted on)."""
    key, entry = calibration.entry(calibration_key(method, model))
    return UncertaintyState(
        member=member,
        member_fitted=fit_scene(member, hs_t1, ms_t1, ms_t2, model=model),
        band_sd=unexplained_band_sd(hs_t1, ms_t1, ms_t2, model=model),
        mapping=band_mapping(model).astype(np.float32),
        margin=uncertainty_margin(model, calibration),
        calibration=calibration,
        key=key,
        entry=entry,
        member_name=member_description(member, model),
    )

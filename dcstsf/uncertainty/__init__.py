"""Per-pixel uncertainty of a fused HS(t2): a standard deviation per band and fine pixel, for every method.

It is built from four measurable quantities (:mod:`~dcstsf.uncertainty.measures`), each computable tile
by tile with a finite reach, so a tiled standard deviation equals the whole-image one as the prediction
does:

- how far the prediction disagrees with a reference ensemble member (:mod:`~dcstsf.uncertainty.members`:
  for learned DC-STSF, the same network with its learned units at zero);
- how well the prediction, seen through the MS sensor (``B_ms R HS(t2)``), reproduces the observed MS(t2),
  taken to the HS bands through the spectral responses;
- how much of each HS band the scene's MS bands leave unexplained (a scene-level number per band);
- how much the MS images changed between the dates, taken to the HS bands.

:mod:`~dcstsf.uncertainty.calibration` turns them into a standard deviation with five numbers per method,
fitted on simulated cases of training-eligible data (``experiments/uncertainty_calibration.py``, stored in
``dcstsf/data/uncertainty_calibration.json``). ``docs/results.md`` ("Per-pixel uncertainty") reports how
often the true errors fall within one and two standard deviations on held-out cases.

Use it through ``dcstsf.fuse(..., uncertainty=True)`` (a :class:`FusionResult`) or ``dcstsf fuse ...
--uncertainty OUT_SD.tif`` (:func:`write_uncertainty`).
"""

from dcstsf.uncertainty.calibration import (
    Calibration,
    CalibrationEntry,
    coverage,
    fit_entry,
    fit_log_model,
    load_calibration,
    log_model_sd,
    standard_deviation,
)
from dcstsf.uncertainty.files import check_uncertainty_output, write_uncertainty
from dcstsf.uncertainty.measures import (
    Measures,
    band_mapping,
    local_rms,
    ms_change,
    ms_residual,
    unexplained_band_sd,
)
from dcstsf.uncertainty.members import calibration_key, is_physics_only, reference_member
from dcstsf.uncertainty.result import FusionResult
from dcstsf.uncertainty.scene import UncertaintyState, uncertainty_halo, uncertainty_margin, uncertainty_state
from dcstsf.uncertainty.tile import predict_tile_with_sd, tile_measures, whole_image_measures

__all__ = [
    "Calibration",
    "CalibrationEntry",
    "FusionResult",
    "Measures",
    "UncertaintyState",
    "band_mapping",
    "calibration_key",
    "check_uncertainty_output",
    "coverage",
    "fit_entry",
    "fit_log_model",
    "is_physics_only",
    "load_calibration",
    "local_rms",
    "log_model_sd",
    "ms_change",
    "ms_residual",
    "predict_tile_with_sd",
    "reference_member",
    "standard_deviation",
    "tile_measures",
    "uncertainty_halo",
    "uncertainty_margin",
    "uncertainty_state",
    "unexplained_band_sd",
    "whole_image_measures",
    "write_uncertainty",
]

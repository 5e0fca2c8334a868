"""The step between validated inputs and a fusion: check the values, order the MS bands as the method
needs them, and diagnose the scene's physics (:mod:`dcstsf.diagnosis`).

It runs once per scene, before any tile is planned (the estimated blur and shift set the halo) or any
output is written, so an input that cannot be right stops the run with nothing to clean up.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from dcstsf.diagnosis import DiagnosisOptions, SceneDiagnosis, diagnose_scene
from dcstsf.engine.inputs import FusionInputs
from dcstsf.engine.sources import input_label
from dcstsf.methods import Method
from dcstsf.nodata import inf_to_nan

__all__ = ["SettledInputs", "settle_inputs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettledInputs:
    """Inputs ready to fuse: MS bands in the method's order, the model of the diagnosed physics.

    ``fit_inputs`` is the same for the data the scene-level fit reads (``None`` when none was given).
    """

    inputs: FusionInputs
    diagnosis: SceneDiagnosis
    ms_order: tuple[str, ...] | None
    fit_inputs: FusionInputs | None = None


def _reordered(inputs: FusionInputs, order: tuple[str, ...] | None) -> FusionInputs:
    """``inputs`` with the MS bands (arrays and model) in ``order`` (``None``: as they are)."""
    if order is None or tuple(inputs.model.ms_sensor.band_names) == order:
        return inputs
    from dcstsf.engine.bands import reorder_ms_bands

    ms1, ms2, model = reorder_ms_bands(inputs.ms_t1, inputs.ms_t2, inputs.model, list(order))
    return dataclasses.replace(inputs, ms_t1=ms1, ms_t2=ms2, model=model)


def settle_inputs(
    inputs: FusionInputs,
    *,
    method: Method,
    options: DiagnosisOptions | None = None,
    fit_inputs: FusionInputs | None = None,
    settled: SettledInputs | None = None,
) -> SettledInputs:
    """Check, order and diagnose validated inputs; returns them with the model the methods use.

    ``fit_inputs``: the same data in other chunks to read the values and windows from (a batch run's
    file-block chunks). ``settled``: an earlier result for the same data (a batch run re-opens its files
    in tile-aligned chunks): its band order and diagnosis are applied without reading anything.
    """
    options = options if options is not None else DiagnosisOptions()
    if settled is not None:
        model = settled.diagnosis.model

        def apply(x: FusionInputs | None) -> FusionInputs | None:
            return None if x is None else dataclasses.replace(_reordered(x, settled.ms_order), model=model)

        return SettledInputs(apply(inputs), settled.diagnosis, settled.ms_order, apply(fit_inputs))
    t0 = time.perf_counter()
    source = fit_inputs if fit_inputs is not None else inputs
    labels = (
        input_label(source.hs_t1, "HS(t1)"), input_label(source.ms_t1, "MS(t1)"), input_label(source.ms_t2, "MS(t2)")
    )
    if options.checks:
        from dcstsf.diagnosis.values import check_reflectance_values, raise_or_warn

        # A method without scene physics makes its result from HS(t1) alone: only HS(t1) is checked.
        checked = [(source.hs_t1, "HS(t1)", "hs")]
        if method.uses_scene_physics:
            checked += [(source.ms_t1, "MS(t1)", "ms"), (source.ms_t2, "MS(t2)", "ms")]
        raise_or_warn([check_reflectance_values(da, name=name, role=role) for da, name, role in checked])
    if not method.uses_scene_physics:
        note = f"{method.name} uses no scene physics: nothing estimated, the MS inputs not checked"
        diagnosis = SceneDiagnosis(model=inputs.model, tables=inputs.model, physics="tables", notes=(note,))
        return SettledInputs(inputs, diagnosis, None, fit_inputs)
    wanted = method.ms_band_order(inputs.model)
    order = tuple(wanted) if wanted is not None else None
    if order is not None and tuple(inputs.model.ms_sensor.band_names) != order:
        log.info("MS bands reordered for %s: %s -> %s", method.name,
                 ",".join(inputs.model.ms_sensor.band_names), ",".join(order))
    inputs = _reordered(inputs, order)
    source = _reordered(source, order)
    arrays = (inf_to_nan(a) for a in (source.hs_t1.data, source.ms_t1.data, source.ms_t2.data))
    diagnosis = diagnose_scene(*arrays, model=inputs.model, options=options, labels=labels)
    # the record's time covers the whole step: value checks, windows, estimate, consistency checks
    diagnosis = dataclasses.replace(diagnosis, seconds=time.perf_counter() - t0)
    model = diagnosis.model
    return SettledInputs(
        dataclasses.replace(inputs, model=model), diagnosis, order,
        None if fit_inputs is None else dataclasses.replace(source, model=model),
    )

"""The scene diagnosis: estimate the sensor physics from the inputs and check that they agree.

:func:`diagnose_scene` runs once per scene, before any tile is fused, for every method:

1. a few contiguous windows of the three inputs are read (:mod:`dcstsf.diagnosis.windows`);
2. the HS point-spread function (a Gaussian width) and a global sub-pixel shift between the HS and MS
   grids are fitted on HS(t1) against MS(t1) (:mod:`dcstsf.diagnosis.psf`);
3. the consistency checks run on that fit (:mod:`dcstsf.diagnosis.consistency`): band labels, date order,
   offset; an error stops the run before anything is written, a doubtful finding warns;
4. each MS band's spectral response row is re-estimated and kept only where it explains held-out pixels
   better than the sensor table (:mod:`dcstsf.diagnosis.response`).

With ``physics="estimated"`` (the default) the observation model handed to the methods carries the
estimated PSF, shift, relative blurs and responses; with ``"tables"`` it keeps the sensor tables' (the
fit still runs for the checks and the record). When no window of the scene is free of nodata, the
tables are kept and the diagnosis says so.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcstsf.diagnosis.consistency import (
    band_order_finding,
    coarse_pairs,
    offset_finding,
    relative_residuals,
    swap_finding,
)
from dcstsf.diagnosis.psf import PsfEstimate, PsfOptions, estimate_psf, max_shift, psf_residual
from dcstsf.diagnosis.response import ResponseEstimate, ResponseOptions, estimate_response
from dcstsf.diagnosis.windows import SceneWindows, WindowOptions, scene_windows
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel

__all__ = ["PHYSICS", "DiagnosisOptions", "SceneDiagnosis", "diagnose_scene", "estimated_model"]

log = logging.getLogger(__name__)

#: The accepted values of ``physics``.
PHYSICS = ("estimated", "tables")


@dataclass(frozen=True)
class DiagnosisOptions:
    """How the scene diagnosis runs.

    Parameters
    ----------
    physics
        ``"estimated"``: the methods use the PSF, shift and responses estimated from the scene;
        ``"tables"``: they use the sensor tables (the estimate is still made and recorded).
    checks
        Run the input-consistency checks (band labels, date order, offset); ``False`` skips them.
    windows, psf, response
        Options of the window reader and the estimators.
    """

    physics: str = "estimated"
    checks: bool = True
    windows: WindowOptions = field(default_factory=WindowOptions)
    psf: PsfOptions = field(default_factory=PsfOptions)
    response: ResponseOptions = field(default_factory=ResponseOptions)

    def __post_init__(self) -> None:
        if self.physics not in PHYSICS:
            raise DcstsfInputError(
                f"physics must be one of {', '.join(PHYSICS)}, got {self.physics!r} (CLI --physics tables|estimated)"
            )


@dataclass(frozen=True)
class SceneDiagnosis:
    """What the diagnosis estimated, decided and found.

    Attributes
    ----------
    model
        The observation model the methods use (estimated physics, or the tables').
    tables
        The observation model from the sensor tables.
    physics
        ``"estimated"`` or ``"tables"``: what ``model`` carries.
    psf, response
        The estimates (``None`` when no window was usable).
    residual_tables, residual_estimated, residual_t2
        Per MS band relative residuals of MS(t1) against HS(t1) with the tables' and the estimated physics,
        and of MS(t2) with the physics used (``None`` without a usable window).
    n_pixels
        Coarse pixels the estimate used.
    seconds
        Time the diagnosis took (in a fusion run: the whole step before planning, value checks included).
    notes
        Findings for the user (warnings given, fallbacks taken).
    """

    model: ObservationModel
    tables: ObservationModel
    physics: str
    psf: PsfEstimate | None = None
    response: ResponseEstimate | None = None
    residual_tables: np.ndarray | None = None
    residual_estimated: np.ndarray | None = None
    residual_t2: np.ndarray | None = None
    n_pixels: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: the physics used and the estimate."""
        if self.psf is None:
            return f"physics: tables ({'; '.join(self.notes) or 'not estimated'})"
        p = self.psf
        table_sigma = float(np.median(self.tables.hs_sigma))
        n_rows = int(np.sum(self.response.trusted)) if self.response is not None else 0
        res_used = self.residual_estimated if self.physics == "estimated" else self.residual_tables
        return (
            f"physics: {self.physics}; HS PSF sigma {p.sigma:.2f} fine px (table {table_sigma:.2f}), shift "
            f"({p.shift[0]:+.2f}, {p.shift[1]:+.2f}) fine px, {n_rows}/{self.tables.n_ms} response rows "
            f"re-estimated, MS(t1) residual {float(np.mean(res_used)):.3f} (tables "
            f"{float(np.mean(self.residual_tables)):.3f}) on {self.n_pixels} px in {self.seconds:.1f} s"
        )

    def band_table(self) -> str:
        """Per MS band: residuals with the tables' and the estimated physics, and the response decision."""
        if self.psf is None or self.residual_tables is None:
            return self.summary()
        names = self.tables.ms_sensor.band_names
        lines = ["band   resid.tables  resid.estimated  resid.t2  gain    offset   response"]
        for i, name in enumerate(names):
            why = self.response.reasons[i] if self.response is not None else "table"
            lines.append(
                f"{name:6s} {self.residual_tables[i]:12.3f}  {self.residual_estimated[i]:15.3f}  "
                f"{self.residual_t2[i]:8.3f}  {self.psf.gain[i]:6.3f}  {self.psf.offset[i]:+7.3f}  {why}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly record (for output attributes and reports)."""
        out: dict[str, Any] = {
            "physics": self.physics,
            "table_hs_psf_sigma": round(float(np.median(self.tables.hs_sigma)), 4),
            "n_pixels": int(self.n_pixels),
            "seconds": round(float(self.seconds), 3),
            "notes": list(self.notes),
        }
        if self.psf is not None:
            names = list(self.tables.ms_sensor.band_names)
            out.update(
                hs_psf_sigma=round(float(self.psf.sigma), 4),
                hs_shift=[round(float(v), 4) for v in self.psf.shift],
                relative_sigma=dict(zip(names, np.round(np.asarray(self.psf.relative_sigma, float), 4).tolist())),
                residual_tables=dict(zip(names, np.round(self.residual_tables, 4).tolist())),
                residual_estimated=dict(zip(names, np.round(self.residual_estimated, 4).tolist())),
                residual_t2=dict(zip(names, np.round(self.residual_t2, 4).tolist())),
            )
        if self.response is not None:
            names = list(self.tables.ms_sensor.band_names)
            out["response_rows_estimated"] = [n for n, t in zip(names, self.response.trusted) if t]
            out["response_reasons"] = dict(zip(names, self.response.reasons))
        return out

    def to_attrs(self) -> dict[str, str]:
        """Output attributes: ``physics`` and the record as JSON under ``scene_diagnosis``."""
        return {"physics": self.physics, "scene_diagnosis": json.dumps(self.to_dict(), sort_keys=True)}


def estimated_model(model: ObservationModel, psf: PsfEstimate, response: ResponseEstimate | None) -> ObservationModel:
    """``model`` with the estimated HS PSF (band-independent), shift, relative blurs and responses."""
    return dataclasses.replace(
        model,
        hs_sigma=np.full(model.n_hs, float(psf.sigma)),
        hs_shift=(float(psf.shift[0]), float(psf.shift[1])),
        srf=(response.srf if response is not None else model.srf).astype(np.float32),
        physics="estimated",
    )


def _raise_or_warn(findings: Sequence[tuple[str, str]]) -> list[str]:
    errors = [msg for sev, msg in findings if sev == "error"]
    if errors:
        raise DcstsfInputError("; ".join(errors))
    notes = []
    for sev, msg in findings:
        if sev == "warning":
            warnings.warn(msg, UserWarning, stacklevel=4)
            notes.append(msg)
    return notes


def _checks(windows: SceneWindows, *, model: ObservationModel, labels: Sequence[str]) -> list[tuple[str, str]]:
    """Consistency findings on the fitted model: ``(severity, message)`` pairs."""
    pairs = coarse_pairs(windows, model=model)
    findings: list[tuple[str, str]] = []
    order = band_order_finding(pairs, model=model, label=labels[1])
    if order.suggested is not None:
        findings.append(("error", order.message))
    elif order.message:
        findings.append(("warning", order.message))
    res1 = np.diag(relative_residuals(pairs.ms1, pairs.predicted))
    res2 = np.diag(relative_residuals(pairs.ms2, pairs.predicted))
    findings.append(swap_finding(res1, res2, labels=labels[1:]))
    sev, msg, _ = offset_finding(pairs, model=model, labels=labels[1:], date=1)
    findings.append((sev, msg))
    sev, msg, _ = offset_finding(pairs, model=model, labels=labels[1:], date=2)
    findings.append((sev, msg))
    return findings


#: Mean relative MS(t1) residual (``sqrt(1 - corr^2)``) above which a shift at the edge of the search means
#: the best match lies beyond it: co-registered Wald cases stay near the noise (0.02-0.06 on the demo's),
#: a displacement of two HS pixels leaves 0.4.
MISREGISTRATION_RESIDUAL = 0.25


def _registration_finding(psf: PsfEstimate, residual: Any, *, model: ObservationModel, options: DiagnosisOptions,
                          labels: Sequence[str]) -> tuple[str, str]:
    """A warning when HS(t1) matches MS(t1) best at the edge of the shift search: the inputs are displaced by
    at least one HS pixel, and a larger displacement lies beyond what the fusion can correct."""
    limit = max_shift(options.psf, model)
    dy, dx = psf.shift
    if max(abs(dy), abs(dx)) < limit - 1e-6:
        return ("ok", "")
    mean_residual = float(np.mean(residual))
    # at the edge and still poorly matched: the best match lies beyond the search, the fusion would be wrong
    beyond = mean_residual > MISREGISTRATION_RESIDUAL
    found = (
        f"{labels[0]} matches {labels[1]} best at a shift of ({dy:+.2f}, {dx:+.2f}) fine pixels, the edge of the "
        f"+/-{limit:g}-pixel search, with an MS(t1) residual of {mean_residual:.3f}: "
    )
    fix = ("co-register HS(t1) to MS(t1) first (dcstsf prepare does for products; dcstsf.coregistration.coregister "
           "for arrays)")
    if beyond:
        return ("error", found + "they are misregistered by more than the fusion can correct. " + fix[0].upper()
                + fix[1:] + "; --no-checks (checks=False) fuses them anyway")
    return ("warning", found + "they are misregistered by about that much (corrected). A larger misregistration "
            "would be beyond what the fusion corrects: " + fix)


def diagnose_scene(
    hs_t1: Any,
    ms_t1: Any,
    ms_t2: Any,
    *,
    model: ObservationModel,
    options: DiagnosisOptions = DiagnosisOptions(),
    labels: Sequence[str] = ("HS(t1)", "MS(t1)", "MS(t2)"),
) -> SceneDiagnosis:
    """Estimate the scene's physics from HS(t1) and MS(t1), check the inputs, and choose the model.

    Parameters
    ----------
    hs_t1, ms_t1, ms_t2
        Whole-scene arrays (NumPy or Dask), ``(band, y, x)``, NaN = nodata, on aligned grids.
    model
        The observation model from the sensor tables.
    options
        :class:`DiagnosisOptions`.
    labels
        How the three inputs are named in messages (file names where known).

    Raises
    ------
    DcstsfInputError
        When a check finds inputs that cannot be right (and ``options.checks``).
    """
    t0 = time.perf_counter()
    windows = scene_windows(hs_t1, ms_t1, ms_t2, model=model, options=options.windows)
    psf = None
    if len(windows) == 0:
        reason = "no part of the scene is free of nodata"
    else:
        try:
            psf = estimate_psf(windows.hs, windows.ms1, model=model, options=options.psf)
        except DcstsfInputError as exc:  # too small a scene to estimate from
            reason = str(exc)
    if psf is None:
        note = (
            f"the scene physics could not be estimated ({reason}); the sensor tables' physics is used and the "
            "inputs' band labels, date order and offsets are not checked"
        )
        # Not a warning: nothing is wrong with the inputs, the estimate needs more valid pixels than they have.
        log.info("physics: tables; %s", note)
        return SceneDiagnosis(model=model, tables=model, physics="tables", seconds=time.perf_counter() - t0,
                              notes=(note,))
    fitted = estimated_model(model, psf, None)
    notes: list[str] = []
    if options.checks:
        findings = _checks(windows, model=fitted, labels=labels)
        notes += _raise_or_warn(findings)
    response = estimate_response(windows.hs, windows.ms1, model=model, psf=psf, options=options.response)
    estimated = estimated_model(model, psf, response)
    table_sigma = float(np.median(model.hs_sigma))
    residual_tables = psf_residual(windows.hs, windows.ms1, model=model, sigma=table_sigma, shift=(0.0, 0.0))
    residual_estimated = psf_residual(
        windows.hs, windows.ms1, model=model, sigma=psf.sigma, shift=psf.shift, srf=estimated.srf
    )
    if options.checks:
        notes += _raise_or_warn([_registration_finding(psf, residual_estimated, model=model, options=options,
                                                       labels=labels)])
    chosen = estimated if options.physics == "estimated" else model
    used_sigma, used_shift = (psf.sigma, psf.shift) if options.physics == "estimated" else (table_sigma, (0.0, 0.0))
    residual_t2 = psf_residual(windows.hs, windows.ms2, model=model, sigma=used_sigma, shift=used_shift, srf=chosen.srf)
    diagnosis = SceneDiagnosis(
        model=chosen,
        tables=model,
        physics=options.physics,
        psf=psf,
        response=response,
        residual_tables=np.asarray(residual_tables, np.float64),
        residual_estimated=np.asarray(residual_estimated, np.float64),
        residual_t2=np.asarray(residual_t2, np.float64),
        n_pixels=windows.n_pixels,
        seconds=time.perf_counter() - t0,
        notes=tuple(notes),
    )
    log.info("%s", diagnosis.summary())
    log.debug("per-band diagnosis:\n%s", diagnosis.band_table())
    return diagnosis

"""What a fused output records about the scene: the physics it was fused with and the co-registration.

``scene_diagnosis`` (JSON, :meth:`dcstsf.diagnosis.SceneDiagnosis.to_dict`) and ``physics`` are written
by every fusion run. With ``physics == "estimated"`` the methods used the estimated HS PSF (a Gaussian
width and a shift): :func:`recorded_model` rebuilds that model, as
:func:`dcstsf.diagnosis.diagnose.estimated_model` does, so that the report degrades the prediction
through the same PSF. The re-estimated MS spectral-response rows are not stored in the record; the MS
check keeps the sensor tables' responses.

``coregistration`` (JSON) is the HS-to-MS displacement the inputs were corrected with, when a
co-registration step ran. :func:`coregistration_field` accepts either

* the record of :mod:`dcstsf.coregistration` (``CoregistrationResult.to_attrs``): a fitted ``field``
  (``DisplacementField.to_dict``, coarse pixels on the coarse grid), ``ratio``, ``shift_fine_px`` and
  ``statistics``; the field is drawn at a regular grid of positions, converted to fine pixels; or
* tie points and their vectors in fine (MS) pixels::

    {"tie_points": [[row, col], ...], "vectors": [[dy, dx], ...], "global_shift": [dy, dx],
     "residual_px": 0.12}

  (``tie_points`` may also be ``[{"row": r, "col": c}, ...]`` and ``vectors`` ``[{"dy": .., "dx": ..}, ...]``;
  the last two keys are optional).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf.operators import ObservationModel

__all__ = ["CoregistrationField", "coregistration_field", "recorded_diagnosis", "recorded_model"]

log = logging.getLogger(__name__)


def recorded_diagnosis(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``scene_diagnosis`` record of a prediction's attributes, ``None`` when absent or unreadable."""
    raw = attrs.get("scene_diagnosis")
    if raw is None:
        return None
    try:
        record = json.loads(str(raw)) if not isinstance(raw, Mapping) else dict(raw)
    except ValueError:
        log.warning("scene_diagnosis attribute is not JSON; left out of the report")
        return None
    return record if isinstance(record, dict) else None


def recorded_model(model: ObservationModel, attrs: Mapping[str, Any]) -> ObservationModel:
    """``model`` with the HS PSF the prediction was fused with, when its record says the estimate was used.

    The HS blur becomes the recorded band-independent Gaussian and shift, as in
    :func:`~dcstsf.diagnosis.diagnose.estimated_model`; the spectral responses stay ``model``'s (the
    record names the re-estimated rows but does not store them).
    """
    record = recorded_diagnosis(attrs)
    if not record or record.get("physics") != "estimated" or "hs_psf_sigma" not in record:
        return model
    shift = record.get("hs_shift", (0.0, 0.0))
    return dataclasses.replace(
        model,
        hs_sigma=np.full(model.n_hs, float(record["hs_psf_sigma"])),
        hs_shift=(float(shift[0]), float(shift[1])),
        physics="estimated",
    )


# Positions per side at which a fitted field is drawn.
_FIELD_SAMPLES = 8


@dataclass(frozen=True)
class CoregistrationField:
    """Positions ``(n, 2)`` (row, col) and their displacement vectors ``(n, 2)`` (dy, dx), fine pixels.

    ``kind`` is ``"tie points"`` (measured vectors) or ``"fitted field"`` (the fitted field at a grid of
    positions); ``residual_px`` is the median residual of the kept tie points, fine pixels.
    """

    points: np.ndarray
    vectors: np.ndarray
    global_shift: tuple[float, float] | None = None
    residual_px: float | None = None
    kind: str = "tie points"


def _pairs(items: Any, keys: tuple[str, str]) -> np.ndarray | None:
    try:
        rows = [(float(it[keys[0]]), float(it[keys[1]])) if isinstance(it, Mapping) else (float(it[0]), float(it[1]))
                for it in items]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return np.asarray(rows, dtype=float).reshape(-1, 2)


def coregistration_field(attrs: Mapping[str, Any]) -> CoregistrationField | None:
    """The ``coregistration`` attribute as a :class:`CoregistrationField` (``None`` when absent or not in the
    accepted form, with a log message)."""
    raw = attrs.get("coregistration")
    if raw is None:
        return None
    try:
        rec = json.loads(str(raw)) if not isinstance(raw, Mapping) else dict(raw)
    except ValueError:
        log.warning("coregistration attribute is not JSON; left out of the report")
        return None
    if not isinstance(rec, Mapping):
        return None
    if "tie_points" not in rec and "points" not in rec and isinstance(rec.get("field"), Mapping):
        return _fitted_field(rec)
    points = _pairs(rec.get("tie_points", rec.get("points", [])), ("row", "col"))
    vectors = _pairs(rec.get("vectors", rec.get("shifts", [])), ("dy", "dx"))
    if points is None or vectors is None or len(points) != len(vectors) or len(points) == 0:
        log.warning("coregistration attribute has no matching tie points and vectors; left out of the report")
        return None
    shift = rec.get("global_shift")
    residual = rec.get("residual_px")
    return CoregistrationField(
        points=points,
        vectors=vectors,
        global_shift=(float(shift[0]), float(shift[1])) if isinstance(shift, (list, tuple)) and len(shift) == 2 else None,
        residual_px=float(residual) if isinstance(residual, (int, float)) else None,
    )


def _fitted_field(rec: Mapping[str, Any]) -> CoregistrationField | None:
    """The record of :mod:`dcstsf.coregistration`: its fitted field on a grid of positions, in fine pixels."""
    from dcstsf.coregistration.field import DisplacementField

    try:
        fld = DisplacementField.from_dict(dict(rec["field"]))
        r = int(rec.get("ratio", 1))
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("coregistration attribute has an unreadable field (%s); left out of the report", exc)
        return None
    h, w = fld.shape
    rows = np.linspace(0, h - 1, min(h, _FIELD_SAMPLES))
    cols = np.linspace(0, w - 1, min(w, _FIELD_SAMPLES))
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    u = fld(rr, cc)  # (2, n, m) coarse pixels
    # coarse pixel i has its centre at coarse index i, i.e. at fine position (i + 0.5) r
    points = np.stack([(rr.ravel() + 0.5) * r, (cc.ravel() + 0.5) * r], axis=1)
    vectors = np.stack([u[0].ravel() * r, u[1].ravel() * r], axis=1)
    shift = rec.get("shift_fine_px")
    stats = rec.get("statistics") if isinstance(rec.get("statistics"), Mapping) else {}
    residual = stats.get("residual_median_px")
    return CoregistrationField(
        points=points,
        vectors=vectors,
        global_shift=(float(shift[0]), float(shift[1])) if isinstance(shift, (list, tuple)) and len(shift) == 2 else None,
        residual_px=float(residual) * r if isinstance(residual, (int, float)) else None,
        kind="fitted field",
    )

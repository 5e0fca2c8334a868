"""Scoring the predictions of a report, one at a time: full-reference metrics and no-reference quality.

Each prediction is loaded once, scored, reduced to what the figures need (:class:`~dcstsf.report.display.Display`)
and released, so memory holds the truth, the inputs and one prediction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dcstsf import metrics
from dcstsf.report.display import Display
from dcstsf.report.inputs import EvaluationInputs, ObservedArrays
from dcstsf.report.noref import no_reference_quality, unchanged_pixels

if TYPE_CHECKING:
    from dcstsf.engine import FusionInputs

__all__ = ["ChangeMap", "ScoringOptions", "Scores", "detect_change", "score_predictions", "uiqi_block"]

log = logging.getLogger(__name__)

_PROVENANCE_KEYS = (
    "method", "weights_sha256", "dcstsf_version", "hs_sensor", "ms_sensor", "ms_bands", "ratio", "chunk", "halo",
    "physics",
)


@dataclass(frozen=True)
class ChangeMap:
    """Coarse pixels whose relative MS change is below ``threshold``, and that change (``None`` without inputs)."""

    threshold: float
    unchanged: np.ndarray | None = None
    change: np.ndarray | None = None


@dataclass(frozen=True)
class ScoringOptions:
    """How the predictions are scored.

    Attributes
    ----------
    runtimes
        ``{name: seconds}`` fusion times to record, ``None`` when not given.
    progress
        Show a progress bar over the predictions.
    """

    runtimes: Mapping[str, float] | None = None
    progress: bool = False


@dataclass(frozen=True)
class Scores:
    """``{name: metrics.json entry}`` of every prediction, the truth's no-reference scores and the UIQI block."""

    methods: dict[str, dict[str, Any]]
    truth_no_reference: dict[str, Any] | None
    uiqi_block: int


def uiqi_block(shape: tuple[int, int], border: int) -> int:
    """UIQI/Q2n block side: 32 pixels, smaller on small images so that they still hold several blocks."""
    return 32 if min(shape) - 2 * border >= 64 else max(4, (min(shape) - 2 * border) // 2)


def detect_change(ev: EvaluationInputs, arrays: ObservedArrays, threshold: float) -> ChangeMap:
    """Where the MS inputs changed between the dates (for the HS(t1) check and the sample pixels)."""
    if ev.fusion_inputs is None:
        return ChangeMap(threshold)
    unchanged, change = unchanged_pixels(arrays.ms_t1, arrays.ms_t2, ratio=ev.int_ratio, threshold=threshold)
    return ChangeMap(threshold, unchanged=unchanged, change=change)


def _provenance(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: attrs[k] for k in _PROVENANCE_KEYS if k in attrs}
    if "scene_diagnosis" in attrs:
        # the scene diagnosis the fusion ran with (dcstsf.diagnosis), kept as a structure
        try:
            out["scene_diagnosis"] = json.loads(str(attrs["scene_diagnosis"]))
        except ValueError:
            log.warning("scene_diagnosis attribute is not JSON; left out of the report")
    return out


def _no_reference(
    cube: np.ndarray, inputs: FusionInputs, ev: EvaluationInputs, arrays: ObservedArrays, change: ChangeMap
) -> dict[str, Any]:
    return no_reference_quality(
        cube, arrays.hs_t1, arrays.ms_t1, arrays.ms_t2, model=inputs.model, mask=ev.mask,
        change_threshold=change.threshold, unchanged=change.unchanged,
    )


def score_predictions(
    ev: EvaluationInputs, arrays: ObservedArrays, change: ChangeMap, display: Display, options: ScoringOptions
) -> Scores:
    """Score every prediction (and the truth without reference) and add each one to ``display``."""
    from tqdm.auto import tqdm

    block = uiqi_block(ev.shape, ev.border)
    names = ev.names
    fi = ev.fusion_inputs
    methods: dict[str, dict[str, Any]] = {}
    for name in tqdm(names, desc="evaluating", unit="prediction", disable=not options.progress):
        t0 = time.perf_counter()
        p = ev.predictions[name].values.astype(np.float32)
        entry: dict[str, Any] = {}
        if arrays.truth is not None:
            entry.update(metrics.evaluate(
                p, arrays.truth, h_over_l=ev.h_over_l, mask=ev.mask, border=ev.border, block=block,
            ))
            display.add_error_maps(name, p, arrays.truth, ev.mask)
        if fi is not None:
            entry["no_reference"] = _no_reference(p, fi, ev, arrays, change)
        if options.runtimes is not None and name in options.runtimes:
            entry["runtime_s"] = float(options.runtimes[name])
        entry["source"] = ev.sources[name]
        entry["provenance"] = _provenance(ev.predictions[name].attrs)
        methods[name] = entry
        display.add_prediction(name, p, is_first=name == names[0], has_truth=arrays.truth is not None)
        log.info("evaluated %s in %.1f s", name, time.perf_counter() - t0)
        del p

    truth_noref = None
    if arrays.truth is not None and fi is not None:
        truth_noref = _no_reference(arrays.truth, fi, ev, arrays, change)
    return Scores(methods=methods, truth_no_reference=truth_noref, uiqi_block=block)

"""The content of ``metrics.json``: per-method scores, provenance, protocol, notes and conventions."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dcstsf import metrics
from dcstsf.report.bands import ScoredBands
from dcstsf.report.display import FALSE_COLOUR_NM, STRETCH_PERCENTILES, TRUE_COLOUR_NM, Display
from dcstsf.report.inputs import EvaluationInputs
from dcstsf.report.noref import NO_REFERENCE_DEFINITIONS, qnr_block
from dcstsf.report.passes import PassSetup
from dcstsf.report.scoring import ChangeMap, Scores, changed_definition
from dcstsf.sensors.names import band_runs

__all__ = ["build_record", "jsonable", "protocol_and_notes"]


def jsonable(obj: Any) -> Any:
    """NaN/inf -> None (JSON has no NaN), NumPy scalars/arrays -> Python, recursively."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def protocol_and_notes(
    ev: EvaluationInputs, *, ms_note: str, notes: Sequence[str], bands: ScoredBands | None = None
) -> tuple[str, list[str]]:
    """How the truth was obtained (the protocol) and the notes shown at the top of the report.

    A simulated case (``case.json`` with a ``protocol``) gets a note that its temporal change is simulated.
    """
    case_meta = ev.case_meta
    all_notes: list[str] = []
    protocol: str
    if case_meta and case_meta.get("protocol"):
        protocol = str(case_meta["protocol"])
        extra = []
        if case_meta.get("change") is not None:
            extra.append(f"change model '{case_meta['change']}'")
        if case_meta.get("seed") is not None:
            extra.append(f"seed {case_meta['seed']}")
        all_notes.append(
            "Temporal change in this case is SIMULATED, not observed: " + protocol
            + (f" ({', '.join(extra)})" if extra else "")
            + ". The scores measure how well each method recovers simulated change."
        )
    elif ev.truth is not None:
        protocol = "evaluation against the given truth (no case.json found: provenance of the truth unknown)"
    else:
        protocol = "real scene without truth: no-reference quality only"
    if ev.truth is None:
        all_notes.append("No truth given: only no-reference quality is reported (no full-reference metrics).")
    if ev.fusion_inputs is None:
        all_notes.append(
            "The fusion inputs were not given: no-reference quality and input quicklooks are left out "
            "(pass inputs= / CLI --inputs or --case)."
        )
    if ms_note:
        all_notes.append(ms_note)
    excluded_bad = np.setdiff1d(bands.excluded, bands.empty_indices) if bands is not None else np.zeros(0, int)
    if bands is not None and excluded_bad.size:
        all_notes.append(
            f"{excluded_bad.size} bad bands ({bands.source}) are left out of every metric and greyed in the plots; "
            "score them with include_bad_bands=True (CLI --include-bad-bands)."
        )
    elif bands is not None and bands.include_bad and bands.bad.size:
        all_notes.append(f"The {bands.bad.size} bad bands ({bands.source}) are scored on request (greyed in the plots).")
    if bands is not None:
        for cube, idx in bands.empty.items():
            all_notes.append(
                f"{cube} holds no finite value in {len(idx)} band(s) ({band_runs(ev.band_names, ev.wavelengths, idx)}): "
                "they are left out of every metric, which is computed over pixels finite in every scored band."
            )
    all_notes += [str(n) for n in notes]
    return protocol, all_notes


def _conventions(
    ev: EvaluationInputs, display: Display, scores: Scores, change: ChangeMap, setup: PassSetup | None
) -> dict[str, Any]:
    conventions: dict[str, Any] = {
        "ratio": ev.ratio,
        "ratio_h_over_l": ev.h_over_l,
        "border": ev.border,
        "mask": ev.mask_label,
        "valid_mask_pixels": int(ev.mask.sum()) if ev.mask is not None else None,
        "data_range": 1.0,
        "uiqi_block": scores.uiqi_block,
        "sam_units": "degrees",
        "psnr_cap_db": metrics.PSNR_CAP_DB,
        "quicklooks": {
            "true_colour_target_nm": list(TRUE_COLOUR_NM),
            "false_colour_target_nm": list(FALSE_COLOUR_NM),
            "composites": {k: v[1] for k, v in display.composites.items()},
            "stretch": f"{STRETCH_PERCENTILES[0]:g}-{STRETCH_PERCENTILES[1]:g} % per channel, from the "
            + ("truth" if ev.truth is not None else "HS(t1) input")
            + ", shared by every HS panel; MS panels share one stretch from MS(t1) and MS(t2)",
            "display_step": display.step,
        },
        "changed_unchanged": changed_definition(ev, change.threshold),
    }
    if setup is not None:
        conventions["streaming"] = {
            "tile_px": setup.grid.chunk,
            "halo_px": setup.grid.halo,
            "tiles": len(setup.grid.tiles()),
            "maps": (f"means over cells of {display.step} x {display.step} fine pixels; quicklooks show every "
                     f"{display.step}th pixel" if display.step > 1 else "at full resolution"),
        }
    fi = ev.fusion_inputs
    if fi is not None:
        shape = ev.shape
        conventions["no_reference"] = {
            "change_threshold": float(change.threshold),
            "unchanged_coarse_pixels": int(np.asarray(change.unchanged).sum()),
            "unchanged_fraction": float(np.asarray(change.unchanged).mean()),
            "qnr_block": qnr_block(shape[0], shape[1], ev.int_ratio),
            "model": fi.model.describe(),
            "definitions": dict(NO_REFERENCE_DEFINITIONS),
        }
    return conventions


def _bands_record(ev: EvaluationInputs, bands: ScoredBands | None, wl: np.ndarray | None) -> dict[str, Any]:
    names = ev.band_names
    out: dict[str, Any] = {"names": names, "wavelength_nm": wl.tolist() if wl is not None else None}
    if bands is not None:
        out.update(
            bad=bands.bad.tolist(),
            bad_band_source=bands.source,
            bad_bands_included=bands.include_bad,
            excluded=bands.excluded.tolist(),
            excluded_names=[names[i] for i in bands.excluded],
            empty={cube: np.asarray(idx).tolist() for cube, idx in bands.empty.items()},
        )
    return out


def build_record(
    ev: EvaluationInputs,
    display: Display,
    scores: Scores,
    change: ChangeMap,
    *,
    title: str,
    notes: Sequence[str],
    bands: ScoredBands | None = None,
    setup: PassSetup | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` document (JSON-ready: NaN stored as ``null``)."""
    from dcstsf import __version__

    protocol, all_notes = protocol_and_notes(ev, ms_note=display.ms_note, notes=notes, bands=bands)
    wl = display.wavelengths
    fi = ev.fusion_inputs
    result: dict[str, Any] = {
        "title": title,
        "dcstsf_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "methods": scores.methods,
        "truth": ev.truth_source if ev.truth_source is not None else ("in memory" if ev.truth is not None else None),
        "inputs": ({k: v if v is not None else "in memory" for k, v in ev.input_sources.items()}
                   if fi is not None else None),
        "truth_no_reference": scores.truth_no_reference,
        "bands": _bands_record(ev, bands, wl),
        "sample_pixels": [{"row": y, "col": x, "description": d} for y, x, d in display.pixels],
        "conventions": _conventions(ev, display, scores, change, setup),
        "uncertainty": {n: src or "in memory" for n, src in ev.uncertainty_sources.items()} or None,
        "truth_t1": (ev.truth_t1_source or "in memory") if ev.truth_t1 is not None else None,
        "protocol": protocol,
        "case": jsonable(ev.case_meta) if ev.case_meta else None,
        "notes": all_notes,
    }
    return jsonable(result)

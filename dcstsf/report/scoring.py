"""Scoring the predictions of a report: one streaming pass per prediction, then the scores of each.

:func:`plan_scoring` fixes what every pass shares (tiles, scored bands, blocks, display steps);
:func:`score_predictions` runs one pass per prediction (:mod:`dcstsf.report.passes`) and turns the
sums into the ``metrics.json`` entries: full-reference metrics (also on changed and unchanged pixels
separately), no-reference checks and the calibration of an uncertainty. The cubes are read tile by
tile, a few tiles at a time: memory holds those tiles and display-size maps, not the cubes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcstsf.engine.bands import without_hs_bands
from dcstsf.metrics.band_stats import finalize_stats
from dcstsf.metrics.evaluation import TILE_WINDOW_BYTES, streaming_chunk
from dcstsf.metrics.partials import BlockGrid, finish_full_reference
from dcstsf.metrics.reference import (
    ergas_from_stats,
    psnr_bands_from_stats,
    rmse_from_stats,
    sam_from_stats,
)
from dcstsf.metrics.stream import parallel_tiles
from dcstsf.metrics.tiles import TileGrid
from dcstsf.metrics.windowed import SSIM_HALO
from dcstsf.report.bands import ScoredBands
from dcstsf.report.calibration import finish_calibration
from dcstsf.report.diagnosis import recorded_diagnosis, recorded_model
from dcstsf.report.inputs import EvaluationInputs, aligned_cube
from dcstsf.report.noref import NoReferenceGrids, finish_no_reference, no_reference_halo
from dcstsf.report.passes import SPLIT, PassInputs, PassOptions, PassResult, PassSetup, run_pass

__all__ = [
    "ChangeMap",
    "ScoringOptions",
    "Scores",
    "changed_definition",
    "plan_scoring",
    "score_predictions",
    "uiqi_block",
]

log = logging.getLogger(__name__)

_PROVENANCE_KEYS = (
    "method", "weights_sha256", "dcstsf_version", "hs_sensor", "ms_sensor", "ms_bands", "ratio", "chunk", "halo",
    "physics",
)
# Float64 temporaries of one tile beyond its windows (band-sum slabs, SSIM maps, Q2n and QNR blocks).
_TILE_TEMPORARIES = 300 * 2**20


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
        Show a progress bar over the tiles.
    change_threshold
        Relative change from which a pixel counts as changed.
    include_q2n
        Compute Q2n (cost grows with the square of the padded band count).
    memory_limit
        Bytes the tiles in flight may use (default: the engine's default limit).
    """

    runtimes: Mapping[str, float] | None = None
    progress: bool = False
    change_threshold: float = 0.03
    include_q2n: bool = True
    memory_limit: int | None = None


@dataclass
class Scores:
    """``{name: metrics.json entry}`` of every prediction, the truth's no-reference scores, the UIQI block,
    each pass's display-size results (``passes``), and ``empty``: ``{cube: band indices}`` of the scored
    bands in which a prediction (by name) or ``"the truth"`` holds no finite value."""

    methods: dict[str, dict[str, Any]]
    truth_no_reference: dict[str, Any] | None
    uiqi_block: int
    passes: dict[str, PassResult] = field(default_factory=dict)
    change: ChangeMap | None = None
    empty: dict[str, np.ndarray] = field(default_factory=dict)


def uiqi_block(shape: tuple[int, int], border: int) -> int:
    """UIQI/Q2n block side: 32 pixels, smaller on small images so that they still hold several blocks."""
    return 32 if min(shape) - 2 * border >= 64 else max(4, (min(shape) - 2 * border) // 2)


def changed_definition(ev: EvaluationInputs, threshold: float) -> str | None:
    """How the report tells changed pixels from unchanged ones (``None`` when it cannot)."""
    if ev.truth is not None and ev.truth_t1 is not None:
        return (f"changed = fine pixels where the simulated change moved the truth by at least {100 * threshold:g} % "
                "(|truth(t2) - truth(t1)| / |truth(t1)|, Euclidean norms over the scored bands)")
    if ev.fusion_inputs is not None:
        return (f"changed = fine pixels of the coarse pixels whose block-mean MS spectrum changed by at least "
                f"{100 * threshold:g} % (|MS2 - MS1| / |MS1|, Euclidean norms over the MS bands)")
    return None


def _composite_bands(display_composites: Mapping[str, tuple[list[int], str]]) -> list[int]:
    out: list[int] = []
    for idx, _ in display_composites.values():
        out += [i for i in idx if i not in out]
    return out


def plan_scoring(
    ev: EvaluationInputs,
    bands: ScoredBands,
    options: ScoringOptions,
    *,
    step: int,
    hs_composites: Mapping[str, tuple[list[int], str]],
    ms_bands: list[int],
) -> tuple[PassSetup, dict[str, Any]]:
    """The setup every pass shares, and each prediction's observation model (``{name: model or None}``)."""
    h, w = ev.shape
    fi = ev.fusion_inputs
    r = ev.int_ratio if fi is not None else 1
    idx = bands.indices
    blocks = None
    halo = SSIM_HALO
    if ev.truth is not None:
        b = ev.border
        blocks = BlockGrid.of(h - 2 * b, w - 2 * b, uiqi_block(ev.shape, ev.border), origin=(b, b))
        halo = max(halo, blocks.by - 1, blocks.bx - 1)
    models: dict[str, Any] = {n: None for n in ev.names}
    grids = None
    input_model = None
    if fi is not None:
        grids = NoReferenceGrids.of(h, w, r, idx)
        empty = bands.empty_indices
        # a band some cube leaves empty cannot enter the MS reproduction: out of the responses, as in fusion
        input_model = without_hs_bands(fi.model, empty) if empty.size else fi.model
        for n in ev.names:
            models[n] = recorded_model(fi.model, ev.predictions[n].attrs)
            if empty.size:
                models[n] = without_hs_bands(models[n], empty)
            halo = max(halo, no_reference_halo(models[n], grids))
        halo = max(halo, no_reference_halo(input_model, grids))
    halo = -(-halo // r) * r
    chunk = streaming_chunk(ev.n_bands, halo=halo, multiple=r, window_bytes=TILE_WINDOW_BYTES)
    grid = TileGrid(h, w, chunk, halo)
    setup = PassSetup(
        shape=(h, w), grid=grid, bands=idx, border=ev.border, blocks=blocks, include_q2n=options.include_q2n,
        ratio=r, grids=grids, input_model=input_model,
        change_threshold=options.change_threshold, step=step, step_c=max(1, math.ceil(step / max(r, 1))),
        hs_bands=_composite_bands(hs_composites), ms_bands=ms_bands,
    )
    return setup, models


def _tile_bytes(ev: EvaluationInputs, setup: PassSetup) -> int:
    """What one tile in flight holds, at most: its windows (and their assembly), and temporaries."""
    win = (setup.grid.chunk + 2 * setup.grid.halo) ** 2
    nb = ev.n_bands
    bands = nb * (2 + (ev.truth is not None) + (ev.truth_t1 is not None)) + max(
        (int(d.sizes["band"]) for d in ev.uncertainty.values()), default=0)
    fi = ev.fusion_inputs
    if fi is not None:
        bands += 2 * fi.model.n_ms + nb
    return int(win * 4 * bands * 2 + _TILE_TEMPORARIES)


def _provenance(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: attrs[k] for k in _PROVENANCE_KEYS if k in attrs}
    record = recorded_diagnosis(attrs)
    if record is not None:
        # the scene diagnosis the fusion ran with (dcstsf.diagnosis), kept as a structure
        out["scene_diagnosis"] = record
    if "coregistration" in attrs:
        try:
            out["coregistration"] = json.loads(str(attrs["coregistration"]))
        except ValueError:
            log.warning("coregistration attribute is not JSON; left out of metrics.json")
    return out


def _split_scores(split: Mapping[str, dict[str, Any]], h_over_l: float, definition: str) -> dict[str, Any]:
    out: dict[str, Any] = {"definition": definition}
    for key in SPLIT:
        st = finalize_stats(split[key])
        if st["n"] == 0:
            out[key] = {"pixels": 0, "psnr": None, "rmse": None, "sam_deg": None, "ergas": None}
            continue
        out[key] = {
            "pixels": st["n"],
            "psnr": float(np.mean(psnr_bands_from_stats(st, 1.0))),
            "rmse": rmse_from_stats(st),
            "sam_deg": sam_from_stats(st),
            "ergas": ergas_from_stats(st, h_over_l),
        }
    return out


def _inputs(ev: EvaluationInputs, setup: PassSetup, name: str, first: PassResult | None) -> PassInputs:
    g, r = setup.grid, setup.ratio
    fi = ev.fusion_inputs
    sd = ev.uncertainty.get(name)
    return PassInputs(
        pred=aligned_cube(ev.predictions[name], g),
        truth=aligned_cube(ev.truth, g) if ev.truth is not None else None,
        truth_t1=aligned_cube(ev.truth_t1, g) if ev.truth_t1 is not None and first is None else None,
        ms_t1=aligned_cube(fi.ms_t1, g) if fi is not None else None,
        ms_t2=aligned_cube(fi.ms_t2, g) if fi is not None else None,
        hs_t1=aligned_cube(fi.hs_t1, g, scale=r) if fi is not None else None,
        sd=aligned_cube(sd, g) if sd is not None else None,
        mask=_aligned_array(ev.mask, g),
        changed=_aligned_array(first.changed if first is not None else None, g),
    )


def _empty_bands(setup: PassSetup, res: PassResult, name: str, first: PassResult | None) -> dict[str, np.ndarray]:
    """``{cube: band indices}``: scored bands in which the pass's prediction, or the truth (read by the first
    pass), holds no finite value."""
    out = {}
    if res.finite_pred is not None and not res.finite_pred.all():
        out[name] = setup.bands[res.finite_pred == 0]
    if first is not None and first.finite_truth is not None and not first.finite_truth.all():
        out["the truth"] = setup.bands[first.finite_truth == 0]
    return out


def _aligned_array(a: np.ndarray | None, grid: TileGrid) -> Any:
    from dcstsf.metrics.stream import aligned

    return None if a is None else aligned(a, grid)


def score_predictions(
    ev: EvaluationInputs, bands: ScoredBands, setup: PassSetup, models: Mapping[str, Any], options: ScoringOptions
) -> Scores:
    """Score every prediction (and the truth without reference), one streaming pass each."""
    from dcstsf.engine.memory import rss_bytes

    block = setup.blocks.by if setup.blocks is not None else uiqi_block(ev.shape, ev.border)
    fi = ev.fusion_inputs
    parallel = parallel_tiles(_tile_bytes(ev, setup), memory_limit=options.memory_limit, resident=rss_bytes() or 0)
    definition = changed_definition(ev, options.change_threshold)
    methods: dict[str, dict[str, Any]] = {}
    passes: dict[str, PassResult] = {}
    empty: dict[str, np.ndarray] = {}
    first: PassResult | None = None
    n_bands = ev.n_bands
    for i, name in enumerate(ev.names):
        t0 = time.perf_counter()
        opts = PassOptions(model=models.get(name), first=first is None, ms_band_maps=i == 0)
        res = run_pass(setup, opts, _inputs(ev, setup, name, first), parallel=parallel, progress=options.progress,
                       desc=f"evaluating {name}")
        passes[name] = res
        if first is None:
            first = res
        found = _empty_bands(setup, res, name, first)
        if found:
            empty.update(found)
            continue  # the caller scores again without those bands: finishing these sums would be wasted
        entry: dict[str, Any] = {}
        if res.fullref is not None:
            full = finish_full_reference(res.fullref, h_over_l=ev.h_over_l, data_range=1.0, border=ev.border,
                                         block=block, include_q2n=setup.include_q2n)
            for key, values in full["per_band"].items():
                expanded = np.full(n_bands, np.nan)
                expanded[setup.bands] = values
                full["per_band"][key] = expanded.tolist()
            full["conventions"]["bands_scored"] = int(setup.bands.size)
            full["conventions"]["bands_excluded"] = bands.excluded.tolist()
            entry.update(full)
            if res.split is not None and definition is not None:
                entry["changed_unchanged"] = _split_scores(res.split, ev.h_over_l, definition)
        if res.noref is not None and fi is not None and setup.grids is not None:
            coarse = res.inputs if res.inputs is not None else first.inputs if first is not None else None
            assert coarse is not None  # the first pass always computes the coarse sums
            entry["no_reference"] = finish_no_reference(res.noref, coarse, grids=setup.grids,
                                                        change_threshold=options.change_threshold)
            # which HS PSF degraded the prediction: the scene's estimate it was fused with, or the tables'
            entry["no_reference"]["hs_t1_reproduction_unchanged"]["psf"] = models[name].physics
        if res.calibration is not None:
            entry["uncertainty"] = dict(finish_calibration(res.calibration, n_bands, setup.bands),
                                        source=ev.uncertainty_sources.get(name) or "in memory")
        elif name in ev.uncertainty:
            entry["uncertainty"] = {"source": ev.uncertainty_sources.get(name) or "in memory",
                                    "note": "no truth: the calibration needs one; the map is shown"}
        if options.runtimes is not None and name in options.runtimes:
            entry["runtime_s"] = float(options.runtimes[name])
        entry["source"] = ev.sources[name]
        entry["provenance"] = _provenance(ev.predictions[name].attrs)
        methods[name] = entry
        log.info("evaluated %s in %.1f s (%d tiles, %d at once)", name, time.perf_counter() - t0,
                 len(setup.grid.tiles()), parallel)

    truth_noref = None
    change = ChangeMap(options.change_threshold)
    if first is not None and first.truth_noref is not None and first.inputs is not None and setup.grids is not None:
        truth_noref = finish_no_reference(first.truth_noref, first.inputs, grids=setup.grids,
                                          change_threshold=options.change_threshold)
    if first is not None and first.change is not None:
        rel = first.change
        change = ChangeMap(options.change_threshold, unchanged=np.isfinite(rel) & (rel < options.change_threshold),
                           change=rel)
    return Scores(methods=methods, truth_no_reference=truth_noref, uiqi_block=block, passes=passes, change=change,
                  empty=empty)

"""Quality reports for fused HS(t2) predictions: ``metrics.json``, ``report.html`` and ``report.md``.

:func:`evaluate_predictions` scores one or several predictions against a fine HS(t2) truth (all
full-reference metrics of :func:`dcstsf.metrics.evaluate`, global and per band) and, when the fusion
inputs are given, without reference (:mod:`dcstsf.report.noref`: how well each prediction, degraded
back through the sensor model, reproduces the observed MS(t2) and HS(t1), and the QNR indices). On real
scenes with no truth the no-reference part alone is reported.

The steps: load and check the inputs, lazily (:mod:`~dcstsf.report.inputs`); choose the scored bands
(:mod:`~dcstsf.report.bands`); score each prediction in one streaming pass over tiles
(:mod:`~dcstsf.report.scoring`, :mod:`~dcstsf.report.passes`), again without any band in which a
prediction or the truth holds no finite value when the pass finds one; gather what the figures show
(:mod:`~dcstsf.report.display`); assemble ``metrics.json`` (:mod:`~dcstsf.report.record`); build the
document (:mod:`~dcstsf.report.document`) and write the files. No cube is ever held in memory whole.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dcstsf._files import atomic_write_bytes
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.report.bands import ScoredBands, scored_bands
from dcstsf.report.diagnosis import coregistration_field
from dcstsf.report.display import build_display, display_step, hs_composites, ms_composites
from dcstsf.report.document import ReportContext, build_document
from dcstsf.report.inputs import EvaluationInputs, SensorHints, load_inputs
from dcstsf.report.noref import DEFAULT_CHANGE_THRESHOLD, check_change_threshold
from dcstsf.report.record import build_record
from dcstsf.report.render import ReportDoc, render_html, render_markdown
from dcstsf.report.scoring import ScoringOptions, plan_scoring, score_predictions
from dcstsf.sensors.names import band_runs

__all__ = ["REPORT_FILES", "evaluate_predictions"]

log = logging.getLogger(__name__)

#: Files written into the report directory (plus ``figures/*.png``).
REPORT_FILES = ("metrics.json", "report.html", "report.md")


def _report_dir(out_dir: str | os.PathLike[str], overwrite: bool) -> Path:
    """The report directory, refused when it holds a report and ``overwrite`` is False."""
    out = Path(out_dir).expanduser()
    existing = [out / f for f in REPORT_FILES if (out / f).exists()]
    if existing and not overwrite:
        raise DcstsfInputError(
            f"{existing[0]} exists; choose another report directory or pass overwrite=True (CLI --overwrite)"
        )
    return out


def _write_report(
    out: Path, doc: ReportDoc, result: Mapping[str, Any], *, footer: str, overwrite: bool
) -> dict[str, Any]:
    """Write the figures, ``metrics.json``, ``report.html`` and ``report.md``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    if overwrite:
        for old in fig_dir.glob("*.png"):
            old.unlink()
    files: dict[str, Any] = {"figures": []}
    for fig in doc.figures():
        path = fig_dir / f"{fig.key}.png"
        atomic_write_bytes(path, fig.png)
        files["figures"].append(str(path))
    atomic_write_bytes(out / "metrics.json", json.dumps(result, indent=2, allow_nan=False).encode("utf-8"))
    atomic_write_bytes(out / "report.html", render_html(doc, footer=footer).encode("utf-8"))
    atomic_write_bytes(out / "report.md", render_markdown(doc, figure_dir="figures", footer=footer).encode("utf-8"))
    files.update(
        {"metrics": str(out / "metrics.json"), "html": str(out / "report.html"), "markdown": str(out / "report.md")}
    )
    return files


def _without_empty_bands(ev: EvaluationInputs, bands: ScoredBands, empty: Mapping[str, Any]) -> ScoredBands:
    """``bands`` without those in which a cube holds no finite value; an error when none would be left."""
    out = bands.without_empty(dict(empty))
    if out.indices.size == 0:
        cube = next(iter(empty))
        label = ev.sources.get(cube) or (ev.truth_source if cube == "the truth" else None) or cube
        raise DcstsfInputError(
            f"{label}: no finite value in any of the {bands.indices.size} scored bands, so nothing can be scored; "
            "check that the file holds the fused result (not an unfinished or empty output)"
        )
    for cube, idx in empty.items():
        warnings.warn(
            f"{cube} holds no finite value in {len(idx)} scored band(s) "
            f"({band_runs(ev.band_names, ev.wavelengths, idx)}): left out of every metric",
            UserWarning,
            stacklevel=3,  # the caller of evaluate_predictions
        )
    return out


def evaluate_predictions(
    preds: Mapping[str, Any] | Sequence[str | os.PathLike[str]],
    truth: Any = None,
    *,
    out_dir: str | os.PathLike[str],
    ratio: float | None = None,
    mask: Any = None,
    border: int = 0,
    inputs: Mapping[str, Any] | None = None,
    model: ObservationModel | None = None,
    hs_sensor: Any = None,
    ms_sensor: Any = None,
    ms_bands: Sequence[str] | str | None = None,
    title: str = "dcstsf fusion quality report",
    runtimes: Mapping[str, float] | None = None,
    case_meta: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    change_threshold: float = DEFAULT_CHANGE_THRESHOLD,
    overwrite: bool = False,
    progress: bool = False,
    truth_t1: Any = None,
    uncertainty: Any = None,
    include_bad_bands: bool = False,
    include_q2n: bool = True,
    memory_limit: int | None = None,
) -> dict[str, Any]:
    """Score predictions of fine HS(t2) and write ``metrics.json``, ``report.html`` and ``report.md``.

    Parameters
    ----------
    preds
        ``{name: prediction}`` (DataArray ``(band, y, x)``, NumPy array or raster path), or a list of
        raster paths (named by file stem). Files and lazy (Dask) predictions are read tile by tile.
    truth
        The fine HS(t2) truth (DataArray, array or path), on the predictions' grid; ``None`` for real
        scenes without truth (then ``inputs`` are required and only no-reference quality is reported).
    out_dir
        Report directory (created). ``figures/`` inside it receives the PNGs the Markdown links.
    ratio
        Coarse/fine resolution ratio (3 for 30 m HS and 10 m MS); ERGAS uses h/l = 1/ratio. A value
        below 1 is taken as h/l itself. Default: from the inputs' grids, else the predictions'
        ``ratio`` attribute.
    mask
        Boolean ``(y, x)`` (True = evaluate), DataArray or single-band raster path (non-zero = valid).
    border
        Pixels cropped from each side for the full-reference metrics (recorded in the conventions).
    inputs
        ``{"hs_t1", "ms_t1", "ms_t2"}`` (DataArrays or paths) the predictions were fused from: enables the
        no-reference quality and the input quicklooks. They are checked and cropped to the common
        footprint with :func:`dcstsf.engine.validate_inputs`; the predictions must lie on that MS grid.
    model
        Observation model for the no-reference checks. Default: built by ``validate_inputs`` from
        ``hs_sensor``/``ms_sensor``/``ms_bands``, else ``case.json``, else the predictions' attrs.
    hs_sensor, ms_sensor, ms_bands
        Sensor hints, as for :func:`dcstsf.fuse`.
    title
        Report title.
    runtimes
        ``{name: seconds}`` fusion times, shown in the tables.
    case_meta
        Metadata of a simulated case (``FusionCase.meta``); default: a ``case.json`` next to the truth
        or the inputs. Its ``protocol`` becomes a note that the temporal change is simulated.
    notes
        Extra notes shown at the top of the report.
    change_threshold
        Relative change from which a pixel counts as changed: of the block-mean MS spectrum for the
        no-reference HS(t1) check and, without a simulated truth at t1, for the changed/unchanged split.
    overwrite
        Replace an existing report in ``out_dir``.
    progress
        Show a progress bar over the tiles of each prediction.
    truth_t1
        The fine HS truth at t1 of a simulated case (DataArray, array or path): changed pixels are then
        those the simulated change moved. Default: the ``hs_t1_truth`` file listed by a ``case.json``.
    uncertainty
        Per-pixel standard deviation of the first prediction (DataArray, array or path; ``(band, y, x)``
        with the prediction's bands or one band for all, on its grid), or ``{name: sd}``. The report shows
        it and, with a truth, its calibration.
    include_bad_bands
        Score the sensor's bad bands too (default: they are left out of every metric).
    include_q2n
        Compute Q2n (its cost grows with the square of the padded band count).
    memory_limit
        Bytes the evaluation may hold in tiles at once (default: the engine's default memory limit,
        :func:`dcstsf.engine.memory.default_memory_limit`). The cubes are read tile by tile.

    Returns
    -------
    dict
        The content of ``metrics.json`` -- ``{"methods": {name: {"global", "per_band", "conventions",
        "no_reference", "runtime_s", "source", "provenance"}}, "truth_no_reference", "conventions",
        "protocol", "notes", "bands", "sample_pixels", ...}`` -- plus ``"files"``: the paths written.

    Raises
    ------
    DcstsfInputError
        No prediction, grids or band counts that do not match, neither truth nor inputs, an unknown
        ratio, an existing report without ``overwrite``, a prediction (or truth) with no finite value in
        any scored band.
    """
    from dcstsf import __version__

    t_start = time.perf_counter()
    out = _report_dir(out_dir, overwrite)
    threshold = check_change_threshold(change_threshold)
    if memory_limit is not None and (isinstance(memory_limit, bool) or not isinstance(memory_limit, int)
                                     or memory_limit < 1):
        raise DcstsfInputError(f"memory_limit must be a positive number of bytes, got {memory_limit!r} "
                               "(CLI --memory-limit 4GiB)")
    ev = load_inputs(
        preds, truth, ratio=ratio, mask=mask, border=border, inputs=inputs, model=model,
        sensors=SensorHints(hs_sensor, ms_sensor, ms_bands), case_meta=case_meta, truth_t1=truth_t1,
        uncertainty=uncertainty,
    )
    bands = scored_bands(ev, include_bad_bands=include_bad_bands)
    composites = hs_composites(ev.wavelengths, ev.n_bands)
    fi = ev.fusion_inputs
    ms_comp, ms_note = ms_composites(fi.ms_t1 if fi is not None else None, list(composites))
    ms_list: list[int] = []
    for idx in ms_comp.values():
        ms_list += [i for i in idx if i not in ms_list]
    options = ScoringOptions(runtimes=runtimes, progress=progress, change_threshold=threshold,
                             include_q2n=include_q2n, memory_limit=memory_limit)
    setup, models = plan_scoring(ev, bands, options, step=display_step(ev.shape), hs_composites=composites,
                                 ms_bands=ms_list)
    scores = score_predictions(ev, bands, setup, models, options)
    if scores.empty:
        # metrics need pixels finite in every scored band: score again without the empty ones
        bands = _without_empty_bands(ev, bands, scores.empty)
        setup, models = plan_scoring(ev, bands, options, step=display_step(ev.shape), hs_composites=composites,
                                     ms_bands=ms_list)
        scores = score_predictions(ev, bands, setup, models, options)
    display = build_display(ev, setup, scores, bands, composites, ms_comp, ms_note)
    assert scores.change is not None
    result = build_record(ev, display, scores, scores.change, title=title, notes=notes, bands=bands, setup=setup)
    coreg = {n: f for n in ev.names if (f := coregistration_field(ev.predictions[n].attrs)) is not None}
    doc = build_document(ReportContext(
        result=result,
        names=ev.names,
        display=display,
        truth_spectra=display.truth_spectra,
        coarse_spectra=display.coarse_spectra,
        show_runtimes=runtimes is not None,
        coregistration=coreg,
    ))
    footer = f"Generated by dcstsf {__version__} on {result['created']} in {time.perf_counter() - t_start:.1f} s."
    files = _write_report(out, doc, result, footer=footer, overwrite=overwrite)
    log.info("report written to %s (%.1f s)", out / "report.html", time.perf_counter() - t_start)
    return dict(result, files=files)

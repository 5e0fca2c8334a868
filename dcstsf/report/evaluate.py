"""Quality reports for fused HS(t2) predictions: ``metrics.json``, ``report.html`` and ``report.md``.

:func:`evaluate_predictions` scores one or several predictions against a fine HS(t2) truth (all
full-reference metrics of :func:`dcstsf.metrics.evaluate`, global and per band) and, when the fusion
inputs are given, without reference (:mod:`dcstsf.report.noref`: how well each prediction, degraded
back through the sensor model, reproduces the observed MS(t2) and HS(t1), and the QNR indices). On real
scenes with no truth the no-reference part alone is reported.

The steps: load and check the inputs (:mod:`~dcstsf.report.inputs`), prepare what the figures show
(:mod:`~dcstsf.report.display`), score each prediction (:mod:`~dcstsf.report.scoring`), assemble
``metrics.json`` (:mod:`~dcstsf.report.record`), build the document (:mod:`~dcstsf.report.document`)
and write the files.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dcstsf._files import atomic_write_bytes
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.report.display import prepare_display
from dcstsf.report.document import ReportContext, build_document
from dcstsf.report.inputs import SensorHints, load_inputs
from dcstsf.report.noref import DEFAULT_CHANGE_THRESHOLD
from dcstsf.report.record import build_record
from dcstsf.report.render import ReportDoc, render_html, render_markdown
from dcstsf.report.scoring import ScoringOptions, detect_change, score_predictions

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
) -> dict[str, Any]:
    """Score predictions of fine HS(t2) and write ``metrics.json``, ``report.html`` and ``report.md``.

    Parameters
    ----------
    preds
        ``{name: prediction}`` (DataArray ``(band, y, x)``, NumPy array or raster path), or a list of
        raster paths (named by file stem). Lazy (Dask) predictions are computed once each.
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
        Relative MS change under which a coarse pixel is "unchanged" (no-reference HS(t1) check).
    overwrite
        Replace an existing report in ``out_dir``.
    progress
        Show a progress bar over the predictions.

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
        ratio, an existing report without ``overwrite``.
    """
    from dcstsf import __version__

    t_start = time.perf_counter()
    out = _report_dir(out_dir, overwrite)
    ev = load_inputs(
        preds, truth, ratio=ratio, mask=mask, border=border, inputs=inputs, model=model,
        sensors=SensorHints(hs_sensor, ms_sensor, ms_bands), case_meta=case_meta,
    )
    arrays = ev.observed_arrays()
    change = detect_change(ev, arrays, change_threshold)
    display = prepare_display(ev, arrays, change=change.change)
    scores = score_predictions(ev, arrays, change, display, ScoringOptions(runtimes=runtimes, progress=progress))
    result = build_record(ev, display, scores, change, title=title, notes=notes)
    doc = build_document(ReportContext(
        result=result,
        names=ev.names,
        display=display,
        truth_spectra=display.spectra_at_pixels(arrays.truth) if arrays.truth is not None else None,
        coarse_spectra=display.coarse_spectra_at_pixels(arrays.hs_t1) if arrays.hs_t1 is not None else None,
        show_runtimes=runtimes is not None,
    ))
    footer = f"Generated by dcstsf {__version__} on {result['created']} in {time.perf_counter() - t_start:.1f} s."
    files = _write_report(out, doc, result, footer=footer, overwrite=overwrite)
    log.info("report written to %s (%.1f s)", out / "report.html", time.perf_counter() - t_start)
    return dict(result, files=files)

"""``dcstsf demo``: the whole pipeline on the real EnMAP sample shipped with the package, in about a minute.

1. The bundled EnMAP L2A Potsdam block (64 x 128 pixels, 30 m) is taken as the fine truth at t1 and
   turned into a fusion case (:func:`dcstsf.simulate.simulate_case`): spectrally resampled to ZY-1 02D
   AHSI (166 bands), observed by AHSI at 3x coarser pixels and by Sentinel-2A (10 bands) at t1 and at
   t2, after a **simulated** change (``mixed``: phenology, land-cover patches, radiometric; seed 0).
   The inputs and truths are written as GeoTIFFs to ``DIR/case/``, on the grid they stand for (10 m
   MS and truths, 30 m HS, anchored at the sample's corner), which is where fusion reads the pixel size.
2. Every registered method (DC-STSF first) fuses the case files with
   :func:`dcstsf.engine.run_batch` -- the same file-to-file path as ``dcstsf fuse`` -- into
   ``DIR/fused/<method>.tif``.
3. :func:`dcstsf.report.evaluate_predictions` writes ``DIR/report/`` (HTML, Markdown, metrics.json).

Without shipped DC-STSF weights the demo runs the baselines and says so in its output and report.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dcstsf.errors import DcstsfInputError, WeightsError
from dcstsf.sensors.band_sets import SENTINEL2_DEFAULT_BANDS

if TYPE_CHECKING:
    from dcstsf.operators import ObservationModel
    from dcstsf.simulate import FusionCase

__all__ = [
    "DEMO_CHANGE",
    "DEMO_HS_SENSOR",
    "DEMO_MS_BANDS",
    "DEMO_MS_SENSOR",
    "DEMO_RATIO",
    "DEMO_SEED",
    "demo_case",
    "demo_model",
    "run_demo",
]

log = logging.getLogger(__name__)

DEMO_HS_SENSOR = "zy1-02d-ahsi"
DEMO_MS_SENSOR = "sentinel-2a"
#: The band set of the default DC-STSF weights (10 m bands, then the 20 m bands on the 10 m grid).
DEMO_MS_BANDS: tuple[str, ...] = SENTINEL2_DEFAULT_BANDS
DEMO_RATIO = 3
DEMO_CHANGE = "mixed"
DEMO_SEED = 0
_DEFAULT_METHOD = "dcstsf"


def demo_model() -> ObservationModel:
    """The demo's observation model: ZY-1 02D AHSI and Sentinel-2A's default band set at ratio 3."""
    from dcstsf.operators import ObservationModel

    return ObservationModel.from_sensors(DEMO_HS_SENSOR, DEMO_MS_SENSOR, ms_bands=list(DEMO_MS_BANDS), ratio=DEMO_RATIO)


def demo_case() -> FusionCase:
    """The demo's fusion case: the bundled EnMAP sample through :func:`demo_model`, change
    :data:`DEMO_CHANGE` (simulated) at seed :data:`DEMO_SEED`, its source named in ``meta``."""
    from dcstsf.datasets import bundled_sample_path, load_bundled_sample
    from dcstsf.simulate import simulate_case

    case = simulate_case(load_bundled_sample(), model=demo_model(), change=DEMO_CHANGE, seed=DEMO_SEED)
    case.meta["source"] = f"bundled sample {bundled_sample_path().name}: {case.meta.get('source', '')}".strip()
    return case


def _method_order(requested: Sequence[str] | None) -> list[str]:
    from dcstsf.methods import available_methods, method_name

    known = list(available_methods())
    if requested is None:
        names = known
    else:
        names = [method_name(m.strip()) for m in requested if m.strip()]
        unknown = [m for m in names if m not in known]
        if unknown:
            raise DcstsfInputError(
                f"unknown method(s) {', '.join(unknown)}; available: {', '.join(known)} (see `dcstsf methods`)"
            )
        if not names:
            raise DcstsfInputError("--methods is empty; give at least one method name")
    # DC-STSF first (the default method), then the others in registry order, without duplicates.
    ordered = ([_DEFAULT_METHOD] if _DEFAULT_METHOD in names else []) + [m for m in names if m != _DEFAULT_METHOD]
    return list(dict.fromkeys(ordered))


def _dcstsf_available(model: Any) -> str | None:
    """None when DC-STSF weights for the demo setup load; otherwise the reason."""
    from dcstsf.methods import get_method

    try:
        get_method(_DEFAULT_METHOD).network(model)  # type: ignore[attr-defined]
    except WeightsError as exc:
        return str(exc)
    return None


def run_demo(
    out_dir: str | os.PathLike[str] = "demo-output",
    *,
    methods: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    chunk: int | None = None,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the report's metrics dict (with ``"files"``) and prints a summary to ``stream``.

    Parameters
    ----------
    out_dir
        Output directory: ``case/`` (inputs and truths), ``fused/`` (one GeoTIFF per method), ``report/``.
    methods
        Method names to run (default: every registered method, DC-STSF first). Asking for ``dcstsf``
        explicitly when its weights are missing is an error; by default it is skipped with a notice.
    overwrite
        Replace the outputs of an earlier run in ``out_dir``.
    progress
        Show progress bars.
    chunk
        Tile size for the engine (default: the engine's).
    stream
        Where the summary (report path, headline table, notes) is printed; default ``sys.stdout``.

    Raises
    ------
    DcstsfInputError
        ``out_dir`` holds an earlier run and ``overwrite`` is False; unknown method names; ``dcstsf``
        requested explicitly but its weights are missing.
    """
    import time

    from dcstsf.datasets import bundled_sample_path
    from dcstsf.engine import DEFAULT_CHUNK, run_batch
    from dcstsf.report import evaluate_predictions, format_headline

    out = Path(out_dir).expanduser()
    stream = stream if stream is not None else sys.stdout
    case_dir, fused_dir, report_dir = out / "case", out / "fused", out / "report"
    earlier = [p for p in (case_dir / "case.json", report_dir / "report.html") if p.exists()]
    if earlier and not overwrite:
        raise DcstsfInputError(
            f"{out} already holds a demo run ({earlier[0].name}); pass --overwrite to replace it or choose another "
            "directory with -o"
        )
    names = _method_order(methods)
    notes: list[str] = []

    t0 = time.perf_counter()
    model = demo_model()
    if _DEFAULT_METHOD in names:
        reason = _dcstsf_available(model)
        if reason is not None:
            if methods is not None:
                raise WeightsError(f"DC-STSF cannot run: {reason}")
            names.remove(_DEFAULT_METHOD)
            msg = (
                "DC-STSF (the default method) was NOT run: no trained weights for this setup are installed "
                f"({reason.split(';')[0]}). The report compares the baselines only."
            )
            notes.append(msg)
            log.warning("%s", msg)
    if not names:
        raise DcstsfInputError("no method left to run (DC-STSF weights are missing); pass --methods bicubic")

    log.info("simulating the demo case from the bundled EnMAP sample (%s)", bundled_sample_path().name)
    case = demo_case()
    paths = case.save(case_dir, overwrite=overwrite)
    log.info("case written to %s (%.1f s)", case_dir, time.perf_counter() - t0)

    fused_dir.mkdir(parents=True, exist_ok=True)
    preds: dict[str, Path] = {}
    runtimes: dict[str, float] = {}
    for name in names:
        log.info("fusing with %s", name)
        res = run_batch(
            paths["hs_t1"], paths["ms_t1"], paths["ms_t2"], fused_dir / f"{name}.tif",
            method=name, hs_sensor=DEMO_HS_SENSOR, ms_sensor=DEMO_MS_SENSOR, ms_bands=list(DEMO_MS_BANDS),
            chunk=chunk if chunk is not None else DEFAULT_CHUNK, overwrite=overwrite, progress=progress,
        )
        preds[name] = res.path
        runtimes[name] = float(res.seconds_fuse)
        log.info("%s: %.2f s (written to %s)", name, res.seconds_fuse, res.path)

    notes.append(
        "The time column is the fusion time (scene fit + all tiles) of dcstsf.engine.run_batch on the machine that ran the demo, "
        "without reading and writing the files."
    )
    result = evaluate_predictions(
        preds,
        paths["hs_t2_truth"],
        out_dir=report_dir,
        inputs={"hs_t1": paths["hs_t1"], "ms_t1": paths["ms_t1"], "ms_t2": paths["ms_t2"]},
        title="dcstsf demo: EnMAP Potsdam sample as AHSI + Sentinel-2A, simulated change",
        runtimes=runtimes,
        notes=notes,
        overwrite=overwrite,
        progress=progress,
    )
    html = Path(result["files"]["html"])
    print(f"Report: {html.resolve()}", file=stream)
    print(f"        (also {html.with_name('report.md').name} and metrics.json there; fused GeoTIFFs in "
          f"{fused_dir}/, case inputs and truth in {case_dir}/)", file=stream)
    print("", file=stream)
    print(format_headline(result), file=stream)
    print("", file=stream)
    for n in result["notes"]:
        if "SIMULATED" in n or "NOT run" in n:
            print(f"Note: {n}", file=stream)
    print(f"Done in {time.perf_counter() - t0:.0f} s.", file=stream)
    return result

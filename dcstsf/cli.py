"""The ``dcstsf`` command line: a thin layer over the Python API.

Subcommands: ``demo``, ``fuse``, ``evaluate``, ``simulate``, ``train``, ``methods``, ``sensors``. Run
``dcstsf COMMAND --help`` for each. Heavy modules (PyTorch, the engine) are imported inside the
commands, so ``dcstsf --help`` and ``--version`` answer at once.

Exit codes: 0 success, 1 system error such as a full disk or a denied permission, 2 bad input or usage
(message ``dcstsf: error: ...`` on stderr, no traceback; ``-v`` adds the traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

_PROG = "dcstsf"

_DESCRIPTION = """\
Hyperspectral spatial-temporal-spectral fusion: predict a fine-resolution hyperspectral image at t2
from a coarse hyperspectral image at t1 and fine multispectral images at t1 and t2 (DC-STSF and
baselines), at scene scale.

Start with `dcstsf demo`: it builds a case from the real EnMAP sample shipped with dcstsf, fuses it
with every method and writes an HTML report.
"""

_EPILOG = """\
examples:
  dcstsf demo                                   # the whole pipeline on the bundled sample
  dcstsf fuse hs_t1.tif ms_t1.tif ms_t2.tif -o hs_t2.tif
  dcstsf simulate my_hs_cube.tif -o case/       # benchmark on your own scene
  dcstsf evaluate fused/*.tif case/hs_t2_truth.tif --case case/ -o report/
  dcstsf evaluate hs_t2.tif --no-truth --inputs hs_t1.tif ms_t1.tif ms_t2.tif -o report/
  dcstsf methods                                # what --method accepts
"""


# ----------------------------------------------------------------------------------------- helpers
def _csv(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list, e.g. B02,B03,B04,B08")
    return items


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


_SIZE_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 10**3, "KIB": 2**10, "M": 2**20, "MB": 10**6, "MIB": 2**20,
               "G": 2**30, "GB": 10**9, "GIB": 2**30, "T": 2**40, "TB": 10**12, "TIB": 2**40}


def _byte_size(text: str) -> int:
    """``3GiB``, ``2.5GB``, ``3000MB`` or a number of bytes."""
    t = text.strip().upper().replace(" ", "")
    num = t.rstrip("KMGTIB")
    unit = t[len(num):]
    try:
        v = float(num) * _SIZE_UNITS[unit]
    except (ValueError, KeyError) as exc:
        raise argparse.ArgumentTypeError(f"expected a size such as 3GiB, 2.5GB or 3000MB, got {text!r}") from exc
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite size such as 3GiB, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return int(v)


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from exc
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from exc
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _snr(text: str) -> float | None:
    if text.strip().lower() in ("none", "inf", "off"):
        return None
    return _positive_float(text)


def _numbers(text: str, what: str) -> list[float]:
    vals = [t for t in text.replace(",", " ").split() if t]
    try:
        nums = [float(v) for v in vals]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected {what} or a comma-separated list per band, got {text!r}") from exc
    if not nums:
        raise argparse.ArgumentTypeError(f"expected {what}")
    if not all(math.isfinite(v) for v in nums):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return nums


def _scale(text: str) -> float | list[float]:
    """A scale factor per file or per band: reflectance = stored value x scale + offset, scale > 0."""
    nums = _numbers(text, "a scale factor such as 0.0001")
    if not all(v > 0 for v in nums):
        # A zero scale maps every pixel to the offset and a negative one inverts the image: neither is a
        # reflectance encoding, and fusing with it would give a wrong result without an error.
        raise argparse.ArgumentTypeError(f"a scale factor must be positive, got {text!r} (e.g. 0.0001 for DN/10000)")
    return nums[0] if len(nums) == 1 else nums


def _offset(text: str) -> float | list[float]:
    """An offset per file or per band (may be negative, e.g. -0.1 for Sentinel-2 baseline 04.00)."""
    nums = _numbers(text, "an offset such as -0.1")
    return nums[0] if len(nums) == 1 else nums


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every command stops the same way: work kept, temporaries removed."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (``kill``, a batch system's time limit) into :class:`_Terminated` for one command.

    Python's default for SIGTERM ends the process at once: no message, temporaries left behind. Signal
    handlers can only be set from the main thread; elsewhere (``main`` called from a worker thread) the
    default stays.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _quiet_unraisable() -> Iterator[None]:
    """Log exceptions raised in finalizers (``__del__``) at debug level instead of printing tracebacks.

    After a failed write, libraries such as h5py raise in finalizers of objects that can no longer be
    closed; the command's own error line says what happened and what to do, and ``-v`` shows the rest.
    """
    previous = sys.unraisablehook

    def log_it(unraisable: Any) -> None:
        logging.getLogger("dcstsf").debug(
            "exception ignored in %r: %r", getattr(unraisable, "object", None), unraisable.exc_value
        )

    sys.unraisablehook = log_it
    try:
        yield
    finally:
        sys.unraisablehook = previous


@contextlib.contextmanager
def _cli_logging(verbose: int, quiet: int) -> Iterator[None]:
    """Log the ``dcstsf`` logger to stderr for one command: INFO by default, DEBUG with -v, WARNING with
    -q, ERROR with -qq. The logger's previous state is restored afterwards (``main`` may be called from
    Python, e.g. in tests, where the caller's logging setup must survive)."""
    level = logging.INFO
    if verbose:
        level = logging.DEBUG
    elif quiet == 1:
        level = logging.WARNING
    elif quiet >= 2:
        level = logging.ERROR
    logger = logging.getLogger("dcstsf")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "[dcstsf] %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with warnings.catch_warnings():
            if not verbose:
                # Rasters on plain pixel grids (no CRS, e.g. ENVI files without map info) are supported;
                # GDAL's warning about each of them is noise on the command line (shown with -v).
                from rasterio.errors import NotGeoreferencedWarning

                warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
                # NumPy's notes on all-nodata bands or scenes: nodata is expected input, and when it leaves
                # too little to work with the error message says so.
                for note in ("Mean of empty slice", "All-NaN slice encountered", "Degrees of freedom <= 0"):
                    warnings.filterwarnings("ignore", message=note, category=RuntimeWarning)
            # Log lines go through tqdm while progress bars are shown, so they do not break the bars.
            with logging_redirect_tqdm(loggers=[logger]):
                yield
    finally:
        logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", 0)


# ----------------------------------------------------------------------------------------- commands
def _cmd_demo(args: argparse.Namespace) -> int:
    from dcstsf.demo import run_demo

    run_demo(args.output, methods=args.methods, overwrite=args.overwrite, progress=_progress(args), chunk=args.chunk)
    return 0


def _cmd_fuse(args: argparse.Namespace) -> int:
    from dcstsf.engine import run_batch

    hs_scale = args.hs_scale if args.hs_scale is not None else args.scale
    ms_scale = args.ms_scale if args.ms_scale is not None else args.scale
    hs_offset = args.hs_offset if args.hs_offset is not None else args.offset
    ms_offset = args.ms_offset if args.ms_offset is not None else args.offset
    kwargs: dict[str, Any] = {}
    if args.chunk is not None:
        kwargs["chunk"] = args.chunk
    method: Any = args.method
    if args.weights is not None:
        from dcstsf.errors import DcstsfInputError
        from dcstsf.methods import DCSTSF

        if args.method != "dcstsf":
            raise DcstsfInputError(f"--weights applies to --method dcstsf, not {args.method!r}; drop --weights")
        method = DCSTSF(weights=args.weights)
    try:
        res = run_batch(
            args.hs_t1, args.ms_t1, args.ms_t2, args.output,
            method=method, hs_sensor=args.hs_sensor, ms_sensor=args.ms_sensor, ms_bands=args.ms_bands,
            ratio=args.ratio, blend=args.blend, align=args.align, workers=args.workers, scheduler=args.scheduler,
            parallel_tiles=args.parallel_tiles, memory_limit=args.memory_limit, overwrite=args.overwrite,
            progress=_progress(args), cog=args.cog,
            compress=None if args.compress == "none" else args.compress, compress_level=args.compress_level,
            predictor=args.predictor,
            hs_scale=hs_scale, ms_scale=ms_scale, hs_offset=hs_offset, ms_offset=ms_offset,
            hs_nodata=args.hs_nodata, ms_nodata=args.ms_nodata,
            keep_work=args.keep_work, **kwargs,
        )
    except OSError as exc:
        # GDAL and NumPy write errors rarely name the file: say which run failed.
        if exc.filename is None and str(args.output) not in str(exc):
            text = f"{exc.strerror or exc} (while writing {args.output})"
            raise (OSError(exc.errno, text) if exc.errno is not None else OSError(text)) from exc
        raise
    resumed = f", {res.tiles_skipped} resumed from an earlier run" if res.tiles_skipped else ""
    print(f"{res.path}  ({res.tiles_total} tiles{resumed}; fusion {res.seconds_fuse:.1f} s, writing "
          f"{res.seconds_write:.1f} s)")
    return 0


def _case_inputs(case_dir: str) -> tuple[dict[str, Path], Path]:
    import json

    from dcstsf.errors import DcstsfInputError

    d = Path(case_dir).expanduser()
    if not d.is_dir():
        raise DcstsfInputError(f"{d}: case directory not found. Give the directory written by `dcstsf simulate`")
    files = {"hs_t1": "hs_t1.tif", "ms_t1": "ms_t1.tif", "ms_t2": "ms_t2.tif"}
    meta_path = d / "case.json"
    if meta_path.is_file():
        try:
            listed = json.loads(meta_path.read_text()).get("files", {})
            files.update({k: v for k, v in listed.items() if k in files})
        except (OSError, ValueError):
            pass
    paths = {k: d / v for k, v in files.items()}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise DcstsfInputError(
            f"{d}: not a fusion case, {', '.join(missing)} missing. Give the directory written by `dcstsf simulate`"
        )
    return paths, d


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dcstsf.errors import DcstsfInputError
    from dcstsf.report import evaluate_predictions, format_headline

    files = list(args.files)
    inputs: dict[str, Any] | None = None
    if args.case is not None:
        inputs, _ = _case_inputs(args.case)
    elif args.inputs is not None:
        inputs = dict(zip(("hs_t1", "ms_t1", "ms_t2"), args.inputs))
    if args.no_truth:
        truth = None
        preds = files
        if inputs is None:
            raise DcstsfInputError("--no-truth needs the fusion inputs for no-reference quality: add --inputs HS_T1 MS_T1 MS_T2 or --case DIR")
    else:
        if len(files) < 2:
            raise DcstsfInputError(
                "give at least one prediction and the truth (PRED ... TRUTH, the truth last), or --no-truth with "
                "--inputs/--case to evaluate without truth"
            )
        preds, truth = files[:-1], files[-1]
    names: list[str] | None = args.names
    if names is not None and len(names) != len(preds):
        raise DcstsfInputError(f"--names lists {len(names)} names for {len(preds)} predictions; give one per prediction")
    pred_arg: Any = dict(zip(names, preds)) if names is not None else preds
    result = evaluate_predictions(
        pred_arg, truth, out_dir=args.output, ratio=args.ratio, mask=args.mask, border=args.border, inputs=inputs,
        hs_sensor=args.hs_sensor, ms_sensor=args.ms_sensor, ms_bands=args.ms_bands, title=args.title,
        change_threshold=args.change_threshold, overwrite=args.overwrite, progress=_progress(args),
    )
    print(f"Report: {Path(result['files']['html']).resolve()}")
    print("")
    print(format_headline(result))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from dcstsf.errors import DcstsfInputError
    from dcstsf.io import open_raster
    from dcstsf.operators import ObservationModel
    from dcstsf.simulate import simulate_case

    src = Path(args.real_hs).expanduser()
    if not src.exists():
        raise DcstsfInputError(f"{src}: file not found. Check the path")
    cube = open_raster(src, scale=args.scale, offset=args.offset)
    if "wavelength" not in cube.coords:
        raise DcstsfInputError(
            f"{src}: no band wavelengths in the file, so the cube cannot be resampled to the HS sensor. Give a "
            "raster whose bands carry 'wavelength' metadata (GeoTIFF band tags, ENVI header 'wavelength = {...}')"
        )
    model = ObservationModel.from_sensors(args.hs_sensor, args.ms_sensor, ms_bands=args.ms_bands, ratio=args.ratio)
    logging.getLogger("dcstsf").info(
        "simulating a case from %s (%d bands, %d x %d): %s + %s (%d bands), ratio %d, change %r, seed %d",
        src.name, cube.sizes["band"], cube.sizes["y"], cube.sizes["x"], model.hs_sensor.name, model.ms_sensor.name,
        model.n_ms, model.ratio, args.change, args.seed,
    )
    cube.attrs.setdefault("source", str(src))
    case = simulate_case(cube, model=model, change=args.change, seed=args.seed, hs_snr_db=args.hs_snr,
                         ms_snr_db=args.ms_snr)
    case.meta["source"] = str(src)
    paths = case.save(args.output, overwrite=args.overwrite)
    print(f"Case written to {Path(args.output).resolve()}:")
    for key, p in paths.items():
        print(f"  {key:12s} {p}")
    print("Temporal change is SIMULATED (see case.json). Next: "
          f"dcstsf fuse {paths['hs_t1']} {paths['ms_t1']} {paths['ms_t2']} -o fused.tif")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from dcstsf.training import train

    path = train(args.config, output=args.output, steps=args.steps, resume=not args.no_resume, progress=_progress(args))
    print(f"Checkpoint: {path}")
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from dcstsf.methods import available_methods, get_method

    rows = []
    for name, factory in available_methods().items():
        cls: Any = factory if isinstance(factory, type) else type(get_method(name))
        desc = getattr(cls, "description", "")
        ref = getattr(cls, "reference", "")
        rows.append((name + (" (default)" if name == "dcstsf" else ""), desc, ref))
    width = max(len(r[0]) for r in rows)
    for name, desc, ref in rows:
        print(f"{name.ljust(width)}  {desc}")
        if ref:
            print(f"{''.ljust(width)}  reference: {ref}")
    return 0


def _cmd_sensors(args: argparse.Namespace) -> int:
    import numpy as np

    from dcstsf import sensors

    rows = []
    for name in sensors.available():
        s = sensors.get(name)
        gsd = "/".join(f"{g:g}" for g in sorted(set(np.round(s.gsd_m, 3).tolist())))
        wl = f"{s.centers_nm.min():.0f}-{s.centers_nm.max():.0f} nm"
        extra = " ".join(s.band_names) if s.n_bands <= 20 else f"{int(np.sum(s.good))} good bands"
        rows.append((name, f"{s.n_bands} bands", wl, f"GSD {gsd} m", extra))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    return 0


# ----------------------------------------------------------------------------------------- parser
def _common() -> argparse.ArgumentParser:
    # -v/-q after the subcommand too (`dcstsf demo -v`); SUPPRESS keeps the main parser's value otherwise.
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output control")
    g.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                   help="more log output (debug messages; tracebacks on errors)")
    g.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS,
                   help="less output: no progress bars or info messages (-qq: errors only)")
    return p


def _sensor_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    g = p.add_argument_group("sensors")
    if defaults:
        g.add_argument("--hs-sensor", default="zy1-02d-ahsi", metavar="NAME",
                       help="HS sensor to simulate (default: %(default)s; see `dcstsf sensors`)")
        g.add_argument("--ms-sensor", default="sentinel-2a", metavar="NAME",
                       help="MS sensor to simulate (default: %(default)s)")
        g.add_argument("--ms-bands", type=_csv, metavar="B02,B03,...",
                       default=["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12"],
                       help="MS bands, in this order (default: the 10 bands of the shipped DC-STSF weights, "
                            "B02,B03,B04,B08,B05,B06,B07,B8A,B11,B12)")
    else:
        g.add_argument("--hs-sensor", metavar="NAME",
                       help="HS sensor of HS_T1 (default: zy1-02d-ahsi for 166 bands, else from the file's "
                            "wavelengths; see `dcstsf sensors`)")
        g.add_argument("--ms-sensor", metavar="NAME", help="MS sensor (default: sentinel-2a)")
        g.add_argument("--ms-bands", type=_csv, metavar="B02,B03,...",
                       help="MS band names in the files' band order (default: the files' band names)")


def build_parser() -> argparse.ArgumentParser:
    """The ``dcstsf`` argument parser (one subparser per command)."""
    from dcstsf import __version__

    common = _common()
    parser = argparse.ArgumentParser(
        prog=_PROG, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (debug messages; tracebacks on errors)")
    parser.add_argument("-q", "--quiet", action="count", default=0,
                        help="less output: no progress bars or info messages (-qq: errors only)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def add(
        name: str, help_: str, description: str, epilog: str | None = None, usage: str | None = None
    ) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description, epilog=epilog, parents=[common],
                              usage=usage, formatter_class=argparse.RawDescriptionHelpFormatter)

    # demo
    p = add("demo", "run the whole pipeline on the bundled EnMAP sample and write a report",
            "Build a fusion case from the real EnMAP sample shipped with dcstsf (AHSI + Sentinel-2A 10 bands,\n"
            "ratio 3, simulated 'mixed' change, seed 0), fuse it with DC-STSF and every baseline, and write\n"
            "the GeoTIFFs and an HTML/Markdown report. Prints the report's path and a table of the main\n"
            "metrics. Takes about a minute.",
            "output layout: DIR/case/ (inputs, truths, case.json), DIR/fused/<method>.tif, DIR/report/")
    p.add_argument("-o", "--output", default="demo-output", metavar="DIR", help="output directory (default: %(default)s)")
    p.add_argument("--methods", type=_csv, metavar="NAME,...",
                   help="methods to run (default: all; see `dcstsf methods`)")
    p.add_argument("--chunk", type=_positive_int, metavar="N", help="engine tile size in fine pixels")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    p.set_defaults(func=_cmd_demo)

    # fuse
    p = add("fuse", "fuse HS(t1), MS(t1), MS(t2) files into a fine HS(t2) file",
            "Predict the fine hyperspectral image at t2 from the coarse HS image at t1 and the fine MS images\n"
            "at t1 and t2. Files are read lazily and fused tile by tile; the output is written atomically and\n"
            "an interrupted run resumes where it stopped. Inputs: GeoTIFF/COG (anything GDAL reads), Zarr,\n"
            "NetCDF, ENVI (.hdr). Output format from the suffix: .tif, .zarr, .nc.",
            "example:\n  dcstsf fuse ahsi_t1.tif s2_t1.tif s2_t2.tif -o ahsi_t2_10m.tif --method dcstsf --workers 4")
    p.add_argument("hs_t1", metavar="HS_T1", help="coarse hyperspectral image at t1")
    p.add_argument("ms_t1", metavar="MS_T1", help="fine multispectral image at t1")
    p.add_argument("ms_t2", metavar="MS_T2", help="fine multispectral image at t2 (same grid as MS_T1)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (.tif, .zarr or .nc)")
    p.add_argument("--method", default="dcstsf", metavar="NAME", help="fusion method (default: %(default)s; see `dcstsf methods`)")
    p.add_argument("--weights", metavar="FILE",
                   help="DC-STSF checkpoint from `dcstsf train` (default: the shipped weights for the MS band set)")
    _sensor_options(p, defaults=False)
    p.add_argument("--ratio", type=_positive_int, metavar="R", help="HS/MS pixel-size ratio (default: from the grids)")
    g = p.add_argument_group("execution")
    g.add_argument(
        "--chunk", type=_positive_int, metavar="N",
        help="largest tile size in fine pixels (default 512; balanced so the last tiles are not slivers)",
    )
    g.add_argument("--blend", type=_non_negative_int, default=0, metavar="N",
                   help="cross-fade neighbouring tiles over N pixels (only for methods with an undeclared receptive field)")
    g.add_argument("--align", choices=("strict", "reproject"), default="strict",
                   help="misaligned grids: error (strict, default) or resample in memory (reproject)")
    ex = g.add_mutually_exclusive_group()
    ex.add_argument("--workers", type=_positive_int, metavar="N", help="run on a local Dask cluster of N worker processes")
    ex.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask scheduler, e.g. tcp://host:8786")
    g.add_argument("--parallel-tiles", type=_positive_int, metavar="N",
                   help="tiles computed at once on the local threaded scheduler (default: 2 on 2+ cores, "
                        "fewer if they would not fit --memory-limit)")
    g.add_argument("--memory-limit", type=_byte_size, metavar="SIZE",
                   help="memory the run aims to stay within, e.g. 3GiB (default: 1/8 of the RAM, at least 3 GiB); "
                        "sets how many tiles run at once, measured on the first tile")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output")
    g.add_argument("--keep-work", action="store_true", help="keep the per-tile work directory after success")
    g = p.add_argument_group("input and output encoding")
    g.add_argument("--scale", type=_scale, metavar="S",
                   help="reflectance = stored value x S for all inputs, overriding the files (e.g. 0.0001)")
    g.add_argument("--hs-scale", type=_scale, metavar="S", help="as --scale, for HS_T1 only (one value or one per band)")
    g.add_argument("--ms-scale", type=_scale, metavar="S", help="as --scale, for both MS files only")
    g.add_argument("--offset", type=_offset, metavar="O",
                   help="reflectance = stored value x scale + O for all inputs, overriding the files (e.g. -0.1 "
                        "for Sentinel-2 L2A from baseline 04.00 whose files lack BOA_ADD_OFFSET)")
    g.add_argument("--hs-offset", type=_offset, metavar="O", help="as --offset, for HS_T1 only (one value or one per band)")
    g.add_argument("--ms-offset", type=_offset, metavar="O", help="as --offset, for both MS files only")
    g.add_argument("--hs-nodata", type=float, metavar="V", help="stored nodata value of HS_T1 (overrides the file)")
    g.add_argument("--ms-nodata", type=float, metavar="V", help="stored nodata value of the MS files")
    g.add_argument("--cog", action="store_true", help="write a Cloud-Optimised GeoTIFF")
    g.add_argument("--compress", choices=("zstd", "deflate", "lzw", "none"), default="zstd",
                   help="output codec (default: %(default)s; deflate for readers without ZSTD)")
    g.add_argument("--compress-level", type=_positive_int, metavar="N",
                   help="codec level (default: 1 for zstd, GDAL's 6 for deflate)")
    g.add_argument("--predictor", choices=("none", "horizontal", "float"),
                   help="GeoTIFF predictor (default: none for float output; 'float' makes reflectance files "
                        "about 7%% smaller and writing about twice as costly)")
    p.set_defaults(func=_cmd_fuse)

    # evaluate
    p = add("evaluate", "score predictions against a truth (and without one) and write a report",
            "Score one or more predictions of the fine HS(t2) image against the truth and write\n"
            "REPORT_DIR/metrics.json, a self-contained report.html and report.md (figures in REPORT_DIR/figures).\n"
            "The truth is the LAST positional file. Several predictions give a side-by-side comparison.\n\n"
            "With the fusion inputs (--inputs or --case) the report adds no-reference quality: how well each\n"
            "prediction, degraded back through the sensor model, reproduces MS(t2) and, on unchanged pixels,\n"
            "HS(t1), plus QNR. For real scenes without truth use --no-truth: then every positional file is a\n"
            "prediction and only no-reference quality is reported.",
            "examples:\n"
            "  dcstsf evaluate fused/dcstsf.tif fused/bicubic.tif case/hs_t2_truth.tif --case case -o report\n"
            "  dcstsf evaluate pred.tif truth.tif --ratio 3 --mask valid.tif -o report\n"
            "  dcstsf evaluate pred.tif --no-truth --inputs hs_t1.tif ms_t1.tif ms_t2.tif -o report",
            "%(prog)s PRED [PRED ...] TRUTH -o REPORT_DIR [options]\n"
            "       %(prog)s PRED [PRED ...] --no-truth (--inputs HS_T1 MS_T1 MS_T2 | --case DIR) -o REPORT_DIR [options]")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="prediction file(s) PRED, then the truth TRUTH (unless --no-truth)")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="report directory (created)")
    p.add_argument("--no-truth", action="store_true", help="no truth: every file is a prediction (needs --inputs or --case)")
    p.add_argument("--names", type=_csv, metavar="NAME,...", help="labels of the predictions (default: file names)")
    p.add_argument("--ratio", type=_positive_float, metavar="R",
                   help="coarse/fine resolution ratio, e.g. 3 (ERGAS uses 1/R; default: from the inputs or the "
                        "predictions' metadata)")
    p.add_argument("--mask", metavar="FILE", help="single-band raster, non-zero = evaluate this pixel")
    p.add_argument("--border", type=_non_negative_int, default=0, metavar="N",
                   help="pixels left out at each edge for the full-reference metrics (default 0)")
    ex = p.add_mutually_exclusive_group()
    ex.add_argument("--inputs", nargs=3, metavar=("HS_T1", "MS_T1", "MS_T2"),
                    help="the fusion inputs: enables no-reference quality and input quicklooks")
    ex.add_argument("--case", metavar="DIR", help="a case directory from `dcstsf simulate` (its inputs and case.json)")
    _sensor_options(p, defaults=False)
    p.add_argument("--change-threshold", type=_positive_float, default=0.03, metavar="T",
                   help="relative MS change below which a pixel counts as unchanged (default: %(default)s)")
    p.add_argument("--title", default="dcstsf fusion quality report", help="report title")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report in REPORT_DIR")
    p.set_defaults(func=_cmd_evaluate)

    # simulate
    p = add("simulate", "make a benchmark case (inputs + truth) from a real hyperspectral cube",
            "Take a real hyperspectral cube as the fine truth at t1, apply a SIMULATED change to get the\n"
            "truth at t2, and simulate the observations: HS(t1) at coarse resolution, MS(t1) and MS(t2) at\n"
            "fine resolution (Wald protocol, with the sensors' spectral responses, MTF blur and noise).\n"
            "Writes CASE_DIR/hs_t1.tif, ms_t1.tif, ms_t2.tif, hs_t2_truth.tif, hs_t1_truth.tif and case.json.\n"
            "The cube needs band wavelengths (GeoTIFF band tags or an ENVI header).",
            "change models: none, phenology, abrupt, radiometric, mixed (all three); combine with '+',\n"
            "e.g. --change phenology+abrupt")
    p.add_argument("real_hs", metavar="REAL_HS", help="real hyperspectral cube (GeoTIFF, ENVI .hdr, Zarr, NetCDF)")
    p.add_argument("-o", "--output", required=True, metavar="CASE_DIR", help="output directory")
    _sensor_options(p, defaults=True)
    p.add_argument("--ratio", type=_positive_int, default=3, metavar="R", help="HS/MS pixel-size ratio (default: %(default)s)")
    p.add_argument("--change", default="mixed", metavar="MODEL", help="change model (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the change and the noise (default: %(default)s)")
    p.add_argument("--hs-snr", type=_snr, default=35.0, metavar="DB", help="HS noise, SNR in dB or 'none' (default: %(default)s)")
    p.add_argument("--ms-snr", type=_snr, default=40.0, metavar="DB", help="MS noise, SNR in dB or 'none' (default: %(default)s)")
    p.add_argument("--scale", type=_scale, metavar="S", help="reflectance = stored value x S, overriding the file")
    p.add_argument("--offset", type=_scale, metavar="O", help="reflectance = stored value x scale + O, overriding the file")
    p.add_argument("--overwrite", action="store_true", help="replace existing case files")
    p.set_defaults(func=_cmd_simulate)

    # train
    p = add("train", "train DC-STSF weights from a YAML config",
            "Train DC-STSF on cases simulated on the fly from the real training scenes. Resumes from\n"
            "OUTPUT/last.pt when present (unless --no-resume).",
            "example:\n  dcstsf train --config configs/dcstsf-ahsi-s2a-10band.yaml --output runs/my-run")
    p.add_argument("--config", required=True, metavar="FILE", help="training configuration (YAML)")
    p.add_argument("--output", metavar="DIR", help="output directory (default: the config's 'output')")
    p.add_argument("--steps", type=_positive_int, metavar="N", help="training steps (default: the config's)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from OUTPUT/last.pt")
    p.set_defaults(func=_cmd_train)

    # methods / sensors
    p = add("methods", "list the fusion methods", "List every registered fusion method with its description and reference.")
    p.set_defaults(func=_cmd_methods)
    p = add("sensors", "list the sensor models", "List the registered sensors: band count, spectral range, GSD.")
    p.set_defaults(func=_cmd_sensors)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dcstsf`` command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    verbose, quiet = int(getattr(args, "verbose", 0) or 0), int(getattr(args, "quiet", 0) or 0)
    if verbose and quiet:
        parser.print_usage(sys.stderr)
        print(f"{_PROG}: error: -v and -q cannot be combined", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 0
    from dcstsf.errors import DcstsfInputError

    try:
        with _cli_logging(verbose, quiet), _sigterm_as_interrupt(), _quiet_unraisable():
            return int(args.func(args) or 0)
    except DcstsfInputError as exc:
        if verbose:
            traceback.print_exc()
        msg = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"{_PROG}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Disk full, permission denied, ...: the user fixes the system, not the inputs. Outputs are written
        # atomically, so nothing partial is left under the output name; a fuse run resumes its saved tiles.
        if verbose:
            traceback.print_exc()
        msg = " ".join(str(exc).split())
        if exc.errno == errno.ENOSPC:
            fix = "Free space on that file system"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = "Fix the permissions or choose a writable place"
        else:
            fix = "Fix the cause"
        resume = " (finished tiles are kept and resumed)" if args.command == "fuse" else ""
        print(f"{_PROG}: error: {msg}. {fix}, then run the same command again{resume}", file=sys.stderr)
        if argv is None and "h5py" in sys.modules:
            # After a failed write the HDF5 library can crash while Python shuts down (it retries closing
            # the file): end the process here, everything of ours being cleaned up already.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return 1
    except KeyboardInterrupt as exc:
        why = "by SIGTERM" if isinstance(exc, _Terminated) else "by Ctrl-C"
        hint = "; the finished tiles are kept: run the same command again to resume" if args.command == "fuse" else ""
        print(f"{_PROG}: interrupted {why}{hint}", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

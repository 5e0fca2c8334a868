"""The subcommands: each turns parsed arguments into calls of the Python API."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

__all__ = [
    "cmd_demo",
    "cmd_evaluate",
    "cmd_fuse",
    "cmd_methods",
    "cmd_prepare",
    "cmd_sensors",
    "cmd_simulate",
    "cmd_train",
]

def _progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", 0)


def cmd_demo(args: argparse.Namespace) -> int:
    from dcstsf.demo import run_demo

    run_demo(args.output, methods=args.methods, overwrite=args.overwrite, progress=_progress(args), chunk=args.chunk)
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    from dcstsf.engine import NoWorkerError, run_batch

    hs_scale = args.hs_scale if args.hs_scale is not None else args.scale
    ms_scale = args.ms_scale if args.ms_scale is not None else args.scale
    hs_offset = args.hs_offset if args.hs_offset is not None else args.offset
    ms_offset = args.ms_offset if args.ms_offset is not None else args.offset
    kwargs: dict[str, Any] = {}
    if args.chunk is not None:
        kwargs["chunk"] = args.chunk
    for name in ("scheduler_timeout", "worker_timeout"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    from dcstsf.methods import method_name

    args.method = method_name(args.method)  # "DC-STSF" is dcstsf, in the checks below too
    method: Any = args.method
    if any(v is not None for v in (args.weights, args.adapt_steps, args.adapt_seconds, args.local_map,
                                   args.ms_noise, args.device)):
        from dcstsf.errors import DcstsfInputError
        from dcstsf.methods import DCSTSF
        from dcstsf.training.adapt import AdaptOptions

        if args.method != "dcstsf":
            given = {"--weights": args.weights, "--adapt-steps": args.adapt_steps,
                     "--adapt-seconds": args.adapt_seconds, "--local-map": args.local_map,
                     "--ms-noise-steps": args.ms_noise, "--device": args.device}
            option = next(k for k, v in given.items() if v is not None)
            raise DcstsfInputError(f"{option} applies to --method dcstsf, not {args.method!r}; drop {option}")
        adapt = None
        if args.adapt_steps is not None or args.adapt_seconds is not None:
            adapt = AdaptOptions(steps=args.adapt_steps if args.adapt_steps is not None else 20,
                                 max_seconds=args.adapt_seconds)
        method = DCSTSF(weights=args.weights, adapt=adapt, local_map=args.local_map, ms_noise=args.ms_noise,
                        device=args.device or "auto")
    if args.no_coregister or args.scl_classes is not None:
        kwargs["preparation"] = _prepare_options(args, ms_sensor_t2=args.ms_sensor_t2, ratio=args.ratio)
    sd_out = None
    if args.uncertainty is not None:
        from dcstsf.uncertainty.files import check_uncertainty_output

        # before the fusion: a standard-deviation path that cannot be written must not cost a whole run
        sd_out = check_uncertainty_output(args.uncertainty, prediction=args.output,
                                          inputs=(args.hs_t1, args.ms_t1, args.ms_t2), overwrite=args.overwrite)
    try:
        res = run_batch(
            args.hs_t1, args.ms_t1, args.ms_t2, args.output,
            method=method, hs_sensor=args.hs_sensor, ms_sensor=args.ms_sensor, ms_bands=args.ms_bands,
            ms_sensor_t2=args.ms_sensor_t2, ratio=args.ratio, blend=args.blend, align=args.align, workers=args.workers, scheduler=args.scheduler,
            dashboard=args.dashboard,
            parallel_tiles=args.parallel_tiles, memory_limit=args.memory_limit, overwrite=args.overwrite,
            progress=_progress(args), cog=args.cog,
            compress=None if args.compress == "none" else args.compress, compress_level=args.compress_level,
            predictor=args.predictor,
            hs_scale=hs_scale, ms_scale=ms_scale, hs_offset=hs_offset, ms_offset=ms_offset,
            hs_nodata=args.hs_nodata, ms_nodata=args.ms_nodata, physics=args.physics, checks=not args.no_checks,
            keep_work=args.keep_work, **kwargs,
        )
    except NoWorkerError:
        raise
    except OSError as exc:
        # GDAL and NumPy write errors rarely name the file: say which run failed.
        if exc.filename is None and str(args.output) not in str(exc):
            text = f"{exc.strerror or exc} (while writing {args.output})"
            raise (OSError(exc.errno, text) if exc.errno is not None else OSError(text)) from exc
        raise
    resumed = f", {res.tiles_skipped} resumed from an earlier run" if res.tiles_skipped else ""
    print(f"{res.path}  ({res.tiles_total} tiles{resumed}; fusion {res.seconds_fuse:.1f} s, writing "
          f"{res.seconds_write:.1f} s)")
    if sd_out is not None:
        from dcstsf.engine.options import FusionOptions, ReadOptions
        from dcstsf.uncertainty.files import write_uncertainty

        fusion = FusionOptions(
            method=method, hs_sensor=args.hs_sensor, ms_sensor=args.ms_sensor, ms_bands=args.ms_bands,
            ratio=args.ratio, align=args.align, ms_sensor_t2=args.ms_sensor_t2, blend=args.blend,
            hs_read=ReadOptions(hs_scale, hs_offset, args.hs_nodata), ms_read=ReadOptions(ms_scale, ms_offset, args.ms_nodata),
            physics=args.physics, checks=not args.no_checks,
        )
        sd_path = write_uncertainty(
            args.hs_t1, args.ms_t1, args.ms_t2, sd_out, fusion=fusion, preparation=kwargs.get("preparation"),
            chunk=args.chunk,
            parallel_tiles=args.parallel_tiles, overwrite=args.overwrite,
            compress=None if args.compress == "none" else args.compress, progress=_progress(args),
        )
        print(f"{sd_path}  (standard deviation of the prediction)")
    return 0


def _prepare_options(args: argparse.Namespace, *, ms_sensor_t2: str | None, ratio: int | None) -> Any:
    """The :class:`~dcstsf.preparation.PrepareOptions` of ``--ms-bands``, ``--scl-classes``, ``--no-coregister``..."""
    from dcstsf.preparation import PrepareOptions
    from dcstsf.products import DEFAULT_BANDS, DEFAULT_SCL, SclOptions

    scl: Any = DEFAULT_SCL
    if args.scl_classes is not None:
        given = [c.strip() for c in args.scl_classes]
        if [c.lower() for c in given] == ["none"]:
            scl = SclOptions(classes=())
        else:
            scl = SclOptions.from_names([int(c) if c.isdigit() else c for c in given])
    return PrepareOptions(
        ms_bands=args.ms_bands if args.ms_bands is not None else DEFAULT_BANDS, scl=scl,
        coregister=not args.no_coregister, ratio=ratio, hs_sensor=args.hs_sensor, ms_sensor=args.ms_sensor,
        ms_sensor_t2=ms_sensor_t2,
    )


def cmd_prepare(args: argparse.Namespace) -> int:
    from dcstsf.preparation import prepare_products, write_prepared

    options = _prepare_options(args, ms_sensor_t2=args.ms_sensor_t2, ratio=args.ratio)
    prepared = prepare_products(args.hs_product, args.ms1_product, args.ms2_product, options=options)
    for line in prepared.describe():
        print(line)
    paths = write_prepared(prepared, args.output, overwrite=args.overwrite)
    print(f"Prepared inputs written to {Path(args.output).resolve()}:")
    for key, p in paths.items():
        print(f"  {key:6s} {p}")
    print(f"Next: dcstsf fuse {paths['hs_t1']} {paths['ms_t1']} {paths['ms_t2']} -o fused.tif")
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


def cmd_evaluate(args: argparse.Namespace) -> int:
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
    # one SD raster, for the first prediction (keyed by its --names label when given)
    uncertainty: Any = args.uncertainty
    if uncertainty is not None and names is not None:
        uncertainty = {names[0]: args.uncertainty}
    result = evaluate_predictions(
        pred_arg, truth, out_dir=args.output, ratio=args.ratio, mask=args.mask, border=args.border, inputs=inputs,
        hs_sensor=args.hs_sensor, ms_sensor=args.ms_sensor, ms_bands=args.ms_bands, title=args.title,
        change_threshold=args.change_threshold, overwrite=args.overwrite, progress=_progress(args),
        uncertainty=uncertainty, truth_t1=args.truth_t1, include_bad_bands=args.include_bad_bands,
        memory_limit=args.memory_limit,
    )
    print(f"Report: {Path(result['files']['html']).resolve()}")
    print("")
    print(format_headline(result))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from dcstsf.errors import DcstsfInputError
    from dcstsf.io import open_raster
    from dcstsf.operators import ObservationModel
    from dcstsf.simulate import simulate_case

    src = Path(args.real_hs).expanduser()
    if not src.exists():
        raise DcstsfInputError(f"{src}: file not found. Check the path")
    cube = open_raster(src, scale=args.scale, offset=args.offset, nodata=args.nodata)
    if "wavelength" not in cube.coords:
        raise DcstsfInputError(
            f"{src}: no band wavelengths in the file, so the cube cannot be resampled to the HS sensor. Give a "
            "raster whose bands carry 'wavelength' metadata (GeoTIFF band tags, ENVI header 'wavelength = {...}')"
        )
    from dcstsf.sensors import SENTINEL2_DEFAULT_BANDS

    ms_bands = args.ms_bands if args.ms_bands is not None else list(SENTINEL2_DEFAULT_BANDS)
    model = ObservationModel.from_sensors(args.hs_sensor, args.ms_sensor, ms_bands=ms_bands, ratio=args.ratio)
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


def cmd_train(args: argparse.Namespace) -> int:
    from dcstsf.training import train

    path = train(args.config, output=args.output, steps=args.steps, resume=not args.no_resume, progress=_progress(args),
                 device=args.device)
    print(f"Checkpoint: {path}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
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


def cmd_sensors(args: argparse.Namespace) -> int:
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

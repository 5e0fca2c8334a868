"""The argument parser of ``dcstsf`` and its subcommands."""

from __future__ import annotations

import argparse

from dcstsf.cli.arguments import (
    byte_size,
    csv_list,
    local_map,
    ms_noise,
    non_negative_int,
    offset_value,
    positive_float,
    positive_int,
    scale_factor,
    snr_db,
)
from dcstsf.cli.commands import (
    cmd_demo,
    cmd_evaluate,
    cmd_fuse,
    cmd_methods,
    cmd_prepare,
    cmd_sensors,
    cmd_simulate,
    cmd_train,
)

__all__ = ["PROG", "build_parser"]

PROG = "dcstsf"

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
  dcstsf prepare ENMAP_L2A_DIR S2A_MSIL2A.SAFE S2B_MSIL2A.SAFE -o prepared/   # products -> one grid
  dcstsf simulate my_hs_cube.tif -o case/       # benchmark on your own scene
  dcstsf evaluate fused/*.tif case/hs_t2_truth.tif --case case/ -o report/
  dcstsf evaluate hs_t2.tif --no-truth --inputs hs_t1.tif ms_t1.tif ms_t2.tif -o report/
  dcstsf methods                                # what --method accepts
"""


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
        g.add_argument("--ms-bands", type=csv_list, metavar="B02,B03,...",
                       default=None,
                       help="MS bands, in this order (default: the 10 bands of the shipped DC-STSF weights, "
                            "B02,B03,B04,B08,B05,B06,B07,B8A,B11,B12)")
    else:
        g.add_argument("--hs-sensor", metavar="NAME",
                       help="HS sensor of HS_T1 (default: zy1-02d-ahsi for 166 bands, else from the file's "
                            "wavelengths; see `dcstsf sensors`)")
        g.add_argument("--ms-sensor", metavar="NAME",
                       help="MS sensor of MS_T1 (default: the file's 'sensor' tag when it names one, else sentinel-2a)")
        g.add_argument("--ms-bands", type=csv_list, metavar="B02,B03,...",
                       help="MS band names in the files' band order (default: the files' band names); "
                            "when the files name their bands, fewer names select those bands, e.g. "
                            "B02,B03,B04,B08 from a 10-band stack")


def _product_options(g: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    g.add_argument("--no-coregister", action="store_true",
                   help="do not co-register the HS product to the MS (default: estimate the displacement, a global "
                        "shift and a smooth field, and resample the HS by it)")
    g.add_argument("--scl-classes", type=csv_list, metavar="N,...",
                   help="Sentinel-2 SCL classes that become nodata, by index or name (default: "
                        "0,1,3,8,9,10,11: no data, saturated, cloud shadow, clouds, thin cirrus, snow; 'none' masks "
                        "nothing)")


def build_parser() -> argparse.ArgumentParser:
    """The ``dcstsf`` argument parser (one subparser per command)."""
    from dcstsf import __version__

    common = _common()
    parser = argparse.ArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.add_argument("--methods", type=csv_list, metavar="NAME,...",
                   help="methods to run (default: all; see `dcstsf methods`)")
    p.add_argument("--chunk", type=positive_int, metavar="N", help="engine tile size in fine pixels")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    p.set_defaults(func=cmd_demo)

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
    p.add_argument("--uncertainty", metavar="OUT_SD",
                   help="also write the per-pixel, per-band standard deviation of the prediction to OUT_SD (.tif, "
                        ".zarr or .nc; the prediction's grid and bands), calibrated on simulated cases; computed "
                        "after the fusion on local threads, at about twice its cost (--overwrite replaces it)")
    p.add_argument("--method", default="dcstsf", metavar="NAME", help="fusion method (default: %(default)s; see `dcstsf methods`)")
    p.add_argument("--weights", metavar="FILE",
                   help="DC-STSF checkpoint from `dcstsf train` (default: the shipped weights for the MS band set; "
                        "without any for the bands, the physics-only network)")
    p.add_argument("--adapt-steps", type=non_negative_int, default=None, metavar="N",
                   help="DC-STSF: fine-tune the learned units on the scene for N steps before fusing, 0 for none "
                        "(default: as validated for the shipped weights, none for the shipped sets; deterministic, "
                        "recorded in the output's attributes)")
    p.add_argument("--adapt-seconds", type=positive_float, metavar="S",
                   help="adapt for at most S seconds, with --adapt-steps N steps at most (20 when not given); a run "
                        "the limit cuts short depends on the machine's speed, and a warning says so")
    p.add_argument("--local-map", type=local_map, default=None, metavar="RADIUS[:RIDGE]",
                   help="DC-STSF: carry the MS change into HS through the scene's MS->HS map refitted on a window of "
                        "RADIUS coarse pixels around each pixel (ridge towards the global map, default 0.1), e.g. "
                        "3:0.03; default: the global map, as validated (docs/results.md)")
    p.add_argument("--ms-noise-steps", dest="ms_noise", type=ms_noise, default=None, metavar="N",
                   help="DC-STSF: N more steps towards MS(t2), each following only the part of the MS residual "
                        "above the MS noise estimated from the scene (MS(t2) - MS(t1)); default 0, as validated "
                        "(docs/results.md: higher PSNR on real spectra, lower under mismatched MS responses)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="where DC-STSF's network runs (default auto: a CUDA GPU when PyTorch sees one, else the CPU)")
    _sensor_options(p, defaults=False)
    p.add_argument("--ms-sensor-t2", metavar="NAME",
                   help="MS sensor of MS_T2 when another spacecraft took it, e.g. sentinel-2b (default: the file's "
                        "'sensor' tag); MS_T2 is then adjusted band by band to MS_T1's responses")
    p.add_argument("--ratio", type=positive_int, metavar="R", help="HS/MS pixel-size ratio (default: from the grids)")
    g = p.add_argument_group("scene physics and input checks")
    g.add_argument("--physics", choices=("estimated", "tables"), default="estimated",
                   help="HS point-spread function, HS-to-MS shift and spectral responses: estimated from HS_T1 and "
                        "MS_T1 (default) or from the sensor tables; the estimate is printed and recorded either way")
    g.add_argument("--no-checks", action="store_true",
                   help="skip the input checks (plausible reflectance, MS band labels, date order, offsets) "
                        "that stop a run whose inputs cannot be right")
    g = p.add_argument_group("execution")
    g.add_argument(
        "--chunk", type=positive_int, metavar="N",
        help="largest tile size in fine pixels (default 512; balanced so the last tiles are not slivers)",
    )
    g.add_argument("--blend", type=non_negative_int, default=0, metavar="N",
                   help="cross-fade neighbouring tiles over N pixels (only for methods with an undeclared receptive field)")
    g.add_argument("--align", choices=("strict", "reproject"), default="strict",
                   help="misaligned grids: error (strict, default) or resample in memory (reproject)")
    ex = g.add_mutually_exclusive_group()
    ex.add_argument("--workers", type=positive_int, metavar="N", help="run on a local Dask cluster of N worker processes")
    ex.add_argument("--scheduler", metavar="ADDRESS",
                    help="run on a running Dask scheduler, e.g. tcp://host:8786 (its workers must see the input "
                         "files, by their absolute paths)")
    g.add_argument("--dashboard", nargs="?", const=True, default=None, metavar="HOST:PORT",
                   help="serve the Dask dashboard of the --workers cluster (needs bokeh; off by default; "
                        "without an address at 127.0.0.1:8787, :8787 for every interface)")
    g.add_argument("--scheduler-timeout", type=positive_float, metavar="SECONDS",
                   help="seconds to wait for the --scheduler to answer (default 30)")
    g.add_argument("--worker-timeout", type=positive_float, metavar="SECONDS",
                   help="stop a --workers/--scheduler run when no Dask worker has been connected for this long; "
                        "the finished tiles are kept (default 60; inf waits for ever)")
    g.add_argument("--parallel-tiles", type=positive_int, metavar="N",
                   help="at most N tiles computed at once on the local threaded scheduler (default 2 on 2+ "
                        "cores); fewer when they would not fit --memory-limit")
    g.add_argument("--memory-limit", type=byte_size, metavar="SIZE",
                   help="memory the run is held within, e.g. 3GiB (default: 1/8 of the RAM, at least 3 GiB): "
                        "sets how many tiles run at once from the first tile's measured peak, or stops the "
                        "run naming the limit and --chunk that fit; with --workers, shared among the workers")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output")
    g.add_argument("--keep-work", action="store_true", help="keep the per-tile work directory after success")
    g = p.add_argument_group("input and output encoding")
    g.add_argument("--scale", type=scale_factor, metavar="S",
                   help="reflectance = stored value x S for all inputs, overriding the files (e.g. 0.0001 for integer "
                        "DNs; float files holding reflectance need none)")
    g.add_argument("--hs-scale", type=scale_factor, metavar="S", help="as --scale, for HS_T1 only (one value or one per band)")
    g.add_argument("--ms-scale", type=scale_factor, metavar="S", help="as --scale, for both MS files only")
    g.add_argument("--offset", type=offset_value, metavar="O",
                   help="reflectance = stored value x scale + O for all inputs, overriding the files (e.g. -0.1 "
                        "for Sentinel-2 L2A from baseline 04.00 whose files lack BOA_ADD_OFFSET)")
    g.add_argument("--hs-offset", type=offset_value, metavar="O", help="as --offset, for HS_T1 only (one value or one per band)")
    g.add_argument("--ms-offset", type=offset_value, metavar="O", help="as --offset, for both MS files only")
    g.add_argument("--hs-nodata", type=float, metavar="V", help="stored nodata value of HS_T1 (overrides the file)")
    g.add_argument("--ms-nodata", type=float, metavar="V", help="stored nodata value of the MS files")
    g.add_argument("--cog", action="store_true", help="write a Cloud-Optimised GeoTIFF")
    g.add_argument("--compress", choices=("zstd", "deflate", "lzw", "none"), default="zstd",
                   help="output codec (default: %(default)s; deflate for readers without ZSTD)")
    g.add_argument("--compress-level", type=positive_int, metavar="N",
                   help="codec level (default: 1 for zstd, GDAL's 6 for deflate)")
    g.add_argument("--predictor", choices=("none", "horizontal", "float"),
                   help="GeoTIFF predictor (default: none for float output; 'float' makes reflectance files "
                        "about 7%% smaller and writing about twice as costly)")
    g = p.add_argument_group("product inputs (any of HS_T1, MS_T1, MS_T2 a product: see `dcstsf prepare`)")
    _product_options(g)
    p.set_defaults(func=cmd_fuse)

    # prepare
    p = add("prepare", "bring an HS product and two Sentinel-2 products onto one grid for `dcstsf fuse`",
            "Read a hyperspectral product (EnMAP L2A folder or METADATA.XML, PRISMA L2D .he5, ZY-1 02D AHSI\n"
            "reflectance) and two Sentinel-2 L2A products (.SAFE folders or STAC item .json), and write\n"
            "DIR/hs_t1.tif, DIR/ms_t1.tif, DIR/ms_t2.tif on one grid: MS(t1)'s 10 m grid cut to the overlap\n"
            "of the three, the HS snapped onto it at the integer ratio (pixel-area average), MS(t2) on\n"
            "MS(t1)'s grid, clouds (SCL classes, HS quality masks) as nodata, and the HS co-registered to the\n"
            "MS (global shift and smooth field). Prints the grid, ratio, shift, masked fractions and footprint.",
            "example:\n  dcstsf prepare ENMAP01-____L2A-DT..._V010302/ S2A_MSIL2A_...SAFE S2B_MSIL2A_...SAFE -o prepared/\n"
            "  dcstsf fuse prepared/hs_t1.tif prepared/ms_t1.tif prepared/ms_t2.tif -o hs_t2.tif")
    p.add_argument("hs_product", metavar="HS_PRODUCT", help="hyperspectral product at t1")
    p.add_argument("ms1_product", metavar="MS1_PRODUCT", help="Sentinel-2 L2A product at t1")
    p.add_argument("ms2_product", metavar="MS2_PRODUCT", help="Sentinel-2 L2A product at t2")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created when missing)")
    p.add_argument("--ms-bands", type=csv_list, metavar="B02,B03,...",
                   help="Sentinel-2 bands to read, in this order (default: the shipped weights' ten bands, "
                        "B02,B03,B04,B08,B05,B06,B07,B8A,B11,B12)")
    _product_options(p)
    p.add_argument("--ratio", type=positive_int, metavar="R",
                   help="HS/MS pixel-size ratio (default: the HS sensor's nominal GSD over the MS pixel size)")
    p.add_argument("--union-masks", action="store_true",
                   help="also set a pixel to nodata in both MS dates when either date has no data there")
    p.add_argument("--hs-sensor", metavar="NAME",
                   help="HS sensor of the model used for co-registration (default: from the product)")
    p.add_argument("--ms-sensor", metavar="NAME",
                   help="sensor of MS1_PRODUCT, overriding the spacecraft its metadata name (e.g. for Sentinel-2C)")
    p.add_argument("--ms-sensor-t2", metavar="NAME", help="as --ms-sensor, for MS2_PRODUCT")
    p.add_argument("--overwrite", action="store_true", help="replace prepared inputs of an earlier run in DIR")
    p.set_defaults(func=cmd_prepare)

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
            "  dcstsf evaluate pred.tif --no-truth --inputs hs_t1.tif ms_t1.tif ms_t2.tif -o report\n"
            "  dcstsf evaluate pred.tif truth.tif --case case --uncertainty pred_sd.tif -o report",
            "%(prog)s PRED [PRED ...] TRUTH -o REPORT_DIR [options]\n"
            "       %(prog)s PRED [PRED ...] --no-truth (--inputs HS_T1 MS_T1 MS_T2 | --case DIR) -o REPORT_DIR [options]")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="prediction file(s) PRED, then the truth TRUTH (unless --no-truth)")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="report directory (created)")
    p.add_argument("--no-truth", action="store_true", help="no truth: every file is a prediction (needs --inputs or --case)")
    p.add_argument("--names", type=csv_list, metavar="NAME,...", help="labels of the predictions (default: file names)")
    p.add_argument("--ratio", type=positive_float, metavar="R",
                   help="coarse/fine resolution ratio, e.g. 3 (ERGAS uses 1/R; default: from the inputs or the "
                        "predictions' metadata)")
    p.add_argument("--mask", metavar="FILE", help="single-band raster, non-zero = evaluate this pixel")
    p.add_argument("--border", type=non_negative_int, default=0, metavar="N",
                   help="pixels left out at each edge for the full-reference metrics (default 0)")
    ex = p.add_mutually_exclusive_group()
    ex.add_argument("--inputs", nargs=3, metavar=("HS_T1", "MS_T1", "MS_T2"),
                    help="the fusion inputs: enables no-reference quality and input quicklooks")
    ex.add_argument("--case", metavar="DIR", help="a case directory from `dcstsf simulate` (its inputs and case.json)")
    _sensor_options(p, defaults=False)
    p.add_argument("--change-threshold", type=positive_float, default=0.03, metavar="T",
                   help="relative change from which a pixel counts as changed (default: %(default)s)")
    p.add_argument("--uncertainty", metavar="SD.tif",
                   help="per-pixel standard deviation of the first PRED (its bands, or one band for all): "
                        "shown as a map and, with a truth, checked for calibration")
    p.add_argument("--truth-t1", metavar="FILE",
                   help="fine HS truth at t1 of a simulated case: changed pixels are those the simulated change "
                        "moved (default: hs_t1_truth.tif listed by the case.json next to the truth)")
    p.add_argument("--include-bad-bands", action="store_true",
                   help="score the HS sensor's bad bands too (default: left out of every metric)")
    p.add_argument("--memory-limit", type=byte_size, metavar="SIZE",
                   help="memory the evaluation's tiles may use, e.g. 4GiB (default: the fusion default, 1/8 of "
                        "the RAM and at least 3 GiB); the cubes are read tile by tile")
    p.add_argument("--title", default="dcstsf fusion quality report", help="report title")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report in REPORT_DIR")
    p.set_defaults(func=cmd_evaluate)

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
    p.add_argument("--ratio", type=positive_int, default=3, metavar="R", help="HS/MS pixel-size ratio (default: %(default)s)")
    p.add_argument("--change", default="mixed", metavar="MODEL", help="change model (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the change and the noise (default: %(default)s)")
    p.add_argument("--hs-snr", type=snr_db, default=35.0, metavar="DB", help="HS noise, SNR in dB or 'none' (default: %(default)s)")
    p.add_argument("--ms-snr", type=snr_db, default=40.0, metavar="DB", help="MS noise, SNR in dB or 'none' (default: %(default)s)")
    p.add_argument("--scale", type=scale_factor, metavar="S", help="reflectance = stored value x S, overriding the file")
    p.add_argument("--offset", type=offset_value, metavar="O", help="reflectance = stored value x scale + O, overriding the file")
    p.add_argument("--nodata", type=float, metavar="V", help="stored nodata value of REAL_HS (overrides the file)")
    p.add_argument("--overwrite", action="store_true", help="replace existing case files")
    p.set_defaults(func=cmd_simulate)

    # train
    p = add("train", "train DC-STSF weights from a YAML config",
            "Train DC-STSF on cases simulated on the fly from the real training scenes. Resumes from\n"
            "OUTPUT/last.pt when present (unless --no-resume).",
            "example:\n  dcstsf train --config configs/dcstsf-ahsi-s2a-10band.yaml --output runs/my-run")
    p.add_argument("--config", required=True, metavar="FILE", help="training configuration (YAML)")
    p.add_argument("--output", metavar="DIR", help="output directory (default: the config's 'output')")
    p.add_argument("--steps", type=positive_int, metavar="N", help="training steps (default: the config's)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from OUTPUT/last.pt")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="where training runs (default: the config's train.device, cpu unless it says otherwise)")
    p.set_defaults(func=cmd_train)

    # methods / sensors
    p = add("methods", "list the fusion methods", "List every registered fusion method with its description and reference.")
    p.set_defaults(func=cmd_methods)
    p = add("sensors", "list the sensor models", "List the registered sensors: band count, spectral range, GSD.")
    p.set_defaults(func=cmd_sensors)
    return parser

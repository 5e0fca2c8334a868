"""Quality reports for fused HS(t2) predictions: ``metrics.json``, ``report.html`` and ``report.md``.

:func:`evaluate_predictions` scores one or several predictions against a fine HS(t2) truth (all
full-reference metrics of :func:`dcstsf.metrics.evaluate`, global and per band) and, when the fusion
inputs are given, without reference (:mod:`dcstsf.report.noref`: how well each prediction, degraded
back through the sensor model, reproduces the observed MS(t2) and HS(t1), and the QNR indices). On real
scenes with no truth the no-reference part alone is reported.

Predictions are processed one at a time (each is loaded once, scored, reduced to what the figures need,
then released), so memory holds the truth, the inputs and one prediction.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dcstsf import metrics as _metrics
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.report import plots
from dcstsf.report.noref import (
    DEFAULT_CHANGE_THRESHOLD,
    NO_REFERENCE_DEFINITIONS,
    no_reference_quality,
    qnr_block,
    unchanged_pixels,
)
from dcstsf.report.render import (
    Column,
    Definitions,
    FigureBlock,
    Paragraph,
    ReportDoc,
    Row,
    Section,
    Table,
    format_value,
    json_pointer,
    render_html,
    render_markdown,
)

__all__ = [
    "FALSE_COLOUR_NM",
    "FULL_REFERENCE_COLUMNS",
    "HEADLINE_COLUMNS",
    "NO_REFERENCE_COLUMNS",
    "REPORT_FILES",
    "TRUE_COLOUR_NM",
    "evaluate_predictions",
    "find_case_meta",
    "format_headline",
    "headline_rows",
    "load_mask",
    "nearest_bands",
]

log = logging.getLogger(__name__)

#: Band centres (nm) of the true-colour (R, G, B) and false-colour (NIR, R, G) quicklooks.
TRUE_COLOUR_NM: tuple[float, float, float] = (650.0, 550.0, 470.0)
FALSE_COLOUR_NM: tuple[float, float, float] = (860.0, 650.0, 550.0)
# Sentinel-2-style band numbers for the same composites (B8A replaces a missing B8).
_MS_TRUE = (("4",), ("3",), ("2",))
_MS_FALSE = (("8", "8A"), ("4",), ("3",))
# A composite band farther than this from its target wavelength is not used.
_RGB_TOLERANCE_NM = 60.0
# Quicklooks and maps are reduced so that their longer side has at most this many pixels.
_MAX_DISPLAY_PX = 600
_STRETCH = (2.0, 98.0)
# Error maps share a colour scale from 0 to this percentile over all methods: a higher one lets a few
# dark-target pixels (water, shadow: large angles) flatten the contrast everywhere else.
_MAP_PERCENTILE = 95.0

#: Files written into the report directory (plus ``figures/*.png``).
REPORT_FILES = ("metrics.json", "report.html", "report.md")

#: Full-reference table: JSON key in ``global``, label, decimals shown, better direction.
FULL_REFERENCE_COLUMNS: tuple[Column, ...] = (
    Column("psnr", "PSNR (dB) \u2191", 2, "max"),
    Column("sam_deg", "SAM (\u00b0) \u2193", 3, "min"),
    Column("ergas", "ERGAS \u2193", 3, "min"),
    Column("ssim", "SSIM \u2191", 4, "max"),
    Column("cc", "CC \u2191", 4, "max"),
    Column("rmse", "RMSE \u2193", 5, "min"),
    Column("uiqi", "UIQI \u2191", 4, "max"),
    Column("q2n", "Q2n \u2191", 4, "max"),
)
_RUNTIME_COLUMN = Column("runtime_s", "time (s)", 2, None)

#: No-reference table: (group in ``no_reference``, column).
NO_REFERENCE_COLUMNS: tuple[tuple[str, Column], ...] = (
    ("ms_t2_reproduction", Column("psnr", "MS(t2) PSNR (dB) \u2191", 2, "max")),
    ("ms_t2_reproduction", Column("sam_deg", "MS(t2) SAM (\u00b0) \u2193", 3, "min")),
    ("ms_t2_reproduction", Column("ergas", "MS(t2) ERGAS \u2193", 3, "min")),
    ("hs_t1_reproduction_unchanged", Column("psnr", "HS(t1) PSNR, unchanged px (dB) \u2191", 2, "max")),
    ("hs_t1_reproduction_unchanged", Column("sam_deg", "HS(t1) SAM, unchanged px (\u00b0) \u2193", 3, "min")),
    ("qnr", Column("d_lambda", "D\u03bb \u2193", 4, "min")),
    ("qnr", Column("d_s", "Ds \u2193", 4, "min")),
    ("qnr", Column("qnr", "QNR \u2191", 4, "max")),
)

#: Columns of the short table the demo prints: (JSON key in ``global`` or ``runtime_s``, header, decimals).
HEADLINE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("psnr", "PSNR(dB)", 2),
    ("sam_deg", "SAM(deg)", 3),
    ("ergas", "ERGAS", 3),
    ("ssim", "SSIM", 4),
    ("runtime_s", "time(s)", 2),
)

_FULL_REF_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("PSNR", "Mean over bands of 10 log10(1 / MSE_b) (reflectance, data range 1), each band capped at 100 dB."),
    ("SAM", "Mean spectral angle between predicted and true spectra, degrees, over valid pixels."),
    ("ERGAS", "100 (h/l) sqrt(mean_b (RMSE_b / mean_b)^2), h/l = fine / coarse pixel size = 1/ratio."),
    ("SSIM", "Band mean of the structural similarity (Gaussian 11x11 window, sigma 1.5)."),
    ("CC", "Band mean of the Pearson correlation between predicted and true band images."),
    ("RMSE", "Root-mean-square error over all bands and valid pixels, reflectance units."),
    ("UIQI / Q2n", "Universal image quality index (band mean) and its hypercomplex extension, over blocks."),
    ("SAM contribution (per band)", "Mean over pixels of (p_b/|p| - r_b/|r|)^2: how much band b drives the "
     "spectral angle (the bands sum to the mean of 2 (1 - cos angle))."),
)


# --------------------------------------------------------------------------------------------- loading
def _as_cube(da: Any, label: str) -> xr.DataArray:
    """A DataArray ``(band, y, x)`` from a DataArray or a NumPy array."""
    if isinstance(da, np.ndarray):
        if da.ndim != 3:
            raise DcstsfInputError(f"{label}: expected a (band, y, x) array, got shape {da.shape}")
        return xr.DataArray(da, dims=("band", "y", "x"))
    if not isinstance(da, xr.DataArray):
        raise DcstsfInputError(f"{label}: expected a DataArray, a NumPy array or a raster path, got {type(da).__name__}")
    if set(da.dims) != {"band", "y", "x"}:
        raise DcstsfInputError(
            f"{label}: DataArray has dims {tuple(da.dims)}, expected ('band', 'y', 'x'); rename them "
            "(e.g. da.rename({'wavelength': 'band'}))"
        )
    return da.transpose("band", "y", "x")


def _load(x: Any, label: str) -> tuple[xr.DataArray, str | None]:
    """(cube, source path or None) for a DataArray, NumPy array or raster path."""
    if isinstance(x, (str, os.PathLike)):
        from dcstsf.io import open_raster

        p = Path(x).expanduser()
        if not p.exists():
            raise DcstsfInputError(f"{p}: {label} not found. Check the path")
        return _as_cube(open_raster(p), f"{label} {p}"), str(p)
    return _as_cube(x, label), None


def load_mask(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    """A boolean ``(y, x)`` validity mask (True = evaluate) from an array, DataArray or raster file.

    A raster file's first band is read: pixels that are non-zero, finite and not the file's nodata value
    are valid. Arrays must already be boolean (an inverted 0/1 mask is not guessed).
    """
    if isinstance(mask, (str, os.PathLike)):
        import rasterio

        p = Path(mask).expanduser()
        if not p.exists():
            raise DcstsfInputError(f"{p}: mask file not found. Check the path")
        try:
            with rasterio.open(p) as src:
                band = src.read(1).astype(np.float64)
                nodata = src.nodata
        except rasterio.errors.RasterioError as exc:
            raise DcstsfInputError(f"{p}: cannot read the mask ({exc}). Give a single-band raster, non-zero = valid") from exc
        m = np.isfinite(band) & (band != 0)
        if nodata is not None and np.isfinite(nodata):
            m &= band != nodata
        label = str(p)
    else:
        m = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask)
        if m.ndim == 3 and m.shape[0] == 1:
            m = m[0]
        if m.dtype != np.bool_:
            raise DcstsfInputError(
                f"mask: expected a boolean (y, x) array (True = valid pixel), got dtype {m.dtype}; pass "
                "mask.astype(bool) after making sure True marks the pixels to evaluate"
            )
        label = "mask"
    if m.shape != tuple(shape):
        raise DcstsfInputError(f"{label}: mask is {m.shape[0]}x{m.shape[1]} pixels but the images are {shape[0]}x{shape[1]}")
    if not m.any():
        raise DcstsfInputError(f"{label}: the mask marks no pixel as valid (valid = non-zero)")
    return m


def find_case_meta(*paths: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The ``case.json`` written by :meth:`dcstsf.simulate.FusionCase.save` next to any of ``paths``."""
    for p in paths:
        if p is None:
            continue
        candidate = Path(p).expanduser().parent / "case.json"
        if candidate.is_file():
            try:
                meta = json.loads(candidate.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                log.warning("%s: ignored, not readable JSON (%s)", candidate, exc)
                continue
            if isinstance(meta, dict):
                meta.setdefault("case_json", str(candidate))
                return meta
    return None


def _unique_names(paths: Sequence[Any]) -> list[str]:
    stems = [Path(p).stem for p in paths]
    names = []
    for p, s in zip(paths, stems):
        names.append(s if stems.count(s) == 1 else f"{Path(p).parent.name}/{s}")
    if len(set(names)) != len(names):
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    return names


def _check_same_grid(a: xr.DataArray, b: xr.DataArray, la: str, lb: str) -> None:
    if a.sizes["y"] != b.sizes["y"] or a.sizes["x"] != b.sizes["x"]:
        raise DcstsfInputError(
            f"{la} is {a.sizes['y']}x{a.sizes['x']} pixels but {lb} is {b.sizes['y']}x{b.sizes['x']}; "
            "they must cover the same grid (crop both to the fused footprint)"
        )
    for dim in ("y", "x"):
        if dim in a.coords and dim in b.coords:
            ca, cb = np.asarray(a[dim].values, float), np.asarray(b[dim].values, float)
            step = float(np.median(np.abs(np.diff(ca)))) if ca.size > 1 else 1.0
            if not np.allclose(ca, cb, rtol=0.0, atol=1e-3 * step):
                raise DcstsfInputError(
                    f"{la} and {lb} have the same size but different {dim} coordinates "
                    f"({ca[0]:.6g}... vs {cb[0]:.6g}...); they must be on the same grid"
                )


def _int_attr(value: Any) -> int | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return int(round(v)) if math.isfinite(v) and v >= 1 and abs(v - round(v)) < 1e-9 else None


def _resolve_ratio(
    ratio: float | None, model: ObservationModel | None, preds: Mapping[str, xr.DataArray], label: str
) -> float:
    """The coarse/fine resolution factor r (>= 1)."""
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
            raise DcstsfInputError(f"ratio must be a number (the coarse/fine resolution factor, e.g. 3), got {ratio!r}")
        r = float(ratio)
        if not math.isfinite(r) or r <= 0:
            raise DcstsfInputError(f"ratio must be a positive number (e.g. 3), got {ratio!r}")
        if r < 1:
            # Given as h/l (ERGAS convention): store the resolution factor.
            r = 1.0 / r
        if model is not None and abs(r - model.ratio) > 1e-6:
            raise DcstsfInputError(
                f"ratio {r:g} was given but the inputs' grids (or model) give {model.ratio}; drop --ratio or fix it"
            )
        return r
    if model is not None:
        return float(model.ratio)
    for da in preds.values():
        v = _int_attr(da.attrs.get("ratio"))
        if v is not None:
            return float(v)
    raise DcstsfInputError(
        f"the HS/MS resolution ratio is unknown for {label}: pass ratio= (CLI --ratio 3 for 30 m HS and 10 m MS) "
        "or the fusion inputs"
    )


def _sensor_hints(
    explicit: tuple[Any, Any, Any], case_meta: Mapping[str, Any] | None, preds: Mapping[str, xr.DataArray]
) -> tuple[Any, Any, Any]:
    """(hs_sensor, ms_sensor, ms_bands): explicit values, else case.json, else the predictions' attrs."""
    from dcstsf import sensors as _sensors

    hs, ms, bands = explicit
    sources: list[Mapping[str, Any]] = []
    if case_meta and isinstance(case_meta.get("model"), Mapping):
        sources.append(case_meta["model"])
    sources += [da.attrs for da in preds.values()]
    registered = set(_sensors.available())
    for src in sources:
        # Sensors built on the fly (e.g. "hs-from-wavelengths") are not registered: leave them to
        # validate_inputs, which rebuilds them from the inputs' wavelength coordinates.
        if hs is None and src.get("hs_sensor") in registered:
            hs = src["hs_sensor"]
        if ms is None and src.get("ms_sensor") in registered:
            ms = src["ms_sensor"]
        bands = bands if bands is not None else src.get("ms_bands")
    return hs, ms, bands


# ------------------------------------------------------------------------------------------ display
def nearest_bands(wavelengths: np.ndarray | None, targets: Sequence[float]) -> list[int] | None:
    """Indices of the bands nearest each target wavelength (nm); None when one is farther than 60 nm."""
    if wavelengths is None:
        return None
    wl = np.asarray(wavelengths, float)
    out = []
    for t in targets:
        d = np.abs(wl - t)
        d[~np.isfinite(d)] = np.inf
        i = int(np.argmin(d))
        if not d[i] <= _RGB_TOLERANCE_NM:
            return None
        out.append(i)
    return out


def _s2_number(name: str) -> str | None:
    m = re.fullmatch(r"B0*(\d{1,2})(A?)", str(name).strip(), flags=re.IGNORECASE)
    return f"{m.group(1)}{m.group(2).upper()}" if m else None


def _ms_bands_for(ms: xr.DataArray, numbers: Sequence[Sequence[str]], targets: Sequence[float]) -> list[int] | None:
    """MS composite bands by Sentinel-2 band names, else by wavelength coordinate."""
    names = [_s2_number(str(b)) for b in ms["band"].values] if "band" in ms.coords else []
    idx = []
    for options in numbers:
        hit = next((names.index(o) for o in options if o in names), None)
        if hit is None:
            idx = []
            break
        idx.append(hit)
    if idx:
        return idx
    wl = np.asarray(ms["wavelength"].values, float) if "wavelength" in ms.coords else None
    return nearest_bands(wl, targets)


def _display_step(shape: tuple[int, int]) -> int:
    return max(1, int(math.ceil(max(shape) / _MAX_DISPLAY_PX)))


def _reduce_map(m: np.ndarray, step: int) -> np.ndarray:
    """Block NaN-mean of a 2-D map by ``step`` (display size), NaN where a block has no value."""
    if step == 1:
        return m
    h, w = m.shape
    hp, wp = -(-h // step) * step, -(-w // step) * step
    pad = np.full((hp, wp), np.nan)
    pad[:h, :w] = m
    blocks = pad.reshape(hp // step, step, wp // step, step)
    cnt = np.isfinite(blocks).sum(axis=(1, 3))
    tot = np.nansum(blocks, axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def _pick(cube: np.ndarray, idx: Sequence[int], step: int) -> np.ndarray:
    return np.asarray(cube[list(idx), ::step, ::step], dtype=np.float64)


def _sample_pixels(
    ref: np.ndarray, valid: np.ndarray, *, margin: int, change: np.ndarray | None, ratio: int
) -> list[tuple[int, int, str]]:
    """Dark, median and bright pixels (10/50/90 % of the band-mean reflectance) and the most changed one."""
    ny, nx = valid.shape
    ok = valid & np.isfinite(ref).all(axis=0)
    if 2 * margin < min(ny, nx):
        inner = np.zeros_like(ok)
        inner[margin : ny - margin, margin : nx - margin] = True
        ok &= inner
    if not ok.any():
        return []
    bright = np.where(ok, ref.mean(axis=0), np.nan)
    vals = bright[ok]
    picks: list[tuple[int, int, str]] = []
    taken: set[tuple[int, int]] = set()
    for q, desc in ((10, "dark"), (50, "median"), (90, "bright")):
        target = np.percentile(vals, q)
        d = np.abs(bright - target)
        d[~ok] = np.inf
        for flat in np.argsort(d, axis=None, kind="stable")[:64]:
            yx = (int(flat // nx), int(flat % nx))
            if yx not in taken:
                taken.add(yx)
                picks.append((yx[0], yx[1], f"{desc} pixel"))
                break
    if change is not None and np.isfinite(change).any():
        order = np.argsort(np.where(np.isfinite(change), -change, np.inf), axis=None, kind="stable")
        for flat in order[:64]:
            cy, cx = int(flat // change.shape[1]), int(flat % change.shape[1])
            yx = (cy * ratio + ratio // 2, cx * ratio + ratio // 2)
            if yx[0] < ny and yx[1] < nx and ok[yx] and yx not in taken:
                picks.append((yx[0], yx[1], "largest MS change"))
                break
    return picks


# ------------------------------------------------------------------------------------------ JSON
def _jsonable(obj: Any) -> Any:
    """NaN/inf -> None (JSON has no NaN), NumPy scalars/arrays -> Python, recursively."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _provenance(attrs: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("method", "weights_sha256", "dcstsf_version", "hs_sensor", "ms_sensor", "ms_bands", "ratio", "chunk", "halo")
    return {k: attrs[k] for k in keys if k in attrs}


# ------------------------------------------------------------------------------------------ headline
def headline_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per method of the headline metrics (``HEADLINE_COLUMNS``) from a metrics dict."""
    rows = []
    for name, entry in result.get("methods", {}).items():
        row: dict[str, Any] = {"method": name}
        for key, _, _ in HEADLINE_COLUMNS:
            row[key] = entry.get(key) if key == "runtime_s" else entry.get("global", {}).get(key)
        rows.append(row)
    return rows


def format_headline(result: Mapping[str, Any]) -> str:
    """The headline table as aligned plain text (what ``dcstsf demo`` and ``dcstsf evaluate`` print).

    With a truth: method, PSNR, SAM, ERGAS, SSIM and time; without: the no-reference headline (MS(t2)
    PSNR, HS(t1) PSNR on unchanged pixels, QNR).
    """
    entries = result.get("methods", {})
    if entries and all("global" not in e for e in entries.values()):
        rows = []
        for name, e in entries.items():
            nr = e.get("no_reference", {})
            rows.append({
                "method": name,
                "ms_psnr": nr.get("ms_t2_reproduction", {}).get("psnr"),
                "hs_psnr": nr.get("hs_t1_reproduction_unchanged", {}).get("psnr"),
                "qnr": nr.get("qnr", {}).get("qnr"),
                "runtime_s": e.get("runtime_s"),
            })
        cols: list[tuple[str, str, int | None]] = [
            ("method", "method", None), ("ms_psnr", "MS(t2) PSNR(dB)", 2),
            ("hs_psnr", "HS(t1) PSNR unchanged(dB)", 2), ("qnr", "QNR", 4), ("runtime_s", "time(s)", 2),
        ]
    else:
        rows = headline_rows(result)
        cols = [("method", "method", None)] + [(k, h, d) for k, h, d in HEADLINE_COLUMNS]
    if all(r.get("runtime_s") is None for r in rows):
        cols = [c for c in cols if c[0] != "runtime_s"]
    cells = [[h for _, h, _ in cols]]
    for r in rows:
        cells.append([str(r[k]) if d is None else format_value(r[k], d) for k, _, d in cols])
    widths = [max(len(row[j]) for row in cells) for j in range(len(cols))]
    lines = []
    for i, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ main
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
        Coarse/fine resolution factor (3 for 30 m HS and 10 m MS); ERGAS uses h/l = 1/ratio. A value
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
    out = Path(out_dir).expanduser()
    existing = [out / f for f in REPORT_FILES if (out / f).exists()]
    if existing and not overwrite:
        raise DcstsfInputError(
            f"{existing[0]} exists; choose another report directory or pass overwrite=True (CLI --overwrite)"
        )

    # --- predictions, truth, inputs ---------------------------------------------------------------
    if isinstance(preds, Mapping):
        items = list(preds.items())
    elif isinstance(preds, (str, os.PathLike)):
        items = list(zip(_unique_names([preds]), [preds]))
    else:
        plist = list(preds)
        items = list(zip(_unique_names(plist), plist))
    if not items:
        raise DcstsfInputError("no prediction to evaluate; give at least one")
    pred_das: dict[str, xr.DataArray] = {}
    pred_src: dict[str, str | None] = {}
    for name, p in items:
        pred_das[str(name)], pred_src[str(name)] = _load(p, f"prediction {name!r}")
    names = list(pred_das)
    first = pred_das[names[0]]
    shape = (first.sizes["y"], first.sizes["x"])
    nb = first.sizes["band"]
    for n in names[1:]:
        _check_same_grid(pred_das[n], first, f"prediction {n!r}", f"prediction {names[0]!r}")
        if pred_das[n].sizes["band"] != nb:
            raise DcstsfInputError(f"prediction {n!r} has {pred_das[n].sizes['band']} bands, {names[0]!r} has {nb}")

    truth_da: xr.DataArray | None = None
    truth_src: str | None = None
    if truth is not None:
        truth_da, truth_src = _load(truth, "truth")
        _check_same_grid(first, truth_da, f"prediction {names[0]!r}", "the truth")
        if truth_da.sizes["band"] != nb:
            raise DcstsfInputError(
                f"the truth has {truth_da.sizes['band']} bands but the predictions have {nb}; give the truth "
                "resampled to the predicted HS sensor (dcstsf simulate writes hs_t2_truth.tif so)"
            )

    input_src: dict[str, str | None] = {}
    fi = None
    if inputs is not None:
        missing = {"hs_t1", "ms_t1", "ms_t2"} - set(inputs)
        if missing:
            raise DcstsfInputError(f"inputs needs hs_t1, ms_t1 and ms_t2; missing {', '.join(sorted(missing))}")
        loaded = {}
        for key in ("hs_t1", "ms_t1", "ms_t2"):
            loaded[key], input_src[key] = _load(inputs[key], key.upper().replace("_T", "(t") + ")")
        if case_meta is None:
            case_meta = find_case_meta(truth_src, input_src.get("hs_t1"), *pred_src.values())
        from dcstsf.engine.grids import validate_inputs

        hints = _sensor_hints((hs_sensor, ms_sensor, ms_bands), case_meta, pred_das) if model is None else (None,) * 3
        int_ratio = None
        if ratio is not None and float(ratio) >= 1 and abs(float(ratio) - round(float(ratio))) < 1e-9:
            int_ratio = int(round(float(ratio)))
        fi = validate_inputs(
            loaded["hs_t1"], loaded["ms_t1"], loaded["ms_t2"], hs_sensor=hints[0], ms_sensor=hints[1],
            ms_bands=hints[2], ratio=int_ratio, model=model,
        )
        model = fi.model
        _check_same_grid(first, fi.ms_t1, f"prediction {names[0]!r}", "the MS inputs (cropped to the HS footprint)")
        if nb != model.n_hs:
            raise DcstsfInputError(
                f"the predictions have {nb} bands but the HS sensor {model.hs_sensor.name} of the inputs has "
                f"{model.n_hs}"
            )
    elif truth_da is None:
        raise DcstsfInputError(
            "nothing to evaluate against: give the truth, or the fusion inputs (hs_t1, ms_t1, ms_t2) for "
            "no-reference quality"
        )
    if case_meta is None:
        case_meta = find_case_meta(truth_src, *pred_src.values())

    r = _resolve_ratio(ratio, model, pred_das, names[0])
    ri = int(round(r))
    h_over_l = 1.0 / r
    mask_arr = load_mask(mask, shape) if mask is not None else None
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
        raise DcstsfInputError(f"border must be a non-negative number of pixels, got {border!r}")
    uiqi_block = 32 if min(shape) - 2 * border >= 64 else max(4, (min(shape) - 2 * border) // 2)

    # --- shared display choices -------------------------------------------------------------------
    wl: np.ndarray | None = None
    for da in ([truth_da] if truth_da is not None else []) + [first]:
        if "wavelength" in da.coords:
            wl = np.asarray(da["wavelength"].values, float)
            break
    if wl is None and model is not None and model.n_hs == nb:
        wl = np.asarray(model.hs_sensor.centers_nm, float)
    band_names = [str(b) for b in first["band"].values] if "band" in first.coords else [f"band_{i + 1}" for i in range(nb)]
    step = _display_step(shape)
    composites: dict[str, tuple[list[int], str]] = {}
    for key, targets, label in (("true", TRUE_COLOUR_NM, "true colour"), ("false", FALSE_COLOUR_NM, "false colour")):
        idx = nearest_bands(wl, targets)
        if idx is not None:
            composites[key] = (idx, "HS bands at " + "/".join(f"{wl[i]:.0f}" for i in idx) + " nm")
        elif wl is None and key == "true" and nb >= 3:
            idx = [min(nb - 1, (3 * nb) // 4), nb // 2, nb // 4]
            composites[key] = (idx, f"HS bands #{idx[0] + 1}/#{idx[1] + 1}/#{idx[2] + 1} (no wavelength metadata)")

    truth_np = truth_da.values.astype(np.float32) if truth_da is not None else None
    hs_np = ms1_np = ms2_np = None
    change_rel = unchanged = None
    if fi is not None:
        hs_np = fi.hs_t1.values.astype(np.float32)
        ms1_np = fi.ms_t1.values.astype(np.float32)
        ms2_np = fi.ms_t2.values.astype(np.float32)
        unchanged, change_rel = unchanged_pixels(ms1_np, ms2_np, ratio=ri, threshold=change_threshold)
    step_c = max(1, int(math.ceil(step / ri)))

    # HS stretch: from the truth (or HS(t1), else the first prediction), shared by every HS panel.
    stretch_src = truth_np if truth_np is not None else hs_np
    stretch: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    panels: dict[str, list[plots.Panel]] = {k: [] for k in composites}
    ms_panels_note = ""

    def hs_stretch(key: str, cube: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
        if key not in stretch:
            stretch[key] = plots.stretch_limits(_pick(cube, composites[key][0], s), percentiles=_STRETCH)
        return stretch[key]

    if stretch_src is not None:
        for key in composites:
            hs_stretch(key, stretch_src, step if stretch_src is truth_np else step_c)
    if fi is not None:
        for key in composites:
            lo, hi = hs_stretch(key, hs_np, step_c)
            panels[key].append(plots.Panel("HS(t1), coarse", plots.rgb_image(_pick(hs_np, composites[key][0], step_c), lo, hi)))
        for key, nums, targets in (("true", _MS_TRUE, TRUE_COLOUR_NM), ("false", _MS_FALSE, FALSE_COLOUR_NM)):
            if key not in composites:
                continue
            midx = _ms_bands_for(fi.ms_t1, nums, targets)
            if midx is None:
                ms_panels_note = "MS quicklooks left out: the MS bands have neither Sentinel-2 names nor wavelengths."
                continue
            both = np.concatenate([_pick(ms1_np, midx, step), _pick(ms2_np, midx, step)], axis=2)
            lo, hi = plots.stretch_limits(both, percentiles=_STRETCH)
            mnames = "/".join(str(fi.ms_t1["band"].values[i]) for i in midx)
            panels[key].append(plots.Panel(f"MS(t1) {mnames}", plots.rgb_image(_pick(ms1_np, midx, step), lo, hi)))
            panels[key].append(plots.Panel(f"MS(t2) {mnames}", plots.rgb_image(_pick(ms2_np, midx, step), lo, hi)))
    if truth_np is not None:
        for key in composites:
            lo, hi = hs_stretch(key, truth_np, step)
            panels[key].append(plots.Panel("truth HS(t2)", plots.rgb_image(_pick(truth_np, composites[key][0], step), lo, hi)))

    valid_all = mask_arr.copy() if mask_arr is not None else np.ones(shape, bool)
    margin = max(int(border), ri)
    sample_ref = truth_np
    pixels: list[tuple[int, int, str]] = []
    if sample_ref is not None:
        pixels = _sample_pixels(sample_ref, valid_all, margin=margin, change=change_rel, ratio=ri)

    # --- per prediction ------------------------------------------------------------------------------
    methods: dict[str, dict[str, Any]] = {}
    mae_maps: dict[str, np.ndarray] = {}
    sam_maps: dict[str, np.ndarray] = {}
    spectra: dict[str, np.ndarray] = {}
    from tqdm.auto import tqdm

    for name in tqdm(names, desc="evaluating", unit="prediction", disable=not progress):
        t0 = time.perf_counter()
        p = pred_das[name].values.astype(np.float32)
        entry: dict[str, Any] = {}
        if truth_np is not None:
            entry.update(_metrics.evaluate(p, truth_np, ratio=h_over_l, mask=mask_arr, border=border, block=uiqi_block))
            with np.errstate(invalid="ignore"):
                mae = np.abs(p.astype(np.float64) - truth_np).mean(axis=0)
            if mask_arr is not None:
                mae[~mask_arr] = np.nan
            mae_maps[name] = _reduce_map(mae, step)
            sam_maps[name] = _reduce_map(_metrics.sam_map(p, truth_np, mask=mask_arr), step)
        if fi is not None:
            entry["no_reference"] = no_reference_quality(
                p, hs_np, ms1_np, ms2_np, model=model, mask=mask_arr, change_threshold=change_threshold,
                unchanged=unchanged,
            )
        if runtimes is not None and name in runtimes:
            entry["runtime_s"] = float(runtimes[name])
        entry["source"] = pred_src[name]
        entry["provenance"] = _provenance(pred_das[name].attrs)
        methods[name] = entry
        for key in composites:
            lo, hi = hs_stretch(key, p, step)
            panels[key].append(plots.Panel(name, plots.rgb_image(_pick(p, composites[key][0], step), lo, hi)))
        if not pixels and truth_np is None and name == names[0]:
            pixels = _sample_pixels(p, valid_all, margin=margin, change=change_rel, ratio=ri)
        if pixels:
            spectra[name] = np.stack([p[:, y, x] for y, x, _ in pixels]).astype(np.float64)
        log.info("evaluated %s in %.1f s", name, time.perf_counter() - t0)
        del p

    truth_noref = None
    if truth_np is not None and fi is not None:
        truth_noref = no_reference_quality(
            truth_np, hs_np, ms1_np, ms2_np, model=model, mask=mask_arr, change_threshold=change_threshold,
            unchanged=unchanged,
        )

    # --- notes and conventions -------------------------------------------------------------------
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
    elif truth_np is not None:
        protocol = "evaluation against the given truth (no case.json found: provenance of the truth unknown)"
    else:
        protocol = "real scene without truth: no-reference quality only"
    if truth_np is None:
        all_notes.append("No truth given: only no-reference quality is reported (no full-reference metrics).")
    if fi is None:
        all_notes.append(
            "The fusion inputs were not given: no-reference quality and input quicklooks are left out "
            "(pass inputs= / CLI --inputs or --case)."
        )
    if ms_panels_note:
        all_notes.append(ms_panels_note)
    all_notes += [str(n) for n in notes]

    conventions: dict[str, Any] = {
        "ratio": r,
        "ratio_h_over_l": h_over_l,
        "border": int(border),
        "mask": (str(mask) if isinstance(mask, (str, os.PathLike)) else "array") if mask is not None else None,
        "valid_mask_pixels": int(mask_arr.sum()) if mask_arr is not None else None,
        "data_range": 1.0,
        "uiqi_block": uiqi_block,
        "sam_units": "degrees",
        "psnr_cap_db": _metrics.PSNR_CAP_DB,
        "quicklooks": {
            "true_colour_target_nm": list(TRUE_COLOUR_NM),
            "false_colour_target_nm": list(FALSE_COLOUR_NM),
            "composites": {k: v[1] for k, v in composites.items()},
            "stretch": f"{_STRETCH[0]:g}-{_STRETCH[1]:g} % per channel, from the "
            + ("truth" if truth_np is not None else "HS(t1) input")
            + ", shared by every HS panel; MS panels share one stretch from MS(t1) and MS(t2)",
            "display_step": step,
        },
    }
    if fi is not None:
        conventions["no_reference"] = {
            "change_threshold": float(change_threshold),
            "unchanged_coarse_pixels": int(np.asarray(unchanged).sum()),
            "unchanged_fraction": float(np.asarray(unchanged).mean()),
            "qnr_block": qnr_block(shape[0], shape[1], ri),
            "model": model.describe(),
            "definitions": dict(NO_REFERENCE_DEFINITIONS),
        }

    result: dict[str, Any] = {
        "title": title,
        "dcstsf_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "methods": methods,
        "truth": truth_src if truth_src is not None else ("in memory" if truth_np is not None else None),
        "inputs": ({k: v if v is not None else "in memory" for k, v in input_src.items()} if fi is not None else None),
        "truth_no_reference": truth_noref,
        "bands": {"names": band_names, "wavelength_nm": wl.tolist() if wl is not None else None},
        "sample_pixels": [{"row": y, "col": x, "description": d} for y, x, d in pixels],
        "conventions": conventions,
        "protocol": protocol,
        "case": _jsonable(case_meta) if case_meta else None,
        "notes": all_notes,
    }
    result = _jsonable(result)

    # --- figures and document ---------------------------------------------------------------------
    colors = plots.method_colors(names)
    doc = _build_doc(
        result, names=names, colors=colors, panels=panels, composites=composites, shape=shape, wl=wl,
        mae_maps=mae_maps, sam_maps=sam_maps, spectra=spectra, pixels=pixels, truth_np=truth_np, hs_np=hs_np,
        ratio=ri, runtimes=runtimes is not None, step=step,
    )
    footer = f"Generated by dcstsf {__version__} on {result['created']} in {time.perf_counter() - t_start:.1f} s."

    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    if overwrite:
        for old in fig_dir.glob("*.png"):
            old.unlink()
    files: dict[str, Any] = {"figures": []}
    for fig in doc.figures():
        path = fig_dir / f"{fig.key}.png"
        _atomic_write(path, fig.png)
        files["figures"].append(str(path))
    _atomic_write(out / "metrics.json", json.dumps(result, indent=2, allow_nan=False).encode("utf-8"))
    _atomic_write(out / "report.html", render_html(doc, footer=footer).encode("utf-8"))
    _atomic_write(out / "report.md", render_markdown(doc, figure_dir="figures", footer=footer).encode("utf-8"))
    files.update({"metrics": str(out / "metrics.json"), "html": str(out / "report.html"), "markdown": str(out / "report.md")})
    log.info("report written to %s (%.1f s)", out / "report.html", time.perf_counter() - t_start)
    return dict(result, files=files)


def _build_doc(
    result: Mapping[str, Any],
    *,
    names: list[str],
    colors: Mapping[str, str],
    panels: Mapping[str, list[plots.Panel]],
    composites: Mapping[str, tuple[list[int], str]],
    shape: tuple[int, int],
    wl: np.ndarray | None,
    mae_maps: Mapping[str, np.ndarray],
    sam_maps: Mapping[str, np.ndarray],
    spectra: Mapping[str, np.ndarray],
    pixels: list[tuple[int, int, str]],
    truth_np: np.ndarray | None,
    hs_np: np.ndarray | None,
    ratio: int,
    runtimes: bool,
    step: int,
) -> ReportDoc:
    methods = result["methods"]
    conv = result["conventions"]
    has_truth = truth_np is not None
    has_noref = result.get("inputs") is not None
    disp_shape = (-(-shape[0] // step), -(-shape[1] // step))
    x = wl if wl is not None else np.arange(1, len(result["bands"]["names"]) + 1, dtype=float)
    xlabel = "wavelength (nm)" if wl is not None else "band number"
    sections: list[Section] = []

    meta = [
        ("Predictions", ", ".join(f"{n} ({methods[n]['source'] or 'in memory'})" for n in names)),
        ("Truth", str(result["truth"]) if result["truth"] else "none (no-reference evaluation only)"),
    ]
    if result.get("inputs"):
        meta.append(("Inputs", ", ".join(f"{k}: {v}" for k, v in result["inputs"].items())))
    meta.append(("Grid", f"{shape[0]} x {shape[1]} fine pixels, {len(result['bands']['names'])} bands, ratio {conv['ratio']:g}"))
    meta.append(("Protocol", str(result["protocol"])))

    # Full reference.
    if has_truth:
        cols = list(FULL_REFERENCE_COLUMNS) + ([_RUNTIME_COLUMN] if runtimes else [])
        rows = []
        for n in names:
            cells = []
            for c in cols:
                if c.key == "runtime_s":
                    v = methods[n].get("runtime_s")
                    cells.append((v, json_pointer("methods", n, "runtime_s") if "runtime_s" in methods[n] else None))
                else:
                    cells.append((methods[n]["global"].get(c.key), json_pointer("methods", n, "global", c.key)))
            rows.append(Row(n, cells))
        sec = Section("full-reference", "Full-reference metrics")
        sec.blocks.append(Table("table-full-reference", "Prediction against the truth (best value in bold)", cols, rows))
        sec.blocks.append(Paragraph(
            f"Valid pixels: {methods[names[0]]['conventions']['valid_pixels']} "
            f"(border {conv['border']} px cropped{', mask applied' if conv['mask'] else ''}); ERGAS uses "
            f"h/l = 1/{conv['ratio']:g}; UIQI/Q2n blocks of {conv['uiqi_block']} px."
        ))
        sec.blocks.append(Definitions(_FULL_REF_DEFINITIONS))
        sections.append(sec)

        comp = [
            ("PSNR (dB) \u2191", [methods[n]["global"].get("psnr") for n in names]),
            ("SAM (\u00b0) \u2193", [methods[n]["global"].get("sam_deg") for n in names]),
            ("ERGAS \u2193", [methods[n]["global"].get("ergas") for n in names]),
            ("SSIM \u2191", [methods[n]["global"].get("ssim") for n in names]),
        ]
        if runtimes and all("runtime_s" in methods[n] for n in names):
            comp.append(("time (s)", [methods[n]["runtime_s"] for n in names]))
        sec = Section("comparison", "Method comparison")
        sec.blocks.append(FigureBlock(
            "comparison", "Method comparison",
            "Global full-reference metrics side by side (arrows: which direction is better). Where all values "
            "are close, the axis does not start at 0.",
            plots.comparison_figure(names, [(k, [np.nan if v is None else v for v in vals]) for k, vals in comp],
                                    colors=colors, title="Full-reference metrics by method"),
        ))
        sections.append(sec)

        series = {
            n: {k: np.asarray([np.nan if v is None else v for v in methods[n]["per_band"][k]], float)
                for k in ("psnr", "sam_contribution", "rmse")}
            for n in names
        }
        sec = Section("per-band", "Per-band quality")
        sec.blocks.append(FigureBlock(
            "per_band", "Per-band PSNR, SAM contribution and RMSE",
            f"Against {xlabel}; lines break across spectral gaps (absorption bands). The SAM contribution of a "
            "band is the mean of (p_b/|p| - r_b/|r|)^2: the bands where the spectral shape is wrong.",
            plots.per_band_figure(
                x, series, panels=[("psnr", "PSNR (dB)"), ("sam_contribution", "SAM contribution"), ("rmse", "RMSE")],
                colors=colors, xlabel=xlabel, title="Per-band quality",
            ),
        ))
        sections.append(sec)

    # Quicklooks.
    sec = Section("quicklooks", "Quicklooks")
    for key, label in (("true", "True colour"), ("false", "False colour")):
        if key in composites and panels.get(key):
            sec.blocks.append(FigureBlock(
                f"quicklook_{key}", f"{label} quicklooks",
                f"Red/green/blue = {composites[key][1]}. Stretch: {conv['quicklooks']['stretch']}. HS(t1) is shown "
                "with its coarse pixels."
                + (f" Displayed every {step} pixels." if step > 1 else ""),
                plots.quicklook_figure(panels[key], shape=shape, title=f"{label} ({composites[key][1]})"),
            ))
    if "false" not in composites:
        sec.blocks.append(Paragraph("No false-colour quicklook: the cube has no band within 60 nm of 860 nm."))
    if not composites:
        sec.blocks = [Paragraph("No quicklooks: the cube has fewer than three bands.")]
    sections.append(sec)

    # Error maps.
    if has_truth:
        sec = Section("error-maps", "Error maps")
        finite = np.concatenate([m[np.isfinite(m)] for m in mae_maps.values()]) if mae_maps else np.array([])
        vmax = float(np.percentile(finite, _MAP_PERCENTILE)) if finite.size else 1.0
        sec.blocks.append(FigureBlock(
            "error_abs", "Absolute error",
            "Mean over bands of |prediction - truth| per pixel (reflectance); one colour scale for all methods "
            f"(0 to the {_MAP_PERCENTILE:g}th percentile over all of them; brighter values saturate).",
            plots.map_figure(mae_maps, shape=disp_shape, title="Mean absolute error over bands",
                             label="|pred - truth| (reflectance)", vmax=vmax, cmap="magma"),
        ))
        finite = np.concatenate([m[np.isfinite(m)] for m in sam_maps.values()]) if sam_maps else np.array([])
        vmax = float(np.percentile(finite, _MAP_PERCENTILE)) if finite.size else 1.0
        sec.blocks.append(FigureBlock(
            "error_sam", "Spectral angle",
            "Spectral angle between predicted and true spectra per pixel (degrees); one colour scale for all "
            f"methods (0 to the {_MAP_PERCENTILE:g}th percentile). Dark targets such as water have large angles.",
            plots.map_figure(sam_maps, shape=disp_shape, title="Spectral angle (SAM map)", label="angle (\u00b0)",
                             vmax=vmax, cmap="viridis"),
        ))
        sections.append(sec)

    # Spectra.
    if pixels and spectra:
        ref = ("truth", np.stack([truth_np[:, y, xx] for y, xx, _ in pixels]).astype(np.float64)) if has_truth else None
        coarse = (np.stack([hs_np[:, y // ratio, xx // ratio] for y, xx, _ in pixels]).astype(np.float64)
                  if hs_np is not None else None)
        loc_key = "true" if "true" in composites else None
        locator = next((p.image for p in panels.get(loc_key, []) if p.label == "truth HS(t2)"), None) if loc_key else None
        if locator is None and loc_key:
            locator = panels[loc_key][-1].image
        if locator is None:
            locator = np.zeros((disp_shape[0], disp_shape[1], 4))
        sec = Section("spectra", "Spectra at sample pixels")
        sec.blocks.append(FigureBlock(
            "spectra", "Spectra at sample pixels",
            "Pixels at the 10th, 50th and 90th percentile of band-mean reflectance"
            + (" and the pixel of largest MS change" if any(d == "largest MS change" for *_, d in pixels) else "")
            + "; truth in black, HS(t1) of the covering coarse pixel dashed grey.",
            plots.spectra_figure(x, pixels, spectra, colors=colors, reference=ref, coarse=coarse, locator=locator,
                                 shape=shape, xlabel=xlabel, title="Spectra, prediction against truth"
                                 if has_truth else "Predicted spectra"),
        ))
        sections.append(sec)

    # No reference.
    if has_noref:
        nconv = conv["no_reference"]
        cols = [Column(f"{g}.{c.key}", c.label, c.digits, c.better) for g, c in NO_REFERENCE_COLUMNS]
        rows = []
        for n in names:
            nr = methods[n]["no_reference"]
            rows.append(Row(n, [(nr[g].get(c.key), json_pointer("methods", n, "no_reference", g, c.key))
                                for g, c in NO_REFERENCE_COLUMNS]))
        if result.get("truth_no_reference"):
            nr = result["truth_no_reference"]
            rows.append(Row("truth (reference level)", [(nr[g].get(c.key), json_pointer("truth_no_reference", g, c.key))
                                                        for g, c in NO_REFERENCE_COLUMNS], ranked=False))
        sec = Section("no-reference", "No-reference quality")
        sec.blocks.append(Paragraph(
            "Without a truth (real scenes), a prediction can still be checked against what the sensors observed: "
            "degraded back through the sensor model it should reproduce MS(t2), and HS(t1) where nothing "
            "changed between the dates. The QNR indices are given for comparison with the pansharpening "
            "literature, with the caveats below."
        ))
        sec.blocks.append(Table("table-no-reference", "Consistency with the observed inputs (best value in bold)", cols, rows))
        sec.blocks.append(Paragraph(
            f"Unchanged coarse pixels (relative MS change < {nconv['change_threshold']:g}): "
            f"{nconv['unchanged_coarse_pixels']} ({100 * nconv['unchanged_fraction']:.1f} %). QNR blocks of "
            f"{nconv['qnr_block']} fine px. Observation model: HS {nconv['model']['hs_sensor']}, MS "
            f"{nconv['model']['ms_sensor']} ({', '.join(nconv['model']['ms_bands'])}), ratio {nconv['model']['ratio']}."
            + (" The truth row shows what a perfect prediction scores (noise, model approximation and, for QNR, "
               "the real change limit it); it is not ranked." if result.get("truth_no_reference") else "")
        ))
        sec.blocks.append(Definitions(list(NO_REFERENCE_DEFINITIONS.items())))
        comp = [
            ("MS(t2) PSNR (dB) \u2191", [methods[n]["no_reference"]["ms_t2_reproduction"]["psnr"] for n in names]),
            ("HS(t1) PSNR, unchanged (dB) \u2191",
             [methods[n]["no_reference"]["hs_t1_reproduction_unchanged"]["psnr"] for n in names]),
            ("QNR \u2191", [methods[n]["no_reference"]["qnr"]["qnr"] for n in names]),
        ]
        sec.blocks.append(FigureBlock(
            "no_reference", "No-reference comparison",
            "MS(t2) reproduction, HS(t1) reproduction on unchanged pixels and QNR by method. Where all values "
            "are close, the axis does not start at 0.",
            plots.comparison_figure(names, [(k, [np.nan if v is None else v for v in vals]) for k, vals in comp],
                                    colors=colors, title="No-reference quality by method"),
        ))
        sections.append(sec)

    # Conventions.
    sec = Section("conventions", "Conventions")
    items = [
        ("Ratio", f"{conv['ratio']:g} (coarse/fine pixel size); ERGAS h/l = {conv['ratio_h_over_l']:.6g}"),
        ("Border", f"{conv['border']} pixels cropped from each side for the full-reference metrics"),
        ("Mask", str(conv["mask"]) if conv["mask"] else "none"),
        ("Data range", "1.0 (reflectance in [0, 1]); PSNR capped at 100 dB per band"),
        ("Validity", "a pixel counts only if every band of prediction and truth is finite (and the mask allows)"),
        ("Protocol", str(result["protocol"])),
        ("Numbers", "this page shows rounded values; metrics.json has them in full"),
    ]
    sec.blocks.append(Definitions(items))
    sections.append(sec)
    return ReportDoc(title=str(result["title"]), meta=meta, notes=list(result["notes"]), sections=sections)

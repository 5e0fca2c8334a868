"""Inputs of a quality report: predictions, truth, fusion inputs and mask, loaded and checked to agree.

:func:`load_inputs` turns what :func:`~dcstsf.report.evaluate_predictions` was given (DataArrays, NumPy
arrays or raster paths) into one :class:`EvaluationInputs`: cubes ``(band, y, x)`` on one grid, the
fusion inputs cropped to their common footprint, the observation model, the resolution ratio, the
validity mask and the ``case.json`` metadata of a simulated case.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel

if TYPE_CHECKING:
    from dcstsf.engine import FusionInputs

__all__ = [
    "EvaluationInputs",
    "SensorHints",
    "aligned_cube",
    "find_case_meta",
    "load_inputs",
    "load_mask",
]

log = logging.getLogger(__name__)

_INPUT_KEYS = ("hs_t1", "ms_t1", "ms_t2")

#: ``{name: cube or raster path}``, a list of raster paths, or one raster path.
PredictionsLike = Mapping[str, Any] | Sequence[Any] | str | os.PathLike[str]


@dataclass(frozen=True)
class SensorHints:
    """Sensor names given by the caller, as for :func:`dcstsf.fuse` (``None`` = not given)."""

    hs_sensor: Any = None
    ms_sensor: Any = None
    ms_bands: Sequence[str] | str | None = None


@dataclass(frozen=True)
class EvaluationInputs:
    """Everything a report scores, loaded and checked.

    Attributes
    ----------
    predictions, sources
        ``{name: cube}`` (possibly Dask-backed) and ``{name: file path or None}``.
    truth, truth_source
        The fine HS(t2) truth and its file, ``None`` without truth.
    fusion_inputs, input_sources
        HS(t1), MS(t1), MS(t2) cropped to their common footprint (``None`` when not given) and their files.
    model
        The observation model of the fusion inputs (or the one given), ``None`` without either.
    case_meta
        ``case.json`` metadata of a simulated case, ``None`` when unknown.
    ratio
        Coarse/fine resolution ratio r >= 1.
    mask, mask_label
        Boolean ``(y, x)`` validity (True = evaluate) and how it was given (path or ``"array"``).
    border
        Pixels cropped from each side for the full-reference metrics.
    truth_t1, truth_t1_source
        The fine HS truth at t1 of a simulated case (where the simulated change moved the truth) and its
        file, ``None`` when not known.
    uncertainty, uncertainty_sources
        ``{prediction name: per-pixel standard deviation}`` (``(band or 1, y, x)`` on the predictions'
        grid) and their files.

    Cubes given as files are opened lazily (Dask); nothing here reads their pixels.
    """

    predictions: dict[str, xr.DataArray]
    sources: dict[str, str | None]
    truth: xr.DataArray | None
    truth_source: str | None
    fusion_inputs: FusionInputs | None
    input_sources: dict[str, str | None]
    model: ObservationModel | None
    case_meta: Mapping[str, Any] | None
    ratio: float
    mask: np.ndarray | None
    mask_label: str | None
    border: int
    truth_t1: xr.DataArray | None = None
    truth_t1_source: str | None = None
    uncertainty: dict[str, xr.DataArray] = field(default_factory=dict)
    uncertainty_sources: dict[str, str | None] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Prediction names, in the order given."""
        return list(self.predictions)

    @property
    def first(self) -> xr.DataArray:
        """The first prediction: its grid, bands and coordinates stand for all of them."""
        return self.predictions[self.names[0]]

    @property
    def shape(self) -> tuple[int, int]:
        """``(y, x)`` size of the fine grid."""
        return (self.first.sizes["y"], self.first.sizes["x"])

    @property
    def n_bands(self) -> int:
        """Number of HS bands of the predictions."""
        return int(self.first.sizes["band"])

    @property
    def int_ratio(self) -> int:
        """:attr:`ratio` rounded to the integer the grids use."""
        return int(round(self.ratio))

    @property
    def h_over_l(self) -> float:
        """ERGAS's fine/coarse pixel size, ``1 / ratio``."""
        return 1.0 / self.ratio

    @property
    def wavelengths(self) -> np.ndarray | None:
        """HS band centres (nm): the truth's or the predictions' coordinate, else the model's sensor."""
        for da in ([self.truth] if self.truth is not None else []) + [self.first]:
            if "wavelength" in da.coords:
                return np.asarray(da["wavelength"].values, float)
        if self.model is not None and self.model.n_hs == self.n_bands:
            return np.asarray(self.model.hs_sensor.centers_nm, float)
        return None

    @property
    def band_names(self) -> list[str]:
        """HS band names of the predictions (``band_<i>`` when they carry none)."""
        if "band" in self.first.coords:
            return [str(b) for b in self.first["band"].values]
        return [f"band_{i + 1}" for i in range(self.n_bands)]


# --------------------------------------------------------------------------------------------- loading
def _as_cube(da: Any, label: str) -> xr.DataArray:
    """A DataArray ``(band, y, x)`` from a DataArray or a NumPy array."""
    if isinstance(da, np.ndarray):
        if da.ndim != 3:
            raise DcstsfInputError(f"{label}: expected a (band, y, x) array, got shape {da.shape}")
        return xr.DataArray(da, dims=("band", "y", "x"))
    if not isinstance(da, xr.DataArray):
        raise DcstsfInputError(
            f"{label}: expected a DataArray, a NumPy array or a raster path, got {type(da).__name__}"
        )
    if set(da.dims) != {"band", "y", "x"}:
        raise DcstsfInputError(
            f"{label}: DataArray has dims {tuple(da.dims)}, expected ('band', 'y', 'x'); rename them "
            "(e.g. da.rename({'wavelength': 'band'}))"
        )
    return da.transpose("band", "y", "x")


def _load(x: Any, label: str) -> tuple[xr.DataArray, str | None]:
    """(cube, source path or None) for a DataArray, NumPy array or raster path (opened lazily)."""
    if isinstance(x, (str, os.PathLike)):
        from dcstsf.io import open_raster

        p = Path(x).expanduser()
        if not p.exists():
            raise DcstsfInputError(f"{p}: {label} not found. Check the path")
        return _as_cube(open_raster(p, chunks=True), f"{label} {p}"), str(p)
    return _as_cube(x, label), None


def _offset(part: np.ndarray, whole: np.ndarray) -> int | None:
    """Where the coordinates ``part`` start in ``whole`` (a contiguous run of them), else ``None``."""
    if part.size == 0 or part.size > whole.size:
        return None
    i = int(np.argmin(np.abs(whole - part[0])))
    step = float(np.median(np.abs(np.diff(whole)))) if whole.size > 1 else 1.0
    if i + part.size <= whole.size and np.allclose(whole[i:i + part.size], part, rtol=0.0, atol=1e-6 * step):
        return i
    return None


def _reopened(da: xr.DataArray, chunks_y: tuple[int, ...], chunks_x: tuple[int, ...]) -> Any:
    """``da``'s pixels read from its file in the given chunks (``None`` when it is not the file's cube)."""
    from dcstsf._arrays import is_dask
    from dcstsf.io import open_raster

    src = da.encoding.get("source")
    if not src or not is_dask(da.data) or not Path(src).exists():
        return None
    full = open_raster(src, chunks=True)
    if full.sizes["band"] != da.sizes["band"] or "y" not in da.coords or "x" not in da.coords:
        return None
    oy = _offset(np.asarray(da["y"].values, float), np.asarray(full["y"].values, float))
    ox = _offset(np.asarray(da["x"].values, float), np.asarray(full["x"].values, float))
    if oy is None or ox is None:
        return None

    def around(offset: int, inner: tuple[int, ...], n: int) -> tuple[int, ...]:
        rest = n - offset - sum(inner)
        return tuple(c for c in ((offset,) if offset else ()) + inner + ((rest,) if rest else ()))

    again = open_raster(src, chunks={"band": -1, "y": around(oy, chunks_y, full.sizes["y"]),
                                     "x": around(ox, chunks_x, full.sizes["x"])})
    return again.data[:, oy:oy + da.sizes["y"], ox:ox + da.sizes["x"]]


def aligned_cube(da: xr.DataArray, grid: Any, *, scale: int = 1) -> Any:
    """``da`` ``(band, y, x)`` as a Dask array chunked on the tile grid's chunk edges (``scale`` times coarser).

    A cube read lazily from a file is opened again in those chunks (so that each pixel is read once, by
    the tile that needs it, instead of whole file blocks per tile); in-memory cubes are wrapped without a
    copy; other Dask arrays are rechunked.
    """
    from dcstsf.metrics.stream import aligned

    again = _reopened(da, grid.chunks(0, scale=scale), grid.chunks(1, scale=scale))
    if again is not None:
        return again
    return aligned(da.data, grid, scale=scale)


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
            raise DcstsfInputError(
                f"{p}: cannot read the mask ({exc}). Give a single-band raster, non-zero = valid"
            ) from exc
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
        raise DcstsfInputError(
            f"{label}: mask is {m.shape[0]}x{m.shape[1]} pixels but the images are {shape[0]}x{shape[1]}"
        )
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
    """The coarse/fine resolution ratio r (>= 1): given, else the model's, else the predictions' attrs."""
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
            raise DcstsfInputError(f"ratio must be a number (the coarse/fine resolution factor, e.g. 3), got {ratio!r}")
        r = float(ratio)
        if not math.isfinite(r) or r <= 0:
            raise DcstsfInputError(f"ratio must be a positive number (e.g. 3), got {ratio!r}")
        if r < 1:
            # Given as h/l (ERGAS convention): store the resolution ratio.
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
    explicit: SensorHints, case_meta: Mapping[str, Any] | None, preds: Mapping[str, xr.DataArray]
) -> SensorHints:
    """Explicit sensor hints, completed from ``case.json``, else from the predictions' attrs."""
    from dcstsf import sensors as _sensors

    hs, ms, bands = explicit.hs_sensor, explicit.ms_sensor, explicit.ms_bands
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
    return SensorHints(hs, ms, bands)


def _load_predictions(preds: PredictionsLike) -> tuple[dict[str, xr.DataArray], dict[str, str | None]]:
    """Named prediction cubes and their files; all on the first one's grid with its band count."""
    if isinstance(preds, Mapping):
        items = list(preds.items())
    elif isinstance(preds, (str, os.PathLike)):
        items = list(zip(_unique_names([preds]), [preds]))
    else:
        plist = list(preds)
        items = list(zip(_unique_names(plist), plist))
    if not items:
        raise DcstsfInputError("no prediction to evaluate; give at least one")
    cubes: dict[str, xr.DataArray] = {}
    sources: dict[str, str | None] = {}
    for name, p in items:
        cubes[str(name)], sources[str(name)] = _load(p, f"prediction {name!r}")
    names = list(cubes)
    first = cubes[names[0]]
    nb = first.sizes["band"]
    for n in names[1:]:
        _check_same_grid(cubes[n], first, f"prediction {n!r}", f"prediction {names[0]!r}")
        if cubes[n].sizes["band"] != nb:
            raise DcstsfInputError(f"prediction {n!r} has {cubes[n].sizes['band']} bands, {names[0]!r} has {nb}")
        _check_same_bands(cubes[n], first, f"prediction {n!r}", f"prediction {names[0]!r}")
    return cubes, sources


#: Band centres further apart than this (nm) are not the same bands.
_SAME_BAND_NM = 5.0


def _check_same_bands(a: xr.DataArray, b: xr.DataArray, a_label: str, b_label: str) -> None:
    """An error when both cubes give band wavelengths and those differ: the metrics compare band by band."""
    if "wavelength" not in a.coords or "wavelength" not in b.coords:
        return
    wa, wb = (np.asarray(c["wavelength"].values, float) for c in (a, b))
    if wa.shape != wb.shape or not (np.isfinite(wa).all() and np.isfinite(wb).all()):
        return
    diff = np.abs(wa - wb)
    if diff.max() > _SAME_BAND_NM:
        i = int(np.flatnonzero(diff > _SAME_BAND_NM)[0])
        raise DcstsfInputError(
            f"{a_label} and {b_label} hold other bands: band {i + 1} is at {wa[i]:g} nm in one and {wb[i]:g} nm in "
            f"the other ({int((diff > _SAME_BAND_NM).sum())} bands differ by more than {_SAME_BAND_NM:g} nm), and "
            "the metrics compare band by band; resample them to the same sensor's bands"
        )


def _load_truth(truth: Any, first: xr.DataArray, first_name: str) -> tuple[xr.DataArray | None, str | None]:
    """The truth on the predictions' grid with their band count, or ``(None, None)``."""
    if truth is None:
        return None, None
    truth_da, truth_src = _load(truth, "truth")
    _check_same_grid(first, truth_da, f"prediction {first_name!r}", "the truth")
    nb = first.sizes["band"]
    if truth_da.sizes["band"] != nb:
        raise DcstsfInputError(
            f"the truth has {truth_da.sizes['band']} bands but the predictions have {nb}; give the truth "
            "resampled to the predicted HS sensor (dcstsf simulate writes hs_t2_truth.tif so)"
        )
    _check_same_bands(first, truth_da, f"prediction {first_name!r}", "the truth")
    return truth_da, truth_src


def _integer_ratio(ratio: float | None) -> int | None:
    """``ratio`` when it is a whole number >= 1 (what :func:`validate_inputs` accepts), else ``None``."""
    if ratio is not None and float(ratio) >= 1 and abs(float(ratio) - round(float(ratio))) < 1e-9:
        return int(round(float(ratio)))
    return None


def load_inputs(
    preds: PredictionsLike,
    truth: Any,
    *,
    ratio: float | None,
    mask: Any,
    border: int,
    inputs: Mapping[str, Any] | None,
    model: ObservationModel | None,
    sensors: SensorHints,
    case_meta: Mapping[str, Any] | None,
    truth_t1: Any = None,
    uncertainty: Any = None,
) -> EvaluationInputs:
    """Load and check everything :func:`~dcstsf.report.evaluate_predictions` was given.

    Raises
    ------
    DcstsfInputError
        No prediction, grids or band counts that do not match, neither truth nor inputs, an unknown or
        inconsistent ratio, a bad mask or border.
    """
    cubes, sources = _load_predictions(preds)
    names = list(cubes)
    first = cubes[names[0]]
    nb = first.sizes["band"]
    truth_da, truth_src = _load_truth(truth, first, names[0])

    input_src: dict[str, str | None] = {}
    fi = None
    if inputs is not None:
        missing = set(_INPUT_KEYS) - set(inputs)
        if missing:
            raise DcstsfInputError(f"inputs needs hs_t1, ms_t1 and ms_t2; missing {', '.join(sorted(missing))}")
        loaded = {}
        for key in _INPUT_KEYS:
            loaded[key], input_src[key] = _load(inputs[key], key.upper().replace("_T", "(t") + ")")
        if case_meta is None:
            case_meta = find_case_meta(truth_src, input_src.get("hs_t1"), *sources.values())
        from dcstsf.engine import validate_inputs

        hints = _sensor_hints(sensors, case_meta, cubes) if model is None else SensorHints()
        fi = validate_inputs(
            loaded["hs_t1"], loaded["ms_t1"], loaded["ms_t2"], hs_sensor=hints.hs_sensor,
            ms_sensor=hints.ms_sensor, ms_bands=hints.ms_bands, ratio=_integer_ratio(ratio), model=model,
        )
        model = fi.model
        _check_same_grid(first, fi.ms_t1, f"prediction {names[0]!r}", "the MS inputs (cropped to the HS footprint)")
        if nb != model.n_hs:
            raise DcstsfInputError(
                f"the predictions have {nb} bands but the HS sensor {model.hs_sensor.name} of the inputs has "
                f"{model.n_hs}"
            )
        _check_same_bands(first, fi.hs_t1, f"prediction {names[0]!r}", "HS(t1) of the inputs")
    elif truth_da is None:
        raise DcstsfInputError(
            "nothing to evaluate against: give the truth, or the fusion inputs (hs_t1, ms_t1, ms_t2) for "
            "no-reference quality"
        )
    if case_meta is None:
        case_meta = find_case_meta(truth_src, *sources.values())

    r = _resolve_ratio(ratio, model, cubes, names[0])
    shape = (first.sizes["y"], first.sizes["x"])
    mask_arr = load_mask(mask, shape) if mask is not None else None
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
        raise DcstsfInputError(f"border must be a non-negative number of pixels, got {border!r}")
    mask_label = None
    if mask is not None:
        mask_label = str(mask) if isinstance(mask, (str, os.PathLike)) else "array"
    t1, t1_src = (None, None)
    if truth_da is not None:
        t1, t1_src = _load_truth_t1(truth_t1, case_meta, first, names[0])
    sd, sd_src = _load_uncertainty(uncertainty, cubes, names)
    return EvaluationInputs(
        predictions=cubes, sources=sources, truth=truth_da, truth_source=truth_src, fusion_inputs=fi,
        input_sources=input_src, model=model, case_meta=case_meta, ratio=r, mask=mask_arr, mask_label=mask_label,
        border=int(border), truth_t1=t1, truth_t1_source=t1_src, uncertainty=sd, uncertainty_sources=sd_src,
    )


def _load_truth_t1(
    truth_t1: Any, case_meta: Mapping[str, Any] | None, first: xr.DataArray, first_name: str
) -> tuple[xr.DataArray | None, str | None]:
    """The fine truth at t1: given, else the ``hs_t1_truth`` file a ``case.json`` lists next to it."""
    if truth_t1 is None and case_meta and case_meta.get("case_json") and isinstance(case_meta.get("files"), Mapping):
        name = case_meta["files"].get("hs_t1_truth")
        candidate = Path(str(case_meta["case_json"])).parent / str(name) if name else None
        if candidate is not None and candidate.is_file():
            truth_t1 = candidate
    if truth_t1 is None:
        return None, None
    da, src = _load(truth_t1, "truth at t1")
    label = f"the truth at t1 ({src})" if src else "the truth at t1"
    _check_same_grid(first, da, f"prediction {first_name!r}", label)
    if da.sizes["band"] != first.sizes["band"]:
        raise DcstsfInputError(
            f"{label} has {da.sizes['band']} bands but the predictions have {first.sizes['band']}; give the case's "
            "hs_t1_truth.tif (truth_t1=)"
        )
    return da, src


def _load_uncertainty(
    uncertainty: Any, cubes: Mapping[str, xr.DataArray], names: Sequence[str]
) -> tuple[dict[str, xr.DataArray], dict[str, str | None]]:
    """``{prediction name: standard deviation}`` from one raster (for the first prediction) or a mapping."""
    if uncertainty is None:
        return {}, {}
    items = dict(uncertainty) if isinstance(uncertainty, Mapping) else {names[0]: uncertainty}
    out: dict[str, xr.DataArray] = {}
    srcs: dict[str, str | None] = {}
    for name, raw in items.items():
        if name not in cubes:
            raise DcstsfInputError(
                f"uncertainty given for {name!r}, which is not a prediction ({', '.join(names)}); key "
                "uncertainty= by prediction name"
            )
        da, src = _load(raw, f"uncertainty of {name!r}")
        label = f"the uncertainty {src}" if src else f"the uncertainty of {name!r}"
        _check_same_grid(cubes[name], da, f"prediction {name!r}", label)
        nb = cubes[name].sizes["band"]
        if da.sizes["band"] not in (1, nb):
            raise DcstsfInputError(
                f"{label} has {da.sizes['band']} bands; give one standard deviation per band of the prediction "
                f"({nb}) or one band for all (CLI --uncertainty SD.tif, Python uncertainty=)"
            )
        out[name], srcs[name] = da, src
    return out, srcs

"""Whether an input's values are plausible surface reflectance, judged from a cheap sample.

A file read with the wrong scale, offset or nodata value decodes without error into numbers no surface
reflects: digital numbers read as reflectance (hundreds to thousands), an undeclared fill value (-9999,
65535, -32768) in some pixels, or a scale and offset applied to a file that already holds reflectance
(everything near -0.1). Fusion then runs to the end and writes garbage. :func:`check_reflectance_values`
looks at a bounded sample of one input and says which of these the values show and which option fixes
it; :func:`raise_or_warn` turns the findings for all inputs into one error or warnings.

A shift of every value by about +0.1 (Sentinel-2 L2A of processing baseline 04.00 or later read without
its -0.1 offset) stays inside the plausible range and cannot be told from the values alone; it is not
looked for here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from dcstsf.engine.sources import input_label
from dcstsf.errors import DcstsfInputError
from dcstsf.io.decoding import REFLECTANCE_LOW_LIMIT, REFLECTANCE_SANITY_LIMIT

__all__ = [
    "ERROR_FRACTION",
    "FILL_MAGNITUDE",
    "MAX_SAMPLED_BANDS",
    "PLAUSIBLE_RANGE",
    "READ_FACTOR",
    "WARNING_FRACTION",
    "ValueCheck",
    "check_reflectance_values",
    "raise_or_warn",
]

#: Values outside this range are not surface reflectance: atmospheric correction leaves dark water and
#: shadow a few hundredths below zero, and even snow, clouds and glint rarely exceed 1.2.
PLAUSIBLE_RANGE = (REFLECTANCE_LOW_LIMIT, REFLECTANCE_SANITY_LIMIT)
#: More than this fraction of the sampled values outside :data:`PLAUSIBLE_RANGE` is an error: no real
#: scene has 1 % of its values there, an encoding problem (scale, offset, fill value) has.
ERROR_FRACTION = 0.01
#: More than this fraction outside :data:`PLAUSIBLE_RANGE` is a warning: a few glinting or over-corrected
#: pixels stay below it, a small undeclared fill patch or saturated area does not.
WARNING_FRACTION = 0.001
#: A value at or beyond +/-1000 is never reflectance, however badly scaled: any such value is an error.
FILL_MAGNITUDE = 1000.0
#: At most this many bands, spread over the cube, are sampled: scale and fill values are properties of the
#: file shared by its bands, and the budget is better spent on more pixels.
MAX_SAMPLED_BANDS = 32
#: A value repeated at least this often, holding most of the implausible values, marks a fill value.
_MIN_REPEATS = 3
#: A repeated fill value lies far outside the range real reflectance tails reach (e.g. -1, -0.9999 for
#: -9999 x 0.0001, 6.5535 for a saturated 65535 x 0.0001), not just beyond it.
_FILL_OUTSIDE = (-0.5, 2.0)
#: A pixel exactly 0 in every sampled band is fill when at least this many bands were sampled.
_MIN_ZERO_BANDS = 3
#: Typical values up to this (99th percentile) are percent reflectance or radiance rather than digital
#: numbers: quantised reflectance (x 10 000) of any real scene has its brightest percent well above it.
_PERCENT_LIMIT = 150.0
#: A Dask array is read up to this many times the sample size (in values, all bands of a chunk counted):
#: whole when it is that small, else in that many values' worth of chunks (at least 3 x 3 of them).
READ_FACTOR = 32
#: Chunk rows and columns sampled from a Dask array: at least 3 (edges and middle, where fill frames and
#: scene content are), at most 7, each spread from the first to the last.
_MIN_SPREAD, _MAX_SPREAD = 3, 7


@dataclass(frozen=True)
class ValueCheck:
    """What :func:`check_reflectance_values` found for one input.

    Attributes
    ----------
    label
        The input's name and file (:func:`dcstsf.engine.sources.input_label`).
    n_values
        Number of finite values sampled (NaN and +/-Inf are nodata and not counted).
    fraction_below, fraction_above
        Fractions of those values below and above :data:`PLAUSIBLE_RANGE`.
    low, high
        Smallest and largest sampled value (NaN when nothing was sampled).
    suspected_fill
        A single value, far outside reflectance, holding most of the values that far out: an undeclared
        fill value (None when there is none, or when the values show a different problem).
    severity
        ``"ok"``, ``"warning"`` or ``"error"``.
    message
        What was found and, unless ``"ok"``, the fix: the CLI option and the Python keyword.
    """

    label: str
    n_values: int
    fraction_below: float
    fraction_above: float
    low: float
    high: float
    suspected_fill: float | None
    severity: str
    message: str


def _spread(n: int, k: int) -> list[int]:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, min(n, k))})


def _stride(h: int, w: int, budget: int) -> int:
    """The smallest step that keeps an ``h`` x ``w`` area to at most ``budget`` pixels."""
    step = max(1, math.ceil(math.sqrt(h * w / max(budget, 1))))
    while math.ceil(h / step) * math.ceil(w / step) > max(budget, 1):
        step += 1
    return step


def _bounds(chunks: Sequence[int], k: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``k`` chunks of one axis spread from the first to the last (all when fewer)."""
    edges = np.concatenate([[0], np.cumsum(chunks)]).astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in _spread(len(chunks), k)]


def _sample(data: object, bands: list[int], budget: int) -> np.ndarray:
    """At most ``budget`` values of ``data`` ``(band, y, x)`` in the given bands, as ``(bands, pixels)``.

    A Dask array no larger than :data:`READ_FACTOR` x ``budget`` values is strided as a whole; a larger
    one is sampled in k x k of its chunks spread from edge to edge (3 <= k <= 7, as many as fit that
    many values, but always 3 x 3), each strided to its share of the budget: only those chunks are
    computed, never the whole scene. Any other array is strided as a whole (a view of an in-memory
    array; a lazy backend array reads just the strided pixels).
    """
    nb = len(bands)
    try:
        import dask.array as dsa
    except ImportError:  # Dask is optional for in-memory inputs
        dsa = None
    if dsa is not None and isinstance(data, dsa.Array):
        import dask

        sel = data if nb == data.shape[0] else data[bands]
        h, w = int(data.shape[1]), int(data.shape[2])
        if data.size <= READ_FACTOR * budget:
            blocks = [((0, h), (0, w))]
        else:
            # Computing a chunk computes all its bands, so the cost is counted over every band.
            block = int(data.shape[0]) * max(data.chunks[1]) * max(data.chunks[2])
            k = _MIN_SPREAD
            while k < _MAX_SPREAD and (k + 1) ** 2 * block <= READ_FACTOR * budget:
                k += 1
            blocks = [(ys, xs) for ys in _bounds(data.chunks[1], k) for xs in _bounds(data.chunks[2], k)]
        per_block = budget // (len(blocks) * nb)
        parts = []
        for (y0, y1), (x0, x1) in blocks:
            step = _stride(y1 - y0, x1 - x0, per_block)
            parts.append(sel[:, y0:y1:step, x0:x1:step])
        computed = dask.compute(*parts)
        return np.concatenate([np.asarray(p, dtype=np.float64).reshape(nb, -1) for p in computed], axis=1)
    arr = data
    h, w = int(arr.shape[1]), int(arr.shape[2])  # type: ignore[attr-defined]
    step = _stride(h, w, budget // nb)
    # Strided first: a view of an in-memory array, so the band selection copies only the sample.
    strided = np.asarray(arr[:, ::step, ::step])  # type: ignore[index]
    picked = strided[bands] if nb != strided.shape[0] else strided
    return np.asarray(picked, dtype=np.float64).reshape(nb, -1)


def _number(value: float) -> str:
    """``value`` as the shortest text that reads back to the same float32 (``-9999``, ``-0.9999``)."""
    text = str(np.float32(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class _Options:
    """The CLI options and Python keywords that fix one input's decoding."""

    scale: str
    offset: str
    nodata: str
    scale_kw: str
    offset_kw: str
    nodata_kw: str


def _options(role: str) -> _Options:
    if role == "source":  # the real cube of `dcstsf simulate` (Python: dcstsf.open_raster's keywords)
        return _Options("--scale", "--offset", "--nodata", "scale", "offset", "nodata")
    if role not in ("hs", "ms"):
        raise ValueError(f"role must be 'hs', 'ms' or 'source', got {role!r}")
    return _Options(f"--{role}-scale", f"--{role}-offset", f"--{role}-nodata", f"{role}_scale", f"{role}_offset",
                    f"{role}_nodata")


def _fill_fix(value: float, opt: _Options) -> str:
    v = _number(value)
    fix = (
        f"Declare it as nodata: {opt.nodata} {v} (Python {opt.nodata_kw}={v}, or nodata={v} in "
        f"dcstsf.io.open_raster; for an array in memory da.where(da != {v}))"
    )
    if abs(value) < FILL_MAGNITUDE:
        # A fill value seen after a scale was applied: the option wants the number stored in the file.
        fix += f"; the option takes the stored number, i.e. ({v} - offset) / scale when the file has a scale"
    return fix


def _concentration(raw: np.ndarray, bad: np.ndarray, names: list[str]) -> str:
    """``" (mostly in bands ...)"`` when the implausible values sit in some of the sampled bands only."""
    per_band = bad.sum(axis=1) / np.maximum(np.isfinite(raw).sum(axis=1), 1)
    worst = [names[i] for i in np.argsort(-per_band) if per_band[i] > ERROR_FRACTION]
    if not worst or len(worst) == len(names):
        return ""
    more = ", ..." if len(worst) > 5 else ""
    return f" (mostly in bands {', '.join(worst[:5])}{more})"


def check_reflectance_values(da: xr.DataArray, *, name: str, role: str, sample: int = 200_000) -> ValueCheck:
    """Judge from a bounded sample whether ``da`` holds plausible surface reflectance.

    Parameters
    ----------
    da
        One input, ``(band, y, x)`` (a 2-D array is one band), NumPy- or Dask-backed; NaN is nodata.
    name
        Its name in messages, e.g. ``"MS(t1)"``; the file it came from is added when known.
    role
        ``"hs"`` or ``"ms"``: which options the fix names (``--hs-scale``/``hs_scale=``, ...); ``"source"``
        for the real cube of ``dcstsf simulate`` (``--scale``, ``--offset``, ``--nodata``).
    sample
        At most this many values are sampled, in up to :data:`MAX_SAMPLED_BANDS` bands spread over the
        cube. An in-memory array is strided as a whole (a small one is taken whole). Of a Dask array at
        most about :data:`READ_FACTOR` x ``sample`` values are computed (a small array strided whole, a
        large one in 3 x 3 to 7 x 7 chunks spread from edge to edge, each strided to its share), but at
        least 3 x 3 chunks, however large they are.

    Returns
    -------
    ValueCheck
        The findings; nothing is raised or warned (see :func:`raise_or_warn`).

    Notes
    -----
    The rules, applied to the finite sampled values (``PLAUSIBLE_RANGE`` is [-0.05, 1.5]):

    * a *fill value* is one value at or below -0.5 or at or above 2, repeated at least 3 times (once
      suffices at or beyond +/-1000), that holds at least half of the sampled values that far out. It
      is an error suggesting the nodata option with that value, unless most values are the fill value
      and the others do not look like reflectance either (then the rules below name the problem);
      all sampled values one such number is an error too;
    * a median above 1.5: *stored numbers without a scale*, an error. With the 99th percentile up to
      150 the values are percent reflectance (scale 0.01) or radiance, beyond it digital numbers
      (scale 0.0001 for reflectance stored x 10 000, and for Sentinel-2 L2A of processing baseline
      04.00 or later the offset -0.1);
    * a median below -0.05: a scale and offset applied to values that already are reflectance, or a
      wrong offset; an error;
    * any value at or beyond +/-1000: an error (fill values, or unscaled numbers in part of the image);
    * pixels exactly 0 in every sampled band (at least 3 bands sampled): an undeclared fill value 0, an
      error above :data:`ERROR_FRACTION` of the sampled pixels, a warning above :data:`WARNING_FRACTION`;
    * otherwise more than :data:`ERROR_FRACTION` (1 %) of the values outside the range is an error,
      more than :data:`WARNING_FRACTION` (0.1 %) a warning, and anything less is ok.

    All values shifted by about +0.1 (a missing Sentinel-2 offset) stay plausible and are not looked for.
    """
    opt = _options(role)
    label = input_label(da, name)
    if da.ndim == 2:
        da = da.expand_dims("band")
    elif da.ndim != 3:
        raise DcstsfInputError(f"{label} has dims {tuple(da.dims)}; expected (band, y, x)")
    elif set(da.dims) == {"band", "y", "x"}:
        da = da.transpose("band", "y", "x")
    nb = int(da.shape[0])
    bands = _spread(nb, MAX_SAMPLED_BANDS)
    names = [str(v) for v in da["band"].values[bands]] if "band" in da.coords else [str(i + 1) for i in bands]
    raw = _sample(da.data, bands, sample) if da.size > 0 else np.empty((len(bands), 0))
    finite = np.isfinite(raw)
    vals = raw[finite]
    n = int(vals.size)
    lo_lim, hi_lim = PLAUSIBLE_RANGE
    if n == 0:
        return ValueCheck(label, 0, 0.0, 0.0, math.nan, math.nan, None, "ok",
                          f"{label}: no valid values in the sample (all nodata); nothing to judge")
    below, above = vals < lo_lim, vals > hi_lim
    fb, fa = float(below.mean()), float(above.mean())
    low, high = float(vals.min()), float(vals.max())
    median = float(np.median(vals))
    seen = f"{n} sampled values"

    def result(severity: str, message: str, fill: float | None = None) -> ValueCheck:
        return ValueCheck(label, n, fb, fa, low, high, fill, severity, f"{label}: {message}")

    # The fill-value candidate: the most common value far outside reflectance, when it holds most of those
    # (glint just above 1.5 or an over-corrected tail just below -0.05 does not dilute it).
    far = vals[(vals <= _FILL_OUTSIDE[0]) | (vals >= _FILL_OUTSIDE[1])]
    fill: float | None = None
    if far.size:
        uniq, counts = np.unique(far, return_counts=True)
        mode, count = float(uniq[np.argmax(counts)]), int(counts.max())
        if 2 * count >= far.size and (count >= _MIN_REPEATS or abs(mode) >= FILL_MAGNITUDE):
            fill = mode
    rest = vals[vals != fill] if fill is not None else vals
    if fill is not None and rest.size == 0:
        return result(
            "error",
            f"all {seen} are {_number(fill)}: an undeclared fill value (or a constant image), not reflectance. "
            + _fill_fix(fill, opt),
            fill,
        )
    fill_problem = (
        f"{_number(fill)} makes up {1.0 - rest.size / n:.2%} of {seen} (values from {low:.4g} to {high:.4g}); "
        "a single value this far outside reflectance is an undeclared fill value. "
        if fill is not None
        else ""
    )

    if not lo_lim <= median <= hi_lim:
        if fill is not None and lo_lim <= float(np.median(rest)) <= hi_lim:
            return result("error", fill_problem + _fill_fix(fill, opt), fill)
        p1, p99 = (float(v) for v in np.percentile(vals, [1.0, 99.0]))
        spread = f"1st-99th percentile {p1:.4g} to {p99:.4g} in {seen}"
        if median > hi_lim and p99 <= _PERCENT_LIMIT:
            return result(
                "error",
                f"typical values are about {median:.4g} ({spread}): percent reflectance (0-100), or radiance, "
                f"not reflectance in [0, 1]. For percent reflectance pass {opt.scale} 0.01 (Python "
                f"{opt.scale_kw}=0.01); radiance must be converted to surface reflectance first",
            )
        if median > hi_lim:
            s2 = (
                f"; for Sentinel-2 L2A of processing baseline 04.00 or later also {opt.offset} -0.1 "
                f"({opt.offset_kw}=-0.1)"
                if role == "ms"
                else ""
            )
            return result(
                "error",
                f"typical values are about {median:.4g} ({spread}), far beyond reflectance in [0, 1]: stored "
                f"digital numbers without a scale. Pass {opt.scale} 0.0001 (Python {opt.scale_kw}=0.0001) for "
                f"reflectance stored x 10 000, or the scale the product documents{s2}",
            )
        return result(
            "error",
            f"typical values are about {median:.4g} ({spread}; {fb:.1%} below {lo_lim:g}), below any "
            "reflectance: a scale and offset applied to values that already are reflectance (e.g. 0.0001 and "
            f"-0.1 to a float file), or a wrong offset. Drop {opt.scale} and {opt.offset} (Python "
            f"{opt.scale_kw}=, {opt.offset_kw}=) for a file that stores reflectance; otherwise check them "
            "against the product documentation",
        )

    bad = (raw < lo_lim) | (raw > hi_lim)
    where = _concentration(raw, bad, names)
    extreme = np.abs(vals) >= FILL_MAGNITUDE
    if extreme.any():
        if fill is not None:
            return result("error", fill_problem + _fill_fix(fill, opt), fill)
        return result(
            "error",
            f"{extreme.mean():.2%} of {seen} lie at or beyond +/-{FILL_MAGNITUDE:g} (values from {low:.4g} to "
            f"{high:.4g}){where}, which no reflectance comes near: several fill values, or unscaled numbers in "
            f"part of the image. Declare the fill value with {opt.nodata} (Python {opt.nodata_kw}=) or set "
            f"those pixels to NaN; check {opt.scale} ({opt.scale_kw}=) of the bands concerned",
        )
    if fill is not None:
        return result("error", fill_problem + _fill_fix(fill, opt), fill)
    # An undeclared fill value 0 (a swath edge, a frame) lies inside the range, but no surface reflects
    # exactly 0 in every sampled band across the spectrum.
    whole = np.isfinite(raw).all(axis=0)
    n_px = int(whole.sum())
    zero = whole & (raw == 0.0).all(axis=0)
    fz = float(zero.sum()) / n_px if n_px and len(bands) >= _MIN_ZERO_BANDS else 0.0
    if fz > WARNING_FRACTION:
        return result(
            "error" if fz > ERROR_FRACTION else "warning",
            f"{fz:.2%} of the {n_px} sampled pixels are exactly 0 in all {len(bands)} sampled bands, which no "
            "surface reflects: an undeclared fill value 0 (a swath edge or a frame). " + _fill_fix(0.0, opt),
            0.0,
        )
    out_fraction = fb + fa
    if out_fraction <= WARNING_FRACTION:
        return result(
            "ok",
            f"{seen}, {fb:.2%} below {lo_lim:g} and {fa:.2%} above {hi_lim:g}: plausible reflectance",
        )
    severity = "error" if out_fraction > ERROR_FRACTION else "warning"
    problem = (
        f"{fb:.2%} of {seen} are below {lo_lim:g} (lowest {low:.3g}) and {fa:.2%} above {hi_lim:g} (highest "
        f"{high:.3g}){where}; real surface reflectance leaves at most a few per mille of its values outside "
        f"[{lo_lim:g}, {hi_lim:g}]"
    )
    if fb >= fa:
        fix = (
            f"Check the offset ({opt.offset}, Python {opt.offset_kw}=): one applied to values that need none "
            f"shifts dark pixels below zero; declare any fill value with {opt.nodata} ({opt.nodata_kw}=)"
        )
    else:
        fix = (
            f"Check the scale ({opt.scale}, Python {opt.scale_kw}=) of the bands concerned, and declare any fill "
            f"or saturation value with {opt.nodata} ({opt.nodata_kw}=)"
        )
    return result(severity, f"{problem}. {fix}")


def raise_or_warn(checks: Sequence[ValueCheck]) -> None:
    """Raise one :class:`DcstsfInputError` joining every error, or else emit one UserWarning per warning.

    Raises
    ------
    DcstsfInputError
        When any check has severity ``"error"``; the message lists all of them, one per line.
    """
    errors = [c.message for c in checks if c.severity == "error"]
    if errors:
        raise DcstsfInputError("\n".join(errors))
    for c in checks:
        if c.severity == "warning":
            warnings.warn(c.message, UserWarning, stacklevel=2)

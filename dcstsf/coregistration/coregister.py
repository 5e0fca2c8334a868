"""Co-registration of the HS cube to the MS grid: estimate the displacement field, then resample the HS.

Input: the HS cube on the coarse grid (reprojected onto the MS grid with its pixel corners on MS pixel
corners, at the integer ratio ``r``), MS(t1) on the fine grid and, optionally, MS(t2). Real HS geolocation
is off by a fraction of a pixel to several pixels, and its error varies across a scene; this step measures
it before fusion. The scene diagnosis (:mod:`dcstsf.diagnosis.psf`) then has only a small global sub-pixel
shift left to fit.

Work happens on the coarse grid, where both sensors can be compared:

- the *target* ``R HS``: the HS cube seen through the MS spectral responses of the observation model
  (only the HS bands the responses use; a NaN in one of them makes the pixel nodata);
- the *reference*: each MS date taken to the HS grid by the model's ``ms_to_coarse`` (``D B_hs``), with the
  model's HS shift set to zero: the displacement is measured against the nominal grid, not against a
  shift the diagnosis may already have estimated.

Steps (:func:`estimate_coregistration`): a global shift from one large central window (the whole-pixel
starting point of every tie point; an error when it exceeds the search range), tie points on a regular
grid by sub-pixel phase correlation (:mod:`~dcstsf.coregistration.tiepoints`), quality limits, a robust
fit of the field (:mod:`~dcstsf.coregistration.field`), and checks that enough tie points survived.
:func:`apply_coregistration` resamples the HS cube (:mod:`~dcstsf.coregistration.warp`), keeping its grid.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dcstsf._arrays import is_dask, is_xarray
from dcstsf.coregistration.field import fit_robust
from dcstsf.coregistration.options import CoregistrationOptions
from dcstsf.coregistration.result import Coregistration
from dcstsf.coregistration.tiepoints import TiePoints, match_tie_point, tie_point_grid
from dcstsf.coregistration.warp import Resampler
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel, blur_radius

__all__ = [
    "CoregistrationImages",
    "apply_coregistration",
    "coregister",
    "coregistration_images",
    "estimate_coregistration",
]

#: Pixel sizes must give the model's ratio within this relative tolerance.
_RATIO_RTOL = 1e-6
#: HS pixel corners must lie on MS pixel corners within this fraction of an MS pixel.
_CORNER_TOL = 1e-3
#: Bytes of fine MS held at once while taking the MS to the HS grid.
_STRIP_BYTES = 64 * 2**20
#: The fix for an HS cube that is not on the MS grid.
_REGRID_FIX = (
    "reproject the HS cube onto the MS grid with its pixel corners on MS pixel corners at the integer ratio "
    "(dcstsf.engine.grids.reproject, or align='reproject' / CLI --align reproject) before co-registration"
)


def _label(x: Any, name: str) -> str:
    """``name`` plus the file the input was read from, when known."""
    src = x.encoding.get("source") if is_xarray(x) else None
    return f"{name} ({src})" if src else name


def _data(x: Any) -> Any:
    """The ``(band, y, x)`` array behind ``x`` (NumPy or Dask), without reading it."""
    if is_xarray(x):
        if set(x.dims) != {"band", "y", "x"}:
            raise DcstsfInputError(f"expected dims (band, y, x), got {x.dims}; name the dims band, y and x")
        return x.transpose("band", "y", "x").data
    return x if is_dask(x) else np.asarray(x)


def _transform(x: Any, name: str) -> Any:
    if not is_xarray(x) or "x" not in x.coords or "y" not in x.coords:
        return None
    try:
        return x.rio.transform(recalc=True)
    except Exception as exc:  # rioxarray raises on single-pixel axes without a stored transform
        raise DcstsfInputError(
            f"{_label(x, name)}: cannot derive the pixel grid from its x/y coordinates ({exc}); write the transform "
            "with da.rio.write_transform(...) or pass NumPy arrays on matching grids"
        ) from exc


def _crs(x: Any) -> Any:
    if not is_xarray(x):
        return None
    try:
        return x.rio.crs
    except Exception:  # arrays without spatial dims
        return None


@dataclass(frozen=True)
class _Placement:
    """Where the HS grid lies on the MS grid: the fine ``(row, col)`` of the HS origin in the MS arrays."""

    offset: tuple[int, int]
    transform: Any
    crs: Any


def _place(hs: Any, ms: Any, ms_name: str, *, ratio: int) -> _Placement:
    """Check that the HS grid is the MS grid coarsened by ``ratio`` (corners on MS corners) and that they overlap."""
    hs_label, ms_label = _label(hs, "HS(t1)"), _label(ms, ms_name)
    _, h, w = _data(hs).shape
    _, hm, wm = _data(ms).shape
    ht, mt = _transform(hs, "HS(t1)"), _transform(ms, ms_name)
    hc, mc = _crs(hs), _crs(ms)
    if ht is None or mt is None:
        if (hm, wm) != (h * ratio, w * ratio):
            raise DcstsfInputError(
                f"{ms_label} is {hm}x{wm} pixels but {hs_label} {h}x{w} at ratio {ratio} needs {h * ratio}x{w * ratio}; "
                "without georeferencing the grids must match exactly: crop the MS to the HS footprint, or pass "
                "DataArrays with CRS and transform"
            )
        return _Placement((0, 0), ht, hc)
    if hc is not None and mc is not None and hc != mc:
        raise DcstsfInputError(f"{hs_label} is in {hc} but {ms_label} in {mc}; {_REGRID_FIX}")
    for t, lab in ((ht, hs_label), (mt, ms_label)):
        if abs(t.b) > 1e-12 * abs(t.a) or abs(t.d) > 1e-12 * abs(t.e):
            raise DcstsfInputError(f"{lab} has a rotated grid ({t}); {_REGRID_FIX}")
    rx, ry = ht.a / mt.a, ht.e / mt.e
    if abs(rx - ratio) > _RATIO_RTOL * ratio or abs(ry - ratio) > _RATIO_RTOL * ratio:
        raise DcstsfInputError(
            f"{hs_label} pixels ({abs(ht.a):g} x {abs(ht.e):g}) are {rx:.6g} x {ry:.6g} times the {ms_label} pixels "
            f"({abs(mt.a):g} x {abs(mt.e):g}), not the model's ratio {ratio}; {_REGRID_FIX}"
        )
    oy, ox = (ht.f - mt.f) / mt.e, (ht.c - mt.c) / mt.a
    # footprints in MS pixels: HS rows [oy, oy + h r), MS rows [0, hm); likewise columns
    if oy >= hm or ox >= wm or oy + h * ratio <= 0 or ox + w * ratio <= 0:
        hb = (ht.c, ht.f + ht.e * h, ht.c + ht.a * w, ht.f)
        mb = (mt.c, mt.f + mt.e * hm, mt.c + mt.a * wm, mt.f)
        raise DcstsfInputError(
            f"{hs_label} and {ms_label} do not overlap: bounds {tuple(round(v, 3) for v in hb)} and "
            f"{tuple(round(v, 3) for v in mb)} (left, bottom, right, top) in {hc or 'the same units'}; give images "
            "of the same area"
        )
    iy, ix = round(oy), round(ox)
    if abs(oy - iy) > _CORNER_TOL or abs(ox - ix) > _CORNER_TOL:
        raise DcstsfInputError(
            f"{hs_label} pixel corners lie ({oy - iy:+.3f}, {ox - ix:+.3f}) {ms_label} pixels off the MS pixel "
            f"corners; {_REGRID_FIX}"
        )
    return _Placement((int(iy), int(ix)), ht, hc)


@dataclass(frozen=True)
class CoregistrationImages:
    """The images compared, on the coarse grid, float32 ``(n_ms, H, W)`` (NaN = nodata).

    ``target`` is ``R HS(t1)``; ``references`` maps ``"ms_t1"`` (and ``"ms_t2"``) to that MS date taken to
    the HS grid; ``transform`` and ``crs`` are the HS grid's (``None`` for plain arrays).
    """

    target: np.ndarray
    references: dict[str, np.ndarray]
    transform: Any = None
    crs: Any = None


def _target(hs: Any, model: ObservationModel) -> np.ndarray:
    """``R HS`` over the HS bands the responses use, ``(n_ms, H, W)`` float64."""
    data = _data(hs)
    if data.shape[0] != model.n_hs:
        raise DcstsfInputError(
            f"{_label(hs, 'HS(t1)')} has {data.shape[0]} bands but the HS sensor {model.hs_sensor.name} has "
            f"{model.n_hs}; pass the cube with the sensor's bands (or the model of its sensor)"
        )
    srf = np.asarray(model.srf, dtype=np.float64)
    used = np.flatnonzero(np.any(srf != 0.0, axis=0))
    _, h, w = data.shape
    sub = data[used].reshape(used.size, h * w)
    if is_dask(sub):
        import dask.array as da

        out = np.asarray(da.tensordot(srf[:, used], sub.astype(np.float64), axes=1).compute())
    else:
        out = srf[:, used] @ np.asarray(sub, dtype=np.float64)
    out[:, ~np.all(np.isfinite(out), axis=0)] = np.nan
    return out.reshape(-1, h, w).astype(np.float32)


def _fine_rows(data: Any, offset: tuple[int, int], rows: tuple[int, int], width: int) -> np.ndarray:
    """Fine rows ``rows`` of the MS on the HS footprint (``width`` fine columns), float32, NaN off the MS."""
    oy, ox = offset
    f0, f1 = rows
    _, hm, wm = data.shape
    out = np.full((data.shape[0], f1 - f0, width), np.nan, dtype=np.float32)
    ys, ye, xs, xe = max(f0 + oy, 0), min(f1 + oy, hm), max(ox, 0), min(width + ox, wm)
    if ys < ye and xs < xe:
        out[:, ys - oy - f0 : ye - oy - f0, xs - ox : xe - ox] = np.asarray(data[:, ys:ye, xs:xe], dtype=np.float32)
    out[~np.isfinite(out)] = np.nan
    return out


def _reference(ms: Any, name: str, model: ObservationModel, place: _Placement, shape: tuple[int, int]) -> np.ndarray:
    """One MS date taken to the HS grid by ``ms_to_coarse`` (no HS shift), ``(n_ms, H, W)`` float32.

    Computed in strips of coarse rows with a halo of the blur's reach, so only a strip of the fine MS is in
    memory; the halo's replicated edge padding only reaches rows that are dropped, so the strips give the
    whole-image result.
    """
    data = _data(ms)
    if data.shape[0] != model.n_ms:
        raise DcstsfInputError(
            f"{_label(ms, name)} has {data.shape[0]} bands but the model declares {model.n_ms} MS bands "
            f"({', '.join(model.ms_sensor.band_names)}); pass those bands in that order"
        )
    r = model.ratio
    h, w = shape
    nominal = dataclasses.replace(model, hs_shift=(0.0, 0.0))
    halo = -(-blur_radius(nominal.ms_to_coarse_psf) // r)
    per_strip = max(1, _STRIP_BYTES // (4 * model.n_ms * w * r * r))
    out = np.empty((model.n_ms, h, w), dtype=np.float32)
    for i0 in range(0, h, per_strip):
        i1 = min(h, i0 + per_strip)
        a0, a1 = max(0, i0 - halo), min(h, i1 + halo)
        fine = _fine_rows(data, place.offset, (a0 * r, a1 * r), w * r)
        with torch.no_grad():
            coarse = nominal.ms_to_coarse(torch.from_numpy(fine)).numpy()
        out[:, i0:i1] = coarse[:, i0 - a0 : i1 - a0]
    return out


def coregistration_images(
    hs_t1: Any, ms_t1: Any, *, model: ObservationModel, ms_t2: Any | None = None
) -> CoregistrationImages:
    """The target ``R HS(t1)`` and the references (each MS date taken to the HS grid), after the grid checks."""
    place = _place(hs_t1, ms_t1, "MS(t1)", ratio=model.ratio)
    _, h, w = _data(hs_t1).shape
    refs = {"ms_t1": _reference(ms_t1, "MS(t1)", model, place, (h, w))}
    if ms_t2 is not None:
        place2 = _place(hs_t1, ms_t2, "MS(t2)", ratio=model.ratio)
        refs["ms_t2"] = _reference(ms_t2, "MS(t2)", model, place2, (h, w))
    return CoregistrationImages(_target(hs_t1, model), refs, place.transform, place.crs)


#: Least fraction of the central window with data in both images for the initial global estimate.
_GLOBAL_MIN_VALID = 0.5


def _initial_shift(
    reference: np.ndarray, target: np.ndarray, reader: Resampler, options: CoregistrationOptions
) -> tuple[tuple[float, float] | None, float, float]:
    """``u`` measured like a tie point on the largest central square (up to ``global_window``), searched over
    the whole window, with its peak ratio and correlation; ``None`` when that window does not settle."""
    _, h, w = target.shape
    size = min(options.global_window, h, w) // 2 * 2
    u, peak, corr, _ = match_tie_point(
        reference, target, reader=reader, corner=((h - size) // 2, (w - size) // 2), window=size, guess=(0, 0),
        search=size / 2 - 1, max_iterations=options.max_iterations, min_valid_fraction=_GLOBAL_MIN_VALID,
    )
    return u, peak, corr


def _measure(
    reference: np.ndarray,
    target: np.ndarray,
    corners: tuple[np.ndarray, np.ndarray],
    *,
    guess: tuple[int, int],
    source: str,
    reader: Resampler,
    options: CoregistrationOptions,
) -> TiePoints:
    """Tie points of one reference against the target, classified by the quality limits."""
    rows0, cols0 = corners
    n = rows0.size
    shift = np.full((n, 2), np.nan)
    peak = np.full(n, np.nan)
    corr = np.full(n, np.nan)
    frac = np.zeros(n)
    status = np.empty(n, dtype="<U12")
    search = min(options.window // 2 - 1, math.ceil(2 * options.max_shift))
    for k in range(n):
        u, pr, cc, vf = match_tie_point(
            reference, target, reader=reader, corner=(int(rows0[k]), int(cols0[k])), window=options.window,
            guess=guess, search=search, max_iterations=options.max_iterations,
            min_valid_fraction=options.min_valid_fraction,
        )
        peak[k], corr[k], frac[k] = pr, cc, vf
        if u is None:
            status[k] = "nodata" if vf < options.min_valid_fraction else "no_match"
            continue
        shift[k] = u
        if not (pr >= options.min_peak_ratio and cc >= options.min_correlation):
            status[k] = "low_quality"
        elif max(abs(u[0]), abs(u[1])) > options.max_shift:
            status[k] = "out_of_range"
        else:
            status[k] = "candidate"
    half = options.window / 2.0 - 0.5
    return TiePoints(
        row=rows0 + half, col=cols0 + half, shift=shift, peak_ratio=peak, correlation=corr, valid_fraction=frac,
        source=np.full(n, source, dtype="<U6"), status=status, residual=np.full((n, 2), np.nan),
    )


def _too_few(
    kept: int, tie_points: TiePoints, options: CoregistrationOptions, *, stage: str, inputs: str
) -> DcstsfInputError:
    counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in tie_points.counts().items())
    if np.mean(tie_points.status == "out_of_range") > 0.5:
        why = (
            f"Most tie points lie beyond the search range max_shift={options.max_shift:g}: if the shift is that "
            "large, raise it (CoregistrationOptions(max_shift=...), with a window of at least four times the shift)"
        )
    elif np.mean(tie_points.status == "nodata") > 0.5:
        why = (
            "Most matching windows hold too little data in both images: mask less (only clouds, shadows and fill "
            "values should be NaN) and check that the images cover the same area"
        )
    else:
        why = (
            "The images do not match: check that they show the same scene, that clouds and fill values are nodata "
            "(NaN), and that the MS bands and the observation model are the right ones"
        )
    return DcstsfInputError(
        f"co-registration of {inputs}: only {kept} usable tie points {stage} (of {len(tie_points)}: {counts}), fewer "
        f"than min_tie_points={options.min_tie_points}. {why}; for a small scene use smaller, denser windows "
        "(CoregistrationOptions(window=..., spacing=...)) or lower min_tie_points"
    )


def estimate_coregistration(
    hs_t1: Any,
    ms_t1: Any,
    *,
    model: ObservationModel,
    ms_t2: Any | None = None,
    options: CoregistrationOptions | None = None,
) -> Coregistration:
    """Measure the displacement of the HS cube against the MS grid.

    Parameters
    ----------
    hs_t1
        ``(n_hs, H, W)`` on the coarse grid: a DataArray (NumPy- or Dask-backed; CRS and transform are
        checked against the MS grid) or an array. NaN is nodata.
    ms_t1, ms_t2
        ``(n_ms, H r, W r)`` on the fine grid, the model's MS bands in its order; with georeferencing the
        MS may cover more or less than the HS (only the overlap is used). ``ms_t2`` adds tie points
        (``options.use_ms_t2``).
    model
        The observation model: ``R`` and the HS blur of ``ms_to_coarse`` (its ``hs_shift`` is ignored).
    options
        Window, grid, search range, field model, outlier and quality limits (default
        :class:`CoregistrationOptions`).

    Returns
    -------
    Coregistration
        The field, the tie points and their statistics; :meth:`Coregistration.apply` corrects a cube.

    Raises
    ------
    DcstsfInputError
        The grids do not fit (CRS, pixel size, corners) or do not overlap; the images share too little
        data; the global shift exceeds ``options.max_shift``; too few tie points are usable (the images do
        not match: another scene, mostly cloud, wrong bands).
    """
    options = options or CoregistrationOptions()
    use_t2 = ms_t2 if options.use_ms_t2 else None
    images = coregistration_images(hs_t1, ms_t1, model=model, ms_t2=use_t2)
    target = images.target
    ref1 = images.references["ms_t1"]
    labels = {"ms_t1": _label(ms_t1, "MS(t1)"), "ms_t2": _label(ms_t2, "MS(t2)")}
    inputs = f"{_label(hs_t1, 'HS(t1)')} to " + " and ".join(labels[k] for k in images.references)
    _, h, w = target.shape
    common = np.all(np.isfinite(target), axis=0) & np.all(np.isfinite(ref1), axis=0)
    if int(common.sum()) < options.window**2:
        small = h < options.window or w < options.window
        why = (f"the scene ({h} x {w} coarse pixels) is smaller than one window" if small
               else "the images' data do not overlap enough")
        raise DcstsfInputError(
            f"{_label(hs_t1, 'HS(t1)')} and {labels['ms_t1']} share only {int(common.sum())} coarse pixels with "
            f"data, fewer than one {options.window} x {options.window} matching window: {why}. "
            + ("Use a smaller window (CoregistrationOptions(window=...)) or inputs already co-registered"
               if small else
               "Give images of the same area (and check the nodata masks), or a smaller window "
               "(CoregistrationOptions(window=...))")
        )
    notes: list[str] = []
    reader = Resampler(target, resampling="spline")
    initial, peak, corr = _initial_shift(ref1, target, reader, options)
    if initial is not None and peak >= options.min_peak_ratio and corr >= options.min_correlation:
        if max(abs(initial[0]), abs(initial[1])) > options.max_shift:
            need = math.ceil(max(abs(initial[0]), abs(initial[1]))) + 1
            raise DcstsfInputError(
                f"the {_label(hs_t1, 'HS(t1)')} to {labels['ms_t1']} shift is about ({initial[0]:+.1f}, "
                f"{initial[1]:+.1f}) coarse pixels (dy, dx), beyond the search range max_shift={options.max_shift:g}: "
                "reproject the HS with better georeferencing, or, if a shift that large is real, raise the range "
                f"(CoregistrationOptions(max_shift={need}, window=...) with a window of at least four times the shift)"
            )
        guess = (int(round(initial[0])), int(round(initial[1])))
    else:
        initial = None
        guess = (0, 0)
        notes.append("the central window gave no clear global match: tie points were searched around zero shift")
    margin = max(abs(guess[0]), abs(guess[1]))
    spacing = options.spacing
    corners = tie_point_grid((h, w), window=options.window, spacing=spacing, margin=margin)
    while corners[0].size > options.max_tie_points:
        spacing = math.ceil(spacing * math.sqrt(corners[0].size / options.max_tie_points))
        corners = tie_point_grid((h, w), window=options.window, spacing=spacing, margin=margin)
    if spacing != options.spacing:
        notes.append(
            f"tie-point spacing widened from {options.spacing} to {spacing} pixels to keep at most "
            f"{options.max_tie_points} tie points per MS date (CoregistrationOptions(max_tie_points=...))"
        )
    if corners[0].size == 0:
        raise DcstsfInputError(
            f"{_label(hs_t1, 'HS(t1)')} ({h} x {w} coarse pixels) holds no {options.window}-pixel matching window "
            f"with a {margin}-pixel margin; use a smaller window (CoregistrationOptions(window=...))"
        )
    tie_points = TiePoints.concatenate([
        _measure(ref, target, corners, guess=guess, source=name, reader=reader, options=options)
        for name, ref in images.references.items()
    ])
    candidate = tie_points.status == "candidate"
    if int(candidate.sum()) < options.min_tie_points:
        raise _too_few(int(candidate.sum()), tie_points, options, stage="passed the quality limits", inputs=inputs)
    fit = fit_robust(
        tie_points.row, tie_points.col, np.where(candidate[:, None], tie_points.shift, np.nan),
        shape=(h, w), model=options.field, degree=options.degree, smoothing=options.smoothing,
        threshold=options.outlier_threshold, min_scale=options.min_residual_scale,
    )
    notes.extend(fit.notes)
    tie_points = tie_points.with_fit(fit.field(tie_points.row, tie_points.col).T, fit.inlier)
    kept = int(np.sum(tie_points.status == "kept"))
    if kept < options.min_tie_points:
        raise _too_few(kept, tie_points, options, stage="remained after outlier rejection", inputs=inputs)
    result = Coregistration(
        field=fit.field, tie_points=tie_points, ratio=model.ratio, options=options, transform=images.transform,
        crs=None if images.crs is None else str(images.crs), initial_shift=initial, notes=tuple(notes),
    )
    dy, dx = result.shift_px
    if max(abs(dy), abs(dx)) > options.max_shift:
        raise DcstsfInputError(
            f"the fitted global shift of {inputs} is ({dy:+.2f}, {dx:+.2f}) coarse pixels, beyond the search range "
            f"max_shift={options.max_shift:g}; raise it (CoregistrationOptions(max_shift=...)) if the shift is real"
        )
    return result


def apply_coregistration(hs_t1: Any, coregistration: Coregistration, *, resampling: str | None = None) -> Any:
    """``hs_t1`` resampled by the estimated field on its own coarse grid (see :meth:`Coregistration.apply`)."""
    _, h, w = _data(hs_t1).shape
    if (h, w) != coregistration.field.shape:
        raise DcstsfInputError(
            f"{_label(hs_t1, 'HS(t1)')} is {h}x{w} pixels but the co-registration was estimated on a "
            f"{coregistration.field.shape[0]}x{coregistration.field.shape[1]} grid; apply it to the cube it was "
            "estimated from"
        )
    return coregistration.apply(hs_t1, resampling=resampling)


def coregister(
    hs_t1: Any,
    ms_t1: Any,
    *,
    model: ObservationModel,
    ms_t2: Any | None = None,
    options: CoregistrationOptions | None = None,
) -> tuple[Any, Coregistration]:
    """Estimate the displacement (:func:`estimate_coregistration`) and resample ``hs_t1`` by it.

    Returns the corrected cube (the kind of ``hs_t1``; a DataArray keeps its grid, CRS and attributes and
    gains the ``coregistration`` attribute) and the :class:`Coregistration`. Fuse the cube with
    ``coregistration.observation_model(model)`` (or with the scene diagnosis' estimated physics): with the
    default ``global_subpixel="model"`` the sub-pixel part of the global shift is left to the model.
    """
    result = estimate_coregistration(hs_t1, ms_t1, model=model, ms_t2=ms_t2, options=options)
    return result.apply(hs_t1), result

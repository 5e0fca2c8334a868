"""Grid geometry of the inputs: CRS, affine transforms, the integer ratio, pixel sizes, reprojection.

The pixel-corner convention of ``docs/design.md`` holds throughout: coarse pixel ``(i, j)`` covers fine
pixels ``[i*r:(i+1)*r, j*r:(j+1)*r]`` and the grids share their top-left corner. The checks that apply
these rules to three inputs are in :mod:`dcstsf.engine.inputs`; this module holds the pieces they use.

Reprojection (``align="reproject"``) resamples MS(t2) onto the MS(t1) grid (bilinear) and HS(t1) onto the
coarse grid aligned with MS(t1) (pixel-area average), with rioxarray. It runs in memory (rioxarray loads
the data), so for scenes larger than memory bring the inputs onto one grid beforehand: ``dcstsf prepare``
does it lazily for delivered products (:mod:`dcstsf.preparation`), and odc-geo/rioxarray reprojection
does it for other rasters (MS at 10 m, HS at 30 m, pixel corners on a common 10 m lattice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dcstsf.engine.sources import input_label
from dcstsf.errors import DcstsfInputError
from dcstsf.units import metres_per_unit

__all__ = [
    "CORNER_TOL",
    "RATIO_RTOL",
    "REPROJECT_FIX",
    "AlignedGrids",
    "as_integer",
    "crs_of",
    "grid_gsd_m",
    "ratio_from_grids",
    "reproject",
    "resolution_text",
    "same_grid",
    "transform_of",
]

#: Pixel sizes must give an integer ratio within this relative tolerance.
RATIO_RTOL = 1e-6
#: Pixel corners must coincide within this fraction of an MS pixel (float noise in coordinates).
CORNER_TOL = 1e-4
#: The fix for every misalignment, in both spellings (Python and command line).
REPROJECT_FIX = "pass align='reproject' (CLI --align reproject)"


@dataclass(frozen=True)
class AlignedGrids:
    """The three inputs on consistent grids, and what was done to bring them there.

    ``ms_offset``/``hs_offset`` are the ``(row, col)`` of the output's first pixel in the original MS
    arrays and of the first used HS pixel in the original HS array (``None`` after reprojection).
    """

    hs_t1: xr.DataArray
    ms_t1: xr.DataArray
    ms_t2: xr.DataArray
    ratio: int
    ms_offset: tuple[int, int] | None
    hs_offset: tuple[int, int] | None
    notes: tuple[str, ...] = field(default_factory=tuple)


def crs_of(da: xr.DataArray) -> Any:
    """The CRS of ``da`` (``None`` for plain pixel grids)."""
    try:
        return da.rio.crs
    except Exception:  # rioxarray raises on arrays without spatial dims/coords
        return None


def transform_of(da: xr.DataArray, name: str) -> Any:
    """The affine transform from coordinates (or stored GeoTransform); ``None`` without coordinates."""
    if "x" not in da.coords or "y" not in da.coords:
        return None
    try:
        return da.rio.transform(recalc=True)
    except Exception as exc:  # single-pixel axes without a stored transform
        raise DcstsfInputError(
            f"{input_label(da, name)}: cannot derive the pixel grid from its x/y coordinates ({exc}); write the "
            "transform with da.rio.write_transform(...) or drop the x/y coordinates to use a plain pixel grid"
        ) from exc


def resolution_text(t: Any) -> str:
    """A transform's pixel size as ``"30 x 30"`` for messages."""
    return f"{abs(t.a):g} x {abs(t.e):g}"


def as_integer(value: float, *, tol: float) -> int | None:
    """``value`` as an integer when it is one within ``tol``, else ``None``."""
    n = round(value)
    return int(n) if abs(value - n) <= tol else None


def ratio_from_grids(hs_t: Any, ms_t: Any, hs: xr.DataArray, ms: xr.DataArray) -> int:
    """The integer ratio of the HS to the MS pixel size; an error for rotated, flipped or non-integer grids."""
    for t, da_, nm in ((hs_t, hs, "HS(t1)"), (ms_t, ms, "MS(t1)")):
        if abs(t.b) > 1e-12 * abs(t.a) or abs(t.d) > 1e-12 * abs(t.e):
            raise DcstsfInputError(
                f"{input_label(da_, nm)} has a rotated/sheared grid ({t}); warp it to a north-up grid first "
                f"(rioxarray: da.rio.reproject(da.rio.crs)) or {REPROJECT_FIX}"
            )
    if np.sign(hs_t.a) != np.sign(ms_t.a) or np.sign(hs_t.e) != np.sign(ms_t.e):
        raise DcstsfInputError(
            f"{input_label(hs, 'HS(t1)')} and {input_label(ms, 'MS(t1)')} have opposite axis orientations "
            f"(pixel sizes {hs_t.a:g}, {hs_t.e:g} vs {ms_t.a:g}, {ms_t.e:g}); flip one with "
            f"da.isel(y=slice(None, None, -1)) or {REPROJECT_FIX}"
        )
    rx, ry = hs_t.a / ms_t.a, hs_t.e / ms_t.e
    ix, iy = as_integer(rx, tol=RATIO_RTOL * abs(rx)), as_integer(ry, tol=RATIO_RTOL * abs(ry))
    if ix is None or iy is None or ix != iy or ix < 1:
        raise DcstsfInputError(
            f"{input_label(hs, 'HS(t1)')} pixel size {resolution_text(hs_t)} and MS pixel size "
            f"{resolution_text(ms_t)} give a ratio of {rx:.6g} x {ry:.6g}, not one integer; resample so the MS "
            "pixel size divides the HS pixel size (e.g. rioxarray: hs.rio.reproject(hs.rio.crs, resolution=30) "
            f"for 10 m MS) or {REPROJECT_FIX}"
        )
    return ix


def same_grid(t1: Any, t2: Any) -> bool:
    """Whether two transforms describe the same grid within float noise."""
    res = max(abs(t1.a), abs(t1.e))
    return (
        all(abs(p - q) <= RATIO_RTOL * res for p, q in ((t1.a, t2.a), (t1.b, t2.b), (t1.d, t2.d), (t1.e, t2.e)))
        and abs(t1.c - t2.c) <= CORNER_TOL * res
        and abs(t1.f - t2.f) <= CORNER_TOL * res
    )


def grid_gsd_m(crs: Any, transform: Any) -> float | None:
    """The fine grid's pixel size in metres (projected CRS in metres only), from its transform.

    This is what sets the MS blur widths of the observation model; simulated cases
    (:func:`dcstsf.simulate.simulate_case`) are written on the grid they stand for, so they need nothing else.
    """
    if crs is None or transform is None:
        return None
    factor = metres_per_unit(crs)
    return None if factor is None else float(abs(transform.a)) * factor


def reproject(hs: xr.DataArray, ms1: xr.DataArray, ms2: xr.DataArray, *, ratio: int | None) -> AlignedGrids:
    """MS(t2) onto the MS(t1) grid (bilinear), HS onto the aligned coarse grid (average)."""
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.warp import calculate_default_transform

    notes: list[str] = []
    crs = crs_of(ms1)
    for da_, nm in ((hs, "HS(t1)"), (ms1, "MS(t1)"), (ms2, "MS(t2)")):
        if crs_of(da_) is None:
            raise DcstsfInputError(
                f"align='reproject' needs georeferenced inputs, but {input_label(da_, nm)} has no CRS; write one "
                "with da.rio.write_crs(...)"
            )
    ms_t = transform_of(ms1, "MS(t1)")
    t2 = transform_of(ms2, "MS(t2)")
    if crs_of(ms2) != crs or ms2.shape[1:] != ms1.shape[1:] or not same_grid(ms_t, t2):
        ms2 = ms2.rio.write_nodata(np.nan, encoded=False).rio.reproject_match(ms1, resampling=Resampling.bilinear)
        ms2 = ms2.assign_coords(x=ms1["x"], y=ms1["y"])
        notes.append("MS(t2) reprojected onto the MS(t1) grid (bilinear)")
    if ratio is None:
        hs_t = transform_of(hs, "HS(t1)")
        left, bottom, right, top = hs.rio.bounds()
        dst_t, _, _ = calculate_default_transform(
            crs_of(hs), crs, hs.sizes["x"], hs.sizes["y"], left=left, bottom=bottom, right=right, top=top
        )
        hs_res = abs(dst_t.a) if crs_of(hs) != crs else abs(hs_t.a)
        ratio = max(1, int(round(hs_res / abs(ms_t.a))))
    hc, wc = ms1.sizes["y"] // ratio, ms1.sizes["x"] // ratio
    if hc == 0 or wc == 0:
        raise DcstsfInputError(f"the MS grid ({ms1.sizes['y']} x {ms1.sizes['x']}) is smaller than one HS pixel")
    coarse_t = Affine(ms_t.a * ratio, 0.0, ms_t.c, 0.0, ms_t.e * ratio, ms_t.f)
    hs_t = transform_of(hs, "HS(t1)")
    if crs_of(hs) != crs or hs.shape[1:] != (hc, wc) or not same_grid(hs_t, coarse_t):
        hs = hs.rio.write_nodata(np.nan, encoded=False).rio.reproject(
            crs, shape=(hc, wc), transform=coarse_t, resampling=Resampling.average, nodata=np.nan
        )
        notes.append(f"HS(t1) reprojected onto the coarse grid aligned with MS(t1) at ratio {ratio} (average)")
    ms1 = ms1.isel(y=slice(0, hc * ratio), x=slice(0, wc * ratio))
    ms2 = ms2.isel(y=slice(0, hc * ratio), x=slice(0, wc * ratio))
    return AlignedGrids(hs, ms1, ms2, int(ratio), ms_offset=None, hs_offset=None, notes=tuple(notes))

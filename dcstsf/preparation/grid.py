"""The grid of the prepared inputs: a window of MS(t1)'s grid and the HS grid snapped onto it at ratio ``r``.

The fine grid is MS(t1)'s own (a Sentinel-2 tile's 10 m grid): MS(t1) is never resampled. The coarse grid
has pixels of ``r`` x ``r`` fine pixels whose corners lie on fine pixel corners (the pixel-corner convention
of ``docs/design.md``), and both are cut to the overlap of the three inputs in whole coarse pixels.

``r`` is the HS sensor's nominal ground sampling distance over the MS pixel size (EnMAP, PRISMA and AHSI:
30 m; Sentinel-2 on its 10 m grid: ``r = 3``), not the HS file's pixel size: a product resampled to another
pixel size is still brought to the sensor's resolution. When the sensor's GSD is unknown, the file's pixel
size is used.

Snapping. Among the coarse lattices on MS corners (``r`` x ``r`` of them), the one whose corners lie nearest
to the HS pixel corners is taken, so the HS is moved by at most half an MS pixel (at most 5 m on a 10 m
grid) before the co-registration measures what is left; an HS product already on such a lattice (same CRS,
pixel ``r`` MS pixels, corners on MS corners) is not resampled at all. The first coarse pixel is the first
one of that lattice lying wholly inside the overlap, so no coarse pixel is partly outside the HS data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox

from dcstsf import sensors as _sensors
from dcstsf.engine.grids import CORNER_TOL
from dcstsf.engine.sources import input_label
from dcstsf.errors import DcstsfInputError
from dcstsf.units import metres_per_unit

__all__ = [
    "NOMINAL_GSD_M",
    "PreparedGrid",
    "geobox_of",
    "nominal_gsd_m",
    "prepared_grid",
    "same_lattice",
    "snapped_ratio",
]

#: Nominal ground sampling distance (m) of HS sensors that are not in the sensor registry, by the ``sensor``
#: attribute the product readers set (PRISMA: 30 m VNIR/SWIR, :data:`dcstsf.products.prisma.PRISMA_GSD_M`).
NOMINAL_GSD_M: dict[str, float] = {"prisma": 30.0}
# A nominal GSD over the MS pixel size further than this from an integer is not a ratio.
_RATIO_TOL = 0.02


@dataclass(frozen=True)
class PreparedGrid:
    """Where the prepared inputs lie.

    Attributes
    ----------
    fine
        The prepared MS grid: a window of MS(t1)'s grid, ``ratio`` x the coarse shape.
    coarse
        The prepared HS grid: pixels of ``ratio`` x ``ratio`` fine pixels, same top-left corner as ``fine``.
    ratio
        HS to MS pixel-size ratio.
    ms_window
        ``(row, col)`` of ``fine``'s first pixel in MS(t1)'s grid.
    ratio_from
        How ``ratio`` was found, for the notes.
    """

    fine: GeoBox
    coarse: GeoBox
    ratio: int
    ms_window: tuple[int, int]
    ratio_from: str

    def describe(self) -> str:
        """One line: size, pixel sizes, origin, CRS."""
        t = self.fine.affine
        h, w = self.fine.shape
        epsg = self.fine.crs.epsg if self.fine.crs is not None else None
        crs = f"EPSG:{epsg}" if epsg else str(self.fine.crs)
        return (
            f"{h} x {w} MS pixels of {abs(t.a):g} m and {h // self.ratio} x {w // self.ratio} HS pixels of "
            f"{abs(t.a) * self.ratio:g} m (ratio {self.ratio}, {self.ratio_from}), top-left corner "
            f"({t.c:.3f}, {t.f:.3f}) in {crs}, MS(t1) rows {self.ms_window[0]}:{self.ms_window[0] + h}, columns "
            f"{self.ms_window[1]}:{self.ms_window[1] + w}"
        )


def geobox_of(da: xr.DataArray, name: str) -> GeoBox:
    """The grid of a georeferenced ``(band, y, x)`` array; an error naming the input when it has none."""
    crs = None
    try:
        crs = da.rio.crs
        transform = da.rio.transform(recalc=True)
    except Exception as exc:  # rioxarray raises several types for arrays without a usable grid
        raise DcstsfInputError(
            f"{input_label(da, name)}: no pixel grid can be derived from it ({exc}); give a georeferenced product or "
            "raster (CRS and transform)"
        ) from exc
    if crs is None:
        raise DcstsfInputError(
            f"{input_label(da, name)} has no CRS, so it cannot be placed on the other inputs' grid; give a "
            "georeferenced product or raster (da.rio.write_crs(...) for an array)"
        )
    if abs(transform.b) > 1e-12 * abs(transform.a) or abs(transform.d) > 1e-12 * abs(transform.e):
        if name.startswith("MS"):
            raise DcstsfInputError(
                f"{input_label(da, name)} lies on a rotated grid ({transform}); the MS grid must be north-up: "
                "use the product as delivered"
            )
    return GeoBox((da.sizes["y"], da.sizes["x"]), transform, crs)


def nominal_gsd_m(hs: xr.DataArray) -> tuple[float, str] | None:
    """The HS sensor's nominal GSD in metres and where it comes from, or None when unknown.

    From the registered sensor the ``sensor`` attribute names (the product readers set it), else
    :data:`NOMINAL_GSD_M`.
    """
    name = hs.attrs.get("sensor")
    if not isinstance(name, str):
        return None
    if name in _sensors.available():
        gsd = float(np.median(_sensors.get(name).gsd_m))
        return gsd, f"nominal GSD of {name}"
    if name in NOMINAL_GSD_M:
        return NOMINAL_GSD_M[name], f"nominal GSD of {name}"
    return None


def _metres_per_unit(crs: Any) -> float | None:
    """:func:`dcstsf.units.metres_per_unit` of an odc-geo CRS (which it reads through rasterio's)."""
    from rasterio.crs import CRS

    return metres_per_unit(CRS.from_wkt(crs.to_wkt()))


def snapped_ratio(hs: xr.DataArray, hs_box: GeoBox, ms_box: GeoBox, *, ratio: int | None) -> tuple[int, str]:
    """The integer ratio ``r`` and how it was found: given, else nominal HS GSD (else file pixel) / MS pixel.

    Raises
    ------
    DcstsfInputError
        The MS grid is not in metres, or the sizes give no integer ratio.
    """
    if ratio is not None:
        return int(ratio), "given"
    ms_m = _metres_per_unit(ms_box.crs)
    label = input_label(hs, "HS(t1)")
    if ms_m is None:
        raise DcstsfInputError(
            f"the MS grid's CRS ({ms_box.crs}) is not in metres, so the HS/MS ratio cannot be derived; pass "
            "ratio= (CLI --ratio)"
        )
    ms_res = abs(ms_box.affine.a) * ms_m
    nominal = nominal_gsd_m(hs)
    if nominal is None:
        hs_m = _metres_per_unit(hs_box.crs)
        if hs_m is None:
            raise DcstsfInputError(
                f"{label}: its sensor's nominal GSD is unknown and its CRS ({hs_box.crs}) is not in metres; pass "
                "ratio= (CLI --ratio)"
            )
        gsd, source = math.hypot(hs_box.affine.a, hs_box.affine.b) * hs_m, "HS file pixel size"
    else:
        gsd, source = nominal
    value = gsd / ms_res
    r = round(value)
    if r < 1 or abs(value - r) > _RATIO_TOL * max(r, 1):
        raise DcstsfInputError(
            f"{label}: {source} {gsd:g} m over the MS pixel size {ms_res:g} m is {value:.4g}, not an integer ratio; "
            "pass the ratio to use, ratio= (CLI --ratio)"
        )
    return int(r), f"{source} {gsd:g} m / MS pixel {ms_res:g} m"


def _corner_in(box: GeoBox, x: float, y: float, crs: Any) -> tuple[float, float]:
    """Fine-pixel coordinates (col, row) of the map point ``(x, y)`` in ``crs`` on ``box``."""
    if crs != box.crs:
        from odc.geo.geom import point

        p = point(x, y, crs).to_crs(box.crs)
        x, y = p.coords[0]
    col, row = ~box.affine @ (x, y)
    return float(col), float(row)


def same_lattice(a: GeoBox, b: GeoBox, *, step: int = 1) -> tuple[int, int] | None:
    """``(row, col)`` of ``a``'s origin in pixels of ``b`` when ``a``'s pixels are ``step`` x ``b``'s and its
    corners lie on ``b``'s corners (same CRS, within :data:`CORNER_TOL` of a pixel), else None."""
    ta, tb = a.affine, b.affine
    if a.crs != b.crs or ta.b != 0 or ta.d != 0:
        return None
    if abs(ta.a - step * tb.a) > 1e-6 * abs(tb.a) or abs(ta.e - step * tb.e) > 1e-6 * abs(tb.e):
        return None
    col, row = (ta.c - tb.c) / tb.a, (ta.f - tb.f) / tb.e
    if abs(col - round(col)) > CORNER_TOL or abs(row - round(row)) > CORNER_TOL:
        return None
    return int(round(row)), int(round(col))


def prepared_grid(
    hs_box: GeoBox, ms_box: GeoBox, overlap: tuple[float, float, float, float], *, ratio: int, ratio_from: str
) -> PreparedGrid | None:
    """The fine and coarse grids covering ``overlap`` (left, bottom, right, top in MS(t1)'s CRS) in whole
    coarse pixels, the coarse lattice nearest the HS pixel corners; None when not one coarse pixel fits."""
    r = ratio
    t = ms_box.affine
    h, w = ms_box.shape
    left, bottom, right, top = overlap
    # The overlap in fine-pixel units of MS(t1), clipped to its grid.
    c0, r0 = ~t @ (left, top)
    c1, r1 = ~t @ (right, bottom)
    c0, c1 = sorted((c0, c1))
    r0, r1 = sorted((r0, r1))
    c0, r0 = max(0, math.ceil(c0 - CORNER_TOL)), max(0, math.ceil(r0 - CORNER_TOL))
    c1, r1 = min(w, math.floor(c1 + CORNER_TOL)), min(h, math.floor(r1 + CORNER_TOL))
    # Phase of the coarse lattice: the MS corner nearest the HS top-left corner, modulo r.
    hc, hr = _corner_in(ms_box, hs_box.affine.c, hs_box.affine.f, hs_box.crs)
    pc, pr = round(hc) % r, round(hr) % r
    col = c0 + (pc - c0) % r
    row = r0 + (pr - r0) % r
    nx, ny = (c1 - col) // r, (r1 - row) // r
    if nx < 1 or ny < 1:
        return None
    fine = GeoBox((ny * r, nx * r), t * Affine.translation(col, row), ms_box.crs)
    coarse = GeoBox((ny, nx), fine.affine * Affine.scale(r), ms_box.crs)
    return PreparedGrid(fine=fine, coarse=coarse, ratio=r, ms_window=(row, col), ratio_from=ratio_from)

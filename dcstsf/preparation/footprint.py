"""The footprint of the prepared inputs: the overlap of HS(t1), MS(t1) and MS(t2), said out loud.

A hyperspectral scene (EnMAP: 30 km, PRISMA: 30 km, AHSI: 60 km wide) usually covers part of a
Sentinel-2 tile (110 km). The prepared inputs cover the overlap of the three footprints in whole coarse
pixels; when that is less than MS(t1)'s grid, a :class:`PartialFootprintWarning` gives the covered
fraction and the bounds, and the same record goes into the prepared inputs' ``footprint`` attribute.
Footprints that do not overlap are a :class:`~dcstsf.errors.DcstsfInputError` naming the files.

Footprints are the rasters' extents (in MS(t1)'s CRS); pixels inside them without data (outside an
EnMAP swath, masked clouds) are nodata in the prepared inputs and counted in their ``masked_fraction``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from odc.geo.geobox import GeoBox

from dcstsf.errors import DcstsfInputError

__all__ = [
    "Footprint",
    "PartialFootprintWarning",
    "bounds_in",
    "crs_text",
    "footprint_of",
    "no_overlap_error",
    "overlap_bounds",
]

Bounds = tuple[float, float, float, float]


class PartialFootprintWarning(UserWarning):
    """The prepared inputs cover only part of MS(t1)'s grid (or of the HS scene)."""


def bounds_in(box: GeoBox, crs: object) -> Bounds:
    """``box``'s extent as ``(left, bottom, right, top)`` in ``crs`` (the bounding box of its reprojected
    outline when the CRSs differ)."""
    extent = box.extent if box.crs == crs else box.extent.to_crs(crs)
    b = extent.boundingbox
    return float(b.left), float(b.bottom), float(b.right), float(b.top)


def _text(b: Bounds) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in b) + ")"


def _intersection(a: Bounds, b: Bounds) -> Bounds | None:
    left, bottom = max(a[0], b[0]), max(a[1], b[1])
    right, top = min(a[2], b[2]), min(a[3], b[3])
    return (left, bottom, right, top) if right > left and top > bottom else None


def no_overlap_error(labels: dict[str, str], bounds: dict[str, Bounds], crs: str, *, detail: str = "") -> DcstsfInputError:
    """The error for inputs whose footprints do not share one HS pixel: names every file and its bounds."""
    listed = "; ".join(f"{labels[k]} {_text(b)}" for k, b in bounds.items())
    return DcstsfInputError(
        f"the inputs do not overlap{detail}: footprints (left, bottom, right, top in {crs}) {listed}. Give an HS "
        "product and MS products of the same area (for MS, the Sentinel-2 tile that contains the HS scene)"
    )


def overlap_bounds(boxes: dict[str, GeoBox], labels: dict[str, str], crs: object) -> tuple[Bounds, dict[str, Bounds]]:
    """The common extent of ``boxes`` in ``crs`` and each one's extent there; an error naming the files when
    they do not overlap."""
    bounds = {k: bounds_in(b, crs) for k, b in boxes.items()}
    common: Bounds | None = None
    for b in bounds.values():
        common = b if common is None else _intersection(common, b)
        if common is None:
            raise no_overlap_error(labels, bounds, crs_text(crs))
    assert common is not None
    return common, bounds


def crs_text(crs: object) -> str:
    """``EPSG:<code>`` when the CRS has one, else its text."""
    epsg = getattr(crs, "epsg", None)
    return f"EPSG:{epsg}" if epsg else str(crs)


@dataclass(frozen=True)
class Footprint:
    """What part of each input the prepared inputs cover.

    Attributes
    ----------
    crs
        The CRS of all bounds (MS(t1)'s).
    bounds
        The prepared grid ``(left, bottom, right, top)``.
    ms_bounds, ms_t2_bounds, hs_bounds
        The inputs' extents in that CRS.
    ms_fraction
        Fraction of MS(t1)'s grid covered by the prepared grid.
    hs_fraction
        Fraction of the HS extent (the area of its bounding box in ``crs``) inside the prepared grid.
    """

    crs: str
    bounds: Bounds
    ms_bounds: Bounds
    ms_t2_bounds: Bounds
    hs_bounds: Bounds
    ms_fraction: float
    hs_fraction: float

    @property
    def partial(self) -> bool:
        """Whether the prepared grid is smaller than MS(t1)'s grid (beyond float noise)."""
        return self.ms_fraction < 1.0 - 1e-9

    def describe(self) -> str:
        """One line for notes, warnings and the CLI."""
        return (
            f"the prepared inputs cover {100 * self.ms_fraction:.1f}% of the MS(t1) grid and "
            f"{100 * self.hs_fraction:.1f}% of the HS scene: bounds {_text(self.bounds)} (left, bottom, right, top in "
            f"{self.crs}); MS(t1) {_text(self.ms_bounds)}, MS(t2) {_text(self.ms_t2_bounds)}, HS(t1) "
            f"{_text(self.hs_bounds)}"
        )

    def to_dict(self) -> dict[str, object]:
        """Plain values (bounds as lists, fractions rounded to 6 digits)."""
        return {
            "crs": self.crs,
            "bounds": [round(v, 4) for v in self.bounds],
            "ms_t1_bounds": [round(v, 4) for v in self.ms_bounds],
            "ms_t2_bounds": [round(v, 4) for v in self.ms_t2_bounds],
            "hs_t1_bounds": [round(v, 4) for v in self.hs_bounds],
            "ms_covered_fraction": round(self.ms_fraction, 6),
            "hs_covered_fraction": round(self.hs_fraction, 6),
        }

    def to_attrs(self) -> dict[str, str]:
        """The record as JSON under ``footprint``."""
        return {"footprint": json.dumps(self.to_dict(), sort_keys=True)}


def _area(b: Bounds) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def footprint_of(fine: GeoBox, ms_box: GeoBox, bounds: dict[str, Bounds]) -> Footprint:
    """The :class:`Footprint` of the prepared grid ``fine`` on MS(t1)'s grid ``ms_box``."""
    b = bounds_in(fine, fine.crs)
    hs = bounds["hs_t1"]
    inter = _intersection(b, hs)
    return Footprint(
        crs=crs_text(fine.crs),
        bounds=b,
        ms_bounds=bounds["ms_t1"],
        ms_t2_bounds=bounds["ms_t2"],
        hs_bounds=hs,
        ms_fraction=(fine.shape[0] * fine.shape[1]) / (ms_box.shape[0] * ms_box.shape[1]),
        hs_fraction=(_area(inter) / _area(hs)) if inter is not None and _area(hs) > 0 else 0.0,
    )

"""Sentinel-2 L2A Scene Classification (SCL) masks: which classes become nodata, on the 10 m grid.

The SCL layer (20 m, ``*_SCL_20m.jp2`` in a ``.SAFE`` folder, the ``scl``/``SCL`` asset of a STAC item)
holds one class per pixel. The classes, as ``MTD_MSIL2A.xml`` lists them in its
``Scene_Classification_List`` (``SCENE_CLASSIFICATION_INDEX`` / ``SCENE_CLASSIFICATION_TEXT``):

== ==========================  ==
 0 SC_NODATA                   masked by default
 1 SC_SATURATED_DEFECTIVE      masked by default
 2 SC_DARK_FEATURE_SHADOW
 3 SC_CLOUD_SHADOW             masked by default
 4 SC_VEGETATION
 5 SC_NOT_VEGETATED
 6 SC_WATER
 7 SC_UNCLASSIFIED
 8 SC_CLOUD_MEDIUM_PROBA       masked by default
 9 SC_CLOUD_HIGH_PROBA         masked by default
10 SC_THIN_CIRRUS              masked by default
11 SC_SNOW_ICE                 masked by default
== ==========================  ==

Masked pixels become NaN in every band: the fusion treats NaN as nodata, so a cloud or its shadow is
neither fused nor used to fit anything. Dark features (2) and unclassified pixels (7) are kept by default:
they are mostly valid surfaces (dark soil, water edges, shade of terrain) and masking them would remove
far more than clouds; add them with :class:`SclOptions` when a scene needs it.

The SCL is brought onto the 10 m grid by nearest neighbour: a class is a label, and any interpolation
would invent classes between two neighbours (between 4 and 6 lies 5). Because the 20 m grid's pixel
corners coincide with every other 10 m corner, nearest neighbour copies each 20 m class onto exactly the
four 10 m pixels it covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords, xr_reproject

from dcstsf.errors import DcstsfInputError

__all__ = [
    "DEFAULT_MASKED_CLASSES",
    "DEFAULT_SCL",
    "SCL_CLASSES",
    "SclOptions",
    "apply_mask",
    "scl_mask",
    "scl_on_grid",
]

#: SCL class index -> class text of ``MTD_MSIL2A.xml``'s ``Scene_Classification_List``.
SCL_CLASSES: Mapping[int, str] = {
    0: "SC_NODATA",
    1: "SC_SATURATED_DEFECTIVE",
    2: "SC_DARK_FEATURE_SHADOW",
    3: "SC_CLOUD_SHADOW",
    4: "SC_VEGETATION",
    5: "SC_NOT_VEGETATED",
    6: "SC_WATER",
    7: "SC_UNCLASSIFIED",
    8: "SC_CLOUD_MEDIUM_PROBA",
    9: "SC_CLOUD_HIGH_PROBA",
    10: "SC_THIN_CIRRUS",
    11: "SC_SNOW_ICE",
}
#: No data, saturated/defective, cloud shadows, clouds (medium and high probability), thin cirrus, snow/ice.
DEFAULT_MASKED_CLASSES: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)


def _class_index(name: str | int) -> int:
    if isinstance(name, (int, np.integer)):
        return int(name)
    text = str(name).strip().upper()
    text = text if text.startswith("SC_") else f"SC_{text}"
    for index, label in SCL_CLASSES.items():
        if label == text:
            return index
    raise DcstsfInputError(
        f"unknown Sentinel-2 SCL class {name!r}; the classes are "
        + ", ".join(f"{i} {label}" for i, label in SCL_CLASSES.items())
        + " (pass indices or these names, with or without the SC_ prefix)"
    )


@dataclass(frozen=True)
class SclOptions:
    """Which SCL classes become nodata.

    Parameters
    ----------
    classes
        SCL class indices (see :data:`SCL_CLASSES`) to set to NaN in every band; ``()`` masks nothing
        (the SCL is still read, and ``masked_fraction`` is 0).
    """

    classes: tuple[int, ...] = DEFAULT_MASKED_CLASSES

    def __post_init__(self) -> None:
        values = tuple(sorted({_class_index(c) for c in self.classes}))
        unknown = [c for c in values if c not in SCL_CLASSES]
        if unknown:
            raise DcstsfInputError(
                f"SCL classes {unknown} do not exist; the classes are 0-11: "
                + ", ".join(f"{i} {label}" for i, label in SCL_CLASSES.items())
            )
        object.__setattr__(self, "classes", values)

    @classmethod
    def from_names(cls, names: Iterable[str | int]) -> SclOptions:
        """Options masking the classes named as in ``MTD_MSIL2A.xml`` (``"SC_CLOUD_SHADOW"`` or
        ``"cloud_shadow"``) or given by index."""
        return cls(classes=tuple(_class_index(n) for n in names))

    def describe(self) -> str:
        """The masked classes as ``"3 SC_CLOUD_SHADOW, 9 SC_CLOUD_HIGH_PROBA"`` (``"none"`` when empty)."""
        return ", ".join(f"{c} {SCL_CLASSES[c]}" for c in self.classes) or "none"


#: The default mask: :data:`DEFAULT_MASKED_CLASSES`.
DEFAULT_SCL = SclOptions()


def scl_mask(scl: xr.DataArray, options: SclOptions) -> xr.DataArray:
    """``True`` where the SCL class is one ``options`` masks; lazy when ``scl`` is Dask-backed."""
    if not options.classes:
        return xr.zeros_like(scl, dtype=bool)
    return scl.isin(list(options.classes))


def scl_on_grid(scl: xr.DataArray, scl_grid: GeoBox, grid: GeoBox) -> xr.DataArray:
    """The SCL ``(y, x)`` (on ``scl_grid``) on ``grid`` by nearest neighbour, lazily for Dask input.

    Pixels of ``grid`` outside the SCL's footprint get class 0 (no data).
    """
    src = xr.DataArray(scl.data, dims=("y", "x"), coords=xr_coords(scl_grid))
    if scl_grid.shape == grid.shape and scl_grid.crs == grid.crs and scl_grid.affine.almost_equals(grid.affine):
        return src.assign_coords(xr_coords(grid))
    return xr_reproject(src, grid, resampling="nearest", dst_nodata=0)


def apply_mask(cube: xr.DataArray, mask: xr.DataArray) -> tuple[xr.DataArray, float]:
    """``cube`` ``(band, y, x)`` with NaN wherever ``mask`` ``(y, x)`` is true, and the masked fraction.

    The fraction (of the grid's pixels) is computed now, from the mask alone; the cube stays lazy.
    """
    m = xr.DataArray(mask.data, dims=("y", "x"))
    fraction = float(np.asarray(m.mean().values)) if m.size else 0.0
    if cube.chunks is not None:
        # The mask in the cube's chunks: otherwise Dask splits the result at both sets of boundaries.
        m = m.chunk({"y": cube.chunks[1], "x": cube.chunks[2]})
    data = cube.where(~m.assign_coords(y=cube["y"], x=cube["x"]))
    return data, fraction

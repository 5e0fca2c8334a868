"""From one HS product and two MS products to analysis-ready inputs on one grid, in this order:

1. **Read** each input (:func:`~dcstsf.products.open_product`: the Sentinel-2 bands asked for, 20 m bands
   resampled bilinearly onto the 10 m grid by the reader, SCL classes and the HS product's quality masks
   as NaN; a plain raster by :func:`~dcstsf.io.open_raster`).
2. **Grid** (:mod:`~dcstsf.preparation.grid`): MS(t1)'s grid cut to the overlap of the three footprints in
   whole coarse pixels, the ratio from the HS sensor's nominal GSD, the coarse lattice snapped to the HS
   pixel corners; a partial footprint is a :class:`~dcstsf.preparation.footprint.PartialFootprintWarning`,
   none an error naming the files (:mod:`~dcstsf.preparation.footprint`).
3. **Resample** (:mod:`~dcstsf.preparation.resample`): MS(t1) is cut, MS(t2) cut or reprojected onto it
   (bilinear), the HS cut or reprojected onto the coarse grid (pixel-area average).
4. **Masks** (:mod:`~dcstsf.preparation.masks`): optionally the union of the MS dates' nodata.
5. **Co-registration** (:mod:`dcstsf.coregistration`): the HS-to-MS displacement (global shift and smooth
   field, tie points of R·HS against the degraded MS) estimated and the HS resampled by it.
6. **Record**: masked fractions on the prepared grid, the footprint, the co-registration and the notes in
   the arrays' attributes.

Everything stays lazy (Dask) except what an estimate needs to read: the co-registration reads the HS and
the MS once, and the masked fractions read one band of each.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import xarray as xr

from dcstsf.engine.bands import observation_model
from dcstsf.engine.grids import grid_gsd_m
from dcstsf.engine.options import ReadOptions
from dcstsf.engine.sources import input_label, input_source
from dcstsf.errors import DcstsfInputError
from dcstsf.preparation.footprint import (
    PartialFootprintWarning,
    crs_text,
    footprint_of,
    no_overlap_error,
    overlap_bounds,
)
from dcstsf.preparation.grid import geobox_of, prepared_grid, snapped_ratio
from dcstsf.preparation.masks import masked_fractions, union_ms_masks
from dcstsf.preparation.options import PrepareOptions
from dcstsf.preparation.prepared import INPUT_NAMES, PreparedInputs
from dcstsf.preparation.resample import MS_RESAMPLING, hs_resampling, onto_grid
from dcstsf.preparation.sources import open_inputs

if TYPE_CHECKING:
    from dcstsf.coregistration import Coregistration

__all__ = ["prepare_inputs", "prepare_products"]

log = logging.getLogger(__name__)

_LABELS = {"hs_t1": "HS(t1)", "ms_t1": "MS(t1)", "ms_t2": "MS(t2)"}
_SKIP_COREGISTRATION = "to prepare without it, pass coregister=False (CLI --no-coregister)"


def _sources(arrays: Mapping[str, xr.DataArray]) -> dict[str, str]:
    return {k: input_label(da, _LABELS[k]) for k, da in arrays.items()}


def _coregister(
    hs: xr.DataArray, ms1: xr.DataArray, ms2: xr.DataArray, *, ratio: int, options: PrepareOptions, labels: dict[str, str]
) -> tuple[xr.DataArray, Coregistration]:
    from dcstsf.coregistration import coregister

    crs, transform = ms1.rio.crs, ms1.rio.transform()
    model = observation_model(
        hs, ms1, ms2, ratio=ratio, ms_grid_gsd_m=grid_gsd_m(crs, transform), hs_sensor=options.hs_sensor,
        ms_sensor=None, ms_bands=None,
    )
    try:
        fixed, reg = coregister(hs, ms1, model=model, ms_t2=ms2, options=options.coregistration)
    except DcstsfInputError as exc:
        text = str(exc)
        if not text.startswith("co-registration of"):  # messages that do not name the inputs yet
            text = f"co-registration of {labels['hs_t1']} to {labels['ms_t1']} and {labels['ms_t2']} failed: {text}"
        raise DcstsfInputError(f"{text} ({_SKIP_COREGISTRATION})") from exc
    return fixed, reg


def prepare_inputs(
    hs_t1: xr.DataArray,
    ms_t1: xr.DataArray,
    ms_t2: xr.DataArray,
    *,
    options: PrepareOptions | None = None,
) -> PreparedInputs:
    """Bring three georeferenced cubes (as the product readers return them) onto one grid.

    Parameters
    ----------
    hs_t1, ms_t1, ms_t2
        float32 reflectance ``(band, y, x)`` with CRS and transform, NaN for nodata and masked pixels; the MS
        bands named (``B02``...) and in the same order at both dates.
    options
        Ratio, co-registration, mask union (:class:`PrepareOptions`; the reading options do not apply here).

    Returns
    -------
    PreparedInputs

    Warns
    -----
    PartialFootprintWarning
        The prepared grid covers part of MS(t1)'s grid only (the fraction and bounds are in the message).

    Raises
    ------
    DcstsfInputError
        An input without CRS, footprints that do not overlap by one HS pixel (the message names the files
        and their bounds), no integer ratio, a co-registration that fails (the images do not match).
    """
    opts = options or PrepareOptions()
    # Rasterio's warper silences warnings with catch_warnings() in Dask's worker threads, which is not
    # thread-safe: two threads can leave "ignore" in the global filters for good. The filters are restored
    # here, and the footprint warning is given after that.
    with warnings.catch_warnings():
        prepared, said = _prepare(hs_t1, ms_t1, ms_t2, opts)
    for text in said:
        warnings.warn(text, PartialFootprintWarning, stacklevel=2)
    return prepared


def _prepare(
    hs_t1: xr.DataArray, ms_t1: xr.DataArray, ms_t2: xr.DataArray, opts: PrepareOptions
) -> tuple[PreparedInputs, list[str]]:
    """:func:`prepare_inputs`' work, and the warnings it has to give."""
    said: list[str] = []
    arrays = {"hs_t1": hs_t1, "ms_t1": ms_t1, "ms_t2": ms_t2}
    labels = _sources(arrays)
    boxes = {k: geobox_of(da, _LABELS[k]) for k, da in arrays.items()}
    ms_box = boxes["ms_t1"]
    notes: list[str] = []
    overlap, bounds = overlap_bounds(boxes, labels, ms_box.crs)
    ratio, ratio_from = snapped_ratio(hs_t1, boxes["hs_t1"], ms_box, ratio=opts.ratio)
    grid = prepared_grid(boxes["hs_t1"], ms_box, overlap, ratio=ratio, ratio_from=ratio_from)
    if grid is None:
        raise no_overlap_error(
            labels, bounds, crs_text(ms_box.crs),
            detail=f" by one whole HS pixel ({ratio} x {ratio} MS pixels)",
        )
    notes.append(f"ratio {ratio} ({ratio_from})")

    ms1, _ = onto_grid(ms_t1, ms_box, grid.fine, resampling=MS_RESAMPLING)
    ms2, how2 = onto_grid(ms_t2, boxes["ms_t2"], grid.fine, resampling=MS_RESAMPLING)
    notes.append("MS(t2) " + ("cut to the prepared window of its grid, which is MS(t1)'s" if how2 is None
                              else f"reprojected onto MS(t1)'s grid ({how2})"))
    hs_how = hs_resampling(boxes["hs_t1"], grid.coarse)
    hs, how = onto_grid(hs_t1, boxes["hs_t1"], grid.coarse, resampling=hs_how)
    notes.append("HS(t1) " + ("already on the snapped coarse grid: cut, not resampled" if how is None
                              else f"reprojected onto the snapped coarse grid ({how} resampling)"))

    footprint = footprint_of(grid.fine, ms_box, bounds)
    if footprint.partial:
        text = footprint.describe()
        said.append(f"{text}; the inputs are cut to that overlap")
        notes.append(f"cut to the overlap: {text}")

    if opts.union_masks:
        ms1, ms2 = union_ms_masks(ms1, ms2)
        notes.append("nodata of either MS date set in both (union of the MS masks)")

    for key, da in (("hs_t1", hs), ("ms_t1", ms1), ("ms_t2", ms2)):
        src = input_source(arrays[key])
        if src:
            da.encoding["source"] = src

    reg: Coregistration | None = None
    if opts.coregister:
        hs, reg = _coregister(hs, ms1, ms2, ratio=ratio, options=opts, labels=labels)
        hs.encoding["source"] = input_source(hs_t1) or ""
        notes.append(reg.summary())
    else:
        notes.append("co-registration not run (coregister=False)")

    prepared = {"hs_t1": hs, "ms_t1": ms1, "ms_t2": ms2}
    fractions = masked_fractions(prepared)
    record = {
        "grid": grid.describe(),
        "ratio": ratio,
        "hs_resampling": how or "none (already on the grid)",
        "ms_t2_resampling": how2 or "none (same grid)",
        "options": opts.describe(),
        "notes": notes,
    }
    for key, da in prepared.items():
        reader_fraction = arrays[key].attrs.get("masked_fraction")
        frac, band = fractions[key]
        da.attrs.update(footprint.to_attrs())
        da.attrs["preparation"] = json.dumps(record, sort_keys=True, default=str)
        if reader_fraction is not None:
            da.attrs["product_masked_fraction"] = reader_fraction
        da.attrs["masked_fraction"] = round(frac, 6)
        da.attrs["masked_fraction_band"] = band
    if reg is not None:
        hs.attrs.update(reg.to_attrs())
    for line in notes:
        log.info("%s", line)
    prepared_inputs = PreparedInputs(
        hs_t1=hs, ms_t1=ms1, ms_t2=ms2, grid=grid, footprint=footprint, coregistration=reg,
        masked_fraction={k: fractions[k][0] for k in INPUT_NAMES}, notes=tuple(notes),
    )
    return prepared_inputs, said


def prepare_products(
    hs_t1: str | os.PathLike[str],
    ms_t1: str | os.PathLike[str],
    ms_t2: str | os.PathLike[str],
    *,
    options: PrepareOptions | None = None,
    reads: Mapping[str, ReadOptions] | None = None,
) -> PreparedInputs:
    """Read an HS product and two MS products and prepare them (:func:`prepare_inputs`).

    Parameters
    ----------
    hs_t1
        EnMAP L2A folder or METADATA.XML, PRISMA L2D ``.he5``, AHSI reflectance (see
        :func:`~dcstsf.products.open_product`), or a georeferenced reflectance raster.
    ms_t1, ms_t2
        Sentinel-2 L2A ``.SAFE`` folders (or ``MTD_MSIL2A.xml``) or STAC item JSON files, or rasters.
    options
        Bands, SCL classes, co-registration, ratio, mask union, sensors, chunks (:class:`PrepareOptions`).
    reads
        Decoding overrides of plain rasters by input name (``"hs_t1"``, ...), as ``dcstsf fuse``'s
        ``--hs-scale`` etc.; refused for products, which carry their own.

    Returns
    -------
    PreparedInputs
        Lazy arrays; fuse them with ``dcstsf.fuse(p.hs_t1, p.ms_t1, p.ms_t2)`` or write them with
        :func:`~dcstsf.preparation.write_prepared`.

    Raises
    ------
    DcstsfInputError
        What the readers refuse (missing ``MTD_MSIL2A.xml`` or band files, wrong level, unknown layout), and
        what :func:`prepare_inputs` refuses.
    """
    opts = options or PrepareOptions()
    with warnings.catch_warnings():  # the readers compute SCL masks in Dask threads (see prepare_inputs)
        arrays = open_inputs({"hs_t1": hs_t1, "ms_t1": ms_t1, "ms_t2": ms_t2}, options=opts, reads=reads)
    with warnings.catch_warnings():
        prepared, said = _prepare(arrays["hs_t1"], arrays["ms_t1"], arrays["ms_t2"], opts)
    for text in said:
        warnings.warn(text, PartialFootprintWarning, stacklevel=2)
    return prepared

"""Opening the three inputs of a preparation: products by their readers, plain rasters as ``dcstsf fuse`` does."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import xarray as xr

from dcstsf.engine.options import ReadOptions
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from dcstsf.io.stores import is_zarr
from dcstsf.preparation.options import PrepareOptions
from dcstsf.products.open import is_product, open_product
from dcstsf.products.sentinel2 import L2A_BANDS
from dcstsf.sensors.names import canonical_ms_name

__all__ = ["ROLES", "open_input", "open_inputs"]

#: Input name -> reader role.
ROLES = {"hs_t1": "hs", "ms_t1": "ms", "ms_t2": "ms"}
_FLAGS = {"hs_t1": "--hs-scale/--hs-offset/--hs-nodata", "ms_t1": "--ms-scale/--ms-offset/--ms-nodata",
          "ms_t2": "--ms-scale/--ms-offset/--ms-nodata"}


def _select_ms_bands(da: xr.DataArray, bands: Sequence[str]) -> xr.DataArray:
    """A plain MS raster's bands ``bands`` in that order, when its band names are Sentinel-2 names holding
    them all; otherwise the raster as it is (the engine then checks its bands)."""
    if "band" not in da.coords:
        return da
    names = [canonical_ms_name(str(b)) for b in da["band"].values]
    wanted = [canonical_ms_name(b) for b in bands]
    if not all(n in L2A_BANDS for n in names) or not all(w in names for w in wanted) or names == wanted:
        return da
    out = da.isel(band=[names.index(w) for w in wanted])
    return out.assign_coords(band=[str(b) for b in out["band"].values])


def open_input(
    path: str | os.PathLike[str],
    *,
    name: str,
    options: PrepareOptions,
    read: ReadOptions | None = None,
) -> xr.DataArray:
    """Open one input: a product by :func:`~dcstsf.products.open_product`, else a raster by
    :func:`~dcstsf.io.open_raster` (lazily, decoded by ``read``).

    ``options`` are the run's reader settings. A folder that is neither a
    product nor a Zarr store gets :func:`open_product`'s error listing the accepted product forms.

    Raises
    ------
    DcstsfInputError
        ``read`` overrides a product's decoding (products carry their own), or what the readers raise.
    """
    p = Path(path).expanduser()
    role = ROLES[name]
    date = "hs" if name == "hs_t1" else name
    given = read is not None and any(v is not None for v in read.as_kwargs().values())
    if is_product(p) or (p.is_dir() and not is_zarr(p)):
        if given:
            raise DcstsfInputError(
                f"{p}: a product's scale, offset and nodata come from its own metadata; drop {_FLAGS[name]} "
                "(Python: hs_scale=/ms_scale=... of run_batch) for product inputs"
            )
        return open_product(p, role="hs" if role == "hs" else "ms", options=options.product_options(date))
    kwargs = read.as_kwargs() if read is not None else {}
    da = open_raster(p, chunks=options.chunks, **kwargs)
    return _select_ms_bands(da, options.ms_bands) if role == "ms" else da


def open_inputs(
    paths: Mapping[str, str | os.PathLike[str]], *, options: PrepareOptions, reads: Mapping[str, ReadOptions] | None = None
) -> dict[str, xr.DataArray]:
    """:func:`open_input` for ``hs_t1``, ``ms_t1`` and ``ms_t2``."""
    reads = reads or {}
    return {name: open_input(paths[name], name=name, options=options, read=reads.get(name)) for name in ROLES}

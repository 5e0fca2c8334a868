"""What :func:`dcstsf.fuse` returns with ``uncertainty=True``: the prediction and its standard deviation."""

from __future__ import annotations

from typing import NamedTuple

import xarray as xr

__all__ = ["FusionResult"]


class FusionResult(NamedTuple):
    """The lazy prediction and its per-pixel standard deviation, two DataArrays on one grid.

    A named tuple, so ``pred, sd = dcstsf.fuse(..., uncertainty=True)`` unpacks it; both share the band,
    ``y``/``x`` coordinates, CRS and transform, and computing either computes the tiles once for both
    when they are computed together (``dask.compute(pred, sd)`` or :meth:`to_dataset`).

    Attributes
    ----------
    prediction
        HS(t2) reflectance, as :func:`dcstsf.fuse` returns without uncertainty.
    sd
        Standard deviation of the prediction's error per band and pixel (reflectance), named
        ``reflectance_sd``; NaN where the prediction is. Its attributes name the calibration used.
    """

    prediction: xr.DataArray
    sd: xr.DataArray

    def to_dataset(self) -> xr.Dataset:
        """Both as one Dataset with variables ``reflectance`` and ``reflectance_sd`` (CRS kept)."""
        ds = xr.Dataset({"reflectance": self.prediction, "reflectance_sd": self.sd})
        crs = self.prediction.rio.crs
        return ds.rio.write_crs(crs) if crs is not None else ds

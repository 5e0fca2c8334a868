"""Encoding reflectance into stored values: integer rounding, clipping and nodata; float nodata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.io.encoding import encode_reflectance, integer_limits


def _one_band(values: list[float]) -> xr.DataArray:
    return xr.DataArray(np.array([[values]], dtype=np.float32), dims=("band", "y", "x"))


def test_integer_encoding_rounds_clips_and_keeps_nodata_out_of_the_valid_range() -> None:
    da = _one_band([0.00004, 0.00006, -10.0, 10.0, np.nan])
    enc, nd = encode_reflectance(
        da, dtype=np.dtype("int16"), nodata=float("nan"), scale=np.array([1e-4]), offset=None, path=Path("o.tif")
    )
    assert nd == -32768 and enc.dtype == np.int16
    assert enc.values.tolist() == [[[0, 1, -32767, 32767, -32768]]]
    assert integer_limits(np.dtype("uint16"), 0.0) == (0.0, 1.0, 65535.0)
    assert integer_limits(np.dtype("int16"), 32767.0) == (32767.0, -32768.0, 32766.0)


def test_float_encoding_replaces_nan_by_a_finite_nodata() -> None:
    enc, nd = encode_reflectance(
        _one_band([0.25, np.nan]), dtype=np.dtype("float32"), nodata=-9999.0, scale=None, offset=None,
        path=Path("o.tif"),
    )
    assert nd == -9999.0 and enc.values.tolist() == [[[0.25, -9999.0]]]


def test_integer_encoding_needs_a_scale() -> None:
    with pytest.raises(DcstsfInputError, match="needs a scale") as exc:
        encode_reflectance(
            _one_band([0.1]), dtype=np.dtype("uint16"), nodata=float("nan"), scale=None, offset=None,
            path=Path("o.tif"),
        )
    assert "o.tif" in str(exc.value)

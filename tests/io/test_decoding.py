"""Decoding stored values into reflectance: scales, offsets, nodata, Sentinel-2 L2A and the plausibility check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from tests.io.rasters import TRANSFORM, make_tif


def test_int16_with_band_scales_reads_reflectance(tmp_path: Path) -> None:
    dn = np.array([[[100, 2000], [3000, -32768]]] * 2, dtype=np.int16)
    p = make_tif(tmp_path / "a.tif", dn, scales=[2e-4, 2e-4], offsets=[0.0, 0.0], nodata=-32768)
    da = open_raster(p)
    assert da.dtype == np.float32 and da.dims == ("band", "y", "x")
    np.testing.assert_allclose(da.values[0], [[0.02, 0.4], [0.6, np.nan]], rtol=1e-6)
    assert list(da["band"].values) == ["band_1", "band_2"]
    assert da.rio.crs.to_epsg() == 32633
    assert da.rio.transform() == TRANSFORM


def test_explicit_scale_overrides_file(tmp_path: Path) -> None:
    dn = np.full((1, 2, 2), 500, dtype=np.int16)
    p = make_tif(tmp_path / "a.tif", dn, scales=[2e-4])
    np.testing.assert_allclose(open_raster(p, scale=1e-3).values, 0.5)
    np.testing.assert_allclose(open_raster(p, scale=1e-3, offset=-0.1).values, 0.4, rtol=1e-6)


def test_envi_style_dataset_metadata(tmp_path: Path) -> None:
    dn = np.full((3, 4, 4), 2500, dtype=np.int16)
    tags = {
        "wavelength": "{450.0, 550.0, 650.0}",
        "fwhm": "{10, 10, 10}",
        "bbl": "{1, 0, 1}",
        "reflectance_scale_factor": "5000",
    }
    da = open_raster(make_tif(tmp_path / "e.tif", dn, tags=tags))
    np.testing.assert_allclose(da.values, 0.5)
    np.testing.assert_allclose(da["wavelength"].values, [450, 550, 650])
    assert list(da["bbl"].values) == [1, 0, 1]
    assert "reflectance_scale_factor" not in da.attrs  # applied, so not carried on (no double scaling)


def test_integer_without_scale_is_an_error(tmp_path: Path) -> None:
    p = make_tif(tmp_path / "int.tif", np.full((2, 3, 3), 1200, dtype=np.uint16))
    with pytest.raises(DcstsfInputError, match="scale=") as exc:
        open_raster(p)
    assert str(p) in str(exc.value) and "--scale" in str(exc.value)
    np.testing.assert_allclose(open_raster(p, scale=1e-4).values, 0.12, rtol=1e-6)


def test_float_that_looks_like_scaled_integers_is_an_error(tmp_path: Path) -> None:
    p = make_tif(tmp_path / "big.tif", np.full((2, 8, 8), 1500.0, dtype=np.float32))
    with pytest.raises(DcstsfInputError, match="scaled integers") as exc:
        open_raster(p)
    assert str(p) in str(exc.value)
    np.testing.assert_allclose(open_raster(p, scale=1e-4).values, 0.15, rtol=1e-6)


def test_float_reflectance_without_scale_is_accepted(tmp_path: Path) -> None:
    data = np.full((2, 8, 8), 0.3, dtype=np.float32)
    data[:, 0, 0] = 1.2  # a few bright pixels must not trip the check
    np.testing.assert_allclose(open_raster(make_tif(tmp_path / "r.tif", data)).values[:, 1:, 1:], 0.3)


def _s2_file(tmp_path: Path, name: str, *, baseline: str | None, add_offset: bool) -> Path:
    dn = np.array([[[0, 1000], [2000, 6000]]] * 2, dtype=np.uint16)
    tags: dict[str, Any] = {"BOA_QUANTIFICATION_VALUE": "10000"}
    if baseline is not None:
        tags["PROCESSING_BASELINE"] = baseline
    band_tags = [{"BOA_ADD_OFFSET": "-1000"}] * 2 if add_offset else None
    return make_tif(tmp_path / name, dn, tags=tags, band_tags=band_tags, descriptions=["B02", "B03"])


def test_s2_l2a_offset_applied_only_with_metadata(tmp_path: Path) -> None:
    new = open_raster(_s2_file(tmp_path, "new.tif", baseline="04.00", add_offset=True)).values[0]
    np.testing.assert_allclose(new, [[np.nan, 0.0], [0.1, 0.5]], atol=1e-6)  # (DN - 1000) / 10^4, DN 0 = nodata
    old = open_raster(_s2_file(tmp_path, "old.tif", baseline="03.01", add_offset=False)).values[0]
    np.testing.assert_allclose(old, [[np.nan, 0.1], [0.2, 0.6]], atol=1e-6)
    # Offsets present but a pre-04.00 baseline: the metadata says no offset.
    pre = open_raster(_s2_file(tmp_path, "pre.tif", baseline="03.01", add_offset=True)).values[0]
    np.testing.assert_allclose(pre, old, atol=1e-6)
    # Baseline >= 04.00 without BOA_ADD_OFFSET: refuse to guess.
    bad = _s2_file(tmp_path, "bad.tif", baseline="04.00", add_offset=False)
    with pytest.raises(DcstsfInputError, match="BOA_ADD_OFFSET") as exc:
        open_raster(bad)
    assert str(bad) in str(exc.value)
    np.testing.assert_allclose(open_raster(bad, offset=-0.1).values[0, 1, 1], 0.5, atol=1e-6)


@pytest.mark.parametrize("scale", [0.0, -1e-4, float("nan"), float("inf"), [1e-4, 0.0]])
def test_impossible_scale_is_an_error(tmp_path: Path, scale: object) -> None:
    """A zero, negative or non-finite scale does not encode reflectance: refused, naming the file."""
    from dcstsf.io import write_raster
    from tests.scenes import synthetic_scene

    path = write_raster(synthetic_scene(ny=6, nx=6, nb=2), tmp_path / "cube.tif")
    with pytest.raises(DcstsfInputError, match="cube.tif.*scale"):
        open_raster(path, scale=scale)

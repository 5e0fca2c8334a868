"""``dcstsf.fuse(..., uncertainty=True)``: the standard deviation beside the prediction, lazily and tile by tile."""

from __future__ import annotations

from typing import Any

import dask
import numpy as np
import pytest
import torch
import xarray as xr

import dcstsf
from dcstsf.engine import prepare
from dcstsf.uncertainty import FusionResult, load_calibration, standard_deviation, whole_image_measures
from tests.engine.cases import make_case
from tests.uncertainty.cases import enmap_case


@pytest.fixture(scope="module")
def case() -> Any:
    """AHSI + 10 Sentinel-2A bands: DC-STSF with the shipped weights (its member: the physics-only network)."""
    return enmap_case()


@pytest.fixture(scope="module")
def small() -> Any:
    """The engine tests' 24-band case with a nodata block in MS(t2) (DC-STSF without weights: physics-only)."""
    c = make_case(hc=14, wc=16, seed=1)
    ms2 = c.ms_t2.copy()
    ms2[:, 9:15, 20:30] = np.nan
    return c.hs_t1, c.ms_t1, ms2


@pytest.fixture(scope="module")
def fused(case: Any) -> tuple[xr.DataArray, xr.DataArray]:
    pred, sd = dcstsf.fuse(case.hs_t1, case.ms_t1, case.ms_t2, uncertainty=True)
    return dask.compute(pred, sd)


def test_default_is_one_dataarray(small: Any) -> None:
    out = dcstsf.fuse(*small, method="bicubic")
    assert isinstance(out, xr.DataArray)
    res = dcstsf.fuse(*small, method="bicubic", uncertainty=True)
    assert isinstance(res, FusionResult) and isinstance(res.sd, xr.DataArray)
    assert res.sd.chunks == res.prediction.chunks  # lazy, one chunk per tile
    ds = res.to_dataset()
    assert list(ds.data_vars) == ["reflectance", "reflectance_sd"] and ds.rio.crs == res.prediction.rio.crs


def test_sd_on_the_prediction_grid(case: Any, fused: tuple[xr.DataArray, xr.DataArray]) -> None:
    pred, sd = fused
    assert sd.dims == pred.dims and sd.shape == pred.shape and sd.dtype == np.float32
    for coord in ("band", "wavelength", "fwhm", "y", "x"):
        np.testing.assert_array_equal(sd[coord].values, pred[coord].values)
    assert sd.rio.crs == pred.rio.crs == case.ms_t1.rio.crs
    assert sd.rio.transform() == pred.rio.transform()
    assert sd.name == "reflectance_sd"
    cal = load_calibration()
    assert sd.attrs["uncertainty_calibration_sha256"] == cal.sha256
    assert sd.attrs["uncertainty_calibration_entry"] == "dcstsf"
    assert "physics-only" in sd.attrs["uncertainty_member"]
    assert sd.attrs["method"] == pred.attrs["method"] == "dcstsf"


def test_prediction_unchanged(case: Any, fused: tuple[xr.DataArray, xr.DataArray]) -> None:
    plain = dcstsf.fuse(case.hs_t1, case.ms_t1, case.ms_t2).compute()
    np.testing.assert_allclose(fused[0].values, plain.values, atol=1e-5)


def test_sd_positive_and_finite_where_the_prediction_is(fused: tuple[xr.DataArray, xr.DataArray]) -> None:
    pred, sd = fused
    assert np.isfinite(pred.values).all()
    assert np.isfinite(sd.values).all() and (sd.values > 0).all()


def test_nodata(small: Any) -> None:
    pred, sd = dask.compute(*dcstsf.fuse(*small, method="two-step", uncertainty=True))
    nan = np.isnan(pred.values)
    assert nan.any() and not nan.all()
    np.testing.assert_array_equal(np.isnan(sd.values), nan)
    assert (sd.values[~nan] > 0).all()


@pytest.mark.parametrize("method", ["dcstsf", "two-step"])
def test_tiled_equals_whole(small: Any, method: str) -> None:
    whole = dask.compute(*dcstsf.fuse(*small, method=method, uncertainty=True, chunk=512))
    tiled = dask.compute(*dcstsf.fuse(*small, method=method, uncertainty=True, chunk=18))
    for a, b in zip(whole, tiled):
        np.testing.assert_allclose(b.values, a.values, atol=1e-4, equal_nan=True)


def test_tiled_equals_whole_learned(case: Any, fused: tuple[xr.DataArray, xr.DataArray]) -> None:
    tiled = dask.compute(*dcstsf.fuse(case.hs_t1, case.ms_t1, case.ms_t2, uncertainty=True, chunk=24))
    for a, b in zip(fused, tiled):
        np.testing.assert_allclose(b.values, a.values, atol=1e-4)


def test_deterministic_and_rng_untouched(small: Any) -> None:
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = dask.compute(*dcstsf.fuse(*small, method="variational", uncertainty=True))
    assert torch.equal(torch.random.get_rng_state(), state)
    second = dask.compute(*dcstsf.fuse(*small, method="variational", uncertainty=True))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.values, b.values)


def test_measures_give_the_sd(case: Any, fused: tuple[xr.DataArray, xr.DataArray]) -> None:
    job = prepare(case.hs_t1, case.ms_t1, case.ms_t2, uncertainty=True, chunk=512)
    pred, measures, bad = whole_image_measures(job)
    assert not bad.any()
    state = job.uncertainty
    sd = standard_deviation(measures, state.entry, floor=state.calibration.floor)
    np.testing.assert_allclose(sd, fused[1].values, rtol=1e-5)
    np.testing.assert_allclose(pred, fused[0].values, atol=1e-5)

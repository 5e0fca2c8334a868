"""The lazy fusion: tiled equals whole-image for every method, blending, laziness, provenance, nodata."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from dcstsf.engine import fuse
from dcstsf.methods import available_methods, fuse_arrays
from dcstsf.methods.bicubic import Bicubic
from tests.engine.cases import HS_SENSOR, MS_BANDS, N_HS, WL, WideBlur, engine_model, instance_or_skip, make_case

# --------------------------------------------------------------------------------------------------
# seamless tiling
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_tiled_equals_whole_image_for_every_method(case: Any, name: str) -> None:
    model = engine_model()
    m = instance_or_skip(name, model)
    # fuse estimates the scene physics by default: the whole image with the same diagnosis
    whole = fuse_arrays(*case.arrays(), method=m, model=model, physics="estimated")
    for chunk in (21, 33):  # neither divides 90 x 111
        out = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=chunk)
        assert out.chunks[1][0] == chunk and sum(out.chunks[1]) == 90
        np.testing.assert_allclose(out.values, whole, atol=1e-4, rtol=0)
    # Dask-backed inputs (the fit then sees Dask arrays) with chunks unrelated to the tiles: same result.
    out = fuse(
        case.hs_t1.chunk({"y": 7, "x": 11}), case.ms_t1.chunk({"y": 25}), case.ms_t2.chunk({"x": 40}),
        method=m, hs_sensor=HS_SENSOR, chunk=33,
    )
    np.testing.assert_allclose(out.values, whole, atol=1e-4, rtol=0)


@pytest.mark.parametrize("unit_space", ["sensor", "coefficient"])
def test_dcstsf_network_tiles_match_whole_image_with_random_units(unit_space: str) -> None:
    """The network's declared receptive field bounds the real one (non-zero learned units)."""
    from dcstsf.methods import DCSTSF
    from dcstsf.models.network import DCSTSFConfig

    cfg = DCSTSFConfig(n_ms=len(MS_BANDS), rank=6, stages=1, hidden=8, layers=1, consistency_steps=1,
                       unit_space=unit_space)
    m = DCSTSF.untrained(cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m._net.parameters():  # the zero-initialised heads would hide the units' reach
            p.add_(0.05 * torch.randn_like(p))
    c = make_case(48, 52, seed=3)
    model = engine_model()
    whole = fuse_arrays(*c.arrays(), method=m, model=model, physics="estimated")
    halo = m.halo(model)
    assert halo < 144 - 45
    out = fuse(c.hs_t1, c.ms_t1, c.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=45)
    np.testing.assert_allclose(out.values, whole, atol=1e-4, rtol=0)


def test_blend_cross_fades_seams_of_an_under_declared_halo(case: Any) -> None:
    model = engine_model()
    m = WideBlur()
    whole = fuse_arrays(*case.arrays(), method=m, model=model)
    hard = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=30).values
    soft = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=30, blend=9).values
    err_hard, err_soft = np.abs(hard - whole), np.abs(soft - whole)
    assert err_hard.max() > 1e-3  # the seams are there
    # Largest jump across a tile boundary (row 30 | 31): blended output is smoother there.
    jump = lambda a: np.abs(np.diff(a[:, 28:33], axis=1)).max()  # noqa: E731
    assert jump(soft) < jump(hard)
    assert err_soft.mean() < err_hard.mean()
    # With a correct halo, blending changes nothing beyond rounding.
    exact = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=30, blend=6)
    np.testing.assert_allclose(exact.values, fuse_arrays(*case.arrays(), method="bicubic", model=model), atol=1e-5)


def test_inputs_smaller_than_the_halo() -> None:
    c = make_case(4, 5, seed=2)
    model = engine_model()
    m = WideBlur()
    out = fuse(c.hs_t1, c.ms_t1, c.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=6, halo=30)
    np.testing.assert_allclose(out.values, fuse_arrays(*c.arrays(), method=m, model=model), atol=1e-5)


# --------------------------------------------------------------------------------------------------
# laziness, metadata, nodata
# --------------------------------------------------------------------------------------------------


class _Counting(Bicubic):
    name = "counting-test"
    calls: ClassVar[list[tuple[int, ...]]] = []

    def apply(self, hs_t1, ms_t1, ms_t2, *, model, fitted):  # type: ignore[no-untyped-def,override]
        type(self).calls.append(ms_t1.shape)
        return super().apply(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted)


def test_fuse_is_lazy_until_computed(case: Any) -> None:
    _Counting.calls.clear()
    out = fuse(case.hs_t1.chunk({"y": 10}), case.ms_t1.chunk({"y": 30}), case.ms_t2.chunk({"y": 30}),
               method=_Counting(), hs_sensor=HS_SENSOR, chunk=33)
    assert _Counting.calls == []
    assert out.chunks == ((N_HS,), (33, 33, 24), (33, 33, 33, 12))
    assert type(out.data).__module__.startswith("dask")
    sub = out.isel(y=slice(0, 10), x=slice(0, 10)).values  # one tile only
    assert len(_Counting.calls) == 1 and sub.shape == (N_HS, 10, 10)
    out.values  # noqa: B018
    assert len(_Counting.calls) == 1 + 12


def test_output_carries_grid_bands_and_provenance(case: Any) -> None:
    out = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=33)
    assert out.dims == ("band", "y", "x") and out.dtype == np.float32
    assert out.rio.crs == case.ms_t1.rio.crs
    assert out.rio.transform() == case.ms_t1.rio.transform()
    np.testing.assert_array_equal(out["x"].values, case.ms_t1["x"].values)
    np.testing.assert_array_equal(out["y"].values, case.ms_t1["y"].values)
    assert list(out["band"].values) == list(HS_SENSOR.band_names)
    np.testing.assert_allclose(out["wavelength"].values, WL)
    assert "fwhm" in out.coords
    assert np.isnan(out.rio.nodata)
    a = out.attrs
    assert a["method"] == "bicubic" and a["ratio"] == 3 and a["chunk"] == 33 and a["halo"] == 6
    assert a["ms_bands"] == ",".join(MS_BANDS) and a["hs_sensor"] == "test-hs"
    assert "dcstsf_version" in a and json.loads(a["method_identity"])["method"] == "bicubic"
    assert [i["shape"] for i in json.loads(a["inputs"])] == [[N_HS, 30, 37], [6, 90, 111], [6, 90, 111]]


def test_nodata_is_propagated_and_tiling_stays_exact(case: Any) -> None:
    hs, ms1, ms2 = (a.copy(deep=True) for a in (case.hs_t1, case.ms_t1, case.ms_t2))
    hs[:, 4, 5] = np.nan  # coarse pixel -> fine rows 12:15, cols 15:18
    ms1[2, 40:44, 50:52] = np.nan  # one band enough
    ms2[:, 80, 100] = np.nan
    expect = np.zeros((90, 111), bool)
    expect[12:15, 15:18] = True
    expect[40:44, 50:52] = True
    expect[80, 100] = True
    whole = fuse(hs, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR, chunk=999).values
    tiled = fuse(hs, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21).values
    np.testing.assert_array_equal(np.isnan(tiled).any(axis=0), expect)
    np.testing.assert_array_equal(np.isnan(tiled).all(axis=0), expect)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    # In-memory fusion follows the same nodata policy: the same mask, the same scene-mean fill.
    ref = fuse_arrays(hs.values, ms1.values, ms2.values, method="bicubic", model=engine_model())
    np.testing.assert_array_equal(np.isnan(ref), np.isnan(tiled))
    np.testing.assert_allclose(tiled, ref, atol=1e-4)

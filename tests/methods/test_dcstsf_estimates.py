"""Tests for DCSTSF.estimates: the fusion result and SSJE's HS(t1) estimate."""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf import metrics
from dcstsf.methods import DCSTSF, fit_scene
from dcstsf.models.network import DCSTSFConfig
from dcstsf.operators import ObservationModel
from dcstsf.simulate import FusionCase


@pytest.fixture(scope="module")
def fitted_physics_only(mixed_case: FusionCase, model: ObservationModel) -> tuple[DCSTSF, dict]:
    method = DCSTSF.untrained(DCSTSFConfig(n_ms=model.n_ms))
    return method, fit_scene(method, *mixed_case.arrays(), model=model)


def test_estimates_give_the_fusion_result_and_ssje_hs_t1(
    fitted_physics_only: tuple[DCSTSF, dict], mixed_case: FusionCase, model: ObservationModel
) -> None:
    method, fitted = fitted_physics_only
    arrays = mixed_case.arrays()
    out = method.estimates(*arrays, model=model, fitted=fitted, outputs=("hs_t1", "hs_t2"))
    np.testing.assert_array_equal(out["hs_t2"], method.apply(*arrays, model=model, fitted=fitted))
    assert out["hs_t1"].shape == out["hs_t2"].shape == mixed_case.hs_t1_truth.shape
    # the latent estimate is HS at t1: closer to the truth at t1 than to the truth at t2, and the other way round
    t1, t2 = mixed_case.hs_t1_truth.values, mixed_case.hs_t2_truth.values
    assert metrics.psnr(out["hs_t1"], t1) > metrics.psnr(out["hs_t1"], t2) + 1.0
    assert metrics.psnr(out["hs_t2"], t2) > metrics.psnr(out["hs_t2"], t1) + 1.0
    region = (slice(6, 30), slice(9, 21))
    part = method.estimates(*arrays, model=model, fitted=fitted, region=region, outputs=("hs_t1",))
    assert list(part) == ["hs_t1"]
    np.testing.assert_allclose(part["hs_t1"], out["hs_t1"][:, region[0], region[1]], atol=1e-6)


def test_estimates_name_what_they_give(fitted_physics_only: tuple[DCSTSF, dict], mixed_case: FusionCase,
                                       model: ObservationModel) -> None:
    method, fitted = fitted_physics_only
    with pytest.raises(ValueError, match="'hs_t1' and/or 'hs_t2'"):
        method.estimates(*mixed_case.arrays(), model=model, fitted=fitted, outputs=("hs_t3",))


@pytest.mark.parametrize("which", [0, 1, 2])
def test_estimates_refuse_nodata(fitted_physics_only: tuple[DCSTSF, dict], mixed_case: FusionCase,
                                 model: ObservationModel, which: int) -> None:
    method, fitted = fitted_physics_only
    arrays = [np.array(a, np.float32) for a in mixed_case.arrays()]
    arrays[which][0, 3, 4] = np.nan if which != 1 else np.inf
    name = ("hs_t1", "ms_t1", "ms_t2")[which]
    with pytest.raises(ValueError, match=f"{name} holds NaN or Inf.*dcstsf.fuse"):
        method.estimates(*arrays, model=model, fitted=fitted)

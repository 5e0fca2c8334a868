"""Randomised sensor physics for pre-training: drawn within their ranges, responses moved but not rescaled,
and a sampler that simulates each case under its drawn physics and tells the network the estimable part."""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.training.data import CaseSampler
from dcstsf.training.degradations import DegradationRanges, perturb_response, random_physics
from tests.scenes import synthetic_scene


def _model() -> ObservationModel:
    return ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=["B02", "B03", "B04", "B08"], ratio=3)


def _centroid(row: np.ndarray, wl: np.ndarray) -> float:
    return float((row * wl).sum() / row.sum())


def test_perturbed_response_moves_each_band_and_keeps_its_integral() -> None:
    model = _model()
    wl = model.hs_sensor.centers_nm
    shifts, gains = np.array([3.0, -3.0, 0.0, 2.0]), np.array([1.0, 1.0, 1.02, 1.0])
    out = perturb_response(model.srf, wl, shifts_nm=shifts, gains=gains)
    for k in range(model.n_ms):
        assert out[k].sum() == pytest.approx(model.srf[k].sum() * gains[k], rel=1e-5)
        # the centroid moves by the shift (AHSI VNIR bands are 8.6 nm apart: interpolation error < 0.5 nm)
        assert _centroid(out[k], wl) - _centroid(model.srf[k], wl) == pytest.approx(shifts[k], abs=0.5)


def test_random_physics_within_ranges_and_told_model_keeps_tables_response() -> None:
    model = _model()
    ranges = DegradationRanges(psf_scale=(0.8, 1.5), shift_coarse=0.5, response_shift_nm=4.0, response_gain=0.03)
    rng = np.random.default_rng(3)
    for _ in range(20):
        true, told = random_physics(model, rng, ranges)
        factor = np.asarray(true.hs_sigma) / np.asarray(model.hs_sigma)
        assert np.allclose(factor, factor[0]) and 0.8 <= factor[0] <= 1.5
        assert all(abs(s) <= 0.5 * model.ratio for s in true.hs_shift)
        assert told.hs_shift == true.hs_shift and np.array_equal(told.hs_sigma, true.hs_sigma)
        assert np.array_equal(told.srf, model.srf) and not np.array_equal(true.srf, model.srf)
        assert told.physics == "estimated"


def test_ranges_from_config_and_bad_values() -> None:
    assert DegradationRanges.from_config({}) is None
    r = DegradationRanges.from_config({"psf_scale": [0.9, 1.2], "shift_coarse": 0.25})
    assert r == DegradationRanges(psf_scale=(0.9, 1.2), shift_coarse=0.25)
    with pytest.raises(DcstsfInputError, match="unknown key"):
        DegradationRanges.from_config({"blur": 1.0})
    with pytest.raises(DcstsfInputError, match="psf_scale"):
        DegradationRanges(psf_scale=(1.5, 1.0))


def test_sampler_draws_each_case_under_its_own_physics() -> None:
    model = _model()
    scene = synthetic_scene(48, 48, nb=model.n_hs, seed=1)
    scene = scene.assign_coords(wavelength=("band", model.hs_sensor.centers_nm))
    plain = CaseSampler([scene], model=model, patch=18, batch_size=2, rank=6, seed=0, batches_per_case=1)
    varied = CaseSampler([scene], model=model, patch=18, batch_size=2, rank=6, seed=0, batches_per_case=1,
                         degradations=DegradationRanges())
    assert plain.draw().model is None
    shifts = {varied.draw().model.hs_shift for _ in range(3)}  # type: ignore[union-attr]
    assert len(shifts) == 3
    # resumable: the state restores the same sequence of cases and physics
    state = varied.get_state()
    a = varied.draw()
    varied.set_state(state)
    b = varied.draw()
    assert a.model is not None and b.model is not None and a.model.hs_shift == b.model.hs_shift
    assert np.array_equal(a.hs_t1.numpy(), b.hs_t1.numpy())


def test_scene_pairs_feed_the_sampler() -> None:
    """Pairs carry their own change between the dates: a pair case's t2 truth differs from its t1 truth
    beyond noise, and pairs are drawn deterministically."""
    from dcstsf.training.loop import training_pairs

    pairs = training_pairs(1, size=48)
    again = training_pairs(1, size=48)
    assert np.array_equal(pairs[0].t1.values, again[0].t1.values)
    model = _model()
    scene = synthetic_scene(48, 48, nb=model.n_hs, seed=1).assign_coords(wavelength=("band", model.hs_sensor.centers_nm))
    sampler = CaseSampler([scene], model=model, patch=18, batch_size=2, rank=6, seed=0, pairs=pairs, pair_fraction=1.0)
    batch = sampler.draw()
    changed = np.abs(batch.hs_t2.numpy() - batch.hs_t1_fine.numpy()).mean()
    assert changed > 1e-3
    with pytest.raises(ValueError, match="pair_fraction"):
        CaseSampler([scene], model=model, patch=18, pairs=pairs, pair_fraction=0.0)

"""Per-scene state of DC-STSF: the MS normalisation is floored so no band is amplified."""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf.models.scene import MS_SIGMA_FLOOR, fit_scene_state
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import SceneSamples, expected_ms_spread, scene_samples
from dcstsf.simulate import simulate_case
from tests.scenes import synthetic_scene


@pytest.fixture(scope="module")
def samples(model4: ObservationModel) -> SceneSamples:
    case = simulate_case(synthetic_scene(48, 48, 60, seed=2), model=model4, change="mixed", seed=1)
    return scene_samples(*case.arrays(), model=model4)


def test_floor_leaves_consistent_bands_alone(samples: SceneSamples, model4: ObservationModel) -> None:
    """MS bands that agree with HS(t1) are normalised by their own spread, exactly as without the floor."""
    ratio = samples.ms1.std(axis=0) / expected_ms_spread(samples, model=model4)
    assert ratio.min() > 1.5 * MS_SIGMA_FLOOR
    state = fit_scene_state(samples, model=model4, rank=8)
    np.testing.assert_array_equal(state["ms_sigma"], (samples.ms1.std(axis=0) + 1e-4).astype(np.float32))


@pytest.mark.parametrize("factor", [0.0, 1e-3, 0.1])
def test_flat_band_is_not_amplified(samples: SceneSamples, model4: ObservationModel, factor: float) -> None:
    """A band with little or none of the spread HS(t1) predicts for it: its predicted values, normalised,
    spread by at most ``1 / MS_SIGMA_FLOOR`` (without the floor: ``1 / factor``, or 1e4 / spread for a
    constant band), like every other band."""
    ms1 = samples.ms1.copy()
    ms1[:, 0] = ms1[:, 0].mean() + factor * (ms1[:, 0] - ms1[:, 0].mean())
    flat = SceneSamples(samples.hs, ms1, samples.ms2)
    state = fit_scene_state(flat, model=model4, rank=8)
    expected = expected_ms_spread(flat, model=model4)
    amplification = expected / state["ms_sigma"]
    assert amplification.max() <= 1.0 / MS_SIGMA_FLOOR
    # the forward rows (the HS-predicted bands, normalised) stay of one size
    rows = np.linalg.norm(state["ms_forward"], axis=1)
    assert rows[0] <= 3.0 * rows[1:].max()

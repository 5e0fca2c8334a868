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


def test_trust_is_full_for_consistent_bands(samples: SceneSamples, model4: ObservationModel) -> None:
    state = fit_scene_state(samples, model=model4, rank=8)
    np.testing.assert_array_equal(state["ms_trust"], np.ones(model4.n_ms, np.float32))


@pytest.mark.parametrize(("factor", "expected"), [(0.1, 0.0), (10.0, 0.0), (0.45, 0.5), (0.8, 1.0), (1.3, 1.0)])
def test_trust_falls_for_a_band_at_odds_with_hs(
    samples: SceneSamples, model4: ObservationModel, factor: float, expected: float
) -> None:
    """A band whose contrast at t1 is a fraction or a multiple of what HS(t1) predicts is not followed;
    the other bands keep full trust."""
    from dcstsf.models.scene import ms_trust

    ratio = samples.ms1.std(axis=0) / expected_ms_spread(samples, model=model4)
    ms1 = samples.ms1.copy()
    # scale band 1's contrast to `factor` times what HS(t1) predicts
    ms1[:, 1] = ms1[:, 1].mean() + factor / ratio[1] * (ms1[:, 1] - ms1[:, 1].mean())
    trust = ms_trust(SceneSamples(samples.hs, ms1, samples.ms2), model=model4)
    assert trust[1] == pytest.approx(expected, abs=1e-6)
    np.testing.assert_array_equal(np.delete(trust, 1), 1.0)

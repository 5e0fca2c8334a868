"""The per-pixel measures: band mapping, local RMS, MS(t2) residual, unexplained band variance."""

from __future__ import annotations

import numpy as np
import torch

from dcstsf.operators import ObservationModel, observe_ms
from dcstsf.uncertainty import band_mapping, local_rms, ms_residual, unexplained_band_sd
from tests.scenes import synthetic_scene


def test_band_mapping(model: ObservationModel) -> None:
    w = band_mapping(model)
    assert w.shape == (model.n_hs, model.n_ms)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert (w >= 0).all()
    wl = model.hs_sensor.centers_nm
    # the bluest HS bands take B02 alone, the longest ones B12 alone
    names = list(model.ms_sensor.band_names)
    assert w[np.argmin(wl), names.index("B02")] == 1.0
    assert w[np.argmax(wl), names.index("B12")] == 1.0


def test_local_rms() -> None:
    x = np.full((2, 9, 11), -0.25, np.float32)
    np.testing.assert_allclose(local_rms(x, 1.0), 0.25, rtol=1e-6)
    spike = np.zeros((1, 15, 15), np.float32)
    spike[0, 7, 7] = 1.0
    out = local_rms(spike, 1.0)
    assert out[0, 7, 7] == out.max() and out[0, 0, 0] == 0.0  # finite reach: 3 sigma


def test_residual_of_the_truth_is_zero(model4: ObservationModel) -> None:
    truth = synthetic_scene(ny=24, nx=24, nb=60)
    from dcstsf.simulate import resample_to_sensor

    x = resample_to_sensor(truth, model4.hs_sensor).values.astype(np.float32)
    ms = observe_ms(model4, torch.from_numpy(x)).numpy()
    res = ms_residual(x, ms, model=model4, sigma=1.0)
    assert res.shape == ms.shape and float(np.abs(res).max()) < 1e-5
    assert float(ms_residual(x, ms + 0.01, model=model4, sigma=1.0).min()) > 0.0099


def test_unexplained_band_sd(model4: ObservationModel) -> None:
    from dcstsf.simulate import simulate_case

    case = simulate_case(synthetic_scene(ny=36, nx=36, nb=60), model=model4, change="none", seed=0)
    sd = unexplained_band_sd(*case.arrays(), model=model4)
    assert sd.shape == (model4.n_hs,) and (sd >= 0).all() and np.isfinite(sd).all()
    good = np.asarray(model4.hs_sensor.good, bool)
    # four MS bands do not explain 166 HS bands exactly, but most of their spread
    spread = case.hs_t1.values[good].reshape(int(good.sum()), -1).std(axis=1)
    assert (sd[good] > 0).all() and np.median(sd[good] / spread) < 0.5

"""Noise-aware MS consistency: the scene's MS noise estimate, the shared local gain, exact crops and the
method's option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcstsf.methods import DCSTSF, fuse_arrays
from dcstsf.models import DCSTSFConfig, DCSTSFNet, MsNoiseOptions
from dcstsf.models.ms_noise import estimate_ms_noise, noise_gain
from dcstsf.operators import ObservationModel
from dcstsf.simulate import simulate_case
from tests.models.cases import network_inputs, run_beside, smooth_cube


def _textured(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A reflectance-like scene with texture at the pixel scale everywhere (fields of 1 to 2 pixels)."""
    n, h, w = shape
    fields = rng.uniform(0.05, 0.5, (n, -(-h // 2), -(-w // 2)))
    return 0.5 * (np.kron(fields, np.ones((1, 2, 2)))[:, :h, :w] + rng.uniform(0.05, 0.5, shape))


def test_noise_estimate_ignores_texture_and_sparse_change() -> None:
    rng = np.random.default_rng(0)
    sigma = np.array([0.002, 0.004, 0.008])
    windows1, windows2 = [], []
    for _ in range(2):
        scene = _textured(rng, (3, 80, 90))
        later = scene.copy()
        later[:, 10:30, 20:45] += 0.2  # an abrupt change on a tenth of the window
        windows1.append(scene + rng.standard_normal(scene.shape) * sigma[:, None, None])
        windows2.append(later + rng.standard_normal(scene.shape) * sigma[:, None, None])
    est = estimate_ms_noise(windows1, windows2)
    np.testing.assert_allclose(est, sigma, rtol=0.1)
    # the texture alone would be taken for noise several times the true level by a one-date estimate
    assert estimate_ms_noise(windows1, [np.zeros_like(w) for w in windows1])[0] > 3 * sigma[0]


def test_noise_estimate_without_a_usable_window_turns_the_steps_off() -> None:
    est = estimate_ms_noise([np.zeros((2, 2, 5))], [np.zeros((2, 2, 5))])
    assert est.shape == (2,) and np.isinf(est).all()
    r = torch.randn(1, 2, 9, 9)
    assert float(noise_gain(r, torch.as_tensor(est, dtype=torch.float32) ** 2, window=5).abs().max()) == 0.0


def test_gain_leaves_noise_alone_and_follows_signal() -> None:
    torch.manual_seed(0)
    noise = torch.randn(1, 4, 64, 64) * 0.01
    var = torch.full((4,), 1e-4)
    assert float(noise_gain(noise, var, window=5).mean()) < 0.2
    signal = noise.clone()
    signal[..., 20:40, 20:40] += 0.1
    gain = noise_gain(signal, var, window=5)
    assert float(gain[..., 24:36, 24:36].min()) > 0.95
    # one gain for every band: a (B, 1, H, W) map
    assert gain.shape == (1, 1, 64, 64)
    # noise-free MS: the whole residual is followed
    assert float(noise_gain(signal, torch.zeros(4), window=5)[..., 24:36, 24:36].min()) == 1.0


@pytest.mark.parametrize(("steps", "window"), [(-1, 5), (9, 5), (2, 4), (2, 33)])
def test_options_are_checked(steps: int, window: int) -> None:
    with pytest.raises(ValueError, match="noise-aware MS consistency"):
        MsNoiseOptions(steps=steps, window=window)


def test_network_needs_the_scene_noise(model: ObservationModel, case) -> None:
    t, state, kw = network_inputs(case, model, rank=6)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=6, stages=1, hidden=8, layers=1, ms_noise_steps=2)).eval()
    with pytest.raises(ValueError, match="ms_noise"), torch.no_grad():
        net(*t, state, **kw)


def test_noise_steps_keep_crops_exact_and_move_towards_ms_t2(model: ObservationModel) -> None:
    """The steps' reach (MS blur plus half the window, per step) enters the receptive field: crops with
    margins of that field stay exact. With noise-free MS they pull the estimate's MS view towards MS(t2)."""
    torch.manual_seed(4)
    cfg = dict(n_ms=4, rank=6, stages=1, hidden=8, layers=1, consistency_steps=1)
    net = DCSTSFNet(DCSTSFConfig(**cfg, ms_noise_steps=2, ms_noise_window=7)).eval()
    base = DCSTSFNet(DCSTSFConfig(**cfg)).eval()
    base.load_state_dict(net.state_dict())
    c = simulate_case(smooth_cube(model, 150, 144), model=model, change="abrupt", seed=2, ms_snr_db=None)
    t, state, kw = network_inputs(c, model, rank=6)
    state["ms_noise"] = torch.zeros(4)
    assert net.receptive_field(**kw) > base.receptive_field(**kw)
    full, plain, m = run_beside(net, base, (t, state, kw))
    ms2 = torch.from_numpy(c.ms_t2.values)[None]

    def ms_misfit(x: torch.Tensor) -> float:
        return float((model.degrade_ms(x) - ms2)[..., m:-m, m:-m].pow(2).mean())

    assert ms_misfit(full["hs_t2"]) < 0.7 * ms_misfit(plain["hs_t2"])


def test_method_option_estimates_the_noise_and_keeps_tiles_exact() -> None:
    """``DCSTSF(ms_noise=...)`` sets the steps on any network (the caller's keeps its configuration), the fit
    estimates the scene's MS noise, and tiled fusion equals the whole image."""
    from dcstsf.engine import fuse
    from tests.engine.cases import HS_SENSOR, engine_model, make_case

    case = make_case(48, 51, seed=5)
    model = engine_model()
    net = DCSTSFNet(DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1)).eval()
    m = DCSTSF(network=net, ms_noise=MsNoiseOptions(steps=2))
    fitted = m.fit(*case.arrays(), model=model)
    assert fitted["ms_noise"].shape == (model.n_ms,) and np.isfinite(fitted["ms_noise"]).all()
    whole = fuse_arrays(*case.arrays(), method=m, model=model)
    assert net.config.ms_noise_steps == 0 and m.identity()["config"]["ms_noise_steps"] == 2
    assert m.halo(model) > DCSTSF(network=net).halo(model)
    assert not np.allclose(whole, fuse_arrays(*case.arrays(), method=DCSTSF(network=net), model=model), atol=1e-6)
    tiled = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=DCSTSF(network=net, ms_noise=MsNoiseOptions(steps=2)),
                 hs_sensor=HS_SENSOR, chunk=30, physics="tables")
    np.testing.assert_allclose(tiled.values, whole, atol=1e-4, rtol=0)


def test_default_is_off() -> None:
    from dcstsf.methods.dcstsf_method import DEFAULT_MS_NOISE

    assert DEFAULT_MS_NOISE.steps == 0 and DCSTSF().ms_noise == DEFAULT_MS_NOISE

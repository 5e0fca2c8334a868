"""DC-STSF beyond its shipped weights: any sensor pair fuses (physics-only network), and scene adaptation
of the learned units is deterministic, lowers its own loss and keeps tiled fusion equal to whole-image."""

from __future__ import annotations

import copy
import json

import numpy as np

from dcstsf.engine import fuse
from dcstsf.methods import DCSTSF, fuse_arrays
from dcstsf.models.network import DCSTSFConfig, DCSTSFNet
from dcstsf.training.adapt import AdaptOptions, adapt_to_scene
from tests.engine.cases import HS_SENSOR, engine_model, make_case


def test_any_sensor_pair_fuses_with_the_physics_only_network() -> None:
    """A custom HS sensor (wavelengths only) with six Sentinel-2 bands has no shipped weights: the default
    method fuses with its learned units at zero, the classical unrolled iteration."""
    case = make_case(20, 22, seed=1)
    model = engine_model()
    m = DCSTSF()
    out = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=30, physics="tables")
    identity = json.loads(out.attrs["method_identity"])
    assert identity["weights"].startswith("none: physics-only") and "weights_sha256" not in out.attrs
    physics_only = DCSTSF.untrained(DCSTSFConfig(n_ms=model.n_ms))
    whole = fuse_arrays(*case.arrays(), method=physics_only, model=model)
    np.testing.assert_allclose(out.values, whole, atol=1e-4, rtol=0)
    assert np.isfinite(out.values).all()


def test_adaptation_lowers_its_loss_and_is_deterministic() -> None:
    case = make_case(24, 24, seed=2)
    model = engine_model()
    net = DCSTSFNet(DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1)).eval()
    hs = [case.hs_t1.values.astype(np.float64)]
    options = AdaptOptions(steps=8, lr=2e-3, patch=18, batch_size=2)
    a = adapt_to_scene(net, hs, model=model, options=options)
    b = adapt_to_scene(net, hs, model=model, options=options)
    assert a.loss_after < a.loss_before
    assert a.parameters.keys() == b.parameters.keys()
    assert all(np.array_equal(a.parameters[k], b.parameters[k]) for k in a.parameters)
    # the network given is not changed
    assert all(float(p.detach().abs().sum()) == 0 for n, p in net.named_parameters() if n.endswith("head.weight"))


def test_adaptation_time_limit(caplog) -> None:  # type: ignore[no-untyped-def]
    case = make_case(24, 24, seed=4)
    model = engine_model()
    net = DCSTSFNet(DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1)).eval()
    options = AdaptOptions(steps=50, patch=18, batch_size=2, max_seconds=0.0)
    a = adapt_to_scene(net, [case.hs_t1.values.astype(np.float64)], model=model, options=options)
    assert a.steps == 0 and "time limit" in caplog.text
    untouched = net.state_dict()
    assert all(np.array_equal(a.parameters[k], untouched[k].numpy()) for k in untouched)


def test_a_non_finite_gradient_is_skipped_and_never_reaches_the_output(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    """A degenerate batch (a NaN loss) skips its update; if every step is degenerate the network is used as loaded."""
    import torch

    import dcstsf.training.loop as loop

    case = make_case(24, 24, seed=2)
    model = engine_model()
    net = DCSTSFNet(DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1)).eval()
    hs = [case.hs_t1.values.astype(np.float64)]
    options = AdaptOptions(steps=6, lr=2e-3, patch=18, batch_size=2)
    real = loop.batch_loss
    calls = {"n": 0}

    def poisoned_on(bad: set[int]):  # type: ignore[no-untyped-def]
        def batch_loss(*args, **kwargs):  # type: ignore[no-untyped-def]
            loss, parts = real(*args, **kwargs)
            calls["n"] += 1
            return (loss * torch.tensor(float("nan")) if calls["n"] in bad else loss), parts
        return batch_loss

    held = options.eval_batches  # the held loss is measured before the steps
    monkeypatch.setattr(loop, "batch_loss", poisoned_on({held + 2}))
    a = adapt_to_scene(net, hs, model=model, options=options)
    assert a.skipped == 1 and "1 of 6 steps" in caplog.text
    assert all(np.isfinite(v).all() for v in a.parameters.values()) and np.isfinite(a.loss_after)

    calls["n"] = 0
    monkeypatch.setattr(loop, "batch_loss", poisoned_on(set(range(held + 1, 10_000))))
    b = adapt_to_scene(net, hs, model=model, options=options)
    untouched = net.state_dict()
    assert b.skipped == 6 and b.loss_after == b.loss_before and "used as loaded" in caplog.text
    assert all(np.array_equal(b.parameters[k], untouched[k].numpy()) for k in untouched)


def test_tiled_equals_whole_image_with_adaptation() -> None:
    case = make_case(24, 26, seed=3)
    model = engine_model()
    cfg = DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1)
    options = AdaptOptions(steps=3, patch=18, batch_size=2)
    net = DCSTSFNet(cfg).eval()  # one initialisation (the hidden layers start random) for every run

    def method() -> DCSTSF:
        return DCSTSF(network=copy.deepcopy(net), adapt=options)

    m = method()
    whole = fuse_arrays(*case.arrays(), method=m, model=model)
    assert "adapt" in m.identity() and m.identity()["adapt"]["steps"] == 3
    tiled = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=method(), hs_sensor=HS_SENSOR, chunk=30, physics="tables")
    np.testing.assert_allclose(tiled.values, whole, atol=1e-4, rtol=0)
    # the adapted parameters are part of the fitted state, so they change its hash
    plain = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=DCSTSF(network=copy.deepcopy(net)),
                 hs_sensor=HS_SENSOR, chunk=30, physics="tables")
    assert plain.attrs["fitted_sha256"] != tiled.attrs["fitted_sha256"]


def test_defaults_follow_the_validation_rule(model, model4) -> None:  # type: ignore[no-untyped-def]
    """The manifest records what the rules of docs/results.md chose: the 10-band network whose only learned
    part is SFTN and the 4-band weights trained with scene pairs and randomised physics, both without scene
    adaptation."""
    from dcstsf.models.checkpoint import default_weights

    shipped = default_weights(ms_bands=list(model.ms_sensor.band_names), hs_sensor=model.hs_sensor.name,
                              ms_sensor=model.ms_sensor.name, ratio=3)
    assert (shipped.default_network, shipped.adapt_steps) == ("shipped", 0)
    ten = DCSTSF(adapt=None)
    ten.network(model)
    assert ten.adapt.steps == 0 and ten.identity()["weights_sha256"] == shipped.sha256
    assert ten.identity()["config"]["learned_units"] is False and ten.identity()["config"]["use_sftn"] is True
    four_shipped = default_weights(ms_bands=list(model4.ms_sensor.band_names), hs_sensor=model4.hs_sensor.name,
                                   ms_sensor=model4.ms_sensor.name, ratio=3)
    assert (four_shipped.default_network, four_shipped.adapt_steps) == ("shipped", 0)
    four = DCSTSF()
    net = four.network(model4)
    assert four.adapt.steps == 0 and four.identity()["weights_sha256"] == four_shipped.sha256
    assert any(float(p.detach().abs().sum()) > 0 for n, p in net.named_parameters() if n.endswith("head.weight"))
    # an explicit choice wins over the manifest
    explicit = DCSTSF(adapt=AdaptOptions(steps=7))
    explicit.network(model)
    assert explicit.adapt.steps == 7 and explicit.identity()["adapt"]["steps"] == 7


def test_a_network_without_seu_and_ecu_is_adapted_too() -> None:
    """Adaptation tunes whatever the network learns (here SFTN and the step sizes): with SSJE's learned
    units off it is not silently skipped."""
    case = make_case(24, 24, seed=6)
    model = engine_model()
    net = DCSTSFNet(DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1, learned_units=False)).eval()
    m = DCSTSF(network=copy.deepcopy(net), adapt=AdaptOptions(steps=3, patch=18, batch_size=2))
    adapted = fuse_arrays(*case.arrays(), method=m, model=model)
    assert m.identity()["adapt"]["steps_made"] == 3
    plain = fuse_arrays(*case.arrays(), method=DCSTSF(network=copy.deepcopy(net)), model=model)
    assert float(np.abs(adapted - plain).max()) > 1e-6


def test_consistency_patches_leave_an_interior() -> None:
    """Full-resolution patches too small for the consistency margins would make the loss NaN and skip every
    step: adapt_to_scene refuses them, and the method grows its patches (or adapts without that loss)."""
    import pytest

    from dcstsf.models.scene import fit_scene_state, state_to_tensors
    from dcstsf.scene_stats import scene_samples
    from dcstsf.training.adapt import ScenePatches, consistency_margin, consistency_patch

    case = make_case(24, 24, seed=5)
    model = engine_model()
    net = DCSTSFNet(DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1)).eval()
    hs, ms1, ms2 = (np.asarray(a, np.float64) for a in case.arrays())
    state = state_to_tensors(fit_scene_state(scene_samples(hs, ms1, ms2, model=model), model=model, rank=6))
    small = 2 * consistency_margin(model) * model.ratio
    with pytest.raises(ValueError, match="inside the consistency margins"):
        adapt_to_scene(net, [hs], model=model, options=AdaptOptions(steps=1, patch=18, batch_size=2),
                       observations=ScenePatches([hs], [ms1], [ms2], ratio=model.ratio, patch=small), state=state)
    grown = consistency_patch(model, patch=small, side=24)
    assert grown is not None and grown // model.ratio - 2 * consistency_margin(model) >= 2
    assert consistency_patch(model, patch=small, side=2 * consistency_margin(model)) is None


def test_full_resolution_consistency_is_lowered_by_adaptation() -> None:
    """The adaptation's second loss, on the scene's real observations, goes down and stays deterministic."""
    import torch

    from dcstsf.models.scene import fit_scene_state, state_to_tensors
    from dcstsf.scene_stats import scene_samples
    from dcstsf.training.adapt import ScenePatches

    case = make_case(24, 24, seed=5)
    model = engine_model()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the hidden layers start random: one initialisation whatever ran before
        net = DCSTSFNet(DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1)).eval()
    hs, ms1, ms2 = (np.asarray(a, np.float64) for a in case.arrays())
    state = state_to_tensors(fit_scene_state(scene_samples(hs, ms1, ms2, model=model), model=model, rank=6))
    obs = ScenePatches([hs], [ms1], [ms2], ratio=model.ratio, patch=36)
    options = AdaptOptions(steps=20, lr=5e-3, patch=18, batch_size=2, consistency=5.0)
    a = adapt_to_scene(net, [hs], model=model, options=options, observations=obs, state=state)
    b = adapt_to_scene(net, [hs], model=model, options=options, observations=obs, state=state)
    assert np.isfinite(a.consistency_before) and a.consistency_after < 0.95 * a.consistency_before
    assert a.sha256 == b.sha256
    off = adapt_to_scene(net, [hs], model=model, options=AdaptOptions(steps=2, patch=18, batch_size=2, consistency=0.0),
                         observations=obs, state=state)
    assert np.isnan(off.consistency_before)


def test_device_choice(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest
    import torch

    from dcstsf.errors import DcstsfInputError
    from dcstsf.models.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu" and resolve_device("cpu").type == "cpu"
    with pytest.raises(DcstsfInputError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(DcstsfInputError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(DcstsfInputError, match="no CUDA device"):
        DCSTSF(device="cuda")
    assert DCSTSF().device.type == "cpu"


def test_tiled_equals_whole_image_with_the_windowed_temporal_map() -> None:
    """The windowed map's reach widens the halo; tiles still equal the whole image, and the caller's
    network keeps its own configuration."""
    from dcstsf.models import LocalMapOptions

    case = make_case(48, 51, seed=5)
    model = engine_model()
    net = DCSTSFNet(DCSTSFConfig(n_ms=model.n_ms, rank=6, stages=1, hidden=8, layers=1)).eval()
    lm = LocalMapOptions(radius=6, ridge=0.05)
    m = DCSTSF(network=net, local_map=lm)
    whole = fuse_arrays(*case.arrays(), method=m, model=model)
    assert net.config.local_map_radius == 0 and m.identity()["config"]["local_map_radius"] == 6
    assert m.halo(model) > DCSTSF(network=net).halo(model)
    tiled = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=DCSTSF(network=net, local_map=lm), hs_sensor=HS_SENSOR,
                 chunk=30, physics="tables")
    np.testing.assert_allclose(tiled.values, whole, atol=1e-4, rtol=0)


def test_adapted_physics_only_network_is_the_same_in_every_run() -> None:
    """Without shipped weights, adaptation trains the physics-only network's hidden layers: they come from a
    fixed seed, so two methods (two runs, two processes) adapt alike, and the caller's random stream is kept."""
    import torch

    case = make_case(20, 22, seed=1)
    runs = [fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=DCSTSF(adapt=AdaptOptions(steps=2)), hs_sensor=HS_SENSOR,
                 chunk=30, physics="tables").values for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    DCSTSF.untrained(DCSTSFConfig(n_ms=engine_model().n_ms))
    assert torch.equal(torch.rand(3), expected)

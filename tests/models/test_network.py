"""DC-STSF network: shapes, gradients, determinism, the physics-only start, windows and strips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcstsf.methods import DCSTSF, fuse_arrays
from dcstsf.models import DCSTSFConfig, DCSTSFNet, fit_scene_state, state_to_tensors
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import scene_samples
from dcstsf.simulate import simulate_case
from tests.models.cases import forward, smooth_cube


def test_shapes_and_gradients(model: ObservationModel, case) -> None:
    torch.manual_seed(0)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=2, hidden=8))
    # give the zero-initialised heads some weight so gradients reach every layer
    for unit in [*net.seu, *net.ecu, net.sftn]:
        torch.nn.init.normal_(unit.head.weight, std=1e-3)
    out = forward(net, case, model)
    assert out["hs_t2"].shape == (1, model.n_hs, 36, 42)
    assert out["hs_t1"].shape == (1, model.n_hs, 36, 42)
    loss = (out["hs_t2"] - torch.from_numpy(case.hs_t2_truth.values)[None]).abs().mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in net.seu.parameters())


def test_deterministic(model: ObservationModel, case) -> None:
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=2, hidden=8)).eval()
    with torch.no_grad():
        a = forward(net, case, model)["hs_t2"]
        b = forward(net, case, model)["hs_t2"]
    assert torch.equal(a, b)


def test_physics_only_beats_bicubic(model: ObservationModel, case) -> None:
    """The untrained network is the classical alternating projection and must already help."""
    truth = case.hs_t2_truth.values
    pred = fuse_arrays(*case.arrays(), method=DCSTSF.untrained(DCSTSFConfig(n_ms=4, rank=8)), model=model)
    bic = fuse_arrays(*case.arrays(), method="bicubic", model=model)
    assert np.mean((pred - truth) ** 2) < 0.5 * np.mean((bic - truth) ** 2)


def test_no_change_noise_free_recovers_truth(model: ObservationModel) -> None:
    c = simulate_case(smooth_cube(model, 36, 36, seed=5), model=model, change="none", seed=0,
                      hs_snr_db=None, ms_snr_db=None)
    pred = fuse_arrays(*c.arrays(), method=DCSTSF.untrained(DCSTSFConfig(n_ms=4, rank=8, stages=4)), model=model)
    rmse = float(np.sqrt(np.mean((pred - c.hs_t2_truth.values) ** 2)))
    assert rmse < 0.01


@pytest.mark.parametrize("unit_space", ["sensor", "coefficient"])
def test_crop_gives_the_same_values_as_the_full_window(model: ObservationModel, case, unit_space: str) -> None:
    """Expanding to n_hs bands on a region only (what the engine asks for) changes no value."""
    torch.manual_seed(2)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=2, hidden=8, unit_space=unit_space)).eval()
    for unit in [*net.seu, *net.ecu, net.sftn]:
        torch.nn.init.normal_(unit.head.weight, std=1e-2)
    hs, ms1, ms2 = case.arrays()
    state = state_to_tensors(fit_scene_state(scene_samples(hs, ms1, ms2, model=model), model=model, rank=8))
    t = [torch.from_numpy(a)[None] for a in (hs, ms1, ms2)]
    kw = dict(ratio=3, hs_sigma=float(np.median(model.hs_sigma)), ms_sigma=model.ms_sigma)
    with torch.no_grad():
        full = net(*t, state, **kw)
        for ys, xs in [(slice(9, 27), slice(3, 40)), (slice(0, 36), slice(0, 6)), (slice(30, 36), slice(36, 42))]:
            part = net(*t, state, crop=(ys, xs), **kw)
            for key in ("hs_t2", "hs_t1"):
                torch.testing.assert_close(part[key], full[key][..., ys, xs], rtol=0, atol=1e-6)
        only = net(*t, state, outputs=("hs_t2",), **kw)
    assert set(only) == {"hs_t2"}
    # the in-place inference expansion equals the autograd (training) one
    trained_path = net(*t, state, **kw)
    for key in ("hs_t2", "hs_t1"):
        torch.testing.assert_close(trained_path[key].detach(), full[key], rtol=0, atol=1e-6)


@pytest.mark.parametrize("unit_space", ["sensor", "coefficient"])
def test_crop_with_interior_margins_computes_later_steps_on_a_smaller_window(
    model: ObservationModel, unit_space: str
) -> None:
    """Margins of at least the receptive field (the engine's halo) are cut step by step, exactly."""
    torch.manual_seed(3)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=6, stages=1, hidden=8, layers=1, consistency_steps=1,
                                 unit_space=unit_space)).eval()
    with torch.no_grad():
        for p in net.parameters():  # non-zero units: their reach counts
            p.add_(0.05 * torch.randn_like(p))
    c = simulate_case(smooth_cube(model, 150, 153), model=model, change="mixed", seed=1)
    hs, ms1, ms2 = c.arrays()
    state = state_to_tensors(fit_scene_state(scene_samples(hs, ms1, ms2, model=model), model=model, rank=6))
    t = [torch.from_numpy(a)[None] for a in (hs, ms1, ms2)]
    kw = dict(ratio=3, hs_sigma=float(np.median(model.hs_sigma)), ms_sigma=model.ms_sigma)
    rf = net.receptive_field(**kw)
    assert rf < 45
    seen: list[tuple[int, int]] = []
    net.sftn.register_forward_hook(lambda mod, args, out: seen.append(tuple(args[0].shape[-2:])))
    with torch.no_grad():
        full = net(*t, state, **kw)
        # interior on all sides; then the top-left corner (image edges: never cut) with interior bottom/right
        for ys, xs in [(slice(45, 105), slice(48, 102)), (slice(0, 60), slice(0, 57))]:
            seen.clear()
            part = net(*t, state, crop=(ys, xs), **kw)
            for key in ("hs_t2", "hs_t1"):
                torch.testing.assert_close(part[key], full[key][..., ys, xs], rtol=0, atol=1e-5)
            (h_seen, w_seen), = seen
            assert h_seen < 150 and w_seen < 153  # the SFTN ran on a cut window
            assert h_seen >= ys.stop - ys.start and w_seen >= xs.stop - xs.start


@pytest.mark.parametrize("height", [1, 9, 23])
def test_unit_row_strips_give_the_whole_window_result(monkeypatch: pytest.MonkeyPatch, height: int) -> None:
    """In inference a learned unit runs strip by strip; edge rows (replicate padding) and strip seams
    must equal one call on the concatenated input, and training (autograd) keeps the single call."""
    import dcstsf.models.network as network

    torch.manual_seed(0)
    unit = network.ConvUnit(5, 3, hidden=4, layers=2)
    torch.nn.init.normal_(unit.head.weight)  # the zero-initialised head would hide every difference
    parts = [torch.randn(1, 2, height, 9), torch.randn(1, 3, height, 9)]
    with torch.no_grad():
        whole = unit(torch.cat(parts, dim=1))
    # the fewest rows a strip may have (4 x layers = 8): 9 rows make a strip of 8 and one of 1, 23 make
    # three; a single row is one call
    monkeypatch.setattr(network, "UNIT_STRIP_ELEMENTS", 4 * 9 * 2)
    with torch.inference_mode():
        strips = unit.forward_parts(parts)
    torch.testing.assert_close(strips, whole, rtol=1e-5, atol=1e-6)
    trained = unit.forward_parts([p.requires_grad_() for p in parts])
    assert trained.requires_grad
    torch.testing.assert_close(trained.detach(), whole, rtol=1e-5, atol=1e-6)
    seen: list[str] = []
    unit.apply(lambda module: seen.append(type(module).__name__))  # nn.Module.apply is not shadowed
    assert seen[-1] == "ConvUnit"


def test_result_does_not_depend_on_the_number_of_threads(model: ObservationModel, case) -> None:
    """A tile gets as many threads as the run leaves it; its result must not change with them."""
    hs, ms1, ms2 = case.arrays()
    method = DCSTSF()
    fitted = method.fit(hs, ms1, ms2, model=model)
    before = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append(method.apply(hs, ms1, ms2, model=model, fitted=fitted))
    finally:
        torch.set_num_threads(before)
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])

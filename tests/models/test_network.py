"""DC-STSF network: shapes, gradients, determinism, the physics-only start, windows and strips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcstsf.methods import DCSTSF, fuse_arrays
from dcstsf.models import DCSTSFConfig, DCSTSFNet
from dcstsf.operators import ObservationModel
from dcstsf.simulate import simulate_case
from tests.models.cases import forward, network_inputs, run_beside, smooth_cube


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


def test_output_lies_in_the_scene_subspace_unless_the_remainder_is_kept(model: ObservationModel, case) -> None:
    t, state, kw = network_inputs(case, model, rank=8)
    basis, mu, scale = state["basis"], state["mu"][:, None], state["scale"]
    outside = {}
    with torch.no_grad():
        for keep in (False, True):
            out = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, keep_remainder=keep)).eval()(*t, state, **kw)["hs_t2"][0]
            x = (out.reshape(model.n_hs, -1) - mu) / scale
            outside[keep] = float((x - basis @ (basis.T @ x)).norm() / x.norm())
    assert outside[False] < 1e-5
    assert outside[True] > 1e-3


def test_dropping_the_remainder_removes_hs_noise(model: ObservationModel) -> None:
    """Outside the subspace, a noisy HS(t1) holds mostly its noise: the output is closer to the truth without it."""
    c = simulate_case(smooth_cube(model, 36, 36, seed=5), model=model, change="none", seed=0,
                      hs_snr_db=30.0, ms_snr_db=None)
    err = {}
    for keep in (False, True):
        method = DCSTSF.untrained(DCSTSFConfig(n_ms=4, rank=8, keep_remainder=keep))
        err[keep] = float(np.sqrt(np.mean((fuse_arrays(*c.arrays(), method=method, model=model) - c.hs_t2_truth.values) ** 2)))
    assert err[False] < 0.9 * err[True]


def test_no_change_noise_free_recovers_truth(model: ObservationModel) -> None:
    c = simulate_case(smooth_cube(model, 36, 36, seed=5), model=model, change="none", seed=0,
                      hs_snr_db=None, ms_snr_db=None)
    pred = fuse_arrays(*c.arrays(), method=DCSTSF.untrained(DCSTSFConfig(n_ms=4, rank=8, stages=4)), model=model)
    rmse = float(np.sqrt(np.mean((pred - c.hs_t2_truth.values) ** 2)))
    assert rmse < 0.01


@pytest.mark.parametrize(("unit_space", "keep_remainder"), [("sensor", False), ("coefficient", False),
                                                          ("coefficient", True)])
def test_crop_gives_the_same_values_as_the_full_window(
    model: ObservationModel, case, unit_space: str, keep_remainder: bool
) -> None:
    """Expanding to n_hs bands on a region only (what the engine asks for) changes no value."""
    torch.manual_seed(2)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=2, hidden=8, unit_space=unit_space,
                                 keep_remainder=keep_remainder)).eval()
    for unit in [*net.seu, *net.ecu, net.sftn]:
        torch.nn.init.normal_(unit.head.weight, std=1e-2)
    t, state, kw = network_inputs(case, model, rank=8)
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
    t, state, kw = network_inputs(c, model, rank=6)
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


@pytest.mark.parametrize("radius", [2, 5])
def test_windowed_temporal_map_keeps_crops_exact(model: ObservationModel, radius: int) -> None:
    """The windowed MS -> HS map of TVE reaches further than the rest of TVE: its reach enters the
    receptive field, and crops with margins of that field (the engine's halo) stay exact."""
    torch.manual_seed(4)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=6, stages=1, hidden=8, layers=1, consistency_steps=1,
                                 local_map_radius=radius, local_map_ridge=0.05)).eval()
    base = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=6, stages=1, hidden=8, layers=1, consistency_steps=1)).eval()
    base.load_state_dict(net.state_dict())
    c = simulate_case(smooth_cube(model, 210, 204), model=model, change="abrupt", seed=2)
    t, state, kw = network_inputs(c, model, rank=6)
    rf = net.receptive_field(**kw)
    # a small window fits within the SSJE's own reach; a wide one widens the field
    assert rf > base.receptive_field(**kw) if radius == 5 else rf == base.receptive_field(**kw)
    # the windowed map changes the temporal step only: SSJE's HS(t1) is the global network's
    full, glob, _ = run_beside(net, base, (t, state, kw))
    assert float((full["hs_t2"] - glob["hs_t2"]).abs().max()) > 1e-4


def test_windowed_temporal_map_reproduces_a_locally_linear_scene() -> None:
    """Two halves of a scene with different MS -> HS relations: the windowed map recovers each half's
    relation away from the boundary, where one global map cannot."""
    from dcstsf.models.local_map import local_map_corrections

    g = torch.Generator().manual_seed(0)
    ms = torch.randn(1, 3, 40, 40, generator=g, dtype=torch.float64)
    a_left, a_right = torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(3, 2, generator=g, dtype=torch.float64)
    coef = torch.cat([torch.einsum("ip,bihw->bphw", a_left, ms[..., :20]),
                      torch.einsum("ip,bihw->bphw", a_right, ms[..., 20:])], dim=-1)
    t_map = torch.zeros(4, 2, dtype=torch.float64)
    delta = local_map_corrections(coef, ms, t_map, radius=4, ridge=1e-6)
    torch.testing.assert_close(delta[0, :3, :, 20, 2], a_left, atol=1e-4, rtol=0)
    torch.testing.assert_close(delta[0, :3, :, 20, 30], a_right, atol=1e-4, rtol=0)
    torch.testing.assert_close(delta[0, 3, :, 20, 30], torch.zeros(2, dtype=torch.float64), atol=1e-4, rtol=0)

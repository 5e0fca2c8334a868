"""DC-STSF network: shapes, gradients, determinism, physics-only start, save/load, training."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from dcstsf.errors import WeightsError
from dcstsf.methods import DCSTSF, fuse_arrays
from dcstsf.models import DCSTSFConfig, DCSTSFNet, fit_scene_state, load_model, save_checkpoint, state_to_tensors
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import scene_samples
from dcstsf.simulate import simulate_case
from dcstsf.training import train

BANDS4 = ["B02", "B03", "B04", "B08"]


def _smooth_cube(model: ObservationModel, h: int, w: int, seed: int = 0) -> xr.DataArray:
    """A tiny synthetic 'scene': 3 smooth endmember spectra mixed with field-like abundances
    (sharp-edged parcels finer than the HS pixel, so the MS detail matters)."""
    rng = np.random.default_rng(seed)
    wl = model.hs_sensor.centers_nm
    ends = np.stack([0.05 + 0.4 / (1 + np.exp(-(wl - c) / 40.0)) for c in (550.0, 720.0, 1400.0)])
    from scipy.ndimage import gaussian_filter

    parcels = rng.random((3, h // 2 + 1, w // 2 + 1)).repeat(2, axis=1).repeat(2, axis=2)[:, :h, :w]
    ab = np.stack([gaussian_filter(p, 0.5) for p in parcels]) ** 2
    ab /= ab.sum(0, keepdims=True)
    cube = np.einsum("kb,kyx->byx", ends, ab).astype(np.float32)
    return xr.DataArray(
        cube, dims=("band", "y", "x"),
        coords={"band": list(model.hs_sensor.band_names), "wavelength": ("band", wl),
                "y": np.arange(h, dtype=float), "x": np.arange(w, dtype=float)},
    )


@pytest.fixture(scope="module")
def model(model4: ObservationModel) -> ObservationModel:
    """The four-band model: the tests here train, and four bands keep them short."""
    return model4


@pytest.fixture(scope="module")
def case(model: ObservationModel):
    return simulate_case(_smooth_cube(model, 36, 42), model=model, change="mixed", seed=3)


def _forward(net: DCSTSFNet, case, model: ObservationModel) -> dict[str, torch.Tensor]:
    hs, ms1, ms2 = case.arrays()
    samples = scene_samples(hs, ms1, ms2, model=model)
    state = state_to_tensors(fit_scene_state(samples, model=model, rank=net.config.rank))
    t = [torch.from_numpy(a)[None] for a in (hs, ms1, ms2)]
    return net(*t, state, ratio=3, hs_sigma=float(np.median(model.hs_sigma)), ms_sigma=model.ms_sigma)


def test_shapes_and_gradients(model: ObservationModel, case) -> None:
    torch.manual_seed(0)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=2, hidden=8))
    # give the zero-initialised heads some weight so gradients reach every layer
    for unit in [*net.seu, *net.ecu, net.sftn]:
        torch.nn.init.normal_(unit.head.weight, std=1e-3)
    out = _forward(net, case, model)
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
        a = _forward(net, case, model)["hs_t2"]
        b = _forward(net, case, model)["hs_t2"]
    assert torch.equal(a, b)


def test_physics_only_beats_bicubic(model: ObservationModel, case) -> None:
    """The untrained network is the classical alternating projection and must already help."""
    truth = case.hs_t2_truth.values
    pred = fuse_arrays(*case.arrays(), method=DCSTSF.untrained(DCSTSFConfig(n_ms=4, rank=8)), model=model)
    bic = fuse_arrays(*case.arrays(), method="bicubic", model=model)
    assert np.mean((pred - truth) ** 2) < 0.5 * np.mean((bic - truth) ** 2)


def test_no_change_noise_free_recovers_truth(model: ObservationModel) -> None:
    c = simulate_case(_smooth_cube(model, 36, 36, seed=5), model=model, change="none", seed=0,
                      hs_snr_db=None, ms_snr_db=None)
    pred = fuse_arrays(*c.arrays(), method=DCSTSF.untrained(DCSTSFConfig(n_ms=4, rank=8, stages=4)), model=model)
    rmse = float(np.sqrt(np.mean((pred - c.hs_t2_truth.values) ** 2)))
    assert rmse < 0.01


def test_save_load_round_trip(tmp_path: Path, model: ObservationModel, case) -> None:
    torch.manual_seed(1)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=1, hidden=8))
    torch.nn.init.normal_(net.sftn.head.weight, std=1e-2)
    path = tmp_path / "w.pt"
    sha = save_checkpoint(path, {"config": net.config.to_dict(), "state_dict": net.state_dict(),
                                 "sensors": {**model.describe(), "ratio": 3}})
    loaded, payload = load_model(path, expected_sha256=sha)
    with torch.no_grad():
        assert torch.equal(_forward(net.eval(), case, model)["hs_t2"], _forward(loaded, case, model)["hs_t2"])
    # a method built from the file reports the hash
    meth = DCSTSF(weights=path)
    fuse_arrays(*case.arrays(), method=meth, model=model)
    assert meth.identity()["weights_sha256"] == sha
    # corruption is detected by hash and by format
    with pytest.raises(WeightsError, match="SHA-256"):
        load_model(path, expected_sha256="0" * 64)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match="bad.pt"):
        load_model(bad)
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_wrong_band_count_weights(tmp_path: Path, model: ObservationModel, case) -> None:
    net = DCSTSFNet(DCSTSFConfig(n_ms=10, rank=8, stages=1, hidden=8))
    path = tmp_path / "w10.pt"
    save_checkpoint(path, {"config": net.config.to_dict(), "state_dict": net.state_dict(),
                           "sensors": {"ratio": 3}})
    with pytest.raises(WeightsError, match="10 MS bands"):
        fuse_arrays(*case.arrays(), method=DCSTSF(weights=path), model=model)


def test_few_steps_training_loss_falls_and_resumes(tmp_path: Path, model: ObservationModel) -> None:
    scenes = [_smooth_cube(model, 48, 48, seed=s) for s in range(2)]
    cfg = {
        "sensors": {"hs_sensor": "zy1-02d-ahsi", "ms_sensor": "sentinel-2a", "ms_bands": BANDS4, "ratio": 3},
        "model": {"rank": 8, "stages": 1, "hidden": 8, "consistency_steps": 1},
        "data": {"patch": 24, "batch_size": 4, "batches_per_case": 30},
        "train": {"steps": 30, "lr": 3e-3, "warmup": 2, "checkpoint_every": 10, "seed": 0, "threads": 1},
    }
    out = train(cfg, output=tmp_path / "run", scenes=scenes, progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "loss.csv").open()))
    assert len(rows) == 30
    # all 30 steps see one case (batches_per_case=30): the loss on it must fall
    first = np.mean([float(r["loss"]) for r in rows[:5]])
    last = np.mean([float(r["loss"]) for r in rows[-5:]])
    assert last < first
    net, payload = load_model(out)
    assert payload["sensors"]["ms_bands"] == BANDS4 and payload["step"] == 30

    # interrupted run (stopped at step 20 via steps=20 checkpoint) resumes to the same weights
    cfg_short = {**cfg, "train": {**cfg["train"]}}
    train({**cfg_short, "train": {**cfg["train"], "steps": 30}}, output=tmp_path / "run2", scenes=scenes,
          progress=False, stop_after=20)
    out2 = train(cfg, output=tmp_path / "run2", scenes=scenes, progress=False)
    net2, _ = load_model(out2)
    for (k, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items()):
        assert torch.equal(a, b), k


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
    c = simulate_case(_smooth_cube(model, 150, 153), model=model, change="mixed", seed=1)
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


def test_v1_checkpoints_load_with_coefficient_space_units(tmp_path: Path, model: ObservationModel) -> None:
    """Weights written before ``unit_space`` existed were trained with coefficient-space units."""
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=1, hidden=8, unit_space="coefficient"))
    cfg = net.config.to_dict()
    del cfg["unit_space"]
    path = tmp_path / "v1.pt"
    save_checkpoint(path, {"config": cfg, "state_dict": net.state_dict(), "sensors": {**model.describe(), "ratio": 3}})
    loaded, _ = load_model(path)
    assert loaded.config.unit_space == "coefficient"
    with pytest.raises(ValueError, match="unit_space"):
        DCSTSFConfig(n_ms=4, unit_space="pixels")


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
    monkeypatch.setattr(network, "_UNIT_STRIP_ELEMENTS", 4 * 9 * 2)
    with torch.inference_mode():
        strips = unit.forward_parts(parts)
    torch.testing.assert_close(strips, whole, rtol=1e-5, atol=1e-6)
    trained = unit.forward_parts([p.requires_grad_() for p in parts])
    assert trained.requires_grad
    torch.testing.assert_close(trained.detach(), whole, rtol=1e-5, atol=1e-6)
    seen: list[str] = []
    unit.apply(lambda module: seen.append(type(module).__name__))  # nn.Module.apply is not shadowed
    assert seen[-1] == "ConvUnit"

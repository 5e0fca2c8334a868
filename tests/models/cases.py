"""A small DC-STSF case shared by the model and training tests."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from dcstsf.models import DCSTSFNet, fit_scene_state, state_to_tensors
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import scene_samples

__all__ = ["assert_crops_exact", "forward", "network_inputs", "run_beside", "smooth_cube"]


def smooth_cube(model: ObservationModel, h: int, w: int, seed: int = 0) -> xr.DataArray:
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


def network_inputs(
    case, model: ObservationModel, *, rank: int
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], dict[str, object]]:
    """The case's three cubes as batch-of-one tensors, its scene state of ``rank`` and the physics keywords
    of :meth:`DCSTSFNet.forward` (ratio 3, the median HS blur)."""
    hs, ms1, ms2 = case.arrays()
    state = state_to_tensors(fit_scene_state(scene_samples(hs, ms1, ms2, model=model), model=model, rank=rank))
    t = [torch.from_numpy(a)[None] for a in (hs, ms1, ms2)]
    return t, state, {"ratio": 3, "hs_sigma": float(np.median(model.hs_sigma)), "ms_sigma": model.ms_sigma}


def forward(net: DCSTSFNet, case, model: ObservationModel) -> dict[str, torch.Tensor]:
    t, state, kw = network_inputs(case, model, rank=net.config.rank)
    return net(*t, state, **kw)


def assert_crops_exact(
    net: DCSTSFNet,
    inputs: tuple[list[torch.Tensor], dict[str, torch.Tensor], dict[str, object]],
    full: dict[str, torch.Tensor],
    *,
    margin: int,
) -> None:
    """HS(t2) on three crops equals the whole window's ``full``: one with ``margin`` fine pixels (the engine's
    halo) on every side, the top-left corner, and a strip along the right edge (image edges are never cut).
    ``inputs`` is what :func:`network_inputs` returns."""
    t, state, kw = inputs
    h, w = full["hs_t2"].shape[-2:]
    m = margin
    with torch.no_grad():
        for ys, xs in [(slice(m, h - m), slice(m, w - m)), (slice(0, 30), slice(0, 33)),
                       (slice(m + 3, m + 12), slice(w - 15, w))]:
            part = net(*t, state, crop=(ys, xs), **kw)
            torch.testing.assert_close(part["hs_t2"], full["hs_t2"][..., ys, xs], rtol=0, atol=1e-5)


def run_beside(
    net: DCSTSFNet,
    base: DCSTSFNet,
    inputs: tuple[list[torch.Tensor], dict[str, torch.Tensor], dict[str, object]],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
    """``net`` (``base``'s parameters with a TVE option on) and ``base`` on the same ``inputs``: both outputs
    and the crop margin of ``net``'s receptive field. Checks that ``net``'s crops are exact and that its SSJE
    result HS(t1) is ``base``'s bit for bit (the option changes the temporal step only)."""
    t, state, kw = inputs
    m = -(-net.receptive_field(**kw) // 3) * 3
    with torch.no_grad():
        full = net(*t, state, **kw)
        plain = base(*t, state, **kw)
    assert_crops_exact(net, inputs, full, margin=m)
    torch.testing.assert_close(full["hs_t1"], plain["hs_t1"], rtol=0, atol=0)
    return full, plain, m

"""Adjoint identities, flat fields, response normalisation and the pixel-corner convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from dcstsf import operators as ops
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel, upsample, upsample_region
from dcstsf.sensors import SENTINEL2_DEFAULT_BANDS

S2_BANDS = list(SENTINEL2_DEFAULT_BANDS)


def _inner(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum())


def _rel_adjoint_error(fwd, adj, x: torch.Tensor, y: torch.Tensor) -> float:
    lhs, rhs = _inner(fwd(x), y), _inner(x, adj(y))
    return abs(lhs - rhs) / max(abs(lhs), 1e-12)


def test_blur_adjoint_identity() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 17, 23, generator=g, dtype=torch.float64)
    y = torch.rand(2, 5, 17, 23, generator=g, dtype=torch.float64)
    sig = np.array([0.0, 0.5, 1.2, 2.0, 0.9])
    err = _rel_adjoint_error(lambda a: ops.blur(a, sig), lambda b: ops.blur_adjoint(b, sig), x, y)
    assert err < 1e-5


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 1, 6), (2, 7, 5)])
def test_blur_adjoint_is_the_transposed_matrix(shape: tuple[int, int, int]) -> None:
    """Column by column against the blur's own matrix, with blur radii larger than the image (every
    replicated border row folds back onto an edge pixel) and one band left unblurred."""
    sig = np.array([0.0, 2.5])[: shape[0]]
    n = int(np.prod(shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    forward = ops.blur(eye, sig).reshape(n, n)  # row j: the blur of basis image j
    adjoint = ops.blur_adjoint(eye, sig).reshape(n, n)
    torch.testing.assert_close(adjoint, forward.T, rtol=0, atol=1e-12)


def test_decimate_adjoint_identity() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 12, 15, generator=g, dtype=torch.float64)
    y = torch.rand(4, 4, 5, generator=g, dtype=torch.float64)
    err = _rel_adjoint_error(lambda a: ops.decimate(a, 3), lambda b: ops.decimate_adjoint(b, 3), x, y)
    assert err < 1e-5


def test_spectral_adjoint_identity(model: ObservationModel) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(model.n_hs, 6, 6, generator=g, dtype=torch.float64)
    y = torch.rand(model.n_ms, 6, 6, generator=g, dtype=torch.float64)
    srf = torch.as_tensor(model.srf, dtype=torch.float64)
    err = _rel_adjoint_error(lambda a: ops.spectral(a, srf), lambda b: ops.spectral_adjoint(b, srf), x, y)
    assert err < 1e-5


def test_full_observation_adjoints(model: ObservationModel) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(model.n_hs, 18, 21, generator=g, dtype=torch.float64)
    y_hs = torch.rand(model.n_hs, 6, 7, generator=g, dtype=torch.float64)
    y_ms = torch.rand(model.n_ms, 18, 21, generator=g, dtype=torch.float64)
    assert _rel_adjoint_error(model.degrade_hs, model.degrade_hs_adjoint, x, y_hs) < 1e-5
    assert _rel_adjoint_error(model.degrade_ms, model.degrade_ms_adjoint, x, y_ms) < 1e-5


@settings(max_examples=25, deadline=None)
@given(
    ratio=st.integers(1, 5),
    hc=st.integers(1, 6),
    wc=st.integers(1, 6),
    sigma=st.floats(0.0, 2.5),
    seed=st.integers(0, 1000),
)
def test_adjoints_property(ratio: int, hc: int, wc: int, sigma: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, hc * ratio, wc * ratio, generator=g, dtype=torch.float64)
    y = torch.rand(3, hc, wc, generator=g, dtype=torch.float64)

    def fwd(a: torch.Tensor) -> torch.Tensor:
        return ops.decimate(ops.blur(a, sigma), ratio)

    def adj(b: torch.Tensor) -> torch.Tensor:
        return ops.blur_adjoint(ops.decimate_adjoint(b, ratio), sigma)

    assert _rel_adjoint_error(fwd, adj, x, y) < 1e-5


def test_flat_fields_preserved(model: ObservationModel) -> None:
    x = torch.full((model.n_hs, 12, 12), 0.37, dtype=torch.float64)
    np.testing.assert_allclose(model.degrade_hs(x).numpy(), 0.37, atol=1e-12)
    np.testing.assert_allclose(ops.upsample(model.degrade_hs(x), 3).numpy(), 0.37, atol=1e-6)
    # flat reflector spectrum -> flat MS spectrum
    np.testing.assert_allclose(model.degrade_ms(x).numpy(), 0.37, atol=1e-6)


def test_response_rows_sum_to_one(model: ObservationModel) -> None:
    np.testing.assert_allclose(model.srf.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(model.srf >= 0)
    # bad AHSI bands (water vapour) get no weight
    assert np.all(model.srf[:, ~model.hs_sensor.good] == 0)


def test_pixel_corner_convention() -> None:
    x = torch.zeros(1, 6, 6)
    x[0, 0:3, 3:6] = 1.0  # exactly coarse pixel (0, 1)
    out = ops.decimate(x, 3)
    np.testing.assert_allclose(out[0].numpy(), [[0.0, 1.0], [0.0, 0.0]])


def test_decimate_rejects_non_multiple() -> None:
    with pytest.raises(DcstsfInputError, match="multiple of the ratio"):
        ops.decimate(torch.zeros(1, 7, 6), 3)


def test_twenty_metre_bands_blurrier(model: ObservationModel) -> None:
    names = list(model.ms_sensor.band_names)
    assert model.ms_sigma[names.index("B05")] > model.ms_sigma[names.index("B02")] * 1.5
    # the HS Gaussian plus the block mean reproduces the assumed MTF at the coarse Nyquist frequency
    r = 3
    f = 0.5 / r
    box = abs(np.sin(np.pi * f * r) / (r * np.sin(np.pi * f)))
    gauss = np.exp(-2 * np.pi**2 * model.hs_sigma[0] ** 2 * f**2)
    np.testing.assert_allclose(box * gauss, model.hs_sensor.mtf_nyquist[0], rtol=1e-6)


@pytest.mark.parametrize("bands", [10, 16, 17])
def test_blur_layout_does_not_change_values(bands: int) -> None:
    """Band counts that are not a multiple of 16 are convolved channels-last on the CPU (no per-shape
    set-up cost in oneDNN): same values as each band blurred alone, plain contiguous results."""
    torch.manual_seed(1)
    x = torch.rand(2, bands, 23, 31, dtype=torch.float64)
    sigmas = np.linspace(0.8, 1.7, bands)
    one_by_one = torch.cat([ops.blur(x[:, b : b + 1], sigmas[b]) for b in range(bands)], dim=1)
    out = ops.blur(x, sigmas)
    torch.testing.assert_close(out, one_by_one, rtol=1e-12, atol=1e-12)
    assert out.is_contiguous()
    adj = ops.blur_adjoint(x, sigmas)
    torch.testing.assert_close(adj, torch.cat([ops.blur_adjoint(x[:, b : b + 1], sigmas[b]) for b in range(bands)],
                                              dim=1), rtol=1e-12, atol=1e-12)
    assert adj.is_contiguous()


def test_blur_gradients_flow() -> None:
    x = torch.rand(2, 9, 9, requires_grad=True)
    ops.blur_adjoint(ops.blur(x, [1.0, 0.5]), [1.0, 0.5]).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_xarray_entry_points(model: ObservationModel) -> None:
    data = np.random.default_rng(0).random((model.n_hs, 9, 12)).astype(np.float32)
    da = xr.DataArray(
        data, dims=("band", "y", "x"),
        coords={"band": list(model.hs_sensor.band_names), "y": 100.0 - np.arange(9) * 10,
                "x": 500.0 + np.arange(12) * 10},
    )
    hs = ops.observe_hs(model, da)
    assert hs.shape == (model.n_hs, 3, 4)
    np.testing.assert_allclose(hs["x"].values, 510.0 + np.arange(4) * 30)
    ms = ops.observe_ms(model, da)
    assert list(ms["band"].values) == S2_BANDS and ms.shape == (10, 9, 12)
    np.testing.assert_allclose(ops.observe_ms(model, data), ms.values, rtol=1e-6)


@pytest.mark.parametrize("ratio", [1, 2, 3, 4])
def test_upsample_is_torch_bicubic(ratio: int) -> None:
    # the separable implementation computes F.interpolate's values; against float64 it is exact
    x = torch.randn(2, 5, 13, 17, generator=torch.Generator().manual_seed(ratio))
    ref64 = F.interpolate(x.double(), scale_factor=ratio, mode="bicubic", align_corners=False)
    assert torch.allclose(upsample(x.double(), ratio), ref64, atol=1e-12)
    got = upsample(x, ratio)
    assert got.shape == (2, 5, 13 * ratio, 17 * ratio)
    assert (got.double() - ref64).abs().max() < 2e-6
    ref = F.interpolate(x, scale_factor=ratio, mode="bicubic", align_corners=False)
    assert torch.allclose(got, ref, atol=1e-4)


def test_upsample_region_equals_crop() -> None:
    x = torch.randn(1, 3, 11, 9, generator=torch.Generator().manual_seed(1))
    full = upsample(x, 3)
    for region in [(0, 33, 0, 27), (0, 5, 0, 4), (7, 20, 2, 25), (31, 33, 26, 27), (4, 5, 13, 14), (12, 30, 0, 27)]:
        y0, y1, x0, x1 = region
        assert torch.equal(upsample_region(x, 3, region), full[..., y0:y1, x0:x1]), region


def test_upsample_gradients_match_inference_path() -> None:
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        plain = upsample(x, 3)
    tracked = upsample(x, 3)
    assert torch.allclose(plain, tracked.detach(), atol=1e-12)
    assert torch.autograd.gradcheck(lambda z: upsample_region(z, 3, (2, 16, 1, 20)), (x,))


def test_ms_to_coarse_at_equals_whole_image(model: ObservationModel) -> None:
    rng = np.random.default_rng(3)
    ms = rng.random((model.n_ms, 60, 75)).astype(np.float32)
    whole = model.ms_to_coarse(torch.as_tensor(ms)).numpy()
    rows, cols = np.array([0, 1, 7, 19]), np.array([0, 12, 24])  # both image edges included
    got = model.ms_to_coarse_at(ms, rows, cols)
    np.testing.assert_allclose(got, whole[:, rows][:, :, cols], atol=1e-6)
    # parts of the image sum to the whole (what lets a chunked array be sampled chunk by chunk)
    parts = sum(
        model.ms_to_coarse_at(ms[:, y0:y1, x0:x1], rows, cols, origin=(y0, x0), shape=(60, 75))
        for y0, y1 in ((0, 25), (25, 60))
        for x0, x1 in ((0, 40), (40, 75))
    )
    np.testing.assert_allclose(parts, got, atol=1e-12)

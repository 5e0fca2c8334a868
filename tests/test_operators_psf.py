"""The displaced Gaussian PSF (:class:`dcstsf.operators.Psf`): exact adjoints, centroids, zero-shift identity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dcstsf import operators as ops
from dcstsf.operators import ObservationModel, Psf


@pytest.mark.parametrize("psf", [Psf(np.array([0.0, 0.8, 1.7]), (0.4, -1.3)), Psf(1.1, (1.5, 0.0)), Psf(0.02, (-0.7, 0.3))])
def test_shifted_blur_adjoint_is_the_transposed_matrix(psf: Psf) -> None:
    shape = (3 if np.ndim(psf.sigma) else 1, 5, 7)
    n = int(np.prod(shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    forward = ops.blur(eye, psf).reshape(n, n)
    adjoint = ops.blur_adjoint(eye, psf).reshape(n, n)
    torch.testing.assert_close(adjoint, forward.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.0, 0.3, 1.2])
@pytest.mark.parametrize("shift", [-1.4, -0.25, 0.5, 0.9])
def test_kernel_centroid_is_the_shift(sigma: float, shift: float) -> None:
    """Linear interpolation keeps the centroid exactly at the shift, even for a kernel narrower than a pixel."""
    k = ops.gaussian_kernels(np.array([sigma]), shift=shift, dtype=torch.float64)[0].numpy()
    radius = (k.size - 1) // 2
    t = np.arange(-radius, radius + 1)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert (k * t).sum() == pytest.approx(shift, abs=1e-12)
    assert ops.blur_radius(Psf(sigma, (shift, 0.0))) == radius


def test_zero_shift_is_the_plain_gaussian_bit_for_bit() -> None:
    x = torch.rand(1, 4, 20, 22, generator=torch.Generator().manual_seed(0))
    sig = np.array([0.6, 1.0, 1.3, 2.1])
    assert torch.equal(ops.blur(x, sig), ops.blur(x, Psf(sig, (0.0, 0.0))))
    assert torch.equal(ops.blur_adjoint(x, sig), ops.blur_adjoint(x, Psf(sig)))


def test_shift_moves_the_image() -> None:
    """A positive shift reads the image further down/right: a bright point moves up/left by the shift."""
    x = torch.zeros(1, 1, 15, 15, dtype=torch.float64)
    x[..., 7, 7] = 1.0
    out = ops.blur(x, Psf(0.0, (2.0, -1.0)))[0, 0]
    assert out[5, 8] == pytest.approx(1.0)


def test_shifted_model_adjoints_and_sampling(model: ObservationModel) -> None:
    shifted = dataclasses.replace(
        model, hs_sigma=np.full(model.n_hs, 1.4), hs_shift=(0.8, -1.2),
    )
    g = torch.Generator().manual_seed(4)
    x = torch.rand(model.n_hs, 24, 27, generator=g, dtype=torch.float64)
    y = torch.rand(model.n_hs, 8, 9, generator=g, dtype=torch.float64)
    lhs = float((shifted.degrade_hs(x) * y).sum())
    rhs = float((x * shifted.degrade_hs_adjoint(y)).sum())
    assert abs(lhs - rhs) / abs(lhs) < 1e-10
    assert shifted.halo == ops.blur_radius(Psf(1.4, (0.8, -1.2))) == 7
    # sampled MS-to-coarse with the shift equals the whole-image operator
    ms = np.random.default_rng(2).random((model.n_ms, 60, 75)).astype(np.float32)
    whole = shifted.ms_to_coarse(torch.as_tensor(ms)).numpy()
    rows, cols = np.array([0, 3, 19]), np.array([0, 11, 24])
    np.testing.assert_allclose(shifted.ms_to_coarse_at(ms, rows, cols), whole[:, rows][:, :, cols], atol=1e-6)
    parts = sum(
        shifted.ms_to_coarse_at(ms[:, y0:y1, x0:x1], rows, cols, origin=(y0, x0), shape=(60, 75))
        for y0, y1 in ((0, 31), (31, 60))
        for x0, x1 in ((0, 40), (40, 75))
    )
    np.testing.assert_allclose(parts, shifted.ms_to_coarse_at(ms, rows, cols), atol=1e-12)

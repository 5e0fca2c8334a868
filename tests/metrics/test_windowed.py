"""Tests of dcstsf.metrics.windowed: hand-computed SSIM, UIQI and Q2n, block and validity conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dcstsf import metrics as M
from dcstsf.metrics import hypercomplex
from tests.metrics.cubes import noisy, random_cube


# ----------------------------------------------------------------------------------------------- SSIM
def test_ssim_single_window_hand_case() -> None:
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, (11, 11))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    # Only the centre pixel has its whole 11x11 window inside the image.
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    sxx = (w * x * x).sum() - mx**2
    syy = (w * y * y).sum() - my**2
    sxy = (w * x * y).sum() - mx * my
    c1, c2 = 0.01**2, 0.03**2
    expected = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    assert M.ssim(y, x) == pytest.approx(expected, rel=1e-10)


def test_ssim_too_small_or_fully_invalid_warns() -> None:
    ref = random_cube((2, 10, 10))
    with pytest.warns(RuntimeWarning, match="ssim"):
        assert math.isnan(M.ssim(ref, ref))


# ----------------------------------------------------------------------------------------------- UIQI
def test_uiqi_single_block_hand_case_and_block_convention() -> None:
    ref = random_cube((2, 40, 40))
    pred = noisy(ref, 0.05)
    # 40x40 with block 32: one complete block (top-left); the partial edge tiles are dropped.
    x = pred[:, :32, :32].astype(np.float64)
    y = ref[:, :32, :32].astype(np.float64)
    qs = []
    for b in range(2):
        mx, my = x[b].mean(), y[b].mean()
        vx, vy = x[b].var(), y[b].var()
        cxy = ((x[b] - mx) * (y[b] - my)).mean()
        qs.append(4 * cxy * mx * my / ((vx + vy) * (mx**2 + my**2)))
    assert M.uiqi(pred, ref) == pytest.approx(float(np.mean(qs)), rel=1e-10)


def test_uiqi_skips_blocks_with_invalid_pixels() -> None:
    ref = random_cube((2, 16, 16))
    pred = noisy(ref, 0.05)
    pred_nan = pred.copy()
    pred_nan[0, 1, 1] = np.nan  # in the top-left 8x8 block
    expected = M.uiqi(pred[:, 8:, :], ref[:, 8:, :], block=8) * 2 + M.uiqi(pred[:, :8, 8:], ref[:, :8, 8:], block=8)
    assert M.uiqi(pred_nan, ref, block=8) == pytest.approx(expected / 3, rel=1e-12)
    assert M.uiqi(np.full((1, 8, 8), 0.3), np.full((1, 8, 8), 0.3), block=8) == 1.0
    with pytest.warns(RuntimeWarning, match="uiqi"):
        assert math.isnan(M.uiqi(np.full((1, 4, 4), np.nan), ref[:1, :4, :4], block=4))


# ------------------------------------------------------------------------------------------------ Q2n
def test_q2n_single_band_equals_uiqi() -> None:
    ref = random_cube((1, 64, 48), seed=4)
    pred = noisy(ref, 0.05)
    assert M.q2n(pred, ref, block=16) == pytest.approx(M.uiqi(pred, ref, block=16), rel=1e-12)


def test_q2n_two_bands_equals_complex_formula() -> None:
    ref = random_cube((2, 16, 16), seed=5)
    pred = noisy(ref, 0.05)
    z = pred[0].astype(np.float64) + 1j * pred[1]
    w = ref[0].astype(np.float64) + 1j * ref[1]
    zm, wm = z.mean(), w.mean()
    cov = np.mean((z - zm) * np.conj(w - wm))
    vz, vw = np.mean(np.abs(z - zm) ** 2), np.mean(np.abs(w - wm) ** 2)
    expected = 4 * abs(cov) * abs(zm) * abs(wm) / ((vz + vw) * (abs(zm) ** 2 + abs(wm) ** 2))
    assert M.q2n(pred, ref, block=16) == pytest.approx(expected, rel=1e-10)


def test_q2n_three_bands_padded_matches_per_pixel_product() -> None:
    ref = random_cube((3, 8, 8), seed=6)
    pred = noisy(ref, 0.05)
    z = np.zeros((64, 4))
    w = np.zeros((64, 4))
    z[:, :3] = pred.reshape(3, -1).T
    w[:, :3] = ref.reshape(3, -1).T
    zc, wc = z - z.mean(0), w - w.mean(0)
    cov = hypercomplex.product(zc, hypercomplex.conjugate(wc)).mean(0)
    nz, nw = np.linalg.norm(z.mean(0)), np.linalg.norm(w.mean(0))
    var = (zc**2).sum(1).mean() + (wc**2).sum(1).mean()
    expected = 4 * np.linalg.norm(cov) * nz * nw / (var * (nz**2 + nw**2))
    assert M.q2n(pred, ref, block=8) == pytest.approx(expected, rel=1e-10)
    assert 0.0 <= M.q2n(noisy(ref, 0.3), ref, block=4) <= 1.0

"""Tests of dcstsf.metrics.reference: hand-computed PSNR, RMSE, CC, SAM and ERGAS."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dcstsf import metrics as M
from dcstsf.errors import DcstsfInputError
from tests.metrics.cubes import noisy, random_cube


# ------------------------------------------------------------------------------------ identical / offset
def test_identical_images_give_ideal_values() -> None:
    ref = random_cube()
    assert M.psnr(ref, ref) == M.PSNR_CAP_DB == 100.0
    assert np.all(M.psnr_per_band(ref, ref) == 100.0)
    assert M.rmse(ref, ref) == 0.0
    assert M.sam(ref, ref) == 0.0
    assert M.ergas(ref, ref, h_over_l=1 / 3) == 0.0
    assert M.ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert M.cc(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert M.uiqi(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert M.q2n(ref, ref) == pytest.approx(1.0, abs=1e-12)


def test_psnr_cap_does_not_poison_band_mean() -> None:
    ref = random_cube((2, 16, 16))
    pred = ref.copy()
    pred[1] += np.float32(0.1)
    per_band = M.psnr_per_band(pred, ref)
    assert per_band[0] == 100.0
    mse1 = float(np.mean((pred[1].astype(np.float64) - ref[1]) ** 2))
    assert per_band[1] == pytest.approx(10 * math.log10(1.0 / mse1), rel=1e-12)
    assert M.psnr(pred, ref) == pytest.approx((100.0 + per_band[1]) / 2, rel=1e-12)


def test_constant_offset_rmse_and_psnr() -> None:
    # Dyadic values so that pred - ref is exactly c in floating point.
    rng = np.random.default_rng(3)
    ref = (rng.integers(0, 512, (3, 16, 16)) / 1024.0).astype(np.float32)
    c = 0.0625
    pred = ref + np.float32(c)
    assert M.rmse(pred, ref) == c
    assert np.all(M.rmse_per_band(pred, ref) == c)
    assert M.psnr(pred, ref) == pytest.approx(-20 * math.log10(c), rel=1e-12)
    assert M.psnr(pred, ref, data_range=2.0) == pytest.approx(20 * math.log10(2.0 / c), rel=1e-12)


def test_cc_of_affine_and_negated_bands() -> None:
    ref = random_cube((3, 12, 12))
    assert M.cc(2.0 * ref + 1.0, ref) == pytest.approx(1.0, abs=1e-12)
    assert M.cc(-ref, ref) == pytest.approx(-1.0, abs=1e-12)
    x = ref[0].astype(np.float64).ravel()
    y = noisy(ref, 0.1)[0].astype(np.float64).ravel()
    assert M.cc_per_band(noisy(ref, 0.1), ref)[0] == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-10)


def test_cc_constant_band_is_left_out() -> None:
    ref = random_cube((2, 8, 8))
    pred = noisy(ref)
    ref[1] = 0.3
    with pytest.warns(RuntimeWarning, match="constant band"):
        value = M.cc(pred, ref)
    assert value == pytest.approx(M.cc_per_band(pred, ref)[0])


# ------------------------------------------------------------------------------------------------ SAM
def test_sam_known_angle_of_30_degrees() -> None:
    a = math.radians(30.0)
    ref = np.zeros((2, 3, 4))
    ref[0] = 1.0
    pred = np.zeros((2, 3, 4))
    pred[0] = 0.7 * math.cos(a)
    pred[1] = 0.7 * math.sin(a)
    assert M.sam(pred, ref) == pytest.approx(30.0, abs=1e-9)
    assert np.allclose(M.sam_map(pred, ref), 30.0, atol=1e-9)
    # Orthogonal and opposite spectra.
    assert M.sam(np.array([[[0.0]], [[1.0]]]), np.array([[[1.0]], [[0.0]]])) == pytest.approx(90.0)
    assert M.sam(np.array([[[-1.0]], [[-1.0]]]), np.array([[[1.0]], [[1.0]]])) == pytest.approx(180.0)


def test_sam_excludes_zero_and_nan_pixels() -> None:
    ref = random_cube((4, 6, 7))
    pred = noisy(ref, 0.05)
    pred[:, 0, 0] = 0.0  # zero-norm prediction
    pred[:, 1, 1] = 0.0
    ref[:, 1, 1] = 0.0  # zero in both
    ref[2, 2, 2] = np.nan  # NaN in one band of the reference
    pred[0, 3, 3] = np.nan  # NaN in one band of the prediction
    value = M.sam(pred, ref)
    assert math.isfinite(value)
    expected = []
    for y in range(6):
        for x in range(7):
            if (y, x) in {(0, 0), (1, 1), (2, 2), (3, 3)}:
                continue
            p = pred[:, y, x].astype(np.float64)
            r = ref[:, y, x].astype(np.float64)
            cosang = np.dot(p, r) / (np.linalg.norm(p) * np.linalg.norm(r))
            expected.append(math.degrees(math.acos(min(1.0, max(-1.0, cosang)))))
    assert value == pytest.approx(float(np.mean(expected)), rel=1e-9)
    smap = M.sam_map(pred, ref)
    assert smap.shape == (6, 7)
    assert np.isnan(smap[[0, 1, 2, 3], [0, 1, 2, 3]]).all()
    assert np.isfinite(smap).sum() == 6 * 7 - 4
    with pytest.warns(RuntimeWarning, match="ssim"):  # 6x7 is too small for an 11x11 SSIM window
        ev = M.evaluate(pred, ref, h_over_l=1 / 3, block=2)
    assert ev["conventions"]["valid_pixels"] == 6 * 7 - 2  # NaN pixels only; zero spectra stay valid
    assert ev["conventions"]["sam_valid_pixels"] == 6 * 7 - 4


def test_sam_without_any_valid_pixel_warns_and_returns_nan() -> None:
    ref = random_cube((3, 4, 4))
    with pytest.warns(RuntimeWarning, match="sam"):
        assert math.isnan(M.sam(np.zeros_like(ref), ref))


# ---------------------------------------------------------------------------------------------- ERGAS
def test_ergas_hand_case() -> None:
    ref = np.array([[[0.2, 0.4], [0.6, 0.8]], [[0.25, 0.25], [0.25, 0.25]]])
    pred = ref.copy()
    pred[0] += np.array([[0.1, -0.1], [0.0, 0.0]])
    pred[1] = 0.3
    # Independent formula: 100 h/l sqrt(1/B sum_b (RMSE_b / mean(ref_b))^2)
    rmse0 = math.sqrt((0.1**2 + 0.1**2) / 4)
    rmse1 = 0.05
    expected = 100 * (1 / 3) * math.sqrt(((rmse0 / 0.5) ** 2 + (rmse1 / 0.25) ** 2) / 2)
    assert M.ergas(pred, ref, h_over_l=1 / 3) == pytest.approx(expected, rel=1e-12)
    assert M.ergas(pred, ref, h_over_l=1.0) == pytest.approx(3 * expected, rel=1e-12)


@pytest.mark.parametrize("bad", [3, 4.0, 0, -0.5, float("nan"), float("inf")])
def test_ergas_h_over_l_validation(bad: float) -> None:
    ref = random_cube((2, 4, 4))
    with pytest.raises(DcstsfInputError, match="h/l"):
        M.ergas(ref, ref, h_over_l=bad)


def test_ergas_refuses_the_resolution_ratio_and_names_its_inverse() -> None:
    ref = random_cube((2, 4, 4))
    with pytest.raises(DcstsfInputError, match=r"h_over_l=1/3"):
        M.ergas(ref, ref, h_over_l=3)

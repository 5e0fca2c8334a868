"""Tests of dcstsf.metrics: hand-computed cases, NaN/mask/border conventions, Dask and xarray inputs."""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from dcstsf import metrics as M
from dcstsf.errors import DcstsfInputError


def _cube(shape: tuple[int, int, int] = (5, 40, 36), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.6, shape).astype(np.float32)


def _noisy(ref: np.ndarray, sigma: float = 0.02, seed: int = 1) -> np.ndarray:
    return (ref + np.random.default_rng(seed).normal(0.0, sigma, ref.shape)).astype(np.float32)


# ------------------------------------------------------------------------------------ identical / offset
def test_identical_images_give_ideal_values() -> None:
    ref = _cube()
    assert M.psnr(ref, ref) == M.PSNR_CAP_DB == 100.0
    assert np.all(M.psnr_per_band(ref, ref) == 100.0)
    assert M.rmse(ref, ref) == 0.0
    assert M.sam(ref, ref) == 0.0
    assert M.ergas(ref, ref, ratio=1 / 3) == 0.0
    assert M.ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert M.cc(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert M.uiqi(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert M.q2n(ref, ref) == pytest.approx(1.0, abs=1e-12)


def test_psnr_cap_does_not_poison_band_mean() -> None:
    ref = _cube((2, 16, 16))
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
    ref = _cube((3, 12, 12))
    assert M.cc(2.0 * ref + 1.0, ref) == pytest.approx(1.0, abs=1e-12)
    assert M.cc(-ref, ref) == pytest.approx(-1.0, abs=1e-12)
    x = ref[0].astype(np.float64).ravel()
    y = _noisy(ref, 0.1)[0].astype(np.float64).ravel()
    assert M.cc_per_band(_noisy(ref, 0.1), ref)[0] == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-10)


def test_cc_constant_band_is_left_out() -> None:
    ref = _cube((2, 8, 8))
    pred = _noisy(ref)
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
    ref = _cube((4, 6, 7))
    pred = _noisy(ref, 0.05)
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
        ev = M.evaluate(pred, ref, ratio=1 / 3, block=2)
    assert ev["conventions"]["valid_pixels"] == 6 * 7 - 2  # NaN pixels only; zero spectra stay valid
    assert ev["conventions"]["sam_valid_pixels"] == 6 * 7 - 4


def test_sam_without_any_valid_pixel_warns_and_returns_nan() -> None:
    ref = _cube((3, 4, 4))
    with pytest.warns(RuntimeWarning, match="sam"):
        assert math.isnan(M.sam(np.zeros_like(ref), ref))


def test_sam_contribution_sums_to_mean_chord() -> None:
    ref = _cube((6, 12, 12))
    pred = _noisy(ref, 0.05)
    ev = M.evaluate(pred, ref, ratio=1 / 3, block=6)
    angles = np.radians(M.sam_map(pred, ref))
    assert sum(ev["per_band"]["sam_contribution"]) == pytest.approx(float(np.mean(2 * (1 - np.cos(angles)))), rel=1e-9)
    # A band with a larger error contributes more.
    pred2 = ref.copy()
    pred2[4] *= 1.3
    contrib = M.evaluate(pred2, ref, ratio=1 / 3, block=6)["per_band"]["sam_contribution"]
    assert int(np.argmax(contrib)) == 4


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
    assert M.ergas(pred, ref, ratio=1 / 3) == pytest.approx(expected, rel=1e-12)
    assert M.ergas(pred, ref, ratio=1.0) == pytest.approx(3 * expected, rel=1e-12)


@pytest.mark.parametrize("bad", [3, 4.0, 0, -0.5, float("nan"), float("inf")])
def test_ergas_ratio_validation(bad: float) -> None:
    ref = _cube((2, 4, 4))
    with pytest.raises(DcstsfInputError, match="h/l"):
        M.ergas(ref, ref, ratio=bad)


def test_ergas_ratio_error_explains_inverse() -> None:
    ref = _cube((2, 4, 4))
    with pytest.raises(DcstsfInputError, match=r"ratio=1/3"):
        M.ergas(ref, ref, ratio=3)
    with pytest.raises(DcstsfInputError):
        M.evaluate(ref, ref, ratio=3)


# ----------------------------------------------------------------------------------- mask and border
def test_mask_restricts_to_valid_pixels() -> None:
    ref = _cube((3, 20, 20))
    pred = _noisy(ref)
    pred[:, :, :8] = 5.0  # garbage on the masked-out part
    mask = np.zeros((20, 20), bool)
    mask[:, 8:] = True
    sub_p, sub_r = pred[:, :, 8:], ref[:, :, 8:]
    assert M.rmse(pred, ref, mask=mask) == pytest.approx(M.rmse(sub_p, sub_r), rel=1e-12)
    assert M.psnr(pred, ref, mask=mask) == pytest.approx(M.psnr(sub_p, sub_r), rel=1e-12)
    assert M.sam(pred, ref, mask=mask) == pytest.approx(M.sam(sub_p, sub_r), rel=1e-12)
    assert M.ergas(pred, ref, ratio=0.5, mask=mask) == pytest.approx(M.ergas(sub_p, sub_r, ratio=0.5), rel=1e-12)
    assert M.cc(pred, ref, mask=mask) == pytest.approx(M.cc(sub_p, sub_r), rel=1e-12)
    # UIQI blocks: with block 4 the masked area holds whole blocks, so the valid blocks are those of the sub-image.
    assert M.uiqi(pred, ref, block=4, mask=mask) == pytest.approx(M.uiqi(sub_p, sub_r, block=4), rel=1e-12)
    ev = M.evaluate(pred, ref, ratio=0.5, mask=mask, block=4)
    assert ev["conventions"]["valid_pixels"] == 20 * 12


def test_nan_in_one_band_invalidates_the_pixel_in_all_bands() -> None:
    ref = _cube((3, 24, 24))
    pred = _noisy(ref)
    pred_nan = pred.copy()
    pred_nan[1, 4, 5] = np.nan
    mask = np.ones((24, 24), bool)
    mask[4, 5] = False
    np.testing.assert_allclose(M.psnr_per_band(pred_nan, ref), M.psnr_per_band(pred, ref, mask=mask), rtol=1e-12)
    np.testing.assert_allclose(M.rmse_per_band(pred_nan, ref), M.rmse_per_band(pred, ref, mask=mask), rtol=1e-12)
    assert M.ssim(pred_nan, ref) == pytest.approx(M.ssim(pred, ref, mask=mask), rel=1e-12)
    assert math.isfinite(M.ssim(pred_nan, ref))


def test_border_crop() -> None:
    ref = _cube((3, 30, 26))
    pred = _noisy(ref)
    pred[:, :2] = 9.0  # edge artefact removed by the crop
    b = 3
    crop_p, crop_r = pred[:, b:-b, b:-b], ref[:, b:-b, b:-b]
    assert M.rmse(pred, ref, border=b) == pytest.approx(M.rmse(crop_p, crop_r), rel=1e-12)
    assert M.ssim(pred, ref, border=b) == pytest.approx(M.ssim(crop_p, crop_r), rel=1e-12)
    mask = np.ones((30, 26), bool)
    mask[5, 5] = False  # mask is given on the uncropped grid
    ev = M.evaluate(pred, ref, ratio=1 / 3, border=b, mask=mask, block=8)
    assert ev["conventions"]["border"] == b
    assert ev["conventions"]["valid_pixels"] == 24 * 20 - 1
    with pytest.raises(DcstsfInputError):
        M.rmse(pred, ref, border=13)
    with pytest.raises(DcstsfInputError):
        M.rmse(pred, ref, border=-1)


def test_bad_inputs_raise() -> None:
    ref = _cube((3, 8, 8))
    with pytest.raises(DcstsfInputError, match="same"):
        M.rmse(ref[:, :7], ref)
    with pytest.raises(DcstsfInputError, match="boolean"):
        M.rmse(ref, ref, mask=np.ones((8, 8)))
    with pytest.raises(DcstsfInputError, match="shape"):
        M.rmse(ref, ref, mask=np.ones((7, 8), bool))
    with pytest.raises(DcstsfInputError):
        M.psnr(ref, ref, data_range=0)


# ----------------------------------------------------------------------------------------- SSIM / UIQI
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
    ref = _cube((2, 10, 10))
    with pytest.warns(RuntimeWarning, match="ssim"):
        assert math.isnan(M.ssim(ref, ref))


def test_uiqi_single_block_hand_case_and_block_convention() -> None:
    ref = _cube((2, 40, 40))
    pred = _noisy(ref, 0.05)
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
    ref = _cube((2, 16, 16))
    pred = _noisy(ref, 0.05)
    pred_nan = pred.copy()
    pred_nan[0, 1, 1] = np.nan  # in the top-left 8x8 block
    expected = M.uiqi(pred[:, 8:, :], ref[:, 8:, :], block=8) * 2 + M.uiqi(pred[:, :8, 8:], ref[:, :8, 8:], block=8)
    assert M.uiqi(pred_nan, ref, block=8) == pytest.approx(expected / 3, rel=1e-12)
    assert M.uiqi(np.full((1, 8, 8), 0.3), np.full((1, 8, 8), 0.3), block=8) == 1.0
    with pytest.warns(RuntimeWarning, match="uiqi"):
        assert math.isnan(M.uiqi(np.full((1, 4, 4), np.nan), ref[:1, :4, :4], block=4))


# ------------------------------------------------------------------------------------------------- Q2n
def test_cayley_dickson_sign_table_matches_recursive_product() -> None:
    for dim in (1, 2, 4, 8, 16):
        s = M._cd_sign_table(dim)
        eye = np.eye(dim)
        for i in range(dim):
            for j in range(dim):
                expected = np.zeros(dim)
                expected[i ^ j] = s[i, j]
                np.testing.assert_array_equal(M._cd_mult(eye[i], eye[j]), expected)
    # Quaternions: i j = k, j i = -k; complex: i i = -1.
    e = np.eye(4)
    np.testing.assert_array_equal(M._cd_mult(e[1], e[2]), e[3])
    np.testing.assert_array_equal(M._cd_mult(e[2], e[1]), -e[3])
    np.testing.assert_array_equal(M._cd_mult(np.array([0.0, 1.0]), np.array([0.0, 1.0])), [-1.0, 0.0])
    # Composition algebras up to the octonions: |xy| = |x||y|.
    rng = np.random.default_rng(0)
    for dim in (2, 4, 8):
        x, y = rng.normal(size=(2, 50, dim))
        np.testing.assert_allclose(
            np.linalg.norm(M._cd_mult(x, y), axis=-1), np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1)
        )


def test_q2n_single_band_equals_uiqi() -> None:
    ref = _cube((1, 64, 48), seed=4)
    pred = _noisy(ref, 0.05)
    assert M.q2n(pred, ref, block=16) == pytest.approx(M.uiqi(pred, ref, block=16), rel=1e-12)


def test_q2n_two_bands_equals_complex_formula() -> None:
    ref = _cube((2, 16, 16), seed=5)
    pred = _noisy(ref, 0.05)
    z = pred[0].astype(np.float64) + 1j * pred[1]
    w = ref[0].astype(np.float64) + 1j * ref[1]
    zm, wm = z.mean(), w.mean()
    cov = np.mean((z - zm) * np.conj(w - wm))
    vz, vw = np.mean(np.abs(z - zm) ** 2), np.mean(np.abs(w - wm) ** 2)
    expected = 4 * abs(cov) * abs(zm) * abs(wm) / ((vz + vw) * (abs(zm) ** 2 + abs(wm) ** 2))
    assert M.q2n(pred, ref, block=16) == pytest.approx(expected, rel=1e-10)


def test_q2n_three_bands_padded_matches_per_pixel_product() -> None:
    ref = _cube((3, 8, 8), seed=6)
    pred = _noisy(ref, 0.05)
    z = np.zeros((64, 4))
    w = np.zeros((64, 4))
    z[:, :3] = pred.reshape(3, -1).T
    w[:, :3] = ref.reshape(3, -1).T
    zc, wc = z - z.mean(0), w - w.mean(0)
    cov = M._cd_mult(zc, M._cd_conj(wc)).mean(0)
    nz, nw = np.linalg.norm(z.mean(0)), np.linalg.norm(w.mean(0))
    var = (zc**2).sum(1).mean() + (wc**2).sum(1).mean()
    expected = 4 * np.linalg.norm(cov) * nz * nw / (var * (nz**2 + nw**2))
    assert M.q2n(pred, ref, block=8) == pytest.approx(expected, rel=1e-10)
    assert 0.0 <= M.q2n(_noisy(ref, 0.3), ref, block=4) <= 1.0


# --------------------------------------------------------------------------------------- Dask / xarray
def test_dask_parity_with_numpy() -> None:
    ref = _cube((7, 33, 29), seed=8)
    pred = _noisy(ref, 0.03)
    ref[2, 10, 11] = np.nan
    pred[:, 20, 25] = 0.0
    mask = np.ones((33, 29), bool)
    mask[25:, :5] = False
    dp = da.from_array(pred, chunks=(3, 12, 11))  # chunks that do not divide the shape
    dr = da.from_array(ref, chunks=(4, 20, 13))  # and differ between the two cubes
    kw = {"mask": mask, "border": 2}
    # Threaded (default) scheduler for one metric, synchronous for the rest to keep the test fast.
    assert M.sam(dp, dr, **kw) == pytest.approx(M.sam(pred, ref, **kw), rel=1e-6)
    with dask.config.set(scheduler="synchronous"):
        for fn in (M.psnr, M.rmse, M.cc):
            assert fn(dp, dr, **kw) == pytest.approx(fn(pred, ref, **kw), rel=1e-6), fn.__name__
        assert M.ergas(dp, ref, ratio=1 / 3, **kw) == pytest.approx(M.ergas(pred, ref, ratio=1 / 3, **kw), rel=1e-6)
        for fn in (M.psnr_per_band, M.rmse_per_band, M.cc_per_band):
            np.testing.assert_allclose(fn(dp, dr, **kw), fn(pred, ref, **kw), rtol=1e-6)
        np.testing.assert_allclose(M.sam_map(dp, dr, **kw), M.sam_map(pred, ref, **kw), rtol=1e-6)
        ev_np = M.evaluate(pred, ref, ratio=1 / 3, block=8, **kw)
        ev_da = M.evaluate(dp, dr, ratio=1 / 3, block=8, **kw)
    for key, value in ev_np["global"].items():
        assert math.isfinite(value), key
        assert ev_da["global"][key] == pytest.approx(value, rel=1e-6), key
    for key, values in ev_np["per_band"].items():
        np.testing.assert_allclose(ev_da["per_band"][key], values, rtol=1e-6)
    assert ev_da["conventions"] == ev_np["conventions"]


def test_xarray_input_accepted() -> None:
    ref = _cube((3, 12, 14))
    pred = _noisy(ref)
    xp = xr.DataArray(pred, dims=("band", "y", "x"))
    xref = xr.DataArray(ref, dims=("band", "y", "x")).transpose("y", "x", "band")  # reordered dims
    assert M.rmse(xp, xref) == pytest.approx(M.rmse(pred, ref), rel=1e-12)
    assert M.sam(xp, xref) == pytest.approx(M.sam(pred, ref), rel=1e-12)
    lazy = xr.DataArray(da.from_array(pred, chunks=(2, 5, 5)), dims=("band", "y", "x"))
    assert M.psnr(lazy, ref) == pytest.approx(M.psnr(pred, ref), rel=1e-6)
    mask = xr.DataArray(np.ones((12, 14), bool), dims=("y", "x"))
    assert M.cc(xp, ref, mask=mask) == pytest.approx(M.cc(pred, ref), rel=1e-12)
    with pytest.raises(DcstsfInputError, match="dims"):
        M.rmse(xr.DataArray(pred, dims=("wavelength", "y", "x")), ref)


# ------------------------------------------------------------------------------------------------- QNR
def _consistent_scene(seed: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hs_low = rng.uniform(0.05, 0.6, (4, 20, 20))
    ms_low = rng.uniform(0.05, 0.6, (2, 20, 20))

    def up(a: np.ndarray) -> np.ndarray:  # pixel replication, pixel-corner aligned
        return np.repeat(np.repeat(a, 3, axis=1), 3, axis=2)

    return up(hs_low), hs_low, up(ms_low), ms_low


def test_d_lambda_and_d_s_vanish_on_consistent_inputs() -> None:
    fused, hs_low, ms, ms_low = _consistent_scene()
    # block 30 on the fine grid == block 10 on the coarse grid: identical footprints.
    assert M.d_lambda(fused, hs_low, block=30) == pytest.approx(0.0, abs=1e-12)
    assert M.d_s(fused, hs_low, ms, ms_low, block=30) == pytest.approx(0.0, abs=1e-12)
    assert M.qnr(fused, hs_low, ms, ms_low, block=30) == pytest.approx(1.0, abs=1e-12)


def test_qnr_detects_distortion_and_stays_in_unit_interval() -> None:
    fused, hs_low, ms, ms_low = _consistent_scene()
    rng = np.random.default_rng(10)
    bad = fused + rng.normal(0, 0.2, fused.shape)
    dl = M.d_lambda(bad, hs_low, block=30, p=2)
    ds = M.d_s(bad, hs_low, ms, ms_low, block=30)
    assert dl > 0.01 and ds > 0.01
    value = M.qnr(bad, hs_low, ms, ms_low, block=30)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx((1 - M.d_lambda(bad, hs_low, block=30)) * (1 - ds), rel=1e-12)
    for seed in range(3):
        r = np.random.default_rng(seed)
        v = M.qnr(r.normal(size=(3, 24, 24)), r.normal(size=(3, 8, 8)), r.normal(size=(2, 24, 24)),
                  r.normal(size=(2, 8, 8)), block=12)
        assert 0.0 <= v <= 1.0


def test_d_lambda_hand_case_two_bands() -> None:
    fused, hs_low, _, _ = _consistent_scene()
    fused = fused[:2, :30, :30]
    hs_low = hs_low[:2, :10, :10]
    fused2 = fused.copy()
    fused2[1] = fused[1] ** 2
    q_f = M.uiqi(fused2[:1], fused2[1:], block=30)
    q_l = M.uiqi(hs_low[:1], hs_low[1:], block=10)
    assert M.d_lambda(fused2, hs_low, block=30) == pytest.approx(abs(q_f - q_l), rel=1e-10)


def test_qnr_input_validation() -> None:
    fused, hs_low, ms, ms_low = _consistent_scene()
    with pytest.raises(DcstsfInputError, match="bands"):
        M.d_lambda(fused[:3], hs_low)
    with pytest.raises(DcstsfInputError, match="scale"):
        M.d_lambda(fused[:, :, :50], hs_low)
    with pytest.raises(DcstsfInputError, match="grid"):
        M.d_s(fused, hs_low, ms[:, :30], ms_low)


def test_evaluate_structure() -> None:
    ref = _cube((4, 36, 36))
    pred = _noisy(ref)
    ev = M.evaluate(pred, ref, ratio=1 / 3)
    assert set(ev) == {"global", "per_band", "conventions"}
    assert {"psnr", "sam_deg", "ergas", "ssim", "cc", "rmse", "uiqi", "q2n"} <= set(ev["global"])
    assert {"psnr", "rmse", "sam_contribution", "cc"} <= set(ev["per_band"])
    assert all(len(v) == 4 for v in ev["per_band"].values())
    conv = ev["conventions"]
    assert conv["ratio_h_over_l"] == pytest.approx(1 / 3)
    assert conv["sam_units"] == "degrees"
    assert conv["valid_pixels"] == 36 * 36
    assert ev["global"]["psnr"] == pytest.approx(M.psnr(pred, ref))
    assert ev["global"]["ergas"] == pytest.approx(M.ergas(pred, ref, ratio=1 / 3))
    assert ev["global"]["ssim"] == pytest.approx(M.ssim(pred, ref))
    assert ev["global"]["q2n"] == pytest.approx(M.q2n(pred, ref))
    assert "q2n" not in M.evaluate(pred, ref, ratio=1 / 3, include_q2n=False)["global"]
    assert set(M.__all__) >= {"psnr", "psnr_per_band", "rmse", "rmse_per_band", "sam", "sam_map", "ergas", "ssim",
                              "cc", "uiqi", "q2n", "d_lambda", "d_s", "qnr", "evaluate"}


def test_numpy_slab_loop_matches_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _cube((4, 23, 13), seed=11)
    pred = _noisy(ref, 0.05)
    pred[1, 20, 1] = np.nan
    pred[:, 7, 2] = 0.0
    whole = M.evaluate(pred, ref, ratio=1 / 3, block=4)
    smap = M.sam_map(pred, ref)
    monkeypatch.setattr(M, "_SLAB_ELEMENTS", 4 * 13 * 2)  # two rows per slab, last slab one row
    sliced = M.evaluate(pred, ref, ratio=1 / 3, block=4)
    for key, value in whole["global"].items():
        assert sliced["global"][key] == pytest.approx(value, rel=1e-12), key
    for key, values in whole["per_band"].items():
        np.testing.assert_allclose(sliced["per_band"][key], values, rtol=1e-12)
    np.testing.assert_allclose(M.sam_map(pred, ref), smap, rtol=1e-12)

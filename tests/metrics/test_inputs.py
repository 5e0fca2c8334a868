"""Tests of dcstsf.metrics.inputs: accepted inputs, masks, NaN validity and the border crop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from dcstsf import metrics as M
from dcstsf.errors import DcstsfInputError
from tests.metrics.cubes import noisy, random_cube


def test_mask_restricts_to_valid_pixels() -> None:
    ref = random_cube((3, 20, 20))
    pred = noisy(ref)
    pred[:, :, :8] = 5.0  # garbage on the masked-out part
    mask = np.zeros((20, 20), bool)
    mask[:, 8:] = True
    sub_p, sub_r = pred[:, :, 8:], ref[:, :, 8:]
    assert M.rmse(pred, ref, mask=mask) == pytest.approx(M.rmse(sub_p, sub_r), rel=1e-12)
    assert M.psnr(pred, ref, mask=mask) == pytest.approx(M.psnr(sub_p, sub_r), rel=1e-12)
    assert M.sam(pred, ref, mask=mask) == pytest.approx(M.sam(sub_p, sub_r), rel=1e-12)
    assert M.ergas(pred, ref, h_over_l=0.5, mask=mask) == pytest.approx(
        M.ergas(sub_p, sub_r, h_over_l=0.5), rel=1e-12
    )
    assert M.cc(pred, ref, mask=mask) == pytest.approx(M.cc(sub_p, sub_r), rel=1e-12)
    # UIQI blocks: with block 4 the masked area holds whole blocks, so the valid blocks are those of the sub-image.
    assert M.uiqi(pred, ref, block=4, mask=mask) == pytest.approx(M.uiqi(sub_p, sub_r, block=4), rel=1e-12)
    ev = M.evaluate(pred, ref, h_over_l=0.5, mask=mask, block=4)
    assert ev["conventions"]["valid_pixels"] == 20 * 12


def test_nan_in_one_band_invalidates_the_pixel_in_all_bands() -> None:
    ref = random_cube((3, 24, 24))
    pred = noisy(ref)
    pred_nan = pred.copy()
    pred_nan[1, 4, 5] = np.nan
    mask = np.ones((24, 24), bool)
    mask[4, 5] = False
    np.testing.assert_allclose(M.psnr_per_band(pred_nan, ref), M.psnr_per_band(pred, ref, mask=mask), rtol=1e-12)
    np.testing.assert_allclose(M.rmse_per_band(pred_nan, ref), M.rmse_per_band(pred, ref, mask=mask), rtol=1e-12)
    assert M.ssim(pred_nan, ref) == pytest.approx(M.ssim(pred, ref, mask=mask), rel=1e-12)
    assert math.isfinite(M.ssim(pred_nan, ref))


def test_border_crop() -> None:
    ref = random_cube((3, 30, 26))
    pred = noisy(ref)
    pred[:, :2] = 9.0  # edge artefact removed by the crop
    b = 3
    crop_p, crop_r = pred[:, b:-b, b:-b], ref[:, b:-b, b:-b]
    assert M.rmse(pred, ref, border=b) == pytest.approx(M.rmse(crop_p, crop_r), rel=1e-12)
    assert M.ssim(pred, ref, border=b) == pytest.approx(M.ssim(crop_p, crop_r), rel=1e-12)
    mask = np.ones((30, 26), bool)
    mask[5, 5] = False  # mask is given on the uncropped grid
    ev = M.evaluate(pred, ref, h_over_l=1 / 3, border=b, mask=mask, block=8)
    assert ev["conventions"]["border"] == b
    assert ev["conventions"]["valid_pixels"] == 24 * 20 - 1
    with pytest.raises(DcstsfInputError):
        M.rmse(pred, ref, border=13)
    with pytest.raises(DcstsfInputError):
        M.rmse(pred, ref, border=-1)


def test_bad_inputs_raise() -> None:
    ref = random_cube((3, 8, 8))
    with pytest.raises(DcstsfInputError, match="same"):
        M.rmse(ref[:, :7], ref)
    with pytest.raises(DcstsfInputError, match="boolean"):
        M.rmse(ref, ref, mask=np.ones((8, 8)))
    with pytest.raises(DcstsfInputError, match="shape"):
        M.rmse(ref, ref, mask=np.ones((7, 8), bool))
    with pytest.raises(DcstsfInputError):
        M.psnr(ref, ref, data_range=0)


def test_xarray_input_accepted() -> None:
    import dask.array as da

    ref = random_cube((3, 12, 14))
    pred = noisy(ref)
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

"""Tests of dcstsf.metrics.evaluation: ``evaluate`` returns every metric with its conventions."""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf import metrics as M
from dcstsf.errors import DcstsfInputError
from tests.metrics.cubes import noisy, random_cube


def test_evaluate_structure() -> None:
    ref = random_cube((4, 36, 36))
    pred = noisy(ref)
    ev = M.evaluate(pred, ref, h_over_l=1 / 3)
    assert set(ev) == {"global", "per_band", "conventions"}
    assert {"psnr", "sam_deg", "ergas", "ssim", "cc", "rmse", "uiqi", "q2n"} <= set(ev["global"])
    assert {"psnr", "rmse", "sam_contribution", "cc"} <= set(ev["per_band"])
    assert all(len(v) == 4 for v in ev["per_band"].values())
    conv = ev["conventions"]
    assert conv["ratio_h_over_l"] == pytest.approx(1 / 3)
    assert conv["sam_units"] == "degrees"
    assert conv["valid_pixels"] == 36 * 36
    assert ev["global"]["psnr"] == pytest.approx(M.psnr(pred, ref))
    assert ev["global"]["ergas"] == pytest.approx(M.ergas(pred, ref, h_over_l=1 / 3))
    assert ev["global"]["ssim"] == pytest.approx(M.ssim(pred, ref))
    assert ev["global"]["q2n"] == pytest.approx(M.q2n(pred, ref))
    assert "q2n" not in M.evaluate(pred, ref, h_over_l=1 / 3, include_q2n=False)["global"]
    assert set(M.__all__) >= {"psnr", "psnr_per_band", "rmse", "rmse_per_band", "sam", "sam_map", "ergas", "ssim",
                              "cc", "uiqi", "q2n", "d_lambda", "d_s", "qnr", "evaluate"}


def test_evaluate_refuses_the_resolution_ratio() -> None:
    ref = random_cube((2, 4, 4))
    with pytest.raises(DcstsfInputError, match="h/l"):
        M.evaluate(ref, ref, h_over_l=3)


def test_sam_contribution_sums_to_mean_chord() -> None:
    ref = random_cube((6, 12, 12))
    pred = noisy(ref, 0.05)
    ev = M.evaluate(pred, ref, h_over_l=1 / 3, block=6)
    angles = np.radians(M.sam_map(pred, ref))
    assert sum(ev["per_band"]["sam_contribution"]) == pytest.approx(float(np.mean(2 * (1 - np.cos(angles)))), rel=1e-9)
    # A band with a larger error contributes more.
    pred2 = ref.copy()
    pred2[4] *= 1.3
    contrib = M.evaluate(pred2, ref, h_over_l=1 / 3, block=6)["per_band"]["sam_contribution"]
    assert int(np.argmax(contrib)) == 4

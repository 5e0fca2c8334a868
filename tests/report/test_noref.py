"""Tests of dcstsf.report.noref: no-reference quality against the observed inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.report import no_reference_quality, unchanged_pixels


def test_no_reference_quality_ranks_truth_above_bicubic(case: Any, preds: dict[str, xr.DataArray]) -> None:
    hs, m1, m2 = case.arrays()
    truth = no_reference_quality(case.hs_t2_truth, hs, m1, m2, model=case.model)
    bic = no_reference_quality(preds["bicubic"], hs, m1, m2, model=case.model)
    assert truth["ms_t2_reproduction"]["psnr"] > bic["ms_t2_reproduction"]["psnr"] + 3
    assert truth["ms_t2_reproduction"]["sam_deg"] < bic["ms_t2_reproduction"]["sam_deg"]
    # D_s pairs same-date images at each scale: the truth is less distorted than bicubic.
    assert truth["qnr"]["d_s"] < bic["qnr"]["d_s"]
    rep = truth["hs_t1_reproduction_unchanged"]
    assert rep["pixels"] >= 0 and 0 <= rep["fraction"] <= 1 and rep["change_threshold"] == 0.03
    with pytest.raises(DcstsfInputError, match="grids"):
        no_reference_quality(case.hs_t2_truth[:, :33], hs, m1, m2, model=case.model)


def test_unchanged_pixels() -> None:
    rng = np.random.default_rng(0)
    m1 = rng.uniform(0.1, 0.3, (4, 12, 12)).astype(np.float32)
    m2 = m1.copy()
    m2[:, :3, :3] *= 1.5  # one coarse pixel changes by 50 %
    unchanged, rel = unchanged_pixels(m1, m2, ratio=3)
    assert unchanged.shape == (4, 4)
    assert not unchanged[0, 0] and unchanged.sum() == 15
    assert rel[0, 0] == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(DcstsfInputError):
        unchanged_pixels(m1, m2, ratio=3, threshold=-1)


def test_unchanged_pixels_are_used(case: Any) -> None:
    hs, m1, _ = case.arrays()
    # MS(t2) = MS(t1): every pixel is unchanged, and the t1 truth reproduces HS(t1) up to the HS noise.
    res = no_reference_quality(case.hs_t1_truth, hs, m1, m1, model=case.model)
    rep = res["hs_t1_reproduction_unchanged"]
    assert rep["fraction"] == 1.0
    assert rep["psnr"] > 35

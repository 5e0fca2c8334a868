"""Tests of dcstsf.metrics.noref: D_lambda, D_s and QNR on consistent and distorted inputs."""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf import metrics as M
from dcstsf.errors import DcstsfInputError


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
    with pytest.raises(DcstsfInputError, match="resolution ratio"):
        M.d_lambda(fused[:, :, :50], hs_low)
    with pytest.raises(DcstsfInputError, match="grid"):
        M.d_s(fused, hs_low, ms[:, :30], ms_low)

"""Tests of dcstsf.metrics.band_stats: the NumPy slab loop and the Dask chunk-wise pass give the same sums."""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np
import pytest

from dcstsf import metrics as M
from dcstsf.metrics import band_stats
from tests.metrics.cubes import noisy, random_cube


def test_row_slabs_cover_every_row_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(band_stats, "SLAB_ELEMENTS", 4 * 13 * 2)
    slabs = list(band_stats.row_slabs(4, 23, 13))
    assert [s.start for s in slabs] == list(range(0, 23, 2))
    assert np.concatenate([np.arange(23)[s] for s in slabs]).tolist() == list(range(23))


def test_numpy_slab_loop_matches_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = random_cube((4, 23, 13), seed=11)
    pred = noisy(ref, 0.05)
    pred[1, 20, 1] = np.nan
    pred[:, 7, 2] = 0.0
    whole = M.evaluate(pred, ref, h_over_l=1 / 3, block=4)
    smap = M.sam_map(pred, ref)
    monkeypatch.setattr(band_stats, "SLAB_ELEMENTS", 4 * 13 * 2)  # two rows per slab, last slab one row
    sliced = M.evaluate(pred, ref, h_over_l=1 / 3, block=4)
    for key, value in whole["global"].items():
        assert sliced["global"][key] == pytest.approx(value, rel=1e-12), key
    for key, values in whole["per_band"].items():
        np.testing.assert_allclose(sliced["per_band"][key], values, rtol=1e-12)
    np.testing.assert_allclose(M.sam_map(pred, ref), smap, rtol=1e-12)


def test_dask_parity_with_numpy() -> None:
    ref = random_cube((7, 33, 29), seed=8)
    pred = noisy(ref, 0.03)
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
        assert M.ergas(dp, ref, h_over_l=1 / 3, **kw) == pytest.approx(
            M.ergas(pred, ref, h_over_l=1 / 3, **kw), rel=1e-6
        )
        for fn in (M.psnr_per_band, M.rmse_per_band, M.cc_per_band):
            np.testing.assert_allclose(fn(dp, dr, **kw), fn(pred, ref, **kw), rtol=1e-6)
        np.testing.assert_allclose(M.sam_map(dp, dr, **kw), M.sam_map(pred, ref, **kw), rtol=1e-6)
        ev_np = M.evaluate(pred, ref, h_over_l=1 / 3, block=8, **kw)
        ev_da = M.evaluate(dp, dr, h_over_l=1 / 3, block=8, **kw)
    for key, value in ev_np["global"].items():
        assert math.isfinite(value), key
        assert ev_da["global"][key] == pytest.approx(value, rel=1e-6), key
    for key, values in ev_np["per_band"].items():
        np.testing.assert_allclose(ev_da["per_band"][key], values, rtol=1e-6)
    assert ev_da["conventions"] == ev_np["conventions"]

"""dcstsf.nodata: +/-Inf (and, for the fusion, values no reflectance takes) to NaN, NumPy and Dask alike,
without copying blocks that hold none."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from dcstsf.nodata import IMPOSSIBLE_REFLECTANCE, has_inf, impossible_to_nan, inf_to_nan


def _cube(seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(4, 9, 11)).astype(np.float32)
    a[0, 1, 2] = np.nan
    return a


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("ndim", [2, 3, 4])
def test_has_inf_finds_one_inf_anywhere(value: float, ndim: int) -> None:
    a = _cube()[(0,) * (3 - ndim)] if ndim < 3 else _cube()
    if ndim == 4:
        a = np.stack([a, a])
    assert not has_inf(a)  # NaN is not Inf
    a = a.copy()
    a.reshape(-1)[-1] = value  # the last value of the last plane
    assert has_inf(a)


def test_has_inf_on_a_strided_view() -> None:
    a = np.zeros((3, 10, 12), dtype=np.float32)
    a[2, 8, 10] = -np.inf
    assert has_inf(a[:, ::2, ::2]) and not has_inf(a[:, 1::2, ::2])
    out = inf_to_nan(a[:, ::2, ::2])
    assert np.isnan(out[2, 4, 5]) and np.isfinite(out).sum() == out.size - 1


def test_has_inf_is_false_for_integers() -> None:
    assert not has_inf(np.arange(12, dtype=np.int16).reshape(1, 3, 4))


def test_numpy_block_without_inf_is_returned_as_is() -> None:
    a = _cube()
    assert inf_to_nan(a) is a


def test_inf_becomes_nan_and_nothing_else_changes() -> None:
    a = _cube()
    a[1, 3, 4], a[2, 0, 0] = np.inf, -np.inf
    out = inf_to_nan(a)
    assert out.dtype == np.float32 and out is not a
    assert np.isnan(out[1, 3, 4]) and np.isnan(out[2, 0, 0]) and np.isnan(out[0, 1, 2])
    keep = np.isfinite(a)
    np.testing.assert_array_equal(out[keep], a[keep])
    assert np.isinf(a[1, 3, 4])  # the input is not modified


def test_dask_matches_numpy_and_stays_lazy() -> None:
    a = _cube()
    a[3, 8, 10] = np.inf
    lazy = inf_to_nan(da.from_array(a, chunks=(2, 4, 5)))
    assert isinstance(lazy, da.Array) and lazy.dtype == a.dtype
    np.testing.assert_array_equal(lazy.compute(), inf_to_nan(a))


def test_dask_integer_array_is_left_alone() -> None:
    d = da.zeros((2, 3, 3), dtype=np.uint16, chunks=2)
    assert inf_to_nan(d) is d


def _reflectance(seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).uniform(-0.05, 1.2, size=(4, 9, 11)).astype(np.float32)
    a[0, 1, 2] = np.nan
    return a


def test_impossible_values_become_nan_numpy_and_dask_alike() -> None:
    clean = _reflectance()
    assert impossible_to_nan(clean, label="X") is clean  # nothing to do: no copy, no warning
    lo, hi = IMPOSSIBLE_REFLECTANCE
    bad = clean.copy()
    bad[1, 3, 4], bad[2, 5, 6], bad[3, 0, 0], bad[0, 8, 10] = 1e30, hi + 0.5, lo - 0.5, np.inf
    with pytest.warns(UserWarning, match=r"MS\(t2\) \(s2.tif\) holds values outside \[-1, 2.5\]"):
        got = impossible_to_nan(bad, label="MS(t2) (s2.tif)")
    expected = bad.copy()
    expected[1, 3, 4] = expected[2, 5, 6] = expected[3, 0, 0] = expected[0, 8, 10] = np.nan
    np.testing.assert_array_equal(got, expected)
    with pytest.warns(UserWarning, match="holds values outside"):
        lazy = impossible_to_nan(da.from_array(bad, chunks=(4, 4, 5)), label="MS(t2) (s2.tif)").compute()
    np.testing.assert_array_equal(lazy, expected)
    # +/-Inf alone is a nodata marker: converted without a warning; without a label, no warning either
    only_inf = clean.copy()
    only_inf[2, 2, 2] = -np.inf
    assert np.isnan(impossible_to_nan(only_inf, label="X")[2, 2, 2])
    assert np.isnan(impossible_to_nan(bad)[1, 3, 4])

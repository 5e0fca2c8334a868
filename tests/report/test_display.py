"""Tests of dcstsf.report.display: composite bands, reduced maps and sample pixels."""

from __future__ import annotations

import numpy as np

from dcstsf.report import nearest_bands
from dcstsf.report.display import display_step, reduce_map, sample_pixels


def test_nearest_bands() -> None:
    wl = np.array([450.0, 480.0, 560.0, 660.0, 870.0])
    assert nearest_bands(wl, (650, 550, 470)) == [3, 2, 1]
    assert nearest_bands(wl[:3], (860, 650, 550)) is None
    assert nearest_bands(None, (650, 550, 470)) is None


def test_reduce_map_is_a_block_nan_mean() -> None:
    m = np.arange(25, dtype=float).reshape(5, 5)
    m[0, 0] = np.nan
    m[4, 4] = np.nan
    r = reduce_map(m, 2)
    assert r.shape == (3, 3)
    assert r[0, 0] == (1 + 5 + 6) / 3
    assert np.isnan(r[2, 2])  # the padded corner block holds only the NaN pixel
    assert reduce_map(m, 1) is m
    assert display_step((600, 10)) == 1 and display_step((601, 10)) == 2


def test_sample_pixels_pick_dark_median_bright_and_most_changed() -> None:
    ref = np.broadcast_to(np.linspace(0.0, 1.0, 30 * 30).reshape(30, 30), (2, 30, 30)).copy()
    valid = np.ones((30, 30), bool)
    change = np.zeros((10, 10))
    change[4, 7] = 1.0
    picks = sample_pixels(ref, valid, margin=3, change=change, ratio=3)
    assert [d for *_, d in picks] == ["dark pixel", "median pixel", "bright pixel", "largest MS change"]
    assert picks[-1][:2] == (13, 22)
    assert all(3 <= y < 27 and 3 <= x < 27 for y, x, _ in picks)
    assert sample_pixels(ref, np.zeros((30, 30), bool), margin=3, change=None, ratio=3) == []

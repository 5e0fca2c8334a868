"""Tests of dcstsf.metrics.undefined: NaN results come with a warning that points at the caller."""

from __future__ import annotations

import math
import warnings

import numpy as np

from dcstsf import metrics as M
from tests.metrics.cubes import random_cube


def test_undefined_value_warning_points_at_the_caller() -> None:
    ref = random_cube((2, 8, 8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert math.isnan(M.ssim(ref, ref))  # 8x8 holds no whole 11x11 window
        assert math.isnan(M.evaluate(ref, ref, h_over_l=0.5, block=4)["global"]["ssim"])
    assert len(caught) == 2
    assert all(w.category is RuntimeWarning and w.filename == __file__ for w in caught)


def test_band_mean_skips_undefined_bands_with_a_warning() -> None:
    from dcstsf.metrics.undefined import band_mean

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert band_mean(np.array([0.5, np.nan, 0.7]), "cc") == 0.6
    assert "band(s) [1]" in str(caught[0].message)

"""The displacement field: least-squares models, outlier rejection, fallbacks and the JSON record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcstsf.coregistration import DisplacementField, fit_field, fit_robust

SHAPE = (60, 80)


def _points(step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    r, c = np.meshgrid(np.arange(4.5, SHAPE[0] - 4, step), np.arange(4.5, SHAPE[1] - 4, step), indexing="ij")
    return r.ravel(), c.ravel()


def _quadratic(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """A known degree-2 field ``(n, 2)``."""
    return np.stack([1.5 + 0.01 * r - 0.02 * c + 1e-4 * r * c, -2.0 + 3e-4 * r**2 + 0.005 * c], axis=-1)


def test_polynomial_fit_is_exact_on_polynomial_data() -> None:
    r, c = _points()
    field = fit_field(r, c, _quadratic(r, c), shape=SHAPE, model="polynomial", degree=2)
    rows, cols = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    np.testing.assert_allclose(field.on_grid(), np.moveaxis(_quadratic(rows, cols), -1, 0), atol=1e-9)
    assert field.mean == pytest.approx(tuple(_quadratic(rows, cols).reshape(-1, 2).mean(axis=0)))


def test_global_and_spline_models() -> None:
    r, c = _points()
    d = _quadratic(r, c)
    glob = fit_field(r, c, d, shape=SHAPE, model="global")
    assert glob.degree == 0 and glob.max_deviation == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(glob.coef[0], d.mean(axis=0))
    # an interpolating thin-plate spline (no smoothing) passes through every tie point
    spline = fit_field(r, c, d, shape=SHAPE, model="spline", smoothing=0.0)
    np.testing.assert_allclose(spline(r, c).T, d, atol=1e-9)
    # smoothing trades closeness for smoothness
    smooth = fit_field(r, c, d + np.random.default_rng(0).normal(0, 0.05, d.shape), shape=SHAPE, model="spline",
                       smoothing=1.0)
    assert np.abs(smooth(r, c).T - d).max() < 0.15


def test_outliers_rejected() -> None:
    """A tenth of the tie points 1.5-3 px wrong, the rest with 0.03 px noise: the outliers go, the field stays."""
    rng = np.random.default_rng(3)
    r, c = _points(step=6)
    d = _quadratic(r, c) + rng.normal(0, 0.03, (r.size, 2))
    bad = rng.choice(r.size, r.size // 10, replace=False)
    d[bad] += rng.uniform(1.5, 3.0, (bad.size, 2)) * rng.choice([-1, 1], (bad.size, 2))
    fit = fit_robust(r, c, d, shape=SHAPE, model="polynomial", degree=2, threshold=3.0, min_scale=0.02)
    assert not fit.inlier[bad].any()
    assert fit.inlier.sum() >= r.size - bad.size - 3  # at 3 sigma a few good points may go too
    assert 0.02 <= fit.sigma < 0.05
    rows, cols = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    err = np.hypot(*(fit.field.on_grid() - np.moveaxis(_quadratic(rows, cols), -1, 0)))
    assert err.max() < 0.06
    # a spline is fitted to the same inliers
    spline = fit_robust(r, c, d, shape=SHAPE, model="spline", degree=2, smoothing=1e-2, threshold=3.0, min_scale=0.02)
    np.testing.assert_array_equal(spline.inlier, fit.inlier)
    assert spline.field.model == "spline" and spline.field.nodes.shape[0] == fit.inlier.sum()
    spline_err = np.hypot(*(spline.field.on_grid() - np.moveaxis(_quadratic(rows, cols), -1, 0)))
    # inside the tie points' hull (beyond it the spline goes straight on): measured 0.050 with 0.03 px noise
    assert spline_err[5:53, 5:71].max() < 0.08
    # without rejection the same outliers bend the field by a tenth of a pixel and more
    plain = fit_field(r, c, d, shape=SHAPE, model="polynomial", degree=2)
    assert np.hypot(*(plain.on_grid() - np.moveaxis(_quadratic(rows, cols), -1, 0))).max() > 0.1


def test_nan_points_ignored_and_degree_lowered() -> None:
    r, c = _points(step=20)  # 12 points: too few for 6 coefficients at 3 points each
    d = _quadratic(r, c)
    d[0] = np.nan
    fit = fit_robust(r, c, d, shape=SHAPE, model="polynomial", degree=2)
    assert not fit.inlier[0]
    assert fit.field.degree == 1 and fit.field.model == "affine"
    assert fit.notes and "too few" in fit.notes[0]


def test_record_round_trip() -> None:
    r, c = _points()
    d = _quadratic(r, c)
    for model in ("global", "affine", "polynomial", "spline"):
        field = fit_field(r, c, d, shape=SHAPE, model=model, degree=2)
        again = DisplacementField.from_dict(json.loads(json.dumps(field.to_dict())))
        np.testing.assert_allclose(again.on_grid(), field.on_grid(), atol=1e-6)
        moved = field.plus((0.25, -1.0))
        diff = moved.on_grid() - field.on_grid()
        np.testing.assert_allclose(diff[0], 0.25, atol=1e-12)
        np.testing.assert_allclose(diff[1], -1.0, atol=1e-12)

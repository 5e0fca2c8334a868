"""Tie points on synthetic textures with exactly known shifts (Fourier shifts of smooth periodic noise)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dcstsf.coregistration import phase_correlation
from dcstsf.coregistration.tiepoints import match_tie_point, tie_point_grid
from dcstsf.coregistration.warp import Resampler


def _texture(n: int, *, nb: int = 4, seed: int = 0, sigma: float = 1.5) -> np.ndarray:
    """Smooth periodic noise ``(nb, n, n)``, each band with its own gain and offset (calibrations differ)."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.standard_normal((n, n)), sigma, mode="wrap")
    return np.stack([(1 + 0.3 * b) * base + 0.1 * b for b in range(nb)])


def _fourier_shift(img: np.ndarray, t: tuple[float, float]) -> np.ndarray:
    """``img(x - t)`` for a periodic image (exact for a band-limited one)."""
    fy = np.fft.fftfreq(img.shape[-2])[:, None]
    fx = np.fft.fftfreq(img.shape[-1])[None, :]
    ramp = np.exp(-2j * np.pi * (fy * t[0] + fx * t[1]))
    return np.real(np.fft.ifft2(np.fft.fft2(img) * ramp))


@pytest.mark.parametrize("t", [(0.0, 0.0), (2.0, -3.0), (0.3, -0.45), (-4.6, 1.25)])
def test_phase_correlation_sign_and_bias(t: tuple[float, float]) -> None:
    """``b(x) = a(x - t)`` gives ``t`` in one round, pulled toward zero by the taper both windows share
    (measured: by 6-10 % of the shift); the tie point's re-reads remove that (next tests)."""
    a = _texture(32)
    b = _fourier_shift(a, t)
    m = phase_correlation(a, b, search=8)
    assert m is not None
    for got, want, whole in zip(m.shift, t, m.whole, strict=True):
        assert abs(got - want) <= 0.12 * abs(want) + 0.02
        assert abs(whole - want) <= 1.0 and np.sign(whole) in (0, np.sign(want))
    assert m.peak_ratio > 3.0


def test_unrelated_windows_have_a_low_peak_ratio() -> None:
    ratios = [phase_correlation(_texture(32, seed=s), _texture(32, seed=s + 100), search=8).peak_ratio for s in range(5)]
    assert max(ratios) < 2.0  # the default min_peak_ratio


def test_flat_windows_give_no_match() -> None:
    assert phase_correlation(np.ones((3, 16, 16)), _texture(16, nb=3), search=4) is None


@pytest.mark.parametrize("u", [(0.3, -0.3), (3.4, -2.25), (-1.7, 0.55)])
def test_tie_point_recovers_the_shift(u: tuple[float, float]) -> None:
    """``T(q) = A(q + u)``: a tie point inside the image recovers ``u`` within 0.01 px, also with nodata."""
    ref = _texture(96, sigma=2.0)
    target = _fourier_shift(ref, (-u[0], -u[1]))
    target[:, 40:42, 50:53] = np.nan  # a few nodata pixels inside the window
    shift, peak, corr, frac = match_tie_point(
        ref, target, reader=Resampler(target, resampling="spline"), corner=(32, 40), window=24,
        guess=(0, 0), search=8, max_iterations=4, min_valid_fraction=0.9,
    )
    assert shift is not None
    assert shift == pytest.approx(u, abs=0.01)
    assert peak > 3.0 and corr > 0.95 and 0.9 < frac < 1.0


def test_tie_point_with_too_much_nodata() -> None:
    ref = _texture(64)
    target = ref.copy()
    target[:, 10:40, 10:40] = np.nan
    shift, *_, frac = match_tie_point(
        ref, target, reader=Resampler(target), corner=(12, 12), window=24, guess=(0, 0), search=6,
        max_iterations=4, min_valid_fraction=0.9,
    )
    assert shift is None and frac < 0.9


def test_grid_is_centred_with_its_margin() -> None:
    rows, cols = tie_point_grid((64, 50), window=16, spacing=8, margin=3)
    assert rows.min() >= 3 and rows.max() + 16 <= 61 and cols.min() >= 3 and cols.max() + 16 <= 47
    assert rows.min() - 3 == 61 - (rows.max() + 16) or abs((rows.min() - 3) - (61 - rows.max() - 16)) <= 1
    assert np.all(np.diff(np.unique(rows)) == 8)
    empty = tie_point_grid((10, 10), window=16, spacing=8)
    assert empty[0].size == 0

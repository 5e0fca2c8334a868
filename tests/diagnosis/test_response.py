"""Spectral-response re-estimation on cases simulated from the bundled real EnMAP sample.

Two claims: when the data follow the tables every band keeps its table row, and when some MS responses
are displaced by 12-15 nm (re-integrated over the HS bands as :mod:`dcstsf.sensors` builds ``R``) those
bands, and only those, are replaced by rows much closer to the truth. Measured on these cases over noise
seeds 0-2: with the tables, the largest held-out gain of an estimated row over the table was 3.1 % (the
rule needs 5 %); with displaced responses, the replaced bands gained 19-91 %, their rows' L1 distance to
the true rows was 0.05-0.30 against 0.34-1.48 for the table rows (the test asks for at most half the
table's), and the fitted displacement was within 2.2 nm of the simulated one (the test allows 4 nm, two
steps of the SWIR displacement grid).
"""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf.diagnosis.psf import PsfOptions, estimate_psf
from dcstsf.diagnosis.response import (
    ResponseEstimate,
    ResponseOptions,
    displaced_row,
    estimate_response,
    response_support,
    signal_subspace,
)
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from tests.diagnosis.test_psf import DISPLACED, displaced_model, simulated_windows


def _estimate(model: ObservationModel, windows: tuple[list[np.ndarray], list[np.ndarray]], **options: float) -> ResponseEstimate:
    hs, ms = windows
    psf = estimate_psf(hs, ms, model=model)
    return estimate_response(hs, ms, model=model, psf=psf, options=ResponseOptions(**options))


def _check_rows(model: ObservationModel, est: ResponseEstimate) -> None:
    """Rows are nonnegative, sum to 1 and stay on their widened support, off bad HS bands."""
    assert est.srf.shape == (model.n_ms, model.n_hs)
    assert np.all(est.srf >= 0.0)
    np.testing.assert_allclose(est.srf.sum(axis=1), 1.0, atol=1e-6)
    for b in range(model.n_ms):
        outside = np.ones(model.n_hs, bool)
        outside[response_support(model.srf[b], model.hs_sensor.good)] = False
        assert np.all(est.estimated[b, outside] == 0.0)
        assert np.all(est.srf[b, ~model.hs_sensor.good] == 0.0)


@pytest.mark.parametrize(
    ("sigma", "shift"), [(None, (0.0, 0.0)), (0.7, (0.9, -1.4))], ids=["tables", "narrow-shifted"]
)
def test_tables_kept_when_data_follow_them(model: ObservationModel, sigma: float | None, shift: tuple[float, float]) -> None:
    est = _estimate(model, simulated_windows(model, sigma, shift))
    assert not est.trusted.any(), est.reasons
    np.testing.assert_array_equal(est.srf, model.srf.astype(np.float64))
    assert all(reason.startswith("table: ") for reason in est.reasons)
    assert len(est.reasons) == model.n_ms
    # the estimates were made and compared, and none is much better than the table
    assert np.all(np.isfinite(est.held_out_estimated))
    assert np.all(est.held_out_estimated > 0.95 * est.held_out_tables)
    _check_rows(model, est)


def test_displaced_responses_are_found(model: ObservationModel) -> None:
    truth = displaced_model(model, DISPLACED)
    est = _estimate(model, simulated_windows(model, 1.2, (-0.4, 0.3), truth_model=truth))
    names = model.ms_sensor.band_names
    expected = np.array([n in DISPLACED for n in names])
    np.testing.assert_array_equal(est.trusted, expected, err_msg="\n".join(est.reasons))
    _check_rows(model, est)
    for b, name in enumerate(names):
        if name in DISPLACED:
            assert est.reasons[b].startswith("estimated: ")
            assert est.held_out_estimated[b] < 0.9 * est.held_out_tables[b]
            to_truth = np.abs(est.srf[b] - truth.srf[b]).sum()
            table_to_truth = np.abs(model.srf[b] - truth.srf[b]).sum()
            assert to_truth < 0.5 * table_to_truth, (name, to_truth, table_to_truth)
            assert abs(est.displacement_nm[b] - DISPLACED[name]) < 4.0
        else:
            np.testing.assert_array_equal(est.srf[b], model.srf[b].astype(np.float64))


def test_too_few_pixels_or_flat_bands_keep_the_table(model: ObservationModel) -> None:
    windows = simulated_windows(model, 1.2, (0.0, 0.0))
    few = _estimate(model, windows, min_pixels=10**6)
    assert not few.trusted.any()
    assert all("pixels per half" in r for r in few.reasons)
    assert np.all(np.isnan(few.held_out_estimated))
    flat = _estimate(model, windows, min_texture=100.0)
    assert not flat.trusted.any()
    assert all("too flat" in r for r in flat.reasons)
    with pytest.raises(DcstsfInputError, match="block"):
        _estimate(model, windows, block=0)
    # 2 x 100 samples, fewer than twice the 135 good HS bands: the HS noise cannot be estimated, and a row
    # fitted to noisy HS would be biased, so none is fitted
    hs, ms = windows
    small_hs, small_ms = [h[:, :22, :22] for h in hs], [m[:, :66, :66] for m in ms]
    psf = estimate_psf(small_hs, small_ms, model=model, options=PsfOptions(min_pixels=50))
    small = estimate_response(small_hs, small_ms, model=model, psf=psf, options=ResponseOptions(min_pixels=50))
    assert not small.trusted.any()
    assert all("too few to tell the HS signal from its noise" in r for r in small.reasons)


def test_response_support_is_widened_and_skips_bad_bands(model: ObservationModel) -> None:
    good = model.hs_sensor.good
    for b in range(model.n_ms):
        # the tabulated support: weights above the threshold's share of the row's largest
        on = np.flatnonzero(model.srf[b] > ResponseOptions().support_threshold * model.srf[b].max())
        support = response_support(model.srf[b], good, options=ResponseOptions(widen=2))
        assert np.all(good[support])
        assert support.min() >= on.min() - 2 and support.max() <= on.max() + 2
        assert set(on) <= set(support)
        widened = np.arange(max(on.min() - 2, 0), min(on.max() + 2, model.n_hs - 1) + 1)
        np.testing.assert_array_equal(support, widened[good[widened]])


def test_displaced_row_moves_along_wavelength() -> None:
    centres = np.arange(400.0, 500.0, 10.0)
    row = np.zeros(10)
    row[3:6] = (0.25, 0.5, 0.25)
    np.testing.assert_allclose(displaced_row(row, centres, 20.0), np.roll(row, 2))
    np.testing.assert_allclose(displaced_row(row, centres, 0.0), row)
    half = displaced_row(row, centres, 5.0)
    assert half.sum() == pytest.approx(1.0)
    assert (half * centres).sum() == pytest.approx((row * centres).sum() + 5.0)
    # two detectors overlap: centres out of order are handled by wavelength, not by index
    order = np.array([0, 1, 2, 3, 4, 7, 5, 6, 8, 9])
    np.testing.assert_allclose(displaced_row(row[order], centres[order], 20.0), np.roll(row, 2)[order])


def test_signal_subspace_finds_the_rank_and_removes_noise() -> None:
    rng = np.random.default_rng(0)
    n, bands, rank = 3000, 60, 5
    clean = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, bands)) + 5.0
    noisy = clean + 0.05 * rng.standard_normal((n, bands))
    good = np.ones(bands, bool)
    good[[10, 11]] = False
    noisy[:, ~good] = 1e3  # bad bands hold anything; they pass through
    out, dim = signal_subspace(noisy, good)
    assert dim == rank
    np.testing.assert_array_equal(out[:, ~good], noisy[:, ~good])
    before = np.sqrt(np.mean((noisy[:, good] - clean[:, good]) ** 2))
    after = np.sqrt(np.mean((out[:, good] - clean[:, good]) ** 2))
    assert after < 0.5 * before
    # too few samples to estimate the noise: unchanged
    same, none = signal_subspace(noisy[:50], good)
    assert none == 0
    np.testing.assert_array_equal(same, noisy[:50])

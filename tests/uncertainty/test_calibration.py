"""The calibration file, the fit, and coverage on a small simulated case the calibration did not use."""

from __future__ import annotations

import json
import math
from pathlib import Path

import dask
import numpy as np
import pytest

import dcstsf
from dcstsf.errors import DcstsfInputError
from dcstsf.uncertainty import (
    CalibrationEntry,
    Measures,
    coverage,
    fit_entry,
    load_calibration,
    standard_deviation,
)
from tests.uncertainty.cases import enmap_case

ROOT = Path(__file__).parents[2]
#: The evaluation-only scenes: nothing may be calibrated on them.
EVALUATION_ONLY = ("jasper", "paris", "tahoe")


def test_shipped_calibration() -> None:
    cal = load_calibration()
    for key in ("dcstsf", "dcstsf-physics-only", "two-step", "variational", "bicubic", "default"):
        assert key in cal.entries
    prov = cal.provenance
    assert (ROOT / prov["script"]).is_file()
    cases = prov["calibration_cases"]
    assert cases and not any(s in c.lower() for c in cases for s in EVALUATION_ONLY)
    assert len(cal.sha256) == 64 and cal.floor > 0 and cal.sigma_px > 0


def test_bad_calibration_files(tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError, match="not found"):
        load_calibration(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"entries": {}}))
    with pytest.raises(DcstsfInputError, match="not an uncertainty calibration"):
        load_calibration(bad)


def test_fit_recovers_a_known_model() -> None:
    rng = np.random.default_rng(0)
    n = 40_000
    band, residual, member, change = (np.exp(rng.normal(-5, 0.7, n)) for _ in range(4))
    truth = CalibrationEntry(log_scale=1.0, band_exponent=0.5, residual_exponent=0.2, member_exponent=0.4,
                             change_exponent=0.1)
    measures = Measures(band=band, residual=residual[:, None, None], member=member[:, None, None],
                        change=change[:, None, None])
    sd = standard_deviation(measures, truth, floor=1e-4)[:, 0, 0]
    errors = rng.normal(0.0, sd)
    entry, info = fit_entry(band, residual, member, change, errors, floor=1e-4)
    for name in ("band_exponent", "residual_exponent", "member_exponent", "change_exponent"):
        assert getattr(entry, name) == pytest.approx(getattr(truth, name), abs=0.03)
    # Gaussian errors: the likelihood's scale and the 68.27 % coverage scale agree
    assert entry.log_scale == pytest.approx(info["ml_log_scale"], abs=0.03)
    fitted = standard_deviation(measures, entry, floor=1e-4)[:, 0, 0]
    assert coverage(errors, fitted, 1.0) == pytest.approx(math.erf(1 / math.sqrt(2)), abs=0.002)


def test_coverage() -> None:
    e = np.array([0.1, -0.3, 0.5, np.nan])
    assert coverage(e, np.full(4, 0.3), 1.0) == pytest.approx(2 / 3)
    assert coverage(e, np.full(4, 0.3), 2.0) == 1.0


@pytest.fixture(scope="module")
def held_out_case() -> tuple[np.ndarray, np.ndarray]:
    """DC-STSF on a crop of the bundled EnMAP sample with seeds the calibration did not use."""
    errors, sds = [], []
    for change, seed in (("mixed", 7), ("abrupt", 8)):
        case = enmap_case(rows=90, cols=63, change=change, seed=seed)
        pred, sd = dask.compute(*dcstsf.fuse(case.hs_t1, case.ms_t1, case.ms_t2, uncertainty=True))
        good = np.asarray(case.model.hs_sensor.good, bool)
        errors.append((pred.values - case.hs_t2_truth.values)[good].ravel())
        sds.append(sd.values[good].ravel())
    return np.concatenate(errors), np.concatenate(sds)


def test_coverage_on_held_out_seeds(held_out_case: tuple[np.ndarray, np.ndarray]) -> None:
    """The issue's targets, 55-80 % within 1 SD and 85-99 % within 2 SD, each widened by 5 points: two small
    cases (30 x 21 HS pixels) vary more than the pooled held-out cases of docs/results.md."""
    errors, sd = held_out_case
    assert 0.50 <= coverage(errors, sd, 1.0) <= 0.85
    assert 0.80 <= coverage(errors, sd, 2.0) <= 0.995

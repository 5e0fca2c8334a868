"""Fixtures of the report tests: a simulated case, two predictions of it and their full report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from dcstsf.methods import fuse_arrays
from dcstsf.operators import ObservationModel
from dcstsf.report import evaluate_predictions
from dcstsf.simulate import simulate_case
from tests.scenes import synthetic_scene


@pytest.fixture(scope="session")
def case(model4: ObservationModel) -> Any:
    """A simulated case (AHSI + the four 10 m Sentinel-2 bands, ratio 3, mixed change)."""
    return simulate_case(synthetic_scene(), model=model4, change="mixed", seed=1)


@pytest.fixture(scope="session")
def preds(case: Any) -> dict[str, xr.DataArray]:
    """A bicubic prediction and the truth with 1 % noise."""
    hs, m1, m2 = case.arrays()
    bic = case.hs_t2_truth.copy(data=fuse_arrays(hs, m1, m2, method="bicubic", model=case.model))
    rng = np.random.default_rng(3)
    truth = case.hs_t2_truth.values
    noisy = case.hs_t2_truth.copy(
        data=np.clip(truth + 0.01 * rng.standard_normal(truth.shape), 0, 1).astype(np.float32)
    )
    return {"bicubic": bic, "noisy truth": noisy}


@pytest.fixture(scope="session")
def report(
    case: Any, preds: dict[str, xr.DataArray], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """The report of both predictions with truth, inputs, case metadata and runtimes: (directory, result)."""
    out = tmp_path_factory.mktemp("report")
    res = evaluate_predictions(
        preds,
        case.hs_t2_truth,
        out_dir=out,
        inputs={"hs_t1": case.hs_t1, "ms_t1": case.ms_t1, "ms_t2": case.ms_t2},
        case_meta=case.meta,
        runtimes={"bicubic": 0.01, "noisy truth": 1.5},
    )
    return out, res

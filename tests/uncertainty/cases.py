"""Small simulated cases of training-eligible data for the uncertainty tests."""

from __future__ import annotations

from typing import Any

from dcstsf import datasets
from dcstsf.operators import ObservationModel
from dcstsf.simulate import simulate_case
from tests.conftest import S2_10

__all__ = ["enmap_case"]


def enmap_case(*, rows: int = 60, cols: int = 48, change: str = "mixed", seed: int = 3) -> Any:
    """A case from the top-left ``rows`` x ``cols`` pixels of the bundled EnMAP sample, AHSI + the 10 Sentinel-2A
    bands of the shipped weights, ratio 3 (the calibration used seeds 0 and 1 of this sample)."""
    model = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=S2_10, ratio=3)
    cube = datasets.load_bundled_sample().isel(y=slice(0, rows), x=slice(0, cols))
    return simulate_case(cube, model=model, change=change, seed=seed)

"""Fixtures of the engine tests: one simulated case, and its inputs written as files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dcstsf.io import write_raster
from tests.engine.cases import make_case


@pytest.fixture(scope="session")
def case() -> Any:
    """The default simulated case (30 x 37 HS pixels, 90 x 111 MS pixels)."""
    return make_case()


@pytest.fixture(scope="session")
def files(case: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The case's inputs as GeoTIFF, plus MS(t1) as Zarr and MS(t2) as NetCDF."""
    d = tmp_path_factory.mktemp("engine-inputs")
    return {
        "hs": write_raster(case.hs_t1, d / "hs_t1.tif"),
        "ms1": write_raster(case.ms_t1, d / "ms_t1.tif"),
        "ms2": write_raster(case.ms_t2, d / "ms_t2.tif"),
        "ms1_zarr": write_raster(case.ms_t1, d / "ms_t1.zarr"),
        "ms2_nc": write_raster(case.ms_t2, d / "ms_t2.nc"),
    }

"""Fixtures of the method tests: the real EnMAP Potsdam block and the mixed-change case simulated from it."""

from __future__ import annotations

import pytest
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.simulate import FusionCase, simulate_case


@pytest.fixture(scope="session")
def block() -> xr.DataArray:
    """The real EnMAP Potsdam block (128 x 64 px); the copy bundled with the package if shared data is absent."""
    from dcstsf import datasets

    try:
        return datasets.load_enmap_potsdam_block()
    except DcstsfInputError:
        try:
            return datasets.load_bundled_sample()
        except DcstsfInputError as err:
            pytest.skip(f"no EnMAP Potsdam data: {err}")


@pytest.fixture(scope="session")
def mixed_case(block: xr.DataArray, model: ObservationModel) -> FusionCase:
    """Mixed change simulated on the block, seed 0, with the 10-band model."""
    return simulate_case(block, model=model, change="mixed", seed=0)

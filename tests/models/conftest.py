"""Fixtures of the model tests: the four-band model (the tests train, and four bands keep them short)."""

from __future__ import annotations

import pytest

from dcstsf.operators import ObservationModel
from dcstsf.simulate import simulate_case
from tests.models.cases import smooth_cube


@pytest.fixture(scope="module")
def model(model4: ObservationModel) -> ObservationModel:
    """The four-band model: the tests here train, and four bands keep them short."""
    return model4


@pytest.fixture(scope="module")
def case(model: ObservationModel):
    return simulate_case(smooth_cube(model, 36, 42), model=model, change="mixed", seed=3)

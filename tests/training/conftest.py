"""Fixtures of the training tests: the four-band model (four bands keep training short)."""

from __future__ import annotations

import pytest

from dcstsf.operators import ObservationModel


@pytest.fixture(scope="module")
def model(model4: ObservationModel) -> ObservationModel:
    return model4

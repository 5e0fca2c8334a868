"""Fixtures shared by the whole suite: observation models of the default sensor pair."""

from __future__ import annotations

import pytest

from dcstsf.operators import ObservationModel
from dcstsf.sensors import SENTINEL2_DEFAULT_BANDS

#: The default weights' band set: the 10 m bands, then the 20 m bands resampled onto the 10 m grid.
S2_10 = list(SENTINEL2_DEFAULT_BANDS)
#: The four 10 m Sentinel-2 bands.
S2_4 = ["B02", "B03", "B04", "B08"]


@pytest.fixture(scope="session")
def model() -> ObservationModel:
    """ZY-1 02D AHSI (166 bands) seen by Sentinel-2A's ten bands at ratio 3."""
    return ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=S2_10, ratio=3)


@pytest.fixture(scope="session")
def model4() -> ObservationModel:
    """ZY-1 02D AHSI seen by Sentinel-2A's four 10 m bands at ratio 3."""
    return ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=S2_4, ratio=3)

"""Sensors and band names of the inputs: defaults from coordinates, Sentinel-2 name spellings, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dcstsf.engine import validate_inputs
from dcstsf.engine.bands import band_names
from dcstsf.errors import DcstsfInputError
from tests.engine.cases import HS_SENSOR, MS_BANDS, N_HS, WL


def test_default_sensors_from_coordinates(case: Any) -> None:
    # No hs_sensor: built from the wavelength coordinate; MS band names like "B2" are understood.
    ms1 = case.ms_t1.assign_coords(band=["B2", "B3", "B4", "B8", "B11", "B12"])
    v = validate_inputs(case.hs_t1, ms1, case.ms_t2)
    assert v.model.n_hs == N_HS and list(v.model.ms_sensor.band_names) == MS_BANDS and v.ratio == 3
    np.testing.assert_allclose(v.model.hs_sensor.centers_nm, WL)


@pytest.mark.parametrize("units", [{"units": "um"}, {"units": "micrometers"}, {}])
def test_wavelength_coordinate_in_micrometres(case: Any, units: dict[str, str]) -> None:
    # Declared, or read from the magnitude: the sensor is built in nanometres either way.
    hs = case.hs_t1.assign_coords(wavelength=("band", WL / 1000.0, units))
    v = validate_inputs(hs, case.ms_t1, case.ms_t2)
    np.testing.assert_allclose(v.model.hs_sensor.centers_nm, WL)


def test_wavelength_coordinate_with_wrong_units_is_read_by_magnitude(case: Any) -> None:
    hs = case.hs_t1.assign_coords(wavelength=("band", WL / 1000.0, {"units": "nm"}))
    with pytest.warns(UserWarning, match=r"declared in nm but run from 0.42 to 2.4, which is micrometres"):
        v = validate_inputs(hs, case.ms_t1, case.ms_t2)
    np.testing.assert_allclose(v.model.hs_sensor.centers_nm, WL)


def test_generic_ms_band_names_need_ms_bands(case: Any) -> None:
    generic = [f"band_{i}" for i in range(6)]
    assert band_names(case.ms_t1.assign_coords(band=generic)) is None
    with pytest.raises(DcstsfInputError, match="ms_bands"):
        validate_inputs(case.hs_t1, case.ms_t1.assign_coords(band=generic), case.ms_t2.assign_coords(band=generic),
                        hs_sensor=HS_SENSOR)
    # Declared in the file's band order, they are accepted in any Sentinel-2 spelling.
    v = validate_inputs(case.hs_t1, case.ms_t1.assign_coords(band=generic), case.ms_t2.assign_coords(band=generic),
                        hs_sensor=HS_SENSOR, ms_bands="b2,B3,B04,B8,b11,B12")
    assert list(v.model.ms_sensor.band_names) == MS_BANDS

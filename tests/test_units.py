"""Units: wavelength units to nanometres, declared or read from the magnitude."""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf.units import nm_per_wavelength_unit

NM = np.array([450.0, 560.0, 2190.0])


@pytest.mark.parametrize(
    ("units", "values", "factor"),
    [
        ("nm", NM, 1.0),
        ("Nanometers", NM, 1.0),
        ("Micrometers", NM / 1000, 1000.0),
        ("\u00b5m", NM / 1000, 1000.0),
        (None, NM, 1.0),
        (None, NM / 1000, 1000.0),
        ("furlongs", NM / 1000, 1000.0),  # unknown units: the magnitude decides
    ],
)
def test_declared_or_read_from_the_magnitude(units: str | None, values: np.ndarray, factor: float) -> None:
    assert nm_per_wavelength_unit(units, values, source="x.tif") == factor


@pytest.mark.parametrize(("units", "values", "factor", "words"), [
    ("Nanometers", NM / 1000, 1000.0, "which is micrometres"),
    ("micrometers", NM, 1.0, "which is nanometres"),
])
def test_mislabelled_units_warn_and_follow_the_magnitude(units: str, values: np.ndarray, factor: float,
                                                         words: str) -> None:
    with pytest.warns(UserWarning, match=rf"x\.tif: wavelengths are declared in {units} .* {words}"):
        assert nm_per_wavelength_unit(units, values, source="x.tif") == factor

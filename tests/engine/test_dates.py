"""MS dates from two spacecraft: MS(t2) adjusted to MS(t1)'s spectral responses, by name or by tag."""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf.engine import validate_inputs
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel, observe_ms
from tests.scenes import synthetic_scene

BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]


def _case() -> tuple:
    """A real-looking AHSI scene observed at t2 by Sentinel-2B, and what Sentinel-2A would have seen."""
    a = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=BANDS, ratio=3)
    b = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2b", ms_bands=BANDS, ratio=3)
    truth = synthetic_scene(36, 36, nb=a.n_hs, seed=4)
    from dcstsf.operators import observe_hs

    hs = observe_hs(a, truth)
    return a, hs, observe_ms(a, truth), observe_ms(b, truth), observe_ms(a, truth)


def test_ms_t2_of_another_spacecraft_is_brought_to_ms_t1_responses() -> None:
    a, hs, ms1, ms2_b, ms2_a = _case()
    plain = validate_inputs(hs, ms1, ms2_b, hs_sensor="zy1-02d-ahsi", ms_bands=BANDS)
    adjusted = validate_inputs(hs, ms1, ms2_b, hs_sensor="zy1-02d-ahsi", ms_bands=BANDS, ms_sensor_t2="sentinel-2b")
    before = np.abs(plain.ms_t2.values - ms2_a.values).mean(axis=(1, 2))
    after = np.abs(adjusted.ms_t2.values - ms2_a.values).mean(axis=(1, 2))
    # the bands whose responses differ most between 2A and 2B come much closer; an affine map per band
    # cannot be exact for every spectrum, so a band already close may move by a little either way
    assert np.all(after <= 1.1 * before + 1e-6) and after.sum() < before.sum()
    assert after[:4].sum() < 0.6 * before[:4].sum()
    assert any("sentinel-2b" in n for n in adjusted.notes) and not any("sentinel-2b" in n for n in plain.notes)


def test_sensor_tags_choose_the_sensors() -> None:
    a, hs, ms1, ms2_b, _ = _case()
    ms1 = ms1.assign_attrs(sensor="sentinel-2a")
    ms2_b = ms2_b.assign_attrs(sensor="sentinel-2b")
    tagged = validate_inputs(hs, ms1, ms2_b, hs_sensor="zy1-02d-ahsi", ms_bands=BANDS)
    assert tagged.model.ms_sensor.name == "sentinel-2a" and any("sentinel-2b" in n for n in tagged.notes)
    # MS(t1) tagged 2B: the model uses 2B, and an untagged MS(t2) is not adjusted
    swapped = validate_inputs(hs, ms2_b, ms1.assign_attrs(sensor="other"), hs_sensor="zy1-02d-ahsi", ms_bands=BANDS)
    assert swapped.model.ms_sensor.name == "sentinel-2b" and not swapped.notes


def test_ms_t2_sensor_without_the_bands_is_an_error() -> None:
    _, hs, ms1, ms2_b, _ = _case()
    with pytest.raises(DcstsfInputError, match="MS\\(t2\\).*has no band"):
        validate_inputs(hs, ms1, ms2_b, hs_sensor="zy1-02d-ahsi", ms_bands=BANDS, ms_sensor_t2="zy1-02d-ahsi")

"""Acquisition times: HS(t1) and MS(t1) weeks apart, or one MS scene given for both dates, are warned of."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import pytest

from dcstsf.engine import validate_inputs
from dcstsf.engine.acquisition import acquisition_time
from tests.engine.cases import HS_SENSOR


def _dated(da: Any, when: str, key: str = "acquisition_time") -> Any:
    return da.assign_attrs({key: when})


def test_times_are_read_from_the_attributes(case: Any) -> None:
    assert acquisition_time(case.hs_t1) is None
    got = acquisition_time(_dated(case.hs_t1, "2022-07-24T10:45:26", key="start_time"))
    assert got == dt.datetime(2022, 7, 24, 10, 45, 26, tzinfo=dt.UTC)
    assert acquisition_time(_dated(case.ms_t1, "2023-07-01T10:00:31.024Z")).month == 7
    assert acquisition_time(_dated(case.ms_t1, "last tuesday")) is None


def test_hs_and_ms_t1_weeks_apart_are_warned_of(case: Any) -> None:
    hs = _dated(case.hs_t1, "2022-07-24T10:45:26")
    with pytest.warns(UserWarning, match=r"HS\(t1\) was acquired on 2022-07-24 and MS\(t1\) on 2022-09-02, 40 days"):
        validate_inputs(hs, _dated(case.ms_t1, "2022-09-02T10:30:00Z"), case.ms_t2, hs_sensor=HS_SENSOR)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # three days apart, or no time on one of them: nothing to say
        validate_inputs(hs, _dated(case.ms_t1, "2022-07-27T10:30:00Z"), case.ms_t2, hs_sensor=HS_SENSOR)
        validate_inputs(hs, case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)


def test_one_ms_scene_for_both_dates_is_warned_of(case: Any) -> None:
    when = "2023-07-01T10:00:31Z"
    with pytest.warns(UserWarning, match=r"MS\(t1\) and MS\(t2\) were acquired at the same time \(2023-07-01 10:00\)"):
        validate_inputs(case.hs_t1, _dated(case.ms_t1, when), _dated(case.ms_t2, when), hs_sensor=HS_SENSOR)


def test_the_output_carries_the_date_it_shows(case: Any) -> None:
    from dcstsf.engine import fuse

    hs = _dated(case.hs_t1, "2022-07-24T10:45:26Z")
    ms1 = _dated(case.ms_t1, "2022-07-25T10:30:00Z")
    ms2 = _dated(case.ms_t2, "2022-08-14T10:30:00Z")
    out = fuse(hs, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR)
    assert out.attrs["acquisition_time"] == "2022-08-14T10:30:00Z"  # MS(t2)'s: the date predicted
    assert out.attrs["t1_acquisition_time"] == "2022-07-24T10:45:26Z"
    assert "acquisition_time" not in fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic",
                                          hs_sensor=HS_SENSOR).attrs

"""Clear errors: images that do not overlap or do not match, too little data, shifts beyond the search range,
grids that are not the MS grid at the ratio, bad options.

The matching cases come from the bundled real EnMAP sample (``cases.py``) with a global shift of
(3.5, -2.25) HS pixels; "another scene" is MS(t1) turned upside down and mirrored (the same land covers
and statistics, none of the geometry).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dcstsf.coregistration import CoregistrationOptions, apply_coregistration, estimate_coregistration
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from tests.coregistration.cases import ShiftCase, as_dataarray, constant, make_case

OPTIONS = CoregistrationOptions(window=16, spacing=8, global_window=64)


@pytest.fixture(scope="module")
def case(model: ObservationModel) -> ShiftCase:
    return make_case(model, constant(3.5, -2.25))


def test_images_that_do_not_overlap(case: ShiftCase, model: ObservationModel) -> None:
    hs = as_dataarray(case.hs, pixel=30.0, offset=(200, 0))  # 6 km south of the MS
    ms = as_dataarray(case.ms_t1, pixel=10.0)
    hs.encoding["source"] = "hs_far.tif"
    with pytest.raises(DcstsfInputError, match=r"HS\(t1\) \(hs_far.tif\) and MS\(t1\) do not overlap"):
        estimate_coregistration(hs, ms, model=model, options=OPTIONS)


def test_nodata_leaves_no_common_area(case: ShiftCase, model: ObservationModel) -> None:
    hs = case.hs.copy()
    hs[:, :, 32:] = np.nan
    ms = case.ms_t1.copy()
    ms[:, :, :96] = np.nan
    with pytest.raises(DcstsfInputError, match="do not overlap"):
        estimate_coregistration(hs, ms, model=model, options=OPTIONS)


def test_images_that_do_not_match(case: ShiftCase, model: ObservationModel) -> None:
    other = np.ascontiguousarray(case.ms_t1[:, ::-1, ::-1])
    with pytest.raises(DcstsfInputError, match="only [0-9] usable tie points.*The images do not match"):
        estimate_coregistration(case.hs, other, model=model, options=OPTIONS)


def test_mostly_cloud(case: ShiftCase, model: ObservationModel) -> None:
    hs = np.full_like(case.hs, np.nan)
    hs[:, 10:34, 10:34] = case.hs[:, 10:34, 10:34]
    with pytest.raises(DcstsfInputError, match="too little data in both images"):
        estimate_coregistration(hs, case.ms_t1, model=model, options=OPTIONS)


def test_shift_beyond_search_range(case: ShiftCase, model: ObservationModel) -> None:
    with pytest.raises(DcstsfInputError, match=r"\(\+3\.5, -2\.[23]\) coarse pixels.*max_shift=2\b.*max_shift=5"):
        estimate_coregistration(case.hs, case.ms_t1, model=model, options=dataclasses.replace(OPTIONS, max_shift=2.0))


def test_grid_not_on_ms_corners(case: ShiftCase, model: ObservationModel) -> None:
    hs = as_dataarray(case.hs, pixel=30.0)
    t = hs.rio.transform()
    hs = hs.assign_coords(x=hs["x"] + 5.0).rio.write_transform(t * t.translation(5.0 / 30.0, 0.0))
    with pytest.raises(DcstsfInputError, match="off the MS pixel corners.*reproject"):
        estimate_coregistration(hs, as_dataarray(case.ms_t1, pixel=10.0), model=model, options=OPTIONS)


def test_wrong_pixel_size(case: ShiftCase, model: ObservationModel) -> None:
    hs = as_dataarray(case.hs, pixel=20.0)
    with pytest.raises(DcstsfInputError, match="not the model's ratio 3"):
        estimate_coregistration(hs, as_dataarray(case.ms_t1, pixel=10.0), model=model, options=OPTIONS)


def test_plain_arrays_of_the_wrong_size(case: ShiftCase, model: ObservationModel) -> None:
    with pytest.raises(DcstsfInputError, match="crop the MS to the HS footprint"):
        estimate_coregistration(case.hs, case.ms_t1[:, :-3], model=model, options=OPTIONS)
    with pytest.raises(DcstsfInputError, match="bands but the model declares 10 MS bands"):
        estimate_coregistration(case.hs, case.ms_t1[:4], model=model, options=OPTIONS)


def test_apply_to_another_grid(case: ShiftCase, model: ObservationModel) -> None:
    reg = estimate_coregistration(case.hs, case.ms_t1, model=model, options=OPTIONS)
    with pytest.raises(DcstsfInputError, match="apply it to the cube it was estimated from"):
        apply_coregistration(case.hs[:, :40], reg)


@pytest.mark.parametrize(
    "bad",
    [
        {"field": "quartic"},
        {"resampling": "lanczos"},
        {"global_subpixel": "both"},
        {"window": 15},
        {"max_shift": 0.0},
        {"global_window": 8},
        {"min_valid_fraction": 0.0},
        {"min_tie_points": 0},
    ],
)
def test_bad_options(bad: dict[str, object]) -> None:
    with pytest.raises(DcstsfInputError, match="CoregistrationOptions"):
        CoregistrationOptions(**bad)


def test_a_scene_smaller_than_one_window(case: ShiftCase, model: ObservationModel) -> None:
    # overlapping images of a small scene: the message says the scene is small, not that they do not overlap
    small = dataclasses.replace(OPTIONS, window=64)
    with pytest.raises(DcstsfInputError, match=r"the scene \(\d+ x \d+ coarse pixels\) is smaller than one window") as err:
        estimate_coregistration(case.hs[:, :40, :40], case.ms_t1[:, :120, :120], model=model, options=small)
    assert "do not overlap" not in str(err.value)

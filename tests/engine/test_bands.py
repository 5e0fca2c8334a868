"""Sensors and band names of the inputs: defaults from coordinates, Sentinel-2 name spellings, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dcstsf.engine import fuse, validate_inputs
from dcstsf.engine.bands import band_names
from dcstsf.errors import DcstsfInputError
from dcstsf.methods import fuse_arrays
from tests.engine.cases import HS_SENSOR, MS_BANDS, N_HS, WL, engine_model


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


def test_inputs_opened_with_rioxarray(case: Any, files: dict[str, Any]) -> None:
    # rioxarray numbers the bands 1, 2, ... and keeps the file's band descriptions in attrs["long_name"]
    import rioxarray

    opened = {k: rioxarray.open_rasterio(files[k], chunks={}) for k in ("hs", "ms1", "ms2")}
    assert band_names(opened["ms1"]) == MS_BANDS
    # its per-band wavelengths are lost (band 1's only, in attrs), so the HS sensor is given
    out = fuse(opened["hs"], opened["ms1"], opened["ms2"], method="two-step", hs_sensor=HS_SENSOR)
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="two-step", hs_sensor=HS_SENSOR)
    np.testing.assert_allclose(out.values, ref.values, atol=1e-6)
    # names that do not tell the bands apart are not used
    assert band_names(case.ms_t1.assign_coords(band=np.arange(1, 7)).assign_attrs(long_name=("a",) * 6)) is None


def test_fewer_ms_bands_select_named_bands(case: Any) -> None:
    # a stack that names its bands, fused with a subset given in any spelling and order
    lazy1, lazy2 = case.ms_t1.chunk({"y": 30}), case.ms_t2.chunk({"y": 30})
    v = validate_inputs(case.hs_t1, lazy1, lazy2, hs_sensor=HS_SENSOR, ms_bands="b8,B02,B4")
    assert list(v.model.ms_sensor.band_names) == ["B08", "B02", "B04"]
    assert v.ms_t1.chunks is not None  # still lazy
    sub = ["B08", "B02", "B04"]
    np.testing.assert_array_equal(v.ms_t2.values, case.ms_t2.sel(band=sub).values)
    out = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="two-step", hs_sensor=HS_SENSOR, ms_bands=sub)
    ref = fuse(case.hs_t1, case.ms_t1.sel(band=sub), case.ms_t2.sel(band=sub), method="two-step", hs_sensor=HS_SENSOR)
    np.testing.assert_array_equal(out.values, ref.values)
    with pytest.raises(DcstsfInputError, match=r"ms_bands asks for B05, which MS\(t1\).* does not hold"):
        validate_inputs(case.hs_t1, case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR, ms_bands="B02,B05")
    # unnamed bands: ms_bands still has to name every band
    generic = [f"band_{i}" for i in range(6)]
    with pytest.raises(DcstsfInputError, match="2 MS bands were declared"):
        validate_inputs(case.hs_t1, case.ms_t1.assign_coords(band=generic), case.ms_t2.assign_coords(band=generic),
                        hs_sensor=HS_SENSOR, ms_bands="B02,B03")


def test_ms_bands_outside_the_hs_range_name_the_covered_ones(case: Any) -> None:
    # a VNIR-only HS cube (its wavelengths in the data) with a stack that holds SWIR bands too
    vnir = np.flatnonzero(WL < 1000)
    hs = case.hs_t1.isel(band=vnir).assign_coords(wavelength=("band", WL[vnir]))
    with pytest.raises(DcstsfInputError, match=r"\['B11', 'B12'\] are not covered .* --ms-bands B02,B03,B04,B08\b"):
        validate_inputs(hs, case.ms_t1, case.ms_t2)
    # the fix the message names works
    v = validate_inputs(hs, case.ms_t1, case.ms_t2, ms_bands="B02,B03,B04,B08")
    assert list(v.model.ms_sensor.band_names) == ["B02", "B03", "B04", "B08"] and v.model.n_hs == vnir.size


def _emptied(case: Any, bands: list[int]) -> Any:
    hs = case.hs_t1.copy(deep=True)
    hs.values[bands] = np.nan
    return hs


def test_empty_hs_bands_are_flagged_bad_and_nan_in_the_output(case: Any) -> None:
    # Two bands between the MS bands (1281 and 1367 nm) with no data anywhere, as a product may leave
    # water-vapour bands: flagged bad, out of the response, NaN in the output; tiles still equal the whole.
    empty = [10, 11]
    hs = _emptied(case, empty)
    with pytest.warns(UserWarning, match=r"2 HS band\(s\) hold no data anywhere in the scene \(B011-B012 \(1281-1367 nm\)\)"):
        v = validate_inputs(hs, case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)
    assert not v.model.hs_sensor.good[empty].any() and v.model.hs_sensor.good.sum() == N_HS - 2
    assert not v.model.srf[:, empty].any()
    np.testing.assert_allclose(v.model.srf.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.warns(UserWarning, match="hold no data"):
        out = fuse(hs, case.ms_t1, case.ms_t2, method="two-step", hs_sensor=HS_SENSOR, chunk=21)
    # the output says which bands are bad, so an evaluation leaves them out
    assert list(np.flatnonzero(out["bbl"].values == 0)) == empty
    assert "HS bands B011-B012 (1281-1367 nm) hold no data: flagged bad, NaN in the output" in out.attrs["processing"]
    tiled = out.values
    with pytest.warns(UserWarning, match="hold no data"):
        whole = fuse(hs, case.ms_t1, case.ms_t2, method="two-step", hs_sensor=HS_SENSOR, chunk=200).values
    assert np.isnan(tiled[empty]).all()
    kept = np.setdiff1d(np.arange(N_HS), empty)
    assert np.isfinite(tiled[kept]).all()
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_empty_hs_bands_under_an_ms_band_are_an_error(case: Any) -> None:
    # 1539-1711 nm: every HS band under B11 (1610 nm) is empty, so B11 cannot be modelled
    with pytest.raises(DcstsfInputError, match=r"HS bands B014-B016 \(1539-1711 nm\) hold no data anywhere, and without them .*B11.*ms_bands"):
        validate_inputs(_emptied(case, [13, 14, 15]), case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)


def test_an_hs_cube_without_data_is_an_error(case: Any) -> None:
    with pytest.raises(DcstsfInputError, match="holds no data: every band is nodata everywhere"):
        validate_inputs(_emptied(case, list(range(N_HS))), case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)


def test_low_level_fit_names_empty_good_bands(case: Any) -> None:
    # fuse_arrays takes the model as given: the error says which bands block every pixel, and the way out
    hs = _emptied(case, [10, 11]).values
    with pytest.raises(DcstsfInputError, match=r"bands B011-B012 \(1281-1367 nm\) hold no data at any sampled pixel.*dcstsf.fuse"):
        fuse_arrays(hs, case.ms_t1.values, case.ms_t2.values, method="two-step", model=engine_model())


def test_inf_is_nodata_not_an_empty_band(case: Any) -> None:
    hs = case.hs_t1.copy(deep=True)
    hs.values[:, 2, 2] = np.inf
    v = validate_inputs(hs, case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)
    assert v.model.hs_sensor.good.all()

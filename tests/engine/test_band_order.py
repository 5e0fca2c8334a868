"""MS bands matched by name: a Sentinel-2 stack in wavelength order runs with the shipped DC-STSF weights.

The shipped 10-band weights read B02 B03 B04 B08 B05 B06 B07 B8A B11 B12 (10 m bands first). The weights
lookup matches the band set in any order and says the order the network needs
(:meth:`DCSTSF.ms_band_order`); :func:`reorder_ms_bands` puts the MS arrays and the model in that order.
Fusing a wavelength-ordered stack that way gives the shipped-order result, with the HS bands out.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from dcstsf.engine import fuse
from dcstsf.engine.bands import reorder_ms_bands
from dcstsf.errors import DcstsfInputError, WeightsError
from dcstsf.methods import fuse_arrays, get_method
from dcstsf.methods.dcstsf_method import DCSTSF
from dcstsf.models.checkpoint import default_weights
from dcstsf.models.network import DCSTSFConfig
from dcstsf.operators import ObservationModel
from dcstsf.simulate import FusionCase, simulate_case
from tests.conftest import S2_10
from tests.scenes import synthetic_scene

#: The shipped band set in wavelength order, as a Sentinel-2 stack is usually written.
S2_BY_WAVELENGTH = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


@pytest.fixture(scope="module")
def case(model: ObservationModel) -> FusionCase:
    """A mixed-change case with the MS bands in the shipped weights' order, 96 x 96 fine pixels (the engine
    diagnoses the scene, which needs a few hundred HS pixels)."""
    return simulate_case(synthetic_scene(96, 96, 60, seed=3), model=model, change="mixed", seed=2)


@pytest.fixture(scope="module")
def wl_model(model: ObservationModel) -> ObservationModel:
    """The same sensors with the MS bands in wavelength order."""
    return ObservationModel.from_sensors(model.hs_sensor, "sentinel-2a", ms_bands=S2_BY_WAVELENGTH, ratio=model.ratio)


def _wavelength_order(case: FusionCase) -> tuple[xr.DataArray, xr.DataArray]:
    """Both MS dates stacked in wavelength order (the permutation of the shipped order)."""
    idx = [S2_10.index(b) for b in S2_BY_WAVELENGTH]
    return case.ms_t1.isel(band=idx), case.ms_t2.isel(band=idx)


def test_weights_lookup_matches_the_band_set() -> None:
    shipped = default_weights(ms_bands=S2_BY_WAVELENGTH, hs_sensor="zy1-02d-ahsi", ms_sensor="sentinel-2a", ratio=3)
    assert shipped.path.name == "dcstsf-ahsi-s2a-10band.pt"
    assert list(shipped.ms_bands) == S2_10  # the order the network reads
    assert default_weights(ms_bands=S2_10, hs_sensor="zy1-02d-ahsi", ms_sensor="sentinel-2a", ratio=3) == shipped
    with pytest.raises(WeightsError, match="no shipped DC-STSF weights"):  # a set, not a subset
        default_weights(ms_bands=S2_BY_WAVELENGTH[:-1], hs_sensor="zy1-02d-ahsi", ms_sensor="sentinel-2a", ratio=3)


def test_method_band_order_hook(model: ObservationModel, wl_model: ObservationModel) -> None:
    # methods without learned weights take any order
    for name in ("bicubic", "two-step", "variational"):
        assert get_method(name).ms_band_order(wl_model) is None
    assert DCSTSF().ms_band_order(wl_model) == S2_10
    assert DCSTSF().ms_band_order(model) == S2_10
    # an in-memory network has no band names: any order
    assert DCSTSF.untrained(DCSTSFConfig(n_ms=10, stages=1)).ms_band_order(wl_model) is None
    # unreordered, the network refuses the bands instead of reading them in the wrong places
    with pytest.raises(DcstsfInputError, match="reorder_ms_bands"):
        DCSTSF().network(wl_model)


def test_reorder_ms_bands(case: FusionCase, model: ObservationModel, wl_model: ObservationModel) -> None:
    ms1, ms2 = _wavelength_order(case)
    lazy1, lazy2 = ms1.chunk({"y": 16}), ms2.chunk({"y": 16})
    r1, r2, rm = reorder_ms_bands(lazy1, lazy2, wl_model, S2_10)
    assert r1.chunks is not None and r2.chunks is not None  # still lazy
    for got, want in ((r1, case.ms_t1), (r2, case.ms_t2)):
        assert list(got["band"].values) == S2_10
        np.testing.assert_array_equal(got["wavelength"].values, want["wavelength"].values)
        np.testing.assert_array_equal(got.values, want.values)
        assert got["x"].equals(want["x"]) and got.rio.crs == want.rio.crs
    # the model is the shipped-order model: every per-MS-band part follows the bands
    assert list(rm.ms_sensor.band_names) == S2_10 and rm.ms_sensor.name == model.ms_sensor.name
    np.testing.assert_array_equal(rm.srf, model.srf)
    np.testing.assert_array_equal(rm.ms_sigma, model.ms_sigma)
    np.testing.assert_array_equal(rm.ms_sensor.centers_nm, model.ms_sensor.centers_nm)
    np.testing.assert_array_equal(rm.hs_sigma, model.hs_sigma)
    assert rm.ratio == model.ratio and rm.ms_grid_gsd_m == model.ms_grid_gsd_m
    # already in order: the inputs come back as they are; any spelling of the names
    same = reorder_ms_bands(case.ms_t1, case.ms_t2, model, [b.replace("B0", "B") for b in S2_10])
    assert same[0] is case.ms_t1 and same[1] is case.ms_t2 and same[2] is model
    with pytest.raises(DcstsfInputError, match="not the same bands"):
        reorder_ms_bands(ms1, ms2, wl_model, [*S2_10[:-1], "B01"])
    with pytest.raises(DcstsfInputError, match="MS\\(t2\\) has 9 bands"):
        reorder_ms_bands(ms1, ms2.isel(band=slice(0, 9)), wl_model, S2_10)


def test_wavelength_ordered_stack_fuses_like_the_shipped_order(
    case: FusionCase, model: ObservationModel, wl_model: ObservationModel
) -> None:
    ms1, ms2 = _wavelength_order(case)
    method = DCSTSF()
    order = method.ms_band_order(wl_model)
    assert order is not None
    r1, r2, rm = reorder_ms_bands(ms1, ms2, wl_model, order)
    hs = case.hs_t1.values
    got = fuse_arrays(hs, r1.values, r2.values, method=method, model=rm)
    want = fuse_arrays(*case.arrays(), method=DCSTSF(), model=model)
    assert np.isfinite(want).all()
    # the same arrays and the same model arrays in the same order: the same numbers
    np.testing.assert_array_equal(got, want)
    # through the engine (with the model's physics, as fuse_arrays): the output's bands are the HS's,
    # whatever the MS order was
    out = fuse(case.hs_t1, r1, r2, method=DCSTSF(), model=rm, physics="tables")
    assert list(out["band"].values) == list(case.hs_t1["band"].values)
    np.testing.assert_array_equal(out["wavelength"].values, case.hs_t1["wavelength"].values)
    np.testing.assert_array_equal(out["fwhm"].values, case.hs_t1["fwhm"].values)
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=DCSTSF(), model=model, physics="tables")
    np.testing.assert_allclose(out.values, ref.values, rtol=0, atol=1e-6)  # float32 rounding at most


def test_weights_for_a_subset_of_the_bands_name_the_selection(model: ObservationModel) -> None:
    four = default_weights(ms_bands=["B02", "B03", "B04", "B08"], hs_sensor="zy1-02d-ahsi", ms_sensor="sentinel-2a",
                           ratio=3)
    with pytest.raises(WeightsError, match=r"weights expect 4 MS bands but 10 were given .*--ms-bands B02,B03,B04,B08"):
        DCSTSF(weights=four.path).network(model)

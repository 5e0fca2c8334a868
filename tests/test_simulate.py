"""Wald-protocol simulator: change models, seeds, noise, sensor operators, real-scene resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from affine import Affine

from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.sensors import SENTINEL2_DEFAULT_BANDS
from dcstsf.simulate import apply_change, resample_to_sensor, simulate_case
from tests.scenes import synthetic_scene

S2_10 = list(SENTINEL2_DEFAULT_BANDS)


def _cube(model: ObservationModel, h: int = 31, w: int = 35, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    wl = model.hs_sensor.centers_nm
    base = 0.1 + 0.3 * (wl > 720)[:, None, None]
    data = (base * (0.6 + 0.8 * rng.random((1, h, w)))).astype(np.float32)
    return xr.DataArray(data, dims=("band", "y", "x"),
                        coords={"band": list(model.hs_sensor.band_names), "wavelength": ("band", wl),
                                "y": np.arange(h, dtype=float), "x": np.arange(w, dtype=float)})


def test_shapes_crop_and_operators(model: ObservationModel) -> None:
    case = simulate_case(_cube(model), model=model, change="none", hs_snr_db=None, ms_snr_db=None)
    assert case.hs_t2_truth.shape == (166, 30, 33)  # cropped to a multiple of the ratio
    assert case.hs_t1.shape == (166, 10, 11) and case.ms_t1.shape == (10, 30, 33)
    x = torch.from_numpy(case.hs_t1_truth.values)
    np.testing.assert_allclose(case.hs_t1.values, model.degrade_hs(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(case.ms_t1.values, model.degrade_ms(x).numpy(), atol=1e-6)
    np.testing.assert_array_equal(case.hs_t2_truth.values, case.hs_t1_truth.values)
    # the nominal pixel size is in the georeference, never in a private attribute
    assert all("ms_grid_gsd_m" not in a.attrs for a in (case.hs_t1, case.ms_t1, case.ms_t2))
    assert "SIMULATED" in case.meta["protocol"]


def test_case_lies_on_the_grid_it_stands_for(model4: ObservationModel, tmp_path: Path) -> None:
    # a 30 m scene (EPSG:32633, corner 366975, 5808045) standing for a 10 m Sentinel-2 grid
    scene = synthetic_scene(ny=31, nx=35, nb=60, seed=1)
    case = simulate_case(scene, model=model4, change="mixed", seed=3)
    x0, y0 = 366975.0, 5808045.0
    fine, coarse = Affine(10.0, 0.0, x0, 0.0, -10.0, y0), Affine(30.0, 0.0, x0, 0.0, -30.0, y0)
    for name in ("ms_t1", "ms_t2", "hs_t1_truth", "hs_t2_truth", "change_mask"):
        da = getattr(case, name)
        assert da.rio.crs == scene.rio.crs, name
        assert da.rio.transform(recalc=True).almost_equals(fine), name
        assert da.rio.transform().almost_equals(fine), name  # the stored GeoTransform agrees
    assert case.hs_t1.rio.transform(recalc=True).almost_equals(coarse)
    assert case.hs_t1.rio.transform().almost_equals(coarse)
    # pixel corners coincide: HS pixel j covers MS pixels 3j..3j+2
    np.testing.assert_allclose(case.hs_t1["x"].values, case.ms_t1["x"].values.reshape(-1, 3).mean(axis=1))
    np.testing.assert_allclose(case.ms_t1["x"].values[:3], [x0 + 5.0, x0 + 15.0, x0 + 25.0])
    assert case.meta["ms_grid_gsd_m"] == 10.0 and case.meta["source_gsd_m"] == 30.0
    # only the labels change: the values are those of the source pixels
    source = resample_to_sensor(scene, model4.hs_sensor).values[:, :30, :33]
    np.testing.assert_array_equal(case.hs_t1_truth.values, np.clip(source, 0.0, 1.0))
    paths = case.save(tmp_path / "case")
    for key, expected in (("hs_t1", coarse), ("ms_t1", fine), ("ms_t2", fine), ("hs_t2_truth", fine)):
        with rasterio.open(paths[key]) as f:
            assert f.transform.almost_equals(expected), key
            assert f.crs == scene.rio.crs and "ms_grid_gsd_m" not in f.tags(), key


def test_nominal_grid_without_crs_and_with_a_geographic_crs(model4: ObservationModel) -> None:
    # plain pixel coordinates (y increasing downwards): the nominal pixel size, orientation kept
    case = simulate_case(_cube(model4), model=model4, change="none", hs_snr_db=None, ms_snr_db=None)
    np.testing.assert_allclose(case.ms_t1["y"].values[:3], [4.5, 14.5, 24.5])  # corner -0.5, 10 units a pixel
    np.testing.assert_allclose(case.hs_t1["x"].values[:2], [14.5, 44.5])
    assert case.meta["source_gsd_m"] is None
    # no coordinates at all: a plain pixel grid stays one
    bare = _cube(model4).drop_vars(["x", "y"])
    assert "x" not in simulate_case(bare, model=model4, change="none").ms_t1.coords
    # degrees cannot carry a grid of 10 m pixels
    geographic = synthetic_scene(ny=12, nx=12, nb=60).rio.write_crs("EPSG:4326")
    with pytest.raises(DcstsfInputError, match="not metres.*rio.reproject"):
        simulate_case(geographic, model=model4, change="none")


def test_seeded_and_deterministic(model: ObservationModel) -> None:
    a = simulate_case(_cube(model), model=model, change="mixed", seed=4)
    b = simulate_case(_cube(model), model=model, change="mixed", seed=4)
    c = simulate_case(_cube(model), model=model, change="mixed", seed=5)
    np.testing.assert_array_equal(a.hs_t2_truth.values, b.hs_t2_truth.values)
    np.testing.assert_array_equal(a.ms_t2.values, b.ms_t2.values)
    assert not np.array_equal(a.hs_t2_truth.values, c.hs_t2_truth.values)


def test_change_models(model: ObservationModel) -> None:
    x1 = _cube(model, 40, 40).values
    wl = model.hs_sensor.centers_nm
    x2, mask = apply_change(x1, wavelengths=wl, change="abrupt", seed=1)
    assert 0.02 < mask.mean() < 0.2
    np.testing.assert_array_equal(x2[:, ~mask], x1[:, ~mask])  # only the patches change
    assert np.any(x2[:, mask] != x1[:, mask])
    x2p, mask_p = apply_change(x1, wavelengths=wl, change="phenology", seed=1)
    assert not mask_p.any() and np.abs(x2p - x1).max() > 0.01
    x2r, _ = apply_change(x1, wavelengths=wl, change="radiometric", seed=1)
    ratio = x2r / x1
    # a scene-wide change: the same gain for every pixel of a band (up to the offset)
    assert np.std(ratio[50]) < 0.05 * np.mean(ratio[50])
    with pytest.raises(DcstsfInputError, match="unknown change model"):
        apply_change(x1, wavelengths=wl, change="flood")


def test_noise_matches_snr(model: ObservationModel) -> None:
    clean = simulate_case(_cube(model, 60, 60), model=model, change="none", hs_snr_db=None, ms_snr_db=None)
    noisy = simulate_case(_cube(model, 60, 60), model=model, change="none", hs_snr_db=30.0, ms_snr_db=None)
    d = noisy.hs_t1.values - clean.hs_t1.values
    band = 100
    expected = np.abs(clean.hs_t1.values[band].mean()) / 10 ** (30 / 20)
    assert 0.8 * expected < d[band].std() < 1.2 * expected
    np.testing.assert_array_equal(noisy.ms_t1.values, clean.ms_t1.values)


def test_resample_real_enmap_to_ahsi(model: ObservationModel) -> None:
    from dcstsf import datasets

    try:
        block = datasets.load_enmap_potsdam_block()
    except DcstsfInputError:
        pytest.skip("shared EnMAP data not available")
    out = resample_to_sensor(block, "zy1-02d-ahsi")
    assert out.shape == (166, 128, 64)
    assert np.isfinite(out.values).all() and 0 <= float(np.median(out.values)) < 0.6
    assert out.rio.crs is not None  # CRS kept
    # the red-edge jump of vegetation survives resampling
    assert float(out.sel(band="B060").mean()) > float(out.sel(band="B030").mean())


def test_resample_a_cube_in_micrometres() -> None:
    # the same cube with its wavelength coordinate in micrometres (declared, or by magnitude) resamples alike
    wl = np.linspace(400.0, 2500.0, 60)
    rng = np.random.default_rng(0)
    cube = xr.DataArray(rng.uniform(0.05, 0.5, (60, 6, 5)).astype(np.float32), dims=("band", "y", "x"),
                        coords={"wavelength": ("band", wl), "fwhm": ("band", np.full(60, 40.0))})
    ref = resample_to_sensor(cube, "zy1-02d-ahsi").values
    for attrs in ({"units": "micrometers"}, {}):
        um = cube.assign_coords(wavelength=("band", wl / 1000.0, attrs), fwhm=("band", np.full(60, 0.04)))
        np.testing.assert_allclose(resample_to_sensor(um, "zy1-02d-ahsi").values, ref, rtol=1e-6)


def test_nodata_in_the_real_cube_stays_nodata(model: ObservationModel) -> None:
    # a swath edge and a corner without data: never turned into black pixels of the truth
    from dcstsf.operators import blur_radius
    from dcstsf.simulate import nodata_pixels

    full = _cube(model, 36, 36)
    holed = full.copy(data=full.values.copy())
    holed.values[:, :6, :] = np.nan
    holed.values[:, 30:, 27:] = np.nan
    assert nodata_pixels(holed.values).sum() == 6 * 36 + 6 * 9
    empty_band = holed.values.copy()
    empty_band[5] = np.nan  # a band without data anywhere makes no pixel nodata
    assert nodata_pixels(empty_band).sum() == 6 * 36 + 6 * 9
    kw = {"model": model, "change": "phenology", "seed": 3, "hs_snr_db": None, "ms_snr_db": None}
    ref, case = simulate_case(full, **kw), simulate_case(holed, **kw)
    nodata = np.isnan(holed.values[0])
    for truth in (case.hs_t1_truth, case.hs_t2_truth):
        assert (np.isnan(truth.values).all(axis=0) == nodata).all()
    assert not case.change_mask.values[nodata].any()
    # the observations are NaN wherever their blur reached the nodata, and as without it elsewhere
    ms_reach = blur_radius(model.ms_sigma)
    gone = np.isnan(case.ms_t1.values).all(axis=0)
    assert gone[nodata].all() and gone[6 + ms_reach:30 - ms_reach].sum() == 0
    far = ~gone
    np.testing.assert_allclose(case.ms_t1.values[:, far], ref.ms_t1.values[:, far], atol=1e-6)
    np.testing.assert_allclose(case.ms_t2.values[:, far], ref.ms_t2.values[:, far], atol=1e-6)
    hs_gone = np.isnan(case.hs_t1.values).all(axis=0)
    assert hs_gone[:2].all() and hs_gone[10:, 9:].all() and not hs_gone[4:8, :6].any()
    np.testing.assert_allclose(case.hs_t1.values[:, ~hs_gone], ref.hs_t1.values[:, ~hs_gone], atol=1e-6)
    with pytest.raises(DcstsfInputError, match="no pixel with data"):
        simulate_case(full.copy(data=np.full(full.shape, np.nan, np.float32)), **kw)


def test_resampling_keeps_nodata_pixels(model: ObservationModel) -> None:
    wl = np.linspace(400.0, 2500.0, 120)
    data = np.full((120, 6, 7), 0.3, np.float32)
    data[:, 2, 3] = np.nan
    data[40:45] = np.nan  # empty bands: resampled from their neighbours, no pixel lost
    cube = xr.DataArray(data, dims=("band", "y", "x"), coords={"wavelength": ("band", wl)})
    out = resample_to_sensor(cube, model.hs_sensor).values
    gone = np.isnan(out).all(axis=0)
    assert gone[2, 3] and gone.sum() == 1 and np.isfinite(out[:, ~gone]).all()


def test_a_cube_that_does_not_sample_the_sensor_is_refused(model: ObservationModel) -> None:
    # a 10-band multispectral file given as the "hyperspectral" truth: most AHSI bands lie far from its bands
    wl = np.array([492.0, 560.0, 665.0, 704.0, 740.0, 783.0, 833.0, 865.0, 1614.0, 2202.0])
    cube = xr.DataArray(np.full((10, 12, 12), 0.2, np.float32), dims=("band", "y", "x"),
                        coords={"wavelength": ("band", wl)})
    with pytest.raises(DcstsfInputError, match=r"has 10 bands \(492-2202 nm\).*8\d of its 135 good bands would "
                                               r"be interpolated.*--hs-sensor"):
        simulate_case(cube, model=model)
    # the same with the bands' widths given (they no longer decide), and a coarse but hyperspectral
    # sampling passes (60 bands, 35 nm apart)
    with pytest.raises(DcstsfInputError, match="would be interpolated"):
        simulate_case(cube.assign_coords(fwhm=("band", np.full(10, 30.0))), model=model)
    simulate_case(synthetic_scene(ny=12, nx=12, nb=60), model=model)


def test_a_cube_that_is_not_reflectance_is_refused(model: ObservationModel) -> None:
    # the truth is clipped to [0, 1]: percent or stored numbers would all become 1 without this check
    cube = _cube(model)
    with pytest.raises(DcstsfInputError, match=r"the real cube: .*percent reflectance.*--scale 0.01"):
        simulate_case(cube * 100, model=model)
    with pytest.raises(DcstsfInputError, match=r"digital numbers without a scale\. Pass --scale 0.0001"):
        simulate_case(cube * 10000, model=model)

"""Synthetic library scenes: libraries, class structure, boundary mixing, change, determinism, the split."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from dcstsf import sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.training.libraries import COVER_TYPES, SpectralLibrary, load_libraries
from dcstsf.training.synthetic import (
    LANDCOVER_CLASSES,
    TRAINING_LIBRARIES,
    VALIDATION_LIBRARIES,
    cover_fraction,
    landcover_classes,
    library_case_pair,
    library_scene,
    sample_lai_change,
    validation_cases,
)

AHSI = sensors.get("zy1-02d-ahsi")
SHARED = ("usgs", "berlin", "gamsberg")
# The boundary-mixing Gaussian (sigma <= 1.2 px, truncated at 4 sigma) reaches 5 px in y and x at once.
SQUARE = np.ones((3, 3), bool)


@pytest.fixture(scope="module")
def libs() -> dict[str, SpectralLibrary]:
    return load_libraries(names=SHARED)


def _check_library(lib: SpectralLibrary) -> None:
    assert lib.n_spectra > 0
    assert np.all(np.isfinite(lib.spectra)) and lib.spectra.min() >= 0.0 and lib.spectra.max() <= 1.0
    assert np.all(np.diff(lib.wavelengths_nm) > 0)
    assert set(lib.covers) <= set(COVER_TYPES)
    # no spectrum is flat zero, and reflectance is not still scaled (x 10000)
    assert lib.spectra.max(axis=1).min() > 0.0 and np.median(lib.spectra) < 0.7


def test_shared_libraries_load_with_sane_ranges(libs: dict[str, SpectralLibrary]) -> None:
    for lib in libs.values():
        _check_library(lib)
    usgs, berlin, gams = libs["usgs"], libs["berlin"], libs["gamsberg"]
    # two USGS spectra exceed reflectance 1 and are dropped
    assert usgs.n_spectra == 496 and set(usgs.covers) == {"mineral"}
    np.testing.assert_allclose(usgs.wavelengths_nm[[0, -1]], [383.15, 2508.2], atol=0.5)
    assert berlin.n_spectra == 75 and berlin.n_bands == 177
    np.testing.assert_allclose(berlin.wavelengths_nm[[0, -1]], [460.0, 2409.0])
    assert set(berlin.covers) == {"roof", "pavement", "vegetation", "tree", "soil", "water"}
    assert gams.n_spectra == 27 and gams.n_bands == 2151
    # field spectra: detector edge and water-vapour windows are flagged bad
    good_nm = gams.wavelengths_nm[gams.good]
    assert good_nm.min() == 400.0 and good_nm.max() == 2449.0
    assert not gams.good[(gams.wavelengths_nm >= 1350) & (gams.wavelengths_nm < 1450)].any()
    assert {"vegetation", "npv", "mineral"} <= set(gams.covers)


def test_resampling_to_ahsi_is_faithful_and_never_extrapolates(libs: dict[str, SpectralLibrary]) -> None:
    for lib in libs.values():
        r = lib.to_sensor(AHSI)
        assert r.spectra.shape == (lib.n_spectra, 166) and r.sensor == AHSI.name
        np.testing.assert_array_equal(r.good, AHSI.good)
        assert r.spectra.min() >= 0.0 and r.spectra.max() <= 1.0
        assert lib.to_sensor("zy1-02d-ahsi") is r  # cached
    # inside the range, band values follow the spectrum (smooth USGS spectra: close to point samples)
    usgs = libs["usgs"]
    r = usgs.to_sensor(AHSI)
    inside = (AHSI.centers_nm > 420) & (AHSI.centers_nm < 2450)
    point = np.stack([np.interp(AHSI.centers_nm, usgs.wavelengths_nm, s) for s in usgs.spectra])
    assert np.median(np.abs(r.spectra[:, inside] - point[:, inside])) < 0.005
    # Berlin starts at 460 nm: the AHSI bands below are filled with the first covered band's value
    b = libs["berlin"].to_sensor(AHSI)
    below = AHSI.centers_nm < 455
    assert below.sum() >= 8 and b.filled[below].all()
    assert not b.filled[(AHSI.centers_nm > 500) & (AHSI.centers_nm < 1300)].any()
    first = int(np.flatnonzero(~b.filled)[0])
    np.testing.assert_allclose(b.spectra[:, below], np.repeat(b.spectra[:, [first]], below.sum(), axis=1), atol=1e-6)


def test_earthlib_from_the_installed_package() -> None:
    pytest.importorskip("earthlib")
    lib = load_libraries(names=("earthlib",))["earthlib"]
    _check_library(lib)
    assert lib.n_spectra > 7000 and lib.n_bands == 180
    np.testing.assert_allclose(lib.wavelengths_nm[[0, -1]], [400.0, 2450.0])
    assert {"soil", "roof", "pavement", "vegetation", "npv"} <= set(lib.covers)


def test_split_is_disjoint_in_names_and_in_spectra(libs: dict[str, SpectralLibrary]) -> None:
    assert not set(TRAINING_LIBRARIES) & set(VALIDATION_LIBRARIES)
    train_names = [n for n in TRAINING_LIBRARIES if n in libs]
    try:
        train = [*(libs[n] for n in train_names), load_libraries(names=("earthlib",))["earthlib"]]
    except DcstsfInputError:  # earthlib not installed: check against USGS alone
        train = [libs[n] for n in train_names]
    train_spectra = np.concatenate([t.to_sensor(AHSI).spectra for t in train])
    for name in VALIDATION_LIBRARIES:
        val = libs[name].to_sensor(AHSI).spectra
        d = np.sqrt(((val[:, None, AHSI.good] - train_spectra[None, :, AHSI.good]) ** 2).mean(axis=2))
        assert d.min() > 1e-3, name


def test_landcover_classes_shape_labels_and_seed() -> None:
    a = landcover_classes(np.random.default_rng(3), shape=(96, 120))
    b = landcover_classes(np.random.default_rng(3), shape=(96, 120))
    assert a.shape == (96, 120) and a.dtype == np.int32
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= set(LANDCOVER_CLASSES) and len(np.unique(a)) >= 3
    assert not np.array_equal(a, landcover_classes(np.random.default_rng(4), shape=(96, 120)))


def test_library_scene_has_class_structure(libs: dict[str, SpectralLibrary]) -> None:
    classes = landcover_classes(np.random.default_rng(2))
    scene = library_scene(classes=classes, library=libs["berlin"], sensor=AHSI, rng=np.random.default_rng(5),
                          vegetation="cover", lai=3.0)
    assert scene.shape == (166, 96, 96) and scene.dtype == np.float32
    assert list(scene["band"].values) == list(AHSI.band_names)
    np.testing.assert_allclose(scene["wavelength"].values, AHSI.centers_nm)
    v = scene.values
    assert np.isfinite(v).all() and v.min() >= 0.0 and v.max() <= 1.0
    ids = [i for i in np.unique(classes) if ndimage.binary_erosion(classes == i, iterations=2).sum() >= 10]
    assert len(ids) >= 3
    masks = [ndimage.binary_erosion(classes == i, iterations=2) for i in ids]
    means = np.stack([v[:, m].mean(axis=1) for m in masks])
    # class interiors are told apart by their mean spectra: the classes carry the structure
    pixels = np.concatenate([v[:, m].T for m in masks])
    truth = np.concatenate([np.full(m.sum(), k) for k, m in enumerate(masks)])
    nearest = np.argmin(((pixels[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == truth).mean() > 0.8
    # and within a class the pixels vary (mixture of close endmembers, gain texture)
    assert min(v[:, m].std(axis=1).mean() for m in masks) > 1e-3


def test_boundaries_are_mixed(libs: dict[str, SpectralLibrary]) -> None:
    classes = np.ones((24, 48), np.int32)
    classes[:, 24:] = 6  # roof | water
    scene = library_scene(classes=classes, library=libs["berlin"], sensor=AHSI, rng=np.random.default_rng(0),
                          n_endmembers=(1, 1), gain_std=0.0, mixing_sigma=1.0).values
    left, right = scene[:, 12, 4], scene[:, 12, 44]
    assert np.abs(left - right).max() > 0.05
    np.testing.assert_allclose(scene[:, 12, 16], left, atol=1e-6)  # pure far from the boundary
    # the pixels next to the boundary are convex mixtures of the two pure spectra
    share = [float(np.dot(scene[:, 12, c] - right, left - right) / np.dot(left - right, left - right)) for c in (22, 23, 24, 25)]
    assert 0.9 < share[0] <= 1.0 and 0.55 < share[1] < 0.85 and 0.15 < share[2] < 0.45 and 0.0 <= share[3] < 0.1
    assert np.allclose(scene[:, 12, 23], share[1] * left + (1 - share[1]) * right, atol=1e-4)


def test_scene_is_deterministic_from_the_seed(libs: dict[str, SpectralLibrary]) -> None:
    classes = landcover_classes(np.random.default_rng(1), shape=(48, 48))
    def make(seed: int) -> np.ndarray:
        return library_scene(classes=classes, library=libs["gamsberg"], sensor=AHSI,
                             rng=np.random.default_rng(seed), vegetation="cover").values
    np.testing.assert_array_equal(make(7), make(7))
    assert not np.array_equal(make(7), make(8))


def test_lai_drives_only_the_vegetated_classes(libs: dict[str, SpectralLibrary]) -> None:
    classes = landcover_classes(np.random.default_rng(2))
    veg = np.isin(classes, [k for k, c in LANDCOVER_CLASSES.items() if c.vegetated])
    assert veg.any() and (~veg).any()
    def make(lai: float) -> np.ndarray:
        return library_scene(classes=classes, library=libs["berlin"], sensor=AHSI, rng=np.random.default_rng(3),
                             vegetation="cover", lai=lai).values
    bare, dense = make(0.0), make(5.0)
    far = ~ndimage.binary_dilation(veg, structure=SQUARE, iterations=6)
    np.testing.assert_array_equal(bare[:, far], dense[:, far])
    inner = ndimage.binary_erosion(veg, iterations=2)
    assert np.abs(bare[:, inner] - dense[:, inner]).mean() > 0.01
    np.testing.assert_allclose(cover_fraction([0.0, 2.0]), [0.0, 1.0 - np.exp(-1.0)])


def test_prosail_canopy_greens_with_lai(libs: dict[str, SpectralLibrary]) -> None:
    pytest.importorskip("prosail")
    classes = np.full((24, 24), 3, np.int32)  # low vegetation over a USGS mineral background
    red, nir = int(np.argmin(np.abs(AHSI.centers_nm - 665))), int(np.argmin(np.abs(AHSI.centers_nm - 860)))
    ndvi = []
    for lai in (0.0, 1.0, 4.0):
        v = library_scene(classes=classes, library=libs["usgs"], sensor=AHSI, rng=np.random.default_rng(0),
                          vegetation="prosail", lai=lai).values
        ndvi.append(float(((v[nir] - v[red]) / (v[nir] + v[red])).mean()))
    assert ndvi[0] < ndvi[1] < ndvi[2] and ndvi[2] > 0.6


def test_case_pair_changes_where_it_should(libs: dict[str, SpectralLibrary]) -> None:
    classes = np.ones((96, 96), np.int32)  # quadrants: roof, pavement, low vegetation, soil
    classes[:48, 48:], classes[48:, :48], classes[48:, 48:] = 2, 3, 5
    pair = library_case_pair(classes=classes, library=libs["berlin"], sensor=AHSI, rng=np.random.default_rng(6),
                             vegetation="cover", abrupt_patches=(2, 2), abrupt_fraction=(0.08, 0.08))
    assert pair.change_mask.any()
    np.testing.assert_array_equal(pair.change_mask, pair.classes_t1 != pair.classes_t2)
    t1, t2 = pair.t1.values, pair.t2.values
    inner = ndimage.binary_erosion(pair.change_mask, iterations=2)
    assert np.abs(t1[:, inner] - t2[:, inner]).mean() > 0.01
    # static classes away from the change and from vegetation keep their spectra exactly
    veg = np.isin(classes, [k for k, c in LANDCOVER_CLASSES.items() if c.vegetated])
    calm = ~ndimage.binary_dilation(veg | pair.change_mask, structure=SQUARE, iterations=6)
    assert calm.sum() > 1000
    np.testing.assert_array_equal(t1[:, calm], t2[:, calm])
    for lai in pair.meta["lai"].values():
        assert lai["dates"][0] < lai["dates"][1] and 0.0 <= lai["t1"] <= 15.0


def test_lai_change_comes_from_the_real_series() -> None:
    ch = sample_lai_change(np.random.default_rng(0), min_days=30, max_days=60)
    d1, d2 = np.datetime64(ch.date_t1), np.datetime64(ch.date_t2)
    assert 30 <= (d2 - d1).astype(int) <= 60
    assert "2015-07-04" <= ch.date_t1 < ch.date_t2 <= "2024-01-23"
    assert ch == sample_lai_change(np.random.default_rng(0), min_days=30, max_days=60)


def test_validation_cases_fast_deterministic_and_from_validation_libraries(model: ObservationModel) -> None:
    start = time.perf_counter()
    cases = validation_cases(model=model, n_cases=2, seed=0)
    assert time.perf_counter() - start < 20.0
    assert [c.meta["synthetic"]["library"] for c in cases] == list(VALIDATION_LIBRARIES)
    for c in cases:
        assert c.meta["synthetic"]["vegetation_model"] == "cover"
        assert c.hs_t2_truth.shape == (166, 96, 96) and c.hs_t1.shape == (166, 32, 32)
        assert c.ms_t1.shape == c.ms_t2.shape == (model.n_ms, 96, 96)
        for da in (c.hs_t1, c.ms_t1, c.ms_t2, c.hs_t2_truth):
            assert np.isfinite(da.values).all()
        assert c.change_mask.values.any()
        assert np.abs(c.hs_t2_truth.values - c.hs_t1_truth.values).mean() > 1e-3
    again = validation_cases(model=model, n_cases=1, seed=0)[0]
    for key in ("hs_t1", "ms_t1", "ms_t2", "hs_t2_truth"):
        np.testing.assert_array_equal(getattr(again, key).values, getattr(cases[0], key).values)
    other = validation_cases(model=model, n_cases=1, seed=1)[0]
    assert not np.array_equal(other.hs_t2_truth.values, cases[0].hs_t2_truth.values)


def test_bad_inputs_are_explained(libs: dict[str, SpectralLibrary], model: ObservationModel) -> None:
    with pytest.raises(DcstsfInputError, match="unknown spectral libraries"):
        load_libraries(names=("jasper",))
    with pytest.raises(DcstsfInputError, match="2-D integer array"):
        library_scene(classes=np.zeros((8, 8)), library=libs["usgs"], sensor=AHSI, rng=np.random.default_rng(0))
    with pytest.raises(DcstsfInputError, match="vegetation model"):
        library_scene(classes=np.ones((8, 8), int), library=libs["usgs"], sensor=AHSI, rng=np.random.default_rng(0),
                      vegetation="leafy")
    with pytest.raises(DcstsfInputError, match="at least 96"):
        validation_cases(model=model, n_cases=1, size=48)
    with pytest.raises(DcstsfInputError, match="not found"):
        load_libraries("/nonexistent-shared-data", names=("berlin",))

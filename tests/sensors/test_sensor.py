"""Sensor registry, data files and spectral matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcstsf import sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.sensors import SENTINEL2_DEFAULT_BANDS

S2_10 = list(SENTINEL2_DEFAULT_BANDS)


@pytest.mark.parametrize(
    ("name", "n_bands"),
    [("zy1-02d-ahsi", 166), ("sentinel-2a", 13), ("sentinel-2b", 13), ("enmap", 224), ("hyperion", 242)],
)
def test_registry(name: str, n_bands: int) -> None:
    s = sensors.get(name)
    assert s.n_bands == n_bands
    assert s.source  # every sensor says where its numbers come from
    assert np.all(s.fwhm_nm > 0)


def test_unknown_sensor_message() -> None:
    with pytest.raises(DcstsfInputError, match="unknown sensor 'landsat-9'.*zy1-02d-ahsi"):
        sensors.get("landsat-9")


def test_ahsi_bad_bands_are_water_vapour_and_edges() -> None:
    ahsi = sensors.get("zy1-02d-ahsi")
    bad = ahsi.centers_nm[~ahsi.good]
    assert np.any((bad > 1330) & (bad < 1480)) and np.any((bad > 1780) & (bad < 1990))
    good = ahsi.centers_nm[ahsi.good]
    assert not np.any((good > 1340) & (good < 1470))
    assert 120 < ahsi.good.sum() < 166


def test_s2_gsd_and_mtf_from_tables() -> None:
    s2 = sensors.get("sentinel-2a")
    assert s2.gsd_m[s2.band_index(["B02"])[0]] == 10 and s2.gsd_m[s2.band_index(["B11"])[0]] == 20
    sig = s2.gaussian_psf_sigma(grid_gsd_m=10, bands=["B02", "B05"])
    np.testing.assert_allclose(sig[0], np.sqrt(-2 * np.log(0.26)) / np.pi, rtol=1e-6)
    assert sig[1] > 1.6 * sig[0]


def test_response_matrix_rows_and_flat_spectrum() -> None:
    r = sensors.spectral_response_matrix("zy1-02d-ahsi", "sentinel-2a", S2_10)
    assert r.shape == (10, 166)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(r @ np.full(166, 0.25), 0.25, atol=1e-12)
    # B04 (red, ~665 nm) is made of AHSI bands around 650-680 nm
    ahsi = sensors.get("zy1-02d-ahsi")
    centre = (r[2] * ahsi.centers_nm).sum()
    assert 650 < centre < 680


def test_response_matrix_rejects_uncovered_band() -> None:
    narrow = sensors.from_wavelengths(np.arange(400.0, 700.0, 10.0), 10.0, name="vis-only")
    with pytest.raises(DcstsfInputError, match="B11.*not covered"):
        sensors.spectral_response_matrix(narrow, "sentinel-2a", ["B02", "B11"])


def test_resampling_enmap_to_ahsi() -> None:
    w = sensors.spectral_resampling_matrix("enmap", "zy1-02d-ahsi")
    assert w.shape == (166, 224)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    enmap = sensors.get("enmap")
    assert np.all(w[:, ~enmap.good] == 0)  # nodata bands never used
    # a smooth spectrum resamples to the same smooth function at the AHSI centres (inside coverage)
    spec = 0.2 + 0.1 * np.sin(enmap.centers_nm / 300.0)
    out = w @ spec
    ahsi = sensors.get("zy1-02d-ahsi")
    cov = sensors.resampling_coverage("enmap", "zy1-02d-ahsi") > 0.9
    np.testing.assert_allclose(out[cov], 0.2 + 0.1 * np.sin(ahsi.centers_nm[cov] / 300.0), atol=2e-3)


def test_from_wavelengths_validation() -> None:
    with pytest.raises(DcstsfInputError, match="not strictly increasing"):
        sensors.from_wavelengths([500.0, 490.0, 510.0])
    s = sensors.from_wavelengths([500.0, 510.0, 530.0])
    assert s.n_bands == 3 and np.all(s.fwhm_nm > 0)


def test_from_envi_header(tmp_path: Path) -> None:
    hdr = tmp_path / "x.hdr"
    hdr.write_text(
        "ENVI\nsamples = 2\nlines = 2\nbands = 3\nheader offset = 0\ndata type = 4\ninterleave = bsq\n"
        "byte order = 0\nwavelength units = Micrometers\nwavelength = {0.45, 0.55, 0.65}\n"
        "fwhm = {0.01, 0.01, 0.01}\nbbl = {1, 0, 1}\n"
    )
    s = sensors.from_envi_header(hdr)
    np.testing.assert_allclose(s.centers_nm, [450, 550, 650])
    np.testing.assert_allclose(s.fwhm_nm, [10, 10, 10])
    assert s.good.tolist() == [True, False, True]
    hdr.write_text("ENVI\nsamples = 2\nlines = 2\nbands = 3\n")
    with pytest.raises(DcstsfInputError, match="no 'wavelength'"):
        sensors.from_envi_header(hdr)


def test_bands_outside_the_optical_grid_are_named_briefly() -> None:
    s = sensors.from_wavelengths(np.linspace(0.4, 2.5, 50), name="in-micrometres")
    with pytest.raises(DcstsfInputError) as info:
        s.responses()
    msg = str(info.value)
    assert "50 of 50 bands (B001-B050)" in msg and "in nanometres" in msg

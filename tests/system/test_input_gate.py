"""The input checks through the command line, on the demo case: each mistake a user makes with real files
stops the run with a clear error (exit 2, nothing written) or a warning, and a correct run is unaffected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from dcstsf.cli import main
from dcstsf.datasets import load_bundled_sample
from dcstsf.demo import DEMO_MS_BANDS
from dcstsf.io import open_raster, write_raster
from dcstsf.operators import ObservationModel
from dcstsf.simulate import simulate_case
from tests.io.rasters import make_tif

SHIPPED = list(DEMO_MS_BANDS)
WAVELENGTH_ORDER = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo case (bundled EnMAP sample as AHSI + Sentinel-2A, simulated 'mixed' change, seed 0)."""
    model = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=SHIPPED, ratio=3)
    sim = simulate_case(load_bundled_sample(), model=model, change="mixed", seed=0)
    return sim.save(tmp_path_factory.mktemp("gate") / "case")


def fuse(capsys: pytest.CaptureFixture[str], hs: Path, ms1: Path, ms2: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = main(["-q", "fuse", str(hs), str(ms1), str(ms2), "-o", str(out), "--method", "two-step", *extra])
    return code, capsys.readouterr().err


def restack(src: Path, dst: Path, order: list[str], *, names: bool) -> Path:
    """``src``'s MS bands stacked in ``order``, with their names or with generic ones."""
    da = open_raster(src).load()
    da = da.sel(band=order)
    if not names:
        da = da.assign_coords(band=[f"band_{i + 1}" for i in range(da.sizes["band"])])
    da.attrs = {}
    return write_raster(da, dst)


def test_mislabelled_bands_are_refused_with_the_order_that_fits(
    capsys: pytest.CaptureFixture[str], case: dict[str, Path], tmp_path: Path
) -> None:
    ms1 = restack(case["ms_t1"], tmp_path / "ms1.tif", WAVELENGTH_ORDER, names=False)
    ms2 = restack(case["ms_t2"], tmp_path / "ms2.tif", WAVELENGTH_ORDER, names=False)
    out = tmp_path / "out.tif"
    code, err = fuse(capsys, case["hs_t1"], ms1, ms2, out, "--ms-bands", ",".join(SHIPPED))
    assert code == 2, err
    assert "ms1.tif" in err and f"--ms-bands {','.join(WAVELENGTH_ORDER)}" in err
    assert not out.exists() and not list(tmp_path.glob("*.dcstsf-work*"))
    # with the order the error suggests, the run goes through
    code, err = fuse(capsys, case["hs_t1"], ms1, ms2, out, "--ms-bands", ",".join(WAVELENGTH_ORDER))
    assert code == 0, err


def test_swapped_dates_are_refused(capsys: pytest.CaptureFixture[str], case: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    code, err = fuse(capsys, case["hs_t1"], case["ms_t2"], case["ms_t1"], out)
    assert code == 2 and "swapped" in err and "ms_t2.tif" in err, err
    assert not out.exists()
    code, err = fuse(capsys, case["hs_t1"], case["ms_t2"], case["ms_t1"], out, "--no-checks")
    assert code == 0 and out.exists(), err


def _dn(src: Path, dst: Path, *, add: float) -> Path:
    """``src`` as Sentinel-2 style uint16 DNs: (reflectance + add) x 10000, no scale in the file."""
    da = open_raster(src).load()
    dn = np.clip(np.round((da.values + add) * 10000), 1, 65535).astype(np.uint16)
    return make_tif(dst, dn, crs=str(da.rio.crs), transform=da.rio.transform(), nodata=0,
                    descriptions=[str(b) for b in da["band"].values])


def test_s2_offset_left_out_is_refused(capsys: pytest.CaptureFixture[str], case: dict[str, Path], tmp_path: Path) -> None:
    ms1, ms2 = _dn(case["ms_t1"], tmp_path / "ms1.tif", add=0.1), _dn(case["ms_t2"], tmp_path / "ms2.tif", add=0.1)
    out = tmp_path / "out.tif"
    code, err = fuse(capsys, case["hs_t1"], ms1, ms2, out, "--ms-scale", "0.0001")
    assert code == 2 and "--ms-offset -0.1" in err and "ms1.tif" in err, err
    assert not out.exists()
    code, err = fuse(capsys, case["hs_t1"], ms1, ms2, out, "--ms-scale", "0.0001", "--ms-offset", "-0.1")
    assert code == 0, err


def test_undeclared_fill_value_is_refused(capsys: pytest.CaptureFixture[str], case: dict[str, Path], tmp_path: Path) -> None:
    da = open_raster(case["ms_t2"]).load()
    vals = da.values.copy()
    vals[:, :5, :7] = -9999.0
    filled = da.copy(data=vals)
    filled.attrs = {}
    ms2 = write_raster(filled, tmp_path / "ms2_fill.tif")
    out = tmp_path / "out.tif"
    code, err = fuse(capsys, case["hs_t1"], case["ms_t1"], ms2, out)
    assert code == 2 and "-9999" in err and "--ms-nodata" in err and "ms2_fill.tif" in err, err
    assert not out.exists()
    code, err = fuse(capsys, case["hs_t1"], case["ms_t1"], ms2, out, "--ms-nodata", "-9999")
    assert code == 0, err
    fused = open_raster(out).load()
    assert np.isnan(fused.values[:, :5, :7]).all() and np.nanmax(fused.values) < 1.5


def test_scale_on_float_reflectance_is_refused(
    capsys: pytest.CaptureFixture[str], case: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.tif"
    code, err = fuse(capsys, case["hs_t1"], case["ms_t1"], case["ms_t2"], out, "--scale", "0.0001", "--offset", "-0.1")
    assert code == 2 and "hs_t1.tif" in err and "--scale" in err, err
    assert not out.exists()


def test_wavelength_order_with_names_fuses_like_the_shipped_order(
    capsys: pytest.CaptureFixture[str], case: dict[str, Path], tmp_path: Path
) -> None:
    """A Sentinel-2 stack in wavelength order whose bands carry their names fuses with the shipped DC-STSF
    weights, reordered internally, to the same result as the shipped order."""
    ms1 = restack(case["ms_t1"], tmp_path / "ms1.tif", WAVELENGTH_ORDER, names=True)
    ms2 = restack(case["ms_t2"], tmp_path / "ms2.tif", WAVELENGTH_ORDER, names=True)
    a, b = tmp_path / "wavelength.tif", tmp_path / "shipped.tif"
    assert main(["-q", "fuse", str(case["hs_t1"]), str(ms1), str(ms2), "-o", str(a)]) == 0
    assert main(["-q", "fuse", str(case["hs_t1"]), str(case["ms_t1"]), str(case["ms_t2"]), "-o", str(b)]) == 0
    capsys.readouterr()
    xa, xb = open_raster(a).load(), open_raster(b).load()
    np.testing.assert_allclose(xa.values, xb.values, atol=1e-5)
    assert isinstance(xa, xr.DataArray) and list(xa["band"].values) == list(xb["band"].values)


def test_diagnosis_is_printed_recorded_and_reported(
    capsys: pytest.CaptureFixture[str], case: dict[str, Path], tmp_path: Path
) -> None:
    import json

    out = tmp_path / "fused.tif"
    code = main(["fuse", str(case["hs_t1"]), str(case["ms_t1"]), str(case["ms_t2"]), "-o", str(out),
                 "--method", "two-step"])
    err = capsys.readouterr().err
    assert code == 0, err
    line = next(x for x in err.splitlines() if "physics: estimated" in x)
    assert "HS PSF sigma 1.21" in line and "shift" in line and "residual" in line
    attrs = open_raster(out).attrs
    record = json.loads(attrs["scene_diagnosis"])
    assert attrs["physics"] == "estimated" and record["hs_psf_sigma"] == pytest.approx(1.207, abs=0.02)
    assert max(abs(v) for v in record["hs_shift"]) < 0.05 and set(record["residual_tables"]) == set(SHIPPED)
    report = tmp_path / "report"
    assert main(["-q", "evaluate", str(out), str(case["hs_t2_truth"]), "-o", str(report)]) == 0
    capsys.readouterr()
    html = (report / "report.html").read_text()
    assert "Scene physics" in html and "HS PSF sigma 1.21" in html
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["methods"]["fused"]["provenance"]["scene_diagnosis"]["physics"] == "estimated"
    # --physics tables: the tables' model is used, the estimate still recorded
    out_t = tmp_path / "tables.tif"
    assert main(["-q", "fuse", str(case["hs_t1"]), str(case["ms_t1"]), str(case["ms_t2"]), "-o", str(out_t),
                 "--method", "two-step", "--physics", "tables"]) == 0
    assert open_raster(out_t).attrs["physics"] == "tables"


def _displaced(src: Path, dst: Path, coarse_pixels: int) -> Path:
    """``src`` (HS(t1)) georeferenced ``coarse_pixels`` HS pixels east of where it belongs."""
    da = open_raster(src).load()
    step = float(da.rio.transform().a)
    da = da.assign_coords(x=da["x"] + coarse_pixels * step)
    return write_raster(da.rio.write_transform(da.rio.transform(recalc=True)), dst)


@pytest.mark.filterwarnings("default::UserWarning")  # as on the command line: logged, not raised
def test_misregistered_hs_is_corrected_or_refused(capsys: pytest.CaptureFixture[str], case: dict[str, Path],
                                                   tmp_path: Path) -> None:
    # one HS pixel off: at the edge of the shift search, found and corrected, with a warning
    out = tmp_path / "one.tif"
    code, err = fuse(capsys, _displaced(case["hs_t1"], tmp_path / "hs1.tif", 1), case["ms_t1"], case["ms_t2"], out)
    assert code == 0 and out.exists(), err
    assert "warning: " in err and "the edge of the +/-3-pixel search" in err and "(corrected)" in err, err
    # two HS pixels off: beyond the search, refused (the fusion would be wrong), unless the checks are off
    out = tmp_path / "two.tif"
    hs2 = _displaced(case["hs_t1"], tmp_path / "hs2.tif", 2)
    code, err = fuse(capsys, hs2, case["ms_t1"], case["ms_t2"], out)
    assert code == 2 and "misregistered by more than the fusion can correct" in err and "hs2.tif" in err, err
    assert "Co-register HS(t1) to MS(t1) first" in err and not out.exists()
    code, err = fuse(capsys, hs2, case["ms_t1"], case["ms_t2"], out, "--no-checks")
    assert code == 0 and out.exists(), err

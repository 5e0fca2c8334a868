"""``dcstsf prepare`` end to end: products in, three GeoTIFFs out, which ``dcstsf fuse`` fuses as any other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcstsf.cli.main import main
from dcstsf.io import open_raster
from tests.preparation.scenes import S2_10, Scene, make_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_scene(tmp_path_factory.mktemp("scene"), hs_origin=(12, 6), hs_shape=(32, 32))


@pytest.mark.filterwarnings("default::UserWarning")  # as on the command line: logged, not raised
def test_prepare_then_fuse(scene: Scene, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prepared"
    args = ["-q", "prepare", str(scene.enmap), str(scene.ms1.safe), str(scene.ms2.safe), "-o", str(out),
            "--no-coregister"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "[dcstsf] warning: " in captured.err and "cover 32.7% of the MS" in captured.err  # a log line
    printed = captured.out
    for words in ("grid: 96 x 96 MS pixels of 10 m and 32 x 32 HS pixels of 30 m (ratio 3", "co-registration: not run",
                  "masked (no data) on the prepared grid: HS(t1) 0.6%", "footprint: the prepared inputs cover 32.7%",
                  "HS(t1) already on the snapped coarse grid", str(out / "hs_t1.tif"), "Next: dcstsf fuse"):
        assert words in printed, words
    hs, ms1, ms2 = (open_raster(out / f"{k}.tif") for k in ("hs_t1", "ms_t1", "ms_t2"))
    assert hs.shape == (224, 32, 32) and ms1.shape == ms2.shape == (10, 96, 96)
    assert (hs.attrs["sensor"], ms1.attrs["sensor"], ms2.attrs["sensor"]) == ("enmap", "sentinel-2a", "sentinel-2b")
    assert list(ms1["band"].values) == list(S2_10)
    np.testing.assert_array_equal(hs["wavelength"].values, scene.wl)
    assert json.loads(hs.attrs["footprint"])["ms_covered_fraction"] == pytest.approx((96 / 168) ** 2, abs=1e-6)
    assert float(ms1.attrs["masked_fraction"]) > 0  # the t1 cloud lies in the window
    # written once: a second run without --overwrite changes nothing and says how to replace them
    stamp = (out / "ms_t1.tif").stat().st_mtime_ns
    assert main(args) == 2
    assert "already there" in capsys.readouterr().err and (out / "ms_t1.tif").stat().st_mtime_ns == stamp
    # dcstsf fuse reads them as it reads any GeoTIFF, sensors from the tags (MS(t2) adjusted to Sentinel-2A)
    fused = tmp_path / "fused.tif"
    assert main(["-q", "fuse", str(out / "hs_t1.tif"), str(out / "ms_t1.tif"), str(out / "ms_t2.tif"), "-o",
                 str(fused), "--method", "variational"]) == 0
    pred = open_raster(fused)
    assert pred.shape == (224, 96, 96)
    assert "sentinel-2b" in pred.attrs["processing"]
    r, c = scene.hs_origin
    truth = scene.fine_t2[:, r : r + 96, c : c + 96]
    good = np.asarray(pred["bbl"].values) > 0 if "bbl" in pred.coords else np.isfinite(truth).all(axis=(1, 2))
    err = (pred.values - truth)[good]
    clear = np.isfinite(err)
    assert clear.mean() > 0.95  # NaN only where an input is masked
    # the prediction follows the t2 scene far better than HS(t1) (unchanged, upsampled) does
    hs_up = np.repeat(np.repeat(hs.values, 3, axis=1), 3, axis=2)[good]
    rmse = float(np.sqrt(np.nanmean(err**2)))
    rmse_t1 = float(np.sqrt(np.nanmean((hs_up - truth[good]) ** 2)))
    assert rmse < 0.5 * rmse_t1, (rmse, rmse_t1)


@pytest.mark.filterwarnings("default::UserWarning")  # as on the command line: logged, not raised
def test_fuse_products_with_uncertainty(scene: Scene, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--uncertainty`` with product inputs: the standard deviation is computed on the inputs prepared as
    the prediction's were (same options), so both share the grid and the bands."""
    fused, sd = tmp_path / "fused.tif", tmp_path / "fused_sd.tif"
    args = ["-q", "fuse", str(scene.enmap), str(scene.ms1.safe), str(scene.ms2.safe), "-o", str(fused),
            "--method", "two-step", "--no-coregister", "--uncertainty", str(sd)]
    assert main(args) == 0, capsys.readouterr().err
    assert "cover 32.7% of the MS" in capsys.readouterr().err
    pred, dev = open_raster(fused), open_raster(sd)
    assert pred.shape == dev.shape == (224, 96, 96)
    for coord in ("x", "y", "band"):
        np.testing.assert_array_equal(pred[coord].values, dev[coord].values)
    assert pred.rio.crs == dev.rio.crs
    ok = np.isfinite(pred.values)
    assert ok.mean() > 0.9 and (np.isfinite(dev.values) == ok).all() and (dev.values[ok] > 0).all()

"""``dcstsf fuse ... --uncertainty OUT_SD``: the standard-deviation raster beside the prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcstsf.cli import main
from dcstsf.io import open_raster, write_raster
from tests.engine.cases import make_case


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    case = make_case(hc=12, wc=14, seed=2)
    d = tmp_path_factory.mktemp("unc-inputs")
    return [str(write_raster(a, d / f"{k}.tif")) for k, a in
            (("hs_t1", case.hs_t1), ("ms_t1", case.ms_t1), ("ms_t2", case.ms_t2))]


def fuse(inputs: list[str], out: Path, sd: Path, *extra: str) -> int:
    return main(["-q", "fuse", *inputs, "-o", str(out), "--method", "two-step", "--uncertainty", str(sd), *extra])


def test_writes_the_sd_raster(inputs: list[str], tmp_path: Path) -> None:
    out, sd_path = tmp_path / "pred.tif", tmp_path / "pred_sd.tif"
    assert fuse(inputs, out, sd_path) == 0
    pred, sd = open_raster(out), open_raster(sd_path)
    assert sd.shape == pred.shape
    for coord in ("band", "wavelength", "y", "x"):
        np.testing.assert_array_equal(sd[coord].values, pred[coord].values)
    assert sd.rio.crs == pred.rio.crs and sd.rio.transform() == pred.rio.transform()
    assert sd.attrs["uncertainty_calibration_entry"] == "two-step"
    assert sd.attrs["uncertainty_calibration"] == "uncertainty_calibration.json"
    assert "standard deviation" in sd.attrs["quantity"]
    values = sd.values
    assert np.isfinite(values).all() and (values > 0).all()


def test_refuses_to_overwrite(inputs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, sd_path = tmp_path / "pred.tif", tmp_path / "sd.tif"
    sd_path.write_bytes(b"earlier result")
    assert fuse(inputs, out, sd_path) != 0
    err = capsys.readouterr().err
    assert str(sd_path) in err and "--overwrite" in err
    assert sd_path.read_bytes() == b"earlier result"
    assert not out.exists()  # refused before the fusion ran
    assert fuse(inputs, out, sd_path, "--overwrite") == 0
    assert open_raster(sd_path).sizes["band"] == open_raster(out).sizes["band"]


def test_refuses_the_prediction_path(inputs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pred.tif"
    assert fuse(inputs, out, out) != 0
    assert "--uncertainty" in capsys.readouterr().err
    assert not out.exists()

"""Tests for the ``dcstsf`` command line (dcstsf.cli) and the demo (dcstsf.demo)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)

from dcstsf import __version__
from dcstsf.cli import build_parser, main
from dcstsf.io import open_raster, write_raster
from tests.scenes import synthetic_scene

SUBCOMMANDS = ("demo", "fuse", "evaluate", "simulate", "train", "methods", "sensors")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def weights_available() -> bool:
    from dcstsf.demo import DEMO_HS_SENSOR, DEMO_MS_BANDS, DEMO_MS_SENSOR, DEMO_RATIO, _dcstsf_available
    from dcstsf.operators import ObservationModel

    model = ObservationModel.from_sensors(DEMO_HS_SENSOR, DEMO_MS_SENSOR, ms_bands=list(DEMO_MS_BANDS), ratio=DEMO_RATIO)
    return _dcstsf_available(model) is None


@pytest.fixture(scope="module")
def real_hs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small GeoTIFF cube with wavelength band tags, written by dcstsf.io."""
    path = tmp_path_factory.mktemp("src") / "scene.tif"
    return write_raster(synthetic_scene(ny=30, nx=30, nb=50), path)


@pytest.fixture(scope="module")
def case_dir(real_hs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("case") / "case"
    code = main(["-q", "simulate", str(real_hs), "-o", str(out), "--ms-bands", "B02,B03,B04,B08", "--seed", "2"])
    assert code == 0
    return out


# ------------------------------------------------------------------------------------------ help
def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name in SUBCOMMANDS:
        assert name in out
    assert "dcstsf demo" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"dcstsf {__version__}"
    code, out, _ = run(capsys)
    assert code == 0 and "usage" in out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert out.startswith("usage: dcstsf " + command)
    assert "--verbose" in out and "--quiet" in out
    # every option has a help text
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]  # type: ignore[union-attr]
    for action in sub._actions:
        assert action.help, f"{command}: {action.option_strings or action.dest} has no help"


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "fuse", "only_one.tif")
    assert code == 2 and "required" in err
    code, _, err = run(capsys, "-v", "-q", "methods")
    assert code == 2
    code, _, err = run(capsys, "fuse", "a.tif", "b.tif", "c.tif", "-o", "x.tif", "--memory-limit", "3 lots")
    assert code == 2 and "--memory-limit" in err and "3GiB" in err


def test_methods_and_sensors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "methods")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("bicubic ") for line in lines)
    assert any(line.startswith("dcstsf (default)") for line in lines)
    assert "reference:" in out
    code, out, _ = run(capsys, "sensors")
    assert code == 0
    assert "zy1-02d-ahsi" in out and "166 bands" in out and "sentinel-2a" in out and "B8A" in out


# ------------------------------------------------------------------------------------------ simulate
def test_simulate_writes_case(case_dir: Path) -> None:
    for name in ("hs_t1.tif", "ms_t1.tif", "ms_t2.tif", "hs_t2_truth.tif", "hs_t1_truth.tif", "case.json"):
        assert (case_dir / name).is_file(), name
    meta = json.loads((case_dir / "case.json").read_text())
    assert "SIMULATED" in meta["protocol"] and meta["seed"] == 2 and meta["change"] == "mixed"

    hs, ms = open_raster(case_dir / "hs_t1.tif"), open_raster(case_dir / "ms_t1.tif")
    assert hs.sizes["band"] == 166 and hs.shape[1:] == (10, 10)
    assert ms.shape == (4, 30, 30) and list(ms["band"].values) == ["B02", "B03", "B04", "B08"]


def test_simulate_bad_inputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    da = synthetic_scene(ny=12, nx=12, nb=5).drop_vars(["wavelength", "fwhm"])
    plain = write_raster(da, tmp_path / "plain.tif")
    code, out, err = run(capsys, "simulate", str(plain), "-o", str(tmp_path / "c"))
    assert code == 2
    assert err.startswith("dcstsf: error:") and "wavelength" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = run(capsys, "simulate", str(tmp_path / "nope.tif"), "-o", str(tmp_path / "c"))
    assert code == 2 and "not found" in err
    # -v adds the traceback
    code, _, err = run(capsys, "-v", "simulate", str(tmp_path / "nope.tif"), "-o", str(tmp_path / "c"))
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("dcstsf: error:")
    code, _, err = run(capsys, "simulate", str(plain), "-o", str(tmp_path / "c"), "--change", "meteor")
    assert code == 2


def test_simulate_with_a_declared_nodata_value(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    da = synthetic_scene(ny=24, nx=24)
    da.values[:, :3, :] = -9999.0  # a fill value the file does not declare
    path = write_raster(da, tmp_path / "filled.tif")
    code, _, err = run(capsys, "simulate", str(path), "-o", str(tmp_path / "c"))
    assert code == 2 and "-9999" in err and "--nodata -9999" in err, err
    code, _, err = run(capsys, "-q", "simulate", str(path), "-o", str(tmp_path / "c"), "--nodata", "-9999")
    assert code == 0, err
    truth = open_raster(tmp_path / "c" / "hs_t2_truth.tif").values
    assert np.isnan(truth[:, :3]).all() and np.isfinite(truth[:, 3:]).all()


# ------------------------------------------------------------------------------------------ fuse + evaluate
class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.srcs.append(str(dict(attrs).get("src")))


def test_fuse_then_evaluate(capsys: pytest.CaptureFixture[str], case_dir: Path, tmp_path: Path) -> None:
    fused = tmp_path / "bicubic.tif"
    code, out, err = run(capsys, "-q", "fuse", str(case_dir / "hs_t1.tif"), str(case_dir / "ms_t1.tif"),
                         str(case_dir / "ms_t2.tif"), "-o", str(fused), "--method", "bicubic", "--chunk", "15",
                         "--memory-limit", "2GiB")
    assert code == 0, err
    assert fused.is_file() and str(fused) in out
    # existing output without --overwrite: a one-line error, exit code 2
    code, _, err = run(capsys, "fuse", str(case_dir / "hs_t1.tif"), str(case_dir / "ms_t1.tif"),
                       str(case_dir / "ms_t2.tif"), "-o", str(fused), "--method", "bicubic")
    assert code == 2 and err.startswith("dcstsf: error:") and len(err.strip().splitlines()) == 1
    # the output codec is the user's: DEFLATE with the floating-point predictor here
    small = tmp_path / "small.tif"
    code, _, err = run(capsys, "-q", "fuse", str(case_dir / "hs_t1.tif"), str(case_dir / "ms_t1.tif"),
                       str(case_dir / "ms_t2.tif"), "-o", str(small), "--method", "bicubic", "--compress", "deflate",
                       "--predictor", "float")
    assert code == 0, err
    import rasterio

    with rasterio.open(small) as src:
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["COMPRESSION"] == "DEFLATE" and structure["PREDICTOR"] == "3"
    code, _, err = run(capsys, "fuse", str(case_dir / "hs_t1.tif"), str(case_dir / "ms_t1.tif"),
                       str(case_dir / "ms_t2.tif"), "-o", str(tmp_path / "raw.tif"), "--compress", "none",
                       "--predictor", "float")
    assert code == 2 and "needs a codec" in err and not (tmp_path / "raw.tif").exists()

    report = tmp_path / "report"
    code, out, err = run(capsys, "-q", "evaluate", str(fused), str(case_dir / "hs_t2_truth.tif"), "--case",
                         str(case_dir), "-o", str(report))
    assert code == 0, err
    assert str((report / "report.html").resolve()) in out
    assert "bicubic" in out and "PSNR(dB)" in out
    data = json.loads((report / "metrics.json").read_text())
    assert "bicubic" in data["methods"] and "no_reference" in data["methods"]["bicubic"]
    assert "SIMULATED" in data["protocol"]
    p = _Imgs()
    p.feed((report / "report.html").read_text())
    assert p.srcs and all(s.startswith("data:image/png;base64,") for s in p.srcs)

    # no truth: every file is a prediction; needs the inputs
    code, out, err = run(capsys, "-q", "evaluate", str(fused), "--no-truth", "--inputs", str(case_dir / "hs_t1.tif"),
                         str(case_dir / "ms_t1.tif"), str(case_dir / "ms_t2.tif"), "-o", str(tmp_path / "noref"))
    assert code == 0, err
    assert "QNR" in out
    data = json.loads((tmp_path / "noref" / "metrics.json").read_text())
    assert "global" not in data["methods"]["bicubic"]
    code, _, err = run(capsys, "evaluate", str(fused), "--no-truth", "-o", str(tmp_path / "x"))
    assert code == 2 and "--inputs" in err


def test_method_spelt_as_in_the_paper(capsys: pytest.CaptureFixture[str], case_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.tif"
    code, _, err = run(capsys, "-q", "fuse", str(case_dir / "hs_t1.tif"), str(case_dir / "ms_t1.tif"),
                       str(case_dir / "ms_t2.tif"), "-o", str(out), "--method", "DC-STSF", "--adapt-steps", "1")
    assert code == 0, err
    assert open_raster(out).attrs["method"] == "dcstsf"


def test_evaluate_bad_inputs(capsys: pytest.CaptureFixture[str], case_dir: Path, tmp_path: Path) -> None:
    truth = str(case_dir / "hs_t2_truth.tif")
    code, _, err = run(capsys, "evaluate", str(tmp_path / "missing.tif"), truth, "-o", str(tmp_path / "r"))
    assert code == 2 and err.startswith("dcstsf: error:") and "not found" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "evaluate", truth, "-o", str(tmp_path / "r"))
    assert code == 2 and "truth" in err
    # a prediction on another grid (the HS(t1) file) against the fine truth
    code, _, err = run(capsys, "evaluate", str(case_dir / "hs_t1.tif"), truth, "-o", str(tmp_path / "r"))
    assert code == 2 and "pixels" in err
    code, _, err = run(capsys, "evaluate", truth, truth, "--case", str(tmp_path), "-o", str(tmp_path / "r"))
    assert code == 2 and "case" in err
    code, _, err = run(capsys, "evaluate", truth, truth, "--names", "a,b", "-o", str(tmp_path / "r"))
    assert code == 2 and "--names" in err


@pytest.mark.filterwarnings("default::UserWarning")  # as on the command line: logged, not raised
def test_evaluate_a_rioxarray_written_prediction_with_an_empty_band(
    capsys: pytest.CaptureFixture[str], case_dir: Path, tmp_path: Path
) -> None:
    # a third-party flow: read the truth with rioxarray, leave a band empty, write it with to_raster
    truth = case_dir / "hs_t2_truth.tif"
    pred = rioxarray.open_rasterio(truth).load()
    pred.values[5] = np.nan
    pred.rio.to_raster(tmp_path / "pred.tif")
    code, out, err = run(capsys, "evaluate", str(tmp_path / "pred.tif"), str(truth), "--case", str(case_dir),
                         "-o", str(tmp_path / "r"))
    assert code == 0, err
    # the file is read several times; its metadata warning is shown once
    assert err.count("hold one value for") == 1
    assert "pred holds no finite value in 1 scored band(s)" in err
    data = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert data["methods"]["pred"]["global"]["psnr"] > 60


# ------------------------------------------------------------------------------------------ demo
def test_demo_with_bicubic(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "demo"
    code, out, err = run(capsys, "-q", "demo", "-o", str(out_dir), "--methods", "bicubic")
    assert code == 0, err
    assert (out_dir / "case" / "case.json").is_file()
    assert (out_dir / "fused" / "bicubic.tif").is_file()
    html = (out_dir / "report" / "report.html").resolve()
    assert html.is_file()
    assert f"Report: {html}" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    assert lines[header].split() == ["method", "PSNR(dB)", "SAM(deg)", "ERGAS", "SSIM", "time(s)"]
    row = lines[header + 2].split()
    assert row[0] == "bicubic"
    data = json.loads((out_dir / "report" / "metrics.json").read_text())
    g = data["methods"]["bicubic"]["global"]
    assert row[1] == f"{g['psnr']:.2f}" and row[3] == f"{g['ergas']:.3f}"
    assert data["conventions"]["ratio"] == 3
    assert "SIMULATED" in data["protocol"]
    from dcstsf.io import open_raster

    fused = open_raster(out_dir / "fused" / "bicubic.tif")
    assert fused.shape == (166, 126, 63)
    # a second run needs --overwrite
    code, _, err = run(capsys, "-q", "demo", "-o", str(out_dir), "--methods", "bicubic")
    assert code == 2 and "--overwrite" in err


def test_demo_unknown_method(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "demo", "-o", str(tmp_path / "d"), "--methods", "nope")
    assert code == 2 and "unknown method" in err
    assert not (tmp_path / "d").exists()


def test_demo_dcstsf_without_weights(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if weights_available():
        pytest.skip("DC-STSF weights are installed")
    code, _, err = run(capsys, "demo", "-o", str(tmp_path / "d"), "--methods", "dcstsf")
    assert code == 2 and "weights" in err


@pytest.mark.slow
def test_demo_all_methods(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from dcstsf.methods import available_methods

    code, out, err = run(capsys, "-q", "demo", "-o", str(tmp_path / "demo"))
    assert code == 0, err
    data: dict[str, Any] = json.loads((tmp_path / "demo" / "report" / "metrics.json").read_text())
    expected = set(available_methods()) - (set() if weights_available() else {"dcstsf"})
    assert set(data["methods"]) == expected
    if weights_available():
        assert list(data["methods"])[0] == "dcstsf"
        assert out.splitlines()[[i for i, x in enumerate(out.splitlines()) if x.startswith("method")][0] + 2].startswith("dcstsf")
    else:
        assert "NOT run" in err
        assert any("NOT run" in n for n in data["notes"])
    assert np.isfinite([m["global"]["psnr"] for m in data["methods"].values()]).all()


def test_dcstsf_fuses_a_custom_sensor_pair(capsys: pytest.CaptureFixture[str], case_dir: Path, tmp_path: Path) -> None:
    """An HS sensor given only by its wavelengths, with the four 10 m Sentinel-2 bands: the default method
    fuses with the shipped 4-band weights (the learned units work on the scene's coefficients, whatever the HS
    band count), and the output says with what."""
    from dcstsf.io import open_raster

    out = tmp_path / "dcstsf.tif"
    code, _, err = run(capsys, "-q", "fuse", str(case_dir / "hs_t1.tif"), str(case_dir / "ms_t1.tif"),
                       str(case_dir / "ms_t2.tif"), "-o", str(out))
    assert code == 0, err
    attrs = open_raster(out, chunks={}).attrs
    from dcstsf.models.checkpoint import default_weights

    shipped = default_weights(ms_bands=["B02", "B03", "B04", "B08"], hs_sensor="custom", ms_sensor="sentinel-2a", ratio=3)
    assert attrs["method"] == "dcstsf" and attrs["weights_sha256"] == shipped.sha256
    assert np.isfinite(open_raster(out).values).all()


def test_dcstsf_local_map_option(capsys: pytest.CaptureFixture[str], case_dir: Path, tmp_path: Path) -> None:
    """``--local-map`` reaches the network (its configuration is in the output's method identity), changes
    the result, and bad values or another method get a usage error."""
    from dcstsf.io import open_raster

    inputs = [str(case_dir / n) for n in ("hs_t1.tif", "ms_t1.tif", "ms_t2.tif")]
    plain, local = tmp_path / "plain.tif", tmp_path / "local.tif"
    assert run(capsys, "-q", "fuse", *inputs, "-o", str(plain))[0] == 0
    code, _, err = run(capsys, "-q", "fuse", *inputs, "-o", str(local), "--local-map", "3:0.03")
    assert code == 0, err
    identity = json.loads(open_raster(local, chunks={}).attrs["method_identity"])
    assert identity["config"]["local_map_radius"] == 3 and identity["config"]["local_map_ridge"] == 0.03
    assert not np.allclose(open_raster(plain).values, open_raster(local).values, atol=1e-6)
    for bad in ("-1", "3:0", "x", "65"):
        code, _, err = run(capsys, "fuse", *inputs, "-o", str(tmp_path / "bad.tif"), "--local-map", bad)
        assert code == 2 and "RADIUS[:RIDGE]" in err and not (tmp_path / "bad.tif").exists()
    code, _, err = run(capsys, "fuse", *inputs, "-o", str(tmp_path / "bic.tif"), "--method", "bicubic",
                       "--local-map", "3")
    assert code == 2 and "--local-map" in err


def test_dcstsf_ms_noise_option(capsys: pytest.CaptureFixture[str], case_dir: Path, tmp_path: Path) -> None:
    """``--ms-noise-steps`` reaches the network (in the output's method identity); bad values or another
    method get a usage error and write nothing."""
    from dcstsf.io import open_raster

    inputs = [str(case_dir / n) for n in ("hs_t1.tif", "ms_t1.tif", "ms_t2.tif")]
    out = tmp_path / "noise.tif"
    code, _, err = run(capsys, "-q", "fuse", *inputs, "-o", str(out), "--ms-noise-steps", "2")
    assert code == 0, err
    identity = json.loads(open_raster(out, chunks={}).attrs["method_identity"])
    assert identity["config"]["ms_noise_steps"] == 2
    assert np.isfinite(open_raster(out).values).all()
    for bad in ("-1", "9", "x"):
        code, _, err = run(capsys, "fuse", *inputs, "-o", str(tmp_path / "bad.tif"), "--ms-noise-steps", bad)
        assert code == 2 and "steps from 0 to 8" in err and not (tmp_path / "bad.tif").exists()
    code, _, err = run(capsys, "fuse", *inputs, "-o", str(tmp_path / "bic.tif"), "--method", "bicubic",
                       "--ms-noise-steps", "2")
    assert code == 2 and "--ms-noise-steps" in err


def test_local_map_is_a_fuse_option_only(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Training reads its architecture from the config: ``train --local-map`` is a usage error, not an
    option silently ignored."""
    code, _, err = run(capsys, "train", "--config", str(tmp_path / "none.yaml"), "--local-map", "3")
    assert code == 2 and "unrecognized arguments: --local-map" in err

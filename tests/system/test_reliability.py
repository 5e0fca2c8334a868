"""Reliability: bad inputs, faults (SIGKILL, write errors, damaged weights).

Every case here is listed in ``docs/reliability.md`` with the message the user sees. Bad inputs are
tried through the command line (exit code 2, one line ``dcstsf: error: ...`` naming the file and the fix,
no output written) and, where the Python API behaves differently, through the API. Cases already
covered elsewhere are referenced in the record rather than repeated (``tests/io/``, ``tests/engine/``,
``tests/models/``). Faults met by real processes on real file systems are in ``test_faults.py``.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from scipy.ndimage import gaussian_filter

from dcstsf import sensors
from dcstsf.cli import main
from dcstsf.engine import fuse, validate_inputs, work_dir_for
from dcstsf.errors import DcstsfInputError, WeightsError
from dcstsf.io import open_raster, write_raster
from dcstsf.methods import fuse_arrays
from dcstsf.metrics import psnr, rmse
from dcstsf.operators import ObservationModel
from tests.io.rasters import make_tif

N_HS = 12
WL = np.linspace(420.0, 2400.0, N_HS)
HS_NAMES = [f"hs_{i:02d}" for i in range(N_HS)]
MS_BANDS = ["B02", "B03", "B04", "B08"]
RATIO = 3
CRS = "EPSG:32633"
X0, Y0 = 500_000.0, 4_000_000.0
HC = WC = 8  # coarse pixels: 8 x 8 HS, 24 x 24 MS


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------


def _cube(
    n: int,
    h: int,
    w: int,
    res: float,
    names: list[str],
    *,
    wl: np.ndarray | None = None,
    seed: int = 0,
    crs: str | None = CRS,
    x0: float = X0,
    y0: float = Y0,
) -> xr.DataArray:
    """A smooth reflectance cube in [0.05, 0.6] on a north-up UTM grid."""
    rng = np.random.default_rng(seed)
    data = np.stack([gaussian_filter(rng.random((h, w)), 1.5) for _ in range(n)])
    data = (0.05 + 0.55 * (data - data.min()) / max(float(np.ptp(data)), 1e-6)).astype(np.float32)
    coords: dict[str, Any] = {
        "band": names,
        "y": y0 - res * (np.arange(h) + 0.5),
        "x": x0 + res * (np.arange(w) + 0.5),
    }
    if wl is not None:
        coords["wavelength"] = ("band", np.asarray(wl, dtype=np.float64))
    da = xr.DataArray(data, dims=("band", "y", "x"), coords=coords)
    if crs is not None:
        da = da.rio.write_crs(crs)
    return da.rio.write_transform(from_origin(x0, y0, res, res))


def hs_cube(hc: int = HC, wc: int = WC, **kw: Any) -> xr.DataArray:
    kw.setdefault("wl", WL)
    return _cube(N_HS, hc, wc, 30.0, HS_NAMES, **kw)


def ms_cube(h: int = HC * RATIO, w: int = WC * RATIO, *, seed: int = 1, **kw: Any) -> xr.DataArray:
    return _cube(len(MS_BANDS), h, w, 10.0, MS_BANDS, seed=seed, **kw)


@pytest.fixture(scope="module")
def scene() -> dict[str, xr.DataArray]:
    return {"hs": hs_cube(), "ms1": ms_cube(seed=1), "ms2": ms_cube(seed=2)}


@pytest.fixture(scope="module")
def files(scene: dict[str, xr.DataArray], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    return {k: write_raster(v, d / f"{k}.tif") for k, v in scene.items()}


@pytest.fixture(scope="module")
def reference(scene: dict[str, xr.DataArray]) -> np.ndarray:
    """The bicubic fusion of the good inputs (what the CLI must produce when it succeeds)."""
    return fuse(scene["hs"], scene["ms1"], scene["ms2"], method="bicubic").values


def _write_tif(path: Path, data: np.ndarray, *, transform: Any, crs: str | None = CRS, **kw: Any) -> Path:
    """A GeoTIFF written with rasterio directly (for encodings write_raster does not produce)."""
    return make_tif(path, data, transform=transform, crs=crs, **kw)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fuse_cli(capsys: pytest.CaptureFixture[str], hs: Path, ms1: Path, ms2: Path, out: Path,
             *extra: Any) -> tuple[int, str, str]:
    return cli(capsys, "-q", "fuse", hs, ms1, ms2, "-o", out, "--method", "bicubic", *extra)


def assert_clean_error(err: str, *words: str, path: Path | None = None) -> str:
    """One line ``dcstsf: error: ...`` without traceback, holding ``words`` and the file's path."""
    assert err.startswith("dcstsf: error: "), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"
    if path is not None:
        assert str(path) in err, f"{path} not named in {err!r}"
    return err


def assert_no_output(out: Path) -> None:
    """Nothing under the final name, no temporary next to it, no work directory."""
    assert not out.exists(), f"{out} was written"
    left = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}") or p.name.startswith(out.name)]
    assert left == [], left


def leftovers(out: Path) -> list[str]:
    """Temporaries of ``out`` (``.NAME.partial-PID``, ...) next to it."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}"))


# --------------------------------------------------------------------------------------------------
# 1. bad input
# --------------------------------------------------------------------------------------------------


def test_mismatched_crs(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path) -> None:
    hs = write_raster(hs_cube(crs="EPSG:32650"), tmp_path / "hs_utm50.tif")
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, hs, files["ms1"], files["ms2"], out)
    assert code == 2
    assert_clean_error(err, "different CRS", "EPSG:32650", "EPSG:32633", "--align reproject", path=hs)
    assert_no_output(out)
    # A file with no CRS next to georeferenced ones is refused too (API: the message says how to add one).
    nocrs = write_raster(hs_cube(crs=None), tmp_path / "hs_nocrs.tif")
    code, _, err = fuse_cli(capsys, nocrs, files["ms1"], files["ms2"], out)
    assert code == 2
    assert_clean_error(err, "no CRS", path=nocrs)
    assert_no_output(out)


def test_non_integer_ratio(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path) -> None:
    hs = write_raster(_cube(N_HS, 9, 9, 25.0, HS_NAMES, wl=WL), tmp_path / "hs_25m.tif")
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, hs, files["ms1"], files["ms2"], out)
    assert code == 2
    assert_clean_error(err, "25 x 25", "10 x 10", "2.5", "rio.reproject", path=hs)
    assert_no_output(out)


def test_unexpected_ratio(capsys: pytest.CaptureFixture[str], files: dict[str, Path], scene: dict[str, xr.DataArray],
                          tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, files["hs"], files["ms1"], files["ms2"], out, "--ratio", "2")
    assert code == 2
    assert_clean_error(err, "ratio=2", "give 3", "drop ratio=")
    assert_no_output(out)
    # Not an integer at all: a usage error before anything is read.
    code, _, err = fuse_cli(capsys, files["hs"], files["ms1"], files["ms2"], out, "--ratio", "2.5")
    assert code == 2 and "--ratio" in err and "positive integer" in err
    assert_no_output(out)
    for bad in (2.5, 0, -3):
        with pytest.raises(DcstsfInputError, match="ratio must be a positive integer"):
            validate_inputs(scene["hs"], scene["ms1"], scene["ms2"], ratio=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("which", "make", "words"),
    [
        ("hs", lambda: hs_cube(x0=X0 + 5.0), ["corners do not coincide", "0.5", "MS pixel corners", "--align reproject"]),
        ("ms2", lambda: ms_cube(seed=2, y0=Y0 + 10.0), ["different grids", "MS(t2)", "--align reproject"]),
        ("ms2", lambda: ms_cube(21, 24, seed=2), ["21 x 24", "share one grid", "--align reproject"]),
    ],
    ids=["hs-half-pixel-shift", "ms2-shifted", "ms2-other-shape"],
)
def test_misaligned_grids(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path, which: str,
                          make: Any, words: list[str]) -> None:
    bad = write_raster(make(), tmp_path / f"{which}_bad.tif")
    args = {**files, which: bad}
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, args["hs"], args["ms1"], args["ms2"], out)
    assert code == 2
    assert_clean_error(err, *words, path=bad)
    assert_no_output(out)


def test_misaligned_grids_reproject_is_the_way_out(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                                   tmp_path: Path) -> None:
    """The fix the message names works: --align reproject fuses the shifted MS(t2)."""
    bad = write_raster(ms_cube(seed=2, x0=X0 + 5.0), tmp_path / "ms2_shift.tif")
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, files["hs"], files["ms1"], bad, out, "--align", "reproject")
    assert code == 0, err
    assert open_raster(out).shape == (N_HS, 24, 24)


@pytest.mark.parametrize(
    ("which", "extra", "words"),
    [
        ("", ["--hs-sensor", "zy1-02d-ahsi"], ["has 12 bands", "'zy1-02d-ahsi' has 166", "--hs-sensor"]),
        ("", ["--ms-bands", "B02,B03,B04,B08,B11"], ["5 MS bands were declared", "has 4", "--ms-bands"]),
        ("ms2", [], ["MS(t1)", "has 4 bands", "MS(t2)", "has 3"]),
    ],
    ids=["hs-vs-declared-sensor", "ms-vs-declared-bands", "ms-dates-differ"],
)
def test_band_count_not_matching_the_sensor(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                            tmp_path: Path, which: str, extra: list[str], words: list[str]) -> None:
    args = dict(files)
    if which:
        args[which] = write_raster(_cube(3, 24, 24, 10.0, MS_BANDS[:3], seed=2), tmp_path / "ms2_3bands.tif")
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, args["hs"], args["ms1"], args["ms2"], out, *extra)
    assert code == 2
    named = args["ms2"] if which else (files["hs"] if "--hs-sensor" in extra else files["ms1"])
    assert_clean_error(err, *words, path=named)
    assert_no_output(out)


@pytest.mark.parametrize(
    ("wl", "words"),
    [
        (None, ["12 bands and no wavelength coordinates", "--hs-sensor", "'wavelength'"]),
        (WL[::-1].copy(), ["out of order", "Reorder the bands"]),
        (np.r_[WL[:5], WL[4], WL[6:]], ["bands 5 and 6 have the same wavelength"]),
    ],
    ids=["missing", "reversed", "duplicate"],
)
def test_wavelengths_missing_or_out_of_order(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                             tmp_path: Path, wl: np.ndarray | None, words: list[str]) -> None:
    hs = write_raster(hs_cube(wl=wl) if wl is not None else hs_cube(wl=None), tmp_path / "hs_wl.tif")
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, hs, files["ms1"], files["ms2"], out)
    assert code == 2
    assert_clean_error(err, *words, path=hs)
    assert_no_output(out)


def test_missing_wavelengths_fixed_by_naming_the_sensor(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                                        tmp_path: Path) -> None:
    """A 166-band cube without wavelengths is taken as AHSI (documented default); others need --hs-sensor."""
    hs = write_raster(_cube(166, HC, WC, 30.0, [f"b{i}" for i in range(166)]), tmp_path / "ahsi_nowl.tif")
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, hs, files["ms1"], files["ms2"], out)
    assert code == 0, err
    assert open_raster(out).sizes["band"] == 166


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--hs-sensor", "ahsi-typo"], ["unknown sensor 'ahsi-typo'", "zy1-02d-ahsi", "from_wavelengths"]),
        (["--ms-sensor", "landsat-99"], ["unknown sensor 'landsat-99'", "sentinel-2a"]),
        (["--ms-bands", "B02,B03,B04,B99"], ["['B99'] are not bands of 'sentinel-2a'", "B8A"]),
    ],
    ids=["hs-sensor", "ms-sensor", "ms-band"],
)
def test_unknown_sensor_name(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
                             extra: list[str], words: list[str]) -> None:
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, files["hs"], files["ms1"], files["ms2"], out, *extra)
    assert code == 2
    assert_clean_error(err, *words)
    assert_no_output(out)


def test_ms_band_names_missing(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path) -> None:
    names = ["band_1", "band_2", "band_3", "band_4"]
    ms1 = write_raster(_cube(4, 24, 24, 10.0, names, seed=1), tmp_path / "ms1_plain.tif")
    ms2 = write_raster(_cube(4, 24, 24, 10.0, names, seed=2), tmp_path / "ms2_plain.tif")
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, files["hs"], ms1, ms2, out)
    assert code == 2
    assert_clean_error(err, "not sentinel-2a band names", "--ms-bands", path=ms1)
    assert_no_output(out)
    code, _, err = fuse_cli(capsys, files["hs"], ms1, ms2, out, "--ms-bands", ",".join(MS_BANDS))
    assert code == 0, err


# ----------------------------------------------------------------------------------------- nodata


def _nodata_scene(tmp_path: Path, scene: dict[str, xr.DataArray]) -> tuple[dict[str, Path], np.ndarray]:
    """Inputs with NaN (HS), +Inf/-Inf (MS t1) and a declared nodata value (MS t2); the expected mask."""
    hs = scene["hs"].copy(deep=True)
    hs[:, 2, 5] = np.nan  # coarse pixel (2, 5) -> fine rows 6:9, columns 15:18
    hs[3, 6, 1] = np.inf  # one band is enough
    ms1 = scene["ms1"].copy(deep=True)
    ms1[1, 10, 10] = np.inf
    ms1[:, 20, 3] = -np.inf
    ms2 = scene["ms2"].values.copy()
    ms2[2, 0:2, 22:24] = -9999.0
    expect = np.zeros((24, 24), bool)
    expect[6:9, 15:18] = expect[18:21, 3:6] = True
    expect[10, 10] = expect[20, 3] = True
    expect[0:2, 22:24] = True
    paths = {
        "hs": write_raster(hs, tmp_path / "hs_nan.tif"),
        "ms1": write_raster(ms1, tmp_path / "ms1_inf.tif"),
        "ms2": _write_tif(tmp_path / "ms2_nodata.tif", ms2, transform=scene["ms2"].rio.transform(), nodata=-9999.0,
                          descriptions=MS_BANDS),
    }
    return paths, expect


def test_nan_inf_and_nodata_propagate_to_the_output(capsys: pytest.CaptureFixture[str],
                                                    scene: dict[str, xr.DataArray], tmp_path: Path) -> None:
    paths, expect = _nodata_scene(tmp_path, scene)
    # The readers turn every kind of nodata into NaN.
    assert np.isnan(open_raster(paths["ms1"]).values[1, 10, 10])
    assert np.isnan(open_raster(paths["ms2"]).values[2, 0, 22])
    for method in ("bicubic", "two-step"):
        out = tmp_path / f"{method}.tif"
        code, _, err = cli(capsys, "-q", "fuse", paths["hs"], paths["ms1"], paths["ms2"], "-o", out,
                           "--method", method, "--chunk", "48")
        assert code == 0, err
        fused = open_raster(out).values
        np.testing.assert_array_equal(np.isnan(fused).any(axis=0), expect)  # nodata where any input is
        np.testing.assert_array_equal(np.isnan(fused).all(axis=0), expect)  # in every band
        assert np.isfinite(fused[:, ~expect]).all()  # and nothing else: no Inf, no NaN spreading


def test_metrics_ignore_nodata(capsys: pytest.CaptureFixture[str], scene: dict[str, xr.DataArray],
                               reference: np.ndarray, tmp_path: Path) -> None:
    paths, expect = _nodata_scene(tmp_path, scene)
    out = tmp_path / "out.tif"
    code, _, err = cli(capsys, "-q", "fuse", paths["hs"], paths["ms1"], paths["ms2"], "-o", out, "--method", "bicubic")
    assert code == 0, err
    fused = open_raster(out).values
    truth = reference + 0.01
    with_nan = psnr(fused, truth)
    assert np.isfinite(with_nan)
    assert with_nan == pytest.approx(psnr(np.where(expect, 0.0, fused), truth, mask=~expect))
    assert rmse(fused, truth) == pytest.approx(rmse(fused[:, ~expect], truth[:, ~expect]))


def test_inf_in_memory_is_nodata(scene: dict[str, xr.DataArray]) -> None:
    """Python API: +/-Inf in the arrays is masked exactly like NaN (and does not spread through the blur)."""
    hs_nan, hs_inf = scene["hs"].copy(deep=True), scene["hs"].copy(deep=True)
    hs_nan[:, 2, 2] = np.nan
    hs_inf[:, 2, 2] = np.inf
    ms_nan, ms_inf = scene["ms1"].copy(deep=True), scene["ms1"].copy(deep=True)
    ms_nan[1, 12, 20] = np.nan
    ms_inf[1, 12, 20] = -np.inf
    for method in ("bicubic", "two-step"):
        a = fuse(hs_nan, ms_nan, scene["ms2"], method=method, chunk=9).values
        b = fuse(hs_inf, ms_inf, scene["ms2"], method=method, chunk=9).values
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        assert np.isnan(b).any(axis=0).sum() == 9 + 1 and not np.isinf(b).any()
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_all_nodata_input_is_a_clear_error(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                           tmp_path: Path) -> None:
    empty = write_raster(ms_cube(seed=1) * np.nan, tmp_path / "ms1_all_nan.tif")
    out = tmp_path / "out.tif"
    code, _, err = cli(capsys, "-q", "fuse", files["hs"], empty, files["ms2"], "-o", out, "--method", "two-step")
    assert code == 2
    assert_clean_error(err, "valid coarse pixels", "nodata")
    assert_no_output(out)


# ----------------------------------------------------------------------------------------- scaling


def test_integer_inputs_without_scale(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                      scene: dict[str, xr.DataArray], tmp_path: Path) -> None:
    tr = scene["ms1"].rio.transform()
    ms1 = _write_tif(tmp_path / "ms1_dn.tif", np.rint(scene["ms1"].values * 10000).astype(np.uint16), transform=tr,
                     descriptions=MS_BANDS)
    ms2 = _write_tif(tmp_path / "ms2_dn.tif", np.rint(scene["ms2"].values * 10000).astype(np.uint16), transform=tr,
                     descriptions=MS_BANDS)
    out = tmp_path / "out.tif"
    code, _, err = fuse_cli(capsys, files["hs"], ms1, ms2, out)
    assert code == 2
    assert_clean_error(err, "integer data (uint16) with no reflectance scale", "--scale", path=ms1)
    assert_no_output(out)
    # The fix the message gives: the scale on the command line.
    code, _, err = fuse_cli(capsys, files["hs"], ms1, ms2, out, "--ms-scale", "0.0001")
    assert code == 0, err
    ref = tmp_path / "ref.tif"
    assert fuse_cli(capsys, *files.values(), ref)[0] == 0
    np.testing.assert_allclose(open_raster(out).values, open_raster(ref).values, atol=1e-4)


def _s2_l2a(path: Path, reflectance: np.ndarray, transform: Any, *, baseline: str, add_offset: bool) -> Path:
    """Sentinel-2 L2A-style uint16: DN = reflectance * 10^4 (+ 1000 from baseline 04.00), 0 = nodata."""
    shift = 1000 if baseline >= "04.00" else 0
    dn = np.rint(reflectance * 10000 + shift).astype(np.uint16)
    dn[:, 0, 0] = 0
    tags = {"BOA_QUANTIFICATION_VALUE": "10000", "PROCESSING_BASELINE": baseline}
    band_tags = [{"BOA_ADD_OFFSET": "-1000"} for _ in MS_BANDS] if add_offset else None
    return _write_tif(path, dn, transform=transform, tags=tags, band_tags=band_tags, descriptions=MS_BANDS)


def test_sentinel2_l2a_offset_from_baseline_04(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                               scene: dict[str, xr.DataArray], tmp_path: Path) -> None:
    tr = scene["ms1"].rio.transform()
    ref = tmp_path / "ref.tif"
    assert fuse_cli(capsys, *files.values(), ref)[0] == 0
    expected = open_raster(ref).values
    expected[:, 0, 0] = np.nan  # DN 0 is nodata in L2A

    def run(ms1: Path, ms2: Path, name: str, *extra: str) -> tuple[int, str, Path]:
        out = tmp_path / name
        code, _, err = fuse_cli(capsys, files["hs"], ms1, ms2, out, *extra)
        return code, err, out

    # 04.00 with BOA_ADD_OFFSET in the metadata: the -1000 DN offset is applied.
    new1 = _s2_l2a(tmp_path / "n1.tif", scene["ms1"].values, tr, baseline="04.00", add_offset=True)
    new2 = _s2_l2a(tmp_path / "n2.tif", scene["ms2"].values, tr, baseline="04.00", add_offset=True)
    code, err, out = run(new1, new2, "new.tif")
    assert code == 0, err
    np.testing.assert_allclose(open_raster(out).values, expected, atol=2e-4)
    # Before 04.00 there is no offset (even if a stray BOA_ADD_OFFSET is present).
    old1 = _s2_l2a(tmp_path / "o1.tif", scene["ms1"].values, tr, baseline="03.01", add_offset=True)
    old2 = _s2_l2a(tmp_path / "o2.tif", scene["ms2"].values, tr, baseline="03.01", add_offset=True)
    code, err, out = run(old1, old2, "old.tif")
    assert code == 0, err
    np.testing.assert_allclose(open_raster(out).values, expected, atol=2e-4)
    # 04.00 but the offset is not in the file: refuse to guess, name the file and the option ...
    bare1 = _s2_l2a(tmp_path / "b1.tif", scene["ms1"].values, tr, baseline="04.00", add_offset=False)
    bare2 = _s2_l2a(tmp_path / "b2.tif", scene["ms2"].values, tr, baseline="04.00", add_offset=False)
    code, err, out = run(bare1, bare2, "bare.tif")
    assert code == 2
    assert_clean_error(err, "processing baseline 4.00", "BOA_ADD_OFFSET", "--offset", path=bare1)
    assert_no_output(out)
    # ... and that option exists and works.
    code, err, out = run(bare1, bare2, "bare.tif", "--ms-offset", "-0.1")
    assert code == 0, err
    np.testing.assert_allclose(open_raster(out).values, expected, atol=2e-4)


# ----------------------------------------------------------------------------------------- unreadable files


def _damaged(kind: str, good: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    p = tmp_path / f"{kind}.tif"
    if kind == "missing":
        return p, ["file not found"]
    if kind == "empty":
        p.write_bytes(b"")
        return p, ["empty (0 bytes)"]
    if kind == "text":
        p.write_text("this is not a raster\n" * 50)
        return p, ["not a readable raster", "GeoTIFF"]
    if kind == "truncated":
        p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        return p, ["truncated"]
    if kind == "directory":
        p.mkdir()
        (p / "x.txt").write_text("x")
        return p, ["not a readable raster"]
    if kind == "corrupt-block":
        # A damaged block in the middle: the header and the first/last pixels read fine.
        da = ms_cube(96, 96, seed=1)
        clean = write_raster(da, tmp_path / "clean.tif", blocksize=16, dtype="int16", scale=1e-4)
        raw = bytearray(clean.read_bytes())
        mid = len(raw) // 2
        raw[mid : mid + 3000] = bytes(b ^ 0x5A for b in raw[mid : mid + 3000])
        p.write_bytes(bytes(raw))
        return p, ["damaged or truncated", "Re-download"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated", "directory", "corrupt-block"])
def test_unreadable_input_files(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
                                kind: str) -> None:
    bad, words = _damaged(kind, files["ms1"], tmp_path)
    out = tmp_path / "out.tif"
    if kind == "corrupt-block":
        hs = write_raster(hs_cube(32, 32), tmp_path / "hs32.tif")
        ms2 = write_raster(ms_cube(96, 96, seed=2), tmp_path / "ms2_96.tif")
        code, _, err = fuse_cli(capsys, hs, bad, ms2, out, "--chunk", "48")
    else:
        code, _, err = fuse_cli(capsys, files["hs"], bad, files["ms2"], out)
    assert code == 2
    assert_clean_error(err, *words, path=bad)
    assert not out.exists() and leftovers(out) == []


def test_damaged_block_met_lazily_names_the_file(tmp_path: Path) -> None:
    """Python API: a damaged block found only when a tile is computed is a DcstsfInputError, not GDAL's."""
    bad, _ = _damaged("corrupt-block", Path(), tmp_path)
    lazy = open_raster(bad, chunks=32)  # opening reads only the header and two pixels
    with pytest.raises(DcstsfInputError, match="damaged or truncated") as exc:
        lazy.compute()
    assert str(bad) in str(exc.value)


# ----------------------------------------------------------------------------------------- output path


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_existing_output_is_refused_unless_overwrite(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                                     reference: np.ndarray, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    if suffix == ".tif":
        out.write_bytes(b"precious")
    else:
        write_raster(hs_cube(), out)  # an earlier output: a Zarr store (a folder of other files is refused)
        (out / "keep.txt").write_text("precious")
    code, _, err = fuse_cli(capsys, *files.values(), out)
    assert code == 2
    assert_clean_error(err, "exists", "--overwrite", path=out)
    if suffix == ".tif":
        assert out.read_bytes() == b"precious"
    else:
        assert (out / "keep.txt").read_text() == "precious"
    assert leftovers(out) == [] and not work_dir_for(out).exists()
    code, _, err = fuse_cli(capsys, *files.values(), out, "--overwrite")
    assert code == 0, err
    np.testing.assert_allclose(open_raster(out).values, reference, atol=1e-6)
    assert leftovers(out) == [] and not work_dir_for(out).exists()


def test_output_directory_missing(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "out.tif"
    code, _, err = fuse_cli(capsys, *files.values(), out)
    assert code == 2
    assert_clean_error(err, "does not exist", "Create it", path=out)


# ----------------------------------------------------------------------------------------- small inputs


def test_inputs_smaller_than_the_halo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Scenes smaller than the method's halo fuse like the whole image (windows clip at the edges)."""
    model = ObservationModel.from_sensors(sensors.from_wavelengths(WL, name="hs-from-wavelengths"), "sentinel-2a",
                                          ms_bands=MS_BANDS, ratio=RATIO)
    # bicubic, halo 6 fine pixels: a 2 x 2 HS scene (6 x 6 MS) through the CLI
    hs, ms1, ms2 = hs_cube(2, 2), ms_cube(6, 6, seed=1), ms_cube(6, 6, seed=2)
    p = [write_raster(a, tmp_path / f"{n}.tif") for a, n in ((hs, "hs"), (ms1, "ms1"), (ms2, "ms2"))]
    out = tmp_path / "tiny.tif"
    code, _, err = fuse_cli(capsys, *p, out, "--chunk", "3")
    assert code == 0, err
    whole = fuse_arrays(hs.values, ms1.values, ms2.values, method="bicubic", model=model)
    np.testing.assert_allclose(open_raster(out).values, whole, atol=1e-5)
    # two-step, halo 12: a 5 x 5 HS scene (15 x 15 MS) cut in 3-pixel tiles
    hs, ms1, ms2 = hs_cube(5, 5), ms_cube(15, 15, seed=1), ms_cube(15, 15, seed=2)
    tiled = fuse(hs, ms1, ms2, method="two-step", chunk=3)
    assert tiled.attrs["halo"] > 15 // 2
    whole = fuse_arrays(hs.values, ms1.values, ms2.values, method="two-step", model=model)
    np.testing.assert_allclose(tiled.values, whole, atol=1e-4)


def test_inputs_too_small_for_the_method(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    hs, ms1, ms2 = hs_cube(3, 3), ms_cube(9, 9, seed=1), ms_cube(9, 9, seed=2)
    p = [write_raster(a, tmp_path / f"{n}.tif") for a, n in ((hs, "hs"), (ms1, "ms1"), (ms2, "ms2"))]
    out = tmp_path / "out.tif"
    code, _, err = cli(capsys, "-q", "fuse", *p, "-o", out, "--method", "two-step")
    assert code == 2
    assert_clean_error(err, "only 9 valid coarse pixels", "too small")
    assert_no_output(out)
    # An MS grid smaller than one HS pixel
    small1, small2 = (write_raster(ms_cube(2, 2, seed=s), tmp_path / f"s{s}.tif") for s in (1, 2))
    code, _, err = fuse_cli(capsys, p[0], small1, small2, out)
    assert code == 2
    assert_clean_error(err, "does not cover one whole HS pixel")
    assert_no_output(out)


def test_one_pixel_strip_with_a_fitted_method(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    hs, ms1, ms2 = hs_cube(1, 40), ms_cube(3, 120, seed=1), ms_cube(3, 120, seed=2)
    p = [write_raster(a, tmp_path / f"{n}.tif") for a, n in ((hs, "hs"), (ms1, "ms1"), (ms2, "ms2"))]
    out = tmp_path / "strip.tif"
    code, _, err = cli(capsys, "-q", "fuse", *p, "-o", out, "--method", "two-step")
    assert code in (0, 2) and "Traceback" not in err


# --------------------------------------------------------------------------------------------------
# 2. faults
# --------------------------------------------------------------------------------------------------

# A long-lived Python that has imported dcstsf once and forks one child per run: each run is a real
# separate process killed with SIGKILL, without paying the ~5 s import for every run. The parent only
# imports (no computation), so no thread pool exists yet to be broken by the fork.
_ZYGOTE = textwrap.dedent(
    """
    import json, os, sys
    import dask.array, rasterio, rioxarray, scipy.ndimage, torch, tqdm.auto, xarray  # noqa: F401
    import dcstsf.engine, dcstsf.io, dcstsf.methods  # noqa: F401
    from dcstsf.cli import main
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        argv = json.loads(line)
        pid = os.fork()
        if pid == 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            os._exit(main(argv))
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": status}), flush=True)
    """
)


def _done_tiles(out: Path) -> set[str]:
    try:
        return set(json.loads((work_dir_for(out) / "ledger.json").read_text()).get("done", []))
    except (OSError, ValueError):
        return set()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_at_random_moments_then_resume(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Kill a batch run (SIGKILL) three times at seeded random moments; the restarted run loses no
    finished tile and its output is identical to an uninterrupted run."""
    hs, ms1, ms2 = hs_cube(80, 80), ms_cube(240, 240, seed=1), ms_cube(240, 240, seed=2)
    p = [str(write_raster(a, tmp_path / f"{n}.tif")) for a, n in ((hs, "hs"), (ms1, "ms1"), (ms2, "ms2"))]
    out = tmp_path / "out" / "killed.tif"
    out.parent.mkdir()
    args = ["-q", "fuse", *p, "-o", str(out), "--method", "bicubic", "--chunk", "48"]
    ref = tmp_path / "ref.tif"
    ref_args = ["-q", "fuse", *p, "-o", str(ref), "--method", "bicubic", "--chunk", "48"]
    zygote = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert zygote.stdin is not None and zygote.stdout is not None

    def start(argv: list[str]) -> int:
        zygote.stdin.write(json.dumps(argv) + "\n")  # type: ignore[union-attr]
        zygote.stdin.flush()  # type: ignore[union-attr]
        return int(json.loads(zygote.stdout.readline())["pid"])  # type: ignore[union-attr]

    def status() -> int:
        return int(json.loads(zygote.stdout.readline())["status"])  # type: ignore[union-attr]

    rng = random.Random(7)
    total = 25
    kills = 0
    previous: set[str] = set()
    try:
        assert json.loads(zygote.stdout.readline())["ready"]
        # The uninterrupted run, in a child too: the reference and the run time to draw kill moments from.
        t0 = time.perf_counter()
        start(ref_args)
        assert status() == 0
        run_s = time.perf_counter() - t0
        for attempt in range(3):
            pid = start(args)
            t0 = time.perf_counter()
            if attempt == 0:
                # Any moment of the run: opening, fitting, computing tiles or writing.
                deadline = t0 + rng.uniform(0.05, 0.9) * run_s
                while time.perf_counter() < deadline:
                    time.sleep(0.002)
            else:
                # Mid-tiles: after a random number of further tiles, plus a random fraction of a tile.
                target = min(total - 2, len(previous) + rng.randint(1, 6))
                while len(_done_tiles(out)) < target and time.perf_counter() - t0 < 60:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0.0, 0.05))
            os.kill(pid, signal.SIGKILL)
            st = status()
            if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL):
                break  # the run finished before the kill: nothing left to interrupt
            kills += 1
            assert not out.exists(), "a killed run left a file under the final name"
            done = _done_tiles(out)
            assert previous <= done, f"finished tiles lost: {sorted(previous - done)}"
            for key in done:  # every tile the ledger lists is complete
                tile = np.load(work_dir_for(out) / f"tile_{key}.npy")
                assert tile.dtype == np.float32 and np.isfinite(tile).all()
            previous = done
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
    assert kills >= 2
    assert previous, "no tile was finished before the last kill: the resume was not exercised"
    code, stdout, err = cli(capsys, *args)
    assert code == 0, err
    resumed = re.search(r"(\d+) resumed", stdout)
    assert resumed is not None and int(resumed.group(1)) == len(previous), stdout
    np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)
    with rasterio.open(out) as a, rasterio.open(ref) as b:
        pa, pb = dict(a.profile), dict(b.profile)
        assert np.isnan(pa.pop("nodata")) and np.isnan(pb.pop("nodata"))
        assert pa == pb and a.descriptions == b.descriptions and a.tags() == b.tags()
    # Nothing left behind: no work directory, no temporaries of the killed runs.
    assert sorted(os.listdir(out.parent)) == ["killed.tif"]


def _enospc(*_: Any, **__: Any) -> Any:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_writing_the_geotiff(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from dcstsf.engine import stream

    hs, ms1, ms2 = hs_cube(32, 32), ms_cube(96, 96, seed=1), ms_cube(96, 96, seed=2)
    p = [write_raster(a, tmp_path / f"{n}.tif") for a, n in ((hs, "hs"), (ms1, "ms1"), (ms2, "ms2"))]
    out = tmp_path / "out" / "fused.tif"
    out.parent.mkdir()
    real = stream.GTiffStream.encode
    calls = {"n": 0}

    def full_after_two(self: Any, arr: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 2:
            _enospc()
        return real(self, arr)

    monkeypatch.setattr(stream.GTiffStream, "encode", full_after_two)
    code, _, err = fuse_cli(capsys, *p, out, "--chunk", "48")
    assert code == 1
    assert_clean_error(err, "No space left on device", "run the same command again", path=out)
    assert not out.exists() and leftovers(out) == []
    saved = _done_tiles(out)
    assert saved  # finished tiles are kept for the next run
    monkeypatch.setattr(stream.GTiffStream, "encode", real)
    code, stdout, err = fuse_cli(capsys, *p, out, "--chunk", "48")
    assert code == 0, err
    assert f"{len(saved)} resumed" in stdout
    ref = fuse(hs, ms1, ms2, method="bicubic", chunk=48).values
    np.testing.assert_allclose(open_raster(out).values, ref, atol=1e-6)
    assert sorted(os.listdir(out.parent)) == ["fused.tif"]


def test_disk_full_while_saving_a_tile(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from dcstsf.engine import batch

    hs, ms1, ms2 = hs_cube(32, 32), ms_cube(96, 96, seed=1), ms_cube(96, 96, seed=2)
    p = [write_raster(a, tmp_path / f"{n}.tif") for a, n in ((hs, "hs"), (ms1, "ms1"), (ms2, "ms2"))]
    out = tmp_path / "out" / "fused.tif"
    out.parent.mkdir()
    real = batch.save_tile
    saved: list[str] = []

    def full_after_one(work: Path, t: tuple[int, int], arr: np.ndarray) -> None:
        if saved:
            # A truncated temporary, as a save cut short leaves it, then the error.
            (work / f".tile_{t[0]}_{t[1]}.npy.partial-{os.getpid()}").write_bytes(b"\x93NUMPY")
            _enospc()
        real(work, t, arr)
        saved.append(f"{t[0]}_{t[1]}")  # tiles finish in any order when computed in parallel

    monkeypatch.setattr(batch, "save_tile", full_after_one)
    code, _, err = fuse_cli(capsys, *p, out, "--chunk", "48")
    assert code == 1
    assert_clean_error(err, "No space left on device", path=out)
    assert not out.exists() and leftovers(out) == []
    assert len(saved) == 1 and _done_tiles(out) == set(saved)
    monkeypatch.setattr(batch, "save_tile", real)
    code, stdout, err = fuse_cli(capsys, *p, out, "--chunk", "48")
    assert code == 0, err
    assert "1 resumed" in stdout
    np.testing.assert_allclose(open_raster(out).values, fuse(hs, ms1, ms2, method="bicubic").values, atol=1e-6)
    assert sorted(os.listdir(out.parent)) == ["fused.tif"]


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_permission_denied_at_the_final_rename_keeps_the_old_output(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], reference: np.ndarray, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, suffix: str,
) -> None:
    # Tests run as root, for whom chmod does not deny anything: the refusal is simulated at the rename.
    out = tmp_path / "out" / f"fused{suffix}"
    out.parent.mkdir()
    assert fuse_cli(capsys, *files.values(), out, "--method", "two-step")[0] == 0
    before = open_raster(out).values
    real_replace = os.replace

    def denied(src: Any, dst: Any, *a: Any, **k: Any) -> None:
        if Path(dst) == out and ".partial-" in Path(src).name:
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", denied)
    code, _, err = fuse_cli(capsys, *files.values(), out, "--overwrite")
    assert code == 1
    assert_clean_error(err, "Permission denied", path=out)
    np.testing.assert_array_equal(open_raster(out).values, before)  # the old output is intact
    assert leftovers(out) == []
    monkeypatch.setattr(os, "replace", real_replace)
    code, _, err = fuse_cli(capsys, *files.values(), out, "--overwrite")
    assert code == 0, err
    np.testing.assert_allclose(open_raster(out).values, reference, atol=1e-6)
    assert sorted(os.listdir(out.parent)) == [out.name]


def test_disk_full_while_writing_zarr(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import dcstsf.io.write as io_write

    real = io_write.write_store

    def half_then_full(da: Any, tmp: Path, **kw: Any) -> None:
        real(da, tmp, **kw)  # the store is written under the temporary name ...
        _enospc()  # ... and the disk fills before it is complete

    monkeypatch.setattr(io_write, "write_store", half_then_full)
    out = tmp_path / "out" / "fused.zarr"
    out.parent.mkdir()
    code, _, err = fuse_cli(capsys, *files.values(), out)
    assert code == 1
    assert_clean_error(err, "No space left on device", path=out)
    assert not out.exists() and leftovers(out) == []
    monkeypatch.setattr(io_write, "write_store", real)
    code, stdout, err = fuse_cli(capsys, *files.values(), out)
    assert code == 0 and "resumed" in stdout, err


# ----------------------------------------------------------------------------------------- weights


@pytest.fixture()
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for dcstsf/models/weights: a small 4-band checkpoint and its manifest."""
    import torch

    from dcstsf.models import checkpoint
    from dcstsf.models.network import DCSTSFConfig, DCSTSFNet

    d = tmp_path / "weights"
    torch.manual_seed(0)
    entries = []
    for n_ms, bands, name in ((4, MS_BANDS, "w4.pt"), (10, ["B02", "B03", "B04", "B8A"], "w10.pt")):
        net = DCSTSFNet(DCSTSFConfig(n_ms=n_ms, rank=4, stages=1, hidden=8, layers=1, consistency_steps=1))
        sha = checkpoint.save_checkpoint(d / name, {"config": net.config.to_dict(), "state_dict": net.state_dict(),
                                                    "sensors": {"ratio": RATIO, "ms_bands": bands}})
        entries.append({"file": name, "sha256": sha, "ms_bands": bands, "ratio": RATIO,
                        "ms_sensor": "sentinel-2a", "hs_sensor": "zy1-02d-ahsi"})
    (d / "manifest.json").write_text(json.dumps({"weights": entries}))
    monkeypatch.setattr(checkpoint, "WEIGHTS_DIR", d)
    return d


def _fuse_dcstsf(capsys: pytest.CaptureFixture[str], files: dict[str, Path], out: Path,
                 *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "-q", "fuse", *files.values(), "-o", out, "--method", "dcstsf", *extra)


def test_shipped_weights_are_checked_by_hash(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                             scene: dict[str, xr.DataArray], weights_dir: Path,
                                             tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    code, _, err = _fuse_dcstsf(capsys, files, out)
    assert code == 0, err  # the intact file loads
    w = weights_dir / "w4.pt"
    raw = bytearray(w.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped bit in the middle
    w.write_bytes(bytes(raw))
    out2 = tmp_path / "out2.tif"
    code, _, err = _fuse_dcstsf(capsys, files, out2)
    assert code == 2
    assert_clean_error(err, "SHA-256", "does not match the manifest", "reinstall", path=w)
    assert_no_output(out2)
    with pytest.raises(WeightsError, match="does not match the manifest") as exc:  # Python API
        fuse(scene["hs"], scene["ms1"], scene["ms2"], method="dcstsf")
    assert str(w) in str(exc.value)


def test_corrupt_weights_with_a_matching_hash(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                              weights_dir: Path, tmp_path: Path) -> None:
    from dcstsf.models.checkpoint import file_sha256

    w = weights_dir / "w4.pt"
    w.write_bytes(w.read_bytes()[:300])  # truncated, and the manifest updated to match
    manifest = json.loads((weights_dir / "manifest.json").read_text())
    manifest["weights"][0]["sha256"] = file_sha256(w)
    (weights_dir / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out.tif"
    code, _, err = _fuse_dcstsf(capsys, files, out)
    assert code == 2
    assert_clean_error(err, "not a readable dcstsf checkpoint", path=w)
    assert_no_output(out)


def test_corrupt_manifest(capsys: pytest.CaptureFixture[str], files: dict[str, Path], weights_dir: Path,
                          tmp_path: Path) -> None:
    m = weights_dir / "manifest.json"
    m.write_text(m.read_text()[:40])
    out = tmp_path / "out.tif"
    code, _, err = _fuse_dcstsf(capsys, files, out)
    assert code == 2
    assert_clean_error(err, "manifest is not valid JSON", "reinstall", path=m)
    assert_no_output(out)


def test_no_weights_for_the_band_set_fuses_physics_only(capsys: pytest.CaptureFixture[str], files: dict[str, Path], weights_dir: Path,
                                     tmp_path: Path) -> None:
    manifest = json.loads((weights_dir / "manifest.json").read_text())
    manifest["weights"] = manifest["weights"][1:]
    (weights_dir / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out.tif"
    code, _, err = _fuse_dcstsf(capsys, files, out)
    # no weights for the band set is not an error: DC-STSF fuses with its physics-only network
    assert code == 0, err
    identity = json.loads(open_raster(out, chunks={}).attrs["method_identity"])
    assert identity["weights"].startswith("none: physics-only") and "weights_sha256" not in identity


def test_mismatched_weights_name_the_file(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                          weights_dir: Path, tmp_path: Path) -> None:
    # The manifest lists the 10-band network under the 4-band set.
    manifest = json.loads((weights_dir / "manifest.json").read_text())
    manifest["weights"][1]["ms_bands"] = MS_BANDS
    manifest["weights"] = manifest["weights"][1:]
    (weights_dir / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out.tif"
    code, _, err = _fuse_dcstsf(capsys, files, out)
    assert code == 2
    assert_no_output(out)
    assert_clean_error(err, "10 MS bands", path=weights_dir / "w10.pt")


def test_temporaries_of_killed_writers_are_removed(tmp_path: Path, scene: dict[str, xr.DataArray]) -> None:
    """A writer killed with SIGKILL leaves ``.NAME.partial-PID``; the next write of NAME removes it (the
    temporaries of live processes are kept)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "o.zarr"
    stale = [tmp_path / f".o.zarr.partial-{dead.pid}", tmp_path / f".o.zarr.old-{dead.pid}"]
    for s in stale:
        s.mkdir()
        (s / "zarr.json").write_text("{}")
    live = tmp_path / f".o.zarr.partial-{os.getppid()}"
    live.write_text("another live writer")
    write_raster(scene["ms1"], out)
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "o.zarr"])


def test_weights_given_on_the_command_line(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                           weights_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    for bad, words in (
        (tmp_path / "missing.pt", ["weights file not found", "dcstsf train"]),
        (tmp_path / "notes.pt", ["not a readable dcstsf checkpoint"]),
    ):
        if bad.name == "notes.pt":
            bad.write_text("not a checkpoint\n" * 10)
        code, _, err = _fuse_dcstsf(capsys, files, out, "--weights", str(bad))
        assert code == 2
        assert_clean_error(err, *words, path=bad)
        assert_no_output(out)
    code, _, err = fuse_cli(capsys, *files.values(), out, "--weights", str(weights_dir / "w4.pt"))
    assert code == 2
    assert_clean_error(err, "--weights applies to --method dcstsf")
    code, _, err = _fuse_dcstsf(capsys, files, out, "--weights", str(weights_dir / "w4.pt"))
    assert code == 0, err
    from dcstsf.models.checkpoint import file_sha256

    assert open_raster(out).attrs["weights_sha256"] == file_sha256(weights_dir / "w4.pt")


@pytest.mark.filterwarnings("default::UserWarning")  # as on the command line, not the suite's "error"
def test_cli_shows_warnings_as_log_lines(capsys: pytest.CaptureFixture[str], scene: dict[str, xr.DataArray],
                                         files: dict[str, Path], tmp_path: Path) -> None:
    """A warning on the command line reads like the other messages, without Python's file and line."""
    hs = scene["hs"].copy(deep=True)
    hs.values[5] = np.nan  # a band with no data anywhere: fused, with a warning
    hs_path = write_raster(hs, tmp_path / "hs_empty_band.tif")
    code, _, err = cli(capsys, "fuse", hs_path, files["ms1"], files["ms2"], "-o", tmp_path / "out.tif",
                       "--method", "bicubic")
    assert code == 0, err
    assert "[dcstsf] warning: HS(t1) (" in err and "1 HS band(s) hold no data anywhere" in err, err
    assert "UserWarning" not in err
    assert np.isnan(open_raster(tmp_path / "out.tif").values[5]).all()

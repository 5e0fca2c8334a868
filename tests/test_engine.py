"""Tests of the scene engine: seamless tiling, laziness, grids, nodata, batch runs, resume, schedulers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.ndimage import gaussian_filter

from dcstsf import sensors
from dcstsf.engine import TilePlan, balanced_chunk, fuse, run_batch, validate_inputs, work_dir_for
from dcstsf.errors import DcstsfInputError, WeightsError
from dcstsf.io import open_raster, write_raster
from dcstsf.methods import Method, available_methods, fuse_arrays, get_method
from dcstsf.methods.bicubic import Bicubic
from dcstsf.operators import ObservationModel, blur
from dcstsf.simulate import simulate_case

MS_BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
N_HS = 24
WL = np.linspace(420.0, 2400.0, N_HS)
HS_SENSOR = sensors.from_wavelengths(WL, name="test-hs")
RATIO = 3
X0, Y0, RES = 500_000.0, 4_000_000.0, 10.0


def _model() -> ObservationModel:
    return ObservationModel.from_sensors(HS_SENSOR, "sentinel-2a", ms_bands=MS_BANDS, ratio=RATIO)


def _case(hc: int = 30, wc: int = 37, *, seed: int = 0, crs: str | None = "EPSG:32633") -> Any:
    """A simulated case: smooth abundances x random spectra on a real-looking UTM grid."""
    rng = np.random.default_rng(seed)
    h, w = hc * RATIO, wc * RATIO
    ab = np.stack([gaussian_filter(rng.random((h, w)), 2.0) for _ in range(4)])
    ab += 0.05 * rng.random(ab.shape)
    spec = 0.1 + 0.5 * rng.random((4, N_HS))
    cube = np.einsum("kyx,kb->byx", ab, spec)
    cube = (0.6 * cube / cube.max()).astype(np.float32)
    truth = xr.DataArray(
        cube,
        dims=("band", "y", "x"),
        coords={
            "band": list(HS_SENSOR.band_names),
            "wavelength": ("band", WL),
            "y": Y0 - RES * (np.arange(h) + 0.5),
            "x": X0 + RES * (np.arange(w) + 0.5),
        },
    )
    if crs is not None:
        truth = truth.rio.write_crs(crs)
    return simulate_case(truth, model=_model(), change="mixed", seed=seed)


@pytest.fixture(scope="module")
def case() -> Any:
    return _case()


def _instance_or_skip(name: str, model: ObservationModel) -> Method:
    m = get_method(name)
    try:
        m.halo(model)
    except WeightsError as exc:
        pytest.skip(f"method {name!r} has no weights for the test band set: {exc}")
    return m


# --------------------------------------------------------------------------------------------------
# seamless tiling
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_tiled_equals_whole_image_for_every_method(case: Any, name: str) -> None:
    model = _model()
    m = _instance_or_skip(name, model)
    whole = fuse_arrays(*case.arrays(), method=m, model=model)
    for chunk in (21, 33):  # neither divides 90 x 111
        out = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=chunk)
        assert out.chunks[1][0] == chunk and sum(out.chunks[1]) == 90
        np.testing.assert_allclose(out.values, whole, atol=1e-4, rtol=0)
    # Dask-backed inputs (the fit then sees Dask arrays) with chunks unrelated to the tiles: same result.
    out = fuse(
        case.hs_t1.chunk({"y": 7, "x": 11}), case.ms_t1.chunk({"y": 25}), case.ms_t2.chunk({"x": 40}),
        method=m, hs_sensor=HS_SENSOR, chunk=33,
    )
    np.testing.assert_allclose(out.values, whole, atol=1e-4, rtol=0)


@pytest.mark.parametrize("unit_space", ["sensor", "coefficient"])
def test_dcstsf_network_tiles_match_whole_image_with_random_units(unit_space: str) -> None:
    """The network's declared receptive field bounds the real one (non-zero learned units)."""
    from dcstsf.methods import DCSTSF
    from dcstsf.models.network import DCSTSFConfig

    cfg = DCSTSFConfig(n_ms=len(MS_BANDS), rank=6, stages=1, hidden=8, layers=1, consistency_steps=1,
                       unit_space=unit_space)
    m = DCSTSF.untrained(cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m._net.parameters():  # the zero-initialised heads would hide the units' reach
            p.add_(0.05 * torch.randn_like(p))
    c = _case(48, 52, seed=3)
    model = _model()
    whole = fuse_arrays(*c.arrays(), method=m, model=model)
    halo = m.halo(model)
    assert halo < 144 - 45
    out = fuse(c.hs_t1, c.ms_t1, c.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=45)
    np.testing.assert_allclose(out.values, whole, atol=1e-4, rtol=0)


class _WideBlur(Bicubic):
    """Bicubic then a wide blur, declaring too small a halo (a user method with a wrong halo)."""

    name = "wide-blur-test"

    def halo(self, model: ObservationModel) -> int:
        return model.ratio

    def apply(self, hs_t1, ms_t1, ms_t2, *, model, fitted):  # type: ignore[no-untyped-def,override]
        up = super().apply(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted)
        with torch.no_grad():
            return blur(torch.from_numpy(up), 5.0).numpy()


def test_blend_cross_fades_seams_of_an_under_declared_halo(case: Any) -> None:
    model = _model()
    m = _WideBlur()
    whole = fuse_arrays(*case.arrays(), method=m, model=model)
    hard = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=30).values
    soft = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=30, blend=9).values
    err_hard, err_soft = np.abs(hard - whole), np.abs(soft - whole)
    assert err_hard.max() > 1e-3  # the seams are there
    # Largest jump across a tile boundary (row 30 | 31): blended output is smoother there.
    jump = lambda a: np.abs(np.diff(a[:, 28:33], axis=1)).max()  # noqa: E731
    assert jump(soft) < jump(hard)
    assert err_soft.mean() < err_hard.mean()
    # With a correct halo, blending changes nothing beyond rounding.
    exact = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=30, blend=6)
    np.testing.assert_allclose(exact.values, fuse_arrays(*case.arrays(), method="bicubic", model=model), atol=1e-5)


def test_balanced_chunk_keeps_tile_count_without_slivers() -> None:
    assert balanced_chunk(480, (1023, 1023), 48) == 384  # 384, 384, 255 instead of 480, 480, 63
    assert balanced_chunk(480, (6000, 6000), 48) == 480  # 13 tiles either way
    assert balanced_chunk(480, (960, 700), 48) == 480  # already even along y
    assert balanced_chunk(512, (2049, 2049), 48) == 432
    for chunk in range(3, 200, 7):
        for sizes in ((90, 111), (64, 64), (300, 45)):
            c = balanced_chunk(chunk, sizes, 3)
            base = max(3, chunk // 3 * 3)
            assert c % 3 == 0 and c <= base
            assert all(-(-n // c) == -(-n // base) for n in sizes)  # same tile count
            assert balanced_chunk(c, sizes, 3) == c  # idempotent: prepare() may re-plan with it


def test_tile_plan_windows_are_unions_of_chunks() -> None:
    plan = TilePlan(height=100, width=71, ratio=1, chunk=30, halo=7, blend=3)
    for axis, n in ((0, 100), (1, 71)):
        edges = set(plan.chunk_bounds(axis))
        for t in range(plan.ny if axis == 0 else plan.nx):
            w = plan.window(t, 0) if axis == 0 else plan.window(0, t)
            lo, hi = (w[0], w[1]) if axis == 0 else (w[2], w[3])
            assert lo in edges and hi in edges and 0 <= lo < hi <= n
    # Blend weights sum to one everywhere.
    total = np.zeros((100, 71))
    for ty, tx in plan.tiles():
        y0, y1, x0, x1 = plan.extended(ty, tx)
        wy, wx = plan.weights(ty, tx, (y0, y1, x0, x1))
        total[y0:y1, x0:x1] += wy[:, None] * wx[None, :]
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# laziness, metadata, nodata
# --------------------------------------------------------------------------------------------------


class _Counting(Bicubic):
    name = "counting-test"
    calls: ClassVar[list[tuple[int, ...]]] = []

    def apply(self, hs_t1, ms_t1, ms_t2, *, model, fitted):  # type: ignore[no-untyped-def,override]
        type(self).calls.append(ms_t1.shape)
        return super().apply(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted)


def test_fuse_is_lazy_until_computed(case: Any) -> None:
    _Counting.calls.clear()
    out = fuse(case.hs_t1.chunk({"y": 10}), case.ms_t1.chunk({"y": 30}), case.ms_t2.chunk({"y": 30}),
               method=_Counting(), hs_sensor=HS_SENSOR, chunk=33)
    assert _Counting.calls == []
    assert out.chunks == ((N_HS,), (33, 33, 24), (33, 33, 33, 12))
    assert type(out.data).__module__.startswith("dask")
    sub = out.isel(y=slice(0, 10), x=slice(0, 10)).values  # one tile only
    assert len(_Counting.calls) == 1 and sub.shape == (N_HS, 10, 10)
    out.values  # noqa: B018
    assert len(_Counting.calls) == 1 + 12


def test_output_carries_grid_bands_and_provenance(case: Any) -> None:
    out = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=33)
    assert out.dims == ("band", "y", "x") and out.dtype == np.float32
    assert out.rio.crs == case.ms_t1.rio.crs
    assert out.rio.transform() == case.ms_t1.rio.transform()
    np.testing.assert_array_equal(out["x"].values, case.ms_t1["x"].values)
    np.testing.assert_array_equal(out["y"].values, case.ms_t1["y"].values)
    assert list(out["band"].values) == list(HS_SENSOR.band_names)
    np.testing.assert_allclose(out["wavelength"].values, WL)
    assert "fwhm" in out.coords
    assert np.isnan(out.rio.nodata)
    a = out.attrs
    assert a["method"] == "bicubic" and a["ratio"] == 3 and a["chunk"] == 33 and a["halo"] == 6
    assert a["ms_bands"] == ",".join(MS_BANDS) and a["hs_sensor"] == "test-hs"
    assert "dcstsf_version" in a and json.loads(a["method_identity"])["method"] == "bicubic"
    assert [i["shape"] for i in json.loads(a["inputs"])] == [[N_HS, 30, 37], [6, 90, 111], [6, 90, 111]]


def test_nodata_is_propagated_and_tiling_stays_exact(case: Any) -> None:
    hs, ms1, ms2 = (a.copy(deep=True) for a in (case.hs_t1, case.ms_t1, case.ms_t2))
    hs[:, 4, 5] = np.nan  # coarse pixel -> fine rows 12:15, cols 15:18
    ms1[2, 40:44, 50:52] = np.nan  # one band enough
    ms2[:, 80, 100] = np.nan
    expect = np.zeros((90, 111), bool)
    expect[12:15, 15:18] = True
    expect[40:44, 50:52] = True
    expect[80, 100] = True
    whole = fuse(hs, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR, chunk=999).values
    tiled = fuse(hs, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21).values
    np.testing.assert_array_equal(np.isnan(tiled).any(axis=0), expect)
    np.testing.assert_array_equal(np.isnan(tiled).all(axis=0), expect)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    # The whole-image engine result equals in-memory fusion (scene-mean fill) off the mask.
    ref = fuse_arrays(hs.values, ms1.values, ms2.values, method="bicubic", model=_model())
    np.testing.assert_allclose(tiled[:, ~expect], ref[:, ~expect], atol=1e-4)


# --------------------------------------------------------------------------------------------------
# grids
# --------------------------------------------------------------------------------------------------


def _shift(da: xr.DataArray, dx: float = 0.0, dy: float = 0.0) -> xr.DataArray:
    out = da.assign_coords(x=da["x"] + dx, y=da["y"] + dy)
    return out.rio.write_transform(out.rio.transform(recalc=True))


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda c: (c.hs_t1.rio.write_crs("EPSG:32650"), c.ms_t1, c.ms_t2), ["different CRS", "reproject"]),
        (lambda c: (c.hs_t1.drop_vars("spatial_ref"), c.ms_t1, c.ms_t2), ["no CRS", "write_crs"]),
        (lambda c: (_shift(c.hs_t1, dx=5.0), c.ms_t1, c.ms_t2), ["corners do not coincide", "0.5"]),
        (lambda c: (c.hs_t1, c.ms_t1, _shift(c.ms_t2, dy=10.0)), ["different grids", "MS(t2)"]),
        (lambda c: (c.hs_t1, c.ms_t1, c.ms_t2.isel(x=slice(0, 100))), ["MS(t2)", "share one grid", "100"]),
        (lambda c: (c.hs_t1.isel(band=slice(0, 20)), c.ms_t1, c.ms_t2), ["20 bands", "24"]),
        (lambda c: (c.hs_t1, c.ms_t1.isel(band=slice(0, 5)), c.ms_t2), ["5 bands", "6"]),
    ],
)
def test_grid_and_band_errors_are_clear(case: Any, mutate: Any, words: list[str]) -> None:
    hs, ms1, ms2 = mutate(case)
    with pytest.raises(DcstsfInputError) as info:
        validate_inputs(hs, ms1, ms2, hs_sensor=HS_SENSOR)
    for w in words:
        assert w in str(info.value), str(info.value)


def test_non_integer_ratio_is_an_error(case: Any) -> None:
    hs = case.hs_t1
    x = X0 + 25.0 * (np.arange(hs.sizes["x"]) + 0.5)
    y = Y0 - 25.0 * (np.arange(hs.sizes["y"]) + 0.5)
    hs = hs.assign_coords(x=x, y=y)
    hs = hs.rio.write_transform(hs.rio.transform(recalc=True))
    with pytest.raises(DcstsfInputError, match=r"25 x 25 and MS pixel size 10 x 10 give a ratio of 2.5"):
        validate_inputs(hs, case.ms_t1, case.ms_t2, hs_sensor=HS_SENSOR)
    with pytest.raises(DcstsfInputError, match="ms_bands"):
        validate_inputs(case.hs_t1, case.ms_t1.assign_coords(band=[f"band_{i}" for i in range(6)]),
                        case.ms_t2.assign_coords(band=[f"band_{i}" for i in range(6)]), hs_sensor=HS_SENSOR)


def test_larger_ms_scene_is_cropped_to_the_hs_footprint(case: Any) -> None:
    hs = case.hs_t1.isel(y=slice(2, 20), x=slice(3, 30))  # HS covers a part of the MS grid
    out = fuse(hs, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21)
    assert out.shape == (N_HS, 54, 81)
    np.testing.assert_array_equal(out["x"].values, case.ms_t1["x"].values[9:90])
    assert out.rio.transform().c == pytest.approx(X0 + 90.0)
    assert "MS cropped" in out.attrs["processing"]
    ms = case.ms_t1.isel(y=slice(6, 60), x=slice(9, 90))
    ref = fuse_arrays(hs.values, ms.values, case.ms_t2.values[:, 6:60, 9:90], method="bicubic", model=_model())
    np.testing.assert_allclose(out.values, ref, atol=1e-4)


def test_hs_pixels_outside_the_ms_grid_are_dropped_with_a_warning(case: Any) -> None:
    ms1, ms2 = (a.isel(y=slice(0, 61), x=slice(3, 111)) for a in (case.ms_t1, case.ms_t2))
    with pytest.warns(UserWarning, match="outside the MS grid"):
        out = fuse(case.hs_t1, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21)
    assert out.shape == (N_HS, 60, 108)  # whole HS pixels only: row 60 of the MS is dropped too
    ref = fuse_arrays(case.hs_t1.values[:, :20, 1:], ms1.values[:, :60], ms2.values[:, :60], method="bicubic",
                      model=_model())
    np.testing.assert_allclose(out.values, ref, atol=1e-4)


def test_pixel_grids_without_coordinates(case: Any) -> None:
    hs, ms1, ms2 = (xr.DataArray(a, dims=("band", "y", "x")) for a in case.arrays())
    ms1 = ms1.assign_coords(band=MS_BANDS)
    out = fuse(hs, ms1, ms2, method="bicubic", hs_sensor=HS_SENSOR, chunk=33)
    assert out.shape == (N_HS, 90, 111) and "x" not in out.coords
    np.testing.assert_allclose(out.values, fuse_arrays(*case.arrays(), method="bicubic", model=_model()), atol=1e-4)


def test_align_reproject_resamples_misaligned_inputs(case: Any) -> None:
    ms2 = _shift(case.ms_t2, dx=5.0)
    with pytest.raises(DcstsfInputError, match="reproject"):
        fuse(case.hs_t1, case.ms_t1, ms2, method="bicubic", hs_sensor=HS_SENSOR)
    out = fuse(case.hs_t1, case.ms_t1, ms2, method="bicubic", hs_sensor=HS_SENSOR, align="reproject", chunk=33)
    assert out.rio.transform() == case.ms_t1.rio.transform()
    assert "MS(t2) reprojected" in out.attrs["processing"]
    hs = _shift(case.hs_t1, dx=12.0)
    out = fuse(hs, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, align="reproject", chunk=33)
    assert "HS(t1) reprojected" in out.attrs["processing"] and out.rio.transform() == case.ms_t1.rio.transform()
    assert np.isfinite(out.values[:, :, 3:-3]).all()


def test_default_sensors_from_coordinates(case: Any) -> None:
    # No hs_sensor: built from the wavelength coordinate; MS band names like "B2" are understood.
    ms1 = case.ms_t1.assign_coords(band=["B2", "B3", "B4", "B8", "B11", "B12"])
    v = validate_inputs(case.hs_t1, ms1, case.ms_t2)
    assert v.model.n_hs == N_HS and list(v.model.ms_sensor.band_names) == MS_BANDS and v.ratio == 3
    np.testing.assert_allclose(v.model.hs_sensor.centers_nm, WL)


# --------------------------------------------------------------------------------------------------
# batch runs
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(case: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("engine-inputs")
    paths = {
        "hs": write_raster(case.hs_t1, d / "hs_t1.tif"),
        "ms1": write_raster(case.ms_t1, d / "ms_t1.tif"),
        "ms2": write_raster(case.ms_t2, d / "ms_t2.tif"),
        "ms1_zarr": write_raster(case.ms_t1, d / "ms_t1.zarr"),
        "ms2_nc": write_raster(case.ms_t2, d / "ms_t2.nc"),
    }
    return paths


def _args(files: dict[str, Path]) -> tuple[Path, Path, Path]:
    return files["hs"], files["ms1"], files["ms2"]


def test_local_batch_run_does_not_import_distributed(files: dict[str, Path], tmp_path: Path) -> None:
    """Without workers= or scheduler= a batch run uses Dask's local schedulers by function, and its tile
    tasks take their input chunks by key: nothing imports dask.distributed (0.6 s on a small run)."""
    hs, ms1, ms2 = (str(p) for p in _args(files))
    code = textwrap.dedent(f"""
        import sys
        from dcstsf.engine import run_batch
        res = run_batch({hs!r}, {ms1!r}, {ms2!r}, {str(tmp_path / "out.tif")!r}, method="bicubic", chunk=50,
                        progress=False)
        assert res.tiles_computed == res.tiles_total > 1
        print("distributed" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_run_batch_writes_geotiff_readable_with_wavelengths(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    out = tmp_path / "fused.tif"
    res = run_batch(*_args(files), out, method="bicubic", chunk=50, progress=False)
    assert res.tiles_total == 2 * 3 and res.tiles_computed == 6 and res.plan["chunk"] == 48
    assert not work_dir_for(out).exists()
    back = open_raster(out)
    assert back.rio.crs == case.ms_t1.rio.crs and back.rio.transform() == case.ms_t1.rio.transform()
    assert list(back["band"].values) == list(HS_SENSOR.band_names)
    np.testing.assert_allclose(back["wavelength"].values, WL)
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48).values
    np.testing.assert_allclose(back.values, ref, atol=1e-6)
    assert back.attrs["method"] == "bicubic"
    import rasterio

    with rasterio.open(out) as src:
        assert src.profile["tiled"] and src.compression is not None
        assert src.descriptions[0] == HS_SENSOR.band_names[0]
    with pytest.raises(DcstsfInputError, match="exists"):
        run_batch(*_args(files), out, method="bicubic", progress=False)
    run_batch(*_args(files), out, method="bicubic", progress=False, overwrite=True)


def test_run_batch_hands_finished_tiles_to_the_writer_in_memory(
    files: dict[str, Path], case: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rasterio

    from dcstsf.engine import batch

    reads: list[str] = []
    real_load = np.load
    monkeypatch.setattr(batch.np, "load", lambda f, *a, **k: (reads.append(str(f)), real_load(f, *a, **k))[1])
    out = tmp_path / "fused.tif"
    run_batch(*_args(files), out, method="bicubic", chunk=48, parallel_tiles=1, predictor="float", progress=False)
    assert reads == []  # every tile reached the writer in memory; the .npy files only serve a resume
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48).values
    np.testing.assert_allclose(open_raster(out).values, ref, atol=1e-6)
    with pytest.raises(DcstsfInputError, match="GeoTIFF output only"):
        run_batch(*_args(files), tmp_path / "f.zarr", method="bicubic", predictor="float", progress=False)
    for int16 in ("int16", np.dtype(np.int16)):
        with pytest.raises(DcstsfInputError, match="floating-point output"):
            run_batch(*_args(files), tmp_path / "i.tif", method="bicubic", dtype=int16, out_scale=1e-4,
                      predictor="float", progress=False)
    assert not work_dir_for(tmp_path / "i.tif").exists()  # refused before any work


def test_run_batch_reads_zarr_and_netcdf_and_writes_zarr(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    out = tmp_path / "fused.zarr"
    run_batch(files["hs"], files["ms1_zarr"], files["ms2_nc"], out, method="bicubic", chunk=33, blend=3,
              progress=False)
    back = open_raster(out)
    np.testing.assert_allclose(back["wavelength"].values, WL)
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=33, blend=3).values
    np.testing.assert_allclose(back.values, ref, atol=1e-6)


def test_run_batch_cog_and_scaled_integers(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    import rasterio

    out = tmp_path / "fused_cog.tif"
    run_batch(*_args(files), out, method="bicubic", chunk=48, blend=3, cog=True, dtype="int16", out_scale=1e-4,
              progress=False)
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "int16" and src.scales[0] == pytest.approx(1e-4)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    back = open_raster(out)
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48, blend=3).values
    np.testing.assert_allclose(back.values, ref, atol=0.6e-4)


def test_inputs_smaller_than_the_halo() -> None:
    c = _case(4, 5, seed=2)
    model = _model()
    m = _WideBlur()
    out = fuse(c.hs_t1, c.ms_t1, c.ms_t2, method=m, hs_sensor=HS_SENSOR, chunk=6, halo=30)
    np.testing.assert_allclose(out.values, fuse_arrays(*c.arrays(), method=m, model=model), atol=1e-5)


class _Stop(RuntimeError):
    pass


def test_resume_after_interruption_gives_the_same_output(files: dict[str, Path], tmp_path: Path) -> None:
    full = tmp_path / "full.tif"
    run_batch(*_args(files), full, method="bicubic", chunk=21, progress=False)
    out = tmp_path / "resumed.tif"

    def stop_after_3(tile: tuple[int, int], done: int, total: int) -> None:
        if done == 3:
            raise _Stop("simulated kill")

    with pytest.raises(_Stop):
        run_batch(*_args(files), out, method="bicubic", chunk=21, progress=False, on_tile=stop_after_3)
    assert not out.exists() and not any(p.name.startswith(".resumed") for p in tmp_path.iterdir())
    ledger = json.loads((work_dir_for(out) / "ledger.json").read_text())
    assert len(ledger["done"]) == 3
    res = run_batch(*_args(files), out, method="bicubic", chunk=21, progress=False)
    assert res.tiles_skipped == 3 and res.tiles_computed == res.tiles_total - 3
    np.testing.assert_array_equal(open_raster(out).values, open_raster(full).values)
    # Other parameters: the old tiles are discarded with a warning.
    out2 = tmp_path / "other.tif"
    with pytest.raises(_Stop):
        run_batch(*_args(files), out2, method="bicubic", chunk=21, progress=False, on_tile=stop_after_3)
    with pytest.warns(UserWarning, match="starting over"):
        res = run_batch(*_args(files), out2, method="bicubic", chunk=96, progress=False)
    assert res.tiles_skipped == 0


def test_resume_after_sigkill(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "killed.tif"
    script = textwrap.dedent(
        f"""
        import time
        from dcstsf.engine import run_batch
        run_batch({str(files['hs'])!r}, {str(files['ms1'])!r}, {str(files['ms2'])!r}, {str(out)!r},
                  method="bicubic", chunk=21, progress=False, on_tile=lambda *a: time.sleep(0.5))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    ledger = work_dir_for(out) / "ledger.json"
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            if ledger.exists() and len(json.loads(ledger.read_text() or "{}").get("done", [])) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the batch run did not start")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    res = run_batch(*_args(files), out, method="bicubic", chunk=21, progress=False)
    assert res.tiles_skipped >= 2
    ref = tmp_path / "ref.tif"
    run_batch(*_args(files), ref, method="bicubic", chunk=21, progress=False)
    np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)


def test_failed_write_leaves_no_file_under_the_final_name(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "x.tif"

    def boom(*a: Any) -> None:
        raise _Stop("failure")

    with pytest.raises(_Stop):
        run_batch(*_args(files), out, method="bicubic", chunk=21, progress=False, on_tile=boom)
    assert not out.exists()
    with pytest.raises(DcstsfInputError, match="unknown output format"):
        run_batch(*_args(files), tmp_path / "x.png", method="bicubic", progress=False)


# --------------------------------------------------------------------------------------------------
# distributed
# --------------------------------------------------------------------------------------------------


def test_distributed_results_equal_threaded(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    threaded = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21).values
    ref = tmp_path / "threaded.tif"
    run_batch(*_args(files), ref, method="bicubic", chunk=21, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster):
            dist = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21)
            np.testing.assert_array_equal(dist.values, threaded)
        out = tmp_path / "external.tif"
        run_batch(*_args(files), out, method="bicubic", chunk=21, progress=False,
                  scheduler=cluster.scheduler_address)
        np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)


def test_local_cluster_with_worker_processes(files: dict[str, Path], tmp_path: Path) -> None:
    ref = tmp_path / "threaded.tif"
    run_batch(*_args(files), ref, method="bicubic", chunk=48, progress=False)
    out = tmp_path / "cluster.tif"
    res = run_batch(*_args(files), out, method="bicubic", chunk=48, progress=False, workers=1)
    assert res.tiles_computed == res.tiles_total
    np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)


def test_parallel_tiles_from_memory() -> None:
    from dcstsf.engine.batch import _parallel_for_memory

    gib = 2**30
    # 1.15x headroom per tile: two 0.8 GiB tiles need 1.84 GiB next to 1 GiB of base and writer, two
    # 0.9 GiB tiles 2.07 GiB
    assert _parallel_for_memory(2, limit=3 * gib, base=gib // 2, writer=gib // 2, tile_peak=int(0.8 * gib)) == 2
    assert _parallel_for_memory(2, limit=3 * gib, base=gib // 2, writer=gib // 2, tile_peak=int(0.9 * gib)) == 1
    assert _parallel_for_memory(4, limit=64 * gib, base=gib, writer=gib, tile_peak=gib) == 4  # never above asked
    assert _parallel_for_memory(2, limit=gib, base=2 * gib, writer=0, tile_peak=gib) == 1  # never below one


@pytest.mark.parametrize(
    ("readings", "expected_alone", "expected_parallel"),
    [
        ([0.60], 1, 2),  # fits: no second reading
        ([0.80, 0.62], 2, 2),  # borderline: the mean (0.71) fits
        ([0.80, 0.80], 2, 1),  # borderline twice: one at a time
        ([1.50], 1, 1),  # far above: one reading is enough
    ],
)
def test_borderline_tile_memory_is_read_twice(
    monkeypatch: pytest.MonkeyPatch, readings: list[float], expected_alone: int, expected_parallel: int
) -> None:
    from dcstsf.engine import batch

    gib = 2**30
    # limit 3 GiB, base 0.9, writer 0.4: two tiles fit up to a reading of 1.7 / 2 / 1.15 = 0.739 GiB
    values = iter(readings)
    alone: list[tuple[int, int]] = []
    rest: dict[str, Any] = {}

    def first_tile_alone(job: Any, t: tuple[int, int], finish: Any) -> int:
        alone.append(t)
        return int(next(values) * gib)

    def run_local(job: Any, todo: list[tuple[int, int]], parallel: int, finish: Any) -> None:
        rest.update(todo=todo, parallel=parallel)

    monkeypatch.setattr(batch, "_first_tile_alone", first_tile_alone)
    monkeypatch.setattr(batch, "_run_tiles_local", run_local)
    monkeypatch.setattr(batch, "_rss_bytes", lambda: int(0.9 * gib))
    todo = [(0, i) for i in range(6)]
    chosen, peak = batch._run_tiles_adaptive(
        None, todo, 2, lambda t, a: None, memory_limit=3 * gib, writer_bytes=int(0.4 * gib)  # type: ignore[arg-type]
    )
    assert alone == todo[:expected_alone]
    assert rest == {"todo": todo[expected_alone:], "parallel": expected_parallel} and chosen == expected_parallel
    assert peak == pytest.approx(np.mean(readings) * gib, rel=1e-6)


def test_run_batch_memory_limit_sets_tiles_at_once(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48).values
    tight = run_batch(*_args(files), tmp_path / "tight.tif", method="bicubic", chunk=50, progress=False,
                      memory_limit=1)
    assert tight.parallel_tiles == 1  # a limit below one tile is not an error: one tile at a time
    roomy = run_batch(*_args(files), tmp_path / "roomy.tif", method="bicubic", chunk=50, progress=False,
                      memory_limit=2**40)
    assert roomy.parallel_tiles == (2 if (os.cpu_count() or 1) >= 2 else 1)
    if roomy.parallel_tiles == 2:
        assert roomy.tile_peak_bytes is not None and tight.tile_peak_bytes is not None  # measured on tile 1
    fixed = run_batch(*_args(files), tmp_path / "fixed.tif", method="bicubic", chunk=50, progress=False,
                      parallel_tiles=2)
    assert fixed.parallel_tiles == 2 and fixed.tile_peak_bytes is None  # asked for: not measured, not changed
    for res in (tight, roomy, fixed):
        np.testing.assert_allclose(open_raster(res.path).values, ref, atol=1e-6)
    with pytest.raises(DcstsfInputError, match="memory_limit"):
        run_batch(*_args(files), tmp_path / "bad.tif", method="bicubic", progress=False, memory_limit=-5)


def test_one_tile_at_a_time_runs_in_the_calling_thread(
    files: dict[str, Path], case: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one tile at a time every tile is computed in the calling thread: a tile thread would start a
    second OpenMP team next to the calling thread's, and libgomp then ran the model on about one core."""
    import threading

    from dcstsf.engine import batch

    threads: list[str] = []
    compute = batch._compute_tile_local

    def recording(job: Any, t: tuple[int, int]) -> Any:
        threads.append(threading.current_thread().name)
        return compute(job, t)

    monkeypatch.setattr(batch, "_compute_tile_local", recording)
    res = run_batch(*_args(files), tmp_path / "one.tif", method="bicubic", chunk=48, progress=False,
                    parallel_tiles=1)
    assert res.tiles_computed == res.tiles_total > 1
    assert threads == [threading.current_thread().name] * res.tiles_total
    threads.clear()
    run_batch(*_args(files), tmp_path / "two.tif", method="bicubic", chunk=48, progress=False, parallel_tiles=2)
    assert all(name.startswith("dcstsf-tile") for name in threads)
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48).values
    for name in ("one.tif", "two.tif"):
        np.testing.assert_allclose(open_raster(tmp_path / name).values, ref, atol=1e-6)

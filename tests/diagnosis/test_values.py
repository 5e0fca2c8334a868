"""The reflectance-value check of every input: fill values, unscaled numbers, misapplied scales, bounded cost."""

from __future__ import annotations

from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from dcstsf.diagnosis.values import ValueCheck, check_reflectance_values, raise_or_warn
from dcstsf.errors import DcstsfInputError
from tests.scenes import synthetic_scene


def _cube(nb: int = 10, ny: int = 300, nx: int = 300, seed: int = 0) -> np.ndarray:
    """Reflectance between 0.02 and 0.5 (no value outside the plausible range)."""
    return np.random.default_rng(seed).uniform(0.02, 0.5, size=(nb, ny, nx)).astype(np.float32)


def _da(data: np.ndarray, source: str | None = None) -> xr.DataArray:
    da = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": [f"b{i + 1}" for i in range(data.shape[0])]})
    if source is not None:
        da.encoding["source"] = source
    return da


def test_clean_reflectance_is_ok() -> None:
    scene = synthetic_scene()
    check = check_reflectance_values(scene, name="HS(t1)", role="hs")
    assert check.severity == "ok" and check.suspected_fill is None
    # small enough to be taken whole: 32 of its 60 bands, every pixel
    assert check.n_values == 32 * 36 * 36
    assert check.fraction_below == 0.0 and check.fraction_above == 0.0
    assert 0.0 < check.low < check.high < 1.0
    raise_or_warn([check])  # neither raises nor warns (a warning would fail this test)


def test_negative_water_pixels_are_ok() -> None:
    data = _cube()
    data[:, :40, :] = -0.02  # over-corrected dark water: 13 % of the scene slightly negative
    check = check_reflectance_values(_da(data), name="MS(t1)", role="ms")
    assert check.severity == "ok" and check.fraction_below == 0.0
    assert check.low == pytest.approx(-0.02)


def test_nan_is_nodata() -> None:
    data = _cube()
    data[:, :150, :] = np.nan
    check = check_reflectance_values(_da(data), name="MS(t1)", role="ms")
    assert check.severity == "ok" and check.n_values == 10 * 50 * 100  # half the 100 x 100 strided pixels
    empty = check_reflectance_values(_da(np.full((2, 5, 5), np.nan, np.float32)), name="MS(t2)", role="ms")
    assert empty.severity == "ok" and empty.n_values == 0 and "no valid values" in empty.message


def test_undeclared_fill_in_half_a_percent_of_pixels_is_an_error() -> None:
    data = _cube()
    fill = np.random.default_rng(1).random((300, 300)) < 0.005
    data[:, fill] = -9999.0
    check = check_reflectance_values(_da(data, "/data/s2_t1.tif"), name="MS(t1)", role="ms")
    assert check.severity == "error" and check.suspected_fill == -9999.0
    assert 0.003 < check.fraction_below < 0.007 and check.low == -9999.0
    assert "MS(t1) (/data/s2_t1.tif)" in check.message
    assert "--ms-nodata -9999" in check.message and "ms_nodata=-9999" in check.message
    with pytest.raises(DcstsfInputError, match="--ms-nodata -9999"):
        raise_or_warn([check])


def test_fill_after_a_scale_names_the_stored_number() -> None:
    """int16 -32768 read with scale 0.0001 decodes to -3.2768: the option wants the stored number."""
    data = _cube()
    data[:, ::50, ::50] = np.float32(-32768 * 1e-4)
    check = check_reflectance_values(_da(data), name="HS(t1)", role="hs")
    assert check.severity == "error" and check.suspected_fill == pytest.approx(-3.2768)
    assert "--hs-nodata -3.2768" in check.message and "(-3.2768 - offset) / scale" in check.message


def test_fill_over_most_of_the_image_is_still_a_fill() -> None:
    data = _cube()
    data[:, :200, :] = 65535.0
    check = check_reflectance_values(_da(data), name="MS(t2)", role="ms")
    assert check.severity == "error" and check.suspected_fill == 65535.0
    assert "--ms-nodata 65535" in check.message and "--ms-scale" not in check.message


def test_digital_numbers_read_as_reflectance_suggest_a_scale() -> None:
    dn = np.round(_cube() * 10000)
    ms = check_reflectance_values(_da(dn), name="MS(t1)", role="ms")
    assert ms.severity == "error" and ms.suspected_fill is None and ms.fraction_above == 1.0
    assert "--ms-scale 0.0001" in ms.message and "ms_scale=0.0001" in ms.message
    assert "--ms-offset -0.1" in ms.message and "04.00" in ms.message
    hs = check_reflectance_values(_da(dn), name="HS(t1)", role="hs")
    assert "--hs-scale 0.0001" in hs.message and "offset" not in hs.message


def test_percent_reflectance_suggests_a_scale_of_a_hundredth() -> None:
    check = check_reflectance_values(_da(_cube() * 100), name="HS(t1)", role="hs")
    assert check.severity == "error" and "--hs-scale 0.01" in check.message and "0.0001" not in check.message


def test_scale_and_offset_applied_to_reflectance_suggest_dropping_them() -> None:
    check = check_reflectance_values(_da(_cube() * 1e-4 - 0.1), name="MS(t1)", role="ms")
    assert check.severity == "error" and check.fraction_below == 1.0
    assert "Drop --ms-scale and --ms-offset" in check.message


def test_one_unscaled_band_is_named() -> None:
    data = _cube()
    data[3] *= 10000
    check = check_reflectance_values(_da(data), name="MS(t1)", role="ms")
    assert check.severity == "error" and check.suspected_fill is None
    assert check.fraction_above == pytest.approx(0.1)
    assert "mostly in bands b4)" in check.message


def test_thresholds_between_ok_warning_and_error() -> None:
    def with_glint(fraction: float) -> ValueCheck:
        data = _cube(nb=4, ny=100, nx=100)
        n = round(fraction * data.size)
        flat = data.reshape(-1)
        idx = np.random.default_rng(2).choice(flat.size, n, replace=False)
        flat[idx] = np.random.default_rng(3).uniform(1.55, 1.95, n)  # distinct values: glint, not a fill
        return check_reflectance_values(_da(data), name="MS(t2)", role="ms")

    assert with_glint(0.0005).severity == "ok"
    warn = with_glint(0.005)
    assert warn.severity == "warning" and warn.suspected_fill is None and "--ms-scale" in warn.message
    with pytest.warns(UserWarning, match="MS\\(t2\\).*above 1.5"):
        raise_or_warn([warn])
    assert with_glint(0.02).severity == "error"


def test_raise_or_warn_joins_every_error() -> None:
    good = check_reflectance_values(_da(_cube()), name="MS(t1)", role="ms")
    bad_hs = check_reflectance_values(_da(_cube() * 10000), name="HS(t1)", role="hs")
    bad_ms = check_reflectance_values(_da(_cube() * 1e-4 - 0.1), name="MS(t2)", role="ms")
    with pytest.raises(DcstsfInputError) as exc:
        raise_or_warn([good, bad_hs, bad_ms])
    lines = str(exc.value).splitlines()
    assert len(lines) == 2 and lines[0].startswith("HS(t1): ") and lines[1].startswith("MS(t2): ")


def test_role_must_be_hs_or_ms() -> None:
    with pytest.raises(ValueError, match="role"):
        check_reflectance_values(_da(_cube(nb=1, ny=4, nx=4)), name="HS(t1)", role="pan")


class _CountingScene:
    """A (10, 2000, 2000) scene made up on demand, counting the values each read returns.

    Reflectance 0.25 except an undeclared fill value -9999 at 1 pixel in 200 (a diagonal pattern).
    """

    shape = (10, 2000, 2000)
    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self) -> None:
        self.values_read = 0

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        b, y, x = (range(*k.indices(n)) for k, n in zip(key, self.shape))
        yy, xx = np.meshgrid(np.asarray(y), np.asarray(x), indexing="ij")
        plane = np.where((7 * yy + 13 * xx) % 200 == 0, -9999.0, 0.25).astype(np.float32)
        out = np.broadcast_to(plane, (len(b), *plane.shape)).copy()
        self.values_read += out.size
        return out


def test_dask_input_is_sampled_in_a_few_chunks() -> None:
    scene = _CountingScene()
    chunk = (10, 100, 100)
    lazy = dsa.from_array(scene, chunks=chunk, meta=np.empty((0, 0, 0), np.float32))
    # An elementwise step as decoding adds: Dask then reads whole chunks, not just the sampled pixels.
    da = xr.DataArray(lazy * np.float32(1.0) + np.float32(0.0), dims=("band", "y", "x"))
    check = check_reflectance_values(da, name="MS(t1)", role="ms", sample=20_000)
    assert check.severity == "error" and check.suspected_fill == -9999.0
    assert 0 < check.n_values <= 20_000
    # at most 3 x 3 chunks computed, of the scene's 400
    assert 0 < scene.values_read <= 9 * int(np.prod(chunk))


def test_fill_in_a_corner_of_a_finely_chunked_dask_array_is_found() -> None:
    """Sampled chunks run from edge to edge: a fill frame or corner is where undeclared fill values sit."""
    data = _cube(ny=600, nx=600)
    data[:, :5, :7] = -9999.0
    da = _da(data).chunk({"band": -1, "y": 50, "x": 50})
    check = check_reflectance_values(da, name="MS(t2)", role="ms", sample=20_000)
    assert check.severity == "error" and check.suspected_fill == -9999.0 and check.n_values <= 20_000
    # a small Dask array is strided whole
    small = check_reflectance_values(_da(data[:, :120, :60]).chunk({"y": 16, "x": 16}), name="MS(t2)", role="ms")
    assert small.severity == "error" and small.n_values == 10 * 120 * 60


def test_small_sample_budget_is_respected_in_memory() -> None:
    check = check_reflectance_values(_da(_cube(nb=60, ny=500, nx=400)), name="HS(t1)", role="hs", sample=5_000)
    assert 0 < check.n_values <= 5_000 and check.severity == "ok"


def test_opened_file_is_named(tmp_path: Path) -> None:
    from dcstsf.io import open_raster
    from tests.io.rasters import make_tif

    data = _cube(nb=3, ny=40, nx=40)
    data[:, ::9, ::9] = -9999.0
    path = make_tif(tmp_path / "ms_t1.tif", data)
    check = check_reflectance_values(open_raster(path, chunks=16), name="MS(t1)", role="ms")
    assert check.severity == "error" and f"MS(t1) ({path})" in check.message and "--ms-nodata -9999" in check.message


def test_undeclared_zero_fill_is_found() -> None:
    # 0 lies inside the plausible range, but a swath edge of exact zeros in every band is fill
    data = _cube()
    data[:, :, :30] = 0.0  # 10 % of the scene
    check = check_reflectance_values(_da(data, "hs.tif"), name="HS(t1)", role="hs")
    assert check.severity == "error" and check.suspected_fill == 0.0
    assert "exactly 0 in all 10 sampled bands" in check.message and "--hs-nodata 0" in check.message
    small = _cube()
    small[:, :30, :15] = 0.0  # 0.5 %: a warning
    assert check_reflectance_values(_da(small), name="MS(t1)", role="ms").severity == "warning"
    # zeros in some bands only (clipped dark water in the SWIR) are reflectance
    dark = _cube()
    dark[5:, :, :100] = 0.0
    assert check_reflectance_values(_da(dark), name="MS(t1)", role="ms").severity == "ok"

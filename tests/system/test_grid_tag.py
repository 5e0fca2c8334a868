"""The MS grid's pixel size comes from the file's transform: no private attribute changes a fusion.

The demo case (bundled EnMAP sample, 30 m pixels standing for a 10 m Sentinel-2 grid) is written on the
grid it stands for, so its files say 10 m in their georeference. Re-saved with an ``ms_grid_gsd_m``
attribute in the MS files (the value an earlier simulator wrote, and one that contradicts the transform),
they fuse to exactly the result of the files without it. A control shows the comparison can fail: the
same arrays labelled with the source's 30 m pixels fuse to another result, because the MS blur follows
the grid's pixel size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from dcstsf.datasets import load_bundled_sample
from dcstsf.demo import DEMO_CHANGE, DEMO_HS_SENSOR, DEMO_MS_BANDS, DEMO_MS_SENSOR, DEMO_RATIO, DEMO_SEED
from dcstsf.engine import run_batch
from dcstsf.io import open_raster, write_raster
from dcstsf.operators import ObservationModel
from dcstsf.simulate import simulate_case

#: The methods whose result depends on the MS blur (two-step does not use it).
METHODS = ("variational", "dcstsf")


@pytest.fixture(scope="module")
def demo_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo's case files, simulated as ``dcstsf demo`` does."""
    model = ObservationModel.from_sensors(DEMO_HS_SENSOR, DEMO_MS_SENSOR, ms_bands=list(DEMO_MS_BANDS),
                                          ratio=DEMO_RATIO)
    case = simulate_case(load_bundled_sample(), model=model, change=DEMO_CHANGE, seed=DEMO_SEED)
    return case.save(tmp_path_factory.mktemp("demo-case"))


def _resave(paths: dict[str, Path], d: Path, *, tag: float | None = None, ms_step: float | None = None) -> list[Path]:
    """The case's three inputs re-saved under ``d``: with an ``ms_grid_gsd_m`` attribute on the MS files, or
    with pixel sizes of ``ms_step`` (MS) and three times that (HS) at the same corner."""
    d.mkdir()
    out = []
    for key in ("hs_t1", "ms_t1", "ms_t2"):
        da = open_raster(paths[key])
        if tag is not None and key != "hs_t1":
            da.attrs["ms_grid_gsd_m"] = tag
        if ms_step is not None:
            da = _relabel(da, ms_step * (DEMO_RATIO if key == "hs_t1" else 1))
        out.append(write_raster(da, d / paths[key].name))
    return out


def _relabel(da: xr.DataArray, step: float) -> xr.DataArray:
    t = da.rio.transform(recalc=True)
    da = da.assign_coords(x=t.c + step * (np.arange(da.sizes["x"]) + 0.5),
                          y=t.f - step * (np.arange(da.sizes["y"]) + 0.5))
    return da.rio.write_transform(Affine(step, 0.0, t.c, 0.0, -step, t.f))


def _fused(inputs: list[Path], out: Path, method: str) -> np.ndarray:
    run_batch(*inputs, out, method=method, progress=False)
    with rasterio.open(out) as src:
        return src.read()


def test_demo_files_carry_the_grid_not_a_tag(demo_case: dict[str, Path]) -> None:
    for key, step in (("hs_t1", 30.0), ("ms_t1", 10.0), ("ms_t2", 10.0), ("hs_t2_truth", 10.0)):
        with rasterio.open(demo_case[key]) as src:
            assert (src.transform.a, src.transform.e) == (step, -step), key
            assert "ms_grid_gsd_m" not in src.tags(), key
        assert "ms_grid_gsd_m" not in open_raster(demo_case[key]).attrs


@pytest.mark.parametrize("method", METHODS)
def test_an_ms_grid_tag_changes_nothing(demo_case: dict[str, Path], method: str, tmp_path: Path) -> None:
    plain = _fused(_resave(demo_case, tmp_path / "plain"), tmp_path / "plain.tif", method)
    assert np.isfinite(plain).all()
    for tag in (10.0, 30.0):
        tagged_inputs = _resave(demo_case, tmp_path / f"tag{tag:g}", tag=tag)
        with rasterio.open(tagged_inputs[1]) as src:
            assert float(src.tags()["ms_grid_gsd_m"]) == tag  # the tag is in the file
        tagged = _fused(tagged_inputs, tmp_path / f"tag{tag:g}.tif", method)
        np.testing.assert_array_equal(tagged, plain, err_msg=f"ms_grid_gsd_m={tag:g} changed the {method} result")
    # control: the pixel size of the transform does set the MS blur
    coarse = _fused(_resave(demo_case, tmp_path / "30m", ms_step=30.0), tmp_path / "30m.tif", method)
    assert np.abs(coarse - plain).max() > 1e-3

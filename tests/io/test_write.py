"""write_raster: round trips in every format, integer output, streaming, atomic replacement."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import pytest
import rasterio

import dcstsf.io.write as io_write
from dcstsf.errors import DcstsfInputError
from dcstsf.io import RASTER_SUFFIXES, open_raster, write_raster
from tests.io.rasters import assert_same_raster, reflectance_cube


@pytest.mark.parametrize("suffix", sorted(RASTER_SUFFIXES))
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    da = reflectance_cube()
    out = write_raster(da, tmp_path / f"out{suffix}")
    back = open_raster(out)
    assert_same_raster(back, da)
    assert back.attrs["method"] == "unit-test" and back.attrs["dcstsf_version"] == "0.1.0"
    assert list(back["bbl"].values) == [1, 1, 1, 1]
    assert sorted(os.listdir(tmp_path)) == [f"out{suffix}"]  # no temporaries, no sidecars


@pytest.mark.parametrize("suffix", sorted(RASTER_SUFFIXES))
def test_wavelengths_in_micrometres_are_written_in_nm(tmp_path: Path, suffix: str) -> None:
    da = reflectance_cube()
    nm, fwhm = da["wavelength"].values.copy(), da["fwhm"].values.copy()
    um = da.assign_coords(wavelength=("band", nm / 1000.0, {"units": "um"}), fwhm=("band", fwhm / 1000.0))
    back = open_raster(write_raster(um, tmp_path / f"out{suffix}"))
    np.testing.assert_allclose(back["wavelength"].values, nm)
    np.testing.assert_allclose(back["fwhm"].values, fwhm)


def test_int16_output_with_scale(tmp_path: Path) -> None:
    da = reflectance_cube()
    out = write_raster(da, tmp_path / "i.tif", dtype="int16", scale=1e-4)
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "int16" and src.scales[0] == pytest.approx(1e-4) and src.nodata == -32768
    assert_same_raster(open_raster(out), da, atol=0.5e-4 + 1e-7)
    with pytest.raises(DcstsfInputError, match="scale"):
        write_raster(da, tmp_path / "j.tif", dtype="int16")


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".nc"])
def test_dask_backed_write(tmp_path: Path, suffix: str) -> None:
    da = reflectance_cube(h=70, w=90).chunk({"band": -1, "y": 32, "x": 32})
    out = write_raster(da, tmp_path / f"d{suffix}", blocksize=32)
    assert da.chunks is not None  # the input stays lazy
    assert_same_raster(open_raster(out), da.compute())


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".nc"])
def test_failed_write_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    calls = {"n": 0}

    def explode(block: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("disk on fire")
        return block

    da = reflectance_cube(h=64, w=64).chunk({"band": -1, "y": 32, "x": 32})
    bad = da.copy(data=dsa.map_blocks(explode, da.data, dtype=np.float32))
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_raster(bad, tmp_path / f"x{suffix}", blocksize=32)
    assert calls["n"] > 1  # it failed mid-write, not before starting
    assert os.listdir(tmp_path) == []


def test_failure_keeps_existing_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = write_raster(reflectance_cube(), tmp_path / "keep.tif")
    before = out.read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("simulated crash while writing")

    monkeypatch.setattr(io_write, "write_geotiff", boom)
    with pytest.raises(OSError, match="simulated crash"):
        write_raster(reflectance_cube(seed=5), out, overwrite=True)
    assert out.read_bytes() == before and os.listdir(tmp_path) == ["keep.tif"]


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_overwrite(tmp_path: Path, suffix: str) -> None:
    out = write_raster(reflectance_cube(seed=1), tmp_path / f"o{suffix}")
    with pytest.raises(DcstsfInputError, match="--overwrite") as exc:
        write_raster(reflectance_cube(seed=2), out)
    assert str(out) in str(exc.value)
    write_raster(reflectance_cube(seed=2), out, overwrite=True)
    assert_same_raster(open_raster(out), reflectance_cube(seed=2))
    assert sorted(os.listdir(tmp_path)) == [f"o{suffix}"]


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError, match="suffix"):
        write_raster(reflectance_cube(), tmp_path / "x.png")

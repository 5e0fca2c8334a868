"""Batch runs, files in and file out: GeoTIFF, COG, scaled integers, Zarr and NetCDF, clear refusals."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcstsf.engine import fuse, run_batch, work_dir_for
from dcstsf.engine import stream as stream_module
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from tests.engine.cases import HS_SENSOR, WL, batch_args


def test_local_batch_run_does_not_import_distributed(files: dict[str, Path], tmp_path: Path) -> None:
    """Without workers= or scheduler= a batch run uses Dask's local schedulers by function, and its tile
    tasks take their input chunks by key: nothing imports dask.distributed, whose import is slow."""
    hs, ms1, ms2 = (str(p) for p in batch_args(files))
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
    res = run_batch(*batch_args(files), out, method="bicubic", chunk=50, progress=False)
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
        run_batch(*batch_args(files), out, method="bicubic", progress=False)
    run_batch(*batch_args(files), out, method="bicubic", progress=False, overwrite=True)


def test_run_batch_hands_finished_tiles_to_the_writer_in_memory(
    files: dict[str, Path], case: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rasterio

    reads: list[tuple[int, int]] = []
    real_load = stream_module.load_tile

    def recording(work: Path, t: tuple[int, int]) -> np.ndarray:
        reads.append(t)
        return real_load(work, t)

    monkeypatch.setattr(stream_module, "load_tile", recording)
    out = tmp_path / "fused.tif"
    run_batch(*batch_args(files), out, method="bicubic", chunk=48, parallel_tiles=1, predictor="float",
              progress=False)
    assert reads == []  # every tile reached the writer in memory; the .npy files only serve a resume
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48).values
    np.testing.assert_allclose(open_raster(out).values, ref, atol=1e-6)
    with pytest.raises(DcstsfInputError, match="GeoTIFF output only"):
        run_batch(*batch_args(files), tmp_path / "f.zarr", method="bicubic", predictor="float", progress=False)
    for int16 in ("int16", np.dtype(np.int16)):
        with pytest.raises(DcstsfInputError, match="floating-point output"):
            run_batch(*batch_args(files), tmp_path / "i.tif", method="bicubic", dtype=int16, out_scale=1e-4,
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
    run_batch(*batch_args(files), out, method="bicubic", chunk=48, blend=3, cog=True, dtype="int16", out_scale=1e-4,
              progress=False)
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "int16" and src.scales[0] == pytest.approx(1e-4)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    back = open_raster(out)
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48, blend=3).values
    np.testing.assert_allclose(back.values, ref, atol=0.6e-4)


class _Stop(RuntimeError):
    pass


def test_failed_write_leaves_no_file_under_the_final_name(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "x.tif"

    def boom(*a: Any) -> None:
        raise _Stop("failure")

    with pytest.raises(_Stop):
        run_batch(*batch_args(files), out, method="bicubic", chunk=21, progress=False, on_tile=boom)
    assert not out.exists()
    with pytest.raises(DcstsfInputError, match="unknown output format"):
        run_batch(*batch_args(files), tmp_path / "x.png", method="bicubic", progress=False)

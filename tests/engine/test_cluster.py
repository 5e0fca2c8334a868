"""Dask clusters: an external scheduler and a local cluster of worker processes give the threaded result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcstsf.engine import fuse, run_batch
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from tests.engine.cases import HS_SENSOR, batch_args


def test_distributed_results_equal_threaded(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    threaded = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21).values
    ref = tmp_path / "threaded.tif"
    run_batch(*batch_args(files), ref, method="bicubic", chunk=21, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster):
            dist = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", hs_sensor=HS_SENSOR, chunk=21)
            np.testing.assert_array_equal(dist.values, threaded)
        out = tmp_path / "external.tif"
        run_batch(*batch_args(files), out, method="bicubic", chunk=21, progress=False,
                  scheduler=cluster.scheduler_address)
        np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)


def test_local_cluster_with_worker_processes(files: dict[str, Path], tmp_path: Path) -> None:
    ref = tmp_path / "threaded.tif"
    run_batch(*batch_args(files), ref, method="bicubic", chunk=48, progress=False)
    out = tmp_path / "cluster.tif"
    res = run_batch(*batch_args(files), out, method="bicubic", chunk=48, progress=False, workers=1)
    assert res.tiles_computed == res.tiles_total
    np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)


def test_workers_and_scheduler_together_are_an_error(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError, match="not both"):
        run_batch(*batch_args(files), tmp_path / "x.tif", method="bicubic", progress=False, workers=1,
                  scheduler="tcp://127.0.0.1:1")

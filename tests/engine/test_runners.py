"""Tile runners: one tile at a time in the calling thread, several on tile threads, the memory rule's split."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcstsf.engine import fuse, memory, run_batch, runners
from dcstsf.io import open_raster
from tests.engine.cases import batch_args


def test_one_tile_at_a_time_runs_in_the_calling_thread(
    files: dict[str, Path], case: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one tile at a time every tile is computed in the calling thread: a tile thread would start a
    second OpenMP team next to the calling thread's, and libgomp then ran the model on about one core."""
    threads: list[str] = []
    compute = runners.compute_tile_local

    def recording(job: Any, t: tuple[int, int]) -> Any:
        threads.append(threading.current_thread().name)
        return compute(job, t)

    monkeypatch.setattr(runners, "compute_tile_local", recording)
    res = run_batch(*batch_args(files), tmp_path / "one.tif", method="bicubic", chunk=48, progress=False,
                    parallel_tiles=1)
    assert res.tiles_computed == res.tiles_total > 1
    assert threads == [threading.current_thread().name] * res.tiles_total
    threads.clear()
    run_batch(*batch_args(files), tmp_path / "two.tif", method="bicubic", chunk=48, progress=False,
              parallel_tiles=2)
    assert all(name.startswith("dcstsf-tile") for name in threads)
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48).values
    for name in ("one.tif", "two.tif"):
        np.testing.assert_allclose(open_raster(tmp_path / name).values, ref, atol=1e-6)


@pytest.mark.parametrize(("readings", "alone", "parallel"), [([0.60], 1, 2), ([0.80, 0.80], 2, 1)])
def test_adaptive_runner_runs_the_measured_tiles_alone_then_the_rest(
    monkeypatch: pytest.MonkeyPatch, readings: list[float], alone: int, parallel: int
) -> None:
    gib = 2**30
    values = iter(readings)
    measured: list[tuple[int, int]] = []
    rest: dict[str, Any] = {}

    def measure_tile_alone(job: Any, t: tuple[int, int], finish: Any) -> int:
        measured.append(t)
        return int(next(values) * gib)

    def run_local(job: Any, todo: list[tuple[int, int]], parallel: int, finish: Any) -> None:
        rest.update(todo=todo, parallel=parallel)

    monkeypatch.setattr(runners, "measure_tile_alone", measure_tile_alone)
    monkeypatch.setattr(runners, "run_tiles_local", run_local)
    monkeypatch.setattr(memory, "rss_bytes", lambda: int(0.9 * gib))
    todo = [(0, i) for i in range(6)]
    chosen, peak = runners.run_tiles_adaptive(
        None, todo, 2, lambda t, a: None, memory_limit=3 * gib, writer_bytes=int(0.4 * gib)  # type: ignore[arg-type]
    )
    assert measured == todo[:alone]
    assert rest == {"todo": todo[alone:], "parallel": parallel} and chosen == parallel
    assert peak == pytest.approx(np.mean(readings) * gib, rel=1e-6)
    # Without a limit nothing is measured and every tile runs with the tiles at once asked for.
    measured.clear()
    assert runners.run_tiles_adaptive(None, todo, 2, lambda t, a: None, memory_limit=None,  # type: ignore[arg-type]
                                      writer_bytes=0) == (2, None)
    assert measured == [] and rest == {"todo": todo, "parallel": 2}

"""Tile runners: one tile at a time in the calling thread, several on tile threads, the memory rule's split, and
results that do not depend on the execution path."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from dcstsf.engine import fuse, memory, run_batch, runners
from dcstsf.engine.plan import TilePlan
from dcstsf.io import open_raster, write_raster
from dcstsf.simulate import simulate_case
from tests.engine.cases import batch_args
from tests.scenes import synthetic_scene


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
    two = run_batch(*batch_args(files), tmp_path / "two.tif", method="bicubic", chunk=48, progress=False,
                    parallel_tiles=2)
    if two.parallel_tiles == 2:
        # the first tile alone in the calling thread while its memory is measured, the others on tile threads
        assert threads[0] == threading.current_thread().name
        assert all(name.startswith("dcstsf-tile") for name in threads[1:])
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
    job: Any = SimpleNamespace(plan=TilePlan(height=96, width=576, ratio=3, chunk=96, halo=0))
    budget = memory.MemoryBudget(limit=3 * gib, writer_fixed=int(0.4 * gib))
    chosen, peak = runners.run_tiles_adaptive(job, todo, 2, lambda t, a: None, budget=budget)
    assert measured == todo[:alone]
    assert rest == {"todo": todo[alone:], "parallel": parallel} and chosen == parallel
    assert peak == pytest.approx(np.mean(readings) * gib, rel=1e-6)
    # Without a limit nothing is measured and every tile runs with the tiles at once asked for.
    measured.clear()
    assert runners.run_tiles_adaptive(job, todo, 2, lambda t, a: None, budget=None) == (2, None)
    assert measured == [] and rest == {"todo": todo, "parallel": 2}


@pytest.fixture(scope="module")
def ahsi_files(model4: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A simulated AHSI + four Sentinel-2 bands case (the shipped DC-STSF weights), 48 x 96 fine pixels: two
    48 px tiles."""
    case = simulate_case(synthetic_scene(ny=48, nx=96, nb=50), model=model4, seed=2)
    d = tmp_path_factory.mktemp("ahsi")
    hs, ms1, ms2 = (write_raster(getattr(case, n), d / f"{n}.tif") for n in ("hs_t1", "ms_t1", "ms_t2"))
    return hs, ms1, ms2


class _Stop(Exception):
    """Stops a run after some tiles, as a kill would."""


@pytest.mark.parametrize("method", ["dcstsf", "variational"])
def test_execution_paths_give_identical_outputs(
    ahsi_files: tuple[Path, Path, Path], tmp_path: Path, method: str
) -> None:
    """One tile at a time (every core on each tile), two at once (the first tile alone while its memory is
    measured, the other on a tile thread with the cores shared out) and a resumed run (its first tile, the
    second of the plan, alone) give the same output, bit for bit."""
    kw: dict[str, Any] = {"method": method, "chunk": 48, "progress": False}
    one = run_batch(*ahsi_files, tmp_path / "one.tif", parallel_tiles=1, **kw)
    two = run_batch(*ahsi_files, tmp_path / "two.tif", parallel_tiles=2, **kw)

    def stop_after_one(t: tuple[int, int], done: int, total: int) -> None:
        raise _Stop

    with pytest.raises(_Stop):
        run_batch(*ahsi_files, tmp_path / "resumed.tif", parallel_tiles=2, on_tile=stop_after_one, **kw)
    resumed = run_batch(*ahsi_files, tmp_path / "resumed.tif", parallel_tiles=2, **kw)
    assert one.tiles_total == 2 and resumed.tiles_skipped == 1
    ref = open_raster(one.path).values
    for res in (two, resumed):
        np.testing.assert_array_equal(open_raster(res.path).values, ref)

"""The memory rule: tiles at once from a measured tile peak, a borderline reading read twice, a limit that
cannot hold one tile refused with the limit and tile size that fit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcstsf.engine import batch, fuse, memory, run_batch
from dcstsf.engine.plan import TilePlan
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from tests.engine.cases import batch_args

GIB = 2**30
#: 6 x 6 tiles of 96 px at ratio 3, no halo: every window is its tile.
PLAN = TilePlan(height=576, width=576, ratio=3, chunk=96, halo=0)


def test_parallel_tiles_from_memory() -> None:
    fits = memory.parallel_for_memory
    # 1.15x headroom per tile when several run at once: two 0.8 GiB tiles need 1.84 GiB next to 1 GiB of
    # base and writer, two 0.9 GiB tiles 2.07 GiB
    assert fits(2, limit=3 * GIB, base=GIB // 2, writer=GIB // 2, tile_peak=int(0.8 * GIB)) == 2
    assert fits(2, limit=3 * GIB, base=GIB // 2, writer=GIB // 2, tile_peak=int(0.9 * GIB)) == 1
    assert fits(4, limit=64 * GIB, base=GIB, writer=GIB, tile_peak=GIB) == 4  # never above asked
    # one tile at a time fits when its measured peak does (it runs in the calling thread)
    assert fits(2, limit=3 * GIB, base=GIB, writer=GIB, tile_peak=GIB) == 1
    assert fits(2, limit=3 * GIB, base=GIB, writer=GIB, tile_peak=GIB + 1) == 0  # not even one
    assert fits(2, limit=GIB, base=2 * GIB, writer=0, tile_peak=GIB) == 0


def _tiles_at_once(readings: list[float], alone: list[int], *, tiles: int = 6) -> tuple[int, int, int]:
    """The rule for two tiles at once with a 3 GiB limit, 0.9 GiB of base (patched ``rss_bytes``) and 0.4 GiB
    of writer: room for 1.7 GiB of tiles. ``alone`` collects the tiles measured alone."""
    values = iter(readings)

    def measure_alone(i: int) -> int:
        alone.append(i)
        return int(next(values) * GIB)

    budget = memory.MemoryBudget(limit=3 * GIB, writer_fixed=int(0.4 * GIB), step=48)
    return memory.tiles_at_once(2, budget=budget, plan=PLAN, tiles=PLAN.tiles()[:tiles], measure_alone=measure_alone)


@pytest.mark.parametrize(
    ("readings", "expected_alone", "expected_parallel"),
    [
        ([0.60], 1, 2),  # fits: no second reading
        ([0.80, 0.62], 2, 2),  # borderline: the mean (0.71) fits
        ([0.80, 0.80], 2, 1),  # borderline twice: one at a time
        ([1.50], 1, 1),  # far above two, one fits: one reading is enough
        ([1.90, 1.40], 2, 1),  # one tile borderline: the mean (1.65) fits
    ],
)
def test_borderline_tile_memory_is_read_twice(
    monkeypatch: pytest.MonkeyPatch, readings: list[float], expected_alone: int, expected_parallel: int
) -> None:
    # two tiles fit up to a reading of 1.7 / 2 / 1.15 = 0.739 GiB, one up to 1.7 GiB
    monkeypatch.setattr(memory, "rss_bytes", lambda: int(0.9 * GIB))
    alone: list[int] = []
    chosen, peak, measured = _tiles_at_once(readings, alone)
    assert alone == list(range(expected_alone)) and measured == expected_alone
    assert chosen == expected_parallel
    assert peak == pytest.approx(np.mean(readings) * GIB, rel=1e-6)


@pytest.mark.parametrize(("readings", "expected_alone"), [([2.50], 1), ([1.90, 1.90], 2)])
def test_a_limit_that_cannot_hold_one_tile_is_refused_after_its_measurement(
    monkeypatch: pytest.MonkeyPatch, readings: list[float], expected_alone: int
) -> None:
    monkeypatch.setattr(memory, "rss_bytes", lambda: int(0.9 * GIB))
    alone: list[int] = []
    with pytest.raises(DcstsfInputError) as err:
        _tiles_at_once(readings, alone)
    assert alone == list(range(expected_alone))  # the measured tiles were computed (and saved) first
    msg = str(err.value)
    peak = np.mean(readings) * GIB
    need = 0.9 * GIB + 0.4 * GIB + peak
    assert f"one tile at a time needs {need / GIB:.2f} GiB" in msg
    # the smallest limit named keeps the headroom, rounded up to a tenth of a GiB
    suggested = np.ceil((need - peak + 1.15 * peak) / (GIB / 10)) / 10
    assert f"--memory-limit {suggested:.1f}GiB" in msg and "memory_limit=3.00 GiB" in msg
    # a tile's memory grows with its window's area: the chunk named fits the 1.7 GiB of room
    chunk = int(msg.split("--chunk ")[1].split(")")[0])
    assert chunk % 48 == 0 and 0 < chunk < PLAN.chunk
    assert 1.15 * peak * (chunk / 96) ** 2 <= 1.7 * GIB < 1.15 * peak * ((chunk + 48) / 96) ** 2


def test_a_borderline_reading_with_two_tiles_left_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "rss_bytes", lambda: int(0.9 * GIB))
    chosen, _, measured = _tiles_at_once([0.8], [], tiles=2)
    assert (chosen, measured) == (1, 1)


def test_chunk_to_fit_scales_the_tile_with_its_window() -> None:
    plan = TilePlan(height=960, width=960, ratio=3, chunk=480, halo=24)
    budget = memory.MemoryBudget(limit=GIB, writer_fixed=GIB // 4, writer_per_pixel=4, step=48)
    area = (480 + 24) ** 2  # the corner tile's window
    # room for 0.75 GiB minus the writer's tile, 2 GiB for a 504 px window: a 288 px window, 240 px tiles
    chunk = memory.chunk_to_fit(budget, plan, base=0, tile_bytes=2 * GIB, area=area)
    need = lambda c: GIB / 4 + 4 * c * c + 2 * GIB * (c + 48) ** 2 / area  # noqa: E731
    assert chunk == 240 and need(chunk) <= GIB < need(chunk + 48)
    assert memory.chunk_to_fit(budget, plan, base=GIB, tile_bytes=2 * GIB, area=area) == 0  # none fits


def test_check_tile_floor_refuses_tiles_whose_inputs_and_output_exceed_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "rss_bytes", lambda: GIB // 2)
    floor = memory.tile_floor_bytes(PLAN, (1, 1), n_hs=166, n_ms=10)
    # output 166 bands + HS window at ratio 3 + two 10-band MS windows, float32
    assert floor == 4 * (166 * 96 * 96 + 166 * 32 * 32 + 2 * 10 * 96 * 96)
    budget = memory.MemoryBudget(limit=GIB // 2 + floor, step=48)
    memory.check_tile_floor(budget, PLAN, PLAN.tiles(), n_hs=166, n_ms=10)  # exactly fits
    memory.check_tile_floor(budget, PLAN, [], n_hs=166, n_ms=10)  # nothing to do
    with pytest.raises(DcstsfInputError, match=r"input windows and output alone take .* --chunk 48"):
        memory.check_tile_floor(
            memory.MemoryBudget(limit=GIB // 2 + floor - 1, step=48), PLAN, PLAN.tiles(), n_hs=166, n_ms=10
        )


def test_run_batch_memory_limit_sets_tiles_at_once(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48).values
    roomy = run_batch(*batch_args(files), tmp_path / "roomy.tif", method="bicubic", chunk=50, progress=False,
                      memory_limit=2**40)
    two = 2 if (os.cpu_count() or 1) >= 2 else 1
    assert roomy.parallel_tiles == two and roomy.tile_peak_bytes is not None  # measured on tile 1
    # parallel_tiles is the most at once: measured and held like the default
    fixed = run_batch(*batch_args(files), tmp_path / "fixed.tif", method="bicubic", chunk=50, progress=False,
                      parallel_tiles=2)
    one = run_batch(*batch_args(files), tmp_path / "one.tif", method="bicubic", chunk=50, progress=False,
                    parallel_tiles=1)
    assert fixed.parallel_tiles == 2 and one.parallel_tiles == 1
    assert fixed.tile_peak_bytes is not None and one.tile_peak_bytes is not None
    for res in (roomy, fixed, one):
        np.testing.assert_allclose(open_raster(res.path).values, ref, atol=1e-6)
    with pytest.raises(DcstsfInputError, match="memory_limit"):
        run_batch(*batch_args(files), tmp_path / "bad.tif", method="bicubic", progress=False, memory_limit=-5)


@pytest.mark.parametrize("given", [True, False])
def test_a_limit_below_one_tile_is_refused_before_any_tile_whether_given_or_default(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: bool
) -> None:
    out = tmp_path / "tight.tif"
    if given:
        kwargs: dict[str, Any] = {"memory_limit": 1}
        said = "memory_limit=0.00 GiB (CLI --memory-limit)"
    else:
        monkeypatch.setattr(batch, "default_memory_limit", lambda: 1)
        kwargs = {}
        said = "the default memory limit, 0.00 GiB"
    tiles: list[Any] = []
    with pytest.raises(DcstsfInputError, match="is too small for tiles of 48 px") as err:
        run_batch(*batch_args(files), out, method="bicubic", chunk=50, progress=False,
                  on_tile=lambda *a: tiles.append(a), **kwargs)
    assert said in str(err.value) and "--memory-limit" in str(err.value)
    # nothing computed, nothing written: no output, no work directory
    assert tiles == [] and sorted(p.name for p in tmp_path.iterdir()) == []

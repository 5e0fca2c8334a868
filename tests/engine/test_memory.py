"""The memory rule: tiles at once from a measured tile peak, a borderline reading read twice."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcstsf.engine import fuse, memory, run_batch
from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster
from tests.engine.cases import batch_args


def test_parallel_tiles_from_memory() -> None:
    gib = 2**30
    fits = memory.parallel_for_memory
    # 1.15x headroom per tile: two 0.8 GiB tiles need 1.84 GiB next to 1 GiB of base and writer, two
    # 0.9 GiB tiles 2.07 GiB
    assert fits(2, limit=3 * gib, base=gib // 2, writer=gib // 2, tile_peak=int(0.8 * gib)) == 2
    assert fits(2, limit=3 * gib, base=gib // 2, writer=gib // 2, tile_peak=int(0.9 * gib)) == 1
    assert fits(4, limit=64 * gib, base=gib, writer=gib, tile_peak=gib) == 4  # never above asked
    assert fits(2, limit=gib, base=2 * gib, writer=0, tile_peak=gib) == 1  # never below one


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
    gib = 2**30
    # limit 3 GiB, base 0.9, writer 0.4: two tiles fit up to a reading of 1.7 / 2 / 1.15 = 0.739 GiB
    values = iter(readings)
    alone: list[int] = []

    def measure_alone(i: int) -> int:
        alone.append(i)
        return int(next(values) * gib)

    monkeypatch.setattr(memory, "rss_bytes", lambda: int(0.9 * gib))
    chosen, peak, measured = memory.tiles_at_once(
        2, limit=3 * gib, writer=int(0.4 * gib), tiles=6, measure_alone=measure_alone
    )
    assert alone == list(range(expected_alone)) and measured == expected_alone
    assert chosen == expected_parallel
    assert peak == pytest.approx(np.mean(readings) * gib, rel=1e-6)


def test_a_borderline_reading_with_two_tiles_left_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    gib = 2**30
    monkeypatch.setattr(memory, "rss_bytes", lambda: int(0.9 * gib))
    chosen, _, measured = memory.tiles_at_once(
        2, limit=3 * gib, writer=int(0.4 * gib), tiles=2, measure_alone=lambda i: int(0.8 * gib)
    )
    assert (chosen, measured) == (1, 1)


def test_run_batch_memory_limit_sets_tiles_at_once(files: dict[str, Path], case: Any, tmp_path: Path) -> None:
    ref = fuse(case.hs_t1, case.ms_t1, case.ms_t2, method="bicubic", chunk=48).values
    tight = run_batch(*batch_args(files), tmp_path / "tight.tif", method="bicubic", chunk=50, progress=False,
                      memory_limit=1)
    assert tight.parallel_tiles == 1  # a limit below one tile is not an error: one tile at a time
    roomy = run_batch(*batch_args(files), tmp_path / "roomy.tif", method="bicubic", chunk=50, progress=False,
                      memory_limit=2**40)
    assert roomy.parallel_tiles == (2 if (os.cpu_count() or 1) >= 2 else 1)
    if roomy.parallel_tiles == 2:
        assert roomy.tile_peak_bytes is not None and tight.tile_peak_bytes is not None  # measured on tile 1
    fixed = run_batch(*batch_args(files), tmp_path / "fixed.tif", method="bicubic", chunk=50, progress=False,
                      parallel_tiles=2)
    assert fixed.parallel_tiles == 2 and fixed.tile_peak_bytes is None  # asked for: not measured, not changed
    for res in (tight, roomy, fixed):
        np.testing.assert_allclose(open_raster(res.path).values, ref, atol=1e-6)
    with pytest.raises(DcstsfInputError, match="memory_limit"):
        run_batch(*batch_args(files), tmp_path / "bad.tif", method="bicubic", progress=False, memory_limit=-5)

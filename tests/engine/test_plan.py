"""Tile geometry: balanced tile sizes, windows that are unions of input chunks, blend weights."""

from __future__ import annotations

import numpy as np

from dcstsf.engine import TilePlan, balanced_chunk
from dcstsf.engine.plan import window_chunks


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


def test_window_chunks_put_chunk_edges_on_the_window_edges() -> None:
    plan = TilePlan(height=90, width=111, ratio=3, chunk=33, halo=6)
    yb = plan.chunk_bounds(0)
    assert window_chunks(yb, size=90) == tuple(b - a for a, b in zip(yb[:-1], yb[1:]))
    # The coarse grid: the same edges divided by the ratio.
    assert window_chunks(yb, size=30, divisor=3) == tuple((b - a) // 3 for a, b in zip(yb[:-1], yb[1:]))
    # An array larger than the output: its parts outside the output are chunks of their own.
    chunks = window_chunks(yb, size=100, offset=4)
    assert sum(chunks) == 100 and chunks[0] == 4 and chunks[-1] == 6

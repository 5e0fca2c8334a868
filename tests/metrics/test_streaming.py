"""Tests of the streaming evaluation: tiles, owned blocks, and Dask results equal to the in-memory path."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from dcstsf import metrics as M
from dcstsf.errors import DcstsfInputError
from dcstsf.metrics import evaluation
from dcstsf.metrics.partials import BlockGrid, owned_blocks
from dcstsf.metrics.tiles import TileGrid, owned_range
from tests.metrics.cubes import noisy, random_cube

# Streaming sums the same terms in another order: the results agree to rounding (measured about 1e-15).
REL = 1e-10


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(1.0, abs(a))


def test_tiles_cover_the_image_once_and_windows_are_chunk_unions() -> None:
    grid = TileGrid(70, 83, 16, 5)
    cover = np.zeros((70, 83), int)
    ybounds, xbounds = grid.chunk_bounds(0), grid.chunk_bounds(1)
    for t in grid.tiles():
        y0, y1, x0, x1 = t.core
        cover[y0:y1, x0:x1] += 1
        wy0, wy1, wx0, wx1 = t.window
        assert wy0 == max(0, y0 - 5) and wy1 == min(70, y1 + 5) and wx0 == max(0, x0 - 5) and wx1 == min(83, x1 + 5)
        assert {wy0, wy1} <= set(ybounds) and {wx0, wx1} <= set(xbounds)
    assert (cover == 1).all()
    assert sum(grid.chunks(0)) == 70 and sum(grid.chunks(1)) == 83


def test_every_block_belongs_to_one_tile() -> None:
    blocks = BlockGrid.of(66, 70, 8, origin=(2, 2))
    owners = np.zeros((blocks.nby, blocks.nbx), int)
    for t in TileGrid(70, 74, 12, 7).tiles():
        iy = owned_range(t.core[0], t.core[1], origin=2, size=8, count=blocks.nby)
        ix = owned_range(t.core[2], t.core[3], origin=2, size=8, count=blocks.nbx)
        owners[iy[0]:iy[1], ix[0]:ix[1]] += 1
        own = owned_blocks(t.core, t.origin, blocks)
        if own is not None:  # the owned blocks lie inside the window
            wy, wx = t.window_shape
            assert own[0].start >= 0 and own[0].stop <= wy and own[1].start >= 0 and own[1].stop <= wx
    assert (owners == 1).all()


@pytest.mark.parametrize("block", [8, 12])
def test_streamed_evaluate_equals_the_in_memory_path(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    ref = random_cube((5, 70, 83))
    pred = noisy(ref, 0.05)
    pred[1, 3, 4] = np.nan
    mask = np.ones((70, 83), bool)
    mask[10:14, 20:30] = False
    in_memory = M.evaluate(pred, ref, h_over_l=1 / 3, mask=mask, border=2, block=block)
    # tiny tiles: many of them, blocks (12) straddling tile edges, chunks that do not follow the tiles
    monkeypatch.setattr(evaluation, "TILE_WINDOW_BYTES", 5 * 4 * 30 * 30)
    assert evaluation.streaming_chunk(5, halo=5, multiple=block) < 40
    streamed = M.evaluate(da.from_array(pred, chunks=(5, 17, 23)), ref, h_over_l=1 / 3, mask=mask, border=2,
                          block=block)
    for key, value in in_memory["global"].items():
        assert _close(streamed["global"][key], value), key
    for key, values in in_memory["per_band"].items():
        np.testing.assert_allclose(streamed["per_band"][key], values, rtol=REL, atol=1e-14)
    assert streamed["conventions"] == in_memory["conventions"]
    # the windowed metrics equal the single-metric functions too
    assert _close(streamed["global"]["ssim"], M.ssim(pred, ref, mask=mask, border=2))
    assert _close(streamed["global"]["uiqi"], M.uiqi(pred, ref, mask=mask, border=2, block=block))
    assert _close(streamed["global"]["q2n"], M.q2n(pred, ref, mask=mask, border=2, block=block))


def test_bands_leave_out_bands_everywhere() -> None:
    ref = random_cube((5, 40, 36))
    pred = noisy(ref, 0.05)
    pred[1] = np.nan  # a dead band: with it, no pixel would be valid
    res = M.evaluate(pred, ref, h_over_l=1 / 3, bands=[0, 2, 3, 4], block=8)
    good = [0, 2, 3, 4]
    assert res["global"]["psnr"] == pytest.approx(M.psnr(pred[good], ref[good]))
    assert res["global"]["q2n"] == pytest.approx(M.q2n(pred[good], ref[good], block=8))
    assert np.isnan(res["per_band"]["psnr"][1]) and not np.isnan(res["per_band"]["psnr"][0])
    assert res["conventions"]["bands_excluded"] == [1] and res["conventions"]["bands_scored"] == 4
    same = M.evaluate(pred, ref, h_over_l=1 / 3, bands=np.array([True, False, True, True, True]), block=8)
    assert same["global"] == res["global"]
    with pytest.raises(DcstsfInputError, match="bands"):
        M.evaluate(pred, ref, h_over_l=1 / 3, bands=[7])
    with pytest.raises(DcstsfInputError, match="no band"):
        M.evaluate(pred, ref, h_over_l=1 / 3, bands=np.zeros(5, bool))

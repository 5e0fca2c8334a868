"""Resume: finished tiles survive an exception or a SIGKILL, the next run skips them, other parameters
start over; tiles and the ledger are written through the one scheme of temporaries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dcstsf.engine import run_batch, work_dir_for
from dcstsf.engine.resume import load_tile, save_tile, tile_path
from dcstsf.io import open_raster
from tests.engine.cases import batch_args


class _Stop(RuntimeError):
    pass


def test_resume_after_interruption_gives_the_same_output(files: dict[str, Path], tmp_path: Path) -> None:
    full = tmp_path / "full.tif"
    run_batch(*batch_args(files), full, method="bicubic", chunk=21, progress=False)
    out = tmp_path / "resumed.tif"

    def stop_after_3(tile: tuple[int, int], done: int, total: int) -> None:
        if done == 3:
            raise _Stop("simulated kill")

    with pytest.raises(_Stop):
        run_batch(*batch_args(files), out, method="bicubic", chunk=21, progress=False, on_tile=stop_after_3)
    assert not out.exists() and not any(p.name.startswith(".resumed") for p in tmp_path.iterdir())
    work = work_dir_for(out)
    ledger = json.loads((work / "ledger.json").read_text())
    assert len(ledger["done"]) == 3
    assert not [p.name for p in work.iterdir() if ".partial-" in p.name]  # no temporaries left behind
    res = run_batch(*batch_args(files), out, method="bicubic", chunk=21, progress=False)
    assert res.tiles_skipped == 3 and res.tiles_computed == res.tiles_total - 3
    np.testing.assert_array_equal(open_raster(out).values, open_raster(full).values)
    # Other parameters: the old tiles are discarded with a warning.
    out2 = tmp_path / "other.tif"
    with pytest.raises(_Stop):
        run_batch(*batch_args(files), out2, method="bicubic", chunk=21, progress=False, on_tile=stop_after_3)
    with pytest.warns(UserWarning, match="starting over"):
        res = run_batch(*batch_args(files), out2, method="bicubic", chunk=96, progress=False)
    assert res.tiles_skipped == 0


def test_resume_after_sigkill(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "killed.tif"
    hs, ms1, ms2 = (str(p) for p in batch_args(files))
    script = textwrap.dedent(
        f"""
        import time
        from dcstsf.engine import run_batch
        run_batch({hs!r}, {ms1!r}, {ms2!r}, {str(out)!r},
                  method="bicubic", chunk=21, progress=False, on_tile=lambda *a: time.sleep(0.5))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    ledger = work_dir_for(out) / "ledger.json"
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            if ledger.exists() and len(json.loads(ledger.read_text() or "{}").get("done", [])) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the batch run did not start")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    res = run_batch(*batch_args(files), out, method="bicubic", chunk=21, progress=False)
    assert res.tiles_skipped >= 2
    ref = tmp_path / "ref.tif"
    run_batch(*batch_args(files), ref, method="bicubic", chunk=21, progress=False)
    np.testing.assert_array_equal(open_raster(out).values, open_raster(ref).values)


def test_a_tile_that_fails_to_save_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tile = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    save_tile(tmp_path, (0, 1), tile)
    back = load_tile(tmp_path, (0, 1))
    assert back.dtype == np.float32 and np.array_equal(back, tile)
    assert sorted(p.name for p in tmp_path.iterdir()) == [tile_path(tmp_path, (0, 1)).name]

    def full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(OSError, match="No space"):
        save_tile(tmp_path, (1, 1), tile)
    assert sorted(p.name for p in tmp_path.iterdir()) == [tile_path(tmp_path, (0, 1)).name]

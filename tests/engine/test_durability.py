"""Every write renamed into place reaches the disk before its rename, and the rename after it.

A power cut can otherwise leave a complete-looking file (a saved tile, the ledger, the output, a
checkpoint) whose data never reached the disk. The order of ``fsync`` and ``os.replace`` is recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dcstsf._files import atomic_write_bytes
from dcstsf.engine import run_batch
from dcstsf.engine.resume import save_tile
from dcstsf.io import write_raster
from dcstsf.models.checkpoint import save_checkpoint
from tests.engine.cases import batch_args

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name synced files")


def _record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """``[("fsync", path) | ("replace", destination)]`` in the order they happen."""
    events: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(("synced-before", str(Path(src).resolve())))
        replace(src, dst)
        events.append(("replace", str(Path(dst).resolve())))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return events


def _assert_durable(events: list[tuple[str, str]], final: Path) -> None:
    """``final`` was renamed into place after its temporary's data were synced, then its directory."""
    final = final.resolve()
    i = next(k for k, e in enumerate(events) if e == ("replace", str(final)))
    tmp = events[i - 1][1]
    synced = [path for kind, path in events[: i - 1] if kind == "fsync"]
    assert any(p == tmp or p.startswith(tmp + os.sep) for p in synced), f"{tmp} was not synced before its rename"
    assert ("fsync", str(final.parent)) in events[i + 1:], f"{final.parent} was not synced after the rename"


def _cube() -> xr.DataArray:
    data = np.random.default_rng(0).random((3, 8, 8), dtype=np.float32)
    return xr.DataArray(data, dims=("band", "y", "x"), coords={"band": ["a", "b", "c"]})


WRITERS: dict[str, Callable[[Path], Path]] = {
    "tile": lambda d: (save_tile(d, (0, 1), np.zeros((2, 3, 3))), d / "tile_0_1.npy")[1],
    "bytes": lambda d: (atomic_write_bytes(d / "ledger.json", b"{}"), d / "ledger.json")[1],
    "geotiff": lambda d: write_raster(_cube(), d / "out.tif"),
    "zarr": lambda d: write_raster(_cube(), d / "out.zarr"),
    "checkpoint": lambda d: (save_checkpoint(d / "w.pt", {"state": {}}), d / "w.pt")[1],
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_writes_are_synced_before_and_after_their_rename(
    writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _record(monkeypatch)
    final = WRITERS[writer](tmp_path)
    assert final.exists()
    _assert_durable(events, final)


def test_a_batch_run_syncs_its_tiles_ledger_and_output(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _record(monkeypatch)
    out = tmp_path / "fused.tif"
    run_batch(*batch_args(files), out, method="bicubic", chunk=21, progress=False, keep_work=True)
    _assert_durable(events, out)
    work = Path(str(out) + ".dcstsf-work")
    tiles = sorted(work.glob("tile_*.npy"))
    assert len(tiles) > 1
    for tile in tiles:
        _assert_durable(events, tile)

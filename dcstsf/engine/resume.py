"""The work directory of a batch run: finished tiles, the ledger and the fingerprint that makes a resume safe.

``OUT.dcstsf-work/`` beside the output holds:

* ``tile_<ty>_<tx>.npy`` -- one finished prediction tile;
* ``ledger.json`` -- the run's fingerprint (input files' paths, sizes and modification times, method
  identity and fitted state, sensors, tile plan, read options, package version) and the finished tiles.

Both are written through the one scheme of temporaries of :mod:`dcstsf._files` (``.<name>.partial-<pid>``,
then a rename), so a tile or ledger is never half written. A run with the same fingerprint skips the
finished tiles; another fingerprint discards the directory with a warning.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dcstsf._files import (
    atomic_write_text,
    disk_full_error,
    free_bytes,
    partial_path,
    remove_path,
    sync_directory,
)
from dcstsf.engine.job import FusionJob
from dcstsf.engine.plan import Region, TilePlan
from dcstsf.engine.tile import compose

__all__ = [
    "LEDGER",
    "assemble_from_tiles",
    "fingerprint",
    "load_ledger",
    "load_tile",
    "remove_work_dir",
    "save_tile",
    "tile_path",
    "work_dir_for",
    "write_ledger",
]

#: The ledger's file name in the work directory.
LEDGER = "ledger.json"
# Part of the fingerprint: a change to the ledger's meaning invalidates the tiles of older runs.
_LEDGER_VERSION = 1


def work_dir_for(out: str | os.PathLike[str]) -> Path:
    """The work directory :func:`~dcstsf.engine.run_batch` uses for ``out``: ``OUT.dcstsf-work`` beside it."""
    p = Path(out).expanduser()
    return p.with_name(p.name + ".dcstsf-work")


def remove_work_dir(work: Path) -> None:
    """Delete the work directory and everything in it (missing is fine)."""
    shutil.rmtree(work, ignore_errors=True)


def _file_identity(p: Path) -> dict[str, Any]:
    """Path, size and modification time of an input file (a directory store: totals over its files)."""
    p = p.resolve()
    if p.is_dir():
        size = count = latest = 0
        for root, _, files in os.walk(p):
            for f in files:
                st = os.stat(os.path.join(root, f))
                size += st.st_size
                count += 1
                latest = max(latest, st.st_mtime_ns)
        return {"path": str(p), "size": size, "files": count, "mtime_ns": latest}
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    return repr(v)


def fingerprint(job: FusionJob, paths: Sequence[Path], options: dict[str, Any]) -> str:
    """SHA-256 of everything a finished tile depends on: the inputs, the method and its state, the plan,
    the read ``options``."""
    ctx = job.context
    fills = hashlib.sha256(
        b"".join(np.ascontiguousarray(a, np.float32).tobytes() for a in (ctx.fill_hs, ctx.fill_ms1, ctx.fill_ms2))
    ).hexdigest()
    doc = {
        "ledger_version": _LEDGER_VERSION,
        "dcstsf_version": job.attrs["dcstsf_version"],
        "inputs": [_file_identity(p) for p in paths],
        "method": job.attrs["method_identity"],
        "fitted_sha256": job.fitted_sha256,
        "fills_sha256": fills,
        "model": _jsonable(job.model.describe()),
        "hs_bands": [str(b) for b in job.band_coords["band"]],
        "plan": job.plan.describe(),
        "options": _jsonable(options),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def tile_path(work: Path, t: tuple[int, int]) -> Path:
    """Where tile ``t``'s prediction is saved."""
    return work / f"tile_{t[0]}_{t[1]}.npy"


def save_tile(work: Path, t: tuple[int, int], arr: np.ndarray) -> None:
    """Save tile ``t``'s prediction as float32 ``.npy``: written to a temporary, then renamed into place.

    Streamed into the file rather than built as bytes first (:func:`dcstsf._files.atomic_write_bytes`),
    so saving holds no second copy of the tile in memory.
    """
    path = tile_path(work, t)
    tmp = partial_path(path)
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr, dtype=np.float32))
            # on the disk before it is renamed into the ledger's view: a power cut must not leave a
            # complete-looking tile of zeros that the resume check (shape and type) would accept
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        sync_directory(work)
    except OSError as exc:
        remove_path(tmp)
        # NumPy reports a short write as "N requested and M written", without an errno.
        free = free_bytes(work)
        if exc.errno == errno.ENOSPC or (free is not None and free < arr.size * 4):
            raise disk_full_error(work, f"tile {t} to {work}", then="the tiles saved so far are kept") from exc
        raise
    except BaseException:
        remove_path(tmp)
        raise


def load_tile(work: Path, t: tuple[int, int]) -> np.ndarray:
    """A saved prediction tile, memory-mapped (read only where it is used)."""
    return np.load(tile_path(work, t), mmap_mode="r")


def _tile_ok(work: Path, t: tuple[int, int], shape: tuple[int, int, int]) -> bool:
    try:
        a = load_tile(work, t)
    except (OSError, ValueError):
        return False
    return a.shape == shape and a.dtype == np.float32


def load_ledger(work: Path, fingerprint: str, plan: TilePlan, n_bands: int) -> set[tuple[int, int]]:
    """Finished tiles of an earlier run with the same fingerprint; resets the work dir otherwise."""
    ledger = work / LEDGER
    if not work.exists():
        return set()
    try:
        doc = json.loads(ledger.read_text())
    except (OSError, ValueError):
        doc = None
    if not doc or doc.get("fingerprint") != fingerprint:
        if doc is not None:
            warnings.warn(
                f"{work} holds tiles of a run with other inputs or parameters; discarding them and starting over",
                stacklevel=3,
            )
        remove_work_dir(work)
        return set()
    done = set()
    planned = set(plan.tiles())
    for key in doc.get("done", []):
        ty, tx = (int(v) for v in key.split("_"))
        if (ty, tx) not in planned:
            continue
        ey0, ey1, ex0, ex1 = plan.extended(ty, tx)
        if _tile_ok(work, (ty, tx), (n_bands, ey1 - ey0, ex1 - ex0)):
            done.add((ty, tx))
    return done


def write_ledger(
    work: Path, fingerprint: str, plan: TilePlan, done: set[tuple[int, int]], meta: dict[str, Any]
) -> None:
    """Record the finished tiles ``done`` (atomically: a reader sees the old or the new ledger)."""
    doc = {
        "fingerprint": fingerprint,
        "plan": plan.describe(),
        "done": sorted(f"{ty}_{tx}" for ty, tx in done),
        **meta,
    }
    atomic_write_text(work / LEDGER, json.dumps(doc, indent=1))


def _compose_from_files(work: str, plan: TilePlan, region: Region, n_bands: int) -> np.ndarray:
    w = Path(work)
    return compose(plan, region, lambda ty, tx: load_tile(w, (ty, tx)), n_bands=n_bands)


def assemble_from_tiles(job: FusionJob, work: Path) -> Any:
    """The output as a Dask array reading the finished tiles (chunks = tile cores)."""
    import dask

    from dcstsf.engine.lazy import core_blocks_to_array

    def block(ty: int, tx: int, region: Region) -> Any:
        return dask.delayed(_compose_from_files, pure=True)(
            str(work), job.plan, region, job.n_bands, dask_key_name=f"{job.name}-assemble-{ty}-{tx}"
        )

    return core_blocks_to_array(job.plan, job.n_bands, block)

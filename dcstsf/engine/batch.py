"""Batch fusion of files: stream tile by tile, resumable, atomic output, any Dask scheduler.

:func:`run_batch` opens the three rasters lazily (chunks aligned with the tile windows, so each tile reads
exactly its window), fits the method once, then computes the prediction tiles one by one (several in
parallel) and saves each to a work directory next to the output, ``OUT.dcstsf-work/``:

* ``tile_<ty>_<tx>.npy`` -- one finished prediction tile (written to a temporary name, then renamed);
* ``ledger.json`` -- the run's fingerprint (input files' paths, sizes and modification times, method
  identity and fitted state, sensors, tile plan, read options, package version) and the finished tiles.

Run the same command again after a crash or a kill and the finished tiles are skipped; a different
fingerprint (other inputs or parameters) discards the work directory with a warning. The final output
(tiled compressed GeoTIFF, COG, Zarr or NetCDF) is assembled from the tiles by
:func:`dcstsf.io.write_raster`, which writes to a temporary name and renames: there is never a partial file
under the final name. The work directory is removed after success. It needs about as much disk space as
the uncompressed output (``n_hs x H x W x 4`` bytes).

Schedulers: the default runs tiles on threads in this process; ``workers=N`` starts a
``dask.distributed.LocalCluster`` of N single-threaded worker processes; ``scheduler="tcp://host:8786"``
connects to a running scheduler (its workers must see the input paths). Finished tiles always come back
to this process, which alone writes the work directory and the output, so results do not depend on the
scheduler.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dcstsf.engine.core import DEFAULT_CHUNK, FusionJob, make_plan, prepare
from dcstsf.engine.grids import validate_inputs
from dcstsf.engine.tiling import Region, TilePlan, compose
from dcstsf.errors import DcstsfInputError
from dcstsf.methods import Method, get_method
from dcstsf.sensors import Sensor

__all__ = ["BatchResult", "run_batch", "work_dir_for"]

_LEDGER = "ledger.json"
_LEDGER_VERSION = 1
# GeoTIFF tiles are multiples of 16 pixels; output chunks are made multiples of lcm(ratio, 16) so every
# chunk is written as whole GeoTIFF tiles (no partially written, recompressed blocks).
_GTIFF_ALIGN = 16
_MAX_GTIFF_BLOCK = 512

TileCallback = Callable[[tuple[int, int], int, int], None]


@dataclass(frozen=True)
class BatchResult:
    """What :func:`run_batch` did.

    Attributes
    ----------
    path
        The output written.
    tiles_total, tiles_computed, tiles_skipped
        Tiles in the plan, computed in this run, and found finished from an earlier run.
    seconds_fuse, seconds_write
        Wall time of the tile phase (including the fit) and of assembling/writing the output.
    fingerprint
        SHA-256 identifying inputs and parameters (the resume key).
    plan
        The tile plan (``TilePlan.describe()``).
    """

    path: Path
    tiles_total: int
    tiles_computed: int
    tiles_skipped: int
    seconds_fuse: float
    seconds_write: float
    fingerprint: str
    plan: dict[str, int]


def work_dir_for(out: str | os.PathLike[str]) -> Path:
    """The work directory :func:`run_batch` uses for ``out``: ``OUT.dcstsf-work`` beside it."""
    p = Path(out).expanduser()
    return p.with_name(p.name + ".dcstsf-work")


# --------------------------------------------------------------------------------------------------
# files, fingerprint, ledger
# --------------------------------------------------------------------------------------------------


def _file_identity(p: Path) -> dict[str, Any]:
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


def _fingerprint(job: FusionJob, paths: Sequence[Path], options: dict[str, Any]) -> str:
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


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _tile_path(work: Path, t: tuple[int, int]) -> Path:
    return work / f"tile_{t[0]}_{t[1]}.npy"


def _save_tile(work: Path, t: tuple[int, int], arr: np.ndarray) -> None:
    path = _tile_path(work, t)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(arr, dtype=np.float32))
    os.replace(tmp, path)


def _tile_ok(work: Path, t: tuple[int, int], shape: tuple[int, int, int]) -> bool:
    try:
        a = np.load(_tile_path(work, t), mmap_mode="r")
    except (OSError, ValueError):
        return False
    return a.shape == shape and a.dtype == np.float32


def _load_ledger(work: Path, fingerprint: str, plan: TilePlan, n_bands: int) -> set[tuple[int, int]]:
    """Finished tiles of an earlier run with the same fingerprint; resets the work dir otherwise."""
    ledger = work / _LEDGER
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
        shutil.rmtree(work, ignore_errors=True)
        return set()
    done = set()
    for key in doc.get("done", []):
        ty, tx = (int(v) for v in key.split("_"))
        if (ty, tx) not in set(plan.tiles()):
            continue
        ey0, ey1, ex0, ex1 = plan.extended(ty, tx)
        if _tile_ok(work, (ty, tx), (n_bands, ey1 - ey0, ex1 - ex0)):
            done.add((ty, tx))
    return done


def _write_ledger(work: Path, fingerprint: str, plan: TilePlan, done: set[tuple[int, int]], meta: dict[str, Any]) -> None:
    doc = {
        "fingerprint": fingerprint,
        "plan": plan.describe(),
        "done": sorted(f"{ty}_{tx}" for ty, tx in done),
        **meta,
    }
    _atomic_write_text(work / _LEDGER, json.dumps(doc, indent=1))


# --------------------------------------------------------------------------------------------------
# schedulers
# --------------------------------------------------------------------------------------------------


@contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A distributed Client (LocalCluster or external scheduler), or ``None`` for the threaded scheduler."""
    if workers is not None and scheduler is not None:
        raise DcstsfInputError("give either workers= (a local cluster) or scheduler= (an address), not both")
    if workers is None and scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise DcstsfInputError("workers=/scheduler= need dask.distributed: pip install distributed") from exc
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise DcstsfInputError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start one with `dask scheduler` and "
                "workers with `dask worker ADDRESS`, or use workers=N for a local cluster"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise DcstsfInputError(f"workers must be a positive integer, got {workers!r}")
    cluster = LocalCluster(
        n_workers=int(workers), threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _compute_tile_local(job: FusionJob, t: tuple[int, int]) -> np.ndarray:
    import dask

    # All of a tile's tasks (window reads, apply) run in this thread; tiles run in parallel threads.
    (arr,) = dask.compute(job.predictions[t], scheduler="synchronous")
    return arr


def _run_tiles_local(
    job: FusionJob, todo: list[tuple[int, int]], parallel: int, finish: Callable[[tuple[int, int], np.ndarray], None]
) -> None:
    pending: dict[Future[np.ndarray], tuple[int, int]] = {}
    queue = list(todo)

    def refill() -> None:
        while queue and len(pending) < parallel:
            t = queue.pop(0)
            pending[ex.submit(_compute_tile_local, job, t)] = t

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dcstsf-tile") as ex:
        try:
            refill()
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    t = pending.pop(fut)
                    arr = fut.result()
                    # Start the next tile before saving this one: saving overlaps computing.
                    refill()
                    finish(t, arr)
                    del arr
        finally:
            for fut in pending:
                fut.cancel()


def _run_tiles_distributed(
    job: FusionJob, todo: list[tuple[int, int]], client: Any, finish: Callable[[tuple[int, int], np.ndarray], None]
) -> None:
    from distributed import as_completed

    # Keep the workers busy with one tile in reserve each, never the whole scene in flight.
    nthreads = max(1, sum(client.nthreads().values()))
    limit = nthreads + 1
    queue = list(todo)
    futures: dict[Any, tuple[int, int]] = {}

    def submit() -> Any:
        t = queue.pop(0)
        fut = client.compute(job.predictions[t])
        futures[fut] = t
        return fut

    ac = as_completed([submit() for _ in range(min(limit, len(queue)))])
    try:
        for fut in ac:
            t = futures.pop(fut)
            arr = fut.result()
            fut.release()
            if queue:
                ac.add(submit())
            finish(t, arr)
    finally:
        for fut in futures:
            fut.cancel()


# --------------------------------------------------------------------------------------------------
# assembly
# --------------------------------------------------------------------------------------------------


def _compose_from_files(work: str, plan: TilePlan, region: Region, n_bands: int) -> np.ndarray:
    w = Path(work)
    return compose(plan, region, lambda ty, tx: np.load(_tile_path(w, (ty, tx)), mmap_mode="r"), n_bands=n_bands)


def _assembled(job: FusionJob, work: Path) -> Any:
    """The output as a Dask array reading the finished tiles (chunks = tile cores)."""
    import dask
    import dask.array as da

    plan, n = job.plan, job.n_bands
    meta = np.empty((0, 0, 0), dtype=np.float32)
    rows = []
    for ty in range(plan.ny):
        row = []
        for tx in range(plan.nx):
            region = plan.core(ty, tx)
            d = dask.delayed(_compose_from_files, pure=True)(
                str(work), plan, region, n, dask_key_name=f"{job.name}-assemble-{ty}-{tx}"
            )
            y0, y1, x0, x1 = region
            row.append(da.from_delayed(d, shape=(n, y1 - y0, x1 - x0), dtype=np.float32, meta=meta))
        rows.append(row)
    return da.block(rows)


def _gtiff_blocksize(chunk: int) -> int:
    """The largest multiple of 16 that divides ``chunk`` and is at most 512."""
    best = _GTIFF_ALIGN
    for b in range(_GTIFF_ALIGN, min(chunk, _MAX_GTIFF_BLOCK) + 1, _GTIFF_ALIGN):
        if chunk % b == 0:
            best = b
    return best


# --------------------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------------------


def run_batch(
    hs_t1: str | os.PathLike[str],
    ms_t1: str | os.PathLike[str],
    ms_t2: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    method: str | Method = "dcstsf",
    hs_sensor: str | Sensor | None = None,
    ms_sensor: str | Sensor | None = None,
    ms_bands: Sequence[str] | str | None = None,
    ratio: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    blend: int = 0,
    halo: int | None = None,
    align: str = "strict",
    workers: int | None = None,
    scheduler: str | None = None,
    parallel_tiles: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    cog: bool = False,
    compress: str | None = "deflate",
    dtype: Any = None,
    out_scale: float | Sequence[float] | None = None,
    out_offset: float | Sequence[float] | None = None,
    hs_scale: float | Sequence[float] | None = None,
    hs_offset: float | Sequence[float] | None = None,
    hs_nodata: float | None = None,
    ms_scale: float | Sequence[float] | None = None,
    ms_offset: float | Sequence[float] | None = None,
    ms_nodata: float | None = None,
    keep_work: bool = False,
    on_tile: TileCallback | None = None,
) -> BatchResult:
    """Fuse three raster files into ``out``, streaming tile by tile; resumable and atomic.

    Parameters
    ----------
    hs_t1, ms_t1, ms_t2
        Input rasters: GeoTIFF/COG (or anything GDAL reads), Zarr stores or NetCDF files, read with
        :func:`dcstsf.io.open_raster` (scale/offset/nodata from the files unless given below).
    out
        Output path: ``.tif``/``.tiff`` (tiled, compressed GeoTIFF; a COG with ``cog=True``), ``.zarr`` or
        ``.nc``. Band names, wavelengths and FWHM, CRS, transform and the provenance attrs are written.
    method, hs_sensor, ms_sensor, ms_bands, ratio, blend, halo, align
        As in :func:`dcstsf.fuse`.
    chunk
        Tile size in fine pixels: rounded down to a multiple of the ratio, and for GeoTIFF output of
        ``lcm(ratio, 16)`` so that tiles are whole GeoTIFF blocks.
    workers
        Run on a local ``dask.distributed`` cluster of this many single-threaded worker processes.
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``) instead.
    parallel_tiles
        Tiles computed at once with the default threaded scheduler (default: 1, each tile using every core
        through PyTorch/NumPy threading; raise it for methods that run single-threaded). Peak memory grows
        with it.
    overwrite
        Replace an existing output (otherwise it is an error).
    progress
        Show progress bars (tiles, then writing).
    cog, compress, dtype, out_scale, out_offset
        Output encoding, passed to :func:`dcstsf.io.write_raster` (``out_scale``/``out_offset`` are its
        ``scale``/``offset`` for integer ``dtype``).
    hs_scale, hs_offset, hs_nodata, ms_scale, ms_offset, ms_nodata
        Reflectance decoding of the inputs (``ms_*`` apply to both MS dates), overriding the files.
    keep_work
        Keep the work directory after success (for inspection).
    on_tile
        Called as ``on_tile((ty, tx), finished, total)`` after each tile is safely saved; an exception
        raised by it stops the run (finished tiles stay saved for the next run).

    Returns
    -------
    BatchResult

    Raises
    ------
    DcstsfInputError
        Existing output without ``overwrite``, unknown output format, unreadable inputs, grid or band
        problems (see :func:`dcstsf.engine.validate_inputs`).
    """
    from dcstsf import io as dio

    t_start = time.perf_counter()
    out_p = Path(out).expanduser()
    suffix = out_p.suffix.lower()
    if suffix not in dio.RASTER_SUFFIXES:
        raise DcstsfInputError(
            f"{out_p}: unknown output format {suffix!r}; use one of {sorted(dio.RASTER_SUFFIXES)}"
        )
    fmt = dio.RASTER_SUFFIXES[suffix]
    if cog and fmt != "GTiff":
        raise DcstsfInputError(f"{out_p}: cog=True needs a .tif output")
    if out_p.exists() and not overwrite:
        raise DcstsfInputError(f"{out_p} exists; pass overwrite=True (CLI --overwrite) to replace it")
    if not out_p.parent.exists():
        raise DcstsfInputError(f"{out_p}: the directory {out_p.parent} does not exist; create it first")
    if parallel_tiles is not None and (not isinstance(parallel_tiles, (int, np.integer)) or parallel_tiles < 1):
        raise DcstsfInputError(f"parallel_tiles must be a positive integer, got {parallel_tiles!r}")
    paths = [Path(p).expanduser() for p in (hs_t1, ms_t1, ms_t2)]
    hs_kw = {"scale": hs_scale, "offset": hs_offset, "nodata": hs_nodata}
    ms_kw = {"scale": ms_scale, "offset": ms_offset, "nodata": ms_nodata}
    m = get_method(method)

    def open_all(chunks_hs: Any, chunks_ms: Any) -> list[Any]:
        arrays = []
        for p, ch, kw in ((paths[0], chunks_hs, hs_kw), (paths[1], chunks_ms, ms_kw), (paths[2], chunks_ms, ms_kw)):
            a = dio.open_raster(p, chunks=ch, **kw)
            a.encoding["source"] = str(p)
            arrays.append(a)
        return arrays

    vkw = {"hs_sensor": hs_sensor, "ms_sensor": ms_sensor, "ms_bands": ms_bands, "ratio": ratio, "align": align}
    arrays = open_all(True, True)
    inputs = validate_inputs(*arrays, **vkw)
    r = inputs.ratio
    if fmt == "GTiff":
        step = math.lcm(r, _GTIFF_ALIGN)
        chunk = max(step, (int(chunk) // step) * step)
    plan = make_plan(inputs, m, chunk=chunk, blend=blend, halo=halo)
    if inputs.ms_offset is not None and inputs.hs_offset is not None:
        # Re-open with chunk edges on the window edges: every tile then reads exactly its window.
        (my, mx), (hy, hx) = inputs.ms_offset, inputs.hs_offset
        H0, W0 = arrays[1].sizes["y"], arrays[1].sizes["x"]
        h0, w0 = arrays[0].sizes["y"], arrays[0].sizes["x"]

        def chunks_for(bounds: list[int], off: int, n: int, div: int) -> tuple[int, ...]:
            edges = sorted({0, n, *(off + b // div for b in bounds)})
            return tuple(b - a for a, b in zip(edges[:-1], edges[1:]) if b > a)

        yb, xb = plan.chunk_bounds(0), plan.chunk_bounds(1)
        arrays = open_all(
            {"band": -1, "y": chunks_for(yb, hy, h0, r), "x": chunks_for(xb, hx, w0, r)},
            {"band": -1, "y": chunks_for(yb, my, H0, 1), "x": chunks_for(xb, mx, W0, 1)},
        )
        inputs = validate_inputs(*arrays, **vkw)

    options = {
        "align": align,
        "hs_open": hs_kw,
        "ms_open": ms_kw,
        "halo_override": halo,
    }
    work = work_dir_for(out_p)
    with _client(workers, scheduler) as client:
        job = prepare(*arrays, method=m, chunk=plan.chunk, blend=blend, halo=halo, inputs=inputs)
        plan = job.plan
        fingerprint = _fingerprint(job, paths, options)
        done = _load_ledger(work, fingerprint, plan, job.n_bands)
        work.mkdir(parents=True, exist_ok=True)
        meta = {"output": str(out_p), "method": job.method.name, "inputs": [str(p) for p in paths]}
        _write_ledger(work, fingerprint, plan, done, meta)
        tiles = plan.tiles()
        todo = [t for t in tiles if t not in done]
        skipped = len(tiles) - len(todo)
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tiles), initial=skipped, unit="tile", desc=f"dcstsf {job.method.name}",
                   disable=not progress)
        computed = 0

        def finish(t: tuple[int, int], arr: np.ndarray) -> None:
            nonlocal computed
            _save_tile(work, t, arr)
            done.add(t)
            _write_ledger(work, fingerprint, plan, done, meta)
            computed += 1
            bar.update(1)
            if on_tile is not None:
                on_tile(t, len(done), len(tiles))

        try:
            if todo:
                if client is None:
                    _run_tiles_local(job, todo, int(parallel_tiles or 1), finish)
                else:
                    _run_tiles_distributed(job, todo, client, finish)
        finally:
            bar.close()
    t_fused = time.perf_counter()

    import dask

    data = _assembled(job, work)
    result = job.to_dataarray(data)
    # Zarr/NetCDF chunks follow the tiles (Dask chunks); the block size only matters for GeoTIFF.
    block = _gtiff_blocksize(plan.chunk) if fmt == "GTiff" else 256
    # Assembly reads the local work directory: always on local threads, whatever scheduler fused the tiles.
    with dask.config.set(scheduler="threads"):
        dio.write_raster(
            result, out_p, overwrite=overwrite, cog=cog, compress=compress, blocksize=block, dtype=dtype,
            scale=out_scale, offset=out_offset, progress=progress,
        )
    t_end = time.perf_counter()
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return BatchResult(
        path=out_p,
        tiles_total=len(tiles),
        tiles_computed=computed,
        tiles_skipped=skipped,
        seconds_fuse=t_fused - t_start,
        seconds_write=t_end - t_fused,
        fingerprint=fingerprint,
        plan=plan.describe(),
    )

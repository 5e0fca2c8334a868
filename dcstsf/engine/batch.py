"""Batch fusion of files: stream tile by tile, resumable, atomic output, any Dask scheduler.

:func:`run_batch` opens the three rasters lazily (chunks aligned with the tile windows, so each tile reads
exactly its window), fits the method once (on the files' own blocks, read once), then computes the
prediction tiles one by one (the first alone while its memory is measured, then as many at once as fit
``memory_limit``, at most 2 by default) and saves each to a work directory next to the output,
``OUT.dcstsf-work/``:

* ``tile_<ty>_<tx>.npy`` -- one finished prediction tile (written to a temporary name, then renamed);
* ``ledger.json`` -- the run's fingerprint (input files' paths, sizes and modification times, method
  identity and fitted state, sensors, tile plan, read options, package version) and the finished tiles.

Run the same command again after a crash or a kill and the finished tiles are skipped; a different
fingerprint (other inputs or parameters) discards the work directory with a warning. The final output
is assembled from the tiles and written to a temporary name, then renamed: there is never a partial file
under the final name (temporaries left by killed runs are removed by the next run). GeoTIFF (tiled,
band-interleaved, ZSTD level 1 by default (:func:`dcstsf.io.gtiff_codec_options`), BigTIFF when needed, band
descriptions and wavelength/FWHM tags as :mod:`dcstsf.io` reads them; optionally a COG) is written here
tile by tile with rasterio; Zarr and NetCDF by :func:`dcstsf.io.write_raster`.
The work directory is removed after success. It needs about as much disk space as the uncompressed
output (``n_hs x H x W x 4`` bytes).

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
import queue
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from dcstsf import io as dio
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
# Finished tiles the GeoTIFF writer may hold in memory instead of reading their .npy back (the writer
# usually keeps up, so this is the tile being written and the next one; more would only grow memory).
_IN_MEMORY_TILES = 2

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
        Wall time until the last tile is saved (opening, fit, tiles) and from then until the output is in
        place (GeoTIFF is written while tiles are computed, so this is only what was left to write).
    fingerprint
        SHA-256 identifying inputs and parameters (the resume key).
    plan
        The tile plan (``TilePlan.describe()``).
    parallel_tiles
        Tiles computed at once by the local threaded scheduler (``None`` on a Dask cluster).
    tile_peak_bytes
        Resident memory one tile added at its peak, measured on the first tile when the number of
        tiles at once was chosen from ``memory_limit`` (``None`` otherwise).
    """

    path: Path
    tiles_total: int
    tiles_computed: int
    tiles_skipped: int
    seconds_fuse: float
    seconds_write: float
    fingerprint: str
    plan: dict[str, int]
    parallel_tiles: int | None = None
    tile_peak_bytes: int | None = None


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


def _load_tile(work: Path, t: tuple[int, int]) -> np.ndarray:
    """A saved prediction tile, memory-mapped (read only where it is used)."""
    return np.load(_tile_path(work, t), mmap_mode="r")


def _tile_ok(work: Path, t: tuple[int, int], shape: tuple[int, int, int]) -> bool:
    try:
        a = _load_tile(work, t)
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
    planned = set(plan.tiles())
    for key in doc.get("done", []):
        ty, tx = (int(v) for v in key.split("_"))
        if (ty, tx) not in planned:
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


def _trim_heap() -> None:
    """Return freed heap memory to the OS (glibc keeps freed mid-sized blocks of every thread's arena,
    so a long run's RSS would creep up tile after tile). No-op elsewhere."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None
logger = logging.getLogger(__name__)


def _default_parallel(parallel_tiles: int | None) -> int:
    if parallel_tiles is not None:
        return int(parallel_tiles)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


#: Headroom on the first tile's measured peak for each tile of a run with several at once. The first
#: tile's peak also holds what stays allocated after it (kernels, caches, first-use buffers), which later
#: tiles do not add again; the rest is what a tile alone does not show (freed memory that glibc keeps in
#: each tile thread's arena between trims). Measured at 6000^2, two tiles at once: each tile added 0.90x
#: (DC-STSF), 1.05x (variational) and 0.71x (two-step) of the first tile's peak (docs/design.md).
_TILE_MEMORY_HEADROOM = 1.15


#: A first-tile reading that misses the limit for more tiles at once, but would fit if it were this
#: fraction of what it is, is checked by a second reading (the next tile, also alone) and the two are
#: averaged. The same window read 0.63, 0.67 and 0.78 GiB in three runs (variational, 4095^2): a single
#: high reading made a whole run one tile at a time, 1.2-1.3x slower per Mpx (docs/design.md, "A
#: borderline first reading").
_SECOND_READING_BELOW = 0.8


def default_memory_limit() -> int:
    """The memory a batch run aims to stay within by default: 1/8 of the RAM, at least 3 GiB."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 0
    return max(3 * 2**30, ram // 8)


def _rss_bytes() -> int | None:
    """This process's resident memory (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class _PeakRss(threading.Thread):
    """Samples the resident memory every 10 ms until stopped; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        super().__init__(name="dcstsf-rss", daemon=True)
        self.stop = threading.Event()
        self.peak = _rss_bytes() or 0

    def run(self) -> None:
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, _rss_bytes() or 0)


def _parallel_for_memory(
    parallel: int, *, limit: int, base: int, tile_peak: int, writer: int
) -> int:
    """The most tiles at once (at most ``parallel``, at least 1) whose memory fits ``limit``."""
    per_tile = max(1, int(tile_peak * _TILE_MEMORY_HEADROOM))
    return max(1, min(parallel, (limit - base - writer) // per_tile))


@contextmanager
def _torch_threads_per_tile(parallel: int) -> Iterator[None]:
    """Share the cores among ``parallel`` tile threads (PyTorch's intra-op pool is process-wide)."""
    import torch

    before = torch.get_num_threads()
    per_tile = max(1, (os.cpu_count() or 1) // max(1, parallel))
    if parallel > 1 and per_tile < before:
        torch.set_num_threads(per_tile)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _local_scheduler(kind: str) -> Callable[..., Any]:
    """Dask's ``"threads"`` or ``"synchronous"`` scheduler, as the function itself.

    Dask resolves a scheduler given by name by importing ``dask.distributed`` to look for a client (0.6 s,
    a tenth of a small run); a function is used as given. Local batch runs want the local scheduler even
    when the caller has a global Client: ``workers``/``scheduler`` choose the cluster.
    """
    import dask.local
    import dask.threaded

    return dask.threaded.get if kind == "threads" else dask.local.get_sync


def _compute_tile_local(job: FusionJob, t: tuple[int, int]) -> np.ndarray:
    import dask

    # All of a tile's tasks (window reads, apply) run in this thread; tiles run in parallel threads.
    (arr,) = dask.compute(job.predictions[t], scheduler=_local_scheduler("synchronous"))
    _trim_heap()
    return arr


def _first_tile_alone(
    job: FusionJob, t: tuple[int, int], finish: Callable[[tuple[int, int], np.ndarray], None]
) -> int:
    """Compute tile ``t`` alone on every core and return the resident memory it added at its peak.

    Called for the first tile of a run, and for the second when the first one's reading is borderline.
    """
    _trim_heap()
    before = _rss_bytes() or 0
    sampler = _PeakRss()
    sampler.start()
    try:
        arr = _compute_tile_local(job, t)
    finally:
        sampler.stop.set()
        sampler.join()
    finish(t, arr)
    return max(0, sampler.peak - before)


def _run_tiles_adaptive(
    job: FusionJob,
    todo: list[tuple[int, int]],
    parallel: int,
    finish: Callable[[tuple[int, int], np.ndarray], None],
    *,
    memory_limit: int | None,
    writer_bytes: int,
) -> tuple[int, int | None]:
    """Run the tiles locally; with a ``memory_limit``, measure the first tile alone and run the rest with
    as many tiles at once (up to ``parallel``) as fit the limit. A borderline first reading (see
    :data:`_SECOND_READING_BELOW`) is averaged with a second tile's, also run alone. Returns
    ``(tiles at once, tile peak)``.
    """
    if memory_limit is None or parallel <= 1 or len(todo) <= 1 or _rss_bytes() is None:
        _run_tiles_local(job, todo, parallel, finish)
        return parallel, None

    fits = partial(_parallel_for_memory, parallel, limit=memory_limit, writer=writer_bytes)

    def base_now() -> int:
        _trim_heap()
        return _rss_bytes() or 0

    peak, base = _first_tile_alone(job, todo[0], finish), base_now()
    chosen, done = fits(base=base, tile_peak=peak), 1
    if chosen < parallel and len(todo) > 2 and fits(base=base, tile_peak=int(peak * _SECOND_READING_BELOW)) > chosen:
        # A borderline reading: one more tile alone, and the mean of the two decides.
        peak = (peak + _first_tile_alone(job, todo[1], finish)) // 2
        chosen, done = fits(base=base_now(), tile_peak=peak), 2
    if chosen < parallel:
        logger.info(
            "a tile adds %.2f GiB at its peak; computing %d tile(s) at once to stay within %.2f GiB "
            "(memory_limit)", peak / 2**30, chosen, memory_limit / 2**30,
        )
    _run_tiles_local(job, todo[done:], chosen, finish)
    return chosen, peak


def _run_tiles_local(
    job: FusionJob, todo: list[tuple[int, int]], parallel: int, finish: Callable[[tuple[int, int], np.ndarray], None]
) -> None:
    if parallel <= 1:
        # One tile at a time runs in the calling thread, like the fit and the first tile before it. A
        # second thread starts a second OpenMP team beside the calling thread's idle one, and the model
        # then ran on about one core: 15 s instead of 10.8 s per variational window, 6.0 s instead of
        # 3.4 s per DC-STSF tile at 6000^2 (our reading: libgomp, managing more threads than cores, stops
        # spinning between parallel regions; docs/design.md, "One tile at a time").
        for t in todo:
            finish(t, _compute_tile_local(job, t))
        return
    # Results come back through a queue, not futures: a finished future would keep its tile alive
    # while the next one computes.
    results: queue.Queue[tuple[tuple[int, int], np.ndarray | None, BaseException | None]] = queue.Queue()
    upcoming = iter(todo)
    running = 0

    def work(t: tuple[int, int]) -> None:
        try:
            results.put((t, _compute_tile_local(job, t), None))
        except BaseException as exc:  # re-raised in the calling thread
            results.put((t, None, exc))

    def submit_next() -> None:
        nonlocal running
        t = next(upcoming, None)
        if t is not None:
            ex.submit(work, t)
            running += 1

    with _torch_threads_per_tile(parallel):
        ex = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dcstsf-tile")
        try:
            for _ in range(parallel):
                submit_next()
            while running:
                t, arr, exc = results.get()
                running -= 1
                if exc is not None:
                    raise exc
                assert arr is not None
                # Start the next tile before saving this one: saving overlaps computing.
                submit_next()
                finish(t, arr)
                del arr
        except BaseException:
            # Do not wait for tiles still computing (Ctrl-C should stop now); their results are not saved.
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown(wait=True)


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
    return compose(plan, region, lambda ty, tx: _load_tile(w, (ty, tx)), n_bands=n_bands)


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
    """The largest multiple of 16 that divides ``chunk`` and is at most 512 (small edge-block waste)."""
    best = _GTIFF_ALIGN
    for b in range(_GTIFF_ALIGN, min(chunk, _MAX_GTIFF_BLOCK) + 1, _GTIFF_ALIGN):
        if chunk % b == 0:
            best = b
    return best


def _tag(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in np.ravel(value))
    return str(value)


# Band-interleaved: 166 planes compress and write ~10x faster than pixel interleave, and read faster.
_GTIFF_LAYOUT = {"interleave": "band", "bigtiff": "IF_SAFER", "num_threads": "ALL_CPUS"}


class _GTiffStream:
    """Writes the output GeoTIFF in a background thread while tiles are still being computed.

    Tiles are written in row-major order as soon as every prediction tile their core needs is saved
    (:meth:`tile_done`), so compression overlaps computation. The file is a temporary
    ``.<name>.partial-<pid>`` until :meth:`finish` renames it; :meth:`abort` deletes it. A killed run
    leaves no output: the next run rewrites the file from the saved tiles.
    """

    def __init__(
        self,
        job: FusionJob,
        work: Path,
        out: Path,
        *,
        codec: dict[str, Any],
        cog: bool,
        progress: bool,
        dtype: Any = None,
        scale: float | Sequence[float] | None = None,
        offset: float | Sequence[float] | None = None,
    ) -> None:
        self.job, self.work, self.out, self.cog = job, work, out, cog
        plan, n = job.plan, job.n_bands
        self.tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
        self.tmp_gtiff = self.tmp.with_name(self.tmp.name + ".gtiff") if cog else self.tmp
        out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(np.float32)
        self.integer = bool(np.issubdtype(out_dtype, np.integer))
        if self.integer:
            if scale is None:
                raise DcstsfInputError(
                    f"{out}: writing {out_dtype.name} needs out_scale (stored = (reflectance - out_offset) / out_scale)"
                )
            self.sc = np.broadcast_to(np.asarray(scale, np.float64), (n,)).copy()
            self.of = np.broadcast_to(np.asarray(0.0 if offset is None else offset, np.float64), (n,)).copy()
            info = np.iinfo(out_dtype)
            self.nodata = float(info.min)
            self.lo, self.hi = float(info.min) + 1, float(info.max)
        elif out_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise DcstsfInputError(f"{out}: unsupported output dtype {out_dtype}; use float32 or an integer type")
        else:
            self.nodata = float("nan")
        self.dtype = out_dtype
        block = _gtiff_blocksize(plan.chunk)
        self.profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": plan.width,
            "height": plan.height,
            "count": n,
            "dtype": out_dtype.name,
            "nodata": self.nodata,
            "tiled": True,
            "blockxsize": block if plan.width > block else max(16, -(-plan.width // 16) * 16),
            "blockysize": block if plan.height > block else max(16, -(-plan.height // 16) * 16),
            **_GTIFF_LAYOUT,
            **codec,
        }
        if job.inputs.crs is not None:
            self.profile["crs"] = job.inputs.crs
        if job.inputs.transform is not None:
            self.profile["transform"] = job.inputs.transform
        self.order = plan.tiles()
        self.needs = {t: list(plan.overlapping(plan.core(*t))) for t in self.order}
        # How many output tiles still read each prediction: an in-memory prediction is dropped after its last.
        self.uses: dict[tuple[int, int], int] = {}
        for t in self.order:
            for d in self.needs[t]:
                self.uses[d] = self.uses.get(d, 0) + 1
        # Finished predictions handed over in memory (at most _IN_MEMORY_TILES); the others are read back
        # from their saved .npy files.
        self.in_memory: dict[tuple[int, int], np.ndarray] = {}
        self.done: set[tuple[int, int]] = set()
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self.stopped = False
        self.progress = progress
        self.thread = threading.Thread(target=self._run, name="dcstsf-gtiff-writer", daemon=True)

    # -- main-thread API ---------------------------------------------------------------------------

    def start(self, done: set[tuple[int, int]]) -> None:
        """Start writing; ``done`` are the tiles already saved."""
        with self.cond:
            self.done |= set(done)
        self.thread.start()

    def tile_done(self, t: tuple[int, int], prediction: np.ndarray | None = None) -> None:
        """Tile ``t``'s prediction is saved; re-raises a writer failure.

        ``prediction`` (the saved array, not to be modified afterwards) spares the writer reading the
        file back, while fewer than ``_IN_MEMORY_TILES`` wait to be written.
        """
        with self.cond:
            if prediction is not None and len(self.in_memory) < _IN_MEMORY_TILES:
                self.in_memory[t] = prediction
            self.done.add(t)
            self.cond.notify_all()
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        """Wait for the last tile, convert to COG if asked, rename into place."""
        self.thread.join()
        if self.error is not None:
            self.abort()
            raise self.error
        try:
            if self.cog:
                import rasterio.shutil

                opts: dict[str, Any] = {
                    "blocksize": 512, "overview_resampling": "average", "bigtiff": "IF_SAFER",
                    **dio.cog_codec_options(self.profile),
                }
                rasterio.shutil.copy(self.tmp_gtiff, self.tmp, driver="COG", **opts)
                self._remove(self.tmp_gtiff)
            os.replace(self.tmp, self.out)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop the writer and delete the temporary file(s)."""
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        if self.thread.is_alive():
            self.thread.join()
        for p in (self.tmp, self.tmp_gtiff):
            self._remove(p)

    # -- writer thread -----------------------------------------------------------------------------

    @staticmethod
    def _remove(p: Path) -> None:
        for q in (p, Path(str(p) + ".aux.xml")):
            if q.exists():
                q.unlink()

    def _compose(self, region: Region, needs: list[tuple[int, int]]) -> np.ndarray:
        """The output over ``region``: the prediction itself when it is exactly the region (no blending)."""
        plan = self.job.plan

        def prediction(ty: int, tx: int) -> np.ndarray:
            arr = self.in_memory.get((ty, tx))
            return arr if arr is not None else _load_tile(self.work, (ty, tx))

        if len(needs) == 1 and plan.extended(*needs[0]) == region:
            return np.asarray(prediction(*needs[0]))
        return compose(plan, region, prediction, n_bands=self.job.n_bands)

    def _encode(self, arr: np.ndarray) -> np.ndarray:
        if not self.integer:
            return arr.astype(self.dtype, copy=False)
        v = np.rint((arr - self.of[:, None, None]) / self.sc[:, None, None])
        np.clip(v, self.lo, self.hi, out=v)
        v[np.isnan(arr)] = self.nodata
        return v.astype(self.dtype)

    def _write_metadata(self, dst: Any) -> None:
        job, coords = self.job, self.job.band_coords
        dst.update_tags(**{k: _tag(v) for k, v in job.attrs.items() if not k.startswith("_")})
        if self.integer:
            dst.scales = tuple(float(v) for v in self.sc)
            dst.offsets = tuple(float(v) for v in self.of)
        per_band = {k: np.asarray(coords[k][1]) for k in ("wavelength", "fwhm", "bbl") if k in coords}
        for i, name in enumerate(coords["band"]):
            dst.set_band_description(i + 1, str(name))
            tags: dict[str, str] = {}
            if "wavelength" in per_band:
                tags["wavelength"] = repr(float(per_band["wavelength"][i]))
                tags["wavelength_units"] = "Nanometers"
            if "fwhm" in per_band:
                tags["fwhm"] = repr(float(per_band["fwhm"][i]))
            if "bbl" in per_band:
                tags["bbl"] = str(int(per_band["bbl"][i]))
            if tags:
                dst.update_tags(i + 1, **tags)

    def _run(self) -> None:
        import rasterio
        from rasterio.windows import Window
        from tqdm.auto import tqdm

        plan, n = self.job.plan, self.job.n_bands
        try:
            with rasterio.open(self.tmp_gtiff, "w", **self.profile) as dst:
                self._write_metadata(dst)
                for t in tqdm(self.order, desc="writing", unit="tile", disable=not self.progress, leave=False):
                    with self.cond:
                        while not self.stopped and not all(d in self.done for d in self.needs[t]):
                            self.cond.wait()
                        if self.stopped:
                            return
                    region = plan.core(*t)
                    arr = self._encode(self._compose(region, self.needs[t]))
                    y0, y1, x0, x1 = region
                    dst.write(arr, window=Window(x0, y0, x1 - x0, y1 - y0))
                    del arr
                    with self.cond:
                        for d in self.needs[t]:
                            self.uses[d] -= 1
                            if self.uses[d] == 0:
                                self.in_memory.pop(d, None)
                    _trim_heap()
        except BaseException as exc:  # surfaced in the main thread by tile_done()/finish()
            self.error = exc


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
    memory_limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    cog: bool = False,
    compress: str | None = "zstd",
    compress_level: int | None = None,
    predictor: str | None = None,
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
    gdal_cache_mb: int = 256,
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
        Largest tile size in fine pixels. Tiles are a multiple of the ratio, and for GeoTIFF output of
        ``lcm(ratio, 16)`` so that tiles are whole GeoTIFF blocks; they are balanced: as small as keeps the
        tile count, so the last row and column are not slivers (1023 px with ``chunk=512``: 384, 384, 255
        rather than 480, 480, 63).
    workers
        Run on a local ``dask.distributed`` cluster of this many single-threaded worker processes.
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``) instead.
    parallel_tiles
        Tiles computed at once with the default threaded scheduler; PyTorch's threads are shared out
        among them (``cores // parallel_tiles`` each). Default: 2 on a machine with 2 or more cores,
        measured about 10 % faster than one tile using both cores (the model's padding, upsampling and
        element-wise steps do not use every core), at the cost of a second tile in memory
        (``experiments/results/bench_scale.json``); fewer when they would not fit ``memory_limit``.
    memory_limit
        Bytes of resident memory the run aims to stay within (default :func:`default_memory_limit`: 1/8 of
        the RAM, at least 3 GiB). Unless ``parallel_tiles`` is given, the first tile is computed alone
        while its memory is measured, and the other tiles run as many at once (up to the default) as fit
        the limit with a 1.15x headroom (``BatchResult.parallel_tiles``). A limit below what one tile
        needs is not an error: tiles then run one at a time. Local threaded runs only.
    overwrite
        Replace an existing output (otherwise it is an error).
    progress
        Show progress bars (tiles, then writing).
    cog
        Write a Cloud-Optimised GeoTIFF (with overviews): the tiled GeoTIFF is converted at the end.
    compress, compress_level
        Codec and level. GeoTIFF default: ZSTD level 1; ``"deflate"`` for readers without ZSTD; ``None``
        for uncompressed. Zarr/NetCDF: passed to :func:`dcstsf.io.write_raster`.
    predictor
        GeoTIFF predictor: ``"none"`` (default for float output), ``"horizontal"`` (default for integer
        output) or ``"float"`` (files about 7 % smaller on reflectance, twice the CPU time of ZSTD level 1:
        :func:`dcstsf.io.gtiff_codec_options`).
    dtype, out_scale, out_offset
        Stored type (float32 by default). An integer type stores ``round((value - out_offset) / out_scale)``
        with the type's minimum as nodata, and records the scale/offset in the file so
        :func:`dcstsf.io.open_raster` reads reflectance back.
    hs_scale, hs_offset, hs_nodata, ms_scale, ms_offset, ms_nodata
        Reflectance decoding of the inputs (``ms_*`` apply to both MS dates), overriding the files.
    keep_work
        Keep the work directory after success (for inspection).
    gdal_cache_mb
        GDAL's block cache during the run (restored afterwards). GDAL's default, 5 % of RAM, would fill
        with input blocks that each tile reads once, and add over 1 GiB to the peak memory of a large scene.
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
    import rasterio

    kwargs = {k: v for k, v in locals().items() if k not in ("rasterio", "gdal_cache_mb")}
    with rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb) * 2**20):
        return _run_batch(**kwargs, gdal_cache_bytes=int(gdal_cache_mb) * 2**20)


def _run_batch(
    hs_t1: str | os.PathLike[str],
    ms_t1: str | os.PathLike[str],
    ms_t2: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    method: str | Method,
    hs_sensor: str | Sensor | None,
    ms_sensor: str | Sensor | None,
    ms_bands: Sequence[str] | str | None,
    ratio: int | None,
    chunk: int,
    blend: int,
    halo: int | None,
    align: str,
    workers: int | None,
    scheduler: str | None,
    parallel_tiles: int | None,
    memory_limit: int | None,
    overwrite: bool,
    progress: bool,
    cog: bool,
    compress: str | None,
    compress_level: int | None,
    predictor: str | None,
    dtype: Any,
    out_scale: float | Sequence[float] | None,
    out_offset: float | Sequence[float] | None,
    hs_scale: float | Sequence[float] | None,
    hs_offset: float | Sequence[float] | None,
    hs_nodata: float | None,
    ms_scale: float | Sequence[float] | None,
    ms_offset: float | Sequence[float] | None,
    ms_nodata: float | None,
    keep_work: bool,
    on_tile: TileCallback | None,
    gdal_cache_bytes: int,
) -> BatchResult:
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
    if predictor is not None and fmt != "GTiff":
        raise DcstsfInputError(f"{out_p}: a predictor applies to GeoTIFF output only; drop it or write a .tif")
    codec: dict[str, Any] = {}
    if fmt == "GTiff":
        # Before any work: a bad codec option would otherwise fail only when the writer starts.
        codec = dio.gtiff_codec_options(compress, level=compress_level, predictor=predictor,
                                        dtype=np.float32 if dtype is None else dtype, path=out_p)
    if out_p.exists() and not overwrite:
        raise DcstsfInputError(f"{out_p} exists; pass overwrite=True (CLI --overwrite) to replace it")
    if not out_p.parent.exists():
        raise DcstsfInputError(f"{out_p}: the directory {out_p.parent} does not exist; create it first")
    if parallel_tiles is not None and (not isinstance(parallel_tiles, (int, np.integer)) or parallel_tiles < 1):
        raise DcstsfInputError(f"parallel_tiles must be a positive integer, got {parallel_tiles!r}")
    if memory_limit is not None and (not isinstance(memory_limit, (int, np.integer)) or memory_limit < 1):
        raise DcstsfInputError(f"memory_limit must be a positive number of bytes, got {memory_limit!r}")
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
    # Chunked as the files are stored: the scene-level fit and fill values read every chunk once, and
    # whole storage blocks read several times faster than the tile-aligned chunks below.
    fit_inputs = inputs
    r = inputs.ratio
    step = math.lcm(r, _GTIFF_ALIGN) if fmt == "GTiff" else r
    plan = make_plan(inputs, m, chunk=chunk, blend=blend, halo=halo, step=step, balance=True)
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # already warned about cropping above
            inputs = validate_inputs(*arrays, **vkw)

    options = {
        "align": align,
        "hs_open": hs_kw,
        "ms_open": ms_kw,
        "halo_override": halo,
    }
    work = work_dir_for(out_p)
    # Temporaries of earlier runs killed while writing (their pid is gone) would otherwise stay forever.
    dio.remove_stale_temporaries(out_p)
    with _client(workers, scheduler) as client:
        import dask

        # The scene-level fit and fill values run on the cluster when there is one, else on local threads.
        with dask.config.set(scheduler=client if client is not None else _local_scheduler("threads")):
            job = prepare(
                *arrays, method=m, chunk=plan.chunk, blend=blend, halo=halo, inputs=inputs, step=step,
                balance=True, fit_inputs=fit_inputs,
            )
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

        stream = None
        if fmt == "GTiff":
            # The GeoTIFF is written while tiles are computed (each finished tile in memory, in order).
            stream = _GTiffStream(
                job, work, out_p, codec=codec, cog=cog, progress=progress, dtype=dtype, scale=out_scale,
                offset=out_offset,
            )
            stream.start(done)
        bar = tqdm(total=len(tiles), initial=skipped, unit="tile", desc=f"dcstsf {job.method.name}",
                   disable=not progress)
        computed = 0
        ran_parallel: int | None = None
        tile_peak: int | None = None

        def finish(t: tuple[int, int], arr: np.ndarray) -> None:
            nonlocal computed
            _save_tile(work, t, arr)
            done.add(t)
            _write_ledger(work, fingerprint, plan, done, meta)
            computed += 1
            bar.update(1)
            if stream is not None:
                stream.tile_done(t, arr)
            if on_tile is not None:
                on_tile(t, len(done), len(tiles))

        try:
            if todo:
                if client is None:
                    # Adapt to the memory only when the caller left the number of tiles at once to us.
                    limit = None
                    if parallel_tiles is None:
                        limit = default_memory_limit() if memory_limit is None else int(memory_limit)
                    tile_bytes = job.n_bands * plan.chunk * plan.chunk * 4
                    writer = (tile_bytes + int(gdal_cache_bytes)) if stream is not None else 0
                    ran_parallel, tile_peak = _run_tiles_adaptive(
                        job, todo, _default_parallel(parallel_tiles), finish, memory_limit=limit, writer_bytes=writer
                    )
                else:
                    _run_tiles_distributed(job, todo, client, finish)
        except BaseException:
            if stream is not None:
                stream.abort()
            raise
        finally:
            bar.close()
    t_fused = time.perf_counter()

    if stream is not None:
        if overwrite and out_p.is_dir():
            shutil.rmtree(out_p)
        stream.finish()
    else:
        import dask

        result = job.to_dataarray(_assembled(job, work))
        # Assembly reads the local work directory: always on local threads, whatever scheduler fused the tiles.
        with dask.config.set(scheduler=_local_scheduler("threads")):
            dio.write_raster(
                result, out_p, overwrite=overwrite, compress=compress, blocksize=256, dtype=dtype,
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
        parallel_tiles=ran_parallel,
        tile_peak_bytes=tile_peak,
    )

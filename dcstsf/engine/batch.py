"""Batch fusion of files: stream tile by tile, resumable, atomic output, any Dask scheduler.

:func:`run_batch` opens the three rasters lazily (chunks aligned with the tile windows, so each tile reads
exactly its window), fits the method once (on the files' own blocks, read once), then computes the
prediction tiles (:mod:`~dcstsf.engine.runners`; the first alone while its memory is measured, then as
many at once as fit ``memory_limit``, or an error naming the limit and tile size that fit when not even
one does: :mod:`~dcstsf.engine.memory`) and saves each to a work directory
next to the output (:mod:`~dcstsf.engine.resume`). Run the same command again after a crash or a kill and
the finished tiles are skipped. The output is written to a temporary name, then renamed: there is never
a partial file under the final name. GeoTIFF is written while the tiles are computed
(:mod:`~dcstsf.engine.stream`); Zarr and NetCDF by :func:`dcstsf.io.write_raster` from the saved tiles.
The work directory is removed after success; it needs about as much disk space as the uncompressed
output (``n_hs x H x W x 4`` bytes).

The keywords of :func:`run_batch` are grouped into the option objects of :mod:`~dcstsf.engine.options`,
and each step of the run receives the one it uses.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import xarray as xr

from dcstsf import io as dio
from dcstsf._files import LockHeld, exclusive_lock, lock_path, remove_stale_temporaries
from dcstsf.engine.cluster import DEFAULT_SCHEDULER_TIMEOUT, DEFAULT_WORKER_TIMEOUT, client, local_scheduler
from dcstsf.engine.inputs import FusionInputs, validate_inputs
from dcstsf.engine.job import FusionJob, prepare
from dcstsf.engine.memory import MemoryBudget, check_tile_floor, default_memory_limit
from dcstsf.engine.options import ExecutionOptions, FusionOptions, OutputOptions, ReadOptions, TileCallback
from dcstsf.engine.physics import SettledInputs, settle_inputs
from dcstsf.engine.plan import DEFAULT_CHUNK, TilePlan, make_plan, window_chunks
from dcstsf.engine.resume import (
    assemble_from_tiles,
    fingerprint,
    load_ledger,
    remove_work_dir,
    save_tile,
    work_dir_for,
    write_ledger,
)
from dcstsf.engine.runners import default_parallel, run_tiles_adaptive, run_tiles_distributed
from dcstsf.engine.stream import GTIFF_ALIGN, GTiffStream
from dcstsf.errors import DcstsfInputError
from dcstsf.methods import Method, get_method
from dcstsf.sensors import Sensor

if TYPE_CHECKING:
    from dcstsf.preparation import PreparedInputs, PrepareOptions

__all__ = ["BatchResult", "run_batch"]

log = logging.getLogger(__name__)


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
        Resident memory one tile added at its peak, measured on the first tile computed (the mean of the
        first two for a borderline reading); ``None`` on a Dask cluster, where no tile was left to compute,
        or where the resident memory cannot be read.
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
    ms_sensor_t2: str | Sensor | None = None,
    chunk: int = DEFAULT_CHUNK,
    blend: int = 0,
    halo: int | None = None,
    align: str = "strict",
    physics: str = "estimated",
    checks: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    dashboard: bool | str | None = None,
    scheduler_timeout: float = DEFAULT_SCHEDULER_TIMEOUT,
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT,
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
    preparation: PrepareOptions | None = None,
) -> BatchResult:
    """Fuse three raster files into ``out``, streaming tile by tile; resumable and atomic.

    Parameters
    ----------
    hs_t1, ms_t1, ms_t2
        Input rasters: GeoTIFF/COG (or anything GDAL reads), Zarr stores or NetCDF files, read with
        :func:`dcstsf.io.open_raster` (scale/offset/nodata from the files unless given below). Any of them
        may be a delivered product (Sentinel-2 L2A ``.SAFE`` or STAC item, EnMAP L2A, PRISMA L2D, AHSI:
        :func:`dcstsf.products.open_product`); the three inputs then go through
        :func:`dcstsf.preparation.prepare_inputs` first (common grid, masks, co-registration), lazily.
    out
        Output path: ``.tif``/``.tiff`` (tiled, compressed GeoTIFF; a COG with ``cog=True``), ``.zarr`` or
        ``.nc``. Band names, wavelengths and FWHM, CRS, transform and the provenance attrs are written.
    method, hs_sensor, ms_sensor, ms_bands, ratio, ms_sensor_t2, blend, halo, align, physics, checks
        As in :func:`dcstsf.fuse`.
    chunk
        Largest tile size in fine pixels. Tiles are a multiple of the ratio, and for GeoTIFF output of
        ``lcm(ratio, 16)`` so that tiles are whole GeoTIFF blocks; they are balanced: as small as keeps the
        tile count, so the last row and column are not slivers (1023 px with ``chunk=512``: 384, 384, 255
        rather than 480, 480, 63).
    workers
        Run on a local ``dask.distributed`` cluster of this many single-threaded worker processes.
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``) instead. Its workers read the inputs
        by their absolute paths (relative ones are made absolute here), so they must see the same files.
    dashboard
        Serve the local cluster's Dask dashboard (needs ``workers`` and the bokeh package): ``True`` at
        ``127.0.0.1:8787``, or a ``HOST:PORT`` address. Off by default.
    scheduler_timeout
        Seconds to wait for the scheduler at ``scheduler`` to answer; an address where no Dask scheduler
        answers in time is a :class:`~dcstsf.errors.DcstsfInputError`.
    worker_timeout
        Seconds the run waits while no Dask worker is connected (all died, or none joined); then it stops
        with :class:`~dcstsf.engine.cluster.NoWorkerError`, the finished tiles kept for the next run.
    parallel_tiles
        The most tiles computed at once with the default threaded scheduler; PyTorch's threads are shared
        out among them (``cores // parallel_tiles`` each). Default: 2 on a machine with 2 or more cores,
        since the model's padding, upsampling and element-wise steps do not use every core, at the cost of
        a second tile in memory. Fewer run at once when they would not fit ``memory_limit``.
    memory_limit
        Bytes of resident memory the run stays within (default :func:`default_memory_limit`: 1/8 of the
        RAM, at least 3 GiB); a given limit and the default are held alike. A limit below what the largest
        tile's inputs and output alone take (beside the process and the output writer) is refused before
        any tile runs. The first tile is then computed alone while its memory is measured, and the other
        tiles run as many at once (up to ``parallel_tiles``) as fit the limit with a 1.15x headroom
        (``BatchResult.parallel_tiles``). When not even one tile at a time fits, the run stops with a
        :class:`~dcstsf.errors.DcstsfInputError` that names the measured need, the smallest limit that
        holds it and a ``chunk`` that fits; the finished tiles are kept, so a run with a larger limit
        resumes them. Local threaded runs only: with ``workers``/``scheduler`` the Dask workers' own
        memory limits apply, and a given ``memory_limit`` is warned about.
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
        output) or ``"float"`` (somewhat smaller files on reflectance for more CPU time than ZSTD level 1
        alone: :func:`dcstsf.io.gtiff_codec_options`).
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
        with input blocks that each tile reads once, and add much to the peak memory of a large scene.
    on_tile
        Called as ``on_tile((ty, tx), finished, total)`` after each tile is safely saved; an exception
        raised by it stops the run (finished tiles stay saved for the next run).
    preparation
        How product inputs are prepared (:class:`dcstsf.preparation.PrepareOptions`); by default its
        defaults with ``ms_bands``, ``ratio`` and the sensors given here. Ignored when no input is a product.

    Returns
    -------
    BatchResult

    Raises
    ------
    DcstsfInputError
        Existing output without ``overwrite``, unknown output format, unreadable inputs, grid or band
        problems (see :func:`dcstsf.engine.validate_inputs`), a malformed ``scheduler`` address or one where
        no Dask scheduler answers within ``scheduler_timeout``, a ``memory_limit`` too small for one tile.
    NoWorkerError
        No Dask worker was connected for ``worker_timeout`` seconds (a ``ConnectionError``); the finished
        tiles are kept, and calling again with the same arguments resumes them.
    """
    import rasterio

    fusion = FusionOptions(
        method=method, hs_sensor=hs_sensor, ms_sensor=ms_sensor, ms_bands=ms_bands, ratio=ratio, align=align,
        ms_sensor_t2=ms_sensor_t2, blend=blend, halo=halo, hs_read=ReadOptions(hs_scale, hs_offset, hs_nodata),
        ms_read=ReadOptions(ms_scale, ms_offset, ms_nodata), physics=physics, checks=checks,
    )
    output = OutputOptions(
        dtype=dtype, scale=out_scale, offset=out_offset, compress=compress, compress_level=compress_level,
        predictor=predictor, cog=cog, overwrite=overwrite,
    )
    execution = ExecutionOptions(
        chunk=chunk, workers=workers, scheduler=scheduler, dashboard=dashboard, scheduler_timeout=scheduler_timeout,
        worker_timeout=worker_timeout, parallel_tiles=parallel_tiles, memory_limit=memory_limit,
        progress=progress, keep_work=keep_work, gdal_cache_mb=gdal_cache_mb, on_tile=on_tile,
    )
    with rasterio.Env(GDAL_CACHEMAX=execution.gdal_cache_bytes):
        return _run_batch(
            (hs_t1, ms_t1, ms_t2), out, fusion=fusion, output=output, execution=execution, preparation=preparation
        )


def _output_format(out: Path, output: OutputOptions, inputs: Sequence[Path]) -> tuple[str, dict[str, Any]]:
    """The output's format and GeoTIFF codec options; errors for a request that cannot be written."""
    suffix = out.suffix.lower()
    if suffix not in dio.RASTER_SUFFIXES:
        raise DcstsfInputError(f"{out}: unknown output format {suffix!r}; use one of {sorted(dio.RASTER_SUFFIXES)}")
    fmt = dio.RASTER_SUFFIXES[suffix]
    if output.cog and fmt != "GTiff":
        raise DcstsfInputError(f"{out}: cog=True needs a .tif output")
    if output.predictor is not None and fmt != "GTiff":
        raise DcstsfInputError(f"{out}: a predictor applies to GeoTIFF output only; drop it or write a .tif")
    codec: dict[str, Any] = {}
    if fmt == "GTiff":
        # Before any work: a bad codec option would otherwise fail only when the writer starts.
        codec = dio.gtiff_codec_options(
            output.compress, level=output.compress_level, predictor=output.predictor,
            dtype=np.float32 if output.dtype is None else output.dtype, path=out,
        )
    dio.check_output_path(out, fmt=fmt, overwrite=output.overwrite, inputs=inputs)
    return fmt, codec


class _OpenedInputs(NamedTuple):
    """The inputs of a batch run, opened twice: for the tiles and for the scene-level fit."""

    arrays: list[xr.DataArray]
    inputs: FusionInputs
    fit_inputs: FusionInputs
    plan: TilePlan
    step: int
    settled: SettledInputs
    preparation: dict[str, Any] | None = None


def prepared_products(
    paths: Sequence[Path], fusion: FusionOptions, preparation: PrepareOptions | None
) -> PreparedInputs | None:
    """The inputs prepared by :func:`dcstsf.preparation.prepare_products` when any of them is a product."""
    from dcstsf.products import is_product

    if not any(is_product(p) for p in paths):
        return None
    from dcstsf.preparation import PrepareOptions, prepare_products
    from dcstsf.products import DEFAULT_BANDS

    opts = preparation or PrepareOptions(
        ms_bands=fusion.ms_bands if fusion.ms_bands is not None else DEFAULT_BANDS, ratio=fusion.ratio,
        hs_sensor=fusion.hs_sensor, ms_sensor=fusion.ms_sensor, ms_sensor_t2=fusion.ms_sensor_t2,
    )
    reads = dict(zip(("hs_t1", "ms_t1", "ms_t2"), (fusion.hs_read, fusion.ms_read, fusion.ms_read)))
    return prepare_products(*paths, options=opts, reads=reads)


def _open_inputs(
    paths: Sequence[Path], fusion: FusionOptions, method: Method, *, chunk: int, fmt: str,
    preparation: PrepareOptions | None = None,
) -> _OpenedInputs:
    """Open and validate the inputs, plan the tiles, and re-open the inputs chunked on the tile windows."""
    reads = (fusion.hs_read, fusion.ms_read, fusion.ms_read)
    # Products are prepared once (lazily); "opening" them again only re-chunks the prepared arrays.
    prepared = prepared_products(paths, fusion, preparation)

    def open_all(chunks_hs: Any, chunks_ms: Any) -> list[xr.DataArray]:
        if prepared is not None:
            out = []
            for p, ch, a in zip(paths, (chunks_hs, chunks_ms, chunks_ms), prepared.arrays().values()):
                a = a if ch is True else a.chunk(ch)
                a.encoding["source"] = str(p)
                out.append(a)
            return out
        arrays = []
        for p, ch, read in zip(paths, (chunks_hs, chunks_ms, chunks_ms), reads):
            a = dio.open_raster(p, chunks=ch, **read.as_kwargs())
            a.encoding["source"] = str(p)
            arrays.append(a)
        return arrays

    arrays = open_all(True, True)
    # Validation (which reads a subsample for empty bands) and, before the tiles are planned, the diagnosis
    # (the estimated blur and shift set the halo). On local threads: naming no scheduler would make Dask
    # look for a distributed client (and import dask.distributed).
    import dask

    with dask.config.set(scheduler=local_scheduler("threads")):
        inputs = validate_inputs(*arrays, **fusion.validation_kwargs())
        settled = settle_inputs(inputs, method=method, options=fusion.diagnosis(), fit_inputs=inputs)
    inputs = settled.inputs
    # Chunked as the files are stored: the scene-level fit and fill values read every chunk once, and
    # whole storage blocks read several times faster than the tile-aligned chunks below.
    fit_inputs = inputs
    r = inputs.ratio
    step = math.lcm(r, GTIFF_ALIGN) if fmt == "GTiff" else r
    plan = make_plan(inputs, method, chunk=chunk, blend=fusion.blend, halo=fusion.halo, step=step, balance=True)
    if inputs.ms_offset is not None and inputs.hs_offset is not None:
        # Re-open with chunk edges on the window edges: every tile then reads exactly its window.
        (my, mx), (hy, hx) = inputs.ms_offset, inputs.hs_offset
        H0, W0 = arrays[1].sizes["y"], arrays[1].sizes["x"]
        h0, w0 = arrays[0].sizes["y"], arrays[0].sizes["x"]
        yb, xb = plan.chunk_bounds(0), plan.chunk_bounds(1)
        arrays = open_all(
            {"band": -1, "y": window_chunks(yb, size=h0, offset=hy, divisor=r),
             "x": window_chunks(xb, size=w0, offset=hx, divisor=r)},
            {"band": -1, "y": window_chunks(yb, size=H0, offset=my), "x": window_chunks(xb, size=W0, offset=mx)},
        )
        with warnings.catch_warnings(), dask.config.set(scheduler=local_scheduler("threads")):
            warnings.simplefilter("ignore", UserWarning)  # already warned about cropping and empty bands above
            inputs = validate_inputs(*arrays, **fusion.validation_kwargs(), hs_fill=inputs.hs_fill)
        inputs = settle_inputs(inputs, method=method, settled=settled).inputs
    record = None
    if prepared is not None:
        record = {"preparation": arrays[0].attrs.get("preparation"),
                  "coregistration": arrays[0].attrs.get("coregistration")}
    return _OpenedInputs(arrays, inputs, fit_inputs, plan, step, settled, record)


def _run_batch(
    files: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    fusion: FusionOptions,
    output: OutputOptions,
    execution: ExecutionOptions,
    preparation: PrepareOptions | None = None,
) -> BatchResult:
    """:func:`run_batch` with its keywords grouped into option objects (inside GDAL's cache setting)."""
    t_start = time.perf_counter()
    # A link is followed: replacing the link itself would leave the file it points to stale.
    out_p = dio.output_target(Path(out).expanduser())
    # Absolute, so that Dask workers started elsewhere find the same files.
    paths = [Path(p).expanduser().absolute() for p in files]
    fmt, codec = _output_format(out_p, output, paths)
    execution.validate()
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(lock_path(out_p)))
        except LockHeld as exc:
            raise DcstsfInputError(
                f"{out_p}: another dcstsf run (process {exc.pid}) is writing this output; wait for it to "
                "finish, or choose another output path"
            ) from None
        m = get_method(fusion.method)
        opened = _open_inputs(paths, fusion, m, chunk=execution.chunk, fmt=fmt, preparation=preparation)

        work = work_dir_for(out_p)
        # Temporaries of earlier runs killed while writing (their pid is gone) would otherwise stay forever.
        remove_stale_temporaries(out_p)
        with client(
            execution.workers, execution.scheduler, dashboard=execution.dashboard,
            scheduler_timeout=execution.scheduler_timeout, worker_timeout=execution.worker_timeout,
            memory_limit=execution.memory_limit,
        ) as cluster_client:
            import dask

            # The scene-level fit and fill values run on the cluster when there is one, else on local threads.
            with dask.config.set(scheduler=cluster_client if cluster_client is not None else local_scheduler("threads")):
                job = prepare(
                    *opened.arrays, method=m, chunk=opened.plan.chunk, blend=fusion.blend, halo=fusion.halo,
                    inputs=opened.inputs, step=opened.step, balance=True, fit_inputs=opened.fit_inputs,
                    settled=opened.settled,
                )
            plan = job.plan
            # Prepared products: what the preparation did (options, grid, displacement) decides the values too.
            key = fingerprint(job, paths, {**fusion.resume_key(), **(opened.preparation or {})})
            done = load_ledger(work, key, plan, job.n_bands)
            if cluster_client is None:
                # Before the work directory exists: a limit that cannot hold one tile leaves nothing behind.
                check_tile_floor(
                    _memory_budget(job, execution, streaming=fmt == "GTiff"), plan,
                    [t for t in plan.tiles() if t not in done], n_hs=job.n_bands, n_ms=job.model.n_ms,
                )
            work.mkdir(parents=True, exist_ok=True)
            meta = {"output": str(out_p), "method": job.method.name, "inputs": [str(p) for p in paths]}
            write_ledger(work, key, plan, done, meta)
            tiles = plan.tiles()
            todo = [t for t in tiles if t not in done]
            skipped = len(tiles) - len(todo)
            from tqdm.auto import tqdm

            stream = None
            if fmt == "GTiff":
                # The GeoTIFF is written while tiles are computed (each finished tile in memory, in order).
                stream = GTiffStream(
                    job, work, out_p, codec=codec, cog=output.cog, progress=execution.progress, dtype=output.dtype,
                    scale=output.scale, offset=output.offset,
                )
                stream.start(done)
            bar = tqdm(total=len(tiles), initial=skipped, unit="tile", desc=f"dcstsf {job.method.name}",
                       disable=not execution.progress)
            computed = 0

            def finish(t: tuple[int, int], arr: np.ndarray) -> None:
                nonlocal computed
                save_tile(work, t, arr)
                done.add(t)
                write_ledger(work, key, plan, done, meta)
                computed += 1
                bar.update(1)
                if stream is not None:
                    stream.tile_done(t, arr)
                if execution.on_tile is not None:
                    execution.on_tile(t, len(done), len(tiles))

            try:
                ran_parallel, tile_peak = _compute_tiles(
                    job, todo, cluster_client, finish, execution=execution, streaming=stream is not None
                )
            except BaseException:
                if stream is not None:
                    stream.abort()
                raise
            finally:
                bar.close()
            if todo:
                at_once = f"up to {ran_parallel} at once" if ran_parallel is not None else "on the Dask cluster"
                log.info("%d tile(s) computed, %s", len(todo), at_once)
        t_fused = time.perf_counter()

        if stream is not None:
            stream.finish()
        else:
            _write_from_tiles(job, work, out_p, output=output, progress=execution.progress)
        t_end = time.perf_counter()
        if not execution.keep_work:
            remove_work_dir(work)
        return BatchResult(
            path=out_p,
            tiles_total=len(tiles),
            tiles_computed=computed,
            tiles_skipped=skipped,
            seconds_fuse=t_fused - t_start,
            seconds_write=t_end - t_fused,
            fingerprint=key,
            plan=plan.describe(),
            parallel_tiles=ran_parallel,
            tile_peak_bytes=tile_peak,
        )


def _memory_budget(job: FusionJob, execution: ExecutionOptions, *, streaming: bool) -> MemoryBudget:
    """The memory limit of a local run (given or the default) and what its output writer holds."""
    r = job.plan.ratio
    return MemoryBudget(
        limit=default_memory_limit() if execution.memory_limit is None else int(execution.memory_limit),
        # The GeoTIFF writer holds a finished tile and GDAL's block cache.
        writer_fixed=execution.gdal_cache_bytes if streaming else 0,
        writer_per_pixel=job.n_bands * 4 if streaming else 0,
        step=math.lcm(r, GTIFF_ALIGN) if streaming else r,
        default=execution.memory_limit is None,
    )


def _compute_tiles(
    job: FusionJob,
    todo: list[tuple[int, int]],
    cluster_client: Any,
    finish: Callable[[tuple[int, int], np.ndarray], None],
    *,
    execution: ExecutionOptions,
    streaming: bool,
) -> tuple[int | None, int | None]:
    """Compute the tiles ``todo`` on the cluster or local threads; returns (tiles at once, tile peak)."""
    if not todo:
        return None, None
    if cluster_client is not None:
        if execution.memory_limit is not None and execution.scheduler is not None:
            warnings.warn(
                f"memory_limit={execution.memory_limit / 2**30:.2f} GiB (CLI --memory-limit) does not apply to "
                "the workers of an external Dask scheduler: each is bounded by the memory limit it was started "
                "with (dask worker --memory-limit)",
                stacklevel=4,
            )
        try:
            run_tiles_distributed(job, todo, cluster_client, finish)
        except Exception as exc:
            if type(exc).__name__ != "KilledWorker" or execution.workers is None:
                raise
            limit = execution.memory_limit
            share = "Dask's default share of the RAM" if limit is None else (
                f"{limit / execution.workers / 2**30:.2f} GiB (memory_limit / workers)"
            )
            raise DcstsfInputError(
                f"a Dask worker process died again and again on one tile ({exc}); each of the "
                f"{execution.workers} workers may use {share}. Give more memory (CLI --memory-limit), "
                "fewer workers or a smaller --chunk; the finished tiles are kept for the next run"
            ) from None
        return None, None
    return run_tiles_adaptive(
        job, todo, default_parallel(execution.parallel_tiles), finish,
        budget=_memory_budget(job, execution, streaming=streaming),
    )


def _write_from_tiles(job: FusionJob, work: Path, out: Path, *, output: OutputOptions, progress: bool) -> None:
    """Write a Zarr or NetCDF output from the saved tiles with :func:`dcstsf.io.write_raster`."""
    import dask

    result = job.to_dataarray(assemble_from_tiles(job, work))
    # Assembly reads the local work directory: always on local threads, whatever scheduler fused the tiles.
    with dask.config.set(scheduler=local_scheduler("threads")):
        dio.write_raster(
            result, out, overwrite=output.overwrite, compress=output.compress, blocksize=256, dtype=output.dtype,
            scale=output.scale, offset=output.offset, progress=progress,
        )

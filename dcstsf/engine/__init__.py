"""The scene-scale fusion engine: validation, lazy tiled fusion, batch runs, schedulers.

Public API
----------
:func:`fuse`
    ``fuse(hs_t1, ms_t1, ms_t2, *, method="dcstsf", ...) -> xarray.DataArray``: lazy, on the MS grid.
:func:`validate_inputs`
    The grid, CRS, ratio and band checks behind :func:`fuse` (clear errors, optional reprojection).
:func:`run_batch`
    Files in, file out: streamed tile by tile, resumable, atomic, on threads or ``dask.distributed``.

Modules, in the order a fusion passes through them: :mod:`~dcstsf.engine.inputs` (validation, with
:mod:`~dcstsf.engine.grids`, :mod:`~dcstsf.engine.bands` and :mod:`~dcstsf.engine.sources`),
:mod:`~dcstsf.engine.plan` (tile geometry), :mod:`~dcstsf.engine.tile` (one tile and the nodata policy),
:mod:`~dcstsf.engine.job` (:func:`prepare`), :mod:`~dcstsf.engine.lazy` (:func:`fuse`); batch runs:
:mod:`~dcstsf.engine.batch` (:func:`run_batch`) with :mod:`~dcstsf.engine.options`,
:mod:`~dcstsf.engine.resume`, :mod:`~dcstsf.engine.cluster`, :mod:`~dcstsf.engine.runners`,
:mod:`~dcstsf.engine.memory` and :mod:`~dcstsf.engine.stream`.

How tiling stays seamless
-------------------------
A method declares its receptive field as ``Method.halo(model)`` (fine pixels). Each output tile (``chunk``
x ``chunk`` fine pixels, a multiple of the ratio) is computed from its input window padded by that halo
and clipped at the image edges, so the method sees the true image edge exactly as in whole-image
processing; every interior pixel then equals the whole-image result, whatever the chunk size, and the
tests check it for every registered method. Scene-level state (``Method.fit``, and the per-band scene
means used to fill nodata before ``apply``) is computed once for the whole scene, never per tile.

Overlap blending: with the exact halo, overlapping predictions are identical, so by default (``blend=0``)
each pixel is taken from the one tile that owns it. ``blend=N`` additionally predicts ``N`` pixels beyond
each tile and cross-fades neighbours linearly over the ``2N``-pixel band around every tile boundary.
That is for methods whose true receptive field exceeds their declared halo (e.g. user-registered ones):
the seam becomes a smooth transition instead of a step. For correctly declared methods it changes
nothing beyond float rounding.

Nodata: NaN in the inputs (+/-Inf is treated as NaN). Before ``apply`` NaN is filled with the per-band
scene mean (estimated once from a regular subsample of at most 10^5 pixels: a scene-wide constant, so
tiled equals whole-image results next to nodata too); afterwards the output is NaN at every fine pixel
where any MS band is NaN at t1 or t2, or where the covering HS pixel is NaN in a good band (a sensor band
not flagged bad and not empty in the whole scene). Tiles that are entirely nodata skip the method.
:func:`dcstsf.methods.fuse_arrays` follows the same policy (:mod:`~dcstsf.engine.tile`).

Laziness: :func:`fuse` computes only the scene-level state (``Method.fit``, typically a strided sample,
and the fill values); every output pixel is computed when the result is computed or written.
:func:`run_batch` streams the tiles to disk with a resume ledger and writes the output atomically.
"""

from dcstsf.engine.batch import BatchResult, run_batch
from dcstsf.engine.cluster import NoWorkerError
from dcstsf.engine.inputs import ALIGN_MODES, FusionInputs, validate_inputs
from dcstsf.engine.job import FusionJob, prepare
from dcstsf.engine.lazy import fuse
from dcstsf.engine.memory import default_memory_limit
from dcstsf.engine.options import ExecutionOptions, FusionOptions, OutputOptions, ReadOptions
from dcstsf.engine.plan import DEFAULT_CHUNK, TilePlan, balanced_chunk, make_plan
from dcstsf.engine.resume import work_dir_for
from dcstsf.engine.tile import TileContext

__all__ = [
    "ALIGN_MODES",
    "BatchResult",
    "DEFAULT_CHUNK",
    "ExecutionOptions",
    "FusionInputs",
    "FusionJob",
    "FusionOptions",
    "NoWorkerError",
    "OutputOptions",
    "ReadOptions",
    "TileContext",
    "TilePlan",
    "balanced_chunk",
    "default_memory_limit",
    "fuse",
    "make_plan",
    "prepare",
    "run_batch",
    "validate_inputs",
    "work_dir_for",
]

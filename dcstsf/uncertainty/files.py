"""The standard-deviation raster of a file-to-file fusion (``dcstsf fuse ... --uncertainty OUT_SD.tif``).

The batch run writes the prediction; :func:`write_uncertainty` then opens the same input files with the
same decoding (products prepared with the same options, as the batch run prepares them), fuses them lazily
with ``uncertainty=True`` and writes the standard deviation through
:func:`dcstsf.io.write_raster`: the grid, CRS, band names and band coordinates are the prediction's, since
both come from the same validated inputs. The scene-level steps (diagnosis, ``fit``) run again, and each
tile runs the method and its reference member, on local threads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dcstsf import io as dio
from dcstsf.engine.options import FusionOptions
from dcstsf.errors import DcstsfInputError
from dcstsf.preparation import PrepareOptions

__all__ = ["check_uncertainty_output", "write_uncertainty"]


def check_uncertainty_output(
    path: str | os.PathLike[str], *, prediction: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]], overwrite: bool,
) -> Path:
    """Refuse, before any work, a standard-deviation path that would lose data or cannot be written.

    The path must differ from the prediction's, must not be an input, must have a raster suffix, and must
    not exist unless ``overwrite`` (CLI ``--overwrite``). Returns the path written to.
    """
    out = dio.output_target(Path(path).expanduser())
    suffix = out.suffix.lower()
    if suffix not in dio.RASTER_SUFFIXES:
        raise DcstsfInputError(
            f"{out}: unknown format for the standard deviation (--uncertainty); use one of "
            f"{sorted(dio.RASTER_SUFFIXES)}"
        )
    pred = Path(prediction).expanduser()
    if os.path.realpath(out) == os.path.realpath(pred):
        raise DcstsfInputError(f"{out}: --uncertainty names the prediction's output (-o); give the standard "
                               "deviation its own file, e.g. OUT_sd.tif")
    dio.check_output_path(out, fmt=dio.RASTER_SUFFIXES[suffix], overwrite=overwrite, inputs=inputs)
    return out


def write_uncertainty(
    hs_t1: str | os.PathLike[str],
    ms_t1: str | os.PathLike[str],
    ms_t2: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fusion: FusionOptions,
    preparation: PrepareOptions | None = None,
    chunk: int | None = None,
    parallel_tiles: int | None = None,
    overwrite: bool = False,
    compress: str | None = "zstd",
    progress: bool = False,
) -> Path:
    """Fuse the three files with ``uncertainty=True`` and write the standard deviation to ``out``.

    ``fusion`` holds the options the prediction was fused with (method, sensors, decoding, physics) and
    ``preparation`` how product inputs were prepared (as :func:`dcstsf.engine.run_batch` takes it);
    ``chunk`` the tile size (default: :func:`dcstsf.fuse`'s); ``parallel_tiles`` the tiles computed at once
    on local threads (default as :func:`dcstsf.engine.run_batch`). Returns the path written.
    """
    import dask

    from dcstsf.engine.batch import prepared_products
    from dcstsf.engine.cluster import local_scheduler
    from dcstsf.engine.lazy import fuse
    from dcstsf.engine.runners import default_parallel, torch_threads_per_tile

    paths = [Path(p).expanduser() for p in (hs_t1, ms_t1, ms_t2)]
    prepared = prepared_products(paths, fusion, preparation)
    if prepared is not None:
        arrays = list(prepared.arrays().values())
    else:
        reads = (fusion.hs_read, fusion.ms_read, fusion.ms_read)
        arrays = [dio.open_raster(p, chunks=True, **r.as_kwargs()) for p, r in zip(paths, reads)]
    extra = {} if chunk is None else {"chunk": chunk}
    result = fuse(
        *arrays, method=fusion.method, hs_sensor=fusion.hs_sensor, ms_sensor=fusion.ms_sensor,
        ms_bands=fusion.ms_bands, ratio=fusion.ratio, ms_sensor_t2=fusion.ms_sensor_t2, blend=fusion.blend,
        halo=fusion.halo, align=fusion.align, physics=fusion.physics, checks=fusion.checks, uncertainty=True,
        **extra,
    )
    parallel = default_parallel(parallel_tiles)
    with dask.config.set(scheduler=local_scheduler("threads"), num_workers=parallel), torch_threads_per_tile(parallel):
        return dio.write_raster(result.sd, out, overwrite=overwrite, compress=compress, progress=progress)

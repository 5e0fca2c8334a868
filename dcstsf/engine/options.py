"""The option objects of a batch run: what decides the fused values, how they are stored, how the work is done.

:func:`dcstsf.engine.run_batch` takes flat keywords (the command line's options) and groups them into
these objects, so each step of the run receives only what it uses: :class:`FusionOptions` the fused
values (method, sensors, grids, overlap, decoding of the inputs), :class:`OutputOptions` their storage
(type, scale, codec, COG, overwrite) and :class:`ExecutionOptions` how the work is done (tile size, scheduler,
memory, progress, work directory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcstsf.diagnosis import DiagnosisOptions
from dcstsf.engine.cluster import DEFAULT_SCHEDULER_TIMEOUT, DEFAULT_WORKER_TIMEOUT
from dcstsf.engine.plan import DEFAULT_CHUNK
from dcstsf.errors import DcstsfInputError
from dcstsf.methods import Method
from dcstsf.sensors import Sensor

__all__ = ["ExecutionOptions", "FusionOptions", "OutputOptions", "ReadOptions", "TileCallback"]

#: ``on_tile((ty, tx), finished, total)``: called after each tile is safely saved.
TileCallback = Callable[[tuple[int, int], int, int], None]


@dataclass(frozen=True)
class ReadOptions:
    """How one input file's stored values become reflectance, overriding what the file says.

    ``None`` keeps the file's own scale, offset and nodata value (:func:`dcstsf.io.open_raster`).
    """

    scale: float | Sequence[float] | None = None
    offset: float | Sequence[float] | None = None
    nodata: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The keywords of :func:`dcstsf.io.open_raster`."""
        return {"scale": self.scale, "offset": self.offset, "nodata": self.nodata}


@dataclass(frozen=True)
class FusionOptions:
    """Everything besides the input files that decides the fused values.

    ``method``, ``hs_sensor``, ``ms_sensor``, ``ms_sensor_t2``, ``ms_bands``, ``ratio``, ``blend``, ``halo``, ``align``,
    ``physics`` and ``checks`` are those of :func:`dcstsf.fuse`; ``hs_read`` and ``ms_read`` decode the HS
    file and both MS files.
    """

    method: str | Method = "dcstsf"
    hs_sensor: str | Sensor | None = None
    ms_sensor: str | Sensor | None = None
    ms_bands: Sequence[str] | str | None = None
    ratio: int | None = None
    align: str = "strict"
    ms_sensor_t2: str | Sensor | None = None
    blend: int = 0
    halo: int | None = None
    hs_read: ReadOptions = field(default_factory=ReadOptions)
    ms_read: ReadOptions = field(default_factory=ReadOptions)
    physics: str = "estimated"
    checks: bool = True

    def diagnosis(self) -> DiagnosisOptions:
        """The options of the scene diagnosis (:func:`dcstsf.diagnosis.diagnose_scene`)."""
        return DiagnosisOptions(physics=self.physics, checks=self.checks)

    def validation_kwargs(self) -> dict[str, Any]:
        """The keywords of :func:`dcstsf.engine.validate_inputs`."""
        return {"hs_sensor": self.hs_sensor, "ms_sensor": self.ms_sensor, "ms_bands": self.ms_bands,
                "ratio": self.ratio, "align": self.align, "ms_sensor_t2": self.ms_sensor_t2}

    def resume_key(self) -> dict[str, Any]:
        """What of these options the resume fingerprint holds besides the fitted state and the plan."""
        return {
            "align": self.align,
            "hs_open": self.hs_read.as_kwargs(),
            "ms_open": self.ms_read.as_kwargs(),
            "halo_override": self.halo,
            "physics": self.physics,
            "ms_sensor_t2": getattr(self.ms_sensor_t2, "name", self.ms_sensor_t2),
        }


@dataclass(frozen=True)
class OutputOptions:
    """How the fused values are stored; the format follows the output's suffix.

    ``dtype``, ``scale``, ``offset``, ``compress``, ``compress_level``, ``predictor``, ``cog`` and
    ``overwrite`` are :func:`run_batch`'s ``dtype``, ``out_scale``, ``out_offset``, ``compress``,
    ``compress_level``, ``predictor``, ``cog`` and ``overwrite``.
    """

    dtype: Any = None
    scale: float | Sequence[float] | None = None
    offset: float | Sequence[float] | None = None
    compress: str | None = "zstd"
    compress_level: int | None = None
    predictor: str | None = None
    cog: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class ExecutionOptions:
    """How the work is done: tile size, scheduler, memory, progress and the work directory.

    The fields are :func:`run_batch`'s keywords of the same names.
    """

    chunk: int = DEFAULT_CHUNK
    workers: int | None = None
    scheduler: str | None = None
    dashboard: bool | str | None = None
    scheduler_timeout: float = DEFAULT_SCHEDULER_TIMEOUT
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT
    parallel_tiles: int | None = None
    memory_limit: int | None = None
    progress: bool = True
    keep_work: bool = False
    gdal_cache_mb: int = 256
    on_tile: TileCallback | None = None

    @property
    def gdal_cache_bytes(self) -> int:
        """GDAL's block cache during the run, in bytes."""
        return int(self.gdal_cache_mb) * 2**20

    def validate(self) -> None:
        """Raise :class:`~dcstsf.errors.DcstsfInputError` for a bad ``parallel_tiles`` or ``memory_limit``."""
        p, m = self.parallel_tiles, self.memory_limit
        if p is not None and (not isinstance(p, (int, np.integer)) or p < 1):
            raise DcstsfInputError(f"parallel_tiles must be a positive integer, got {p!r}")
        if m is not None and (not isinstance(m, (int, np.integer)) or m < 1):
            raise DcstsfInputError(f"memory_limit must be a positive number of bytes, got {m!r}")

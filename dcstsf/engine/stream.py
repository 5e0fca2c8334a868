"""The batch run's GeoTIFF writer: writes the output in a background thread while tiles are computed.

Tiles are written in row-major order as soon as every prediction tile their core needs is saved, so
compression overlaps computation. The file layout, tags, integer encoding, COG conversion and the final
check that every block was stored are those of :mod:`dcstsf.io.geotiff`, the same as
:func:`dcstsf.io.write_raster` writes: this module only feeds it tile by tile.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dcstsf._files import partial_path, remove_path, replace_durably
from dcstsf.engine.job import FusionJob
from dcstsf.engine.memory import trim_heap
from dcstsf.engine.plan import Region
from dcstsf.engine.resume import load_tile
from dcstsf.engine.tile import compose
from dcstsf.errors import DcstsfInputError
from dcstsf.io.encoding import PER_BAND_KEYS, attrs_tags, encode_block, integer_limits
from dcstsf.io.geotiff import (
    TILE_ALIGN,
    band_tags,
    convert_to_cog,
    creation_options,
    stored_scales_offsets,
    verify_geotiff,
)
from dcstsf.io.metadata import is_integer_dtype, per_band

__all__ = ["GTIFF_ALIGN", "GTiffStream"]

#: GeoTIFF tiles are multiples of 16 pixels; output chunks are made multiples of lcm(ratio, 16) so every
#: chunk is written as whole GeoTIFF tiles (no partially written, recompressed blocks).
GTIFF_ALIGN = TILE_ALIGN
_MAX_GTIFF_BLOCK = 512
# Finished tiles the GeoTIFF writer may hold in memory instead of reading their .npy back (the writer
# usually keeps up, so this is the tile being written and the next one; more would only grow memory).
_IN_MEMORY_TILES = 2


def _gtiff_blocksize(chunk: int) -> int:
    """The largest multiple of 16 that divides ``chunk`` and is at most 512 (small edge-block waste)."""
    best = GTIFF_ALIGN
    for b in range(GTIFF_ALIGN, min(chunk, _MAX_GTIFF_BLOCK) + 1, GTIFF_ALIGN):
        if chunk % b == 0:
            best = b
    return best


class GTiffStream:
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
        self.tmp = partial_path(out)
        self.tmp_gtiff = partial_path(out, ".gtiff") if cog else self.tmp
        out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(np.float32)
        self.sc: np.ndarray | None = None
        self.of: np.ndarray | None = None
        if is_integer_dtype(out_dtype):
            if scale is None:
                raise DcstsfInputError(
                    f"{out}: writing {out_dtype.name} needs out_scale (stored = (reflectance - out_offset) / out_scale)"
                )
            self.sc = per_band(scale, n, what="out_scale", path=out)
            self.of = per_band(0.0 if offset is None else offset, n, what="out_offset", path=out)
            self.nodata = integer_limits(out_dtype, None)[0]
        elif out_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise DcstsfInputError(f"{out}: unsupported output dtype {out_dtype}; use float32 or an integer type")
        else:
            self.nodata = float("nan")
        self.dtype = out_dtype
        self.codec = dict(codec)
        self.profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": plan.width,
            "height": plan.height,
            "count": n,
            "dtype": out_dtype.name,
            "nodata": self.nodata,
            **creation_options(plan.height, plan.width, blocksize=_gtiff_blocksize(plan.chunk), codec=codec),
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
                convert_to_cog(self.tmp_gtiff, self.tmp, blocksize=_MAX_GTIFF_BLOCK, codec=self.codec,
                               output=self.out)
                self._remove(self.tmp_gtiff)
            else:
                verify_geotiff(self.tmp, output=self.out)
            replace_durably(self.tmp, self.out)
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
            remove_path(q)

    def _compose(self, region: Region, needs: list[tuple[int, int]]) -> np.ndarray:
        """The output over ``region``: the prediction itself when it is exactly the region (no blending)."""
        plan = self.job.plan

        def prediction(ty: int, tx: int) -> np.ndarray:
            arr = self.in_memory.get((ty, tx))
            return arr if arr is not None else load_tile(self.work, (ty, tx))

        if len(needs) == 1 and plan.extended(*needs[0]) == region:
            return np.asarray(prediction(*needs[0]))
        return compose(plan, region, prediction, n_bands=self.job.n_bands)

    def encode(self, arr: np.ndarray) -> np.ndarray:
        """Reflectance as stored: the output dtype; integers scaled, with the type's minimum for NaN."""
        return encode_block(arr, dtype=self.dtype, scale=self.sc, offset=self.of)

    def _write_metadata(self, dst: Any) -> None:
        job, coords = self.job, self.job.band_coords
        dst.update_tags(**attrs_tags(job.attrs))
        recorded = stored_scales_offsets(dtype=self.dtype, scale=self.sc, offset=self.of, count=job.n_bands)
        if recorded is not None:
            dst.scales, dst.offsets = recorded
        per_band = {k: np.asarray(coords[k][1]) for k in PER_BAND_KEYS if k in coords}
        for i, (name, tags) in enumerate(zip(coords["band"], band_tags(per_band, job.n_bands))):
            dst.set_band_description(i + 1, str(name))
            if tags:
                dst.update_tags(i + 1, **tags)

    def _run(self) -> None:
        import rasterio
        from rasterio.windows import Window
        from tqdm.auto import tqdm

        plan = self.job.plan
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
                    arr = self.encode(self._compose(region, self.needs[t]))
                    y0, y1, x0, x1 = region
                    dst.write(arr, window=Window(x0, y0, x1 - x0, y1 - y0))
                    del arr
                    with self.cond:
                        for d in self.needs[t]:
                            self.uses[d] -= 1
                            if self.uses[d] == 0:
                                self.in_memory.pop(d, None)
                    trim_heap()
        except BaseException as exc:  # surfaced in the main thread by tile_done()/finish()
            self.error = exc

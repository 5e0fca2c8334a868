"""The streaming pass of a report: what each tile of one prediction adds to its scores and figures.

A report reads every cube tile by tile (:mod:`dcstsf.metrics.tiles`): for each prediction, one pass over
the image reads the tile's window of the prediction and of what it is compared with (truth, fusion
inputs, uncertainty, mask) and returns sums (full-reference metrics, changed/unchanged split,
no-reference checks, uncertainty calibration) and display-size parts (error maps, quicklook lattices).
The first pass also collects what depends on the inputs and the truth alone (the change map, their
quicklooks, QNR's coarse scale, the truth's own no-reference scores, the brightness at the display
lattice's pixels, among which the sample pixels are picked). Memory holds a few tiles and the display-size results, whatever the image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcstsf.metrics import sam_map
from dcstsf.metrics.band_stats import merge_stats, numpy_stats
from dcstsf.metrics.partials import BlockGrid, FullReferenceSums, full_reference_tile
from dcstsf.metrics.stream import TileInput, run_tiles
from dcstsf.metrics.tiles import Tile, TileGrid, region_slices
from dcstsf.operators import ObservationModel
from dcstsf.report.calibration import CalibrationSums, calibration_tile
from dcstsf.report.maps import BlockPart, DisplayMap, Lattice, LatticePart, block_part, lattice_part
from dcstsf.report.noref import (
    InputSums,
    NoReferenceGrids,
    NoReferenceSums,
    coarse_change,
    inputs_tile,
    no_reference_tile,
)

__all__ = ["PassInputs", "PassOptions", "PassResult", "PassSetup", "TilePart", "run_pass", "tile_part"]

#: Keys of the changed/unchanged split of the full-reference metrics.
SPLIT = ("changed", "unchanged")


@dataclass(frozen=True)
class PassSetup:
    """What every pass of a report shares.

    Attributes
    ----------
    shape, grid
        Fine grid ``(y, x)`` and its tiles.
    bands
        Indices of the scored HS bands.
    border
        Pixels left out at each edge by the full-reference metrics.
    blocks
        UIQI/Q2n blocks (of the cropped image), ``None`` without truth.
    include_q2n
        Whether Q2n is computed.
    ratio
        Coarse/fine resolution ratio (1 when the inputs are not given).
    grids, input_model
        No-reference geometry and the inputs' observation model (``None`` without inputs).
    change_threshold
        Relative change from which a pixel counts as changed.
    step, step_c
        Display steps on the fine and the coarse grid.
    hs_bands, ms_bands
        HS and MS bands of the quicklooks.
    """

    shape: tuple[int, int]
    grid: TileGrid
    bands: np.ndarray
    border: int
    blocks: BlockGrid | None
    include_q2n: bool
    ratio: int
    grids: NoReferenceGrids | None
    input_model: ObservationModel | None
    change_threshold: float
    step: int
    step_c: int
    hs_bands: list[int]
    ms_bands: list[int]

    @property
    def coarse_shape(self) -> tuple[int, int]:
        """The coarse grid."""
        return self.shape[0] // self.ratio, self.shape[1] // self.ratio


@dataclass(frozen=True)
class PassOptions:
    """What differs between the passes: the prediction's model, whether it is the first pass, and which
    per-band maps it draws."""

    model: ObservationModel | None
    first: bool
    ms_band_maps: bool = False


@dataclass(frozen=True)
class PassInputs:
    """The cubes of a pass, chunked on the grid (``None`` where not given): prediction, truth, fine truth at
    t1 (simulated change; read by the first pass), MS(t1), MS(t2), HS(t1) (coarse), uncertainty, mask and
    the changed-pixel map the first pass made (for the later ones)."""

    pred: Any
    truth: Any = None
    truth_t1: Any = None
    ms_t1: Any = None
    ms_t2: Any = None
    hs_t1: Any = None
    sd: Any = None
    mask: Any = None
    changed: Any = None

    def tile_inputs(self, ratio: int) -> list[TileInput | None]:
        """The windows a tile reads, in :func:`tile_part`'s order."""
        cubes = [self.pred, self.truth, self.truth_t1, self.ms_t1, self.ms_t2]
        out: list[TileInput | None] = [None if c is None else TileInput(c) for c in cubes]
        out.append(None if self.hs_t1 is None else TileInput(self.hs_t1, ratio))
        out += [None if c is None else TileInput(c) for c in (self.sd, self.mask, self.changed)]
        return out


@dataclass
class _Sums:
    """The exact sums a tile contributes and a pass merges (``None`` where not computed)."""

    fullref: FullReferenceSums | None = None
    split: dict[str, dict[str, Any]] | None = None
    noref: NoReferenceSums | None = None
    truth_noref: NoReferenceSums | None = None
    inputs: InputSums | None = None
    calibration: CalibrationSums | None = None
    # per scored band, the finite values of the prediction (and, in the first pass, of the truth)
    finite_pred: np.ndarray | None = None
    finite_truth: np.ndarray | None = None


@dataclass
class TilePart(_Sums):
    """One tile's contribution (see the module docstring); ``None`` where not computed."""

    maps: dict[str, BlockPart] = field(default_factory=dict)
    coarse_maps: dict[str, BlockPart] = field(default_factory=dict)
    lattices: dict[str, LatticePart] = field(default_factory=dict)
    coarse_lattices: dict[str, LatticePart] = field(default_factory=dict)
    change: tuple[int, int, np.ndarray] | None = None
    changed: tuple[int, int, np.ndarray] | None = None


def _bands(a: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """``a[bands]`` without a copy when every band is kept."""
    return a if bands.size == a.shape[0] and np.array_equal(bands, np.arange(a.shape[0])) else a[bands]


def _finite(a: np.ndarray) -> np.ndarray:
    return np.isfinite(a).all(axis=0)


def _finite_counts(a: np.ndarray) -> np.ndarray:
    """Finite values per band."""
    return np.isfinite(a).reshape(a.shape[0], -1).sum(axis=1)


def _relative_change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|b - a| / |a|`` per pixel, Euclidean norms over the bands (NaN where undefined)."""
    a64 = a.astype(np.float64)
    num = np.sqrt(np.sum((b - a64) ** 2, axis=0))
    den = np.sqrt(np.sum(a64 * a64, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _crop_mask(setup: PassSetup, tile: Tile) -> np.ndarray:
    """True on the window's pixels inside the full-reference crop (``border``)."""
    (ys, xs) = region_slices(tile.window)
    h, w = setup.shape
    b = setup.border
    rows = np.arange(ys.start, ys.stop)
    cols = np.arange(xs.start, xs.stop)
    return ((rows >= b) & (rows < h - b))[:, None] & ((cols >= b) & (cols < w - b))[None, :]


def _full_reference(
    setup: PassSetup, tile: Tile, part: TilePart, fb: np.ndarray, tb: np.ndarray, mask: np.ndarray | None,
    changed: np.ndarray | None, sd: np.ndarray | None,
) -> None:
    cs = tile.core_in_window
    v = _finite(fb) & _finite(tb) & _crop_mask(setup, tile)
    if mask is not None:
        v &= mask
    assert setup.blocks is not None
    part.fullref = full_reference_tile(fb, tb, v, core=tile.core, origin=tile.origin, blocks=setup.blocks,
                                       data_range=1.0, include_q2n=setup.include_q2n)
    pc, tc, vc = fb[:, cs[0], cs[1]], tb[:, cs[0], cs[1]], v[cs]
    if changed is not None:
        ch = changed[cs]
        part.split = {
            "changed": numpy_stats(pc, tc, vc & (ch == 1), angles=True),
            "unchanged": numpy_stats(pc, tc, vc & (ch == 0), angles=True),
        }
    with np.errstate(invalid="ignore"):
        mae = np.abs(pc.astype(np.float64) - tc).mean(axis=0)
    mae[~vc] = np.nan
    core_origin = (tile.core[0], tile.core[2])
    part.maps["mae"] = block_part(mae, core_origin, setup.step)
    part.maps["sam"] = block_part(sam_map(pc, tc, mask=vc), core_origin, setup.step)
    if sd is not None:
        sdc = sd[:, cs[0], cs[1]]
        part.calibration = calibration_tile(pc - tc.astype(np.float64), sdc, vc)


def _changed(setup: PassSetup, t: np.ndarray | None, t1: np.ndarray | None, m1: np.ndarray | None,
             m2: np.ndarray | None) -> np.ndarray | None:
    """Per window pixel: 1 changed, 0 unchanged, -1 undecided; ``None`` when nothing tells."""
    thr = setup.change_threshold
    if t is not None and t1 is not None:
        rel = _relative_change(_bands(t1, setup.bands), _bands(t, setup.bands))
    elif m1 is not None and m2 is not None:
        r = setup.ratio
        rel = np.repeat(np.repeat(coarse_change(m1, m2, r), r, axis=0), r, axis=1)
    else:
        return None
    return np.where(np.isfinite(rel), (rel >= thr).astype(np.int8), np.int8(-1))


def _no_reference(
    setup: PassSetup, opts: PassOptions, tile: Tile, part: TilePart, f: np.ndarray, t: np.ndarray | None,
    m1: np.ndarray, m2: np.ndarray, h1: np.ndarray, mask: np.ndarray | None,
) -> None:
    assert setup.grids is not None and opts.model is not None and setup.input_model is not None
    r, cs = setup.ratio, tile.core_in_window
    rel_c = coarse_change(m1, m2, r)
    unchanged = np.isfinite(rel_c) & (rel_c < setup.change_threshold)
    nr = no_reference_tile(f, h1, m2, model=opts.model, grids=setup.grids, core=tile.core, origin=tile.origin,
                           mask=mask, unchanged=unchanged)
    part.noref = nr.sums
    core_origin = (tile.core[0], tile.core[2])
    err = np.abs(nr.ms_hat.astype(np.float64) - m2[:, cs[0], cs[1]])
    if mask is not None:
        err[:, ~mask[cs]] = np.nan
    part.maps["ms_err"] = block_part(err.mean(axis=0), core_origin, setup.step)
    if opts.ms_band_maps:
        part.maps["ms_err_bands"] = block_part(err, core_origin, setup.step)
    cc = (slice(cs[0].start // r, cs[0].stop // r), slice(cs[1].start // r, cs[1].stop // r))
    h1b = _bands(h1, setup.bands)
    with np.errstate(invalid="ignore"):
        hs_err = np.abs(nr.hs_hat.astype(np.float64) - h1b[:, cc[0], cc[1]]).mean(axis=0)
    if mask is not None:
        ny, nx = mask.shape
        hs_err[~mask.reshape(ny // r, r, nx // r, r).all(axis=(1, 3))[cc]] = np.nan
    coarse_origin = (tile.core[0] // r, tile.core[2] // r)
    part.coarse_maps["hs_err"] = block_part(hs_err, coarse_origin, setup.step_c)
    if not opts.first:
        return
    part.inputs = inputs_tile(h1, m1, model=setup.input_model, grids=setup.grids, core=tile.core,
                              origin=tile.origin)
    part.change = (*coarse_origin, rel_c[cc])
    part.maps["ms_change"] = block_part(np.sqrt(np.sum((m2[:, cs[0], cs[1]].astype(np.float64)
                                                        - m1[:, cs[0], cs[1]]) ** 2, axis=0)), core_origin, setup.step)
    if setup.ms_bands:
        part.lattices["ms_t1"] = lattice_part(m1, setup.ms_bands, tile.core, tile.origin, setup.step)
        part.lattices["ms_t2"] = lattice_part(m2, setup.ms_bands, tile.core, tile.origin, setup.step)
    if setup.hs_bands:
        y0, y1, x0, x1 = tile.core
        part.coarse_lattices["hs_t1"] = lattice_part(h1, setup.hs_bands, (y0 // r, y1 // r, x0 // r, x1 // r),
                                                     (tile.origin[0] // r, tile.origin[1] // r), setup.step_c)
    if t is not None:
        part.truth_noref = no_reference_tile(t, h1, m2, model=setup.input_model, grids=setup.grids, core=tile.core,
                                             origin=tile.origin, mask=mask, unchanged=unchanged).sums


def _brightness(setup: PassSetup, tile: Tile, ref: np.ndarray, mask: np.ndarray | None) -> LatticePart:
    """The band-mean reflectance of ``ref`` over the scored bands (NaN where not valid) at the core's
    lattice pixels: the sample pixels are picked among them."""
    cs = tile.core_in_window
    rb = _bands(ref, setup.bands)[:, cs[0], cs[1]]
    ok = _finite(rb)
    if mask is not None:
        ok &= mask[cs]
    with np.errstate(invalid="ignore"):
        bright = np.where(ok, rb.mean(axis=0), np.nan).astype(np.float32)
    return lattice_part(bright[None], [0], tile.core, (tile.core[0], tile.core[2]), setup.step)


def tile_part(
    setup: PassSetup,
    opts: PassOptions,
    tile: Tile,
    f: np.ndarray,
    t: np.ndarray | None,
    t1: np.ndarray | None,
    m1: np.ndarray | None,
    m2: np.ndarray | None,
    h1: np.ndarray | None,
    sd: np.ndarray | None,
    mask: np.ndarray | None,
    changed: np.ndarray | None = None,
) -> TilePart:
    """One tile's contribution to a pass (windows as :meth:`PassInputs.tile_inputs` lists them)."""
    part = TilePart()
    cs = tile.core_in_window
    part.finite_pred = _finite_counts(_bands(f, setup.bands)[:, cs[0], cs[1]])
    if t is not None and opts.first:
        part.finite_truth = _finite_counts(_bands(t, setup.bands)[:, cs[0], cs[1]])
    if setup.hs_bands:
        part.lattices["pred"] = lattice_part(f, setup.hs_bands, tile.core, tile.origin, setup.step)
    if changed is None and opts.first:
        changed = _changed(setup, t, t1, m1, m2)
        if changed is not None:
            part.changed = (tile.core[0], tile.core[2], changed[cs])
            frac = np.where(changed[cs] >= 0, changed[cs].astype(np.float64), np.nan)
            part.maps["changed"] = block_part(frac, (tile.core[0], tile.core[2]), setup.step)
    if t is not None:
        sdb = None if sd is None else (sd if sd.shape[0] == 1 else _bands(sd, setup.bands))
        _full_reference(setup, tile, part, _bands(f, setup.bands), _bands(t, setup.bands), mask, changed, sdb)
        if opts.first and setup.hs_bands:
            part.lattices["truth"] = lattice_part(t, setup.hs_bands, tile.core, tile.origin, setup.step)
    if sd is not None:
        sdb = sd[:, cs[0], cs[1]] if sd.shape[0] == 1 else _bands(sd, setup.bands)[:, cs[0], cs[1]]
        with np.errstate(invalid="ignore"):
            part.maps["sd"] = block_part(sdb.astype(np.float64).mean(axis=0), (tile.core[0], tile.core[2]), setup.step)
    if m1 is not None and m2 is not None and h1 is not None:
        _no_reference(setup, opts, tile, part, f, t, m1, m2, h1, mask)
    if opts.first:
        part.lattices["bright"] = _brightness(setup, tile, t if t is not None else f, mask)
    return part


@dataclass
class PassResult(_Sums):
    """A pass's merged sums and display-size results (``None``/absent where not computed)."""

    maps: dict[str, DisplayMap] = field(default_factory=dict)
    coarse_maps: dict[str, DisplayMap] = field(default_factory=dict)
    lattices: dict[str, Lattice] = field(default_factory=dict)
    coarse_lattices: dict[str, Lattice] = field(default_factory=dict)
    change: np.ndarray | None = None
    changed: np.ndarray | None = None

    def add(self, setup: PassSetup, part: TilePart) -> None:
        """Merge one tile's part."""
        for name in ("fullref", "noref", "truth_noref", "inputs", "calibration"):
            new = getattr(part, name)
            if new is not None:
                old = getattr(self, name)
                setattr(self, name, new if old is None else old.merge(new))
        for name in ("finite_pred", "finite_truth"):
            counts = getattr(part, name)
            if counts is not None:
                old = getattr(self, name)
                setattr(self, name, counts if old is None else old + counts)
        if part.split is not None:
            if self.split is None:
                self.split = {k: dict(v) for k, v in part.split.items()}
            else:
                for k in SPLIT:
                    merge_stats(self.split[k], part.split[k])
        h, w = setup.shape
        hc, wc = setup.coarse_shape
        for key, bp in part.maps.items():
            if key not in self.maps:
                self.maps[key] = DisplayMap(h, w, setup.step, bp.sums.shape[0])
            self.maps[key].add(bp)
        for key, bp in part.coarse_maps.items():
            if key not in self.coarse_maps:
                self.coarse_maps[key] = DisplayMap(hc, wc, setup.step_c, bp.sums.shape[0])
            self.coarse_maps[key].add(bp)
        for key, lp in part.lattices.items():
            if key not in self.lattices:
                self.lattices[key] = Lattice(h, w, setup.step, lp.values.shape[0])
            self.lattices[key].add(lp)
        for key, lp in part.coarse_lattices.items():
            if key not in self.coarse_lattices:
                self.coarse_lattices[key] = Lattice(hc, wc, setup.step_c, lp.values.shape[0])
            self.coarse_lattices[key].add(lp)
        if part.change is not None:
            if self.change is None:
                self.change = np.full((hc, wc), np.nan)
            r0, c0, vals = part.change
            self.change[r0:r0 + vals.shape[0], c0:c0 + vals.shape[1]] = vals
        if part.changed is not None:
            if self.changed is None:
                self.changed = np.full((h, w), -1, dtype=np.int8)
            r0, c0, vals = part.changed
            self.changed[r0:r0 + vals.shape[0], c0:c0 + vals.shape[1]] = vals


def run_pass(
    setup: PassSetup, opts: PassOptions, inputs: PassInputs, *, parallel: int, progress: bool = False,
    desc: str = "evaluating",
) -> PassResult:
    """One pass over every tile of ``setup.grid``, ``parallel`` tiles at a time."""
    result = PassResult()

    def fn(tile: Tile, *windows: Any) -> TilePart:
        return tile_part(setup, opts, tile, *windows)

    for _, part in run_tiles(fn, setup.grid.tiles(), inputs.tile_inputs(setup.ratio),
                             parallel=parallel, progress=progress, desc=desc):
        result.add(setup, part)
    return result

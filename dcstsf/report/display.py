"""What the report's figures show: composites, quicklook panels, display-size maps and sample spectra.

Everything here is display-size (the longer side at most ``_MAX_DISPLAY_PX`` pixels) and comes from the
streaming passes (:mod:`dcstsf.report.passes`): quicklooks from the decimated lattices (every
``step``-th pixel), maps from per-cell means, sample pixels from the first pass's brightness, and their
spectra from single-pixel reads. The drawing itself is in :mod:`dcstsf.report.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from dcstsf.report import plots
from dcstsf.sensors.names import s2_band_number

if TYPE_CHECKING:
    from dcstsf.report.bands import ScoredBands
    from dcstsf.report.inputs import EvaluationInputs
    from dcstsf.report.passes import PassSetup
    from dcstsf.report.scoring import Scores

__all__ = [
    "FALSE_COLOUR_NM",
    "STRETCH_PERCENTILES",
    "TRUE_COLOUR_NM",
    "Display",
    "build_display",
    "display_step",
    "hs_composites",
    "ms_composites",
    "nearest_bands",
    "point_spectra",
    "reduce_map",
    "sample_pixels",
    "sample_pixels_from_brightness",
]

#: Band centres (nm) of the true-colour (R, G, B) and false-colour (NIR, R, G) quicklooks.
TRUE_COLOUR_NM: tuple[float, float, float] = (650.0, 550.0, 470.0)
FALSE_COLOUR_NM: tuple[float, float, float] = (860.0, 650.0, 550.0)
#: Percentiles of the per-channel quicklook stretch.
STRETCH_PERCENTILES: tuple[float, float] = (2.0, 98.0)
# Sentinel-2-style band numbers for the same composites (B8A replaces a missing B8).
_MS_TRUE = (("4",), ("3",), ("2",))
_MS_FALSE = (("8", "8A"), ("4",), ("3",))
# A composite band farther than this from its target wavelength is not used.
_RGB_TOLERANCE_NM = 60.0
# Quicklooks and maps are reduced so that their longer side has at most this many pixels.
_MAX_DISPLAY_PX = 600

#: A sample pixel: (row, column, description).
Pixel = tuple[int, int, str]


def nearest_bands(wavelengths: np.ndarray | None, targets: Sequence[float]) -> list[int] | None:
    """Indices of the bands nearest each target wavelength (nm); None when one is farther than 60 nm."""
    if wavelengths is None:
        return None
    wl = np.asarray(wavelengths, float)
    out = []
    for t in targets:
        d = np.abs(wl - t)
        d[~np.isfinite(d)] = np.inf
        i = int(np.argmin(d))
        if not d[i] <= _RGB_TOLERANCE_NM:
            return None
        out.append(i)
    return out


def _ms_bands_for(ms: xr.DataArray, numbers: Sequence[Sequence[str]], targets: Sequence[float]) -> list[int] | None:
    """MS composite bands by Sentinel-2 band names, else by wavelength coordinate."""
    names = [s2_band_number(str(b)) for b in ms["band"].values] if "band" in ms.coords else []
    idx = []
    for options in numbers:
        hit = next((names.index(o) for o in options if o in names), None)
        if hit is None:
            idx = []
            break
        idx.append(hit)
    if idx:
        return idx
    wl = np.asarray(ms["wavelength"].values, float) if "wavelength" in ms.coords else None
    return nearest_bands(wl, targets)


def display_step(shape: tuple[int, int]) -> int:
    """Pixel step that brings the longer side of ``shape`` to at most ``_MAX_DISPLAY_PX``."""
    return max(1, int(math.ceil(max(shape) / _MAX_DISPLAY_PX)))


def reduce_map(m: np.ndarray, step: int) -> np.ndarray:
    """Block NaN-mean of a 2-D map by ``step`` (display size), NaN where a block has no value."""
    if step == 1:
        return m
    h, w = m.shape
    hp, wp = -(-h // step) * step, -(-w // step) * step
    pad = np.full((hp, wp), np.nan)
    pad[:h, :w] = m
    blocks = pad.reshape(hp // step, step, wp // step, step)
    cnt = np.isfinite(blocks).sum(axis=(1, 3))
    tot = np.nansum(blocks, axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


def _smallest(d: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the ``k`` smallest values of ``d``, by value then index (what a stable sort's first ``k``
    are), without sorting a whole scene."""
    flat = d.ravel()
    k = min(k, flat.size)
    idx = np.argpartition(flat, k - 1)[:k]
    # values equal to the k-th smallest may be left out by the partition: take them all, then order
    idx = np.flatnonzero(flat <= flat[idx].max()) if np.count_nonzero(flat == flat[idx].max()) > 1 else idx
    order = np.lexsort((idx, flat[idx]))
    return idx[order][:k]


def sample_pixels_from_brightness(
    bright: np.ndarray, *, margin: int, change: np.ndarray | None, ratio: int, step: int = 1
) -> list[Pixel]:
    """Dark, median and bright pixels (10/50/90 % of ``bright``, the band-mean reflectance, NaN = not
    eligible) at least ``margin`` pixels from the edges, and the pixel of largest coarse ``change``.

    ``bright`` holds every ``step``-th pixel of the image (``step`` = 1: all of them); the picks are among
    those pixels, returned in image pixels. The most changed coarse pixel is represented by its centre
    pixel's nearest lattice pixel.
    """
    ny, nx = bright.shape
    m = -(-margin // step)
    ok = np.isfinite(bright)
    if 2 * m < min(ny, nx):
        inner = np.zeros_like(ok)
        inner[m : ny - m, m : nx - m] = True
        ok &= inner
    if not ok.any():
        return []
    vals = bright[ok]
    picks: list[Pixel] = []
    taken: set[tuple[int, int]] = set()
    for q, desc in ((10, "dark"), (50, "median"), (90, "bright")):
        target = np.percentile(vals, q)
        d = np.abs(bright - np.asarray(target, dtype=bright.dtype))
        d[~ok] = np.inf
        for flat in _smallest(d, 64):
            yx = (int(flat // nx), int(flat % nx))
            if yx not in taken:
                taken.add(yx)
                picks.append((yx[0] * step, yx[1] * step, f"{desc} pixel"))
                break
    if change is not None and np.isfinite(change).any():
        for flat in _smallest(np.where(np.isfinite(change), -change, np.inf), 64):
            cy, cx = int(flat // change.shape[1]), int(flat % change.shape[1])
            yx = (int(round((cy * ratio + ratio // 2) / step)), int(round((cx * ratio + ratio // 2) / step)))
            if yx[0] < ny and yx[1] < nx and ok[yx] and yx not in taken:
                picks.append((yx[0] * step, yx[1] * step, "largest MS change"))
                break
    return picks


def sample_pixels(
    ref: np.ndarray, valid: np.ndarray, *, margin: int, change: np.ndarray | None, ratio: int
) -> list[Pixel]:
    """Dark, median and bright pixels (10/50/90 % of the band-mean reflectance of ``ref``) and the most
    changed one (see :func:`sample_pixels_from_brightness`)."""
    ok = valid & np.isfinite(ref).all(axis=0)
    bright = np.where(ok, ref.mean(axis=0), np.nan)
    return sample_pixels_from_brightness(bright, margin=margin, change=change, ratio=ratio)


def point_spectra(cube: Any, pixels: Sequence[Pixel], *, scale: int = 1) -> np.ndarray | None:
    """``(pixel, band)`` spectra of a cube (NumPy or Dask, ``(band, y, x)``) at fine ``pixels`` (on a grid
    ``scale`` times coarser: the covering coarse pixel); only the chunks holding them are read."""
    if not pixels:
        return None
    import dask

    pts = [cube[:, y // scale, x // scale] for y, x, _ in pixels]
    return np.stack([np.asarray(p, dtype=np.float64) for p in dask.compute(*pts)])


def hs_composites(wl: np.ndarray | None, nb: int) -> dict[str, tuple[list[int], str]]:
    """True- and false-colour HS band triplets by wavelength (a guessed true colour without wavelengths)."""
    composites: dict[str, tuple[list[int], str]] = {}
    for key, targets in (("true", TRUE_COLOUR_NM), ("false", FALSE_COLOUR_NM)):
        idx = nearest_bands(wl, targets)
        if idx is not None:
            assert wl is not None
            composites[key] = (idx, "HS bands at " + "/".join(f"{wl[i]:.0f}" for i in idx) + " nm")
        elif wl is None and key == "true" and nb >= 3:
            idx = [min(nb - 1, (3 * nb) // 4), nb // 2, nb // 4]
            composites[key] = (idx, f"HS bands #{idx[0] + 1}/#{idx[1] + 1}/#{idx[2] + 1} (no wavelength metadata)")
    return composites


def ms_composites(ms: xr.DataArray | None, keys: Sequence[str]) -> tuple[dict[str, list[int]], str]:
    """MS band triplets of the composites ``keys`` (``{key: indices}``) and why some are missing (or ``""``)."""
    out: dict[str, list[int]] = {}
    note = ""
    if ms is None:
        return out, note
    for key, nums, targets in (("true", _MS_TRUE, TRUE_COLOUR_NM), ("false", _MS_FALSE, FALSE_COLOUR_NM)):
        if key not in keys:
            continue
        idx = _ms_bands_for(ms, nums, targets)
        if idx is None:
            note = "MS quicklooks left out: the MS bands have neither Sentinel-2 names nor wavelengths."
            continue
        out[key] = idx
    return out, note


@dataclass
class Display:
    """Display-size data of the figures.

    Attributes
    ----------
    shape, step
        Fine grid ``(y, x)`` and the pixel step of the quicklooks and maps.
    wavelengths
        HS band centres (nm), ``None`` when unknown.
    composites
        ``{"true"|"false": (HS band indices, label)}`` of the quicklooks that can be drawn.
    panels
        Quicklook panels per composite: inputs, truth, then one per prediction.
    pixels, spectra, truth_spectra, coarse_spectra
        Sample pixels, ``{name: (pixel, band)}`` predicted spectra there, the truth's and the covering HS(t1)
        pixels' spectra.
    maps
        ``{kind: {name: map}}``: ``"mae"``, ``"sam"`` (with a truth), ``"ms_err"`` (MS(t2) reproduction
        error), ``"sd"`` (uncertainty) on the display grid; ``"hs_err"`` (HS(t1) reproduction error) on the
        coarse display grid.
    ms_band_maps
        ``(name, (n_ms, h, w) maps, MS band names)`` of the first prediction's MS(t2) error per band.
    change_magnitude, changed_fraction
        ``|MS2 - MS1|`` (Euclidean norm over MS bands) and the fraction of changed pixels per display cell.
    bad, excluded
        Indices of the bad HS bands and of the bands left out of the metrics.
    ms_note
        Why the MS quicklooks are left out, or ``""``.
    """

    shape: tuple[int, int]
    step: int
    wavelengths: np.ndarray | None
    composites: dict[str, tuple[list[int], str]]
    ratio: int
    margin: int
    bad: np.ndarray
    excluded: np.ndarray
    step_c: int = 1
    panels: dict[str, list[plots.Panel]] = field(default_factory=dict)
    pixels: list[Pixel] = field(default_factory=list)
    spectra: dict[str, np.ndarray] = field(default_factory=dict)
    truth_spectra: np.ndarray | None = None
    coarse_spectra: np.ndarray | None = None
    maps: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    ms_band_maps: tuple[str, np.ndarray, list[str]] | None = None
    change_magnitude: np.ndarray | None = None
    changed_fraction: np.ndarray | None = None
    ms_note: str = ""

    @property
    def display_shape(self) -> tuple[int, int]:
        """Size of the reduced maps."""
        return (-(-self.shape[0] // self.step), -(-self.shape[1] // self.step))

    def add_composite_panels(
        self, label: str, lattice: np.ndarray, positions: Mapping[str, list[int]],
        stretch: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """One quicklook panel per composite from a lattice (``positions[key]``: its rows for that composite)."""
        for key, pos in positions.items():
            if key in stretch:
                lo, hi = stretch[key]
                self.panels.setdefault(key, []).append(plots.Panel(label, plots.rgb_image(lattice[pos], lo, hi)))


def _stretches(lattice: np.ndarray, positions: Mapping[str, list[int]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {k: plots.stretch_limits(lattice[pos], percentiles=STRETCH_PERCENTILES) for k, pos in positions.items()}


def build_display(
    ev: EvaluationInputs,
    setup: PassSetup,
    scores: Scores,
    bands: ScoredBands,
    composites: dict[str, tuple[list[int], str]],
    ms_bands: Mapping[str, list[int]],
    ms_note: str,
) -> Display:
    """The display of a scored report: quicklooks from the lattices, maps, sample pixels and their spectra.

    HS(t1) is shown with its coarse pixels. HS panels share one stretch per composite, from the truth, else
    HS(t1), else the first prediction; the MS panels share one from both dates.
    """
    from dcstsf.report.inputs import aligned_cube

    names = ev.names
    first = scores.passes[names[0]]
    d = Display(
        shape=ev.shape, step=setup.step, step_c=setup.step_c, wavelengths=ev.wavelengths, composites=composites,
        ratio=ev.int_ratio, margin=max(ev.border, ev.int_ratio), bad=bands.bad, excluded=bands.excluded,
        ms_note=ms_note,
    )
    pos = {k: [setup.hs_bands.index(i) for i in idx] for k, (idx, _) in composites.items()}
    if "truth" in first.lattices:
        stretch = _stretches(first.lattices["truth"].values, pos)
    elif "hs_t1" in first.coarse_lattices:
        stretch = _stretches(first.coarse_lattices["hs_t1"].values, pos)
    else:
        stretch = _stretches(first.lattices["pred"].values, pos) if "pred" in first.lattices else {}
    fi = ev.fusion_inputs
    if "hs_t1" in first.coarse_lattices:
        d.add_composite_panels("HS(t1), coarse", first.coarse_lattices["hs_t1"].values, pos, stretch)
    if fi is not None and "ms_t1" in first.lattices:
        for key, idx in ms_bands.items():
            mpos = [setup.ms_bands.index(i) for i in idx]
            m1, m2 = first.lattices["ms_t1"].values[mpos], first.lattices["ms_t2"].values[mpos]
            lo, hi = plots.stretch_limits(np.concatenate([m1, m2], axis=2), percentiles=STRETCH_PERCENTILES)
            mnames = "/".join(str(fi.ms_t1["band"].values[i]) for i in idx)
            for label, lat in ((f"MS(t1) {mnames}", m1), (f"MS(t2) {mnames}", m2)):
                d.panels.setdefault(key, []).append(plots.Panel(label, plots.rgb_image(lat, lo, hi)))
    if "truth" in first.lattices:
        d.add_composite_panels("truth HS(t2)", first.lattices["truth"].values, pos, stretch)
    for n in names:
        if "pred" in scores.passes[n].lattices:
            d.add_composite_panels(n, scores.passes[n].lattices["pred"].values, pos, stretch)

    for n in names:
        res = scores.passes[n]
        for kind in ("mae", "sam", "ms_err", "sd"):
            if kind in res.maps:
                d.maps.setdefault(kind, {})[n] = res.maps[kind].mean()[0]
        if "hs_err" in res.coarse_maps:
            d.maps.setdefault("hs_err", {})[n] = res.coarse_maps["hs_err"].mean()[0]
    if "ms_err_bands" in first.maps and fi is not None:
        d.ms_band_maps = (names[0], first.maps["ms_err_bands"].mean(), [str(b) for b in fi.model.ms_sensor.band_names])
    if "ms_change" in first.maps:
        d.change_magnitude = first.maps["ms_change"].mean()[0]
    if "changed" in first.maps:
        d.changed_fraction = first.maps["changed"].mean()[0]

    if "bright" in first.lattices:
        change = scores.change.change if scores.change is not None else None
        d.pixels = sample_pixels_from_brightness(first.lattices["bright"].values[0], margin=d.margin, change=change,
                                                 ratio=d.ratio, step=setup.step)
    if d.pixels:
        g = setup.grid
        for n in names:
            d.spectra[n] = point_spectra(aligned_cube(ev.predictions[n], g), d.pixels)
        if ev.truth is not None:
            d.truth_spectra = point_spectra(aligned_cube(ev.truth, g), d.pixels)
        if fi is not None:
            d.coarse_spectra = point_spectra(aligned_cube(fi.hs_t1, g, scale=setup.ratio), d.pixels,
                                             scale=setup.ratio)
    return d

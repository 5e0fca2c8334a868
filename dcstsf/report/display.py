"""What the report's figures show: composites, quicklook panels, reduced error maps and sample spectra.

Everything here is reduced to display size (the longer side at most ``_MAX_DISPLAY_PX`` pixels) while the
predictions are scored one at a time, so a prediction can be released as soon as it is scored. The
drawing itself is in :mod:`dcstsf.report.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from dcstsf.metrics import sam_map
from dcstsf.report import plots
from dcstsf.report.inputs import EvaluationInputs, ObservedArrays
from dcstsf.sensors.names import s2_band_number

__all__ = [
    "FALSE_COLOUR_NM",
    "STRETCH_PERCENTILES",
    "TRUE_COLOUR_NM",
    "Display",
    "display_step",
    "nearest_bands",
    "prepare_display",
    "reduce_map",
    "sample_pixels",
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


def _pick(cube: np.ndarray, idx: Sequence[int], step: int) -> np.ndarray:
    return np.asarray(cube[list(idx), ::step, ::step], dtype=np.float64)


def sample_pixels(
    ref: np.ndarray, valid: np.ndarray, *, margin: int, change: np.ndarray | None, ratio: int
) -> list[Pixel]:
    """Dark, median and bright pixels (10/50/90 % of the band-mean reflectance) and the most changed one."""
    ny, nx = valid.shape
    ok = valid & np.isfinite(ref).all(axis=0)
    if 2 * margin < min(ny, nx):
        inner = np.zeros_like(ok)
        inner[margin : ny - margin, margin : nx - margin] = True
        ok &= inner
    if not ok.any():
        return []
    bright = np.where(ok, ref.mean(axis=0), np.nan)
    vals = bright[ok]
    picks: list[Pixel] = []
    taken: set[tuple[int, int]] = set()
    for q, desc in ((10, "dark"), (50, "median"), (90, "bright")):
        target = np.percentile(vals, q)
        d = np.abs(bright - target)
        d[~ok] = np.inf
        for flat in np.argsort(d, axis=None, kind="stable")[:64]:
            yx = (int(flat // nx), int(flat % nx))
            if yx not in taken:
                taken.add(yx)
                picks.append((yx[0], yx[1], f"{desc} pixel"))
                break
    if change is not None and np.isfinite(change).any():
        order = np.argsort(np.where(np.isfinite(change), -change, np.inf), axis=None, kind="stable")
        for flat in order[:64]:
            cy, cx = int(flat // change.shape[1]), int(flat % change.shape[1])
            yx = (cy * ratio + ratio // 2, cx * ratio + ratio // 2)
            if yx[0] < ny and yx[1] < nx and ok[yx] and yx not in taken:
                picks.append((yx[0], yx[1], "largest MS change"))
                break
    return picks


@dataclass
class Display:
    """Display-size data of the figures, completed prediction by prediction.

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
    pixels, spectra
        Sample pixels and ``{name: (pixel, band)}`` predicted spectra there.
    mae_maps, sam_maps
        ``{name: map}`` of mean absolute error and spectral angle (with a truth only).
    ms_note
        Why the MS quicklooks are left out, or ``""``.
    """

    shape: tuple[int, int]
    step: int
    wavelengths: np.ndarray | None
    composites: dict[str, tuple[list[int], str]]
    valid: np.ndarray
    margin: int
    ratio: int
    change: np.ndarray | None
    panels: dict[str, list[plots.Panel]] = field(default_factory=dict)
    stretch: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    pixels: list[Pixel] = field(default_factory=list)
    spectra: dict[str, np.ndarray] = field(default_factory=dict)
    mae_maps: dict[str, np.ndarray] = field(default_factory=dict)
    sam_maps: dict[str, np.ndarray] = field(default_factory=dict)
    ms_note: str = ""

    @property
    def display_shape(self) -> tuple[int, int]:
        """Size of the reduced maps."""
        return (-(-self.shape[0] // self.step), -(-self.shape[1] // self.step))

    def hs_stretch(self, key: str, cube: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The stretch shared by every HS panel of composite ``key``, taken from the first cube given."""
        if key not in self.stretch:
            self.stretch[key] = plots.stretch_limits(
                _pick(cube, self.composites[key][0], step), percentiles=STRETCH_PERCENTILES
            )
        return self.stretch[key]

    def add_hs_panel(self, label: str, cube: np.ndarray, step: int) -> None:
        """One quicklook panel per composite of an HS cube shown every ``step`` pixels."""
        for key in self.composites:
            lo, hi = self.hs_stretch(key, cube, step)
            image = plots.rgb_image(_pick(cube, self.composites[key][0], step), lo, hi)
            self.panels[key].append(plots.Panel(label, image))

    def add_ms_panels(self, ms_t1: xr.DataArray, ms1: np.ndarray, ms2: np.ndarray) -> None:
        """MS(t1) and MS(t2) panels per composite, sharing one stretch from both dates."""
        for key, nums, targets in (("true", _MS_TRUE, TRUE_COLOUR_NM), ("false", _MS_FALSE, FALSE_COLOUR_NM)):
            if key not in self.composites:
                continue
            midx = _ms_bands_for(ms_t1, nums, targets)
            if midx is None:
                self.ms_note = "MS quicklooks left out: the MS bands have neither Sentinel-2 names nor wavelengths."
                continue
            both = np.concatenate([_pick(ms1, midx, self.step), _pick(ms2, midx, self.step)], axis=2)
            lo, hi = plots.stretch_limits(both, percentiles=STRETCH_PERCENTILES)
            mnames = "/".join(str(ms_t1["band"].values[i]) for i in midx)
            for label, cube in ((f"MS(t1) {mnames}", ms1), (f"MS(t2) {mnames}", ms2)):
                self.panels[key].append(plots.Panel(label, plots.rgb_image(_pick(cube, midx, self.step), lo, hi)))

    def pick_pixels(self, ref: np.ndarray) -> None:
        """Choose the sample pixels from ``ref`` (the truth, else the first prediction)."""
        self.pixels = sample_pixels(ref, self.valid, margin=self.margin, change=self.change, ratio=self.ratio)

    def spectra_at_pixels(self, cube: np.ndarray) -> np.ndarray | None:
        """``(pixel, band)`` spectra of a fine-grid cube at the sample pixels, ``None`` without pixels."""
        if not self.pixels:
            return None
        return np.stack([cube[:, y, x] for y, x, _ in self.pixels]).astype(np.float64)

    def coarse_spectra_at_pixels(self, coarse: np.ndarray) -> np.ndarray | None:
        """Spectra of the coarse pixels covering the sample pixels, ``None`` without pixels."""
        if not self.pixels:
            return None
        r = self.ratio
        return np.stack([coarse[:, y // r, x // r] for y, x, _ in self.pixels]).astype(np.float64)

    def add_error_maps(self, name: str, pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> None:
        """Display-size maps of the mean absolute error over bands and of the spectral angle."""
        with np.errstate(invalid="ignore"):
            mae = np.abs(pred.astype(np.float64) - truth).mean(axis=0)
        if mask is not None:
            mae[~mask] = np.nan
        self.mae_maps[name] = reduce_map(mae, self.step)
        self.sam_maps[name] = reduce_map(sam_map(pred, truth, mask=mask), self.step)

    def add_prediction(self, name: str, pred: np.ndarray, *, is_first: bool, has_truth: bool) -> None:
        """Quicklook panels and sample spectra of one prediction (the first one picks the pixels without truth)."""
        self.add_hs_panel(name, pred, self.step)
        if not self.pixels and not has_truth and is_first:
            self.pick_pixels(pred)
        if self.pixels:
            self.spectra[name] = self.spectra_at_pixels(pred)


def _composites(wl: np.ndarray | None, nb: int) -> dict[str, tuple[list[int], str]]:
    """True- and false-colour HS band triplets by wavelength (a guessed true colour without wavelengths)."""
    composites: dict[str, tuple[list[int], str]] = {}
    for key, targets in (("true", TRUE_COLOUR_NM), ("false", FALSE_COLOUR_NM)):
        idx = nearest_bands(wl, targets)
        if idx is not None:
            composites[key] = (idx, "HS bands at " + "/".join(f"{wl[i]:.0f}" for i in idx) + " nm")
        elif wl is None and key == "true" and nb >= 3:
            idx = [min(nb - 1, (3 * nb) // 4), nb // 2, nb // 4]
            composites[key] = (idx, f"HS bands #{idx[0] + 1}/#{idx[1] + 1}/#{idx[2] + 1} (no wavelength metadata)")
    return composites


def prepare_display(ev: EvaluationInputs, arrays: ObservedArrays, *, change: np.ndarray | None) -> Display:
    """The display of the inputs and the truth, before any prediction.

    HS(t1) is shown with its coarse pixels. HS panels share one stretch per composite, from the truth,
    else HS(t1). ``change`` is the relative MS change per coarse pixel (its maximum is a sample pixel).
    """
    shape, ratio, wl = ev.shape, ev.int_ratio, ev.wavelengths
    step = display_step(shape)
    composites = _composites(wl, ev.n_bands)
    d = Display(
        shape=shape, step=step, wavelengths=wl, composites=composites,
        valid=ev.mask.copy() if ev.mask is not None else np.ones(shape, bool), margin=max(ev.border, ratio),
        ratio=ratio, change=change, panels={k: [] for k in composites},
    )
    step_c = max(1, int(math.ceil(step / ratio)))
    truth = arrays.truth
    stretch_src = truth if truth is not None else arrays.hs_t1
    if stretch_src is not None:
        for key in composites:
            d.hs_stretch(key, stretch_src, step if stretch_src is truth else step_c)
    if ev.fusion_inputs is not None and arrays.hs_t1 is not None:
        d.add_hs_panel("HS(t1), coarse", arrays.hs_t1, step_c)
        d.add_ms_panels(ev.fusion_inputs.ms_t1, arrays.ms_t1, arrays.ms_t2)
    if truth is not None:
        d.add_hs_panel("truth HS(t2)", truth, step)
        d.pick_pixels(truth)
    return d

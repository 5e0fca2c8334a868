"""Synthetic scenes from real spatial structure, real spectra and real vegetation dynamics.

The shipped training data are one scene (EnMAP Potsdam). This module makes scenes of other kinds from
training-eligible data only, for diverse pre-training and for a validation set that tells whether a model
transfers beyond the scene it was trained on.

The pieces live in their own modules: class maps in :mod:`dcstsf.training.landcover`, LAI and canopy
spectra in :mod:`dcstsf.training.vegetation`, libraries in :mod:`dcstsf.training.libraries`; this module
draws the materials, renders the scenes and builds the cases.

**Spatial structure** comes from the EnMAP Potsdam land-cover map
(``enmap_potsdam/landcover/enmap_landcover_unstyled.tif`` in the shared data folder, 30 m). Only four
blocks of it are labelled (about 30 x 33 to 41 x 63 pixels); :func:`landcover_classes` cuts them out,
fills their few unlabelled pixels with the nearest label, and builds a class map of any size as a mosaic of
rotated, flipped, randomly placed blocks, upsampled by an integer zoom (nearest neighbour, then smoothed
boundaries). Zoom 3 puts the 30 m labels on the 10 m grid the fine pixels stand for. The classes follow
the legend of :data:`LANDCOVER_CLASSES` (1 roof, 2 pavement, 3 low vegetation, 4 tree, 5 soil, 6 water);
the mean EnMAP spectra of the labelled pixels agree with it (water darkest, trees the highest NDVI).

**Spectra** come from spectral libraries (:mod:`dcstsf.training.libraries`). :func:`library_scene`
gives each class a few close endmembers (by default two or three: an anchor drawn from the spectra whose
cover type suits the class, plus some of its nearest neighbours in spectral angle), mixes them per pixel with smooth random
weights, applies a small gain texture, and mixes the classes at their boundaries with Gaussian-smoothed
one-hot abundances. A class whose cover type a library lacks (a USGS mineral library has no roofs) takes
the next cover type of its list (:class:`LandCoverClass`), then any non-vegetation spectrum.

**Vegetation** (classes 3 and 4) is driven by leaf area index (LAI), with two models
(:data:`VEGETATION_MODELS`):

``"prosail"``
    PROSPECT-D + 4SAIL (PyPI ``prosail``) canopies over a background spectrum from the library (soil,
    litter or rock): random leaf biochemistry and structure per class, two or three close leaf variants
    as endmembers, canopy reflectance tabulated on an LAI grid and interpolated per pixel.
``"cover"``
    A linear mix of a dense-canopy end (the library's own vegetation spectra) and a background end,
    weighted by the nadir cover fraction ``1 - exp(-0.5 LAI)`` (Beer's law, spherical leaves). A library
    without vegetation spectra (USGS) has no canopy end: its vegetated classes then take static
    background materials and do not change with LAI.

The per-class LAI and its change between two dates come from a **real** Sentinel-2 LAI time series
(``s2_lai_timeseries/Unevenly_spaced_time_series.nc``, crop cycles and harvests at 20 m): each vegetated
class follows its own randomly drawn pixel series between two of its cloud-free dates 10 to 180 days
apart, modulated per pixel by a smooth field that persists between the dates.

**Change between the dates** (:func:`library_case_pair`): the vegetation follows its LAI trajectory, and
a few elliptical patches switch to another class of the scene (construction, clearing, flooding), so the
new spectra are real spectra of that scene. :func:`pair_case` turns a pair into a
:class:`~dcstsf.simulate.FusionCase` with :func:`dcstsf.simulate.simulate_case` (the observation
operators and noise of every other case), optionally adding its ``radiometric`` change between the dates.

**The split.** Training draws from :data:`TRAINING_LIBRARIES` (USGS minerals and earthlib: soils, built
surfaces, NPV, burned areas, PROSAIL canopies) with PROSAIL vegetation. Validation draws from
:data:`VALIDATION_LIBRARIES` (Berlin urban HyMap spectra and Gamsberg field spectra, both measured with
other instruments in other places) with the ``"cover"`` vegetation model, so a validation scene holds no
spectrum, and no PROSAIL canopy, of the training distribution; only the land-cover structure and the LAI
trajectories are shared sources.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from dcstsf import sensors as _sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.sensors import Sensor
from dcstsf.simulate import FusionCase, simulate_case
from dcstsf.training._common import smooth_field
from dcstsf.training.degradations import DegradationRanges, random_physics
from dcstsf.training.landcover import LANDCOVER_CLASSES, LANDCOVER_MAP_PATH, LandCoverClass, landcover_classes
from dcstsf.training.libraries import SpectralLibrary, load_libraries
from dcstsf.training.vegetation import (
    LAI_GRID,
    LAI_SERIES_PATH,
    VEGETATION_MODELS,
    LaiChange,
    cover_fraction,
    on_1nm,
    prosail_table,
    prosail_to_sensor,
    sample_lai_change,
    vegetation_model,
)

__all__ = [
    "LAI_GRID",
    "LAI_SERIES_PATH",
    "LANDCOVER_CLASSES",
    "LANDCOVER_MAP_PATH",
    "TRAINING_LIBRARIES",
    "VALIDATION_LIBRARIES",
    "VEGETATION_MODELS",
    "LaiChange",
    "LandCoverClass",
    "ScenePair",
    "cover_fraction",
    "landcover_classes",
    "library_case_pair",
    "library_scene",
    "pair_case",
    "sample_lai_change",
    "synthetic_cases",
    "validation_cases",
]
#: Libraries that training scenes draw spectra from.
TRAINING_LIBRARIES: tuple[str, ...] = ("usgs", "earthlib")
#: Libraries that validation scenes draw spectra from (disjoint from :data:`TRAINING_LIBRARIES`).
VALIDATION_LIBRARIES: tuple[str, ...] = ("berlin", "gamsberg")

# Cover types that are green vegetation (never used as a static material of a non-vegetated class).
_GREEN = ("vegetation", "tree")


# --------------------------------------------------------------------------------------------------
# Materials of a scene
# --------------------------------------------------------------------------------------------------


@dataclass
class _Material:
    """How one class's spectra are made at any LAI (``kind``: ``static``, ``cover`` or ``prosail``)."""

    class_id: int
    name: str
    kind: str
    spectra: np.ndarray
    weights: np.ndarray
    gain: np.ndarray
    used: tuple[str, ...]
    background: np.ndarray | None = None
    background_weights: np.ndarray | None = None
    table: np.ndarray | None = None


@dataclass
class _Recipe:
    ids: tuple[int, ...]
    materials: list[_Material]
    mixing_sigma: float
    vegetation: str
    lai_fields: dict[int, np.ndarray]


def _pool(lib: SpectralLibrary, covers: Sequence[str], *, fallback: bool) -> np.ndarray:
    """Spectra of the first cover type of ``covers`` the library has; else (``fallback``) any non-green one."""
    for c in covers:
        idx = lib.cover_index(c)
        if idx.size:
            return idx
    if not fallback:
        return np.zeros(0, np.intp)
    idx = np.array([i for i, c in enumerate(lib.covers) if c not in _GREEN], dtype=np.intp)
    return idx if idx.size else np.arange(lib.n_spectra)


def _pick(rng: np.random.Generator, lib: SpectralLibrary, pool: np.ndarray, m: int, used: set[int]) -> np.ndarray:
    """An anchor spectrum (one no other class took, where possible) and ``m - 1`` of its close neighbours."""
    free = pool[~np.isin(pool, list(used))]
    anchor = int(rng.choice(free if free.size else pool))
    used.add(anchor)
    others = pool[pool != anchor]
    if m <= 1 or others.size == 0:
        return np.array([anchor])
    s = lib.spectra[others].astype(np.float64)
    a = lib.spectra[anchor].astype(np.float64)
    cos = s @ a / (np.linalg.norm(s, axis=1) * np.linalg.norm(a) + 1e-12)
    # the few closest in spectral angle; drawing among them keeps classes varied across scenes
    near = others[np.argsort(-cos, kind="stable")[: max(m - 1, 4)]]
    return np.concatenate([[anchor], rng.choice(near, size=min(m - 1, near.size), replace=False)])


def _mix_weights(rng: np.random.Generator, m: int, shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel convex weights ``(m, y, x)`` of ``m`` endmembers, smooth over a few pixels."""
    if m == 1:
        return np.ones((1, *shape), np.float32)
    f = np.stack([smooth_field(rng, shape, float(rng.uniform(1.5, 4.0))) for _ in range(m)])
    e = np.exp(1.5 * f)
    return (e / e.sum(axis=0)).astype(np.float32)


def _gain(rng: np.random.Generator, shape: tuple[int, int], std: float) -> np.ndarray:
    """A brightness texture ``1 + std (smooth field + white noise / 2)``."""
    g = 1.0 + std * (smooth_field(rng, shape, float(rng.uniform(1.0, 3.0))) + 0.5 * rng.standard_normal(shape))
    return np.clip(g, 0.5, 1.5).astype(np.float32)


def _draw_recipe(
    *,
    classes: np.ndarray,
    library: SpectralLibrary,
    native: SpectralLibrary,
    target: Sensor,
    rng: np.random.Generator,
    vegetation: str,
    class_table: Mapping[int, LandCoverClass],
    n_endmembers: tuple[int, int],
    gain_std: float,
    mixing_sigma: float | None,
) -> _Recipe:
    shape = classes.shape
    ids = tuple(int(i) for i in np.unique(classes))
    lo, hi = n_endmembers
    used: set[int] = set()
    materials: list[_Material] = []
    lai_fields: dict[int, np.ndarray] = {}
    tts = float(rng.uniform(20.0, 50.0))
    for cid in ids:
        spec = class_table.get(cid, LandCoverClass(f"class {cid}", ()))
        m = int(rng.integers(lo, hi + 1))
        gain = _gain(rng, shape, gain_std)
        canopy = _pool(library, spec.covers, fallback=False) if spec.vegetated else np.zeros(0, np.intp)
        vegetated = spec.vegetated and (vegetation == "prosail" or canopy.size > 0)
        if not vegetated:
            pool = _pool(library, spec.background if spec.vegetated else spec.covers, fallback=True)
            idx = _pick(rng, library, pool, m, used)
            materials.append(_Material(cid, spec.name, "static", library.spectra[idx], _mix_weights(rng, idx.size, shape),
                                       gain, tuple(library.names[i] for i in idx)))
            continue
        # the LAI field persists between the dates: where the canopy is dense stays denser
        field_ = np.exp(0.35 * smooth_field(rng, shape, float(rng.uniform(2.0, 5.0))))
        lai_fields[cid] = (field_ / field_.mean()).astype(np.float32)
        back = _pick(rng, library, _pool(library, spec.background, fallback=True), 2 if hi > 1 else 1, used)
        if vegetation == "prosail":
            table = prosail_table(rng, soil_1nm=on_1nm(native, int(back[0])), m=m,
                                   to_sensor=prosail_to_sensor(target), tree=spec.name == "tree", tts=tts)
            materials.append(_Material(cid, spec.name, "prosail", table[:, -1], _mix_weights(rng, m, shape), gain,
                                       ("PROSAIL over " + library.names[int(back[0])],), table=table))
        else:
            idx = _pick(rng, library, canopy, m, used)
            materials.append(_Material(
                cid, spec.name, "cover", library.spectra[idx], _mix_weights(rng, idx.size, shape), gain,
                tuple(library.names[i] for i in np.concatenate([idx, back])),
                background=library.spectra[back], background_weights=_mix_weights(rng, back.size, shape),
            ))
    sigma = float(rng.uniform(0.5, 1.2)) if mixing_sigma is None else float(mixing_sigma)
    return _Recipe(ids, materials, sigma, vegetation, lai_fields)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def _abundances(classes: np.ndarray, ids: Sequence[int], sigma: float) -> np.ndarray:
    """Soft class abundances ``(n_classes, y, x)``: Gaussian-smoothed one-hot maps, summing to one."""
    onehot = np.stack([(classes == i).astype(np.float32) for i in ids])
    if sigma > 0:
        onehot = np.stack([ndimage.gaussian_filter(o, sigma, mode="nearest") for o in onehot])
    return onehot / np.maximum(onehot.sum(axis=0, keepdims=True), 1e-12)


def _interp_table(table: np.ndarray, lai: np.ndarray) -> np.ndarray:
    """``table`` ``(len(LAI_GRID), bands)`` linearly interpolated at per-pixel ``lai`` -> ``(bands, y, x)``."""
    x = np.clip(lai, LAI_GRID[0], LAI_GRID[-1]).ravel()
    i = np.clip(np.searchsorted(LAI_GRID, x, side="right") - 1, 0, LAI_GRID.size - 2)
    t = ((x - LAI_GRID[i]) / (LAI_GRID[i + 1] - LAI_GRID[i])).astype(np.float32)[:, None]
    out = table[i] * (1.0 - t) + table[i + 1] * t
    return out.T.reshape(table.shape[1], *lai.shape)


def _render_material(mat: _Material, lai: float, lai_field: np.ndarray | None) -> np.ndarray:
    if mat.kind == "static" or lai_field is None:
        s = np.einsum("mb,myx->byx", mat.spectra, mat.weights)
    elif mat.kind == "cover":
        f = cover_fraction(lai * lai_field).astype(np.float32)
        canopy = np.einsum("mb,myx->byx", mat.spectra, mat.weights)
        assert mat.background is not None and mat.background_weights is not None
        back = np.einsum("mb,myx->byx", mat.background, mat.background_weights)
        s = f[None] * canopy + (1.0 - f[None]) * back
    else:
        assert mat.table is not None
        s = sum(mat.weights[j][None] * _interp_table(mat.table[j], lai * lai_field) for j in range(mat.table.shape[0]))
    return s * mat.gain[None]


def _render(
    recipe: _Recipe, classes: np.ndarray, lai: Mapping[int, float], lai_fields: Mapping[int, np.ndarray]
) -> np.ndarray:
    ab = _abundances(classes, recipe.ids, recipe.mixing_sigma)
    n_bands = recipe.materials[0].spectra.shape[1]
    cube = np.zeros((n_bands, *classes.shape), np.float32)
    for k, mat in enumerate(recipe.materials):
        if ab[k].max() > 1e-6:
            cube += ab[k][None] * _render_material(mat, lai.get(mat.class_id, 0.0), lai_fields.get(mat.class_id))
    return np.clip(cube, 0.0, 1.0)


def _as_cube(data: np.ndarray, target: Sensor, attrs: dict[str, Any]) -> xr.DataArray:
    _, h, w = data.shape
    return xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": list(target.band_names),
            "wavelength": ("band", target.centers_nm.copy()),
            "fwhm": ("band", target.fwhm_nm.copy()),
            "y": np.arange(h, dtype=float),
            "x": np.arange(w, dtype=float),
        },
        attrs=attrs,
        name="reflectance",
    )


def _check_inputs(classes: np.ndarray, library: SpectralLibrary, n_endmembers: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(classes)
    if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise DcstsfInputError(
            f"classes must be a non-empty 2-D integer array (y, x), got shape {arr.shape} and dtype {arr.dtype}; "
            "make one with landcover_classes()"
        )
    if not isinstance(library, SpectralLibrary) or library.n_spectra == 0:
        raise DcstsfInputError("library must be a non-empty SpectralLibrary; read one with load_libraries()")
    lo, hi = n_endmembers
    if not 1 <= lo <= hi:
        raise DcstsfInputError(f"n_endmembers must be (low, high) with 1 <= low <= high, got {n_endmembers}")
    return arr.astype(np.int32)


def _class_lai(rng: np.random.Generator, recipe: _Recipe, root: str | os.PathLike[str] | None,
               min_days: int, max_days: int) -> dict[int, LaiChange]:
    return {cid: sample_lai_change(rng, min_days=min_days, max_days=max_days, root=root) for cid in recipe.lai_fields}


def _scene_meta(library: SpectralLibrary, recipe: _Recipe) -> dict[str, Any]:
    return {
        "library": library.name,
        "vegetation_model": recipe.vegetation,
        "mixing_sigma_px": recipe.mixing_sigma,
        "classes": {
            str(m.class_id): {"name": m.name, "kind": m.kind, "spectra": list(m.used)} for m in recipe.materials
        },
    }


def library_scene(
    *,
    classes: np.ndarray,
    library: SpectralLibrary,
    sensor: Sensor | str,
    rng: np.random.Generator,
    lai: Mapping[int, float] | float | None = None,
    vegetation: str = "auto",
    class_table: Mapping[int, LandCoverClass] = LANDCOVER_CLASSES,
    n_endmembers: tuple[int, int] = (2, 3),
    gain_std: float = 0.04,
    mixing_sigma: float | None = None,
    root: str | os.PathLike[str] | None = None,
) -> xr.DataArray:
    """A reflectance cube ``(band, y, x)`` on ``sensor``'s bands with the structure of ``classes``.

    Parameters
    ----------
    classes
        Class map ``(y, x)`` of integer ids (e.g. from :func:`landcover_classes`); every id present is a class.
    library
        Where the spectra come from (on its own bands or already resampled; it is resampled to ``sensor``).
    sensor
        Target sensor (name or :class:`~dcstsf.sensors.Sensor`).
    rng
        Random generator: the scene is a deterministic function of its state and the other arguments.
    lai
        LAI of the vegetated classes (one value, or class id -> value); default: one date of a random real
        pixel series per vegetated class.
    vegetation
        ``"prosail"``, ``"cover"`` or ``"auto"`` (PROSAIL when installed); see the module notes.
    class_table
        Class id -> :class:`LandCoverClass`; ids not in it draw from any non-vegetation spectrum.
    n_endmembers
        ``(low, high)``: each class mixes between low and high close endmembers per pixel.
    gain_std
        Std of the per-pixel brightness texture.
    mixing_sigma
        Std (pixels) of the Gaussian that mixes classes at their boundaries; default random in 0.5-1.2.
    root
        The shared data folder (for the LAI series); default :func:`dcstsf.datasets.shared_data_dir`.

    Returns
    -------
    xarray.DataArray
        Float32 reflectance in [0, 1] with ``wavelength``/``fwhm`` coordinates, pixel ``y``/``x``
        coordinates and ``attrs`` saying which library, vegetation model and spectra made it.
    """
    arr = _check_inputs(classes, library, n_endmembers)
    target = _sensors.get(sensor)
    model = vegetation_model(vegetation)
    recipe = _draw_recipe(
        classes=arr, library=library.to_sensor(target), native=library, target=target, rng=rng, vegetation=model,
        class_table=class_table, n_endmembers=n_endmembers, gain_std=gain_std, mixing_sigma=mixing_sigma,
    )
    if lai is None:
        values = {cid: ch.lai_t1 for cid, ch in _class_lai(rng, recipe, root, 10, 180).items()}
    elif isinstance(lai, Mapping):
        values = {int(k): float(v) for k, v in lai.items()}
    else:
        values = dict.fromkeys(recipe.lai_fields, float(lai))
    meta = _scene_meta(library, recipe)
    meta["lai"] = {str(k): v for k, v in values.items() if k in recipe.lai_fields}
    attrs = {"source": f"synthetic scene from spectral library {library.name}", "synthetic": json.dumps(meta)}
    return _as_cube(_render(recipe, arr, values, recipe.lai_fields), target, attrs)


@dataclass
class ScenePair:
    """Two synthetic scenes of one place at two dates and what changed between them.

    ``t1``/``t2`` are reflectance cubes ``(band, y, x)``; ``classes_t1``/``classes_t2`` the class maps;
    ``change_mask`` marks pixels whose class changed (abrupt change; vegetation changes everywhere its LAI
    does); ``meta`` records the library, the spectra, the LAI series and dates per vegetated class.
    """

    t1: xr.DataArray
    t2: xr.DataArray
    classes_t1: np.ndarray
    classes_t2: np.ndarray
    change_mask: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def _abrupt_change(
    rng: np.random.Generator, classes: np.ndarray, n_patches: int, fraction: float
) -> np.ndarray:
    """``classes`` with ``n_patches`` elliptical patches switched to another class of the scene."""
    out = classes.copy()
    ids = np.unique(classes)
    if ids.size < 2 or n_patches <= 0 or fraction <= 0:
        return out
    h, w = classes.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    area = fraction * h * w / n_patches
    for _ in range(n_patches):
        ry = max(1.5, np.sqrt(area / np.pi) * rng.uniform(0.6, 1.4))
        rx = max(1.5, area / (np.pi * ry))
        cy, cx, theta = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0, np.pi)
        u = (yy - cy) * np.cos(theta) + (xx - cx) * np.sin(theta)
        v = -(yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)
        patch = (u / ry) ** 2 + (v / rx) ** 2 <= 1.0
        if not patch.any():
            continue
        # the patch becomes a class other than the one it mostly was
        values, counts = np.unique(classes[patch], return_counts=True)
        dominant = values[np.argmax(counts)]
        out[patch] = int(rng.choice(ids[ids != dominant]))
    return out


def library_case_pair(
    *,
    classes: np.ndarray,
    library: SpectralLibrary,
    sensor: Sensor | str,
    rng: np.random.Generator,
    vegetation: str = "auto",
    class_table: Mapping[int, LandCoverClass] = LANDCOVER_CLASSES,
    n_endmembers: tuple[int, int] = (2, 3),
    gain_std: float = 0.04,
    mixing_sigma: float | None = None,
    abrupt_patches: tuple[int, int] = (1, 4),
    abrupt_fraction: tuple[float, float] = (0.02, 0.1),
    min_days: int = 10,
    max_days: int = 180,
    root: str | os.PathLike[str] | None = None,
) -> ScenePair:
    """Scenes of one place at two dates with realistic change (arguments as :func:`library_scene`).

    Each vegetated class follows its own real LAI series from one date to another ``min_days``-``max_days``
    later (:func:`sample_lai_change`); the per-pixel LAI field persists, with a small new variation at t2.
    Between ``abrupt_patches[0]`` and ``abrupt_patches[1]`` elliptical patches, together covering a
    fraction of the scene drawn from ``abrupt_fraction``, switch to another class of the scene (its
    materials and texture), mixed at their edges like every boundary. ``(0, 0)`` patches turns abrupt
    change off.
    """
    arr = _check_inputs(classes, library, n_endmembers)
    if not 0 <= abrupt_patches[0] <= abrupt_patches[1] or not 0 <= abrupt_fraction[0] <= abrupt_fraction[1] < 1:
        raise DcstsfInputError(
            f"abrupt_patches {abrupt_patches} and abrupt_fraction {abrupt_fraction} must be (low, high) ranges, "
            "patches >= 0 and fractions in [0, 1)"
        )
    if not 0 <= min_days <= max_days:
        raise DcstsfInputError(f"need 0 <= min_days <= max_days, got {min_days} and {max_days}")
    target = _sensors.get(sensor)
    model = vegetation_model(vegetation)
    recipe = _draw_recipe(
        classes=arr, library=library.to_sensor(target), native=library, target=target, rng=rng, vegetation=model,
        class_table=class_table, n_endmembers=n_endmembers, gain_std=gain_std, mixing_sigma=mixing_sigma,
    )
    changes = _class_lai(rng, recipe, root, min_days, max_days)
    fields_t2 = {}
    for cid, f in recipe.lai_fields.items():
        g = f * np.exp(0.1 * smooth_field(rng, arr.shape, float(rng.uniform(2.0, 5.0))))
        fields_t2[cid] = (g / g.mean()).astype(np.float32)
    n_patches = int(rng.integers(abrupt_patches[0], abrupt_patches[1] + 1))
    classes_t2 = _abrupt_change(rng, arr, n_patches, float(rng.uniform(*abrupt_fraction)))
    x1 = _render(recipe, arr, {c: ch.lai_t1 for c, ch in changes.items()}, recipe.lai_fields)
    x2 = _render(recipe, classes_t2, {c: ch.lai_t2 for c, ch in changes.items()}, fields_t2)
    meta = _scene_meta(library, recipe)
    meta["lai"] = {
        str(c): {"t1": ch.lai_t1, "t2": ch.lai_t2, "dates": [ch.date_t1, ch.date_t2], "series_pixel": list(ch.pixel)}
        for c, ch in changes.items()
    }
    mask = classes_t2 != arr
    meta["abrupt_patches"] = n_patches
    meta["abrupt_changed_fraction"] = float(mask.mean())
    attrs = {"source": f"synthetic scene from spectral library {library.name}"}
    return ScenePair(
        t1=_as_cube(x1, target, {**attrs, "date": "t1"}),
        t2=_as_cube(x2, target, {**attrs, "date": "t2"}),
        classes_t1=arr,
        classes_t2=classes_t2,
        change_mask=mask,
        meta=meta,
    )


# --------------------------------------------------------------------------------------------------
# Fusion cases
# --------------------------------------------------------------------------------------------------


def pair_case(
    pair: ScenePair,
    *,
    model: ObservationModel,
    seed: int = 0,
    hs_snr_db: float | None = 35.0,
    ms_snr_db: float | None = 40.0,
    change: str = "none",
) -> FusionCase:
    """A :class:`~dcstsf.simulate.FusionCase` observing ``pair`` with :func:`dcstsf.simulate.simulate_case`.

    ``hs_t1``, ``ms_t1`` and ``hs_t1_truth`` come from simulating ``pair.t1`` with no change;
    ``ms_t2`` and ``hs_t2_truth`` from simulating ``pair.t2`` with ``change`` (e.g. ``"radiometric"`` for
    a gain and offset between the dates, ``"none"`` for the pair's own change only), with independent noise.
    The case's ``change_mask`` joins the pair's class changes and those of ``change``.
    """
    a = simulate_case(pair.t1, model=model, change="none", seed=seed, hs_snr_db=hs_snr_db, ms_snr_db=ms_snr_db)
    b = simulate_case(pair.t2, model=model, change=change, seed=seed + 1, hs_snr_db=hs_snr_db, ms_snr_db=ms_snr_db)
    h, w = a.change_mask.shape
    mask = a.change_mask.copy(data=pair.change_mask[:h, :w] | b.change_mask.values)
    meta = dict(a.meta)
    meta.update(
        protocol="synthetic library scenes at two dates (land-cover and real-LAI change), observed by the "
        "Wald simulator",
        change="landcover+lai" + ("" if change == "none" else f"+{change}"),
        synthetic=pair.meta,
    )
    return FusionCase(
        hs_t1=a.hs_t1,
        ms_t1=a.ms_t1,
        ms_t2=b.ms_t2,
        hs_t2_truth=b.hs_t2_truth,
        hs_t1_truth=a.hs_t1_truth,
        change_mask=mask,
        model=model,
        meta=meta,
    )


def synthetic_cases(
    *,
    model: ObservationModel,
    libraries: Sequence[str] = TRAINING_LIBRARIES,
    n_cases: int = 8,
    seed: int = 0,
    size: int = 96,
    vegetation: str = "auto",
    change: str = "radiometric",
    root: str | os.PathLike[str] | None = None,
    degradations: DegradationRanges | None = None,
    zoom: int | None = None,
) -> list[FusionCase]:
    """``n_cases`` fusion cases of ``size`` x ``size`` fine pixels from the named libraries, in turn.

    Case ``i`` depends only on ``(seed, i)`` and the arguments (not on ``n_cases``): its class map
    (:func:`landcover_classes`), scene pair (:func:`library_case_pair`) and observation
    (:func:`pair_case`, with ``change`` on top of the pair's own) are drawn from
    ``numpy.random.default_rng([seed, i])``. With ``degradations``, case ``i`` is observed through its own
    true physics (:func:`~dcstsf.training.degradations.random_physics`, drawn from
    ``default_rng([seed, i, 1])``) instead of ``model``; its meta records them (``true_physics``).
    ``zoom`` is the class maps' upsampling of the 30 m labels (:func:`landcover_classes`; default 2 or 3
    at random).
    """
    if n_cases < 0 or size < 2 * model.ratio:
        raise DcstsfInputError(f"need n_cases >= 0 and size >= {2 * model.ratio} (two HS pixels), got {n_cases}, {size}")
    if not libraries:
        raise DcstsfInputError("libraries is empty; name at least one spectral library (e.g. VALIDATION_LIBRARIES)")
    libs = load_libraries(root, names=tuple(dict.fromkeys(libraries)))
    cases = []
    for i in range(n_cases):
        rng = np.random.default_rng([seed, i])
        name = libraries[i % len(libraries)]
        classes = landcover_classes(rng, shape=(size, size), zoom=zoom, root=root)
        pair = library_case_pair(classes=classes, library=libs[name], sensor=model.hs_sensor, rng=rng,
                                 vegetation=vegetation, root=root)
        observed = model
        if degradations is not None:
            observed, _ = random_physics(model, np.random.default_rng([seed, i, 1]), degradations)
        case = pair_case(pair, model=observed, seed=int(rng.integers(2**31 - 2)), change=change)
        case.meta.update(case_index=i, case_seed=[seed, i])
        if degradations is not None:
            case.meta["true_physics"] = {
                "hs_sigma": float(np.median(observed.hs_sigma)), "hs_shift": list(observed.hs_shift),
                "srf_change": float(np.abs(observed.srf - model.srf).sum() / np.abs(model.srf).sum()),
            }
        cases.append(case)
    return cases


def validation_cases(
    *,
    model: ObservationModel,
    n_cases: int = 8,
    seed: int = 0,
    size: int = 96,
    root: str | os.PathLike[str] | None = None,
    degradations: DegradationRanges | None = None,
    zoom: int | None = None,
) -> list[FusionCase]:
    """Transfer-validation cases from :data:`VALIDATION_LIBRARIES` only (Berlin and Gamsberg in turn).

    Scenes of ``size`` x ``size`` fine pixels (at least 96), vegetation by the ``"cover"`` model from the
    libraries' own measured vegetation spectra, land-cover and real-LAI change plus a ``radiometric``
    change between the dates, noise at the simulator's default SNR (35 dB HS, 40 dB MS). Deterministic
    from ``seed`` (see :func:`synthetic_cases`), and independent of optional packages. ``degradations``
    observes each case through its own drawn physics (HS blur, shift, responses) instead of the tables'.
    ``zoom`` fixes the class maps' upsampling (1: the 30 m labels directly on the fine grid).
    """
    if size < 96:
        raise DcstsfInputError(f"validation scenes are at least 96 x 96 fine pixels; got size={size}")
    return synthetic_cases(model=model, libraries=VALIDATION_LIBRARIES, n_cases=n_cases, seed=seed, size=size,
                           vegetation="cover", change="radiometric", root=root, degradations=degradations,
                           zoom=zoom)

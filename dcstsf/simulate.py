"""Wald-protocol simulator: build fusion cases from a real hyperspectral cube.

A real HS cube, resampled to the target HS sensor's bands, is taken as the **fine-resolution truth at
t1**. A seeded change model turns it into the truth at t2. The observations are then produced with the
one set of operators in :mod:`dcstsf.operators`: ``HS(t1) = D B_hs X1 (+ noise)`` on the coarse grid,
``MS(ti) = B_ms R Xi (+ noise)`` on the fine grid.

No real two-date HS pair is available offline, so **temporal change is simulated** on real scenes; every
result built on these cases says so.

Change models (combine with ``+``, e.g. ``"phenology+abrupt"``; ``"mixed"`` is all three):

``phenology``
    Smooth spectral change: ``X2 = X1 * (1 + a(x, y) g(lambda))`` with ``a`` a smooth random spatial
    field (std ``phenology_amplitude``) and ``g`` a smooth random curve in wavelength (sum of three
    Gaussian bumps, max |g| = 1), like greening or senescence.
``abrupt``
    Land-cover change patches (``abrupt_fraction`` of the area, elliptical): inside each patch the
    spectra are copied from another place in the scene (keeps real texture and real spectra).
``radiometric``
    A scene-wide per-band gain (+-``gain_std``, smooth in wavelength) and offset between the dates.
``none``
    X2 = X1 (used to check that methods return the truth when nothing changed).

Noise: zero-mean Gaussian with per-band std ``mean(band) / 10**(snr_db/20)`` on each observation;
``snr_db=None`` for noise-free observations.

**Nodata in the real cube** (a swath edge, a corner outside the footprint: pixels where a band that has
data somewhere is NaN) stays nodata: NaN in both truths, and in every observation whose blur reached it
(an MS pixel within the MS blur, an HS pixel when a fine pixel within the HS blur of its block is
nodata). The operators run on the cube with each band's mean at those pixels, so that nothing next to
them is darkened; abrupt-change patches may copy that mean spectrum from them.

**The case's grid says what it stands for.** The real cube's pixels (e.g. 30 m EnMAP) stand for the MS
grid of the model (e.g. 10 m Sentinel-2), so the case is placed on a grid of the nominal pixel size,
``model.ms_grid_gsd_m`` for the fine grid (MS and truths) and ``ratio`` times that for the HS, anchored at
the real cube's top-left corner, in its CRS. The fusion engine reads the MS pixel size from that
transform (:func:`dcstsf.engine.grids.grid_gsd_m`), so fusion uses the MS blur of the simulation with
nothing but the georeference. On a map the case therefore looks ``ms_grid_gsd_m / source pixel size``
times the source's size, at the source's corner (a third of its width and height for 30 m EnMAP
standing for 10 m); ``case.json`` records both pixel sizes (``ms_grid_gsd_m``, ``source_gsd_m``). A cube without x/y coordinates stays a
plain pixel grid, and one without a CRS gets the nominal pixel size in unnamed units (the engine then
takes the finest GSD of the MS bands for the fine grid).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from scipy.ndimage import binary_dilation, gaussian_filter

from dcstsf import sensors as _sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel, blur_radius, observe_hs, observe_ms
from dcstsf.scene_stats import fill_nodata
from dcstsf.sensors import Sensor
from dcstsf.units import metres_per_unit, nm_per_wavelength_unit

__all__ = [
    "CHANGE_MODELS",
    "FusionCase",
    "ChangeParameters",
    "apply_change",
    "resample_to_sensor",
    "simulate_case",
    "smooth_spectral_curve",
    "source_sensor",
]

CHANGE_MODELS = ("none", "phenology", "abrupt", "radiometric", "mixed")


@dataclass(frozen=True)
class ChangeParameters:
    """Strengths of the change models (defaults are moderate, seasonal-scale changes)."""

    phenology_amplitude: float = 0.2
    phenology_scale_px: float = 6.0
    abrupt_fraction: float = 0.08
    abrupt_patches: int = 4
    gain_std: float = 0.03
    offset_std: float = 0.005


def _parse_change(change: str) -> set[str]:
    parts = {p.strip() for p in change.lower().split("+") if p.strip()}
    if "mixed" in parts:
        parts = (parts - {"mixed"}) | {"phenology", "abrupt", "radiometric"}
    unknown = parts - set(CHANGE_MODELS)
    if unknown or not parts:
        raise DcstsfInputError(
            f"unknown change model {change!r}; use one of {', '.join(CHANGE_MODELS)} or combine them with '+'"
        )
    return parts - {"none"}


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    f = gaussian_filter(rng.standard_normal(shape), sigma=scale, mode="reflect")
    return f / (f.std() + 1e-12)


def smooth_spectral_curve(rng: np.random.Generator, wavelengths: np.ndarray) -> np.ndarray:
    """A random curve smooth in wavelength (three Gaussian bumps, 80-400 nm wide), max |value| = 1."""
    g = np.zeros_like(wavelengths, dtype=float)
    for _ in range(3):
        mu = rng.uniform(wavelengths.min(), wavelengths.max())
        width = rng.uniform(80.0, 400.0)
        g += rng.uniform(-1.0, 1.0) * np.exp(-0.5 * ((wavelengths - mu) / width) ** 2)
    return g / (np.abs(g).max() + 1e-12)


def apply_change(
    x1: np.ndarray,
    *,
    wavelengths: np.ndarray,
    change: str = "mixed",
    seed: int = 0,
    params: ChangeParameters = ChangeParameters(),
) -> tuple[np.ndarray, np.ndarray]:
    """Truth at t2 from truth at t1 (``(band, y, x)``); returns ``(x2, abrupt_change_mask)``."""
    models = _parse_change(change)
    rng = np.random.default_rng(seed)
    nb, h, w = x1.shape
    x2 = x1.astype(np.float64).copy()
    mask = np.zeros((h, w), bool)
    if "phenology" in models:
        a = params.phenology_amplitude * _smooth_field(rng, (h, w), params.phenology_scale_px)
        g = smooth_spectral_curve(rng, wavelengths)
        x2 *= 1.0 + a[None] * g[:, None, None]
    if "abrupt" in models:
        yy, xx = np.mgrid[0:h, 0:w]
        area = params.abrupt_fraction * h * w / max(params.abrupt_patches, 1)
        for _ in range(params.abrupt_patches):
            ry = max(1.5, np.sqrt(area / np.pi) * rng.uniform(0.6, 1.4))
            rx = max(1.5, area / (np.pi * ry))
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            patch = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
            # copy spectra from a displaced place (at least a patch diameter away, wrapping around)
            dy = int(rng.integers(int(2 * ry) + 1, max(int(2 * ry) + 2, h)))
            dx = int(rng.integers(int(2 * rx) + 1, max(int(2 * rx) + 2, w)))
            src = np.roll(np.roll(x1, dy, axis=1), dx, axis=2)
            x2[:, patch] = src[:, patch]
            mask |= patch
    if "radiometric" in models:
        gain = 1.0 + params.gain_std * smooth_spectral_curve(rng, wavelengths)
        offset = params.offset_std * smooth_spectral_curve(rng, wavelengths)
        x2 = x2 * gain[:, None, None] + offset[:, None, None]
    return np.clip(x2, 0.0, 1.0).astype(np.float32), mask


def _add_noise(rng: np.random.Generator, cube: np.ndarray, snr_db: float | None) -> np.ndarray:
    if snr_db is None:
        return cube
    mean = np.abs(cube.reshape(cube.shape[0], -1).mean(axis=1))
    sigma = mean / 10.0 ** (snr_db / 20.0)
    return (cube + rng.standard_normal(cube.shape) * sigma[:, None, None]).astype(np.float32)


def nodata_pixels(values: np.ndarray) -> np.ndarray:
    """``(y, x)`` True where a cube ``(band, y, x)`` has no spectrum: a band that holds data somewhere is
    not finite there. Bands empty everywhere (water-vapour bands a product leaves empty) do not count."""
    finite = np.isfinite(values)
    present = finite.reshape(finite.shape[0], -1).any(axis=1)
    return ~finite[present].all(axis=0) if present.any() else np.ones(values.shape[1:], bool)


def _reach(nodata: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (a square) of a nodata pixel: their blurred observation saw the fill."""
    if radius <= 0 or not nodata.any():
        return nodata
    return binary_dilation(nodata, structure=np.ones((2 * radius + 1, 2 * radius + 1), bool))


def source_sensor(cube: xr.DataArray, *, name: str = "source") -> Sensor:
    """A :class:`Sensor` from a cube's ``wavelength`` (and optional ``fwhm``, ``bbl``) coordinates; bands with
    no data anywhere are flagged bad."""
    if "wavelength" not in cube.coords:
        raise DcstsfInputError(
            f"cube {cube.name or ''!s} has no 'wavelength' coordinate; give its band centres (nm) so it can be "
            "resampled to the target sensor"
        )
    wl = np.asarray(cube["wavelength"].values, float)
    fwhm = np.asarray(cube["fwhm"].values, float) if "fwhm" in cube.coords else None
    # nanometres, whatever the coordinate's units (declared, or micrometres read from the magnitude)
    factor = nm_per_wavelength_unit(cube["wavelength"].attrs.get("units"), wl,
                                    source=f"cube {cube.name or ''!s}".strip())
    wl, fwhm = wl * factor, (fwhm * factor if fwhm is not None else None)
    valid = np.isfinite(cube.values).reshape(cube.shape[0], -1).any(axis=1)
    if "bbl" in cube.coords:
        valid &= np.asarray(cube["bbl"].values, float) > 0
    return _sensors.from_wavelengths(wl, fwhm, name=name, good=valid)


#: Most a truth's good bands may lie away from every band of the source (no source band centre within
#: their FWHM or :data:`MIN_SAMPLING_NM`): beyond it the cube does not sample the sensor's spectrum (a
#: multispectral file, a VNIR-only cube for a VNIR-SWIR sensor), and a case built from it would score
#: methods against a spectrum interpolated between a few bands.
MAX_INTERPOLATED_FRACTION = 0.5
#: A target band counts as sampled when a source band's centre lies within its FWHM, or this many nm
#: (band spacings up to twice this pass: coarse hyperspectral sampling, interpolated between neighbours).
MIN_SAMPLING_NM = 25.0


def _check_spectral_sampling(cube: xr.DataArray, target: Sensor, *, label: str) -> None:
    """An error when resampling ``cube`` to ``target`` would interpolate most of the target's good bands."""
    src = source_sensor(cube.sortby("wavelength") if "wavelength" in cube.coords else cube)
    good = np.asarray(target.good, bool)
    # sampled: a good source band's centre near the band's own (not its response overlap: a file without
    # FWHM gets widths from its band spacing, which would cover any gap)
    nearest = np.abs(target.centers_nm[:, None] - src.centers_nm[src.good][None, :]).min(axis=1)
    filled = (nearest > np.maximum(target.fwhm_nm, MIN_SAMPLING_NM)) & good
    if filled.sum() > MAX_INTERPOLATED_FRACTION * good.sum():
        raise DcstsfInputError(
            f"{label} has {src.n_bands} bands ({src.centers_nm.min():.0f}-{src.centers_nm.max():.0f} nm): resampled "
            f"to {target.name}, {int(filled.sum())} of its {int(good.sum())} good bands would be interpolated "
            "between the cube's bands, so the case's truth would not be a measured spectrum. Simulate from a "
            "hyperspectral cube that samples the sensor's range, or simulate a sensor inside the cube's range "
            "(hs_sensor=, CLI --hs-sensor)"
        )


def resample_to_sensor(cube: xr.DataArray, hs_sensor: Sensor | str) -> xr.DataArray:
    """Resample a real cube ``(band, y, x)`` with wavelength coords to the bands of ``hs_sensor``.

    Bad/all-NaN source bands get no weight; target bands with no source coverage are interpolated in
    wavelength (see :func:`dcstsf.sensors.spectral_resampling_matrix`). Nodata pixels
    (:func:`nodata_pixels`) stay NaN in every band.
    """
    target = _sensors.get(hs_sensor)
    # sensors with two detectors (EnMAP, Hyperion) list overlapping VNIR/SWIR bands out of order
    cube = cube.sortby("wavelength") if "wavelength" in cube.coords else cube
    src = source_sensor(cube)
    if src.n_bands == target.n_bands and np.allclose(src.centers_nm, target.centers_nm, atol=0.5):
        data = np.nan_to_num(cube.values.astype(np.float32))
    else:
        w = _sensors.spectral_resampling_matrix(src, target)
        data = np.einsum("ds,syx->dyx", w, np.nan_to_num(cube.values.astype(np.float64))).astype(np.float32)
    data[:, nodata_pixels(cube.values)] = np.nan  # no spectrum there to resample
    spatial = {k: v for k, v in cube.coords.items() if "band" not in v.dims}
    out = xr.DataArray(data, dims=("band", "y", "x"), coords=spatial, attrs=dict(cube.attrs))
    return out.assign_coords(
        band=list(target.band_names),
        wavelength=("band", target.centers_nm),
        fwhm=("band", target.fwhm_nm),
    )


@dataclass
class FusionCase:
    """A simulated fusion case: inputs, truths and how they were made (all DataArrays ``(band, y, x)``).

    The arrays lie on the grid the case stands for (see the module notes): the fine grid (``ms_t1``,
    ``ms_t2``, the truths, ``change_mask``) has pixels of ``model.ms_grid_gsd_m``, the HS grid ``ratio``
    times that, both anchored at the source cube's top-left corner in its CRS.
    """

    hs_t1: xr.DataArray
    ms_t1: xr.DataArray
    ms_t2: xr.DataArray
    hs_t2_truth: xr.DataArray
    hs_t1_truth: xr.DataArray
    change_mask: xr.DataArray
    model: ObservationModel
    meta: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three inputs as float32 NumPy arrays."""
        return (
            self.hs_t1.values.astype(np.float32),
            self.ms_t1.values.astype(np.float32),
            self.ms_t2.values.astype(np.float32),
        )

    def save(self, directory: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
        """Write the inputs and truths as GeoTIFFs plus ``case.json``; returns the paths."""
        from dcstsf.io import write_raster

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = {
            "hs_t1": d / "hs_t1.tif",
            "ms_t1": d / "ms_t1.tif",
            "ms_t2": d / "ms_t2.tif",
            "hs_t2_truth": d / "hs_t2_truth.tif",
            "hs_t1_truth": d / "hs_t1_truth.tif",
        }
        for key, path in paths.items():
            write_raster(getattr(self, key), path, overwrite=overwrite)
        meta = dict(self.meta, model=self.model.describe(), files={k: p.name for k, p in paths.items()})
        case_json = d / "case.json"
        if case_json.exists() and not overwrite:
            raise DcstsfInputError(f"{case_json} exists; pass overwrite=True (CLI --overwrite) to replace it")
        case_json.write_text(json.dumps(meta, indent=2, default=str))
        paths["case"] = case_json
        return paths


def _crop_to_ratio(cube: xr.DataArray, ratio: int) -> xr.DataArray:
    h, w = cube.sizes["y"], cube.sizes["x"]
    return cube.isel(y=slice(0, h - h % ratio), x=slice(0, w - w % ratio))


def _axis_coord(cube: xr.DataArray, dim: str, start: float, step: float) -> xr.DataArray:
    """Pixel-centre coordinates ``start + step * (i + 0.5)`` along ``dim``, with the old coordinate's attrs."""
    values = start + step * (np.arange(cube.sizes[dim], dtype=np.float64) + 0.5)
    return xr.DataArray(values, dims=(dim,), attrs=dict(cube[dim].attrs))


def _on_nominal_grid(truth: xr.DataArray, gsd_m: float, *, label: str) -> tuple[xr.DataArray, float | None]:
    """``truth`` relabelled onto pixels of ``gsd_m`` anchored at its top-left corner, and its own pixel size.

    The values are untouched: only the x/y coordinates and the stored transform change. The source's
    pixel size is in metres, ``None`` without a CRS. A cube without x/y coordinates comes back unchanged.
    """
    if "x" not in truth.coords or "y" not in truth.coords:
        return truth, None
    from affine import Affine

    t = truth.rio.transform(recalc=True)
    crs = truth.rio.crs
    factor = metres_per_unit(crs) if crs is not None else None
    if crs is not None and factor is None:
        raise DcstsfInputError(
            f"{label} is in CRS {crs}, whose units are not metres, so the case cannot be placed on its nominal "
            f"{gsd_m:g} m grid; reproject the cube to a projected CRS in metres first (e.g. rioxarray: "
            "da.rio.reproject('EPSG:32633')) or drop its CRS (da.rio.write_crs(None)) to simulate on a plain grid"
        )
    step = gsd_m / factor if factor is not None else gsd_m
    # keep the axis orientation (north-up files have a negative y step)
    a, e = math.copysign(step, t.a), math.copysign(step, t.e)
    out = truth.assign_coords(x=_axis_coord(truth, "x", t.c, a), y=_axis_coord(truth, "y", t.f, e))
    if crs is not None or truth.rio.grid_mapping in truth.coords:
        # the stored GeoTransform would otherwise keep the source's pixel size
        out = out.rio.write_transform(Affine(a, 0.0, t.c, 0.0, e, t.f))
    return out, (abs(t.a) * factor if factor is not None else None)


def simulate_case(
    truth: xr.DataArray,
    *,
    model: ObservationModel,
    change: str = "mixed",
    seed: int = 0,
    hs_snr_db: float | None = 35.0,
    ms_snr_db: float | None = 40.0,
    params: ChangeParameters = ChangeParameters(),
) -> FusionCase:
    """Build a fusion case from a real cube taken as the fine truth at t1.

    ``truth`` is resampled to ``model.hs_sensor`` when its bands differ (it needs ``wavelength``
    coordinates then) and cropped to a multiple of the ratio. The case is placed on the grid it stands
    for: fine pixels of ``model.ms_grid_gsd_m`` (MS and truths) and HS pixels ``model.ratio`` times that,
    anchored at ``truth``'s top-left corner in its CRS, so on a map it looks
    ``model.ms_grid_gsd_m / source pixel size`` times the source's size. The fusion engine reads the MS
    pixel size from that georeference.

    Raises
    ------
    DcstsfInputError
        Unknown change model; a cube too small for two HS pixels; a cube whose CRS is not in metres
        (geographic), which cannot carry a grid of metre pixels; a cube that does not sample the HS
        sensor's spectrum (more than half its good bands interpolated); a cube without data.
    """
    src = truth.encoding.get("source")
    label = f"the real cube ({src})" if src else "the real cube"
    from dcstsf.diagnosis.values import check_reflectance_values, raise_or_warn

    # the truth is clipped to [0, 1] below: values in percent or stored numbers would all become 1
    raise_or_warn([check_reflectance_values(truth, name="the real cube", role="source")])
    if truth.sizes.get("band", 0) != model.n_hs or "wavelength" in truth.coords and not np.allclose(
        np.asarray(truth["wavelength"].values, float), model.hs_sensor.centers_nm, atol=0.5
    ):
        _check_spectral_sampling(truth, model.hs_sensor, label=label)
        truth = resample_to_sensor(truth, model.hs_sensor)
    truth = _crop_to_ratio(truth, model.ratio)
    if truth.sizes["y"] < 2 * model.ratio or truth.sizes["x"] < 2 * model.ratio:
        raise DcstsfInputError(f"cube of {truth.sizes['y']}x{truth.sizes['x']} pixels is too small to simulate a case")
    # relabelled before observing, so the HS block-centre coordinates land on the nominal coarse grid
    truth, source_gsd = _on_nominal_grid(truth, model.ms_grid_gsd_m, label=label)
    nodata = nodata_pixels(truth.values)
    if nodata.all():
        raise DcstsfInputError(f"{label} holds no pixel with data in every band that has data; check the file")
    x1 = np.clip(fill_nodata(truth.values.astype(np.float32)), 0.0, 1.0)
    x2, mask = apply_change(x1, wavelengths=model.hs_sensor.centers_nm, change=change, seed=seed, params=params)
    t1 = truth.copy(data=x1)
    t2 = truth.copy(data=x2)
    rng = np.random.default_rng(seed + 7919)
    hs = observe_hs(model, t1)
    hs = hs.copy(data=_add_noise(rng, hs.values, hs_snr_db))
    ms1 = observe_ms(model, t1)
    ms1 = ms1.copy(data=_add_noise(rng, ms1.values, ms_snr_db))
    ms2 = observe_ms(model, t2)
    ms2 = ms2.copy(data=_add_noise(rng, ms2.values, ms_snr_db))
    # the real cube's acquisition time is t1's; t2 is simulated and has none
    from dcstsf.engine.acquisition import TIME_ATTRIBUTES

    for cube in (ms2, t2):
        for key in TIME_ATTRIBUTES:
            cube.attrs.pop(key, None)
    if nodata.any():
        # nothing is known of the surface there: NaN in the truths, and in every observation whose blur
        # reached a filled pixel (an HS pixel when any fine pixel within its blur does)
        for cube in (t1, t2):
            cube.values[:, nodata] = np.nan
        ms_gone = _reach(nodata, blur_radius(model.ms_sigma))
        for cube in (ms1, ms2):
            cube.values[:, ms_gone] = np.nan
        r = model.ratio
        hs_gone = _reach(nodata, blur_radius(model.hs_psf))
        hs_gone = hs_gone.reshape(hs_gone.shape[0] // r, r, hs_gone.shape[1] // r, r).any(axis=(1, 3))
        hs.values[:, hs_gone] = np.nan
        mask &= ~nodata
    if "x" in hs.coords and hs.rio.grid_mapping in hs.coords:
        # observe_hs keeps the fine grid's stored GeoTransform: store the coarse grid's instead
        hs = hs.rio.write_transform(hs.rio.transform(recalc=True))
    spatial = {k: v for k, v in truth.coords.items() if "band" not in v.dims}
    meta = {
        "protocol": "Wald: real HS cube = fine truth at t1; t2 by a SIMULATED change model",
        "change": change,
        "seed": seed,
        "hs_snr_db": hs_snr_db,
        "ms_snr_db": ms_snr_db,
        "params": params.__dict__,
        "source": str(truth.attrs.get("source", truth.name or "")),
        "ms_grid_gsd_m": model.ms_grid_gsd_m,
        # the fine grid's pixel size (in the files' transforms) and the real pixels it stands on
        "source_gsd_m": source_gsd,
    }
    return FusionCase(
        hs_t1=hs,
        ms_t1=ms1,
        ms_t2=ms2,
        hs_t2_truth=t2,
        hs_t1_truth=t1,
        change_mask=xr.DataArray(mask, dims=("y", "x"), coords=spatial),
        model=model,
        meta=meta,
    )


def torch_batch(case: FusionCase) -> dict[str, torch.Tensor]:
    """The case as float32 tensors with a batch dim (for the network)."""
    hs, m1, m2 = case.arrays()
    return {
        "hs_t1": torch.from_numpy(hs)[None],
        "ms_t1": torch.from_numpy(m1)[None],
        "ms_t2": torch.from_numpy(m2)[None],
        "hs_t2": torch.from_numpy(case.hs_t2_truth.values.astype(np.float32))[None],
        "hs_t1_fine": torch.from_numpy(case.hs_t1_truth.values.astype(np.float32))[None],
    }

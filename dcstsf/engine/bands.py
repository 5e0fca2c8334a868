"""Sensors and band names of the inputs: which sensors recorded them and which MS bands they hold.

The HS sensor comes from the caller, else from the cube's ``wavelength`` coordinate (a registered sensor
whose band centres match within 5 nm, else one built from the coordinates), else from the band count.
The MS bands come from the caller or from the MS ``band`` coordinate; Sentinel-2 style names are read
with :mod:`dcstsf.sensors.names` (``B2``, ``b02`` and ``B02`` are one band). They may come in any order:
a method that needs another (DC-STSF's weights read the bands by position, :meth:`Method.ms_band_order`)
gets them reordered by :func:`reorder_ms_bands`, lazily.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from dcstsf import sensors as _sensors
from dcstsf.engine.sources import input_label
from dcstsf.errors import DcstsfInputError, UncoveredBandsError
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import select_ms_bands
from dcstsf.sensors import Sensor
from dcstsf.sensors.names import band_runs, canonical_ms_name, is_generic_band_name
from dcstsf.units import nm_per_wavelength_unit

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MS_SENSOR",
    "band_names",
    "check_band_counts",
    "mark_empty_hs_bands",
    "observation_model",
    "reorder_ms_bands",
    "resolve_hs_sensor",
    "resolve_ms_bands",
    "select_named_ms_bands",
    "without_hs_bands",
]

#: Default MS sensor when none is given.
DEFAULT_MS_SENSOR = "sentinel-2a"
# Default HS sensor for a 166-band cube (the ZY-1 02D AHSI the project targets).
_DEFAULT_HS_BY_COUNT = {166: "zy1-02d-ahsi"}
# Registered sensors match wavelength coordinates when every centre is within this many nm.
_WAVELENGTH_MATCH_NM = 5.0


def band_names(da: xr.DataArray) -> list[str] | None:
    """Meaningful band names, or ``None`` when there are none.

    From the ``band`` coordinate, unless it holds only numbers or ``band_<i>``; then from a ``long_name``
    attribute with one distinct name per band, where ``rioxarray.open_rasterio`` puts a file's band
    descriptions (its ``band`` coordinate is 1, 2, ...).
    """
    candidates = []
    if "band" in da.coords:
        candidates.append([str(v) for v in np.asarray(da["band"].values).ravel()])
    long_name = da.attrs.get("long_name")
    n = da.sizes.get("band", 1)
    if isinstance(long_name, (list, tuple)) and len(long_name) == n and len(set(long_name)) == n:
        candidates.append([str(v) for v in long_name])
    for names in candidates:
        if not all(is_generic_band_name(name) for name in names):
            return names
    return None


def _band_coord(da: xr.DataArray, key: str) -> np.ndarray | None:
    """A finite per-band coordinate (``wavelength``, ``fwhm``), else ``None``."""
    if key in da.coords and da[key].dims == ("band",):
        vals = np.asarray(da[key].values, dtype=np.float64)
        return vals if np.all(np.isfinite(vals)) else None
    return None


def resolve_hs_sensor(hs: xr.DataArray, hs_sensor: str | Sensor | None) -> Sensor:
    """The HS sensor: the one given (checked against the band count), else inferred from the cube."""
    n = hs.sizes["band"]
    label = input_label(hs, "HS(t1)")
    if hs_sensor is not None:
        sensor = _sensors.get(hs_sensor)
        if sensor.n_bands != n:
            raise DcstsfInputError(
                f"{label} has {n} bands but the HS sensor {sensor.name!r} has {sensor.n_bands}; pass the sensor "
                "that recorded the cube (hs_sensor=..., CLI --hs-sensor; see dcstsf.sensors.available()) or "
                "build one with dcstsf.sensors.from_wavelengths"
            )
        return sensor
    wl = _band_coord(hs, "wavelength")
    fwhm = _band_coord(hs, "fwhm")
    if wl is not None:  # the engine works in nm; a coordinate in micrometres (declared or by magnitude) is converted
        factor = nm_per_wavelength_unit(hs["wavelength"].attrs.get("units"), wl, source=label)
        wl = wl * factor
        fwhm = fwhm * factor if fwhm is not None else None
    candidates = []
    for name in _sensors.available():
        s = _sensors.get(name)
        if s.n_bands == n:
            candidates.append(s)
    if wl is not None:
        for s in candidates:
            if np.max(np.abs(s.centers_nm - wl)) <= _WAVELENGTH_MATCH_NM:
                return s
        names = [str(v) for v in hs["band"].values] if "band" in hs.coords else None
        if names is not None and len(set(names)) != len(names):
            names = None
        good = None
        if "bbl" in hs.coords:
            good = np.asarray(hs["bbl"].values, dtype=float) > 0
        try:
            return _sensors.from_wavelengths(wl, fwhm, name="hs-from-wavelengths", band_names=names, good=good)
        except DcstsfInputError as exc:
            raise DcstsfInputError(
                f"{label}: cannot build an HS sensor from its wavelength coordinates: {exc}"
            ) from exc
    if n in _DEFAULT_HS_BY_COUNT:
        return _sensors.get(_DEFAULT_HS_BY_COUNT[n])
    if len(candidates) == 1:
        return candidates[0]
    raise DcstsfInputError(
        f"{label} has {n} bands and no wavelength coordinates, so its sensor is unknown; pass hs_sensor=NAME "
        f"(CLI --hs-sensor; available: {', '.join(_sensors.available())}) or give the cube a 'wavelength' "
        "coordinate (nm)"
    )


def _requested_ms_bands(ms_bands: Sequence[str] | str) -> list[str]:
    """``ms_bands`` (a list or ``"B02,B03,..."``) as canonical Sentinel-2 names, empty entries dropped."""
    listed = [b.strip() for b in ms_bands.split(",")] if isinstance(ms_bands, str) else [str(b) for b in ms_bands]
    return [canonical_ms_name(b) for b in listed if b]


def resolve_ms_bands(
    ms1: xr.DataArray, ms2: xr.DataArray, ms_sensor: str | Sensor | None, ms_bands: Sequence[str] | str | None
) -> tuple[Sensor, list[str]]:
    """The MS sensor and the band names in the data's order: given, or read from the ``band`` coordinate.

    The sensor is the one given, else the registered sensor MS(t1)'s ``sensor`` attribute names (the product
    readers set it from the spacecraft), else :data:`DEFAULT_MS_SENSOR`.
    """
    if ms_sensor is None:
        declared = ms1.attrs.get("sensor")
        ms_sensor = declared if isinstance(declared, str) and declared in _sensors.available() else DEFAULT_MS_SENSOR
    sensor = _sensors.get(ms_sensor)
    n1, n2 = ms1.sizes["band"], ms2.sizes["band"]
    if n1 != n2:
        raise DcstsfInputError(
            f"{input_label(ms1, 'MS(t1)')} has {n1} bands but {input_label(ms2, 'MS(t2)')} has {n2}; give both "
            "dates the same bands in the same order"
        )
    names1, names2 = band_names(ms1), band_names(ms2)
    known = set(sensor.band_names)
    norm1 = [canonical_ms_name(b) for b in names1] if names1 else None
    norm2 = [canonical_ms_name(b) for b in names2] if names2 else None
    if norm1 and norm2 and all(b in known for b in norm1 + norm2) and norm1 != norm2:
        raise DcstsfInputError(
            f"MS(t1) bands {norm1} and MS(t2) bands {norm2} differ; give both dates the same bands in the same order"
        )
    from_coords = next((nm for nm in (norm1, norm2) if nm and all(b in known for b in nm)), None)
    if ms_bands is not None:
        bands = _requested_ms_bands(ms_bands)
        unknown = [b for b in bands if b not in known]
        if unknown:
            raise DcstsfInputError(
                f"MS band(s) {unknown} are not bands of {sensor.name!r}; its bands are {list(sensor.band_names)}"
            )
        if len(bands) != n1:
            raise DcstsfInputError(
                f"{len(bands)} MS bands were declared ({', '.join(bands)}) but {input_label(ms1, 'MS(t1)')} has "
                f"{n1}; list one name per band, in the file's band order (CLI --ms-bands B02,B03,B04,B08)"
            )
        if from_coords is not None and from_coords != bands:
            raise DcstsfInputError(
                f"ms_bands={bands} disagrees with the MS band names in the data {from_coords}; drop ms_bands "
                "(they are read from the data) or fix the band order"
            )
        return sensor, bands
    if from_coords is not None:
        return sensor, from_coords
    shown = names1 or [f"band_{i + 1}" for i in range(n1)]
    raise DcstsfInputError(
        f"the MS bands of {input_label(ms1, 'MS(t1)')} ({', '.join(shown)}) are not {sensor.name} band names, so "
        "the spectral response is unknown; pass ms_bands=[...] (CLI --ms-bands, e.g. B02,B03,B04,B08) in the "
        "file's band order, and ms_sensor= if it is not Sentinel-2"
    )


def select_named_ms_bands(
    ms1: xr.DataArray, ms2: xr.DataArray, ms_bands: Sequence[str] | str | None
) -> tuple[xr.DataArray, xr.DataArray]:
    """Both MS dates restricted to ``ms_bands``, in that order, when the data names its bands and ``ms_bands``
    asks for fewer of them (a 10-band Sentinel-2 stack fused with its four 10 m bands); else as given.

    The selection is lazy (a Dask-backed input reads only the selected bands). Names are compared in any
    Sentinel-2 spelling (``B2``, ``B02``); with as many bands as the data, ``ms_bands`` keeps its meaning of
    naming the data's bands in order (:func:`resolve_ms_bands` checks it against the data's names).
    """
    if ms_bands is None:
        return ms1, ms2
    wanted = _requested_ms_bands(ms_bands)
    if len(wanted) >= ms1.sizes["band"]:
        return ms1, ms2
    out = []
    for da_, label in ((ms1, "MS(t1)"), (ms2, "MS(t2)")):
        names = band_names(da_)
        if names is None:
            return ms1, ms2  # unnamed bands: resolve_ms_bands explains that ms_bands must list every band
        names = [canonical_ms_name(n) for n in names]
        missing = [b for b in wanted if b not in names]
        if missing:
            raise DcstsfInputError(
                f"ms_bands asks for {', '.join(missing)}, which {input_label(da_, label)} does not hold (its bands: "
                f"{', '.join(names)}); choose among them (CLI --ms-bands)"
            )
        out.append(da_.isel(band=[names.index(b) for b in wanted]))
    log.debug("MS bands %s selected from the %d bands of the MS inputs", ",".join(wanted), ms1.sizes["band"])
    return out[0], out[1]


def observation_model(
    hs: xr.DataArray,
    ms1: xr.DataArray,
    ms2: xr.DataArray,
    *,
    ratio: int,
    ms_grid_gsd_m: float | None,
    hs_sensor: str | Sensor | None,
    ms_sensor: str | Sensor | None,
    ms_bands: Sequence[str] | str | None,
) -> ObservationModel:
    """The observation model of inputs on aligned grids: resolved sensors and bands at ``ratio``."""
    hs_s = resolve_hs_sensor(hs, hs_sensor)
    ms_s, bands = resolve_ms_bands(ms1, ms2, ms_sensor, ms_bands)
    try:
        return ObservationModel.from_sensors(hs_s, ms_s, ms_bands=bands, ratio=ratio, ms_grid_gsd_m=ms_grid_gsd_m)
    except UncoveredBandsError as exc:
        covered = [b for b in bands if b not in exc.bands]
        fix = (f"; fuse with the covered bands only: ms_bands={covered} (CLI --ms-bands {','.join(covered)})"
               if covered and band_names(ms1) is not None else "")
        raise DcstsfInputError(f"cannot build the observation model for these inputs: {exc}{fix}") from exc
    except DcstsfInputError as exc:
        raise DcstsfInputError(f"cannot build the observation model for these inputs: {exc}") from exc


def check_band_counts(hs: xr.DataArray, ms1: xr.DataArray, ms2: xr.DataArray, model: ObservationModel) -> None:
    """An error naming the input whose band count does not match the model's sensors."""
    if hs.sizes["band"] != model.n_hs:
        raise DcstsfInputError(
            f"{input_label(hs, 'HS(t1)')} has {hs.sizes['band']} bands but the HS sensor {model.hs_sensor.name!r} "
            f"has {model.n_hs}; pass the matching hs_sensor"
        )
    for da_, nm in ((ms1, "MS(t1)"), (ms2, "MS(t2)")):
        if da_.sizes["band"] != model.n_ms:
            raise DcstsfInputError(
                f"{input_label(da_, nm)} has {da_.sizes['band']} bands but {model.n_ms} MS bands are modelled "
                f"({', '.join(model.ms_sensor.band_names)}); pass ms_bands matching the file"
            )


def mark_empty_hs_bands(
    model: ObservationModel, hs_fill: np.ndarray, *, label: str
) -> tuple[ObservationModel, str | None]:
    """``model`` with the HS bands that hold no data anywhere in the scene flagged bad, and a note for the
    output's processing record (``None`` when no band was flagged).

    ``hs_fill`` are HS(t1)'s per-band fill values (:func:`dcstsf.scene_stats.scene_fill_values`, NaN for a
    band without data on the engine's subsample); ``label`` names the input in messages. A product may leave
    bands empty (water-vapour bands written as nodata) without flagging them, and a cube of a sensor built
    from its wavelengths has no bad-band list at all. Such a band would mark every pixel as nodata. Flagged
    bad, it is left out of the spectral response and of every nodata decision; the engine writes it as NaN
    (:func:`dcstsf.engine.tile.tile_context`). A warning names the bands.
    """
    empty = ~np.isfinite(np.asarray(hs_fill, dtype=np.float64))
    if empty.all():
        raise DcstsfInputError(f"{label} holds no data: every band is nodata everywhere; check the file")
    good = np.asarray(model.hs_sensor.good, bool)
    newly = empty & good
    if not newly.any():
        return model, None
    ranges = band_runs(model.hs_sensor.band_names, model.hs_sensor.centers_nm, np.flatnonzero(newly))
    sensor = dataclasses.replace(model.hs_sensor, good=good & ~empty, _index={})
    try:  # the tables' coverage rule: every MS band still needs good HS bands under its response
        _sensors.spectral_response_matrix(sensor, model.ms_sensor)
    except DcstsfInputError as exc:
        raise DcstsfInputError(
            f"{label}: HS bands {ranges} hold no data anywhere, and without them {exc}. Leave those MS bands "
            "out (ms_bands=, CLI --ms-bands) or use an HS cube with data in those bands"
        ) from None
    warnings.warn(
        f"{label}: {int(newly.sum())} HS band(s) hold no data anywhere in the scene ({ranges}); they are "
        "treated as bad bands: left out of the fusion and NaN in the output",
        stacklevel=4,  # the public entry (fuse, run_batch) that led here
    )
    note = f"HS bands {ranges} hold no data: flagged bad, NaN in the output"
    return without_hs_bands(model, newly), note


def without_hs_bands(model: ObservationModel, drop: np.ndarray) -> ObservationModel:
    """``model`` with the HS bands ``drop`` (boolean ``(n_hs,)`` or indices) flagged bad and left out of its
    own spectral responses (tabulated or given), each MS band's row summing to 1 again.

    Raises
    ------
    DcstsfInputError
        An MS band would be left with no HS band under its response.
    """
    mask = np.zeros(model.n_hs, bool)
    mask[np.asarray(drop)] = True
    srf = np.asarray(model.srf, dtype=np.float64).copy()
    srf[:, mask] = 0.0
    sums = srf.sum(axis=1)
    if np.any(sums <= 0):
        lost = [model.ms_sensor.band_names[i] for i in np.flatnonzero(sums <= 0)]
        raise DcstsfInputError(
            f"without HS bands {band_runs(model.hs_sensor.band_names, model.hs_sensor.centers_nm, np.flatnonzero(mask))}"
            f" the MS band(s) {', '.join(lost)} have no HS band under their response"
        )
    sensor = dataclasses.replace(model.hs_sensor, good=np.asarray(model.hs_sensor.good, bool) & ~mask, _index={})
    return dataclasses.replace(model, hs_sensor=sensor, srf=(srf / sums[:, None]).astype(np.float32))


def reorder_ms_bands(
    ms1: xr.DataArray, ms2: xr.DataArray, model: ObservationModel, order: Sequence[str]
) -> tuple[xr.DataArray, xr.DataArray, ObservationModel]:
    """Both MS dates and the model with the MS bands in ``order`` (the same band set, another order).

    The arrays are indexed lazily along ``band`` (a Dask-backed input stays lazy), their per-band
    coordinates (``band``, ``wavelength``, ``fwhm``) travel with the bands. The model is the same model with
    its per-MS-band parts permuted: the MS sensor, the spectral responses, the MS blur and, when set, the
    relative blur; the HS side and the grid are unchanged, so a fusion gives the same HS bands. ``order``
    uses Sentinel-2 names in any spelling (``B2`` or ``B02``). Bands already in ``order`` come back as given.

    Raises
    ------
    DcstsfInputError
        ``order`` is not the model's band set, or an MS array's band count differs from the model's.
    """
    names = list(model.ms_sensor.band_names)
    wanted = [canonical_ms_name(str(b)) for b in order]
    if sorted(wanted) != sorted(names):
        raise DcstsfInputError(
            f"cannot put the MS bands {names} in the order {wanted}: not the same bands; the method needs exactly "
            "these bands, so give MS inputs with them (ms_bands=[...], CLI --ms-bands, names the files' bands)"
        )
    for da_, nm in ((ms1, "MS(t1)"), (ms2, "MS(t2)")):
        if da_.sizes["band"] != len(names):
            raise DcstsfInputError(
                f"{input_label(da_, nm)} has {da_.sizes['band']} bands but {len(names)} MS bands are modelled "
                f"({', '.join(names)}); pass ms_bands matching the file (CLI --ms-bands)"
            )
    idx = [names.index(b) for b in wanted]
    if idx == list(range(len(names))):
        return ms1, ms2, model
    return ms1.isel(band=idx), ms2.isel(band=idx), select_ms_bands(model, np.asarray(idx))

"""Vegetation dynamics for synthetic scenes: real leaf-area-index trajectories and canopy spectra.

The LAI comes from a real Sentinel-2 time series (``s2_lai_timeseries/Unevenly_spaced_time_series.nc``
in the shared data folder); canopies are either PROSPECT-D + 4SAIL (PyPI ``prosail``) spectra or a cover
mix (:data:`VEGETATION_MODELS`; :mod:`dcstsf.training.synthetic` says how scenes use them).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from dcstsf import sensors as _sensors
from dcstsf.errors import DcstsfInputError
from dcstsf.sensors import Sensor
from dcstsf.training._common import data_root, need_file
from dcstsf.training.libraries import SpectralLibrary

__all__ = [
    "LAI_GRID",
    "LAI_SERIES_PATH",
    "PROSAIL_NM",
    "VEGETATION_MODELS",
    "LaiChange",
    "cover_fraction",
    "on_1nm",
    "prosail_installed",
    "prosail_table",
    "prosail_to_sensor",
    "sample_lai_change",
    "vegetation_model",
]

#: Real Sentinel-2 LAI time series, relative to the shared data folder.
LAI_SERIES_PATH = "s2_lai_timeseries/Unevenly_spaced_time_series.nc"
#: How vegetated classes get their spectra from LAI (see :mod:`dcstsf.training.synthetic`).
VEGETATION_MODELS: tuple[str, ...] = ("prosail", "cover")
#: LAI values at which PROSAIL canopies are tabulated (per-pixel values are interpolated in between).
LAI_GRID = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
#: PROSAIL spectra are on 400-2500 nm at 1 nm.
PROSAIL_NM = np.arange(400.0, 2501.0, 1.0)


def cover_fraction(lai: np.ndarray | float) -> np.ndarray:
    """Nadir canopy cover fraction ``1 - exp(-0.5 LAI)`` (Beer's law, spherical leaf angles, no clumping)."""
    return 1.0 - np.exp(-0.5 * np.clip(np.asarray(lai, dtype=float), 0.0, None))


@dataclass(frozen=True)
class LaiChange:
    """LAI of one real pixel series at two dates (``t1`` first)."""

    lai_t1: float
    lai_t2: float
    date_t1: str
    date_t2: str
    pixel: tuple[int, int]


@functools.lru_cache(maxsize=2)
def _lai_series(root: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(lai (time, n) with NaN gaps, days since the first date (time,), pixels (n, 2), ISO dates)``."""
    path = need_file(Path(root) / LAI_SERIES_PATH)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        if "LAI" not in ds:
            raise DcstsfInputError(f"{path}: no 'LAI' variable. Use the original time series file")
        lai = np.asarray(ds["LAI"].values, dtype=np.float32)
        time = np.asarray(ds["time"].values).astype("datetime64[D]")
    lai[(lai < 0) | (lai > 15)] = np.nan
    valid = np.isfinite(lai)
    # series that cover most of the record and show a real canopy at some time
    keep = (valid.mean(axis=0) >= 0.4) & (np.nanmax(np.where(valid, lai, 0.0), axis=0) >= 1.5)
    pixels = np.argwhere(keep)
    if pixels.size == 0:
        raise DcstsfInputError(f"{path}: no pixel series with enough valid LAI values. Use the original file")
    days = (time - time[0]).astype(np.int64)
    out = lai[:, keep]
    out.setflags(write=False)
    return out, days, pixels, tuple(str(t) for t in time)


def sample_lai_change(
    rng: np.random.Generator,
    *,
    min_days: int = 10,
    max_days: int = 180,
    root: str | os.PathLike[str] | None = None,
) -> LaiChange:
    """LAI at two cloud-free dates ``min_days``-``max_days`` apart of a random real pixel series."""
    if not 0 <= min_days <= max_days:
        raise DcstsfInputError(f"need 0 <= min_days <= max_days, got {min_days} and {max_days}")
    lai, days, pixels, dates = _lai_series(str(data_root(root)))
    for _ in range(100):
        j = int(rng.integers(lai.shape[1]))
        ok = np.flatnonzero(np.isfinite(lai[:, j]))
        d1 = int(rng.choice(ok))
        gap = days[ok] - days[d1]
        later = ok[(gap >= min_days) & (gap <= max_days)]
        if later.size:
            d2 = int(rng.choice(later))
            return LaiChange(
                lai_t1=float(lai[d1, j]),
                lai_t2=float(lai[d2, j]),
                date_t1=dates[d1],
                date_t2=dates[d2],
                pixel=(int(pixels[j, 0]), int(pixels[j, 1])),
            )
    raise DcstsfInputError(f"no two LAI dates {min_days}-{max_days} days apart were found; widen min_days/max_days")


def prosail_installed() -> bool:
    return importlib.util.find_spec("prosail") is not None


def vegetation_model(vegetation: str) -> str:
    if vegetation == "auto":
        return "prosail" if prosail_installed() else "cover"
    if vegetation not in VEGETATION_MODELS:
        raise DcstsfInputError(
            f"unknown vegetation model {vegetation!r}; use 'auto' or one of {', '.join(VEGETATION_MODELS)}"
        )
    if vegetation == "prosail" and not prosail_installed():
        raise DcstsfInputError(
            "vegetation='prosail' needs the PyPI package prosail: pip install 'dcstsf[train]' "
            "(or pip install prosail==2.0.5), or use vegetation='cover'"
        )
    return vegetation


@functools.lru_cache(maxsize=8)
def prosail_to_sensor(target: Sensor) -> np.ndarray:
    """``(n_bands, 2101)`` matrix from PROSAIL's 1 nm spectra to ``target``'s bands."""
    src = _sensors.from_wavelengths(PROSAIL_NM, 1.0, name="prosail-1nm")
    return _sensors.spectral_resampling_matrix(src, target).astype(np.float32)


def on_1nm(native: SpectralLibrary, index: int) -> np.ndarray:
    """A native library spectrum on PROSAIL's 400-2500 nm grid (good bands only, constant beyond them)."""
    good = native.good
    return np.interp(PROSAIL_NM, native.wavelengths_nm[good], native.spectra[index][good].astype(np.float64))


def prosail_table(
    rng: np.random.Generator, *, soil_1nm: np.ndarray, m: int, to_sensor: np.ndarray, tree: bool, tts: float
) -> np.ndarray:
    """Canopy reflectance ``(m, len(LAI_GRID), n_bands)`` of ``m`` close leaf variants over ``soil_1nm``."""
    import prosail

    leaf = {
        "n": rng.uniform(1.2, 2.2),
        "cab": rng.uniform(20.0, 70.0),
        "car": rng.uniform(4.0, 14.0),
        "cbrown": 0.0 if rng.random() < 0.7 else rng.uniform(0.0, 0.5),
        "cw": rng.uniform(0.005, 0.03),
        "cm": rng.uniform(0.003, 0.012),
    }
    ala = rng.uniform(40.0, 65.0) if tree else rng.uniform(45.0, 75.0)
    hspot = rng.uniform(0.05, 0.3)
    out = np.empty((m, LAI_GRID.size, to_sensor.shape[0]), np.float32)
    for v in range(m):
        # the variants differ in biochemistry by about +-15 %, as leaves of one stand do
        p = {k: (val * rng.uniform(0.85, 1.15) if k != "n" else val * rng.uniform(0.95, 1.05)) for k, val in leaf.items()}
        _, refl, trans = prosail.run_prospect(p["n"], p["cab"], p["car"], p["cbrown"], p["cw"], p["cm"],
                                              prospect_version="D")
        rows = np.stack([
            prosail.run_sail(refl, trans, float(lai), ala, hspot, tts, 0.0, 0.0, typelidf=2, rsoil0=soil_1nm)
            for lai in LAI_GRID
        ])
        out[v] = np.clip(rows, 0.0, 1.0).astype(np.float32) @ to_sensor.T
    return out

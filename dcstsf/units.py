"""Units: how many metres one CRS unit is, and how many nanometres one wavelength unit is."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["NM_PER_WAVELENGTH_UNIT", "metres_per_unit", "nm_per_wavelength_unit"]

#: Nanometres per wavelength unit, by the unit names files and CF-style ``units`` attributes use.
NM_PER_WAVELENGTH_UNIT = {
    **dict.fromkeys(("nanometers", "nanometer", "nanometres", "nanometre", "nm"), 1.0),
    **dict.fromkeys(("micrometers", "micrometer", "micrometres", "micrometre", "microns", "micron", "um",
                     "\u00b5m", "\u03bcm"), 1000.0),
}
#: No optical sensor has a band centre below this (nm), nor one above it in micrometres: it tells the two
#: units apart when the metadata do not say, or say wrong.
_NM_MICROMETRE_BOUNDARY = 100.0


def metres_per_unit(crs: Any) -> float | None:
    """Metres per unit of a projected CRS whose unit is a length, else ``None`` (geographic, engineering
    or unknown CRS). Pixel sizes in metres set the sensors' blur widths, so nothing guesses them."""
    try:
        if not crs.is_projected:
            return None
        unit, factor = crs.linear_units_factor
    except Exception:  # CRS without linear units (engineering, unknown)
        return None
    return float(factor) if str(unit).lower() in ("metre", "meter", "m") or factor == 1.0 else None


def nm_per_wavelength_unit(units: Any, values: np.ndarray, *, source: str) -> float:
    """The factor that takes band wavelengths ``values`` given in ``units`` to nanometres.

    Unknown or missing units are read from the magnitude: values below 100 are micrometres (no optical
    sensor has band centres below 100 nm), larger ones nanometres. Declared units that contradict the
    magnitude (nanometres below 100, micrometres above) are mislabelled: the magnitude wins, with a
    warning naming ``source``, since the alternative is a sensor outside the optical range.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    looks_micrometres = bool(finite.size) and float(np.max(finite)) < _NM_MICROMETRE_BOUNDARY
    magnitude = 1000.0 if looks_micrometres else 1.0
    key = str(units).strip().lower() if units is not None else ""
    declared = NM_PER_WAVELENGTH_UNIT.get(key)
    if declared is None:
        return magnitude
    if declared != magnitude and finite.size:
        warnings.warn(
            f"{source}: wavelengths are declared in {units} but run from {float(np.min(finite)):g} to "
            f"{float(np.max(finite)):g}, which is {'micrometres' if looks_micrometres else 'nanometres'} for an "
            "optical sensor; read as such. Fix the wavelength units in the metadata to silence this",
            stacklevel=3,
        )
    return magnitude

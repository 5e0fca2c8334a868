"""Linear units of a coordinate reference system: how many metres one CRS unit is."""

from __future__ import annotations

from typing import Any

__all__ = ["metres_per_unit"]


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

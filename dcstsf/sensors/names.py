"""Band names: the one home for parsing Sentinel-2 style names (``B2``, ``b02``, ``B8a``)."""

from __future__ import annotations

import re

__all__ = ["canonical_ms_name", "is_generic_band_name", "s2_band_number"]

_S2_NAME = re.compile(r"^B0*(\d{1,2})(A?)$", re.IGNORECASE)
# Names that carry no meaning: plain numbers and ``band_<i>`` as readers invent them.
_GENERIC_NAME = re.compile(r"^(band_?)?\d+$", re.IGNORECASE)


def s2_band_number(name: object) -> str | None:
    """``B02``/``b2`` -> ``"2"``, ``B8a`` -> ``"8A"``; ``None`` when ``name`` is not Sentinel-2 style."""
    m = _S2_NAME.match(str(name).strip())
    return f"{int(m.group(1))}{m.group(2).upper()}" if m else None


def canonical_ms_name(name: object) -> str:
    """``B2``/``b02``/``B8a`` -> ``B02``/``B02``/``B8A``; other names are returned stripped.

    Sentinel-2 pads plain numbers (``B02``) but not the narrow NIR band (``B8A``).
    """
    number = s2_band_number(name)
    if number is None:
        return str(name).strip()
    return f"B{number}" if number.endswith("A") else f"B{int(number):02d}"


def is_generic_band_name(name: object) -> bool:
    """Whether ``name`` is only a number or ``band_<i>`` (no sensor band can be inferred from it)."""
    return bool(_GENERIC_NAME.match(str(name).strip()))

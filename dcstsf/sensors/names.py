"""Band names: the one home for parsing Sentinel-2 style names (``B2``, ``b02``, ``B8a``) and for listing
bands in messages (:func:`band_runs`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["band_runs", "canonical_ms_name", "is_generic_band_name", "s2_band_number"]

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


def band_runs(
    names: Sequence[str], centers_nm: Sequence[float] | np.ndarray | None, idx: Sequence[int] | np.ndarray,
    *, limit: int = 6,
) -> str:
    """``"B073-B079 (1345-1455 nm), B121 (1795 nm)"``: the bands ``idx`` as runs of consecutive bands, named
    by ``names`` and, when known, their centre wavelengths (nm); after ``limit`` runs, ``"and N more bands"``."""
    runs: list[list[int]] = []
    for i in np.asarray(idx, int).tolist():
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = []
    for run in runs[:limit]:
        a, b = run[0], run[-1]
        label = names[a] if a == b else f"{names[a]}-{names[b]}"
        if centers_nm is not None:
            nm = f"{centers_nm[a]:.0f}" if a == b else f"{centers_nm[a]:.0f}-{centers_nm[b]:.0f}"
            label += f" ({nm} nm)"
        parts.append(label)
    rest = sum(len(run) for run in runs[limit:])
    return ", ".join(parts) + (f" and {rest} more band{'s' if rest > 1 else ''}" if rest else "")

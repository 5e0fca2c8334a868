"""Band names: Sentinel-2 spellings, and bands listed in messages as runs of consecutive bands."""

from __future__ import annotations

import numpy as np

from dcstsf.sensors.names import band_runs, canonical_ms_name, is_generic_band_name


def test_sentinel2_spellings() -> None:
    assert [canonical_ms_name(b) for b in ("b2", "B02", "B8a", "B11", " NIR ")] == ["B02", "B02", "B8A", "B11", "NIR"]
    assert is_generic_band_name("band_3") and is_generic_band_name("7") and not is_generic_band_name("B07")


def test_band_runs() -> None:
    names = [f"B{i:03d}" for i in range(1, 31)]
    nm = np.linspace(400.0, 2500.0, 30)
    assert band_runs(names, nm, [3, 4, 5, 9]) == "B004-B006 (617-762 nm), B010 (1052 nm)"
    assert band_runs(names, None, [3, 4, 5, 9]) == "B004-B006, B010"
    # after the limit, the remaining bands are counted, not named
    assert band_runs(names, None, [0, 2, 4, 6, 8], limit=2) == "B001, B003 and 3 more bands"
    assert band_runs(names, None, [0, 2, 4, 5], limit=2) == "B001, B003 and 2 more bands"
    assert band_runs(names, None, [0, 2, 4], limit=2) == "B001, B003 and 1 more band"

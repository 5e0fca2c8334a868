"""Named Sentinel-2 band sets: the MS band subsets DC-STSF ships weights for.

The order is the order of the MS cube's bands (the 10 m bands first), which the shipped weights and the
scene's regression maps follow.
"""

from __future__ import annotations

__all__ = ["SENTINEL2_10M_BANDS", "SENTINEL2_BAND_SETS", "SENTINEL2_DEFAULT_BANDS"]

#: The four 10 m bands.
SENTINEL2_10M_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
#: The 10 m bands, then the six 20 m bands (resampled onto the 10 m grid): the default MS band set.
SENTINEL2_DEFAULT_BANDS: tuple[str, ...] = (*SENTINEL2_10M_BANDS, "B05", "B06", "B07", "B8A", "B11", "B12")
#: The band sets by their size, as the experiments' ``--bands 10|4`` name them.
SENTINEL2_BAND_SETS: dict[str, tuple[str, ...]] = {"10": SENTINEL2_DEFAULT_BANDS, "4": SENTINEL2_10M_BANDS}

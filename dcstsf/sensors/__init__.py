"""Sensor models as data: band tables, spectral responses, GSD and MTF.

Every number comes from a CSV/JSON file in ``dcstsf/sensors/data`` whose header names its source
(rebuilt from ``shared/data/sensor_tables`` by ``experiments/build_sensor_tables.py``).

Examples
--------
>>> from dcstsf import sensors
>>> ahsi = sensors.get("zy1-02d-ahsi")
>>> s2 = sensors.get("sentinel-2a")
>>> R = sensors.spectral_response_matrix(ahsi, s2, ["B02", "B03", "B04", "B08"])
>>> R.shape
(4, 166)
"""

from dcstsf.sensors.band_sets import SENTINEL2_10M_BANDS, SENTINEL2_BAND_SETS, SENTINEL2_DEFAULT_BANDS
from dcstsf.sensors.names import canonical_ms_name, is_generic_band_name, s2_band_number
from dcstsf.sensors.sensor import (
    SENSOR_NAMES,
    Sensor,
    available,
    from_envi_header,
    from_wavelengths,
    get,
    register,
    resampling_coverage,
    spectral_resampling_matrix,
    spectral_response_matrix,
)

__all__ = (
    "SENSOR_NAMES",
    "SENTINEL2_10M_BANDS",
    "SENTINEL2_BAND_SETS",
    "SENTINEL2_DEFAULT_BANDS",
    "Sensor",
    "available",
    "canonical_ms_name",
    "from_envi_header",
    "from_wavelengths",
    "get",
    "is_generic_band_name",
    "register",
    "resampling_coverage",
    "s2_band_number",
    "spectral_resampling_matrix",
    "spectral_response_matrix",
)

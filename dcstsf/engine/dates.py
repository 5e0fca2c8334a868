"""Two MS dates from two sensors: MS(t2) brought onto MS(t1)'s spectral responses.

Sentinel-2A, 2B and 2C carry the same bands with slightly different spectral responses, and a pair of
dates is usually taken by two of them. The observation model has one set of responses (MS(t1)'s), so
MS(t2) is adjusted band by band to what MS(t1)'s sensor would have recorded: a **spectral band
adjustment** (gain and offset per band, the approach of harmonised Landsat/Sentinel-2 products), fitted
here on the scene's own HS(t1) spectra seen through both sensors' responses rather than on a fixed
library, so it suits the scene's materials.

The MS sensor of each date comes from the caller (``ms_sensor=``, ``ms_sensor_t2=``; CLI ``--ms-sensor``,
``--ms-sensor-t2``) or from the inputs' ``sensor`` attribute, which the product readers set from the
spacecraft named in the product's metadata.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import xarray as xr

from dcstsf import sensors as _sensors
from dcstsf.engine.inputs import FusionInputs
from dcstsf.engine.sources import input_label
from dcstsf.errors import DcstsfInputError
from dcstsf.sensors import Sensor

__all__ = ["BandAdjustment", "adjust_ms_t2", "declared_sensor"]

log = logging.getLogger(__name__)

# HS(t1) pixels the adjustment is fitted on (a regular stride over the scene)
_MAX_SAMPLES = 20_000


def declared_sensor(da: xr.DataArray) -> str | None:
    """The registered sensor named by the array's ``sensor`` attribute (set by the product readers)."""
    name = da.attrs.get("sensor")
    if isinstance(name, str) and name in _sensors.available():
        return name
    return None


@dataclasses.dataclass(frozen=True)
class BandAdjustment:
    """``MS(t1)-like = gain * MS(t2) + offset`` per band, and the fit's residual (reflectance RMS)."""

    from_sensor: str
    to_sensor: str
    bands: tuple[str, ...]
    gain: np.ndarray
    offset: np.ndarray
    rms: np.ndarray

    def describe(self) -> str:
        parts = ", ".join(f"{b} x{g:.4f}{o:+.4f}" for b, g, o in zip(self.bands, self.gain, self.offset))
        return (f"MS(t2) recorded by {self.from_sensor}, adjusted to the {self.to_sensor} responses of MS(t1) "
                f"(band adjustment fitted on HS(t1) spectra: {parts}; residual RMS <= {float(self.rms.max()):.5f})")


def _hs_samples(hs: xr.DataArray) -> np.ndarray:
    """HS(t1) pixels ``(n, n_hs)`` on a regular stride, NaN where the data are nodata."""
    _, h, w = hs.shape
    stride = max(1, int(math.ceil(math.sqrt(h * w / _MAX_SAMPLES))))
    sub = hs.isel(y=slice(stride // 2, None, stride), x=slice(stride // 2, None, stride))
    values = np.asarray(sub.values, dtype=np.float64)
    return values.reshape(values.shape[0], -1).T


def fit_band_adjustment(
    spectra: np.ndarray, *, hs_sensor: Sensor, from_sensor: Sensor, to_sensor: Sensor
) -> BandAdjustment:
    """The per-band gain and offset taking ``from_sensor``'s bands to ``to_sensor``'s over ``spectra``.

    ``spectra`` ``(n, n_hs)`` are HS reflectance spectra; both sensors see them through their responses
    (:func:`dcstsf.sensors.spectral_response_matrix`). Pixels with NaN in a band either response uses are left
    out. With fewer than 10 usable pixels the adjustment is the identity.
    """
    r_from = _sensors.spectral_response_matrix(hs_sensor, from_sensor)
    r_to = _sensors.spectral_response_matrix(hs_sensor, to_sensor)
    used = (np.abs(r_from).sum(axis=0) > 0) | (np.abs(r_to).sum(axis=0) > 0)
    x = spectra[:, used]
    x = x[np.isfinite(x).all(axis=1)]
    n_ms = r_to.shape[0]
    gain, offset, rms = np.ones(n_ms), np.zeros(n_ms), np.zeros(n_ms)
    if x.shape[0] >= 10:
        a, b = x @ r_to[:, used].T, x @ r_from[:, used].T
        for k in range(n_ms):
            design = np.stack([b[:, k], np.ones(len(b))], axis=1)
            (g, o), *_ = np.linalg.lstsq(design, a[:, k], rcond=None)
            gain[k], offset[k] = g, o
            rms[k] = float(np.sqrt(np.mean((g * b[:, k] + o - a[:, k]) ** 2)))
    return BandAdjustment(from_sensor.name, to_sensor.name, tuple(to_sensor.band_names), gain, offset, rms)


def adjust_ms_t2(inputs: FusionInputs, *, ms_sensor_t2: str | Sensor | None = None) -> FusionInputs:
    """``inputs`` with MS(t2) adjusted to MS(t1)'s responses when the dates come from different sensors.

    The MS(t2) sensor is ``ms_sensor_t2``, else MS(t2)'s ``sensor`` attribute; when it is MS(t1)'s (or
    unknown) the inputs come back unchanged. The adjustment is lazy (a Dask-backed MS(t2) stays lazy) and
    recorded in ``notes``.

    Raises
    ------
    DcstsfInputError
        The MS(t2) sensor lacks one of the modelled bands.
    """
    given = ms_sensor_t2 if ms_sensor_t2 is not None else declared_sensor(inputs.ms_t2)
    model = inputs.model
    if given is None:
        return inputs
    t2_full = _sensors.get(given)
    if t2_full.name == model.ms_sensor.name:
        return inputs
    bands = list(model.ms_sensor.band_names)
    missing = [b for b in bands if b not in t2_full.band_names]
    if missing:
        raise DcstsfInputError(
            f"{input_label(inputs.ms_t2, 'MS(t2)')}: its sensor {t2_full.name!r} has no band(s) {missing}; give "
            "MS(t2) the same bands as MS(t1), or name its sensor (ms_sensor_t2=..., CLI --ms-sensor-t2)"
        )
    adjustment = fit_band_adjustment(
        _hs_samples(inputs.hs_t1), hs_sensor=model.hs_sensor, from_sensor=t2_full.select(bands),
        to_sensor=model.ms_sensor,
    )
    gain = xr.DataArray(adjustment.gain.astype(np.float32), dims="band")
    offset = xr.DataArray(adjustment.offset.astype(np.float32), dims="band")
    ms2 = (inputs.ms_t2 * gain + offset).astype(np.float32)
    ms2.attrs = dict(inputs.ms_t2.attrs)
    ms2.encoding = dict(inputs.ms_t2.encoding)
    if inputs.ms_t2.rio.crs is not None:
        ms2 = ms2.rio.write_crs(inputs.ms_t2.rio.crs)
    note = adjustment.describe()
    log.info(note)
    return dataclasses.replace(inputs, ms_t2=ms2, notes=(*inputs.notes, note))

"""Simulated cases shared by the engine tests: a 24-band HS sensor seen by six Sentinel-2 bands at ratio 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.ndimage import gaussian_filter

from dcstsf import sensors
from dcstsf.errors import WeightsError
from dcstsf.methods import Method, get_method
from dcstsf.methods.bicubic import Bicubic
from dcstsf.operators import ObservationModel, blur
from dcstsf.simulate import simulate_case

__all__ = [
    "HS_SENSOR",
    "MS_BANDS",
    "N_HS",
    "RATIO",
    "RES",
    "WL",
    "X0",
    "Y0",
    "WideBlur",
    "batch_args",
    "engine_model",
    "instance_or_skip",
    "make_case",
]

MS_BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
N_HS = 24
WL = np.linspace(420.0, 2400.0, N_HS)
HS_SENSOR = sensors.from_wavelengths(WL, name="test-hs")
RATIO = 3
X0, Y0, RES = 500_000.0, 4_000_000.0, 10.0


def engine_model() -> ObservationModel:
    """The test sensors at ratio 3."""
    return ObservationModel.from_sensors(HS_SENSOR, "sentinel-2a", ms_bands=MS_BANDS, ratio=RATIO)


def make_case(hc: int = 30, wc: int = 37, *, seed: int = 0, crs: str | None = "EPSG:32633") -> Any:
    """A simulated case: smooth abundances x random spectra on a real-looking UTM grid."""
    rng = np.random.default_rng(seed)
    h, w = hc * RATIO, wc * RATIO
    ab = np.stack([gaussian_filter(rng.random((h, w)), 2.0) for _ in range(4)])
    ab += 0.05 * rng.random(ab.shape)
    spec = 0.1 + 0.5 * rng.random((4, N_HS))
    cube = np.einsum("kyx,kb->byx", ab, spec)
    cube = (0.6 * cube / cube.max()).astype(np.float32)
    truth = xr.DataArray(
        cube,
        dims=("band", "y", "x"),
        coords={
            "band": list(HS_SENSOR.band_names),
            "wavelength": ("band", WL),
            "y": Y0 - RES * (np.arange(h) + 0.5),
            "x": X0 + RES * (np.arange(w) + 0.5),
        },
    )
    if crs is not None:
        truth = truth.rio.write_crs(crs)
    return simulate_case(truth, model=engine_model(), change="mixed", seed=seed)


def instance_or_skip(name: str, model: ObservationModel) -> Method:
    """The registered method ``name``, or a skip when it has no weights for the test band set."""
    m = get_method(name)
    try:
        m.halo(model)
    except WeightsError as exc:
        pytest.skip(f"method {name!r} has no weights for the test band set: {exc}")
    return m


def batch_args(files: dict[str, Path]) -> tuple[Path, Path, Path]:
    """The three GeoTIFF inputs of the ``files`` fixture, in ``run_batch`` order."""
    return files["hs"], files["ms1"], files["ms2"]


class WideBlur(Bicubic):
    """Bicubic then a wide blur, declaring too small a halo (a user method with a wrong halo)."""

    name = "wide-blur-test"

    def halo(self, model: ObservationModel) -> int:
        return model.ratio

    def apply(self, hs_t1, ms_t1, ms_t2, *, model, fitted):  # type: ignore[no-untyped-def,override]
        up = super().apply(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted)
        with torch.no_grad():
            return blur(torch.from_numpy(up), 5.0).numpy()

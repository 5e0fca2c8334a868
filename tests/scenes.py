"""Small synthetic scenes shared by several test modules."""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from scipy.ndimage import gaussian_filter

__all__ = ["synthetic_scene"]


def synthetic_scene(ny: int = 36, nx: int = 36, nb: int = 60, seed: int = 0) -> xr.DataArray:
    """A georeferenced reflectance cube: smooth abundance fields of vegetation, soil and water spectra."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2450.0, nb)
    veg = 0.05 + 0.4 / (1 + np.exp(-(wl - 715) / 15)) * np.exp(-(((wl - 1450) / 900) ** 2)) + 0.05 * np.exp(-(((wl - 550) / 30) ** 2))
    soil = 0.1 + 0.25 * (wl - 400) / 2050
    water = 0.06 * np.exp(-(wl - 400) / 250) + 0.005
    fields = np.stack([gaussian_filter(rng.standard_normal((ny, nx)), 3) for _ in range(3)])
    ab = np.exp(3 * fields / fields.std())
    ab /= ab.sum(axis=0, keepdims=True)
    cube = np.einsum("ek,eyx->kyx", np.stack([veg, soil, water]), ab).astype(np.float32)
    t = Affine(30.0, 0.0, 366975.0, 0.0, -30.0, 5808045.0)
    da = xr.DataArray(
        cube,
        dims=("band", "y", "x"),
        coords={
            "band": [f"b{i + 1}" for i in range(nb)],
            "wavelength": ("band", wl),
            "fwhm": ("band", np.full(nb, 12.0)),
            "y": t.f + t.e * (np.arange(ny) + 0.5),
            "x": t.c + t.a * (np.arange(nx) + 0.5),
        },
    )
    return da.rio.write_crs("EPSG:32633").rio.write_transform(t)

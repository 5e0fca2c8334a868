"""Co-registration cases built from the bundled real EnMAP sample with a known displacement of the HS.

The bundled EnMAP Potsdam block (128 x 64 pixels, real 30 m texture) is resampled to the AHSI bands and
mirrored into a larger canvas; the case's fine truth ``X`` is its central 192 x 192 pixels (64 x 64 HS
pixels at ratio 3, the size the PSF-diagnosis tests use). The MS images observe ``X`` itself; the HS cube
observes the canvas read at displaced positions, so that HS pixel ``q`` (coarse) sees what the nominal
HS would see at ``q + d(q)``, with ``d`` the simulated displacement (coarse pixels):

    ``X_d(y, x) = canvas(y + r d_y(q(y, x)), x + r d_x(q(y, x)))``,  ``HS = D B_hs X_d + noise``,

read by cubic-spline interpolation from the canvas, which extends 24 fine pixels beyond the case on each
side, so displaced reads up to 8 coarse pixels (6 for constant fields) stay on real (mirrored) data. A
constant displacement is made exactly as the operators model one instead: whole fine pixels by reading the
canvas further on, the fraction by the displaced PSF (``ObservationModel.hs_shift``). The mirroring repeats
the block every 128 fine pixels, far beyond the search ranges used.

The true field of the co-registration's convention (``corrected(p) = HS(p - u(p))``) is ``u(p) = d(p - u(p))``,
solved by fixed-point iteration. Noise: the simulator's defaults (HS 35 dB, MS 40 dB).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import torch
import xarray as xr
from affine import Affine
from scipy import ndimage

from dcstsf import datasets
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.simulate import apply_change, resample_to_sensor

__all__ = ["CASE_SIZE", "MARGIN", "ShiftCase", "as_dataarray", "constant", "make_case", "true_field"]

#: Fine pixels of the case (64 coarse pixels at ratio 3).
CASE_SIZE = 192
#: Fine pixels of canvas beyond the case on each side.
MARGIN = 24
#: Top-left corner of the cases' grids (UTM 33N, EPSG:32633) and the fine pixel size, metres.
ORIGIN = (366975.0, 5808045.0)
FINE_GSD = 10.0
#: The simulator's default noise levels, dB.
HS_SNR_DB, MS_SNR_DB = 35.0, 40.0

Field = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@functools.lru_cache(maxsize=2)
def _canvas(hs_sensor_name: str) -> np.ndarray:
    """The bundled block resampled to the HS sensor, mirrored to ``CASE_SIZE + 2 MARGIN`` square, float32."""
    try:
        block = datasets.load_bundled_sample()
    except DcstsfInputError as err:  # an installation without the sample
        pytest.skip(f"no bundled EnMAP sample: {err}")
    cube = resample_to_sensor(block, hs_sensor_name)
    x = np.clip(np.nan_to_num(cube.values.astype(np.float32)), 0.0, 1.0)
    n = CASE_SIZE + 2 * MARGIN
    pad = ((0, 0), (MARGIN, n - MARGIN - x.shape[1]), (MARGIN, n - MARGIN - x.shape[2]))
    return np.pad(x, pad, mode="symmetric")


def _noisy(rng: np.random.Generator, cube: np.ndarray, snr_db: float) -> np.ndarray:
    std = np.abs(cube.mean(axis=(1, 2), keepdims=True)) / 10 ** (snr_db / 20)
    return (cube + rng.standard_normal(cube.shape) * std).astype(np.float32)


def true_field(d: Field, shape: tuple[int, int], iterations: int = 30) -> np.ndarray:
    """``(2, H, W)``: ``u(p) = d(p - u(p))`` on the coarse grid (the field the co-registration estimates)."""
    rows, cols = np.meshgrid(np.arange(shape[0], dtype=float), np.arange(shape[1], dtype=float), indexing="ij")
    uy, ux = np.zeros(shape), np.zeros(shape)
    for _ in range(iterations):
        uy, ux = d(rows - uy, cols - ux)
        uy, ux = np.broadcast_to(uy, shape).copy(), np.broadcast_to(ux, shape).copy()
    return np.stack([uy, ux])


@dataclass(frozen=True)
class ShiftCase:
    """A case: displaced HS, unshifted HS, both MS dates, the truths and the true field ``(2, H, W)``."""

    hs: np.ndarray
    hs_unshifted: np.ndarray
    ms_t1: np.ndarray
    ms_t2: np.ndarray
    truth_t1: np.ndarray
    truth_t2: np.ndarray
    field: np.ndarray


def _displaced_globally(model: ObservationModel, canvas: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """The HS of the case displaced by a constant ``shift`` (fine pixels), exactly as the operators model it:
    the whole fine pixels by reading the canvas further on, the fraction by the displaced PSF
    (``ObservationModel.hs_shift``), on a crop two HS pixels wider on each side than the blur reaches, so
    no replicated edge enters the case."""
    r = model.ratio
    iy, ix = int(np.floor(shift[0])), int(np.floor(shift[1]))
    pad = 2 * r
    crop = canvas[:, MARGIN + iy - pad : MARGIN + iy + CASE_SIZE + pad, MARGIN + ix - pad : MARGIN + ix + CASE_SIZE + pad]
    moved = dataclasses.replace(model, hs_shift=(shift[0] - iy, shift[1] - ix))
    hs = moved.degrade_hs(torch.from_numpy(np.ascontiguousarray(crop))).numpy()
    return hs[:, 2:-2, 2:-2]


def make_case(model: ObservationModel, d: Field, *, seed: int = 0) -> ShiftCase:
    """A case whose HS is displaced by ``d`` (coarse pixels, a function of coarse rows and cols)."""
    r = model.ratio
    canvas = _canvas(model.hs_sensor.name)
    truth = np.ascontiguousarray(canvas[:, MARGIN : MARGIN + CASE_SIZE, MARGIN : MARGIN + CASE_SIZE])
    fy, fx = np.meshgrid(np.arange(CASE_SIZE, dtype=float), np.arange(CASE_SIZE, dtype=float), indexing="ij")
    # the coarse pixel-index position of each fine pixel centre
    dy, dx = np.broadcast_arrays(*d((fy + 0.5) / r - 0.5, (fx + 0.5) / r - 0.5))
    x2, _ = apply_change(truth, wavelengths=model.hs_sensor.centers_nm, change="phenology", seed=seed)
    rng = np.random.default_rng(seed + 101)
    with torch.no_grad():
        if np.ptp(dy) == 0 and np.ptp(dx) == 0:
            hs = _displaced_globally(model, canvas, (r * float(dy.flat[0]), r * float(dx.flat[0])))
        else:
            coords = np.stack([MARGIN + fy + r * dy, MARGIN + fx + r * dx])
            displaced = np.stack([ndimage.map_coordinates(band, coords, order=3, mode="mirror") for band in canvas])
            hs = model.degrade_hs(torch.from_numpy(displaced.astype(np.float32))).numpy()
        hs0 = model.degrade_hs(torch.from_numpy(truth)).numpy()
        ms1 = model.degrade_ms(torch.from_numpy(truth)).numpy()
        ms2 = model.degrade_ms(torch.from_numpy(np.asarray(x2, dtype=np.float32))).numpy()
    shape = (CASE_SIZE // r, CASE_SIZE // r)
    return ShiftCase(
        hs=_noisy(rng, hs, HS_SNR_DB),
        hs_unshifted=_noisy(rng, hs0, HS_SNR_DB),
        ms_t1=_noisy(rng, ms1, MS_SNR_DB),
        ms_t2=_noisy(rng, ms2, MS_SNR_DB),
        truth_t1=truth,
        truth_t2=np.asarray(x2, dtype=np.float32),
        field=true_field(d, shape),
    )


def constant(dy: float, dx: float) -> Field:
    """A global displacement ``(dy, dx)`` coarse pixels."""
    return lambda r, c: (np.full(np.shape(r), float(dy)), np.full(np.shape(c), float(dx)))


def as_dataarray(cube: np.ndarray, *, pixel: float, offset: tuple[int, int] = (0, 0)) -> xr.DataArray:
    """``cube`` on a north-up grid of ``pixel`` metres whose first pixel is ``offset`` pixels from :data:`ORIGIN`."""
    t = Affine(pixel, 0.0, ORIGIN[0] + offset[1] * pixel, 0.0, -pixel, ORIGIN[1] - offset[0] * pixel)
    nb, h, w = cube.shape
    da = xr.DataArray(
        cube,
        dims=("band", "y", "x"),
        coords={"band": np.arange(nb), "y": t.f + t.e * (np.arange(h) + 0.5), "x": t.c + t.a * (np.arange(w) + 0.5)},
        attrs={"title": "co-registration test cube"},
    )
    return da.rio.write_crs("EPSG:32633").rio.write_transform(t)

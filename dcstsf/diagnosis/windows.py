"""Contiguous windows of a scene, read once for the scene diagnosis.

The estimators of :mod:`dcstsf.diagnosis` fit a blur and a shift, which needs whole neighbourhoods of
pixels rather than scattered samples. A few windows spread over the scene give that at a bounded cost:
only the chunks under the windows are read, whatever the scene size. Windows are chosen among a regular
grid of candidates: those without nodata, the most textured first (a flat window says nothing about a
blur).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf._arrays import is_dask
from dcstsf.operators import ObservationModel

__all__ = ["MIN_SIZE", "SceneWindows", "WindowOptions", "scene_windows", "stack_pixels"]

#: Smallest window side (coarse pixels) tried when larger windows all hold nodata.
MIN_SIZE = 12
#: Most candidate positions per axis at the smaller sizes.
MAX_CANDIDATES = 8


@dataclass(frozen=True)
class WindowOptions:
    """How many windows to read, and how large.

    Parameters
    ----------
    size
        Window side in coarse (HS) pixels; smaller scenes give one window of their own size.
    count
        Windows kept (at most).
    candidates
        Candidate positions per axis (a ``candidates x candidates`` grid over the scene).
    """

    size: int = 64
    count: int = 4
    candidates: int = 3


@dataclass(frozen=True)
class SceneWindows:
    """Matching windows of the three inputs, float64 NumPy, without nodata.

    ``hs[k]`` is ``(n_hs, h, w)`` on the coarse grid, ``ms1[k]``/``ms2[k]`` ``(n_ms, h*r, w*r)`` on the fine
    grid over the same area; ``origins[k]`` is the window's first coarse ``(row, col)`` in the scene. Bad HS
    bands (whose spectral response is zero) hold 0 where the data had nodata.
    """

    hs: tuple[np.ndarray, ...]
    ms1: tuple[np.ndarray, ...]
    ms2: tuple[np.ndarray, ...]
    origins: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.hs)

    @property
    def n_pixels(self) -> int:
        """Coarse pixels in all windows."""
        return int(sum(h.shape[1] * h.shape[2] for h in self.hs))


def _positions(n: int, size: int, count: int) -> list[int]:
    """``count`` window starts spread evenly over an axis of ``n`` coarse pixels (one when it fits once)."""
    if n <= size:
        return [0]
    return sorted({int(round(v)) for v in np.linspace(0, n - size, count)})


def _texture(ms: np.ndarray) -> float:
    """Mean absolute gradient of an MS window relative to its spread: how much a blur would show."""
    grad = np.abs(np.diff(ms, axis=-1)).mean() + np.abs(np.diff(ms, axis=-2)).mean()
    return float(grad / (np.std(ms) + 1e-12))


def _read(
    hs_t1: Any, ms_t1: Any, ms_t2: Any, starts: list[tuple[int, int]], size: tuple[int, int], r: int
) -> list[tuple[Any, Any, Any]]:
    """The three inputs' windows at ``starts`` (coarse corners) of ``size`` coarse pixels, as NumPy."""
    sy, sx = size
    pieces = [
        (
            hs_t1[:, y : y + sy, x : x + sx],
            ms_t1[:, y * r : (y + sy) * r, x * r : (x + sx) * r],
            ms_t2[:, y * r : (y + sy) * r, x * r : (x + sx) * r],
        )
        for y, x in starts
    ]
    if any(is_dask(a) for a in (hs_t1, ms_t1, ms_t2)):
        import dask

        pieces = list(dask.compute(*pieces))
    return pieces


def scene_windows(
    hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel, options: WindowOptions = WindowOptions()
) -> SceneWindows:
    """Read the diagnosis windows of a scene (NumPy or Dask arrays; NaN and +/-Inf are nodata).

    Windows of ``options.size`` coarse pixels are tried first; when none of them is free of nodata (a
    fill frame, clouds), windows of half and a quarter of that size on a denser grid (down to
    :data:`MIN_SIZE`). Returns an empty :class:`SceneWindows` when no window is free of nodata.
    """
    r = model.ratio
    _, hc, wc = hs_t1.shape
    good = np.asarray(model.hs_sensor.good, bool)
    size = options.size
    kept: list[tuple[float, tuple[int, int], np.ndarray, np.ndarray, np.ndarray]] = []
    while size >= MIN_SIZE or not kept and size == options.size:
        sy, sx = min(size, hc), min(size, wc)
        per_y = min(MAX_CANDIDATES, max(options.candidates, math.ceil(hc / sy)))
        per_x = min(MAX_CANDIDATES, max(options.candidates, math.ceil(wc / sx)))
        starts = [(y, x) for y in _positions(hc, sy, per_y) for x in _positions(wc, sx, per_x)]
        for (y, x), (hs, m1, m2) in zip(starts, _read(hs_t1, ms_t1, ms_t2, starts, (sy, sx), r), strict=True):
            hs = np.asarray(hs, np.float64)
            m1, m2 = np.asarray(m1, np.float64), np.asarray(m2, np.float64)
            if not (np.isfinite(hs[good]).all() and np.isfinite(m1).all() and np.isfinite(m2).all()):
                continue
            hs = np.where(np.isfinite(hs), hs, 0.0)
            kept.append((_texture(m1), (y, x), hs, m1, m2))
        if kept or sy < size and sx < size:
            break
        size //= 2
    kept.sort(key=lambda item: -item[0])
    kept = sorted(kept[: options.count], key=lambda item: item[1])
    return SceneWindows(
        hs=tuple(k[2] for k in kept),
        ms1=tuple(k[3] for k in kept),
        ms2=tuple(k[4] for k in kept),
        origins=tuple(k[1] for k in kept),
    )


def stack_pixels(windows: Sequence[np.ndarray]) -> np.ndarray:
    """``(n_bands, n_pixels)`` of a list of ``(n_bands, h, w)`` windows."""
    return np.concatenate([w.reshape(w.shape[0], -1) for w in windows], axis=1)

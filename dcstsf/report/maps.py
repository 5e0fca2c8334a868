"""Display-size maps and decimated samples, filled tile by tile during a streaming pass.

A report's maps are shown with the longer side at most a few hundred pixels. :class:`DisplayMap` keeps,
per display cell of ``step x step`` image pixels, the sum and the count of the finite values the tiles
gave (the cell's NaN-mean is :func:`dcstsf.report.display.reduce_map` of the whole map); a
:class:`Lattice` keeps the values at every ``step``-th row and column (``cube[:, ::step, ::step]``, what
the quicklooks show). Both take a tile's part of the image and never need the image whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BlockPart", "DisplayMap", "Lattice", "LatticePart", "block_part", "display_size", "lattice_part"]


def display_size(n: int, step: int) -> int:
    """Display cells along an axis of ``n`` pixels."""
    return -(-n // step)


@dataclass(frozen=True)
class BlockPart:
    """Sums and counts of finite values per display cell of one tile: ``(k, rows, cols)`` from cell ``(r0, c0)``."""

    r0: int
    c0: int
    sums: np.ndarray
    counts: np.ndarray


def block_part(values: np.ndarray, origin: tuple[int, int], step: int) -> BlockPart:
    """Per-cell sums and counts of ``values`` (``(k, h, w)`` or ``(h, w)``), whose first pixel is image pixel
    ``origin``, over the display cells of ``step x step`` image pixels they touch."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 2:
        v = v[None]
    k, h, w = v.shape
    y0, x0 = origin
    oy, ox = y0 % step, x0 % step
    hp, wp = -(-(oy + h) // step) * step, -(-(ox + w) // step) * step
    pad = np.full((k, hp, wp), np.nan)
    pad[:, oy:oy + h, ox:ox + w] = v
    blocks = pad.reshape(k, hp // step, step, wp // step, step)
    finite = np.isfinite(blocks)
    sums = np.where(finite, blocks, 0.0).sum(axis=(2, 4))
    return BlockPart(y0 // step, x0 // step, sums, finite.sum(axis=(2, 4)))


class DisplayMap:
    """Per display cell: the sum and count of finite values of ``k`` maps of an ``height x width`` image."""

    def __init__(self, height: int, width: int, step: int, k: int = 1) -> None:
        self.step = step
        shape = (k, display_size(height, step), display_size(width, step))
        self.sums = np.zeros(shape)
        self.counts = np.zeros(shape, dtype=np.int64)

    def add(self, part: BlockPart) -> None:
        """Add one tile's sums and counts."""
        _, nr, nc = part.sums.shape
        self.sums[:, part.r0:part.r0 + nr, part.c0:part.c0 + nc] += part.sums
        self.counts[:, part.r0:part.r0 + nr, part.c0:part.c0 + nc] += part.counts

    def mean(self) -> np.ndarray:
        """``(k, rows, cols)`` means per cell, NaN where a cell had no finite value."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)


@dataclass(frozen=True)
class LatticePart:
    """One tile's lattice values ``(k, rows, cols)`` from lattice cell ``(r0, c0)``."""

    r0: int
    c0: int
    values: np.ndarray


def lattice_part(
    window: np.ndarray, bands: list[int], core: tuple[int, int, int, int], origin: tuple[int, int], step: int
) -> LatticePart:
    """The values of ``bands`` of a window (first pixel at image pixel ``origin``) at the lattice points
    (multiples of ``step``) inside ``core`` (image pixels ``(y0, y1, x0, x1)``)."""
    y0, y1, x0, x1 = core
    ly, lx = -(-y0 // step) * step, -(-x0 // step) * step
    vals = np.asarray(window[bands, ly - origin[0]:y1 - origin[0]:step, lx - origin[1]:x1 - origin[1]:step],
                      dtype=np.float64)
    return LatticePart(ly // step, lx // step, vals)


class Lattice:
    """``k`` bands of an image at every ``step``-th row and column, filled tile by tile (NaN until filled)."""

    def __init__(self, height: int, width: int, step: int, k: int) -> None:
        self.values = np.full((k, display_size(height, step), display_size(width, step)), np.nan)

    def add(self, part: LatticePart) -> None:
        """Place one tile's lattice values."""
        _, nr, nc = part.values.shape
        self.values[:, part.r0:part.r0 + nr, part.c0:part.c0 + nc] = part.values

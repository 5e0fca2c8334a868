"""Spatial structure for synthetic scenes: class maps with the EnMAP Potsdam land-cover map's structure.

Only four blocks of the map (``enmap_potsdam/landcover/enmap_landcover_unstyled.tif`` in the shared data
folder, 30 m) are labelled; :func:`landcover_classes` builds a class map of any size as a mosaic of them
(see :mod:`dcstsf.training.synthetic` for how scenes use it). The legend is :data:`LANDCOVER_CLASSES`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from dcstsf.errors import DcstsfInputError
from dcstsf.training._common import data_root, need_file, smooth_field

__all__ = ["LANDCOVER_CLASSES", "LANDCOVER_MAP_PATH", "LandCoverClass", "landcover_classes"]

#: Land-cover map of the EnMAP Potsdam scene, relative to the shared data folder.
LANDCOVER_MAP_PATH = "enmap_potsdam/landcover/enmap_landcover_unstyled.tif"



@dataclass(frozen=True)
class LandCoverClass:
    """How a land-cover class takes its materials from a library.

    Parameters
    ----------
    name
        Class name.
    covers
        Cover types to draw the class's endmembers from, in order of preference; the first one the library
        has is used (for a vegetated class: the dense-canopy end of the ``"cover"`` model).
    vegetated
        Whether the class is vegetation driven by LAI.
    background
        Cover types of the background under a vegetated canopy (soil, litter or rock), in order of preference.
    """

    name: str
    covers: tuple[str, ...]
    vegetated: bool = False
    background: tuple[str, ...] = ()


#: The Potsdam land-cover legend and the cover types each class draws from.
LANDCOVER_CLASSES: dict[int, LandCoverClass] = {
    1: LandCoverClass("roof", ("roof", "built", "pavement", "mineral")),
    2: LandCoverClass("pavement", ("pavement", "built", "roof", "mineral")),
    3: LandCoverClass("low vegetation", ("vegetation", "tree"), vegetated=True, background=("soil", "mineral", "npv")),
    4: LandCoverClass("tree", ("tree", "vegetation"), vegetated=True, background=("npv", "soil", "mineral")),
    5: LandCoverClass("soil", ("soil", "mineral", "npv")),
    6: LandCoverClass("water", ("water",)),
}


@functools.lru_cache(maxsize=4)
def _landcover_blocks(root: str) -> tuple[np.ndarray, ...]:
    """The labelled blocks of the land-cover map, each with its unlabelled pixels given the nearest label."""
    import rasterio

    path = need_file(Path(root) / LANDCOVER_MAP_PATH)
    with rasterio.open(path) as src:
        labels = np.nan_to_num(src.read(1)).astype(np.int32)
    # the labelled areas are a few rectangles with scattered unlabelled pixels inside
    region, n = ndimage.label(ndimage.binary_closing(labels > 0, iterations=2))
    blocks = []
    for sl in ndimage.find_objects(region):
        block = labels[sl]
        if min(block.shape) < 16 or (block > 0).mean() < 0.5:
            continue
        _, (iy, ix) = ndimage.distance_transform_edt(block == 0, return_indices=True)
        blocks.append(block[iy, ix])
    if not blocks:
        raise DcstsfInputError(f"{path}: no labelled block of at least 16 x 16 pixels. Use the original map")
    for b in blocks:
        b.setflags(write=False)
    return tuple(blocks)


def _placed_piece(
    rng: np.random.Generator, block: np.ndarray, shape: tuple[int, int], zoom: int, at: tuple[float, float]
) -> np.ndarray:
    """A rotated, flipped, zoomed copy of ``block`` shifted so that a random inner point of it lies at ``at``.

    Where the canvas reaches beyond the block, the block is mirrored; the mosaic only uses a piece near its
    own seed, so little of the mirrored part is seen.
    """
    b = np.rot90(block, int(rng.integers(4)))
    if rng.random() < 0.5:
        b = b[:, ::-1]
    b = np.repeat(np.repeat(b, zoom, axis=0), zoom, axis=1)
    h, w = shape
    bh, bw = b.shape
    # the block point that lands on the seed: near its middle, so the piece covers the seed's cell
    py = int(rng.uniform(0.3, 0.7) * bh)
    px = int(rng.uniform(0.3, 0.7) * bw)
    padded = np.pad(b, ((h, h), (w, w)), mode="symmetric")
    oy = h + py - int(at[0])
    ox = w + px - int(at[1])
    return padded[oy:oy + h, ox:ox + w]


def _smooth_labels(labels: np.ndarray, sigma: float) -> np.ndarray:
    """Majority-like smoothing of a label map: argmax of Gaussian-filtered one-hot maps."""
    if sigma <= 0:
        return labels
    ids = np.unique(labels)
    soft = np.stack([ndimage.gaussian_filter((labels == i).astype(np.float32), sigma, mode="nearest") for i in ids])
    return ids[np.argmax(soft, axis=0)].astype(labels.dtype)


def landcover_classes(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int] = (96, 96),
    zoom: int | None = None,
    root: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """A class map ``(y, x)`` (int32, classes of :data:`LANDCOVER_CLASSES`) with the Potsdam map's structure.

    The map is a mosaic of the labelled blocks of the land-cover map: each piece is a rotated, flipped
    block upsampled ``zoom`` times with nearest neighbour and placed at a random seed; each pixel takes
    the piece of its nearest seed (distances warped by a smooth random field, so the seams are
    irregular). There are enough seeds that a typical cell is about half a zoomed block, so pieces are
    rarely seen beyond their own extent. Boundaries are then smoothed (Gaussian of ``zoom / 2`` pixels on
    the one-hot maps) so they do not show the zoom's staircase.

    Parameters
    ----------
    rng
        Random generator (the map is a deterministic function of its state).
    shape
        ``(rows, cols)`` of the map.
    zoom
        Integer upsampling of the 30 m labels; default: 2 or 3 at random (3 puts them on a 10 m grid).
    root
        The shared data folder; default :func:`dcstsf.datasets.shared_data_dir`.
    """
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise DcstsfInputError(f"class map shape must be positive, got {shape}")
    z = int(rng.choice([2, 3])) if zoom is None else int(zoom)
    if z < 1:
        raise DcstsfInputError(f"zoom must be a positive integer, got {zoom!r}")
    blocks = _landcover_blocks(str(data_root(root)))
    # enough pieces that a typical Voronoi cell is smaller than a zoomed block
    cell_area = 0.5 * float(np.median([b.size for b in blocks])) * z * z
    n_pieces = int(np.clip(np.ceil(h * w / cell_area) + rng.integers(0, 2), 1, 64))
    seeds = rng.uniform((0, 0), (h, w), size=(n_pieces, 2))
    pieces = [_placed_piece(rng, blocks[int(rng.integers(len(blocks)))], (h, w), z, (sy, sx)) for sy, sx in seeds]
    if n_pieces == 1:
        labels = pieces[0]
    else:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        # a common smooth warp of the distances makes the seams between pieces irregular
        warp = np.sqrt(cell_area) * 0.25
        dist = np.stack([
            np.hypot(yy - sy, xx - sx) + warp * smooth_field(rng, (h, w), max(4.0, np.sqrt(cell_area) / 4))
            for sy, sx in seeds
        ])
        labels = np.take_along_axis(np.stack(pieces), np.argmin(dist, axis=0)[None], axis=0)[0]
    return _smooth_labels(np.ascontiguousarray(labels, dtype=np.int32), 0.5 * z if z > 1 else 0.0)

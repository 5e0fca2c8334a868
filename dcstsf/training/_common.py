"""Shared pieces of the synthetic-scene modules: the shared data folder and smooth random fields."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from dcstsf.datasets import shared_data_dir
from dcstsf.errors import DcstsfInputError

__all__ = ["data_root", "need_file", "smooth_field"]


def data_root(root: str | os.PathLike[str] | None) -> Path:
    """The shared data folder: ``root``, else :func:`dcstsf.datasets.shared_data_dir`."""
    return shared_data_dir() if root is None else Path(root).expanduser().resolve()


def need_file(path: Path) -> Path:
    """``path``, or a clear error when the shared data folder lacks it."""
    if not path.is_file():
        raise DcstsfInputError(
            f"{path}: not found. Check that the shared data folder (root= or DCSTSF_SHARED_DATA) holds it"
        )
    return path


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """A zero-mean, unit-std random field smooth over about ``sigma`` pixels."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=sigma, mode="reflect")
    return (f - f.mean()) / (f.std() + 1e-12)

"""Random reflectance cubes shared by the metric tests."""

from __future__ import annotations

import numpy as np

__all__ = ["noisy", "random_cube"]


def random_cube(shape: tuple[int, int, int] = (5, 40, 36), seed: int = 0) -> np.ndarray:
    """Uniform reflectance in [0.05, 0.6), float32."""
    return np.random.default_rng(seed).uniform(0.05, 0.6, shape).astype(np.float32)


def noisy(ref: np.ndarray, sigma: float = 0.02, seed: int = 1) -> np.ndarray:
    """``ref`` plus Gaussian noise of standard deviation ``sigma``, float32."""
    return (ref + np.random.default_rng(seed).normal(0.0, sigma, ref.shape)).astype(np.float32)

"""Undefined metric values: NaN with a ``RuntimeWarning``, never an exception and never a silent NaN.

A metric is NaN only when no valid pixel (or block, or band) is left; a few bad pixels never make the
whole result NaN. The warning names the metric and points at the caller's line.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np
from numpy.typing import NDArray

__all__ = ["band_mean", "no_valid", "warn_undefined"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_undefined(message: str) -> None:
    """Emit ``message`` as a ``RuntimeWarning`` attributed to the first caller outside this package."""
    # Walking the stack rather than a fixed stacklevel: the metrics call each other at varying depths.
    level = 2
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
        frame = frame.f_back
        level += 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


def no_valid(n: int, what: str) -> bool:
    """``True`` (after warning) when no pixel is valid for metric ``what``."""
    if n == 0:
        warn_undefined(f"{what}: no valid pixel (all masked, NaN, or cropped); returning NaN.")
        return True
    return False


def band_mean(values: NDArray[np.float64], what: str, *, warn_all: bool = True) -> float:
    """Mean over the bands where the metric is defined (warn_all=False when the cause was already reported)."""
    finite = np.isfinite(values)
    if not finite.any():
        if warn_all:
            warn_undefined(f"{what}: undefined in every band (constant bands); returning NaN.")
        return math.nan
    if not finite.all():
        warn_undefined(f"{what}: undefined in band(s) {np.flatnonzero(~finite).tolist()} (constant band); "
                       "averaging over the other bands.")
    return float(values[finite].mean())

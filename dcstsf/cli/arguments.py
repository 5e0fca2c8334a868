"""Argument types of the command line: each turns one option's text into a value or a usage error."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dcstsf.models.local_map import LocalMapOptions
    from dcstsf.models.ms_noise import MsNoiseOptions

__all__ = [
    "byte_size", "csv_list", "local_map", "ms_noise", "non_negative_int", "offset_value", "positive_float",
    "positive_int", "scale_factor", "snr_db",
]

def csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list, e.g. B02,B03,B04,B08")
    return items


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


_SIZE_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 10**3, "KIB": 2**10, "M": 2**20, "MB": 10**6, "MIB": 2**20,
               "G": 2**30, "GB": 10**9, "GIB": 2**30, "T": 2**40, "TB": 10**12, "TIB": 2**40}


def byte_size(text: str) -> int:
    """``3GiB``, ``2.5GB``, ``3000MB`` or a number of bytes."""
    t = text.strip().upper().replace(" ", "")
    num = t.rstrip("KMGTIB")
    unit = t[len(num):]
    try:
        v = float(num) * _SIZE_UNITS[unit]
    except (ValueError, KeyError) as exc:
        raise argparse.ArgumentTypeError(f"expected a size such as 3GiB, 2.5GB or 3000MB, got {text!r}") from exc
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite size such as 3GiB, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return int(v)


def non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from exc
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from exc
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def local_map(text: str) -> LocalMapOptions:
    """``RADIUS[:RIDGE]`` of DC-STSF's windowed temporal map."""
    from dcstsf.models.local_map import LocalMapOptions

    radius, _, ridge = text.partition(":")
    try:
        return LocalMapOptions(int(radius), float(ridge) if ridge else LocalMapOptions.ridge)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected RADIUS[:RIDGE] with RADIUS a non-negative integer (coarse pixels) and RIDGE a positive "
            f"number, e.g. 3:0.03; got {text!r}"
        ) from exc


def ms_noise(text: str) -> MsNoiseOptions:
    """``STEPS`` of DC-STSF's noise-aware MS consistency."""
    from dcstsf.models.ms_noise import MAX_STEPS, MsNoiseOptions

    try:
        return MsNoiseOptions(steps=int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number of steps from 0 to {MAX_STEPS}, got {text!r}") from exc


def snr_db(text: str) -> float | None:
    if text.strip().lower() in ("none", "inf", "off"):
        return None
    return positive_float(text)


def _numbers(text: str, what: str) -> list[float]:
    vals = [t for t in text.replace(",", " ").split() if t]
    try:
        nums = [float(v) for v in vals]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected {what} or a comma-separated list per band, got {text!r}") from exc
    if not nums:
        raise argparse.ArgumentTypeError(f"expected {what}")
    if not all(math.isfinite(v) for v in nums):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return nums


def scale_factor(text: str) -> float | list[float]:
    """A scale factor per file or per band: reflectance = stored value x scale + offset, scale > 0."""
    nums = _numbers(text, "a scale factor such as 0.0001")
    if not all(v > 0 for v in nums):
        # A zero scale maps every pixel to the offset and a negative one inverts the image: neither is a
        # reflectance encoding, and fusing with it would give a wrong result without an error.
        raise argparse.ArgumentTypeError(
            f"a scale factor must be positive, got {text!r} (the reflectance per stored unit the product documents)"
        )
    return nums[0] if len(nums) == 1 else nums


def offset_value(text: str) -> float | list[float]:
    """An offset per file or per band (may be negative, e.g. -0.1 for Sentinel-2 baseline 04.00)."""
    nums = _numbers(text, "an offset such as -0.1")
    return nums[0] if len(nums) == 1 else nums



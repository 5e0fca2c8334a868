"""Exceptions raised by dcstsf.

Every error a user can cause by giving bad input is a :class:`DcstsfInputError`, whose message names
the file (when there is one), what is wrong and how to fix it.
"""

from __future__ import annotations

__all__ = ["DcstsfInputError", "MethodOutputError", "NoShippedWeightsError", "UncoveredBandsError", "WeightsError"]


class DcstsfInputError(ValueError):
    """Bad input: wrong grid, unknown sensor, unreadable file, ... The message says how to fix it."""


class UncoveredBandsError(DcstsfInputError):
    """MS bands whose spectral response the HS sensor's good bands do not cover (``bands``: their names)."""

    def __init__(self, message: str, *, bands: list[str]) -> None:
        super().__init__(message)
        self.bands = bands


class WeightsError(DcstsfInputError):
    """Model weights or a checkpoint are missing, corrupt or do not match the requested configuration."""


class NoShippedWeightsError(WeightsError):
    """No shipped weights for the sensor pair, MS band set and ratio (the install itself is intact)."""


class MethodOutputError(RuntimeError):
    """A fusion method returned non-finite values where its inputs were valid: a failure of the method (a
    diverged optimisation, an overflow), never written to the output as if it were a result."""

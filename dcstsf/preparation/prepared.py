"""The result of the preparation: three analysis-ready inputs on one grid and what was done to get them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import xarray as xr

from dcstsf.preparation.footprint import Footprint
from dcstsf.preparation.grid import PreparedGrid

if TYPE_CHECKING:
    from dcstsf.coregistration import Coregistration

__all__ = ["INPUT_NAMES", "PreparedInputs"]

#: The inputs, in the order of :func:`dcstsf.fuse` and ``dcstsf fuse``.
INPUT_NAMES = ("hs_t1", "ms_t1", "ms_t2")


@dataclass(frozen=True)
class PreparedInputs:
    """HS(t1), MS(t1) and MS(t2) on one grid, ready for :func:`dcstsf.fuse` or :func:`write_prepared`.

    Attributes
    ----------
    hs_t1
        The HS cube on the coarse grid (co-registered unless asked not to), float32 ``(band, y, x)``, lazy.
    ms_t1, ms_t2
        Both MS dates on the fine grid (a window of MS(t1)'s grid), the bands asked for in that order.
    grid
        The fine and coarse grids, the ratio and where the window lies in MS(t1).
    footprint
        What part of each input is covered.
    coregistration
        The estimated HS-to-MS displacement (None when co-registration was skipped).
    masked_fraction
        Fraction of each input's pixels without data on the prepared grid, by input name.
    notes
        What was done, in order, one sentence each.

    Each array's ``attrs`` hold the reader's (``sensor``, ``product_path``, ...), ``masked_fraction`` (on the
    prepared grid) and ``product_masked_fraction`` (the reader's, over the whole product), ``footprint``
    and ``preparation`` (JSON), and HS(t1)'s also ``coregistration`` (JSON, tie points and vectors included).
    """

    hs_t1: xr.DataArray
    ms_t1: xr.DataArray
    ms_t2: xr.DataArray
    grid: PreparedGrid
    footprint: Footprint
    coregistration: Coregistration | None = None
    masked_fraction: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def ratio(self) -> int:
        """HS to MS pixel-size ratio."""
        return self.grid.ratio

    def arrays(self) -> dict[str, xr.DataArray]:
        """The three inputs by name (:data:`INPUT_NAMES`)."""
        return {"hs_t1": self.hs_t1, "ms_t1": self.ms_t1, "ms_t2": self.ms_t2}

    def describe(self) -> list[str]:
        """What was done, for the CLI and logs: grid, ratio, shift found, masked fractions, footprint."""
        lines = [f"grid: {self.grid.describe()}"]
        if self.coregistration is not None:
            lines.append(self.coregistration.summary())
        else:
            lines.append("co-registration: not run")
        labels = {"hs_t1": "HS(t1)", "ms_t1": "MS(t1)", "ms_t2": "MS(t2)"}
        fractions = ", ".join(f"{labels[k]} {100 * v:.1f}%" for k, v in self.masked_fraction.items())
        lines.append(f"masked (no data) on the prepared grid: {fractions}")
        lines.append(f"footprint: {self.footprint.describe()}")
        lines.extend(f"- {n}" for n in self.notes)
        return lines

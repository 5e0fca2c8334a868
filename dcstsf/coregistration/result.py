"""The outcome of a co-registration: the field, the tie points, statistics, attributes and plot data."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcstsf._arrays import is_xarray
from dcstsf.coregistration.field import DisplacementField
from dcstsf.coregistration.options import CoregistrationOptions
from dcstsf.coregistration.tiepoints import TiePoints
from dcstsf.coregistration.warp import warp_cube
from dcstsf.operators import ObservationModel

__all__ = ["Coregistration", "TiePointVectors"]


@dataclass(frozen=True)
class TiePointVectors:
    """What a vector plot of the co-registration draws: one arrow per measured tie point.

    Attributes
    ----------
    row, col
        Tie-point positions on the coarse grid (pixel-index coordinates).
    x, y
        The same positions in map coordinates (pixel centres; ``None`` without a transform).
    dy, dx
        Measured displacement, coarse pixels (positive down, right).
    fitted_dy, fitted_dx
        The fitted field at the tie points, coarse pixels.
    east, north
        Measured displacement in map units (``None`` without a transform).
    status
        Each point's state (``"kept"``, ``"outlier"``, ``"low_quality"``, ...).
    """

    row: np.ndarray
    col: np.ndarray
    x: np.ndarray | None
    y: np.ndarray | None
    dy: np.ndarray
    dx: np.ndarray
    fitted_dy: np.ndarray
    fitted_dx: np.ndarray
    east: np.ndarray | None
    north: np.ndarray | None
    status: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON-friendly; NaN written as ``None``)."""
        def listed(a: np.ndarray | None) -> list[Any] | None:
            if a is None:
                return None
            if a.dtype.kind in "fc":
                return [None if not np.isfinite(v) else round(float(v), 6) for v in a]
            return a.tolist()

        return {k: listed(getattr(self, k)) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Coregistration:
    """The HS-to-MS misregistration of a scene and how it was measured.

    The displacement field ``u`` (coarse pixels) says that the HS cube shows what the MS grid places at ``p``
    at its own position ``p - u(p)``; equivalently the HS footprints lie ``u`` from their nominal places
    (positive down, right), the meaning of ``ObservationModel.hs_shift`` in coarse instead of fine pixels.

    :meth:`apply` resamples a cube by :attr:`resampling_field`. With ``options.global_subpixel="model"``
    (the default) that is the field less the sub-pixel part of its global shift, which stays in the cube:
    fuse it with :meth:`observation_model` (the tables' physics plus that shift) or with the scene
    diagnosis' estimated physics, which fits it.

    Attributes
    ----------
    field
        The fitted displacement field.
    tie_points
        Every tie point, measured or not, with its quality, state and residual.
    ratio
        HS to MS pixel-size ratio.
    options
        The options used.
    transform, crs
        The HS grid's affine transform and CRS (``None`` for plain pixel grids).
    initial_shift
        The first, whole-window estimate of the global shift ``(dy, dx)`` coarse pixels (``None`` when that
        window gave no reliable peak and the tie points were searched around zero).
    notes
        Fallbacks and findings worth telling the user.
    """

    field: DisplacementField
    tie_points: TiePoints
    ratio: int
    options: CoregistrationOptions
    transform: Any | None = None
    crs: str | None = None
    initial_shift: tuple[float, float] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def shift_px(self) -> tuple[float, float]:
        """The global shift ``(dy, dx)``: the field's mean over the grid, coarse pixels."""
        return self.field.mean

    @property
    def subpixel_shift_px(self) -> tuple[float, float]:
        """The sub-pixel part of the global shift, ``shift_px`` minus its nearest whole pixels (each in
        [-0.5, 0.5]), coarse pixels."""
        dy, dx = self.shift_px
        return dy - round(dy), dx - round(dx)

    @property
    def model_shift_fine_px(self) -> tuple[float, float]:
        """The shift :meth:`apply` leaves in the cube for the observation model, fine pixels
        (``ObservationModel.hs_shift``): the sub-pixel global shift with ``global_subpixel="model"``, else 0."""
        if self.options.global_subpixel != "model":
            return 0.0, 0.0
        dy, dx = self.subpixel_shift_px
        return dy * self.ratio, dx * self.ratio

    @property
    def resampling_field(self) -> DisplacementField:
        """The field :meth:`apply` resamples by: the field, less the shift left for the model."""
        if self.options.global_subpixel != "model":
            return self.field
        dy, dx = self.subpixel_shift_px
        return self.field.plus((-dy, -dx))

    def observation_model(self, model: ObservationModel) -> ObservationModel:
        """``model`` with the HS shift that :meth:`apply` leaves in the cube (:attr:`model_shift_fine_px`):
        what a fusion of the corrected cube with the tables' physics should use."""
        return dataclasses.replace(model, hs_shift=self.model_shift_fine_px)

    @property
    def shift_fine_px(self) -> tuple[float, float]:
        """The global shift in fine (MS) pixels: the unit of ``ObservationModel.hs_shift``."""
        dy, dx = self.shift_px
        return dy * self.ratio, dx * self.ratio

    def _to_map(self, dy: Any, dx: Any) -> tuple[Any, Any] | None:
        t = self.transform
        if t is None:
            return None
        return t.a * dx + t.b * dy, t.d * dx + t.e * dy

    @property
    def shift_map(self) -> tuple[float, float] | None:
        """The global shift as ``(east, north)`` in the CRS's units (``None`` without a transform): the
        displacement of the HS footprints on the map."""
        m = self._to_map(*self.shift_px)
        return None if m is None else (float(m[0]), float(m[1]))

    def statistics(self) -> dict[str, Any]:
        """Counts of tie points by state and the residuals of the kept ones from the field (coarse pixels)."""
        tp = self.tie_points
        kept = tp.status == "kept"
        res = np.hypot(tp.residual[kept, 0], tp.residual[kept, 1]) if kept.any() else np.zeros(0)
        out: dict[str, Any] = {
            "n_tie_points": len(tp),
            "n_kept": int(kept.sum()),
            "n_rejected": int(len(tp) - kept.sum()),
            "by_status": tp.counts(),
            "residual_median_px": round(float(np.median(res)), 4) if res.size else None,
            "residual_p90_px": round(float(np.percentile(res, 90)), 4) if res.size else None,
            "residual_rms_px": round(float(np.sqrt(np.mean(res**2))), 4) if res.size else None,
            "field_max_deviation_px": round(self.field.max_deviation, 4),
        }
        return out

    def vectors(self) -> TiePointVectors:
        """The data of a vector plot: measured tie points, their displacement and the fitted field there."""
        tp = self.tie_points
        measured = np.all(np.isfinite(tp.shift), axis=1)
        row, col = tp.row[measured], tp.col[measured]
        dy, dx = tp.shift[measured, 0], tp.shift[measured, 1]
        fitted = self.field(row, col)
        t = self.transform
        x = y = east = north = None
        if t is not None:
            # pixel-index coordinates: pixel i's centre is i, its top-left corner i - 0.5
            x = t.c + t.a * (col + 0.5) + t.b * (row + 0.5)
            y = t.f + t.d * (col + 0.5) + t.e * (row + 0.5)
            east, north = self._to_map(dy, dx)
        return TiePointVectors(
            row=row, col=col, x=x, y=y, dy=dy, dx=dx, fitted_dy=fitted[0], fitted_dx=fitted[1],
            east=east, north=north, status=tp.status[measured],
        )

    def summary(self) -> str:
        """One line for logs and the CLI."""
        dy, dx = self.shift_px
        st = self.statistics()
        where = ""
        if self.shift_map is not None:
            e, n = self.shift_map
            where = f" = ({e:+.2f} E, {n:+.2f} N) map units"
        res = "" if st["residual_median_px"] is None else (
            f", residual median {st['residual_median_px']:.3f} / p90 {st['residual_p90_px']:.3f} px"
        )
        return (
            f"co-registration: global shift ({dy:+.3f}, {dx:+.3f}) coarse px (dy, dx){where}; {self.field.model} "
            f"field deviating up to {st['field_max_deviation_px']:.3f} px; {st['n_kept']} of {st['n_tie_points']} "
            f"tie points kept{res}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly record: global shift (coarse px, fine px, map units), field, statistics, options."""
        dy, dx = self.shift_px
        fy, fx = self.shift_fine_px
        opts = {k: getattr(self.options, k) for k in self.options.__dataclass_fields__}
        return {
            "convention": (
                "HS footprints lie u = (dy, dx) coarse px from their nominal place on the MS grid, positive "
                "down/right; the corrected cube is HS(p - u(p) + model shift), the model shift left to "
                "ObservationModel.hs_shift"
            ),
            "shift_px": [round(dy, 4), round(dx, 4)],
            "shift_fine_px": [round(fy, 4), round(fx, 4)],
            "shift_map": None if self.shift_map is None else [round(v, 4) for v in self.shift_map],
            "initial_shift_px": None if self.initial_shift is None else [round(v, 4) for v in self.initial_shift],
            "ratio": int(self.ratio),
            "crs": self.crs,
            "resampling": self.options.resampling,
            "global_subpixel": self.options.global_subpixel,
            "model_hs_shift_fine_px": [round(v, 4) for v in self.model_shift_fine_px],
            "field": self.field.to_dict(),
            "statistics": self.statistics(),
            "options": opts,
            "notes": list(self.notes),
        }

    def to_attrs(self) -> dict[str, str]:
        """Output attributes: the record of :meth:`to_dict` as JSON under ``coregistration``."""
        return {"coregistration": json.dumps(self.to_dict(), sort_keys=True)}

    def apply(self, hs: Any, *, resampling: str | None = None) -> Any:
        """``hs`` resampled by :attr:`resampling_field` (:func:`~dcstsf.coregistration.warp.warp_cube`), on its
        own grid; fuse it with :meth:`observation_model` (or the scene diagnosis' estimated physics).

        A DataArray keeps its coordinates, CRS and attributes and gains :meth:`to_attrs`; a Dask-backed one
        stays lazy.
        """
        out = warp_cube(hs, self.resampling_field, resampling=resampling or self.options.resampling)
        return out.assign_attrs(self.to_attrs()) if is_xarray(out) else out

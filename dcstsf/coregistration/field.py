"""The displacement field: a smooth model of the HS-to-MS misregistration, fitted robustly to tie points.

A field ``u(p) = (dy, dx)`` (coarse pixels) is defined at every position ``p = (row, col)`` of the MS grid
(pixel-index coordinates of the coarse grid; pixel ``i``'s centre is ``i``): the HS cube shows what the MS
grid places at ``p`` at its own position ``p - u(p)``. Equivalently, the HS footprint of pixel ``q`` lies
``u`` away from its nominal place, positive down and right: the meaning and sign of
``ObservationModel.hs_shift`` (which is in fine pixels, ``ratio * u``).

Models, on coordinates scaled to [-1, 1] over the grid (for conditioning):

- ``"global"``: one shift (degree 0);
- ``"affine"`` and ``"polynomial"``: each component a polynomial of total degree 1 or ``degree``, by
  weighted least squares;
- ``"spline"``: a thin-plate smoothing spline (kernel ``r^2 log r``) with an affine part, minimising the
  mean squared residual plus ``smoothing`` times the bending energy.

Outliers (:func:`fit_robust`): tie points are rejected when their residual from the fitted field exceeds
``outlier_threshold`` robust standard deviations, the standard deviation taken from the median residual
length (for a 2-D Gaussian residual the median length is ``1.1774 sigma``), floored at
``min_residual_scale``. The first rejection is against the median shift (robust to half the points being
wrong); then the model is refitted on the inliers and every tie point re-tested, until the inliers stop
changing. A rejected point can come back once the field explains it. A smoothing spline bends toward an
isolated wrong point, so for ``"spline"`` the outliers are judged against the polynomial of the same
``degree``, and the spline is fitted to that polynomial's inliers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcstsf.errors import DcstsfInputError

__all__ = ["DisplacementField", "RobustFit", "fit_field", "fit_robust", "polynomial_terms"]

#: Median length of a 2-D standard Gaussian vector, ``sqrt(2 ln 2)``: turns a median residual length into a
#: per-component standard deviation.
MEDIAN_RAYLEIGH = float(np.sqrt(2.0 * np.log(2.0)))
#: Tie points needed per coefficient of the polynomial part before a lower degree is used.
POINTS_PER_TERM = 3
#: Kernel entries (points x spline nodes) evaluated at once.
_KERNEL_BLOCK = 2**22
#: Largest number of grid samples over which :attr:`DisplacementField.mean` averages (a regular subset).
_MEAN_SAMPLES = 256


def polynomial_terms(degree: int) -> list[tuple[int, int]]:
    """Exponents ``(i, j)`` of the terms ``y^i x^j`` of total degree up to ``degree``, lowest first."""
    return [(k - j, j) for k in range(degree + 1) for j in range(k + 1)]


def _design(yn: np.ndarray, xn: np.ndarray, degree: int) -> np.ndarray:
    return np.stack([yn**i * xn**j for i, j in polynomial_terms(degree)], axis=-1)


def _tps_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``r^2 log r`` between the points ``a`` ``(n, 2)`` and ``b`` ``(m, 2)``, 0 at ``r = 0``."""
    d2 = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d2 > 0.0, 0.5 * d2 * np.log(np.where(d2 > 0.0, d2, 1.0)), 0.0)


@dataclass(frozen=True)
class DisplacementField:
    """A fitted displacement field on a coarse grid of ``shape`` (see the module notes).

    Attributes
    ----------
    model
        ``"global"``, ``"affine"``, ``"polynomial"`` or ``"spline"``.
    shape
        ``(H, W)`` of the coarse grid the coordinates refer to.
    degree
        Degree of the polynomial part (the spline's is 1).
    coef
        ``(n_terms, 2)`` coefficients of the polynomial part for ``(dy, dx)``, terms as
        :func:`polynomial_terms`, on scaled coordinates.
    nodes, weights
        ``(n, 2)`` the spline's nodes (scaled coordinates) and kernel weights; empty for the other models.
    """

    model: str
    shape: tuple[int, int]
    degree: int
    coef: np.ndarray
    nodes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @classmethod
    def constant(cls, shift: tuple[float, float], shape: tuple[int, int]) -> DisplacementField:
        """A global shift ``(dy, dx)`` coarse pixels on a grid of ``shape``."""
        return cls("global", (int(shape[0]), int(shape[1])), 0, np.array([[float(shift[0]), float(shift[1])]]))

    def plus(self, shift: tuple[float, float]) -> DisplacementField:
        """This field plus a constant ``(dy, dx)`` (the constant term is the first polynomial term)."""
        coef = self.coef.copy()
        coef[0] += np.asarray(shift, dtype=np.float64)
        return DisplacementField(self.model, self.shape, self.degree, coef, self.nodes, self.weights)

    @property
    def center(self) -> tuple[float, float]:
        """Grid centre ``(row, col)``: the origin of the scaled coordinates."""
        return (self.shape[0] - 1) / 2.0, (self.shape[1] - 1) / 2.0

    @property
    def scale(self) -> float:
        """Coarse pixels per scaled unit (half the longer side)."""
        return max(self.shape) / 2.0

    def scaled(self, rows: Any, cols: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions in the field's scaled coordinates."""
        cy, cx = self.center
        return (np.asarray(rows, dtype=np.float64) - cy) / self.scale, (np.asarray(cols, dtype=np.float64) - cx) / self.scale

    def __call__(self, rows: Any, cols: Any) -> np.ndarray:
        """``(2, ...)`` the field ``(dy, dx)`` at positions ``rows``, ``cols`` (broadcast), coarse pixels."""
        yn, xn = np.broadcast_arrays(*self.scaled(rows, cols))
        out = _design(yn, xn, self.degree) @ self.coef  # (..., 2)
        if self.nodes.shape[0]:
            pts = np.stack([yn.reshape(-1), xn.reshape(-1)], axis=-1)
            bend = np.empty((pts.shape[0], 2))
            # in blocks, so the kernel matrix (points x nodes) stays small on a whole scene's grid
            step = max(1, _KERNEL_BLOCK // self.nodes.shape[0])
            for i in range(0, pts.shape[0], step):
                bend[i : i + step] = _tps_kernel(pts[i : i + step], self.nodes) @ self.weights
            out = out + bend.reshape(out.shape)
        return np.moveaxis(out, -1, 0)

    def on_grid(self) -> np.ndarray:
        """``(2, H, W)``: the field at every coarse pixel."""
        rows, cols = np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij")
        return self(rows, cols)

    def _samples(self) -> np.ndarray:
        sy = max(1, int(np.ceil(self.shape[0] / _MEAN_SAMPLES)))
        sx = max(1, int(np.ceil(self.shape[1] / _MEAN_SAMPLES)))
        rows, cols = np.meshgrid(np.arange(0, self.shape[0], sy), np.arange(0, self.shape[1], sx), indexing="ij")
        return self(rows, cols)

    @property
    def mean(self) -> tuple[float, float]:
        """The field's mean over the grid, ``(dy, dx)`` coarse pixels: the global shift."""
        u = self._samples()
        return float(np.mean(u[0])), float(np.mean(u[1]))

    @property
    def max_deviation(self) -> float:
        """Largest distance of the field from its mean over the grid, coarse pixels (0 for a global shift)."""
        u = self._samples()
        my, mx = self.mean
        return float(np.max(np.hypot(u[0] - my, u[1] - mx)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description from which the field can be evaluated again (:meth:`from_dict`)."""
        out: dict[str, Any] = {
            "model": self.model,
            "shape": [int(s) for s in self.shape],
            "degree": int(self.degree),
            "terms": [list(t) for t in polynomial_terms(self.degree)],
            "coef": np.round(self.coef, 8).tolist(),
            "coordinates": "scaled: (row - (H - 1) / 2) / (max(H, W) / 2), likewise col",
        }
        if self.nodes.shape[0]:
            out["nodes"] = np.round(self.nodes, 8).tolist()
            out["weights"] = np.round(self.weights, 10).tolist()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DisplacementField:
        """The field :meth:`to_dict` described."""
        nodes = np.asarray(d.get("nodes", np.zeros((0, 2))), dtype=np.float64).reshape(-1, 2)
        weights = np.asarray(d.get("weights", np.zeros((0, 2))), dtype=np.float64).reshape(-1, 2)
        return cls(
            d["model"], (int(d["shape"][0]), int(d["shape"][1])), int(d["degree"]),
            np.asarray(d["coef"], dtype=np.float64).reshape(-1, 2), nodes, weights,
        )


def _model_degree(model: str, degree: int) -> int:
    return {"global": 0, "affine": 1, "spline": 1}.get(model, degree)


def fit_field(
    rows: np.ndarray,
    cols: np.ndarray,
    shifts: np.ndarray,
    *,
    shape: tuple[int, int],
    model: str = "polynomial",
    degree: int = 2,
    smoothing: float = 1e-3,
    weights: np.ndarray | None = None,
) -> DisplacementField:
    """Least-squares fit of a field to tie points (no outlier handling: see :func:`fit_robust`).

    ``rows``, ``cols`` ``(n,)`` are the tie points' positions and ``shifts`` ``(n, 2)`` their measured
    ``(dy, dx)``; ``weights`` ``(n,)`` (default 1) weight their squared residuals.
    """
    rows, cols = np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
    d = np.asarray(shifts, dtype=np.float64).reshape(-1, 2)
    n = d.shape[0]
    wts = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    deg = _model_degree(model, degree)
    proto = DisplacementField(model, (int(shape[0]), int(shape[1])), deg, np.zeros((len(polynomial_terms(deg)), 2)))
    yn, xn = proto.scaled(rows, cols)
    p = _design(yn, xn, deg)
    if n < p.shape[1]:
        raise DcstsfInputError(f"{n} tie points cannot fit a degree-{deg} field ({p.shape[1]} coefficients)")
    if model != "spline":
        sw = np.sqrt(wts)[:, None]
        coef, *_ = np.linalg.lstsq(p * sw, d * sw, rcond=None)
        return DisplacementField(model, proto.shape, deg, coef)
    nodes = np.stack([yn, xn], axis=-1)
    k = _tps_kernel(nodes, nodes) + n * float(smoothing) * np.diag(1.0 / np.maximum(wts, 1e-12))
    m = p.shape[1]
    system = np.zeros((n + m, n + m))
    system[:n, :n], system[:n, n:], system[n:, :n] = k, p, p.T
    rhs = np.zeros((n + m, 2))
    rhs[:n] = d
    sol = np.linalg.lstsq(system, rhs, rcond=None)[0]
    return DisplacementField(model, proto.shape, deg, sol[n:], nodes, sol[:n])


@dataclass(frozen=True)
class RobustFit:
    """The outcome of :func:`fit_robust`.

    Attributes
    ----------
    field
        The field fitted to the inliers.
    inlier
        ``(n,)`` which tie points the field was fitted to.
    sigma
        The final robust per-component standard deviation of the residuals (floored), coarse pixels.
    notes
        Changes of model forced by too few tie points.
    """

    field: DisplacementField
    inlier: np.ndarray
    sigma: float
    notes: tuple[str, ...] = ()


def _affordable(model: str, degree: int, n: int) -> tuple[str, int, list[str]]:
    """The model (and degree) that ``n`` tie points can support, with a note when it was lowered."""
    notes: list[str] = []
    deg = _model_degree(model, degree)
    while deg > 0 and n < POINTS_PER_TERM * len(polynomial_terms(deg)):
        deg -= 1
    if deg == _model_degree(model, degree):
        return model, degree, notes
    new_model = "global" if deg == 0 else ("affine" if deg == 1 else "polynomial")
    notes.append(
        f"{n} kept tie points are too few for a {model} field of degree {_model_degree(model, degree)} "
        f"(at least {POINTS_PER_TERM} per coefficient): a {new_model} field of degree {deg} was fitted"
    )
    return new_model, deg, notes


def fit_robust(
    rows: np.ndarray,
    cols: np.ndarray,
    shifts: np.ndarray,
    *,
    shape: tuple[int, int],
    model: str = "polynomial",
    degree: int = 2,
    smoothing: float = 1e-3,
    threshold: float = 3.0,
    min_scale: float = 0.05,
    weights: np.ndarray | None = None,
    max_rounds: int = 20,
) -> RobustFit:
    """Fit a field with outlier rejection (see the module notes); ``shifts`` NaN rows are ignored."""
    d = np.asarray(shifts, dtype=np.float64).reshape(-1, 2)
    usable = np.all(np.isfinite(d), axis=1)
    if not usable.any():
        raise DcstsfInputError("no tie point to fit a displacement field to")
    med = np.median(d[usable], axis=0)

    def scale_of(res: np.ndarray, sel: np.ndarray) -> float:
        return max(float(np.median(res[sel])) / MEDIAN_RAYLEIGH, float(min_scale))

    res = np.where(usable, np.hypot(*(d - med).T), np.inf)
    sigma = scale_of(res, usable)
    inlier = usable & (res <= threshold * sigma)
    notes: list[str] = []
    # a smoothing spline bends toward an isolated wrong point, so a spline's outliers are judged against the
    # polynomial of the same degree; the spline is then fitted to the polynomial's inliers
    judge = "polynomial" if model == "spline" else model
    wts = None if weights is None else np.asarray(weights, dtype=np.float64)

    def fit_to(sel: np.ndarray, kind: str) -> tuple[DisplacementField, list[str]]:
        use_model, use_degree, why = _affordable(kind, degree, int(sel.sum()))
        fld = fit_field(
            rows[sel], cols[sel], d[sel], shape=shape, model=use_model, degree=use_degree, smoothing=smoothing,
            weights=None if wts is None else wts[sel],
        )
        return fld, why

    fitted = DisplacementField.constant(tuple(med), shape)
    for _ in range(max_rounds):
        fitted, notes = fit_to(inlier, judge)
        res = np.where(usable, np.hypot(*(d - fitted(rows, cols).T).T), np.inf)
        sigma = scale_of(res, inlier)
        new = usable & (res <= threshold * sigma)
        if np.array_equal(new, inlier) or not new.any():
            break
        inlier = new
    if model == "spline":
        fitted, notes = fit_to(inlier, model)
        res = np.where(usable, np.hypot(*(d - fitted(rows, cols).T).T), np.inf)
        sigma = scale_of(res, inlier)
    return RobustFit(fitted, inlier, sigma, tuple(notes))

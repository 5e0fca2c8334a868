"""The settings of the HS-to-MS co-registration, in one small frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass

from dcstsf.errors import DcstsfInputError

__all__ = ["FIELD_MODELS", "GLOBAL_SUBPIXEL", "RESAMPLING", "CoregistrationOptions"]

#: Displacement-field models (:mod:`dcstsf.coregistration.field`).
FIELD_MODELS = ("global", "affine", "polynomial", "spline")
#: Where the sub-pixel part of the global shift is corrected (see ``CoregistrationOptions.global_subpixel``).
GLOBAL_SUBPIXEL = ("model", "resample")
#: Resampling kernels of the warp (:mod:`dcstsf.coregistration.warp`).
RESAMPLING = ("spline", "cubic", "bilinear")


@dataclass(frozen=True)
class CoregistrationOptions:
    """How tie points are measured, how the displacement field is fitted and how the HS cube is resampled.

    All sizes and shifts are in coarse (HS) pixels. The defaults suit a scene of a few hundred HS pixels
    or more: 32-pixel windows (about 1 km at 30 m), a search range of 5 pixels (AROSICS's default
    ``max_shift``), a degree-2 polynomial field. Small scenes need smaller windows (the tests use 16 pixels
    every 8 on 64 x 64 pixels).

    Parameters
    ----------
    window
        Side of the square matching window of each tie point (even). Larger windows match more reliably
        and measure a smoother field; a window must hold several times the largest shift.
    spacing
        Distance between neighbouring tie-point centres; widened on large scenes to keep at most
        ``max_tie_points`` per MS date.
    max_tie_points
        Most tie points per MS date (each costs a few FFTs and spline reads of its window).
    max_shift
        Search range: the largest ``|dy|`` and ``|dx|`` accepted. Tie points beyond it are rejected; a
        global shift beyond it is an error (raise it when the shift is known to be that large).
    global_window
        Side of the central window (cut to the scene) measured first, like a tie point but searched over
        the whole window: the whole-pixel starting point of every tie point, and the search-range check.
        It must hold about four times ``max_shift``.
    field
        Model of the displacement field: ``"global"`` (one shift), ``"affine"`` (degree 1),
        ``"polynomial"`` (degree ``degree``) or ``"spline"`` (a thin-plate smoothing spline with an affine
        part, smoothed by ``smoothing``).
    degree
        Degree of the ``"polynomial"`` field. When the kept tie points are fewer than
        ``3 x`` the number of coefficients, a lower degree is used (and recorded in the notes).
    smoothing
        Regularisation of the ``"spline"`` field: the weight of the bending energy against the squared
        residuals, on coordinates scaled to [-1, 1]. 0 interpolates the tie points.
    outlier_threshold
        A tie point whose residual from the fitted field exceeds this many robust standard deviations
        (from the median absolute residual) is rejected as an outlier.
    min_residual_scale
        Floor of that robust standard deviation: a field fitting the tie points almost exactly does not
        turn sub-0.1-pixel residuals into outliers.
    min_peak_ratio
        Least ratio of a tie point's phase-correlation peak to the highest value away from it (a unique
        match gives several; noise or a repeated pattern about 1).
    min_correlation
        Least mean (over MS bands) correlation of the two windows after the measured shift.
    min_valid_fraction
        Least fraction of a window's pixels that must hold data in both images.
    min_tie_points
        Fewest kept tie points for an estimate; fewer is an error (the images do not match).
    use_ms_t2
        Also measure tie points of HS(t1) against MS(t2), when MS(t2) is given. Both MS dates share the
        MS grid, so each date's tie points measure the same field; land-cover change between the dates
        lowers the quality of the t2 points, which the quality limits then reject.
    global_subpixel
        ``"model"`` (default): the cube is resampled by the field minus the sub-pixel part of its global
        shift, so whole-pixel moves are exact and only the local variation is interpolated; the remaining
        sub-pixel global shift is corrected in the observation model instead
        (:meth:`Coregistration.observation_model`, ``ObservationModel.hs_shift``; the scene diagnosis with
        ``physics="estimated"`` also estimates it). Interpolating the coarse HS, whose texture reaches its
        Nyquist frequency and beyond (aliasing), loses detail that the model's displaced PSF keeps.
        ``"resample"``: the cube is resampled by the whole field, and no shift is left for the model.
    resampling
        Kernel of the warp (:mod:`~dcstsf.coregistration.warp`): ``"spline"`` (quintic B-spline),
        ``"cubic"`` (Keys' cubic convolution, ``a = -0.5``) or ``"bilinear"``.
    max_iterations
        Whole-pixel re-centring steps per tie point (as in AROSICS: the target window is moved by the
        whole-pixel part of the measured shift until the measured whole-pixel shift is zero).
    """

    window: int = 32
    spacing: int = 16
    max_tie_points: int = 400
    max_shift: float = 5.0
    global_window: int = 256
    field: str = "polynomial"
    degree: int = 2
    smoothing: float = 1e-3
    outlier_threshold: float = 3.0
    min_residual_scale: float = 0.05
    min_peak_ratio: float = 2.0
    min_correlation: float = 0.5
    min_valid_fraction: float = 0.9
    min_tie_points: int = 10
    use_ms_t2: bool = True
    global_subpixel: str = "model"
    resampling: str = "spline"
    max_iterations: int = 4

    def __post_init__(self) -> None:
        fix = "pass dcstsf.coregistration.CoregistrationOptions(...) with a valid value"
        if self.field not in FIELD_MODELS:
            raise DcstsfInputError(f"field must be one of {', '.join(FIELD_MODELS)}, got {self.field!r}; {fix}")
        if self.resampling not in RESAMPLING:
            raise DcstsfInputError(
                f"resampling must be one of {', '.join(RESAMPLING)}, got {self.resampling!r}; {fix}"
            )
        if self.global_subpixel not in GLOBAL_SUBPIXEL:
            raise DcstsfInputError(
                f"global_subpixel must be one of {', '.join(GLOBAL_SUBPIXEL)}, got {self.global_subpixel!r}; {fix}"
            )
        if self.window < 8 or self.window % 2:
            raise DcstsfInputError(f"window must be an even number of at least 8 coarse pixels, got {self.window}; {fix}")
        if self.max_tie_points < 1:
            raise DcstsfInputError(f"max_tie_points must be at least 1, got {self.max_tie_points}; {fix}")
        if self.spacing < 1:
            raise DcstsfInputError(f"spacing must be at least 1 coarse pixel, got {self.spacing}; {fix}")
        if not self.max_shift > 0:
            raise DcstsfInputError(f"max_shift must be positive, got {self.max_shift}; {fix}")
        if self.global_window < self.window:
            raise DcstsfInputError(
                f"global_window ({self.global_window}) must be at least window ({self.window}); {fix}"
            )
        if self.degree < 0:
            raise DcstsfInputError(f"degree must be 0 or more, got {self.degree}; {fix}")
        if self.smoothing < 0:
            raise DcstsfInputError(f"smoothing must be 0 or more, got {self.smoothing}; {fix}")
        if not self.outlier_threshold > 0:
            raise DcstsfInputError(f"outlier_threshold must be positive, got {self.outlier_threshold}; {fix}")
        if not 0 < self.min_valid_fraction <= 1:
            raise DcstsfInputError(f"min_valid_fraction must be in (0, 1], got {self.min_valid_fraction}; {fix}")
        if self.min_tie_points < 1:
            raise DcstsfInputError(f"min_tie_points must be at least 1, got {self.min_tie_points}; {fix}")
        if self.max_iterations < 1:
            raise DcstsfInputError(f"max_iterations must be at least 1, got {self.max_iterations}; {fix}")

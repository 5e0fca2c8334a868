"""Quality metrics for fused hyperspectral cubes ``(band, y, x)``.

Every metric of the project is defined once, in this package; ``docs/metrics.md`` gives the same
formulas with the reasons behind each convention.  Modules: :mod:`~dcstsf.metrics.inputs` (accepted
inputs, checks, validity), :mod:`~dcstsf.metrics.reference` (PSNR, RMSE, SAM, ERGAS, CC),
:mod:`~dcstsf.metrics.windowed` (SSIM, UIQI, Q2n), :mod:`~dcstsf.metrics.noref` (D_lambda, D_s, QNR)
and :mod:`~dcstsf.metrics.evaluation` (:func:`evaluate`, all full-reference metrics at once).  Shared
conventions:

* **Inputs** are NumPy arrays, Dask arrays or xarray DataArrays with dims ``(band, y, x)`` (a 2-D
  ``(y, x)`` array is taken as one band).  Values are reflectance in [0, 1], so ``data_range`` defaults
  to 1.0.  Computation is in float64 whatever the input dtype.
* **Validity** is decided per pixel, for the whole spectrum: a pixel is valid when ``mask`` (boolean
  ``(y, x)``, True = valid) is True there *and* every band of both ``pred`` and ``ref`` is finite.  A
  NaN (nodata) in one band therefore removes the pixel from every band, so all bands are scored on the
  same pixels.
* **border**: this many pixels are cropped from each side (of the images and of the mask) before
  anything else; :func:`evaluate` records the crop.
* **Ratios**: ERGAS takes ``h_over_l`` = fine pixel size / coarse pixel size (<= 1, Wald's h/l);
  ``ratio`` elsewhere in dcstsf is the coarse/fine resolution ratio r >= 1 (``h_over_l = 1 / ratio``).
* **Backends**: PSNR, RMSE, SAM, ERGAS and CC are computed chunk-wise when an input is a Dask array
  (per-band sums are accumulated with dask reductions and computed in a single ``dask.compute``), so the
  cube is never held in memory at once; the result equals the NumPy path to rounding.  :func:`evaluate`
  streams Dask inputs tile by tile for every metric, SSIM, UIQI and Q2n included
  (:mod:`~dcstsf.metrics.tiles`, :mod:`~dcstsf.metrics.stream`, :mod:`~dcstsf.metrics.partials`): tiles
  read a halo for SSIM's window and blocks belong to the tile holding their first pixel, so the sums
  are those of the whole image. The single-metric functions :func:`ssim`, :func:`uiqi`, :func:`q2n`
  and the QNR family compute in NumPy (Dask inputs are materialised).
* **Bands**: :func:`evaluate` scores the bands given by ``bands`` (e.g. a sensor's good bands); the others
  get NaN per-band values and take no part in the validity test.
* No metric returns NaN because of a few bad pixels; NaN (with a ``RuntimeWarning``) is returned only
  when no valid pixel (or block) is left.
"""

from dcstsf.metrics.evaluation import evaluate
from dcstsf.metrics.inputs import CubeLike, MaskLike
from dcstsf.metrics.noref import d_lambda, d_s, qnr
from dcstsf.metrics.reference import (
    PSNR_CAP_DB,
    cc,
    cc_per_band,
    ergas,
    psnr,
    psnr_per_band,
    rmse,
    rmse_per_band,
    sam,
    sam_map,
)
from dcstsf.metrics.windowed import q2n, ssim, uiqi

__all__ = [
    "PSNR_CAP_DB",
    "CubeLike",
    "MaskLike",
    "cc",
    "cc_per_band",
    "d_lambda",
    "d_s",
    "ergas",
    "evaluate",
    "psnr",
    "psnr_per_band",
    "q2n",
    "qnr",
    "rmse",
    "rmse_per_band",
    "sam",
    "sam_map",
    "ssim",
    "uiqi",
]

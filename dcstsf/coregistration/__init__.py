"""Co-registration of the HS cube to the MS grid, before fusion.

Real HS geolocation is off by a fraction of a pixel to several pixels, and its error varies across a
scene. This package measures the displacement of the HS cube (already on the MS grid at the integer
ratio) against MS(t1), and MS(t2) when given, as a global shift plus a smooth local field, and resamples
the HS cube by it on its own coarse grid.

Modules, one concept each: :mod:`~dcstsf.coregistration.options` (the settings),
:mod:`~dcstsf.coregistration.tiepoints` (sub-pixel phase correlation on windows),
:mod:`~dcstsf.coregistration.field` (the displacement field and its robust fit),
:mod:`~dcstsf.coregistration.warp` (resampling by a field), :mod:`~dcstsf.coregistration.result` (the
:class:`Coregistration` record) and :mod:`~dcstsf.coregistration.coregister` (the whole step).

Example::

    from dcstsf.coregistration import CoregistrationOptions, coregister

    hs_fixed, reg = coregister(hs_t1, ms_t1, model=model, ms_t2=ms_t2, options=CoregistrationOptions())
    print(reg.summary())
    attrs = reg.to_attrs()  # for the fused output
"""

from dcstsf.coregistration.coregister import (
    CoregistrationImages,
    apply_coregistration,
    coregister,
    coregistration_images,
    estimate_coregistration,
)
from dcstsf.coregistration.field import DisplacementField, RobustFit, fit_field, fit_robust
from dcstsf.coregistration.options import FIELD_MODELS, RESAMPLING, CoregistrationOptions
from dcstsf.coregistration.result import Coregistration, TiePointVectors
from dcstsf.coregistration.tiepoints import TiePoints, phase_correlation
from dcstsf.coregistration.warp import warp_cube

__all__ = [
    "FIELD_MODELS",
    "RESAMPLING",
    "Coregistration",
    "CoregistrationImages",
    "CoregistrationOptions",
    "DisplacementField",
    "RobustFit",
    "TiePointVectors",
    "TiePoints",
    "apply_coregistration",
    "coregister",
    "coregistration_images",
    "estimate_coregistration",
    "fit_field",
    "fit_robust",
    "phase_correlation",
    "warp_cube",
]

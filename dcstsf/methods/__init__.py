"""Fusion methods behind one registry: ``dcstsf.fuse(..., method=NAME)``; ``dcstsf methods`` lists them."""

from dcstsf.methods.base import (
    Fitted,
    Method,
    SceneSamples,
    apply_spectral_map,
    available_methods,
    fit_spectral_map,
    fuse_arrays,
    get_method,
    register_method,
    round_up_to_ratio,
    scene_samples,
)
from dcstsf.methods.bicubic import Bicubic
from dcstsf.methods.dcstsf_method import DCSTSF

register_method(Bicubic.name, Bicubic)
register_method(DCSTSF.name, DCSTSF)

__all__ = (
    "Bicubic",
    "DCSTSF",
    "Fitted",
    "Method",
    "SceneSamples",
    "apply_spectral_map",
    "available_methods",
    "fit_spectral_map",
    "fuse_arrays",
    "get_method",
    "register_method",
    "round_up_to_ratio",
    "scene_samples",
)

"""Fusion methods behind one registry: ``dcstsf.fuse(..., method=NAME)``; ``dcstsf methods`` lists them."""

from dcstsf.methods.base import (
    Fitted,
    Method,
    RegionMethod,
    SceneSamples,
    apply_spectral_map,
    available_methods,
    fit_scene,
    fit_spectral_map,
    fuse_arrays,
    get_method,
    method_name,
    register_method,
    round_up_to_ratio,
    scene_samples,
)
from dcstsf.methods.bicubic import Bicubic
from dcstsf.methods.dcstsf_method import DCSTSF
from dcstsf.methods.two_step import TwoStep
from dcstsf.methods.variational import Variational

register_method(Bicubic.name, Bicubic)
register_method(DCSTSF.name, DCSTSF)
register_method(TwoStep.name, TwoStep)
register_method(Variational.name, Variational)

__all__ = (
    "Bicubic",
    "DCSTSF",
    "Fitted",
    "Method",
    "RegionMethod",
    "SceneSamples",
    "TwoStep",
    "Variational",
    "apply_spectral_map",
    "available_methods",
    "fit_scene",
    "fit_spectral_map",
    "fuse_arrays",
    "get_method",
    "method_name",
    "register_method",
    "round_up_to_ratio",
    "scene_samples",
)

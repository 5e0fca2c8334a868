"""The reference ensemble member a prediction is compared with, and the calibration entry it belongs to.

A prediction's disagreement with another reasonable prediction of the same scene is a measurable
proxy of its error: where two methods that see the same inputs differ, at least one of them is wrong.
The member is:

- for DC-STSF with learned units: **the same network with its learned units at zero** (the classical
  unrolled iteration the learned units correct, :meth:`dcstsf.methods.DCSTSF.untrained`), so the
  disagreement is the size of the learned correction at each pixel;
- for DC-STSF that is already that network (no weights apply, or the validation rule chose it): the
  ``two-step`` baseline;
- for every other method: the physics-only DC-STSF network.

Test-time flips and transposes of DC-STSF's window were tried as members too: their spread is a few
percent of the error, and as a further measure it did not improve the held-out likelihood enough to pay
for three more network runs per tile, so it is not used (``docs/results.md``, "Per-pixel uncertainty").
"""

from __future__ import annotations

import torch

from dcstsf.methods import DCSTSF, Method, get_method
from dcstsf.models.network import DCSTSFConfig, DCSTSFNet, physics_only_network
from dcstsf.operators import ObservationModel

__all__ = ["PHYSICS_ONLY", "calibration_key", "is_physics_only", "member_description", "reference_member"]

#: Calibration key of DC-STSF whose learned units are all zero.
PHYSICS_ONLY = "dcstsf-physics-only"


def is_physics_only(net: DCSTSFNet) -> bool:
    """Whether ``net`` computes what the untrained network of its configuration computes: every learned
    unit's output layer zero and the step sizes at their initial values."""
    fresh = physics_only_network(net.config).state_dict()
    for key, value in net.state_dict().items():
        decisive = ".head." in key or key in ("alpha", "beta", "gamma")
        if decisive and not torch.equal(value.detach().cpu(), fresh[key]):
            return False
    return True


def reference_member(method: Method, model: ObservationModel) -> Method:
    """The ensemble member ``method``'s prediction is compared with (see the module docstring); a DC-STSF
    member runs on DC-STSF's device when ``method`` is DC-STSF."""
    if isinstance(method, DCSTSF):
        net = method.network(model)
        if is_physics_only(net):
            return get_method("two-step")
        return DCSTSF(network=physics_only_network(net.config), device=method.device)
    return DCSTSF(network=physics_only_network(DCSTSFConfig(n_ms=model.n_ms)))


def calibration_key(method: Method, model: ObservationModel) -> str:
    """The calibration entry of ``method``: its registry name, or :data:`PHYSICS_ONLY` for DC-STSF whose
    network is the physics-only one."""
    if isinstance(method, DCSTSF) and is_physics_only(method.network(model)):
        return PHYSICS_ONLY
    return method.name


def member_description(member: Method, model: ObservationModel) -> str:
    """One line naming the member in output attributes."""
    if isinstance(member, DCSTSF) and is_physics_only(member.network(model)):
        return "dcstsf with its learned units at zero (physics-only network)"
    return member.name

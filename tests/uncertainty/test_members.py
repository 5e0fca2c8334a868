"""The reference ensemble member and the calibration entry of each method."""

from __future__ import annotations

import torch

from dcstsf.methods import DCSTSF, get_method
from dcstsf.models.network import DCSTSFConfig
from dcstsf.operators import ObservationModel
from dcstsf.uncertainty import calibration_key, is_physics_only, reference_member
from dcstsf.uncertainty.members import PHYSICS_ONLY


def test_learned_dcstsf_is_compared_with_its_physics_only_network(model: ObservationModel) -> None:
    m = get_method("dcstsf")
    assert not is_physics_only(m.network(model))
    member = reference_member(m, model)
    assert isinstance(member, DCSTSF) and is_physics_only(member.network(model))
    assert member.network(model).config == m.network(model).config
    assert calibration_key(m, model) == "dcstsf"


def test_physics_only_dcstsf_is_compared_with_two_step(model: ObservationModel) -> None:
    m = DCSTSF.untrained(DCSTSFConfig(n_ms=model.n_ms))
    assert reference_member(m, model).name == "two-step"
    assert calibration_key(m, model) == PHYSICS_ONLY


def test_baselines_are_compared_with_physics_only_dcstsf(model4: ObservationModel) -> None:
    for name in ("bicubic", "two-step", "variational"):
        member = reference_member(get_method(name), model4)
        assert isinstance(member, DCSTSF) and is_physics_only(member.network(model4))
        assert calibration_key(get_method(name), model4) == name


def test_a_changed_step_size_is_learned(model: ObservationModel) -> None:
    net = DCSTSF.untrained(DCSTSFConfig(n_ms=model.n_ms)).network(model)
    assert is_physics_only(net)
    with torch.no_grad():
        net.gamma[0] += 0.1
    assert not is_physics_only(net)

"""Checkpoints: save/load round trip, mismatched weights, older checkpoint versions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dcstsf.errors import WeightsError
from dcstsf.methods import DCSTSF, fuse_arrays
from dcstsf.models import DCSTSFConfig, DCSTSFNet, load_model, save_checkpoint
from dcstsf.operators import ObservationModel
from tests.models.cases import forward


def test_save_load_round_trip(tmp_path: Path, model: ObservationModel, case) -> None:
    torch.manual_seed(1)
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=1, hidden=8))
    torch.nn.init.normal_(net.sftn.head.weight, std=1e-2)
    path = tmp_path / "w.pt"
    sha = save_checkpoint(path, {"config": net.config.to_dict(), "state_dict": net.state_dict(),
                                 "sensors": {**model.describe(), "ratio": 3}})
    loaded, payload = load_model(path, expected_sha256=sha)
    with torch.no_grad():
        assert torch.equal(forward(net.eval(), case, model)["hs_t2"], forward(loaded, case, model)["hs_t2"])
    # a method built from the file reports the hash
    meth = DCSTSF(weights=path)
    fuse_arrays(*case.arrays(), method=meth, model=model)
    assert meth.identity()["weights_sha256"] == sha
    # corruption is detected by hash and by format
    with pytest.raises(WeightsError, match="SHA-256"):
        load_model(path, expected_sha256="0" * 64)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match="bad.pt"):
        load_model(bad)
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_wrong_band_count_weights(tmp_path: Path, model: ObservationModel, case) -> None:
    net = DCSTSFNet(DCSTSFConfig(n_ms=10, rank=8, stages=1, hidden=8))
    path = tmp_path / "w10.pt"
    save_checkpoint(path, {"config": net.config.to_dict(), "state_dict": net.state_dict(),
                           "sensors": {"ratio": 3}})
    with pytest.raises(WeightsError, match="10 MS bands"):
        fuse_arrays(*case.arrays(), method=DCSTSF(weights=path), model=model)


def test_v1_checkpoints_load_with_coefficient_space_units(tmp_path: Path, model: ObservationModel) -> None:
    """Weights written before ``unit_space`` existed were trained with coefficient-space units."""
    net = DCSTSFNet(DCSTSFConfig(n_ms=4, rank=8, stages=1, hidden=8, unit_space="coefficient"))
    cfg = net.config.to_dict()
    del cfg["unit_space"]
    path = tmp_path / "v1.pt"
    save_checkpoint(path, {"config": cfg, "state_dict": net.state_dict(), "sensors": {**model.describe(), "ratio": 3}})
    loaded, _ = load_model(path)
    assert loaded.config.unit_space == "coefficient"
    with pytest.raises(ValueError, match="unit_space"):
        DCSTSFConfig(n_ms=4, unit_space="pixels")

"""The training loop: the loss falls in a few steps and a stopped run resumes to the same weights."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from dcstsf.models import load_model
from dcstsf.operators import ObservationModel
from dcstsf.training import train
from tests.models.cases import smooth_cube

BANDS4 = ["B02", "B03", "B04", "B08"]


def test_few_steps_training_loss_falls_and_resumes(tmp_path: Path, model: ObservationModel) -> None:
    scenes = [smooth_cube(model, 48, 48, seed=s) for s in range(2)]
    cfg = {
        "sensors": {"hs_sensor": "zy1-02d-ahsi", "ms_sensor": "sentinel-2a", "ms_bands": BANDS4, "ratio": 3},
        "model": {"rank": 8, "stages": 1, "hidden": 8, "consistency_steps": 1},
        "data": {"patch": 24, "batch_size": 4, "batches_per_case": 30},
        "train": {"steps": 30, "lr": 3e-3, "warmup": 2, "checkpoint_every": 10, "seed": 0, "threads": 1},
    }
    out = train(cfg, output=tmp_path / "run", scenes=scenes, progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "loss.csv").open()))
    assert len(rows) == 30
    # all 30 steps see one case (batches_per_case=30): the loss on it must fall
    first = np.mean([float(r["loss"]) for r in rows[:5]])
    last = np.mean([float(r["loss"]) for r in rows[-5:]])
    assert last < first
    net, payload = load_model(out)
    assert payload["sensors"]["ms_bands"] == BANDS4 and payload["step"] == 30

    # interrupted run (stopped at step 20 via steps=20 checkpoint) resumes to the same weights
    cfg_short = {**cfg, "train": {**cfg["train"]}}
    train({**cfg_short, "train": {**cfg["train"], "steps": 30}}, output=tmp_path / "run2", scenes=scenes,
          progress=False, stop_after=20)
    out2 = train(cfg, output=tmp_path / "run2", scenes=scenes, progress=False)
    net2, _ = load_model(out2)
    for (k, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items()):
        assert torch.equal(a, b), k

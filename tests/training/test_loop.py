"""The training loop: the loss falls in a few steps and a stopped run resumes to the same weights; configs are
checked key by key."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dcstsf.errors import DcstsfInputError
from dcstsf.models import load_model
from dcstsf.operators import ObservationModel
from dcstsf.training import train
from dcstsf.training.loop import load_config
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


def test_blas_threads_are_fixed_by_the_config(tmp_path: Path, model: ObservationModel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """NumPy's BLAS runs with the config's thread count whatever the environment says (``blas_threads``,
    default ``threads``): a multi-threaded BLAS rounds the scene statistics by thread count, and training
    amplifies that. The option is left out of the fingerprint, like the device."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import dcstsf.training.loop as loop

    seen: list[set[int]] = []
    real = loop._train

    def spy(cfg, **kwargs):  # type: ignore[no-untyped-def]
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return real(cfg, **kwargs)

    monkeypatch.setattr(loop, "_train", spy)
    scenes = [smooth_cube(model, 48, 48, seed=0)]
    base = {
        "sensors": {"hs_sensor": "zy1-02d-ahsi", "ms_sensor": "sentinel-2a", "ms_bands": BANDS4, "ratio": 3},
        "model": {"rank": 8, "stages": 1, "hidden": 8, "consistency_steps": 1},
        "data": {"patch": 24, "batch_size": 2, "batches_per_case": 4},
        "train": {"steps": 1, "warmup": 1, "seed": 0, "threads": 2},
    }
    with threadpool_limits(limits=1, user_api="blas"):  # what OMP_NUM_THREADS=1 would give
        train(base, output=tmp_path / "a", scenes=scenes, progress=False)
    with threadpool_limits(limits=2, user_api="blas"):
        train({**base, "train": {**base["train"], "blas_threads": 1}}, output=tmp_path / "b", scenes=scenes,
              progress=False)
    assert seen == [{2}, {1}]
    fingerprints = [load_model(tmp_path / d / "final.pt")[1]["training"]["fingerprint"] for d in ("a", "b")]
    assert fingerprints[0] == fingerprints[1]


def test_frozen_step_sizes_keep_their_physics_values(tmp_path: Path, model: ObservationModel) -> None:
    """``train.frozen`` keeps the named step sizes at their physics values while the rest learns; other
    names are refused."""
    import pytest

    from dcstsf.errors import DcstsfInputError

    scenes = [smooth_cube(model, 48, 48, seed=0)]
    cfg = {
        "sensors": {"hs_sensor": "zy1-02d-ahsi", "ms_sensor": "sentinel-2a", "ms_bands": BANDS4, "ratio": 3},
        "model": {"rank": 8, "stages": 2, "hidden": 8, "consistency_steps": 1, "learned_units": False},
        "data": {"patch": 24, "batch_size": 2, "batches_per_case": 4},
        "train": {"steps": 6, "lr": 1e-2, "warmup": 1, "seed": 0, "threads": 1, "frozen": ["alpha", "beta", "gamma"]},
    }
    net, _ = load_model(train(cfg, output=tmp_path / "frozen", scenes=scenes, progress=False))
    assert torch.equal(net.alpha, torch.ones(2)) and torch.equal(net.beta, torch.ones(2))
    assert torch.equal(net.gamma, torch.full((1,), 0.5))
    assert float(net.sftn.head.weight.detach().abs().sum()) > 0
    with pytest.raises(DcstsfInputError, match="only the step sizes"):
        train({**cfg, "train": {**cfg["train"], "frozen": ["sftn"]}}, output=tmp_path / "bad", scenes=scenes,
              progress=False)


def test_physics_after_sets_the_trained_step_sizes_back(tmp_path: Path, model: ObservationModel) -> None:
    """``train.physics_after``: the step sizes learn with the rest, and the final weights hold their physics
    values; every other parameter is the one the same training without the option ends with. The
    resumable checkpoint keeps the learned values, and the option is part of the run's fingerprint."""
    import pytest

    from dcstsf.errors import DcstsfInputError
    from dcstsf.models.checkpoint import load_checkpoint

    scenes = [smooth_cube(model, 48, 48, seed=0)]
    cfg = {
        "sensors": {"hs_sensor": "zy1-02d-ahsi", "ms_sensor": "sentinel-2a", "ms_bands": BANDS4, "ratio": 3},
        "model": {"rank": 8, "stages": 2, "hidden": 8, "consistency_steps": 1, "learned_units": False},
        "data": {"patch": 24, "batch_size": 2, "batches_per_case": 4},
        "train": {"steps": 6, "lr": 1e-2, "warmup": 1, "seed": 0, "threads": 1},
    }
    plain, _ = load_model(train(cfg, output=tmp_path / "plain", scenes=scenes, progress=False))
    after_cfg = {**cfg, "train": {**cfg["train"], "physics_after": ["alpha", "beta", "gamma"]}}
    final = train(after_cfg, output=tmp_path / "after", scenes=scenes, progress=False)
    net, meta = load_model(final)
    assert not torch.equal(plain.alpha, torch.ones(2))  # they did learn
    assert torch.equal(net.alpha, torch.ones(2)) and torch.equal(net.beta, torch.ones(2))
    assert torch.equal(net.gamma, torch.full((1,), 0.5))
    for (name, a), (_, b) in zip(plain.state_dict().items(), net.state_dict().items()):
        if name not in ("alpha", "beta", "gamma"):
            assert torch.equal(a, b), name
    last = load_checkpoint(tmp_path / "after" / "last.pt")["state_dict"]
    assert torch.equal(last["alpha"], plain.alpha.detach())
    plain_fp = load_model(tmp_path / "plain" / "final.pt")[1]["training"]["fingerprint"]
    assert "physics_after" in meta["training"]["fingerprint"] and "physics_after" not in plain_fp
    with pytest.raises(DcstsfInputError, match="only the step sizes"):
        train({**cfg, "train": {**cfg["train"], "physics_after": ["sftn"]}}, output=tmp_path / "bad",
              scenes=scenes, progress=False)


@pytest.mark.parametrize(
    ("section", "entry", "words"),
    [
        ("data", {"batchsize": 8}, ["data: unknown key 'batchsize' (did you mean 'batch_size'?)"]),
        ("model", {"rnak": 16}, ["model: unknown key 'rnak' (did you mean 'rank'?)"]),
        ("model", {"rank": "sixteen"}, ["model.rank must be a number, got 'sixteen'"]),
        ("train", {"lr": "fast"}, ["train.lr must be a number"]),
        ("train", {"seed": True}, ["train.seed must be a number"]),
        ("model", {"use_sftn": "yes"}, ["model.use_sftn must be true or false"]),
        ("sensors", {"ms_bands": "B02"}, ["sensors.ms_bands must be a list"]),
        ("data", [1, 2], ["data must be a mapping"]),
    ],
)
def test_config_typos_and_wrong_kinds_are_errors(
    tmp_path: Path, section: str, entry: object, words: list[str]
) -> None:
    # a misspelt key used to be ignored: the run trained with the default instead
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({section: entry}))
    with pytest.raises(DcstsfInputError) as exc:
        load_config(path)
    assert str(path) in str(exc.value) and all(w in str(exc.value) for w in words), exc.value


def test_every_shipped_config_loads() -> None:
    configs = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)

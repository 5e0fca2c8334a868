"""Scene adaptation (test-time training): fine-tune DC-STSF's learned units on the scene being fused.

The shipped weights were learned on other scenes. Before any tile is fused, :func:`adapt_to_scene` trains
a copy of the network for a few steps on **reduced-resolution (Wald) cases cut from the scene itself**:
HS(t1), which is real data of this scene, stands in for the fine truth; the training sampler
(:class:`~dcstsf.training.data.CaseSampler`) observes it once more through the scene's observation model
(HS one ratio coarser, MS through the spectral responses and the MS blur, the scene's estimated physics
when the diagnosis ran) and simulates a temporal change, so the network sees this scene's spectra,
textures and sensor physics with a known answer. The loss is the training loss
(:func:`~dcstsf.training.loop.batch_loss`).

Everything is deterministic from ``seed`` and runs once per scene in the method's ``fit``: the adapted
parameters are part of the fitted state (hashed into the output's ``fitted_sha256``), so every tile uses
the same network and tiled fusion still equals whole-image fusion. ``steps=0`` switches it off.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from dcstsf.models.network import DCSTSFNet
from dcstsf.operators import ObservationModel

__all__ = ["AdaptOptions", "Adaptation", "adapt_to_scene"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdaptOptions:
    """How the learned units are adapted to a scene.

    Parameters
    ----------
    steps
        Optimiser steps (0: no adaptation).
    lr
        AdamW learning rate (constant: a few steps need no schedule).
    seed
        Seeds the simulated cases and the patches.
    patch, batch_size
        Patch size (fine pixels of the reduced-resolution case, i.e. HS(t1) pixels) and patches per step.
    eval_batches
        Batches, drawn once from a sampler of another seed, on which the loss is measured before and after.
    max_seconds
        Stop after this many seconds even if fewer than ``steps`` were made (``None``: no limit). The result
        then depends on the machine's speed, so a run that hits it logs a warning and records the steps made.
    """

    steps: int = 0
    lr: float = 5e-4
    seed: int = 0
    patch: int = 24
    batch_size: int = 4
    eval_batches: int = 2
    max_seconds: float | None = None


@dataclass(frozen=True)
class Adaptation:
    """The adapted parameters and what the adaptation did.

    ``parameters`` maps the network's parameter names to float32 arrays and ``sha256`` identifies them;
    ``loss_before``/``loss_after`` are the training loss on held batches of the scene's own cases.
    """

    parameters: dict[str, np.ndarray]
    sha256: str
    steps: int
    loss_before: float
    loss_after: float
    seconds: float


def _scene_truths(hs_windows: Sequence[np.ndarray], model: ObservationModel) -> list[xr.DataArray]:
    """HS(t1) windows as the fine truths of reduced-resolution cases (``wavelength`` coordinates as the
    sampler needs them)."""
    sensor = model.hs_sensor
    return [
        xr.DataArray(
            np.clip(np.nan_to_num(np.asarray(w, np.float32)), 0.0, 1.0), dims=("band", "y", "x"),
            coords={"band": list(sensor.band_names), "wavelength": ("band", sensor.centers_nm),
                    "y": np.arange(w.shape[1], dtype=float), "x": np.arange(w.shape[2], dtype=float)},
        )
        for w in hs_windows
    ]


def adapt_to_scene(
    net: DCSTSFNet, hs_windows: Sequence[np.ndarray], *, model: ObservationModel, options: AdaptOptions
) -> Adaptation:
    """Fine-tune a copy of ``net`` on reduced-resolution cases made from the scene's HS(t1) windows.

    ``hs_windows`` are ``(n_hs, h, w)`` windows of HS(t1) without nodata, each at least ``options.patch``
    pixels on a side. ``net`` itself is not changed.
    """
    from dcstsf.training.data import CaseSampler
    from dcstsf.training.loop import batch_loss

    t0 = time.perf_counter()
    weights = {"l1": 1.0, "sam": 0.5, "aux_t1": 0.5}
    truths = _scene_truths(hs_windows, model)
    tuned = copy.deepcopy(net)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        common = dict(model=model, patch=options.patch, batch_size=options.batch_size, rank=net.config.rank,
                      batches_per_case=4)
        held = CaseSampler(truths, seed=options.seed + 1, **common)
        eval_batches = [held.draw() for _ in range(options.eval_batches)]
        sampler = CaseSampler(truths, seed=options.seed, **common)

        def held_loss() -> float:
            tuned.eval()
            with torch.no_grad():
                return float(np.mean([batch_loss(tuned, b, model, weights)[0].item() for b in eval_batches]))

        before = held_loss()
        opt = torch.optim.AdamW(tuned.parameters(), lr=options.lr, weight_decay=0.0)
        tuned.train()
        done = 0
        for _ in range(options.steps):
            if options.max_seconds is not None and time.perf_counter() - t0 >= options.max_seconds:
                log.warning("scene adaptation stopped by its time limit (%.1f s) after %d of %d steps; the result "
                            "depends on the machine's speed", options.max_seconds, done, options.steps)
                break
            done += 1
            loss, _ = batch_loss(tuned, sampler.draw(), model, weights)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tuned.parameters(), 1.0)
            opt.step()
        after = held_loss()
    params = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in tuned.state_dict().items()}
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(name.encode() + np.ascontiguousarray(params[name]).tobytes())
    return Adaptation(params, digest.hexdigest(), done, before, after, time.perf_counter() - t0)

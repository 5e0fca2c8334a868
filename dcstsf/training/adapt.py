"""Scene adaptation (test-time training): fine-tune DC-STSF's learned units on the scene being fused.

The shipped weights were learned on other scenes. Before any tile is fused, :func:`adapt_to_scene` trains
a copy of the network for a few steps on **reduced-resolution (Wald) cases cut from the scene itself**:
HS(t1), which is real data of this scene, stands in for the fine truth; the training sampler
(:class:`~dcstsf.training.data.CaseSampler`) observes it once more through the scene's observation model
(HS one ratio coarser, MS through the spectral responses and the MS blur, the scene's estimated physics
when the diagnosis ran) and simulates a temporal change, so the network sees this scene's spectra,
textures and sensor physics with a known answer. The loss is the training loss
(:func:`~dcstsf.training.loop.batch_loss`).

A second loss needs no simulation: **full-resolution consistency** on the scene's own observations.
The network fuses random patches of the real HS(t1), MS(t1) and MS(t2) with the scene state, and its two
estimates are observed back through the scene's model: the blurred, decimated HS(t1) estimate against
HS(t1), and the responses times the HS(t1) and HS(t2) estimates (with the MS blur) against MS(t1) and
MS(t2) (band-relative L1 each, a margin of the operators' reach left out). It ties the adapted units to
the real data at the resolution the output has, where the reduced-resolution cases are one ratio coarser.

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

from dcstsf._threads import check_thread_count, fixed_threads
from dcstsf.models.network import DCSTSFNet
from dcstsf.operators import ObservationModel, Psf

__all__ = [
    "MIN_CONSISTENCY_INTERIOR", "AdaptOptions", "Adaptation", "ScenePatches", "adapt_to_scene", "consistency_loss",
    "consistency_margin", "consistency_patch", "min_consistency_patch",
]

#: Coarse pixels the full-resolution consistency loss needs inside its margins, on each axis.
MIN_CONSISTENCY_INTERIOR = 2

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
    consistency
        Weight of the full-resolution consistency loss against the reduced-resolution loss (0: off).
    threads
        CPU threads of NumPy's BLAS and of torch during the adaptation. A fixed count keeps the adapted
        parameters (and their hash in the output) the same whatever ``OMP_NUM_THREADS`` or the machine's
        cores, on CPUs of one kind; the adaptation's tensors are small, so one thread costs little.
    """

    steps: int = 0
    lr: float = 5e-4
    seed: int = 0
    patch: int = 24
    batch_size: int = 4
    eval_batches: int = 2
    max_seconds: float | None = None
    consistency: float = 1.0
    threads: int = 1

    def __post_init__(self) -> None:
        check_thread_count("AdaptOptions.threads", self.threads)


@dataclass(frozen=True)
class Adaptation:
    """The adapted parameters and what the adaptation did.

    ``parameters`` maps the network's parameter names to float32 arrays and ``sha256`` identifies them;
    ``loss_before``/``loss_after`` are the total loss (reduced-resolution plus weighted consistency) on
    held batches of the scene's own cases and patches; ``consistency_before``/``consistency_after`` the
    full-resolution consistency part alone (``nan`` when it is off); ``skipped`` the steps whose loss or
    gradient was not finite (no update). Parameters or a held loss that end up non-finite are replaced by
    the network's own (``loss_after == loss_before``).
    """

    parameters: dict[str, np.ndarray]
    sha256: str
    steps: int
    loss_before: float
    loss_after: float
    seconds: float
    consistency_before: float = float("nan")
    consistency_after: float = float("nan")
    skipped: int = 0


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


@dataclass(frozen=True)
class ScenePatches:
    """Full-resolution patches of the scene's real observations, drawn deterministically.

    ``hs``, ``ms1``, ``ms2`` are windows free of nodata (``SceneWindows`` of :mod:`dcstsf.diagnosis`);
    each draw cuts ``batch_size`` aligned patches of ``patch`` fine pixels (``patch / ratio`` coarse).
    """

    hs: Sequence[np.ndarray]
    ms1: Sequence[np.ndarray]
    ms2: Sequence[np.ndarray]
    ratio: int
    patch: int

    def draw(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(hs, ms1, ms2)`` batches ``(batch_size, bands, h, w)``."""
        r, pc = self.ratio, self.patch // self.ratio
        out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        for _ in range(batch_size):
            k = int(rng.integers(len(self.hs)))
            hc, wc = self.hs[k].shape[1:]
            i, j = int(rng.integers(0, hc - pc + 1)), int(rng.integers(0, wc - pc + 1))
            out[0].append(self.hs[k][:, i:i + pc, j:j + pc])
            out[1].append(self.ms1[k][:, i * r:(i + pc) * r, j * r:(j + pc) * r])
            out[2].append(self.ms2[k][:, i * r:(i + pc) * r, j * r:(j + pc) * r])
        return tuple(torch.from_numpy(np.stack(a).astype(np.float32)) for a in out)  # type: ignore[return-value]


def consistency_margin(model: ObservationModel) -> int:
    """Coarse pixels :func:`consistency_loss` leaves out on each side: one plus the blurs' and the shift's
    reach (the operators pad there)."""
    reach = int(np.ceil(3 * max(float(np.max(model.hs_sigma)), float(np.max(model.ms_sigma)))
                        + max(map(abs, model.hs_shift))))
    return 1 + -(-reach // model.ratio)


def min_consistency_patch(model: ObservationModel) -> int:
    """The smallest full-resolution patch (fine pixels) that leaves :data:`MIN_CONSISTENCY_INTERIOR` coarse
    pixels inside the margins of :func:`consistency_loss`."""
    return (2 * consistency_margin(model) + MIN_CONSISTENCY_INTERIOR) * model.ratio


def consistency_patch(model: ObservationModel, *, patch: int, side: int) -> int | None:
    """Fine pixels of the full-resolution patches: ``patch``, grown to :func:`min_consistency_patch`, within
    windows of ``side`` coarse pixels; ``None`` when the windows are too small for that."""
    grown = max(patch - patch % model.ratio, min_consistency_patch(model))
    return grown if grown <= side * model.ratio else None


def consistency_loss(
    net: DCSTSFNet,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    state: dict[str, torch.Tensor],
    *,
    model: ObservationModel,
) -> torch.Tensor:
    """Full-resolution consistency of the network's HS(t1) and HS(t2) estimates with the observations.

    ``relative_l1(D B X1, HS1) + relative_l1(B_ms R X1, MS1) + relative_l1(B_ms R X2, MS2)`` through the
    model's own operators, a margin of one coarse pixel plus the blurs' reach left out on each side (the
    operators pad there).
    """
    from dcstsf.training.loop import relative_l1

    hs, ms1, ms2 = batch
    out = net(hs, ms1, ms2, state, ratio=model.ratio, hs_sigma=Psf(float(np.median(model.hs_sigma)), model.hs_shift),
              ms_sigma=model.ms_sigma)
    mc = consistency_margin(model)
    mf = mc * model.ratio

    def inner(x: torch.Tensor, m: int) -> torch.Tensor:
        return x[..., m:x.shape[-2] - m, m:x.shape[-1] - m]

    loss = relative_l1(inner(model.degrade_hs(out["hs_t1"]), mc), inner(hs, mc))
    loss = loss + relative_l1(inner(model.degrade_ms(out["hs_t1"]), mf), inner(ms1, mf))
    return loss + relative_l1(inner(model.degrade_ms(out["hs_t2"]), mf), inner(ms2, mf))


def adapt_to_scene(
    net: DCSTSFNet,
    hs_windows: Sequence[np.ndarray],
    *,
    model: ObservationModel,
    options: AdaptOptions,
    observations: ScenePatches | None = None,
    state: dict[str, torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
) -> Adaptation:
    """Fine-tune a copy of ``net`` on the scene: reduced-resolution cases made from its HS(t1) windows and,
    with ``observations`` and the scene ``state``, full-resolution consistency on its real patches.

    ``hs_windows`` are ``(n_hs, h, w)`` windows of HS(t1) without nodata, each at least ``options.patch``
    pixels on a side. ``net`` itself is not changed. ``device`` is where the steps run (the returned
    parameters are host arrays).
    """
    from dcstsf.models.device import resolve_device
    from dcstsf.training.data import CaseSampler
    from dcstsf.training.loop import DEFAULT_LOSS_WEIGHTS, batch_loss, finite_step

    t0 = time.perf_counter()
    weights = dict(DEFAULT_LOSS_WEIGHTS)
    truths = _scene_truths(hs_windows, model)
    dev = resolve_device(device)
    tuned = copy.deepcopy(net).to(dev)
    full_res = observations is not None and state is not None and options.consistency > 0
    if full_res and observations is not None and observations.patch < min_consistency_patch(model):
        # an empty interior makes the loss NaN and every step would be skipped
        inside = observations.patch // model.ratio - 2 * consistency_margin(model)
        raise ValueError(
            f"full-resolution patches of {observations.patch} fine pixels leave {max(inside, 0)} coarse pixels "
            f"inside the consistency margins ({consistency_margin(model)} coarse pixels on each side); use "
            f"patches of at least {min_consistency_patch(model)} fine pixels (consistency_patch) or consistency=0"
        )
    if state is not None:
        state = {k: v.to(dev) for k, v in state.items()}
    with torch.random.fork_rng(devices=[]), fixed_threads(blas=options.threads, torch_threads=options.threads):
        torch.manual_seed(options.seed)
        common = dict(model=model, patch=options.patch, batch_size=options.batch_size, rank=net.config.rank,
                      batches_per_case=4)
        held = CaseSampler(truths, seed=options.seed + 1, **common)
        eval_batches = [held.draw().to(dev) for _ in range(options.eval_batches)]
        sampler = CaseSampler(truths, seed=options.seed, **common)
        patch_rng = np.random.default_rng([options.seed, 7])
        if full_res:
            assert observations is not None
            held_rng = np.random.default_rng([options.seed + 1, 7])
            eval_patches = [tuple(t.to(dev) for t in observations.draw(held_rng, options.batch_size))
                            for _ in range(options.eval_batches)]

        def total_loss(batch: object, patches: object | None) -> tuple[torch.Tensor, torch.Tensor | None]:
            loss, _ = batch_loss(tuned, batch, model, weights)  # type: ignore[arg-type]
            if patches is None:
                return loss, None
            assert state is not None
            cons = consistency_loss(tuned, patches, state, model=model)  # type: ignore[arg-type]
            return loss + options.consistency * cons, cons

        def held_loss() -> tuple[float, float]:
            tuned.eval()
            with torch.no_grad():
                parts = [total_loss(b, eval_patches[i] if full_res else None) for i, b in enumerate(eval_batches)]
            cons = [float(c.item()) for _, c in parts if c is not None]
            return float(np.mean([t.item() for t, _ in parts])), float(np.mean(cons)) if cons else float("nan")

        before, cons_before = held_loss()
        start = {k: v.detach().clone() for k, v in tuned.state_dict().items()}
        opt = torch.optim.AdamW(tuned.parameters(), lr=options.lr, weight_decay=0.0)
        tuned.train()
        done = skipped = 0
        for _ in range(options.steps):
            if options.max_seconds is not None and time.perf_counter() - t0 >= options.max_seconds:
                log.warning("scene adaptation stopped by its time limit (%.1f s) after %d of %d steps; the result "
                            "depends on the machine's speed", options.max_seconds, done, options.steps)
                break
            done += 1
            patches = None
            if full_res and observations is not None:
                patches = tuple(t.to(dev) for t in observations.draw(patch_rng, options.batch_size))
            loss, _ = total_loss(sampler.draw().to(dev), patches)
            if not finite_step(opt, loss, tuned.parameters(), max_norm=1.0):
                skipped += 1
        if skipped:
            log.warning("scene adaptation: %d of %d steps had a non-finite loss or gradient and were skipped",
                        skipped, done)
        after, cons_after = held_loss()
        if not (np.isfinite(after) and all(torch.isfinite(v).all() for v in tuned.state_dict().values())):
            log.warning("scene adaptation gave non-finite parameters or loss; the network is used as loaded")
            tuned.load_state_dict(start)
            after, cons_after = before, cons_before
    params = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in tuned.state_dict().items()}
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(name.encode() + np.ascontiguousarray(params[name]).tobytes())
    return Adaptation(params, digest.hexdigest(), done, before, after, time.perf_counter() - t0,
                      cons_before, cons_after, skipped)

"""On-the-fly training cases simulated from real scenes.

Each draw takes one real training scene (already resampled to the HS sensor), applies a random
flip/rotation, simulates a fusion case with a random change model and noise level
(:func:`dcstsf.simulate.simulate_case`), fits the **scene-level** state on the whole case (as
inference does, never on the patch), and cuts ``batch_size`` aligned random patches. So the model
never sees the same case twice and always sees the statistics it will get at inference.

Two options widen the distribution: scene **pairs** with their own change between the dates (synthetic
scenes whose vegetation follows real LAI trajectories and whose land cover changes,
:func:`dcstsf.training.synthetic.library_case_pair`), drawn for a fraction of the cases, and randomised
**sensor physics** per case (:mod:`dcstsf.training.degradations`): the case is simulated under a drawn
HS blur, shift and response, and the network is told the physics inference would give it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from dcstsf.models.scene import fit_scene_state, state_to_tensors
from dcstsf.operators import ObservationModel
from dcstsf.scene_stats import scene_samples
from dcstsf.simulate import ChangeParameters, FusionCase, resample_to_sensor, simulate_case, smooth_spectral_curve
from dcstsf.training.degradations import DegradationRanges, random_physics
from dcstsf.training.synthetic import ScenePair, pair_case

__all__ = ["TrainingBatch", "CaseSampler"]


@dataclass
class TrainingBatch:
    """Patches of one simulated case plus that case's scene state."""

    hs_t1: torch.Tensor
    ms_t1: torch.Tensor
    ms_t2: torch.Tensor
    hs_t2: torch.Tensor
    hs_t1_fine: torch.Tensor
    state: dict[str, torch.Tensor]
    #: the physics the network is told for this case (``None``: the sampler's model)
    model: ObservationModel | None = None

    def to(self, device: torch.device | str) -> TrainingBatch:
        """The batch with every tensor on ``device``."""
        move = {k: getattr(self, k).to(device) for k in ("hs_t1", "ms_t1", "ms_t2", "hs_t2", "hs_t1_fine")}
        return TrainingBatch(**move, state={k: v.to(device) for k, v in self.state.items()}, model=self.model)


class CaseSampler:
    """Draws :class:`TrainingBatch` objects from real scenes, deterministically from ``seed``.

    Parameters
    ----------
    scenes
        Real cubes ``(band, y, x)`` with ``wavelength`` coordinates (e.g. the EnMAP tiles).
    model
        The observation model (sensor pair, MS bands, ratio).
    patch
        Patch size in fine pixels (rounded down to a multiple of the ratio).
    batch_size
        Patches per batch (all from the same simulated case).
    rank
        Spectral subspace size of the scene state.
    change_models
        Change models drawn uniformly.
    snr_db
        ``(low, high)`` range of the HS SNR (MS: 5 dB more); 15% of cases are noise-free.
    batches_per_case
        Batches cut from one simulated case before the next is simulated (simulation and the scene
        fit cost more than a training step).
    spectral_augment
        Spectral domain randomisation: each case's cube is multiplied by ``exp(s g(lambda) + b)``
        with ``g`` a random curve smooth in wavelength (:func:`dcstsf.simulate.smooth_spectral_curve`),
        ``s ~ U(0, spectral_augment)`` and ``b ~ U(-spectral_augment, spectral_augment) / 2``; 0 turns
        it off. With a single training scene, this is what makes the scene's spectra (and so its
        fitted subspace) differ from case to case.
    pairs, pair_fraction
        Scene pairs (t1, t2 and their own change) drawn instead of a scene for a ``pair_fraction`` of the
        cases; a pair case adds a ``radiometric`` change between the dates half of the time.
    degradations
        Per-case sensor physics (:func:`~dcstsf.training.degradations.random_physics`); ``None``: every
        case is simulated and fused with ``model``.
    """

    def __init__(
        self,
        scenes: Sequence[xr.DataArray],
        *,
        model: ObservationModel,
        patch: int = 36,
        batch_size: int = 8,
        rank: int = 16,
        seed: int = 0,
        change_models: Sequence[str] = ("mixed", "phenology", "abrupt", "phenology+abrupt", "radiometric+abrupt"),
        snr_db: tuple[float, float] = (28.0, 45.0),
        batches_per_case: int = 4,
        spectral_augment: float = 0.0,
        pairs: Sequence[ScenePair] = (),
        pair_fraction: float = 0.0,
        degradations: DegradationRanges | None = None,
    ) -> None:
        if pairs and not 0.0 < pair_fraction <= 1.0:
            raise ValueError(f"pair_fraction must be in (0, 1] when pairs are given, got {pair_fraction}")
        self.model = model
        self.degradations = degradations
        self.pair_fraction = float(pair_fraction) if pairs else 0.0
        self._case_model: ObservationModel = model
        r = model.ratio
        self.patch = max(r, patch - patch % r)
        self.batch_size = batch_size
        self.rank = rank
        self.change_models = tuple(change_models)
        self.snr_db = snr_db
        self.batches_per_case = max(1, batches_per_case)
        self.spectral_augment = float(spectral_augment)
        self._case: dict[str, np.ndarray] | None = None
        self._state: dict[str, torch.Tensor] = {}
        self._uses = 0
        self._case_rng: dict[str, object] | None = None
        self.rng = np.random.default_rng(seed)
        self.scenes = [resample_to_sensor(s, model.hs_sensor) for s in scenes]
        self.scenes = [s for s in self.scenes if min(s.sizes["y"], s.sizes["x"]) >= self.patch]
        if not self.scenes:
            raise ValueError(f"no training scene is at least {self.patch} pixels on a side")
        sizes = np.array([s.sizes["y"] * s.sizes["x"] for s in self.scenes], float)
        self.weights = sizes / sizes.sum()
        self.pairs = [
            ScenePair(resample_to_sensor(p.t1, model.hs_sensor), resample_to_sensor(p.t2, model.hs_sensor),
                      p.classes_t1, p.classes_t2, p.change_mask, p.meta)
            for p in pairs if min(p.t1.sizes["y"], p.t1.sizes["x"]) >= self.patch
        ]
        if pairs and not self.pairs:
            raise ValueError(f"no training pair is at least {self.patch} pixels on a side")

    def _augment(self, *cubes: xr.DataArray) -> list[xr.DataArray]:
        """The cubes under one random rotation, flip and (optional) spectral gain."""
        k = int(self.rng.integers(4))
        flip = self.rng.random() < 0.5
        gain = None
        if self.spectral_augment > 0:
            amp = self.spectral_augment
            curve = smooth_spectral_curve(self.rng, cubes[0]["wavelength"].values.astype(float))
            gain = np.exp(self.rng.uniform(0.0, amp) * curve + self.rng.uniform(-amp, amp) / 2)
        out = []
        for cube in cubes:
            data = np.rot90(cube.values, k, axes=(1, 2))
            if flip:
                data = data[:, :, ::-1]
            if gain is not None:
                data = np.clip(data * gain[:, None, None].astype(data.dtype), 0.0, None)
            h, w = data.shape[1:]
            out.append(xr.DataArray(
                np.ascontiguousarray(data),
                dims=("band", "y", "x"),
                coords={"band": cube["band"].values, "wavelength": ("band", cube["wavelength"].values),
                        "y": np.arange(h, dtype=float), "x": np.arange(w, dtype=float)},
            ))
        return out

    def get_state(self) -> dict[str, object]:
        """Everything needed to continue the exact sequence of batches (for resumable training)."""
        return {"rng": self.rng.bit_generator.state, "case_rng": self._case_rng, "uses": self._uses}

    def set_state(self, state: dict[str, object]) -> None:
        """Restore :meth:`get_state`: the current case is re-simulated from its recorded seed state."""
        if state.get("case_rng") is not None:
            self.rng.bit_generator.state = state["case_rng"]
            self._new_case()
        self._uses = int(state["uses"])  # type: ignore[arg-type]
        self.rng.bit_generator.state = state["rng"]

    def _new_case(self) -> None:
        self._case_rng = self.rng.bit_generator.state
        true_model, told_model = self.model, self.model
        if self.degradations is not None:
            true_model, told_model = random_physics(self.model, self.rng, self.degradations)
        if self.pair_fraction > 0 and self.rng.random() < self.pair_fraction:
            case = self._pair_case(true_model)
        else:
            case = self._scene_case(true_model)
        hs, ms1, ms2 = case.arrays()
        state = fit_scene_state(scene_samples(hs, ms1, ms2, model=told_model), model=told_model, rank=self.rank)
        self._case = {
            "hs": hs, "ms1": ms1, "ms2": ms2,
            "x2": case.hs_t2_truth.values.astype(np.float32),
            "x1": case.hs_t1_truth.values.astype(np.float32),
        }
        self._case_model = told_model
        self._state = state_to_tensors(state)
        self._uses = 0

    def _noise(self) -> tuple[float | None, float | None]:
        """HS and MS SNR of a case (``None``: noise-free, 15 % of the cases)."""
        noisy = self.rng.random() < 0.85
        hs_snr = float(self.rng.uniform(*self.snr_db)) if noisy else None
        ms_snr = float(self.rng.uniform(self.snr_db[0] + 5, self.snr_db[1] + 5)) if noisy else None
        return hs_snr, ms_snr

    def _pair_case(self, model: ObservationModel) -> FusionCase:
        """A case from a scene pair: its own change, plus a radiometric change half of the time."""
        pair = self.pairs[int(self.rng.integers(len(self.pairs)))]
        t1, t2 = self._augment(pair.t1, pair.t2)
        change = "radiometric" if self.rng.random() < 0.5 else "none"
        hs_snr, ms_snr = self._noise()
        # the class maps and change mask stay unrotated: training reads only the cubes of the case
        turned = ScenePair(t1, t2, pair.classes_t1, pair.classes_t2, np.zeros(t1.shape[1:], bool), pair.meta)
        return pair_case(turned, model=model, seed=int(self.rng.integers(2**31 - 2)), hs_snr_db=hs_snr,
                         ms_snr_db=ms_snr, change=change)

    def _scene_case(self, model: ObservationModel) -> FusionCase:
        """A case from one scene with a simulated change model."""
        scene = self.scenes[int(self.rng.choice(len(self.scenes), p=self.weights))]
        (cube,) = self._augment(scene)
        change = str(self.rng.choice(self.change_models))
        params = ChangeParameters(
            phenology_amplitude=float(self.rng.uniform(0.05, 0.35)),
            phenology_scale_px=float(self.rng.uniform(3.0, 12.0)),
            abrupt_fraction=float(self.rng.uniform(0.03, 0.2)),
            abrupt_patches=int(self.rng.integers(1, 6)),
            gain_std=float(self.rng.uniform(0.0, 0.05)),
            offset_std=float(self.rng.uniform(0.0, 0.01)),
        )
        hs_snr, ms_snr = self._noise()
        return simulate_case(
            cube, model=model, change=change, seed=int(self.rng.integers(2**31)),
            hs_snr_db=hs_snr, ms_snr_db=ms_snr, params=params,
        )

    def draw(self) -> TrainingBatch:
        """One batch of aligned random patches (a new simulated case every ``batches_per_case``)."""
        if self._case is None or self._uses >= self.batches_per_case:
            self._new_case()
        assert self._case is not None
        self._uses += 1
        hs, ms1, ms2, x2, x1 = (self._case[k] for k in ("hs", "ms1", "ms2", "x2", "x1"))
        r = self.model.ratio
        pc = self.patch // r
        hc, wc = hs.shape[1:]
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("hs", "ms1", "ms2", "x2", "x1")}
        for _ in range(self.batch_size):
            i = int(self.rng.integers(0, hc - pc + 1))
            j = int(self.rng.integers(0, wc - pc + 1))
            fi, fj = slice(i * r, (i + pc) * r), slice(j * r, (j + pc) * r)
            out["hs"].append(hs[:, i:i + pc, j:j + pc])
            out["ms1"].append(ms1[:, fi, fj])
            out["ms2"].append(ms2[:, fi, fj])
            out["x2"].append(x2[:, fi, fj])
            out["x1"].append(x1[:, fi, fj])

        def stack(key: str) -> torch.Tensor:
            return torch.from_numpy(np.stack(out[key]).astype(np.float32))

        return TrainingBatch(
            hs_t1=stack("hs"), ms_t1=stack("ms1"), ms_t2=stack("ms2"),
            hs_t2=stack("x2"), hs_t1_fine=stack("x1"), state=self._state,
            model=self._case_model if self.degradations is not None else None,
        )

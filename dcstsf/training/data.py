"""On-the-fly training cases simulated from real scenes.

Each draw takes one real training scene (already resampled to the HS sensor), applies a random
flip/rotation, simulates a fusion case with a random change model and noise level
(:func:`dcstsf.simulate.simulate_case`), fits the **scene-level** state on the whole case (as
inference does, never on the patch), and cuts ``batch_size`` aligned random patches. So the model
never sees the same case twice and always sees the statistics it will get at inference.
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
from dcstsf.simulate import ChangeParameters, resample_to_sensor, simulate_case, smooth_spectral_curve

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
    ) -> None:
        self.model = model
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

    def _augment(self, cube: xr.DataArray) -> xr.DataArray:
        data = cube.values
        k = int(self.rng.integers(4))
        data = np.rot90(data, k, axes=(1, 2))
        if self.rng.random() < 0.5:
            data = data[:, :, ::-1]
        if self.spectral_augment > 0:
            amp = self.spectral_augment
            curve = smooth_spectral_curve(self.rng, cube["wavelength"].values.astype(float))
            gain = np.exp(self.rng.uniform(0.0, amp) * curve + self.rng.uniform(-amp, amp) / 2)
            data = np.clip(data * gain[:, None, None].astype(data.dtype), 0.0, None)
        h, w = data.shape[1:]
        return xr.DataArray(
            np.ascontiguousarray(data),
            dims=("band", "y", "x"),
            coords={"band": cube["band"].values, "wavelength": ("band", cube["wavelength"].values),
                    "y": np.arange(h, dtype=float), "x": np.arange(w, dtype=float)},
        )

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
        scene = self.scenes[int(self.rng.choice(len(self.scenes), p=self.weights))]
        cube = self._augment(scene)
        change = str(self.rng.choice(self.change_models))
        params = ChangeParameters(
            phenology_amplitude=float(self.rng.uniform(0.05, 0.35)),
            phenology_scale_px=float(self.rng.uniform(3.0, 12.0)),
            abrupt_fraction=float(self.rng.uniform(0.03, 0.2)),
            abrupt_patches=int(self.rng.integers(1, 6)),
            gain_std=float(self.rng.uniform(0.0, 0.05)),
            offset_std=float(self.rng.uniform(0.0, 0.01)),
        )
        noisy = self.rng.random() < 0.85
        hs_snr = float(self.rng.uniform(*self.snr_db)) if noisy else None
        ms_snr = float(self.rng.uniform(self.snr_db[0] + 5, self.snr_db[1] + 5)) if noisy else None
        case = simulate_case(
            cube, model=self.model, change=change, seed=int(self.rng.integers(2**31)),
            hs_snr_db=hs_snr, ms_snr_db=ms_snr, params=params,
        )
        hs, ms1, ms2 = case.arrays()
        state = fit_scene_state(scene_samples(hs, ms1, ms2, model=self.model), model=self.model, rank=self.rank)
        self._case = {
            "hs": hs, "ms1": ms1, "ms2": ms2,
            "x2": case.hs_t2_truth.values.astype(np.float32),
            "x1": case.hs_t1_truth.values.astype(np.float32),
        }
        self._state = state_to_tensors(state)
        self._uses = 0

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
        )

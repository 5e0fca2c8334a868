"""``dcstsf``: the DC-STSF network (SSJE cascaded into TVE) behind the common method interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcstsf.errors import WeightsError
from dcstsf.methods.base import Fitted, RegionMethod
from dcstsf.scene_stats import round_up_to_ratio, scene_samples
from dcstsf.models.checkpoint import default_weights, load_model
from dcstsf.models.network import DCSTSFConfig, DCSTSFNet
from dcstsf.models.scene import fit_scene_state, state_to_tensors
from dcstsf.operators import ObservationModel

__all__ = ["DCSTSF"]


class DCSTSF(RegionMethod):
    """DC-STSF with shipped (or given) weights.

    Parameters
    ----------
    weights
        A checkpoint written by ``dcstsf train``; default: the shipped weights for the MS band set.
    network
        An in-memory network (training, ablations); overrides ``weights``.
    max_fit_pixels
        Coarse pixels sampled for the per-scene fit.
    """

    name = "dcstsf"
    description = "DC-STSF: unrolled alternating projection (SEU+ECU) cascaded into SFTN; trained on EnMAP"
    reference = "Meng et al., Dual-Task Cascaded Network for Spatial-Temporal-Spectral Fusion, IEEE TGRS 63, 2025"

    def __init__(
        self,
        *,
        weights: str | Path | None = None,
        network: DCSTSFNet | None = None,
        max_fit_pixels: int = 60_000,
    ) -> None:
        self._weights = Path(weights) if weights is not None else None
        self._net = network
        self._sha: str | None = None
        self._meta: dict[str, Any] = {}
        self._source = ""
        self.max_fit_pixels = max_fit_pixels

    def network(self, model: ObservationModel) -> DCSTSFNet:
        """The network for this sensor setup (loads the weights once)."""
        if self._net is None:
            path, sha = (self._weights, None) if self._weights is not None else default_weights(
                ms_bands=list(model.ms_sensor.band_names),
                hs_sensor=model.hs_sensor.name,
                ms_sensor=model.ms_sensor.name,
                ratio=model.ratio,
            )
            net, payload = load_model(path, expected_sha256=sha)
            self._net, self._meta = net, payload
            from dcstsf.models.checkpoint import file_sha256

            self._sha = sha or file_sha256(path)
            self._source = str(path)
        net = self._net
        where = f"{self._source}: " if self._source else ""
        if net.config.n_ms != model.n_ms:
            raise WeightsError(
                f"{where}weights expect {net.config.n_ms} MS bands but {model.n_ms} were given "
                f"({', '.join(model.ms_sensor.band_names)}); use weights trained for this band set"
            )
        ratio = self._meta.get("sensors", {}).get("ratio", model.ratio)
        if ratio != model.ratio:
            raise WeightsError(
                f"{where}weights were trained at ratio {ratio}, the inputs have ratio {model.ratio}; "
                "use weights trained for this ratio"
            )
        return net

    @staticmethod
    def hs_sigma(model: ObservationModel) -> float:
        """The band-independent HS blur used in coefficient space (median over bands)."""
        return float(np.median(model.hs_sigma))

    def halo(self, model: ObservationModel) -> int:
        net = self.network(model)
        rf = net.receptive_field(ratio=model.ratio, hs_sigma=self.hs_sigma(model), ms_sigma=model.ms_sigma)
        return round_up_to_ratio(rf, model.ratio)

    def fit(self, hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel) -> Fitted:
        net = self.network(model)
        samples = scene_samples(hs_t1, ms_t1, ms_t2, model=model, max_pixels=self.max_fit_pixels)
        return dict(fit_scene_state(samples, model=model, rank=net.config.rank))

    def apply_region(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
        region: tuple[slice, slice],
    ) -> np.ndarray:
        """The network on the whole window (coefficient space), expanded to ``n_hs`` bands on ``region`` only."""
        net = self.network(model)
        state = state_to_tensors(fitted)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]

        with torch.inference_mode():
            out = net(
                t(hs_t1), t(ms_t1), t(ms_t2), state,
                ratio=model.ratio, hs_sigma=self.hs_sigma(model), ms_sigma=model.ms_sigma,
                crop=region, outputs=("hs_t2",),
            )["hs_t2"][0]
        return out.numpy()

    def identity(self) -> dict[str, Any]:
        info: dict[str, Any] = {"method": self.name}
        if self._sha:
            info["weights_sha256"] = self._sha
        if self._net is not None:
            info["config"] = self._net.config.to_dict()
        return info

    @classmethod
    def untrained(cls, config: DCSTSFConfig) -> DCSTSF:
        """Physics-only DC-STSF (learned units at their zero initialisation)."""
        return cls(network=DCSTSFNet(config).eval())

"""``dcstsf``: the DC-STSF network (SSJE cascaded into TVE) behind the common method interface."""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcstsf.diagnosis.windows import SceneWindows, WindowOptions, scene_windows
from dcstsf.errors import DcstsfInputError, NoShippedWeightsError, WeightsError
from dcstsf.methods.base import Fitted, RegionMethod
from dcstsf.models.checkpoint import default_weights, load_model
from dcstsf.models.local_map import LocalMapOptions
from dcstsf.models.ms_noise import MsNoiseOptions, estimate_ms_noise
from dcstsf.models.network import DCSTSFConfig, DCSTSFNet, physics_only_network
from dcstsf.models.scene import fit_scene_state, state_to_tensors
from dcstsf.operators import ObservationModel, Psf
from dcstsf.scene_stats import (
    SceneSamples,
    fit_spectral_map,
    round_up_to_ratio,
    scene_samples,
    usable_ms_bands,
)
from dcstsf.training.adapt import Adaptation, AdaptOptions

__all__ = ["DCSTSF", "DEFAULT_MS_NOISE"]

#: The noise-aware MS consistency DC-STSF fuses with unless told otherwise: none, as the validation rule
#: in ``docs/results.md`` chose (the steps follow MS residuals that a response mismatch causes).
DEFAULT_MS_NOISE = MsNoiseOptions(steps=0)

log = logging.getLogger(__name__)


def _fit_band_fill(samples: SceneSamples, usable: np.ndarray, *, model: ObservationModel) -> np.ndarray:
    """Affine map ``(n_usable + 1, n_degenerate)`` from the usable MS bands to each degenerate band as
    HS(t1) sees it (``R HS(t1)``), fitted on the scene's coarse samples."""
    target = samples.hs.astype(np.float64) @ model.srf[~usable].astype(np.float64).T
    return fit_spectral_map(samples.ms1[:, usable], target)


def _fill_bands(ms: np.ndarray, bands: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``ms`` ``(n_ms, ...)`` with the bands ``bands`` replaced by ``fill`` applied to the other bands."""
    keep = np.setdiff1d(np.arange(ms.shape[0]), bands)
    out = np.array(ms, copy=True)
    out[bands] = np.tensordot(fill[:-1].T, ms[keep], axes=1) + fill[-1].reshape(-1, *([1] * (ms.ndim - 1)))
    return out


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
    adapt
        Scene adaptation of the learned units before fusion (:mod:`dcstsf.training.adapt`); default: what
        the shipped weights' manifest says for the setup (chosen by the validation rule in
        ``docs/results.md``), off for other weights.
    local_map
        TVE's MS -> HS map per window of the scene instead of the scene's one global map
        (:mod:`dcstsf.models.local_map`); default: what the weights' configuration says (the global map
        for the shipped weights and the physics-only network).
    ms_noise
        The noise-aware MS consistency steps after the network's own (:mod:`dcstsf.models.ms_noise`);
        default :data:`DEFAULT_MS_NOISE` (none), for any network; ``MsNoiseOptions()`` for two steps.
    device
        Where the network runs (adaptation and fusion): ``"auto"`` (a CUDA device when present, else the
        CPU), ``"cpu"`` or ``"cuda"`` (:func:`dcstsf.models.device.resolve_device`). The output is moved
        back to host memory tile by tile.
    """

    name = "dcstsf"
    description = (
        "DC-STSF: unrolled alternating projection (SSJE) cascaded into SFTN; learned parts trained on EnMAP and "
        "library scenes as validated per band set, physics-only where no weights apply"
    )
    reference = "Meng et al., Dual-Task Cascaded Network for Spatial-Temporal-Spectral Fusion, IEEE TGRS 63, 2025"

    def __init__(
        self,
        *,
        weights: str | Path | None = None,
        network: DCSTSFNet | None = None,
        max_fit_pixels: int = 60_000,
        adapt: AdaptOptions | None = None,
        local_map: LocalMapOptions | None = None,
        ms_noise: MsNoiseOptions | None = None,
        device: str = "auto",
    ) -> None:
        from dcstsf.models.device import resolve_device

        self.device = resolve_device(device)
        self._weights = Path(weights) if weights is not None else None
        self._net = network
        self._sha: str | None = None
        self._meta: dict[str, Any] = {}
        self._source = ""
        # the MS band order the loaded weights read (None: unknown, e.g. an in-memory network)
        self._order: tuple[str, ...] | None = None
        self.max_fit_pixels = max_fit_pixels
        # None: the default of the shipped weights for the setup (none for other weights)
        self._adapt_given = adapt
        self.adapt = adapt if adapt is not None else AdaptOptions()
        self._adaptation: Adaptation | None = None
        # networks with scene-adapted parameters, by the hash of those parameters (one per fitted scene)
        self._adapted: dict[str, DCSTSFNet] = {}
        self._adapted_lock = threading.Lock()
        self.local_map = local_map
        self.ms_noise = ms_noise if ms_noise is not None else DEFAULT_MS_NOISE

    def __getstate__(self) -> dict[str, Any]:
        # A Dask cluster pickles the method into every tile task: the lock cannot travel, and the networks
        # with adapted parameters are rebuilt from the fitted state where the tile runs.
        state = self.__dict__.copy()
        state.pop("_adapted_lock", None)
        state["_adapted"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._adapted_lock = threading.Lock()

    def _load(self, model: ObservationModel) -> DCSTSFNet:
        """:meth:`_resolve`'s network, with :attr:`local_map` (when given) and :attr:`ms_noise` in its
        configuration."""
        net = self._resolve(model)
        changes: dict[str, Any] = {}
        lm = self.local_map
        if lm is not None and (net.config.local_map_radius, net.config.local_map_ridge) != (lm.radius, lm.ridge):
            changes.update(local_map_radius=lm.radius, local_map_ridge=lm.ridge)
        noise = self.ms_noise
        if (net.config.ms_noise_steps, net.config.ms_noise_window) != (noise.steps, noise.window):
            changes.update(ms_noise_steps=noise.steps, ms_noise_window=noise.window)
        if changes:
            # a shallow copy shares the parameters; the caller's network keeps its own configuration
            net = copy.copy(net)
            net.config = dataclasses.replace(net.config, **changes)
            self._net = net
        return net

    def _resolve(self, model: ObservationModel) -> DCSTSFNet:
        """The network, its weights loaded once: the given file, else the shipped weights for the model's MS
        band set (in any order). Records the band order the weights read."""
        if self._net is None:
            if self._weights is not None:
                path, sha, order = self._weights, None, None
            else:
                try:
                    shipped = default_weights(
                        ms_bands=list(model.ms_sensor.band_names),
                        hs_sensor=model.hs_sensor.name,
                        ms_sensor=model.ms_sensor.name,
                        ratio=model.ratio,
                    )
                except NoShippedWeightsError as exc:
                    return self._physics_only(model, str(exc))
                if self._adapt_given is None:
                    self.adapt = AdaptOptions(steps=shipped.adapt_steps)
                if shipped.default_network == "physics-only":
                    return self._physics_only(model, (
                        f"the shipped weights {shipped.path.name} lose to the physics-only network on the library "
                        "validation (docs/results.md)"
                    ), fallback=False)
                path, sha, order = shipped.path, shipped.sha256, shipped.ms_bands
            net, payload = load_model(path, expected_sha256=sha)
            if order is None:
                trained = payload.get("sensors", {}).get("ms_bands")
                order = tuple(str(b) for b in trained) if trained else None
            self._net, self._meta, self._order = net, payload, order
            from dcstsf.models.checkpoint import file_sha256

            self._sha = sha or file_sha256(path)
            self._source = str(path)
        return self._net

    def _physics_only(self, model: ObservationModel, reason: str, *, fallback: bool = True) -> DCSTSFNet:
        """The physics-only network, its learned units at their zero initialisation (the classical unrolled
        iteration), for these bands: when no shipped weights apply (``fallback``), or when the validation
        rule chose it over the shipped weights for this setup."""
        log.info("dcstsf: %s; fusing with the physics-only network (learned units at zero)", reason.split(";")[0])
        self._net = physics_only_network(DCSTSFConfig(n_ms=model.n_ms))
        why = "no shipped weights for this setup" if fallback else reason
        self._meta = {"weights": f"none: physics-only network, {why}"}
        self._order, self._sha, self._source = None, None, ""
        return self._net

    def ms_band_order(self, model: ObservationModel) -> list[str] | None:
        """The MS band order the weights read, when the model's MS bands are that set (in any order).

        Loads the weights (shipped ones are found by the band set). ``None`` when the order is unknown (an
        in-memory network, a checkpoint without band names) or the weights were trained on other bands
        (:meth:`network` then says so).
        """
        self._load(model)
        if self._order is None or sorted(self._order) != sorted(model.ms_sensor.band_names):
            return None
        return list(self._order)

    def network(self, model: ObservationModel) -> DCSTSFNet:
        """The network for this sensor setup (loads the weights once).

        Raises
        ------
        WeightsError
            No weights for the band set or ratio; weights that do not fit the model.
        DcstsfInputError
            The model's MS bands are the weights' bands in another order (put them in
            :meth:`ms_band_order` first, :func:`dcstsf.engine.bands.reorder_ms_bands`).
        """
        net = self._load(model)
        where = f"{self._source}: " if self._source else ""
        if net.config.n_ms != model.n_ms:
            given = list(model.ms_sensor.band_names)
            subset = self._order is not None and set(self._order) < set(given)
            raise WeightsError(
                f"{where}weights expect {net.config.n_ms} MS bands but {model.n_ms} were given "
                f"({', '.join(given)}); "
                + (f"fuse with their bands only (ms_bands={list(self._order)}, CLI --ms-bands {','.join(self._order)}) "
                   "or use weights trained for this band set" if subset else "use weights trained for this band set")
            )
        ratio = self._meta.get("sensors", {}).get("ratio", model.ratio)
        if ratio != model.ratio:
            raise WeightsError(
                f"{where}weights were trained at ratio {ratio}, the inputs have ratio {model.ratio}; "
                "use weights trained for this ratio"
            )
        names = list(model.ms_sensor.band_names)
        order = self.ms_band_order(model)
        if order is not None and order != names:
            # the network reads channels by position: bands in another order would be silently mixed up
            raise DcstsfInputError(
                f"{where}weights read the MS bands in the order {', '.join(order)} but the model lists them as "
                f"{', '.join(names)}; put the MS arrays and the model in the weights' order with "
                "dcstsf.engine.bands.reorder_ms_bands(ms_t1, ms_t2, model, method.ms_band_order(model))"
            )
        return net

    @staticmethod
    def hs_sigma(model: ObservationModel) -> Psf:
        """The band-independent HS blur used in coefficient space: the median over bands, displaced by the
        model's HS shift."""
        return Psf(float(np.median(model.hs_sigma)), model.hs_shift)

    def halo(self, model: ObservationModel) -> int:
        net = self.network(model)
        rf = net.receptive_field(ratio=model.ratio, hs_sigma=self.hs_sigma(model), ms_sigma=model.ms_sigma)
        return round_up_to_ratio(rf, model.ratio)

    def fit(self, hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel) -> Fitted:
        net = self.network(model)
        samples = scene_samples(hs_t1, ms_t1, ms_t2, model=model, max_pixels=self.max_fit_pixels)
        usable = usable_ms_bands(samples, model=model, method=self.name)
        fitted: Fitted
        if usable.all():
            fitted = dict(fit_scene_state(samples, model=model, rank=net.config.rank))
        else:
            # The network reads every MS band it was trained with, so a degenerate band cannot be left out
            # as the other methods do: it is replaced, at both dates, by its prediction from the usable
            # bands through HS(t1). The network then sees a band with the texture and the spread it
            # expects, and the band adds no information of its own (it is a combination of the others).
            bands = np.flatnonzero(~usable)
            fill = _fit_band_fill(samples, usable, model=model)
            samples = SceneSamples(
                samples.hs, _fill_bands(samples.ms1.T, bands, fill).T, _fill_bands(samples.ms2.T, bands, fill).T
            )
            fitted = dict(fit_scene_state(samples, model=model, rank=net.config.rank))
            fitted["ms_fill_bands"] = bands
            fitted["ms_fill_map"] = fill.astype(np.float32)
        if net.config.ms_noise_steps <= 0 and self.adapt.steps <= 0:
            return fitted
        # the scene's sample windows, read once for the noise estimate and the adaptation
        windows = scene_windows(hs_t1, ms_t1, ms_t2, model=model, options=WindowOptions(size=64, count=4))
        if net.config.ms_noise_steps > 0:
            ms1, ms2 = self._network_ms(fitted, windows)
            sigma = estimate_ms_noise(ms1, ms2) if ms1 else np.full(model.n_ms, np.inf)
            # in the units of the normalised MS the network works in
            fitted["ms_noise"] = (sigma / np.asarray(fitted["ms_sigma"], np.float64)).astype(np.float32)
            log.info("dcstsf: MS noise estimated from MS(t2) - MS(t1): %s",
                     ", ".join(f"{b} {v:.2g}" for b, v in zip(model.ms_sensor.band_names, sigma, strict=True)))
        self._adapt_units(fitted, net, windows, model=model)
        return fitted

    @staticmethod
    def _network_ms(fitted: Fitted, windows: SceneWindows) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The windows' MS(t1) and MS(t2) as the network reads them (degenerate bands filled)."""
        ms1, ms2 = list(windows.ms1), list(windows.ms2)
        if "ms_fill_bands" in fitted:
            bands, fill = np.asarray(fitted["ms_fill_bands"]), np.asarray(fitted["ms_fill_map"])
            ms1 = [_fill_bands(w, bands, fill) for w in ms1]
            ms2 = [_fill_bands(w, bands, fill) for w in ms2]
        return ms1, ms2

    def _adapt_units(self, fitted: Fitted, net: DCSTSFNet, windows: SceneWindows, *, model: ObservationModel) -> None:
        """With ``adapt.steps > 0``: the network's parameters fine-tuned on the scene's ``windows`` (its learned
        units, SFTN and step sizes, whichever it has) go into ``fitted``."""
        if self.adapt.steps <= 0:
            return
        from dcstsf.training.adapt import ScenePatches, adapt_to_scene, consistency_patch

        r = model.ratio
        # patches of at most the smallest window (a small scene is one window), whole coarse pixels
        side = min((min(w.shape[1:]) for w in windows.hs), default=0)
        patch = min(self.adapt.patch, side - side % r)
        if patch < 4 * r:
            log.info("dcstsf: no window of HS(t1) free of nodata and %d pixels wide; the units are not adapted",
                     4 * r)
            return
        options = dataclasses.replace(self.adapt, patch=patch)
        ms1, ms2 = self._network_ms(fitted, windows)
        full_patch = consistency_patch(model, patch=patch, side=side) if options.consistency > 0 else None
        observations = None
        if full_patch is not None:
            observations = ScenePatches(list(windows.hs), ms1, ms2, ratio=r, patch=full_patch)
        elif options.consistency > 0:
            log.info("dcstsf: the scene's windows (%d coarse pixels) are too small for the full-resolution "
                     "consistency loss; the units are adapted on the reduced-resolution loss alone", side)
        adaptation = adapt_to_scene(net, list(windows.hs), model=model, options=options,
                                    observations=observations, state=state_to_tensors(fitted), device=self.device)
        self._adaptation = adaptation
        fitted["adapted_parameters"] = adaptation.parameters
        fitted["adapted_sha256"] = adaptation.sha256
        log.info("dcstsf: units adapted to the scene in %d steps (%.1f s): held loss %.4f -> %.4f "
                 "(full-resolution consistency %.4f -> %.4f)", adaptation.steps, adaptation.seconds,
                 adaptation.loss_before, adaptation.loss_after, adaptation.consistency_before,
                 adaptation.consistency_after)

    def _network_for(self, fitted: Fitted, model: ObservationModel) -> DCSTSFNet:
        """The network on :attr:`device` with the fitted scene's adapted parameters (the loaded one without
        adaptation)."""
        net = self.network(model)
        params = fitted.get("adapted_parameters")
        # identified by the hash computed once in fit, not re-hashed for every tile
        key = str(fitted["adapted_sha256"]) if params else "loaded"
        with self._adapted_lock:
            if key not in self._adapted:
                tuned = copy.deepcopy(net) if params or self.device.type != "cpu" else net
                if params:
                    tuned.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in params.items()})
                self._adapted[key] = tuned.to(self.device).eval()
            return self._adapted[key]

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
        return self._estimates(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted, region=region, outputs=("hs_t2",))[
            "hs_t2"
        ]

    def estimates(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
        region: tuple[slice, slice] | None = None,
        outputs: tuple[str, ...] = ("hs_t2",),
    ) -> dict[str, np.ndarray]:
        """The network's estimates on one window: ``"hs_t2"`` (the fusion result) and, when asked for in
        ``outputs``, ``"hs_t1"``, SSJE's fine-grid estimate of HS(t1) that TVE starts from.

        ``fitted`` is this method's :meth:`fit` of the scene; ``region`` (two slices of the fine grid, default
        the whole window) is where the ``n_hs``-band estimates are expanded. Each is ``(n_hs, y, x)`` float32.
        The window must be free of nodata (NaN, Inf): fuse through :func:`dcstsf.fuse` or
        :func:`dcstsf.methods.fuse_arrays` for scenes with nodata.
        """
        unknown = set(outputs) - {"hs_t1", "hs_t2"}
        if unknown or not outputs:
            raise ValueError(f"outputs must name 'hs_t1' and/or 'hs_t2'; got {outputs!r}")
        for name, values in (("hs_t1", hs_t1), ("ms_t1", ms_t1), ("ms_t2", ms_t2)):
            if not np.isfinite(np.asarray(values)).all():
                raise ValueError(
                    f"DCSTSF.estimates: {name} holds NaN or Inf; it reads windows free of nodata. Fill or crop the "
                    "nodata first, or fuse the scene with dcstsf.fuse, which handles nodata"
                )
        if region is None:
            region = (slice(0, ms_t1.shape[-2]), slice(0, ms_t1.shape[-1]))
        return self._estimates(hs_t1, ms_t1, ms_t2, model=model, fitted=fitted, region=region, outputs=outputs)

    def _estimates(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
        region: tuple[slice, slice],
        outputs: tuple[str, ...],
    ) -> dict[str, np.ndarray]:
        """:meth:`estimates` on a window the engine has already filled (no checks)."""
        net = self._network_for(fitted, model)
        state = state_to_tensors(fitted, device=self.device)
        if "ms_fill_bands" in fitted:
            bands, fill = np.asarray(fitted["ms_fill_bands"]), np.asarray(fitted["ms_fill_map"])
            ms_t1 = _fill_bands(np.asarray(ms_t1, np.float32), bands, fill)
            ms_t2 = _fill_bands(np.asarray(ms_t2, np.float32), bands, fill)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None].to(self.device)

        with torch.inference_mode():
            out = net(
                t(hs_t1), t(ms_t1), t(ms_t2), state,
                ratio=model.ratio, hs_sigma=self.hs_sigma(model), ms_sigma=model.ms_sigma,
                crop=region, outputs=tuple(outputs),
            )
        return {name: value[0].cpu().numpy() for name, value in out.items()}

    @property
    def weights_source(self) -> str:
        """The weights file in use ("" before the weights are loaded or for an in-memory network)."""
        return self._source

    def identity(self) -> dict[str, Any]:
        info: dict[str, Any] = {"method": self.name}
        if "weights" in self._meta and self._sha is None:
            info["weights"] = self._meta["weights"]
        if self._sha:
            info["weights_sha256"] = self._sha
        if self._net is not None:
            info["config"] = self._net.config.to_dict()
        if self.adapt.steps > 0:
            info["adapt"] = {"steps": self.adapt.steps, "lr": self.adapt.lr, "seed": self.adapt.seed,
                             "consistency": self.adapt.consistency, "threads": self.adapt.threads}
            if self._adaptation is not None:
                a = self._adaptation
                info["adapt"].update(steps_made=a.steps, loss_before=round(a.loss_before, 6),
                                     loss_after=round(a.loss_after, 6), seconds=round(a.seconds, 2))
                if a.skipped:
                    info["adapt"]["steps_skipped"] = a.skipped
                if np.isfinite(a.consistency_before):
                    info["adapt"].update(consistency_before=round(a.consistency_before, 6),
                                         consistency_after=round(a.consistency_after, 6))
        return info

    @classmethod
    def untrained(cls, config: DCSTSFConfig) -> DCSTSF:
        """Physics-only DC-STSF (learned units at their zero initialisation)."""
        return cls(network=physics_only_network(config))

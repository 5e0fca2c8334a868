"""``dcstsf train``: seeded, deterministic, resumable training of DC-STSF on simulated cases.

Losses (weights in the config's ``loss`` section): band-relative L1 on HS(t2) (:func:`relative_l1`),
mean spectral angle (radians) on HS(t2), an auxiliary band-relative L1 on the latent HS(t1)
(supervises SSJE directly), and optionally the mean over bands of the log of each band's mean squared
error on HS(t2) (:func:`band_log_mse`, what the per-band PSNR averages). AdamW with linear warm-up
and cosine decay. Every ``checkpoint_every`` steps ``last.pt`` is written atomically with the model,
optimiser, scheduler and every random-number state, so a killed run resumes to the same result; the
loss log (``loss.csv``) is rewritten up to the resumed step.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from dcstsf._threads import fixed_threads
from dcstsf.errors import DcstsfInputError
from dcstsf.models.checkpoint import NORMALISATION, load_checkpoint, save_checkpoint
from dcstsf.models.network import PHYSICS_STEP_SIZES, DCSTSFConfig, DCSTSFNet
from dcstsf.operators import ObservationModel, Psf
from dcstsf.training.data import CaseSampler, TrainingBatch
from dcstsf.training.degradations import DegradationRanges

__all__ = [
    "DEFAULT_LOSS_WEIGHTS", "band_log_mse", "batch_loss", "finite_step", "load_config", "relative_l1", "spectral_angle_loss", "train", "training_pairs",
    "training_scenes",
]

log = logging.getLogger(__name__)

#: The loss weights of a training config without a ``loss`` section; scene adaptation uses them too.
DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"l1": 1.0, "sam": 0.5, "aux_t1": 0.5, "band_log_mse": 0.0}

_DEFAULTS: dict[str, Any] = {
    "sensors": {"hs_sensor": "zy1-02d-ahsi", "ms_sensor": "sentinel-2a",
                "ms_bands": ["B02", "B03", "B04", "B08"], "ratio": 3},
    "model": {},
    "data": {"scenes": "enmap_potsdam", "patch": 36, "batch_size": 8, "snr_db": [28.0, 45.0],
             "batches_per_case": 4, "spectral_augment": 0.0, "pairs": 0, "pair_fraction": 0.0,
             "degradations": {}},
    "train": {"steps": 1000, "lr": 2e-3, "weight_decay": 1e-4, "warmup": 50, "seed": 0,
              "checkpoint_every": 100, "threads": 2, "grad_clip": 1.0, "device": "cpu", "frozen": [],
              "physics_after": []},
    "loss": DEFAULT_LOSS_WEIGHTS,
    "output": "runs/dcstsf",
}


def load_config(path_or_dict: str | Path | dict[str, Any]) -> dict[str, Any]:
    """A training config (YAML path or dict) merged over the defaults; unknown sections are errors."""
    if isinstance(path_or_dict, dict):
        raw, where = path_or_dict, "config"
    else:
        where = str(path_or_dict)
        try:
            raw = yaml.safe_load(Path(path_or_dict).read_text()) or {}
        except FileNotFoundError as exc:
            raise DcstsfInputError(f"{where}: config file not found") from exc
        except yaml.YAMLError as exc:
            raise DcstsfInputError(f"{where}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise DcstsfInputError(f"{where}: a training config is a mapping of sections, got {type(raw).__name__}")
    unknown = set(raw) - set(_DEFAULTS) - {"name", "description"}
    if unknown:
        raise DcstsfInputError(f"{where}: unknown config section(s) {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
    for section, defaults in _section_defaults().items():
        if section in raw and raw[section] is not None:
            _check_section(raw[section], defaults, f"{where}: {section}")
    cfg: dict[str, Any] = {}
    for key, default in _DEFAULTS.items():
        value = raw.get(key, default)
        cfg[key] = {**default, **value} if isinstance(default, dict) else value
    cfg["name"] = raw.get("name", Path(str(cfg["output"])).name)
    cfg["description"] = raw.get("description", "")
    return cfg


#: Keys a section may hold beyond those of :data:`_DEFAULTS`, with the default their code uses.
_OPTIONAL_KEYS: dict[str, dict[str, Any]] = {"train": {"blas_threads": 0}}


def _section_defaults() -> dict[str, dict[str, Any]]:
    """Each section's known keys and their defaults: ``_DEFAULTS``, the optional keys, and ``model``'s from
    :class:`DCSTSFConfig` (the sensors give ``n_ms``)."""
    out = {k: {**v, **_OPTIONAL_KEYS.get(k, {})} for k, v in _DEFAULTS.items() if isinstance(v, dict)}
    out["model"] = {f.name: f.default for f in dataclasses.fields(DCSTSFConfig) if f.name != "n_ms"}
    return out


def _check_section(values: Any, defaults: Mapping[str, Any], where: str) -> None:
    """Unknown keys (a typo would otherwise be ignored silently) and values of the wrong kind are errors."""
    if not isinstance(values, dict):
        raise DcstsfInputError(f"{where} must be a mapping of keys to values, got {values!r}")
    for key, value in values.items():
        if key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise DcstsfInputError(f"{where}: unknown key '{key}'{hint}; known: {', '.join(sorted(defaults))}")
        default = defaults[key]
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, (int, float)):
            ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif isinstance(default, str):
            ok, kind = isinstance(value, str), "a string"
        elif isinstance(default, (list, tuple)):
            ok, kind = isinstance(value, (list, tuple)), "a list"
        else:
            ok, kind = True, ""
        if not ok:
            raise DcstsfInputError(f"{where}.{key} must be {kind}, got {value!r}")


#: Synthetic scenes added to the EnMAP scenes by the ``enmap_potsdam+libraries`` set.
LIBRARY_SCENES = 24


def training_scenes(name: str) -> list[Any]:
    """The training scenes.

    ``enmap_potsdam``: the real 64x128 block plus the tiles outside it. ``enmap_potsdam+libraries``: those
    and :data:`LIBRARY_SCENES` synthetic 96 x 96 scenes with the EnMAP land-cover structure and spectra of
    the training libraries only (:data:`dcstsf.training.synthetic.TRAINING_LIBRARIES`; the validation
    libraries stay out), drawn from a fixed seed.
    """
    from dcstsf import datasets

    if name not in ("enmap_potsdam", "enmap_potsdam+libraries"):
        raise DcstsfInputError(
            f"unknown training scene set {name!r}; available offline: 'enmap_potsdam', 'enmap_potsdam+libraries' "
            "(the evaluation-only scenes must never be used for training)"
        )
    block = datasets.load_enmap_potsdam_block()
    block_tiles = {(c, r) for c in (160, 192) for r in (64, 96, 128, 160)}
    others = [t for t in datasets.load_enmap_potsdam_tiles()
              if (t.attrs.get("tile_col"), t.attrs.get("tile_row")) not in block_tiles]
    scenes = [block, *others]
    if name == "enmap_potsdam+libraries":
        scenes += _library_scenes(LIBRARY_SCENES)
    return scenes


def _library_scenes(n: int, *, seed: int = 0) -> list[Any]:
    """``n`` synthetic training scenes from the training libraries (deterministic from ``seed``)."""
    from dcstsf.training.libraries import load_libraries
    from dcstsf.training.synthetic import TRAINING_LIBRARIES, landcover_classes, library_scene

    libraries = load_libraries(names=TRAINING_LIBRARIES)
    names = sorted(libraries)
    rng = np.random.default_rng(seed)
    return [
        library_scene(classes=landcover_classes(rng, shape=(96, 96)), library=libraries[names[i % len(names)]],
                      sensor="zy1-02d-ahsi", rng=rng)
        for i in range(n)
    ]


def training_pairs(n: int, *, seed: int = 1, size: int = 96) -> list[Any]:
    """``n`` synthetic scene pairs from the training libraries, with real-LAI and land-cover change.

    Deterministic from ``seed`` (pair ``i`` from ``default_rng([seed, i])``), drawn from
    :data:`~dcstsf.training.synthetic.TRAINING_LIBRARIES` in turn with PROSAIL vegetation where installed;
    the validation libraries stay out.
    """
    if n <= 0:
        return []
    from dcstsf.training.libraries import load_libraries
    from dcstsf.training.synthetic import TRAINING_LIBRARIES, landcover_classes, library_case_pair

    libraries = load_libraries(names=TRAINING_LIBRARIES)
    pairs = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        name = TRAINING_LIBRARIES[i % len(TRAINING_LIBRARIES)]
        classes = landcover_classes(rng, shape=(size, size))
        pairs.append(library_case_pair(classes=classes, library=libraries[name], sensor="zy1-02d-ahsi", rng=rng))
    return pairs


def relative_l1(pred: torch.Tensor, ref: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """L1 error of each band divided by the band's mean reference value (ERGAS-like).

    Plain L1 in reflectance lets dark (visible) bands carry almost no weight, and a model trained on
    it trades their accuracy away (several dB PSNR in the 450-650 nm bands) for bright NIR/SWIR bands.
    """
    scale = ref.abs().mean(dim=(0, 2, 3), keepdim=True) + eps
    return ((pred - ref).abs() / scale).mean()


def band_log_mse(pred: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over bands of ``ln(mse_band + eps)`` for ``(B, C, H, W)`` tensors.

    The per-band PSNR averaged over bands is ``-10 / ln 10`` times this (data range 1): every band counts by
    its relative error, so a band already close to its truth is not traded away for a large-error band,
    as band-relative L1 allows.
    """
    mse = ((pred - ref) ** 2).mean(dim=(0, 2, 3))
    return torch.log(mse + eps).mean()


def spectral_angle_loss(pred: torch.Tensor, ref: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean spectral angle (radians) over pixels of ``(B, C, H, W)`` tensors."""
    num = (pred * ref).sum(dim=1)
    den = pred.norm(dim=1) * ref.norm(dim=1) + eps
    return torch.acos(torch.clamp(num / den, -1 + 1e-6, 1 - 1e-6)).mean()


def batch_loss(
    net: DCSTSFNet, batch: TrainingBatch, model: ObservationModel, weights: dict[str, float]
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of ``net`` on one batch (weights ``l1``, ``sam``, ``aux_t1``, ``band_log_mse``) and its
    parts.

    The network is told the batch's own physics when the sampler randomises it (``batch.model``).
    """
    model = batch.model or model
    out = net(
        batch.hs_t1, batch.ms_t1, batch.ms_t2, batch.state,
        ratio=model.ratio, hs_sigma=Psf(float(np.median(model.hs_sigma)), model.hs_shift), ms_sigma=model.ms_sigma,
    )
    l1 = relative_l1(out["hs_t2"], batch.hs_t2)
    sam = spectral_angle_loss(out["hs_t2"], batch.hs_t2)
    aux = relative_l1(out["hs_t1"], batch.hs_t1_fine)
    total = weights["l1"] * l1 + weights["sam"] * sam + weights["aux_t1"] * aux
    if weights.get("band_log_mse", 0.0):
        total = total + weights["band_log_mse"] * band_log_mse(out["hs_t2"], batch.hs_t2)
    parts = {"loss": total.item(), "l1": l1.item(), "sam_rad": sam.item(), "aux_t1": aux.item()}
    return total, parts


#: Options added after the first weights were trained, by config section, with the value those weights were
#: trained with: left out of the fingerprint while they have that value, so that the configs of those
#: weights keep their fingerprint (and resume their runs).
_OPTIONAL = {
    "data": {"pairs": 0, "pair_fraction": 0.0, "degradations": {}},
    "model": {"keep_remainder": True},
    "loss": {"band_log_mse": 0.0},
    "train": {"frozen": [], "physics_after": []},
}

#: Parameters ``train.frozen`` may name: the unrolled iteration's step sizes, kept at their physics values
#: (:data:`~dcstsf.models.network.PHYSICS_STEP_SIZES`). ``train.physics_after`` may name the same: trained
#: with the rest, then set to their physics values in the final weights.
FREEZABLE = tuple(PHYSICS_STEP_SIZES)


def finite_step(
    opt: torch.optim.Optimizer, loss: torch.Tensor, parameters: Iterable[torch.nn.Parameter], *, max_norm: float
) -> bool:
    """Backpropagate ``loss``, clip the gradient norm to ``max_norm`` and step ``opt``, unless the loss or the
    gradient is not finite: one degenerate batch must not turn every parameter into NaN. Whether it stepped."""
    opt.zero_grad()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    if torch.isfinite(loss) and torch.isfinite(norm):
        opt.step()
        return True
    return False


def _fingerprint(cfg: dict[str, Any]) -> str:
    """What identifies a training run: the config sections that change its result."""
    sections = {k: cfg[k] for k in ("sensors", "model", "data", "train", "loss")}
    for name, optional in _OPTIONAL.items():
        sections[name] = {k: v for k, v in cfg[name].items() if optional.get(k, object()) != v}
    # the device and the BLAS threads change rounding only: a run may resume on another device
    sections["train"] = {k: v for k, v in sections["train"].items() if k not in ("device", "blas_threads")}
    return json.dumps(sections, sort_keys=True)


def _lr_factor(step: int, *, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train(
    config: str | Path | dict[str, Any],
    *,
    output: str | Path | None = None,
    steps: int | None = None,
    resume: bool = True,
    progress: bool = True,
    scenes: list[Any] | None = None,
    stop_after: int | None = None,
    device: str | None = None,
) -> Path:
    """Train DC-STSF; returns the path of the final checkpoint (``final.pt`` in the output dir).

    ``scenes`` overrides the config's training scenes (tests pass tiny synthetic cubes).
    ``stop_after`` stops at that step with a resumable ``last.pt`` (returned) instead of finishing,
    exactly as an interrupted run would; the same call without it resumes. ``device`` overrides the
    config's ``train.device`` (``"cpu"`` by default, so that the shipped weights reproduce bit for bit;
    ``"auto"`` or ``"cuda"`` train on a GPU, equal to the CPU run up to rounding).
    """
    cfg = load_config(config)
    if steps is not None:
        cfg["train"]["steps"] = int(steps)
    # NumPy's BLAS computes every training case's scene statistics: a fixed thread count makes a config
    # reproduce its weights wherever it runs (torch's count is set from ``train.threads`` in ``_train``)
    with fixed_threads(blas=int(cfg["train"].get("blas_threads") or cfg["train"]["threads"])):
        return _train(cfg, output=output, resume=resume, progress=progress, scenes=scenes, stop_after=stop_after,
                      device=device)


def _train(
    cfg: dict[str, Any],
    *,
    output: str | Path | None,
    resume: bool,
    progress: bool,
    scenes: list[Any] | None,
    stop_after: int | None,
    device: str | None,
) -> Path:
    """:func:`train` with the config loaded and the BLAS threads fixed."""
    from dcstsf.models.device import resolve_device

    out_dir = Path(output or cfg["output"])
    out_dir.mkdir(parents=True, exist_ok=True)
    tcfg, scfg, dcfg = cfg["train"], cfg["sensors"], cfg["data"]
    torch.set_num_threads(int(tcfg["threads"]))
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(int(tcfg["seed"]))

    model = ObservationModel.from_sensors(
        scfg["hs_sensor"], scfg["ms_sensor"], ms_bands=scfg["ms_bands"], ratio=int(scfg["ratio"])
    )
    dev = resolve_device(device or tcfg["device"])
    if dev.type == "cuda":  # deterministic cuBLAS needs a fixed workspace (PyTorch reproducibility notes)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    net_cfg = DCSTSFConfig(n_ms=model.n_ms, **cfg["model"])
    net = DCSTSFNet(net_cfg).to(dev)
    frozen = [str(n) for n in tcfg["frozen"]]
    physics_after = [str(n) for n in tcfg["physics_after"]]
    for key, names in (("frozen", frozen), ("physics_after", physics_after)):
        unknown = sorted(set(names) - set(FREEZABLE))
        if unknown:
            raise DcstsfInputError(
                f"train.{key} names {unknown}; only the step sizes {list(FREEZABLE)} have physics values"
            )
    for name in frozen:
        getattr(net, name).requires_grad_(False)
    trained = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=float(tcfg["lr"]), weight_decay=float(tcfg["weight_decay"]))
    total = int(tcfg["steps"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(s, warmup=int(tcfg["warmup"]), total=total)
    )
    sampler = CaseSampler(
        scenes if scenes is not None else training_scenes(dcfg["scenes"]),
        model=model, patch=int(dcfg["patch"]), batch_size=int(dcfg["batch_size"]),
        rank=net_cfg.rank, seed=int(tcfg["seed"]), snr_db=tuple(dcfg["snr_db"]),
        batches_per_case=int(dcfg["batches_per_case"]),
        spectral_augment=float(dcfg["spectral_augment"]),
        pairs=training_pairs(int(dcfg["pairs"])) if scenes is None else (),
        pair_fraction=float(dcfg["pair_fraction"]),
        degradations=DegradationRanges.from_config(dcfg["degradations"]),
    )
    last = out_dir / "last.pt"
    step = 0
    fingerprint = _fingerprint(cfg)
    if resume and last.exists():
        ck = load_checkpoint(last)
        if ck.get("training", {}).get("fingerprint") != fingerprint:
            raise DcstsfInputError(
                f"{last}: a checkpoint from a different configuration is in {out_dir}; "
                "use another output directory or delete it to start over"
            )
        net.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        sampler.set_state(ck["rng"]["sampler"])
        torch.set_rng_state(ck["rng"]["torch"])
        step = int(ck["step"])
        log.info("resuming %s at step %d", out_dir, step)
    log_path = out_dir / "loss.csv"
    rows = []
    if log_path.exists() and step > 0:
        with log_path.open() as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) < step]
    fields = ["step", "loss", "l1", "sam_rad", "aux_t1", "lr", "seconds"]
    with log_path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)

    def payload(at_step: int, *, with_optim: bool) -> dict[str, Any]:
        p: dict[str, Any] = {
            "config": net_cfg.to_dict(),
            "state_dict": net.state_dict(),
            "sensors": {**model.describe(), "ratio": model.ratio},
            "normalisation": NORMALISATION,
            "training": {"fingerprint": fingerprint, "name": cfg["name"], "steps": total,
                         "scenes": dcfg["scenes"], "loss": cfg["loss"]},
            "step": at_step,
        }
        if with_optim:
            p.update(optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                     rng={"sampler": sampler.get_state(), "torch": torch.get_rng_state()})
        return p

    net.train()
    bar = tqdm(total=total, initial=step, disable=not progress, desc=f"train {cfg['name']}", unit="step")
    t0 = time.time()
    while step < total:
        batch = sampler.draw().to(dev)
        loss, parts = batch_loss(net, batch, model, cfg["loss"])
        if not finite_step(opt, loss, trained, max_norm=float(tcfg["grad_clip"])):
            log.warning("step %d: non-finite loss or gradient (%s); the update is skipped", step + 1, parts)
        sched.step()
        step += 1
        with log_path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields).writerow(
                {"step": step, **{k: f"{v:.6g}" for k, v in parts.items()},
                 "lr": f"{sched.get_last_lr()[0]:.3g}", "seconds": f"{time.time() - t0:.1f}"}
            )
        bar.update(1)
        bar.set_postfix(loss=f"{parts['loss']:.4f}", sam=f"{parts['sam_rad']:.4f}")
        if step % int(tcfg["checkpoint_every"]) == 0 or step == total or step == stop_after:
            save_checkpoint(last, payload(step, with_optim=True))
        if stop_after is not None and step >= stop_after and step < total:
            bar.close()
            return last
    bar.close()
    net.eval()
    net.reset_step_sizes(tuple(physics_after))
    final = out_dir / "final.pt"
    save_checkpoint(final, payload(step, with_optim=False))
    return final

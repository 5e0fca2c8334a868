"""Checkpoints and shipped weights: config, sensor pair, normalisation scheme and a SHA-256 hash.

A checkpoint is one ``torch.save`` file holding a dict::

    {"format": "dcstsf-checkpoint/1", "config": DCSTSFConfig dict, "state_dict": ...,
     "sensors": {"hs_sensor", "ms_sensor", "ms_bands", "ratio"}, "normalisation": str,
     "training": {...}, "optimizer": ..., "step": int}

Shipped weights live in ``dcstsf/models/weights/`` next to ``manifest.json``, which records each
file's SHA-256; loading checks the hash, so a corrupt or swapped file is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dcstsf._files import partial_path, remove_path, replace_durably
from dcstsf.errors import NoShippedWeightsError, WeightsError
from dcstsf.models.network import DCSTSFConfig, DCSTSFNet

__all__ = [
    "CHECKPOINT_FORMAT",
    "NORMALISATION",
    "WEIGHTS_DIR",
    "ShippedWeights",
    "default_weights",
    "file_sha256",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "dcstsf-checkpoint/1"
NORMALISATION = (
    "per scene (fit): HS (x - mean_b) / global std over bands, PCA basis of HS(t1) coarse; MS (x - mean_m) / std_m"
)
WEIGHTS_DIR = Path(__file__).with_name("weights")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> str:
    """Write ``payload`` atomically (temp file + rename); returns the file's SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(payload, format=CHECKPOINT_FORMAT)
    tmp = partial_path(path)
    try:
        torch.save(payload, tmp)
        replace_durably(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    return file_sha256(path)


def load_checkpoint(path: str | Path, *, expected_sha256: str | None = None) -> dict[str, Any]:
    """Read and check a checkpoint; :class:`WeightsError` names the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found; train one with `dcstsf train` or reinstall dcstsf")
    if expected_sha256 is not None:
        actual = file_sha256(path)
        if actual != expected_sha256:
            raise WeightsError(
                f"{path}: SHA-256 {actual[:16]}... does not match the manifest's {expected_sha256[:16]}...; "
                "the file is corrupt or was replaced; reinstall dcstsf or retrain"
            )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise WeightsError(f"{path}: not a readable dcstsf checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path}: not a dcstsf checkpoint (format tag missing or unknown)")
    for key in ("config", "state_dict", "sensors"):
        if key not in payload:
            raise WeightsError(f"{path}: checkpoint lacks {key!r}; it was not written by dcstsf train")
    return payload


def load_model(path: str | Path, *, expected_sha256: str | None = None) -> tuple[DCSTSFNet, dict[str, Any]]:
    """The network and the checkpoint payload from ``path``."""
    payload = load_checkpoint(path, expected_sha256=expected_sha256)
    try:
        # checkpoints written before ``unit_space`` existed were trained with coefficient-space units
        net = DCSTSFNet(DCSTSFConfig(**{"unit_space": "coefficient", **payload["config"]}))
        net.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError) as exc:
        raise WeightsError(f"{path}: weights do not match the stored configuration ({exc})") from exc
    net.eval()
    return net, payload


def _manifest() -> dict[str, Any]:
    path = WEIGHTS_DIR / "manifest.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: manifest is not valid JSON ({exc}); reinstall dcstsf") from exc


@dataclass(frozen=True)
class ShippedWeights:
    """Shipped weights found for a sensor setup.

    ``ms_bands`` is the MS band order the network was trained with: it reads its input channels in that
    order, so MS bands given in another order must be put in this one first
    (:func:`dcstsf.engine.bands.reorder_ms_bands`).
    """

    path: Path
    sha256: str
    ms_bands: tuple[str, ...]
    #: what the method uses by default for this setup, as decided by the validation rule of
    #: ``docs/results.md``: ``"shipped"`` (these weights) or ``"physics-only"`` (the learned units at zero)
    default_network: str = "shipped"
    #: scene-adaptation steps by default (``dcstsf.training.adapt``)
    adapt_steps: int = 0


def default_weights(
    *, ms_bands: list[str] | tuple[str, ...], hs_sensor: str, ms_sensor: str, ratio: int
) -> ShippedWeights:
    """The shipped weights for the MS band set and ratio, and the band order they need.

    The band **set** is matched, in any order (a Sentinel-2 stack in wavelength order finds the weights
    trained with the 10 m bands first); :attr:`ShippedWeights.ms_bands` gives the order the network reads.
    The network's learned units see only the scene's spectral coefficients and the normalised MS bands,
    so weights trained for one HS sensor serve others with the same MS bands and ratio.

    Raises
    ------
    WeightsError
        No shipped weights for the band set and ratio; the manifest is not valid JSON.
    """
    manifest = _manifest()
    wanted = list(ms_bands)
    sentinel2 = ms_sensor.startswith("sentinel-2")
    for entry in manifest.get("weights", []):
        same_family = entry["ms_sensor"].startswith("sentinel-2") == sentinel2
        shipped = [str(b) for b in entry["ms_bands"]]
        same_set = sorted(shipped) == sorted(wanted)
        if same_set and entry["ratio"] == ratio and same_family:
            default = entry.get("default", {})
            return ShippedWeights(
                WEIGHTS_DIR / entry["file"], entry["sha256"], tuple(shipped),
                default_network=str(default.get("network", "shipped")), adapt_steps=int(default.get("adapt_steps", 0)),
            )
    known = [f"{e['file']}: {e['ms_sensor']} {e['ms_bands']} ratio {e['ratio']}" for e in manifest.get("weights", [])]
    raise NoShippedWeightsError(
        f"no shipped DC-STSF weights for MS bands {wanted} at ratio {ratio} ({ms_sensor}); shipped: {known or 'none'}. "
        "Train weights with `dcstsf train --config ...` and pass weights=PATH, or choose a shipped band set."
    )

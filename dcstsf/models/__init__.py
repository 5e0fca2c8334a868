"""The DC-STSF network, its per-scene state and its checkpoints."""

from dcstsf.models.checkpoint import default_weights, load_checkpoint, load_model, save_checkpoint
from dcstsf.models.local_map import LocalMapOptions
from dcstsf.models.ms_noise import MsNoiseOptions
from dcstsf.models.network import DCSTSFConfig, DCSTSFNet
from dcstsf.models.scene import fit_scene_state, state_to_tensors

__all__ = (
    "LocalMapOptions",
    "MsNoiseOptions",
    "DCSTSFConfig",
    "DCSTSFNet",
    "default_weights",
    "fit_scene_state",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "state_to_tensors",
)

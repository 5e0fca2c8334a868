"""Training DC-STSF on cases simulated on the fly from real scenes (``dcstsf train``)."""

from dcstsf.training.data import CaseSampler, TrainingBatch
from dcstsf.training.loop import load_config, spectral_angle_loss, train, training_scenes

__all__ = ("CaseSampler", "TrainingBatch", "load_config", "spectral_angle_loss", "train", "training_scenes")

"""``bicubic``: HS(t1) interpolated onto the fine grid, no temporal change. The lower bound."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dcstsf.methods.base import Fitted, Method
from dcstsf.operators import ObservationModel, upsample, upsample_halo

__all__ = ["Bicubic"]


class Bicubic(Method):
    """HS(t1) upsampled by bicubic interpolation; ignores MS entirely."""

    name = "bicubic"
    description = "HS(t1) bicubic-interpolated to the fine grid, no temporal change (lower bound)"
    uses_scene_physics = False
    reference = "Keys, IEEE TASSP 29(6), 1981 (cubic convolution, a = -0.75 as in PyTorch)"

    def halo(self, model: ObservationModel) -> int:
        return upsample_halo(model.ratio)

    def fit(self, hs_t1: Any, ms_t1: Any, ms_t2: Any, *, model: ObservationModel) -> Fitted:
        return {}

    def apply(
        self,
        hs_t1: np.ndarray,
        ms_t1: np.ndarray,
        ms_t2: np.ndarray,
        *,
        model: ObservationModel,
        fitted: Fitted,
    ) -> np.ndarray:
        with torch.no_grad():
            out = upsample(torch.as_tensor(np.ascontiguousarray(hs_t1, np.float32)), model.ratio)
        return out.numpy()

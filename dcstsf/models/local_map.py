"""A windowed MS -> HS map for DC-STSF's temporal step, fitted on the scene around each pixel.

The scene state holds one global ridge map ``T`` from normalised MS bands to HS coefficients
(:mod:`dcstsf.models.scene`). One map for a whole scene mixes the spectral relations of every land cover
in it; the temporal step then carries an MS change into HS through relations that may belong to other
land covers. The windowed map corrects ``T`` per coarse pixel with a ridge regression of the HS(t1)
coefficients on the MS(t1) bands (both on the HS grid) over the ``(2 radius + 1)^2`` coarse pixels
around it, shrunk towards ``T``:

``M(q) = T + argmin_D  mean_window |c - (T + D)^T x|^2 + ridge |D|^2``,   ``x = [ms; 1]``

solved from moving-window moments. It depends on the inputs only (never on the network's iterates or
its parameters), so it is computed once per window before SSJE; its reach,
:func:`local_map_reach`, enters the network's receptive field, so tiles equal the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dcstsf.operators import upsample_halo, upsample_region

__all__ = ["MAX_RADIUS", "LocalMapOptions", "local_map_correction", "local_map_corrections", "local_map_reach"]


#: Largest window half-width (coarse pixels): wider windows approach the global map while widening every
#: tile's halo by ``ratio`` fine pixels per coarse pixel.
MAX_RADIUS = 64


@dataclass(frozen=True)
class LocalMapOptions:
    """The windowed map of DC-STSF's temporal step (``DCSTSF(local_map=...)``, CLI ``--local-map``).

    Parameters
    ----------
    radius
        Half-width of the window, coarse (HS) pixels; 0: the scene's one global map.
    ridge
        Shrinkage towards the global map (the MS bands are normalised to unit spread).
    """

    radius: int = 0
    ridge: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.radius <= MAX_RADIUS or not self.ridge > 0:
            raise ValueError(
                f"local map: radius must be 0 to {MAX_RADIUS} coarse pixels and ridge > 0, got {self.radius} and "
                f"{self.ridge} (the radius widens every tile's halo by 3 x radius fine pixels at ratio 3; 0 is the "
                "scene's global map)"
            )


def local_map_reach(*, radius: int, ratio: int, degradation_reach: int) -> int:
    """Fine pixels a value of :func:`local_map_correction` reads beyond the pixel it writes.

    The pixel's coarse block reads the corrections of coarse pixels up to two blocks away (bicubic
    upsampling, :func:`~dcstsf.operators.upsample_halo`), each fitted on ``radius`` coarse pixels around
    it, each of those an MS block degraded through ``degradation_reach`` fine pixels (the HS blur).
    """
    # one more block than the count above: the engine's windows are cut at whole coarse pixels
    return (radius + 2) * ratio + upsample_halo(ratio) + degradation_reach


def _moving_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the ``(2 radius + 1)^2`` window of each pixel (``(B, C, H, W)``), the window cut at the
    array's edges (the mean of the pixels inside)."""
    k = 2 * radius + 1
    # separable, in two passes: a row window then a column window, each normalised by its own count
    rows = F.avg_pool2d(x, kernel_size=(k, 1), stride=1, padding=(radius, 0), count_include_pad=False)
    return F.avg_pool2d(rows, kernel_size=(1, k), stride=1, padding=(0, radius), count_include_pad=False)


def local_map_corrections(
    coef: torch.Tensor, ms: torch.Tensor, t_map: torch.Tensor, *, radius: int, ridge: float
) -> torch.Tensor:
    """The windowed corrections ``D`` of the global map ``t_map`` at every coarse pixel.

    Parameters
    ----------
    coef
        HS(t1) coefficients on the HS grid, ``(B, p, h, w)``.
    ms
        Normalised MS(t1) bands degraded to the HS grid, ``(B, n_ms, h, w)``.
    t_map
        The global map ``(n_ms + 1, p)`` (last row: the constant).
    radius
        Half-width of the window, coarse pixels.
    ridge
        Shrinkage towards ``t_map`` (the MS bands are normalised to unit spread).

    Returns
    -------
    torch.Tensor
        ``(B, n_ms + 1, p, h, w)``.
    """
    b, p, h, w = coef.shape
    n = ms.shape[1] + 1
    x = torch.cat([ms, torch.ones_like(ms[:, :1])], dim=1).double()
    resid = coef.double() - torch.einsum("ip,bihw->bphw", t_map.double(), x)
    xx = _moving_mean((x[:, :, None] * x[:, None]).reshape(b, n * n, h, w), radius)
    xc = _moving_mean((x[:, :, None] * resid[:, None]).reshape(b, n * p, h, w), radius)
    gram = xx.reshape(b, n, n, h, w).permute(0, 3, 4, 1, 2)
    rhs = xc.reshape(b, n, p, h, w).permute(0, 3, 4, 1, 2)
    eye = torch.eye(n, dtype=gram.dtype, device=gram.device)
    delta = torch.linalg.solve(gram + ridge * eye, rhs)  # (B, h, w, n, p)
    return delta.permute(0, 3, 4, 1, 2).to(coef.dtype).contiguous()


def local_map_correction(
    delta: torch.Tensor,
    ms: torch.Tensor,
    *,
    ratio: int,
    region: tuple[int, int, int, int],
) -> torch.Tensor:
    """``D(q)^T [ms; 1]`` at every fine pixel of ``ms``, ``D`` upsampled from the HS grid: what the windowed
    map adds to the global map's ``T^T [ms; 1]``.

    ``delta`` covers the caller's whole coarse window; ``ms`` (``(B, n_ms, H, W)``) is its fine ``region``
    ``(y0, y1, x0, x1)``, whose corrections are upsampled for the region only (exactly the crop of the
    whole upsampling), input row by input row so that one ``p``-channel fine map is alive at a time.
    """
    n = ms.shape[1]
    out = upsample_region(delta[:, n], ratio, region)  # the constant's row
    for i in range(n):
        out = out + upsample_region(delta[:, i], ratio, region) * ms[:, i : i + 1]
    return out

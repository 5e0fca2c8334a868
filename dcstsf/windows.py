"""Windows that shrink as a computation proceeds: the part of a tile's halo that is still needed.

A method applied to a halo-padded window needs its input ``reach`` pixels beyond the region it must
return. After a step that reads ``rho`` pixels around each output, only ``reach - rho`` pixels beyond
the region can still influence it, so the rest of the window can be dropped before the next step. For
iterative methods this removes most of the halo's cost (DC-STSF's unrolled stages, the variational
solver's iterations).
"""

from __future__ import annotations

import torch

__all__ = ["ShrinkingWindow"]


class ShrinkingWindow:
    """The working window of a windowed computation that only needs ``crop``, cut down step by step.

    The caller's window extends ``margin`` pixels beyond the crop on each side. A side whose margin is
    at least the receptive field is an interior cut (the engine's halo): there, once a step has consumed
    its reach, the pixels further out than the *remaining* reach can no longer influence the crop and are
    dropped, so later (learned, expensive) steps compute on a smaller window. A side with a smaller margin
    (an image edge) is never cut. Cuts are whole coarse pixels, so the fine window stays aligned with the
    HS grid. Every tensor stays exact on the crop grown by the remaining reach, which is the invariant the
    tiling tests check.
    """

    def __init__(self, shape: tuple[int, int], crop: tuple[slice, slice] | None, ratio: int, reach: int) -> None:
        h, w = shape
        ys, xs = crop if crop is not None else (slice(0, h), slice(0, w))
        y0, y1, _ = ys.indices(h)
        x0, x1, _ = xs.indices(w)
        self.shape, self.ratio, self.region = (h, w), ratio, (y0, y1, x0, x1)
        self.margins = (y0, h - y1, x0, w - x1)  # top, bottom, left, right
        self.cuttable = tuple(reach > 0 and m >= reach for m in self.margins)
        self.cut = [0, 0, 0, 0]

    def narrow(self, remaining: int, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Cut the window so that ``remaining`` pixels (rounded up to the ratio) stay beyond the crop,
        and return ``tensors`` (on the current window) cut the same way."""
        r = self.ratio
        keep = -(-max(remaining, 0) // r) * r
        new = [
            max(old, (m - keep) // r * r) if ok else old
            for old, m, ok in zip(self.cut, self.margins, self.cuttable)
        ]
        d = [n - o for n, o in zip(new, self.cut)]
        self.cut = new
        if not any(d):
            return list(tensors)
        return [x[..., d[0] : x.shape[-2] - d[1], d[2] : x.shape[-1] - d[3]] for x in tensors]

    def fine(self, full: torch.Tensor) -> torch.Tensor:
        """A tensor of the caller's fine window, on the current window."""
        t, b, left, right = self.cut
        h, w = self.shape
        return full[..., t : h - b, left : w - right]

    def coarse(self, full: torch.Tensor) -> torch.Tensor:
        """A tensor of the caller's coarse window, on the current window."""
        t, b, left, right = (c // self.ratio for c in self.cut)
        return full[..., t : full.shape[-2] - b, left : full.shape[-1] - right]

    def current(self) -> tuple[int, int, int, int]:
        """The current window ``(y0, y1, x0, x1)`` in the caller's fine window."""
        t, b, left, right = self.cut
        h, w = self.shape
        return t, h - b, left, w - right

    def crop_now(self) -> tuple[int, int, int, int]:
        """The crop in the current window's coordinates."""
        y0, y1, x0, x1 = self.region
        t, _, left, _ = self.cut
        return y0 - t, y1 - t, x0 - left, x1 - left

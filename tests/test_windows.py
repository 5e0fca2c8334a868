"""ShrinkingWindow: which sides are cut, by how much, and how tensors and the crop follow."""

from __future__ import annotations

import torch

from dcstsf.windows import ShrinkingWindow


def test_interior_sides_are_cut_to_the_remaining_reach_in_whole_coarse_pixels() -> None:
    # window 120 x 90; crop rows 30..90 (margins 30 / 30), columns 0..60 (left: image edge, right 30)
    win = ShrinkingWindow((120, 90), (slice(30, 90), slice(0, 60)), 3, 25)
    assert win.cuttable == (True, True, False, True)
    full = torch.arange(120 * 90, dtype=torch.float32).reshape(1, 120, 90)
    (x,) = win.narrow(10, full)  # keep 12 px (10 rounded up to the ratio) beyond the crop
    assert win.cut == [18, 18, 0, 18]
    assert x.shape[-2:] == (84, 72)
    torch.testing.assert_close(x, win.fine(full))
    y0, y1, x0, x1 = win.crop_now()
    torch.testing.assert_close(x[..., y0:y1, x0:x1], full[..., 30:90, 0:60])
    coarse = torch.zeros(1, 40, 30)
    assert win.coarse(coarse).shape[-2:] == (28, 24)
    # a later step never grows the window back, and reaching 0 keeps only the crop
    (x,) = win.narrow(20, x)
    assert win.cut == [18, 18, 0, 18]
    (x,) = win.narrow(0, x)
    assert win.cut == [30, 30, 0, 30] and x.shape[-2:] == (60, 60)


def test_margins_below_the_reach_are_never_cut() -> None:
    win = ShrinkingWindow((60, 60), (slice(6, 54), slice(6, 54)), 3, 25)
    assert win.cuttable == (False, False, False, False)
    full = torch.zeros(2, 60, 60)
    (x,) = win.narrow(0, full)
    assert x.shape == full.shape and win.crop_now() == (6, 54, 6, 54)

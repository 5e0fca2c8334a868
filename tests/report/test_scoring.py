"""Tests of dcstsf.report.scoring: the UIQI block follows the image size."""

from __future__ import annotations

from dcstsf.report.scoring import uiqi_block


def test_uiqi_block_shrinks_on_small_images() -> None:
    assert uiqi_block((64, 100), 0) == 32
    assert uiqi_block((66, 100), 1) == 32
    assert uiqi_block((36, 36), 0) == 18
    assert uiqi_block((36, 36), 1) == 17
    assert uiqi_block((6, 6), 0) == 4

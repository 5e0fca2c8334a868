"""Tests for dcstsf.training.validation: the real-spectra validation cases."""

from __future__ import annotations

import numpy as np
import pytest

from dcstsf import datasets
from dcstsf.errors import DcstsfInputError
from dcstsf.operators import ObservationModel
from dcstsf.simulate import simulate_case
from dcstsf.training.validation import REAL_SPECTRA_CHANGES, real_spectra_cases


def test_real_spectra_cases_are_the_held_out_blocks_in_order(model: ObservationModel) -> None:
    try:
        cases = real_spectra_cases(model=model, seeds=(3,))
    except DcstsfInputError as err:
        pytest.skip(f"EnMAP Potsdam tiles not available: {err}")
    blocks = list(datasets.ENMAP_HELD_OUT_BLOCKS.values())
    assert len(cases) == len(blocks) * len(REAL_SPECTRA_CHANGES)
    # blocks outside, changes inside: the nesting order the docstring states
    for index, (block, change) in ((1, (0, 1)), (2, (1, 0))):
        expected = simulate_case(datasets.load_enmap_potsdam_block(tiles=blocks[block]), model=model,
                                 change=REAL_SPECTRA_CHANGES[change], seed=3)
        np.testing.assert_array_equal(cases[index].hs_t2_truth.values, expected.hs_t2_truth.values)
        np.testing.assert_array_equal(cases[index].ms_t2.values, expected.ms_t2.values)


def test_real_spectra_cases_need_a_seed(model: ObservationModel) -> None:
    with pytest.raises(ValueError, match="at least one change seed"):
        real_spectra_cases(model=model, seeds=())

"""The real-spectra validation cases of the learned parts.

The library validation (scenes built from spectral libraries held out of training) is
:func:`dcstsf.training.synthetic.validation_cases`; this module gives its real-spectra counterpart: the
Wald-protocol cases simulated on the two EnMAP Potsdam blocks of :data:`dcstsf.datasets.ENMAP_HELD_OUT_BLOCKS`.
Those blocks are training tiles of the shipped weights, so these cases favour learned units; they are
never the evaluation-only scenes. The temporal change is simulated.
"""

from __future__ import annotations

from collections.abc import Sequence

from dcstsf import datasets
from dcstsf.operators import ObservationModel
from dcstsf.simulate import FusionCase, simulate_case

__all__ = ["REAL_SPECTRA_CHANGES", "real_spectra_cases"]

#: The change models of the real-spectra validation, in the order of its cases.
REAL_SPECTRA_CHANGES: tuple[str, ...] = ("mixed", "abrupt")


def real_spectra_cases(*, model: ObservationModel, seeds: Sequence[int] = (0, 1)) -> list[FusionCase]:
    """The real-spectra validation cases: each held-out EnMAP block, each change of
    :data:`REAL_SPECTRA_CHANGES`, each change seed of ``seeds``, in that nesting order.

    Parameters
    ----------
    model
        The observation model the cases are simulated through.
    seeds
        The change seeds (at least one).
    """
    if len(seeds) == 0:
        raise ValueError("real_spectra_cases: give at least one change seed")
    blocks = [datasets.load_enmap_potsdam_block(tiles=b) for b in datasets.ENMAP_HELD_OUT_BLOCKS.values()]
    return [simulate_case(cube, model=model, change=change, seed=seed)
            for cube in blocks for change in REAL_SPECTRA_CHANGES for seed in seeds]

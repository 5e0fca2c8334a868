"""A scene fit and a scene adaptation give the same bits whatever the caller's thread counts.

A multi-threaded BLAS or torch kernel rounds its sums by thread count; the fitted state (hashed into the
output as ``fitted_sha256``) and the adapted parameters must not follow ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from dcstsf.methods import DCSTSF, fit_scene
from dcstsf.methods.base import Fitted
from dcstsf.operators import ObservationModel
from dcstsf.simulate import FusionCase
from dcstsf.training.adapt import AdaptOptions


def _same(a: Fitted, b: Fitted, *, skip: tuple[str, ...] = ()) -> list[str]:
    """The keys whose values differ in any bit (nested parameter dicts compared entry by entry)."""
    differ = []
    for k in sorted(set(a) | set(b)):
        if k in skip:
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            differ += [f"{k}.{n}" for n in va if not np.array_equal(np.asarray(va[n]), np.asarray(vb.get(n)))]
        elif not np.array_equal(np.asarray(va), np.asarray(vb)):
            differ.append(k)
    return differ


def _fit_under(method: DCSTSF, case: FusionCase, model: ObservationModel, *, blas: int, torch_threads: int) -> Fitted:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(torch_threads)
        with threadpool_limits(limits=blas, user_api="blas"):
            return fit_scene(method, *case.arrays(), model=model)
    finally:
        torch.set_num_threads(before)


def test_the_scene_fit_does_not_follow_the_blas_threads(mixed_case: FusionCase, model: ObservationModel) -> None:
    m = DCSTSF()
    one = _fit_under(m, mixed_case, model, blas=1, torch_threads=1)
    two = _fit_under(m, mixed_case, model, blas=2, torch_threads=2)
    assert _same(one, two) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_the_adaptation_does_not_follow_the_callers_threads(
    threads: int, mixed_case: FusionCase, model: ObservationModel
) -> None:
    m = DCSTSF(adapt=AdaptOptions(steps=4, threads=threads))
    one = _fit_under(m, mixed_case, model, blas=1, torch_threads=1)
    two = _fit_under(m, mixed_case, model, blas=2, torch_threads=2)
    assert one["adapted_sha256"] == two["adapted_sha256"]
    assert _same(one, two) == []


def test_adapt_options_refuse_a_thread_count_that_is_not_positive() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            AdaptOptions(threads=bad)  # type: ignore[arg-type]

"""``fixed_threads``: the counts hold inside the block and the caller's come back after it."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from dcstsf._threads import fixed_threads


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_counts_hold_inside_and_are_restored() -> None:
    before = torch.get_num_threads()
    with threadpool_limits(limits=2, user_api="blas"):
        with fixed_threads(blas=1, torch_threads=3):
            assert _blas_threads() == {1}
            assert torch.get_num_threads() == 3
        assert _blas_threads() == {2}
    assert torch.get_num_threads() == before


def test_none_leaves_a_count_alone() -> None:
    before = torch.get_num_threads()
    with threadpool_limits(limits=2, user_api="blas"), fixed_threads(torch_threads=1):
        assert _blas_threads() == {2}
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_restored_after_an_error() -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), fixed_threads(torch_threads=before + 1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_counts_must_be_positive_whole_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="positive whole number"), fixed_threads(blas=bad):  # type: ignore[arg-type]
        pass


def test_blocks_of_two_threads_do_not_overlap() -> None:
    """Each block restores what it found: overlapped, two threads' blocks would leave one thread behind."""
    import threading

    inside = threading.Event()
    release = threading.Event()
    seen: list[set[int]] = []

    def first() -> None:
        with fixed_threads(blas=1):
            inside.set()
            release.wait(5)

    def second() -> None:
        with fixed_threads(blas=2):
            seen.append(_blas_threads())

    with threadpool_limits(limits=2, user_api="blas"):
        a = threading.Thread(target=first)
        a.start()
        assert inside.wait(5)
        b = threading.Thread(target=second)
        b.start()
        b.join(0.3)
        assert b.is_alive() and not seen  # waits for the first block
        release.set()
        a.join(5)
        b.join(5)
        assert seen == [{2}]
        assert _blas_threads() == {2}

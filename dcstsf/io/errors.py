"""The message format of every input error raised while reading or writing rasters."""

from __future__ import annotations

import os

from dcstsf.errors import DcstsfInputError

__all__ = ["input_error"]


def input_error(path: str | os.PathLike[str] | None, problem: str, fix: str) -> DcstsfInputError:
    """A :class:`DcstsfInputError` reading ``"<path>: <problem>. <Fix>"`` (without the path when ``None``)."""
    where = f"{path}: " if path is not None else ""
    return DcstsfInputError(f"{where}{problem}. {fix[:1].upper()}{fix[1:]}")

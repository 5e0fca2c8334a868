"""dcstsf: hyperspectral spatial-temporal-spectral fusion (DC-STSF) at scene scale.

Given HS(t1) at coarse resolution and MS(t1), MS(t2) at fine resolution, predict HS(t2) at the fine
resolution. See ``docs/design.md`` for the architecture.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("dcstsf")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "fuse"]


def __getattr__(name: str) -> Any:
    # `dcstsf.fuse` without importing Dask, xarray and the engine on `import dcstsf`.
    if name == "fuse":
        from dcstsf.engine import fuse

        return fuse
    raise AttributeError(f"module 'dcstsf' has no attribute {name!r}")

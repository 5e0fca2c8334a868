"""dcstsf: hyperspectral spatial-temporal-spectral fusion (DC-STSF) at scene scale.

Given HS(t1) at coarse resolution and MS(t1), MS(t2) at fine resolution, predict HS(t2) at the fine
resolution. See ``docs/design.md`` for the architecture.
"""

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

# Back PyTorch's large CPU tensors (>= 2 MB) with transparent huge pages. Fusion allocates and frees
# hundreds of MB per tile; with 4 KB pages the kernel spends a third of the run faulting and zeroing
# them (measured: a 960 px DC-STSF tile took 13.6 s, 6.4-8 s with huge pages). PyTorch reads the
# variable once, at its first allocation: it takes effect when dcstsf is imported before torch (the CLI,
# Dask workers, ``python -m``), and a user's own setting wins. ``docs/design.md`` has the details.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
# GDAL's block cache defaults to 5 % of the RAM (1.2 GB here) and fills up over a long batch run. Tiles
# are read once and written once, so a bounded cache costs nothing and keeps a run's memory flat.
os.environ.setdefault("GDAL_CACHEMAX", "256")

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

"""dcstsf: hyperspectral spatial-temporal-spectral fusion (DC-STSF) at scene scale.

Given HS(t1) at coarse resolution and MS(t1), MS(t2) at fine resolution, predict HS(t2) at the fine
resolution. See ``docs/design.md`` for the architecture.
"""

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

# Back PyTorch's large CPU tensors (>= 2 MB) with transparent huge pages. Fusion allocates and frees
# hundreds of MB per tile; with 4 KB pages the kernel spends much of a run faulting and zeroing them.
# PyTorch reads the variable once, at its first allocation: it takes effect when dcstsf is imported
# before torch (the CLI, Dask workers, ``python -m``), and a user's own setting wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
# GDAL's block cache defaults to 5 % of the RAM and fills up over a long batch run. Tiles
# are read once and written once, so a bounded cache costs nothing and keeps a run's memory flat.
os.environ.setdefault("GDAL_CACHEMAX", "256")

try:
    __version__ = version("dcstsf")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["FusionResult", "__version__", "fuse", "open_raster", "run_batch", "write_raster"]

# The top-level API is imported on first use, so `import dcstsf` does not import Dask, xarray, rasterio
# and the engine.
_LAZY = {
    "FusionResult": "dcstsf.uncertainty",
    "fuse": "dcstsf.engine",
    "run_batch": "dcstsf.engine",
    "open_raster": "dcstsf.io",
    "write_raster": "dcstsf.io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dcstsf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

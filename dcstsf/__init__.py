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


def _fixed_mmap_threshold(threshold: int = 16 << 20) -> None:
    """Serve every allocation of ``threshold`` bytes or more with its own ``mmap`` (glibc only).

    glibc raises its mmap threshold each time a large block is freed (up to 32 MB), after which the
    large tensors and arrays of the next tiles come from the heap arenas. Freed, they leave holes that
    ``malloc_trim`` cannot return when huge pages back them, and a batch run's memory crept up tile
    after tile (DC-STSF: 2.4 GiB at 2049^2, 3.1 GiB at 6000^2). A fixed threshold disables that
    adjustment: large blocks go back to the system the moment they are freed. Measured on a 2049^2
    DC-STSF batch run: peak RSS 2.68 GiB with a 32 MB threshold, 2.29 GiB with 16 MB (the default
    here), 2.07 GiB with 4 MB, which re-faults more pages and ran 9 % slower. Setting
    ``MALLOC_MMAP_THRESHOLD_`` in the environment takes precedence.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is not None:
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except (OSError, AttributeError):  # not glibc
        return
    m_mmap_threshold = -3  # <malloc.h>
    libc.mallopt(m_mmap_threshold, threshold)


_fixed_mmap_threshold()

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

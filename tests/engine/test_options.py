"""The option objects of a batch run: what each holds, and the checks they make."""

from __future__ import annotations

import pytest

from dcstsf.engine import ExecutionOptions, FusionOptions, OutputOptions, ReadOptions
from dcstsf.errors import DcstsfInputError


def test_execution_options_refuse_bad_tile_counts_and_limits() -> None:
    ExecutionOptions(parallel_tiles=2, memory_limit=2**30).validate()
    for bad in ({"parallel_tiles": 0}, {"parallel_tiles": 1.5}, {"memory_limit": -5}, {"memory_limit": "1G"}):
        with pytest.raises(DcstsfInputError, match="parallel_tiles|memory_limit"):
            ExecutionOptions(**bad).validate()  # type: ignore[arg-type]
    assert ExecutionOptions(gdal_cache_mb=64).gdal_cache_bytes == 64 * 2**20


def test_fusion_options_name_what_decides_the_values() -> None:
    opts = FusionOptions(
        method="bicubic", ratio=3, halo=12, hs_read=ReadOptions(scale=1e-4), ms_read=ReadOptions(nodata=0)
    )
    assert opts.validation_kwargs() == {"hs_sensor": None, "ms_sensor": None, "ms_bands": None, "ratio": 3,
                                        "align": "strict", "ms_sensor_t2": None}
    assert opts.resume_key() == {
        "align": "strict",
        "hs_open": {"scale": 1e-4, "offset": None, "nodata": None},
        "ms_open": {"scale": None, "offset": None, "nodata": 0},
        "halo_override": 12,
        "physics": "estimated",
        "ms_sensor_t2": None,
    }
    assert OutputOptions().compress == "zstd" and OutputOptions().dtype is None
    with pytest.raises(AttributeError):
        opts.method = "two-step"  # type: ignore[misc]  # frozen: one run, one set of options

"""open_raster: choosing the reader, bad paths and files, CRS requirement, lazy reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster, write_raster
from tests.io.rasters import assert_same_raster, make_tif, reflectance_cube


def test_require_crs(tmp_path: Path) -> None:
    p = make_tif(tmp_path / "nocrs.tif", np.full((1, 2, 2), 0.1, dtype=np.float32), crs=None)
    assert open_raster(p).rio.crs is None
    with pytest.raises(DcstsfInputError, match="no CRS") as exc:
        open_raster(p, require_crs=True)
    assert str(p) in str(exc.value)


def test_bad_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tif"
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    text = tmp_path / "notes.tif"
    text.write_text("this is not a raster\n" * 20)
    good = make_tif(tmp_path / "good.tif", np.random.default_rng(1).random((8, 64, 64), dtype=np.float32))
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = ((missing, "not found"), (empty, "empty"), (text, "not a readable raster"), (truncated, "truncated"))
    for path, words in cases:
        with pytest.raises(DcstsfInputError, match=words) as exc:
            open_raster(path)
        assert str(path) in str(exc.value)


def test_lazy_open_is_dask_backed(tmp_path: Path) -> None:
    p = write_raster(reflectance_cube(h=40, w=48), tmp_path / "c.tif")
    lazy = open_raster(p, chunks={"y": 16, "x": 16})
    assert lazy.chunks is not None and lazy.chunks[0] == (4,)  # band axis in one chunk
    assert_same_raster(lazy.compute(), open_raster(p))
    auto = open_raster(p, chunks=True)
    assert auto.chunks is not None and len(auto.chunks[0]) == 1

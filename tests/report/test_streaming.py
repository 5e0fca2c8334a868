"""The report reads its cubes tile by tile: its numbers equal the in-memory metrics, and no read is whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from dcstsf import metrics
from dcstsf.io import write_raster
from dcstsf.report import evaluate_predictions, no_reference_quality, scoring
from dcstsf.report.scoring import uiqi_block

# Tiles add the same sums in another order: equal to rounding (measured about 1e-15 relative).
REL = 1e-9


def _approx(value: float) -> Any:
    return pytest.approx(value, rel=REL, abs=1e-12)


@pytest.fixture(scope="module")
def streamed(case: Any, preds: dict[str, xr.DataArray], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A report of a prediction file against the case files, cut into 3 x 3 tiles, with the pixel reads logged."""
    import dcstsf.io.gdal as gdal

    tmp = tmp_path_factory.mktemp("streamed")
    paths = case.save(tmp / "case")
    pred_path = write_raster(preds["bicubic"], tmp / "bicubic.tif")
    reads: list[tuple[str, int]] = []
    original = gdal._GdalPixels.__getitem__

    def logged(self: Any, key: Any) -> np.ndarray:
        out = original(self, key)
        reads.append((Path(self.path).name, out.shape[1] * out.shape[2]))
        return out

    mp = pytest.MonkeyPatch()
    mp.setattr(gdal._GdalPixels, "__getitem__", logged)
    mp.setattr(scoring, "streaming_chunk", lambda *a, **k: 12)
    try:
        res = evaluate_predictions(
            {"bicubic": pred_path}, paths["hs_t2_truth"], out_dir=tmp / "report",
            inputs={"hs_t1": paths["hs_t1"], "ms_t1": paths["ms_t1"], "ms_t2": paths["ms_t2"]},
        )
    finally:
        mp.undo()
    return {"result": res, "reads": reads, "paths": paths}


def test_streamed_full_reference_equals_in_memory(streamed: dict[str, Any], case: Any,
                                                  preds: dict[str, xr.DataArray]) -> None:
    res = streamed["result"]
    assert res["conventions"]["streaming"]["tiles"] == 9
    good = case.model.hs_sensor.good
    p, t = preds["bicubic"].values, case.hs_t2_truth.values
    direct = metrics.evaluate(p, t, h_over_l=1 / 3, block=uiqi_block(p.shape[1:], 0), bands=good)
    entry = res["methods"]["bicubic"]
    for key, value in direct["global"].items():
        assert entry["global"][key] == _approx(value), key
    for key, values in direct["per_band"].items():
        np.testing.assert_allclose(np.array(entry["per_band"][key], float), values, rtol=REL, atol=1e-12)
    # changed / unchanged: where the simulated change moved the truth by 3 % or more
    t1 = case.hs_t1_truth.values[good].astype(np.float64)
    rel = np.sqrt(((t[good] - t1) ** 2).sum(0)) / np.sqrt((t1**2).sum(0))
    for group, sel in (("changed", rel >= 0.03), ("unchanged", rel < 0.03)):
        split = entry["changed_unchanged"][group]
        assert split["pixels"] == int(sel.sum())
        if sel.any():
            assert split["psnr"] == _approx(metrics.psnr(p[good], t[good], mask=sel))
            assert split["sam_deg"] == _approx(metrics.sam(p[good], t[good], mask=sel))


def test_streamed_no_reference_equals_in_memory(streamed: dict[str, Any], case: Any,
                                                preds: dict[str, xr.DataArray]) -> None:
    hs, m1, m2 = case.arrays()
    good = np.flatnonzero(case.model.hs_sensor.good)
    direct = no_reference_quality(preds["bicubic"], hs, m1, m2, model=case.model, bands=good)
    got = streamed["result"]["methods"]["bicubic"]["no_reference"]
    for group in ("ms_t2_reproduction", "hs_t1_reproduction_unchanged", "qnr"):
        for key, value in direct[group].items():
            if isinstance(value, float) and np.isnan(value):
                assert got[group][key] is None, (group, key)  # NaN is null in metrics.json
            elif isinstance(value, float):
                assert got[group][key] == _approx(value), (group, key)
            elif not isinstance(value, list):
                assert got[group][key] == value, (group, key)


def test_pixels_are_read_in_chunks_of_tile_windows(streamed: dict[str, Any]) -> None:
    from dcstsf.metrics.tiles import TileGrid

    res = streamed["result"]
    st = res["conventions"]["streaming"]
    grid = TileGrid(36, 36, st["tile_px"], st["halo_px"])
    windows = sum((t.window[1] - t.window[0]) * (t.window[3] - t.window[2]) for t in grid.tiles())
    pred_reads = [a for name, a in streamed["reads"] if name == "bicubic.tif"]
    # every read is a chunk of a window, never the whole image; a pass reads each window at most once, then
    # the chunks holding the sample pixels are read for their spectra
    assert max(pred_reads) < 36 * 36
    chunk_max = max(pred_reads)
    assert sum(pred_reads) <= windows + len(res["sample_pixels"]) * chunk_max

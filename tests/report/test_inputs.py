"""Tests of dcstsf.report.inputs: loading and checking predictions, truth, inputs, masks and case.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.report import evaluate_predictions, find_case_meta, load_mask


def test_bad_input_errors(case: Any, preds: dict[str, xr.DataArray], tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError, match="ratio"):
        evaluate_predictions({"x": preds["bicubic"]}, case.hs_t2_truth, out_dir=tmp_path / "c")
    with pytest.raises(DcstsfInputError, match="nothing to evaluate"):
        evaluate_predictions({"x": preds["bicubic"]}, None, out_dir=tmp_path / "d", ratio=3)
    with pytest.raises(DcstsfInputError, match="pixels"):
        evaluate_predictions({"x": preds["bicubic"][:, :30]}, case.hs_t2_truth, out_dir=tmp_path / "e", ratio=3)
    with pytest.raises(DcstsfInputError, match="bands"):
        evaluate_predictions({"x": preds["bicubic"][:10]}, case.hs_t2_truth, out_dir=tmp_path / "f", ratio=3)
    with pytest.raises(DcstsfInputError, match="not found"):
        evaluate_predictions([tmp_path / "missing.tif"], case.hs_t2_truth, out_dir=tmp_path / "g", ratio=3)
    with pytest.raises(DcstsfInputError, match="inputs"):
        evaluate_predictions({"x": preds["bicubic"]}, None, out_dir=tmp_path / "h", inputs={"hs_t1": case.hs_t1})
    with pytest.raises(DcstsfInputError, match="no prediction"):
        evaluate_predictions({}, case.hs_t2_truth, out_dir=tmp_path / "i", ratio=3)
    with pytest.raises(DcstsfInputError, match="border"):
        evaluate_predictions({"x": preds["bicubic"]}, case.hs_t2_truth, out_dir=tmp_path / "j", ratio=3, border=-1)
    assert not any((tmp_path / d).exists() for d in "cdefghij")


def test_ratio_given_as_h_over_l_is_inverted(case: Any, preds: dict[str, xr.DataArray], tmp_path: Path) -> None:
    res = evaluate_predictions({"x": preds["bicubic"]}, case.hs_t2_truth, out_dir=tmp_path, ratio=1 / 3)
    assert res["conventions"]["ratio"] == pytest.approx(3.0)
    with pytest.raises(DcstsfInputError, match="ratio"):
        evaluate_predictions(
            {"x": preds["bicubic"]}, None, out_dir=tmp_path / "b", ratio=2,
            inputs={"hs_t1": case.hs_t1, "ms_t1": case.ms_t1, "ms_t2": case.ms_t2},
        )


def test_load_mask_and_case_meta(tmp_path: Path) -> None:
    import rasterio

    m = np.zeros((1, 6, 5), np.uint8)
    m[0, 1:, 1:] = 1
    with rasterio.open(tmp_path / "m.tif", "w", driver="GTiff", width=5, height=6, count=1, dtype="uint8") as dst:
        dst.write(m)
    mask = load_mask(tmp_path / "m.tif", (6, 5))
    assert mask.dtype == bool and mask.sum() == 20
    with pytest.raises(DcstsfInputError, match="pixels"):
        load_mask(tmp_path / "m.tif", (5, 5))
    with pytest.raises(DcstsfInputError, match="boolean"):
        load_mask(np.ones((6, 5)), (6, 5))
    with pytest.raises(DcstsfInputError, match="no pixel"):
        load_mask(np.zeros((6, 5), bool), (6, 5))
    (tmp_path / "case.json").write_text(json.dumps({"protocol": "simulated"}))
    meta = find_case_meta(None, tmp_path / "truth.tif")
    assert meta is not None and meta["protocol"] == "simulated"
    assert find_case_meta(tmp_path / "sub" / "x.tif") is None

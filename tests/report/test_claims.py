"""The report says what it shows: bad bands left out and listed, true captions, the no-truth maps,
the scene physics and co-registration figures, the uncertainty and its calibration, readable figures."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.text import Text

from dcstsf.errors import DcstsfInputError
from dcstsf.report import evaluate_predictions, no_reference_quality, plots
from dcstsf.report.diagnosis import recorded_model
from dcstsf.report.document import per_band_caption
from tests.report.report_html import parse_html

_DIAGNOSIS = {
    "physics": "estimated", "table_hs_psf_sigma": 1.2068, "hs_psf_sigma": 1.35, "hs_shift": [0.25, -0.1],
    "n_pixels": 48, "seconds": 0.5, "notes": [], "response_rows_estimated": ["B04"],
    "relative_sigma": {"B02": 1.1, "B03": 1.1, "B04": 1.1, "B08": 1.1},
    "residual_tables": {"B02": 0.05, "B03": 0.04, "B04": 0.06, "B08": 0.03},
    "residual_estimated": {"B02": 0.03, "B03": 0.03, "B04": 0.02, "B08": 0.02},
    "residual_t2": {"B02": 0.2, "B03": 0.2, "B04": 0.3, "B08": 0.25},
}
_COREG = {"tie_points": [[6, 6], [6, 28], [28, 6], [28, 28], [18, 18]],
          "vectors": [[0.3, -0.2], [0.5, 0.1], [0.2, 0.4], [-0.1, 0.2], [0.4, 0.3]],
          "global_shift": [0.25, 0.15], "residual_px": 0.08}


def _inputs(case: Any) -> dict[str, Any]:
    return {"hs_t1": case.hs_t1, "ms_t1": case.ms_t1, "ms_t2": case.ms_t2}


def _figures(html: Path) -> dict[str, str]:
    """``{figure key: caption text}`` of a report page."""
    text = html.read_text()
    return {m.group(1): re.sub(r"<[^>]+>", "", m.group(2)) for m in
            re.finditer(r'<figure id="fig-([^"]+)">.*?<figcaption>(.*?)</figcaption>', text, re.S)}


# ------------------------------------------------------------------------------------------ bad bands
def test_bad_bands_are_left_out_listed_and_greyed(report: tuple[Path, dict[str, Any]], case: Any) -> None:
    out, res = report
    bad = np.flatnonzero(~case.model.hs_sensor.good)
    assert bad.size == 31
    assert res["bands"]["excluded"] == bad.tolist() == res["bands"]["bad"]
    assert res["bands"]["bad_band_source"] == "sensor zy1-02d-ahsi"
    for entry in res["methods"].values():
        psnr = entry["per_band"]["psnr"]
        assert all(psnr[i] is None for i in bad) and all(psnr[i] is not None for i in np.flatnonzero(~np.isin(
            np.arange(len(psnr)), bad)))
        assert entry["conventions"]["bands_excluded"] == bad.tolist()
    html = (out / "report.html").read_text()
    names = res["bands"]["names"]
    assert all(names[i] in html for i in bad)  # listed in the conventions
    assert any("31 bad bands" in n for n in res["notes"])
    caption = _figures(out / "report.html")["per_band"]
    assert "31 bad bands (grey) are left out" in caption and "lines stop there" in caption
    # AHSI's wavelengths have no gap wider than 3 band steps: the caption does not claim breaks there
    assert "gap" not in caption


def test_per_band_caption_follows_the_data() -> None:
    x = np.array([400.0, 410, 420, 430, 440, 900, 910, 920])
    series = {"a": {"psnr": np.ones(8)}}
    with_gap = per_band_caption(x, "wavelength (nm)", {"bad": [], "excluded": []}, series)
    assert "1 gap" in with_gap and "grey" not in with_gap
    plain = per_band_caption(x[:5], "wavelength (nm)", {"bad": [1], "excluded": [1]},
                             {"a": {"psnr": np.array([1, np.nan, 1, 1, 1.0])}})
    assert "gap" not in plain and "1 bad bands (grey)" in plain and "undefined" not in plain
    undefined = per_band_caption(x[:5], "band number", {"bad": [], "excluded": []},
                                 {"a": {"psnr": np.array([1, np.nan, 1, 1, 1.0])}})
    assert "undefined" in undefined


# ------------------------------------------------------------------------------------- no truth: maps
@pytest.fixture()
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure a report draws in the test."""
    figures: list[Figure] = []
    original = plots.png_bytes

    def keep(fig: Figure) -> bytes:
        figures.append(fig)
        return original(fig)

    monkeypatch.setattr(plots, "png_bytes", keep)
    return figures


def _readable(figures: list[Figure]) -> None:
    """Figures fit the page column at 100 % and their texts are at least 11 px high there."""
    for fig in figures:
        assert fig.get_figwidth() * plots.DPI <= plots.MAX_WIDTH_IN * plots.DPI + 1
        fig.canvas.draw()
        for t in fig.findobj(Text):
            if t.get_text().strip() and t.get_visible():
                # points to pixels at the figure's resolution
                assert t.get_fontsize() * plots.DPI / 72 >= 11, (fig.get_suptitle(), t.get_text())


def test_no_truth_report_has_the_maps(
    case: Any, preds: dict[str, xr.DataArray], tmp_path: Path, drawn: list[Figure]
) -> None:
    pred = preds["bicubic"].copy()
    pred.attrs.update(scene_diagnosis=json.dumps(_DIAGNOSIS), physics="estimated", coregistration=json.dumps(_COREG))
    sd = pred.copy(data=np.full(pred.shape, 0.02, np.float32))
    res = evaluate_predictions({"bicubic": pred, "other": preds["noisy truth"]}, None, out_dir=tmp_path,
                               inputs=_inputs(case), uncertainty=sd)
    figures = _figures(tmp_path / "report.html")
    for key in ("ms_t2_error", "ms_t2_error_bands", "ms_t2_rmse_bands", "hs_t1_error", "change", "psf_1",
                "response_residuals_1", "coregistration_bicubic", "spectra", "quicklook_true", "uncertainty_map"):
        assert key in figures, key
    assert "uncertainty_calibration" not in figures  # needs a truth
    assert "within_1sd" not in res["methods"]["bicubic"]["uncertainty"]
    ids = parse_html(tmp_path / "report.html").ids
    assert {"no-reference", "change", "physics", "uncertainty"} <= set(ids) and "error-maps" not in ids
    # spectra without truth never mention it
    assert "truth" not in figures["spectra"].lower()
    # the HS(t1) check goes through the PSF the prediction was fused with
    entry = res["methods"]["bicubic"]["no_reference"]
    assert entry["hs_t1_reproduction_unchanged"]["psf"] == "estimated"
    assert res["methods"]["other"]["no_reference"]["hs_t1_reproduction_unchanged"]["psf"] == "tables"
    hs, m1, m2 = case.arrays()
    direct = no_reference_quality(pred, hs, m1, m2, model=recorded_model(case.model, pred.attrs),
                                  bands=np.flatnonzero(case.model.hs_sensor.good))
    assert entry["ms_t2_reproduction"]["psnr"] == pytest.approx(direct["ms_t2_reproduction"]["psnr"], rel=1e-9)
    assert entry["hs_t1_reproduction_unchanged"]["pixels"] == direct["hs_t1_reproduction_unchanged"]["pixels"]
    # QNR keeps today's convention: its coarse scale (M1~) uses the inputs' sensor-table model
    assert entry["qnr"]["d_lambda"] == pytest.approx(direct["qnr"]["d_lambda"], rel=1e-9)
    assert "5 tie points" in figures["coregistration_bicubic"]
    assert res["methods"]["bicubic"]["provenance"]["coregistration"]["global_shift"] == [0.25, 0.15]
    assert len(drawn) >= 12
    _readable(drawn)
    with pytest.raises(DcstsfInputError, match="--uncertainty"):
        evaluate_predictions({"bicubic": pred}, None, out_dir=tmp_path / "b", inputs=_inputs(case),
                             uncertainty=sd[:5])
    with pytest.raises(DcstsfInputError, match="pixels"):
        evaluate_predictions({"bicubic": pred}, None, out_dir=tmp_path / "c", inputs=_inputs(case),
                             uncertainty=sd[:, :30])


# ---------------------------------------------------------------------------------------- uncertainty
def test_uncertainty_calibration_with_bad_bands_scored(
    case: Any, preds: dict[str, xr.DataArray], tmp_path: Path, drawn: list[Figure]
) -> None:
    pred = preds["noisy truth"]
    truth = case.hs_t2_truth
    sd = xr.DataArray(np.full((1, *truth.shape[1:]), 0.01, np.float32), dims=("band", "y", "x"))
    res = evaluate_predictions({"noisy": pred}, truth, out_dir=tmp_path, ratio=3, uncertainty=sd,
                               include_bad_bands=True)
    # every band scored on request, the bad ones still listed and greyed
    assert res["bands"]["excluded"] == [] and len(res["bands"]["bad"]) == 31
    assert all(v is not None for v in res["methods"]["noisy"]["per_band"]["psnr"])
    figures = _figures(tmp_path / "report.html")
    assert "scored on request" in figures["per_band"]
    unc = res["methods"]["noisy"]["uncertainty"]
    err = np.abs(pred.values.astype(np.float64) - truth.values)
    assert unc["values"] == err.size
    assert unc["within_1sd"] == pytest.approx(float(np.mean(err <= 0.01)), abs=1e-12)
    assert unc["within_2sd"] == pytest.approx(float(np.mean(err <= 0.02)), abs=1e-12)
    assert unc["expected_within_1sd"] == pytest.approx(0.6827, abs=1e-4)
    i = unc["k"].index(1.5)
    assert unc["observed"][i] == pytest.approx(float(np.mean(err <= 0.015)), abs=1e-12)
    np.testing.assert_allclose(unc["per_band_within_1sd"], (err <= 0.01).reshape(err.shape[0], -1).mean(axis=1))
    # 1 % Gaussian noise (clipped at 0) against a 1 % sd: close to calibrated
    assert 0.6 < unc["within_1sd"] < 0.75 and 0.93 < unc["within_2sd"] < 0.98
    assert {"uncertainty_map", "uncertainty_calibration", "per_band", "comparison", "error_abs"} <= set(figures)
    assert "table-uncertainty" in parse_html(tmp_path / "report.html").ids
    _readable(drawn)


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_evaluate_options(case: Any, preds: dict[str, xr.DataArray], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from dcstsf.cli import main
    from dcstsf.io import write_raster

    paths = case.save(tmp_path / "case")
    pred = write_raster(preds["bicubic"], tmp_path / "pred.tif")
    sd = write_raster(preds["bicubic"][:1].copy(data=np.full((1, 36, 36), 0.02, np.float32)), tmp_path / "sd.tif")
    code = main(["-q", "evaluate", str(pred), str(paths["hs_t2_truth"]), "--case", str(tmp_path / "case"),
                 "--uncertainty", str(sd), "--include-bad-bands", "--memory-limit", "2GiB", "-o", str(tmp_path / "r")])
    assert code == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "r" / "metrics.json").read_text())
    entry = data["methods"]["pred"]
    assert entry["uncertainty"]["source"] == str(sd) and 0 <= entry["uncertainty"]["within_1sd"] <= 1
    assert data["bands"]["excluded"] == [] and data["bands"]["bad_bands_included"]
    # the case's truth at t1 decides the changed pixels
    assert data["truth_t1"].endswith("hs_t1_truth.tif") and "simulated change" in entry["changed_unchanged"]["definition"]


def test_coregistration_record_of_the_coregistration_step() -> None:
    from dcstsf.coregistration.field import DisplacementField
    from dcstsf.report.diagnosis import coregistration_field

    fld = DisplacementField.constant((0.2, -0.1), (12, 12))
    rec = {"field": fld.to_dict(), "ratio": 3, "shift_fine_px": [0.6, -0.3],
           "statistics": {"residual_median_px": 0.05}}
    cf = coregistration_field({"coregistration": json.dumps(rec)})
    assert cf is not None and cf.kind == "fitted field" and cf.points.shape == (64, 2)
    # coarse pixels -> fine pixels: the vectors times the ratio, the positions at coarse-pixel centres
    np.testing.assert_allclose(cf.vectors, np.tile([0.6, -0.3], (64, 1)))
    assert cf.points.min() == 1.5 and cf.points.max() == 34.5
    assert cf.global_shift == (0.6, -0.3) and cf.residual_px == pytest.approx(0.15)
    assert coregistration_field({"coregistration": "not json"}) is None
    assert coregistration_field({"coregistration": json.dumps({"tie_points": [[1, 2]], "vectors": []})}) is None

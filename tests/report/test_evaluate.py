"""Tests of dcstsf.report.evaluate: the files written (HTML, Markdown, metrics.json) and their agreement."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from dcstsf.errors import DcstsfInputError
from dcstsf.report import evaluate_predictions, format_headline
from dcstsf.report.render import format_value, json_pointer
from tests.report.report_html import PNG_SIGNATURE, parse_html, resolve


def test_report_files_and_json_structure(report: tuple[Path, dict[str, Any]], case: Any) -> None:
    out, res = report
    for name in ("metrics.json", "report.html", "report.md"):
        assert (out / name).is_file()
    data = json.loads((out / "metrics.json").read_text())
    assert set(data["methods"]) == {"bicubic", "noisy truth"}
    nb = case.hs_t2_truth.sizes["band"]
    for entry in data["methods"].values():
        assert set(entry["global"]) >= {"psnr", "sam_deg", "ergas", "ssim", "cc", "rmse"}
        assert all(len(v) == nb for v in entry["per_band"].values())
        assert set(entry["no_reference"]) == {"ms_t2_reproduction", "hs_t1_reproduction_unchanged", "qnr"}
    assert data["truth_no_reference"] is not None
    assert "SIMULATED" in data["protocol"]
    assert any("simulated" in n.lower() for n in data["notes"])
    assert data["conventions"]["ratio"] == 3 and math.isclose(data["conventions"]["ratio_h_over_l"], 1 / 3)
    assert len(data["bands"]["wavelength_nm"]) == nb
    # The returned dict is the file's content plus the list of files written.
    assert {k: v for k, v in res.items() if k != "files"}["methods"].keys() == data["methods"].keys()
    assert Path(res["files"]["html"]) == out / "report.html"
    # The noisy truth beats bicubic on every full-reference metric and on MS(t2) reproduction.
    g = {n: data["methods"][n]["global"] for n in data["methods"]}
    assert g["noisy truth"]["psnr"] > g["bicubic"]["psnr"]
    assert g["noisy truth"]["sam_deg"] < g["bicubic"]["sam_deg"]
    nr = {n: data["methods"][n]["no_reference"]["ms_t2_reproduction"]["psnr"] for n in data["methods"]}
    assert nr["noisy truth"] > nr["bicubic"]


def test_html_parses_and_is_self_contained(report: tuple[Path, dict[str, Any]]) -> None:
    out, res = report
    c = parse_html(out / "report.html")
    assert c.external == []
    figures = sorted((out / "figures").glob("*.png"))
    assert len(figures) >= 8  # comparison, per-band, 2 quicklooks, 2 error maps, spectra, no-reference
    assert len(c.imgs) == len(figures) == len(res["files"]["figures"])
    for img in c.imgs:
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_SIGNATURE)
        assert img.get("alt")
    # the embedded images are exactly the figure files
    embedded = sorted(base64.b64decode(str(i["src"]).split(",", 1)[1]) for i in c.imgs)
    assert embedded == sorted(p.read_bytes() for p in figures)
    for section in ("full-reference", "comparison", "per-band", "quicklooks", "error-maps", "spectra", "no-reference"):
        assert section in c.ids
    assert "table-no-reference" in c.ids


def test_html_numbers_equal_json(report: tuple[Path, dict[str, Any]]) -> None:
    out, _ = report
    data = json.loads((out / "metrics.json").read_text())
    c = parse_html(out / "report.html")
    assert c.cells, "no numeric cell found"
    for pointer, text in c.cells:
        value = resolve(data, pointer)
        if value is None:
            assert text == "n/a", pointer
            continue
        digits = len(text.split(".")[1]) if "." in text else 0
        assert float(text) == round(float(value), digits), (pointer, text, value)
        assert text == format_value(value, digits)
    pointers = {p for p, _ in c.cells}
    for name in data["methods"]:
        for key in ("psnr", "sam_deg", "ergas", "ssim", "cc", "rmse"):
            assert json_pointer("methods", name, "global", key) in pointers
        assert json_pointer("methods", name, "runtime_s") in pointers
        for group, key in (("ms_t2_reproduction", "psnr"), ("hs_t1_reproduction_unchanged", "psnr"), ("qnr", "qnr")):
            assert json_pointer("methods", name, "no_reference", group, key) in pointers
    assert "truth_no_reference/qnr/d_lambda" in pointers


def test_markdown_references_existing_figures(report: tuple[Path, dict[str, Any]]) -> None:
    out, _ = report
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links
    for link in links:
        assert (out / link).is_file(), link
    assert {Path(link).name for link in links} == {p.name for p in (out / "figures").glob("*.png")}
    assert "No-reference quality" in md
    data = json.loads((out / "metrics.json").read_text())
    assert format_value(data["methods"]["bicubic"]["global"]["psnr"], 2) in md


def test_existing_report_needs_overwrite(
    report: tuple[Path, dict[str, Any]], preds: dict[str, xr.DataArray], case: Any
) -> None:
    out, _ = report
    with pytest.raises(DcstsfInputError, match="overwrite"):
        evaluate_predictions({"bicubic": preds["bicubic"]}, case.hs_t2_truth, out_dir=out)


def test_report_without_truth(case: Any, preds: dict[str, xr.DataArray], tmp_path: Path) -> None:
    res = evaluate_predictions(
        {"bicubic": preds["bicubic"]}, None, out_dir=tmp_path,
        inputs={"hs_t1": case.hs_t1, "ms_t1": case.ms_t1, "ms_t2": case.ms_t2},
    )
    assert "global" not in res["methods"]["bicubic"]
    assert res["truth_no_reference"] is None
    c = parse_html(tmp_path / "report.html")
    assert "no-reference" in c.ids and "full-reference" not in c.ids and "error-maps" not in c.ids
    for img in c.imgs:
        assert base64.b64decode(str(img["src"]).split(",", 1)[1]).startswith(PNG_SIGNATURE)
    data = json.loads((tmp_path / "metrics.json").read_text())
    for pointer, text in c.cells:
        value = resolve(data, pointer)
        assert text == ("n/a" if value is None else format_value(value, len(text.split(".")[1])))
    assert "QNR" in format_headline(res)
    assert any("No truth" in n for n in res["notes"])


def test_report_from_files_lazy_mask_border(case: Any, preds: dict[str, xr.DataArray], tmp_path: Path) -> None:
    from dcstsf import metrics
    from dcstsf.io import write_raster

    paths = case.save(tmp_path / "case")
    pred_path = write_raster(preds["bicubic"], tmp_path / "bicubic.tif")
    lazy = preds["bicubic"].chunk({"y": 12, "x": 12})
    mask = np.ones(case.hs_t2_truth.shape[1:], bool)
    mask[:, :6] = False
    res = evaluate_predictions(
        {"bicubic": pred_path, "lazy": lazy}, paths["hs_t2_truth"], out_dir=tmp_path / "rep", ratio=3, mask=mask,
        border=1,
    )
    entry = res["methods"]["bicubic"]
    assert "no_reference" not in entry
    assert entry["source"] == str(pred_path) and res["methods"]["lazy"]["source"] is None
    ny, nx = case.hs_t2_truth.shape[1:]
    assert entry["conventions"]["valid_pixels"] == (ny - 2) * (nx - 2 - 5)
    assert res["methods"]["lazy"]["global"]["psnr"] == pytest.approx(entry["global"]["psnr"], abs=1e-4)
    # the report leaves the sensor's bad bands out of the metrics
    direct = metrics.evaluate(preds["bicubic"], case.hs_t2_truth, h_over_l=1 / 3, mask=mask, border=1, block=17,
                              bands=case.model.hs_sensor.good)
    assert res["methods"]["lazy"]["global"]["sam_deg"] == pytest.approx(direct["global"]["sam_deg"])
    # the case.json next to the truth marks the change as simulated
    assert "SIMULATED" in res["protocol"]
    assert any("not given" in n for n in res["notes"])
    assert "no-reference" not in parse_html(tmp_path / "rep" / "report.html").ids


def test_overwrite_replaces_the_figures(case: Any, preds: dict[str, xr.DataArray], tmp_path: Path) -> None:
    stale = tmp_path / "figures" / "stale.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    res = evaluate_predictions({"bicubic": preds["bicubic"]}, case.hs_t2_truth, out_dir=tmp_path, ratio=3,
                               overwrite=True)
    assert not stale.exists()
    assert sorted(Path(p).name for p in res["files"]["figures"]) == sorted(p.name for p in stale.parent.iterdir())
    assert not [p for p in tmp_path.rglob(".*partial*")]  # no temporary left behind


def test_bands_a_prediction_leaves_empty_are_left_out(
    case: Any, preds: dict[str, xr.DataArray], tmp_path: Path
) -> None:
    from dcstsf import metrics

    good = np.flatnonzero(case.model.hs_sensor.good)
    empty = good[[3, 4, 40]]
    holed = preds["bicubic"].copy(data=preds["bicubic"].values.copy())
    holed.values[empty] = np.nan
    with pytest.warns(UserWarning, match="holed holds no finite value in 3 scored band"):
        res = evaluate_predictions(
            {"holed": holed, "bicubic": preds["bicubic"]}, case.hs_t2_truth, out_dir=tmp_path,
            inputs={"hs_t1": case.hs_t1, "ms_t1": case.ms_t1, "ms_t2": case.ms_t2},
        )
    # both predictions are scored on the same bands, the empty ones left out, and the metrics are defined
    scored = np.setdiff1d(good, empty)
    direct = metrics.evaluate(preds["bicubic"], case.hs_t2_truth, h_over_l=1 / 3, block=res["conventions"]["uiqi_block"],
                              bands=np.isin(np.arange(case.model.n_hs), scored))
    for name in ("holed", "bicubic"):
        entry = res["methods"][name]
        assert entry["conventions"]["bands_scored"] == scored.size
        assert entry["conventions"]["valid_pixels"] == case.hs_t2_truth.shape[1] * case.hs_t2_truth.shape[2]
        assert entry["global"]["psnr"] == pytest.approx(direct["global"]["psnr"], abs=1e-6)
        assert entry["no_reference"]["ms_t2_reproduction"]["psnr"] is not None
    # the prediction equals bicubic outside its empty bands, and both are checked without them
    holed_nr, bic_nr = (res["methods"][n]["no_reference"] for n in ("holed", "bicubic"))
    assert holed_nr["ms_t2_reproduction"]["psnr"] == pytest.approx(bic_nr["ms_t2_reproduction"]["psnr"])
    assert holed_nr["qnr"]["qnr"] == pytest.approx(bic_nr["qnr"]["qnr"])
    assert res["bands"]["empty"] == {"holed": empty.tolist()}
    assert set(empty) <= set(res["bands"]["excluded"])
    names = case.model.hs_sensor.band_names
    note = next(n for n in res["notes"] if n.startswith("holed holds no finite value"))
    assert f"{names[empty[0]]}-{names[empty[1]]}" in note and names[empty[2]] in note
    assert any(n.startswith(f"{(~case.model.hs_sensor.good).sum()} bad bands") for n in res["notes"])


def test_bands_the_truth_leaves_empty_are_left_out(
    case: Any, preds: dict[str, xr.DataArray], tmp_path: Path
) -> None:
    good = np.flatnonzero(case.model.hs_sensor.good)
    truth = case.hs_t2_truth.copy(data=case.hs_t2_truth.values.copy())
    truth.values[good[-1]] = np.nan
    with pytest.warns(UserWarning, match="the truth holds no finite value"):
        res = evaluate_predictions({"bicubic": preds["bicubic"]}, truth, out_dir=tmp_path, ratio=3)
    assert res["bands"]["empty"] == {"the truth": [int(good[-1])]}
    assert res["methods"]["bicubic"]["global"]["psnr"] is not None


def test_a_prediction_with_no_finite_value_is_an_error(
    case: Any, preds: dict[str, xr.DataArray], tmp_path: Path
) -> None:
    blank = preds["bicubic"].copy(data=np.full(preds["bicubic"].shape, np.nan, np.float32))
    with pytest.raises(DcstsfInputError, match="no finite value in any of the .* scored bands"):
        evaluate_predictions({"blank": blank}, case.hs_t2_truth, out_dir=tmp_path, ratio=3)
    assert not (tmp_path / "metrics.json").exists()


def test_a_prediction_of_other_bands_is_refused(case: Any, preds: dict[str, xr.DataArray], tmp_path: Path) -> None:
    # as many bands as the truth, but not the same ones: comparing them band by band would mean nothing
    other = preds["bicubic"].assign_coords(wavelength=("band", preds["bicubic"]["wavelength"].values + 60.0))
    with pytest.raises(DcstsfInputError, match=r"prediction 'other' and the truth hold other bands: band 1 is at"):
        evaluate_predictions({"other": other}, case.hs_t2_truth, out_dir=tmp_path, ratio=3)
    inputs = {"hs_t1": case.hs_t1, "ms_t1": case.ms_t1, "ms_t2": case.ms_t2}
    with pytest.raises(DcstsfInputError, match=r"prediction 'other' and prediction 'bicubic' hold other bands"):
        evaluate_predictions({"bicubic": preds["bicubic"], "other": other}, None, out_dir=tmp_path, inputs=inputs)
    with pytest.raises(DcstsfInputError, match=r"prediction 'other' and HS\(t1\) of the inputs hold other bands"):
        evaluate_predictions({"other": other}, None, out_dir=tmp_path, inputs=inputs)
    # within a few nm (a resampling's rounding) they are the same bands
    close = preds["bicubic"].assign_coords(wavelength=("band", preds["bicubic"]["wavelength"].values + 1.0))
    assert evaluate_predictions({"close": close}, case.hs_t2_truth, out_dir=tmp_path / "ok", ratio=3)["methods"]

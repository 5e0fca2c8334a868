"""Tests for dcstsf.report: the rendered report (HTML, Markdown, metrics.json) and no-reference quality."""

from __future__ import annotations

import base64
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine

from dcstsf.errors import DcstsfInputError
from dcstsf.methods import fuse_arrays
from dcstsf.operators import ObservationModel
from dcstsf.report import (
    evaluate_predictions,
    find_case_meta,
    format_headline,
    load_mask,
    nearest_bands,
    no_reference_quality,
    unchanged_pixels,
)
from dcstsf.report.render import format_value, json_pointer
from dcstsf.simulate import simulate_case

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MS_BANDS = ["B02", "B03", "B04", "B08"]


# ------------------------------------------------------------------------------------------ fixtures
def synthetic_scene(ny: int = 36, nx: int = 36, nb: int = 60, seed: int = 0) -> xr.DataArray:
    """A georeferenced reflectance cube: smooth abundance fields of vegetation, soil and water spectra."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2450.0, nb)
    veg = 0.05 + 0.4 / (1 + np.exp(-(wl - 715) / 15)) * np.exp(-(((wl - 1450) / 900) ** 2)) + 0.05 * np.exp(-(((wl - 550) / 30) ** 2))
    soil = 0.1 + 0.25 * (wl - 400) / 2050
    water = 0.06 * np.exp(-(wl - 400) / 250) + 0.005
    from scipy.ndimage import gaussian_filter

    fields = np.stack([gaussian_filter(rng.standard_normal((ny, nx)), 3) for _ in range(3)])
    ab = np.exp(3 * fields / fields.std())
    ab /= ab.sum(axis=0, keepdims=True)
    cube = np.einsum("ek,eyx->kyx", np.stack([veg, soil, water]), ab).astype(np.float32)
    t = Affine(30.0, 0.0, 366975.0, 0.0, -30.0, 5808045.0)
    da = xr.DataArray(
        cube,
        dims=("band", "y", "x"),
        coords={
            "band": [f"b{i + 1}" for i in range(nb)],
            "wavelength": ("band", wl),
            "fwhm": ("band", np.full(nb, 12.0)),
            "y": t.f + t.e * (np.arange(ny) + 0.5),
            "x": t.c + t.a * (np.arange(nx) + 0.5),
        },
    )
    return da.rio.write_crs("EPSG:32633").rio.write_transform(t)


@pytest.fixture(scope="module")
def case() -> Any:
    model = ObservationModel.from_sensors("zy1-02d-ahsi", "sentinel-2a", ms_bands=MS_BANDS, ratio=3)
    return simulate_case(synthetic_scene(), model=model, change="mixed", seed=1)


@pytest.fixture(scope="module")
def preds(case: Any) -> dict[str, xr.DataArray]:
    hs, m1, m2 = case.arrays()
    bic = case.hs_t2_truth.copy(data=fuse_arrays(hs, m1, m2, method="bicubic", model=case.model))
    rng = np.random.default_rng(3)
    noisy = case.hs_t2_truth.copy(
        data=np.clip(case.hs_t2_truth.values + 0.01 * rng.standard_normal(case.hs_t2_truth.shape), 0, 1).astype(np.float32)
    )
    return {"bicubic": bic, "noisy truth": noisy}


@pytest.fixture(scope="module")
def report(case: Any, preds: dict[str, xr.DataArray], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("report")
    res = evaluate_predictions(
        preds,
        case.hs_t2_truth,
        out_dir=out,
        inputs={"hs_t1": case.hs_t1, "ms_t1": case.ms_t1, "ms_t2": case.ms_t2},
        case_meta=case.meta,
        runtimes={"bicubic": 0.01, "noisy truth": 1.5},
    )
    return out, res


class _Collector(HTMLParser):
    """Images, table cells with a data-json path (and their text), section ids, external references."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.cells: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []
        self._cell: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "img":
            self.imgs.append(a)
        if tag in ("script", "link", "iframe") or any(
            k in ("src", "href") and v and re.match(r"^(https?:)?//", v) for k, v in attrs
        ):
            self.external.append(f"{tag} {a}")
        if tag == "td" and a.get("data-json"):
            self._cell = str(a["data-json"])
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append((self._cell, "".join(self._text).strip()))
            self._cell = None


def resolve(doc: Any, pointer: str) -> Any:
    for part in pointer.split("/"):
        doc = doc[part.replace("~1", "/").replace("~0", "~")]
    return doc


def parse_html(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8"))
    c.close()
    return c


# ------------------------------------------------------------------------------------------ report
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


def test_headline_table(report: tuple[Path, dict[str, Any]]) -> None:
    _, res = report
    text = format_headline(res)
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["method", "PSNR(dB)", "SAM(deg)", "ERGAS", "SSIM"]
    assert any(line.startswith("bicubic") for line in lines)
    assert format_value(res["methods"]["bicubic"]["global"]["psnr"], 2) in text


def test_existing_report_needs_overwrite(report: tuple[Path, dict[str, Any]], preds: dict[str, xr.DataArray], case: Any) -> None:
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
    direct = metrics.evaluate(preds["bicubic"], case.hs_t2_truth, ratio=1 / 3, mask=mask, border=1, block=17)
    assert res["methods"]["lazy"]["global"]["sam_deg"] == pytest.approx(direct["global"]["sam_deg"])
    # the case.json next to the truth marks the change as simulated
    assert "SIMULATED" in res["protocol"]
    assert any("not given" in n for n in res["notes"])
    assert "no-reference" not in parse_html(tmp_path / "rep" / "report.html").ids


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
    assert not any((tmp_path / d).exists() for d in "cdefghi")


# ------------------------------------------------------------------------------------------ pieces
def test_no_reference_quality_ranks_truth_above_bicubic(case: Any, preds: dict[str, xr.DataArray]) -> None:
    hs, m1, m2 = case.arrays()
    truth = no_reference_quality(case.hs_t2_truth, hs, m1, m2, model=case.model)
    bic = no_reference_quality(preds["bicubic"], hs, m1, m2, model=case.model)
    assert truth["ms_t2_reproduction"]["psnr"] > bic["ms_t2_reproduction"]["psnr"] + 3
    assert truth["ms_t2_reproduction"]["sam_deg"] < bic["ms_t2_reproduction"]["sam_deg"]
    # D_s pairs same-date images at each scale: the truth is less distorted than bicubic.
    assert truth["qnr"]["d_s"] < bic["qnr"]["d_s"]
    rep = truth["hs_t1_reproduction_unchanged"]
    assert rep["pixels"] >= 0 and 0 <= rep["fraction"] <= 1 and rep["change_threshold"] == 0.03
    with pytest.raises(DcstsfInputError, match="grids"):
        no_reference_quality(case.hs_t2_truth[:, :33], hs, m1, m2, model=case.model)


def test_unchanged_pixels() -> None:
    rng = np.random.default_rng(0)
    m1 = rng.uniform(0.1, 0.3, (4, 12, 12)).astype(np.float32)
    m2 = m1.copy()
    m2[:, :3, :3] *= 1.5  # one coarse pixel changes by 50 %
    unchanged, rel = unchanged_pixels(m1, m2, ratio=3)
    assert unchanged.shape == (4, 4)
    assert not unchanged[0, 0] and unchanged.sum() == 15
    assert rel[0, 0] == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(DcstsfInputError):
        unchanged_pixels(m1, m2, ratio=3, threshold=-1)


def test_unchanged_pixels_are_used(case: Any) -> None:
    hs, m1, _ = case.arrays()
    # MS(t2) = MS(t1): every pixel is unchanged, and the t1 truth reproduces HS(t1) up to the HS noise.
    res = no_reference_quality(case.hs_t1_truth, hs, m1, m1, model=case.model)
    rep = res["hs_t1_reproduction_unchanged"]
    assert rep["fraction"] == 1.0
    assert rep["psnr"] > 35


def test_nearest_bands_and_formatting() -> None:
    wl = np.array([450.0, 480.0, 560.0, 660.0, 870.0])
    assert nearest_bands(wl, (650, 550, 470)) == [3, 2, 1]
    assert nearest_bands(wl[:3], (860, 650, 550)) is None
    assert nearest_bands(None, (650, 550, 470)) is None
    assert format_value(float("nan"), 2) == "n/a" and format_value(None, 2) == "n/a"
    assert format_value(1.23456, 3) == "1.235"
    assert json_pointer("methods", "a/b", "x~y") == "methods/a~1b/x~0y"


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
    (tmp_path / "case.json").write_text(json.dumps({"protocol": "simulated"}))
    meta = find_case_meta(None, tmp_path / "truth.tif")
    assert meta is not None and meta["protocol"] == "simulated"
    assert find_case_meta(tmp_path / "sub" / "x.tif") is None

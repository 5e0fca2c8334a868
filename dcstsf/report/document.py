"""The report document: sections, tables and figures built from ``metrics.json`` and the display data.

:func:`build_document` turns a :class:`ReportContext` into a :class:`~dcstsf.report.render.ReportDoc`,
one function per section; :mod:`dcstsf.report.render` renders it to HTML and Markdown. Every table cell
refers to its number in ``metrics.json`` by a JSON pointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcstsf.report import plots
from dcstsf.report.display import Display
from dcstsf.report.noref import NO_REFERENCE_DEFINITIONS
from dcstsf.report.render import (
    Column,
    Definitions,
    FigureBlock,
    Paragraph,
    ReportDoc,
    Row,
    Section,
    Table,
    json_pointer,
)

__all__ = ["FULL_REFERENCE_COLUMNS", "NO_REFERENCE_COLUMNS", "ReportContext", "build_document"]

#: Full-reference table: JSON key in ``global``, label, decimals shown, better direction.
FULL_REFERENCE_COLUMNS: tuple[Column, ...] = (
    Column("psnr", "PSNR (dB) \u2191", 2, "max"),
    Column("sam_deg", "SAM (\u00b0) \u2193", 3, "min"),
    Column("ergas", "ERGAS \u2193", 3, "min"),
    Column("ssim", "SSIM \u2191", 4, "max"),
    Column("cc", "CC \u2191", 4, "max"),
    Column("rmse", "RMSE \u2193", 5, "min"),
    Column("uiqi", "UIQI \u2191", 4, "max"),
    Column("q2n", "Q2n \u2191", 4, "max"),
)
_RUNTIME_COLUMN = Column("runtime_s", "time (s)", 2, None)

#: No-reference table: (group in ``no_reference``, column).
NO_REFERENCE_COLUMNS: tuple[tuple[str, Column], ...] = (
    ("ms_t2_reproduction", Column("psnr", "MS(t2) PSNR (dB) \u2191", 2, "max")),
    ("ms_t2_reproduction", Column("sam_deg", "MS(t2) SAM (\u00b0) \u2193", 3, "min")),
    ("ms_t2_reproduction", Column("ergas", "MS(t2) ERGAS \u2193", 3, "min")),
    ("hs_t1_reproduction_unchanged", Column("psnr", "HS(t1) PSNR, unchanged px (dB) \u2191", 2, "max")),
    ("hs_t1_reproduction_unchanged", Column("sam_deg", "HS(t1) SAM, unchanged px (\u00b0) \u2193", 3, "min")),
    ("qnr", Column("d_lambda", "D\u03bb \u2193", 4, "min")),
    ("qnr", Column("d_s", "Ds \u2193", 4, "min")),
    ("qnr", Column("qnr", "QNR \u2191", 4, "max")),
)

_FULL_REF_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("PSNR", "Mean over bands of 10 log10(1 / MSE_b) (reflectance, data range 1), each band capped at 100 dB."),
    ("SAM", "Mean spectral angle between predicted and true spectra, degrees, over valid pixels."),
    ("ERGAS", "100 (h/l) sqrt(mean_b (RMSE_b / mean_b)^2), h/l = fine / coarse pixel size = 1/ratio."),
    ("SSIM", "Band mean of the structural similarity (Gaussian 11x11 window, sigma 1.5)."),
    ("CC", "Band mean of the Pearson correlation between predicted and true band images."),
    ("RMSE", "Root-mean-square error over all bands and valid pixels, reflectance units."),
    ("UIQI / Q2n", "Universal image quality index (band mean) and its hypercomplex extension, over blocks."),
    ("SAM contribution (per band)", "Mean over pixels of (p_b/|p| - r_b/|r|)^2: how much band b drives the "
     "spectral angle (the bands sum to the mean of 2 (1 - cos angle))."),
)

# Error maps share a colour scale from 0 to this percentile over all methods: a higher one lets a few
# dark-target pixels (water, shadow: large angles) flatten the contrast everywhere else.
_MAP_PERCENTILE = 95.0


@dataclass(frozen=True)
class ReportContext:
    """What the document is built from.

    Attributes
    ----------
    result
        The ``metrics.json`` content.
    names
        Prediction names, in table order.
    display
        Display-size figure data (quicklooks, maps, sample spectra).
    truth_spectra, coarse_spectra
        ``(pixel, band)`` spectra of the truth and of the covering HS(t1) pixels at the sample pixels.
    show_runtimes
        Whether fusion times were given (a time column in the tables).
    """

    result: Mapping[str, Any]
    names: list[str]
    display: Display
    truth_spectra: np.ndarray | None = None
    coarse_spectra: np.ndarray | None = None
    show_runtimes: bool = False

    @property
    def has_truth(self) -> bool:
        """Whether the predictions were scored against a truth."""
        return self.result["truth"] is not None

    @property
    def has_no_reference(self) -> bool:
        """Whether the fusion inputs were given (no-reference quality)."""
        return self.result.get("inputs") is not None

    @property
    def band_axis(self) -> tuple[np.ndarray, str]:
        """x values and label of the per-band plots: wavelengths, else band numbers."""
        wl = self.display.wavelengths
        if wl is not None:
            return wl, "wavelength (nm)"
        return np.arange(1, len(self.result["bands"]["names"]) + 1, dtype=float), "band number"


def _nan_for_none(values: list[Any]) -> list[Any]:
    return [np.nan if v is None else v for v in values]


def _meta(ctx: ReportContext) -> list[tuple[str, str]]:
    result, methods, conv = ctx.result, ctx.result["methods"], ctx.result["conventions"]
    shape = ctx.display.shape
    meta = [
        ("Predictions", ", ".join(f"{n} ({methods[n]['source'] or 'in memory'})" for n in ctx.names)),
        ("Truth", str(result["truth"]) if result["truth"] else "none (no-reference evaluation only)"),
    ]
    if result.get("inputs"):
        meta.append(("Inputs", ", ".join(f"{k}: {v}" for k, v in result["inputs"].items())))
    n_bands = len(result["bands"]["names"])
    meta.append(("Grid", f"{shape[0]} x {shape[1]} fine pixels, {n_bands} bands, ratio {conv['ratio']:g}"))
    meta.append(("Protocol", str(result["protocol"])))
    return meta


def _full_reference_sections(ctx: ReportContext, colors: Mapping[str, str]) -> list[Section]:
    """Full-reference table, method comparison and per-band quality."""
    methods, conv, names = ctx.result["methods"], ctx.result["conventions"], ctx.names
    cols = list(FULL_REFERENCE_COLUMNS) + ([_RUNTIME_COLUMN] if ctx.show_runtimes else [])
    rows = []
    for n in names:
        cells = []
        for c in cols:
            if c.key == "runtime_s":
                v = methods[n].get("runtime_s")
                cells.append((v, json_pointer("methods", n, "runtime_s") if "runtime_s" in methods[n] else None))
            else:
                cells.append((methods[n]["global"].get(c.key), json_pointer("methods", n, "global", c.key)))
        rows.append(Row(n, cells))
    table = Section("full-reference", "Full-reference metrics")
    table.blocks.append(Table("table-full-reference", "Prediction against the truth (best value in bold)", cols, rows))
    table.blocks.append(Paragraph(
        f"Valid pixels: {methods[names[0]]['conventions']['valid_pixels']} "
        f"(border {conv['border']} px cropped{', mask applied' if conv['mask'] else ''}); ERGAS uses "
        f"h/l = 1/{conv['ratio']:g}; UIQI/Q2n blocks of {conv['uiqi_block']} px."
    ))
    table.blocks.append(Definitions(_FULL_REF_DEFINITIONS))

    comp = [
        ("PSNR (dB) \u2191", [methods[n]["global"].get("psnr") for n in names]),
        ("SAM (\u00b0) \u2193", [methods[n]["global"].get("sam_deg") for n in names]),
        ("ERGAS \u2193", [methods[n]["global"].get("ergas") for n in names]),
        ("SSIM \u2191", [methods[n]["global"].get("ssim") for n in names]),
    ]
    if ctx.show_runtimes and all("runtime_s" in methods[n] for n in names):
        comp.append(("time (s)", [methods[n]["runtime_s"] for n in names]))
    comparison = Section("comparison", "Method comparison")
    comparison.blocks.append(FigureBlock(
        "comparison", "Method comparison",
        "Global full-reference metrics side by side (arrows: which direction is better). Where all values "
        "are close, the axis does not start at 0.",
        plots.comparison_figure(names, [(k, _nan_for_none(vals)) for k, vals in comp],
                                colors=colors, title="Full-reference metrics by method"),
    ))

    x, xlabel = ctx.band_axis
    series = {
        n: {k: np.asarray(_nan_for_none(methods[n]["per_band"][k]), float)
            for k in ("psnr", "sam_contribution", "rmse")}
        for n in names
    }
    per_band = Section("per-band", "Per-band quality")
    per_band.blocks.append(FigureBlock(
        "per_band", "Per-band PSNR, SAM contribution and RMSE",
        f"Against {xlabel}; lines break across spectral gaps (absorption bands). The SAM contribution of a "
        "band is the mean of (p_b/|p| - r_b/|r|)^2: the bands where the spectral shape is wrong.",
        plots.per_band_figure(
            x, series, panels=[("psnr", "PSNR (dB)"), ("sam_contribution", "SAM contribution"), ("rmse", "RMSE")],
            colors=colors, xlabel=xlabel, title="Per-band quality",
        ),
    ))
    return [table, comparison, per_band]


def _quicklook_section(ctx: ReportContext) -> Section:
    d, conv = ctx.display, ctx.result["conventions"]
    sec = Section("quicklooks", "Quicklooks")
    for key, label in (("true", "True colour"), ("false", "False colour")):
        if key in d.composites and d.panels.get(key):
            sec.blocks.append(FigureBlock(
                f"quicklook_{key}", f"{label} quicklooks",
                f"Red/green/blue = {d.composites[key][1]}. Stretch: {conv['quicklooks']['stretch']}. HS(t1) is shown "
                "with its coarse pixels."
                + (f" Displayed every {d.step} pixels." if d.step > 1 else ""),
                plots.quicklook_figure(d.panels[key], shape=d.shape, title=f"{label} ({d.composites[key][1]})"),
            ))
    if "false" not in d.composites:
        sec.blocks.append(Paragraph("No false-colour quicklook: the cube has no band within 60 nm of 860 nm."))
    if not d.composites:
        sec.blocks = [Paragraph("No quicklooks: the cube has fewer than three bands.")]
    return sec


def _shared_vmax(maps: Mapping[str, np.ndarray]) -> float:
    """Upper end of the colour scale shared by ``maps``: the ``_MAP_PERCENTILE`` of their finite values."""
    finite = np.concatenate([m[np.isfinite(m)] for m in maps.values()]) if maps else np.array([])
    return float(np.percentile(finite, _MAP_PERCENTILE)) if finite.size else 1.0


def _error_map_section(ctx: ReportContext) -> Section:
    d = ctx.display
    sec = Section("error-maps", "Error maps")
    sec.blocks.append(FigureBlock(
        "error_abs", "Absolute error",
        "Mean over bands of |prediction - truth| per pixel (reflectance); one colour scale for all methods "
        f"(0 to the {_MAP_PERCENTILE:g}th percentile over all of them; brighter values saturate).",
        plots.map_figure(d.mae_maps, shape=d.display_shape, title="Mean absolute error over bands",
                         label="|pred - truth| (reflectance)", vmax=_shared_vmax(d.mae_maps), cmap="magma"),
    ))
    sec.blocks.append(FigureBlock(
        "error_sam", "Spectral angle",
        "Spectral angle between predicted and true spectra per pixel (degrees); one colour scale for all "
        f"methods (0 to the {_MAP_PERCENTILE:g}th percentile). Dark targets such as water have large angles.",
        plots.map_figure(d.sam_maps, shape=d.display_shape, title="Spectral angle (SAM map)", label="angle (\u00b0)",
                         vmax=_shared_vmax(d.sam_maps), cmap="viridis"),
    ))
    return sec


def _spectra_section(ctx: ReportContext, colors: Mapping[str, str]) -> Section:
    d = ctx.display
    x, xlabel = ctx.band_axis
    ref = ("truth", ctx.truth_spectra) if ctx.has_truth else None
    loc_key = "true" if "true" in d.composites else None
    locator = next((p.image for p in d.panels.get(loc_key, []) if p.label == "truth HS(t2)"), None) if loc_key else None
    if locator is None and loc_key:
        locator = d.panels[loc_key][-1].image
    if locator is None:
        locator = np.zeros((d.display_shape[0], d.display_shape[1], 4))
    sec = Section("spectra", "Spectra at sample pixels")
    sec.blocks.append(FigureBlock(
        "spectra", "Spectra at sample pixels",
        "Pixels at the 10th, 50th and 90th percentile of band-mean reflectance"
        + (" and the pixel of largest MS change" if any(desc == "largest MS change" for *_, desc in d.pixels) else "")
        + "; truth in black, HS(t1) of the covering coarse pixel dashed grey.",
        plots.spectra_figure(x, d.pixels, d.spectra, colors=colors, reference=ref, coarse=ctx.coarse_spectra,
                             locator=locator, shape=d.shape, xlabel=xlabel,
                             title="Spectra, prediction against truth" if ctx.has_truth else "Predicted spectra"),
    ))
    return sec


def _no_reference_section(ctx: ReportContext, colors: Mapping[str, str]) -> Section:
    result, names = ctx.result, ctx.names
    methods, nconv = result["methods"], result["conventions"]["no_reference"]
    cols = [Column(f"{g}.{c.key}", c.label, c.digits, c.better) for g, c in NO_REFERENCE_COLUMNS]
    rows = []
    for n in names:
        nr = methods[n]["no_reference"]
        rows.append(Row(n, [(nr[g].get(c.key), json_pointer("methods", n, "no_reference", g, c.key))
                            for g, c in NO_REFERENCE_COLUMNS]))
    if result.get("truth_no_reference"):
        nr = result["truth_no_reference"]
        rows.append(Row("truth (reference level)", [(nr[g].get(c.key), json_pointer("truth_no_reference", g, c.key))
                                                    for g, c in NO_REFERENCE_COLUMNS], ranked=False))
    sec = Section("no-reference", "No-reference quality")
    sec.blocks.append(Paragraph(
        "Without a truth (real scenes), a prediction can still be checked against what the sensors observed: "
        "degraded back through the sensor model it should reproduce MS(t2), and HS(t1) where nothing "
        "changed between the dates. The QNR indices are given for comparison with the pansharpening "
        "literature, with the caveats below."
    ))
    sec.blocks.append(
        Table("table-no-reference", "Consistency with the observed inputs (best value in bold)", cols, rows)
    )
    sec.blocks.append(Paragraph(
        f"Unchanged coarse pixels (relative MS change < {nconv['change_threshold']:g}): "
        f"{nconv['unchanged_coarse_pixels']} ({100 * nconv['unchanged_fraction']:.1f} %). QNR blocks of "
        f"{nconv['qnr_block']} fine px. Observation model: HS {nconv['model']['hs_sensor']}, MS "
        f"{nconv['model']['ms_sensor']} ({', '.join(nconv['model']['ms_bands'])}), ratio {nconv['model']['ratio']}."
        + (" The truth row shows what a perfect prediction scores (noise, model approximation and, for QNR, "
           "the real change limit it); it is not ranked." if result.get("truth_no_reference") else "")
    ))
    sec.blocks.append(Definitions(list(NO_REFERENCE_DEFINITIONS.items())))
    comp = [
        ("MS(t2) PSNR (dB) \u2191", [methods[n]["no_reference"]["ms_t2_reproduction"]["psnr"] for n in names]),
        ("HS(t1) PSNR, unchanged (dB) \u2191",
         [methods[n]["no_reference"]["hs_t1_reproduction_unchanged"]["psnr"] for n in names]),
        ("QNR \u2191", [methods[n]["no_reference"]["qnr"]["qnr"] for n in names]),
    ]
    sec.blocks.append(FigureBlock(
        "no_reference", "No-reference comparison",
        "MS(t2) reproduction, HS(t1) reproduction on unchanged pixels and QNR by method. Where all values "
        "are close, the axis does not start at 0.",
        plots.comparison_figure(names, [(k, _nan_for_none(vals)) for k, vals in comp],
                                colors=colors, title="No-reference quality by method"),
    ))
    return sec


def _physics_section(ctx: ReportContext) -> Section | None:
    """The scene physics each prediction was fused with: estimated or tabulated PSF, shift, responses."""
    methods = ctx.result["methods"]
    found = [(n, methods[n].get("provenance", {}).get("scene_diagnosis")) for n in ctx.names]
    found = [(n, d) for n, d in found if d]
    if not found:
        return None
    sec = Section("physics", "Scene physics")
    sec.blocks.append(Paragraph(
        "Estimated once per scene from HS(t1) and MS(t1), before fusion: the HS point-spread function (a "
        "Gaussian std-dev in fine pixels, before the block mean), the HS-to-MS shift (fine pixels, down and "
        "right), the spectral response rows re-estimated where they explain held-out pixels better than the "
        "sensor table, and how well HS(t1) explains each MS(t1) band (relative residual: RMS residual of a "
        "per-band affine fit over the band's spread; 0 is perfect). 'physics' says which the method used."
    ))
    items = []
    for name, d in found:
        if "hs_psf_sigma" not in d:
            items.append((name, f"physics {d.get('physics')}: {'; '.join(d.get('notes', [])) or 'not estimated'}"))
            continue
        res_t = d["residual_tables"]
        res_e = d["residual_estimated"]
        rows = d.get("response_rows_estimated", [])
        items.append((name, (
            f"physics {d['physics']}; HS PSF sigma {d['hs_psf_sigma']:.2f} fine px (table "
            f"{d['table_hs_psf_sigma']:.2f}); shift ({d['hs_shift'][0]:+.2f}, {d['hs_shift'][1]:+.2f}) fine px; "
            f"response rows re-estimated: {', '.join(rows) if rows else 'none'}; MS(t1) residual per band, tables "
            f"-> estimated: " + ", ".join(f"{b} {res_t[b]:.3f}->{res_e[b]:.3f}" for b in res_t)
            + f"; {d['n_pixels']} coarse px"
        )))
        for note in d.get("notes", []):
            items.append((f"{name}: note", note))
    sec.blocks.append(Definitions(items))
    return sec


def _conventions_section(ctx: ReportContext) -> Section:
    result, conv = ctx.result, ctx.result["conventions"]
    sec = Section("conventions", "Conventions")
    items = [
        ("Ratio", f"{conv['ratio']:g} (coarse/fine pixel size); ERGAS h/l = {conv['ratio_h_over_l']:.6g}"),
        ("Border", f"{conv['border']} pixels cropped from each side for the full-reference metrics"),
        ("Mask", str(conv["mask"]) if conv["mask"] else "none"),
        ("Data range", "1.0 (reflectance in [0, 1]); PSNR capped at 100 dB per band"),
        ("Validity", "a pixel counts only if every band of prediction and truth is finite (and the mask allows)"),
        ("Protocol", str(result["protocol"])),
        ("Numbers", "this page shows rounded values; metrics.json has them in full"),
    ]
    sec.blocks.append(Definitions(items))
    return sec


def build_document(ctx: ReportContext) -> ReportDoc:
    """The report: metadata, then full-reference, quicklook, error-map, spectra, no-reference, scene-physics
    and conventions sections (those without data left out)."""
    colors = plots.method_colors(ctx.names)
    sections: list[Section] = []
    if ctx.has_truth:
        sections += _full_reference_sections(ctx, colors)
    sections.append(_quicklook_section(ctx))
    if ctx.has_truth:
        sections.append(_error_map_section(ctx))
    if ctx.display.pixels and ctx.display.spectra:
        sections.append(_spectra_section(ctx, colors))
    if ctx.has_no_reference:
        sections.append(_no_reference_section(ctx, colors))
    physics = _physics_section(ctx)
    if physics is not None:
        sections.append(physics)
    sections.append(_conventions_section(ctx))
    result = ctx.result
    return ReportDoc(title=str(result["title"]), meta=_meta(ctx), notes=list(result["notes"]), sections=sections)

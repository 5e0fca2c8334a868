"""The report document: sections, tables and figures built from ``metrics.json`` and the display data.

:func:`build_document` turns a :class:`ReportContext` into a :class:`~dcstsf.report.render.ReportDoc`,
one function per section; :mod:`dcstsf.report.render` renders it to HTML and Markdown. Every table cell
refers to its number in ``metrics.json`` by a JSON pointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcstsf.report import plots
from dcstsf.report.diagnosis import CoregistrationField
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

__all__ = [
    "CHANGE_SPLIT_COLUMNS",
    "FULL_REFERENCE_COLUMNS",
    "NO_REFERENCE_COLUMNS",
    "ReportContext",
    "build_document",
    "per_band_caption",
]

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

#: Changed/unchanged table: JSON key in ``changed_unchanged.<group>``, label, decimals, better direction.
CHANGE_SPLIT_COLUMNS: tuple[Column, ...] = (
    Column("psnr", "PSNR (dB) \u2191", 2, None),
    Column("sam_deg", "SAM (\u00b0) \u2193", 3, None),
    Column("rmse", "RMSE \u2193", 5, None),
    Column("ergas", "ERGAS \u2193", 3, None),
    Column("pixels", "pixels", 0, None),
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
    coregistration
        ``{name: field}`` of the predictions whose inputs were co-registered (``coregistration`` attribute).
    """

    result: Mapping[str, Any]
    names: list[str]
    display: Display
    truth_spectra: np.ndarray | None = None
    coarse_spectra: np.ndarray | None = None
    show_runtimes: bool = False
    coregistration: Mapping[str, CoregistrationField] = field(default_factory=dict)

    @property
    def has_truth(self) -> bool:
        """Whether the predictions were scored against a truth."""
        return self.result["truth"] is not None

    @property
    def has_no_reference(self) -> bool:
        """Whether the fusion inputs were given (no-reference quality)."""
        return self.result.get("inputs") is not None

    @property
    def bad(self) -> list[int]:
        """Indices of the bad bands (greyed in the plots)."""
        return [int(i) for i in self.display.bad]

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
        per_band_caption(x, xlabel, ctx.result["bands"], series),
        plots.per_band_figure(
            x, series, panels=[("psnr", "PSNR (dB)"), ("sam_contribution", "SAM contribution"), ("rmse", "RMSE")],
            colors=colors, xlabel=xlabel, title="Per-band quality", bad=ctx.bad,
        ),
    ))
    sections = [table, comparison, per_band]
    split = _change_split_section(ctx)
    if split is not None:
        sections.insert(1, split)
    return sections


def _gaps(x: np.ndarray) -> int:
    """Spectral gaps wider than 3 median band steps (where :func:`plots.band_lines` breaks a line)."""
    xs = np.sort(np.asarray(x, float))
    if xs.size < 3:
        return 0
    step = np.diff(xs)
    med = float(np.median(step[step > 0])) if np.any(step > 0) else 1.0
    return int(np.sum(step > 3 * med))


def per_band_caption(
    x: np.ndarray, xlabel: str, bands: Mapping[str, Any], series: Mapping[str, Mapping[str, np.ndarray]]
) -> str:
    """The per-band figure's caption, saying only what the figure shows: where lines break and why."""
    parts = [f"Against {xlabel}."]
    excluded = bands.get("excluded") or []
    bad = bands.get("bad") or []
    if excluded:
        parts.append(f"The {len(excluded)} bad bands (grey) are left out of the metrics, so the lines stop there.")
    elif bad:
        parts.append(f"The {len(bad)} bad bands (grey) are scored on request.")
    undefined = any(not np.all(np.isfinite(np.delete(v, excluded))) for per in series.values() for v in per.values())
    if undefined:
        parts.append("A line also stops where a metric is undefined for a band (a constant band).")
    gaps = _gaps(x)
    if gaps:
        parts.append(f"Lines break across {gaps} gap{'s' if gaps > 1 else ''} in {xlabel} wider than 3 band spacings.")
    parts.append("The SAM contribution of a band is the mean of (p_b/|p| - r_b/|r|)^2: the bands where the spectral "
                 "shape is wrong.")
    return " ".join(parts)


def _change_split_section(ctx: ReportContext) -> Section | None:
    """Full-reference metrics on changed and on unchanged pixels separately."""
    methods, names = ctx.result["methods"], ctx.names
    if not all("changed_unchanged" in methods[n] for n in names):
        return None
    rows = []
    for group in ("changed", "unchanged"):
        for n in names:
            cu = methods[n]["changed_unchanged"][group]
            rows.append(Row(f"{n}, {group}", [(cu.get(c.key), json_pointer("methods", n, "changed_unchanged", group, c.key))
                                              for c in CHANGE_SPLIT_COLUMNS]))
    sec = Section("change-split", "Changed and unchanged pixels")
    sec.blocks.append(Paragraph(
        "Spatio-temporal fusion is about what changed between the dates: the same metrics on the changed pixels "
        "and on the unchanged ones. " + methods[names[0]]["changed_unchanged"]["definition"] + "."
    ))
    sec.blocks.append(Table("table-change-split", "Prediction against the truth, changed and unchanged pixels",
                            list(CHANGE_SPLIT_COLUMNS), rows))
    return sec


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
    outline = d.changed_fraction
    out_label = "changed pixels" if outline is not None else ""
    mae, sam = d.maps.get("mae", {}), d.maps.get("sam", {})
    sec.blocks.append(FigureBlock(
        "error_abs", "Absolute error",
        "Mean over the scored bands of |prediction - truth| per pixel (reflectance); one colour scale for all "
        f"methods (0 to the {_MAP_PERCENTILE:g}th percentile over all of them; brighter values saturate)."
        + (" Cyan contours enclose the changed pixels." if outline is not None else ""),
        plots.map_figure(mae, shape=d.display_shape, title="Mean absolute error over bands",
                         label="|pred - truth| (reflectance)", vmax=_shared_vmax(mae), cmap="magma",
                         outline=outline, outline_label=out_label),
    ))
    sec.blocks.append(FigureBlock(
        "error_sam", "Spectral angle",
        "Spectral angle between predicted and true spectra per pixel (degrees, scored bands); one colour scale "
        f"for all methods (0 to the {_MAP_PERCENTILE:g}th percentile). Dark targets such as water have large angles.",
        plots.map_figure(sam, shape=d.display_shape, title="Spectral angle (SAM map)", label="angle (\u00b0)",
                         vmax=_shared_vmax(sam), cmap="viridis"),
    ))
    return sec


def _change_section(ctx: ReportContext) -> Section | None:
    """|MS(t2) - MS(t1)| and the changed pixels."""
    d = ctx.display
    if d.change_magnitude is None and d.changed_fraction is None:
        return None
    definition = ctx.result["conventions"].get("changed_unchanged") or ""
    panels = []
    if d.change_magnitude is not None:
        m = d.change_magnitude
        panels.append(plots.MapPanel("|MS(t2) - MS(t1)|", m, "magma", (0.0, _percentile(m)),
                                     "Euclidean norm over MS bands"))
    if d.changed_fraction is not None:
        panels.append(plots.MapPanel("changed pixels", d.changed_fraction, "Greys", (0.0, 1.0),
                                     "fraction changed per cell"))
    sec = Section("change", "Change between the dates")
    sec.blocks.append(FigureBlock(
        "change", "Change magnitude and changed pixels",
        "Left: the Euclidean norm over the MS bands of MS(t2) - MS(t1) per pixel (reflectance; colour scale to the "
        f"{_MAP_PERCENTILE:g}th percentile). Right: the changed pixels, {definition}"
        + (f"; shown as the fraction of changed pixels in each cell of {d.step} x {d.step}" if d.step > 1 else "")
        + ".",
        plots.panels_figure(panels, shape=d.display_shape, title="Change between the dates"),
    ))
    return sec


def _percentile(m: np.ndarray) -> float:
    finite = m[np.isfinite(m)]
    return float(np.percentile(finite, _MAP_PERCENTILE)) if finite.size else 1.0


def _uncertainty_section(ctx: ReportContext, colors: Mapping[str, str]) -> Section | None:
    """The predicted standard deviation, and its calibration against the truth."""
    d, methods, names = ctx.display, ctx.result["methods"], ctx.names
    sd_maps = d.maps.get("sd", {})
    if not sd_maps:
        return None
    sec = Section("uncertainty", "Uncertainty")
    maps = {f"{n}: predicted sd": m for n, m in sd_maps.items()}
    if ctx.has_truth:
        maps.update({f"{n}: |pred - truth|": d.maps["mae"][n] for n in sd_maps if n in d.maps.get("mae", {})})
    sec.blocks.append(FigureBlock(
        "uncertainty_map", "Predicted standard deviation",
        "Per-pixel standard deviation given with the prediction, mean over the scored bands"
        + (", next to the mean absolute error against the truth on the same colour scale (a calibrated sd is about "
           "1.25 times the mean absolute error of a Gaussian error)" if ctx.has_truth else "")
        + f"; 0 to the {_MAP_PERCENTILE:g}th percentile.",
        plots.map_figure(maps, shape=d.display_shape, title="Uncertainty", label="reflectance",
                         vmax=_shared_vmax(maps), cmap="magma"),
    ))
    calibrated = [n for n in names if "within_1sd" in methods[n].get("uncertainty", {})]
    if not calibrated:
        sec.blocks.append(Paragraph("No truth: the calibration of the uncertainty (how often the true error lies "
                                    "within 1 and 2 predicted sd) needs one; the map above is all that can be shown."))
        return sec
    cols = [Column("within_1sd", "within 1 sd", 3, None), Column("expected_within_1sd", "expected", 3, None),
            Column("within_2sd", "within 2 sd", 3, None), Column("expected_within_2sd", "expected", 3, None),
            Column("values", "values", 0, None)]
    rows = [Row(n, [(methods[n]["uncertainty"].get(c.key), json_pointer("methods", n, "uncertainty", c.key))
                    for c in cols], ranked=False) for n in calibrated]
    sec.blocks.append(Table("table-uncertainty", "Fraction of |prediction - truth| within k predicted sd (all scored "
                            "bands and valid pixels)", cols, rows))
    x, xlabel = ctx.band_axis
    unc = {n: methods[n]["uncertainty"] for n in calibrated}
    sec.blocks.append(FigureBlock(
        "uncertainty_calibration", "Calibration",
        "Left: observed fraction of |prediction - truth| within k predicted sd against the fraction a Gaussian "
        "error of that sd would give, for k = 0.5 to 3 in steps of 0.1 (on the dotted diagonal the uncertainty is "
        "calibrated; above it, too large; below it, too small). Right: per band, within 1 sd (solid) and 2 sd "
        "(dashed); dotted lines at the Gaussian 68.3 % and 95.4 %."
        + (" Bad bands (grey) are not scored." if ctx.result["bands"].get("excluded") else ""),
        plots.calibration_figure(
            unc[calibrated[0]]["k"], {n: u["observed"] for n, u in unc.items()}, unc[calibrated[0]]["expected"],
            x=x, per_band={n: (_nan_for_none(u["per_band_within_1sd"]), _nan_for_none(u["per_band_within_2sd"]))
                           for n, u in unc.items()},
            colors=colors, xlabel=xlabel, bad=ctx.bad,
        ),
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
    lines = ["truth in black"] if ctx.has_truth else []
    if ctx.coarse_spectra is not None:
        lines.append("HS(t1) of the covering coarse pixel dashed grey")
    if ctx.bad:
        lines.append("bad bands shaded grey")
    source = "the truth's" if ctx.has_truth else f"the first prediction's ({ctx.names[0]})"
    sec.blocks.append(FigureBlock(
        "spectra", "Spectra at sample pixels",
        f"Pixels at the 10th, 50th and 90th percentile of {source} band-mean reflectance"
        + (" and the pixel of largest MS change" if any(desc == "largest MS change" for *_, desc in d.pixels) else "")
        + ("; " + ", ".join(lines) if lines else "") + ".",
        plots.spectra_figure(x, d.pixels, d.spectra, colors=colors, reference=ref, coarse=ctx.coarse_spectra,
                             locator=locator, shape=d.shape, xlabel=xlabel,
                             title="Spectra, prediction against truth" if ctx.has_truth else "Predicted spectra",
                             bad=ctx.bad),
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
    sec.blocks += _no_reference_maps(ctx, colors)
    return sec


def _no_reference_maps(ctx: ReportContext, colors: Mapping[str, str]) -> list[FigureBlock]:
    """Where each prediction fails to reproduce the observations: MS(t2) per pixel and per band, HS(t1)."""
    d, methods, names = ctx.display, ctx.result["methods"], ctx.names
    model = ctx.result["conventions"]["no_reference"]["model"]
    blocks = []
    ms_err = d.maps.get("ms_err", {})
    if ms_err:
        blocks.append(FigureBlock(
            "ms_t2_error", "MS(t2) reproduction error",
            "Per pixel, the mean over the MS bands of |B_ms R F - MS(t2)|: the prediction degraded by the MS sensor "
            f"model against the observed MS(t2) (reflectance; 0 to the {_MAP_PERCENTILE:g}th percentile over all "
            "methods). Large values mark where the prediction disagrees with the one image of the date it predicts.",
            plots.map_figure(ms_err, shape=d.display_shape, title="MS(t2) reproduction error",
                             label="|B_ms R F - MS(t2)|", vmax=_shared_vmax(ms_err), cmap="magma"),
        ))
    if d.ms_band_maps is not None:
        name, maps, band_names = d.ms_band_maps
        per = {b: maps[i] for i, b in enumerate(band_names)}
        blocks.append(FigureBlock(
            "ms_t2_error_bands", f"MS(t2) reproduction error per band ({name})",
            f"The same error per MS band for {name} (the first prediction), one colour scale for all bands.",
            plots.map_figure(per, shape=d.display_shape, title=f"MS(t2) reproduction error per band, {name}",
                             label="|B_ms R F - MS(t2)|", vmax=_shared_vmax(per), cmap="magma"),
        ))
    if all("rmse_per_band" in methods[n]["no_reference"]["ms_t2_reproduction"] for n in names):
        blocks.append(FigureBlock(
            "ms_t2_rmse_bands", "MS(t2) reproduction RMSE per band",
            "RMSE of B_ms R F against MS(t2) per MS band and method, over the valid pixels (reflectance).",
            plots.grouped_bars_figure(
                model["ms_bands"],
                {n: _nan_for_none(methods[n]["no_reference"]["ms_t2_reproduction"]["rmse_per_band"]) for n in names},
                colors=colors, ylabel="RMSE (reflectance)", title="MS(t2) reproduction RMSE per band",
            ),
        ))
    hs_err = d.maps.get("hs_err", {})
    if hs_err:
        estimated = [n for n in names if methods[n]["no_reference"]["hs_t1_reproduction_unchanged"].get("psf") == "estimated"]
        blocks.append(FigureBlock(
            "hs_t1_error", "HS(t1) reproduction error",
            "Per coarse pixel, the mean over the scored bands of |D B_hs F - HS(t1)|: the prediction degraded by the "
            "HS sensor model"
            + (f" (with the PSF estimated from the scene for {', '.join(estimated)}, as in its fusion)" if estimated
               else " (sensor-table PSF)")
            + " against the observed HS(t1). HS(t1) shows t1: inside the cyan contours (changed pixels) a difference "
            "is expected and means nothing; the HS(t1) scores use the unchanged pixels only.",
            plots.map_figure(hs_err, shape=d.display_shape, title="HS(t1) reproduction error",
                             label="|D B_hs F - HS(t1)|", vmax=_shared_vmax(hs_err), cmap="magma",
                             outline=d.changed_fraction, outline_label="changed pixels"),
        ))
    return blocks


def _physics_section(ctx: ReportContext, colors: Mapping[str, str]) -> Section | None:
    """The scene physics each prediction was fused with: estimated or tabulated PSF, shift, responses, and
    the co-registration field of its inputs."""
    methods = ctx.result["methods"]
    found = [(n, methods[n].get("provenance", {}).get("scene_diagnosis")) for n in ctx.names]
    found = [(n, d) for n, d in found if d]
    if not found and not ctx.coregistration:
        return None
    sec = Section("physics", "Scene physics")
    if found:
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
    if items:
        sec.blocks.append(Definitions(items))
    shown: list[str] = []
    for name, d in found:
        if "hs_psf_sigma" not in d:
            continue
        key = _record_key(d)
        if key in shown:  # the same scene diagnosis for several predictions: drawn once
            continue
        shown.append(key)
        label = name if len(found) == 1 else f"{name} (and the predictions with the same record)"
        sec.blocks.append(FigureBlock(
            f"psf_{len(shown)}", f"Estimated HS point-spread function, {label}",
            "Profiles through the centre of the HS Gaussian PSF (fine pixels, before the block mean): the scene's "
            "estimate, displaced by the estimated HS-to-MS shift, against the sensor table's.",
            plots.psf_figure(float(d["hs_psf_sigma"]), (float(d["hs_shift"][0]), float(d["hs_shift"][1])),
                             float(d["table_hs_psf_sigma"]), title=f"HS PSF, {label}"),
        ))
        res = {"tables (MS(t1))": d["residual_tables"], "estimated (MS(t1))": d["residual_estimated"]}
        if "residual_t2" in d:
            res["physics used (MS(t2))"] = d["residual_t2"]
        bands = list(d["residual_tables"])
        sec.blocks.append(FigureBlock(
            f"response_residuals_{len(shown)}", f"Response residuals, {label}",
            "Relative residual per MS band of the MS image explained by HS(t1) through the spectral responses and the "
            "PSF: with the sensor tables' physics, with the estimate (both on MS(t1)), and with the physics used on "
            "MS(t2) (where the change between the dates adds to it). 0 is perfect.",
            plots.grouped_bars_figure(bands, {k: [v[b] for b in bands] for k, v in res.items()},
                                      colors=dict(zip(res, ("#9e9e9e", "#1f77b4", "#ff7f0e"))),
                                      ylabel="relative residual", title=f"Response residuals, {label}"),
        ))
    d_ = ctx.display
    loc_key = "true" if "true" in d_.composites else None
    background = d_.panels[loc_key][-1].image if loc_key and d_.panels.get(loc_key) else None
    for name, cf in ctx.coregistration.items():
        n = len(cf.points)
        mag = np.hypot(cf.vectors[:, 0], cf.vectors[:, 1])
        extra = []
        if cf.global_shift is not None:
            extra.append(f"global shift ({cf.global_shift[0]:+.2f}, {cf.global_shift[1]:+.2f}) fine px")
        if cf.residual_px is not None:
            extra.append(f"median tie-point residual {cf.residual_px:.2f} px")
        where = f"{n} tie points" if cf.kind == "tie points" else f"{n} positions of the fitted field"
        sec.blocks.append(FigureBlock(
            f"coregistration_{_safe(name)}", f"Co-registration field, {name}",
            f"HS-to-MS displacement the inputs were corrected with, at {where} (red), arrows from each (yellow, "
            f"scaled; the key gives the true length), fine pixels, down and right positive: median "
            f"{float(np.median(mag)):.2f}, max {float(np.max(mag)):.2f}" + ("; " + "; ".join(extra) if extra else "")
            + ".",
            plots.quiver_figure(cf.points, cf.vectors, background=background, shape=d_.shape,
                                title=f"Co-registration field, {name}"),
        ))
    return sec


def _record_key(record: Mapping[str, Any]) -> str:
    """A key telling identical scene-diagnosis records apart."""
    import json

    return json.dumps({k: record.get(k) for k in ("hs_psf_sigma", "hs_shift", "residual_tables", "residual_estimated",
                                                  "residual_t2")}, sort_keys=True)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


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
    items.insert(5, ("Bad bands", _bad_band_text(result["bands"])))
    if conv.get("changed_unchanged"):
        items.append(("Changed pixels", str(conv["changed_unchanged"])))
    if conv.get("streaming"):
        st = conv["streaming"]
        tiles = f"{st['tiles']} tile{'s' if st['tiles'] > 1 else ''}"
        items.append(("Evaluation", f"read in {tiles} of up to {st['tile_px']} x {st['tile_px']} px (halo "
                                    f"{st['halo_px']} px): every metric sums over all pixels, none is sampled; maps "
                                    f"are {st['maps']}"))
    sec.blocks.append(Definitions(items))
    return sec


def _bad_band_text(bands: Mapping[str, Any]) -> str:
    bad = bands.get("bad") or []
    if not bad:
        return f"none listed (source: {bands.get('bad_band_source', 'none')})"
    wl = bands.get("wavelength_nm")
    names = bands["names"]
    listed = ", ".join(f"{names[i]} ({wl[i]:.0f} nm)" if wl else names[i] for i in bad)
    what = "scored on request" if bands.get("bad_bands_included") else "left out of every metric"
    return f"{len(bad)} bands from the {bands.get('bad_band_source')} bad-band list, {what}: {listed}"


def build_document(ctx: ReportContext) -> ReportDoc:
    """The report: metadata, then full-reference (with changed/unchanged pixels), quicklook, error-map,
    change, uncertainty, spectra, no-reference, scene-physics and conventions sections (those without data
    left out)."""
    colors = plots.method_colors(ctx.names)
    sections: list[Section] = []
    if ctx.has_truth:
        sections += _full_reference_sections(ctx, colors)
    sections.append(_quicklook_section(ctx))
    if ctx.has_truth:
        sections.append(_error_map_section(ctx))
    for extra in (_change_section(ctx), _uncertainty_section(ctx, colors)):
        if extra is not None:
            sections.append(extra)
    if ctx.display.pixels and ctx.display.spectra:
        sections.append(_spectra_section(ctx, colors))
    if ctx.has_no_reference:
        sections.append(_no_reference_section(ctx, colors))
    physics = _physics_section(ctx, colors)
    if physics is not None:
        sections.append(physics)
    sections.append(_conventions_section(ctx))
    result = ctx.result
    return ReportDoc(title=str(result["title"]), meta=_meta(ctx), notes=list(result["notes"]), sections=sections)

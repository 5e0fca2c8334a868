"""Figures of the quality report, drawn with matplotlib and returned as PNG bytes.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``): no global state, no
GUI backend, safe to call from worker threads and in headless sessions. Every function takes plain
NumPy data already reduced to display size; the choice of what to show lives in
:mod:`dcstsf.report.display` and :mod:`dcstsf.report.document`.

Sizes: at :data:`DPI` a figure is at most :data:`MAX_WIDTH_IN` inches wide, so the HTML page (whose
column is wider) shows it at 100 %, and tick labels are :data:`TICK_PT` points, about 12 pixels high
on screen. Bad bands are greyed (:data:`BAD_BAND_COLOR`) in every plot against wavelength.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "BAD_BAND_COLOR",
    "DPI",
    "LABEL_PT",
    "MAX_WIDTH_IN",
    "TICK_PT",
    "MapPanel",
    "Panel",
    "band_lines",
    "band_spans",
    "calibration_figure",
    "comparison_figure",
    "grouped_bars_figure",
    "method_colors",
    "map_figure",
    "panels_figure",
    "per_band_figure",
    "png_bytes",
    "psf_figure",
    "quicklook_figure",
    "quiver_figure",
    "rgb_image",
    "spectra_figure",
    "stretch_limits",
]

#: Resolution of the PNGs (dots per inch): one figure inch is this many pixels at 100 % zoom.
DPI = 100
#: Widest figure (inches): the report's column is wider, so no figure is shrunk on the page.
MAX_WIDTH_IN = 11.0
#: Font sizes (points) of tick labels, axis labels and panel titles: 9 pt is 12.5 px at :data:`DPI`.
TICK_PT = 9.0
LABEL_PT = 10.0
TITLE_PT = 10.5
SUPTITLE_PT = 12.0
#: Shading of the bad bands (not scored) in plots against wavelength.
BAD_BAND_COLOR = "0.85"
# Panels per row in the image grids.
_MAX_COLS = 4
# Narrowest image panel (inches): room for a title such as "MS(t1) B04/B03/B02" at TITLE_PT.
_MIN_PANEL_W_IN = 2.3
# Inches of the longer side of one image panel, at most.
_PANEL_IN = 3.4
_DPI = DPI
TRUTH_COLOR = "black"


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (no timestamp metadata, so identical figures give identical files)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def method_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per method, stable across all figures of a report (tab10, then tab20)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(names) <= 10 else colormaps["tab20"]
    return {n: _hex(cmap(i % cmap.N)) for i, n in enumerate(names)}


def _hex(rgba: Sequence[float]) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgba[:3])


def stretch_limits(rgb: np.ndarray, *, percentiles: tuple[float, float] = (2.0, 98.0)) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel robust display limits of a ``(3, h, w)`` array (NaN ignored).

    Channels with no finite value get ``(0, 1)``; a flat channel gets a unit-width window so it does
    not divide by zero.
    """
    lo = np.zeros(3)
    hi = np.ones(3)
    for c in range(3):
        vals = rgb[c][np.isfinite(rgb[c])]
        if vals.size:
            lo[c], hi[c] = np.percentile(vals, percentiles)
            if not hi[c] > lo[c]:
                hi[c] = lo[c] + 1e-6
    return lo, hi


def rgb_image(rgb: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(3, h, w)`` reflectances -> ``(h, w, 4)`` RGBA in [0, 1]; NaN pixels transparent."""
    a = (rgb - lo[:, None, None]) / (hi - lo)[:, None, None]
    valid = np.isfinite(a).all(axis=0)
    img = np.clip(np.nan_to_num(a), 0.0, 1.0).transpose(1, 2, 0)
    return np.dstack([img, valid.astype(float)])


@dataclass(frozen=True)
class Panel:
    """One image panel: a label and an RGBA image (any resolution; drawn over the same extent)."""

    label: str
    image: np.ndarray


def _grid(n: int) -> tuple[int, int]:
    cols = min(_MAX_COLS, max(1, n))
    return int(math.ceil(n / cols)), cols


def _panel_size(shape: tuple[int, int], side: float = _PANEL_IN) -> tuple[float, float]:
    """Width and height (inches) of an image panel of ``shape`` pixels: the longer side ``side``, the width
    at least what a panel title needs (a tall image then gets taller), the aspect kept."""
    h, w = shape
    if w >= h:
        return side, max(0.8, side * h / w)
    pw = max(min(side, _MIN_PANEL_W_IN), side * w / h)
    return pw, pw * h / w


def _image_grid(
    n: int, shape: tuple[int, int], *, title: str, right_in: float = 0.1
) -> tuple[Figure, list[Any], tuple[float, float, float, float]]:
    """A figure with ``n`` image axes placed explicitly (no layout engine: a grid of equal images needs
    none, and skipping it halves the drawing time). Returns the figure, the axes and the grid's
    ``(left, bottom, width, height)`` in figure fractions."""
    rows, cols = _grid(n)
    gap, title_h, top, margin = 0.15, 0.32, 0.5, 0.1
    side = min(_PANEL_IN, (MAX_WIDTH_IN - 2 * margin - right_in - (cols - 1) * gap) / cols)
    pw, ph = _panel_size(shape, side)
    width = margin + cols * pw + (cols - 1) * gap + margin + right_in
    height = top + rows * (title_h + ph) + (rows - 1) * gap + margin
    fig = Figure(figsize=(width, height))
    fig.suptitle(title, fontsize=SUPTITLE_PT, y=1.0 - 0.08 / height, va="top")
    axes = []
    for i in range(n):
        r, c = divmod(i, cols)
        left = margin + c * (pw + gap)
        bottom = height - top - (r + 1) * (title_h + ph) - r * gap
        ax = fig.add_axes((left / width, bottom / height, pw / width, ph / height))
        ax.set_xticks([])
        ax.set_yticks([])
        axes.append(ax)
    grid_w = cols * pw + (cols - 1) * gap
    grid_box = (margin / width, margin / height, grid_w / width, (height - top - margin) / height)
    return fig, axes, grid_box


def quicklook_figure(panels: Sequence[Panel], *, shape: tuple[int, int], title: str) -> bytes:
    """A grid of RGB panels drawn over one extent (coarse panels are shown with their big pixels).

    ``shape`` is the fine ``(height, width)`` of the scene in pixels (the common extent).
    """
    fig, axes, _ = _image_grid(len(panels), shape, title=title)
    extent = (0, shape[1], shape[0], 0)
    for ax, p in zip(axes, panels):
        ax.imshow(p.image, extent=extent, interpolation="nearest", aspect="auto")
        ax.set_title(p.label, fontsize=TITLE_PT)
    return png_bytes(fig)


def map_figure(
    maps: Mapping[str, np.ndarray],
    *,
    shape: tuple[int, int],
    title: str,
    label: str,
    vmax: float,
    cmap: str = "magma",
    outline: np.ndarray | None = None,
    outline_label: str = "",
) -> bytes:
    """One panel per map with a shared colour scale ``[0, vmax]`` and one colour bar.

    ``outline`` (a map of fractions in [0, 1] on any grid covering the same extent) is drawn as a cyan
    contour at 0.5 on every panel, e.g. the changed pixels (``outline_label``, for the caption to name).
    """
    names = list(maps)
    fig, axes, (gl, gb, gw, gh) = _image_grid(len(names), shape, title=title, right_in=1.3)
    extent = (0, shape[1], shape[0], 0)
    im = None
    vmax = float(vmax) if math.isfinite(vmax) and vmax > 0 else 1.0
    for ax, name in zip(axes, names):
        im = ax.imshow(maps[name], extent=extent, vmin=0.0, vmax=vmax, cmap=cmap, interpolation="nearest",
                       aspect="auto")
        if outline is not None and np.isfinite(outline).any() and np.nanmax(outline) >= 0.5 > np.nanmin(outline):
            oh, ow = outline.shape
            yy = (np.arange(oh) + 0.5) * shape[0] / oh
            xx = (np.arange(ow) + 0.5) * shape[1] / ow
            ax.contour(xx, yy, np.nan_to_num(outline), levels=[0.5], colors="cyan", linewidths=1.0)
        ax.set_title(name, fontsize=TITLE_PT)
    if im is not None:
        w_in = fig.get_figwidth()
        cax = fig.add_axes((gl + gw + 0.15 / w_in, gb + 0.1 * gh, 0.18 / w_in, 0.75 * gh))
        cb = fig.colorbar(im, cax=cax, extend="max")
        cb.set_label(label, fontsize=LABEL_PT)
        cb.ax.tick_params(labelsize=TICK_PT)
    return png_bytes(fig)


@dataclass(frozen=True)
class MapPanel:
    """A map with its own colour scale: title, values, colour map, ``(vmin, vmax)`` and colour-bar label."""

    title: str
    values: np.ndarray
    cmap: str
    limits: tuple[float, float]
    label: str


def panels_figure(panels: Sequence[MapPanel], *, shape: tuple[int, int], title: str) -> bytes:
    """Maps side by side, each with its own colour bar (different quantities on one extent)."""
    n = len(panels)
    margin, gap, bar, top = 0.1, 1.3, 0.2, 0.5
    side = min(_PANEL_IN + 0.6, (MAX_WIDTH_IN - 2 * margin - n * (gap + bar)) / n)
    pw, ph = _panel_size(shape, side)
    width = 2 * margin + n * (pw + bar + gap)
    height = top + 0.32 + ph + margin
    fig = Figure(figsize=(width, height))
    fig.suptitle(title, fontsize=SUPTITLE_PT, y=1.0 - 0.08 / height, va="top")
    extent = (0, shape[1], shape[0], 0)
    for i, p in enumerate(panels):
        left = margin + i * (pw + bar + gap)
        ax = fig.add_axes((left / width, margin / height, pw / width, ph / height))
        lo, hi = p.limits
        hi = hi if math.isfinite(hi) and hi > lo else lo + 1.0
        im = ax.imshow(p.values, extent=extent, vmin=lo, vmax=hi, cmap=p.cmap, interpolation="nearest", aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(p.title, fontsize=TITLE_PT)
        cax = fig.add_axes(((left + pw + 0.1) / width, (margin + 0.1 * ph) / height, bar / width, 0.8 * ph / height))
        cb = fig.colorbar(im, cax=cax)
        cb.set_label(p.label, fontsize=LABEL_PT)
        cb.ax.tick_params(labelsize=TICK_PT)
    return png_bytes(fig)


def band_lines(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by ``x`` and break the line (NaN) across gaps wider than 3 median steps (absorption bands)."""
    order = np.argsort(x, kind="stable")
    xs = np.asarray(x, float)[order]
    ys = np.asarray(y, float)[order]
    if xs.size < 3:
        return xs, ys
    step = np.diff(xs)
    med = float(np.median(step[step > 0])) if np.any(step > 0) else 1.0
    gaps = np.flatnonzero(step > 3 * med)
    return np.insert(xs, gaps + 1, np.nan), np.insert(ys, gaps + 1, np.nan)


def band_spans(x: np.ndarray, bands: Sequence[int]) -> list[tuple[float, float]]:
    """``(x0, x1)`` spans covering each run of the listed bands (half a band step either side), sorted by ``x``."""
    xs = np.asarray(x, float)
    if len(bands) == 0 or xs.size == 0:
        return []
    order = np.argsort(xs, kind="stable")
    rank = np.empty(xs.size, int)
    rank[order] = np.arange(xs.size)
    flagged = np.zeros(xs.size, bool)
    flagged[rank[np.asarray(list(bands), int)]] = True
    sx = xs[order]
    half = 0.5 * float(np.median(np.diff(sx))) if sx.size > 1 else 0.5
    spans = []
    i = 0
    while i < sx.size:
        if flagged[i]:
            j = i
            while j + 1 < sx.size and flagged[j + 1]:
                j += 1
            spans.append((sx[i] - half, sx[j] + half))
            i = j + 1
        else:
            i += 1
    return spans


def _shade_bad(ax: Any, x: np.ndarray, bad: Sequence[int], *, label: bool) -> None:
    for k, (x0, x1) in enumerate(band_spans(x, bad)):
        ax.axvspan(x0, x1, color=BAD_BAND_COLOR, zorder=0, lw=0,
                   label="bad bands (not scored)" if label and k == 0 else None)


def per_band_figure(
    x: np.ndarray,
    series: Mapping[str, Mapping[str, np.ndarray]],
    *,
    panels: Sequence[tuple[str, str]],
    colors: Mapping[str, str],
    xlabel: str,
    title: str,
    bad: Sequence[int] = (),
) -> bytes:
    """Stacked line plots against wavelength: ``panels`` = [(metric key, y label)], one line per method.

    ``bad`` bands are shaded grey; NaN values (bands not scored) break the lines, as do gaps in ``x``
    wider than 3 median steps (:func:`band_lines`).
    """
    fig = Figure(figsize=(MAX_WIDTH_IN - 1.0, 2.5 * len(panels) + 0.9), layout="constrained")
    fig.suptitle(title, fontsize=SUPTITLE_PT)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for i, (ax, (key, ylabel)) in enumerate(zip(axes, panels)):
        _shade_bad(ax, x, bad, label=i == 0)
        for name, per in series.items():
            xs, ys = band_lines(x, per[key])
            ax.plot(xs, ys, color=colors[name], lw=1.4, label=name)
        ax.set_ylabel(ylabel, fontsize=LABEL_PT)
        ax.tick_params(labelsize=TICK_PT)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(xlabel, fontsize=LABEL_PT)
    axes[0].legend(fontsize=TICK_PT, ncols=min(4, max(1, len(series) + bool(bad))), loc="best")
    return png_bytes(fig)


def calibration_figure(
    k: Sequence[float],
    observed: Mapping[str, Sequence[float]],
    expected: Sequence[float],
    *,
    x: np.ndarray,
    per_band: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    colors: Mapping[str, str],
    xlabel: str,
    bad: Sequence[int] = (),
) -> bytes:
    """Coverage of the true error by k predicted standard deviations: observed against expected (left), and
    per band within 1 and 2 sd (right, with the Gaussian levels)."""
    fig = Figure(figsize=(MAX_WIDTH_IN - 1.0, 4.3), layout="constrained")
    fig.suptitle("Uncertainty calibration", fontsize=SUPTITLE_PT)
    left, right = fig.subplots(1, 2, width_ratios=(1.0, 1.6))
    left.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1.0, label="calibrated")
    exp = np.asarray(expected, float)
    for name, obs in observed.items():
        left.plot(exp, np.asarray(obs, float), marker="o", ms=3, color=colors[name], lw=1.4, label=name)
    for kk, e in zip(k, exp):
        if abs(kk - 1.0) < 1e-9 or abs(kk - 2.0) < 1e-9:
            left.annotate(f"k={kk:g}", (e, e), xytext=(4, -12), textcoords="offset points", fontsize=TICK_PT)
    left.set_xlabel("expected coverage (Gaussian, k = 0.5 ... 3)", fontsize=LABEL_PT)
    left.set_ylabel("observed fraction of |error| <= k sd", fontsize=LABEL_PT)
    left.set_xlim(0.3, 1.0)
    left.set_ylim(0.0, 1.0)
    left.tick_params(labelsize=TICK_PT)
    left.grid(alpha=0.3)
    left.legend(fontsize=TICK_PT, loc="lower right")
    _shade_bad(right, x, bad, label=True)
    for name, (w1, w2) in per_band.items():
        xs, ys = band_lines(x, np.asarray(w1, float))
        right.plot(xs, ys, color=colors[name], lw=1.4, label=f"{name}: within 1 sd")
        xs, ys = band_lines(x, np.asarray(w2, float))
        right.plot(xs, ys, color=colors[name], lw=1.4, ls="--", label=f"{name}: within 2 sd")
    for level in (0.6827, 0.9545):
        right.axhline(level, color="0.4", ls=":", lw=1.0)
    right.set_ylim(0.0, 1.02)
    right.set_xlabel(xlabel, fontsize=LABEL_PT)
    right.set_ylabel("fraction within", fontsize=LABEL_PT)
    right.tick_params(labelsize=TICK_PT)
    right.grid(alpha=0.3)
    right.legend(fontsize=TICK_PT, loc="lower left")
    return png_bytes(fig)


def grouped_bars_figure(
    groups: Sequence[str],
    values: Mapping[str, Sequence[float]],
    *,
    colors: Mapping[str, str],
    ylabel: str,
    title: str,
) -> bytes:
    """One group of bars per label of ``groups`` (e.g. MS bands), one bar per series (``values``)."""
    n, m = len(groups), max(1, len(values))
    fig = Figure(figsize=(min(MAX_WIDTH_IN - 1.0, 2.0 + 0.9 * n), 3.8), layout="constrained")
    fig.suptitle(title, fontsize=SUPTITLE_PT)
    ax = fig.subplots()
    width = 0.8 / m
    pos = np.arange(n)
    for j, (name, vals) in enumerate(values.items()):
        ax.bar(pos + (j - (m - 1) / 2) * width, np.nan_to_num(np.asarray(vals, float)), width=width,
               color=colors[name], label=name)
    ax.set_xticks(pos, list(groups))
    ax.set_ylabel(ylabel, fontsize=LABEL_PT)
    ax.tick_params(labelsize=TICK_PT)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=TICK_PT, ncols=min(4, m))
    return png_bytes(fig)


def psf_figure(sigma: float, shift: tuple[float, float], table_sigma: float, *, title: str) -> bytes:
    """The estimated HS point-spread function (a Gaussian of ``sigma`` fine pixels displaced by ``shift``)
    against the sensor table's (``table_sigma``, centred): profiles along y and x through the centre."""
    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    fig.suptitle(title, fontsize=SUPTITLE_PT)
    axes = fig.subplots(1, 2, sharey=True)
    reach = 3.0 * max(sigma, table_sigma, 0.5) + max(abs(shift[0]), abs(shift[1]))
    t = np.linspace(-reach, reach, 401)

    def gauss(s: float, mu: float) -> np.ndarray:
        return np.exp(-0.5 * ((t - mu) / max(s, 1e-6)) ** 2)

    for ax, axis, mu in zip(axes, ("y (down)", "x (right)"), shift):
        ax.plot(t, gauss(table_sigma, 0.0), color="0.45", ls="--", lw=1.4, label=f"sensor table, sigma {table_sigma:.2f}")
        ax.plot(t, gauss(sigma, mu), color="#1f77b4", lw=1.8, label=f"estimated, sigma {sigma:.2f}, shift {mu:+.2f}")
        ax.set_xlabel(f"{axis}, fine pixels", fontsize=LABEL_PT)
        ax.tick_params(labelsize=TICK_PT)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=TICK_PT, loc="upper left")
    axes[0].set_ylabel("relative weight", fontsize=LABEL_PT)
    return png_bytes(fig)


def quiver_figure(
    points: np.ndarray, vectors: np.ndarray, *, background: np.ndarray | None, shape: tuple[int, int], title: str
) -> bytes:
    """Displacement vectors (dy, dx) at tie points (row, col) over an image of the scene (``shape`` fine px).

    Arrows are scaled so that the longest is about a tenth of the image; the key gives the true length.
    """
    pw, ph = _panel_size(shape, 5.5)
    fig = Figure(figsize=(pw + 1.2, ph + 0.9))
    fig.suptitle(title, fontsize=SUPTITLE_PT, y=0.98, va="top")
    ax = fig.add_axes((0.6 / (pw + 1.2), 0.25 / (ph + 0.9), pw / (pw + 1.2), ph / (ph + 0.9)))
    if background is not None:
        ax.imshow(background, extent=(0, shape[1], shape[0], 0), interpolation="nearest", aspect="auto")
    ax.set_xlim(0, shape[1])
    ax.set_ylim(shape[0], 0)
    length = float(np.max(np.hypot(vectors[:, 0], vectors[:, 1]))) if len(vectors) else 0.0
    scale = (length / (0.1 * max(shape))) if length > 0 else 1.0
    q = ax.quiver(points[:, 1], points[:, 0], vectors[:, 1], -vectors[:, 0], color="yellow", angles="xy",
                  scale_units="xy", scale=scale, width=0.004)
    if length > 0:
        ax.quiverkey(q, 0.85, -0.06, length, f"{length:.2f} fine px", labelpos="W", fontproperties={"size": TICK_PT})
    ax.plot(points[:, 1], points[:, 0], "o", ms=3, color="red")
    ax.tick_params(labelsize=TICK_PT)
    return png_bytes(fig)


def comparison_figure(
    names: Sequence[str],
    values: Sequence[tuple[str, Sequence[float]]],
    *,
    colors: Mapping[str, str],
    title: str,
) -> bytes:
    """Side-by-side horizontal bars, one small chart per metric: ``values`` = [(label, one value per method)].

    Method names label the rows once, on the left; the value is written at the end of each bar.
    """
    n = len(values)
    label_in = 0.15 + 0.09 * max(len(s) for s in names)
    gap, bar_h = 0.3, 0.36
    panel_w = min(2.4, (MAX_WIDTH_IN - label_in - 0.3 - (n - 1) * gap) / n)
    height = 0.45 + bar_h * len(names) + 0.75
    width = label_in + n * panel_w + (n - 1) * gap + 0.3
    fig = Figure(figsize=(width, height))
    fig.suptitle(title, fontsize=SUPTITLE_PT, y=1.0 - 0.08 / height, va="top")
    pos = np.arange(len(names))
    ax0 = None
    for j, (label, vals) in enumerate(values):
        left = label_in + j * (panel_w + gap)
        ax = fig.add_axes((left / width, 0.45 / height, panel_w / width, (bar_h * len(names)) / height), sharey=ax0)
        ax0 = ax0 or ax
        v = np.asarray(vals, float)
        ax.barh(pos, np.nan_to_num(v), color=[colors[m] for m in names], height=0.7)
        ax.set_title(label, fontsize=TITLE_PT)
        ax.tick_params(axis="x", labelsize=TICK_PT)
        ax.grid(axis="x", alpha=0.3)
        if j == 0:
            ax.set_yticks(pos, list(names), fontsize=LABEL_PT)
            ax.invert_yaxis()
        else:
            ax.tick_params(axis="y", left=False, labelleft=False)
        finite = v[np.isfinite(v)]
        lo = 0.0
        if finite.size and finite.min() > 0 and finite.max() / max(finite.min(), 1e-12) < 1.15:
            # Close values: start the axis near them so differences stay visible.
            span = finite.max() - finite.min()
            lo = finite.min() - max(span, 0.02 * finite.max())
        hi = float(finite.max()) if finite.size else 1.0
        ax.set_xlim(lo, hi + 0.35 * (hi - lo) + 1e-12)
        for y, val in zip(pos, v):
            text = "n/a" if not np.isfinite(val) else f"{val:.4g}"
            ax.text(max(lo, np.nan_to_num(val)), y, " " + text, va="center", ha="left", fontsize=TICK_PT)
    return png_bytes(fig)


def spectra_figure(
    x: np.ndarray,
    pixels: Sequence[tuple[int, int, str]],
    spectra: Mapping[str, np.ndarray],
    *,
    colors: Mapping[str, str],
    reference: tuple[str, np.ndarray] | None,
    coarse: np.ndarray | None,
    locator: np.ndarray,
    shape: tuple[int, int],
    xlabel: str,
    title: str,
    bad: Sequence[int] = (),
) -> bytes:
    """Spectra at sample pixels (one panel each) plus a locator image with the pixels numbered.

    ``spectra[name]`` and ``reference[1]`` and ``coarse`` are ``(n_pixels, n_bands)``; ``pixels`` are
    ``(row, col, description)`` on the fine grid; ``coarse`` is the HS(t1) spectrum of the coarse pixel
    holding each sample pixel (dashed grey). ``bad`` bands are shaded grey.
    """
    n = len(pixels)
    cols = min(3, n + 1)
    rows = int(math.ceil((n + 1) / cols))
    fig = Figure(figsize=(min(MAX_WIDTH_IN - 0.5, 3.5 * cols), 3.1 * rows + 0.6), layout="constrained")
    fig.suptitle(title, fontsize=SUPTITLE_PT)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    loc = axes[0]
    loc.imshow(locator, extent=(0, shape[1], shape[0], 0), interpolation="nearest")
    for i, (row, col, _) in enumerate(pixels):
        loc.plot(col + 0.5, row + 0.5, marker="o", ms=9, mfc="none", mec="yellow", mew=1.5)
        loc.annotate(str(i + 1), (col + 0.5, row + 0.5), xytext=(5, 5), textcoords="offset points",
                     color="yellow", fontsize=LABEL_PT, fontweight="bold")
    loc.set_title("sample pixels", fontsize=TITLE_PT)
    loc.set_xticks([])
    loc.set_yticks([])
    for i, (row, col, desc) in enumerate(pixels):
        ax = axes[i + 1]
        _shade_bad(ax, x, bad, label=i == 0)
        if coarse is not None:
            xs, ys = band_lines(x, coarse[i])
            ax.plot(xs, ys, color="0.6", lw=1.0, ls="--", label="HS(t1), coarse pixel")
        if reference is not None:
            xs, ys = band_lines(x, reference[1][i])
            ax.plot(xs, ys, color=TRUTH_COLOR, lw=1.8, label=reference[0])
        for name, s in spectra.items():
            xs, ys = band_lines(x, s[i])
            ax.plot(xs, ys, color=colors[name], lw=1.0, label=name)
        ax.set_title(f"{i + 1}: row {row}, col {col} ({desc})", fontsize=TITLE_PT)
        ax.set_xlabel(xlabel, fontsize=LABEL_PT)
        ax.set_ylabel("reflectance", fontsize=LABEL_PT)
        ax.tick_params(labelsize=TICK_PT)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=TICK_PT - 1, loc="best")
    for ax in axes[n + 1:]:
        ax.set_axis_off()
    return png_bytes(fig)

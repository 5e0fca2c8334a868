"""Figures of the quality report, drawn with matplotlib and returned as PNG bytes.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``): no global state, no
GUI backend, safe to call from worker threads and in headless sessions. Every function takes plain
NumPy data already reduced to display size; the choice of what to show lives in
:mod:`dcstsf.report.display` and :mod:`dcstsf.report.document`.
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
    "Panel",
    "band_lines",
    "comparison_figure",
    "method_colors",
    "map_figure",
    "per_band_figure",
    "png_bytes",
    "quicklook_figure",
    "rgb_image",
    "spectra_figure",
    "stretch_limits",
]

# Panels per row in the image grids.
_MAX_COLS = 5
# Inches of the longer side of one image panel.
_PANEL_IN = 2.6
_DPI = 100
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


def _panel_size(shape: tuple[int, int]) -> tuple[float, float]:
    h, w = shape
    if w >= h:
        return _PANEL_IN, max(0.8, _PANEL_IN * h / w)
    return max(0.8, _PANEL_IN * w / h), _PANEL_IN


def _image_grid(
    n: int, shape: tuple[int, int], *, title: str, right_in: float = 0.1
) -> tuple[Figure, list[Any], tuple[float, float, float, float]]:
    """A figure with ``n`` image axes placed explicitly (no layout engine: a grid of equal images needs
    none, and skipping it halves the drawing time). Returns the figure, the axes and the grid's
    ``(left, bottom, width, height)`` in figure fractions."""
    rows, cols = _grid(n)
    pw, ph = _panel_size(shape)
    gap, title_h, top, margin = 0.12, 0.25, 0.4, 0.08
    width = margin + cols * pw + (cols - 1) * gap + margin + right_in
    height = top + rows * (title_h + ph) + (rows - 1) * gap + margin
    fig = Figure(figsize=(width, height))
    fig.suptitle(title, fontsize=10, y=1.0 - 0.08 / height, va="top")
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
        ax.set_title(p.label, fontsize=8)
    return png_bytes(fig)


def map_figure(
    maps: Mapping[str, np.ndarray],
    *,
    shape: tuple[int, int],
    title: str,
    label: str,
    vmax: float,
    cmap: str = "magma",
) -> bytes:
    """One panel per method with a shared colour scale ``[0, vmax]`` and one colour bar."""
    names = list(maps)
    fig, axes, (gl, gb, gw, gh) = _image_grid(len(names), shape, title=title, right_in=1.0)
    extent = (0, shape[1], shape[0], 0)
    im = None
    vmax = float(vmax) if math.isfinite(vmax) and vmax > 0 else 1.0
    for ax, name in zip(axes, names):
        im = ax.imshow(maps[name], extent=extent, vmin=0.0, vmax=vmax, cmap=cmap, interpolation="nearest",
                       aspect="auto")
        ax.set_title(name, fontsize=8)
    if im is not None:
        w_in = fig.get_figwidth()
        cax = fig.add_axes((gl + gw + 0.15 / w_in, gb + 0.1 * gh, 0.15 / w_in, 0.75 * gh))
        cb = fig.colorbar(im, cax=cax, extend="max")
        cb.set_label(label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
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


def per_band_figure(
    x: np.ndarray,
    series: Mapping[str, Mapping[str, np.ndarray]],
    *,
    panels: Sequence[tuple[str, str]],
    colors: Mapping[str, str],
    xlabel: str,
    title: str,
) -> bytes:
    """Stacked line plots against wavelength: ``panels`` = [(metric key, y label)], one line per method."""
    fig = Figure(figsize=(8.0, 2.0 * len(panels) + 0.6), layout="constrained")
    fig.suptitle(title, fontsize=10)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (key, ylabel) in zip(axes, panels):
        for name, per in series.items():
            xs, ys = band_lines(x, per[key])
            ax.plot(xs, ys, color=colors[name], lw=1.2, label=name)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(xlabel, fontsize=8)
    axes[0].legend(fontsize=7, ncols=min(4, max(1, len(series))), loc="best")
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
    label_in = 0.12 + 0.07 * max(len(s) for s in names)
    panel_w, bar_h = 2.0, 0.32
    height = 0.35 + bar_h * len(names) + 0.6
    width = label_in + n * panel_w + (n - 1) * 0.25 + 0.2
    fig = Figure(figsize=(width, height))
    fig.suptitle(title, fontsize=10, y=1.0 - 0.08 / height, va="top")
    pos = np.arange(len(names))
    ax0 = None
    for j, (label, vals) in enumerate(values):
        left = label_in + j * (panel_w + 0.25)
        ax = fig.add_axes((left / width, 0.35 / height, panel_w / width, (bar_h * len(names)) / height), sharey=ax0)
        ax0 = ax0 or ax
        v = np.asarray(vals, float)
        ax.barh(pos, np.nan_to_num(v), color=[colors[m] for m in names], height=0.7)
        ax.set_title(label, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        if j == 0:
            ax.set_yticks(pos, list(names), fontsize=8)
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
            ax.text(max(lo, np.nan_to_num(val)), y, " " + text, va="center", ha="left", fontsize=7)
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
) -> bytes:
    """Spectra at sample pixels (one panel each) plus a locator image with the pixels numbered.

    ``spectra[name]`` and ``reference[1]`` and ``coarse`` are ``(n_pixels, n_bands)``; ``pixels`` are
    ``(row, col, description)`` on the fine grid; ``coarse`` is the HS(t1) spectrum of the coarse pixel
    holding each sample pixel (dashed grey).
    """
    n = len(pixels)
    cols = min(3, n + 1)
    rows = int(math.ceil((n + 1) / cols))
    fig = Figure(figsize=(3.3 * cols, 2.6 * rows + 0.5), layout="constrained")
    fig.suptitle(title, fontsize=10)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    loc = axes[0]
    loc.imshow(locator, extent=(0, shape[1], shape[0], 0), interpolation="nearest")
    for i, (row, col, _) in enumerate(pixels):
        loc.plot(col + 0.5, row + 0.5, marker="o", ms=9, mfc="none", mec="yellow", mew=1.5)
        loc.annotate(str(i + 1), (col + 0.5, row + 0.5), xytext=(5, 5), textcoords="offset points",
                     color="yellow", fontsize=8, fontweight="bold")
    loc.set_title("sample pixels", fontsize=8)
    loc.set_xticks([])
    loc.set_yticks([])
    for i, (row, col, desc) in enumerate(pixels):
        ax = axes[i + 1]
        if coarse is not None:
            xs, ys = band_lines(x, coarse[i])
            ax.plot(xs, ys, color="0.6", lw=1.0, ls="--", label="HS(t1), coarse pixel")
        if reference is not None:
            xs, ys = band_lines(x, reference[1][i])
            ax.plot(xs, ys, color=TRUTH_COLOR, lw=1.8, label=reference[0])
        for name, s in spectra.items():
            xs, ys = band_lines(x, s[i])
            ax.plot(xs, ys, color=colors[name], lw=1.0, label=name)
        ax.set_title(f"{i + 1}: row {row}, col {col} ({desc})", fontsize=8)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel("reflectance", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=6, loc="best")
    for ax in axes[n + 1:]:
        ax.set_axis_off()
    return png_bytes(fig)

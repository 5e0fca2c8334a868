"""The short plain-text table of headline metrics that ``dcstsf demo`` and ``dcstsf evaluate`` print."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dcstsf.report.render import format_value

__all__ = ["HEADLINE_COLUMNS", "format_headline", "headline_rows"]

#: Columns of the short table the demo prints: (JSON key in ``global`` or ``runtime_s``, header, decimals).
HEADLINE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("psnr", "PSNR(dB)", 2),
    ("sam_deg", "SAM(deg)", 3),
    ("ergas", "ERGAS", 3),
    ("ssim", "SSIM", 4),
    ("runtime_s", "time(s)", 2),
)


def headline_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per method of the headline metrics (``HEADLINE_COLUMNS``) from a metrics dict."""
    rows = []
    for name, entry in result.get("methods", {}).items():
        row: dict[str, Any] = {"method": name}
        for key, _, _ in HEADLINE_COLUMNS:
            row[key] = entry.get(key) if key == "runtime_s" else entry.get("global", {}).get(key)
        rows.append(row)
    return rows


def format_headline(result: Mapping[str, Any]) -> str:
    """The headline table as aligned plain text (what ``dcstsf demo`` and ``dcstsf evaluate`` print).

    With a truth: method, PSNR, SAM, ERGAS, SSIM and time; without: the no-reference headline (MS(t2)
    PSNR, HS(t1) PSNR on unchanged pixels, QNR).
    """
    entries = result.get("methods", {})
    if entries and all("global" not in e for e in entries.values()):
        rows = []
        for name, e in entries.items():
            nr = e.get("no_reference", {})
            rows.append({
                "method": name,
                "ms_psnr": nr.get("ms_t2_reproduction", {}).get("psnr"),
                "hs_psnr": nr.get("hs_t1_reproduction_unchanged", {}).get("psnr"),
                "qnr": nr.get("qnr", {}).get("qnr"),
                "runtime_s": e.get("runtime_s"),
            })
        cols: list[tuple[str, str, int | None]] = [
            ("method", "method", None), ("ms_psnr", "MS(t2) PSNR(dB)", 2),
            ("hs_psnr", "HS(t1) PSNR unchanged(dB)", 2), ("qnr", "QNR", 4), ("runtime_s", "time(s)", 2),
        ]
    else:
        rows = headline_rows(result)
        cols = [("method", "method", None)] + [(k, h, d) for k, h, d in HEADLINE_COLUMNS]
    if all(r.get("runtime_s") is None for r in rows):
        cols = [c for c in cols if c[0] != "runtime_s"]
    cells = [[h for _, h, _ in cols]]
    for r in rows:
        cells.append([str(r[k]) if d is None else format_value(r[k], d) for k, _, d in cols])
    widths = [max(len(row[j]) for row in cells) for j in range(len(cols))]
    lines = []
    for i, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)

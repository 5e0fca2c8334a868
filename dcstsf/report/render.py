"""The report as a small document model, rendered to self-contained HTML and to Markdown.

:mod:`dcstsf.report.document` fills a :class:`ReportDoc` (sections of paragraphs, tables, figures and
definition lists); :func:`render_html` and :func:`render_markdown` turn it into text. The HTML embeds
every figure as a base64 PNG ``data:`` URI and carries its CSS inline: one file, no external resource,
viewable offline and attachable to an e-mail. The Markdown links the PNG files written to
``figures/`` next to it.

Every table cell that shows a number of ``metrics.json`` carries ``data-json="<path>"`` (a JSON pointer
without the leading slash, RFC 6901 escaping), so the numbers can be checked against the file.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Column",
    "Definitions",
    "FigureBlock",
    "Paragraph",
    "ReportDoc",
    "Row",
    "Section",
    "Table",
    "format_value",
    "json_pointer",
    "render_html",
    "render_markdown",
]


def format_value(value: Any, digits: int) -> str:
    """A number as displayed in the reports: ``digits`` decimals, ``n/a`` for missing or NaN."""
    if value is None:
        return "n/a"
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}f}"


def json_pointer(*parts: str) -> str:
    """``a/b/c`` with ``~`` and ``/`` inside parts escaped as in RFC 6901."""
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text (escaped when rendered)."""

    text: str


@dataclass(frozen=True)
class Column:
    """A table column: JSON key, header label, decimals shown and which direction is better."""

    key: str
    label: str
    digits: int
    better: str | None = None  # "max", "min" or None


@dataclass(frozen=True)
class Row:
    """A table row: its label and, per column, the value and its JSON path (``None``: no number)."""

    label: str
    cells: Sequence[tuple[Any, str | None]]
    ranked: bool = True  # take part in the "best value" highlighting


@dataclass(frozen=True)
class Table:
    """A table of numbers; the best value of each ranked column is highlighted."""

    id: str
    caption: str
    columns: Sequence[Column]
    rows: Sequence[Row]


@dataclass(frozen=True)
class FigureBlock:
    """A PNG figure with its file stem (``figures/<key>.png``) and caption."""

    key: str
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Definitions:
    """A list of terms and their definitions."""

    items: Sequence[tuple[str, str]]


Block = Paragraph | Table | FigureBlock | Definitions


@dataclass
class Section:
    """A titled part of the report."""

    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class ReportDoc:
    """The whole report."""

    title: str
    meta: list[tuple[str, str]]
    notes: list[str]
    sections: list[Section]

    def figures(self) -> list[FigureBlock]:
        """Every figure, in document order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, FigureBlock)]


def _best(table: Table) -> dict[tuple[int, int], bool]:
    best: dict[tuple[int, int], bool] = {}
    for j, col in enumerate(table.columns):
        if col.better not in ("max", "min"):
            continue
        vals = []
        for i, row in enumerate(table.rows):
            v = row.cells[j][0]
            if row.ranked and v is not None and isinstance(v, (int, float)) and math.isfinite(float(v)):
                # Compare what is displayed, so equal-looking values are both highlighted.
                vals.append((float(format_value(v, col.digits)), i))
        if len(vals) < 2:
            continue
        target = max(v for v, _ in vals) if col.better == "max" else min(v for v, _ in vals)
        for v, i in vals:
            if v == target:
                best[(i, j)] = True
    return best


_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:2em auto;max-width:1150px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;
 padding-bottom:.2em}
.meta{color:#555;font-size:.9em}.meta td{padding:.05em .8em .05em 0;vertical-align:top}
.notes{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em;margin:1em 0}
table.metrics{border-collapse:collapse;margin:.8em 0;font-size:.92em}
table.metrics th,table.metrics td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
table.metrics th[scope=row]{text-align:left;font-weight:600}
table.metrics thead th{background:#f2f4f7;text-align:center}
table.metrics tr.reference th,table.metrics tr.reference td{color:#555;font-style:italic;background:#fafafa}
td.best{font-weight:700;background:#e8f5e9}
caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:.3em}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em;margin-top:.3em}
dl.defs dt{font-weight:600;margin-top:.5em}dl.defs dd{margin-left:1.5em;color:#333}
footer{margin-top:3em;color:#888;font-size:.85em}
"""


def _html_table(t: Table) -> str:
    best = _best(t)
    out = [f'<table class="metrics" id="{html.escape(t.id)}">', f"<caption>{html.escape(t.caption)}</caption>"]
    headers = "".join(f"<th>{html.escape(c.label)}</th>" for c in t.columns)
    out.append(f"<thead><tr><th>Method</th>{headers}</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(t.rows):
        cls = "" if row.ranked else ' class="reference"'
        cells = [f'<tr{cls}><th scope="row">{html.escape(row.label)}</th>']
        for j, (col, (value, path)) in enumerate(zip(t.columns, row.cells)):
            attrs = []
            if path is not None:
                attrs.append(f'data-json="{html.escape(path)}"')
            if best.get((i, j)):
                attrs.append('class="best"')
            text = format_value(value, col.digits) if path is not None or value is not None else "&mdash;"
            text = html.escape(text) if text != "&mdash;" else text
            cells.append(f"<td {' '.join(attrs)}>{text}</td>" if attrs else f"<td>{text}</td>")
        out.append("".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def render_html(doc: ReportDoc, *, footer: str = "") -> str:
    """The report as one self-contained HTML page (inline CSS, figures as base64 PNG data URIs)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    if doc.meta:
        parts.append('<table class="meta">')
        parts += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in doc.meta]
        parts.append("</table>")
    if doc.notes:
        parts.append('<div class="notes"><ul>')
        parts += [f"<li>{html.escape(n)}</li>" for n in doc.notes]
        parts.append("</ul></div>")
    toc = " &middot; ".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>' for s in doc.sections)
    parts.append(f"<nav><p>{toc}</p></nav>")
    for s in doc.sections:
        parts.append(f'<section id="{html.escape(s.id)}">')
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, Paragraph):
                parts.append(f"<p>{html.escape(b.text)}</p>")
            elif isinstance(b, Table):
                parts.append(_html_table(b))
            elif isinstance(b, FigureBlock):
                data = base64.b64encode(b.png).decode("ascii")
                parts.append(
                    f'<figure id="fig-{html.escape(b.key)}"><img src="data:image/png;base64,{data}" '
                    f'alt="{html.escape(b.title)}"><figcaption><strong>{html.escape(b.title)}.</strong> '
                    f"{html.escape(b.caption)}</figcaption></figure>"
                )
            elif isinstance(b, Definitions):
                parts.append('<dl class="defs">')
                parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in b.items]
                parts.append("</dl>")
        parts.append("</section>")
    if footer:
        parts.append(f"<footer>{html.escape(footer)}</footer>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(t: Table) -> str:
    best = _best(t)
    lines = [f"**{_md_escape(t.caption)}**", ""]
    lines.append("| Method | " + " | ".join(_md_escape(c.label) for c in t.columns) + " |")
    lines.append("|---|" + "|".join("---:" for _ in t.columns) + "|")
    for i, row in enumerate(t.rows):
        cells = []
        for j, (col, (value, path)) in enumerate(zip(t.columns, row.cells)):
            text = format_value(value, col.digits) if path is not None or value is not None else "-"
            cells.append(f"**{text}**" if best.get((i, j)) else text)
        label = _md_escape(row.label) if row.ranked else f"*{_md_escape(row.label)}*"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(doc: ReportDoc, *, figure_dir: str = "figures", footer: str = "") -> str:
    """The report as Markdown; figures are linked as ``<figure_dir>/<key>.png``."""
    out = [f"# {doc.title}", ""]
    for k, v in doc.meta:
        out.append(f"- **{k}**: {v}")
    if doc.meta:
        out.append("")
    for n in doc.notes:
        out.append(f"> **Note:** {n}")
        out.append(">")
    if doc.notes:
        out[-1] = ""
    for s in doc.sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Paragraph):
                out += [b.text, ""]
            elif isinstance(b, Table):
                out += [_md_table(b), ""]
            elif isinstance(b, FigureBlock):
                out += [f"![{b.title}]({figure_dir}/{b.key}.png)", "", f"*{b.title}.* {b.caption}", ""]
            elif isinstance(b, Definitions):
                out += [f"- **{k}**: {v}" for k, v in b.items]
                out.append("")
    if footer:
        out += ["---", footer, ""]
    return "\n".join(out)

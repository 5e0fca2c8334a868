"""Reading a rendered ``report.html`` back: images, numeric cells, section ids, external references."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

__all__ = ["PNG_SIGNATURE", "ReportHTML", "parse_html", "resolve"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ReportHTML(HTMLParser):
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
    """The value a JSON pointer (without the leading slash) designates in ``doc``."""
    for part in pointer.split("/"):
        doc = doc[part.replace("~1", "/").replace("~0", "~")]
    return doc


def parse_html(path: Path) -> ReportHTML:
    """Parse a report file."""
    c = ReportHTML()
    c.feed(path.read_text(encoding="utf-8"))
    c.close()
    return c

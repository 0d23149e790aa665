"""A computed results table and its three renderings: CSV (numbers), Markdown and HTML (readable).

>>> import pandas as pd
>>> t = Table("demo", "Demo table", pd.DataFrame({"x": [1.5]}), pd.DataFrame({"X (%)": ["1.50"]}))
>>> print(t.to_markdown())
**Demo table**
<BLANKLINE>
| X (%) |
| --- |
| 1.50 |
<BLANKLINE>
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass, field

import pandas as pd

from thinet.runtime import atomic_path, write_text_atomic

TABLE_FORMATS = ("csv", "md", "html")


@dataclass
class Table:
    """`data` holds the numbers (written as CSV); `display` the formatted cells (Markdown/HTML)."""

    name: str
    title: str
    data: pd.DataFrame
    display: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        def cell(value: object) -> str:
            return str(value).replace("|", "\\|")

        lines = [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(cell(c) for c in self.display.columns) + " |")
        lines.append("| " + " | ".join("---" for _ in self.display.columns) + " |")
        for row in self.display.itertuples(index=False):
            lines.append("| " + " | ".join(cell(v) for v in row) + " |")
        if self.display.empty:
            lines.append("")
            lines.append("*(no rows)*")
        lines.extend(["", *(f"{note}  " for note in self.notes)] if self.notes else [])
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        body = self.display.to_html(index=False, escape=True, border=0, classes="thinet-table")
        notes = "".join(f"<p>{html.escape(n)}</p>\n" for n in self.notes)
        empty = "<p><em>(no rows)</em></p>\n" if self.display.empty else ""
        return (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title>\n<style>{_CSS}</style></head>\n"
            f"<body><h3>{html.escape(self.title)}</h3>\n{body}\n{empty}{notes}</body></html>\n"
        )

    def write(self, stem: str | os.PathLike) -> dict[str, str]:
        """Write `<stem>.csv`, `<stem>.md`, `<stem>.html` atomically; returns {format: path}."""
        stem = os.fspath(stem)
        paths = {fmt: f"{stem}.{fmt}" for fmt in TABLE_FORMATS}
        with atomic_path(paths["csv"]) as tmp:
            self.data.to_csv(tmp, index=False, float_format="%.6g")
        write_text_atomic(paths["md"], self.to_markdown())
        write_text_atomic(paths["html"], self.to_html())
        return paths


_CSS = (
    "body{font-family:sans-serif;font-size:14px}"
    "table.thinet-table{border-collapse:collapse}"
    "table.thinet-table th,table.thinet-table td{padding:3px 8px;border-bottom:1px solid #ccc;text-align:right}"
    "table.thinet-table th{background:#f0f0f0}"
)

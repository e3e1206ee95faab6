"""The self-contained HTML page of `report --html`: daily spend as an SVG chart with the daily cap and
today's forecast band, then the report by day, agent, model and repo. No scripts, no external resources."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..core.svgchart import daily_bars
from . import info
from .report import _NUMERIC, _cells, _label

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.3em}h2{font-size:1.1em;margin-top:2em}
table.report{border-collapse:collapse;margin:.5em 0}table.report th,table.report td{padding:2px 10px;text-align:right}
table.report th:first-child,table.report td:first-child{text-align:left}
table.report thead th{border-bottom:1px solid #999}
table.report td,table.report th{white-space:nowrap}
table.report tfoot td{border-top:1px solid #999;font-weight:bold}.bar{fill:#4a78c2}.cap{stroke:#c0392b;stroke-width:2}
.band{fill:#f5b041;fill-opacity:.35}.band-p50{stroke:#b9770e;stroke-width:2}.axis{font-size:10px;fill:#555}
"""
_TABLES = (("day", "by-day"), ("agent", "by-agent"), ("model", "by-model"), ("repo", "by-repo"))


def html_page(
    series: list[tuple[str, float]],
    cap: float | None,
    tables: dict[str, dict[str, Any]],
    band: dict[str, Any] | None,
    title: str,
) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        daily_bars(series, cap=cap, band=band),
    ]
    for by, table_id in _TABLES:
        if by in tables:
            parts.append(f"<h2>by {by}</h2>" + _html_table(table_id, by, tables[by]))
    parts.append("</body></html>\n")
    return "".join(parts)


def _html_table(table_id: str, by: str, payload: dict[str, Any]) -> str:
    cols = list(_NUMERIC)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (by, *cols))
    body = "".join(
        f"<tr data-key='{html.escape(r['key'], quote=True)}'><td>{html.escape(_label(by, r))}</td>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in _cells(r, cols))
        + "</tr>"
        for r in payload["rows"]
    )
    foot = "<td>total</td>" + "".join(f"<td>{html.escape(v)}</td>" for v in _cells(payload["totals"], cols))
    return (
        f"<table class='report' id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        f"<tfoot><tr>{foot}</tr></tfoot></table>"
    )


def write_html(path: Path, page: str) -> None:
    from ..home.paths import atomic_write

    atomic_write(path, page)
    info(f"wrote {path}")

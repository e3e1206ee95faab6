"""The self-contained HTML page of `report --html`: daily spend as an SVG chart with the daily cap and
today's forecast band, then the report by day, agent, model and repo. No scripts, no external resources."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from . import info, usd
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


def html_page(series: list[tuple[str, float]], cap: float | None, tables: dict[str, dict[str, Any]],
              band: dict[str, Any] | None, title: str) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             _svg(series, cap, band)]
    for by, table_id in _TABLES:
        if by in tables:
            parts.append(f"<h2>by {by}</h2>" + _html_table(table_id, by, tables[by]))
    parts.append("</body></html>\n")
    return "".join(parts)


def _svg(series: list[tuple[str, float]], cap: float | None, band: dict[str, Any] | None) -> str:
    w, h, left, bottom = 900, 260, 60, 30
    top_v = max([v for _, v in series] + [cap * 1.1 if cap else 0.0] + [band["p90"] if band else 0.0]) or 1.0
    plot_h = h - bottom - 10
    step = (w - left - 10) / max(len(series), 1)

    def y(v: float) -> float:
        return round(10 + plot_h * (1 - v / top_v), 2)

    out = [f"<svg id='spend-chart' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' width='{w}' "
           f"height='{h}' role='img' aria-label='daily spend'>",
           f"<text class='axis' x='4' y='14'>{html.escape(usd(top_v))}</text>",
           f"<text class='axis' x='4' y='{h - bottom}'>$0</text>"]
    for i, (day, value) in enumerate(series):
        x = round(left + i * step + step * 0.1, 2)
        out.append(f"<rect class='bar' data-day='{day}' data-usd='{value:.6f}' x='{x}' y='{y(value)}' "
                   f"width='{round(step * 0.8, 2)}' height='{round(plot_h * value / top_v, 2)}'>"
                   f"<title>{day}: {html.escape(usd(value))}</title></rect>")
        if len(series) <= 16 or i % max(1, len(series) // 8) == 0:
            out.append(f"<text class='axis' x='{x}' y='{h - bottom + 14}'>{day[5:]}</text>")
    slot = next((i for i, (day, _) in enumerate(series) if band and day == band["day"]), None)
    if band and slot is not None:
        x, bw = round(left + slot * step, 2), round(step, 2)
        out.append(f"<rect id='forecast-band' class='band' data-day='{band['day']}' data-p10='{band['p10']:.6f}' "
                   f"data-p50='{band['p50']:.6f}' data-p90='{band['p90']:.6f}' x='{x}' y='{y(band['p90'])}' "
                   f"width='{bw}' height='{round(y(band['p10']) - y(band['p90']), 2)}'><title>today's forecast "
                   f"({band['method']}): P10 {html.escape(usd(band['p10']))}, P50 {html.escape(usd(band['p50']))},"
                   f" P90 {html.escape(usd(band['p90']))}</title></rect>"
                   f"<line class='band-p50' x1='{x}' x2='{round(x + step, 2)}' y1='{y(band['p50'])}' "
                   f"y2='{y(band['p50'])}'/>")
    if cap:
        out.append(f"<line id='cap-line' class='cap' x1='{left}' x2='{w - 10}' y1='{y(cap)}' y2='{y(cap)}'>"
                   f"<title>daily cap {html.escape(usd(cap))}</title></line>"
                   f"<text class='axis' x='{w - 10}' y='{y(cap) - 4}' text-anchor='end'>"
                   f"daily cap {html.escape(usd(cap))}</text>")
    out.append("</svg>")
    return "".join(out)


def _html_table(table_id: str, by: str, payload: dict[str, Any]) -> str:
    cols = list(_NUMERIC)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (by, *cols))
    body = "".join(
        f"<tr data-key='{html.escape(r['key'], quote=True)}'><td>{html.escape(_label(by, r))}</td>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in _cells(r, cols)) + "</tr>"
        for r in payload["rows"])
    foot = "<td>total</td>" + "".join(f"<td>{html.escape(v)}</td>" for v in _cells(payload["totals"], cols))
    return (f"<table class='report' id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"<tfoot><tr>{foot}</tr></tfoot></table>")


def write_html(path: Path, page: str) -> None:
    from ..home.paths import atomic_write

    atomic_write(path, page)
    info(f"wrote {path}")

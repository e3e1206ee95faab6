"""Printing for `report` and `export`: a rich table, the `agentmeter.report/1` envelope, CSV, a terminal
chart of daily spend, a self-contained HTML page, and streamed exports. Data to stdout, notes to stderr."""

from __future__ import annotations

import html
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import reports
from .render import emit_json, info, pct, tokens, usd

_NUMERIC = ("req", "input", "cache r", "cache w", "output", "reasoning", "cost", "subscription", "cache hit")


def _width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def _console():
    from rich.console import Console

    # A pipe has no width: use COLUMNS when set (so scripts can choose), else wide enough not to truncate.
    width = None if sys.stdout.isatty() else (_width() if os.environ.get("COLUMNS") else 200)
    return Console(highlight=False, soft_wrap=False, width=width)


def report(payload: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        emit_json("report", payload)
    elif fmt == "csv":
        reports.write_csv(payload["rows"], sys.stdout, reports.REPORT_COLUMNS)
    else:
        report_table(payload)


def _label(by: str, row: dict[str, Any]) -> str:
    key = row["key"] or "—"
    if by == "model" and row.get("provider"):
        return f"{row['provider']}:{key}"
    if by == "branch" and row.get("repo"):
        return f"{row['repo']}@{key}"
    if by == "session" and row.get("agent"):
        return f"{key} {row['agent']}"
    return key


def report_table(payload: dict[str, Any]) -> None:
    from rich.table import Table

    by, rows = payload["by"], payload["rows"]
    console = _console()
    wide = console.width >= 110
    t = Table(box=None, pad_edge=False, header_style="bold", show_footer=bool(rows), footer_style="bold")
    cols = [c for c in _NUMERIC if wide or c not in ("reasoning", "subscription")]
    total = payload["totals"]
    t.add_column(by, no_wrap=True, overflow="ellipsis", footer="total")
    for c in cols:
        t.add_column(c, justify="right", no_wrap=True, footer=_cells(total, [c])[0])
    for r in rows:
        t.add_row(_label(by, r), *_cells(r, cols))
    window = f"{payload['since'] or 'start'} .. {payload['until']} (exclusive, {payload['timezone']})"
    if not rows:
        sys.stdout.write(f"no usage in {window}\n")
        return
    console.print(t)
    notes = [window]
    if total["subscription_cost_usd"]:
        notes.append(f"subscription traffic at API-list equivalent: {usd(total['subscription_cost_usd'])} of the total")
    if total["unpriced_requests"]:
        notes.append(f"{total['unpriced_requests']} unpriced requests counted at a conservative fallback rate")
    sys.stdout.write("".join(f"{n}\n" for n in notes))


def _cells(r: dict[str, Any], cols: Iterable[str]) -> list[str]:
    values = {"req": f"{r['requests']:,}", "input": tokens(r["input_tokens"]),
              "cache r": tokens(r["cache_read_tokens"]), "cache w": tokens(r["cache_write_tokens"]),
              "output": tokens(r["output_tokens"]), "reasoning": tokens(r["reasoning_tokens"]),
              "cost": usd(r["cost_usd"], unpriced=bool(r["unpriced_requests"])),
              "subscription": usd(r["subscription_cost_usd"]) if r["subscription_cost_usd"] else "—",
              "cache hit": pct(r["cache_hit_rate"])}
    return [values[c] for c in cols]


# --- terminal chart -------------------------------------------------------------------------------------

_MAX_CHART_DAYS = 62


def spend_chart(series: list[tuple[str, float]], cap: float | None) -> None:
    """One line per day: `MM-DD ███████   ┃   $12.34`, the cap as a ┃ column. Fits the terminal width."""
    series = series[-_MAX_CHART_DAYS:]
    if not series:
        sys.stdout.write("no daily spend to chart\n")
        return
    width = max(_width(), 40) - 1  # never the last column: some terminals wrap there
    amounts = [usd(v) for _, v in series]
    amount_w = max(len(a) for a in amounts)
    bar_w = width - 6 - 1 - amount_w  # "MM-DD " + bar + " " + amount
    top = max([v for _, v in series] + [cap * 1.1 if cap else 0.0]) or 1.0
    cap_at = min(bar_w - 1, round(cap / top * bar_w)) if cap else None
    title = f"daily spend, last {len(series)} days"
    if cap:
        title += f" · ┃ daily cap {usd(cap)}"
    lines = [title[:width]]
    for (day, value), amount in zip(series, amounts, strict=True):
        filled = min(bar_w, round(value / top * bar_w))
        cells = ["█"] * filled + [" "] * (bar_w - filled)
        if cap_at is not None:
            cells[cap_at] = "┃"
        lines.append(f"{day[5:]} {''.join(cells)} {amount:>{amount_w}}")
    sys.stdout.write("\n".join(lines) + "\n")


# --- HTML -----------------------------------------------------------------------------------------------

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
    path.write_text(page, encoding="utf-8")
    info(f"wrote {path}")


# --- export ---------------------------------------------------------------------------------------------


def export(rows: Iterable[dict[str, Any]], fmt: str, columns: Iterable[str], output: Path | None) -> int:
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
    try:
        if fmt == "jsonl":
            return reports.write_jsonl(rows, out)
        return reports.write_csv(rows, out, columns)
    finally:
        if output:
            out.close()


def export_summary(fmt: str, tally: reports.Tally, output: Path | None) -> None:
    where = str(output) if output else "stdout"
    if fmt == "focus":
        info(f"agentmeter: {tally.rows} FOCUS rows to {where}: billed {usd(tally.sums['BilledCost'])}, "
             f"list {usd(tally.sums['ListCost'])} (subscription rows bill 0 at their API-list equivalent)")
    else:
        info(f"agentmeter: {tally.rows} requests to {where}: {usd(tally.sums['cost_usd'])}")

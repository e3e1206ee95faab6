"""Daily spend as an inline SVG bar chart: one drawing for the `report --html` page and the collector's
dashboard. Pure: values in, markup out (no scripts, nothing fetched)."""

from __future__ import annotations

import html
from typing import Any

from .fmt import usd


def daily_bars(
    series: list[tuple[str, float]],
    *,
    cap: float | None = None,
    band: dict[str, Any] | None = None,
    width: int = 900,
    height: int = 260,
) -> str:
    """`<svg id='spend-chart'>`: a bar per (day, usd) with its value in a tooltip and `data-day`/`data-usd`;
    a `#cap-line` at the daily cap and a `#forecast-band` (P10–P90, a P50 line) on the band's day, if given."""
    w, h, left, bottom = width, height, 60, 30
    top_v = max([v for _, v in series] + [cap * 1.1 if cap else 0.0] + [band["p90"] if band else 0.0]) or 1.0
    plot_h = h - bottom - 10
    step = (w - left - 10) / max(len(series), 1)

    def y(v: float) -> float:
        return round(10 + plot_h * (1 - v / top_v), 2)

    out = [
        f"<svg id='spend-chart' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' width='{w}' "
        f"height='{h}' role='img' aria-label='daily spend'>",
        f"<text class='axis' x='4' y='14'>{html.escape(usd(top_v))}</text>",
        f"<text class='axis' x='4' y='{h - bottom}'>$0</text>",
    ]
    for i, (day, value) in enumerate(series):
        x = round(left + i * step + step * 0.1, 2)
        out.append(
            f"<rect class='bar' data-day='{day}' data-usd='{value:.6f}' x='{x}' y='{y(value)}' "
            f"width='{round(step * 0.8, 2)}' height='{round(plot_h * value / top_v, 2)}'>"
            f"<title>{day}: {html.escape(usd(value))}</title></rect>"
        )
        if len(series) <= 16 or i % max(1, len(series) // 8) == 0:
            out.append(f"<text class='axis' x='{x}' y='{h - bottom + 14}'>{day[5:]}</text>")
    slot = next((i for i, (day, _) in enumerate(series) if band and day == band["day"]), None)
    if band and slot is not None:
        x, bw = round(left + slot * step, 2), round(step, 2)
        out.append(
            f"<rect id='forecast-band' class='band' data-day='{band['day']}' data-p10='{band['p10']:.6f}' "
            f"data-p50='{band['p50']:.6f}' data-p90='{band['p90']:.6f}' x='{x}' y='{y(band['p90'])}' "
            f"width='{bw}' height='{round(y(band['p10']) - y(band['p90']), 2)}'><title>today's forecast "
            f"({band['method']}): P10 {html.escape(usd(band['p10']))}, P50 {html.escape(usd(band['p50']))},"
            f" P90 {html.escape(usd(band['p90']))}</title></rect>"
            f"<line class='band-p50' x1='{x}' x2='{round(x + step, 2)}' y1='{y(band['p50'])}' "
            f"y2='{y(band['p50'])}'/>"
        )
    if cap:
        out.append(
            f"<line id='cap-line' class='cap' x1='{left}' x2='{w - 10}' y1='{y(cap)}' y2='{y(cap)}'>"
            f"<title>daily cap {html.escape(usd(cap))}</title></line>"
            f"<text class='axis' x='{w - 10}' y='{y(cap) - 4}' text-anchor='end'>"
            f"daily cap {html.escape(usd(cap))}</text>"
        )
    out.append("</svg>")
    return "".join(out)

"""Printing for `report` and `export`: a rich table, the `agentmeter.report/1` envelope, CSV, a terminal
chart of daily spend, and streamed CSV / JSONL exports. Data to stdout, notes to stderr. The HTML page is
`render/html.py`."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..commands import report as reports
from . import emit_json, info, pct, tidy, tokens, usd

if TYPE_CHECKING:
    from ..commands.export import Tally

_NUMERIC = ("req", "input", "cache r", "cache w", "output", "reasoning", "cost", "subscription", "cache hit")


def _width() -> int:
    import shutil  # tables and the chart only: `report --format json` does without its imports (~1 ms)

    return shutil.get_terminal_size((80, 24)).columns


def get_console():
    from rich.console import Console

    # A pipe has no width: use COLUMNS when set (so scripts can choose), else wide enough not to truncate.
    width = None if sys.stdout.isatty() else (_width() if os.environ.get("COLUMNS") else 200)
    return Console(highlight=False, soft_wrap=False, width=width)


def report(payload: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        emit_json("report", payload)
    elif fmt == "csv":
        write_csv(payload["rows"], sys.stdout, reports.REPORT_COLUMNS)
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

    from . import Col, fit_table

    by, rows = payload["by"], payload["rows"]
    console = get_console()
    total = payload["totals"]
    # Narrow terminals lose the least useful columns first; the row's key and its cost are never cut.
    drop = {
        "reasoning": 10,
        "cache w": 9,
        "subscription": 8,
        "cache r": 7,
        "input": 6,
        "output": 5,
        "cache hit": 4,
        "req": 3,
        "cost": 0,
    }
    cols = [Col(by, shrink=by not in ("session", "day", "week", "month"))] + [
        Col(c, right=True, drop=drop.get(c, 2)) for c in _NUMERIC
    ]
    t = fit_table(
        cols,
        [[_label(by, r), *_cells(r, _NUMERIC)] for r in rows],
        console.width,
        footer=["total", *_cells(total, _NUMERIC)],
        footer_style="bold",
    )
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
    values = {
        "req": f"{r['requests']:,}",
        "input": tokens(r["input_tokens"]),
        "cache r": tokens(r["cache_read_tokens"]),
        "cache w": tokens(r["cache_write_tokens"]),
        "output": tokens(r["output_tokens"]),
        "reasoning": tokens(r["reasoning_tokens"]),
        "cost": usd(r["cost_usd"], unpriced=bool(r["unpriced_requests"])),
        "subscription": usd(r["subscription_cost_usd"]) if r["subscription_cost_usd"] else "—",
        "cache hit": pct(r["cache_hit_rate"]),
    }
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


# --- CSV and JSONL, export ------------------------------------------------------------------------------


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str], columns: Iterable[str]) -> int:
    from ..pricing.focus import csv_cell  # the one cell format of both exports (not loaded by `report`)

    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
        n += 1
    return n


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    n = 0
    for row in rows:
        out.write(json.dumps(tidy(row), separators=(",", ":"), default=str) + "\n")
        n += 1
    return n


def write_json_rows(name: str, rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """The document `json.dumps(envelope(name, {"rows": [...]}), indent=2)` is, to the byte, written one row at a
    time: an export of millions of rows never holds them (or their text) in memory at once."""
    from . import envelope

    head, tail = json.dumps(envelope(name, {"rows": []}), indent=2).split('"rows": []')
    out.write(head + '"rows": [')
    n = 0
    for row in rows:
        # json escapes a newline inside a string, so every newline here is the layout's: indent it two levels.
        text = json.dumps(tidy(row), indent=2, default=str).replace("\n", "\n    ")
        out.write(("\n    " if n == 0 else ",\n    ") + text)
        n += 1
    out.write(("\n  ]" if n else "]") + tail + "\n")
    return n


def export(rows: Iterable[dict[str, Any]], fmt: str, columns: Iterable[str], output: Path | None) -> int:
    def write(out) -> int:
        if fmt == "jsonl":
            return write_jsonl(rows, out)
        if fmt == "json":
            return write_json_rows("export", rows, out)
        return write_csv(rows, out, columns)

    if output:
        from ..home.paths import atomic_open

        with atomic_open(output, "w", encoding="utf-8", newline="") as f:
            return write(f)
    return write(sys.stdout)


def export_summary(fmt: str, tally: Tally, output: Path | None) -> None:
    where = str(output) if output else "stdout"
    if fmt == "focus":
        info(
            f"agentmeter: {tally.rows} FOCUS rows to {where}: billed {usd(tally.sums['BilledCost'])}, "
            f"list {usd(tally.sums['ListCost'])} (subscription rows bill 0 at their API-list equivalent)"
        )
    else:
        info(f"agentmeter: {tally.rows} requests to {where}: {usd(tally.sums['cost_usd'])}")

"""`agentmeter report`, shared by the typer command and the fast path in __main__ (a report on a big ledger
answers in a few milliseconds; importing typer would cost ten times that)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import render_report, reports
from .clock import SystemClock
from .config import load_config
from .ledger import open_ledger
from .paths import get_paths
from .timezone import resolve_tz

BY = ("day", "week", "month", "agent", "model", "repo", "branch", "session")


def run_report(by: str, since: str | None, until: str | None, tz: str | None, fmt: str, chart: bool,
               html: Path | None) -> None:
    config = load_config()
    rollup_tz = resolve_tz(config.budget.timezone)
    now = SystemClock().now()
    window = reports.report_window(since, until, reports.resolve_zone(tz, rollup_tz), now)
    ledger = open_ledger(get_paths().ledger, readonly=True, tz=rollup_tz)
    cap = config.budget.caps.daily_usd
    if html is not None:
        board = reports.dashboard(ledger, window, rollup_tz, now, cap)
        page = render_report.html_page(board["series"], cap, board["tables"], board["band"],
                                       f"agentmeter report {window.day_bounds()[0] or ''} .. {window.day_bounds()[1]}")
        render_report.write_html(html, page)
        return
    payload = reports.build_report(ledger, by, window, rollup_tz)
    if chart and fmt == "table":
        render_report.spend_chart(reports.daily_series(ledger, window, rollup_tz), cap)
    render_report.report(payload, fmt)


def fast_report(argv: list[str]) -> int | None:
    """The report for machine formats without typer; None when the arguments need the full CLI."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("--by", choices=BY, default="day")
    parser.add_argument("--since", default="30d")
    parser.add_argument("--until")
    parser.add_argument("--tz")
    parser.add_argument("--format", dest="fmt", choices=("json", "csv"), required=True)
    try:
        args, rest = parser.parse_known_args(argv)
    except (argparse.ArgumentError, SystemExit):
        return None
    if rest:
        return None
    run_report(args.by, args.since, args.until, args.tz, args.fmt, False, None)
    return 0

"""`agentmeter report`, shared by the typer command and the fast path in __main__ (a report on a big ledger
answers in a few milliseconds; importing typer would cost ten times that)."""

from __future__ import annotations

from pathlib import Path

from ..core.clock import SystemClock
from ..core.timezone import resolve_tz
from ..home.config import load_config
from ..home.paths import get_paths
from ..ledger import open_ledger
from ..render import report as render_report
from . import report as reports

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
        from ..render import html as render_html

        board = reports.dashboard(ledger, window, rollup_tz, now, cap)
        page = render_html.html_page(board["series"], cap, board["tables"], board["band"],
                                     f"agentmeter report {window.day_bounds()[0] or ''} .. {window.day_bounds()[1]}")
        render_html.write_html(html, page)
        return
    payload = reports.build_report(ledger, by, window, rollup_tz)
    if fmt == "json":  # subscription plan windows (issue 18): now, and each window's daily peak in the period
        from ..ledger.plan import daily_peaks, plan_section

        payload["plan"] = plan_section(ledger.conn, now.timestamp(), config.budget.plan)
        payload["plan_daily"] = daily_peaks(ledger.conn, *window.ms_bounds())
    if chart and fmt == "table":
        render_report.spend_chart(reports.daily_series(ledger, window, rollup_tz), cap)
    render_report.report(payload, fmt)


def fast_report(argv: list[str]) -> int | None:
    """The report for machine formats without typer; None when the arguments need the full CLI."""
    args = _fast_args(argv)
    if args is None:
        return None
    run_report(args["by"], args["since"], args["until"], args["tz"], args["fmt"], False, None)
    return 0


_FAST_OPTIONS = {"--by": "by", "--since": "since", "--until": "until", "--tz": "tz", "--format": "fmt"}


def _fast_args(argv: list[str]) -> dict[str, str | None] | None:
    """`--option value` and `--option=value` for the options above, with the typer command's defaults; None for
    anything else (help, another flag, a bad choice, a missing value), which the full CLI then answers or
    rejects with its usual message. Not argparse: importing it and building a parser cost 5-8 ms here (gettext
    looks for translation files on disk), against a budget of 50 ms for the whole command."""
    args: dict[str, str | None] = {"by": "day", "since": "30d", "until": None, "tz": None, "fmt": None}
    tokens = iter(argv)
    for token in tokens:
        if token == "--json":
            args["fmt"] = "json"
            continue
        name, eq, value = token.partition("=")
        if name not in _FAST_OPTIONS:
            return None
        if not eq:
            value = next(tokens, None)
            if value is None or value.startswith("-"):
                return None
        args[_FAST_OPTIONS[name]] = value
    if args["by"] not in BY or args["fmt"] not in ("json", "csv"):
        return None
    return args

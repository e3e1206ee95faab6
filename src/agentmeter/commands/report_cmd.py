"""`agentmeter report`, run by the typer command and by the fast path for json/csv (cli/fast.py): a report on
a big ledger answers in a few milliseconds; importing typer would cost ten times that."""

from __future__ import annotations

from pathlib import Path

from ..core.clock import SystemClock
from ..core.timezone import resolve_tz
from ..home.config import load_config
from ..home.paths import get_paths
from ..ledger import open_ledger
from ..render import report as render_report
from . import report as reports


def run_report(
    by: str,
    since: str | None,
    until: str | None,
    tz: str | None,
    fmt: str,
    chart: bool,
    html: Path | None,
    commits: str | None = None,
) -> None:
    config = load_config()
    rollup_tz = resolve_tz(config.budget.timezone)
    now = SystemClock().now()
    window = reports.report_window(since, until, reports.resolve_zone(tz, rollup_tz), now)
    ledger = open_ledger(get_paths().ledger, readonly=True, tz=rollup_tz)
    cap = config.budget.caps.daily_usd
    if html is not None:
        from ..render import html as render_html

        board = reports.dashboard(ledger, window, rollup_tz, now, cap)
        page = render_html.html_page(
            board["series"],
            cap,
            board["tables"],
            board["band"],
            f"agentmeter report {window.day_bounds()[0] or ''} .. {window.day_bounds()[1]}",
        )
        render_html.write_html(html, page)
        return
    if commits is not None:
        from ..home.attribution import commit_range

        payload = reports.build_report(ledger, by, window, rollup_tz, commit_range(commits))
        payload["commit_range"] = commits
    else:
        payload = reports.build_report(ledger, by, window, rollup_tz)
    if fmt == "json":  # subscription plan windows (issue 18): now, and each window's daily peak in the period
        from ..ledger.plan import daily_peaks, plan_section

        payload["plan"] = plan_section(ledger.conn, now.timestamp(), config.budget.plan)
        payload["plan_daily"] = daily_peaks(ledger.conn, *window.ms_bounds())
    if chart and fmt == "table":
        render_report.spend_chart(reports.daily_series(ledger, window, rollup_tz), cap)
    render_report.report(payload, fmt)

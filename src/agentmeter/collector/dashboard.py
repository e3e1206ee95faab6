"""The dashboard page: one self-contained HTML document (inline CSS and SVG, no scripts, nothing fetched).

The team's chargeback table (`#chargeback-table`) with the developers' subscription plan windows beside it
(`#plan-windows`), each developer's burndown against their monthly cap,
spend by agent and by repo, and a daily spend chart (`#spend-chart`).
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..core.fmt import tokens as _tokens
from ..core.fmt import usd as _usd
from ..core.svgchart import daily_bars


def _table(table_id: str, headers: list[str], rows: list[list[str]], numeric_from: int) -> str:
    head = "".join(f"<th{' class=num' if i >= numeric_from else ''}>{escape(h)}</th>" for i, h in enumerate(headers))
    body = (
        "".join(
            "<tr>"
            + "".join(f"<td{' class=num' if i >= numeric_from else ''}>{escape(c)}</td>" for i, c in enumerate(r))
            + "</tr>"
            for r in rows
        )
        or f'<tr><td colspan="{len(headers)}">No usage pushed for this period yet.</td></tr>'
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _burndown(burn: list[dict[str, Any]]) -> str:
    if not burn:
        return "<p>No developers yet.</p>"
    out = ['<div id="burndown">']
    for b in burn:
        cap = b.get("cap_usd")
        pct = min(100.0, 100 * b["spent_usd"] / cap) if cap else 0.0
        over = " over" if cap and b["spent_usd"] >= cap else ""
        label = (
            f"{_usd(b['spent_usd'])} of {_usd(cap)} ({b['cap_source']})" if cap else f"{_usd(b['spent_usd'])} (no cap)"
        )
        out.append(
            f'<div class="burn"><span class="who">{escape(b["developer"])}</span>'
            f'<span class="track"><span class="fill{over}" style="width:{pct:.1f}%"></span></span>'
            f'<span class="num">{escape(label)}</span></div>'
        )
    out.append("</div>")
    return "".join(out)


def _when(epoch: int | None) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%a %d %b %H:%M UTC") if epoch else "—"


def _plan_windows(rows: list[dict[str, Any]]) -> str:
    """Each developer's subscription windows as their client last saw them, by team (issue 18 item 3)."""
    from ..plan import label

    if not rows:
        return ""
    body = [
        [
            r["team"] or "—",
            r["developer"],
            f"{r['provider']} {r['account']} · {label(r['window'])}",
            "reset since" if r["stale"] else f"{r['used_pct']:.0f}%",
            _when(r["resets_at"]),
            "—" if r["stale"] else (f"runs out {_when(r['runs_out_at'])}" if r["runs_out_at"] else "on track"),
            _when(r["seen_at"]),
        ]
        for r in rows
    ]
    table = _table("plan-windows", ["team", "developer", "plan window", "used", "resets", "pace", "as of"], body, 3)
    return f"<h2>Subscription plan windows (each developer's latest reading)</h2>\n{table}"


def render(data: dict[str, Any]) -> str:
    charge = [
        [
            r["team"] or "—",
            r["developer"],
            r["cost_center"] or "—",
            f"{r['requests']:,}",
            _tokens(r["tokens"]),
            _usd(r["billed_usd"]),
            _usd(r["subscription_usd"]),
            _usd(r["cost_usd"]),
        ]
        for r in data["chargeback"]
    ]
    t = data["totals"]
    charge_table = _table(
        "chargeback-table",
        ["team", "developer", "cost center", "requests", "tokens", "billed", "subscription (API-equiv.)", "total"],
        charge,
        3,
    )
    by_agent = _table(
        "by-agent",
        ["agent", "requests", "cost"],
        [[r["key"] or "other", f"{r['requests']:,}", _usd(r["cost_usd"])] for r in data["by_agent"]],
        1,
    )
    by_repo = _table(
        "by-repo",
        ["repo", "requests", "cost"],
        [[r["key"] or "—", f"{r['requests']:,}", _usd(r["cost_usd"])] for r in data["by_repo"]],
        1,
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentmeter · {escape(data["period"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2433;max-width:1100px}}
h1{{font-size:20px}} h2{{font-size:16px;margin-top:28px}}
table{{border-collapse:collapse;width:100%}} th,td{{padding:4px 8px;border-bottom:1px solid #e3e6ec;text-align:left}}
.num{{text-align:right;font-variant-numeric:tabular-nums}} .grid{{display:grid;grid-template-columns:1fr 1fr;gap:24px}}
.bar{{fill:#4c6ef5}} .axis{{font-size:11px;fill:#5c667a}}
.burn{{display:grid;grid-template-columns:220px 1fr 260px;gap:8px;align-items:center;margin:4px 0}}
.track{{background:#eef0f5;height:12px;border-radius:6px;overflow:hidden}}
.fill{{display:block;height:100%;background:#40c057}} .fill.over{{background:#fa5252}}
.summary{{color:#5c667a}}
</style></head><body>
<h1>agentmeter · team spend · {escape(data["period"])}</h1>
<p class="summary">{escape(_usd(t["cost_usd"]))} across {t["developers"]} developers, {t["requests"]:,} requests,
{t["sessions"]:,} sessions. Generated {escape(data["generated_at"])}.</p>
<h2>Chargeback</h2>
{charge_table}
{_plan_windows(data.get("plan_windows") or [])}
<h2>Daily spend</h2>
{daily_bars([(d["day"], d["cost_usd"] or 0.0) for d in data["daily"]], width=720, height=220)}
<h2>Burndown (this month, against each developer's monthly cap)</h2>
{_burndown(data["burndown"])}
<div class="grid"><div><h2>By agent</h2>{by_agent}</div><div><h2>By repo</h2>{by_repo}</div></div>
</body></html>
"""

"""Printing for `agentmeter sync` and `agentmeter collector …` (text for people, versioned JSON for scripts)."""

from __future__ import annotations

import sys
from typing import Any

from . import emit_json, get_console, info, line, tokens, usd


def sync_result(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("sync", r)
        return
    if r["configured"]:
        p = r["pushed"]
        if r["ok"]:
            line(
                f"synced to {r['collector']}: {p['rollups']} daily rows, {p['sessions']} sessions"
                + (f", {p['plan_windows']} plan windows" if p.get("plan_windows") else "")
                + " pushed"
                + (f", {p['deleted']} removed" if p["deleted"] else "")
                + f" ({r['unchanged']} unchanged)"
            )
            if r.get("skipped"):
                s = r["skipped"]
                info(
                    f"  {len(s)} item(s) the collector refused were skipped (first: {s[0]['kind']} of "
                    f"{s[0].get('day') or '?'}: {s[0]['reason']}); they go again when they change"
                )
        else:
            line(f"not synced: {r['error']['message']}")
            line(
                f"  {r['pending']} rows stay queued; the proxy retries in the background "
                f"(next try after {r.get('next_attempt_at')})"
            )
    caps = {k: v for k, v in (r.get("cap_sources") or {}).items() if v != "personal"}
    for name, src in sorted(caps.items()):
        value = r["effective_caps"][name]
        shown = usd(value) if name.endswith("_usd") else f"{value:,} tokens"
        line(f"cap {name.replace('_', ' ')}: {shown} from {src} (stricter than yours)")
    o = r.get("otel") or {}
    if o.get("status") == "ok":
        line(
            f"OpenTelemetry: {o.get('requests', 0)} requests exported to {o['endpoint']}"
            + (f" ({o['note']})" if o.get("note") else "")
        )
    elif o.get("status") == "skipped":
        hint = f". Install it with: {o['hint']}" if o.get("hint") else ""
        info(f"OpenTelemetry export skipped: {o['reason']}{hint}")
    elif o.get("status") == "failed":
        info(f"OpenTelemetry export failed: {o['error']} (will retry next sync)")


def collector_token(t: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("collector_token", t)
        return
    if t.get("dry_run"):
        line(
            f"dry run: would issue a token for {t['developer']}"
            + (f" (team {t['team']})" if t.get("team") else "")
            + f" [{t.get('role') or ('admin' if t['admin'] else 'developer')}]"
        )
        return
    line(t["token"])
    who = (
        t["developer"]
        + (f" (team {t['team']})" if t.get("team") else "")
        + (f" (cost centre {t['cost_center']})" if t.get("cost_center") else "")
        + f" [{t.get('role') or ('admin' if t['admin'] else 'developer')}]"
    )
    info(
        f"token {t['id']} for {who}. It is shown only this once; on the developer's machine run:\n"
        f"  agentmeter keys set collector   (or export AGENTMETER_COLLECTOR_TOKEN=…)"
    )


def collector_tokens(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json("collector_tokens", {"tokens": rows})
        return
    if not rows:
        line("No tokens. Issue one with: agentmeter collector token add --developer NAME --db PATH")
        return
    for t in rows:
        state = "revoked" if t["revoked_at"] else "active"
        role = t.get("role") or ("admin" if t["admin"] else "developer")
        line(f"{t['id']}  {t['developer']:<28} {t['team'] or '—':<14} {role:<9} {state}")


def revoked(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("collector_token_rm", payload)
    else:
        verb = "dry run: would revoke" if payload.get("dry_run") else "revoked"
        line(f"{verb} {payload['revoked']} token{'s' if payload['revoked'] != 1 else ''}")


def collector_report(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("collector_report", payload)
        return

    from . import Col, fit_table

    cols = [
        Col(payload["by"], shrink=payload["by"] in ("repo", "model")),
        Col("developers", True, drop=3),
        Col("requests", True, drop=2),
        Col("input", True, drop=5),
        Col("cache r", True, drop=7),
        Col("cache w", True, drop=8),
        Col("output", True, drop=4),
        Col("cost", True),
    ]

    def cells(r: dict[str, Any], key: str) -> list[str]:
        return [
            key,
            str(r["developers"]),
            f"{r['requests']:,}",
            tokens(r["input_tokens"]),
            tokens(r["cache_read_tokens"]),
            tokens(r["cache_write_tokens"]),
            tokens(r["output_tokens"]),
            usd(r["cost_usd"]),
        ]

    console = get_console()
    console.print(
        fit_table(
            cols,
            [cells(r, str(r["key"] or "—")) for r in payload["rows"]],
            console.width,
            footer=cells(payload["totals"], "total"),
            footer_style="bold",
        )
    )


def collector_caps(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("collector_caps", payload)
        return
    if not payload["caps"]:
        line("No team or developer caps. Set one with: agentmeter collector caps set --team T --monthly 500 --db PATH")
    for c in payload["caps"]:
        caps = ", ".join(
            f"{k} {usd(v) if k.endswith('_usd') else f'{v:,}'}"
            for k, v in c.items()
            if k not in ("scope", "name", "updated_at", "allow_snooze") and v is not None
        )
        snooze = "developers may snooze" if c.get("allow_snooze") else "not snoozable"
        prefix = "dry run: would set " if payload.get("dry_run") else ""
        line(f"{prefix}{c['scope']} {c['name']}: {caps or 'none'} ({snooze})")


def focus_csv(rows, output: str | None) -> int:
    from ..collector.focus import write_csv

    if output:
        from ..home.paths import atomic_open

        with atomic_open(output, "w", encoding="utf-8", newline="") as f:
            return write_csv(rows, f)
    return write_csv(rows, sys.stdout)


def serving(url: str, db: str) -> None:
    info(f"agentmeter collector on {url} (database {db})")
    info(f"  dashboard: {url}/dashboard?token=<admin token>   ·   clients: AGENTMETER_COLLECTOR_URL={url}")

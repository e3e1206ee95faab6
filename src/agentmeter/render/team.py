"""Printing for the team wallet and team alert routes on the collector (text for people, JSON for scripts)."""

from __future__ import annotations

from typing import Any

from . import emit_json, line, usd

_CAPS = ("daily_usd", "weekly_usd", "monthly_usd", "daily_tokens", "weekly_tokens", "monthly_tokens")


def _caps_text(c: dict[str, Any]) -> str:
    return (
        ", ".join(
            f"{k.split('_')[0]} {usd(c[k]) if k.endswith('_usd') else f'{c[k]:,} tokens'}"
            for k in _CAPS
            if c.get(k) is not None
        )
        or "none"
    )


def wallets(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("collector_wallets", payload)
        return
    prefix = "dry run: would set " if payload.get("dry_run") else ""
    if not payload["wallets"]:
        line("No team wallets. Set one with: agentmeter collector caps set --team T --pooled --monthly 2000 --db PATH")
    for w in payload["wallets"]:
        who = (
            "pooled wallet"
            if not w.get("member")
            else "every member's sub-cap"
            if w["member"] == "*"
            else f"sub-cap of {w['member']}"
        )
        snooze = "developers may snooze" if w.get("allow_snooze") else "not snoozable"
        line(f"{prefix}team {w['team']} {who}: {_caps_text(w)} ({snooze})")


def team_budget_test(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("collector_budget_test", r)
        return
    if not r["caps"] and not r["member_caps"]:
        line(
            f"team {r['team']} has no wallet and no caps were given. "
            "Try: agentmeter collector budget test --team T --monthly 2000 --db PATH"
        )
        return
    line(
        f"replayed {r['requests']} requests of {r['members']} members of {r['team']} since {r['since']} against "
        f"the wallet {_caps_text(r['caps'])}"
        + (f", each member {_caps_text(r['member_caps'])}" if r["member_caps"] else "")
    )
    for window, stages in r["stages"].items():
        line(f"  {window}: " + ", ".join(f"{s} on {day}" for s, day in stages.items()))
    if not r["stages"]:
        line("  no stage would have fired")
    for who, n in sorted(r["refused_members"].items(), key=lambda kv: -kv[1]):
        line(f"  {who}: {n} requests refused, from {r['first_refusal'][who]}")
    line(
        f"spend: {usd(r['actual_usd'])} actual → {usd(r['with_caps_usd'])} with this wallet "
        f"(saved {usd(r['saved_usd'])})"
    )
    if r.get("worst"):
        w = r["worst"]
        line(f"worst: {w['window']} at {w['used_pct']:.0f}% on {w['day']}")
    line(f"({r['method']})")


def alert_routes(payload: dict[str, Any], as_json: bool) -> None:
    from ..collector.webhooks import redact

    routes = [{**r, "webhook": redact(r["webhook"])} for r in payload.get("routes", [])]
    payload = {**payload, "routes": routes}
    if as_json:
        emit_json("collector_alert_routes", payload)
        return
    if payload.get("removed"):
        line(
            ("dry run: would remove" if payload.get("dry_run") else "removed")
            + f" the alert route of team {payload['removed']}"
        )
        return
    prefix = "dry run: would set " if payload.get("dry_run") else ""
    if not routes:
        line("No alert routes. Add one: agentmeter collector alerts set --team T --webhook URL --db PATH")
    for r in routes:
        digest = f"digest daily at {r['digest_hour']:02d}:00 UTC" if r["digest_hour"] is not None else "no digest"
        line(
            f"{prefix}team {r['team']}: {r['format']} to {r['webhook']} at "
            + ", ".join(f"{t:.0%}" for t in r["thresholds"])
            + f" of the wallet; {digest}"
        )
    for s in payload.get("sent") or []:
        state = "delivered" if s["delivered_at"] else f"not delivered ({s['attempts']} attempts)"
        line(f"  sent: {s['team']} {s['kind']} {s['window']} {s['period_start']} {s['threshold']} — {state}")


def alert_sent(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json("collector_alert_sent", payload)
        return
    text = payload["body"].get("text", "")
    if payload["dry_run"]:
        line(f"dry run: would send to {payload['webhook']}: {text}")
    elif payload["delivered"]:
        line(f"sent to {payload['webhook']}: {text}")
    else:
        line(
            f"not delivered to {payload['webhook']} after {payload['attempts']} attempts; check the URL "
            "and that the collector can reach it"
        )
